"""Chapter 06's exercise self-checks: right answers pass, wrong ones fail with a hint,
placeholders are "not answered yet"; the chapter uses the course's checks, not its own."""
from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from metalearn_lite.course.checks import CheckFailed, reset_hints
from metalearn_lite.course.checks_education import (
    check_adaptive_gain,
    check_fisher_information,
    check_population_puzzle,
    check_success_target,
    success_target_results,
)

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "06_meta_learning_for_education.ipynb"


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _fit():
    g = torch.Generator().manual_seed(0)
    return SimpleNamespace(a=0.2 + torch.rand(6, generator=g), b=torch.randn(6, generator=g))


def test_fisher_information_check(capsys):
    fit = _fit()
    p = torch.sigmoid(fit.a[0] * (0.5 - fit.b[0]))
    right = (fit.a[0] ** 2 * p * (1 - p)).item()
    assert check_fisher_information(None, fit) is False
    assert "not answered yet" in capsys.readouterr().out
    assert check_fisher_information(right, fit) is True
    assert check_fisher_information(torch.tensor(right), fit) is True          # a 0-d tensor counts as a number
    reset_hints()
    wrong = (fit.a[0] * p * (1 - p)).item()                                     # a, not a^2
    with pytest.raises(CheckFailed, match=r"values differ .*\(hint: the Fisher information of a 2PL item") as first:
        check_fisher_information(wrong, fit)
    assert "torch.sigmoid" not in str(first.value)                              # the first hint gives the idea only
    with pytest.raises(CheckFailed, match=r"\(hint: p = sigmoid\(a \(theta - b\)\)"):
        check_fisher_information(wrong, fit)
    for _ in range(2):                                                          # the last tier stays
        with pytest.raises(CheckFailed, match=r"\(hint: p = torch.sigmoid"):
            check_fisher_information(wrong, fit)


def _results(adaptive, random_, population=(0.653, 0.647)):
    s = lambda mean: SimpleNamespace(auc=(mean, 0.004))  # noqa: E731
    return {("adaptive", 5, "2PL + grid posterior"): s(adaptive), ("random", 5, "2PL + grid posterior"): s(random_),
            ("adaptive", 5, "population"): s(population[0]), ("random", 5, "population"): s(population[1])}


def test_adaptive_gain_check_reads_the_results_it_is_given(capsys):
    results = _results(0.6992, 0.6681)
    assert check_adaptive_gain(0.031, results) is True                           # from the 3-decimal table
    out = capsys.readouterr().out
    assert "+0.031" in out and "beyond the noise" in out and "+0.006" in out
    with pytest.raises(CheckFailed, match="values differ"):
        check_adaptive_gain(-0.031, results)                                     # random minus adaptive
    with pytest.raises(CheckFailed, match="values differ"):
        check_adaptive_gain(0.699, results)                                      # the AUC, not the gain
    assert check_adaptive_gain(0.001, _results(0.700, 0.699)) is True
    assert "within the noise" in capsys.readouterr().out


def test_population_puzzle_check(capsys):
    assert check_population_puzzle(None) is False
    assert check_population_puzzle("b") is True
    for wrong in ("a", "c"):
        with pytest.raises(CheckFailed) as failure:
            check_population_puzzle(wrong)
        assert "What else changes" in str(failure.value)
        assert "'b'" not in str(failure.value)                                   # the message does not give it away
    with pytest.raises(CheckFailed, match=r"expected one of the letters \['a', 'b', 'c'\], got 'd'"):
        check_population_puzzle("d")


def test_success_target_check_agrees_with_compare_policies(capsys):
    results = success_target_results()
    best = max(results, key=lambda t: results[t]["mean"])
    other = 0.5 if best == 0.9 else 0.9
    # the gap the exercise relies on is beyond both 95% CIs (10 classes of 20)
    assert abs(results[0.9]["mean"] - results[0.5]["mean"]) > results[0.9]["ci"] + results[0.5]["ci"]
    assert check_success_target(best) is True
    reset_hints()
    with pytest.raises(CheckFailed, match="learn from: a correct answer or a wrong one"):
        check_success_target(other)
    with pytest.raises(CheckFailed, match="0.25 after a CORRECT answer"):
        check_success_target(other)
    with pytest.raises(CheckFailed, match="expected 0.5 or 0.9, got 0.7"):
        check_success_target(0.7)


def test_the_notebook_uses_the_course_checks_and_shows_no_answer():
    cells = [("".join(c["source"]), c["cell_type"]) for c in json.loads(NOTEBOOK.read_text())["cells"]]
    assert cells[0][0].startswith("# 06 · ")
    text = "\n".join(source for source, _ in cells)
    assert "def check(" not in text and not re.search(r"\bissue \d", text)
    exercises = text[text.index("## Exercises"):]
    assert "checks_education import" in exercises
    for name in ("check_fisher_information", "check_adaptive_gain", "check_population_puzzle", "check_success_target"):
        assert f"passed = {name}(" in exercises
    assert "expected_" not in exercises and "fisher_information(" not in exercises.replace("check_fisher", "")
