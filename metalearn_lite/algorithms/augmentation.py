"""Generative task augmentation: a small variational autoencoder (Kingma and Welling, 2014) that
adds decoded variations of each support image to a few-shot task (taught in chapter 08, section 3).

The VAE, for images ``x [1, 28, 28]`` with pixels in ``[0, 1]`` and latents ``z [latent_dim]``::

    encoder   q_phi(z | x) = Normal(mu_phi(x), diag(exp(logvar_phi(x))))
    prior     p(z) = Normal(0, I)
    decoder   p_theta(x | z) = prod_pixels Bernoulli(x_p; sigmoid(l_theta(z)_p))    (l: logits)

It is trained by minimising the negative ELBO of each image (``vae_loss``)::

    -ELBO(x) = E_{z ~ q}[ -log p_theta(x | z) ] + beta * KL(q_phi(z | x) || p(z))
             ~ BCE(sigmoid(l_theta(z)), x) summed over pixels  +  beta * KL,
      z = mu + exp(logvar / 2) * eps,   eps ~ Normal(0, I)        (reparameterisation, one sample)
      KL = 1/2 sum_j ( mu_j^2 + exp(logvar_j) - 1 - logvar_j )     (closed form; 0 iff mu = 0, logvar = 0)

``beta = 1`` is the ELBO; ``beta > 1`` is the beta-VAE. Pixels in ``[0, 1]`` that are not 0 or 1
are fine as BCE targets (the "continuous Bernoulli" caveat aside, this is the usual practice).

*Augmenting a task* (``augment_support``): for each support image ``x_i`` with label ``y_i``, draw
``num_extra`` latents around its posterior mean and decode their pixel means::

    z_ij = mu(x_i) + noise_scale * exp(logvar(x_i) / 2) * eps_ij,    x_ij = sigmoid(l_theta(z_ij)),   y_ij = y_i

``noise_scale = 0`` gives ``num_extra`` copies of the reconstruction of the mean, ``sigmoid(l(mu))``;
``noise_scale = 1`` samples the posterior itself. The VAE should be trained on background classes
only, so that no test class leaks into it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..reproducibility import make_generator
from ..tasks.episode import Episode, EpisodeError

__all__ = ["ConvVAE", "VAEOutput", "VAELossResult", "gaussian_kl", "vae_loss", "augment_support"]

IMAGE_SHAPE = (1, 28, 28)


def _normal(shape: torch.Size, like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal noise drawn on the CPU (so a CPU generator works for any device), then moved."""
    return torch.randn(shape, generator=generator, dtype=like.dtype).to(like.device)


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """``KL(Normal(mu, diag(exp(logvar))) || Normal(0, I)) = 1/2 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j)``.

    ``mu, logvar [..., latent_dim]`` -> ``[...]``.
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape [..., latent_dim], got "
                         f"{list(mu.shape)} and {list(logvar.shape)}")
    return 0.5 * (mu ** 2 + logvar.exp() - 1.0 - logvar).sum(-1)


@dataclass
class VAEOutput:
    """``logits`` of the decoder ``l_theta(z)`` ``[N, 1, 28, 28]`` (pixel means: ``sigmoid(logits)``),
    ``mu`` and ``logvar`` of ``q_phi(z | x)`` ``[N, latent_dim]``, and the latent ``z`` ``[N, latent_dim]``."""

    logits: Tensor
    mu: Tensor
    logvar: Tensor
    z: Tensor


class ConvVAE(nn.Module):
    """A small convolutional VAE for ``[N, 1, 28, 28]`` images with pixels in ``[0, 1]``.

    Encoder: ``28 -> 14 -> 7`` by two stride-2 4x4 convs (``hidden``, ``2 * hidden`` channels, ReLU),
    then a linear layer to ``mu`` and ``logvar``. Decoder: the mirror image with transposed convs,
    ending in one channel of Bernoulli logits.

    Example::

        vae = ConvVAE(latent_dim=16)
        opt = torch.optim.Adam(vae.parameters(), lr=1e-3)
        loss = vae_loss(vae, images).loss; opt.zero_grad(); loss.backward(); opt.step()
        bigger = augment_support(vae, episode, num_extra=4, noise_scale=0.5, generator=0)
    """

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        for name, value in (("latent_dim", latent_dim), ("hidden", hidden)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.encoder = nn.Sequential(
            nn.Conv2d(1, hidden, 4, stride=2, padding=1), nn.ReLU(),              # [N, h, 14, 14]
            nn.Conv2d(hidden, 2 * hidden, 4, stride=2, padding=1), nn.ReLU(),     # [N, 2h, 7, 7]
            nn.Flatten(),
            nn.Linear(2 * hidden * 7 * 7, 2 * latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, 2 * hidden * 7 * 7), nn.ReLU(),
            nn.Unflatten(1, (2 * hidden, 7, 7)),
            nn.ConvTranspose2d(2 * hidden, hidden, 4, stride=2, padding=1), nn.ReLU(),   # [N, h, 14, 14]
            nn.ConvTranspose2d(hidden, 1, 4, stride=2, padding=1),                       # [N, 1, 28, 28]
        )

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``mu, logvar`` of ``q_phi(z | x)``: ``[N, 1, 28, 28]`` -> two ``[N, latent_dim]``."""
        if x.dim() != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
            raise ValueError(f"ConvVAE input must be [N, 1, 28, 28], got {list(x.shape)}")
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar

    def decode_logits(self, z: Tensor) -> Tensor:
        """``l_theta(z)``: ``[N, latent_dim]`` -> Bernoulli logits ``[N, 1, 28, 28]``."""
        if z.dim() != 2 or z.shape[-1] != self.latent_dim:
            raise ValueError(f"latents must be [N, {self.latent_dim}] (latent_dim), got {list(z.shape)}")
        return self.decoder(z)

    def decode(self, z: Tensor) -> Tensor:
        """Pixel means ``sigmoid(l_theta(z))`` in ``[0, 1]``: ``[N, latent_dim]`` -> ``[N, 1, 28, 28]``."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: Tensor, sample: bool = True,
                generator: int | torch.Generator | None = None) -> VAEOutput:
        """Encode, draw ``z = mu + exp(logvar / 2) * eps`` (or ``z = mu`` with ``sample=False``), decode.

        ``generator``: a seed or ``torch.Generator`` for ``eps``; ``None`` uses torch's global one.
        """
        mu, logvar = self.encode(x)
        if sample:
            gen = None if generator is None else make_generator(generator)
            z = mu + (0.5 * logvar).exp() * _normal(mu.shape, mu, gen)
        else:
            z = mu
        return VAEOutput(logits=self.decode_logits(z), mu=mu, logvar=logvar, z=z)


@dataclass
class VAELossResult:
    """``loss``: mean over the batch of ``-ELBO`` (a scalar with a graph); ``reconstruction``:
    the BCE summed over pixels ``[N]``; ``kl``: ``KL(q || p)`` ``[N]``; ``output``: the forward pass."""

    loss: Tensor
    reconstruction: Tensor
    kl: Tensor
    output: VAEOutput


def vae_loss(model: ConvVAE, x: Tensor, beta: float = 1.0, sample: bool = True,
             generator: int | torch.Generator | None = None) -> VAELossResult:
    """Negative ELBO per image, averaged over the batch: ``mean_i [ BCE_sum(x_i) + beta * KL_i ]``.

    Args:
        x: ``[N, 1, 28, 28]`` with pixels in ``[0, 1]``.
        beta: weight of the KL term (>= 0; 1 for the ELBO).
        sample: one reparameterised sample of ``z`` (training); ``False`` decodes ``z = mu``
            (deterministic: a lower-variance estimate for evaluation).
        generator: as in ``ConvVAE.forward``.
    """
    if not beta >= 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    if x.numel() and (float(x.min()) < 0 or float(x.max()) > 1):
        raise ValueError(f"VAE images must have pixels in [0, 1] (Bernoulli targets), "
                         f"got values in [{float(x.min())}, {float(x.max())}]")
    out = model(x, sample=sample, generator=generator)
    reconstruction = F.binary_cross_entropy_with_logits(out.logits, x, reduction="none").flatten(1).sum(-1)
    kl = gaussian_kl(out.mu, out.logvar)
    return VAELossResult(loss=(reconstruction + beta * kl).mean(), reconstruction=reconstruction, kl=kl, output=out)


def augment_support(vae: ConvVAE, episode: Episode, num_extra: int, noise_scale: float = 1.0,
                    generator: int | torch.Generator | None = None) -> Episode:
    """The episode with ``num_extra`` decoded variations of every support image added (no graph).

    Each original is followed by its own ``num_extra`` variations (module docstring), so the new
    support is ``[x_1, x_11, ..., x_1E, x_2, x_21, ...]`` with labels
    ``support_y.repeat_interleave(1 + num_extra)``: support grouped by class (as ``EpisodeSampler``
    makes it) stays grouped by class, each class with ``K * (1 + num_extra)`` examples, originals
    first in each block of ``1 + num_extra``. ``num_shots`` becomes ``K * (1 + num_extra)``; the
    query set is unchanged.

    Args:
        vae: a trained ``ConvVAE``.
        episode: single (``support_x [N*K, 1, 28, 28]``) or batched (``[B, N*K, 1, 28, 28]``).
        num_extra: variations per support image (>= 0).
        noise_scale: multiplies the posterior standard deviation (>= 0).
        generator: a seed or ``torch.Generator`` for the noise; ``None`` uses torch's global one.

    Returns ``support_x [..., N*K*(1 + num_extra), 1, 28, 28]`` and ``support_y [..., N*K*(1 + num_extra)]``.
    """
    if not isinstance(episode, Episode):
        raise EpisodeError(f"augment_support needs an Episode, got {type(episode).__name__}")
    if not isinstance(num_extra, int) or isinstance(num_extra, bool) or num_extra < 0:
        raise ValueError(f"num_extra must be an int >= 0, got {num_extra!r}")
    if not noise_scale >= 0:
        raise ValueError(f"noise_scale must be >= 0, got {noise_scale}")
    sx, sy = episode.support_x, episode.support_y
    lead = 1 if episode.batched else 0
    if tuple(sx.shape[lead + 1:]) != IMAGE_SHAPE:
        want = "[B, n, 1, 28, 28]" if episode.batched else "[n, 1, 28, 28]"
        raise EpisodeError(f"augment_support needs support_x of shape {want}, got {list(sx.shape)}")
    copies = 1 + num_extra
    flat = sx.reshape(-1, *IMAGE_SHAPE)                                              # [n, 1, 28, 28]
    with torch.no_grad():
        mu, logvar = vae.encode(flat)                                                # [n, L]
        gen = None if generator is None else make_generator(generator)
        eps = _normal(torch.Size((flat.shape[0], num_extra, mu.shape[-1])), mu, gen)  # [n, E, L]
        z = mu.unsqueeze(1) + noise_scale * (0.5 * logvar).exp().unsqueeze(1) * eps  # [n, E, L]
        extra = vae.decode(z.reshape(-1, mu.shape[-1])).reshape(flat.shape[0], num_extra, *IMAGE_SHAPE)
    blocks = torch.cat([flat.unsqueeze(1), extra.to(flat.dtype)], dim=1)             # [n, 1 + E, 1, 28, 28]
    new_x = blocks.reshape(*sx.shape[:lead], sx.shape[lead] * copies, *IMAGE_SHAPE)
    new_y = sy.repeat_interleave(copies, dim=lead)
    num_shots = episode.num_shots * copies if episode.num_shots is not None else None
    return replace(episode, support_x=new_x, support_y=new_y, num_shots=num_shots)
