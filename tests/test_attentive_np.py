"""Attentive neural process: the attention equations written out, permutation invariance,
attention that learns to look at the right context point, and the ELBO.

- cross-attention weights are probability vectors over the context, equal to
  softmax((W_q e(x_t))(W_k e(x_i)) / sqrt(d_h)) per head computed here from the module's own
  weights, and r*_t is W_o concat_h(sum_i w W_v r_i);
- permuting the context permutes the weights' context axis and leaves every prediction
  unchanged (with and without self-attention), while the context values do matter;
- after 150 training steps on GP curves, a target placed exactly at a context input puts most
  of its attention on that context point (at initialisation: about uniform);
- the loss is the negative ELBO per target point written out (KL >= 0, shapes [B]); the
  attentive CNP variant's loss is the Gaussian NLL; CNP, LatentNP and AttentiveNP share one
  calling convention; shape errors say what was expected.
"""
from __future__ import annotations

import math

import pytest
import torch

from metalearn_lite import Episode
from metalearn_lite.algorithms import CNP, AttentiveNP, LatentNP, gaussian_log_likelihood
from metalearn_lite.tasks import EpisodeError, GPCurves


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def _double_episode(num_tasks=3, num_context=6, num_extra_targets=5, seed=0) -> Episode:
    ep = GPCurves().sample(num_tasks, num_context=num_context, num_extra_targets=num_extra_targets, generator=seed)
    return Episode(*(t.double() for t in ep.tensors()), batched=True)


def test_cross_attention_weights_and_representation_match_the_equations():
    torch.manual_seed(0)
    model = AttentiveNP(hidden=16, r_dim=12, z_dim=4, num_heads=3).double()
    ep = _double_episode()
    cx, cy, tx = ep.support_x, ep.support_y, ep.query_x
    r_star, weights = model.attend(cx, cy, tx)
    b, n_c, n_t, h, d = 3, 6, 11, 3, 4
    assert weights.shape == (b, h, n_t, n_c) and r_star.shape == (b, n_t, 12)
    assert torch.all(weights >= 0)
    assert torch.allclose(weights.sum(-1), torch.ones(b, h, n_t, dtype=torch.float64), atol=1e-12)

    # Written out from the module's own projections.
    att = model.cross_attention
    w_q, w_k, w_v = att.in_proj_weight.split(12)
    b_q, b_k, b_v = att.in_proj_bias.split(12)
    with torch.no_grad():
        values = model.deterministic(torch.cat([cx, cy], -1))            # r_i
        e_c, e_t = model.x_embedding(cx), model.x_embedding(tx)          # keys, queries

        def heads(t):                                                    # [B, n, H*d] -> [B, H, n, d]
            return t.view(t.shape[0], t.shape[1], h, d).transpose(1, 2)

        q, k, v = heads(e_t @ w_q.T + b_q), heads(e_c @ w_k.T + b_k), heads(values @ w_v.T + b_v)
        expected_w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)
        mixed = (expected_w @ v).transpose(1, 2).reshape(b, n_t, h * d)
        expected_r = att.out_proj(mixed)
    assert torch.allclose(weights, expected_w, atol=1e-12)
    assert torch.allclose(r_star, expected_r, atol=1e-12)
    assert float((weights.max() - weights.min()).detach()) > 1e-3  # not uniform, so the comparison has teeth
    # r*_t differs between targets (a CNP's r would not).
    assert not torch.allclose(r_star[:, 0], r_star[:, 1], atol=1e-6)


