"""The address-space limit counts the student's memory, not what torch reserves.

PyTorch's CUDA build (what plain ``pip install torch`` brings on Linux) reserves about
3.1 GiB of address space on import; a flat ``RLIMIT_AS`` of ``--memory-mb`` (2 GiB) made
every submission fail with "libtorch_cpu.so: failed to map segment" there, honest ones
included. The limit is now ``memory_mb`` on top of what an isolated interpreter maps when it
imports torch and numpy, measured once per run. These tests use a ``memory_mb`` smaller
than the build's own reservation (about 0.6 GiB for the CPU build), so they exercise the
same failure on any build: honest code that imports torch must grade, and memory the student really uses
must still be capped.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from metalearn_lite.grading.assignment import load_assignment
from metalearn_lite.grading.grader import grade_file
from metalearn_lite.grading.sandbox import Limits, address_space_mb, library_address_space_mb, run_submission

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; the sandbox needs Linux")

REPO = Path(__file__).resolve().parents[1]


def _after_importing_torch() -> dict[str, int]:
    """VmPeak and VmRSS (KiB) of an isolated interpreter that imported numpy and torch."""
    code = ("import numpy, torch\n"
            "print(*(l.split()[1] for l in open('/proc/self/status') if l.startswith(('VmPeak', 'VmRSS'))))")
    peak, rss = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                               check=True).stdout.split()[-2:]
    return {"peak": int(peak), "rss": int(rss)}


# MiB: what importing torch keeps resident plus 256, which is still less than the address space
# the import reserves (CPU build: about 0.2 GiB resident of 0.6 GiB; CUDA build: 0.5 of 3.1).
SMALL = _after_importing_torch()["rss"] // 1024 + 256 if sys.platform.startswith("linux") else 0


def test_limit_is_memory_on_top_of_what_importing_torch_reserves():
    measured = library_address_space_mb()
    assert measured * 1024 >= _after_importing_torch()["peak"] * 0.9
    assert measured > SMALL  # the premise of the tests below
    assert address_space_mb(Limits(memory_mb=SMALL)) == SMALL + measured


def test_honest_submission_that_imports_torch_grades_under_a_small_memory_limit():
    """Before the fix this run died importing torch (its reservation alone passed the limit)."""
    record, log = grade_file("honest", REPO / "solutions" / "hw_protonet.ipynb", load_assignment("protonet"),
                             Limits(timeout=60, memory_mb=SMALL, call_timeout=20))
    assert record["status"] == "ok", log[-2000:]
    assert float(record["points"]) == float(record["max_points"])


def test_memory_the_student_reserves_is_still_capped():
    """Twice ``memory_mb`` reserved by the student fails at once (RLIMIT_AS), although the
    same reservation fits beside torch when the limit is larger."""
    code = ("import mmap, numpy, torch\n"
            f"m = mmap.mmap(-1, {2 * SMALL << 20})\n"
            "print('SURVIVED', flush=True)\n")
    run = run_submission(code, [], Limits(timeout=30, memory_mb=SMALL))
    assert "SURVIVED" not in run.stdout_tail
    assert "MemoryError" in run.stderr_tail or "Cannot allocate" in run.stderr_tail, run.stderr_tail
    roomy = run_submission(code, [], Limits(timeout=30, memory_mb=4 * SMALL))
    assert "SURVIVED" in roomy.stdout_tail, roomy.stderr_tail
