"""Self-checks for chapter 03's exercises (prototypical networks).

Each ``check_*`` builds its own inputs, computes the reference with the package's own
functions (:mod:`metalearn_lite.algorithms.protonet`), and reports with
:mod:`metalearn_lite.course.checks`: ``✓`` on a right answer, "not answered yet" for a
placeholder, ``CheckFailed`` (with a hint) on a wrong one.

- ``check_linear_head(fn)``: ``fn(prototypes [N, D])`` -> ``(weight [N, D], bias [N])`` such
  that ``z @ weight.T + bias`` equals ``-||z - c_n||^2`` up to a per-query constant (the
  "a ProtoNet is a linear classifier on f_phi(x)" identity of Snell et al., sec. 2.3).
- ``check_cosine_logits(fn)``: ``fn(query_z [M, D], prototypes [N, D], scale)`` -> ``[M, N]``
  (reference: ``cosine_logits``).
"""
from __future__ import annotations

from typing import Callable

import torch

from ..algorithms.protonet import cosine_logits, prototypes, squared_euclidean_logits
from .checks import CheckFailed, call_answer, expect_close, is_unanswered, not_answered, report

__all__ = ["check_linear_head", "check_cosine_logits"]


def _episode_embeddings(seed: int, num_ways: int, num_shots: int, num_queries: int, dim: int):
    g = torch.Generator().manual_seed(seed)
    support_z = torch.randn(num_ways * num_shots, dim, generator=g, dtype=torch.float64)
    support_y = torch.arange(num_ways).repeat_interleave(num_shots)
    query_z = torch.randn(num_ways * num_queries, dim, generator=g, dtype=torch.float64)
    return query_z, prototypes(support_z, support_y, num_ways)


def check_linear_head(fn: Callable[[torch.Tensor], tuple]) -> bool:
    """Check ``fn(prototypes [N, D]) -> (weight [N, D], bias [N])``.

    Right when ``z @ weight.T + bias - (-||z - c_n||^2)`` is the same for every class ``n``
    (it is ``||z||^2``, which the softmax ignores), for random episodes.
    """
    name = "linear_head"
    for seed, (n, k, q, d) in enumerate([(5, 1, 3, 8), (3, 4, 2, 16)]):
        query_z, protos = _episode_embeddings(seed, n, k, q, d)
        got = call_answer(name, fn, protos.clone())
        if is_unanswered(got):
            return not_answered(name)
        if not (isinstance(got, (tuple, list)) and len(got) == 2):
            raise CheckFailed(f"✗ {name}: expected a pair (weight [N, D], bias [N]), got {type(got).__name__}")
        weight, bias = got
        if not isinstance(weight, torch.Tensor) or tuple(weight.shape) != (n, d):
            raise CheckFailed(f"✗ {name}: weight must be a tensor [N, D] = [{n}, {d}], got "
                              f"{getattr(weight, 'shape', type(weight).__name__)}")
        if not isinstance(bias, torch.Tensor) or tuple(bias.shape) != (n,):
            raise CheckFailed(f"✗ {name}: bias must be a tensor [N] = [{n}], got "
                              f"{getattr(bias, 'shape', type(bias).__name__)}")
        linear = query_z @ weight.to(torch.float64).T + bias.to(torch.float64)      # [M, N]
        gap = linear - squared_euclidean_logits(query_z, protos)                      # [M, N]
        expect_close(f"{name} ({n}-way, D={d}): linear logits minus -||z - c_n||^2, minus its first column",
                     gap - gap[:, :1], torch.zeros_like(gap), atol=1e-8,
                     hint=("expand the squared distance and look for the term that is the same for every class",
                           "expand -||z - c||^2 = -z.z + 2 c.z - c.c: the first term is the same for every "
                           "class; the weight multiplies z, the bias is what is left"), quiet=True)
    return report(name, True, note="same softmax as the squared Euclidean logits: a ProtoNet is a linear "
                                   "classifier on f_phi(x) with weight 2 c_n and bias -||c_n||^2")


def check_cosine_logits(fn: Callable[..., torch.Tensor]) -> bool:
    """Check ``fn(query_z [M, D], prototypes [N, D], scale) -> [M, N]`` against ``cosine_logits``."""
    name = "cosine_logits"
    for seed, (n, k, q, d, scale) in enumerate([(5, 1, 3, 8, 10.0), (4, 3, 2, 5, 2.5)]):
        query_z, protos = _episode_embeddings(10 + seed, n, k, q, d)
        query_z = query_z * torch.linspace(0.1, 5.0, query_z.shape[0], dtype=torch.float64)[:, None]
        got = call_answer(name, fn, query_z.clone(), protos.clone(), scale)
        if is_unanswered(got):
            return not_answered(name)
        expect_close(f"{name} ({n}-way, scale {scale})", got, cosine_logits(query_z, protos, scale), atol=1e-6,
                     hint=("the cosine of the angle between each query and each prototype, times scale: "
                           "lengths must not matter",
                           "normalise each row to unit length (x / x.norm(dim=-1, keepdim=True)), take all "
                           "dot products (q @ c.T), multiply by scale"), quiet=True)
    return report(name, True, note="cosine logits ignore the length of f_phi(x); the scale sets the softmax's sharpness")
