"""Training loop, checkpoints, evaluation; and MAML beating the pretrained baseline."""
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from metalearn_lite.algorithms import MAML, fine_tune, pretraining_loss
from metalearn_lite.models import MLP
from metalearn_lite.tasks import SinusoidTasks
from metalearn_lite.training import (CheckpointError, History, checkpoint_info, evaluate, load_checkpoint,
                                     mean_confidence_interval, meta_train, save_checkpoint)


def test_mean_confidence_interval_formula():
    values = [1.0, 2.0, 3.0, 4.0]
    r = mean_confidence_interval(values)
    sd = math.sqrt(sum((v - 2.5) ** 2 for v in values) / 3)
    assert r.mean == 2.5 and abs(r.ci95 - 1.96 * sd / 2) < 1e-12
    with pytest.raises(ValueError, match="at least one value"):
        mean_confidence_interval([])


def test_evaluate_counts_tasks_of_batched_episodes():
    tasks = SinusoidTasks()
    batches = (tasks.sample(4, 5, 5, generator=i) for i in range(10))
    r = evaluate(lambda ep: float(ep.support_y.abs().mean()), batches, num_episodes=10, progress=False)
    assert r.num_episodes == 10
    with pytest.raises(ValueError, match="gave only 8"):
        evaluate(lambda ep: 0.0, (tasks.sample(4, 5, 5, generator=i) for i in range(2)), num_episodes=10,
                 progress=False)


def test_meta_train_logs_and_calls_back_and_stops_on_nan():
    model = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(32, 1)
    seen = []
    h = meta_train(lambda s: (F.mse_loss(model(x), 2 * x), {"step_sq": s * s}), opt, 20, progress=False,
                   callback=lambda s, hist: seen.append(s), callback_every=5)
    assert h.steps == list(range(20)) and h["loss"][-1] < h["loss"][0] and h["step_sq"][3] == 9
    assert seen == [4, 9, 14, 19]
    h2 = meta_train(lambda s: F.mse_loss(model(x), 2 * x), opt, 3, progress=False, history=h)
    assert h2.steps[-3:] == [20, 21, 22]
    assert History.from_dict(json.loads(json.dumps(h2.to_dict()))).metrics == h2.metrics
    with pytest.raises(FloatingPointError, match="at step 0"):
        meta_train(lambda s: model(x).sum() * float("nan"), opt, 2, progress=False)


def test_checkpoint_round_trip_and_tamper_detection(tmp_path):
    model = MLP(1, (4,), 1)
    path = tmp_path / "ckpt" / "m.pt"
    digest = save_checkpoint(path, {"model": model.state_dict(), "step": 3}, {"command": "pytest"})
    info = checkpoint_info(path)
    assert info["sha256"] == digest and info["metadata"]["command"] == "pytest"
    state = load_checkpoint(path)
    assert state["step"] == 3 and torch.equal(state["model"]["layers.0.weight"], model.layers[0].weight)
    assert not list(path.parent.glob("*.part")), "no temporary files left behind"
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(CheckpointError, match="expected"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_sinusoid_maml_beats_pretrained_baseline_at_k5():
    """A short run: MAML's K=5 query MSE after one step is below the pretrained network's."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    tasks = SinusoidTasks()
    maml = MAML(MLP(1, (40, 40), 1), F.mse_loss, inner_lr=0.01, num_inner_steps=1, strategy="vmap")
    opt = torch.optim.Adam(maml.parameters(), lr=1e-3)
    meta_train(lambda s: maml.meta_loss(tasks.sample(25, 5, 10, generator=gen)).loss, opt, 500, progress=False)
    pretrained = MLP(1, (40, 40), 1)
    opt = torch.optim.Adam(pretrained.parameters(), lr=1e-3)
    meta_train(lambda s: pretraining_loss(pretrained, tasks.sample(25, 5, 10, generator=gen), F.mse_loss), opt, 400,
               progress=False)
    test = tasks.sample(300, 5, 20, generator=12345)
    maml_mse, pre_mse = [], []
    for task in test:
        adapted = maml.adapt(task.support_x, task.support_y, num_inner_steps=1, first_order=True).params
        tuned = fine_tune(pretrained, None, task.support_x, task.support_y, F.mse_loss, 1, 0.01).params
        with torch.no_grad():
            maml_mse.append(F.mse_loss(maml(task.query_x, adapted), task.query_y))
            pre_mse.append(F.mse_loss(functional_call(pretrained, tuned, (task.query_x,)), task.query_y))
    # Paired over the same test tasks: the whole 95% CI of (pretrained - MAML) is above 0.
    gap = mean_confidence_interval([float(p - m) for p, m in zip(pre_mse, maml_mse)])
    assert gap.mean - gap.ci95 > 0, (gap, mean_confidence_interval(maml_mse), mean_confidence_interval(pre_mse))
