"""Chapters 07 and 08 (beyond the core): chapter 07's from-scratch Reptile direction equals the
package's on other inputs (and is not trivially zero), and both stored notebooks are clean."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from notebook_cells import notebook_cells
from torch.func import functional_call

from metalearn_lite import Episode
from metalearn_lite.algorithms import Reptile
from metalearn_lite.models import MLP
from metalearn_lite.tasks import SinusoidTasks

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "07_beyond_the_core.ipynb"


@pytest.fixture(scope="module")
def scratch() -> dict:
    cells = notebook_cells(NOTEBOOK, "from-scratch")
    assert cells, "the notebook has no cell tagged from-scratch"
    namespace: dict = {"torch": torch, "F": F, "functional_call": functional_call}
    for cell in cells:
        exec(compile("".join(cell["source"]), str(NOTEBOOK), "exec"), namespace)
    return namespace


@pytest.mark.parametrize("steps,inner_lr", [(1, 0.05), (4, 0.02)])
def test_from_scratch_reptile_direction_equals_the_package(scratch, steps, inner_lr):
    torch.manual_seed(3)
    batch = SinusoidTasks().sample(3, 4, 6, generator=11)
    batch = Episode(*(t.double() for t in batch.tensors()), batched=True)
    reptile = Reptile(MLP(1, (12, 12), 1).double(), F.mse_loss, inner_lr=inner_lr, num_inner_steps=steps)
    mine = scratch["reptile_direction_from_scratch"](reptile.model, reptile.params(), batch, inner_lr, steps)
    package = reptile.meta_gradient(batch).meta_grad
    for name, value in package.items():
        assert value.abs().max() > 1e-6
        assert torch.allclose(mine[name], value, atol=1e-10), name


@pytest.mark.parametrize("path", [NOTEBOOK, NOTEBOOK.with_name("08_beyond_the_core_ii.ipynb")], ids=["07", "08"])
def test_stored_notebook_is_executed_and_clean(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code if c.get("id") != "course-setup"), \
        "store the notebook executed (the Colab set-up cell, id course-setup, is stored unexecuted)"
    text = json.dumps([c.get("outputs", []) for c in code])
    for fragment in ("/work/", "/home/", "/root/", "/tmp/", "Traceback"):
        assert fragment not in text, f"stored outputs contain {fragment!r}"
    assert any("FULL = False" in "".join(c["source"]) for c in code)
    assert sum("image/png" in json.dumps(c.get("outputs", [])) for c in code) >= 3, "each section plots its results"
