"""Reading a stored chapter notebook's cells, for tests that run its from-scratch code."""
from __future__ import annotations

import json
from pathlib import Path


def notebook_cells(path: Path, tag: str | None = None) -> list[dict]:
    """The cells of the notebook at ``path``; only those tagged ``tag`` when given."""
    cells = json.loads(Path(path).read_text())["cells"]
    if tag is not None:
        cells = [c for c in cells if tag in c.get("metadata", {}).get("tags", [])]
    return cells
