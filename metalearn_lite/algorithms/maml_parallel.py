"""MAML's meta-gradient with the tasks of a meta-batch spread over threads (CPU).

The meta-gradient is a sum over tasks, ``grad L_meta = 1/B sum_i grad L_{Q_i}(theta'_i)``,
and each term needs only its own task. So ``W`` worker threads each take every ``W``-th
task, run it with **one** intra-op thread (``torch.set_num_threads(1)`` is per thread), and
add up their tasks' gradients; the main thread then adds the ``W`` partial sums, in worker
order, into ``.grad``. The ops release the GIL, so ``W`` cores do ``W`` tasks at once.

Why it is faster than giving each op all the cores: a Conv-4 task's tensors are small (5 to
75 images of 28x28), so most of its ops (batch norm, pooling, the element-wise work of the
double backward) split poorly over threads; one thread per task keeps every core busy.
Why each task is also lighter: the forward is ``Conv4.functional_forward`` (a pure function:
``functional_call`` swaps module parameters, which threads cannot share), and the query
pass, which is differentiated only once, runs as ``fast_ops.lean_block`` (no full-size
normalised map kept; the first block keeps no full-size map at all: it works through the
images in chunks and recomputes its cheap convolution in the backward).

The result is deterministic for a given ``W`` (fixed task split, fixed summation order) and
equal to the reference loop up to float rounding (``tests/test_maml_parallel.py``: float64,
second order, Conv-4 with batch norm, 1 and 5 inner steps, to 1e-10). Measured in
``bench/maml_speed.py`` (variant ``parallel``).
"""
from __future__ import annotations

import threading
from typing import Callable, Mapping

import torch
from torch import Tensor, nn

from .inner_lr import InnerLR
from .maml import LossFn, inner_loop

__all__ = ["task_parallel_meta_backward", "supports_task_parallel"]


def supports_task_parallel(model: nn.Module, params: Mapping[str, Tensor], inner_lr: InnerLR) -> bool:
    """Whether ``task_parallel_meta_backward`` can run ``model``: a pure ``functional_forward``,
    CPU tensors, and leaf tensors (parameters, a Meta-SGD ``inner_lr``) to put gradients in."""
    if not hasattr(model, "functional_forward"):
        return False
    leaves = list(params.values()) + _lr_tensors(inner_lr)
    return all(t.device.type == "cpu" and (t.is_leaf or not t.requires_grad) for t in leaves)


def _lr_tensors(inner_lr: InnerLR) -> list[Tensor]:
    if isinstance(inner_lr, Tensor):
        return [inner_lr]
    if isinstance(inner_lr, Mapping):
        return [v for v in inner_lr.values() if isinstance(v, Tensor)]
    return []


def _lean_query(model: nn.Module) -> bool:
    from ..models.conv4 import BatchStatNorm2d  # the lean blocks need batch statistics
    features = getattr(model, "features", None)
    return features is not None and all(isinstance(block[1], BatchStatNorm2d) for block in features)


def task_parallel_meta_backward(model: nn.Module, params: Mapping[str, Tensor], support_x: Tensor,
                                support_y: Tensor, query_x: Tensor, query_y: Tensor, loss_fn: LossFn, *,
                                num_inner_steps: int, inner_lr: InnerLR, first_order: bool, workers: int,
                                metric_fn: Callable[[Tensor, Tensor], Tensor] | None = None
                                ) -> tuple[Tensor, Tensor | None]:
    """Accumulate ``grad L_meta`` into the ``.grad`` of ``params`` (and of a Meta-SGD ``inner_lr``).

    Tensors carry the task dimension ``B`` in front (a batched episode's). ``workers`` threads
    (at most ``B``); ``workers=1`` runs in the calling thread with its own thread settings.
    Returns the per-task query losses ``[B]`` (detached) and, with ``metric_fn``, the per-task
    metrics ``[B]``.
    """
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    num_tasks = support_x.shape[0]
    workers = min(workers, num_tasks)
    targets = [t for t in list(params.values()) + _lr_tensors(inner_lr) if t.requires_grad]
    lean = _lean_query(model)
    losses: list[Tensor | None] = [None] * num_tasks
    metrics: list[Tensor | None] = [None] * num_tasks
    partial: list[list[Tensor] | None] = [None] * workers
    errors: list[BaseException] = []

    def run(worker: int) -> None:
        try:
            if workers > 1:
                torch.set_num_threads(1)  # per thread: this worker's ops use one core
            total: list[Tensor] | None = None
            with torch.enable_grad():
                for i in range(worker, num_tasks, workers):
                    adapted = inner_loop(model, params, support_x[i], support_y[i], loss_fn,
                                         num_inner_steps=num_inner_steps, inner_lr=inner_lr,
                                         first_order=first_order, forward=model.functional_forward).params
                    prediction = model.functional_forward(adapted, query_x[i], lean=lean)
                    loss = loss_fn(prediction, query_y[i])
                    grads = torch.autograd.grad(loss / num_tasks, targets, allow_unused=True)
                    grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, targets)]
                    total = grads if total is None else [a.add_(g) for a, g in zip(total, grads)]
                    losses[i] = loss.detach()
                    if metric_fn is not None:
                        metrics[i] = metric_fn(prediction.detach(), query_y[i])
            partial[worker] = total
        except BaseException as error:  # re-raised in the calling thread
            errors.append(error)

    if workers == 1:
        run(0)
    else:
        # torch.set_num_threads is per thread for OpenMP, but it also stores a process-wide
        # default (which threads that start later, or have not run a parallel op yet, take up)
        # and MKL's global count: both are put back once the workers are done.
        threads_before = torch.get_num_threads()
        threads = [threading.Thread(target=run, args=(w,), name=f"maml-task-worker-{w}") for w in range(workers)]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            torch.set_num_threads(threads_before)
    if errors:
        raise errors[0]
    with torch.no_grad():
        for k, target in enumerate(targets):
            summed = partial[0][k]
            for w in range(1, workers):
                summed = summed + partial[w][k]
            target.grad = summed if target.grad is None else target.grad + summed
    return torch.stack(losses), (torch.stack(metrics) if metric_fn is not None else None)
