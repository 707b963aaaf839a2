"""A new assignment written in the instructor's folder, with no package code changes:
generate the student version, grade an honest and a blank submission (docs/authoring-homework.md)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from metalearn_lite.cli import main
from metalearn_lite.grading.assignment import AssignmentFolderError, load_assignment
from metalearn_lite.grading.authoring import BEGIN, END
from metalearn_lite.grading.grader import grade_folder
from metalearn_lite.grading.sandbox import Limits


def _cell(kind: str, source: str, metalearn: dict | None = None) -> dict:
    cell = {"cell_type": kind, "metadata": {"metalearn": metalearn} if metalearn else {},
            "source": source.splitlines(True)}
    if kind == "code":
        cell.update(outputs=[], execution_count=None)
    return cell


SOLUTION = {
    "nbformat": 4, "nbformat_minor": 5,
    "metadata": {"metalearn": {"assignment": "ridge", "points": 5}},
    "cells": [
        _cell("markdown", "# Homework: ridge regression\n"),
        _cell("code", "import torch\n"),
        _cell("markdown", "## Question 9.1: Polynomial features (2 points)\n"),
        _cell("code", f'''def poly_features(x, degree):
    """x: [N] -> [N, degree + 1] with columns x**0 ... x**degree."""
    {BEGIN}
    return torch.stack([x ** k for k in range(degree + 1)], dim=-1)
    {END}
''', {"question": "9.1", "points": 2, "function": "poly_features", "title": "Polynomial features",
      "hint": "Column k is x**k, starting at k = 0."}),
        _cell("code", "assert poly_features(torch.tensor([2.0]), 2).tolist() == [[1.0, 2.0, 4.0]]\n"),
        _cell("markdown", "## Question 9.2: Ridge solution (3 points)\n"),
        _cell("code", f'''def ridge_solution(X, y, lam):
    """X: [N, D], y: [N], lam: float -> w: [D] minimising |Xw - y|^2 + lam |w|^2."""
    {BEGIN}
    eye = torch.eye(X.shape[1], dtype=X.dtype)
    return torch.linalg.solve(X.T @ X + lam * eye, X.T @ y)
    {END}
''', {"question": "9.2", "points": 3, "function": "ridge_solution", "title": "Ridge solution",
      "hint": "Solve (X^T X + lam I) w = X^T y.", "rtol": 1e-4, "atol": 1e-6}),
    ],
}

HIDDEN_TESTS = '''import torch

from metalearn_lite.grading.questions import case_seed


def _data(seed, n, d):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(n, generator=g, dtype=torch.float64)


def visible_cases(qid):
    if qid == "9.1":
        return [("3 points, degree 2", [torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64), 2])]
    X, y = _data(0, 6, 3)
    return [("6 points, 3 features", [X, y, 0.1])]


def hidden_cases(qid, seed):
    if qid == "9.1":
        return [(f"degree {k}", [_data(case_seed(seed, qid, k), 5, 1)[1], k]) for k in (1, 3, 4)]
    return [(f"lam {lam}", [*_data(case_seed(seed, qid, i), 8, 4), lam]) for i, lam in enumerate([0.0, 0.5, 2.0])]
'''


def write_assignment(folder: Path) -> Path:
    course = folder / "course"
    (course / "ridge").mkdir(parents=True)
    (course / "ridge" / "solution.ipynb").write_text(json.dumps(SOLUTION, indent=1))
    (course / "ridge" / "hidden_tests.py").write_text(HIDDEN_TESTS)
    (course / "ridge" / "term.json").write_text('{"seed": 11}\n')
    return course


def test_new_assignment_from_the_instructors_folder_alone(tmp_path, capsys):
    course = write_assignment(tmp_path)
    exercises = tmp_path / "exercises"
    assert main(["homework", "generate", "--solutions", str(course), "--out", str(exercises)]) == 0
    student = json.loads((exercises / "hw_ridge.ipynb").read_text())
    text = json.dumps(student)
    assert BEGIN not in text and "torch.linalg.solve" not in text
    assert 'raise NotImplementedError(\\"Question 9.2: write ridge_solution\\")' in text
    assert main(["homework", "generate", "--solutions", str(course), "--out", str(exercises), "--check"]) == 0

    assignment = load_assignment("ridge", course)
    assert [(q.qid, q.function, q.points) for q in assignment.questions] == [
        ("9.1", "poly_features", 2), ("9.2", "ridge_solution", 3)]
    assert [c.id for c in assignment.cases if c.visible] == ["9.1/v0", "9.2/v0"]

    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(course / "ridge" / "solution.ipynb", subs / "honest.ipynb")
    shutil.copy(exercises / "hw_ridge.ipynb", subs / "blank.ipynb")
    (subs / "visible_only.py").write_text(  # hard-codes the visible answers: no points
        "import torch\n"
        "def poly_features(x, degree):\n"
        "    return torch.stack([x ** k for k in range(3)], dim=-1)\n")
    out = tmp_path / "grades"
    capsys.readouterr()
    assert main(["grade", str(subs), "--assignment", "ridge", "--tests", str(course), "--out", str(out),
                 "--jobs", "2", "--no-progress"]) == 0
    rows = {p.stem: json.loads(p.read_text()) for p in (out / "students").glob("*.json")}
    assert rows["honest"]["points"] == 5 and rows["honest"]["status"] == "ok"
    assert rows["blank"]["points"] == 0
    assert rows["visible_only"]["questions"]["9.1"]["passed"] == 1  # the visible case ...
    assert rows["visible_only"]["points"] == 0                       # ... earns nothing
    header = (out / "grades.csv").read_text().splitlines()[0]
    assert header == "student,status,points,max_points,q9.1,q9.2,file"
    feedback = (out / "feedback" / "blank.md").read_text()
    assert "Polynomial features" in feedback and "not answered yet" in feedback


def test_a_broken_new_assignment_names_what_is_missing(tmp_path):
    course = write_assignment(tmp_path)
    nb = json.loads((course / "ridge" / "solution.ipynb").read_text())
    del nb["cells"][3]["metadata"]["metalearn"]["points"]
    (course / "ridge" / "solution.ipynb").write_text(json.dumps(nb))
    with pytest.raises(AssignmentFolderError, match="question 9.1 has no metadata.metalearn.points"):
        load_assignment("ridge", course)
    nb["cells"][3]["metadata"]["metalearn"]["points"] = 2
    nb["cells"][3]["metadata"]["metalearn"]["function"] = "poly"
    (course / "ridge" / "solution.ipynb").write_text(json.dumps(nb))
    with pytest.raises(AssignmentFolderError, match="defines no function poly"):
        load_assignment("ridge", course)
