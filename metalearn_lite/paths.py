"""Where the course keeps generated data, downloads and checkpoints.

The cache directory is ``$METALEARN_LITE_CACHE`` if set, else the platform's user
cache directory (``$XDG_CACHE_HOME/metalearn-lite`` or ``~/.cache/metalearn-lite``
on Linux, ``~/Library/Caches/metalearn-lite`` on macOS,
``%LOCALAPPDATA%\\metalearn-lite\\Cache`` on Windows).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["CACHE_ENV", "cache_dir", "data_dir", "checkpoint_dir"]

CACHE_ENV = "METALEARN_LITE_CACHE"


def cache_dir(create: bool = False) -> Path:
    """The root cache directory (see module docstring); created if ``create``."""
    override = os.environ.get(CACHE_ENV)
    if override:
        root = Path(override).expanduser()
    elif sys.platform == "darwin":
        root = Path.home() / "Library" / "Caches" / "metalearn-lite"
    elif os.name == "nt":
        root = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "metalearn-lite" / "Cache"
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "metalearn-lite"
    if create:
        root.mkdir(parents=True, exist_ok=True)
    return root


def data_dir(create: bool = False) -> Path:
    """``cache_dir()/data``: generated and downloaded data sets."""
    path = cache_dir() / "data"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def checkpoint_dir(create: bool = False) -> Path:
    """``cache_dir()/checkpoints``: checkpoints a user trains locally."""
    path = cache_dir() / "checkpoints"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
