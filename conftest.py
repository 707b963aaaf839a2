"""Repository-wide pytest hooks: the numeric tolerance for saved notebook outputs.

Here rather than in tests/conftest.py so that it also applies when only notebooks are
collected (``pytest --nbval notebooks/02_maml.ipynb``).
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))
from nbval_numbers import close_enough  # noqa: E402  (tests/nbval_numbers.py)


# --------------------------------------------------------------------------- nbval
# Saved notebook outputs come from one machine; another CPU rounds floats differently and
# trains slightly different models (see tests/nbval_numbers.py). Before nbval compares a
# cell, a fresh text output that differs from the saved one only by numbers within those
# tolerances is replaced by the saved text; anything else fails as usual. Such cells are
# counted in the run's summary.
TOLERANCE_PROPERTY = "nbval-numbers-within-tolerance"


def _text_fields(output) -> list[tuple[dict, str]]:
    if output.get("output_type") == "stream":
        return [(output, "text")]
    data = output.get("data") or {}
    return [(data, "text/plain")] if "text/plain" in data else []


def _install_numeric_tolerance() -> None:
    from nbval.plugin import IPyNbCell

    if getattr(IPyNbCell.compare_outputs, "numeric_tolerance", False):
        return
    exact_compare = IPyNbCell.compare_outputs

    def compare_outputs(self, test, ref, skip_compare=None):
        test = copy.deepcopy(test)
        tolerated = 0
        if len(test) == len(ref):
            for fresh, saved in zip(test, ref):
                if fresh.get("output_type") != saved.get("output_type") or fresh.get("name") != saved.get("name"):
                    continue
                for (f_holder, key), (s_holder, _) in zip(_text_fields(fresh), _text_fields(saved)):
                    f_text, s_text = self.sanitize(f_holder[key]), self.sanitize(s_holder[key])
                    if f_text != s_text and close_enough(s_text, f_text):
                        f_holder[key] = s_holder[key]
                        tolerated += 1
        same = exact_compare(self, test, ref, skip_compare)
        if same and tolerated:
            self.user_properties.append((TOLERANCE_PROPERTY, tolerated))
        return same

    compare_outputs.numeric_tolerance = True
    IPyNbCell.compare_outputs = compare_outputs


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("nbval") and (config.getoption("nbval", False)
                                                     or config.getoption("nbval_lax", False)):
        _install_numeric_tolerance()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    cells = [r.nodeid for r in terminalreporter.stats.get("passed", [])
             if r.when == "call" and any(k == TOLERANCE_PROPERTY for k, _ in r.user_properties)]
    if cells:
        terminalreporter.write_line(
            f"nbval: {len(cells)} notebook cell(s) matched their saved outputs only within the numeric "
            f"tolerance of tests/nbval_numbers.py (a CPU that rounds differently from the one that "
            f"saved them): {', '.join(cells)}")
