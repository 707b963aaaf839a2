"""Data: few-shot image data sets and the episode sampler (chapters 01-02).

- :class:`EpisodeSampler`: N-way K-shot Q-query episodes from any class-indexed data.
- :class:`Omniglot`, :func:`vinyals_split`: the real Omniglot (download or local zip).
- :class:`WithinAlphabetSampler`: Lake et al.'s one-shot protocol (one alphabet, support
  and query by different drawers); :func:`held_out_alphabets` drops the alphabets seen.
- ``Glyphs``, ``generate_glyphs``, ``plot_contact_sheet``: an Omniglot-shaped set generated
  offline from matplotlib's fonts (:mod:`metalearn_lite.data.glyphs`), imported on first use
  so that ``import metalearn_lite.data`` works even where that module cannot be imported.
"""
from __future__ import annotations

import importlib
from typing import Any

from .episodes import EpisodeIndices, EpisodeSampler
from .omniglot import Omniglot, VinyalsSplit, vinyals_split
from .within_alphabet import WithinAlphabetSampler, held_out_alphabets

__all__ = [
    "EpisodeSampler",
    "EpisodeIndices",
    "Omniglot",
    "VinyalsSplit",
    "vinyals_split",
    "WithinAlphabetSampler",
    "held_out_alphabets",
    "Glyphs",
    "generate_glyphs",
    "plot_contact_sheet",
]

_LAZY = {"Glyphs": "glyphs", "generate_glyphs": "glyphs", "plot_contact_sheet": "glyphs"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
