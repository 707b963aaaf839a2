"""Transfer baselines and self-distillation against hand-written formulas, symmetries and learning.

- sample_class_batch draws distinct images with their *global* class labels;
- pretrain_classifier_loss is the cross-entropy over all background classes, and a short run on
  Gaussian-blob images lowers it;
- the nearest-prototype classifier on frozen features gives protonet_episode's logits, sends no
  gradient to the encoder, ignores the support order, and a batch equals its tasks one by one;
- the linear head is the gradient-descent iterate of the written-out logistic-regression gradient,
  fits separable features perfectly, ignores the support order, and gives each task its own head;
- distillation_loss equals alpha * T^2 * KL(p_t || p_s) + (1 - alpha) * CE written out, vanishes
  (soft part) when the student copies the teacher at any T, has gradient T * (p_s - p_t) / M at
  alpha = 1, sends nothing to the teacher, and depends on T.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from metalearn_lite import Episode, EpisodeError
from metalearn_lite.algorithms import (distillation_loss, fit_linear_head, pretrain_classifier_loss,
                                       protonet_episode, prototype_classifier, sample_class_batch)
from metalearn_lite.models import Conv4
from metalearn_lite.tasks import SinusoidTasks


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def _blob_images(num_classes: int, per_class: int, seed: int) -> torch.Tensor:
    """Class-major ``[C, D, 1, 28, 28]`` in [0, 1]: a Gaussian bump at a class-specific place, jittered, plus noise."""
    gen = torch.Generator().manual_seed(seed)
    centres = 5 + 18 * torch.rand(num_classes, 1, 2, generator=gen)
    c = centres + 1.0 * torch.randn(num_classes, per_class, 2, generator=gen)             # [C, D, 2]
    grid = torch.arange(28.0)
    dist2 = (grid[:, None] - c[..., 0, None, None]) ** 2 + (grid[None, :] - c[..., 1, None, None]) ** 2
    images = torch.exp(-dist2 / (2 * 3.0 ** 2)) + 0.2 * torch.rand(num_classes, per_class, 28, 28, generator=gen)
    return images.clamp(0, 1).unsqueeze(2)


def _feature_episode(num_tasks=2, num_ways=4, num_shots=3, num_queries=2, dim=6, seed=0) -> Episode:
    """A batched episode of vectors (the encoder below is then any [n, dim] -> [n, D] module)."""
    gen = torch.Generator().manual_seed(seed)
    sx = torch.randn(num_tasks, num_ways * num_shots, dim, generator=gen, dtype=torch.float64)
    qx = torch.randn(num_tasks, num_ways * num_queries, dim, generator=gen, dtype=torch.float64)
    sy = torch.arange(num_ways).repeat_interleave(num_shots).expand(num_tasks, -1).clone()
    qy = torch.arange(num_ways).repeat_interleave(num_queries).expand(num_tasks, -1).clone()
    return Episode(sx, sy, qx, qy, num_ways=num_ways, num_shots=num_shots, num_queries=num_queries, batched=True)


def _shuffle_support(episode: Episode, seed: int) -> Episode:
    order = torch.randperm(episode.support_y.shape[-1], generator=torch.Generator().manual_seed(seed))
    return Episode(episode.support_x[:, order], episode.support_y[:, order], episode.query_x, episode.query_y,
                   num_ways=episode.num_ways, num_shots=episode.num_shots, num_queries=episode.num_queries,
                   batched=True)


# ---------------------------------------------------------------------------- pretraining
def test_sample_class_batch_draws_distinct_images_with_their_global_labels():
    num_classes, per_class = 6, 5
    codes = 100 * torch.arange(num_classes)[:, None] + torch.arange(per_class)[None, :]   # image (c, d): 100c + d
    class_images = codes[:, :, None, None, None].float().expand(-1, -1, 1, 2, 2).clone()   # [6, 5, 1, 2, 2]
    images, labels = sample_class_batch(class_images, 17, generator=3)
    assert images.shape == (17, 1, 2, 2) and labels.shape == (17,) and labels.dtype == torch.int64
    values = images[:, 0, 0, 0].long()
    assert torch.equal(values // 100, labels)                 # each image carries its own global class
    assert len(set(values.tolist())) == 17                    # no image twice in a batch
    assert len(set(labels.tolist())) > 1
    again, again_labels = sample_class_batch(class_images, 17, generator=3)
    assert torch.equal(again, images) and torch.equal(again_labels, labels)
    assert not torch.equal(sample_class_batch(class_images, 17, generator=4)[1], labels)
    everything, _ = sample_class_batch(class_images, 30, generator=0)   # the whole set: every (c, d) once
    assert sorted(everything[:, 0, 0, 0].long().tolist()) == sorted(codes.flatten().tolist())


def test_pretrain_classifier_loss_is_cross_entropy_over_all_classes():
    torch.manual_seed(0)
    encoder, head = torch.nn.Linear(5, 4).double(), torch.nn.Linear(4, 7).double()
    x = torch.randn(9, 5, dtype=torch.float64)
    y = torch.tensor([0, 6, 3, 3, 1, 5, 2, 4, 6])
    result = pretrain_classifier_loss(encoder, head, x, y)
    logits = head(encoder(x)).detach()
    by_hand = -sum(float(logits[i, y[i]] - torch.logsumexp(logits[i], 0)) for i in range(9)) / 9
    assert abs(float(result.loss.detach()) - by_hand) < 1e-12
    assert abs(float(result.accuracy) - 2 / 9) < 1e-6                          # rows 0 and 4 right, by argmax
    assert torch.equal(logits.argmax(1) == y, torch.tensor([True, False, False, False, True] + [False] * 4))
    result.loss.backward()
    assert encoder.weight.grad is not None and head.weight.grad is not None     # trains encoder and head
    with pytest.raises(ValueError, match=r"labels must be in 0..6"):
        pretrain_classifier_loss(encoder, head, x, torch.full((9,), 7))
    with pytest.raises(ValueError, match=r"images must be \[n, \*x_shape\] and labels \[n\]"):
        pretrain_classifier_loss(encoder, head, x, y[:4])


def test_tiny_pretraining_run_on_blob_images_lowers_the_loss():
    torch.manual_seed(0)
    class_images = _blob_images(num_classes=6, per_class=8, seed=1)
    all_x = class_images.flatten(0, 1)
    all_y = torch.arange(6).repeat_interleave(8)
    encoder, head = Conv4(num_classes=None, hidden=8), torch.nn.Linear(8, 6)
    opt = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=1e-2)
    with torch.no_grad():
        before = pretrain_classifier_loss(encoder, head, all_x, all_y)
    gen = torch.Generator().manual_seed(2)
    for _ in range(30):
        loss = pretrain_classifier_loss(encoder, head, *sample_class_batch(class_images, 24, gen)).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = pretrain_classifier_loss(encoder, head, all_x, all_y)
    assert float(before.loss) > 0.8 * math.log(6), float(before.loss)      # near chance at initialisation
    assert float(after.loss) < 0.5 * float(before.loss), (float(before.loss), float(after.loss))
    assert float(after.accuracy) > 0.8 > float(before.accuracy) + 0.2, (float(before.accuracy), float(after.accuracy))


# ---------------------------------------------------------------------------- frozen features
def test_prototype_classifier_is_protonet_on_frozen_features_and_ignores_support_order():
    torch.manual_seed(1)
    episode = _feature_episode()
    encoder = torch.nn.Linear(6, 5).double()
    result = prototype_classifier(encoder, episode)
    expected = protonet_episode(encoder, episode)
    assert torch.allclose(result.logits, expected.logits, atol=1e-12)
    assert torch.allclose(result.loss, expected.loss, atol=1e-12)
    assert torch.equal(result.accuracy, expected.accuracy) and result.accuracy.shape == (2,)
    assert not result.logits.requires_grad                                   # frozen: no graph to the encoder
    shuffled = prototype_classifier(encoder, _shuffle_support(episode, 5))
    assert not torch.equal(_shuffle_support(episode, 5).support_y, episode.support_y)   # the shuffle moved labels
    assert torch.allclose(shuffled.logits, result.logits, atol=1e-12)
    assert torch.allclose(prototype_classifier(encoder, episode[1]).logits, result.logits[1], atol=1e-12)
    # Normalised features: prototypes are means of unit vectors.
    normed = prototype_classifier(encoder, episode, normalize=True)
    z = F.normalize(encoder(episode.support_x[0, :3]), dim=-1)
    assert torch.allclose(normed.prototypes[0, 0], z.mean(0), atol=1e-12)


def test_linear_head_is_gradient_descent_on_the_written_out_logistic_loss():
    torch.manual_seed(2)
    episode = _feature_episode(seed=2)
    encoder = torch.nn.Linear(6, 5).double()
    lr, wd, steps = 0.7, 0.01, 6
    result = fit_linear_head(encoder, episode, num_steps=steps, lr=lr, weight_decay=wd, normalize=True)
    for b in range(2):
        z = F.normalize(encoder(episode.support_x[b]), dim=-1).detach()     # [n, D]
        one_hot = F.one_hot(episode.support_y[b], 4).double()
        w, bias = torch.zeros(4, 5, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)
        for _ in range(steps):
            residual = torch.softmax(z @ w.T + bias, -1) - one_hot           # p_i - onehot(y_i)
            w, bias = w - lr * (residual.T @ z / len(z) + wd * w), bias - lr * residual.mean(0)
        assert torch.allclose(result.weight[b], w, atol=1e-12)              # each task its own head,
        assert torch.allclose(result.bias[b], bias, atol=1e-12)             # at the per-task step size
        qz = F.normalize(encoder(episode.query_x[b]), dim=-1).detach()
        assert torch.allclose(result.logits[b], qz @ w.T + bias, atol=1e-12)
    assert float(result.weight.abs().max()) > 1e-2                           # the head really moved
    shuffled = fit_linear_head(encoder, _shuffle_support(episode, 3), num_steps=steps, lr=lr, weight_decay=wd)
    assert torch.allclose(shuffled.logits, result.logits, atol=1e-10)


def test_linear_head_fits_separable_features_perfectly():
    gen = torch.Generator().manual_seed(3)
    num_ways, num_shots, dim = 5, 4, 8
    centres = 3.0 * torch.randn(num_ways, dim, generator=gen)
    y = torch.arange(num_ways).repeat_interleave(num_shots)
    x = centres[y] + 0.3 * torch.randn(len(y), dim, generator=gen)
    episode = Episode(x, y, x, y, num_ways=num_ways, num_shots=num_shots, num_queries=num_shots)
    untrained = fit_linear_head(torch.nn.Identity(), episode, num_steps=0)
    trained = fit_linear_head(torch.nn.Identity(), episode, num_steps=100)
    assert float(untrained.accuracy) < 0.5                                    # W = 0: all ties, class 0
    assert float(trained.support_accuracy) == 1.0 and float(trained.accuracy) == 1.0
    assert float(trained.loss) < float(untrained.loss) < math.log(num_ways) + 1e-6


def test_transfer_errors():
    regression = SinusoidTasks().sample(2, 3, 3, generator=0)
    with pytest.raises(EpisodeError, match="classification Episode"):
        prototype_classifier(torch.nn.Identity(), regression)
    episode = _feature_episode()
    with pytest.raises(ValueError, match="num_steps must be an int >= 0"):
        fit_linear_head(torch.nn.Identity(), episode, num_steps=-1)
    with pytest.raises(ValueError, match="lr must be > 0"):
        fit_linear_head(torch.nn.Identity(), episode, lr=0.0)
    with pytest.raises(ValueError, match=r"batch_size must be an int in 1..30"):
        sample_class_batch(torch.zeros(6, 5, 3), 31)
    with pytest.raises(ValueError, match=r"class_images must be \[num_classes, num_per_class, \*x_shape\]"):
        sample_class_batch(torch.zeros(6), 2)


# ---------------------------------------------------------------------------- distillation
def _logits(seed: int, m: int = 6, n: int = 5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    s = 2 * torch.randn(m, n, generator=gen, dtype=torch.float64)
    t = 2 * torch.randn(m, n, generator=gen, dtype=torch.float64)
    y = torch.randint(0, n, (m,), generator=gen)
    return s, t, y


@pytest.mark.parametrize("temperature, alpha", [(1.0, 0.5), (3.0, 0.3), (4.0, 1.0), (2.0, 0.0)])
def test_distillation_loss_equals_the_written_out_formula(temperature, alpha):
    s, t, y = _logits(0)
    loss = distillation_loss(s, t, y, temperature=temperature, alpha=alpha)
    total_kl, total_ce = 0.0, 0.0
    for i in range(s.shape[0]):
        p_t = [math.exp(v / temperature) for v in t[i].tolist()]
        p_s = [math.exp(v / temperature) for v in s[i].tolist()]
        p_t = [v / sum(p_t) for v in p_t]
        p_s = [v / sum(p_s) for v in p_s]
        total_kl += sum(a * math.log(a / b) for a, b in zip(p_t, p_s))
        total_ce += -(float(s[i, y[i]]) - math.log(sum(math.exp(v) for v in s[i].tolist())))
    m = s.shape[0]
    expected = alpha * temperature ** 2 * total_kl / m + (1 - alpha) * total_ce / m
    assert abs(float(loss) - expected) < 1e-10, (float(loss), expected)


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_distillation_soft_term_vanishes_when_the_student_copies_the_teacher(temperature):
    s, t, y = _logits(1)
    assert abs(float(distillation_loss(t.clone(), t, y, temperature=temperature, alpha=1.0))) < 1e-12
    # alpha < 1: only the cross-entropy part is left.
    half = distillation_loss(t.clone(), t, y, temperature=temperature, alpha=0.5)
    assert abs(float(half) - 0.5 * float(F.cross_entropy(t, y))) < 1e-12
    # Any other student is worse (KL >= 0, = 0 only at p_s = p_t) ...
    assert float(distillation_loss(s, t, None, temperature=temperature, alpha=1.0)) > 1e-3
    # ... but a constant shift per row is not different (softmax is shift-invariant).
    shifted = t + torch.arange(6, dtype=torch.float64)[:, None]
    assert abs(float(distillation_loss(shifted, t, None, temperature=temperature, alpha=1.0))) < 1e-12


@pytest.mark.parametrize("temperature", [1.0, 2.5, 4.0])
def test_distillation_gradient_is_temperature_times_probability_gap(temperature):
    s, t, _ = _logits(2)
    s.requires_grad_(True)
    t.requires_grad_(True)
    distillation_loss(s, t, None, temperature=temperature, alpha=1.0).backward()
    expected = temperature * (torch.softmax(s / temperature, -1) - torch.softmax(t / temperature, -1)) / s.shape[0]
    assert torch.allclose(s.grad, expected.detach(), atol=1e-12)
    assert t.grad is None                                                     # the teacher is a constant


def test_distillation_depends_on_the_temperature_and_checks_its_arguments():
    s, t, y = _logits(3)
    losses = [float(distillation_loss(s, t, y, temperature=temp, alpha=1.0)) for temp in (1.0, 2.0, 4.0)]
    assert len({round(v, 6) for v in losses}) == 3, losses
    with pytest.raises(ValueError, match="labels are needed"):
        distillation_loss(s, t, None, alpha=0.5)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        distillation_loss(s, t, y, temperature=0.0)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        distillation_loss(s, t, y, alpha=1.5)
    with pytest.raises(ValueError, match=r"must both be \[M, N\], got \[6, 5\] and \[6, 4\]"):
        distillation_loss(s, t[:, :4], y)
