"""Sinusoid and GP task distributions, and the exact GP oracle against NumPy."""
import math

import numpy as np
import pytest
import torch

from metalearn_lite.tasks import GPCurves, SinusoidTasks, gp_log_likelihood, gp_posterior, sinusoid


def test_sinusoid_matches_paper_ranges_and_function():
    ep, (amp, phase) = SinusoidTasks().sample(2000, 5, 5, generator=0, return_params=True)
    assert ep.support_x.shape == (2000, 5, 1) and ep.query_y.shape == (2000, 5, 1)
    assert 0.1 <= amp.min() and amp.max() <= 5.0 and amp.max() > 4.9 and amp.min() < 0.2
    assert 0 <= phase.min() and phase.max() <= math.pi
    assert ep.support_x.min() >= -5 and ep.support_x.max() <= 5
    assert torch.allclose(ep.support_y, amp[:, None, None] * torch.sin(ep.support_x - phase[:, None, None]))
    assert torch.allclose(sinusoid(torch.tensor(0.5), torch.tensor(2.0), torch.tensor(0.5)), torch.tensor(0.0))


def test_sampling_is_deterministic_per_seed():
    a = SinusoidTasks().sample(3, 5, 5, generator=7)
    b = SinusoidTasks().sample(3, 5, 5, generator=7)
    c = SinusoidTasks().sample(3, 5, 5, generator=8)
    assert torch.equal(a.support_x, b.support_x) and not torch.equal(a.support_x, c.support_x)
    g1, g2 = GPCurves().sample(4, generator=1), GPCurves().sample(4, generator=1)
    assert torch.equal(g1.query_y, g2.query_y)


def test_gp_targets_include_context():
    ep = GPCurves(min_context=5, max_context=5).sample(3, num_extra_targets=7, generator=0)
    assert ep.support_x.shape == (3, 5, 1) and ep.query_x.shape == (3, 12, 1)
    assert torch.equal(ep.query_x[:, :5], ep.support_x) and torch.equal(ep.query_y[:, :5], ep.support_y)


def test_gp_samples_have_the_kernel_covariance():
    gp = GPCurves(lengthscale=0.5, scale=1.5, noise=0.1)
    x = torch.tensor([[-1.0], [0.0], [0.3]]).expand(20000, 3, 1)
    y = gp.sample_curves(x, generator=0)[..., 0].double()
    emp = torch.cov(y.T)
    d = (x[0] - x[0].T) ** 2
    expected = 1.5**2 * torch.exp(-0.5 * d / 0.25) + 0.1**2 * torch.eye(3)
    assert torch.allclose(emp, expected.double(), atol=0.06)


def _numpy_posterior(cx, cy, tx, l, s, n):
    k = lambda a, b: s**2 * np.exp(-0.5 * (a[:, None, 0] - b[None, :, 0]) ** 2 / l**2)
    kcc = k(cx, cx) + n**2 * np.eye(len(cx))
    L = np.linalg.cholesky(kcc)
    alpha = np.linalg.solve(L.T, np.linalg.solve(L, cy[:, 0]))
    ktc = k(tx, cx)
    mean = ktc @ alpha
    v = np.linalg.solve(L, ktc.T)
    var = s**2 - (v**2).sum(0) + n**2
    return mean, var


def test_gp_oracle_matches_numpy_cholesky():
    rng = np.random.default_rng(0)
    cx, tx = rng.uniform(-2, 2, (7, 1)), rng.uniform(-2, 2, (11, 1))
    cy, ty = rng.normal(size=(7, 1)), rng.normal(size=(11, 1))
    mean, var = _numpy_posterior(cx, cy, tx, 0.4, 1.2, 0.1)
    post = gp_posterior(torch.tensor(cx)[None], torch.tensor(cy)[None], torch.tensor(tx)[None], 0.4, 1.2, 0.1)
    np.testing.assert_allclose(post.mean[0].numpy(), mean, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(post.var[0].numpy(), var, rtol=1e-7, atol=1e-8)
    ll = gp_log_likelihood(torch.tensor(cx)[None], torch.tensor(cy)[None], torch.tensor(tx)[None],
                           torch.tensor(ty)[None], 0.4, 1.2, 0.1)
    expected = np.mean(-0.5 * (np.log(2 * np.pi * var) + (ty[:, 0] - mean) ** 2 / var))
    assert abs(float(ll[0]) - expected) < 1e-7


def test_gp_oracle_interpolates_noise_free_context():
    cx = torch.linspace(-1, 1, 5).view(1, 5, 1).double()
    cy = torch.sin(cx)
    post = gp_posterior(cx, cy, cx, 0.5, 1.0, 0.0, include_noise=False)
    assert torch.allclose(post.mean, cy[..., 0], atol=1e-4) and post.var.max() < 1e-4


def test_gp_config_errors():
    with pytest.raises(ValueError, match="lengthscale must be > 0"):
        GPCurves(lengthscale=0)
    with pytest.raises(ValueError, match="min_context <= max_context"):
        GPCurves(min_context=5, max_context=2)
    with pytest.raises(ValueError, match="num_shots must be a positive int"):
        SinusoidTasks().sample(2, 0, 5)
