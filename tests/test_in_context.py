"""In-context learning with a transformer (chapter 09) and the neural processes' std floor.

- one layer is the written-out equations: every token (context and target) attends to the
  context tokens only, pre-norm, residual, feed-forward;
- the context is a set: permuting it leaves every prediction unchanged (regression and
  classification), while its values do matter; targets never see each other;
- a short training run beats a constant predictor on held-out GP tasks, and a short run on
  clustered features classifies 5-way 1-shot far above chance;
- the decoder std floor: ``bounded_std`` never goes below ``min_std``, bad floors are refused,
  models keep the papers' 0.1 unless told otherwise (so the chapter-04 checkpoints load as
  trained), and a floor of 1e-3 lets a model's log-likelihood pass the 0.1 floor's cap of 1.384.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from metalearn_lite import Episode
from metalearn_lite.algorithms import CNP, AttentiveNP, InContextClassifier, InContextRegressor, LatentNP
from metalearn_lite.algorithms.in_context import ContextAttentionLayer
from metalearn_lite.algorithms.neural_process import DEFAULT_MIN_STD, bounded_std, gaussian_log_likelihood
from metalearn_lite.tasks import EpisodeError, GPCurves

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def test_a_layer_is_the_written_out_equations():
    torch.manual_seed(0)
    d, heads, n_c, n_t = 8, 2, 5, 3
    layer = ContextAttentionLayer(d, heads, 16).double()
    h = torch.randn(2, n_c + n_t, d, dtype=torch.float64)
    got = layer(h, n_c)

    a = F.layer_norm(h, (d,), layer.norm1.weight, layer.norm1.bias)
    w_q, w_k, w_v = layer.attention.in_proj_weight.chunk(3)
    b_q, b_k, b_v = layer.attention.in_proj_bias.chunk(3)
    q, k, v = a @ w_q.T + b_q, a[:, :n_c] @ w_k.T + b_k, a[:, :n_c] @ w_v.T + b_v
    d_h = d // heads
    outs = []
    for j in range(heads):
        s = slice(j * d_h, (j + 1) * d_h)
        weights = torch.softmax(q[..., s] @ k[..., s].transpose(1, 2) / math.sqrt(d_h), dim=-1)  # [B, n, n_c]
        assert torch.allclose(weights.sum(-1), torch.ones(2, n_c + n_t, dtype=torch.float64))
        outs.append(weights @ v[..., s])
    h2 = h + torch.cat(outs, -1) @ layer.attention.out_proj.weight.T + layer.attention.out_proj.bias
    ff = layer.feedforward
    expected = h2 + ff(F.layer_norm(h2, (d,), layer.norm2.weight, layer.norm2.bias))
    assert torch.allclose(got, expected, atol=1e-10)


def test_regressor_predictions_ignore_the_order_of_the_context_and_other_targets():
    torch.manual_seed(0)
    model = InContextRegressor(d_model=16, num_heads=2, num_layers=2, dim_feedforward=32)
    episode = GPCurves().sample(3, num_context=7, num_extra_targets=6, generator=1)
    cx, cy, tx = episode.support_x, episode.support_y, episode.query_x
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(2))
    assert not torch.equal(perm, torch.arange(7))
    a, b = model(cx, cy, tx), model(cx[:, perm], cy[:, perm], tx)
    assert torch.allclose(a.mean, b.mean, atol=1e-5) and torch.allclose(a.std, b.std, atol=1e-5)
    # Each target is predicted from the context alone: dropping the other targets changes nothing.
    alone = model(cx, cy, tx[:, 4:5])
    assert torch.allclose(alone.mean, a.mean[:, 4:5], atol=1e-5)
    # ...and the context values matter (the test is not vacuous).
    c = model(cx, cy.flip(1), tx)
    assert not torch.allclose(a.mean, c.mean, atol=1e-4)


def test_regressor_loss_is_the_gaussian_nll_per_target_point():
    torch.manual_seed(0)
    model = InContextRegressor(d_model=16, num_heads=2, num_layers=1, dim_feedforward=16)
    episode = GPCurves().sample(4, num_context=5, num_extra_targets=3, generator=0)
    out = model.loss(episode)
    pred = model(episode.support_x, episode.support_y, episode.query_x)
    ll = gaussian_log_likelihood(episode.query_y, pred.mean, pred.std).sum(-1).mean(-1)
    assert out.log_likelihood.shape == (4,)
    assert torch.allclose(out.log_likelihood, ll, atol=1e-6)
    assert torch.allclose(out.loss, -ll.mean(), atol=1e-6)
    assert torch.allclose(model.log_likelihood(episode), ll, atol=1e-6)


def test_short_training_beats_a_constant_predictor_on_held_out_gp_tasks():
    torch.manual_seed(0)
    gp = GPCurves(lengthscale=1.0, min_context=3, max_context=15)
    model = InContextRegressor(d_model=32, num_heads=4, num_layers=1, dim_feedforward=64)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    held_out = gp.sample(200, num_context=10, num_extra_targets=20, generator=999)
    gen = torch.Generator().manual_seed(1)
    before = float(model.log_likelihood(held_out).mean())
    for _ in range(150):
        loss = model.loss(gp.sample(16, generator=gen)).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    after = float(model.log_likelihood(held_out).mean())
    mean = held_out.support_y.mean(1, keepdim=True)
    std = held_out.support_y.std(1, keepdim=True).clamp_min(1e-3)
    constant = float(gaussian_log_likelihood(held_out.query_y, mean, std).sum(-1).mean())
    oracle = float(gp.log_likelihood(held_out).mean())
    assert after > before + 0.5, (before, after)
    assert after > constant + 0.2, (after, constant)
    assert after < oracle


def _clustered_features(batch, generator, ways=5, queries=3, dim=12):
    """Episodes whose classes are random Gaussian clusters in feature space (labels random per episode)."""
    centres = torch.randn(batch, ways, dim, generator=generator) * 2
    labels = torch.stack([torch.randperm(ways, generator=generator) for _ in range(batch)])   # one shot per class
    support = centres.gather(1, labels.unsqueeze(-1).expand(-1, -1, dim)) + 0.3 * torch.randn(batch, ways, dim,
                                                                                              generator=generator)
    query_labels = torch.randint(0, ways, (batch, queries), generator=generator)
    query = centres.gather(1, query_labels.unsqueeze(-1).expand(-1, -1, dim)) + 0.3 * torch.randn(
        batch, queries, dim, generator=generator)
    return support, labels, query, query_labels


def test_classifier_reads_labels_in_context_after_a_short_run_and_ignores_support_order():
    torch.manual_seed(0)
    model = InContextClassifier(feature_dim=12, num_ways=5, d_model=32, num_heads=4, num_layers=1)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    held_out = _clustered_features(200, torch.Generator().manual_seed(99))
    with torch.no_grad():
        before = float(model.loss(*held_out)[1].mean())
    for _ in range(600):   # at chance for ~300 steps (a plateau), then it finds the matching rule
        loss, _ = model.loss(*_clustered_features(32, gen))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        after = float(model.loss(*held_out)[1].mean())
        s, y, q, _ = held_out
        perm = torch.tensor([3, 0, 4, 1, 2])
        assert torch.allclose(model(s, y, q), model(s[:, perm], y[:, perm], q), atol=1e-5)
    assert before < 0.4 and after > 0.8, (before, after)


def test_classifier_shape_errors_name_what_was_expected():
    model = InContextClassifier(feature_dim=4, num_ways=3, d_model=8, num_heads=2, num_layers=1)
    with pytest.raises(EpisodeError, match=r"support_features must be \[B, n, 4\], got \[2, 3\]"):
        model(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 1, 4))
    with pytest.raises(EpisodeError, match=r"support_labels must lie in 0..2"):
        model(torch.zeros(2, 3, 4), torch.full((2, 3), 3), torch.zeros(2, 1, 4))
    with pytest.raises(EpisodeError, match="at least one context point"):
        InContextRegressor(d_model=8, num_heads=2, num_layers=1)(torch.zeros(1, 0, 1), torch.zeros(1, 0, 1),
                                                                 torch.zeros(1, 2, 1))


def test_std_floor_is_respected_and_checked():
    raw = torch.tensor([-1e4, -5.0, 0.0, 3.0])
    for floor in (0.1, 1e-3):
        std = bounded_std(raw, floor)
        assert float(std.min()) == pytest.approx(floor) and torch.all(std >= floor)
    assert torch.equal(bounded_std(raw), bounded_std(raw, 0.1))
    for bad in (0.0, -0.1, 1.0):
        with pytest.raises(ValueError, match=r"min_std must be in \(0, 1\)"):
            CNP(hidden=8, r_dim=8, min_std=bad)


def test_models_keep_the_papers_floor_by_default_and_record_another():
    assert DEFAULT_MIN_STD == 0.1
    assert CNP(hidden=8, r_dim=8).min_std == 0.1
    assert LatentNP(hidden=8, r_dim=8, z_dim=2).min_std == 0.1
    assert AttentiveNP(hidden=8, r_dim=8, num_heads=2).min_std == 0.1
    assert AttentiveNP(hidden=8, r_dim=8, num_heads=2, min_std=1e-3).min_std == 1e-3
    assert InContextRegressor(d_model=8, num_heads=2, num_layers=1).min_std == 1e-3


@pytest.mark.parametrize("model_fn", [lambda f: CNP(hidden=8, r_dim=8, min_std=f),
                                      lambda f: AttentiveNP(hidden=8, r_dim=8, num_heads=2, latent_path=False,
                                                            min_std=f)])
def test_a_small_floor_lifts_the_likelihood_cap(model_fn):
    """With the decoder's std driven to its floor and the mean exact, the log-likelihood per target is
    ``-1/2 log(2 pi) - log(floor)``: 1.384 at 0.1 (below the GP oracle's ~1.5 at 40 points), 5.99 at 1e-3."""
    episode = GPCurves().sample(2, num_context=4, num_extra_targets=3, generator=0)
    for floor in (0.1, 1e-3):
        model = model_fn(floor)
        with torch.no_grad():
            last = model.decoder[-1]
            last.weight.zero_()
            last.bias.copy_(torch.tensor([0.0, -1e4]))    # mean 0, raw std -> floor
        zero = Episode(episode.support_x, episode.support_y, episode.query_x, torch.zeros_like(episode.query_y),
                       batched=True)
        ll = model.log_likelihood(zero)
        assert torch.allclose(ll, torch.full((2,), -0.5 * math.log(2 * math.pi) - math.log(floor)), atol=1e-3)

