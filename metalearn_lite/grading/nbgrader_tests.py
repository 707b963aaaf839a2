"""What an nbgrader test cell of the homework calls: ``run_cases(qid, function, cases, points)``.

Runs in the student's kernel (nbgrader's model: no sandbox). ``cases`` is JSON text of
``[{"name", "args", "expected"}]`` with arguments and expected outputs in the grader's plain
encoding (``harness.encode_value``). Prints one line per visible case to stdout (never to
stderr: nbgrader gives 0 to a test cell that writes there) and never raises. With
``hidden=True`` it prints only a count and returns the points earned, ``points`` times the
fraction of cases passed, which nbgrader records as the cell's partial credit; visible
cases return ``None`` (they earn nothing).
"""
from __future__ import annotations

import json
import warnings

from .compare import compare
from .harness import decode_value, encode_value

__all__ = ["run_cases"]


def run_cases(qid: str, function, cases: str, points: float, rtol: float = 1e-5,
              atol: float = 1e-7, hidden: bool = False):
    items = json.loads(cases)
    passed = 0
    for item in items:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                got = encode_value(function(*[decode_value(a) for a in item["args"]]))
            verdict = compare(item["expected"], got, rtol, atol)
            ok, message = verdict.passed, verdict.message
        except NotImplementedError:
            ok, message = False, "not answered yet (raised NotImplementedError)"
        except Exception as exc:  # noqa: BLE001 - a wrong answer must not stop the count
            ok, message = False, f"raised {type(exc).__name__}"
        passed += ok
        if not hidden:
            print(f"Question {qid}, visible test '{item['name']}': " + ("passed" if ok else f"FAILED: {message}"))
    if not hidden:
        return None
    print(f"Question {qid}: {passed} of {len(items)} hidden tests passed")
    return round(points * passed / len(items), 4) if items else 0.0
