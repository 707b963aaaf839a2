"""Homework authoring: solutions/ -> exercises/ stays in sync, and both notebooks behave."""
from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import pytest

from metalearn_lite.cli import main
from metalearn_lite.grading.authoring import (BEGIN, END, AuthoringError, check_exercises,
                                              generate_exercises, render_notebook, student_version)
from metalearn_lite.grading.questions import ASSIGNMENTS

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS, EXERCISES = REPO / "solutions", REPO / "exercises"


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _code(nb: dict) -> list[str]:
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def test_exercises_are_in_sync_with_solutions():
    assert check_exercises(SOLUTIONS, EXERCISES) == []
    assert main(["homework", "generate", "--solutions", str(SOLUTIONS), "--out", str(EXERCISES),
                 "--check"]) == 0


def test_check_fails_when_out_of_sync(tmp_path, capsys):
    out = tmp_path / "exercises"
    shutil.copytree(EXERCISES, out)
    nb = _load(out / "hw_maml.ipynb")
    nb["cells"][0]["source"].append("edited by hand\n")
    (out / "hw_maml.ipynb").write_text(render_notebook(nb))
    (out / "hw_extra.ipynb").write_text("{}")
    (out / "hw_np.ipynb").unlink()
    assert main(["homework", "generate", "--solutions", str(SOLUTIONS), "--out", str(out), "--check"]) == 1
    err = capsys.readouterr().err
    assert "hw_maml.ipynb differs" in err and "hw_extra.ipynb has no solution" in err
    assert "hw_np.ipynb is missing" in err
    # generate repairs all three, and is deterministic (same bytes as the committed ones)
    assert main(["homework", "generate", "--solutions", str(SOLUTIONS), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in EXERCISES.iterdir())
    for path in EXERCISES.iterdir():
        assert (out / path.name).read_bytes() == path.read_bytes()
    assert generate_exercises(SOLUTIONS, out) == []  # second run: nothing to write


@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_student_version_hides_answers_and_keeps_everything_else(name):
    sol, ex = _load(SOLUTIONS / f"hw_{name}.ipynb"), _load(EXERCISES / f"hw_{name}.ipynb")
    assert len(sol["cells"]) == len(ex["cells"])
    text = json.dumps(ex)
    assert BEGIN not in text and END not in text
    for s_cell, e_cell in zip(sol["cells"], ex["cells"]):
        s_src, e_src = "".join(s_cell["source"]), "".join(e_cell["source"])
        if BEGIN in s_src:
            answer = s_src.split(BEGIN)[1].split(END)[0].strip()
            assert answer and answer.splitlines()[0].strip() not in e_src
            qid = s_cell["metadata"]["metalearn"]["question"]
            assert f'raise NotImplementedError("Question {qid}: ' in e_src
            assert e_cell["metadata"]["nbgrader"]["solution"] is True
        else:
            assert s_src == e_src
        if e_cell["cell_type"] == "code":
            assert e_cell["outputs"] == [] and e_cell["execution_count"] is None


@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_points_agree_between_notebook_and_grader(name):
    nb = _load(SOLUTIONS / f"hw_{name}.ipynb")
    questions = {q.qid: q for q in ASSIGNMENTS[name]}
    assert nb["metadata"]["metalearn"] == {"assignment": name, "points": sum(q.points for q in questions.values())}
    seen = {}
    for cell in nb["cells"]:
        meta = cell["metadata"].get("metalearn")
        if cell["cell_type"] == "markdown" and meta:
            heading = "".join(cell["source"]).splitlines()[0]
            match = re.match(r"## Question (\d\.\d): .* \((\d+) points\)", heading)
            assert match, heading
            seen[match[1]] = int(match[2])
            assert meta == {"question": match[1], "points": int(match[2])}
    assert seen == {qid: q.points for qid, q in questions.items()}


def _run_notebook(path: Path) -> str:
    """Execute a notebook's code cells top to bottom in a fresh namespace; return stdout."""
    namespace: dict = {"__name__": "__main__"}
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        for source in _code(_load(path)):
            exec(compile(source, str(path), "exec"), namespace)  # noqa: S102
    return buffer.getvalue()


@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_untouched_exercise_runs_top_to_bottom(name):
    out = _run_notebook(EXERCISES / f"hw_{name}.ipynb")
    for q in ASSIGNMENTS[name]:
        assert f"Question {q.qid} ({q.title}): not answered yet" in out


@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_solution_passes_its_self_checks(name):
    out = _run_notebook(SOLUTIONS / f"hw_{name}.ipynb")
    for q in ASSIGNMENTS[name]:
        assert f"Question {q.qid} ({q.title}): all visible tests pass." in out
    assert "FAIL" not in out


def test_selfcheck_reports_failures_with_a_hint_and_never_raises(capsys):
    from metalearn_lite.grading.selfcheck import check

    def wrong(query_emb, prototypes):
        return ((query_emb[:, None] - prototypes[None]) ** 2).sum(-1)  # forgot the minus

    def crashes(query_emb, prototypes):
        raise IndexError("oops")

    report = check("2.2", wrong)
    assert not report.ok and report.passed == 0
    out = capsys.readouterr().out
    assert "values differ" in out and "Hint:" in out and "minus" in out
    report = check("2.2", crashes)
    assert not report.ok and "IndexError: oops" in capsys.readouterr().out
    with pytest.raises(KeyError, match="unknown question '9.9'"):
        check("9.9", wrong)


@pytest.mark.parametrize("source,problem", [
    (f"def f():\n    {BEGIN}\n    return 1\n", "without"),
    (f"def f():\n    {END}\n", "without"),
    (f"def f():\n    {BEGIN}\n    {BEGIN}\n    {END}\n", "nested"),
])
def test_authoring_rejects_broken_markers(source, problem):
    nb = {"cells": [{"cell_type": "code", "metadata": {"metalearn": {"question": "1.1"}},
                     "source": source, "outputs": [], "execution_count": None}]}
    with pytest.raises(AuthoringError, match=problem):
        student_version(nb)


def test_authoring_rejects_markers_without_question():
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": 1,
                     "source": f"{BEGIN}\nx = 1\n{END}\n"}]}
    with pytest.raises(AuthoringError, match="no metadata.metalearn.question"):
        student_version(nb)
