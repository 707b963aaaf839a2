"""Friendly self-checks for chapter exercises (every chapter uses these).

A chapter's exercise cell holds a placeholder (the body is ``...`` so the function returns
``None``); the check cell below it calls a ``check_*`` function from
``metalearn_lite/course/checks_<chapter>.py``, which computes the reference with the
package's own function and compares with the helpers here. Three outcomes:

- right answer: prints ``✓ name`` (plus an optional note) and returns ``True``;
- not answered yet (``None``, ``...``, ``NOT_ANSWERED``, or the function raised
  ``NotImplementedError``): prints ``… name: not answered yet — fill in the cell above``
  and returns ``False`` (never raises, so the stored notebook runs top to bottom);
- wrong answer: raises ``CheckFailed`` (an ``AssertionError``) whose message says what
  was expected, what came, and the hint.

One checking core for the whole course: tensors, numbers, truth values and lists of them
are compared by :func:`metalearn_lite.grading.compare.compare`, the comparator the
homework's ``check`` (:mod:`metalearn_lite.grading.selfcheck`) and the grader use, so the
rules and the words are the same everywhere (``expected shape [3, 2], got shape [3]``). A
chapter check raises ``CheckFailed("✗ name: <that message> (hint: ...)")`` where the
homework's prints the same message in its report, because a chapter check guards the
cells after it.

API
---
``report(name, passed, hint="", note="") -> bool``
    The basic verdict: ``✓ name`` or ``CheckFailed("✗ name: <hint>")``.
``hint``, everywhere: a string, or a sequence of tiers from the idea to the code
    (``hint_text``): the first failure of a check shows the first tier, each further failure
    the next one, so a wrong first try does not hand out the answer.
``not_answered(name) -> bool``
    Prints the "not answered yet" line; returns ``False``.
``is_unanswered(value) -> bool``
    ``True`` for ``None``, ``...`` and ``NOT_ANSWERED``.
``call_answer(name, fn, *args, **kwargs) -> value | NOT_ANSWERED``
    Calls the student's function; ``NOT_ANSWERED`` when it raises
    ``NotImplementedError`` or returns a placeholder; any other exception becomes a
    ``CheckFailed`` naming the exception.
``expect_close(name, got, expected, atol=1e-6, rtol=0.0, hint="", note="", quiet=False) -> bool``
    Strict on kind and shape, tolerant on values (the grader's rules): a tensor answer must
    be a tensor of the same shape, with a floating dtype when the expected one is floating
    and an integer/bool dtype when it is not; a number and a 0-d tensor are interchangeable
    (``x.mean()`` and ``x.mean().item()`` both pass); a NumPy scalar counts as a number;
    a ``numpy.ndarray`` must be an array; tuples/lists/dicts are compared item by item
    (``name[0]``, ``name['mean']``). NaN and inf fail. ``quiet=True``: no ``✓`` line (for
    the parts of a check that reports once at the end).
``expect_equal(name, got, expected, hint="", note="", quiet=False) -> bool``
    ``expect_close`` with zero tolerance (for labels, indices, counts).

Example (a chapter's ``checks_<chapter>.py``)::

    def check_double(fn):
        x = torch.arange(3.0)
        got = call_answer("double", fn, x)
        return expect_close("double", got, 2 * x, hint="multiply every entry by 2")
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..grading.compare import compare
from ..grading.harness import MAX_ELEMENTS, encode_value

__all__ = [
    "failure_message",
    "hint_text",
    "reset_hints",
    "CheckFailed",
    "NOT_ANSWERED",
    "report",
    "not_answered",
    "is_unanswered",
    "call_answer",
    "expect_close",
    "expect_equal",
]


class CheckFailed(AssertionError):
    """A self-check found a wrong answer; the message says what and gives the hint."""


class _NotAnswered:
    """Sentinel for "the student has not filled this in yet"."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_ANSWERED"

    def __bool__(self) -> bool:
        return False


NOT_ANSWERED = _NotAnswered()


