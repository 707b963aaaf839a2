"""MAML's meta-gradient against independent computations.

- second order == float64 central finite differences of the meta-loss;
- second order == a hand-unrolled chain  prod_s (I - alpha H_s) grad L_Q(theta')  built
  from Hessian-vector products (double backward);
- first order == the same chain with the Hessians dropped (inner gradient held constant);
- batched (vmap) == per-task loop, on the MLP and on Conv-4 with its norm layer, in float64.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from metalearn_lite import Episode, EpisodeError
from metalearn_lite.algorithms.maml import MAML, choose_strategy, inner_loop, meta_loss
from metalearn_lite.models import MLP, Conv4
from metalearn_lite.tasks import SinusoidTasks

torch.set_default_dtype(torch.float32)


def _double_episode(num_tasks=3, shots=5, queries=5, seed=0) -> Episode:
    ep = SinusoidTasks().sample(num_tasks, shots, queries, generator=seed)
    return Episode(*(t.double() for t in ep.tensors()), batched=True)


def _flat_meta_loss(model, flat, shapes, episode, steps, alpha, first_order=False):
    params, i = {}, 0
    for name, shape in shapes.items():
        n = int(torch.Size(shape).numel())
        params[name] = flat[i:i + n].view(shape)
        i += n
    return meta_loss(model, params, episode, F.mse_loss, num_inner_steps=steps, inner_lr=alpha,
                     first_order=first_order, strategy="loop").loss


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_second_order_matches_finite_differences(steps):
    torch.manual_seed(0)
    model = MLP(1, (6,), 1).double()
    episode = _double_episode(num_tasks=2)
    shapes = {k: v.shape for k, v in model.named_parameters()}
    flat = torch.cat([p.detach().flatten() for p in model.parameters()]).requires_grad_(True)
    loss = _flat_meta_loss(model, flat, shapes, episode, steps, 0.05)
    (grad,) = torch.autograd.grad(loss, flat)
    eps = 1e-6
    fd = torch.zeros_like(flat)
    with torch.no_grad():
        for i in range(flat.numel()):
            e = torch.zeros_like(flat)
            e[i] = eps
            fd[i] = (_flat_meta_loss(model, flat + e, shapes, episode, steps, 0.05)
                     - _flat_meta_loss(model, flat - e, shapes, episode, steps, 0.05)) / (2 * eps)
    assert torch.allclose(grad, fd, rtol=1e-5, atol=1e-7), (grad - fd).abs().max()
    # And first order is measurably different, so this test can tell them apart.
    fo = torch.autograd.grad(_flat_meta_loss(model, flat, shapes, episode, steps, 0.05, first_order=True), flat)[0]
    assert (fo - fd).abs().max() > 1e-4


def _hand_unrolled(model, theta, task, steps, alpha, second_order):
    """grad_theta L_Q(theta'_S) = prod_s (I - alpha H_s) grad L_Q, via explicit HVPs."""
    names = list(theta)
    def support_loss(p):
        return F.mse_loss(functional_call(model, p, (task.support_x,)), task.support_y)
    # Forward: the inner loop with plain (graph-free) updates, keeping each theta'_s.
    path = [{k: v.detach() for k, v in theta.items()}]
    for _ in range(steps):
        p = {k: v.clone().requires_grad_(True) for k, v in path[-1].items()}
        g = torch.autograd.grad(support_loss(p), [p[k] for k in names])
        path.append({k: p[k].detach() - alpha * gk for k, gk in zip(names, g)})
    p = {k: v.clone().requires_grad_(True) for k, v in path[-1].items()}
    q_loss = F.mse_loss(functional_call(model, p, (task.query_x,)), task.query_y)
    v = list(torch.autograd.grad(q_loss, [p[k] for k in names]))
    # Backward: v <- (I - alpha H_s) v, from the last inner step to the first.
    for s in reversed(range(steps)):
        if not second_order:
            continue
        p = {k: val.clone().requires_grad_(True) for k, val in path[s].items()}
        g = torch.autograd.grad(support_loss(p), [p[k] for k in names], create_graph=True)
        dot = sum((gi * vi).sum() for gi, vi in zip(g, v))
        hv = torch.autograd.grad(dot, [p[k] for k in names])        # double backward: H_s v
        v = [vi - alpha * hvi for vi, hvi in zip(v, hv)]
    return v


@pytest.mark.parametrize("second_order", [True, False])
@pytest.mark.parametrize("steps", [1, 3])
def test_meta_gradient_matches_hand_unrolled_double_backward(steps, second_order):
    torch.manual_seed(1)
    model = MLP(1, (8, 8), 1).double()
    episode = _double_episode(num_tasks=3, seed=3)
    theta = dict(model.named_parameters())
    result = meta_loss(model, theta, episode, F.mse_loss, num_inner_steps=steps, inner_lr=0.03,
                       first_order=not second_order, strategy="loop")
    grads = torch.autograd.grad(result.loss, list(theta.values()))
    expected = [torch.zeros_like(p) for p in theta.values()]
    for task in episode:
        for e, h in zip(expected, _hand_unrolled(model, theta, task, steps, 0.03, second_order)):
            e += h / episode.num_tasks
    for g, e in zip(grads, expected):
        assert torch.allclose(g, e, rtol=1e-9, atol=1e-12)


def _max_rel(a, b):
    scale = max(x.abs().max() for x in a)
    return max(float((x - y).abs().max() / scale) for x, y in zip(a, b))


@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("steps", [1, 3])
def test_vmap_equals_loop_on_mlp(steps, first_order):
    torch.manual_seed(2)
    model = MLP(1, (40, 40), 1).double()
    episode = _double_episode(num_tasks=5, shots=10, queries=10, seed=4)
    grads = {}
    for strategy in ("loop", "vmap"):
        theta = dict(model.named_parameters())
        r = meta_loss(model, theta, episode, F.mse_loss, num_inner_steps=steps, inner_lr=0.01,
                      first_order=first_order, strategy=strategy)
        grads[strategy] = torch.autograd.grad(r.loss, list(theta.values()))
        assert r.strategy == strategy
    assert _max_rel(grads["loop"], grads["vmap"]) < 1e-5


@pytest.mark.parametrize("steps", [1, 3])
def test_vmap_equals_loop_on_conv4_with_batch_norm_second_order(steps):
    """The trap measured on torch 2.13: built-in norms are wrong here; ours must be exact."""
    torch.manual_seed(3)
    model = Conv4(in_channels=1, num_classes=3, hidden=8, norm="batch").double()
    x = torch.rand(2, 6, 1, 28, 28, dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1, 2, 2]).repeat(2, 1)
    qx = torch.rand(2, 6, 1, 28, 28, dtype=torch.float64)
    episode = Episode(x, y, qx, y, num_ways=3, num_shots=2, num_queries=2, batched=True)
    grads = {}
    for strategy in ("loop", "vmap"):
        theta = dict(model.named_parameters())
        r = meta_loss(model, theta, episode, F.cross_entropy, num_inner_steps=steps, inner_lr=0.1,
                      strategy=strategy)
        grads[strategy] = torch.autograd.grad(r.loss, list(theta.values()))
    assert _max_rel(grads["loop"], grads["vmap"]) < 1e-5


