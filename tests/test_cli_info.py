"""``metalearn info`` reports the real versions, paths and cached files; the console script works."""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy
import pytest
import torch

from metalearn_lite import __version__
from metalearn_lite.cli import main
from metalearn_lite.commands import info as info_cmd


def run_info_json(capsys) -> dict:
    assert main(["info", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_reports_installed_versions_and_device(tmp_cache, capsys):
    info = run_info_json(capsys)
    versions = info["versions"]
    assert versions["metalearn-lite"] == __version__
    assert versions["torch"] == torch.__version__
    assert versions["numpy"] == numpy.__version__
    assert versions["matplotlib"] == matplotlib.__version__
    assert info["python"]["version"] == platform.python_version()
    assert info["python"]["executable"] == sys.executable
    device = info["device"]
    assert device["cpu_count"] == os.cpu_count()
    assert device["torch_threads"] == torch.get_num_threads()
    assert device["cuda"]["available"] == torch.cuda.is_available()
    assert isinstance(device["mps"]["available"], bool)


def test_json_paths_follow_the_cache_env_var(tmp_cache, capsys):
    info = run_info_json(capsys)
    p = info["paths"]
    assert p["env_var"] == "METALEARN_LITE_CACHE"
    assert p["env_override"] == str(tmp_cache)
    assert p["cache_dir"] == str(tmp_cache) and p["cache_dir_exists"] is True
    assert p["data_dir"] == str(tmp_cache / "data") and p["data_dir_exists"] is False
    assert p["checkpoint_dir"] == str(tmp_cache / "checkpoints")
    assert info["datasets"] == [] and info["checkpoints"]["user"] == []
    # `info` only looks: it must not have created anything.
    assert list(tmp_cache.iterdir()) == []


def test_json_lists_cached_data_sets_with_sizes(tmp_cache, capsys):
    data = tmp_cache / "data"
    (data / "omniglot" / "images_background" / "Latin" / "character01").mkdir(parents=True)
    (data / "glyphs-v1.npz").write_bytes(b"x" * 1234)
    (data / "omniglot" / "images_background_small1.zip").write_bytes(b"z" * 100)
    (data / "omniglot" / "omniglot-28.npz").write_bytes(b"n" * 50)
    (data / "omniglot" / "images_background" / "Latin" / "character01" / "0001_01.png").write_bytes(b"p" * 7)
    (data / "notes.txt").write_text("hello")
    (data / "glyphs-v2.npz.tmp").write_bytes(b"partial")  # an interrupted atomic write
    (tmp_cache / "checkpoints").mkdir()
    (tmp_cache / "checkpoints" / "protonet.pt").write_bytes(b"c" * 10)

    info = run_info_json(capsys)
    by_name = {d["name"]: d for d in info["datasets"]}
    assert sorted(by_name) == ["glyphs-v1.npz", "notes.txt", "omniglot"]
    assert by_name["glyphs-v1.npz"] == {"name": "glyphs-v1.npz", "kind": "glyphs", "type": "file", "size_bytes": 1234}
    omni = by_name["omniglot"]
    assert (omni["kind"], omni["type"], omni["num_files"], omni["size_bytes"]) == ("omniglot", "dir", 3, 157)
    assert omni["archives"] == ["images_background_small1.zip", "omniglot-28.npz"]
    assert by_name["notes.txt"]["kind"] == "other"
    assert info["checkpoints"]["user"] == [{"name": "protonet.pt", "size_bytes": 10}]


def test_shipped_models_are_listed_from_the_registry(tmp_cache, tmp_path, monkeypatch, capsys):
    from metalearn_lite import checkpoints
    info = run_info_json(capsys)
    ckpt = info["checkpoints"]
    assert ckpt["shipped_dir"] == str(checkpoints.SHIPPED_DIR)
    assert ckpt["registry"] == str(checkpoints.SHIPPED_DIR / "registry.json")
    listed = {m["name"]: m for m in ckpt["shipped"]}
    assert sorted(listed) == sorted(checkpoints.registry())
    cnp = listed["cnp_gp"]
    assert (cnp["file"], cnp["model"], cnp["present"]) == ("cnp_gp.pt", "CNP", True)
    assert cnp["size_bytes"] == (checkpoints.SHIPPED_DIR / "cnp_gp.pt").stat().st_size
    assert "GPCurves" in cnp["data"] and cnp["licence"] and cnp["command"].startswith("python bench/train_np.py")
    assert "MIT" in listed["protonet_glyphs_small1_conv4"]["licence"]
    assert listed["tutor_maml_swesat"]["model"] == "TutorModel"

    # another folder: a registry of one entry whose file is absent
    (tmp_path / "registry.json").write_text(json.dumps({"models": {"m": {
        "file": "m.pt", "sha256": "0" * 64, "size": 33, "model": {"class": "MLP", "config": {}},
        "data": "sinusoids", "licence": "synthetic", "command": "python bench/x.py", "metrics": {"mse": 1.0}}}}))
    monkeypatch.setattr(checkpoints, "SHIPPED_DIR", tmp_path)
    info = run_info_json(capsys)
    assert info["checkpoints"]["shipped"] == [{
        "name": "m", "file": "m.pt", "size_bytes": 33, "present": False, "model": "MLP", "config": {},
        "data": "sinusoids", "licence": "synthetic", "metrics": ["mse"], "command": "python bench/x.py"}]
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "Shipped models (registry: " + str(tmp_path / "registry.json") in out
    assert "m.pt  MISSING" in out and "licence: synthetic" in out
    monkeypatch.setattr(checkpoints, "SHIPPED_DIR", tmp_path / "absent")
    assert run_info_json(capsys)["checkpoints"]["shipped"] == []


def test_text_report_names_versions_paths_and_data(tmp_cache, capsys):
    (tmp_cache / "data").mkdir()
    (tmp_cache / "data" / "glyphs-v1.npz").write_bytes(b"x" * 2048)
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"metalearn-lite {__version__}")
    assert f"torch          {torch.__version__}" in out
    assert f"from $METALEARN_LITE_CACHE" in out
    assert str(tmp_cache / "data") in out
    assert "glyphs-v1.npz" in out and "2.0 KB" in out


def _console_script() -> str:
    beside_python = Path(sys.executable).with_name("metalearn")
    found = str(beside_python) if beside_python.exists() else shutil.which("metalearn")
    if found is None:
        pytest.fail("the `metalearn` console script is not installed: run `pip install -e .`")
    return found


def test_console_script_help_and_info(tmp_path):
    script = _console_script()
    env = {**os.environ, "METALEARN_LITE_CACHE": str(tmp_path)}
    result = subprocess.run([script, "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage: metalearn" in result.stdout and "info" in result.stdout

    result = subprocess.run([script, "info", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["paths"]["cache_dir"] == str(tmp_path)

    result = subprocess.run([script, "no-such-command"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2 and "invalid choice" in result.stderr
