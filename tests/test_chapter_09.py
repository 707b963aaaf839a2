"""Chapter 09 (in-context learning): the notebook's from-scratch transformer equals the package's
``InContextRegressor`` (layer by layer and end to end, on random inputs and sizes), the exercise
self-checks tell right from wrong, and the stored notebook is executed and clean."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from notebook_cells import notebook_cells

from metalearn_lite.algorithms import InContextRegressor
from metalearn_lite.course.checks import CheckFailed
from metalearn_lite.course.checks_in_context import check_context_tokens, check_episode_tokens
from metalearn_lite.tasks import GPCurves

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "09_in_context_learning.ipynb"

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def scratch() -> dict:
    cells = notebook_cells(NOTEBOOK, "from-scratch")
    assert cells, "the notebook has no cell tagged from-scratch"
    namespace: dict = {"math": math, "torch": torch, "F": F}
    for cell in cells:
        exec(compile("".join(cell["source"]), str(NOTEBOOK), "exec"), namespace)
    return namespace


@pytest.mark.parametrize("batch, num_context, num_extra, d_model, heads, layers",
                         [(1, 1, 3, 8, 1, 1), (4, 9, 11, 32, 4, 2), (2, 40, 0, 16, 2, 3)])
def test_from_scratch_transformer_equals_the_package(scratch, batch, num_context, num_extra, d_model, heads, layers):
    torch.manual_seed(num_context)
    model = InContextRegressor(d_model=d_model, num_heads=heads, num_layers=layers, dim_feedforward=2 * d_model)
    episode = GPCurves().sample(batch, num_context=num_context, num_extra_targets=num_extra, generator=num_context)
    cx, cy, tx = episode.support_x, episode.support_y, episode.query_x
    with torch.no_grad():
        h = torch.randn(batch, num_context + tx.shape[1], d_model)
        layer = model.transformer.layers[0]
        assert torch.allclose(scratch["layer_from_scratch"](layer, h, num_context), layer(h, num_context), atol=1e-5)
        mean, std = scratch["predict_from_scratch"](model, cx, cy, tx)
        pred = model(cx, cy, tx)
    assert mean.shape == std.shape == (batch, tx.shape[1], 1)
    assert torch.allclose(mean, pred.mean, atol=1e-5) and torch.allclose(std, pred.std, atol=1e-5)


def test_from_scratch_layer_uses_only_the_context_as_keys(scratch):
    # Changing a target row must not change any other row's output: a layer that let targets attend to
    # targets (a plain transformer encoder) would fail here.
    torch.manual_seed(0)
    model = InContextRegressor(d_model=8, num_heads=2, num_layers=1, dim_feedforward=16)
    layer = model.transformer.layers[0]
    h = torch.randn(1, 6, 8)
    h2 = h.clone()
    h2[0, 5] += 1.0
    with torch.no_grad():
        a, b = scratch["layer_from_scratch"](layer, h, 3), scratch["layer_from_scratch"](layer, h2, 3)
    assert torch.allclose(a[0, :5], b[0, :5], atol=1e-6) and not torch.allclose(a[0, 5], b[0, 5])


def test_token_checks_accept_the_answer_and_reject_a_wrong_one():
    reference = InContextRegressor(d_model=8, num_heads=2, num_layers=1)
    assert check_context_tokens(reference.tokens) is True
    assert check_context_tokens(lambda cx, cy, tx: None) is False
    with pytest.raises(CheckFailed, match="context_tokens"):
        check_context_tokens(lambda cx, cy, tx: (torch.cat([cx, cy], -1), torch.cat([tx, torch.zeros_like(tx)], -1)))

    def right(sf, sl, qf, n):
        ones = torch.ones(*sf.shape[:2], 1)
        return torch.cat([sf, F.one_hot(sl, n).float(), ones], -1), torch.cat([qf, torch.zeros(*qf.shape[:2], n + 1)], -1)

    def flag_on_queries(sf, sl, qf, n):
        s, q = right(sf, sl, qf, n)
        q[..., -1] = 1
        return s, q

    def width_from_labels(sf, sl, qf, n):   # F.one_hot without num_classes: as wide as the largest label + 1
        ones = torch.ones(*sf.shape[:2], 1)
        return torch.cat([sf, F.one_hot(sl).float(), ones], -1), torch.cat([qf, torch.zeros(*qf.shape[:2], n + 1)], -1)

    assert check_episode_tokens(right) is True
    assert check_episode_tokens(lambda sf, sl, qf, n: None) is False
    with pytest.raises(CheckFailed, match="episode_tokens"):
        check_episode_tokens(flag_on_queries)
    with pytest.raises(CheckFailed, match=r"episode_tokens \(num_ways=5\).*expected shape"):
        check_episode_tokens(width_from_labels)


def test_stored_notebook_is_executed_and_clean():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    run = [c for c in code if c.get("id") != "course-setup"]   # the set-up cell is stored unexecuted (scripts/setup-cells)
    assert all(c.get("execution_count") for c in run), "store the notebook executed"
    text = json.dumps([c.get("outputs", []) for c in code])
    for fragment in ("/work/", "/home/", "/root/", "/tmp/", "Traceback"):
        assert fragment not in text, f"stored outputs contain {fragment!r}"
    assert any("FULL = False" in "".join(c["source"]) for c in code)
    assert sum("image/png" in json.dumps(c.get("outputs", [])) for c in code) >= 5, "each section plots its results"
