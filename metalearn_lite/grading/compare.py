"""Strict comparison of a submitted output with the expected one (both plain JSON data).

Used by the grader's trusted parent on data decoded from the child, and by self-checks
for friendly messages. Pure Python: nothing a student can patch in their own process
(``torch.allclose``, ``numpy.allclose``, ``__eq__``) takes part.

Rules: a tensor must come back as a tensor of exactly the expected shape; floating
expectations need a floating dtype and finite values within ``atol + rtol * |expected|``;
integer/bool expectations must match exactly; a 0-d tensor may come back as a plain
number; lists/tuples must have the expected length and match item by item.

Messages are inert: every word in them comes from this module's fixed vocabulary or is a
number the parent computed itself (a shape of at most ``MAX_DIMS`` small integers, a
count, an error). A type name, ``kind`` or ``dtype`` sent by the child is only ever used
to *choose* a phrase from ``TYPE_WORDS`` / ``FLOAT_DTYPES`` / ``INT_DTYPES``, never
copied, so a forged record cannot put text of its own into feedback.
"""
from __future__ import annotations

import math

__all__ = ["compare", "Verdict"]

FLOAT_DTYPES = {"float64", "float32", "float16", "bfloat16"}
INT_DTYPES = {"int64", "int32", "int16", "int8", "uint8", "bool"}
MAX_DIMS = 8
MAX_DIM = 1 << 31
# Type names the child may report for an unsupported output -> the phrase shown. Anything
# else (a student's own class, a forged name) is "an object of another type".
TYPE_WORDS = {
    "NoneType": "None", "str": "a string", "bytes": "bytes", "dict": "a dict", "set": "a set",
    "frozenset": "a set", "ndarray": "a NumPy array", "generator": "a generator",
    "function": "a function", "method": "a method", "type": "a class", "complex": "a complex number",
    "Tensor": "a tensor", "Parameter": "a tensor", "float32": "a NumPy scalar",
    "float64": "a NumPy scalar", "int64": "a NumPy scalar", "map": "a map object",
    "zip": "a zip object", "range": "a range",
    # reasons the harness itself gives (harness.encode_value / emit)
    "too deep": "a value nested too deeply", "tensor too large": "a tensor that is too large",
    "complex tensor": "a complex tensor", "list too long": "a list that is too long",
    "raised while encoding": "an object that raised when read", "not finite": "a non-finite value",
    "tensor": "a tensor that could not be read",
}


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
    if (type(shape) is not list or len(shape) > MAX_DIMS
            or not all(type(s) is int and 0 <= s < MAX_DIM for s in shape)):
        return None
    if type(data) is not list or type(dtype) is not str:
        return None
    if len(data) != math.prod(shape):
        return None
    return got


def _describe(got) -> str:
    """A phrase from the fixed vocabulary for an untrusted value (never the child's text)."""
    if type(got) is not dict:
        return "something that is not a value"
    kind = got.get("kind")
    if kind == "unsupported":
        name = got.get("type")
        word = TYPE_WORDS.get(name) if type(name) is str else None
        return word or "an object of another type"
    if kind == "list":
        items = got.get("items")
        return f"a list of {len(items)} items" if type(items) is list else "a malformed list"
    if kind == "tensor":
        well_formed = _as_tensor(got)  # its shape is checked to be a few small integers
        return f"a tensor of shape {well_formed['shape']}" if well_formed else "a malformed tensor"
    if kind in ("number", "bool"):
        return "a number" if kind == "number" else "a truth value"
    return "an unknown value"


def _dtype_word(dtype) -> str:
    return dtype if dtype in FLOAT_DTYPES or dtype in INT_DTYPES else "of another kind"


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
            wanted = "a number" if kind == "number" else f"a tensor of shape {exp['shape']}"
            return Verdict(False, "wrong_type", f"{_path}: expected {wanted}, got {_describe(got)}")
        if tensor["shape"] != exp["shape"]:
            return Verdict(False, "wrong_shape", f"{_path}: expected shape {exp['shape']}, "
                           f"got shape {tensor['shape']}")
        floating = exp["dtype"] in FLOAT_DTYPES
        noun = "number" if kind == "number" else "tensor"
        if floating and tensor["dtype"] not in FLOAT_DTYPES:
            return Verdict(False, "wrong_dtype", f"{_path}: expected a floating-point {noun}, "
                           f"got dtype {_dtype_word(tensor['dtype'])}")
        if not floating and tensor["dtype"] not in INT_DTYPES:
            return Verdict(False, "wrong_dtype", f"{_path}: expected an integer {noun}, "
                           f"got dtype {_dtype_word(tensor['dtype'])}")
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
