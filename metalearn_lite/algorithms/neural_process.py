"""Conditional and latent neural processes (Garnelo et al., 2018a, b), chapter 04.

A neural process maps a *context* set ``C = {(x_i, y_i)}`` (the support set) to a
predictive distribution at *target* inputs ``x_t`` (the query set):

Conditional NP (CNP)::

    r_i = h_phi(x_i, y_i),   r = 1/|C| sum_i r_i                      (encoder, mean aggregation)
    mu_t, sigma_t = g_theta(x_t, r),   p(y_t | x_t, C) = N(mu_t, sigma_t^2)
    loss = -1/|T| sum_t log N(y_t; mu_t, sigma_t^2)

Latent NP (NP): a global latent ``z`` with an amortised posterior ``q(z | C)``::

    s_i = e_phi(x_i, y_i),  s = mean_i s_i,  q(z | C) = N(mu_z(s), sigma_z(s)^2)   (latent path e_phi)
    ELBO = E_{q(z | C u T)}[ sum_t log p(y_t | x_t, z) ] - KL( q(z | C u T) || q(z | C) )

using the context posterior as the prior, as in the paper. Predictions sample ``z``
from ``q(z | C)``; the predictive mean/std are those of the resulting mixture, and the
target log-likelihood is ``log 1/S sum_s p(y_T | x_T, z_s)`` per target point.

Shapes: ``context_x [B, n_c, d_x]``, ``context_y [B, n_c, d_y]``, ``target_x [B, n_t, d_x]``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Normal, kl_divergence

from ..tasks.episode import Episode, EpisodeError

__all__ = ["gaussian_log_likelihood", "CNP", "LatentNP", "NPPrediction", "NPLoss", "mlp", "bounded_std", "predictive_loss",
           "check_context_and_targets", "DEFAULT_MIN_STD"]


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def gaussian_log_likelihood(y: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """``log N(y; mean, std^2)`` elementwise: ``-1/2 log(2 pi) - log std - (y - mean)^2 / (2 std^2)``."""
    return -0.5 * math.log(2 * math.pi) - std.log() - 0.5 * ((y - mean) / std) ** 2


def check_context_and_targets(context_x: Tensor, context_y: Tensor, target_x: Tensor, d_x: int, d_y: int) -> None:
    """Raise ``EpisodeError`` naming the expected shapes unless context ``[B, n_c, d_x]`` /
    ``[B, n_c, d_y]`` and targets ``[B, n_t, d_x]`` agree (shared by every NP in the package)."""
    for name, t, d in (("context_x", context_x, d_x), ("context_y", context_y, d_y), ("target_x", target_x, d_x)):
        if t.dim() != 3 or t.shape[-1] != d:
            raise EpisodeError(f"{name} must be [B, n, {d}], got {list(t.shape)}")
    if context_x.shape[:2] != context_y.shape[:2]:
        raise EpisodeError(f"context_x and context_y must agree on [B, n_c], got {list(context_x.shape)} "
                           f"and {list(context_y.shape)}")
    if context_x.shape[0] != target_x.shape[0]:
        raise EpisodeError(f"context and target need the same B, got {context_x.shape[0]} and {target_x.shape[0]}")


DEFAULT_MIN_STD = 0.1   # the NP papers' floor; what the models built before ``min_std`` existed used


def bounded_std(raw: Tensor, min_std: float = DEFAULT_MIN_STD) -> Tensor:
    """Decoder output -> predictive std ``min_std + (1 - min_std) softplus(raw)``: bounded below, as in
    the NP papers, so the likelihood cannot collapse on a point.

    The papers' floor ``min_std = 0.1`` (the default, so older checkpoints behave as trained)
    caps the log-likelihood per target at ``-1/2 log(2 pi) - log 0.1 = 1.384`` nats, below the exact
    GP posterior's on curves with noise 0.05 and many context points; ``min_std = 1e-3`` lifts the
    cap (chapter 09's models use it)."""
    if not 0 < min_std < 1:
        raise ValueError(f"min_std must be in (0, 1), got {min_std}")
    return min_std + (1 - min_std) * F.softplus(raw)


@dataclass
class NPPrediction:
    """Predictive distribution at the targets: ``mean``/``std`` ``[B, n_t, d_y]``."""

    mean: Tensor
    std: Tensor


@dataclass
class NPLoss:
    """``loss`` to minimise; ``log_likelihood`` per target point ``[B]``; ``kl`` ``[B]`` (latent NP)."""

    loss: Tensor
    log_likelihood: Tensor
    kl: Tensor | None = None


def predictive_loss(model: nn.Module, episode: Episode) -> NPLoss:
    """The loss of a model with one predictive Gaussian per target (a CNP, chapter 09's transformer).

    ``model(context_x, context_y, target_x)`` returns an ``NPPrediction`` ``[B, n_t, d_y]``; the
    episode's support is the context and its query the targets. ``log_likelihood [B]`` is
    ``1/|T| sum_t log N(y_t; mu_t, sigma_t^2)`` (summed over ``d_y``), the loss is minus its mean.
    """
    pred = model(episode.support_x, episode.support_y, episode.query_x)
    ll = gaussian_log_likelihood(episode.query_y, pred.mean, pred.std).sum(-1).mean(-1)  # [B]
    return NPLoss(loss=-ll.mean(), log_likelihood=ll.detach())


class CNP(nn.Module):
    """Conditional neural process: deterministic encoder ``h_phi``, mean aggregation, decoder ``g_theta``.

    ``min_std`` is the decoder's std floor (see :func:`bounded_std`); the default 0.1 is the one
    the shipped ``cnp_gp.pt`` was trained with."""

    def __init__(self, x_dim: int = 1, y_dim: int = 1, hidden: int = 128, r_dim: int = 128,
                 encoder_layers: int = 3, decoder_layers: int = 3, min_std: float = DEFAULT_MIN_STD):
        super().__init__()
        bounded_std(torch.zeros(()), min_std)  # checks the floor
        self.x_dim, self.y_dim, self.min_std = x_dim, y_dim, float(min_std)
        self.encoder = mlp([x_dim + y_dim] + [hidden] * (encoder_layers - 1) + [r_dim])
        self.decoder = mlp([x_dim + r_dim] + [hidden] * (decoder_layers - 1) + [2 * y_dim])

    def represent(self, context_x: Tensor, context_y: Tensor) -> Tensor:
        """``r = 1/|C| sum_i h_phi(x_i, y_i)``: ``[B, r_dim]``."""
        r_i = self.encoder(torch.cat([context_x, context_y], dim=-1))
        return r_i.mean(dim=1)

    def forward(self, context_x: Tensor, context_y: Tensor, target_x: Tensor) -> NPPrediction:
        check_context_and_targets(context_x, context_y, target_x, self.x_dim, self.y_dim)
        r = self.represent(context_x, context_y)
        r_t = r.unsqueeze(1).expand(-1, target_x.shape[1], -1)
        out = self.decoder(torch.cat([target_x, r_t], dim=-1))
        mean, raw = out.split(self.y_dim, dim=-1)
        return NPPrediction(mean=mean, std=bounded_std(raw, self.min_std))

    def loss(self, episode: Episode) -> NPLoss:
        """``-1/|T| sum_t log N(y_t; mu_t, sigma_t^2)`` on a batched episode (context = support)."""
        return predictive_loss(self, episode)

    def log_likelihood(self, episode: Episode, num_samples: int = 1) -> Tensor:
        """Per-target-point predictive log-likelihood ``[B]`` (``num_samples`` unused: a CNP is deterministic)."""
        with torch.no_grad():
            return self.loss(episode).log_likelihood


class LatentNP(nn.Module):
    """Latent neural process with a deterministic path (as in the NP paper's 1-D experiments).

    ``q(z | C) = N(mu_z, sigma_z^2)`` from the mean of ``s_i = e_phi(x_i, y_i)`` (the latent path
    ``latent_encoder``, then ``latent_head``); the decoder sees ``x_t``, ``z`` and the deterministic
    ``r = 1/|C| sum_i h_phi(x_i, y_i)`` (its own encoder ``deterministic``, when ``deterministic_path=True``).
    ``min_std`` is the decoder's std floor (see :func:`bounded_std`, default 0.1).
    """

    def __init__(self, x_dim: int = 1, y_dim: int = 1, hidden: int = 128, z_dim: int = 64, r_dim: int = 128,
                 deterministic_path: bool = True, min_std: float = DEFAULT_MIN_STD):
        super().__init__()
        bounded_std(torch.zeros(()), min_std)  # checks the floor
        self.x_dim, self.y_dim, self.z_dim, self.min_std = x_dim, y_dim, z_dim, float(min_std)
        self.latent_encoder = mlp([x_dim + y_dim, hidden, hidden])
        self.latent_head = nn.Linear(hidden, 2 * z_dim)
        self.deterministic = mlp([x_dim + y_dim, hidden, hidden, r_dim]) if deterministic_path else None
        in_dim = x_dim + z_dim + (r_dim if deterministic_path else 0)
        self.decoder = mlp([in_dim, hidden, hidden, 2 * y_dim])

    def latent(self, x: Tensor, y: Tensor) -> Normal:
        """``q(z | {(x_i, y_i)})`` with batch shape ``[B, z_dim]``."""
        s = self.latent_encoder(torch.cat([x, y], dim=-1)).mean(dim=1)
        mu, raw = self.latent_head(s).split(self.z_dim, dim=-1)
        return Normal(mu, 0.1 + 0.9 * torch.sigmoid(raw))

    def decode(self, target_x: Tensor, z: Tensor, r: Tensor | None) -> NPPrediction:
        """``p(y_t | x_t, z[, r])``; ``z [S, B, z_dim]`` gives ``[S, B, n_t, d_y]``."""
        n_t = target_x.shape[1]
        parts = [target_x.expand(z.shape[0], -1, -1, -1), z.unsqueeze(2).expand(-1, -1, n_t, -1)]
        if r is not None:
            parts.append(r.unsqueeze(1).unsqueeze(0).expand(z.shape[0], -1, n_t, -1))
        out = self.decoder(torch.cat(parts, dim=-1))
        mean, raw = out.split(self.y_dim, dim=-1)
        return NPPrediction(mean=mean, std=bounded_std(raw, self.min_std))

    def _r(self, context_x: Tensor, context_y: Tensor) -> Tensor | None:
        if self.deterministic is None:
            return None
        return self.deterministic(torch.cat([context_x, context_y], dim=-1)).mean(dim=1)

    def forward(self, context_x: Tensor, context_y: Tensor, target_x: Tensor, num_samples: int = 16,
                generator: torch.Generator | None = None) -> NPPrediction:
        """Predictive mean and std of the mixture over ``num_samples`` draws of ``z ~ q(z | C)``."""
        check_context_and_targets(context_x, context_y, target_x, self.x_dim, self.y_dim)
        samples = self._sample_predictions(context_x, context_y, target_x, num_samples, generator)
        mean = samples.mean.mean(0)
        second = (samples.std**2 + samples.mean**2).mean(0)
        return NPPrediction(mean=mean, std=(second - mean**2).clamp_min(1e-12).sqrt())

    def _sample_predictions(self, context_x, context_y, target_x, num_samples, generator=None) -> NPPrediction:
        prior = self.latent(context_x, context_y)
        # drawn on the CPU (where a seeded generator lives, so samples repeat across devices), then moved
        eps = torch.randn((num_samples, *prior.loc.shape), generator=generator, dtype=prior.loc.dtype)
        z = prior.loc + prior.scale * eps.to(prior.loc.device)
        return self.decode(target_x, z, self._r(context_x, context_y))

    def loss(self, episode: Episode) -> NPLoss:
        """Negative ELBO per target point, on a batched episode whose query includes the context.

        ``-1/|T| ( E_{q(z|C u T)} sum_t log p(y_t | x_t, z) - KL(q(z | C u T) || q(z | C)) )``,
        with one reparameterised sample of ``z``.
        """
        cx, cy, tx, ty = episode.tensors()
        check_context_and_targets(cx, cy, tx, self.x_dim, self.y_dim)
        prior = self.latent(cx, cy)
        posterior = self.latent(tx, ty)
        z = posterior.rsample().unsqueeze(0)                               # [1, B, z_dim]
        pred = self.decode(tx, z, self._r(cx, cy))
        ll = gaussian_log_likelihood(ty, pred.mean[0], pred.std[0]).sum(-1)  # [B, n_t]
        kl = kl_divergence(posterior, prior).sum(-1)                        # [B]
        n_t = tx.shape[1]
        elbo = (ll.sum(-1) - kl) / n_t
        return NPLoss(loss=-elbo.mean(), log_likelihood=ll.mean(-1).detach(), kl=kl.detach())

    def log_likelihood(self, episode: Episode, num_samples: int = 32, generator: torch.Generator | None = None) -> Tensor:
        """Per-target-point predictive log-likelihood ``[B]``, Monte Carlo over ``z ~ q(z | C)``:

        ``1/|T| sum_t log 1/S sum_s N(y_t; mu_t(z_s), sigma_t(z_s)^2)``.
        """
        with torch.no_grad():
            samples = self._sample_predictions(episode.support_x, episode.support_y, episode.query_x,
                                               num_samples, generator)
            ll = gaussian_log_likelihood(episode.query_y.unsqueeze(0), samples.mean, samples.std).sum(-1)  # [S,B,n_t]
            ll = torch.logsumexp(ll, dim=0) - math.log(num_samples)
            return ll.mean(-1)
