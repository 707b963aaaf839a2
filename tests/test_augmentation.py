"""The VAE's negative ELBO written out, and support-set augmentation's shapes, order and sampling.

- KL(q || p) is 0 exactly when the posterior is the prior (mu = 0, logvar = 0), positive
  otherwise, and equals torch.distributions' closed form;
- vae_loss is mean_i [ -log Bernoulli(x_i | sigmoid(l(z_i))) summed over pixels + beta * KL_i ],
  with z = mu (sample=False) or z = mu + exp(logvar / 2) * eps from the given generator;
- decoder outputs lie in [0, 1] even for extreme latents;
- augment_support keeps the originals (first in each block), repeats labels so that a support set
  grouped by class stays grouped by class, passes Episode's N*K check, leaves the query alone,
  and draws z = mu + noise_scale * std * eps: noise_scale = 0 gives the reconstruction of the mean;
- a couple of seconds of training on synthetic rectangles lowers the loss by more than half.
"""
from __future__ import annotations

import pytest
import torch

from metalearn_lite import Episode, EpisodeError
from metalearn_lite.algorithms import ConvVAE, augment_support, gaussian_kl, vae_loss
from metalearn_lite.data import EpisodeSampler
from metalearn_lite.tasks import SinusoidTasks


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def _rectangles(n: int, gen: torch.Generator) -> torch.Tensor:
    """``[n, 1, 28, 28]`` binary images of filled axis-aligned rectangles at random places and sizes."""
    corner = torch.randint(2, 14, (n, 2), generator=gen)
    size = torch.randint(6, 13, (n, 2), generator=gen)
    g = torch.arange(28)
    rows = (g[None] >= corner[:, :1]) & (g[None] < corner[:, :1] + size[:, :1])
    cols = (g[None] >= corner[:, 1:]) & (g[None] < corner[:, 1:] + size[:, 1:])
    return (rows[:, :, None] & cols[:, None, :]).float().unsqueeze(1)


def _vae(seed: int = 0, dtype=torch.float64) -> ConvVAE:
    torch.manual_seed(seed)
    return ConvVAE(latent_dim=5, hidden=4).to(dtype)


def _episode(batched: bool = False) -> Episode:
    """3-way 2-shot 2-query episodes of rectangles (class = one rectangle, jittered), as EpisodeSampler makes them."""
    gen = torch.Generator().manual_seed(5)
    base = _rectangles(6, gen)
    class_images = (base[:, None] + 0.3 * torch.rand(6, 5, 1, 28, 28, generator=gen)).clamp(0, 1).double()
    sampler = EpisodeSampler(class_images, num_ways=3, num_shots=2, num_queries=2, seed=1)
    return sampler.sample_batch(2) if batched else sampler.sample()


# ---------------------------------------------------------------------------- the ELBO
def test_gaussian_kl_is_zero_at_the_prior_and_positive_elsewhere():
    zero = gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4))
    assert zero.shape == (3,) and torch.equal(zero, torch.zeros(3))
    gen = torch.Generator().manual_seed(0)
    mu = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    logvar = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    for m, lv in ((mu, torch.zeros_like(logvar)), (torch.zeros_like(mu), logvar), (mu, logvar)):
        kl = gaussian_kl(m, lv)
        assert bool((kl > 0).all())
        q = torch.distributions.Normal(m, (0.5 * lv).exp())
        p = torch.distributions.Normal(torch.zeros_like(m), torch.ones_like(m))
        assert torch.allclose(kl, torch.distributions.kl_divergence(q, p).sum(-1), atol=1e-12)


def test_vae_kl_term_vanishes_when_the_encoder_outputs_the_prior():
    vae = _vae()
    x = _rectangles(3, torch.Generator().manual_seed(1)).double()
    with torch.no_grad():
        vae.encoder[-1].weight.zero_()
        vae.encoder[-1].bias.zero_()
    result = vae_loss(vae, x, beta=3.0, generator=0)
    assert torch.equal(result.kl, torch.zeros(3, dtype=torch.float64))
    assert torch.allclose(result.loss, result.reconstruction.mean(), atol=1e-12)
    with torch.no_grad():
        vae.encoder[-1].bias[0] = 0.5                                             # mu_0 = 0.5 for every image
    assert bool((vae_loss(vae, x, generator=0).kl > 0).all())


