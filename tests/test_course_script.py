"""scripts/course and the set-up it shares (scripts/_setup.sh), on a throwaway copy of the repo.

The venv is a stand-in: ``bin/python`` runs this test's interpreter, ``bin/jupyter`` records its
arguments (or, in the live test, runs the real JupyterLab), so nothing is installed here.
"""
from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WELCOME = "notebooks/00_welcome.ipynb"


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def course(tmp_path):
    """(repo copy, fake venv, environment) for running scripts/course."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    for name in ("course", "_setup.sh"):
        shutil.copy2(REPO / "scripts" / name, repo / "scripts" / name)
    for name in ("pyproject.toml", "constraints.txt"):
        shutil.copy2(REPO / name, repo / name)
    for relative in (WELCOME, "notebooks/01_tasks_and_episodes.ipynb", "exercises/hw_maml.ipynb"):
        (repo / relative).parent.mkdir(exist_ok=True)
        shutil.copy2(REPO / relative, repo / relative)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    _executable(venv / "bin" / "python", f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    _executable(venv / "bin" / "jupyter", '#!/bin/sh\nprintf "%s\\n" "$@" > "$JUPYTER_ARGS"\n')
    env = dict(os.environ, METALEARN_LITE_VENV=str(venv), JUPYTER_ARGS=str(tmp_path / "jupyter-args.txt"))
    env.pop("METALEARN_LITE_WORK", None)
    # The set-up stamp of this copy, so ensure_env finds the environment up to date.
    stamp = subprocess.run(["bash", "-c", f'source "{repo}/scripts/_setup.sh" && setup_hash'], env=env,
                           capture_output=True, text=True, check=True).stdout
    (venv / ".metalearn-lite-setup.sha256").write_text(stamp)
    return repo, venv, env


def run_course(repo, env, *args) -> tuple[subprocess.CompletedProcess, list[str]]:
    result = subprocess.run(["bash", str(repo / "scripts" / "course"), *args], env=env, capture_output=True,
                            text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return result, Path(env["JUPYTER_ARGS"]).read_text().splitlines()


def test_first_run_copies_the_notebooks_and_opens_welcome_in_a_fresh_workspace(course):
    repo, _, env = course
    result, args = run_course(repo, env, "--no-browser", "--port", "8890")
    work = repo / "my-work"
    assert (work / WELCOME).read_bytes() == (repo / WELCOME).read_bytes()
    assert (work / "exercises" / "hw_maml.ipynb").is_file()
    assert "3 copied from the repository, 0 of yours kept" in result.stderr
    assert args[:3] == ["lab", "--no-browser", "--port"]
    assert f"--ServerApp.root_dir={work}" in args
    assert f"--LabApp.default_url=/lab/workspaces/course/tree/{WELCOME}" in args
    assert f"--LabApp.workspaces_dir={work}/.jupyterlab-workspaces" in args


def test_student_edits_survive_a_restart_and_refresh_keeps_them_aside(course):
    repo, _, env = course
    run_course(repo, env)
    work = repo / "my-work"
    mine = work / WELCOME
    mine.write_text("my answers")
    (work / ".jupyterlab-workspaces" / "course.jupyterlab-workspace").write_text("{}")
    (repo / "notebooks" / "01_tasks_and_episodes.ipynb").unlink()
    (work / "notebooks" / "01_tasks_and_episodes.ipynb").unlink()
    result, _ = run_course(repo, env)
    assert mine.read_text() == "my answers", "a restart must never overwrite a student's copy"
    assert "0 copied from the repository, 2 of yours kept" in result.stderr
    assert not any((work / ".jupyterlab-workspaces").iterdir()), "each start gets a fresh workspace"
    result, _ = run_course(repo, env, "--refresh")
    assert mine.read_bytes() == (repo / WELCOME).read_bytes()
    kept = list((work / ".replaced").glob("*/notebooks/00_welcome.ipynb"))
    assert [p.read_text() for p in kept] == ["my answers"]
    assert "moved to" in result.stderr


def test_tracked_copies_folder_is_git_ignored():
    result = subprocess.run(["git", "check-ignore", "-q", "my-work/notebooks/00_welcome.ipynb"], cwd=REPO)
    assert result.returncode == 0, "my-work/ must be in .gitignore"


# ------------------------------------------------------------------ torch: CPU index first
def _fake_pip_venv(tmp_path: Path, torch_installed: bool) -> Path:
    """A python whose `-m pip` records its arguments and 'installs' a fake torch."""
    site = tmp_path / "site"
    site.mkdir()
    if torch_installed:
        (site / "torch.py").write_text("__version__ = '2.13.0+cpu'\nclass version: cuda = None\n")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    _executable(venv / "bin" / "python", f"""#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
    shift 2; printf '%s\\n' "$@" > "{tmp_path}/pip-args.txt"
    printf "__version__ = '2.13.0'\\nclass version: cuda = '12.8'\\n" > "{site}/torch.py"; exit 0
