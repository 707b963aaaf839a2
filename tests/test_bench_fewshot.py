"""bench/reproduce_fewshot.py's training loop: the learning-rate schedule follows the limit that ends the run."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "reproduce_fewshot.py"


def _bench():
    spec = importlib.util.spec_from_file_location("reproduce_fewshot", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module           # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_progress_follows_max_steps_when_it_ends_the_run_first():
    bench = _bench()
    seen = []
    steps, _, _ = bench._timed_loop(lambda step, progress: seen.append(progress), budget_s=3600,
                                    description="test", max_steps=8)
    assert steps == 8
    assert seen == pytest.approx([i / 8 for i in range(8)], abs=1e-3)   # (+ a tiny wall fraction)
    # so the step decay halves the rate at step 4 and quarters it at step 6 of 8
    assert [bench._lr_factor(p) for p in seen] == [1, 1, 1, 1, 0.5, 0.5, 0.25, 0.25]


def test_progress_follows_the_wall_budget_without_max_steps():
    bench = _bench()
    seen = []
    bench._timed_loop(lambda step, progress: seen.append(progress), budget_s=0.2, description="test")
    assert seen and seen == sorted(seen) and 0 <= seen[0] < seen[-1] < 1
