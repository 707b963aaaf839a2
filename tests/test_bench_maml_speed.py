"""bench/maml_speed.py: its memory column measures the step, not the import-time peak; its Conv-4
baseline and variants compute the same meta-gradient."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "maml_speed.py"


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's peak-RSS reset")
@pytest.mark.parametrize("strategy", ["loop", "vmap"])
def test_memory_child_sees_a_small_meta_step(strategy):
    """With ru_maxrss alone this printed 0.0 MB: importing torch had set a higher peak."""
    out = subprocess.run([sys.executable, str(BENCH), "--threads", "1", "--memory-child", "sinusoid-1step-2nd",
                          strategy], capture_output=True, text=True, check=True, timeout=120)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["extra_mb"] > 0.5
    assert figures["peak_mb"] > figures["extra_mb"]


def _bench_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("maml_speed_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_conv4_baseline_and_fast_path_compute_the_same_meta_gradient():
    """The bench's learn2learn-style baseline (nn.BatchNorm2d, per-task backward) is the same
    computation as the package's paths it is compared with (float32, 2 tasks)."""
    bench = _bench_module()
    model, l2l_net, episode = bench.conv_setup(meta_batch=2)
    grads = {v: [g.clone() for g in bench.conv_variant_step(v, model, l2l_net, episode, 1, False)]
             for v in ("l2l", "parallel", "accumulate", "grouped-2", "reference")}
    scale = max(float(g.abs().max()) for g in grads["l2l"])
    for variant in ("parallel", "accumulate", "grouped-2", "reference"):
        assert max(float((a - b).abs().max()) for a, b in zip(grads["l2l"], grads[variant])) < 1e-4 * scale


def test_float64_check_passes_the_fast_path_and_catches_a_wrong_one(monkeypatch):
    """The bench's float64 column: meta_step's path matches the reference to 1e-10, and the
    check is not blind: a first-order step passed off as second order is far off."""
    bench = _bench_module()
    assert bench.float64_difference("parallel", 1, False, meta_batch=2) < 1e-10
    real_step = bench.conv_variant_step
    monkeypatch.setattr(bench, "conv_variant_step",
                        lambda v, m, n, e, steps, first_order: real_step(v, m, n, e, steps, True))
    assert bench.float64_difference("parallel", 1, False, meta_batch=2) > 1e-6


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's peak-RSS reset")
def test_conv4_memory_child_reports_a_step():
    out = subprocess.run([sys.executable, str(BENCH), "--threads", "1", "--meta-batch", "1", "--memory-child",
                          "conv4-5w1s15q-1step-2nd", "grouped-1"], capture_output=True, text=True, check=True,
                         timeout=300)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["extra_mb"] > 1.0
