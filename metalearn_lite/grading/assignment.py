"""An assignment as the grader sees it: questions, visible + hidden cases, expected outputs.

Instructor side only. Nothing secret lives in the package: the grader reads an
instructor's **private assignment folder** (``metalearn homework private DIR`` writes one
from the public ``solutions/``; ``docs/authoring-homework.md`` shows how to write a new
one by hand)::

    DIR/<name>/solution.ipynb   the notebook with ### BEGIN/END SOLUTION regions: the
                                reference code; answer cells carry metadata.metalearn
                                {question, points, function, title, hint, rtol, atol}
    DIR/<name>/hidden_tests.py  hidden_cases(qid, seed) -> [(case name, args)]; optionally
                                visible_cases(qid) -> [(case name, args)] for questions
                                the package does not know
    DIR/<name>/term.json        {"seed": N}: the term seed the hidden inputs are drawn from

Everything is loaded in this (trusted) process; expected outputs are computed from the
reference at load time. Points come from hidden cases only: visible cases are what the
students' self-checks run, so they are reported in the feedback but earn nothing.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from .compare import compare
from .harness import encode_value
from .questions import ASSIGNMENTS, VISIBLE, Question, visible_expected_path

__all__ = ["Case", "Assignment", "AssignmentFolderError", "load_assignment", "assignment_names",
           "encode_input", "private_folder", "reference_functions", "notebook_questions",
           "visible_expected_in_sync", "stale_visible_expected", "PRIVATE_ENV",
           "SOLUTION_FILE", "HIDDEN_FILE", "TERM_FILE"]

# Public per-assignment data shipped with the package (the visible tests' expected outputs).
ASSIGNMENTS_DIR = Path(__file__).with_name("assignments")
PRIVATE_ENV = "METALEARN_ASSIGNMENTS"
SOLUTION_FILE, HIDDEN_FILE, TERM_FILE = "solution.ipynb", "hidden_tests.py", "term.json"
_QUESTION_FIELDS = ("function", "points", "title", "hint", "rtol", "atol")


class AssignmentFolderError(FileNotFoundError):
    """The private assignment folder is missing, incomplete or malformed."""


@dataclass(frozen=True)
class Case:
    """One graded test: ``id`` like "1.2/h3", inputs as sent to the child, expected output."""

    id: str
    qid: str
    name: str
    visible: bool
    function: str
    args: list
    expected: dict


@dataclass(frozen=True)
class Assignment:
    name: str
    questions: list[Question]
    cases: list[Case]
    seed: int | None = None

    @property
    def max_points(self) -> float:
        return float(sum(q.points for q in self.questions))

    def child_cases(self) -> list[dict]:
        """What the child receives: ids, function names and inputs (no expected values)."""
        return [{"id": c.id, "function": c.function, "args": c.args} for c in self.cases]


def assignment_names(tests_dir: str | Path | None = None) -> list[str]:
    """The package's homework names, or the assignments of a private folder."""
    if tests_dir is None:
        return sorted(ASSIGNMENTS)
    root = Path(tests_dir)
    return sorted(p.name for p in root.iterdir() if (p / SOLUTION_FILE).is_file()) if root.is_dir() else []


def encode_input(value) -> dict:
    """Encode a call argument for the child (tensors keep ``requires_grad``)."""
    if isinstance(value, torch.Tensor):
        spec = encode_value(value)
        spec["requires_grad"] = bool(value.requires_grad)
        return spec
    if isinstance(value, (list, tuple)):
        return {"kind": "list", "items": [encode_input(v) for v in value]}
    if isinstance(value, bool):
        return {"kind": "bool", "value": value}
    if isinstance(value, (int, float)):
        return {"kind": "number", "value": value}
    raise TypeError(f"cannot send a {type(value).__name__} to the child")


def private_folder(tests_dir: str | Path | None = None) -> Path:
    """The private assignment folder: ``tests_dir``, else ``$METALEARN_ASSIGNMENTS``."""
    chosen = tests_dir if tests_dir not in (None, "") else os.environ.get(PRIVATE_ENV) or None
    if chosen is None:
        raise AssignmentFolderError(
            "grading needs the instructor's private assignment folder (reference code, hidden "
            f"tests, points): create one with `metalearn homework private DIR` and pass --tests DIR "
            f"(or set {PRIVATE_ENV}=DIR)")
    root = Path(chosen)
    if not root.is_dir():
        raise AssignmentFolderError(f"private assignment folder {root} does not exist "
                                    "(create it with `metalearn homework private DIR`)")
    return root


