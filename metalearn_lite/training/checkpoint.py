"""Checkpoints written atomically, with a recorded SHA-256 checked on load.

``save_checkpoint(path, ...)`` writes ``path`` (a ``torch.save`` file) and a sidecar
``path + ".json"`` holding its hash and metadata (the command that produced it, the
config, metrics). ``load_checkpoint`` refuses a file whose hash differs from the
sidecar's (or from an ``expected_sha256`` the caller pins).
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_write_bytes, atomic_write_text, sha256_file

__all__ = ["save_checkpoint", "load_checkpoint", "CheckpointError", "checkpoint_info", "SHIPPED_DIR",
           "shipped_checkpoint"]

# Small checkpoints trained by the scripts in bench/ and shipped with the package.
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "checkpoints"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, or does not match its recorded hash."""


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any], metadata: dict[str, Any] | None = None) -> str:
    """Save ``state`` (tensors, dicts, numbers, strings) to ``path`` atomically; return its SHA-256.

    The sidecar ``<path>.json`` records ``sha256``, ``size`` and ``metadata``.
    """
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    atomic_write_bytes(path, data)
    digest = sha256_file(path)
    info = {"file": path.name, "sha256": digest, "size": len(data), "metadata": metadata or {}}
    atomic_write_text(_sidecar(path), json.dumps(info, indent=2, sort_keys=True) + "\n")
    return digest


def checkpoint_info(path: str | os.PathLike) -> dict[str, Any]:
    """The sidecar's content (hash, size, metadata)."""
    sidecar = _sidecar(Path(path))
    if not sidecar.exists():
        raise CheckpointError(f"checkpoint {path} has no sidecar {sidecar.name} with its hash")
    return json.loads(sidecar.read_text())


def load_checkpoint(path: str | os.PathLike, expected_sha256: str | None = None,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint after checking its hash against ``expected_sha256`` or its sidecar.

    Uses ``torch.load(weights_only=True)``: only tensors and plain containers load.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    expected = expected_sha256 or checkpoint_info(path)["sha256"]
    actual = sha256_file(path)
    if actual != expected:
        raise CheckpointError(f"checkpoint {path} has sha256 {actual}, expected {expected}: "
                              "the file is corrupt or was changed; re-create it")
    return torch.load(path, map_location=map_location, weights_only=True)


def shipped_checkpoint(name: str) -> Path | None:
    """Path of a checkpoint shipped with the package (``metalearn_lite/checkpoints/<name>``), or
    ``None`` when it is absent: chapters then train a short run instead ("load if present, else
    train"). Its sidecar names the command that produced it."""
    path = SHIPPED_DIR / name
    return path if path.exists() and _sidecar(path).exists() else None
