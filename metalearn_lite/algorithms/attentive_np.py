"""Attentive neural process (Kim et al., 2019): a latent NP whose deterministic path attends
from each target to the context (extends chapter 04's ``neural_process.py``; taught in
chapter 07, compared with the GP oracle in chapter 09).

A CNP/NP summarises the context by a *mean*, the same ``r`` for every target, and so
underfits the context points themselves. The ANP gives each target ``x_t`` its own
representation ``r*_t``, a weighted average of the context representations, with the weights
from how ``x_t`` matches each ``x_i``.

Deterministic path (``r_dim``-wide, ``H = num_heads`` heads of width ``d_h = r_dim / H``)::

    r_i = h_phi(x_i, y_i)                                         context representations (values)
    r_i <- MultiHead(r_i, {r_j}, {r_j})                            optional self-attention over the context
    k_i = e(x_i),  q_t = e(x_t)                                    one MLP ``e`` embeds keys and queries
    w_{h,t,i} = softmax_i( (W^Q_h q_t) . (W^K_h k_i) / sqrt(d_h) )  sum_i w_{h,t,i} = 1
    r*_t = W^O concat_h( sum_i w_{h,t,i} W^V_h r_i )               cross-attention (``nn.MultiheadAttention``)

Latent path (as ``LatentNP``, with the optional self-attention before the mean)::

    s_i = h_psi(x_i, y_i),  s_i <- MultiHead(s_i, {s_j}, {s_j}),  s = mean_i s_i
    q(z | C) = N(mu_z(s), sigma_z(s)^2),   sigma_z = 0.1 + 0.9 sigmoid(.)

Decoder and objective (as ``LatentNP``)::

    mu_t, sigma_t = g_theta(x_t, r*_t, z),   sigma_t = m + (1 - m) softplus(.),  m = min_std
    ELBO = E_{q(z | C u T)}[ sum_t log N(y_t; mu_t, sigma_t^2) ] - KL( q(z | C u T) || q(z | C) )

With ``latent_path=False`` there is no ``z``: an attentive CNP, trained like ``CNP`` by
``-1/|T| sum_t log N(y_t; mu_t, sigma_t^2)``.

``forward``, ``loss`` and ``log_likelihood`` have ``LatentNP``'s signatures and return types
(``NPPrediction``, ``NPLoss``, ``[B]``), so a chapter can swap the models.

Shapes: ``context_x [B, n_c, d_x]``, ``context_y [B, n_c, d_y]``, ``target_x [B, n_t, d_x]``.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.distributions import Normal, kl_divergence

from ..tasks.episode import Episode
from .neural_process import (DEFAULT_MIN_STD, NPLoss, NPPrediction, bounded_std, check_context_and_targets, gaussian_log_likelihood,
                             mlp)

__all__ = ["AttentiveNP"]


class AttentiveNP(nn.Module):
    """Attentive neural process: multi-head cross-attention in the deterministic path, a global latent ``z``.

    Args:
        x_dim, y_dim: ``d_x``, ``d_y``.
        hidden: width of the MLPs. r_dim: width of ``r_i``, ``e(x)`` and ``r*_t``. z_dim: size of ``z``.
        num_heads: ``H``; must divide ``r_dim`` (and ``hidden`` with self-attention and the latent path).
        self_attention: self-attention over the context in both paths (the paper's full ANP).
        latent_path: keep the latent ``z`` (the ANP); ``False`` gives an attentive CNP.
        min_std: the decoder's std floor ``m`` (see ``bounded_std``); 0.1 as in the papers by default,
            1e-3 for the shipped ``attentive_np_gp.pt`` so the floor does not cap the likelihood.
    """

    def __init__(self, x_dim: int = 1, y_dim: int = 1, hidden: int = 128, r_dim: int = 128, z_dim: int = 64,
                 num_heads: int = 8, self_attention: bool = False, latent_path: bool = True,
                 min_std: float = DEFAULT_MIN_STD):
        super().__init__()
        bounded_std(torch.zeros(()), min_std)  # checks the floor
        if r_dim % num_heads:
            raise ValueError(f"num_heads must divide r_dim, got num_heads={num_heads} and r_dim={r_dim}")
        if self_attention and latent_path and hidden % num_heads:
            raise ValueError(f"with self-attention in the latent path num_heads must divide hidden, "
                             f"got num_heads={num_heads} and hidden={hidden}")
        self.x_dim, self.y_dim, self.z_dim = x_dim, y_dim, z_dim
        self.latent_path = latent_path
        self.min_std = float(min_std)
        # Deterministic path: values r_i, keys/queries e(x), attention.
        self.deterministic = mlp([x_dim + y_dim, hidden, hidden, r_dim])
        self.x_embedding = mlp([x_dim, hidden, r_dim])
        self.deterministic_self_attention = (nn.MultiheadAttention(r_dim, num_heads, batch_first=True)
                                             if self_attention else None)
        self.cross_attention = nn.MultiheadAttention(r_dim, num_heads, batch_first=True)
        # Latent path.
        if latent_path:
            self.latent_encoder = mlp([x_dim + y_dim, hidden, hidden])
            self.latent_self_attention = (nn.MultiheadAttention(hidden, num_heads, batch_first=True)
                                          if self_attention else None)
            self.latent_head = nn.Linear(hidden, 2 * z_dim)
        self.decoder = mlp([x_dim + r_dim + (z_dim if latent_path else 0), hidden, hidden, 2 * y_dim])

    # ------------------------------------------------------------------ the two paths
    def attend(self, context_x: Tensor, context_y: Tensor, target_x: Tensor) -> tuple[Tensor, Tensor]:
        """The deterministic path: ``r*_t`` ``[B, n_t, r_dim]`` and the cross-attention weights
        ``w_{h,t,i}`` ``[B, H, n_t, n_c]`` (each ``[b, h, t, :]`` sums to 1)."""
        r = self.deterministic(torch.cat([context_x, context_y], dim=-1))            # [B, n_c, r_dim]
        if self.deterministic_self_attention is not None:
            r, _ = self.deterministic_self_attention(r, r, r, need_weights=False)
        keys, queries = self.x_embedding(context_x), self.x_embedding(target_x)
        r_star, weights = self.cross_attention(queries, keys, r, need_weights=True, average_attn_weights=False)
        return r_star, weights

    def represent(self, context_x: Tensor, context_y: Tensor, target_x: Tensor) -> Tensor:
        """``r*_t``: ``[B, n_t, r_dim]``."""
        return self.attend(context_x, context_y, target_x)[0]

    def attention_weights(self, context_x: Tensor, context_y: Tensor, target_x: Tensor) -> Tensor:
        """``w_{h,t,i}``: ``[B, H, n_t, n_c]``, non-negative, summing to 1 over the context."""
        check_context_and_targets(context_x, context_y, target_x, self.x_dim, self.y_dim)
        return self.attend(context_x, context_y, target_x)[1]

    def latent(self, x: Tensor, y: Tensor) -> Normal:
        """``q(z | {(x_i, y_i)})`` with batch shape ``[B, z_dim]``."""
        if not self.latent_path:
            raise ValueError("this AttentiveNP was built with latent_path=False: it has no z")
        s = self.latent_encoder(torch.cat([x, y], dim=-1))
        if self.latent_self_attention is not None:
            s, _ = self.latent_self_attention(s, s, s, need_weights=False)
        mu, raw = self.latent_head(s.mean(dim=1)).split(self.z_dim, dim=-1)
        return Normal(mu, 0.1 + 0.9 * torch.sigmoid(raw))

    def decode(self, target_x: Tensor, z: Tensor | None, r_star: Tensor) -> NPPrediction:
        """``p(y_t | x_t, r*_t[, z])``: ``z [S, B, z_dim]`` (or ``None`` without the latent path) and
        ``r_star [B, n_t, r_dim]`` give ``mean``/``std`` ``[S, B, n_t, d_y]`` (``S = 1`` without ``z``)."""
        num_samples = 1 if z is None else z.shape[0]
        n_t = target_x.shape[1]
        parts = [target_x.expand(num_samples, -1, -1, -1), r_star.expand(num_samples, -1, -1, -1)]
        if z is not None:
            parts.append(z.unsqueeze(2).expand(-1, -1, n_t, -1))
        out = self.decoder(torch.cat(parts, dim=-1))
        mean, raw = out.split(self.y_dim, dim=-1)
        return NPPrediction(mean=mean, std=bounded_std(raw, self.min_std))

    def _sample_predictions(self, context_x: Tensor, context_y: Tensor, target_x: Tensor, num_samples: int,
                            generator: torch.Generator | None = None) -> NPPrediction:
        """``[S, B, n_t, d_y]`` predictions for ``S`` draws ``z_s = mu_z + sigma_z * eps_s`` from ``q(z | C)``."""
        r_star = self.represent(context_x, context_y, target_x)
        if not self.latent_path:
            return self.decode(target_x, None, r_star)
        prior = self.latent(context_x, context_y)
        eps = torch.randn((num_samples, *prior.loc.shape), generator=generator, dtype=prior.loc.dtype)
        return self.decode(target_x, prior.loc + prior.scale * eps.to(prior.loc.device), r_star)

    # ------------------------------------------------------------------ LatentNP's interface
    def forward(self, context_x: Tensor, context_y: Tensor, target_x: Tensor, num_samples: int = 16,
                generator: torch.Generator | None = None) -> NPPrediction:
        """Predictive mean and std ``[B, n_t, d_y]``: of the mixture over ``num_samples`` draws of
        ``z ~ q(z | C)``, or of the single Gaussian without the latent path."""
        check_context_and_targets(context_x, context_y, target_x, self.x_dim, self.y_dim)
        samples = self._sample_predictions(context_x, context_y, target_x, num_samples, generator)
        mean = samples.mean.mean(0)
        second = (samples.std**2 + samples.mean**2).mean(0)
        return NPPrediction(mean=mean, std=(second - mean**2).clamp_min(1e-12).sqrt())

    def loss(self, episode: Episode) -> NPLoss:
        """Negative ELBO per target point (one reparameterised ``z``), on a batched episode whose
        query includes the context; without the latent path, ``-1/|T| sum_t log N(y_t; mu_t, sigma_t^2)``."""
        cx, cy, tx, ty = episode.tensors()
        check_context_and_targets(cx, cy, tx, self.x_dim, self.y_dim)
        r_star = self.represent(cx, cy, tx)
        if not self.latent_path:
            pred = self.decode(tx, None, r_star)
            ll = gaussian_log_likelihood(ty, pred.mean[0], pred.std[0]).sum(-1).mean(-1)   # [B]
            return NPLoss(loss=-ll.mean(), log_likelihood=ll.detach())
        prior = self.latent(cx, cy)
        posterior = self.latent(tx, ty)
        z = posterior.rsample().unsqueeze(0)                                  # [1, B, z_dim]
        pred = self.decode(tx, z, r_star)
        ll = gaussian_log_likelihood(ty, pred.mean[0], pred.std[0]).sum(-1)   # [B, n_t]
        kl = kl_divergence(posterior, prior).sum(-1)                          # [B]
        elbo = (ll.sum(-1) - kl) / tx.shape[1]
        return NPLoss(loss=-elbo.mean(), log_likelihood=ll.mean(-1).detach(), kl=kl.detach())

    def log_likelihood(self, episode: Episode, num_samples: int = 32,
                       generator: torch.Generator | None = None) -> Tensor:
        """Per-target-point predictive log-likelihood ``[B]``:
        ``1/|T| sum_t log 1/S sum_s N(y_t; mu_t(z_s), sigma_t(z_s)^2)`` (``S = 1`` without the latent path)."""
        with torch.no_grad():
            check_context_and_targets(episode.support_x, episode.support_y, episode.query_x, self.x_dim, self.y_dim)
            samples = self._sample_predictions(episode.support_x, episode.support_y, episode.query_x,
                                               num_samples, generator)
            ll = gaussian_log_likelihood(episode.query_y.unsqueeze(0), samples.mean, samples.std).sum(-1)  # [S,B,n_t]
            ll = torch.logsumexp(ll, dim=0) - math.log(ll.shape[0])
            return ll.mean(-1)
