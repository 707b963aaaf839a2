"""Reptile against hand-written SGD loops, its one-step identity, and a short sinusoid run.

- the outer update equals theta + epsilon * mean_i (phi_i - theta), with each phi_i from an
  SGD loop written here with torch.autograd.grad (full batches and minibatches);
- with one inner step, g = theta - mean phi_i = alpha * mean_i grad L_{D_i}(theta), and with
  two it is not (the second-order term the paper describes is there);
- the optimiser form (meta_backward + SGD(lr=epsilon)) equals reptile_step;
- a few seconds of Reptile on sinusoids lowers the post-adaptation query loss.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from metalearn_lite import Episode, EpisodeError
from metalearn_lite.algorithms import Reptile, reptile_meta_gradient, reptile_step, task_data
from metalearn_lite.models import MLP
from metalearn_lite.tasks import SinusoidTasks


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def _double_tasks(num_tasks=3, shots=4, queries=4, seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    ep = SinusoidTasks().sample(num_tasks, shots, queries, generator=seed)
    x, y = task_data(Episode(*(t.double() for t in ep.tensors()), batched=True))
    return x, y


def _sgd_by_hand(model, theta, x, y, alpha, batches):
    """phi_{s+1} = phi_s - alpha * grad L(phi_s) on x[batches[s]], written out."""
    phi = {k: v.detach().clone() for k, v in theta.items()}
    for idx in batches:
        p = {k: v.clone().requires_grad_(True) for k, v in phi.items()}
        loss = F.mse_loss(functional_call(model, p, (x[idx],)), y[idx])
        grads = torch.autograd.grad(loss, list(p.values()))
        phi = {k: p[k].detach() - alpha * g for k, g in zip(p, grads)}
    return phi


def test_task_data_concatenates_support_and_query():
    ep = SinusoidTasks().sample(2, 3, 4, generator=0)
    x, y = task_data(ep)
    assert x.shape == y.shape == (2, 7, 1)
    assert torch.equal(x[:, :3], ep.support_x) and torch.equal(x[:, 3:], ep.query_x)
    x0, y0 = task_data(ep[1])
    assert torch.equal(x0, x[1]) and torch.equal(y0, y[1])


@pytest.mark.parametrize("inner_batch_size", [None, 3])
def test_outer_update_is_the_mean_displacement_of_hand_written_sgd(inner_batch_size):
    torch.manual_seed(0)
    model = MLP(1, (8, 8), 1).double()
    theta = dict(model.named_parameters())
    x, y = _double_tasks(num_tasks=3)
    alpha, epsilon, k, n = 0.05, 0.3, 3, x.shape[1]
    result = reptile_step(model, theta, x, y, F.mse_loss, num_inner_steps=k, inner_lr=alpha, outer_lr=epsilon,
                          inner_batch_size=inner_batch_size, generator=7)

    # The documented minibatch order: chunks of torch.randperm(n) from one generator, task after task,
    # reshuffled when fewer than inner_batch_size indices are left.
    gen = torch.Generator().manual_seed(7)
    phis = []
    for i in range(3):
        if inner_batch_size is None:
            batches = [torch.arange(n)] * k
        else:
            batches, order, start = [], torch.randperm(n, generator=gen), 0
            while len(batches) < k:
                if start + inner_batch_size > n:
                    order, start = torch.randperm(n, generator=gen), 0
                batches.append(order[start:start + inner_batch_size])
                start += inner_batch_size
        phis.append(_sgd_by_hand(model, theta, x[i], y[i], alpha, batches))

    for name, t in theta.items():
        displacement = sum(phi[name] - t.detach() for phi in phis) / 3
        assert torch.allclose(result.params[name], t.detach() + epsilon * displacement, rtol=1e-12, atol=1e-14)
        assert torch.allclose(result.meta_grad[name], -displacement, rtol=1e-12, atol=1e-14)
    assert result.losses.shape == (3, k)
    # theta itself is untouched, and the step really moved.
    assert not any(t.grad is not None for t in theta.values())
    assert max(float((result.params[k_] - t.detach()).abs().max()) for k_, t in theta.items()) > 1e-3


def test_one_inner_step_is_alpha_times_the_gradient_at_theta():
    torch.manual_seed(1)
    model = MLP(1, (8, 8), 1).double()
    theta = dict(model.named_parameters())
    x, y = _double_tasks(num_tasks=3, seed=2)
    alpha = 0.05

    def mean_grad_at(params):
        grads = [torch.autograd.grad(F.mse_loss(functional_call(model, params, (x[i],)), y[i]),
                                     list(params.values())) for i in range(3)]
        return {k: sum(g[j] for g in grads) / 3 for j, k in enumerate(params)}

    expected = mean_grad_at(theta)
    one = reptile_meta_gradient(model, theta, x, y, F.mse_loss, num_inner_steps=1, inner_lr=alpha)
    for k in theta:
        assert torch.allclose(one.meta_grad[k], alpha * expected[k], rtol=1e-12, atol=1e-15)
    # Two steps: no longer alpha * k * grad (the alpha^2 * Hessian term appears), so the check above can fail.
    two = reptile_meta_gradient(model, theta, x, y, F.mse_loss, num_inner_steps=2, inner_lr=alpha)
    gap = max(float((two.meta_grad[k] - 2 * alpha * expected[k]).abs().max()) for k in theta)
    assert gap > 1e-5, gap


def test_meta_backward_with_sgd_equals_reptile_step_and_outer_step():
    torch.manual_seed(2)
    batch = SinusoidTasks().sample(4, 5, 5, generator=3)
    reptile = Reptile(MLP(1, (16,), 1), F.mse_loss, inner_lr=0.02, num_inner_steps=3, inner_batch_size=4)
    theta = {k: v.detach().clone() for k, v in reptile.params().items()}
    task_x, task_y = task_data(batch)
    expected = reptile_step(reptile.model, theta, task_x, task_y, F.mse_loss, num_inner_steps=3, inner_lr=0.02,
                            outer_lr=0.1, inner_batch_size=4, generator=5).params

    opt = torch.optim.SGD(reptile.parameters(), lr=0.1)
    opt.zero_grad()
    reptile.meta_backward(batch, generator=5)
    opt.step()
    for k, p in reptile.params().items():
        assert torch.allclose(p, expected[k], atol=1e-6)

    with torch.no_grad():
        for k, p in reptile.params().items():
            p.copy_(theta[k])
    stepped = reptile.outer_step(batch, generator=5)
    for k, p in reptile.params().items():
        assert torch.allclose(p, expected[k], atol=1e-6)
        assert torch.equal(stepped.params[k], p.detach())


def test_surrogate_loss_drives_meta_train_like_reptile_step():
    """The surrogate's value is the mean task loss at theta and its gradient is g, so
    meta_train + SGD(lr=epsilon) takes exactly reptile_step's step."""
    from metalearn_lite.training import meta_train

    torch.manual_seed(4)
    batch = SinusoidTasks().sample(3, 5, 5, generator=6)
    reptile = Reptile(MLP(1, (16,), 1), F.mse_loss, inner_lr=0.02, num_inner_steps=2)
    theta = {k: v.detach().clone() for k, v in reptile.params().items()}
    task_x, task_y = task_data(batch)
    expected = reptile_step(reptile.model, theta, task_x, task_y, F.mse_loss, num_inner_steps=2, inner_lr=0.02,
                            outer_lr=0.1)
    surrogate = reptile.surrogate_loss(batch)
    at_theta = torch.stack([F.mse_loss(functional_call(reptile.model, theta, (x,)), y) for x, y in zip(task_x, task_y)])
    assert torch.allclose(surrogate.detach(), at_theta.mean())
    history = meta_train(lambda step: reptile.surrogate_loss(batch), torch.optim.SGD(reptile.parameters(), lr=0.1),
                         1, progress=False)
    assert history["loss"][0] == pytest.approx(float(at_theta.mean()))
    for k, p in reptile.params().items():
        assert torch.allclose(p, expected.params[k], atol=1e-6)


