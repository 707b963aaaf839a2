"""Real student responses offline: the Swedish SAT sample shipped in the ``irtorch`` wheel.

The ``irtorch`` wheel (MIT licence, version 0.5.6) contains a sample of the Swedish
Scholastic Aptitude Test (SweSAT) 2022: 5,000 test-takers x 80 quantitative and 80 verbal
multiple-choice items (chosen options 0-4, NaN where no answer was recorded) and the answer
keys (``*_correct.txt``, options counted from 1). Install it with

    pip install --no-deps irtorch==0.5.6

We never ``import irtorch`` (its ``__init__`` needs pandas and more): the package folder is
found with ``importlib.util.find_spec`` and the tensors are read with
``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["SWESAT_INSTALL_HINT", "SweSATUnavailable", "SweSAT", "swesat_dir", "load_swesat", "score_responses"]

SWESAT_INSTALL_HINT = "pip install --no-deps irtorch==0.5.6"
_PARTS = {"quant": "swesat22b_quant", "verbal": "swesat22b_verb"}


class SweSATUnavailable(FileNotFoundError):
    """The SweSAT files (from the ``irtorch`` wheel) are not installed."""


@dataclass(frozen=True)
class SweSAT:
    """Scored SweSAT responses.

    Attributes:
        correct: [num_students, num_items] float32, 1.0 correct, 0.0 wrong, NaN missing.
        choices: [num_students, num_items] float32, chosen option 0-4 (NaN missing).
        keys: [num_items] long, the correct option 0-4.
        parts: tuple of length num_items, "quant" or "verbal" for each item.
        item_names: tuple of length num_items, e.g. "quant_07".
    """

    correct: torch.Tensor
    choices: torch.Tensor
    keys: torch.Tensor
    parts: tuple[str, ...]
    item_names: tuple[str, ...]

    @property
    def num_students(self) -> int:
        return self.correct.shape[0]

    @property
    def num_items(self) -> int:
        return self.correct.shape[1]


def swesat_dir() -> Path:
    """The ``irtorch/datasets/swedish_sat`` folder, without importing ``irtorch``.

    Raises:
        SweSATUnavailable: irtorch is not installed or its SweSAT files are missing; the
            message says how to install them.
    """
    spec = importlib.util.find_spec("irtorch")
    if spec is None or not spec.submodule_search_locations:
        raise SweSATUnavailable(
            "the SweSAT sample comes from the irtorch wheel, which is not installed; "
            f"install it with `{SWESAT_INSTALL_HINT}` (or use "
            "metalearn_lite.education.simulator for simulated students)"
        )
    folder = Path(spec.submodule_search_locations[0]) / "datasets" / "swedish_sat"
    expected = [folder / f"{stem}{suffix}" for stem in _PARTS.values() for suffix in (".pt", "_correct.txt")]
    missing = [p.name for p in expected if not p.is_file()]
    if missing:
        raise SweSATUnavailable(
            f"irtorch is installed but the SweSAT files {missing} are missing from {folder}; "
            f"reinstall with `{SWESAT_INSTALL_HINT}`"
        )
    return folder


def score_responses(choices: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Score chosen options against answer keys.

    Args:
        choices: [num_students, num_items] chosen options (any numeric dtype, NaN = missing).
        keys: [num_items] correct options on the same scale as ``choices``.

    Returns:
        [num_students, num_items] float32: 1.0 correct, 0.0 wrong, NaN where ``choices`` is NaN.
    """
    if choices.dim() != 2 or keys.dim() != 1 or keys.shape[0] != choices.shape[1]:
        raise ValueError(
            f"choices must be [num_students, num_items] and keys [num_items], "
            f"got {list(choices.shape)} and {list(keys.shape)}"
        )
    choices = choices.float()
    correct = (choices == keys.float().unsqueeze(0)).float()
    return torch.where(torch.isnan(choices), torch.full_like(correct, float("nan")), correct)


def _read_keys(path: Path) -> torch.Tensor:
    digits = [int(ch) - 1 for ch in path.read_text(encoding="utf-8") if ch.isdigit()]
    return torch.tensor(digits, dtype=torch.long)


def load_swesat(part: str = "both") -> SweSAT:
    """Load and score the SweSAT sample.

    Args:
        part: "quant" (80 items), "verbal" (80 items) or "both" (160 items, quant first;
            the same 5,000 test-takers in the same row order).

    Returns:
        SweSAT with ``correct`` [5000, num_items] (0/1, NaN missing).
    """
    names = {"both": ["quant", "verbal"], "quant": ["quant"], "verbal": ["verbal"]}
    if part not in names:
        raise ValueError(f"part must be one of {sorted(names)}, got {part!r}")
    folder = swesat_dir()
    choices, keys, parts, item_names = [], [], [], []
    for name in names[part]:
        x = torch.load(folder / f"{_PARTS[name]}.pt", weights_only=True)
        k = _read_keys(folder / f"{_PARTS[name]}_correct.txt")
        if x.dim() != 2 or x.shape[1] != k.shape[0]:
            raise ValueError(f"{name}: responses must be [students, {k.shape[0]}], got {list(x.shape)}")
        choices.append(x.float())
        keys.append(k)
        parts += [name] * k.shape[0]
        item_names += [f"{name}_{j + 1:02d}" for j in range(k.shape[0])]
    choices_t = torch.cat(choices, dim=1)
    keys_t = torch.cat(keys)
    return SweSAT(
        correct=score_responses(choices_t, keys_t),
        choices=choices_t,
        keys=keys_t,
        parts=tuple(parts),
        item_names=tuple(item_names),
    )
