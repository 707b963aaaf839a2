"""The chapter self-check helpers: right answers pass, wrong ones fail with a useful
message, placeholders are reported as "not answered" without raising."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from metalearn_lite.course.checks import (
    NOT_ANSWERED,
    CheckFailed,
    call_answer,
    expect_close,
    expect_equal,
    is_unanswered,
    not_answered,
    report,
)


def test_report_passes_and_fails(capsys):
    assert report("thing", True) is True
    assert "✓ thing" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="thing: look at the sign"):
        report("thing", False, hint="look at the sign")
    assert issubclass(CheckFailed, AssertionError)


@pytest.mark.parametrize("placeholder", [None, ..., NOT_ANSWERED])
def test_placeholders_are_not_answered(placeholder, capsys):
    assert is_unanswered(placeholder)
    assert expect_close("ex", placeholder, torch.ones(3)) is False
    assert "not answered yet" in capsys.readouterr().out


def test_not_answered_prints_and_returns_false(capsys):
    assert not_answered("ex 1") is False
    assert "ex 1: not answered yet" in capsys.readouterr().out


def test_right_tensor_passes_within_tolerance(capsys):
    expected = torch.linspace(0, 1, 6).reshape(3, 2)
    assert expect_close("t", expected + 1e-8, expected, atol=1e-6) is True
    assert "✓ t" in capsys.readouterr().out


@pytest.mark.parametrize(
    "got, message",
    [
        (torch.ones(3), "expected shape [3, 2], got shape [3]"),
        (torch.ones(2, 3), "expected shape [3, 2], got shape [2, 3]"),
        (np.ones((3, 2)), "expected a tensor of shape [3, 2], got a NumPy array"),
        ([[1.0, 1.0]] * 3, "expected a tensor of shape [3, 2], got a list of 3 items"),
        (torch.ones(3, 2, dtype=torch.long), "expected a floating-point tensor, got dtype int64"),
        (torch.full((3, 2), float("nan")), "contains a NaN"),
    ],
)
def test_wrong_kind_shape_dtype_are_reported(got, message):
    with pytest.raises(CheckFailed) as info:
        expect_close("t", got, torch.ones(3, 2), hint="the hint")
    assert message in str(info.value)
    assert str(info.value).endswith(" (hint: the hint)")


def test_wrong_values_give_the_largest_error_and_the_tolerance():
    expected = torch.zeros(4)
    got = expected.clone()
    got[2] = 0.5
    with pytest.raises(CheckFailed, match=r"t: values differ \(largest error 0.5, tolerance 0.001 \+ 0\*\|expected\|\)"):
        expect_close("t", got, expected, atol=1e-3)
    # a relative tolerance admits the same error against a large reference
    assert expect_close("t", torch.tensor([1000.5]), torch.tensor([1000.0]), atol=0, rtol=1e-3)


def test_numbers_and_0d_tensors_are_interchangeable_as_in_the_grader():
    assert expect_close("n", torch.tensor(0.25), 0.25)                 # x.mean() as good as x.mean().item()
    assert expect_close("n", 0.25, torch.tensor(0.25, dtype=torch.float64))
    assert expect_close("n", np.float32(0.25), 0.25)                   # a NumPy scalar is a number
    with pytest.raises(CheckFailed, match="n: expected shape \\[\\], got shape \\[1\\]"):
        expect_close("n", torch.tensor([0.25]), 0.25)                  # a 1-element tensor is not a number
    with pytest.raises(CheckFailed, match="expected a number, got a string"):
        expect_close("n", "0.25", 0.25)
    with pytest.raises(CheckFailed, match="values differ \\(largest error 0.05"):
        expect_close("n", 0.3, 0.25, atol=1e-3)


def test_containers_are_compared_item_by_item():
    expected = (torch.zeros(2), {"mean": 1.0, "ci95": 0.1})
    assert expect_close("pair", (torch.zeros(2), {"mean": 1.0, "ci95": 0.1}), expected)
    with pytest.raises(CheckFailed, match=r"pair\[1\]\['ci95'\]"):
        expect_close("pair", (torch.zeros(2), {"mean": 1.0, "ci95": 0.2}), expected, atol=1e-6)
    with pytest.raises(CheckFailed, match="expected 2 items, got 1"):
        expect_close("pair", (torch.zeros(2),), expected)
    with pytest.raises(CheckFailed, match="expected keys"):
        expect_close("d", {"mean": 1.0}, {"mean": 1.0, "ci95": 0.1})


def test_expect_equal_has_zero_tolerance():
    labels = torch.tensor([0, 1, 2])
    assert expect_equal("labels", labels.clone(), labels)
    with pytest.raises(CheckFailed, match="values differ"):
        expect_equal("x", torch.tensor([1.0 + 1e-6]), torch.tensor([1.0]))
    with pytest.raises(CheckFailed, match="flag: wrong truth value"):
        expect_equal("flag", False, True)


def test_call_answer():
    def placeholder(x):
        ...

    def unimplemented(x):
        raise NotImplementedError

    def broken(x):
        return x + "a"

    assert call_answer("f", placeholder, 1) is NOT_ANSWERED
    assert call_answer("f", unimplemented, 1) is NOT_ANSWERED
    assert call_answer("f", lambda x: 2 * x, 3) == 6
    with pytest.raises(CheckFailed, match="your function raised TypeError"):
        call_answer("f", broken, 1)
    with pytest.raises(CheckFailed, match="expected a function, got int"):
        call_answer("f", 3)


def test_quiet_checks_print_nothing_but_still_fail(capsys):
    assert expect_close("q", 1.0, 1.0, quiet=True) is True
    assert capsys.readouterr().out == ""
    with pytest.raises(CheckFailed):
        expect_equal("q", 2, 1, quiet=True)


def test_a_reference_beyond_the_graders_size_limit_is_a_clear_error():
    with pytest.raises(ValueError, match="at most 1000000 entries"):
        expect_close("big", torch.zeros(1001, 1000), torch.zeros(1001, 1000))