def test_short_sinusoid_run_lowers_post_adaptation_loss():
    """Two seconds of Reptile (one task per step, epsilon annealed 1 -> 0 as in the paper's sine demo,
    driven through meta_backward and torch's SGD): after 5 steps on 10 points the meta-learned theta
    fits held-out tasks far better than its initialisation did, and better than without adapting."""
    torch.manual_seed(0)
    tasks = SinusoidTasks()
    reptile = Reptile(MLP(1, (40, 40), 1), F.mse_loss, inner_lr=0.02, num_inner_steps=8, inner_batch_size=10)
    held_out = tasks.sample(50, 10, 20, generator=123)

    def query_loss(num_inner_steps: int) -> float:
        losses = []
        for task in held_out:
            adapted = reptile.adapt(task.support_x, task.support_y, num_inner_steps=num_inner_steps).params
            with torch.no_grad():
                losses.append(float(F.mse_loss(reptile(task.query_x, adapted), task.query_y)))
        return sum(losses) / len(losses)

    before = query_loss(5)
    num_steps = 200
    opt = torch.optim.SGD(reptile.parameters(), lr=1.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1 - i / num_steps)
    gen = torch.Generator().manual_seed(1)
    for _ in range(num_steps):
        opt.zero_grad()
        reptile.meta_backward(tasks.sample(1, 10, 10, generator=gen), generator=gen)
        opt.step()
        schedule.step()
    after, unadapted = query_loss(5), query_loss(0)
    assert after < 0.5 * before, (before, after)
    assert after < 0.7 * unadapted, (unadapted, after)


