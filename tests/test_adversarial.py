"""PGD and adversarial queries: the constraint set, known optima, FGSM, and the few-shot wiring.

- the attack never leaves the epsilon-ball (L-inf) or the pixel range, and reaches the ball's edge;
- on a linear loss sum(w * x), whose maximiser over the ball and box is clip(x + epsilon * sign(w)),
  PGD lands exactly on it (from x and from a random start); without a range it leaves [0, 1];
- one step from x with step_size = epsilon is FGSM, clip(x + epsilon * sign(grad)), written out;
- epsilon = 0 returns the input; a seeded random start is reproducible; model gradients stay untouched;
- against a briefly trained prototypical network the attacked query loss is higher than the clean
  one, the support set and labels are untouched, and adversarial querying's loss is the network's
  loss on those queries with a gradient to the encoder;
- against MAML the attack targets the *adapted* parameters: it equals PGD written with
  theta' = adapt(clean support), and differs from the attack on the unadapted theta.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from metalearn_lite import Episode, EpisodeError
from metalearn_lite.algorithms import (MAML, ProtoNet, adversarial_protonet_loss, attack_maml_queries,
                                       attack_protonet_queries, pgd_attack)
from metalearn_lite.data import EpisodeSampler
from metalearn_lite.models import MLP, Conv4
from metalearn_lite.tasks import SinusoidTasks


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def _images(seed: int, shape=(4, 1, 6, 6)) -> torch.Tensor:
    """Pixels in [0, 1], with exact 0s and 1s so that the range constraint binds."""
    x = torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x.view(-1)[::7] = 0.0
    x.view(-1)[3::7] = 1.0
    return x


def _blob_images(num_classes: int, per_class: int, seed: int) -> torch.Tensor:
    """Class-major ``[C, D, 1, 28, 28]`` in [0, 1]: a Gaussian bump at a class-specific place, jittered, plus noise."""
    gen = torch.Generator().manual_seed(seed)
    centres = 5 + 18 * torch.rand(num_classes, 1, 2, generator=gen)
    c = centres + 1.0 * torch.randn(num_classes, per_class, 2, generator=gen)
    grid = torch.arange(28.0)
    dist2 = (grid[:, None] - c[..., 0, None, None]) ** 2 + (grid[None, :] - c[..., 1, None, None]) ** 2
    images = torch.exp(-dist2 / (2 * 3.0 ** 2)) + 0.2 * torch.rand(num_classes, per_class, 28, 28, generator=gen)
    return images.clamp(0, 1).unsqueeze(2)


# ---------------------------------------------------------------------------- pgd_attack
def test_pgd_stays_in_the_ball_and_the_pixel_range():
    x = _images(0)
    w = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    loss_fn = lambda v: (torch.sin(4 * v) * w).sum() + (v ** 2).sum()   # noqa: E731 (nonlinear: steps change sign)
    eps = 0.15
    x_adv = pgd_attack(loss_fn, x, eps, step_size=0.06, num_steps=7, generator=0)
    delta = x_adv - x
    assert float(delta.abs().max()) <= eps + 1e-12
    assert abs(float(delta.abs().max()) - eps) < 1e-12                      # the edge of the ball is reached
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    assert bool(((x == 0) & (x_adv == 0)).any()) and bool(((x == 1) & (x_adv == 1)).any())  # range binds
    assert float(loss_fn(x_adv)) > float(loss_fn(x))
    free = pgd_attack(loss_fn, x, eps, step_size=0.06, num_steps=7, generator=0, clamp=None)
    assert float((free - x).abs().max()) <= eps + 1e-12
    assert float(free.min()) < 0.0 or float(free.max()) > 1.0                # without a range it does leave [0, 1]


@pytest.mark.parametrize("random_start", [False, True])
def test_pgd_finds_the_exact_maximiser_of_a_linear_loss(random_start):
    x = _images(2)
    w = torch.randn(x.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    loss_fn = lambda v: (w * v).sum()                                           # noqa: E731
    eps = 0.2
    # From any start in the ball, 8 steps of eps/4 cover the 2 * eps to the far corner.
    x_adv = pgd_attack(loss_fn, x, eps, step_size=eps / 4, num_steps=8, generator=4, random_start=random_start)
    optimum = (x + eps * w.sign()).clamp(0, 1)
    assert torch.allclose(x_adv, optimum, atol=1e-12)
    assert float(loss_fn(x_adv)) > float(loss_fn(x)) + 1.0
    free = pgd_attack(loss_fn, x, eps, step_size=eps / 4, num_steps=8, generator=4, random_start=random_start,
                      clamp=None)
    assert torch.allclose(free, x + eps * w.sign(), atol=1e-12)


def test_one_step_without_random_start_is_fgsm_and_model_gradients_are_untouched():
    torch.manual_seed(5)
    model = MLP(36, (16,), 3).double()
    x = _images(6)
    y = torch.tensor([0, 2, 1, 2])
    loss_fn = lambda v: F.cross_entropy(model(v.flatten(1)), y)               # noqa: E731
    eps = 0.1
    x_adv = pgd_attack(loss_fn, x, eps, step_size=eps, num_steps=1, random_start=False)
    v = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss_fn(v), [v])
    assert torch.equal(x_adv, (x + eps * grad.sign()).clamp(0, 1))
    assert float((x_adv - x).abs().max()) == pytest.approx(eps)
    assert all(p.grad is None for p in model.parameters())
    assert not x_adv.requires_grad


def test_epsilon_zero_returns_the_input_and_seeded_starts_repeat():
    x = _images(7)
    loss_fn = lambda v: (v ** 3).sum()                                          # noqa: E731
    same = pgd_attack(loss_fn, x, 0.0, step_size=0.1, num_steps=3, generator=0)
    assert torch.equal(same, x) and same is not x
    assert torch.equal(pgd_attack(loss_fn, x, 0.3, step_size=0.1, num_steps=0, random_start=False), x)
    a = pgd_attack(loss_fn, x, 0.1, step_size=0.01, num_steps=2, generator=11)
    b = pgd_attack(loss_fn, x, 0.1, step_size=0.01, num_steps=2, generator=11)
    c = pgd_attack(loss_fn, x, 0.1, step_size=0.01, num_steps=2, generator=12)
    assert torch.equal(a, b) and not torch.equal(a, c)
    start = pgd_attack(loss_fn, x, 0.1, step_size=0.01, num_steps=0, generator=11)   # the random start alone
    delta = start - x
    assert float(delta.abs().max()) <= 0.1 and float(start.min()) >= 0 and float(start.max()) <= 1
    interior = (x > 0.1) & (x < 0.9)                                          # where the range does not bind
    assert float(delta[interior].max()) > 0.05 and float(delta[interior].min()) < -0.05   # both ways: U(-eps, eps)


def test_pgd_errors():
    x = _images(8)
    loss_fn = lambda v: v.sum()                                                 # noqa: E731
    with pytest.raises(ValueError, match="epsilon must be >= 0"):
        pgd_attack(loss_fn, x, -0.1, 0.1, 1)
    with pytest.raises(ValueError, match="num_steps must be an int >= 0"):
        pgd_attack(loss_fn, x, 0.1, 0.1, 1.5)
    with pytest.raises(ValueError, match=r"x must lie in the clamp range \[0.0, 1.0\]"):
        pgd_attack(loss_fn, x + 1.5, 0.1, 0.1, 1)
    with pytest.raises(ValueError, match=r"loss_fn must return a scalar tensor, got \[4, 1, 6, 6\]"):
        pgd_attack(lambda v: v * 2, x, 0.1, 0.1, 1)
    with pytest.raises(ValueError, match="clamp must be None or"):
        pgd_attack(loss_fn, x, 0.1, 0.1, 1, clamp=(1.0, 0.0))
    with pytest.raises(EpisodeError, match="classification Episode"):
        attack_protonet_queries(ProtoNet(torch.nn.Flatten()), SinusoidTasks().sample(2, 3, 3, generator=0), 0.1, 0.1, 1)


# ---------------------------------------------------------------------------- few-shot learners
@pytest.fixture(scope="module")
def trained_protonet() -> tuple[ProtoNet, EpisodeSampler]:
    torch.manual_seed(0)
    sampler = EpisodeSampler(_blob_images(12, 8, seed=1), num_ways=5, num_shots=2, num_queries=3, seed=2)
    net = ProtoNet(Conv4(num_classes=None, hidden=8))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(15):
        loss = net(sampler.sample()).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.zero_grad(set_to_none=True)
    return net, sampler


def test_attack_on_protonet_queries_raises_the_loss_and_leaves_the_support_alone(trained_protonet):
    net, sampler = trained_protonet
    episode = sampler.sample_batch(2)
    support_before = episode.support_x.clone()
    eps = 0.1
    adv = attack_protonet_queries(net, episode, eps, step_size=0.03, num_steps=5, generator=0)
    assert adv.support_x is episode.support_x and torch.equal(episode.support_x, support_before)
    assert torch.equal(adv.support_y, episode.support_y) and torch.equal(adv.query_y, episode.query_y)
    assert (adv.num_ways, adv.num_shots, adv.num_queries, adv.batched) == (5, 2, 3, True)
    assert float((adv.query_x - episode.query_x).abs().max()) <= eps + 1e-6
    assert float(adv.query_x.min()) >= 0 and float(adv.query_x.max()) <= 1
    with torch.no_grad():
        clean, attacked = net(episode), net(adv)
    assert float(clean.accuracy.mean()) > 0.6                                 # trained-ish: well above 1/5
    assert float(attacked.loss) > float(clean.loss) + 0.5, (float(clean.loss), float(attacked.loss))
    assert float(attacked.accuracy.mean()) < float(clean.accuracy.mean())
    assert all(p.grad is None for p in net.parameters())                      # the attack trains nothing


def test_adversarial_querying_loss_is_the_loss_on_pgd_queries_with_a_gradient_to_the_encoder(trained_protonet):
    net, sampler = trained_protonet
    episode = sampler.sample()
    result = adversarial_protonet_loss(net, episode, 0.1, step_size=0.03, num_steps=3, generator=7)
    adv = attack_protonet_queries(net, episode, 0.1, step_size=0.03, num_steps=3, generator=7)
    assert torch.allclose(result.loss, net(adv).loss, atol=1e-6)
    assert float(result.loss.detach()) > float(net(episode).loss.detach())
    result.loss.backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    net.zero_grad(set_to_none=True)


def test_attack_on_maml_targets_the_parameters_adapted_on_the_clean_support():
    torch.manual_seed(3)
    gen = torch.Generator().manual_seed(4)
    centres = torch.rand(2, 3, 8, generator=gen)

    def draw(per_class):
        y = torch.arange(3).repeat_interleave(per_class)
        x = (centres[:, y] + 0.1 * torch.randn(2, len(y), 8, generator=gen)).clamp(0, 1)
        return x, y.expand(2, -1).clone()

    (sx, sy), (qx, qy) = draw(2), draw(3)
    episode = Episode(sx, sy, qx, qy, num_ways=3, num_shots=2, num_queries=3, batched=True)
    maml = MAML(MLP(8, (16,), 3), F.cross_entropy, inner_lr=0.5, num_inner_steps=1)
    eps, steps = 0.05, 3
    adv = attack_maml_queries(maml, episode, eps, step_size=0.02, num_steps=steps, num_inner_steps=5,
                              random_start=False)
    assert adv.support_x is episode.support_x and torch.equal(adv.query_y, episode.query_y)
    assert float((adv.query_x - episode.query_x).abs().max()) <= eps + 1e-6
    for b, task in enumerate(episode):
        adapted = maml.adapt(task.support_x, task.support_y, num_inner_steps=5).params
        adapted = {k: v.detach() for k, v in adapted.items()}
        by_hand = pgd_attack(lambda q: F.cross_entropy(maml(q, adapted), task.query_y), task.query_x, eps,
                             step_size=0.02, num_steps=steps, random_start=False)
        assert torch.equal(adv.query_x[b], by_hand)
        against_theta = pgd_attack(lambda q: F.cross_entropy(maml(q), task.query_y), task.query_x, eps,
                                   step_size=0.02, num_steps=steps, random_start=False)
        assert not torch.equal(by_hand, against_theta)                         # so the check above has teeth
        with torch.no_grad():
            clean = F.cross_entropy(maml(task.query_x, adapted), task.query_y)
            attacked = F.cross_entropy(maml(adv.query_x[b], adapted), task.query_y)
        assert float(attacked) > float(clean)
    assert all(p.grad is None for p in maml.parameters())
    single = attack_maml_queries(maml, episode[1], eps, step_size=0.02, num_steps=steps, num_inner_steps=5,
                                 random_start=False)
    assert torch.equal(single.query_x, adv.query_x[1]) and not single.batched
