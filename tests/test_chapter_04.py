"""Chapter 04 (neural processes): the notebook's from-scratch code equals the package's, the
exercise self-checks tell right from wrong, and the stored notebook is clean."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from notebook_cells import notebook_cells
import torch

from metalearn_lite.algorithms import CNP, LatentNP, gaussian_log_likelihood
from metalearn_lite.course.checks import CheckFailed
from metalearn_lite.course.checks_np import check_coverage, check_log_mean_exp
from metalearn_lite.tasks import GPCurves

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "04_neural_processes.ipynb"


def _cells(tag: str | None = None) -> list[dict]:
    return notebook_cells(NOTEBOOK, tag)


@pytest.fixture(scope="module")
def scratch() -> dict:
    """The namespace of the notebook's cells tagged ``from-scratch`` (exec'd with its imports)."""
    cells = _cells("from-scratch")
    assert cells, "the notebook has no cell tagged from-scratch"
    namespace: dict = {"math": math, "torch": torch}
    for cell in cells:
        exec(compile("".join(cell["source"]), str(NOTEBOOK), "exec"), namespace)
    return namespace


@pytest.mark.parametrize("batch, num_context, num_extra, hidden", [(1, 1, 4, 16), (5, 9, 11, 32), (3, 20, 0, 8)])
def test_from_scratch_cnp_equals_the_package(scratch, batch, num_context, num_extra, hidden):
    torch.manual_seed(batch + num_context)
    cnp = CNP(hidden=hidden, r_dim=hidden + 3)
    episode = GPCurves().sample(batch, num_context=num_context, num_extra_targets=num_extra, generator=num_context)
    cx, cy, tx, ty = episode.support_x, episode.support_y, episode.query_x, episode.query_y
    with torch.no_grad():
        r = scratch["aggregate_from_scratch"](cnp.encoder, cx, cy)
        assert r.shape == (batch, hidden + 3)
        assert torch.allclose(r, cnp.represent(cx, cy), atol=1e-6)
        pred = cnp(cx, cy, tx)
        ll = scratch["gaussian_log_likelihood_from_scratch"](ty, pred.mean, pred.std)
        assert torch.allclose(ll, gaussian_log_likelihood(ty, pred.mean, pred.std), atol=1e-6)
        per_task = scratch["cnp_log_likelihood_from_scratch"](cnp, cx, cy, tx, ty)
        assert torch.allclose(per_task, cnp.log_likelihood(episode), atol=1e-5)
        assert torch.allclose(per_task, cnp.loss(episode).log_likelihood, atol=1e-5)


def test_from_scratch_gaussian_log_likelihood_is_not_trivially_equal(scratch):
    # Wide values and tiny stds: a formula with a wrong constant or a missing square would differ here.
    y, mean, std = torch.randn(2, 6, 1) * 3, torch.randn(2, 6, 1), torch.rand(2, 6, 1) * 2 + 0.05
    got = scratch["gaussian_log_likelihood_from_scratch"](y, mean, std)
    assert torch.allclose(got, torch.distributions.Normal(mean, std).log_prob(y), atol=1e-5)


def test_from_scratch_kl_equals_the_latent_np_elbo_kl(scratch):
    torch.manual_seed(0)
    model = LatentNP(hidden=16, r_dim=16, z_dim=6)
    episode = GPCurves().sample(4, num_context=5, num_extra_targets=8, generator=3)
    with torch.no_grad():
        prior = model.latent(episode.support_x, episode.support_y)
        posterior = model.latent(episode.query_x, episode.query_y)
        kl = scratch["kl_diag_gaussians_from_scratch"](posterior.loc, posterior.scale, prior.loc, prior.scale)
        assert torch.allclose(kl, model.loss(episode).kl, atol=1e-6)
        other = scratch["kl_diag_gaussians_from_scratch"](prior.loc + 1, prior.scale * 2, prior.loc, prior.scale)
        expected = torch.distributions.kl_divergence(torch.distributions.Normal(prior.loc + 1, prior.scale * 2),
                                                     prior).sum(-1)
        assert torch.allclose(other, expected, atol=1e-5)


def test_log_mean_exp_check_passes_right_reports_unanswered_and_fails_wrong(capsys):
    assert check_log_mean_exp(lambda lp: torch.logsumexp(lp, 0) - math.log(lp.shape[0])) is True
    assert "✓ log_mean_exp" in capsys.readouterr().out
    assert check_log_mean_exp(lambda lp: None) is False
    assert "not answered yet" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="log_mean_exp"):               # underflows at -1000
        check_log_mean_exp(lambda lp: lp.exp().mean(0).log())
    with pytest.raises(CheckFailed):                                     # mean of logs (Jensen gap)
        check_log_mean_exp(lambda lp: lp.mean(0))


def test_coverage_check_passes_right_reports_unanswered_and_fails_wrong(capsys):
    assert check_coverage(lambda m, s, y: ((y - m).abs() <= 2 * s).float().mean().item()) is True
    assert "✓ coverage" in capsys.readouterr().out
    assert check_coverage(lambda m, s, y: ...) is False
    assert "not answered yet" in capsys.readouterr().out
    with pytest.raises(CheckFailed):                                     # one std instead of two
        check_coverage(lambda m, s, y: ((y - m).abs() <= s).float().mean().item())
    # a 0-d tensor counts as a number, as in the homework's check and the grader
    assert check_coverage(lambda m, s, y: ((y - m).abs() <= 2 * s).float().mean()) is True
    with pytest.raises(CheckFailed, match=r"expected shape \[\], got shape \[1\]"):   # a 1-element tensor is not
        check_coverage(lambda m, s, y: ((y - m).abs() <= 2 * s).float().mean().reshape(1))


def test_stored_notebook_is_executed_clean_and_leaves_the_exercises_open():
    nb = json.loads(NOTEBOOK.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code if c.get("id") != "course-setup"), \
        "store the notebook executed (the Colab set-up cell, id course-setup, is stored unexecuted)"
    sources = "\n".join("".join(c["source"]) for c in code)
    assert re.search(r"^FULL = False", sources, re.M)
    assert "seed_everything(0, num_threads=1)" in sources
    texts = []
    for cell in code:
        for out in cell.get("outputs", []):
            texts.append("".join(out.get("text", "")))
            texts.append("".join(out.get("data", {}).get("text/plain", "")))
            texts.append("".join(out.get("traceback", [])))
    outputs = "\n".join(texts)
    assert "/work/" not in outputs and "/home/" not in outputs and "/tmp/" not in outputs
    assert "Traceback" not in outputs and "0x7f" not in outputs
    assert outputs.count("not answered yet") == 2          # exercises stored unanswered, notebook still runs
    assert "not_answered" not in sources                    # and the answers are not in the notebook
