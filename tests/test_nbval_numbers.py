"""The numeric tolerance that lets saved notebook outputs pass on a CPU that rounds differently."""
from __future__ import annotations

import pytest

from nbval_numbers import close_enough

# Saved output (left) and what an AVX-512 machine printed (right) for the same seeded cells.
SEEN_ON_ANOTHER_CPU = [
    ("fitted ability scale: mean 0.00, SD 1.00", "fitted ability scale: mean -0.00, SD 1.00"),
    ("  trained here (30 steps)  0 inner steps: 20.00 +/- 0.00 %",
     "  trained here (30 steps)  0 inner steps: 20.08 +/- 0.21 %"),
    ("  trained here (30 steps)  3 inner steps: 53.19 +/- 2.17 %",
     "  trained here (30 steps)  3 inner steps: 53.89 +/- 2.39 %"),
    ("last 20 training episodes: 20-way accuracy 0.737, 5-way accuracy 0.858",
     "last 20 training episodes: 20-way accuracy 0.731, 5-way accuracy 0.841"),
    ("  pretrained + prototypes      66.77 +/- 3.04 %", "  pretrained + prototypes      64.99 +/- 3.44 %"),
    ("  clean  78.40 +/- 4.05 %   attacked  14.03 +/- 3.62 %",
     "  clean  79.31 +/- 4.24 %   attacked  13.01 +/- 4.57 %"),
    ("  MAML, 10 steps           2.959 +/- 0.536", "  MAML, 10 steps           2.965 +/- 0.537"),
    ("CNP  -1.255 +/- 0.070     -1.5", "CNP  -1.254 +/- 0.069     -1.5"),
]


@pytest.mark.parametrize("saved, fresh", SEEN_ON_ANOTHER_CPU)
def test_rounding_differences_between_cpus_pass(saved, fresh):
    assert close_enough(saved, fresh)


@pytest.mark.parametrize("saved, fresh, why", [
    ("ProtoNet 96.77 +/- 0.89 %", "ProtoNet 93.10 +/- 0.95 %", "mean moved beyond both CIs"),
    ("ProtoNet 96.77 +/- 0.89 %", "ProtoNet 96.70 +/- 2.50 %", "CI grew almost threefold"),
    ("accuracy 0.80", "accuracy 0.90", "a plain decimal moved by 12%"),
    ("loss 2.50", "loss 2.80", "a plain decimal moved by 12%"),
    ("100 test episodes", "101 test episodes", "integers must match exactly"),
    ("5-way 1-shot: 96.77 +/- 0.89 %", "5-way 5-shot: 96.77 +/- 0.89 %", "integers in labels"),
    ("ProtoNet 96.77 +/- 0.89 %", "MAML     96.77 +/- 0.89 %", "text between numbers"),
    ("a 1.0 b", "a 1.0 b 2.0", "a number more"),
    ("shape [5, 1, 28, 28]", "shape [5, 28, 28]", "a dimension fewer"),
])
def test_real_changes_fail(saved, fresh, why):
    assert not close_enough(saved, fresh), why


def test_runs_of_spaces_count_as_one():
    assert close_enough("x  = 0.50", "x = 0.50")
    assert not close_enough("x = 0.50", "x=0.50")


def test_exponents_compare_as_values():
    assert close_enough("lr 1e-3", "lr 1.0e-3") and not close_enough("lr 1e-3", "lr 2e-3")


def _notebook(printed: str, saved: str) -> dict:
    return {"nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "cells": [{"cell_type": "code", "id": "c0", "execution_count": 1, "metadata": {},
                       "source": f"print({printed!r})",
                       "outputs": [{"output_type": "stream", "name": "stdout", "text": saved + "\n"}]}]}


@pytest.mark.parametrize("saved, passes", [
    ("accuracy 81.00 +/- 2.00 %", True),     # within the CI: passes, and the summary says so
    ("accuracy 90.00 +/- 2.00 %", False),    # outside it: nbval's usual failure
])
def test_nbval_run_applies_the_tolerance(tmp_path, saved, passes):
    import json
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).parent
    shutil.copy(tests.parent / "conftest.py", tmp_path / "conftest.py")      # the hook
    (tmp_path / "tests").mkdir()
    shutil.copy(tests / "nbval_numbers.py", tmp_path / "tests" / "nbval_numbers.py")
    (tmp_path / "cell.ipynb").write_text(json.dumps(_notebook("accuracy 80.00 +/- 2.00 %", saved)))
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--nbval",
                          "--nbval-current-env", "-p", "no:xdist", "cell.ipynb"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert (run.returncode == 0) is passes, run.stdout[-2000:]
    assert ("matched their saved outputs only within the numeric tolerance" in run.stdout) is passes
