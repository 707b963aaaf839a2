"""Insert or update the course's set-up cell: the first code cell of a chapter or homework notebook.

    .venv/bin/python -m tools.setup_cell notebooks/00_welcome.ipynb ...   # or: scripts/setup-cells
    .venv/bin/python -m tools.setup_cell --check notebooks/*.ipynb        # exit 1 if a cell is missing or stale

Where ``metalearn_lite`` imports (a clone set up with ``scripts/course``, Binder, a JupyterHub
image) the cell does nothing and prints nothing, so stored outputs and nbval stay as they
are. Elsewhere (Colab, a bare Jupyter) it pip-installs this course's package at this
version from the repository's release tag, or from a local wheel named by the environment
variable ``METALEARN_LITE_WHEEL``, and says so. A notebook that reads chapter 06's real
student answers (it mentions ``irtorch``) also gets ``irtorch`` with ``--no-deps``: only its
data files are used, and its own dependencies (pandas, plotly, scikit-learn, an sdist) are
not needed.

Idempotent: the cell is found by its id (``course-setup``) and rewritten in place only when
its text changed; notebooks are written as ``nbformat`` writes them (sorted keys, one-space
indent), atomically.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

from tools.course_links import REPO, CourseLinks, course_links

CELL_ID = "course-setup"
TAG = "remove-cell"  # the website (myst-nb) leaves the cell out
IRTORCH_MARKERS = re.compile(r"irtorch|swesat", re.I)


def _pin(name: str, repo: Path = REPO) -> str:
    for line in (repo / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.lower().startswith(name.lower() + "=="):
            return line.strip()
    raise ValueError(f"constraints.txt has no '{name}==' pin")


def cell_source(links: CourseLinks, irtorch: str | None = None) -> str:
    """The set-up cell's code. ``irtorch``: a pin such as ``irtorch==0.5.6``, or None."""
    extra = ""
    if irtorch:
        extra = (f'    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "{irtorch}"],\n'
                 f"                   check=True)  # real student answers (data files only)\n")
    return (
        "# Set-up for Colab and any Jupyter without the course: does nothing where metalearn_lite\n"
        f"# is installed; elsewhere installs metalearn-lite {links.version} (METALEARN_LITE_WHEEL: a local wheel).\n"
        "try:\n"
        "    import metalearn_lite\n"
        "except ImportError:\n"
        "    import importlib, os, pathlib, subprocess, sys\n"
        '    wheel = os.environ.get("METALEARN_LITE_WHEEL")\n'
        f'    url = pathlib.Path(wheel).resolve().as_uri() if wheel else "{links.pip_url()}"\n'
        f'    print(f"metalearn_lite is not installed here: installing metalearn-lite {links.version} from {{url}} ...")\n'
        '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"metalearn-lite @ {url}"], check=True)\n'
        + extra +
        "    importlib.invalidate_caches()\n"
        "    import metalearn_lite\n"
        '    print("installed metalearn_lite", metalearn_lite.__version__)'
    )


def needs_irtorch(notebook: dict) -> bool:
    """Whether the notebook (other than its set-up cell) mentions irtorch or SweSAT."""
    return any(IRTORCH_MARKERS.search("".join(c.get("source", ""))) for c in notebook.get("cells", [])
               if c.get("id") != CELL_ID)


def setup_cell(source: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": CELL_ID,
            "metadata": {"tags": [TAG]}, "outputs": [], "source": source.splitlines(True)}


def apply(notebook: dict, links: CourseLinks, repo: Path = REPO) -> bool:
    """Put the current set-up cell first among ``notebook``'s code cells; True if it changed."""
    cells = notebook.get("cells")
    if not isinstance(cells, list):
        raise ValueError("expected an nbformat 4 notebook with a 'cells' list")
    source = cell_source(links, _pin("irtorch", repo) if needs_irtorch(notebook) else None)
    wanted = setup_cell(source)
    existing = [i for i, c in enumerate(cells) if c.get("id") == CELL_ID]
    if len(existing) > 1:
        raise ValueError(f"{len(existing)} cells have the id {CELL_ID!r}; expected at most one")
    first_code = next((i for i, c in enumerate(cells) if c.get("cell_type") == "code"), len(cells))
    if existing:
        i = existing[0]
        if i == first_code and cells[i] == wanted:
            return False
        del cells[i]
        first_code = next((j for j, c in enumerate(cells) if c.get("cell_type") == "code"), len(cells))
    cells.insert(first_code, wanted)
    return True


def render(notebook: dict) -> str:
    """Text as nbformat writes it (sorted keys, one-space indent, final newline)."""
    return json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/setup-cells", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a cell is missing or stale")
    args = parser.parse_args(argv)
    links = course_links()
    stale = 0
    for path in args.notebooks:
        if path.suffix != ".ipynb" or not path.is_file():
            parser.error(f"expected .ipynb files, got {path}")
        try:
            notebook = json.loads(path.read_text(encoding="utf-8"))
            changed = apply(notebook, links)
        except (ValueError, json.JSONDecodeError) as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            return 2
        if changed:
            stale += 1
            if args.check:
                print(f"{path}: set-up cell missing or out of date (run scripts/setup-cells {path})")
            else:
                _write_atomic(path, render(notebook))
                print(f"{path}: set-up cell written")
        else:
            print(f"{path}: set-up cell up to date")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