def test_errors():
    model = MLP(1, (4,), 1)
    theta = dict(model.named_parameters())
    with pytest.raises(EpisodeError, match=r"task_x must be \[B, n, \*x_shape\].*got \[2, 5, 1\] and \[2, 4, 1\]"):
        reptile_meta_gradient(model, theta, torch.zeros(2, 5, 1), torch.zeros(2, 4, 1), F.mse_loss)
    with pytest.raises(ValueError, match=r"inner_batch_size must be an int in 1..5"):
        reptile_meta_gradient(model, theta, torch.zeros(2, 5, 1), torch.zeros(2, 5, 1), F.mse_loss, inner_batch_size=6)
    reptile = Reptile(model, F.mse_loss)
    with pytest.raises(EpisodeError, match="batched"):
        reptile.meta_gradient(SinusoidTasks().sample(2, 3, 3, generator=0)[0])
    with pytest.raises(ValueError, match="inner_lr must be > 0"):
        Reptile(model, F.mse_loss, inner_lr=0.0)


def test_without_a_generator_each_outer_step_draws_new_minibatches():
    """generator=None means torch's global RNG, not a fixed seed: two calls on the same batch
    shuffle differently (a fixed order would repeat the same minibatches every outer step)."""
    torch.manual_seed(5)
    batch = SinusoidTasks().sample(2, 5, 5, generator=7)
    reptile = Reptile(MLP(1, (16,), 1), F.mse_loss, inner_lr=0.05, num_inner_steps=3, inner_batch_size=3)
    first, second = reptile.meta_gradient(batch), reptile.meta_gradient(batch)
    assert any(not torch.allclose(first.meta_grad[k], second.meta_grad[k]) for k in first.meta_grad)
    seeded = [reptile.meta_gradient(batch, generator=11) for _ in range(2)]
    assert all(torch.equal(seeded[0].meta_grad[k], seeded[1].meta_grad[k]) for k in seeded[0].meta_grad)


def test_vmap_strategy_equals_the_per_task_loop():
    """All tasks adapted at once with torch.func give the loop's g and losses (float64)."""
    x, y = _double_tasks(num_tasks=4, shots=5, queries=5, seed=8)
    torch.manual_seed(8)
    model = MLP(1, (16, 16), 1).double()
    theta = dict(model.named_parameters())
    results = {s: reptile_meta_gradient(model, theta, x, y, F.mse_loss, num_inner_steps=3, inner_lr=0.05, strategy=s)
               for s in ("loop", "vmap")}
    for k in theta:
        assert torch.allclose(results["vmap"].meta_grad[k], results["loop"].meta_grad[k], atol=1e-12)
        assert results["vmap"].meta_grad[k].abs().max() > 0
    assert torch.allclose(results["vmap"].losses, results["loop"].losses, atol=1e-12)
    with pytest.raises(ValueError, match="full-batch"):
        reptile_meta_gradient(model, theta, x, y, F.mse_loss, inner_batch_size=2, strategy="vmap")
    with pytest.raises(ValueError, match="strategy"):
        reptile_meta_gradient(model, theta, x, y, F.mse_loss, strategy="fast")
