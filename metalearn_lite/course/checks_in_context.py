"""Self-checks for chapter 09's exercises (in-context learning with a transformer).

- ``check_context_tokens(fn)``: ``fn(context_x, context_y, target_x)`` -> ``(context_tokens,
  target_tokens)``: ``[x_i, y_i, 1]`` for the context ``[B, n_c, 3]`` and ``[x_t, 0, 0]`` for the
  targets ``[B, n_t, 3]`` (what ``InContextRegressor.tokens`` builds).
- ``check_episode_tokens(fn)``: ``fn(support_features, support_labels, query_features, num_ways)``
  -> ``(support_tokens, query_tokens)``: ``[f_i, onehot(y_i), 1]`` and ``[f_q, 0...0, 0]`` (the
  token layout ``InContextClassifier`` feeds its transformer).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..algorithms.in_context import InContextRegressor
from .checks import call_answer, expect_close, is_unanswered, not_answered, report

__all__ = ["check_context_tokens", "check_episode_tokens"]


def check_context_tokens(fn: Callable) -> bool:
    """Compare ``fn`` with ``InContextRegressor.tokens`` on two batches of random inputs."""
    name = "context_tokens"
    reference = InContextRegressor(d_model=8, num_heads=2, num_layers=1, dim_feedforward=8)
    g = torch.Generator().manual_seed(9)
    for batch, n_c, n_t in [(2, 5, 7), (1, 1, 3)]:
        cx, cy, tx = (torch.randn(batch, n, 1, generator=g) for n in (n_c, n_c, n_t))
        got = call_answer(name, fn, cx, cy, tx)
        if is_unanswered(got):
            return not_answered(name)
        expect_close(f"{name} (B={batch}, n_c={n_c}, n_t={n_t})", tuple(got), reference.tokens(cx, cy, tx),
                     hint=("a context token is [x, y, 1] (a label and the flag 1), a target token [x, 0, 0] "
                           "(no label, flag 0)",
                           "context: torch.cat([x, y, ones], -1) with ones [B, n_c, 1]; targets: "
                           "torch.cat([x, zeros], -1) with zeros [B, n_t, 2] (no label, flag 0)"), quiet=True)
    return report(name, True, note="the transformer sees a set of such tokens: no position is added")


def check_episode_tokens(fn: Callable) -> bool:
    """Compare ``fn`` with the token layout of ``InContextClassifier`` on a 3-way 2-shot batch, then on
    the same batch with ``num_ways=5`` label slots (a 5-way classifier reading a 3-way episode), so an
    answer whose one-hot width comes from the labels instead of ``num_ways`` fails."""
    name = "episode_tokens"
    g = torch.Generator().manual_seed(3)
    batch = 2
    sf, qf = torch.randn(batch, 6, 4, generator=g), torch.randn(batch, 5, 4, generator=g)
    sl = torch.tensor([[0, 0, 1, 1, 2, 2], [2, 2, 0, 0, 1, 1]])
    for num_ways in (3, 5):
        got = call_answer(name, fn, sf, sl, qf, num_ways)
        if is_unanswered(got):
            return not_answered(name)
        support = torch.cat([sf, F.one_hot(sl, num_ways).float(), torch.ones(batch, 6, 1)], -1)
        query = torch.cat([qf, torch.zeros(batch, 5, num_ways + 1)], -1)
        expect_close(f"{name} (num_ways={num_ways})", tuple(got), (support, query),
                     hint=("a support token is [features, one-hot label, 1], a query token [features, empty "
                           "label slots, 0]; the label slots are num_ways wide whatever labels occur",
                           "support: [features, F.one_hot(labels, num_ways).float(), ones] (pass num_ways: "
                           "the label slots are num_ways wide whatever labels occur); "
                           "query: [features, zeros of width num_ways + 1]"), quiet=True)
    return report(name, True, note="the query's label slots are empty: the model must fill them in from the context")
