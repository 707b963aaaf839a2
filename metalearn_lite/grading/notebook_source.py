"""Turn a submission file (.ipynb or .py) into Python source, without running anything.

Notebooks are parsed as JSON (no Jupyter kernel, no nbformat validation that could be
fooled into executing anything): code cells become cells of the source separated by
``# %% [metalearn cell]`` lines, so one failing cell does not stop the next. IPython shell
and magic lines (``!cmd``, ``%magic``) become ``pass`` with the same indentation; cells
starting with a cell magic (``%%time``...) are dropped.
"""
from __future__ import annotations

import json
from pathlib import Path

from .harness import CELL_MARKER

__all__ = ["InvalidSubmission", "submission_source", "notebook_to_source", "MAX_SUBMISSION_BYTES"]

MAX_SUBMISSION_BYTES = 20 << 20


class InvalidSubmission(ValueError):
    """The file cannot be read as a notebook or Python source (status ``invalid``)."""


def _clean_cell(text: str) -> str | None:
    stripped = text.lstrip()
    if stripped.startswith("%%"):
        return None
    out = []
    for line in text.splitlines():
        body = line.lstrip()
        if body.startswith(("!", "%")):
            indent = line[: len(line) - len(body)]
            out.append(f"{indent}pass  # removed shell/magic line")
        elif body.startswith("# %%"):
            out.append(line.replace("# %%", "#  %%", 1))  # cannot fake a cell boundary
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def notebook_to_source(data: bytes) -> str:
    """Python source of a notebook's code cells (``InvalidSubmission`` if malformed)."""
    try:
        nb = json.loads(data.decode("utf-8"))
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
        cleaned = _clean_cell(src)
        if cleaned is not None and cleaned.strip():
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
            source = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidSubmission(f"file is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if "\x00" in source:
        raise InvalidSubmission("source contains NUL bytes")
    if not source.strip():
        raise InvalidSubmission("no code in the submission")
    return source
