"""Meta-training snapshots: bench/reproduce_sinusoid.py --snapshots writes them, load_snapshots
reads them (with clear errors), and the shipped file replays the run of maml_sinusoid.pt."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from metalearn_lite.training import load_checkpoint, save_checkpoint
from metalearn_lite.training.checkpoint import SHIPPED_DIR, CheckpointError, checkpoint_info
from metalearn_lite.training.snapshots import (SINUSOID_SNAPSHOTS, load_snapshots, save_snapshots,
                                               shipped_sinusoid_snapshots)

BENCH = Path(__file__).resolve().parents[1] / "bench" / "reproduce_sinusoid.py"
pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def _bench():
    spec = importlib.util.spec_from_file_location("reproduce_sinusoid", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_snapshot_steps_are_log_spaced_from_0_to_the_last_step():
    steps = _bench().snapshot_steps(49306)
    assert steps[0] == 0 and steps[-1] == 49306 and steps == sorted(set(steps))
    assert {1, 10, 100, 1000, 10000} <= set(steps)
    assert 20 <= len(steps) <= 40                     # a few dozen: the file stays small
    assert _bench().snapshot_steps(0) == [0]
    with pytest.raises(ValueError, match="total >= 0"):
        _bench().snapshot_steps(-1)


def test_bench_snapshots_end_at_the_saved_model_and_do_not_change_training(tmp_path, capsys):
    bench = _bench()
    tiny = ["--steps", "12", "--pretrain-steps", "2", "--meta-batch", "2", "--num-test-tasks", "3",
            "--num-test-queries", "4"]
    assert bench.main([*tiny, "--snapshots", str(tmp_path / "snaps.pt"), "--save", str(tmp_path / "a.pt")]) == 0
    assert bench.main([*tiny, "--save", str(tmp_path / "b.pt")]) == 0
    snaps = load_snapshots(tmp_path / "snaps.pt")
    assert snaps.steps == bench.snapshot_steps(12) == [0, 1, 2, 3, 5, 7, 10, 12]
    with_snapshots, without = load_checkpoint(tmp_path / "a.pt")["maml"], load_checkpoint(tmp_path / "b.pt")["maml"]
    for name, tensor in with_snapshots.items():
        assert torch.equal(tensor, without[name]), "saving snapshots changed the trained model"
        assert torch.equal(snaps.params[-1][name], tensor), "the last snapshot is not the saved model"
    assert not torch.equal(snaps.params[0]["layers.0.weight"], snaps.params[-1]["layers.0.weight"])
    assert snaps.meta_loss[0] != snaps.meta_loss[0] and all(v > 0 for v in snaps.meta_loss[1:])  # NaN at 0
    assert snaps.info["complete"] and snaps.run["inner_lr"] == 0.01 and snaps.config["hidden_sizes"] == [40, 40]
    model = snaps.model()
    model.load_state_dict(snaps.params[-1])


def test_load_snapshots_says_what_is_wrong(tmp_path):
    save_checkpoint(tmp_path / "no.pt", {"maml": {}})
    with pytest.raises(CheckpointError, match="not a snapshots file.*missing"):
        load_snapshots(tmp_path / "no.pt")
    theta = [{"w": torch.full((3,), float(i))} for i in range(2)]
    save_snapshots(tmp_path / "ok.pt", [0, 5], theta, [float("nan"), 1.0], config={}, run={"inner_lr": 0.1})
    snaps = load_snapshots(tmp_path / "ok.pt")
    assert snaps.steps == [0, 5] and torch.equal(snaps.params[1]["w"], theta[1]["w"]) and snaps.run["inner_lr"] == 0.1
    save_snapshots(tmp_path / "order.pt", [5, 1], theta, [0.0, 0.0], config={}, run={})
    with pytest.raises(CheckpointError, match="strictly increasing"):
        load_snapshots(tmp_path / "order.pt")
    state = load_checkpoint(tmp_path / "ok.pt")
    state["steps"] = torch.tensor([0, 1, 2])
    state["meta_loss"] = torch.zeros(3)
    save_checkpoint(tmp_path / "count.pt", state)
    with pytest.raises(CheckpointError, match="holds 2 snapshots, expected 3"):
        load_snapshots(tmp_path / "count.pt")
    with pytest.raises(ValueError, match="as many steps, params and meta_loss"):
        save_snapshots(tmp_path / "bad.pt", [0, 1, 2], theta, [0.0, 0.0], config={}, run={})


def test_shipped_snapshots_replay_the_shipped_sinusoid_run():
    snaps = shipped_sinusoid_snapshots()
    shipped = checkpoint_info(SHIPPED_DIR / "maml_sinusoid.pt")["metadata"]
    assert snaps.steps[0] == 0 and len(snaps.steps) >= 20
    assert snaps.steps[-1] == shipped["meta_steps"] == 49306
    final = load_checkpoint(SHIPPED_DIR / "maml_sinusoid.pt")["maml"]
    # The rerun with the same seed, one thread and the same torch gave the same theta, bit for bit.
    for name, tensor in final.items():
        assert torch.equal(snaps.params[-1][name], tensor), f"last snapshot differs from maml_sinusoid.pt in {name}"
    assert (SHIPPED_DIR / SINUSOID_SNAPSHOTS).stat().st_size < 300_000
