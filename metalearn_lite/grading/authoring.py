"""Student versions from the instructors' single source: ``solutions/`` -> ``exercises/``.

Each ``solutions/hw_<name>.ipynb`` marks answer regions with nbgrader's markers::

    def double(x):
        ### BEGIN SOLUTION
        return 2 * x
        ### END SOLUTION

and the answer cell carries ``metadata.metalearn.question`` (e.g. "1.1"). The student
version replaces each region with ``raise NotImplementedError("Question 1.1: ...")`` at
the marker's indentation, clears outputs and execution counts, and is written with
deterministic bytes, so ``check_exercises`` can compare byte for byte.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

from ..atomic import atomic_write_text

__all__ = ["AuthoringError", "student_version", "render_notebook", "generate_exercises",
           "check_exercises", "BEGIN", "END"]

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


class AuthoringError(ValueError):
    """A solution notebook breaks the authoring rules (unbalanced markers, no question id)."""


def _strip_solution(source: str, qid: str, function: str | None, where: str) -> str:
    out, inside, found = [], False, False
    for line in source.splitlines():
        body = line.strip()
        if body == BEGIN:
            if inside:
                raise AuthoringError(f"{where}: nested {BEGIN}")
            inside, found = True, True
            indent = line[: len(line) - len(line.lstrip())]
            what = f"write {function}" if function else "your answer"
            out.append(f"{indent}# YOUR CODE HERE")
            out.append(f'{indent}raise NotImplementedError("Question {qid}: {what}")')
        elif body == END:
            if not inside:
                raise AuthoringError(f"{where}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise AuthoringError(f"{where}: {BEGIN} without {END}")
    if not found:
        raise AuthoringError(f"{where}: answer cell of question {qid} has no {BEGIN} region")
    return "\n".join(out)


def student_version(notebook: dict, where: str = "notebook") -> dict:
    """The exercise notebook for a solution notebook (a new dict; the input is untouched)."""
    from .questions import question

    nb = copy.deepcopy(notebook)
    for i, cell in enumerate(nb.get("cells", [])):
        source = "".join(cell.get("source", []))
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
            qid = cell.get("metadata", {}).get("metalearn", {}).get("question")
            if BEGIN in source or END in source:
                if not qid:
                    raise AuthoringError(f"{where} cell {i}: solution markers but no "
                                         "metadata.metalearn.question")
                function = cell["metadata"]["metalearn"].get("function")
                if function is None:
                    try:
                        function = question(qid)[1].function
                    except KeyError:
                        function = None  # a new assignment's question: "your answer"
                source = _strip_solution(source, qid, function, f"{where} cell {i}")
            elif qid and cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
                raise AuthoringError(f"{where} cell {i}: answer cell of {qid} has no markers")
        elif BEGIN in source:
            raise AuthoringError(f"{where} cell {i}: solution markers outside a code cell")
        cell["source"] = source.splitlines(True)
    return nb


def render_notebook(nb: dict) -> str:
    """Deterministic text of a notebook (sorted keys, one-space indent, final newline)."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _is_private_layout(solutions: Path) -> bool:
    """An instructor's assignment folder (``<name>/solution.ipynb``, see ``assignment.py``)
    rather than a flat folder of ``hw_<name>.ipynb`` solution notebooks."""
    return not any(solutions.glob("*.ipynb")) and any(solutions.glob("*/solution.ipynb"))


def _planned(solutions: Path) -> dict[str, str]:
    """``{exercise file name: text}``: ``hw_<name>.ipynb`` -> same name; in an instructor's
    assignment folder ``<name>/solution.ipynb`` -> ``hw_<name>.ipynb``."""
    if _is_private_layout(solutions):
        files = {f"hw_{p.parent.name}.ipynb": p for p in sorted(solutions.glob("*/solution.ipynb"))}
    else:
        files = {p.name: p for p in sorted(solutions.glob("*.ipynb"))}
    if not files:
        raise AuthoringError(f"no .ipynb files in {solutions} (expected hw_<name>.ipynb, "
                             "or <name>/solution.ipynb in an assignment folder)")
    planned = {}
    for name, path in files.items():
        nb = json.loads(path.read_text(encoding="utf-8-sig"))
        planned[name] = render_notebook(student_version(nb, where=str(path)))
    return planned


def generate_exercises(solutions: str | Path = "solutions", out: str | Path = "exercises",
                       with_visible_expected: bool | None = None) -> list[Path]:
    """Write the student version of every solution notebook; returns the paths written.

    Also refreshes the package's visible tests' expected outputs (``visible_expected.json``)
    from the reference code in ``solutions`` (by default not for an instructor's assignment
    folder ``<name>/solution.ipynb``, whose visible tests live in its hidden-tests files),
    and removes exercise notebooks whose solution is gone.
    """
    from .assignment import stale_visible_expected

    solutions, out = Path(solutions), Path(out)
    if with_visible_expected is None:
        with_visible_expected = not _is_private_layout(solutions)
    planned = _planned(solutions)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in planned.items():
        target = out / name
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            atomic_write_text(target, text)
            written.append(target)
    for stale in out.glob("*.ipynb"):
        if stale.name not in planned:
            stale.unlink()
            written.append(stale)
    for path, text in (stale_visible_expected(solutions).items() if with_visible_expected else ()):
        atomic_write_text(path, text)
        written.append(path)
    return written


def check_exercises(solutions: str | Path = "solutions", out: str | Path = "exercises",
                    with_visible_expected: bool | None = None) -> list[str]:
    """Problems that make ``out`` differ from what ``generate_exercises`` would write ([] = in sync)."""
    from .assignment import visible_expected_in_sync

    solutions, out = Path(solutions), Path(out)
    if with_visible_expected is None:
        with_visible_expected = not _is_private_layout(solutions)
    problems = []
    planned = _planned(solutions)
    for name, text in planned.items():
        target = out / name
        if not target.is_file():
            problems.append(f"{target} is missing")
        elif target.read_text(encoding="utf-8") != text:
            problems.append(f"{target} differs from the student version of {solutions / name}")
    for extra in sorted(out.glob("*.ipynb")):
        if extra.name not in planned:
            problems.append(f"{extra} has no solution notebook in {solutions}")
    if with_visible_expected and not visible_expected_in_sync(solutions):
        problems.append("grading/assignments/*/visible_expected.json differ from the reference code")
    return problems
