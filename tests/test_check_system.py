"""One check system: a chapter's self-check (``course.checks.expect_close``) and the
homework's ``check`` (``grading.selfcheck``, whose comparator the grader uses) give the
same verdict, in the same words, on the same answers, 0-d tensors included."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from metalearn_lite.course.checks import CheckFailed, expect_close, hint_text, reset_hints
from metalearn_lite.grading.harness import decode_value
from metalearn_lite.grading.questions import question, visible_cases, visible_expected
from metalearn_lite.grading.selfcheck import check


def _expected(qid: str):
    """The first visible case's expected output of homework question ``qid``, as tensors."""
    name, q = question(qid)
    return decode_value(visible_expected(name)[qid][0]), q


def _homework_verdict(qid: str, answer):
    """(passed, message) of the homework's ``check`` on its first visible case."""
    report = check(qid, lambda *args: answer, verbose=False)
    line = next(line for line in report.lines if visible_cases(qid)[0].name in line)
    if line.startswith("  ok"):
        return True, ""
    return False, line.split(f"FAIL  {visible_cases(qid)[0].name}: ", 1)[1]


def _chapter_verdict(expected, answer, q):
    """(passed, message) of a chapter check comparing ``answer`` with ``expected``."""
    try:
        expect_close("output", answer, expected, atol=q.atol, rtol=q.rtol, quiet=True)
    except CheckFailed as failure:
        text = str(failure)
        assert text.startswith("✗ ")
        return False, text[2:]
    return True, ""


def _prototypes_answers():
    e, _ = _expected("2.1")  # [3, 4] float64
    nan = e.clone()
    nan[0, 0] = float("nan")
    return {
        "right": e.clone(),
        "right in float32": e.float(),
        "wrong shape": e[:, :-1],
        "transposed": e.T.contiguous(),
        "integer dtype": e.round().long(),
        "wrong values": e + 0.1,
        "a NaN": nan,
        "a NumPy array": e.numpy(),
        "a list": e.tolist(),
        "a number": 1.0,
        "a string": "prototypes",
    }


def _loss_and_accuracy_answers():
    (loss, acc), _ = _expected("2.3")  # two 0-d float64 tensors
    return {
        "0-d tensors": (loss.clone(), acc.clone()),
        "Python floats (.item())": (loss.item(), acc.item()),
        "a list of floats": [loss.item(), acc.item()],
        "1-element tensors": (loss.reshape(1), acc.reshape(1)),
        "accuracy as an int": (loss.item(), 1),
        "wrong accuracy": (loss.item(), acc.item() + 0.25),
        "a NaN loss": (float("nan"), acc.item()),
        "three items": (loss.item(), acc.item(), 0.0),
        "one tensor of two": torch.stack([loss, acc]),
    }


CASES = [("2.1", k, v) for k, v in _prototypes_answers().items()] + \
        [("2.3", k, v) for k, v in _loss_and_accuracy_answers().items()]


@pytest.mark.parametrize("qid, label, answer", CASES, ids=[f"{qid}-{label}" for qid, label, _ in CASES])
def test_chapter_and_homework_checks_agree(qid, label, answer):
    expected, q = _expected(qid)
    homework = _homework_verdict(qid, answer)
    chapter = _chapter_verdict(expected, answer, q)
    assert chapter == homework, label


def test_the_cases_cover_passes_and_every_kind_of_failure():
    verdicts = {label: _homework_verdict(qid, answer) for qid, label, answer in CASES}
    assert verdicts["right"] == verdicts["0-d tensors"] == verdicts["Python floats (.item())"] == (True, "")
    assert verdicts["right in float32"][0]                     # within rtol 1e-5 of the float64 reference
    messages = {label: message for label, (passed, message) in verdicts.items() if not passed}
    assert messages["wrong shape"] == "output: expected shape [3, 4], got shape [3, 3]"
    assert messages["integer dtype"] == "output: expected a floating-point tensor, got dtype int64"
    assert messages["wrong values"].startswith("output: values differ (largest error 0.1")
    assert messages["a NaN"] == "output: contains a NaN, inf or non-number"
    assert messages["a NumPy array"] == "output: expected a tensor of shape [3, 4], got a NumPy array"
    assert messages["1-element tensors"] == "output[0]: expected shape [], got shape [1]"
    assert messages["accuracy as an int"] == "output[1]: expected a floating-point tensor, got dtype int64"
    assert messages["three items"] == "output: expected 2 items, got 3"
    assert messages["one tensor of two"] == "output: expected a list/tuple of 2 items, got a tensor of shape [2]"


def test_a_chapter_failure_is_the_homework_message_plus_the_hint():
    with pytest.raises(CheckFailed) as failure:
        expect_close("prototypes", np.zeros(2), torch.zeros(2), hint="average the support embeddings per class")
    assert str(failure.value) == ("✗ prototypes: expected a tensor of shape [2], got a NumPy array "
                                  "(hint: average the support embeddings per class)")


def test_a_tiered_hint_climbs_from_the_idea_to_the_code_one_failure_at_a_time():
    reset_hints()
    ladder = ("think about lengths", "normalise each row", "x / x.norm(dim=-1, keepdim=True)")
    seen = []
    for _ in range(4):
        with pytest.raises(CheckFailed) as failure:
            expect_close("cosine", torch.ones(2), torch.zeros(2), hint=ladder)
        seen.append(str(failure.value))
    assert "(hint: think about lengths [if the check fails again" in seen[0]
    assert "normalise" not in seen[0] and "x.norm" not in seen[0]
    assert "(hint: normalise each row [if the check fails again" in seen[1]
    assert seen[2].endswith("(hint: x / x.norm(dim=-1, keepdim=True))") and seen[3] == seen[2]
    assert expect_close("cosine", torch.zeros(2), torch.zeros(2), hint=ladder) is True  # a pass shows no hint
    reset_hints()
    assert hint_text(ladder).startswith("think about lengths")
    assert hint_text("a plain hint") == "a plain hint" == hint_text("a plain hint")      # strings never climb
