"""The Colab/Jupyter set-up cell (tools/setup_cell.py, scripts/setup-cells).

Fast checks here; the end-to-end run in a bare virtual environment (the cell installs the
package from a local wheel, the outputs match) is tests/test_bare_venv.py.
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tools.course_links import CourseLinks, course_links
from tools.setup_cell import CELL_ID, apply, cell_source, main, render

REPO = Path(__file__).resolve().parents[1]
# The chapters that carry the cell now; the lead adds the rest with scripts/setup-cells.
WITH_CELL = ["00_welcome", "01_tasks_and_episodes", "04_neural_processes", "07_beyond_the_core",
             "08_beyond_the_core_ii", "09_in_context_learning"]
LINKS = CourseLinks("https://github.com/owner/course", "1.2.3")


def _nb(*cells):
    return {"cells": [dict(c) for c in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


MD = {"cell_type": "markdown", "id": "t", "metadata": {}, "source": "# Title"}
CODE = {"cell_type": "code", "id": "c", "metadata": {}, "outputs": [], "execution_count": 1,
        "source": "import torch"}


def test_cell_goes_first_among_code_cells_and_a_second_run_changes_nothing():
    nb = _nb(MD, CODE)
    assert apply(nb, LINKS) is True
    assert [c["id"] for c in nb["cells"]] == ["t", CELL_ID, "c"]
    once = copy.deepcopy(nb)
    assert apply(nb, LINKS) is False and nb == once


def test_a_stale_or_moved_cell_is_replaced_in_place_not_duplicated():
    nb = _nb(MD, CODE)
    apply(nb, LINKS)
    apply(nb, CourseLinks("https://github.com/owner/course", "1.2.4"))
    assert sum(c["id"] == CELL_ID for c in nb["cells"]) == 1
    assert "metalearn-lite 1.2.4" in "".join(nb["cells"][1]["source"])
    nb["cells"].append(nb["cells"].pop(1))  # moved to the end by hand
    assert apply(nb, LINKS) is True and [c["id"] for c in nb["cells"]] == ["t", CELL_ID, "c"]


def test_irtorch_is_added_only_for_notebooks_that_use_the_real_answers():
    plain, swesat = _nb(MD, CODE), _nb(MD, dict(CODE, source="from metalearn_lite.education import swesat"))
    apply(plain, LINKS), apply(swesat, LINKS)
    assert "irtorch" not in "".join(plain["cells"][1]["source"])
    assert '"--no-deps", "irtorch==' in "".join(swesat["cells"][1]["source"])


def test_bad_input_is_refused_with_a_clear_error(tmp_path, capsys):
    with pytest.raises(ValueError, match="nbformat 4"):
        apply({"cells": "x"}, LINKS)
    twice = _nb(MD, dict(CODE, id=CELL_ID), dict(CODE, id=CELL_ID))
    with pytest.raises(ValueError, match="expected at most one"):
        apply(twice, LINKS)
    with pytest.raises(SystemExit):
        main([str(tmp_path / "missing.txt")])
    with pytest.raises(ValueError, match="Repository"):
        (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "1"\n')
        course_links(tmp_path)


def test_cli_writes_then_check_passes_and_catches_a_stale_copy(tmp_path, capsys):
    path = tmp_path / "nb.ipynb"
    path.write_text(render(_nb(MD, CODE)))
    assert main(["--check", str(path)]) == 1
    assert main([str(path)]) == 0
    assert main(["--check", str(path)]) == 0
    assert json.loads(path.read_text())["cells"][1]["id"] == CELL_ID


def test_install_url_and_launch_links_name_the_release_and_the_notebook():
    assert LINKS.pip_url() == "git+https://github.com/owner/course.git@v1.2.3"
    nb = "notebooks/00_welcome.ipynb"
    assert LINKS.colab(nb) == "https://colab.research.google.com/github/owner/course/blob/v1.2.3/notebooks/00_welcome.ipynb"
    assert LINKS.binder(nb).endswith("/v2/gh/owner/course/v1.2.3?urlpath=lab%2Ftree%2Fnotebooks%2F00_welcome.ipynb")
    assert LINKS.download(nb) == "https://raw.githubusercontent.com/owner/course/v1.2.3/notebooks/00_welcome.ipynb"
    pull = LINKS.nbgitpuller("https://hub.example.edu/")
    assert pull.startswith("https://hub.example.edu/hub/user-redirect/git-pull?repo=https%3A%2F%2Fgithub.com%2Fowner%2Fcourse&")
    assert "urlpath=lab%2Ftree%2Fcourse%2Fnotebooks%2F00_welcome.ipynb" in pull
    with pytest.raises(ValueError, match="github.com/OWNER/NAME"):
        CourseLinks("https://gitlab.com/x/y", "1").owner_name  # noqa: B018


def _with_cell() -> list[Path]:
    """The chapters named above, and every notebook that has a set-up cell (it must be current)."""
    paths = [REPO / "notebooks" / f"{name}.ipynb" for name in WITH_CELL]
    for folder in ("notebooks", "exercises", "solutions"):
        paths += [p for p in sorted((REPO / folder).glob("*.ipynb")) if p not in paths
                  and f'"id": "{CELL_ID}"' in p.read_text(encoding="utf-8")]
    return paths


@pytest.mark.parametrize("path", _with_cell(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_notebooks_carry_the_current_cell_with_no_stored_output(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert apply(copy.deepcopy(nb), course_links()) is False, f"run scripts/setup-cells {path.relative_to(REPO)}"
    cell = next(c for c in nb["cells"] if c["id"] == CELL_ID)
    assert cell["outputs"] == [] and "remove-cell" in cell["metadata"]["tags"]


def test_the_cell_prints_nothing_where_the_package_imports():
    """What nbval relies on: in the project's environment the cell has no output at all."""
    source = cell_source(course_links(), "irtorch==0.5.6")
    result = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=120,
                            cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


