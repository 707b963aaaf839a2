"""Self-checks for students: ``check("1.1", inner_update)`` runs the visible tests.

Runs in the student's own notebook, on the visible tests only (their inputs come from
``questions.py``, their expected outputs from ``visible_expected.json``). It never loads
the hidden tests or the reference code, and it never raises: an unanswered question
(``NotImplementedError``) is reported as "not answered yet". It is a study aid, not the
grade: the grader re-runs these and the hidden tests in a sandbox.
"""
from __future__ import annotations

import traceback

from .compare import compare
from .harness import encode_value
from .questions import ASSIGNMENTS, question, visible_cases, visible_expected

__all__ = ["check", "check_all", "CheckReport"]


class CheckReport:
    """What ``check`` found: ``passed``/``total`` visible tests and one line per test."""

    def __init__(self, qid: str, lines: list[str], passed: int, total: int, answered: bool):
        self.qid, self.lines, self.passed, self.total, self.answered = qid, lines, passed, total, answered

    @property
    def ok(self) -> bool:
        return self.answered and self.passed == self.total

    def __repr__(self) -> str:
        return "\n".join(self.lines)

    def _repr_pretty_(self, printer, cycle):  # IPython shows the summary, not an address
        printer.text(repr(self))


def check(qid: str, function, verbose: bool = True) -> CheckReport:
    """Run the visible tests of question ``qid`` on ``function`` and print a short report.

    Example: ``check("2.1", compute_prototypes)``. Returns a ``CheckReport`` (``.ok``).
    """
    name, q = question(qid)
    cases = visible_cases(qid)
    expected = visible_expected(name).get(qid, [])
    lines, passed, answered = [], 0, True
    for case, exp in zip(cases, expected):
        try:
            got = encode_value(function(*case.build()))
        except NotImplementedError:
            answered = False
            break
        except Exception as exc:  # noqa: BLE001 - report the student's error, never raise
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            lines.append(f"  FAIL  {case.name}: raised {type(exc).__name__}: {exc} "
                         f"(line {frame.lineno})")
            continue
        verdict = compare(exp, got, q.rtol, q.atol)
        if verdict.passed:
            passed += 1
            lines.append(f"  ok    {case.name}")
        else:
            lines.append(f"  FAIL  {case.name}: {verdict.message}")
    total = len(cases)
    if not answered:
        head = f"Question {qid} ({q.title}): not answered yet (NotImplementedError)."
        lines = [head]
    else:
        mark = "all visible tests pass" if passed == total else f"{passed}/{total} visible tests pass"
        lines.insert(0, f"Question {qid} ({q.title}): {mark}.")
        if passed < total:
            lines.append(f"  Hint: {q.hint}")
        else:
            lines.append("  (Hidden tests are run by the grader.)")
    report = CheckReport(qid, lines, passed if answered else 0, total, answered)
    if verbose:
        print(repr(report))
    return report


def check_all(namespace: dict, assignment: str, verbose: bool = True) -> list[CheckReport]:
    """Check every question of ``assignment`` whose function is defined in ``namespace``
    (pass ``globals()``)."""
    reports = []
    for q in ASSIGNMENTS[assignment]:
        fn = namespace.get(q.function)
        if fn is None:
            if verbose:
                print(f"Question {q.qid}: no function named {q.function} yet.")
            continue
        reports.append(check(q.qid, fn, verbose=verbose))
    return reports