def is_unanswered(value: Any) -> bool:
    """``True`` for the placeholders an unanswered exercise returns: ``None``, ``...``,
    ``NOT_ANSWERED``."""
    return value is None or value is Ellipsis or value is NOT_ANSWERED


def report(name: str, passed: bool, hint: str | Sequence[str] = "", note: str = "") -> bool:
    """Print ``✓ name`` (and ``note``) when ``passed``; otherwise raise ``CheckFailed``.

    ``hint`` is what a student should look at when the check fails.
    """
    if passed:
        print(f"✓ {name}" + (f" — {note}" if note else ""))
        return True
    text = hint_text(hint)
    raise CheckFailed(f"✗ {name}" + (f": {text}" if text else ""))


def not_answered(name: str) -> bool:
    """Print that exercise ``name`` is still a placeholder and return ``False``."""
    print(f"… {name}: not answered yet — fill in the cell above, then run this cell again")
    return False


def call_answer(name: str, fn: Callable, *args, **kwargs) -> Any:
    """Call the student's ``fn(*args, **kwargs)``.

    Returns its value, or ``NOT_ANSWERED`` when ``fn`` raises ``NotImplementedError`` or
    returns ``None``/``...``. Any other exception is re-raised as ``CheckFailed`` naming
    the exception type and message (the original is chained for the traceback).
    """
    if not callable(fn):
        raise CheckFailed(f"✗ {name}: expected a function, got {type(fn).__name__}")
    try:
        value = fn(*args, **kwargs)
    except NotImplementedError:
        return NOT_ANSWERED
    except Exception as exc:  # noqa: BLE001 - turned into a friendly message
        raise CheckFailed(f"✗ {name}: your function raised {type(exc).__name__}: {exc}") from exc
    return NOT_ANSWERED if is_unanswered(value) else value


def _shape(x) -> str:
    return "[" + ", ".join(str(int(s)) for s in x.shape) + "]"


def failure_message(where: str, message: str, hint: str | Sequence[str] = "") -> str:
    """A failed check in one line: ``✗ <where>: <what was expected, what came> (hint: <hint>)``;
    ``message`` is worded as the homework's ``check`` and the grader word it (``compare``)."""
    return f"✗ {where}: {message}" + _hint_suffix(hint)


# How often each tiered hint has been shown in this kernel (key: its tiers).
_HINT_FAILURES: dict[tuple[str, ...], int] = {}


def hint_text(hint: str | Sequence[str]) -> str:
    """The hint to show for a failure now. A string is shown as it is. A sequence is a ladder
    of tiers, from the idea to the code: the first failure of that check shows the first
    tier, the next failure the second, and so on (the last tier stays), so a student who
    is close is not handed the answer at once."""
    if isinstance(hint, str):
        return hint
    tiers = tuple(t for t in hint if t)
    if not tiers:
        return ""
    seen = _HINT_FAILURES.get(tiers, 0)
    _HINT_FAILURES[tiers] = seen + 1
    text = tiers[min(seen, len(tiers) - 1)]
    if seen < len(tiers) - 1:
        text += " [if the check fails again, its hint says more]"
    return text


def reset_hints() -> None:
    """Start every hint ladder from its first tier again (a fresh kernel does this too)."""
    _HINT_FAILURES.clear()


def _hint_suffix(hint: str | Sequence[str]) -> str:
    text = hint_text(hint)
    return f" (hint: {text})" if text else ""


def _fail(name: str, message: str, hint: str | Sequence[str]) -> None:
    raise CheckFailed(failure_message(name, message, hint))


def _needs_python_walk(expected: Any) -> bool:
    """True when ``expected`` holds something the grader's JSON form has no word for
    (a dict of tensors, a NumPy array): those levels are walked here, the leaves compared
    by the grader's comparator."""
    if isinstance(expected, (dict, np.ndarray)):
        return True
    if type(expected) in (tuple, list):
        return any(_needs_python_walk(e) for e in expected)
    return False


def _plain(value: Any) -> Any:
    """A NumPy scalar counts as the Python number it holds (``np.float32(0.25)`` -> ``0.25``)."""
    return value.item() if isinstance(value, np.generic) else value