def test_second_order_builds_double_backward_graph_and_first_order_does_not():
    model = MLP(1, (8,), 1)
    ep = SinusoidTasks().sample(1, 5, 5, generator=0)[0]
    theta = dict(model.named_parameters())
    so = inner_loop(model, theta, ep.support_x, ep.support_y, F.mse_loss, num_inner_steps=1, inner_lr=0.1)
    fo = inner_loop(model, theta, ep.support_x, ep.support_y, F.mse_loss, num_inner_steps=1, inner_lr=0.1,
                    first_order=True)

    def graph_names(t):
        seen, stack, names = set(), [t.grad_fn], set()
        while stack:
            node = stack.pop()
            if node is None or node in seen:
                continue
            seen.add(node)
            names.add(type(node).__name__)
            stack.extend(n for n, _ in node.next_functions)
        return names

    w = "layers.0.weight"
    # Second order differentiates the inner gradient itself: backward-of-backward nodes appear.
    assert any(n.endswith("BackwardBackward0") for n in graph_names(so.params[w])), graph_names(so.params[w])
    # FOMAML's adapted weight is theta - alpha * constant: its graph reaches theta only through Sub/Mul.
    assert graph_names(fo.params[w]) <= {"SubBackward0", "AccumulateGrad", "MulBackward0"}


