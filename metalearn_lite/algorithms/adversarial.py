"""Adversarial queries for few-shot learners: projected gradient descent (Madry et al., 2018) and
adversarial querying (Goldblum et al., 2020, "Adversarially robust few-shot learning"); taught
in chapter 08, section 2.

PGD maximises a loss ``L(x')`` over the L-infinity ball of radius ``epsilon`` around the clean
input ``x`` (intersected with the valid pixel range ``[lo, hi]``, by default ``[0, 1]``)::

    x'_0     = clip_[lo, hi]( x + U(-epsilon, epsilon) )      (random start; else x'_0 = x)
    x'_{s+1} = clip_[lo, hi]( Pi_{||x' - x||_inf <= epsilon}( x'_s + step_size * sign(grad_x' L(x'_s)) ) )

``Pi`` clips every pixel to ``[x - epsilon, x + epsilon]``. Because the clean ``x`` lies in
``[lo, hi]``, clipping to the range after the projection stays inside the ball. One step from
``x`` with ``step_size = epsilon`` and no random start is FGSM (Goodfellow et al., 2015):
``x' = clip(x + epsilon * sign(grad_x L(x)))``.

For a few-shot learner the attacker perturbs the *query* images; the support set is clean:

- a prototypical network: ``L`` is the episode's query loss with the prototypes built from the
  clean support (support and query still go through ``f_phi`` together, as in training);
- MAML: adapt on the clean support first, ``theta' = theta - alpha * grad L_S(theta)``, then
  attack ``L_Q(theta'; x')`` with ``theta'`` held fixed.

*Adversarial querying* (Goldblum et al.) meta-trains on the PGD queries: the outer loss is the
query loss on ``x'`` (support clean), and no gradient flows through the attack itself.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import torch
from torch import Tensor

from ..reproducibility import make_generator
from ..tasks.episode import Episode, EpisodeError
from .maml import MAML
from .protonet import ProtoNet, ProtoNetResult

__all__ = ["pgd_attack", "attack_protonet_queries", "attack_maml_queries", "adversarial_protonet_loss"]


def _check_attack(epsilon: float, step_size: float, num_steps: int, clamp: tuple[float, float] | None) -> None:
    if not epsilon >= 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon}")
    if not step_size >= 0:
        raise ValueError(f"step_size must be >= 0, got {step_size}")
    if not isinstance(num_steps, int) or isinstance(num_steps, bool) or num_steps < 0:
        raise ValueError(f"num_steps must be an int >= 0, got {num_steps!r}")
    if clamp is not None and (len(clamp) != 2 or not clamp[0] < clamp[1]):
        raise ValueError(f"clamp must be None or (lo, hi) with lo < hi, got {clamp!r}")


def pgd_attack(loss_fn: Callable[[Tensor], Tensor], x: Tensor, epsilon: float, step_size: float, num_steps: int,
               generator: int | torch.Generator | None = None, random_start: bool = True,
               clamp: tuple[float, float] | None = (0.0, 1.0)) -> Tensor:
    """``x'``: ``num_steps`` of PGD that *maximise* ``loss_fn(x')`` in the L-inf ball (module docstring).

    Args:
        loss_fn: ``x' -> scalar`` to maximise, differentiable in ``x'`` (any shape, e.g. ``[n, 1, 28, 28]``).
        x: the clean input; inside ``clamp`` when ``clamp`` is given.
        epsilon: radius of the ball (>= 0); step_size: the sign-gradient step (>= 0).
        generator: a seed or ``torch.Generator`` for the random start (drawn on the CPU, then moved
            to ``x``'s device); ``None`` uses torch's global generator.
        random_start: start at a uniform point of the ball (Madry et al.) rather than at ``x``.
        clamp: the valid range ``(lo, hi)``, or ``None`` for no range.

    Returns a detached tensor like ``x`` with ``||x' - x||_inf <= epsilon``. Only ``x'`` gets
    gradients: the ``.grad`` of the model's parameters is left untouched.
    """
    _check_attack(epsilon, step_size, num_steps, clamp)
    x = x.detach()
    if clamp is not None and x.numel() and (float(x.min()) < clamp[0] or float(x.max()) > clamp[1]):
        raise ValueError(f"x must lie in the clamp range [{clamp[0]}, {clamp[1]}], "
                         f"got values in [{float(x.min())}, {float(x.max())}]")
    if epsilon == 0:
        return x.clone()
    lower, upper = x - epsilon, x + epsilon

    def project(v: Tensor) -> Tensor:
        v = torch.minimum(torch.maximum(v, lower), upper)
        return v.clamp(clamp[0], clamp[1]) if clamp is not None else v

    if random_start:
        gen = None if generator is None else make_generator(generator)
        noise = torch.rand(x.shape, generator=gen, dtype=x.dtype) * 2 - 1
        x_adv = project(x + epsilon * noise.to(x.device))
    else:
        x_adv = x.clone()
    with torch.enable_grad():
        for _ in range(num_steps):
            x_adv = x_adv.detach().requires_grad_(True)
            loss = loss_fn(x_adv)
            if not isinstance(loss, Tensor) or loss.dim() != 0:
                got = list(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
                raise ValueError(f"loss_fn must return a scalar tensor, got {got}")
            (grad,) = torch.autograd.grad(loss, [x_adv])
            x_adv = project(x_adv.detach() + step_size * grad.sign())
    return x_adv.detach()


def _check_episode(episode: Episode) -> None:
    if not isinstance(episode, Episode) or not episode.is_classification:
        raise EpisodeError("attacks on queries need a classification Episode (num_ways set)")


def attack_protonet_queries(protonet: ProtoNet | Callable[[Episode], ProtoNetResult], episode: Episode,
                            epsilon: float, step_size: float, num_steps: int,
                            generator: int | torch.Generator | None = None, random_start: bool = True,
                            clamp: tuple[float, float] | None = (0.0, 1.0)) -> Episode:
    """The episode with its queries replaced by PGD queries that maximise the prototypical network's loss.

    ``protonet(episode).loss`` is the loss (a ``ProtoNet``, or any callable ``Episode -> result``
    with a scalar ``.loss``); the prototypes come from the clean support. Single or batched
    episodes; ``support_x``, ``support_y``, ``query_y`` are the same tensors as in ``episode``.
    With a batch-statistics norm (Conv-4) the support *images* stay clean but their embeddings
    still move with the queries' share of the batch statistics, exactly as at evaluation.
    """
    _check_episode(episode)

    def loss_fn(query_x: Tensor) -> Tensor:
        return protonet(replace(episode, query_x=query_x)).loss

    query_adv = pgd_attack(loss_fn, episode.query_x, epsilon, step_size, num_steps, generator=generator,
                           random_start=random_start, clamp=clamp)
    return replace(episode, query_x=query_adv)


def attack_maml_queries(maml: MAML, episode: Episode, epsilon: float, step_size: float, num_steps: int,
                        num_inner_steps: int | None = None, inner_lr: float | None = None,
                        generator: int | torch.Generator | None = None, random_start: bool = True,
                        clamp: tuple[float, float] | None = (0.0, 1.0)) -> Episode:
    """PGD queries against MAML *after* adaptation: ``theta' = maml.adapt(clean support)``, then
    maximise ``maml.loss_fn(model(x'; theta'), query_y)`` over ``x'`` with ``theta'`` fixed.

    ``num_inner_steps`` / ``inner_lr`` default to ``maml``'s. For a batched episode each task is
    adapted and attacked on its own (one ``generator`` draws every task's random start in turn).
    Returns the episode with ``query_x`` replaced; the support is untouched. Evaluate it by
    adapting again on the (same, clean) support.
    """
    _check_episode(episode)
    gen = None if generator is None else make_generator(generator)
    attacked = []
    for task in episode:
        with torch.no_grad():  # theta' without a graph to theta
            adapted = maml.adapt(task.support_x, task.support_y, num_inner_steps=num_inner_steps,
                                 inner_lr=inner_lr).params

        def loss_fn(query_x: Tensor, task: Episode = task, adapted: dict = adapted) -> Tensor:
            return maml.loss_fn(maml(query_x, adapted), task.query_y)

        attacked.append(pgd_attack(loss_fn, task.query_x, epsilon, step_size, num_steps, generator=gen,
                                   random_start=random_start, clamp=clamp))
    query_adv = torch.stack(attacked) if episode.batched else attacked[0]
    return replace(episode, query_x=query_adv)


def adversarial_protonet_loss(protonet: ProtoNet | Callable[[Episode], ProtoNetResult], episode: Episode,
                              epsilon: float, step_size: float, num_steps: int,
                              generator: int | torch.Generator | None = None, random_start: bool = True,
                              clamp: tuple[float, float] | None = (0.0, 1.0)) -> ProtoNetResult:
    """Adversarial querying: the prototypical network's result on the episode with PGD queries
    (clean support). ``result.loss.backward()`` trains ``f_phi`` against the attack; the attack
    itself is a constant (no gradient through the PGD steps)."""
    return protonet(attack_protonet_queries(protonet, episode, epsilon, step_size, num_steps, generator=generator,
                                            random_start=random_start, clamp=clamp))