@pytest.mark.parametrize("beta", [1.0, 2.5])
def test_vae_loss_is_the_negative_elbo_written_out(beta):
    vae = _vae(1)
    x = (_rectangles(4, torch.Generator().manual_seed(2)) * 0.9 + 0.05).double()   # pixels strictly inside (0, 1)
    mu, logvar = vae.encode(x)
    kl_by_hand = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(-1)

    def neg_elbo(z):
        p = torch.sigmoid(vae.decode_logits(z))
        bce = -(x * torch.log(p) + (1 - x) * torch.log(1 - p)).flatten(1).sum(-1)
        return bce, (bce + beta * kl_by_hand).mean()

    # z = mu: deterministic.
    result = vae_loss(vae, x, beta=beta, sample=False)
    bce, expected = neg_elbo(mu)
    assert torch.allclose(result.reconstruction, bce, atol=1e-9)
    assert torch.allclose(result.kl, kl_by_hand, atol=1e-12)
    assert torch.allclose(result.loss, expected, atol=1e-9)
    bernoulli = torch.distributions.Bernoulli(logits=vae.decode_logits(mu), validate_args=False)  # soft targets
    assert torch.allclose(result.reconstruction, -bernoulli.log_prob(x).flatten(1).sum(-1), atol=1e-9)
    # One reparameterised sample: eps from the given generator.
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    sampled = vae_loss(vae, x, beta=beta, sample=True, generator=7)
    z = mu + (0.5 * logvar).exp() * eps
    assert torch.allclose(sampled.output.z, z, atol=1e-12)
    assert torch.allclose(sampled.loss, neg_elbo(z)[1], atol=1e-9)
    assert not torch.allclose(sampled.loss, result.loss, atol=1e-6)              # the sample did move z
    # beta weighs the KL term only.
    assert torch.allclose(vae_loss(vae, x, beta=beta + 1, sample=False).loss - result.loss, kl_by_hand.mean(),
                          atol=1e-9)


def test_decoder_outputs_lie_in_the_unit_interval():
    vae = _vae(2, torch.float32)
    z = torch.cat([100 * torch.randn(8, 5), torch.zeros(1, 5), -100 * torch.ones(1, 5)])
    with torch.no_grad():
        images = vae.decode(z)
    assert images.shape == (10, 1, 28, 28)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    assert float(images.max()) - float(images.min()) > 0.5                         # not a constant image