# ------------------------------------------------------------------- reference code
def _is_selfcheck_cell(source: str) -> bool:
    """A cell that only calls the self-check (``check("1.1", f);``): skipped by the reference."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    return bool(tree.body) and all(
        isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name) and node.value.func.id in ("check", "check_all")
        for node in tree.body)


def _code_cells(nb: dict) -> list[tuple[int, dict, str]]:
    out = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") == "code":
            src = cell.get("source", "")
            out.append((i, cell, "".join(src) if isinstance(src, list) else src))
    return out


def _read_notebook(path: Path) -> dict:
    try:
        nb = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise AssignmentFolderError(f"{path}: not a readable notebook ({exc})") from None
    if type(nb) is not dict or type(nb.get("cells")) is not list:
        raise AssignmentFolderError(f"{path}: expected an nbformat 4 notebook with a 'cells' list")
    return nb


def reference_functions(notebook: str | Path | dict) -> dict:
    """Run a solution notebook's code cells (self-check calls skipped) in a fresh namespace
    and return it: ``{function name: reference function, ...}``. Trusted input only."""
    nb = notebook if isinstance(notebook, dict) else _read_notebook(Path(notebook))
    where = "notebook" if isinstance(notebook, dict) else str(notebook)
    namespace: dict = {"__name__": "__metalearn_reference__"}
    threads, rng = torch.get_num_threads(), torch.random.get_rng_state()
    try:  # the notebook may seed torch or set its threads: the grader's own state stays as it was
        for i, _, source in _code_cells(nb):
            if _is_selfcheck_cell(source):
                continue
            exec(compile(source, f"{where} cell {i}", "exec"), namespace)  # noqa: S102 - instructor code
    finally:
        torch.set_num_threads(threads)
        torch.random.set_rng_state(rng)
    return namespace


def notebook_questions(nb: dict, name: str, where: str = "notebook") -> list[Question]:
    """Questions from the answer cells' ``metadata.metalearn`` (the package's table fills
    fields a built-in question leaves out)."""
    known = {q.qid: q for q in ASSIGNMENTS.get(name, [])}
    questions = []
    for i, cell, source in _code_cells(nb):
        meta = cell.get("metadata", {}).get("metalearn", {})
        qid = meta.get("question") if isinstance(meta, dict) else None
        if not qid:
            continue
        base = known.get(qid)
        fields = {f: meta[f] for f in _QUESTION_FIELDS if f in meta}
        if "function" not in fields and base is None:
            try:
                defs = [n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)]
            except SyntaxError:
                defs = []
            if not defs:
                raise AssignmentFolderError(f"{where} cell {i}: question {qid} names no function "
                                            "(add metadata.metalearn.function or a def)")
            fields["function"] = defs[0]
        if "points" not in fields and base is None:
            raise AssignmentFolderError(f"{where} cell {i}: question {qid} has no metadata.metalearn.points")
        if base is None:
            fields.setdefault("title", f"Question {qid}")
            fields.setdefault("hint", "")
            q = Question(qid, **fields)
        else:
            q = Question(qid, **{f: fields.get(f, getattr(base, f)) for f in _QUESTION_FIELDS})
        if not (isinstance(q.points, (int, float)) and q.points > 0):
            raise AssignmentFolderError(f"{where} cell {i}: question {qid} needs positive points, got {q.points!r}")
        questions.append(q)
    if not questions:
        raise AssignmentFolderError(f"{where}: no answer cell carries metadata.metalearn.question")
    if len({q.qid for q in questions}) != len(questions):
        raise AssignmentFolderError(f"{where}: a question id appears in two answer cells")
    return questions


# ---------------------------------------------------------------------- the folder
def _load_hidden(path: Path, name: str):
    if not path.is_file():
        raise AssignmentFolderError(f"hidden tests of {name!r} not found: expected {path} "
                                    "defining hidden_cases(qid, seed)")
    spec = importlib.util.spec_from_file_location(f"_metalearn_hidden_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "hidden_cases", None)):
        raise AssignmentFolderError(f"{path} must define hidden_cases(qid, seed) -> [(name, args)]")
    return module


def _term_seed(path: Path) -> int:
    try:
        seed = json.loads(path.read_text(encoding="utf-8"))["seed"]
    except (OSError, ValueError, KeyError, TypeError):
        raise AssignmentFolderError(f"{path}: expected a JSON file {{\"seed\": <integer>}} "
                                    "(the term seed of the hidden inputs)") from None
    if type(seed) is not int:
        raise AssignmentFolderError(f"{path}: seed must be an integer, got {seed!r}")
    return seed


def _expected(fn, args) -> dict:
    with torch.enable_grad():
        return encode_value(fn(*args))


def _visible_pairs(hidden, qid: str) -> list[tuple[str, list]]:
    if hidden is not None and callable(getattr(hidden, "visible_cases", None)):
        return [(n, list(a)) for n, a in hidden.visible_cases(qid)]
    return [(vc.name, vc.build()) for vc in VISIBLE.get(qid, [])]


@lru_cache(maxsize=None)
def _load(name: str, folder: str) -> Assignment:
    root = Path(folder) / name
    if not root.is_dir():
        raise AssignmentFolderError(f"assignment {name!r} not found: expected a folder {root} "
                                    f"(with {SOLUTION_FILE}, {HIDDEN_FILE}, {TERM_FILE}); "
                                    f"{Path(folder)} holds {assignment_names(folder) or 'none'}")
    nb = _read_notebook(root / SOLUTION_FILE) if (root / SOLUTION_FILE).is_file() else None
    if nb is None:
        raise AssignmentFolderError(f"reference of {name!r} not found: expected {root / SOLUTION_FILE}")
    hidden = _load_hidden(root / HIDDEN_FILE, name)
    seed = _term_seed(root / TERM_FILE)
    questions = notebook_questions(nb, name, str(root / SOLUTION_FILE))
    reference = reference_functions(root / SOLUTION_FILE)
    cases = []
    for q in questions:
        ref = reference.get(q.function)
        if not callable(ref):
            raise AssignmentFolderError(f"{root / SOLUTION_FILE} defines no function {q.function} "
                                        f"(question {q.qid})")
        for i, (case_name, args) in enumerate(_visible_pairs(hidden, q.qid)):
            cases.append(Case(f"{q.qid}/v{i}", q.qid, case_name, True, q.function,
                              [encode_input(a) for a in args], _expected(ref, args)))
        hidden_list = list(hidden.hidden_cases(q.qid, seed))
        if not hidden_list:
            raise AssignmentFolderError(f"{root / HIDDEN_FILE}: question {q.qid} has no hidden cases "
                                        "(points come from hidden cases only)")
        for i, (case_name, args) in enumerate(hidden_list):
            encoded = [encode_input(a) for a in args]
            cases.append(Case(f"{q.qid}/h{i}", q.qid, str(case_name), False, q.function, encoded,
                              _expected(ref, args)))
    return Assignment(name, questions, cases, seed)


def load_assignment(name: str, tests_dir: str | Path | None = None) -> Assignment:
    """Questions and cases of assignment ``name`` from the private assignment folder
    ``tests_dir`` (default: ``$METALEARN_ASSIGNMENTS``; see the module doc for its layout).

    Raises ``AssignmentFolderError`` (a ``FileNotFoundError``) naming what was expected when
    the folder, the assignment, its reference, hidden tests or term seed is missing.
    """
    folder = private_folder(tests_dir)
    return _load(name, str(folder.resolve()))


# --------------------------------------------- public visible expected values (generated)
# A stored visible expected value counts as current when it is within this fraction of its
# question's grading tolerance of the reference's value on this machine: floating-point
# results differ in the last bits between CPUs (seen: AVX2 vs AVX-512 machines), while a
# change of the reference or of a case moves values by far more.
SYNC_TOLERANCE_FRACTION = 0.01
SOLUTIONS_DIR = Path(__file__).resolve().parents[2] / "solutions"


def _visible_expected_data(name: str, solutions: Path) -> dict:
    path = Path(solutions) / f"hw_{name}.ipynb"
    reference = reference_functions(path)
    data = {}
    for q in ASSIGNMENTS[name]:
        for _, args in _visible_pairs(None, q.qid):
            data.setdefault(q.qid, []).append(_expected(reference[q.function], args))
    return data


def _canonical_text(data: dict) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def _is_current(stored, fresh: dict, questions: dict[str, Question]) -> bool:
    if type(stored) is not dict or sorted(stored) != sorted(fresh):
        return False
    for qid, cases in fresh.items():
        rtol = questions[qid].rtol * SYNC_TOLERANCE_FRACTION
        atol = questions[qid].atol * SYNC_TOLERANCE_FRACTION
        kept = stored[qid]
        if type(kept) is not list or len(kept) != len(cases):
            return False
        if not all(type(k) is dict and k.get("kind") == f["kind"] and compare(f, k, rtol, atol).passed
                   for f, k in zip(cases, kept)):
            return False
    return True


def stale_visible_expected(solutions: str | Path | None = None) -> dict[Path, str]:
    """``{path: canonical text}`` of the package's ``visible_expected.json`` files that are
    missing, unreadable or differ from the reference code in ``solutions/hw_<name>.ipynb``
    beyond floating-point noise (see ``SYNC_TOLERANCE_FRACTION``); empty when all are current."""
    solutions = Path(solutions) if solutions is not None else SOLUTIONS_DIR
    stale = {}
    for name in sorted(ASSIGNMENTS):
        path, fresh = visible_expected_path(name), _visible_expected_data(name, solutions)
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            stored = None
        if not _is_current(stored, fresh, {q.qid: q for q in ASSIGNMENTS[name]}):
            stale[path] = _canonical_text(fresh)
    return stale


def visible_expected_in_sync(solutions: str | Path | None = None) -> bool:
    """Whether the stored visible expected outputs equal the reference's (up to
    floating-point noise between machines)."""
    return not stale_visible_expected(solutions)
