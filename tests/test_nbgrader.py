"""The homework works with nbgrader end to end: `metalearn homework nbgrader` writes the
source notebook (graded test cells with points, hidden tests in nbgrader's format);
nbgrader's own generate_assignment and autograde give an honest submission full marks and a
blank one zero."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from metalearn_lite.cli import main
from metalearn_lite.grading.nbgrader_tests import run_cases

nbgrader = pytest.importorskip("nbgrader")
NAME = "np"


def _nbgrader(course: Path, *args: str) -> None:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]


@pytest.mark.slow  # nbgrader executes each notebook in a Jupyter kernel: about 40 s here in all
def test_generate_assignment_and_autograde_with_nbgrader(tmp_path, capsys):
    course = tmp_path / "course"
    assert main(["homework", "nbgrader", NAME, "--course", str(course)]) == 0
    source = json.loads((course / "source" / NAME / f"hw_{NAME}.ipynb").read_text())
    tests = [c for c in source["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
    assert [c["metadata"]["nbgrader"]["points"] for c in tests] == [2.0, 3.0, 3.0, 2.0]
    assert all("### BEGIN HIDDEN TESTS" in "".join(c["source"]) for c in tests)

    _nbgrader(course, "generate_assignment", NAME, "--force")
    release = json.loads((course / "release" / NAME / f"hw_{NAME}.ipynb").read_text())
    text = json.dumps(release)
    assert "BEGIN HIDDEN TESTS" not in text and "hidden=True" not in text and "BEGIN SOLUTION" not in text

    solutions = {c["metadata"]["nbgrader"]["grade_id"]: c["source"] for c in source["cells"]
                 if c["metadata"].get("nbgrader", {}).get("solution")}
    honest = json.loads(json.dumps(release))
    for cell in honest["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("solution"):
            cell["source"] = solutions[meta["grade_id"]]
    for student, nb in (("alice", honest), ("bob", release)):
        folder = course / "submitted" / student / NAME
        folder.mkdir(parents=True)
        (folder / f"hw_{NAME}.ipynb").write_text(json.dumps(nb))
    _nbgrader(course, "autograde", NAME, "--create", "--force")

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        scores = {s: (gradebook.find_submission(NAME, s).score, gradebook.find_submission(NAME, s).max_score)
                  for s in ("alice", "bob")}
    assert scores == {"alice": (10.0, 10.0), "bob": (0.0, 10.0)}


def test_run_cases_gives_partial_credit_from_hidden_cases_only(capsys):
    cases = json.dumps([{"name": f"c{i}", "args": [{"kind": "number", "value": i}],
                         "expected": {"kind": "number", "value": 2 * i}} for i in range(4)])

    def half_right(x):
        if x >= 2:
            raise ValueError("no")
        return 2 * x

    assert run_cases("9.9", half_right, cases, 3.0) is None  # visible: printed, no points
    out = capsys.readouterr()
    assert "visible test 'c0': passed" in out.out and "FAILED: raised ValueError" in out.out
    assert out.err == ""  # nbgrader zeroes a test cell that writes to stderr
    assert run_cases("9.9", half_right, cases, 3.0, hidden=True) == 1.5
    assert "2 of 4 hidden tests passed" in capsys.readouterr().out


def test_nbgrader_command_names_a_missing_assignment(tmp_path, capsys):
    assert main(["homework", "nbgrader", "nope", "--course", str(tmp_path)]) == 2
    assert "assignment 'nope' not found" in capsys.readouterr().err
