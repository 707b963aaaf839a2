"""bench/maml_speed.py's memory column measures the step, not the import-time peak."""
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
