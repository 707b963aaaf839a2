"""Strict comparison of a submitted output with the expected one (both plain JSON data).

Used by the grader's trusted parent on data decoded from the child, and by self-checks
for friendly messages. Pure Python: nothing a student can patch in their own process
(``torch.allclose``, ``numpy.allclose``, ``__eq__``) takes part.

Rules: a tensor must come back as a tensor of exactly the expected shape; floating
expectations need a floating dtype and finite values within ``atol + rtol * |expected|``;
integer/bool expectations must match exactly; a 0-d tensor may come back as a plain
number; lists/tuples must have the expected length and match item by item.
"""
from __future__ import annotations

import math

__all__ = ["compare", "Verdict"]

FLOAT_DTYPES = {"float64", "float32", "float16", "bfloat16"}
INT_DTYPES = {"int64", "int32", "int16", "int8", "uint8", "bool"}


class Verdict(tuple):
    """``(passed, category, message)``; category is one of ok / wrong_type / wrong_shape /
    wrong_dtype / not_finite / wrong_values."""

    __slots__ = ()

    def __new__(cls, passed: bool, category: str, message: str):
        return super().__new__(cls, (passed, category, message))

    passed = property(lambda self: self[0])
    category = property(lambda self: self[1])
    message = property(lambda self: self[2])


def _is_number(x) -> bool:
    return type(x) in (int, float)


def _as_tensor(got):
    """A plain number counts as a 0-d tensor; anything else must be a well-formed tensor."""
    if type(got) is not dict:
        return None
    if got.get("kind") == "number" and _is_number(got.get("value")):
        return {"kind": "tensor", "dtype": "float64" if type(got["value"]) is float else "int64",
                "shape": [], "data": [got["value"]]}
    if got.get("kind") != "tensor":
        return None
    shape, data, dtype = got.get("shape"), got.get("data"), got.get("dtype")
    if type(shape) is not list or not all(type(s) is int and s >= 0 for s in shape):
        return None
    if type(data) is not list or type(dtype) is not str:
        return None
    if len(data) != math.prod(shape):
        return None
    return got


def _describe(got) -> str:
    if type(got) is not dict:
        return "something that is not a value"
    kind = got.get("kind")
    if kind == "unsupported":
        return f"an unsupported object ({str(got.get('type'))[:40]})"
    if kind == "list":
        return f"a list of {len(got.get('items') or [])} items"
    return f"a {kind}" if type(kind) is str else "an unknown value"


def compare(expected: dict, got, rtol: float = 1e-5, atol: float = 1e-7, _path: str = "output") -> Verdict:
    """Compare ``got`` (untrusted) with ``expected`` (trusted), both in ``encode_value`` form."""
    kind = expected["kind"]
    if kind == "list":
        if type(got) is not dict or got.get("kind") != "list" or type(got.get("items")) is not list:
            return Verdict(False, "wrong_type", f"{_path}: expected a list/tuple of "
                           f"{len(expected['items'])} items, got {_describe(got)}")
        items = got["items"]
        if len(items) != len(expected["items"]):
            return Verdict(False, "wrong_shape", f"{_path}: expected {len(expected['items'])} "
                           f"items, got {len(items)}")
        for i, (e, g) in enumerate(zip(expected["items"], items)):
            verdict = compare(e, g, rtol, atol, f"{_path}[{i}]")
            if not verdict.passed:
                return verdict
        return Verdict(True, "ok", "ok")
    if kind in ("number", "tensor"):
        exp = _as_tensor(expected)
        tensor = _as_tensor(got)
        if tensor is None:
            if type(got) is dict and got.get("kind") == "unsupported" and got.get("type") == "not finite":
                # the child could not encode the output as finite JSON (harness.emit)
                return Verdict(False, "not_finite", f"{_path}: contains a NaN or inf")
            return Verdict(False, "wrong_type", f"{_path}: expected a tensor of shape "
                           f"{exp['shape']}, got {_describe(got)}")
        if tensor["shape"] != exp["shape"]:
            return Verdict(False, "wrong_shape", f"{_path}: expected shape {exp['shape']}, "
                           f"got {tensor['shape']}")
        floating = exp["dtype"] in FLOAT_DTYPES
        if floating and tensor["dtype"] not in FLOAT_DTYPES:
            return Verdict(False, "wrong_dtype", f"{_path}: expected a floating-point tensor, "
                           f"got dtype {tensor['dtype'][:20]}")
        if not floating and tensor["dtype"] not in INT_DTYPES:
            return Verdict(False, "wrong_dtype", f"{_path}: expected an integer tensor, "
                           f"got dtype {tensor['dtype'][:20]}")
        worst = 0.0
        for e, g in zip(exp["data"], tensor["data"]):
            if not _is_number(g) or (type(g) is float and not math.isfinite(g)):
                return Verdict(False, "not_finite", f"{_path}: contains a NaN, inf or non-number")
            if floating:
                err = abs(g - e)
                if err > atol + rtol * abs(e):
                    worst = max(worst, err)
            elif g != e:
                worst = max(worst, abs(g - e), 1)
        if worst > 0:
            return Verdict(False, "wrong_values", f"{_path}: values differ (largest error "
                           f"{worst:.3g}, tolerance {atol:g} + {rtol:g}*|expected|)")
        return Verdict(True, "ok", "ok")
    if kind == "bool":
        ok = type(got) is dict and got.get("kind") == "bool" and got.get("value") is expected["value"]
        return Verdict(ok, "ok" if ok else "wrong_values", "ok" if ok else f"{_path}: wrong truth value")
    raise ValueError(f"cannot compare against expected kind {kind!r}")
