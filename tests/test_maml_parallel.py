"""MAML's task-parallel meta-gradient equals the readable per-task reference (issue 18).

float64, second order, Conv-4 with its batch norm, 1 and 5 inner steps: the threaded path
(worker threads, the pure ``Conv4.functional_forward``, lean query blocks) must give the
meta-gradient of ``meta_loss(strategy="loop")`` to 1e-10, deterministically.
"""
from __future__ import annotations

import threading

import pytest
import torch
import torch.nn.functional as F

from metalearn_lite import Episode
from metalearn_lite.algorithms.maml import MAML, accuracy, meta_backward, meta_loss
from metalearn_lite.algorithms.maml_parallel import supports_task_parallel, task_parallel_meta_backward
from metalearn_lite.models import MLP, Conv4
from metalearn_lite.tasks import SinusoidTasks


def _episode(num_tasks=3, size=16, ways=3, shots=2, queries=3, seed=5):
    gen = torch.Generator().manual_seed(seed)
    sx = torch.rand(num_tasks, ways * shots, 1, size, size, generator=gen, dtype=torch.float64)
    sx[..., : size // 4, :] = 0.0  # blank rows, as in handwriting: ties in every pooling window there
    qx = torch.rand(num_tasks, ways * queries, 1, size, size, generator=gen, dtype=torch.float64)
    sy = torch.arange(ways).repeat_interleave(shots).repeat(num_tasks, 1)
    qy = torch.arange(ways).repeat(queries).repeat(num_tasks, 1)
    return Episode(sx, sy, qx, qy, num_ways=ways, num_shots=shots, num_queries=queries, batched=True)


def _model(hidden=8, classes=3, seed=3):
    torch.manual_seed(seed)
    model = Conv4(in_channels=1, num_classes=classes, hidden=hidden).double()
    with torch.no_grad():
        model.features[1][1].weight[::3] *= -1  # some negative batch-norm scales
    return model


def _reference(model, episode, steps, first_order=False, inner_lr=0.1):
    theta = dict(model.named_parameters())
    result = meta_loss(model, theta, episode, F.cross_entropy, num_inner_steps=steps, inner_lr=inner_lr,
                       first_order=first_order, strategy="loop")
    leaves = list(theta.values()) + ([v for v in inner_lr.values()] if isinstance(inner_lr, dict) else [])
    return torch.autograd.grad(result.loss, leaves), result


def _rel(a, b):
    """Largest absolute error over the largest entry of the whole meta-gradient (a conv bias
    before a batch norm has a true gradient of 0, so per-tensor relative errors mean nothing)."""
    scale = max(float(x.abs().max()) for x in a)
    return max(float((x - y).abs().max()) for x, y in zip(a, b)) / scale


@pytest.mark.parametrize("steps", [1, 5])
@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("first_order", [False, True])
def test_task_parallel_equals_per_task_reference(steps, workers, first_order):
    model, episode = _model(), _episode(num_tasks=4)
    expected, ref = _reference(model, episode, steps, first_order)
    theta = dict(model.named_parameters())
    losses, metric = task_parallel_meta_backward(
        model, theta, *episode.tensors(), F.cross_entropy, num_inner_steps=steps, inner_lr=0.1,
        first_order=first_order, workers=workers, metric_fn=accuracy)
    assert _rel(expected, [p.grad for p in theta.values()]) < 1e-10
    assert torch.allclose(losses, ref.query_losses, rtol=0, atol=1e-12)
    assert metric.shape == (4,) and not losses.requires_grad
    if steps == 1 and not first_order:  # the second-order terms are really there
        first, _ = _reference(model, episode, steps, first_order=True)
        assert _rel(expected, first) > 1e-6


def test_meta_backward_picks_workers_from_the_thread_count_and_restores_it():
    model, episode = _model(), _episode(num_tasks=3)
    expected, _ = _reference(model, episode, 2)
    before = torch.get_num_threads()
    try:
        for threads in (2, 1):
            torch.set_num_threads(threads)
            model.zero_grad(set_to_none=True)
            result = meta_backward(model, dict(model.named_parameters()), episode, F.cross_entropy,
                                   num_inner_steps=2, inner_lr=0.1)
            assert result.strategy == "accumulate-parallel" and result.extras["workers"] == threads
            assert _rel(expected, [p.grad for p in model.parameters()]) < 1e-10
            assert torch.get_num_threads() == threads  # the workers' one-thread setting stays in the workers
            seen = []                                  # and the process-wide default is put back:
            later = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
            later.start()                              # a thread started afterwards takes it up
            later.join()
            assert seen == [threads]
    finally:
        torch.set_num_threads(before)


def test_issue_configuration_conv4_64_filters_28x28():
    """The benchmark's network (64 filters, 28x28, 5-way 1-shot), 2 tasks, in float64."""
    model, episode = _model(hidden=64, classes=5, seed=0), _episode(num_tasks=2, size=28, ways=5, shots=1, queries=2)
    for steps in (1, 5):
        expected, _ = _reference(model, episode, steps, inner_lr=0.4)
        model.zero_grad(set_to_none=True)
        result = meta_backward(model, dict(model.named_parameters()), episode, F.cross_entropy,
                               num_inner_steps=steps, inner_lr=0.4, workers=2)
        assert result.strategy == "accumulate-parallel" and result.extras["workers"] == 2
        assert _rel(expected, [p.grad for p in model.parameters()]) < 1e-10


def test_gradients_add_to_existing_grads_and_runs_are_bit_identical():
    model, episode = _model(), _episode(num_tasks=5)
    theta = dict(model.named_parameters())
    runs = []
    for _ in range(2):
        model.zero_grad(set_to_none=True)
        meta_backward(model, theta, episode, F.cross_entropy, num_inner_steps=2, inner_lr=0.1, workers=2)
        runs.append([p.grad.clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*runs))
    meta_backward(model, theta, episode, F.cross_entropy, num_inner_steps=2, inner_lr=0.1, workers=2)
    assert all(torch.allclose(p.grad, 2 * g, rtol=1e-14, atol=0) for p, g in zip(model.parameters(), runs[0]))


def test_meta_sgd_learning_rates_get_their_gradients():
    model, episode = _model(), _episode(num_tasks=3)
    maml = MAML(model, F.cross_entropy, inner_lr=0.1, num_inner_steps=2, learn_inner_lr=True)
    expected, _ = _reference(model, episode, 2, inner_lr=maml._alpha())
    expected_lr = expected[len(list(model.parameters())):]
    maml.zero_grad(set_to_none=True)
    result = maml.meta_step(episode, workers=2)
    assert result.strategy == "accumulate-parallel"
    assert _rel(expected_lr, [maml.inner_lrs[k].grad for k in maml.inner_lrs]) < 1e-10


def test_errors_in_a_worker_reach_the_caller_and_bad_workers_are_refused():
    model, episode = _model(), _episode(num_tasks=2)
    sx, sy, qx, qy = episode.tensors()
    with pytest.raises(IndexError):
        task_parallel_meta_backward(model, dict(model.named_parameters()), sx, sy, qx, qy + 7, F.cross_entropy,
                                    num_inner_steps=1, inner_lr=0.1, first_order=False, workers=2)
    with pytest.raises(ValueError, match="workers must be an int >= 1"):
        meta_backward(model, dict(model.named_parameters()), episode, F.cross_entropy, workers=0)
    mlp = MLP(1, (8,), 1)
    tasks = SinusoidTasks().sample(2, 5, 5, generator=0)
    assert not supports_task_parallel(mlp, dict(mlp.named_parameters()), 0.1)
    with pytest.raises(ValueError, match="functional_forward"):
        meta_backward(mlp, dict(mlp.named_parameters()), tasks, F.mse_loss, workers=2)
    non_leaf = {k: v * 1.0 for k, v in model.named_parameters()}
    assert not supports_task_parallel(model, non_leaf, 0.1)
    # batched=False is the readable task-by-task loop (functional_call), the reference itself.
    result = meta_backward(model, dict(model.named_parameters()), episode, F.cross_entropy, batched=False)
    assert result.strategy == "accumulate"
