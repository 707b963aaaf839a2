"""A Gradescope autograder for one assignment, per Gradescope's published specification
(https://gradescope-autograders.readthedocs.io/en/latest/specs/).

``build_autograder_zip("maml", private_dir, "maml_autograder.zip")`` writes a zip with, at
its root:

- ``setup.sh``: run once by Gradescope when it builds the image (Ubuntu, as root): a
  virtual environment in ``/autograder/venv`` with CPU torch and the pinned requirements;
- ``run_autograder``: run per submission from ``/autograder``; it calls
  ``python -m metalearn_lite.grading.gradescope --root /autograder --assignment NAME``;
- ``requirements.txt``, ``config.json`` (assignment and limits), ``lib/metalearn_lite/``
  (the grader, imported through ``PYTHONPATH``), ``private/<name>/`` (the assignment's
  private folder: reference, hidden tests, term seed; Gradescope never shows the
  autograder source to students, and the sandbox hides it from the submission).

``run_autograder`` grades the single ``.ipynb``/``.py`` in ``/autograder/submission`` in the
same sandbox as ``metalearn grade`` and writes ``/autograder/results/results.json``: the
total ``score``, ``execution_time``, an ``output`` line, and one test per question
(``name``, ``number``, ``score``, ``max_score``, ``status``, ``visibility``, ``output``),
all text (``output_format`` "text": nothing is rendered as Markdown or HTML). Set
``AUTOGRADER_ROOT`` / ``METALEARN_PYTHON`` to run it outside Gradescope (the tests do).
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
import zipfile
from importlib import metadata
from pathlib import Path

from ..atomic import atomic_write_bytes, atomic_write_text
from .assignment import HIDDEN_FILE, SOLUTION_FILE, TERM_FILE, Assignment, load_assignment
from .sandbox import Limits

__all__ = ["build_autograder_zip", "gradescope_results", "run", "main"]

PACKAGE_DIR = Path(__file__).resolve().parents[1]
_REQUIREMENTS = ("numpy", "tqdm", "ipython")

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu).
set -euo pipefail
apt-get update -q
apt-get install -y -q python3 python3-venv python3-pip
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install -q --index-url https://download.pytorch.org/whl/cpu "torch=={torch}"
/autograder/venv/bin/pip install -q -r /autograder/source/requirements.txt
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this per submission, from /autograder (metalearn-lite {version}).
set -uo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{METALEARN_PYTHON:-$ROOT/venv/bin/python}}"
cd "$ROOT"
export PYTHONPATH="$ROOT/source/lib"
exec "$PYTHON" -m metalearn_lite.grading.gradescope --root "$ROOT" --assignment {name}
"""


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""