def test_the_cell_installs_when_the_package_is_missing(tmp_path):
    """With metalearn_lite hidden, the cell runs ``pip install 'metalearn-lite @ <wheel URI>'``
    (a stand-in pip records the command instead of installing) and says so."""
    fake = tmp_path / "bin"
    (fake / "pip").mkdir(parents=True)
    (fake / "pip" / "__init__.py").write_text("")
    (fake / "pip" / "__main__.py").write_text("import sys, pathlib\n"
                                              "pathlib.Path(sys.argv[0]).parent.joinpath('args.json').write_text("
                                              "__import__('json').dumps(sys.argv[1:]))\n")
    (fake / "metalearn_lite").mkdir()
    (fake / "metalearn_lite" / "__init__.py").write_text(
        "import os\nif not os.path.exists(os.environ['INSTALLED']):\n    raise ImportError('hidden')\n"
        "__version__ = 'fake'\n")
    wheel = tmp_path / "metalearn_lite-1.2.3-py3-none-any.whl"
    source = cell_source(LINKS).replace(
        "    importlib.invalidate_caches()\n",
        "    open(os.environ['INSTALLED'], 'w').close()\n    importlib.invalidate_caches()\n")
    env = {"PYTHONPATH": str(fake), "METALEARN_LITE_WHEEL": str(wheel), "INSTALLED": str(tmp_path / "done"),
           "PATH": "/usr/bin:/bin"}
    # -S: no site-packages, so the editable install of the real package is out of sight
    result = subprocess.run([sys.executable, "-S", "-c", source], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"metalearn_lite is not installed here: installing metalearn-lite 1.2.3 from {wheel.as_uri()} ...",
        "installed metalearn_lite fake"]
    assert json.loads((fake / "pip" / "args.json").read_text()) == ["install", "-q", f"metalearn-lite @ {wheel.as_uri()}"]


def test_readme_has_colab_and_binder_badges_for_every_notebook():
    from tools.course_links import notebooks, readme_with_badges

    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert readme_with_badges(text) == text, "README's badge table is stale: python -m tools.course_links --write-readme"
    for notebook in notebooks():
        assert course_links().colab(notebook) in text, notebook