# ---------------------------------------------------------------------------- augmentation
def test_augment_support_keeps_originals_groups_labels_by_class_and_leaves_the_query():
    vae = _vae(3)
    episode = _episode()
    assert torch.equal(episode.support_y, torch.tensor([0, 0, 1, 1, 2, 2]))         # EpisodeSampler's convention
    num_extra = 3
    big = augment_support(vae, episode, num_extra=num_extra, noise_scale=1.0, generator=0)
    assert big.support_x.shape == (6 * 4, 1, 28, 28) and big.support_y.shape == (24,)
    assert torch.equal(big.support_y, torch.arange(3).repeat_interleave(8))        # still grouped by class
    assert (big.num_ways, big.num_shots, big.num_queries) == (3, 8, 2)
    Episode(*big.tensors(), num_ways=3, num_shots=8, num_queries=2)                # Episode's own N*K check accepts it
    assert torch.equal(big.support_x[::4], episode.support_x)                      # originals first in each block
    assert big.query_x is episode.query_x and big.query_y is episode.query_y
    extras = big.support_x.reshape(6, 4, 1, 28, 28)[:, 1:]
    assert float(extras.min()) >= 0 and float(extras.max()) <= 1
    assert float((extras[:, 0] - extras[:, 1]).abs().max()) > 1e-4                  # different noise per copy
    assert not big.support_x.requires_grad
    # Each extra decodes a latent drawn around its own original's posterior: z = mu + 1.0 * std * eps.
    mu, logvar = vae.encode(episode.support_x)
    eps = torch.randn(6, num_extra, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    z = mu[:, None] + (0.5 * logvar).exp()[:, None] * eps
    assert torch.allclose(extras, vae.decode(z.reshape(-1, 5)).reshape(6, 3, 1, 28, 28), atol=1e-12)


def test_noise_scale_zero_reproduces_the_reconstruction_of_the_mean_and_scales_the_noise():
    vae = _vae(4)
    episode = _episode()
    mu, logvar = vae.encode(episode.support_x)
    reconstruction = vae.decode(mu)                                                 # [6, 1, 28, 28]
    big = augment_support(vae, episode, num_extra=2, noise_scale=0.0, generator=0)
    extras = big.support_x.reshape(6, 3, 1, 28, 28)[:, 1:]
    assert torch.allclose(extras, reconstruction[:, None].expand(-1, 2, -1, -1, -1), atol=1e-12)
    assert not torch.allclose(reconstruction, episode.support_x, atol=0.1)          # a reconstruction, not a copy
    half = augment_support(vae, episode, num_extra=2, noise_scale=0.5, generator=9).support_x.reshape(6, 3, 1, 28, 28)
    eps = torch.randn(6, 2, 5, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    z = mu[:, None] + 0.5 * (0.5 * logvar).exp()[:, None] * eps
    assert torch.allclose(half[:, 1:], vae.decode(z.reshape(-1, 5)).reshape(6, 2, 1, 28, 28), atol=1e-12)
    assert torch.equal(augment_support(vae, episode, num_extra=0).support_x, episode.support_x)


def test_augment_batched_episode_equals_each_task():
    vae = _vae(5)
    batch = _episode(batched=True)
    big = augment_support(vae, batch, num_extra=2, noise_scale=0.0)
    assert big.support_x.shape == (2, 18, 1, 28, 28) and big.batched and big.num_shots == 6
    assert torch.equal(big.support_y, torch.arange(3).repeat_interleave(6).expand(2, -1))
    for b in range(2):
        single = augment_support(vae, batch[b], num_extra=2, noise_scale=0.0)
        assert torch.allclose(big.support_x[b], single.support_x, atol=1e-12)


def test_tiny_training_on_rectangles_lowers_the_loss():
    torch.manual_seed(0)
    vae = ConvVAE(latent_dim=4, hidden=8)
    held_out = _rectangles(64, torch.Generator().manual_seed(9))
    with torch.no_grad():
        before = float(vae_loss(vae, held_out, sample=False).loss)
    opt = torch.optim.Adam(vae.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(1)
    for _ in range(40):
        loss = vae_loss(vae, _rectangles(32, gen), generator=gen).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = vae_loss(vae, held_out, sample=False)
    assert before > 0.5 * 784 * 0.69, before                                        # ~ BCE of p = 1/2 at init
    assert float(after.loss) < 0.5 * before, (before, float(after.loss))


def test_augmentation_errors():
    vae = _vae()
    with pytest.raises(ValueError, match=r"ConvVAE input must be \[N, 1, 28, 28\], got \[2, 28, 28\]"):
        vae.encode(torch.zeros(2, 28, 28, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"pixels in \[0, 1\]"):
        vae_loss(vae, torch.full((2, 1, 28, 28), 2.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="beta must be >= 0"):
        vae_loss(vae, torch.zeros(2, 1, 28, 28, dtype=torch.float64), beta=-1.0)
    with pytest.raises(ValueError, match="num_extra must be an int >= 0"):
        augment_support(vae, _episode(), num_extra=-1)
    with pytest.raises(ValueError, match="noise_scale must be >= 0"):
        augment_support(vae, _episode(), num_extra=1, noise_scale=-0.5)
    with pytest.raises(EpisodeError, match=r"support_x of shape \[B, n, 1, 28, 28\], got \[2, 3, 1\]"):
        augment_support(vae, SinusoidTasks().sample(2, 3, 3, generator=0), num_extra=1)
    with pytest.raises(ValueError, match=r"latents must be \[N, 5\]"):
        vae.decode(torch.zeros(2, 4, dtype=torch.float64))
