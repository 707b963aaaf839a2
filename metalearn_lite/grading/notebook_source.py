"""Turn a submission file (.ipynb or .py) into Python source, without running anything.

Notebooks are parsed as JSON (no Jupyter kernel, no nbformat validation that could be
fooled into executing anything): code cells become cells of the source separated by
``# %% [metalearn cell]`` lines, so one failing cell does not stop the next.

Each cell is read the way Jupyter runs it: a byte-order mark and CR/CRLF line ends are
normalised, then IPython's own input transformer
(``IPython.core.inputtransformer2.TransformerManager().transform_cell``) turns magics,
``!cmd``, ``x = !cmd``, ``%%cell`` magics and ``obj?`` into the Python IPython would run
(``get_ipython().system(...)`` and so on), so continuation lines starting with ``!=`` or
``%`` and comments holding U+2028 stay what they are. ``%%time``, ``%%timeit`` and
``%%capture`` cells are graded as their body (run once). Every cell that calls
``get_ipython()`` starts with an inert stand-in (``INERT_SHELL``): ``system`` and
``getoutput`` run nothing (shell escapes never run), other magics do nothing, except that
``%time``/``%timeit`` run their statement once, as Jupyter would.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from .harness import CELL_MARKER

__all__ = ["InvalidSubmission", "submission_source", "notebook_to_source", "cell_to_source",
           "MAX_SUBMISSION_BYTES", "INERT_SHELL"]

MAX_SUBMISSION_BYTES = 20 << 20
BODY_CELL_MAGICS = ("time", "timeit", "capture")
_CELL_MAGIC = re.compile(r"%%(\w+)[^\n]*(?:\n|$)")

# One line, so a cell's line numbers move by exactly one. ``globals()`` inside the lambdas is
# the namespace the cell runs in (the student's), where ``%time stmt`` runs ``stmt``.
INERT_SHELL = (
    "get_ipython = (lambda _shell: (lambda: _shell))(type('InertShell', (), {"
    "'system': lambda self, *a, **k: None, "
    "'getoutput': lambda self, *a, **k: [], "
    "'run_cell_magic': lambda self, *a, **k: None, "
    "'run_line_magic': lambda self, name, line='', *a, **k: "
    "exec(__import__('re').sub(r'^(\\s*-\\w+(\\s+[\\d.]+)?)*\\s*', '', line), globals()) "
    "if name in ('time', 'timeit') else None})())"
    "  # inert stand-in: shell escapes and magics never run when graded\n")


class InvalidSubmission(ValueError):
    """The file cannot be read as a notebook or Python source (status ``invalid``)."""


def _normalise(text: str) -> str:
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _transform(text: str) -> str:
    import warnings

    from IPython.core.inputtransformer2 import TransformerManager

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # IPython warns about a last line without "\n"
            return TransformerManager().transform_cell(text)
    except Exception:  # noqa: BLE001 - IPython gives up: the cell runs as written (and fails alone)
        return text


def cell_to_source(text: str) -> str:
    """Python source of one notebook cell, as IPython would run it (see the module doc)."""
    text = _normalise(text)
    stripped = text.lstrip("\n")
    match = _CELL_MAGIC.match(stripped)
    if match and match[1] in BODY_CELL_MAGICS:
        return cell_to_source(stripped[match.end():])
    out = []
    for line in _transform(text).splitlines(keepends=True):
        if line.startswith("# %%"):
            line = line.replace("# %%", "#  %%", 1)  # cannot fake a cell boundary
        out.append(line)
    source = "".join(out)
    if not source.endswith("\n"):
        source += "\n"
    if "get_ipython" in source:
        source = INERT_SHELL + source
    return source


def notebook_to_source(data: bytes) -> str:
    """Python source of a notebook's code cells (``InvalidSubmission`` if malformed)."""
    try:
        nb = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise InvalidSubmission(f"notebook is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except (ValueError, RecursionError):
        raise InvalidSubmission("notebook is not valid JSON") from None
    if type(nb) is not dict or type(nb.get("cells")) is not list:
        raise InvalidSubmission("notebook has no 'cells' list (expected nbformat 4)")
    chunks = []
    for i, cell in enumerate(nb["cells"]):
        if type(cell) is not dict:
            raise InvalidSubmission(f"cell {i} is not an object")
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        if type(src) is list and all(type(s) is str for s in src):
            src = "".join(src)
        if type(src) is not str:
            raise InvalidSubmission(f"cell {i} has a source that is not text")
        cleaned = cell_to_source(src)
        if cleaned.strip():
            chunks.append(cleaned)
    return "".join(f"{CELL_MARKER} {i}\n{chunk}" for i, chunk in enumerate(chunks))


def submission_source(path: str | Path) -> str:
    """Source of a submission file; ``InvalidSubmission`` for empty/unreadable/unknown files."""
    path = Path(path)
    if path.is_symlink():
        raise InvalidSubmission("symbolic links are not accepted (submit the file itself)")
    if not path.is_file():
        raise InvalidSubmission("not a regular file")
    if path.suffix not in (".ipynb", ".py"):
        raise InvalidSubmission(f"expected a .ipynb or .py file, got {path.name}")
    size = path.stat().st_size
    if size > MAX_SUBMISSION_BYTES:
        raise InvalidSubmission(f"file is {size} bytes, more than {MAX_SUBMISSION_BYTES}")
    data = path.read_bytes()
    if not data.strip():
        raise InvalidSubmission("file is empty")
    if path.suffix == ".ipynb":
        source = notebook_to_source(data)
    else:
        try:
            source = _normalise(data.decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise InvalidSubmission(f"file is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if "\x00" in source:
        raise InvalidSubmission("source contains NUL bytes")
    if not source.strip():
        raise InvalidSubmission("no code in the submission")
    return source
