"""Curves drawn from a Gaussian process, and the exact GP posterior (the oracle).

As in the neural-process papers (Garnelo et al., 2018): each task is a function
``f ~ GP(0, k)`` with the RBF kernel

    k(x, x') = sigma_f^2 exp(-|x - x'|^2 / (2 l^2)),   y = f(x) + eps,  eps ~ N(0, sigma_n^2)

observed at random points, split into a *context* set (the support set) and a
*target* set (the query set) that includes the context points. The exact posterior
predictive given the context,

    mean = K_tc (K_cc + sigma_n^2 I)^-1 y_c
    var  = diag(K_tt - K_tc (K_cc + sigma_n^2 I)^-1 K_ct) + sigma_n^2,

is the best any model can do on these tasks: chapter 04 measures neural processes
against it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..reproducibility import make_generator
from .episode import Episode

__all__ = ["GPCurves", "GPPosterior", "rbf_kernel", "gp_posterior", "gp_log_likelihood"]


def rbf_kernel(x1: Tensor, x2: Tensor, lengthscale: float, scale: float) -> Tensor:
    """RBF kernel matrix ``[..., n1, n2]`` for inputs ``x1 [..., n1, d]``, ``x2 [..., n2, d]``.

    ``scale`` is the output standard deviation ``sigma_f`` (the kernel's amplitude is
    ``sigma_f^2``).
    """
    sq_dist = ((x1.unsqueeze(-2) - x2.unsqueeze(-3)) ** 2).sum(-1)
    return scale**2 * torch.exp(-0.5 * sq_dist / lengthscale**2)


@dataclass(frozen=True)
class GPPosterior:
    """Exact posterior predictive at the targets: ``mean``/``var`` are ``[..., m]``."""

    mean: Tensor
    var: Tensor

    @property
    def std(self) -> Tensor:
        return self.var.sqrt()


def gp_posterior(context_x: Tensor, context_y: Tensor, target_x: Tensor, lengthscale: float,
                 scale: float, noise: float, include_noise: bool = True) -> GPPosterior:
    """Exact GP posterior predictive (Rasmussen & Williams, eq. 2.23-2.24).

    Args:
        context_x: ``[..., n, d]``; context_y: ``[..., n, 1]``; target_x: ``[..., m, d]``.
        include_noise: add ``noise^2`` to the variance (predictive of noisy ``y``, which is
            what a neural process predicts), else the variance of ``f``.

    Returns ``GPPosterior`` with ``mean``, ``var`` of shape ``[..., m]``. Computed in
    float64 with a Cholesky factorisation, returned in the input dtype.
    """
    if context_y.shape[-1] != 1:
        raise ValueError(f"context_y must be [..., n, 1], got {list(context_y.shape)}")
    dtype = context_x.dtype
    cx, cy, tx = context_x.double(), context_y.double()[..., 0], target_x.double()
    n = cx.shape[-2]
    k_cc = rbf_kernel(cx, cx, lengthscale, scale) + (noise**2 + 1e-10) * torch.eye(n, dtype=torch.float64)
    k_tc = rbf_kernel(tx, cx, lengthscale, scale)
    chol = torch.linalg.cholesky(k_cc)
    alpha = torch.cholesky_solve(cy.unsqueeze(-1), chol)          # (K_cc + s^2 I)^-1 y_c
    mean = (k_tc @ alpha).squeeze(-1)
    v = torch.linalg.solve_triangular(chol, k_tc.transpose(-1, -2), upper=False)
    var = scale**2 - (v**2).sum(-2)
    var = var.clamp_min(1e-12)
    if include_noise:
        var = var + noise**2
    return GPPosterior(mean=mean.to(dtype), var=var.to(dtype))


def gp_log_likelihood(context_x: Tensor, context_y: Tensor, target_x: Tensor, target_y: Tensor,
                      lengthscale: float, scale: float, noise: float) -> Tensor:
    """Mean over target points of ``log N(y_t; mean_t, var_t)`` under the exact posterior.

    This is the per-target-point log-likelihood that neural processes report, with the
    same factorised form (each target's marginal). Returns ``[...]`` (one value per task).
    """
    post = gp_posterior(context_x.double(), context_y.double(), target_x.double(), lengthscale, scale, noise)
    y = target_y.double()[..., 0]
    ll = -0.5 * (math.log(2 * math.pi) + post.var.log() + (y - post.mean) ** 2 / post.var)
    return ll.mean(-1).to(target_y.dtype)


@dataclass(frozen=True)
class GPCurves:
    """The distribution over GP curve tasks.

    A batch has one context size and one target size for all tasks (so it can be
    stacked): ``num_context ~ U{min_context, ..., max_context}`` and
    ``num_extra_targets ~ U{min_extra_targets, ..., max_extra_targets}``; the targets are
    the context points followed by the extra points (as in the NP papers).
    """

    lengthscale: float = 0.4
    scale: float = 1.0
    noise: float = 0.05
    x_range: tuple[float, float] = (-2.0, 2.0)
    min_context: int = 3
    max_context: int = 20
    min_extra_targets: int = 10
    max_extra_targets: int = 30

    def __post_init__(self) -> None:
        for name in ("lengthscale", "scale"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.noise < 0:
            raise ValueError(f"noise must be >= 0, got {self.noise}")
        if not 1 <= self.min_context <= self.max_context:
            raise ValueError(f"need 1 <= min_context <= max_context, got {self.min_context}, {self.max_context}")
        if not 0 <= self.min_extra_targets <= self.max_extra_targets:
            raise ValueError("need 0 <= min_extra_targets <= max_extra_targets, got "
                             f"{self.min_extra_targets}, {self.max_extra_targets}")

    def sample_curves(self, x: Tensor, generator=None) -> Tensor:
        """Noisy function values ``y [B, n, 1]`` at inputs ``x [B, n, 1]`` (float64 inside)."""
        gen = make_generator(generator)
        n = x.shape[-2]
        cov = rbf_kernel(x.double(), x.double(), self.lengthscale, self.scale)
        cov = cov + (self.noise**2 + 1e-6) * torch.eye(n, dtype=torch.float64)
        chol = torch.linalg.cholesky(cov)
        eps = torch.randn(x.shape[0], n, 1, generator=gen, dtype=torch.float64)
        return (chol @ eps).to(x.dtype)

    def sample(self, num_tasks: int, num_context: int | None = None, num_extra_targets: int | None = None,
               generator=None) -> Episode:
        """A batched episode: context as support ``[B, n_c, 1]``, targets as query ``[B, n_c + n_e, 1]``."""
        gen = make_generator(generator)
        if num_context is None:
            num_context = int(torch.randint(self.min_context, self.max_context + 1, (1,), generator=gen))
        if num_extra_targets is None:
            num_extra_targets = int(torch.randint(self.min_extra_targets, self.max_extra_targets + 1, (1,),
                                                  generator=gen))
        if num_context < 1:
            raise ValueError(f"num_context must be >= 1, got {num_context}")
        total = num_context + num_extra_targets
        lo, hi = self.x_range
        x = lo + (hi - lo) * torch.rand(num_tasks, total, 1, generator=gen)
        y = self.sample_curves(x, gen)
        return Episode(support_x=x[:, :num_context], support_y=y[:, :num_context],
                       query_x=x, query_y=y, batched=True)

    def posterior(self, context_x: Tensor, context_y: Tensor, target_x: Tensor) -> GPPosterior:
        """Exact posterior predictive under this distribution's kernel (the oracle)."""
        return gp_posterior(context_x, context_y, target_x, self.lengthscale, self.scale, self.noise)

    def log_likelihood(self, episode: Episode) -> Tensor:
        """Oracle per-target-point log-likelihood for each task of ``episode`` ``[B]``."""
        return gp_log_likelihood(episode.support_x, episode.support_y, episode.query_x, episode.query_y,
                                 self.lengthscale, self.scale, self.noise)
