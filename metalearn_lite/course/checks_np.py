"""Self-checks for chapter 04's exercises (neural processes).

Each ``check_*`` builds its own inputs, computes the reference (with the package's own
functions where one exists), and reports with :mod:`metalearn_lite.course.checks`: ``✓`` on
a right answer, "not answered yet" for a placeholder, ``CheckFailed`` (with a hint) on a
wrong one.

- ``check_log_mean_exp(fn)``: ``fn(log_p [S, ...])`` -> ``log 1/S sum_s exp(log_p[s])``
  ``[...]``, stable for very negative values (the latent NP's Monte Carlo predictive
  log-likelihood, ``LatentNP.log_likelihood``).
- ``check_coverage(fn)``: ``fn(mean, std, target_y)`` (each ``[B, n_t, 1]``) -> the fraction
  (a Python float) of target points with ``|y_t - mu_t| <= 2 sigma_t``.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from ..algorithms.neural_process import gaussian_log_likelihood
from .checks import call_answer, expect_close, is_unanswered, not_answered, report

__all__ = ["check_log_mean_exp", "check_coverage"]


def check_log_mean_exp(fn: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    """Check ``fn(log_p [S, B, n_t]) -> [B, n_t]`` against ``logsumexp(log_p, 0) - log S``.

    The inputs are per-sample Gaussian log-likelihoods (``gaussian_log_likelihood``),
    including a case around -1000 where ``log(mean(exp(.)))`` underflows to ``-inf``.
    """
    name = "log_mean_exp"
    g = torch.Generator().manual_seed(4)
    cases = []
    for num_samples, batch, n_t, shift in [(8, 2, 5, 0.0), (3, 1, 7, 0.0), (16, 3, 4, 1000.0)]:
        y = torch.randn(batch, n_t, generator=g, dtype=torch.float64) + shift
        mean = torch.randn(num_samples, batch, n_t, generator=g, dtype=torch.float64)
        std = 0.1 + torch.rand(num_samples, batch, n_t, generator=g, dtype=torch.float64)
        cases.append(gaussian_log_likelihood(y.unsqueeze(0), mean, std))     # [S, B, n_t]
    for i, log_p in enumerate(cases):
        got = call_answer(name, fn, log_p.clone())
        if is_unanswered(got):
            return not_answered(name)
        expected = torch.logsumexp(log_p, dim=0) - math.log(log_p.shape[0])
        hint = ("average the probabilities, not the log-probabilities, over the S samples (dim 0), then "
                "take the log; do it in a way that survives very negative log_p",
                "subtract the largest value m = log_p.max(0).values before exp, add it back after the log: "
                "m + log(mean(exp(log_p - m)))")
        if i == len(cases) - 1:
            hint = ("values near -1000 underflow in exp(): shift them before exponentiating",) + hint[1:]
        expect_close(f"{name} (case {i}, S={log_p.shape[0]})", got, expected, atol=1e-8, rtol=1e-10,
                     hint=hint, quiet=True)
    return report(name, True, note="this is how LatentNP.log_likelihood averages p(y_t | x_t, z_s) over samples of z")


def check_coverage(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], float]) -> bool:
    """Check ``fn(mean, std, target_y) -> float``: the fraction of points inside ``mean +/- 2 std``."""
    name = "coverage"
    g = torch.Generator().manual_seed(7)
    for batch, n_t in [(4, 30), (1, 9)]:
        mean = torch.randn(batch, n_t, 1, generator=g)
        std = 0.2 + torch.rand(batch, n_t, 1, generator=g)
        target_y = mean + 2.5 * std * torch.randn(batch, n_t, 1, generator=g)
        got = call_answer(name, fn, mean.clone(), std.clone(), target_y.clone())
        if is_unanswered(got):
            return not_answered(name)
        expected = float(((target_y - mean).abs() <= 2 * std).float().mean())
        expect_close(f"{name} ([{batch}, {n_t}, 1])", got, expected, atol=1e-6,
                     hint=("the fraction of ALL target points (every task, every point) inside mean +/- 2 std, "
                           "as a Python float",
                           "count the points with |y - mean| <= 2 * std, divide by the number of points, "
                           "and return a Python float (.item())"), quiet=True)
    return report(name, True, note="a calibrated Gaussian puts about 95% of the points inside mean +/- 2 std")
