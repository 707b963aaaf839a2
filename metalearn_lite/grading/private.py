"""The instructor's private assignment folder, written from the public course source.

``write_private_folder(out, solutions="solutions", seed=...)`` copies, for every
``solutions/hw_<name>.ipynb``::

    out/<name>/solution.ipynb   the solution notebook (the reference code), its answer
                                cells' metadata completed with function, title, hint and
                                tolerances, so the folder alone says what is graded
    out/<name>/hidden_tests.py  from solutions/hidden_tests/<name>.py
    out/<name>/term.json        {"seed": <term seed>}: the hidden inputs are drawn from it

The folder is what ``metalearn grade --tests DIR`` reads (layout: ``assignment.py``). None
of it is part of the installed package, and a new ``seed`` per term gives new hidden
inputs, so answers leaked from an earlier term fail. Folders are created mode 0700.
"""
from __future__ import annotations

import copy
import json
import os
import secrets
from pathlib import Path

from ..atomic import atomic_write_text
from .assignment import HIDDEN_FILE, SOLUTION_FILE, TERM_FILE
from .authoring import AuthoringError, render_notebook
from .questions import ASSIGNMENTS

__all__ = ["write_private_folder", "new_term_seed", "HIDDEN_TESTS_DIR"]

HIDDEN_TESTS_DIR = "hidden_tests"  # inside the solutions folder


def new_term_seed() -> int:
    """A fresh random term seed (31 bits, so it is easy to type and store)."""
    return secrets.randbelow(2 ** 31 - 1) + 1


def _assignment_name(nb: dict, path: Path) -> str:
    meta = nb.get("metadata", {}).get("metalearn", {})
    name = meta.get("assignment") if isinstance(meta, dict) else None
    return name or path.stem.removeprefix("hw_")


def _completed(nb: dict, name: str) -> dict:
    """The notebook with each known question's fields written into its answer cell."""
    nb = copy.deepcopy(nb)
    known = {q.qid: q for q in ASSIGNMENTS.get(name, [])}
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {}).get("metalearn")
        if cell.get("cell_type") != "code" or not isinstance(meta, dict) or meta.get("question") not in known:
            continue
        q = known[meta["question"]]
        for field in ("function", "points", "title", "hint", "rtol", "atol"):
            meta.setdefault(field, getattr(q, field))
    return nb


def write_private_folder(out: str | Path, solutions: str | Path = "solutions",
                         seed: int | None = None, names: list[str] | None = None) -> list[Path]:
    """Write the private assignment folder ``out`` (see the module doc); returns paths written.

    ``seed``: the term seed (default: a fresh random one, written to each ``term.json``).
    ``names``: only these assignments (default: every ``hw_*.ipynb`` in ``solutions``).
    """
    solutions, out = Path(solutions), Path(out)
    notebooks = sorted(solutions.glob("hw_*.ipynb"))
    if not notebooks:
        raise AuthoringError(f"no hw_*.ipynb solution notebooks in {solutions}")
    seed = new_term_seed() if seed is None else int(seed)
    planned = {}
    for path in notebooks:
        nb = json.loads(path.read_text(encoding="utf-8"))
        name = _assignment_name(nb, path)
        if names and name not in names:
            continue
        hidden = solutions / HIDDEN_TESTS_DIR / f"{name}.py"
        if not hidden.is_file():
            raise AuthoringError(f"hidden tests of {name!r} not found: expected {hidden} "
                                 "defining hidden_cases(qid, seed)")
        planned[name] = (_completed(nb, name), hidden)
    missing = sorted(set(names or ()) - set(planned))
    if missing:
        raise AuthoringError(f"no solution notebook for {missing} in {solutions}")
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    written = []
    for name, (nb, hidden) in planned.items():
        folder = out / name
        folder.mkdir(exist_ok=True)
        os.chmod(folder, 0o700)
        atomic_write_text(folder / SOLUTION_FILE, render_notebook(nb))
        atomic_write_text(folder / HIDDEN_FILE, hidden.read_text(encoding="utf-8"))
        atomic_write_text(folder / TERM_FILE, json.dumps({"seed": seed}) + "\n")
        written += [folder / SOLUTION_FILE, folder / HIDDEN_FILE, folder / TERM_FILE]
    return written