@pytest.mark.parametrize("self_attention", [False, True])
def test_predictions_are_invariant_to_the_order_of_the_context(self_attention):
    torch.manual_seed(1)
    model = AttentiveNP(hidden=16, r_dim=16, z_dim=4, num_heads=4, self_attention=self_attention).double()
    ep = _double_episode(num_context=9, seed=1)
    cx, cy, tx = ep.support_x, ep.support_y, ep.query_x
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(2))
    assert not torch.equal(perm, torch.arange(9))

    a = model(cx, cy, tx, num_samples=4, generator=torch.Generator().manual_seed(0))
    p = model(cx[:, perm], cy[:, perm], tx, num_samples=4, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(a.mean, p.mean, atol=1e-10) and torch.allclose(a.std, p.std, atol=1e-10)
    # The weights follow their context points: column j of the permuted run is column perm[j].
    w = model.attention_weights(cx, cy, tx)
    assert torch.allclose(model.attention_weights(cx[:, perm], cy[:, perm], tx), w[..., perm], atol=1e-12)
    g = torch.Generator().manual_seed(3)
    assert torch.allclose(model.log_likelihood(ep, num_samples=4, generator=g),
                          model.log_likelihood(Episode(cx[:, perm], cy[:, perm], tx, ep.query_y, batched=True),
                                               num_samples=4, generator=torch.Generator().manual_seed(3)), atol=1e-10)
    # ...but the predictions do depend on the context values, and on which y goes with which x.
    c = model(cx, cy[:, perm], tx, num_samples=4, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(a.mean, c.mean, atol=1e-4)


def test_a_target_at_a_context_input_learns_to_attend_to_it():
    """1.5 s of training on GP curves (lengthscale 0.4): for targets placed exactly at the 10 context
    inputs, the weight on the matching context point goes from about 1/10 to most of it. The
    attentive CNP (no latent path) keeps it cheap: the attention is the same code as in the ANP."""
    torch.manual_seed(0)
    gp = GPCurves()
    model = AttentiveNP(hidden=32, r_dim=32, num_heads=1, latent_path=False)
    held_out = gp.sample(64, num_context=10, num_extra_targets=10, generator=999)

    def own_point_attention() -> tuple[float, float]:
        with torch.no_grad():
            w = model.attention_weights(held_out.support_x, held_out.support_y, held_out.support_x).mean(1)
        own = torch.diagonal(w, dim1=-2, dim2=-1)                       # [B, n_c]: target t at context x_t
        return float(own.mean()), float((w.argmax(-1) == torch.arange(10)).float().mean())

    before_weight, _ = own_point_attention()
    optimiser = torch.optim.Adam(model.parameters(), lr=5e-3)
    gen = torch.Generator().manual_seed(1)
    for _ in range(150):
        loss = model.loss(gp.sample(16, generator=gen)).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    weight, argmax_is_own = own_point_attention()
    assert before_weight < 0.2, before_weight
    assert weight > 0.4, (before_weight, weight)
    assert argmax_is_own > 0.55, argmax_is_own


def test_loss_is_the_negative_elbo_per_target_point():
    torch.manual_seed(2)
    model = AttentiveNP(hidden=16, r_dim=16, z_dim=4, num_heads=2, self_attention=True).double()
    ep = _double_episode(num_tasks=4, seed=2)
    torch.manual_seed(123)
    out = model.loss(ep)
    assert out.loss.shape == () and torch.isfinite(out.loss)
    assert out.log_likelihood.shape == out.kl.shape == (4,)
    assert torch.all(out.kl >= 0)

    prior, posterior = model.latent(ep.support_x, ep.support_y), model.latent(ep.query_x, ep.query_y)
    torch.manual_seed(123)
    z = posterior.loc + posterior.scale * torch.randn_like(posterior.loc)
    pred = model.decode(ep.query_x, z.unsqueeze(0), model.represent(ep.support_x, ep.support_y, ep.query_x))
    ll = gaussian_log_likelihood(ep.query_y, pred.mean[0], pred.std[0]).sum((-1, -2))
    kl = torch.distributions.kl_divergence(posterior, prior).sum(-1)
    assert torch.allclose(out.kl, kl, atol=1e-12)
    assert torch.allclose(out.loss, -((ll - kl) / ep.query_x.shape[1]).mean(), atol=1e-10)
    # A context equal to the targets: posterior == prior, KL == 0.
    same = Episode(ep.query_x, ep.query_y, ep.query_x, ep.query_y, batched=True)
    assert torch.allclose(model.loss(same).kl, torch.zeros(4, dtype=torch.float64), atol=1e-12)

    # Without the latent path: the Gaussian NLL per target point, no KL, a deterministic log-likelihood.
    acnp = AttentiveNP(hidden=16, r_dim=16, num_heads=2, latent_path=False).double()
    res = acnp.loss(ep)
    pred = acnp(ep.support_x, ep.support_y, ep.query_x)
    nll = -gaussian_log_likelihood(ep.query_y, pred.mean, pred.std).sum(-1).mean(-1)
    assert res.kl is None and torch.allclose(res.loss, nll.mean(), atol=1e-12)
    assert torch.allclose(acnp.log_likelihood(ep), -nll, atol=1e-12)
    with pytest.raises(ValueError, match="latent_path=False"):
        acnp.latent(ep.support_x, ep.support_y)


def test_same_calling_convention_as_cnp_and_latent_np():
    """A chapter's training and evaluation lines run unchanged on all three models."""
    episode = GPCurves().sample(2, num_context=5, num_extra_targets=6, generator=0)
    models = [CNP(hidden=8, r_dim=8), LatentNP(hidden=8, r_dim=8, z_dim=2),
              AttentiveNP(hidden=8, r_dim=8, z_dim=2, num_heads=2)]
    for model in models:
        pred = model(episode.support_x, episode.support_y, episode.query_x)
        assert pred.mean.shape == pred.std.shape == (2, 11, 1) and torch.all(pred.std > 0)
        out = model.loss(episode)
        assert out.loss.shape == () and torch.isfinite(out.loss) and out.log_likelihood.shape == (2,)
        out.loss.backward()
        ll = model.log_likelihood(episode)
        assert ll.shape == (2,) and torch.all(torch.isfinite(ll))


@pytest.mark.parametrize("shapes, message", [
    (((2, 5), (2, 5, 1), (2, 7, 1)), "context_x must be [B, n, 1], got [2, 5]"),
    (((2, 5, 1), (2, 4, 1), (2, 7, 1)), "context_x and context_y must agree on [B, n_c]"),
    (((2, 5, 1), (2, 5, 1), (3, 7, 1)), "context and target need the same B, got 2 and 3"),
])
def test_shape_errors_name_what_was_expected_and_what_came(shapes, message):
    model = AttentiveNP(hidden=8, r_dim=8, z_dim=2, num_heads=2)
    cx, cy, tx = (torch.zeros(s) for s in shapes)
    with pytest.raises(EpisodeError) as info:
        model(cx, cy, tx)
    assert message in str(info.value)
    with pytest.raises(ValueError, match="num_heads must divide r_dim, got num_heads=3 and r_dim=8"):
        AttentiveNP(hidden=8, r_dim=8, num_heads=3)
