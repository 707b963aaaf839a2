"""The homework as an nbgrader assignment: graded test cells with points, hidden tests in
nbgrader's ``### BEGIN HIDDEN TESTS`` format.

``write_nbgrader_source("maml", private_dir, course_dir)`` writes
``course_dir/source/maml/hw_maml.ipynb`` from the private assignment folder: the solution
notebook (its answer cells are nbgrader solution cells) with, after each answer cell, a
locked autograder test cell worth the question's points::

    from metalearn_lite.grading.nbgrader_tests import run_cases
    run_cases("1.1", inner_update, '<visible cases>', 3)      # shown to students, 0 points
    ### BEGIN HIDDEN TESTS
    run_cases("1.1", inner_update, '<hidden cases>', 3, hidden=True)   # -> partial credit
    ### END HIDDEN TESTS

The hidden region (inputs and expected outputs, drawn from the term seed) is removed by
``nbgrader generate_assignment`` and restored by ``nbgrader autograde``; the cell's last
value is the points earned, which nbgrader records as partial credit. Then, in
``course_dir``: ``nbgrader generate_assignment maml`` and, with submissions in
``submitted/<student>/maml/hw_maml.ipynb``, ``nbgrader autograde maml``.

nbgrader runs student code in an ordinary Jupyter kernel, with the instructor's rights and
no confinement: for classes that may attack the grader, use ``metalearn grade`` or the
Gradescope autograder (both sandboxed).
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

from ..atomic import atomic_write_text
from .assignment import SOLUTION_FILE, Case, load_assignment, private_folder
from .authoring import render_notebook

__all__ = ["write_nbgrader_source", "NBGRADER_CONFIG"]

NBGRADER_CONFIG = """c = get_config()  # noqa: F821 - nbgrader's configuration object
c.CourseDirectory.course_id = "metalearn-lite"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}
"""


def _cases_text(cases: list[Case]) -> str:
    return repr(json.dumps([{"name": c.name, "args": c.args, "expected": c.expected} for c in cases],
                           separators=(",", ":")))


def _test_cell(qid: str, function: str, points: float, rtol: float, atol: float,
               visible: list[Case], hidden: list[Case]) -> dict:
    tol = f", rtol={rtol!r}, atol={atol!r}"
    source = (f"# Autograder tests of question {qid} ({points:g} points). The visible tests print what they\n"
              f"# find and earn nothing; the points come from the hidden tests the grader adds.\n"
              "from metalearn_lite.grading.nbgrader_tests import run_cases\n\n"
              f"run_cases({qid!r}, {function}, {_cases_text(visible)}, {points!r}{tol})\n"
              "### BEGIN HIDDEN TESTS\n"
              f"run_cases({qid!r}, {function}, {_cases_text(hidden)}, {points!r}{tol}, hidden=True)\n"
              "### END HIDDEN TESTS\n")
    grade_id = f"q{qid.replace('.', '_')}_tests"
    return {"cell_type": "code", "execution_count": None, "outputs": [],
            "metadata": {"nbgrader": {"grade": True, "grade_id": grade_id, "locked": True,
                                      "points": points, "schema_version": 3, "solution": False,
                                      "task": False}},
            "source": source.splitlines(True)}


def write_nbgrader_source(name: str, tests_dir: str | Path | None, course: str | Path) -> Path:
    """Write ``course/source/<name>/hw_<name>.ipynb`` (and a minimal ``nbgrader_config.py``
    when the course has none); returns the notebook's path."""
    assignment = load_assignment(name, tests_dir)
    nb = json.loads((private_folder(tests_dir) / name / SOLUTION_FILE).read_text(encoding="utf-8-sig"))
    questions = {q.qid: q for q in assignment.questions}
    cells = []
    for cell in nb["cells"]:
        cell = copy.deepcopy(cell)
        cells.append(cell)
        qid = cell.get("metadata", {}).get("metalearn", {}).get("question")
        if cell.get("cell_type") != "code" or qid not in questions:
            continue
        q = questions[qid]
        cell["metadata"]["nbgrader"] = {"grade": False, "grade_id": f"q{qid.replace('.', '_')}",
                                        "locked": False, "schema_version": 3, "solution": True,
                                        "task": False}
        qcases = [c for c in assignment.cases if c.qid == qid]
        cells.append(_test_cell(qid, q.function, float(q.points), q.rtol, q.atol,
                                [c for c in qcases if c.visible], [c for c in qcases if not c.visible]))
    nb["cells"] = cells
    for cell in nb["cells"]:  # nbgrader wants cell ids on nbformat >= 4.5 notebooks
        cell.pop("id", None)
    nb["nbformat"], nb["nbformat_minor"] = 4, 4
    course = Path(course)
    target = course / "source" / name / f"hw_{name}.ipynb"
    atomic_write_text(target, render_notebook(nb))
    if not (course / "nbgrader_config.py").exists():
        atomic_write_text(course / "nbgrader_config.py", NBGRADER_CONFIG)
    return target
