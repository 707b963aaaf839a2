"""Submissions are read as Jupyter runs them (IPython's own input transformer): honest code
with a BOM, CRLF, continuation lines starting with ``!=`` or ``%``, U+2028 in a comment, or
in %%time / %%capture cells keeps full marks; shell escapes never run."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from metalearn_lite.grading.grader import grade_folder
from metalearn_lite.grading.harness import split_cells
from metalearn_lite.grading.notebook_source import cell_to_source, notebook_to_source, submission_source
from metalearn_lite.grading.sandbox import Limits

REPO = Path(__file__).resolve().parents[1]
SOLUTION = REPO / "solutions" / "hw_np.ipynb"


def _run(source: str) -> dict:
    namespace: dict = {}
    for cell in split_cells(source):
        exec(compile(cell, "<cell>", "exec"), namespace)  # noqa: S102 - our own test input
    return namespace


def test_shell_escapes_and_cell_magics_never_run(tmp_path):
    marker = tmp_path / "ran"
    cells = [f"!touch {marker}\nfiles = !touch {marker}\n%sx touch {marker}\nx = 1\n",
             f"%%bash\ntouch {marker}\n",
             f"%%writefile {marker}\nhello\n",
             f"%%script sh\ntouch {marker}\n",
             "%time y = x + 1\n%timeit -n 3 -r 1 z = y + 1\n%matplotlib inline\nhelp_me = x\nhelp_me?\n"]
    nb = {"cells": [{"cell_type": "code", "source": c} for c in cells]}
    namespace = _run(notebook_to_source(json.dumps(nb).encode()))
    assert not marker.exists()
    assert (namespace["x"], namespace["y"], namespace["z"], namespace["files"]) == (1, 2, 3, [])


@pytest.mark.parametrize("text, expected", [
    ("\ufeffa = 1\r\nb = (a\r\n     != 2)\r\n", {"a": 1, "b": True}),            # BOM + CRLF
    ("a = (7\n     % 4)\nb = (a\n     != 3)\n", {"a": 3, "b": False}),           # continuation lines
    ("a = 1  # see\u2028the note\nb = a + 1\n", {"a": 1, "b": 2}),               # U+2028 in a comment
    ("%%time\na = 1\nb = (a\n!= 1)\n", {"a": 1, "b": False}),                     # cell magic body
    ("\n%%capture captured\nprint('hidden')\na = 5\nb = 6\n", {"a": 5, "b": 6}),
    ("%%timeit -n 2\na = 1\nb = 2\n", {"a": 1, "b": 2}),
    ("a = 1\rb = 2\r", {"a": 1, "b": 2}),                                        # old Mac line ends
])
def test_cells_run_as_jupyter_runs_them(text, expected):
    namespace = _run(cell_to_source(text))
    assert {k: namespace[k] for k in expected} == expected


def test_a_py_submission_with_a_bom_and_crlf(tmp_path):
    path = tmp_path / "s.py"
    path.write_bytes(b"\xef\xbb\xbfa = 1\r\nb = (a\r\n     != 2)\r\n")
    assert _run(submission_source(path))["b"] is True


def _variants(tmp_path: Path) -> Path:
    """The np solution saved six honest-but-awkward ways, as students' editors do."""
    nb = json.loads(SOLUTION.read_text(encoding="utf-8"))
    subs = tmp_path / "subs"
    subs.mkdir()

    def save(name: str, edit, bom: bool = False) -> None:
        copy = json.loads(json.dumps(nb))
        for cell in copy["cells"]:
            if cell["cell_type"] == "code":
                cell["source"] = edit("".join(cell["source"]), cell)
        data = json.dumps(copy, indent=1, ensure_ascii=False).encode("utf-8")
        (subs / name).write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)

    def continuation(src: str, cell) -> str:
        if "metalearn" not in cell["metadata"]:
            return src
        head, _, rest = src.partition('"""\n')
        head2, _, body = rest.partition('"""\n')
        lines = ("    _checked = (1\n"
                 "                != 2)\n"
                 "    _remainder = (7\n"
                 "                  % 4)\n")
        return f'{head}"""\n{head2}"""\n{lines}{body}'

    save("bom.ipynb", lambda s, c: s, bom=True)
    save("bom_cells.ipynb", lambda s, c: "\ufeff" + s)
    save("crlf.ipynb", lambda s, c: s.replace("\n", "\r\n"))
    save("continuation.ipynb", continuation)
    save("u2028.ipynb", lambda s, c: "# a note\u2028written on a phone\n" + s)
    save("time_cells.ipynb", lambda s, c: "%%time\n" + s)
    save("capture_and_magics.ipynb", lambda s, c: "%%capture output\n%matplotlib inline\n!echo hi\n" + s)
    shutil.copy(REPO / "exercises" / "hw_np.ipynb", subs / "blank.ipynb")
    return subs


def test_honest_but_awkward_notebooks_score_full_marks(tmp_path):
    subs = _variants(tmp_path)
    rows = grade_folder(subs, "np", tmp_path / "out", jobs=2, limits=Limits(timeout=90, call_timeout=20),
                        progress=False)
    scores = {r["student"]: (r["status"], r["points"]) for r in rows}
    assert scores.pop("blank") == ("ok", 0.0)  # the checks can fail
    assert scores == {name: ("ok", 10.0) for name in scores}
    assert len(scores) == 7
    with open(tmp_path / "out" / "grades.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 8
