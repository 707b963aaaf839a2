"""Model-agnostic meta-learning (Finn et al., 2017), first order and Meta-SGD (chapter 02).

Notation (the same in the notebook): parameters ``theta`` (a dict name -> tensor),
inner learning rate ``alpha`` (``inner_lr``), outer learning rate ``beta`` (``outer_lr``,
the optimiser's), support set ``S``, query set ``Q``.

Inner loop, for ``s = 0 .. num_inner_steps - 1``, starting at ``theta'_0 = theta``::

    theta'_{s+1} = theta'_s - alpha * grad_{theta'} L_S(theta'_s)

Outer loop (meta-objective over a batch of tasks ``T_i``)::

    L_meta(theta) = 1/B sum_i L_{Q_i}(theta'_i(theta)),   theta <- theta - beta * grad L_meta

*Second order* differentiates through the inner gradient (``create_graph=True``);
*first order* (FOMAML) treats ``grad L_S`` as a constant. *Meta-SGD* (Li et al., 2017)
learns ``alpha`` per parameter entry.

``inner_lr`` means ``alpha`` everywhere (``inner_lr.py``): a float, or for Meta-SGD a dict
parameter name -> tensor; ``MAML.inner_lr`` is that value, an attribute (the learned tensors
are stored in ``MAML.inner_lrs``). ``accuracy`` is the package's one accuracy
(``metrics.py``), re-exported here.

Two implementations of the outer step share these equations:

- ``strategy="loop"``: a per-task Python loop with ``torch.autograd.grad`` (the readable
  reference, and the faster one for conv nets on CPU);
- ``strategy="vmap"``: ``torch.func.grad`` inside ``torch.vmap`` over tasks (several times
  faster for small MLPs).

``strategy="auto"`` picks per model (see ``choose_strategy``); ``tests/test_maml.py``
proves both give the same meta-gradients, second order, in float64.

Both build the whole meta-batch's graph before one ``.backward()``: for Conv-4 (32 tasks of
5-way 1-shot 15-query, second order) that peaked near 3.9 GB. ``meta_backward`` (used by
``MAML.meta_step`` and the Conv-4 training scripts) computes the same meta-gradient by
gradient accumulation: a few tasks at a time, ``(sum of their query losses / B).backward()``,
so memory no longer grows with the meta-batch; for models with a ``task_batched_forward``
(Conv-4) chunks of several tasks can run as one grouped convolution. ``tests/test_maml.py`` proves
it equal to the per-task reference to 1e-10 in float64 (second order, 1 and 5 steps).
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from ..tasks.episode import Episode, EpisodeError
from .inner_lr import InnerLR, as_inner_lr, check_inner_lr, lr_for
from .metrics import accuracy  # the one accuracy (``metrics.accuracy``); ``maml.accuracy`` stays an alias

__all__ = [
    "InnerLoopResult", "MetaLossResult", "MAML", "inner_loop", "functional_inner_loop",
    "meta_loss", "meta_backward", "choose_strategy", "accuracy", "functional_task_meta_grad",
    "compiled_task_meta_grad",
]

LossFn = Callable[[Tensor, Tensor], Tensor]
Params = dict[str, Tensor]


@dataclass
class InnerLoopResult:
    """What the inner loop returns.

    Attributes:
        params: the adapted parameters ``theta'`` (dict name -> tensor).
        losses: support losses ``L_S(theta'_s)``, detached, ``[num_inner_steps]`` (one per
            step, before its update), or ``[num_inner_steps + 1]`` with ``trace=True``
            (adding the loss after the last step).
        params_trace: with ``trace=True``, the detached ``theta'_s`` for
            ``s = 0 .. num_inner_steps`` (for widgets); else ``None``.
    """

    params: Params
    losses: Tensor
    params_trace: list[Params] | None = None


def inner_loop(model: nn.Module, params: Mapping[str, Tensor], support_x: Tensor, support_y: Tensor,
               loss_fn: LossFn, *, num_inner_steps: int = 1, inner_lr: InnerLR = 0.01,
               first_order: bool = False, trace: bool = False,
               forward: Callable[[Mapping[str, Tensor], Tensor], Tensor] | None = None) -> InnerLoopResult:
    """Adapt ``params`` to one task's support set with ``num_inner_steps`` gradient steps.

    ``theta'_{s+1} = theta'_s - alpha * grad L_S(theta'_s)``, with ``L_S`` =
    ``loss_fn(model(support_x; theta'_s), support_y)``.

    Args:
        model: evaluated with ``functional_call(model, params, (x,))``.
        params: ``theta``, dict name -> tensor (e.g. ``dict(model.named_parameters())``).
        support_x: ``[num_support, *x_shape]``; support_y: ``[num_support, *y_shape]``.
        inner_lr: ``alpha``: a float, a scalar tensor, or (Meta-SGD) a dict name -> tensor
            broadcastable to each parameter.
        first_order: treat the inner gradient as a constant (FOMAML); otherwise the
            graph through it is kept (``create_graph=True``) for second-order meta-gradients.
        trace: also record the support loss after the last step and every ``theta'_s``.
        forward: ``forward(params, x)`` in place of ``functional_call(model, params, (x,))``,
            e.g. ``Conv4.functional_forward`` (a pure function, safe in several threads).

    Works with or without grad mode (it enables grad for the inner gradients), so it can
    be used at evaluation time under ``torch.no_grad()``.
    """
    if not isinstance(num_inner_steps, int) or num_inner_steps < 0:
        raise ValueError(f"num_inner_steps must be an int >= 0, got {num_inner_steps!r}")
    if support_x.shape[0] != support_y.shape[0]:
        raise EpisodeError(f"support_x and support_y must have the same number of examples, "
                           f"got {list(support_x.shape)} and {list(support_y.shape)}")
    if forward is None:
        def forward(theta: Mapping[str, Tensor], x: Tensor) -> Tensor:
            return functional_call(model, theta, (x,))
    outer_grad = torch.is_grad_enabled()
    losses: list[Tensor] = []
    trace_params: list[Params] | None = [] if trace else None
    with torch.enable_grad():
        adapted: Params = {}
        for name, p in params.items():
            # Parameters that carry no graph (evaluation, a frozen copy) still need a gradient here.
            adapted[name] = p if p.requires_grad else p.detach().requires_grad_(True)
        for _ in range(num_inner_steps):
            if trace_params is not None:
                trace_params.append({k: v.detach().clone() for k, v in adapted.items()})
            loss = loss_fn(forward(adapted, support_x), support_y)
            losses.append(loss.detach())
            names = list(adapted)
            grads = torch.autograd.grad(loss, [adapted[k] for k in names],
                                        create_graph=outer_grad and not first_order, allow_unused=True)
            adapted = {
                k: adapted[k] if g is None else adapted[k] - lr_for(inner_lr, k) * g
                for k, g in zip(names, grads)
            }
        if trace:
            trace_params.append({k: v.detach().clone() for k, v in adapted.items()})
            with torch.no_grad():
                losses.append(loss_fn(forward(adapted, support_x), support_y).detach())
    if not outer_grad:
        adapted = {k: v.detach() for k, v in adapted.items()}
    loss_tensor = torch.stack(losses) if losses else torch.zeros(0)
    return InnerLoopResult(params=adapted, losses=loss_tensor, params_trace=trace_params)


def functional_inner_loop(model: nn.Module, params: Mapping[str, Tensor], support_x: Tensor, support_y: Tensor,
                          loss_fn: LossFn, *, num_inner_steps: int = 1, inner_lr: InnerLR = 0.01,
                          first_order: bool = False) -> Params:
    """The same inner loop written with ``torch.func.grad``, so it runs inside ``vmap``.

    Same equation and arguments as ``inner_loop``; returns only the adapted parameters.
    """
    def support_loss(theta: Params) -> Tensor:
        return loss_fn(functional_call(model, theta, (support_x,)), support_y)

    adapted = dict(params)
    for _ in range(num_inner_steps):
        grads = torch.func.grad(support_loss)(adapted)
        if first_order:
            grads = {k: g.detach() for k, g in grads.items()}
        adapted = {k: adapted[k] - lr_for(inner_lr, k) * grads[k] for k in adapted}
    return adapted


def choose_strategy(model: nn.Module, first_order: bool = False, device: torch.device | str = "cpu") -> tuple[str, str]:
    """Pick ``"vmap"`` or ``"loop"`` for the outer step, with the reason.

    Measured on a 2-core CPU (``bench/maml_speed.py``): for small MLPs ``vmap`` is several
    times faster than the loop; for Conv-4 it was slower (about 0.5x) and its first meta-step
    peaked higher (4.6 vs 3.6 GB for 32 tasks of 5-way 1-shot 15-query), so conv nets use the
    loop on CPU. Built-in norm layers (``nn.BatchNorm*``,
    ``nn.LayerNorm``, ``nn.InstanceNorm*``) give wrong second-order gradients under ``vmap``
    in torch 2.13, so they force the loop unless ``first_order``.
    """
    has_conv = any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules())
    unsafe_norm = any(isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm,
                                     nn.modules.instancenorm._InstanceNorm)) for m in model.modules())
    if unsafe_norm and not first_order:
        return "loop", "built-in norm layers give wrong second-order gradients under vmap (torch 2.13)"
    if has_conv and torch.device(device).type == "cpu":
        return "loop", "conv net on CPU: vmap over tasks was slower and used far more memory"
    return "vmap", "small dense model: vmap over tasks is several times faster than the loop"


@dataclass
class MetaLossResult:
    """The outer objective for a batch of tasks.

    Attributes:
        loss: ``L_meta = 1/B sum_i L_{Q_i}(theta'_i)``, a scalar with a graph to ``theta``.
        query_losses: per-task ``L_{Q_i}(theta'_i)``, detached, ``[B]``.
        query_metric: per-task metric on the query set (e.g. accuracy), detached, ``[B]``,
            or ``None`` without a ``metric_fn``.
        strategy: ``"loop"`` or ``"vmap"``, the implementation that ran.
    """

    loss: Tensor
    query_losses: Tensor
    query_metric: Tensor | None = None
    strategy: str = "loop"
    extras: dict = field(default_factory=dict)


def meta_loss(model: nn.Module, params: Mapping[str, Tensor], episode: Episode, loss_fn: LossFn, *,
              num_inner_steps: int = 1, inner_lr: InnerLR = 0.01, first_order: bool = False,
              strategy: str = "auto", metric_fn: Callable[[Tensor, Tensor], Tensor] | None = None) -> MetaLossResult:
    """MAML's outer objective on a batched episode (leading task dimension ``B``).

    Args:
        episode: batched, ``support_x [B, n_s, *x_shape]`` etc.
        strategy: ``"loop"``, ``"vmap"`` or ``"auto"`` (``choose_strategy``).
        metric_fn: optional ``metric_fn(query_predictions, query_y)`` recorded per task.

    ``result.loss.backward()`` gives the meta-gradient in ``params``' ``.grad``.
    """
    if not isinstance(episode, Episode) or not episode.batched:
        raise EpisodeError("meta_loss needs a batched Episode (leading task dimension B); "
                           "use Episode.stack([...]) or a sampler's sample_batch()")
    if strategy == "auto":
        strategy, _ = choose_strategy(model, first_order, episode.support_x.device)
    if strategy == "loop":
        losses, metrics = [], []
        for task in episode:
            adapted = inner_loop(model, params, task.support_x, task.support_y, loss_fn,
                                 num_inner_steps=num_inner_steps, inner_lr=inner_lr, first_order=first_order).params
            predictions = functional_call(model, adapted, (task.query_x,))
            losses.append(loss_fn(predictions, task.query_y))
            if metric_fn is not None:
                metrics.append(metric_fn(predictions.detach(), task.query_y))
        query_losses = torch.stack(losses)
        query_metric = torch.stack(metrics) if metric_fn is not None else None
    elif strategy == "vmap":
        def task_loss(theta: Params, sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor):
            adapted = functional_inner_loop(model, theta, sx, sy, loss_fn, num_inner_steps=num_inner_steps,
                                            inner_lr=inner_lr, first_order=first_order)
            predictions = functional_call(model, adapted, (qx,))
            metric = metric_fn(predictions, qy) if metric_fn is not None else predictions.new_zeros(())
            return loss_fn(predictions, qy), metric

        query_losses, metric_values = torch.vmap(task_loss, in_dims=(None, 0, 0, 0, 0))(dict(params), *episode.tensors())
        query_metric = metric_values.detach() if metric_fn is not None else None
    else:
        raise ValueError(f"strategy must be 'auto', 'loop' or 'vmap', got {strategy!r}")
    return MetaLossResult(loss=query_losses.mean(), query_losses=query_losses.detach(),
                          query_metric=query_metric, strategy=strategy)


def _stack_inner_lr(inner_lr: InnerLR) -> InnerLR:
    """Meta-SGD's per-parameter ``alpha`` broadcast over a leading task dimension."""
    if isinstance(inner_lr, Mapping):
        return {k: v.unsqueeze(0) if isinstance(v, Tensor) and v.dim() > 0 else v for k, v in inner_lr.items()}
    return inner_lr


def _task_batched_query_losses(model: nn.Module, params: Mapping[str, Tensor], support_x: Tensor, support_y: Tensor,
                               query_x: Tensor, query_y: Tensor, loss_fn: LossFn, num_inner_steps: int,
                               inner_lr: InnerLR, first_order: bool) -> tuple[Tensor, Tensor]:
    """MAML for ``T`` tasks at once through ``model.task_batched_forward``: returns the per-task
    query losses ``[T]`` (with a graph to ``params``) and the query predictions ``[T, n_q, ...]``.

    ``theta`` is copied per task (``[T, *shape]``); the sum of the tasks' support losses has,
    with respect to task ``i``'s copy, exactly task ``i``'s gradient (the tasks share no
    computation), so one backward gives every task's inner gradient."""
    tasks = support_x.shape[0]
    names = list(params)
    adapted = {k: params[k].unsqueeze(0).expand(tasks, *params[k].shape).contiguous() for k in names}
    alpha = _stack_inner_lr(inner_lr)

    for _ in range(num_inner_steps):
        per_task = _per_task_loss(loss_fn, model.task_batched_forward(adapted, support_x), support_y)
        grads = torch.autograd.grad(per_task.sum(), [adapted[k] for k in names], create_graph=not first_order,
                                    allow_unused=True)
        adapted = {k: adapted[k] if g is None else adapted[k] - lr_for(alpha, k) * g for k, g in zip(names, grads)}
    predictions = model.task_batched_forward(adapted, query_x)
    return _per_task_loss(loss_fn, predictions, query_y), predictions


def _per_task_loss(loss_fn: LossFn, predictions: Tensor, targets: Tensor) -> Tensor:
    """``[loss_fn(predictions[i], targets[i]) for i]``, ``[T]``; one call for cross-entropy and MSE
    (their default reduction is the mean over a task's examples)."""
    tasks, n = predictions.shape[:2]
    if loss_fn is F.cross_entropy and targets.dim() == 2:
        flat = F.cross_entropy(predictions.reshape(tasks * n, *predictions.shape[2:]), targets.reshape(tasks * n),
                               reduction="none")
        return flat.reshape(tasks, n).mean(dim=1)
    if loss_fn is F.mse_loss and targets.shape == predictions.shape:
        return F.mse_loss(predictions, targets, reduction="none").reshape(tasks, -1).mean(dim=1)
    return torch.stack([loss_fn(predictions[i], targets[i]) for i in range(tasks)])


def meta_backward(model: nn.Module, params: Mapping[str, Tensor], episode: Episode, loss_fn: LossFn, *,
                  num_inner_steps: int = 1, inner_lr: InnerLR = 0.01, first_order: bool = False,
                  metric_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
                  tasks_per_chunk: int | None = None, batched: bool | None = None,
                  compile: bool | str = False, workers: int | None = None) -> MetaLossResult:
    """The meta-gradient of ``meta_loss``, accumulated into ``params``' ``.grad`` chunk by chunk.

    For each chunk of ``tasks_per_chunk`` tasks: the inner loop, the query losses, and
    ``(sum of the chunk's query losses / B).backward()``. The sum over chunks is
    ``grad L_meta = 1/B sum_i grad L_{Q_i}(theta'_i)``, the same as
    ``meta_loss(...).loss.backward()``, but only one chunk's graph is alive at a time.

    If ``model`` has ``task_batched_forward(params, x)`` (``Conv4``) and ``tasks_per_chunk > 1``,
    a chunk runs as one batched computation (grouped convolutions, per-task batch norm;
    ``batched=True`` forces it): on Conv-4 grouping 4 tasks ran at 1.05x a learn2learn-style
    loop's speed with 2.6x its memory. With ``batched=False``, or for models without
    ``functional_forward``, tasks run one by one with ``inner_loop`` and ``functional_call``
    (the readable reference, 0.8x the loop's memory).

    ``compile=True`` runs each task's whole meta-gradient (inner loop, query loss, the
    gradient of that loss through the inner loop) as one ``torch.compile``-d
    ``torch.func.grad`` function (``compiled_task_meta_grad``), task by task; the first call
    for a model and set of shapes compiles (minutes on a busy 2-core CPU), later calls reuse
    it. On Conv-4 (1 inner step, 2 threads, busy machine, ``bench/maml_speed.py``) it ran at
    1.1-1.2x a learn2learn-style loop's speed with 0.58x its memory; the convolutions (~40%
    of the time) stay as they are. It needs a float ``inner_lr`` (not Meta-SGD) and leaf
    ``params``. A string names the
    ``torch.compile`` backend (default ``"inductor"``; ``"aot_eager"`` traces without code
    generation, ``"eager"`` runs the ``torch.func`` function uncompiled).

    For models with a pure ``functional_forward`` (``Conv4``) on the CPU, the default path is
    ``maml_parallel.task_parallel_meta_backward``: ``workers`` threads (default
    ``torch.get_num_threads()``, at most ``B``; 1 runs in the calling thread) meta-learn tasks
    side by side with one intra-op thread each, and the query pass, differentiated only once,
    runs as lean channels-last blocks (``fast_ops.lean_block``). On Conv-4 (meta-batch 32,
    5-way 1-shot, 2 threads, ``bench/maml_speed.py``, variant ``parallel``) it ran 1.5-1.9x a
    learn2learn-style loop's speed at the same peak memory. It is deterministic for a given
    number of workers and equal to the per-task reference up to float rounding (float64:
    ~1e-14). ``batched=False`` (without ``workers``) runs the readable task-by-task loop
    instead (``inner_loop`` and ``functional_call``).

    Returns a ``MetaLossResult`` whose ``loss`` is detached (the backward is already done;
    ``strategy`` is ``"accumulate"``, ``"accumulate-grouped"``, ``"accumulate-parallel"`` or
    ``"accumulate-compiled"``). ``params`` must reach leaf
    tensors that require grad (e.g. ``dict(model.named_parameters())``); gradients add to
    whatever ``.grad`` holds, so zero them first.
    """
    if not isinstance(episode, Episode) or not episode.batched:
        raise EpisodeError("meta_backward needs a batched Episode (leading task dimension B); "
                           "use Episode.stack([...]) or a sampler's sample_batch()")
    if not isinstance(num_inner_steps, int) or num_inner_steps < 0:
        raise ValueError(f"num_inner_steps must be an int >= 0, got {num_inner_steps!r}")
    chunk = 1 if tasks_per_chunk is None else tasks_per_chunk
    if not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"tasks_per_chunk must be an int >= 1, got {tasks_per_chunk!r}")
    if not any(p.requires_grad for p in params.values()):
        raise ValueError("meta_backward needs params that require grad (e.g. dict(model.named_parameters()))")
    support_x, support_y, query_x, query_y = episode.tensors()
    num_tasks = support_x.shape[0]
    grouped = (hasattr(model, "task_batched_forward") and chunk > 1) if batched is None else batched
    if grouped and not hasattr(model, "task_batched_forward"):
        raise ValueError(f"batched=True needs a model with task_batched_forward (e.g. Conv4), got {type(model).__name__}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be an int >= 1 or None, got {workers!r}")
    if not compile and not grouped:
        from .maml_parallel import supports_task_parallel, task_parallel_meta_backward
        supported = supports_task_parallel(model, params, inner_lr)
        if workers is not None and workers > 1 and not supported:
            raise ValueError(f"workers={workers} needs a model with functional_forward (e.g. Conv4) on the CPU and leaf "
                             f"params, got {type(model).__name__}; use workers=1")
        if supported and (workers is not None or batched is None):
            workers = min(workers or torch.get_num_threads(), num_tasks)
            query_losses, metric = task_parallel_meta_backward(
                model, params, support_x, support_y, query_x, query_y, loss_fn, num_inner_steps=num_inner_steps,
                inner_lr=inner_lr, first_order=first_order, workers=workers, metric_fn=metric_fn)
            return MetaLossResult(loss=query_losses.mean(), query_losses=query_losses, query_metric=metric,
                                  strategy="accumulate-parallel", extras={"backward_done": True, "workers": workers})
    if compile:
        return _compiled_meta_backward(model, params, support_x, support_y, query_x, query_y, loss_fn,
                                       num_inner_steps, inner_lr, first_order, metric_fn,
                                       compile if isinstance(compile, str) else "inductor")
    losses, metrics = [], []
    with torch.enable_grad():
        for start in range(0, num_tasks, chunk):
            part = slice(start, min(start + chunk, num_tasks))
            if grouped:
                query_losses, predictions = _task_batched_query_losses(
                    model, params, support_x[part], support_y[part], query_x[part], query_y[part], loss_fn,
                    num_inner_steps, inner_lr, first_order)
                predictions = list(predictions.detach())
            else:
                task_losses, predictions = [], []
                for i in range(part.start, part.stop):
                    adapted = inner_loop(model, params, support_x[i], support_y[i], loss_fn,
                                         num_inner_steps=num_inner_steps, inner_lr=inner_lr,
                                         first_order=first_order).params
                    prediction = functional_call(model, adapted, (query_x[i],))
                    task_losses.append(loss_fn(prediction, query_y[i]))
                    predictions.append(prediction.detach())
                query_losses = torch.stack(task_losses)
            (query_losses.sum() / num_tasks).backward()
            losses.append(query_losses.detach())
            if metric_fn is not None:
                metrics.extend(metric_fn(p, query_y[i]) for p, i in zip(predictions, range(part.start, part.stop)))
    query_losses = torch.cat(losses)
    return MetaLossResult(loss=query_losses.mean(), query_losses=query_losses,
                          query_metric=torch.stack(metrics) if metric_fn is not None else None,
                          strategy="accumulate-grouped" if grouped else "accumulate",
                          extras={"backward_done": True, "tasks_per_chunk": chunk})


def functional_task_meta_grad(model: nn.Module, loss_fn: LossFn, num_inner_steps: int, inner_lr: float,
                              first_order: bool = False) -> Callable:
    """One task's meta-gradient as a pure function (``torch.func``, no ``.backward()``).

    Returns ``f(theta, support_x, support_y, query_x, query_y) -> (grads, (query_loss, predictions))``
    with ``grads = grad_theta L_Q(theta'(theta))``, ``theta'`` from ``num_inner_steps`` steps of
    ``theta' <- theta' - alpha * grad L_S(theta')`` (``first_order``: the inner gradients
    are constants). A pure function of tensors is what ``torch.compile`` can trace whole,
    the second-order terms included (``compiled_task_meta_grad``).
    """
    def support_loss(theta: Params, support_x: Tensor, support_y: Tensor) -> Tensor:
        return loss_fn(functional_call(model, theta, (support_x,)), support_y)

    def task_loss(theta: Params, support_x: Tensor, support_y: Tensor, query_x: Tensor, query_y: Tensor):
        adapted = theta
        for _ in range(num_inner_steps):
            grads = torch.func.grad(support_loss)(adapted, support_x, support_y)
            if first_order:
                grads = {k: g.detach() for k, g in grads.items()}
            adapted = {k: adapted[k] - inner_lr * grads[k] for k in adapted}
        predictions = functional_call(model, adapted, (query_x,))
        loss = loss_fn(predictions, query_y)
        return loss, (loss, predictions)

    return torch.func.grad(task_loss, has_aux=True)


_COMPILED: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


def compiled_task_meta_grad(model: nn.Module, loss_fn: LossFn, num_inner_steps: int, inner_lr: float,
                            first_order: bool = False, backend: str = "inductor") -> Callable:
    """``functional_task_meta_grad`` through ``torch.compile`` (cached per model and settings).

    Inductor fuses the elementwise work of the batch norms, pools, ReLUs and inner updates
    (forward, backward and the double backward) into a few loops; the convolutions stay
    oneDNN calls. ``backend="aot_eager"`` traces the same graph without generating code
    (the tests use it to check the traced graph quickly); ``backend="eager"`` returns the
    ``torch.func`` function uncompiled.
    """
    key = (loss_fn, num_inner_steps, float(inner_lr), bool(first_order), backend)
    per_model = _COMPILED.setdefault(model, {})
    if key not in per_model and backend == "eager":
        per_model[key] = functional_task_meta_grad(model, loss_fn, num_inner_steps, float(inner_lr), first_order)
    if key not in per_model:
        per_model[key] = torch.compile(functional_task_meta_grad(model, loss_fn, num_inner_steps, float(inner_lr),
                                                                 first_order), backend=backend, dynamic=False)
    return per_model[key]


def _compiled_meta_backward(model, params, support_x, support_y, query_x, query_y, loss_fn, num_inner_steps,
                            inner_lr, first_order, metric_fn, backend: str = "inductor") -> MetaLossResult:
    if isinstance(inner_lr, Mapping) or (isinstance(inner_lr, Tensor) and inner_lr.requires_grad):
        raise ValueError("meta_backward(compile=True) needs a float inner_lr (Meta-SGD's learned alpha is not "
                         "supported); use compile=False")
    if any(not p.is_leaf for p in params.values()):
        raise ValueError("meta_backward(compile=True) needs leaf params (e.g. dict(model.named_parameters()))")
    fn = compiled_task_meta_grad(model, loss_fn, num_inner_steps, float(inner_lr), first_order, backend)
    theta = {k: v.detach() for k, v in params.items()}
    num_tasks = support_x.shape[0]
    total = {k: torch.zeros_like(v) for k, v in theta.items()}
    losses, metrics = [], []
    for i in range(num_tasks):
        grads, (loss, predictions) = fn(theta, support_x[i], support_y[i], query_x[i], query_y[i])
        for k, g in grads.items():
            total[k] += g
        losses.append(loss.detach())
        if metric_fn is not None:
            metrics.append(metric_fn(predictions.detach(), query_y[i]))
    for k, p in params.items():
        if p.requires_grad:
            g = total[k] / num_tasks
            p.grad = g if p.grad is None else p.grad + g
    query_losses = torch.stack(losses)
    return MetaLossResult(loss=query_losses.mean(), query_losses=query_losses,
                          query_metric=torch.stack(metrics) if metric_fn is not None else None,
                          strategy="accumulate-compiled", extras={"backward_done": True, "tasks_per_chunk": 1})


class MAML(nn.Module):
    """MAML around a model: holds ``theta`` (the model's parameters) and, for Meta-SGD, ``alpha``.

    Args:
        model: any module; its parameters are ``theta``.
        loss_fn: e.g. ``F.mse_loss`` (regression) or ``F.cross_entropy`` (classification).
        inner_lr: ``alpha``, a float > 0 (the initial value of every entry when learned);
            afterwards ``maml.inner_lr`` is the value the inner step uses.
        num_inner_steps: inner steps during meta-training (``adapt`` may use more).
        first_order: FOMAML.
        learn_inner_lr: Meta-SGD: a learned ``alpha`` per parameter entry, trained by the
            outer optimiser alongside ``theta`` (they are in ``self.parameters()``).
        strategy: ``"auto"``, ``"loop"`` or ``"vmap"`` for the outer step.

    Example::

        maml = MAML(MLP(1, (40, 40), 1), F.mse_loss, inner_lr=0.01, num_inner_steps=1)
        opt = torch.optim.Adam(maml.parameters(), lr=1e-3)       # beta, the outer learning rate
        result = maml.meta_loss(batch)                           # batch: batched Episode
        opt.zero_grad(); result.loss.backward(); opt.step()
        adapted = maml.adapt(task.support_x, task.support_y, num_inner_steps=10).params
        predictions = maml(task.query_x, adapted)
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, inner_lr: float = 0.01, num_inner_steps: int = 1,
                 first_order: bool = False, learn_inner_lr: bool = False, strategy: str = "auto",
                 metric_fn: Callable[[Tensor, Tensor], Tensor] | None = None):
        super().__init__()
        inner_lr = check_inner_lr(inner_lr)
        if strategy not in ("auto", "loop", "vmap"):
            raise ValueError(f"strategy must be 'auto', 'loop' or 'vmap', got {strategy!r}")
        self.model = model
        self.loss_fn = loss_fn
        self.num_inner_steps = num_inner_steps
        self.first_order = first_order
        self.strategy = strategy
        self.metric_fn = metric_fn
        self.learn_inner_lr = learn_inner_lr
        self._inner_lr = inner_lr
        if learn_inner_lr:
            # ParameterDict keys may not contain '.', so "layers.0.weight" is stored as "layers:0:weight".
            self.inner_lrs = nn.ParameterDict({
                name.replace(".", ":"): nn.Parameter(torch.full_like(p, float(inner_lr)))
                for name, p in model.named_parameters()
            })
        else:
            self.inner_lrs = None

    def params(self) -> Params:
        """``theta``: the model's parameters, name -> tensor."""
        return dict(self.model.named_parameters())

    @property
    def inner_lr(self) -> InnerLR:
        """``alpha``, the value(s) the inner step uses: the float given, or (Meta-SGD) a dict
        parameter name -> learned tensor (the entries of ``inner_lrs``, with their graph).

        Same meaning as ``Reptile.inner_lr`` and ``MAMLStudent.inner_lr`` (see ``inner_lr.py``).
        ``maml.inner_lr()``, the older method form, still returns the same value.
        """
        return as_inner_lr(self._alpha())

    @inner_lr.setter
    def inner_lr(self, value: float) -> None:
        if self.inner_lrs is not None:
            raise ValueError("this MAML learns its inner_lr (learn_inner_lr=True): change the tensors "
                             "in maml.inner_lrs instead")
        self._inner_lr = check_inner_lr(value)

    def _alpha(self) -> InnerLR:
        """``inner_lr`` as a plain float or dict (what the inner loop is given)."""
        if self.inner_lrs is None:
            return self._inner_lr
        return {key.replace(":", "."): value for key, value in self.inner_lrs.items()}

    def forward(self, x: Tensor, params: Mapping[str, Tensor] | None = None) -> Tensor:
        """The model's prediction with ``params`` (default ``theta``)."""
        return functional_call(self.model, dict(params) if params is not None else self.params(), (x,))

    def adapt(self, support_x: Tensor, support_y: Tensor, num_inner_steps: int | None = None,
              inner_lr: InnerLR | None = None, first_order: bool | None = None, trace: bool = False) -> InnerLoopResult:
        """Run the inner loop from ``theta`` on one task's support set (see ``inner_loop``)."""
        return inner_loop(self.model, self.params(), support_x, support_y, self.loss_fn,
                          num_inner_steps=self.num_inner_steps if num_inner_steps is None else num_inner_steps,
                          inner_lr=self._alpha() if inner_lr is None else inner_lr,
                          first_order=self.first_order if first_order is None else first_order, trace=trace)

    def meta_loss(self, episode: Episode) -> MetaLossResult:
        """The outer objective on a batched episode (see ``meta_loss``)."""
        return meta_loss(self.model, self.params(), episode, self.loss_fn, num_inner_steps=self.num_inner_steps,
                         inner_lr=self._alpha(), first_order=self.first_order, strategy=self.strategy,
                         metric_fn=self.metric_fn)

    def meta_step(self, episode: Episode, tasks_per_chunk: int | None = None,
                  compile: bool | str = False, workers: int | None = None) -> MetaLossResult:
        """The meta-gradient on a batched episode, accumulated into ``.grad`` (the fast path).

        With ``strategy="auto"``: models for which ``choose_strategy`` picks ``"vmap"`` (small
        MLPs) run ``meta_loss(...).loss.backward()`` under ``vmap``; the others (conv nets,
        norm layers) run ``meta_backward``, chunk by chunk. ``strategy="loop"``/``"vmap"``
        run ``meta_loss`` with that strategy, then ``.backward()``. Zero the gradients first::

            opt.zero_grad(); result = maml.meta_step(batch); opt.step()

        The returned ``loss`` is detached; ``meta_train`` accepts such a step function.
        ``compile=True`` (conv nets, float ``inner_lr``) runs each task's meta-gradient as one
        ``torch.compile``-d function (see ``meta_backward``): faster once compiled, but the
        first call compiles for minutes. ``workers`` (default: ``torch.get_num_threads()``
        for Conv-4) runs tasks side by side in threads (see ``meta_backward``).
        """
        strategy = self.strategy
        if strategy == "auto":
            strategy, _ = choose_strategy(self.model, self.first_order, episode.support_x.device)
            strategy = "vmap" if strategy == "vmap" else "accumulate"
        if strategy == "accumulate":
            return meta_backward(self.model, self.params(), episode, self.loss_fn, num_inner_steps=self.num_inner_steps,
                                 inner_lr=self._alpha(), first_order=self.first_order, metric_fn=self.metric_fn,
                                 tasks_per_chunk=tasks_per_chunk, compile=compile, workers=workers)
        result = self.meta_loss(episode)
        result.loss.backward()
        result.loss = result.loss.detach()
        result.extras["backward_done"] = True
        return result

    def chosen_strategy(self, device: torch.device | str = "cpu") -> tuple[str, str]:
        """The strategy ``meta_loss`` will use on ``device``, and why."""
        if self.strategy != "auto":
            return self.strategy, "set explicitly"
        return choose_strategy(self.model, self.first_order, device)
