"""``metalearn data ...`` through ``metalearn_lite.cli.main`` (offline, fabricated data)."""
from __future__ import annotations

import io
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

from metalearn_lite.cli import main

PIL = pytest.importorskip("PIL.Image")


def _fake_omniglot_zip(path: Path, alphabets: dict[str, int], drawers: int = 20) -> Path:
    """A tiny zip in Omniglot's layout: <set>/<Alphabet>/characterNN/<id>_<drawer>.png."""
    buf = io.BytesIO()
    PIL.fromarray(np.full((8, 8), 255, np.uint8)).save(buf, format="PNG")
    with zipfile.ZipFile(path, "w") as zf:
        for alphabet, num_chars in alphabets.items():
            for c in range(1, num_chars + 1):
                for d in range(1, drawers + 1):
                    zf.writestr(f"images_background/{alphabet}/character{c:02d}/0001_{d:02d}.png", buf.getvalue())
    return path


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("METALEARN_LITE_CACHE", str(root))
    return root


def test_data_omniglot_with_path_validates_and_caches(tmp_path, cache, capsys):
    zip_path = _fake_omniglot_zip(tmp_path / "images_background.zip", {"Aa": 2, "Bb": 3, "Cc": 1})
    assert main(["data", "omniglot", "--path", str(zip_path)]) == 0
    out = capsys.readouterr().out
    assert "3 alphabets, 6 characters, 120 images (20 per character)" in out
    caches = list((cache / "data" / "omniglot" / "cache").glob("*.npz"))
    assert len(caches) == 1 and str(caches[0]) in out


def test_data_omniglot_errors_exit_nonzero_with_instructions(tmp_path, cache, capsys):
    assert main(["data", "omniglot"]) == 1
    err = capsys.readouterr().err
    assert "images_background.zip" in err and "images_evaluation.zip" in err
    assert "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/" in err
    assert str(cache / "data" / "omniglot" / "images_background.zip") in err
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"garbage")
    assert main(["data", "omniglot", "--path", str(bad)]) == 1
    assert "not a readable zip" in capsys.readouterr().err


def test_data_list_shows_files_and_sizes(cache, capsys):
    assert main(["data", "list"]) == 0
    assert "no cached data yet" in capsys.readouterr().out
    folder = cache / "data" / "omniglot"
    folder.mkdir(parents=True)
    (folder / "images_background.zip").write_bytes(b"x" * 3000)
    (folder / "images_evaluation.zip.part").write_bytes(b"x" * 10)
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    zip_line = next(line for line in out.splitlines() if line.endswith("omniglot/images_background.zip"))
    part_line = next(line for line in out.splitlines() if "omniglot/images_evaluation.zip.part" in line)
    assert "2.9 KB" in zip_line
    assert "10 B" in part_line and "incomplete" in part_line
    assert "2 files" in out


def test_data_glyphs_calls_the_generator(monkeypatch, capsys):
    calls = []

    class FakeGlyphs:
        def __init__(self, **kwargs):
            calls.append(kwargs)
            self.characters = ["A/U+0041", "B/U+0042"]
            self.cache_path = Path("/somewhere/glyphs.npz")

        def __len__(self):
            return 40

    fake = types.ModuleType("metalearn_lite.data.glyphs")
    fake.Glyphs = FakeGlyphs
    monkeypatch.setitem(sys.modules, "metalearn_lite.data.glyphs", fake)
    assert main(["data", "glyphs", "--seed", "3"]) == 0
    assert calls == [dict(background=True, seed=3, generate=True)]
    out = capsys.readouterr().out
    assert "2 characters, 40 images" in out and "/somewhere/glyphs.npz" in out


def test_data_without_dataset_prints_help(capsys):
    assert main(["data"]) == 2
    assert "omniglot" in capsys.readouterr().out
