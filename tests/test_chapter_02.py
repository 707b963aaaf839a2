"""Chapter 02 (MAML): the notebook's from-scratch code equals the package's, the exercise
self-checks tell right from wrong, and the stored notebook is clean."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from notebook_cells import notebook_cells
import torch
import torch.nn.functional as F
from torch.func import functional_call

from metalearn_lite import Episode
from metalearn_lite.algorithms import MAML, inner_loop, meta_loss
from metalearn_lite.course.checks import CheckFailed
from metalearn_lite.course.checks_maml import check_first_order_meta_gradient, check_meta_sgd_step
from metalearn_lite.models import MLP
from metalearn_lite.tasks import SinusoidTasks

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02_maml.ipynb"


def _cells(tag: str | None = None) -> list[dict]:
    return notebook_cells(NOTEBOOK, tag)


@pytest.fixture(scope="module")
def scratch() -> dict:
    """The namespace of the notebook's cells tagged ``from-scratch`` (exec'd with its imports)."""
    cells = _cells("from-scratch")
    assert cells, "the notebook has no cell tagged from-scratch"
    namespace: dict = {"torch": torch, "F": F, "functional_call": functional_call}
    for cell in cells:
        exec(compile("".join(cell["source"]), str(NOTEBOOK), "exec"), namespace)
    return namespace


def _double_batch(num_tasks: int, seed: int) -> Episode:
    batch = SinusoidTasks().sample(num_tasks, 5, 7, generator=seed)
    return Episode(*(t.double() for t in batch.tensors()), batched=True)


def _model(seed: int) -> tuple[MLP, dict]:
    torch.manual_seed(seed)
    model = MLP(1, (20, 20), 1).double()
    return model, dict(model.named_parameters())


@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("steps, inner_lr", [(1, 0.01), (3, 0.05)])
def test_from_scratch_meta_loss_and_gradient_equal_the_package(scratch, first_order, steps, inner_lr):
    model, params = _model(steps)
    batch = _double_batch(4, seed=steps)
    mine = scratch["meta_loss_from_scratch"](model, params, batch, inner_lr, steps, first_order)
    grads_mine = torch.autograd.grad(mine, list(params.values()))
    for strategy in ("loop", "vmap"):
        ref = meta_loss(model, params, batch, F.mse_loss, num_inner_steps=steps, inner_lr=inner_lr,
                        first_order=first_order, strategy=strategy)
        grads_ref = torch.autograd.grad(ref.loss, list(params.values()))
        assert torch.allclose(mine, ref.loss, atol=1e-12, rtol=1e-10)
        for a, b in zip(grads_mine, grads_ref):
            assert torch.allclose(a, b, atol=1e-10, rtol=1e-8)
    maml = MAML(model, F.mse_loss, inner_lr=inner_lr, num_inner_steps=steps, first_order=first_order, strategy="loop")
    assert torch.allclose(maml.meta_loss(batch).loss, mine, atol=1e-12)


def test_second_and_first_order_differ_so_the_comparison_means_something(scratch):
    model, params = _model(0)
    batch = _double_batch(3, seed=5)
    second = torch.autograd.grad(scratch["meta_loss_from_scratch"](model, params, batch, 0.05, 2, False),
                                 list(params.values()))
    first = torch.autograd.grad(scratch["meta_loss_from_scratch"](model, params, batch, 0.05, 2, True),
                                list(params.values()))
    assert max((a - b).abs().max().item() for a, b in zip(second, first)) > 1e-6


def test_from_scratch_inner_update_builds_a_graph_only_for_second_order(scratch):
    model, params = _model(1)
    task = _double_batch(1, seed=2)[0]
    second = scratch["inner_update_from_scratch"](model, params, task.support_x, task.support_y, 0.01, False)
    first = scratch["inner_update_from_scratch"](model, params, task.support_x, task.support_y, 0.01, True)
    ref = inner_loop(model, params, task.support_x, task.support_y, F.mse_loss, num_inner_steps=1, inner_lr=0.01)
    for name in params:
        assert torch.allclose(second[name], ref.params[name], atol=1e-12)
        assert torch.allclose(first[name], ref.params[name], atol=1e-12)

    def has_double_backward(tensor) -> bool:
        # the gradient's own graph (create_graph=True) leaves backward-of-backward nodes behind
        seen, stack = set(), [tensor.grad_fn]
        while stack:
            fn = stack.pop()
            if fn is None or fn in seen:
                continue
            seen.add(fn)
            if "BackwardBackward" in type(fn).__name__:
                return True
            stack.extend(f for f, _ in fn.next_functions)
        return False

    weight = "layers.0.weight"
    assert has_double_backward(second[weight])
    assert not has_double_backward(first[weight])


def test_from_scratch_adapt_equals_inner_loop_over_many_steps(scratch):
    model, params = _model(2)
    task = _double_batch(1, seed=3)[0]
    mine = scratch["adapt_from_scratch"](model, params, task.support_x, task.support_y, 0.02, 5)
    ref = inner_loop(model, params, task.support_x, task.support_y, F.mse_loss, num_inner_steps=5, inner_lr=0.02)
    for name in params:
        assert torch.allclose(mine[name], ref.params[name], atol=1e-12)


def _right_fomaml(model, params, episode, inner_lr, num_inner_steps):
    loss = meta_loss(model, params, episode, F.mse_loss, num_inner_steps=num_inner_steps, inner_lr=inner_lr,
                     first_order=True, strategy="loop").loss
    return dict(zip(params, torch.autograd.grad(loss, list(params.values()))))


def _second_order(model, params, episode, inner_lr, num_inner_steps):
    loss = meta_loss(model, params, episode, F.mse_loss, num_inner_steps=num_inner_steps, inner_lr=inner_lr,
                     first_order=False, strategy="loop").loss
    return dict(zip(params, torch.autograd.grad(loss, list(params.values()))))


def test_first_order_check_passes_right_reports_unanswered_and_fails_wrong(capsys):
    assert check_first_order_meta_gradient(_right_fomaml) is True
    assert "✓" in capsys.readouterr().out
    assert check_first_order_meta_gradient(lambda *a: None) is False
    assert "not answered yet" in capsys.readouterr().out
    with pytest.raises(CheckFailed):
        check_first_order_meta_gradient(_second_order)          # the second-order gradient is not FOMAML's


def _right_meta_sgd(model, params, inner_lrs, support_x, support_y):
    loss = F.mse_loss(functional_call(model, params, (support_x,)), support_y)
    grads = torch.autograd.grad(loss, list(params.values()))
    return {k: p - inner_lrs[k] * g for (k, p), g in zip(params.items(), grads)}


def _shared_lr(model, params, inner_lrs, support_x, support_y):
    loss = F.mse_loss(functional_call(model, params, (support_x,)), support_y)
    grads = torch.autograd.grad(loss, list(params.values()))
    return {k: p - inner_lrs[k].mean() * g for (k, p), g in zip(params.items(), grads)}


def test_meta_sgd_check_passes_right_reports_unanswered_and_fails_wrong(capsys):
    assert check_meta_sgd_step(_right_meta_sgd) is True
    assert "✓" in capsys.readouterr().out
    assert check_meta_sgd_step(lambda *a: ...) is False
    assert "not answered yet" in capsys.readouterr().out
    with pytest.raises(CheckFailed):
        check_meta_sgd_step(_shared_lr)


def test_stored_notebook_is_executed_clean_and_leaves_the_exercises_open():
    nb = json.loads(NOTEBOOK.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code if c.get("id") != "course-setup"), \
        "store the notebook executed (the Colab set-up cell, id course-setup, is stored unexecuted)"
    texts = []
    for cell in code:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", "a stored cell raised"
            texts.append("".join(out.get("text", "")))
            texts.append("".join(out.get("data", {}).get("text/plain", "")))
    outputs = "\n".join(texts)
    assert "/work/" not in outputs and "/home/" not in outputs and "/tmp/" not in outputs
    assert "Traceback" not in outputs and "0x7f" not in outputs
    assert outputs.count("not answered yet") == 2
    source = "\n".join("".join(c["source"]) for c in nb["cells"])
    assert "FULL = False" in source and "seed_everything(0, num_threads=1)" in source
