"""bench/real_handwriting_gap.py: every line prints on the real small zips (../shared, optional),
and without them the script says what it needs and stops cleanly."""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

BENCH = Path(__file__).resolve().parents[1] / "bench"
SHARED_OMNIGLOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"


def _gap():
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("real_handwriting_gap", BENCH / "real_handwriting_gap.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_gap_bench_without_the_zips_says_what_it_needs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("METALEARN_LITE_CACHE", str(tmp_path / "cache"))
    assert _gap().main(["--omniglot-root", str(tmp_path), "--episodes", "2"]) == 0
    assert "the two real small Omniglot zips are needed" in capsys.readouterr().out


def test_gap_bench_prints_every_condition_on_the_real_zips(capsys):
    if not (SHARED_OMNIGLOT / "images_background_small2.zip").exists():
        pytest.skip(f"{SHARED_OMNIGLOT} not present (../shared is optional)")
    assert _gap().main(["--omniglot-root", str(SHARED_OMNIGLOT), "--episodes", "3"]) == 0
    out = capsys.readouterr().out
    names = re.findall(r"^  (.+?)\s+error\s+[\d.]+ \+/- [\d.]+%$", out, flags=re.M)
    assert names == ["lake20 (one alphabet, 2 drawers)", "20-way, 2 drawers, all alphabets",
                     "20w1s (any drawers, all alphabets)", "lake20 on Japanese_(katakana) only",
                     "lake20 on Sanskrit only", "lake20, batch norm over 100 more images",
                     "lake20 on its own training characters (small1)"], out
    assert "lake20 on Tagalog only: fewer than 20 characters" in out
    with pytest.raises(SystemExit):    # a model must not be tested on alphabets it trained on
        _gap().main(["--omniglot-root", str(SHARED_OMNIGLOT), "--pool", "small1-only", "--episodes", "3"])