def _add(archive: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def build_autograder_zip(name: str, tests_dir: str | Path | None, out: str | Path,
                         limits: Limits = Limits()) -> Path:
    """Write the Gradescope autograder zip of assignment ``name`` (see the module doc).

    Loads the assignment first, so a broken private folder fails here, not on Gradescope.
    """
    from .. import __version__

    assignment = load_assignment(name, tests_dir)
    from .assignment import private_folder

    folder = private_folder(tests_dir) / name
    torch_version = _version("torch").split("+")[0] or "2.13.0"
    requirements = "".join(f"{r}=={_version(r)}\n" if _version(r) else f"{r}\n" for r in _REQUIREMENTS)
    config = {"assignment": name, "timeout": limits.timeout, "memory_mb": limits.memory_mb,
              "call_timeout": limits.call_timeout, "max_points": assignment.max_points}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        _add(archive, "setup.sh", SETUP_SH.format(torch=torch_version).encode(), executable=True)
        _add(archive, "run_autograder", RUN_AUTOGRADER.format(name=name, version=__version__).encode(),
             executable=True)
        _add(archive, "requirements.txt", requirements.encode())
        _add(archive, "config.json", (json.dumps(config, indent=1) + "\n").encode())
        for path in sorted(PACKAGE_DIR.rglob("*")):
            rel = path.relative_to(PACKAGE_DIR)
            if path.is_file() and "__pycache__" not in rel.parts and path.suffix in (".py", ".json"):
                _add(archive, f"lib/metalearn_lite/{rel.as_posix()}", path.read_bytes())
        for file in (SOLUTION_FILE, HIDDEN_FILE, TERM_FILE):
            _add(archive, f"private/{name}/{file}", (folder / file).read_bytes())
    out = Path(out)
    atomic_write_bytes(out, buffer.getvalue())
    return out


# --------------------------------------------------------------- inside the container
def _find_submission(folder: Path, name: str) -> tuple[Path | None, str]:
    """The file to grade: ``hw_<name>.ipynb`` if present, else the only .ipynb, else the
    only .py (regular files, links not followed); ``(None, reason)`` otherwise."""
    if not folder.is_dir():
        return None, f"no submission folder {folder}"
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    for pick in ([p for p in files if p.name == f"hw_{name}.ipynb"],
                 [p for p in files if p.suffix == ".ipynb"], [p for p in files if p.suffix == ".py"]):
        if len(pick) == 1:
            return pick[0], ""
        if len(pick) > 1:
            names = ", ".join(p.name for p in pick[:10])
            return None, f"expected one notebook (hw_{name}.ipynb), found several: {names}"
    return None, f"expected one .ipynb (hw_{name}.ipynb) or .py file, found none"


def _question_output(result: dict, qid: str, hint: str) -> str:
    lines, hidden_total, hidden_passed = [], 0, 0
    for test in result.get("tests", []):
        if test["question"] != qid:
            continue
        if test["visible"]:
            detail = "passed" if test["status"] == "passed" else f"FAILED: {test.get('message', '')}"
            lines.append(f"visible test '{test['name']}': {detail}")
        else:
            hidden_total += 1
            hidden_passed += test["status"] == "passed"
    lines.append(f"hidden tests: {hidden_passed} of {hidden_total} passed (the points come from these)")
    q = result["questions"][qid]
    if q["passed"] < q["total"] and hint:
        lines.append(f"hint: {hint}")
    return "\n".join(lines)


def gradescope_results(result: dict, assignment: Assignment, seconds: float) -> dict:
    """Gradescope's results.json for one graded submission (``grader.grade_file``'s record)."""
    status = result.get("status", "error")
    summary = {"ok": "Graded.", "invalid": f"The file could not be graded: {result.get('reason', '')}.",
               "timeout": "Your code did not finish in the time allowed; tests it did not reach count as failed.",
               "error": "Your code stopped before all tests ran (a crash, an exit or a resource limit); "
                        "tests it did not reach count as failed."}.get(status, "Graded.")
    tests = []
    for q in assignment.questions:
        qres = result["questions"][q.qid]
        tests.append({"name": f"Question {q.qid}: {q.title}", "number": q.qid,
                      "score": float(qres["points"]), "max_score": float(q.points),
                      "status": "passed" if qres["points"] >= q.points else "failed",
                      "visibility": "visible", "output": _question_output(result, q.qid, q.hint),
                      "output_format": "text"})
    return {"score": round(sum(t["score"] for t in tests), 4),
            "execution_time": round(seconds, 1),
            "output": f"{summary} Score: {result.get('points', 0):g} / {assignment.max_points:g}.",
            "output_format": "text", "test_output_format": "text", "test_name_format": "text",
            "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}


def run(root: str | Path, name: str) -> dict:
    """Grade ``root/submission`` and write ``root/results/results.json``; returns the results."""
    from .grader import _score, grade_file

    start = time.monotonic()
    root = Path(root)
    source = root / "source"
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    assignment = load_assignment(name, source / "private")
    limits = Limits(timeout=float(config["timeout"]), memory_mb=int(config["memory_mb"]),
                    call_timeout=float(config["call_timeout"]))
    path, reason = _find_submission(root / "submission", name)
    if path is None:
        tests, questions, _, _ = _score(assignment, [])
        result = {"status": "invalid", "reason": reason, "points": 0.0, "questions": questions, "tests": tests}
    else:
        hide = [str(source), str(root / "submission"), str(root / "results")]
        result, log = grade_file("submission", path, assignment, limits, hide)
        print(log)  # results/stdout: for the instructor only (stdout_visibility hidden)
    results = gradescope_results(result, assignment, time.monotonic() - start)
    (root / "results").mkdir(parents=True, exist_ok=True)
    atomic_write_text(root / "results" / "results.json", json.dumps(results, indent=1) + "\n")
    print(f"{result['status']}: {results['score']:g} / {assignment.max_points:g}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m metalearn_lite.grading.gradescope",
                                     description="Gradescope's run_autograder entry point")
    parser.add_argument("--root", default="/autograder")
    parser.add_argument("--assignment", required=True)
    args = parser.parse_args(argv)
    run(args.root, args.assignment)
    return 0


if __name__ == "__main__":
    sys.exit(main())