def _compare(name: str, got: Any, expected: Any, atol: float, rtol: float, hint: str | Sequence[str]) -> None:
    """Raise ``CheckFailed`` unless ``got`` matches ``expected`` (kind, shape, dtype, values).

    Tensors, numbers, truth values and lists/tuples of them go to the grader's comparator
    (:func:`metalearn_lite.grading.compare.compare`, the one the homework's ``check`` and the
    grader use), so a chapter check and a homework check give the same verdict and the same
    words; only dicts and NumPy arrays, which the grader never receives, are walked here.
    """
    got = _plain(got)
    if isinstance(expected, np.ndarray):
        if not isinstance(got, np.ndarray):
            _fail(name, f"expected a numpy array of shape {_shape(expected)}, "
                        f"got {type(got).__name__}", hint)
        _compare(name, torch.from_numpy(np.ascontiguousarray(got)),
                 torch.from_numpy(np.ascontiguousarray(expected)), atol, rtol, hint)
    elif isinstance(expected, dict):
        if not isinstance(got, dict):
            _fail(name, f"expected a dict with keys {sorted(expected)}, got {type(got).__name__}", hint)
        if set(got) != set(expected):
            _fail(name, f"expected keys {sorted(expected)}, got {sorted(got)}", hint)
        for key in expected:
            _compare(f"{name}[{key!r}]", got[key], expected[key], atol, rtol, hint)
    elif type(expected) in (tuple, list) and _needs_python_walk(expected):
        if type(got) not in (tuple, list):
            _fail(name, f"expected a list/tuple of {len(expected)} items, got {type(got).__name__}", hint)
        if len(got) != len(expected):
            _fail(name, f"expected {len(expected)} items, got {len(got)}", hint)
        for i, (g, e) in enumerate(zip(got, expected)):
            _compare(f"{name}[{i}]", g, e, atol, rtol, hint)
    elif isinstance(expected, (torch.Tensor, bool, int, float, tuple, list)):
        if isinstance(expected, torch.Tensor) and expected.numel() > MAX_ELEMENTS:
            raise ValueError(f"{name}: a check compares at most {MAX_ELEMENTS} entries per tensor "
                             f"(the grader's limit), got a reference of {expected.numel()}")
        if type(got) in (tuple, list):
            got = [_plain(g) for g in got]
        verdict = compare(encode_value(expected), encode_value(got), rtol=rtol, atol=atol, _path=name)
        if not verdict.passed:  # the verdict's message is "<name...>: <what was expected, what came>"
            raise CheckFailed(f"✗ {verdict.message}" + _hint_suffix(hint))
    else:
        if type(got) is not type(expected) or got != expected:
            _fail(name, f"expected {expected!r}, got {got!r}", hint)


def expect_close(name: str, got: Any, expected: Any, atol: float = 1e-6, rtol: float = 0.0,
                 hint: str | Sequence[str] = "", note: str = "", quiet: bool = False) -> bool:
    """Compare an answer with the reference; see the module docstring for the rules.

    ``got``/``expected``: tensors (same shape, e.g. ``[N*K, 1]``), numpy arrays, numbers,
    or tuples/lists/dicts of those. Returns ``True`` (prints ``✓ name``) on a match,
    ``False`` (prints "not answered yet") for a placeholder, raises ``CheckFailed``
    otherwise. Values match when ``|got - expected| <= atol + rtol * |expected|``.
    ``quiet=True`` skips the ``✓`` line (for the parts of a check that reports once at the end).
    """
    if is_unanswered(got):
        return not_answered(name)
    _compare(name, got, expected, atol, rtol, hint)
    return True if quiet else report(name, True, note=note)


def expect_equal(name: str, got: Any, expected: Any, hint: str | Sequence[str] = "", note: str = "",
                 quiet: bool = False) -> bool:
    """``expect_close`` with zero tolerance (labels, indices, counts)."""
    return expect_close(name, got, expected, atol=0.0, rtol=0.0, hint=hint, note=note, quiet=quiet)
