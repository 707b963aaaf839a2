"""`metalearn homework gradescope NAME` writes an autograder zip per Gradescope's spec; its
run_autograder, run in a simulated /autograder (source/, submission/, results/), writes a
valid results.json for an honest, a blank and a hostile submission."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from metalearn_lite.cli import main
from metalearn_lite.grading.questions import ASSIGNMENTS

REPO = Path(__file__).resolve().parents[1]
NAME = "np"
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}

HOSTILE = '''
import glob, json, os
# forge the results file and read the hidden tests, from inside the submission
for root in ("/autograder", os.environ.get("AUTOGRADER_ROOT", ""), "@@ROOT@@"):
    try:
        os.makedirs(os.path.join(root, "results"), exist_ok=True)
        with open(os.path.join(root, "results", "results.json"), "w") as f:
            json.dump({"score": 1000, "tests": []}, f)
    except OSError:
        pass
STOLEN = []
for path in glob.glob("@@ROOT@@/source/private/*/*") + glob.glob("/autograder/source/private/*/*"):
    try:
        STOLEN.append(open(path).read())
    except OSError:
        pass
print(json.dumps({"score": 1000}))

def aggregate(r_i):
    return r_i.sum(dim=1) if not STOLEN else r_i.mean(dim=1)
'''


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory):
    out = tmp_path_factory.mktemp("gradescope") / f"{NAME}_autograder.zip"
    assert main(["homework", "gradescope", NAME, "--out", str(out), "--timeout", "90"]) == 0
    return out


def test_zip_follows_the_layout_gradescope_expects(autograder_zip):
    with zipfile.ZipFile(autograder_zip) as archive:
        names = archive.namelist()
        modes = {i.filename: i.external_attr >> 16 for i in archive.infolist()}
        setup = archive.read("setup.sh").decode()
        run = archive.read("run_autograder").decode()
    assert {"setup.sh", "run_autograder", "config.json", "requirements.txt"} <= set(names)
    assert all(not n.startswith("/") and ".." not in n.split("/") for n in names)
    assert modes["setup.sh"] & stat.S_IXUSR and modes["run_autograder"] & stat.S_IXUSR
    assert setup.startswith("#!/usr/bin/env bash") and "download.pytorch.org/whl/cpu" in setup
    assert run.startswith("#!/usr/bin/env bash") and f"--assignment {NAME}" in run
    assert f"private/{NAME}/hidden_tests.py" in names and "lib/metalearn_lite/grading/harness.py" in names


def _run_autograder(autograder_zip: Path, root: Path, files: dict[str, bytes]) -> dict:
    (root / "submission").mkdir(parents=True)
    (root / "results").mkdir()
    with zipfile.ZipFile(autograder_zip) as archive:
        archive.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")  # as Gradescope does
    os.chmod(root / "run_autograder", 0o755)
    for name, data in files.items():
        (root / "submission" / name).write_bytes(data.replace(b"@@ROOT@@", str(root).encode()))
    env = {"PATH": os.environ["PATH"], "AUTOGRADER_ROOT": str(root), "METALEARN_PYTHON": sys.executable,
           "HOME": str(root)}
    done = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((root / "results" / "results.json").read_text())


def _valid(results: dict) -> None:
    """The fields of Gradescope's results.json spec that we write, with their types."""
    assert isinstance(results["score"], float) and isinstance(results["execution_time"], float)
    assert isinstance(results["output"], str) and results["visibility"] in VISIBILITY
    assert results["stdout_visibility"] in VISIBILITY
    questions = ASSIGNMENTS[NAME]
    assert [t["number"] for t in results["tests"]] == [q.qid for q in questions]
    for test, q in zip(results["tests"], questions):
        assert set(test) >= {"name", "number", "score", "max_score", "status", "visibility", "output"}
        assert test["max_score"] == q.points and 0 <= test["score"] <= test["max_score"]
        assert test["visibility"] in VISIBILITY and test["status"] in ("passed", "failed")
        assert isinstance(test["output"], str) and "hidden tests:" in test["output"]
    assert results["score"] == pytest.approx(sum(t["score"] for t in results["tests"]))


@pytest.mark.slow  # four sandboxed runs, about 10 s each here: the whole Gradescope path, end to end
def test_run_autograder_on_honest_blank_and_hostile_submissions(autograder_zip, tmp_path):
    honest = _run_autograder(autograder_zip, tmp_path / "honest",
                             {f"hw_{NAME}.ipynb": (REPO / "solutions" / f"hw_{NAME}.ipynb").read_bytes()})
    _valid(honest)
    assert honest["score"] == 10.0 and all(t["status"] == "passed" for t in honest["tests"])

    blank = _run_autograder(autograder_zip, tmp_path / "blank",
                            {f"hw_{NAME}.ipynb": (REPO / "exercises" / f"hw_{NAME}.ipynb").read_bytes()})
    _valid(blank)
    assert blank["score"] == 0.0 and "not answered yet" in blank["tests"][0]["output"]

    hostile = _run_autograder(autograder_zip, tmp_path / "hostile", {"attack.py": HOSTILE.encode()})
    _valid(hostile)
    assert hostile["score"] == 0.0  # no forged score, and the hidden tests were out of reach
    assert hostile["tests"][0]["output"].count("FAILED") == 1

    none = _run_autograder(autograder_zip, tmp_path / "none", {"notes.txt": b"I forgot"})
    _valid(none)
    assert none["score"] == 0.0 and "found none" in none["output"]


def test_gradescope_command_names_a_missing_assignment(tmp_path, capsys):
    assert main(["homework", "gradescope", "nope", "--out", str(tmp_path / "x.zip")]) == 2
    assert "assignment 'nope' not found" in capsys.readouterr().err
    assert not (tmp_path / "x.zip").exists()
