"""Self-checks for chapter 01's exercises (tasks, episodes, evaluation).

Each ``check_*`` builds its own inputs, computes the reference with the package's own
function, and reports with :mod:`metalearn_lite.course.checks`: ``✓`` on a right answer,
"not answered yet" for a placeholder, ``CheckFailed`` (with a hint) on a wrong one.

- ``check_split_support_query(fn)``: ``fn(class_images [N, K+Q, C, H, W], num_shots)`` ->
  ``Episode`` (reference: ``EpisodeSampler.episode`` with the first K examples of each class
  as support).
- ``check_paired_difference_ci(fn)``: ``fn(values_a, values_b)`` -> ``(mean, half_width)``
  floats of the mean per-task difference (reference: ``training.mean_confidence_interval``
  of ``a_i - b_i``).
- ``check_episodes_to_halve_ci(answer, num_episodes=600)``: how many episodes halve the CI.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..data.episodes import EpisodeIndices, EpisodeSampler
from ..tasks.episode import Episode
from ..training.evaluation import mean_confidence_interval
from .checks import CheckFailed, call_answer, expect_close, expect_equal, is_unanswered, not_answered, report

__all__ = ["reference_split", "check_split_support_query", "check_paired_difference_ci", "check_episodes_to_halve_ci"]


def reference_split(class_images: torch.Tensor, num_shots: int) -> Episode:
    """The package's episode for ``class_images [N, K+Q, *x_shape]``: the first ``num_shots``
    examples of class ``c`` are its support, the rest its queries, label ``c``."""
    n, per_class = int(class_images.shape[0]), int(class_images.shape[1])
    q = per_class - num_shots
    sampler = EpisodeSampler(class_images, num_ways=n, num_shots=num_shots, num_queries=q)
    indices = EpisodeIndices(
        classes=torch.arange(n),
        support=torch.arange(num_shots).expand(n, num_shots),
        query=torch.arange(num_shots, per_class).expand(n, q),
    )
    return sampler.episode(indices)


def check_split_support_query(fn: Callable[[torch.Tensor, int], Episode]) -> bool:
    """Check ``fn(class_images, num_shots) -> Episode`` on a 5-way 1-shot and a 3-way 2-shot case."""
    name = "split_support_query"
    gen = torch.Generator().manual_seed(1)
    cases = [(torch.rand(5, 4, 1, 6, 6, generator=gen), 1), (torch.rand(3, 5, 2, 4, 4, generator=gen), 2)]
    for images, num_shots in cases:
        n, per_class = images.shape[:2]
        label = f"{name} ({n}-way {num_shots}-shot)"
        got = call_answer(name, fn, images.clone(), num_shots)
        if is_unanswered(got):
            return not_answered(name)
        if not isinstance(got, Episode):
            raise CheckFailed(f"✗ {label}: expected an Episode (from metalearn_lite import Episode), "
                              f"got {type(got).__name__}")
        want = reference_split(images, num_shots)
        expect_equal(f"{label}: (num_ways, num_shots, num_queries)",
                     (got.num_ways, got.num_shots, got.num_queries),
                     (want.num_ways, want.num_shots, want.num_queries),
                     hint="pass num_ways=N, num_shots=K, num_queries=Q to Episode(...)", quiet=True)
        expect_equal(f"{label}: support_y", got.support_y, want.support_y,
                     hint=("support labels are grouped by class: K zeros, then K ones, ...",
                           "torch.arange(N).repeat_interleave(K)"), quiet=True)
        expect_equal(f"{label}: query_y", got.query_y, want.query_y,
                     hint=("query labels: Q zeros, then Q ones, ...", "torch.arange(N).repeat_interleave(Q)"),
                     quiet=True)
        expect_equal(f"{label}: support_x", got.support_x, want.support_x,
                     hint=("support_x is the first K images of each class, with the class and shot dims merged",
                           "class_images[:, :K].reshape(N * K, *x_shape)"), quiet=True)
        expect_equal(f"{label}: query_x", got.query_x, want.query_x,
                     hint="query_x is class_images[:, K:] reshaped to [N * Q, *x_shape]", quiet=True)
    return report(name, True, note="support and query sets, labels and N/K/Q match the package's sampler")


def check_paired_difference_ci(fn: Callable) -> bool:
    """Check ``fn(values_a, values_b) -> (mean, half_width)``: the 95% CI of the mean of the
    per-task differences ``a_i - b_i`` (reference: ``mean_confidence_interval``)."""
    name = "paired_difference_ci"
    gen = torch.Generator().manual_seed(2)
    cases = []
    for n in (600, 5):
        difficulty = 3 * torch.rand(n, generator=gen)              # shared per-task difficulty
        a = difficulty + 0.1 * torch.randn(n, generator=gen)
        b = difficulty + 0.05 + 0.1 * torch.randn(n, generator=gen)
        cases.append((a.tolist(), b.tolist()))
    for values_a, values_b in cases:
        got = call_answer(name, fn, list(values_a), list(values_b))
        if is_unanswered(got):
            return not_answered(name)
        want = mean_confidence_interval([a - b for a, b in zip(values_a, values_b)])
        expect_close(f"{name} ({len(values_a)} tasks)", tuple(got) if isinstance(got, list) else got,
                     (want.mean, want.ci95), atol=1e-6, rtol=1e-6,
                     hint="take the n differences d_i = a_i - b_i, then return (mean of d, "
                          "1.96 * s_d / sqrt(n)) with the *sample* standard deviation s_d (divide by "
                          "n - 1), as Python floats", quiet=True)
    return report(name, True, note="matches mean_confidence_interval of the per-task differences")


def check_episodes_to_halve_ci(answer, num_episodes: int = 600) -> bool:
    """Check the number of episodes that halves the CI half-width of ``num_episodes``."""
    name = "episodes to halve the CI"
    if is_unanswered(answer):
        return not_answered(name)
    return expect_equal(name, answer, 4 * num_episodes,
                        hint="the half-width is 1.96 * s / sqrt(n): what n makes sqrt(n) twice as large?")

