"""An assignment as the grader sees it: questions, visible + hidden cases, expected outputs.

Instructor side only. Hidden cases and the reference code are loaded from
``grading/assignments/<name>/hidden_tests.py`` by file path (the folder is package data,
not an importable package), and expected outputs are computed from the reference at
load time, in this (trusted) process.
"""
from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from .compare import compare
from .harness import encode_value
from .questions import ASSIGNMENTS, Question, visible_cases, visible_expected_path

__all__ = ["Case", "Assignment", "load_assignment", "assignment_names", "encode_input",
           "visible_expected_in_sync", "stale_visible_expected"]

ASSIGNMENTS_DIR = Path(__file__).with_name("assignments")


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

    @property
    def max_points(self) -> float:
        return float(sum(q.points for q in self.questions))

    def child_cases(self) -> list[dict]:
        """What the child receives: ids, function names and inputs (no expected values)."""
        return [{"id": c.id, "function": c.function, "args": c.args} for c in self.cases]


def assignment_names() -> list[str]:
    return sorted(ASSIGNMENTS)


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


def _load_hidden(name: str, tests_dir: str | None):
    path = Path(tests_dir or ASSIGNMENTS_DIR) / name / "hidden_tests.py"
    if not path.is_file():
        raise FileNotFoundError(f"hidden tests of {name!r} not found: expected {path}")
    spec = importlib.util.spec_from_file_location(f"_metalearn_hidden_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _expected(fn, build) -> dict:
    with torch.enable_grad():
        return encode_value(fn(*build()))


@lru_cache(maxsize=None)
def load_assignment(name: str, tests_dir: str | None = None) -> Assignment:
    """Questions and cases of assignment ``name`` ("maml", "protonet", "np", "education").

    ``tests_dir``: a private folder holding ``<name>/hidden_tests.py`` (same interface as
    the shipped ``grading/assignments/<name>/hidden_tests.py``), for courses that keep
    their hidden tests out of the public package.
    """
    if name not in ASSIGNMENTS:
        raise KeyError(f"unknown assignment {name!r}; expected one of {assignment_names()}")
    hidden = _load_hidden(name, tests_dir)
    cases = []
    for q in ASSIGNMENTS[name]:
        ref = hidden.REFERENCE[q.qid]
        for i, vc in enumerate(visible_cases(q.qid)):
            cases.append(Case(f"{q.qid}/v{i}", q.qid, vc.name, True, q.function,
                              [encode_input(a) for a in vc.build()], _expected(ref, vc.build)))
        for i, (case_name, args) in enumerate(hidden.hidden_cases(q.qid)):
            encoded = [encode_input(a) for a in args]
            expected = encode_value(ref(*args))
            cases.append(Case(f"{q.qid}/h{i}", q.qid, case_name, False, q.function, encoded,
                              expected))
    return Assignment(name, list(ASSIGNMENTS[name]), cases)


# A stored visible expected value counts as current when it is within this fraction of its
# question's grading tolerance of the reference's value on this machine: floating-point
# results differ in the last bits between CPUs (seen: AVX2 vs AVX-512 machines), while a
# change of the reference or of a case moves values by far more.
SYNC_TOLERANCE_FRACTION = 0.01


def _visible_expected_data(name: str) -> dict:
    data = {}
    for case in load_assignment(name).cases:
        if case.visible:
            data.setdefault(case.qid, []).append(case.expected)
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


def stale_visible_expected() -> dict[Path, str]:
    """``{path: canonical text}`` of the ``visible_expected.json`` files that are missing,
    unreadable or differ from the reference code beyond floating-point noise (see
    ``SYNC_TOLERANCE_FRACTION``); empty when all are current."""
    stale = {}
    for name in assignment_names():
        path, fresh = visible_expected_path(name), _visible_expected_data(name)
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            stored = None
        if not _is_current(stored, fresh, {q.qid: q for q in ASSIGNMENTS[name]}):
            stale[path] = _canonical_text(fresh)
    return stale


def visible_expected_in_sync() -> bool:
    """Whether the stored visible expected outputs equal the reference's (up to
    floating-point noise between machines)."""
    return not stale_visible_expected()
