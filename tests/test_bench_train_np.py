"""bench/train_np.py and bench/train_in_context.py, run for a few steps: the checkpoint records the
std floor and the figures by context size, the shipped-model table lists every model at every size,
and the sinusoid bench compares with MAML on the same tasks."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def _bench(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_train_np_writes_the_floor_and_the_table_for_a_new_model(tmp_path, capsys):
    bench = _bench("train_np")
    bench.main(["--model", "transformer", "--steps", "3", "--batch", "4", "--hidden", "16", "--eval-tasks", "8",
                "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "command: python bench/train_np.py --model transformer" in out
    assert "| transformer |" in out and "| GP oracle |" in out
    meta = json.loads((tmp_path / "transformer_gp.pt.json").read_text())["metadata"]
    assert meta["config"]["min_std"] == 1e-3 and meta["train_context"] == [1, 40] and meta["steps"] == 3
    assert sorted(meta["held_out_by_context"], key=int) == ["1", "3", "10", "20", "40"]
    for row in meta["held_out_by_context"].values():
        assert row["gap"] == pytest.approx(row["oracle_ll"] - row["model_ll"], abs=2e-3)

    bench.main(["--table", "--eval-tasks", "8", "--out", str(tmp_path)])
    table = capsys.readouterr().out
    assert "| transformer |" in table and "| CNP |" not in table   # only the models in --out
    assert sum(line.startswith("|---") for line in table.splitlines()) == 1


def test_chapter_04_models_keep_the_old_floor_and_training_range():
    bench = _bench("train_np")
    model, config = bench.build("cnp", 16)
    assert "min_std" not in config and model.min_std == 0.1
    model, config = bench.build("attentive_np", 16, 1e-3)
    assert config["min_std"] == 1e-3 and config["latent_path"] is False


def test_train_in_context_compares_with_maml_on_the_same_tasks(tmp_path, capsys):
    bench = _bench("train_in_context")
    bench.main(["--steps", "3", "--batch", "4", "--eval-tasks", "6", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "| transformer |" in out and "| maml_10_steps |" in out
    meta = json.loads((tmp_path / "transformer_sinusoid.pt.json").read_text())["metadata"]
    assert meta["steps"] == 3 and set(meta["query_mse"]) == {"1", "3", "10", "20", "40"}
