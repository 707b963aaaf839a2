"""Binder / repo2docker / JupyterHub image files (binder/): what they pin agrees with the
project's pins, and (slow, opt-in) the same install steps work in a fresh venv.

repo2docker runs ``pip install -r binder/requirements.txt`` from the repository root, then
``binder/postBuild``. ``METALEARN_BINDER_TEST=1`` runs exactly those two steps in a new venv on
a copy of the repository (measured: 21.6 min, 20.4 of them installing, on 2 cores shared with
other jobs at load average ~17; it passed) and
checks that the course imports with a CPU torch, JupyterLab, and chapter 06's real data.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder"


def pins() -> dict[str, str]:
    found = {}
    for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            found[name.strip().lower()] = version.strip()
    return found


def test_binder_pins_the_cpu_build_of_the_projects_torch_and_installs_the_course():
    lines = [l.split("#")[0].strip() for l in (BINDER / "requirements.txt").read_text().splitlines()]
    lines = [l for l in lines if l]
    assert f"torch=={pins()['torch']}+cpu" in lines
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    assert "-c ../constraints.txt" in lines and ".[course]" in lines


def test_binder_python_matches_the_tested_one():
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"


def test_post_build_adds_irtorch_data_only_and_is_executable():
    text = (BINDER / "postBuild").read_text()
    assert "pip install --no-deps -c constraints.txt irtorch" in text
    assert os.access(BINDER / "postBuild", os.X_OK)
    assert "irtorch" in pins()


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("METALEARN_BINDER_TEST") != "1",
                    reason="~20 min on a loaded machine, installs torch into a new venv: set METALEARN_BINDER_TEST=1")
def test_binder_install_steps_work_in_a_fresh_venv(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(REPO, repo, ignore=shutil.ignore_patterns(
        ".venv", ".git", "_build", "build", "my-work", ".cache", "artifacts", "*.egg-info", "__pycache__"))
    venv = tmp_path / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    env = dict(os.environ, PATH=f"{venv / 'bin'}:{os.environ['PATH']}", VIRTUAL_ENV=str(venv), PYTHONNOUSERSITE="1")
    env.pop("PYTHONPATH", None)
    start = time.monotonic()
    for command in (["python", "-m", "pip", "install", "-q", "-r", "binder/requirements.txt"], ["binder/postBuild"]):
        result = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=1500)
        assert result.returncode == 0, f"{command}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    minutes = (time.monotonic() - start) / 60
    probe = ("import torch, metalearn_lite, jupyterlab; from metalearn_lite.education.swesat import swesat_dir; "
             "print(torch.__version__, torch.version.cuda, metalearn_lite.__version__, swesat_dir().is_dir())")
    result = subprocess.run(["python", "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    torch_version, cuda, version, swesat = result.stdout.split()
    assert torch_version.endswith("+cpu") and cuda == "None", result.stdout
    assert version == tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert swesat == "True"
    print(f"\nbinder install steps: {minutes:.1f} min", file=sys.stderr)
