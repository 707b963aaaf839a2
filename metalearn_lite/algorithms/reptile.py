"""Reptile (Nichol, Achiam and Schulman, 2018): first-order meta-learning without a
support/query split (taught in chapter 07; it reuses chapter 02's ``inner_loop``).

Notation as in ``maml.py``: parameters ``theta`` (a dict name -> tensor), inner learning
rate ``alpha`` (``inner_lr``: the same name and type as in MAML, see ``inner_lr.py``; on
``Reptile`` an attribute holding the float), outer step size ``epsilon`` (``outer_lr``), and
``k = num_inner_steps``.

For each task ``T_i`` of a meta-batch of ``B`` tasks, run ``k`` steps of SGD on the
task's data ``D_i`` (support and query together: Reptile does not split them), starting
at ``theta``::

    phi_{i,0} = theta,   phi_{i,s+1} = phi_{i,s} - alpha * grad L_{D_{i,s}}(phi_{i,s}),   phi_i = phi_{i,k}

where ``D_{i,s}`` is all of ``D_i`` (``inner_batch_size=None``) or its ``s``-th minibatch.
Then move ``theta`` towards the adapted parameters::

    theta <- theta + epsilon * 1/B sum_i (phi_i - theta)

The *meta-gradient* ``g = theta - 1/B sum_i phi_i`` (``meta_grad``) drives any torch
optimiser: plain SGD with learning rate ``epsilon`` on ``g`` is exactly the update above.

With ``k = 1`` and full batches, ``g = alpha * 1/B sum_i grad L_{D_i}(theta)``: Reptile
is then joint training on all tasks' data. With ``k > 1`` the paper's Taylor expansion
(section 5) adds terms of order ``alpha^2`` that, like MAML's, favour parameters where a
task's gradients on different minibatches agree, i.e. from which a few SGD steps learn
the task. ``tests/test_reptile.py`` checks both statements numerically.

No gradient flows through the inner loop, so ``phi_i`` and ``g`` are plain (detached)
tensors.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from torch import Tensor, nn
from torch.func import functional_call

from ..reproducibility import make_generator
from ..tasks.episode import Episode, EpisodeError
from .inner_lr import InnerLR, as_inner_lr, check_inner_lr, lr_for
from .maml import InnerLoopResult, LossFn, Params, choose_strategy, inner_loop

__all__ = ["ReptileResult", "task_data", "reptile_adapt", "reptile_meta_gradient", "reptile_step", "Reptile"]


def task_data(episode: Episode) -> tuple[Tensor, Tensor]:
    """A task's whole data set ``D = S u Q``: support and query concatenated.

    ``[num_support + num_query, ...]`` for a single episode, ``[B, num_support + num_query, ...]``
    for a batched one.
    """
    dim = 1 if episode.batched else 0
    return (torch.cat([episode.support_x, episode.query_x], dim=dim),
            torch.cat([episode.support_y, episode.query_y], dim=dim))


def _generator(generator: int | torch.Generator | None) -> torch.Generator | None:
    """A seed or generator -> a generator; ``None`` stays ``None`` (torch's global RNG), so a
    training loop that passes nothing gets a fresh minibatch order at every outer step."""
    return None if generator is None else make_generator(generator)


def _minibatches(num_examples: int, batch_size: int, num_batches: int,
                 generator: torch.Generator | None) -> list[Tensor]:
    """``num_batches`` index sets of ``batch_size``: consecutive chunks of ``torch.randperm(num_examples)``,
    with a fresh permutation whenever fewer than ``batch_size`` indices are left."""
    batches: list[Tensor] = []
    order = torch.randperm(num_examples, generator=generator)
    start = 0
    while len(batches) < num_batches:
        if start + batch_size > num_examples:
            order, start = torch.randperm(num_examples, generator=generator), 0
        batches.append(order[start:start + batch_size])
        start += batch_size
    return batches


def reptile_adapt(model: nn.Module, params: Mapping[str, Tensor], task_x: Tensor, task_y: Tensor, loss_fn: LossFn, *,
                  num_inner_steps: int = 5, inner_lr: InnerLR = 0.01, inner_batch_size: int | None = None,
                  generator: int | torch.Generator | None = None) -> InnerLoopResult:
    """``phi = phi_k``: ``num_inner_steps`` SGD steps from ``params`` on one task's data.

    Args:
        task_x: ``[n, *x_shape]``; task_y: ``[n, *y_shape]`` (one task, e.g. ``task_data(episode)``).
        inner_batch_size: ``None`` for full-batch steps; else each step uses the next
            ``inner_batch_size`` examples of a random permutation drawn from ``generator`` (a seed
            or generator; ``None``: torch's global RNG, fresh at every call)
            (reshuffled when fewer are left).

    Returns an ``InnerLoopResult`` whose ``params`` are detached and whose ``losses``
    ``[num_inner_steps]`` are ``L_{D_s}(phi_s)`` before each step (``losses[0]`` is at ``theta``
    for full batches).
    """
    if task_x.shape[0] != task_y.shape[0]:
        raise EpisodeError(f"task_x and task_y must have the same number of examples, "
                           f"got {list(task_x.shape)} and {list(task_y.shape)}")
    with torch.no_grad():  # inner_loop then detaches phi: no graph through the inner loop
        if inner_batch_size is None:
            return inner_loop(model, params, task_x, task_y, loss_fn, num_inner_steps=num_inner_steps,
                              inner_lr=inner_lr, first_order=True)
        n = task_x.shape[0]
        if not isinstance(inner_batch_size, int) or not 1 <= inner_batch_size <= n:
            raise ValueError(f"inner_batch_size must be an int in 1..{n} (the task's examples), "
                             f"got {inner_batch_size!r}")
        if not isinstance(num_inner_steps, int) or num_inner_steps < 0:
            raise ValueError(f"num_inner_steps must be an int >= 0, got {num_inner_steps!r}")
        phi = {k: v.detach() for k, v in params.items()}
        losses = []
        for idx in _minibatches(n, inner_batch_size, num_inner_steps, _generator(generator)):
            step = inner_loop(model, phi, task_x[idx], task_y[idx], loss_fn, num_inner_steps=1,
                              inner_lr=inner_lr, first_order=True)
            phi = step.params
            losses.append(step.losses[0])
        return InnerLoopResult(params=phi, losses=torch.stack(losses) if losses else torch.zeros(0))


@dataclass
class ReptileResult:
    """One Reptile outer step on a meta-batch of ``B`` tasks.

    Attributes:
        meta_grad: ``g = theta - 1/B sum_i phi_i``, name -> tensor (detached).
        losses: inner-loop losses ``L_{D_{i,s}}(phi_{i,s})``, detached, ``[B, num_inner_steps]``;
            with full batches ``losses[:, 0]`` is each task's loss at ``theta``.
        params: ``theta + epsilon * 1/B sum_i (phi_i - theta) = theta - epsilon * g`` (detached),
            from ``reptile_step``; ``None`` from ``reptile_meta_gradient``.
    """

    meta_grad: Params
    losses: Tensor
    params: Params | None = None


def _check_tasks(task_x: Tensor, task_y: Tensor) -> None:
    if task_x.dim() < 2 or task_y.dim() < 2 or task_x.shape[:2] != task_y.shape[:2]:
        raise EpisodeError(f"task_x must be [B, n, *x_shape] and task_y [B, n, *y_shape] with the same B and n, "
                           f"got {list(task_x.shape)} and {list(task_y.shape)}")


def _vmapped_full_batch_sgd(model: nn.Module, theta: Params, task_x: Tensor, task_y: Tensor, loss_fn: LossFn,
                            num_inner_steps: int, inner_lr: InnerLR) -> tuple[Params, Tensor]:
    """All tasks' full-batch SGD at once with ``torch.func``: ``phi`` (name -> ``[B, ...]``) and
    the losses ``[B, num_inner_steps]`` before each step."""
    def one_task(x: Tensor, y: Tensor) -> tuple[Params, Tensor]:
        def loss_at(phi: Params) -> Tensor:
            return loss_fn(functional_call(model, phi, (x,)), y)

        phi, losses = dict(theta), []
        for _ in range(num_inner_steps):
            grads, loss = torch.func.grad_and_value(loss_at)(phi)
            losses.append(loss)
            phi = {k: phi[k] - lr_for(inner_lr, k) * grads[k] for k in phi}
        return phi, torch.stack(losses)

    return torch.func.vmap(one_task)(task_x, task_y)


def reptile_meta_gradient(model: nn.Module, params: Mapping[str, Tensor], task_x: Tensor, task_y: Tensor,
                          loss_fn: LossFn, *, num_inner_steps: int = 5, inner_lr: InnerLR = 0.01,
                          inner_batch_size: int | None = None, generator: int | torch.Generator | None = None,
                          strategy: str = "auto") -> ReptileResult:
    """``g = theta - 1/B sum_i phi_i`` over a meta-batch (``params`` is ``theta``; unchanged).

    Args:
        task_x: ``[B, n, *x_shape]``; task_y: ``[B, n, *y_shape]`` (e.g. ``task_data(batched_episode)``).
        strategy: ``"loop"`` adapts task after task; ``"vmap"`` adapts all tasks at once with
            ``torch.func`` (full batches only; same numbers, several times faster for small dense
            models); ``"auto"`` picks as MAML does (``choose_strategy``), the loop for minibatches.
        Others as in ``reptile_adapt``; one ``generator`` draws every task's minibatches in turn.
    """
    _check_tasks(task_x, task_y)
    if strategy not in ("auto", "loop", "vmap"):
        raise ValueError(f"strategy must be 'auto', 'loop' or 'vmap', got {strategy!r}")
    if strategy == "vmap" and inner_batch_size is not None:
        raise ValueError("strategy='vmap' needs full-batch inner steps (inner_batch_size=None)")
    if strategy == "auto":
        strategy = "vmap" if inner_batch_size is None and choose_strategy(model, first_order=True)[0] == "vmap" else "loop"
    theta = {k: v.detach() for k, v in params.items()}
    if strategy == "vmap":
        phi, losses = _vmapped_full_batch_sgd(model, theta, task_x, task_y, loss_fn, num_inner_steps, inner_lr)
        return ReptileResult(meta_grad={k: theta[k] - phi[k].detach().mean(0) for k in theta}, losses=losses.detach())
    gen = _generator(generator)
    mean_phi = {k: torch.zeros_like(v) for k, v in theta.items()}
    losses = []
    for x, y in zip(task_x, task_y):
        result = reptile_adapt(model, theta, x, y, loss_fn, num_inner_steps=num_inner_steps, inner_lr=inner_lr,
                               inner_batch_size=inner_batch_size, generator=gen)
        for k in mean_phi:
            mean_phi[k] += result.params[k] / task_x.shape[0]
        losses.append(result.losses)
    meta_grad = {k: theta[k] - mean_phi[k] for k in theta}
    return ReptileResult(meta_grad=meta_grad, losses=torch.stack(losses))


def reptile_step(model: nn.Module, params: Mapping[str, Tensor], task_x: Tensor, task_y: Tensor, loss_fn: LossFn, *,
                 num_inner_steps: int = 5, inner_lr: InnerLR = 0.01, outer_lr: float = 0.1,
                 inner_batch_size: int | None = None, generator: int | torch.Generator | None = None) -> ReptileResult:
    """One outer step ``theta <- theta + epsilon * 1/B sum_i (phi_i - theta)``; returns the new ``theta``
    in ``result.params`` (``params`` itself is not modified). ``outer_lr`` is ``epsilon``."""
    result = reptile_meta_gradient(model, params, task_x, task_y, loss_fn, num_inner_steps=num_inner_steps,
                                   inner_lr=inner_lr, inner_batch_size=inner_batch_size, generator=generator)
    result.params = {k: v.detach() - outer_lr * result.meta_grad[k] for k, v in params.items()}
    return result


class Reptile(nn.Module):
    """Reptile around a model, with the same shape of API as ``MAML``.

    Args:
        model: any module; its parameters are ``theta``.
        loss_fn: e.g. ``F.mse_loss`` or ``F.cross_entropy``.
        inner_lr: ``alpha``. num_inner_steps: ``k``. inner_batch_size: see ``reptile_adapt``.
        outer_lr: ``epsilon``, used by ``outer_step`` (an optimiser driven by ``meta_backward``
            has its own learning rate instead).
        strategy: ``"auto"``, ``"loop"`` or ``"vmap"`` (see ``reptile_meta_gradient``).

    Example::

        reptile = Reptile(MLP(1, (40, 40), 1), F.mse_loss, inner_lr=0.02, num_inner_steps=5)
        opt = torch.optim.SGD(reptile.parameters(), lr=0.1)       # epsilon; Adam works too
        opt.zero_grad(); reptile.meta_backward(batch); opt.step()  # batch: batched Episode
        # or, without an optimiser: reptile.outer_step(batch)
        adapted = reptile.adapt(task.support_x, task.support_y, num_inner_steps=10).params
        predictions = reptile(task.query_x, adapted)
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, inner_lr: float = 0.01, num_inner_steps: int = 5,
                 inner_batch_size: int | None = None, outer_lr: float = 0.1, strategy: str = "auto"):
        super().__init__()
        inner_lr = check_inner_lr(inner_lr)
        if not isinstance(num_inner_steps, int) or num_inner_steps < 1:
            raise ValueError(f"num_inner_steps must be an int >= 1, got {num_inner_steps!r}")
        self.model = model
        self.loss_fn = loss_fn
        self._inner_lr = inner_lr
        self.num_inner_steps = num_inner_steps
        self.inner_batch_size = inner_batch_size
        self.outer_lr = float(outer_lr)
        self.strategy = strategy

    @property
    def inner_lr(self) -> float:
        """``alpha``, the value the inner step uses (a float; settable). Same meaning as
        ``MAML.inner_lr`` (see ``inner_lr.py``); ``reptile.inner_lr()`` also returns it."""
        return as_inner_lr(self._inner_lr)

    @inner_lr.setter
    def inner_lr(self, value: float) -> None:
        self._inner_lr = check_inner_lr(value)

    def params(self) -> Params:
        """``theta``: the model's parameters, name -> tensor."""
        return dict(self.model.named_parameters())

    def forward(self, x: Tensor, params: Mapping[str, Tensor] | None = None) -> Tensor:
        """The model's prediction with ``params`` (default ``theta``)."""
        return functional_call(self.model, dict(params) if params is not None else self.params(), (x,))

    def adapt(self, support_x: Tensor, support_y: Tensor, num_inner_steps: int | None = None,
              inner_lr: InnerLR | None = None, trace: bool = False) -> InnerLoopResult:
        """Test-time adaptation: full-batch SGD from ``theta`` on one task's support set
        (detached; see ``inner_loop``)."""
        with torch.no_grad():
            return inner_loop(self.model, self.params(), support_x, support_y, self.loss_fn,
                              num_inner_steps=self.num_inner_steps if num_inner_steps is None else num_inner_steps,
                              inner_lr=self._inner_lr if inner_lr is None else inner_lr, first_order=True, trace=trace)

    def meta_gradient(self, episode: Episode, generator: int | torch.Generator | None = None) -> ReptileResult:
        """``g`` on a batched episode, using each task's support and query together (``task_data``)."""
        if not isinstance(episode, Episode) or not episode.batched:
            raise EpisodeError("Reptile needs a batched Episode (leading task dimension B); "
                               "use Episode.stack([...]) or a sampler's sample_batch()")
        task_x, task_y = task_data(episode)
        return reptile_meta_gradient(self.model, self.params(), task_x, task_y, self.loss_fn,
                                     num_inner_steps=self.num_inner_steps, inner_lr=self._inner_lr,
                                     inner_batch_size=self.inner_batch_size, generator=generator,
                                     strategy=self.strategy)

    def meta_backward(self, episode: Episode, generator: int | torch.Generator | None = None) -> ReptileResult:
        """Like ``loss.backward()``: adds ``g`` to each parameter's ``.grad``, for a torch optimiser."""
        result = self.meta_gradient(episode, generator)
        for name, p in self.model.named_parameters():
            g = result.meta_grad[name]
            p.grad = g.clone() if p.grad is None else p.grad + g
        return result

    def surrogate_loss(self, episode: Episode, generator: int | torch.Generator | None = None) -> Tensor:
        """A scalar for ``meta_train`` (which calls ``loss.backward()``): its value is the
        meta-batch's mean task loss at ``theta`` (``losses[:, 0]``, to log), its gradient with
        respect to ``theta`` is exactly ``g``::

            surrogate(theta) = mean_i L_{D_i}(theta) + sum_n <theta_n, g_n> - stop_grad(sum_n <theta_n, g_n>)

        so ``meta_train(lambda step: reptile.surrogate_loss(batch), Adam(...), ...)`` runs Reptile
        with any optimiser, like every other algorithm in the course."""
        result = self.meta_gradient(episode, generator)
        inner = sum((p * result.meta_grad[name]).sum() for name, p in self.model.named_parameters())
        return result.losses[:, 0].mean() + inner - inner.detach()

    def outer_step(self, episode: Episode, generator: int | torch.Generator | None = None) -> ReptileResult:
        """``theta <- theta - epsilon * g`` in place, with ``epsilon = self.outer_lr``."""
        result = self.meta_gradient(episode, generator)
        with torch.no_grad():
            for name, p in self.model.named_parameters():
                p -= self.outer_lr * result.meta_grad[name]
        result.params = {k: v.detach().clone() for k, v in self.params().items()}
        return result