def test_inner_loop_reduces_support_loss_and_traces():
    torch.manual_seed(0)
    model = MLP(1, (40, 40), 1)
    ep = SinusoidTasks().sample(1, 10, 10, generator=1)[0]
    res = inner_loop(model, dict(model.named_parameters()), ep.support_x, ep.support_y, F.mse_loss,
                     num_inner_steps=5, inner_lr=0.01, trace=True)
    assert res.losses.shape == (6,)
    assert res.losses[-1] < res.losses[0]
    assert len(res.params_trace) == 6
    assert torch.equal(res.params_trace[0]["layers.0.weight"], model.layers[0].weight.detach())


def test_inner_loop_works_under_no_grad_for_evaluation():
    model = MLP(1, (8,), 1)
    ep = SinusoidTasks().sample(1, 5, 5, generator=1)[0]
    with torch.no_grad():
        res = inner_loop(model, dict(model.named_parameters()), ep.support_x, ep.support_y, F.mse_loss,
                         num_inner_steps=2, inner_lr=0.01)
    assert not any(p.requires_grad for p in res.params.values())


def test_meta_sgd_learns_per_parameter_inner_lrs():
    torch.manual_seed(0)
    maml = MAML(MLP(1, (16,), 1), F.mse_loss, inner_lr=0.01, learn_inner_lr=True, strategy="vmap")
    names = {n for n, _ in maml.named_parameters()}
    assert any(n.startswith("inner_lrs.") for n in names)
    lrs = maml.inner_lr()
    assert set(lrs) == set(maml.params())
    assert all(lrs[k].shape == p.shape for k, p in maml.params().items())
    batch = SinusoidTasks().sample(4, 5, 5, generator=0)
    maml.meta_loss(batch).loss.backward()
    assert all(maml.inner_lrs[k].grad is not None and maml.inner_lrs[k].grad.abs().sum() > 0
               for k in maml.inner_lrs)
    # The learned lr is used: the vmap and loop strategies agree with it too.
    g = {}
    for s in ("loop", "vmap"):
        maml.strategy = s
        maml.zero_grad()
        maml.meta_loss(batch).loss.backward()
        g[s] = [p.grad.clone() for p in maml.parameters()]
    assert _max_rel(g["loop"], g["vmap"]) < 1e-4


def test_choose_strategy():
    assert choose_strategy(MLP())[0] == "vmap"
    assert choose_strategy(Conv4())[0] == "loop"
    bn = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    assert choose_strategy(bn)[0] == "loop"
    assert choose_strategy(bn, first_order=True)[0] == "vmap"


def test_meta_loss_rejects_unbatched_episode_and_bad_strategy():
    model = MLP()
    ep = SinusoidTasks().sample(2, 5, 5, generator=0)
    with pytest.raises(EpisodeError, match="batched"):
        meta_loss(model, dict(model.named_parameters()), ep[0], F.mse_loss)
    with pytest.raises(ValueError, match="strategy"):
        meta_loss(model, dict(model.named_parameters()), ep, F.mse_loss, strategy="fast")
    with pytest.raises(ValueError, match="num_inner_steps"):
        inner_loop(model, dict(model.named_parameters()), ep[0].support_x, ep[0].support_y, F.mse_loss,
                   num_inner_steps=-1)
