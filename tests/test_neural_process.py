"""Neural processes (chapter 04): learning, the ELBO's KL, the Monte Carlo log-likelihood,
permutation invariance and shape errors."""
from __future__ import annotations

import math

import pytest
import torch

from metalearn_lite import Episode
from metalearn_lite.algorithms import CNP, LatentNP, gaussian_log_likelihood
from metalearn_lite.tasks import EpisodeError, GPCurves


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def _constant_predictor_ll(episode: Episode) -> torch.Tensor:
    """Per-target-point log-likelihood ``[B]`` of N(context mean, context std^2) at every target."""
    mean = episode.support_y.mean(1, keepdim=True)
    std = episode.support_y.std(1, keepdim=True).clamp_min(1e-3)
    return gaussian_log_likelihood(episode.query_y, mean, std).sum(-1).mean(-1)


@pytest.mark.parametrize("model_cls", [CNP, LatentNP])
def test_short_training_beats_a_constant_predictor_on_held_out_tasks(model_cls):
    torch.manual_seed(0)
    gp = GPCurves(lengthscale=1.0, min_context=5, max_context=15)
    model = model_cls(hidden=32, r_dim=32) if model_cls is CNP else model_cls(hidden=32, r_dim=32, z_dim=16)
    optimiser = torch.optim.Adam(model.parameters(), lr=5e-3)
    held_out = gp.sample(200, num_context=10, num_extra_targets=20, generator=999)
    gen = torch.Generator().manual_seed(1)

    def held_out_ll() -> float:
        if isinstance(model, LatentNP):
            return float(model.log_likelihood(held_out, num_samples=16, generator=torch.Generator().manual_seed(0)).mean())
        return float(model.log_likelihood(held_out).mean())

    before = held_out_ll()
    for _ in range(250):
        loss = model.loss(gp.sample(16, generator=gen)).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    after = held_out_ll()
    baseline = float(_constant_predictor_ll(held_out).mean())
    oracle = float(gp.log_likelihood(held_out).mean())
    assert after > before + 0.2, (before, after)
    assert after > baseline + 0.1, f"{model_cls.__name__} {after:.3f} vs constant predictor {baseline:.3f}"
    assert after < oracle, "no model beats the exact GP posterior on average"


def _kl_diag_by_hand(mu_q, std_q, mu_p, std_p):
    return (torch.log(std_p / std_q) + (std_q**2 + (mu_q - mu_p) ** 2) / (2 * std_p**2) - 0.5).sum(-1)


def test_latent_np_elbo_kl_is_nonnegative_and_matches_the_diagonal_gaussian_formula():
    torch.manual_seed(0)
    model = LatentNP(hidden=16, r_dim=16, z_dim=8)
    episode = GPCurves().sample(6, num_context=4, num_extra_targets=7, generator=3)
    torch.manual_seed(123)
    out = model.loss(episode)
    prior = model.latent(episode.support_x, episode.support_y)          # q(z | C)
    posterior = model.latent(episode.query_x, episode.query_y)          # q(z | C u T)
    kl = _kl_diag_by_hand(posterior.loc, posterior.scale, prior.loc, prior.scale)
    assert out.kl.shape == (6,)
    assert torch.all(out.kl >= 0)
    assert torch.allclose(out.kl, kl, atol=1e-6, rtol=1e-5)
    # KL(q || q) = 0: a context equal to the targets gives the prior as posterior.
    same = Episode(episode.query_x, episode.query_y, episode.query_x, episode.query_y, batched=True)
    assert torch.allclose(model.loss(same).kl, torch.zeros(6), atol=1e-6)

    # The whole loss is the negative ELBO per target point with one reparameterised z.
    torch.manual_seed(123)
    z = posterior.loc + posterior.scale * torch.randn_like(posterior.loc)
    pred = model.decode(episode.query_x, z.unsqueeze(0), model._r(episode.support_x, episode.support_y))
    ll = gaussian_log_likelihood(episode.query_y, pred.mean[0], pred.std[0]).sum((-1, -2))
    n_t = episode.query_x.shape[1]
    assert torch.allclose(out.loss, -((ll - kl) / n_t).mean(), atol=1e-5)


