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

API
---
``report(name, passed, hint="", note="") -> bool``
    The basic verdict: ``✓ name`` or ``CheckFailed("✗ name: <hint>")``.
``not_answered(name) -> bool``
    Prints the "not answered yet" line; returns ``False``.
``is_unanswered(value) -> bool``
    ``True`` for ``None``, ``...`` and ``NOT_ANSWERED``.
``call_answer(name, fn, *args, **kwargs) -> value | NOT_ANSWERED``
    Calls the student's function; ``NOT_ANSWERED`` when it raises
    ``NotImplementedError`` or returns a placeholder; any other exception becomes a
    ``CheckFailed`` naming the exception.
``expect_close(name, got, expected, atol=1e-6, rtol=0.0, hint="", note="", quiet=False) -> bool``
    Strict on kind and shape, tolerant on values: a ``torch.Tensor`` answer must be a
    tensor of the same shape (and a floating dtype when the expected one is floating,
    integer/bool when it is not), a ``numpy.ndarray`` an array, a number a real number (a
    0-d tensor is refused with "use .item()"); tuples/lists/dicts are compared item by
    item (``name[0]``, ``name['mean']``). NaNs fail. ``quiet=True``: no ``✓`` line (for
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

import math
import numbers
from typing import Any, Callable

import numpy as np
import torch

__all__ = [
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


def report(name: str, passed: bool, hint: str = "", note: str = "") -> bool:
    """Print ``✓ name`` (and ``note``) when ``passed``; otherwise raise ``CheckFailed``.

    ``hint`` is what a student should look at when the check fails.
    """
    if passed:
        print(f"✓ {name}" + (f" — {note}" if note else ""))
        return True
    raise CheckFailed(f"✗ {name}" + (f": {hint}" if hint else ""))


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


def _fail(name: str, message: str, hint: str) -> None:
    raise CheckFailed(f"✗ {name}: {message}" + (f" (hint: {hint})" if hint else ""))


def _compare(name: str, got: Any, expected: Any, atol: float, rtol: float, hint: str) -> None:
    """Raise ``CheckFailed`` unless ``got`` matches ``expected`` (kind, shape, values)."""
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            _fail(name, f"expected a torch.Tensor of shape {_shape(expected)}, "
                        f"got {type(got).__name__}", hint)
        if tuple(got.shape) != tuple(expected.shape):
            _fail(name, f"expected shape {_shape(expected)}, got shape {_shape(got)}", hint)
        if expected.is_floating_point() != got.is_floating_point():
            _fail(name, f"expected dtype {expected.dtype}, got {got.dtype}", hint)
        g = got.detach().to("cpu", torch.float64)
        e = expected.detach().to("cpu", torch.float64)
        _compare_values(name, g.numpy(), e.numpy(), atol, rtol, hint)
    elif isinstance(expected, np.ndarray):
        if not isinstance(got, np.ndarray):
            _fail(name, f"expected a numpy array of shape {_shape(expected)}, "
                        f"got {type(got).__name__}", hint)
        if got.shape != expected.shape:
            _fail(name, f"expected shape {_shape(expected)}, got shape {_shape(got)}", hint)
        _compare_values(name, got.astype(np.float64), expected.astype(np.float64), atol, rtol, hint)
    elif isinstance(expected, (bool, np.bool_)):
        if not isinstance(got, (bool, np.bool_)):
            _fail(name, f"expected True or False, got {type(got).__name__}", hint)
        if bool(got) != bool(expected):
            _fail(name, f"expected {bool(expected)}, got {bool(got)}", hint)
    elif isinstance(expected, numbers.Real):
        if isinstance(got, torch.Tensor):
            _fail(name, f"expected a Python number, got a tensor of shape {_shape(got)}"
                        " (use .item() for a one-element tensor)", hint)
        if isinstance(got, np.ndarray):
            _fail(name, f"expected a Python number, got a numpy array of shape {_shape(got)}"
                        " (use .item() for a one-element array)", hint)
        if isinstance(got, (bool, np.bool_)) or not isinstance(got, numbers.Real):
            _fail(name, f"expected a number, got {type(got).__name__}", hint)
        _compare_values(name, np.asarray(float(got)), np.asarray(float(expected)), atol, rtol, hint)
    elif isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)):
            _fail(name, f"expected a {type(expected).__name__} of {len(expected)} items, "
                        f"got {type(got).__name__}", hint)
        if len(got) != len(expected):
            _fail(name, f"expected {len(expected)} items, got {len(got)}", hint)
        for i, (g, e) in enumerate(zip(got, expected)):
            _compare(f"{name}[{i}]", g, e, atol, rtol, hint)
    elif isinstance(expected, dict):
        if not isinstance(got, dict):
            _fail(name, f"expected a dict with keys {sorted(expected)}, got {type(got).__name__}", hint)
        if set(got) != set(expected):
            _fail(name, f"expected keys {sorted(expected)}, got {sorted(got)}", hint)
        for key in expected:
            _compare(f"{name}[{key!r}]", got[key], expected[key], atol, rtol, hint)
    else:
        if type(got) is not type(expected) or got != expected:
            _fail(name, f"expected {expected!r}, got {got!r}", hint)


def _compare_values(name: str, got: np.ndarray, expected: np.ndarray,
                    atol: float, rtol: float, hint: str) -> None:
    if np.isnan(got).any() and not np.isnan(expected).any():
        _fail(name, "your answer contains NaN", hint)
    bad = ~np.isclose(got, expected, atol=atol, rtol=rtol, equal_nan=True)
    if bad.any():
        error = np.abs(got - expected)
        worst = int(np.nanargmax(np.where(bad, error, -np.inf)))
        g, e = got.reshape(-1)[worst], expected.reshape(-1)[worst]
        where = "" if got.ndim == 0 else f" at flat index {worst} ({int(bad.sum())} of {bad.size} entries off)"
        _fail(name, f"values differ{where}: got {_fmt(g)}, expected {_fmt(e)}", hint)


def _fmt(x: float) -> str:
    return "nan" if math.isnan(x) else f"{x:.6g}"


def expect_close(name: str, got: Any, expected: Any, atol: float = 1e-6, rtol: float = 0.0,
                 hint: str = "", note: str = "", quiet: bool = False) -> bool:
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


def expect_equal(name: str, got: Any, expected: Any, hint: str = "", note: str = "",
                 quiet: bool = False) -> bool:
    """``expect_close`` with zero tolerance (labels, indices, counts)."""
    return expect_close(name, got, expected, atol=0.0, rtol=0.0, hint=hint, note=note, quiet=quiet)