fi
PYTHONPATH="{site}" exec {sys.executable} -S "$@"
""")
    return venv


def _install_torch(tmp_path, venv, index) -> subprocess.CompletedProcess:
    script = f'source "{REPO}/scripts/_setup.sh"; REPO="{REPO}"; VENV_PY="{venv}/bin/python"; install_torch --no-input'
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, METALEARN_LITE_TORCH_INDEX=index))


@pytest.mark.skipif(sys.platform != "linux", reason="the CPU index is asked first on Linux only")
def test_torch_falls_back_to_the_default_index_when_the_cpu_index_is_unreachable(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/whl/cpu"
    venv = _fake_pip_venv(tmp_path, torch_installed=False)
    result = _install_torch(tmp_path, venv, dead)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "pip-args.txt").read_text().splitlines() == ["install", "--no-input", "torch==2.13.0"]
    assert "did not answer: using the default package index" in result.stderr
    assert "got torch 2.13.0, a CUDA 12.8 build" in result.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="the CPU index is asked first on Linux only")
def test_torch_comes_from_the_cpu_index_when_it_answers(tmp_path):
    (tmp_path / "index" / "torch").mkdir(parents=True)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path / "index")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        index = f"http://127.0.0.1:{server.server_port}"
        venv = _fake_pip_venv(tmp_path, torch_installed=False)
        result = _install_torch(tmp_path, venv, index)
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "pip-args.txt").read_text().splitlines() == [
        "install", "--no-input", "--index-url", index, "torch==2.13.0"]
    assert f"from PyTorch's CPU index ({index})" in result.stderr


def test_torch_at_the_pin_is_left_alone(tmp_path):
    venv = _fake_pip_venv(tmp_path, torch_installed=True)
    result = _install_torch(tmp_path, venv, "http://127.0.0.1:9/unused")
    assert result.returncode == 0 and not (tmp_path / "pip-args.txt").exists()


# ------------------------------------------------------------------ the real JupyterLab
@pytest.mark.slow
def test_the_printed_url_opens_welcome(course, tmp_path):
    """Start the real JupyterLab through scripts/course: the URL it prints names 00_welcome in the
    course workspace, and the server answers it."""
    repo, venv, env = course
    (venv / "bin" / "jupyter").unlink()
    (venv / "bin" / "jupyter").symlink_to(Path(sys.executable).parent / "jupyter")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(env, JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"), JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"))
    log = tmp_path / "lab.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(["bash", str(repo / "scripts" / "course"), "--no-browser", "--ip=127.0.0.1",
                                    f"--port={port}", "--ServerApp.port_retries=0"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline, url = time.monotonic() + 120, None
        while url is None and time.monotonic() < deadline and process.poll() is None:
            found = re.search(rf"http://127\.0\.0\.1:{port}/\S+", log.read_text(errors="replace"))
            url = found.group(0) if found else None
            time.sleep(0.5)
        assert url, f"no URL printed:\n{log.read_text()[-3000:]}"
        assert url.startswith(f"http://127.0.0.1:{port}/lab/workspaces/course/tree/{WELCOME}?token="), url
        with urllib.request.urlopen(url, timeout=30) as reply:
            assert reply.status == 200 and b"JupyterLab" in reply.read()
        token = url.split("token=")[1]
        if Path("/usr/bin/chromium").exists():  # what a student sees: the welcome notebook, open and active
            from playwright.sync_api import sync_playwright

            from test_browser_widgets import CHROMIUM, CHROMIUM_ARGS

            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                page = browser.new_page()
                page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
                    f"http://127.0.0.1:{port}") else route.abort())
                page.goto(url, wait_until="domcontentloaded")
                # JupyterLab titles the page after the active document, and marks its tab current.
                # (the title is shortened, e.g. "00_welcome.i… - course": the workspace's name)
                page.wait_for_function("() => document.title.startsWith('00_welcome') && "
                                       "document.title.endsWith(' - course') && "
                                       "[...document.querySelectorAll('li.lm-mod-current')]"
                                       ".some(t => t.textContent.trim() === '00_welcome.ipynb')", timeout=120_000)
                browser.close()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents/{WELCOME}?content=0&token={token}",
                                    timeout=30) as reply:
            assert json.load(reply)["path"] == WELCOME  # served from the working copy
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:  # a loaded machine can take longer to stop a server
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


@pytest.mark.parametrize("name", ["setup-cells", "site", "python-smoke", "course"])
def test_new_scripts_parse_and_are_executable(name):
    path = REPO / "scripts" / name
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    assert os.access(path, os.X_OK), f"scripts/{name} must be executable"
