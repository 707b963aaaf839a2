"""bench/grading_scale.py grades N honest copies and prints the figures the README quotes."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "grading_scale.py"


def test_grading_scale_bench_runs_and_reports():
    out = subprocess.run([sys.executable, str(BENCH), "--students", "2", "--jobs", "2", "--assignment", "np"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "full marks: 2 / 2" in out.stdout
    assert re.search(r"wall: [\d.]+ s = [\d.]+ s per submission", out.stdout)
    assert re.search(r"peak RSS: grader \d+ MiB, grader \+ sandboxes \d+ MiB", out.stdout)
    assert "1,000 students at this rate" in out.stdout