def test_latent_np_log_likelihood_is_a_log_mean_exp_over_samples_of_z():
    torch.manual_seed(0)
    model = LatentNP(hidden=16, r_dim=16, z_dim=4)
    episode = GPCurves().sample(3, num_context=5, num_extra_targets=6, generator=4)
    num_samples = 7
    got = model.log_likelihood(episode, num_samples=num_samples, generator=torch.Generator().manual_seed(5))

    # Brute force: the same draws z_s = mu + sigma * eps_s, one decoder call per sample,
    # probabilities averaged in float64, then log, then the mean over target points.
    eps = torch.randn((num_samples, 3, 4), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        prior = model.latent(episode.support_x, episode.support_y)
        r = model._r(episode.support_x, episode.support_y)
        probs = torch.zeros(3, episode.query_x.shape[1], dtype=torch.float64)
        per_sample = []
        for s in range(num_samples):
            z = (prior.loc + prior.scale * eps[s]).unsqueeze(0)
            pred = model.decode(episode.query_x, z, r)
            ll_s = gaussian_log_likelihood(episode.query_y, pred.mean[0], pred.std[0]).sum(-1)  # [B, n_t]
            per_sample.append(ll_s.mean(-1))
            probs += ll_s.double().exp() / num_samples
    expected = probs.log().mean(-1).float()
    assert got.shape == (3,)
    assert torch.allclose(got, expected, atol=1e-5), (got, expected)
    # Jensen: log E[p] >= E[log p], and it is not the single best sample either.
    assert torch.all(got >= torch.stack(per_sample).mean(0) - 1e-6)

    # One sample: exactly the Gaussian log-likelihood of that draw.
    one = model.log_likelihood(episode, num_samples=1, generator=torch.Generator().manual_seed(5))
    first = torch.randn((1, 3, 4), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        pred = model.decode(episode.query_x, prior.loc + prior.scale * first, r)
        single = gaussian_log_likelihood(episode.query_y, pred.mean[0], pred.std[0]).sum(-1).mean(-1)
    assert torch.allclose(one, single, atol=1e-6)


def test_latent_np_log_likelihood_is_stable_for_tiny_probabilities():
    torch.manual_seed(0)
    model = LatentNP(hidden=16, r_dim=16, z_dim=4)
    episode = GPCurves().sample(2, num_context=3, num_extra_targets=4, generator=4)
    far = Episode(episode.support_x, episode.support_y, episode.query_x, episode.query_y + 1e3, batched=True)
    ll = model.log_likelihood(far, num_samples=8, generator=torch.Generator().manual_seed(0))
    assert torch.all(torch.isfinite(ll)) and torch.all(ll < -1e4)


def test_cnp_predictions_do_not_depend_on_the_order_of_the_context():
    torch.manual_seed(0)
    model = CNP(hidden=32, r_dim=32)
    episode = GPCurves().sample(4, num_context=9, num_extra_targets=5, generator=7)
    cx, cy, tx = episode.support_x, episode.support_y, episode.query_x
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(perm, torch.arange(9))
    a, b = model(cx, cy, tx), model(cx[:, perm], cy[:, perm], tx)
    assert torch.allclose(a.mean, b.mean, atol=1e-6) and torch.allclose(a.std, b.std, atol=1e-6)
    assert torch.allclose(model.represent(cx, cy), model.represent(cx[:, perm], cy[:, perm]), atol=1e-6)
    # ...but they do depend on the context values (the test is not vacuous).
    c = model(cx, cy.flip(1), tx)
    assert not torch.allclose(a.mean, c.mean, atol=1e-4)

    latent = LatentNP(hidden=16, r_dim=16, z_dim=4)
    p = latent(cx, cy, tx, num_samples=4, generator=torch.Generator().manual_seed(0))
    q = latent(cx[:, perm], cy[:, perm], tx, num_samples=4, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(p.mean, q.mean, atol=1e-5) and torch.allclose(p.std, q.std, atol=1e-5)


def test_predictions_have_the_documented_shapes_and_positive_std():
    model, latent = CNP(hidden=16, r_dim=16), LatentNP(hidden=16, r_dim=16, z_dim=4)
    cx, cy, tx = torch.randn(2, 5, 1), torch.randn(2, 5, 1), torch.randn(2, 11, 1)
    for pred in (model(cx, cy, tx), latent(cx, cy, tx, num_samples=3)):
        assert pred.mean.shape == pred.std.shape == (2, 11, 1)
        assert torch.all(pred.std > 0)


@pytest.mark.parametrize("model_cls", [CNP, LatentNP])
@pytest.mark.parametrize("shapes, message", [
    (((2, 5), (2, 5, 1), (2, 7, 1)), "context_x must be [B, n, 1], got [2, 5]"),
    (((2, 5, 1), (2, 5, 2), (2, 7, 1)), "context_y must be [B, n, 1], got [2, 5, 2]"),
    (((2, 5, 1), (2, 5, 1), (7, 1)), "target_x must be [B, n, 1], got [7, 1]"),
    (((2, 5, 1), (2, 4, 1), (2, 7, 1)), "context_x and context_y must agree on [B, n_c]"),
    (((2, 5, 1), (2, 5, 1), (3, 7, 1)), "context and target need the same B, got 2 and 3"),
])
def test_shape_errors_name_what_was_expected_and_what_came(model_cls, shapes, message):
    model = model_cls(hidden=8, r_dim=8) if model_cls is CNP else model_cls(hidden=8, r_dim=8, z_dim=2)
    cx, cy, tx = (torch.zeros(s) for s in shapes)
    with pytest.raises(EpisodeError) as info:
        model(cx, cy, tx)
    assert message in str(info.value)


def test_loss_on_an_unbatched_episode_says_it_needs_a_batch():
    episode = GPCurves().sample(1, num_context=3, num_extra_targets=2, generator=0)[0]
    for model in (CNP(hidden=8, r_dim=8), LatentNP(hidden=8, r_dim=8, z_dim=2)):
        with pytest.raises(EpisodeError, match=r"must be \[B, n, 1\], got \[3, 1\]"):
            model.loss(episode)


def test_gaussian_log_likelihood_matches_torch_distributions():
    y, mean, std = torch.randn(3, 4, 1), torch.randn(3, 4, 1), torch.rand(3, 4, 1) + 0.1
    expected = torch.distributions.Normal(mean, std).log_prob(y)
    assert torch.allclose(gaussian_log_likelihood(y, mean, std), expected, atol=1e-6)
    assert math.isclose(float(gaussian_log_likelihood(torch.zeros(1), torch.zeros(1), torch.ones(1))),
                        -0.5 * math.log(2 * math.pi), rel_tol=1e-6)
