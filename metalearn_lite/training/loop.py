"""The meta-training loop shared by every algorithm in the course.

Each algorithm supplies a *step function* that computes the outer loss on a fresh batch
of tasks; the loop does the rest (optimiser step, progress bar, history, periodic
callbacks such as checkpoints)::

    for step in range(num_steps):
        optimiser.zero_grad()
        loss, metrics = step_fn(step)          # e.g. maml.meta_loss(sampler.sample_batch(25))
        loss.backward(); optimiser.step()      # theta <- theta - beta * grad

A step function may also compute the gradients itself and return the loss detached: MAML's
fast path ``maml.meta_step(batch)`` backpropagates a few tasks at a time so that memory does
not grow with the meta-batch (``metalearn_lite.algorithms.maml.meta_backward``)::

    meta_train(lambda step: maml.meta_step(sampler.sample_batch(32)).loss, optimiser, 1000)
"""
from __future__ import annotations

import math
from typing import Callable, Mapping

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .history import History

__all__ = ["meta_train", "StepFn"]

StepFn = Callable[[int], "tuple[Tensor, Mapping[str, float]] | Tensor"]


def meta_train(step_fn: StepFn, optimiser: torch.optim.Optimizer, num_steps: int, *, log_every: int = 1,
               progress: bool = True, description: str = "meta-training", history: History | None = None,
               callback: Callable[[int, History], None] | None = None, callback_every: int = 0,
               grad_clip: float | None = None) -> History:
    """Run ``num_steps`` outer steps and return the ``History``.

    Args:
        step_fn: ``step_fn(step)`` returns the outer loss (a scalar with a graph), or
            ``(loss, metrics)`` with extra floats to log (e.g. query accuracy). A loss that
            does not require grad means the step function already filled the gradients
            (e.g. ``maml.meta_step``); the gradients are zeroed before each call.
        optimiser: the outer optimiser (its learning rate is ``beta``, ``outer_lr``).
        log_every: log the loss (and metrics) every this many steps.
        history: continue an existing history (steps keep counting from its last step).
        callback: called as ``callback(step, history)`` every ``callback_every`` steps and
            after the last step (e.g. to save a checkpoint for the outer-loop widget).
        grad_clip: clip the global gradient norm to this value.

    Raises ``FloatingPointError`` when the loss becomes NaN or infinite, naming the step.
    """
    if num_steps < 0:
        raise ValueError(f"num_steps must be >= 0, got {num_steps}")
    history = history if history is not None else History()
    start = history.steps[-1] + 1 if history.steps else 0
    bar = tqdm(range(start, start + num_steps), desc=description, disable=not progress, leave=True)
    params = [p for group in optimiser.param_groups for p in group["params"]]
    for step in bar:
        optimiser.zero_grad(set_to_none=True)
        out = step_fn(step)
        loss, metrics = (out if isinstance(out, tuple) else (out, {}))
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"outer loss became {loss_value} at step {step}; lower the learning rates")
        if loss.requires_grad:
            loss.backward()
        elif all(p.grad is None for p in params):
            raise ValueError(f"step_fn returned a loss without a graph at step {step} and filled no gradient: "
                             "return the loss with its graph, or backpropagate inside step_fn (maml.meta_step)")
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimiser.step()
        if (step - start) % log_every == 0 or step == start + num_steps - 1:
            history.log(step, loss=loss_value, **{k: float(v) for k, v in metrics.items()})
            bar.set_postfix(loss=f"{loss_value:.3f}", **{k: f"{float(v):.3f}" for k, v in metrics.items()})
        if callback is not None and ((callback_every and (step - start + 1) % callback_every == 0)
                                     or step == start + num_steps - 1):
            callback(step, history)
    return history
