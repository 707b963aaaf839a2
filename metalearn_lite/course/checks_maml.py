"""Self-checks for chapter 02's exercises (MAML).

Each ``check_*`` builds its own inputs (float64 sinusoid tasks and a small MLP), computes
the reference with the package's own functions (:mod:`metalearn_lite.algorithms.maml`),
and reports with :mod:`metalearn_lite.course.checks`: ``✓`` on a right answer, "not
answered yet" for a placeholder, ``CheckFailed`` (with a hint) on a wrong one.

- ``check_first_order_meta_gradient(fn)``: ``fn(model, params, episode, inner_lr,
  num_inner_steps)`` -> dict name -> tensor: the FOMAML meta-gradient of a batched episode
  (reference: ``meta_loss(..., first_order=True)`` differentiated by autograd).
- ``check_meta_sgd_step(fn)``: ``fn(model, params, inner_lrs, support_x, support_y)`` -> dict
  name -> tensor: one inner step with a learned learning rate per parameter entry
  (reference: ``inner_loop(..., inner_lr=inner_lrs, num_inner_steps=1)``).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..algorithms.maml import inner_loop, meta_loss
from ..models.mlp import MLP
from ..tasks.episode import Episode
from ..tasks.sinusoid import SinusoidTasks
from .checks import CheckFailed, call_answer, expect_close, is_unanswered, not_answered, report

__all__ = ["check_first_order_meta_gradient", "check_meta_sgd_step"]


def _setup(seed: int, num_tasks: int = 3):
    torch.manual_seed(seed)
    model = MLP(1, (16, 16), 1).double()
    params = {k: v.detach().clone().requires_grad_(True) for k, v in model.named_parameters()}
    batch = SinusoidTasks().sample(num_tasks, 5, 7, generator=seed)
    batch = Episode(*(t.double() for t in batch.tensors()), batched=True)
    return model, params, batch


def _check_param_dict(name: str, got, params) -> None:
    if not isinstance(got, dict):
        raise CheckFailed(f"✗ {name}: expected a dict name -> tensor with keys {sorted(params)}, "
                          f"got {type(got).__name__}")


def check_first_order_meta_gradient(fn: Callable) -> bool:
    """Check ``fn(model, params, episode, inner_lr, num_inner_steps) -> {name: grad}``.

    ``episode`` is batched (``support_x [B, K, 1]``); the answer is the gradient of the mean
    query loss with the inner gradients held constant (FOMAML), one tensor per parameter.
    """
    name = "first_order_meta_gradient"
    for seed, (inner_lr, steps) in enumerate([(0.01, 1), (0.05, 3)]):
        model, params, batch = _setup(seed)
        got = call_answer(name, fn, model, {k: v.detach().clone().requires_grad_(True) for k, v in params.items()},
                          batch, inner_lr, steps)
        if is_unanswered(got):
            return not_answered(name)
        _check_param_dict(name, got, params)
        loss = meta_loss(model, params, batch, F.mse_loss, num_inner_steps=steps, inner_lr=inner_lr,
                         first_order=True, strategy="loop").loss
        grads = torch.autograd.grad(loss, list(params.values()))
        expected = {k: g for k, g in zip(params, grads)}
        expect_close(f"{name} (alpha={inner_lr}, {steps} step(s))", {k: v for k, v in got.items()}, expected,
                     atol=1e-8, rtol=1e-6,
                     hint="adapt each task with gradients that carry no graph (detach them, or create_graph="
                          "False), evaluate the query loss at theta', average over tasks, and differentiate "
                          "that average with respect to theta", quiet=True)
    return report(name, True, note="the first-order meta-gradient is the query gradient at theta', "
                                   "applied to theta")


def check_meta_sgd_step(fn: Callable) -> bool:
    """Check ``fn(model, params, inner_lrs, support_x, support_y) -> {name: adapted}``.

    ``inner_lrs`` holds one learning rate per parameter entry (same shapes as ``params``);
    the answer is ``theta' = theta - inner_lrs * grad L_S(theta)`` (elementwise).
    """
    name = "meta_sgd_step"
    for seed in range(2):
        model, params, batch = _setup(10 + seed, num_tasks=1)
        task = batch[0]
        g = torch.Generator().manual_seed(seed)
        inner_lrs = {k: 0.001 + 0.1 * torch.rand(v.shape, generator=g, dtype=v.dtype) for k, v in params.items()}
        got = call_answer(name, fn, model, {k: v.detach().clone().requires_grad_(True) for k, v in params.items()},
                          {k: v.clone() for k, v in inner_lrs.items()}, task.support_x, task.support_y)
        if is_unanswered(got):
            return not_answered(name)
        _check_param_dict(name, got, params)
        with torch.no_grad():
            expected = inner_loop(model, params, task.support_x, task.support_y, F.mse_loss, num_inner_steps=1,
                                  inner_lr=inner_lrs).params
        expect_close(name, {k: v.detach() for k, v in got.items()}, expected, atol=1e-10, rtol=1e-8,
                     hint=("one gradient step on the support loss, with a learning rate per parameter entry "
                           "(not one shared alpha)",
                           "compute grad L_S(theta) with torch.autograd.grad, then subtract inner_lrs[name] * "
                           "grad[name] entry by entry"), quiet=True)
    return report(name, True, note="Meta-SGD's alpha has the shape of theta: it learns a direction and a "
                                   "step size per entry")
