"""The shipped models: this folder, its registry, and the one function that reads a checkpoint file.

Everything the package ships trained lives here, next to ``registry.json``, the one list of
shipped models. An entry (keyed by its name, e.g. ``"protonet_glyphs_conv4"``) records:

- ``file``, ``sha256``, ``size``: the weights and their hash (checked on every load);
- ``model``: how to rebuild it, ``{"class": "Conv4", "config": {constructor kwargs}}``
  (``"weights": KEY`` when the file holds several state dicts, as ``maml_sinusoid.pt`` does);
- ``data`` and ``licence``: what it was trained on, under which terms;
- ``metrics``: what it scored; ``command``: the exact command that made it; ``recreate``: how
  to make it from scratch where that differs; ``metadata``: the rest its training script recorded.

:func:`read_checkpoint` is the only place in the package that opens a checkpoint file: it
checks the SHA-256 (from the registry for shipped files, from the ``<file>.json`` sidecar that
``save_checkpoint`` writes for your own), then reads a ``.pt`` with
``torch.load(weights_only=True)`` or a ``.npz`` with ``numpy.load(allow_pickle=False)``.
This module imports no model code (torch only inside ``read_checkpoint``, for a ``.pt``), so
``education.tutor`` and ``metalearn info`` use it without the training stack;
``metalearn_lite.training.checkpoint.load_model`` rebuilds the model from an entry.

The checkpoint format written by ``save_checkpoint(path, model, config=...)`` is one dict,
``{"model": class name, "config": constructor kwargs, "state_dict": weights}``, so a loader
never hard-codes a shape.
"""
from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text, sha256_file

__all__ = ["SHIPPED_DIR", "REGISTRY_FILE", "METRIC_KEYS", "CheckpointError", "CheckpointNotFoundError",
           "CorruptCheckpointError", "UnknownModelError", "registry", "entry", "shipped_path", "entry_info",
           "read_checkpoint", "checkpoint_info", "record_checkpoint", "absorb_sidecar", "sidecar_path",
           "registered_name", "split_metadata"]

# The one definition of the folder of shipped models (this package's own folder).
SHIPPED_DIR = Path(__file__).resolve().parent
REGISTRY_FILE = "registry.json"
# Keys of a training script's metadata that are results: they go to an entry's "metrics".
METRIC_KEYS = ("test_accuracy", "held_out", "held_out_by_context", "query_mse", "mse", "auc_5_random",
               "real_handwriting_benchmark")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, unknown, or does not match its recorded hash."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No file at the path a checkpoint should be at; the message names the path."""


class CorruptCheckpointError(CheckpointError, ValueError):
    """A file that is not the checkpoint expected (wrong hash, truncated, another format)."""


class UnknownModelError(CheckpointError, KeyError):
    """A name that is not in the registry; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


# ----------------------------------------------------------------------------- the registry
def _registry_path() -> Path:
    return SHIPPED_DIR / REGISTRY_FILE


def registry() -> dict[str, dict[str, Any]]:
    """All entries of ``registry.json``, by name (a fresh copy: editing it changes nothing on disk)."""
    path = _registry_path()
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))["models"]
    except (ValueError, KeyError) as exc:
        raise CorruptCheckpointError(f"{path} is not a model registry (JSON with a 'models' object): {exc}") from exc


def registered_name(name_or_file: str) -> str | None:
    """The registry name for ``name_or_file`` (a name, or a file name such as ``"cnp_gp.pt"``), else None."""
    models = registry()
    if name_or_file in models:
        return name_or_file
    matches = [n for n, e in models.items() if e["file"] == name_or_file]
    stem = name_or_file.split(".")[0]
    return stem if stem in matches else (matches[0] if matches else None)


def entry(name: str) -> dict[str, Any]:
    """The registry entry ``name`` (or the first for the file name ``name``); an unknown name raises
    :class:`UnknownModelError` listing the known names."""
    key = registered_name(str(name))
    if key is None:
        known = ", ".join(sorted(registry())) or "none (no registry.json)"
        raise UnknownModelError(f"no shipped model named {name!r} in {_registry_path()}; known names: {known}")
    return {"name": key, **registry()[key]}


def shipped_path(name: str, *, must_exist: bool = True) -> Path:
    """The file of the shipped model ``name``. A registered file that is absent raises
    :class:`CheckpointNotFoundError` naming the path and the command that re-creates it."""
    found = entry(name)
    path = SHIPPED_DIR / found["file"]
    if must_exist and not path.is_file():
        how = found.get("recreate") or found.get("command")
        raise CheckpointNotFoundError(f"the shipped checkpoint {found['file']} is missing from {SHIPPED_DIR} "
                                      f"(expected at {path}); re-create it with `{how}`")
    return path


def entry_info(found: dict[str, Any]) -> dict[str, Any]:
    """What the training script recorded, with the metrics and the command put back in:
    ``{**metadata, **metrics, "command": ...}`` (the dict the ``pretrained_*`` loaders return)."""
    info = copy.deepcopy(found.get("metadata", {}))
    info.update(copy.deepcopy(found.get("metrics", {})))
    if found.get("command"):
        info["command"] = found["command"]
    return info


def _shipped_name(path: Path) -> str | None:
    """The registry name of ``path`` when it is a file in the shipped folder, else None."""
    if path.resolve().parent != SHIPPED_DIR:
        return None
    return registered_name(path.name)


# ----------------------------------------------------------------------------- sidecars (your own files)
def sidecar_path(path: str | os.PathLike) -> Path:
    """``<file>.json``: where ``save_checkpoint`` records the hash of a checkpoint outside the shipped folder."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def checkpoint_info(path: str | os.PathLike) -> dict[str, Any]:
    """``{"file", "sha256", "size", "metadata"}`` for a checkpoint: from the registry for a shipped
    file, else from its sidecar."""
    path = Path(path)
    name = _shipped_name(path)
    if name is not None:
        found = registry()[name]
        return {"file": found["file"], "sha256": found["sha256"], "size": found["size"], "metadata": entry_info(found)}
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        raise CheckpointNotFoundError(f"checkpoint {path} has no sidecar {sidecar.name} with its hash, and is not "
                                      f"in the registry of shipped models ({_registry_path()})")
    return json.loads(sidecar.read_text(encoding="utf-8"))


def split_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """A training script's metadata as registry fields: ``command``, ``metrics`` (:data:`METRIC_KEYS`)
    and the rest as ``metadata``."""
    rest = dict(metadata)
    metrics = {k: rest.pop(k) for k in METRIC_KEYS if k in rest}
    return {"command": rest.pop("command", None), "metrics": metrics, "metadata": rest}


def record_checkpoint(path: str | os.PathLike, metadata: dict[str, Any] | None = None,
                      **fields: Any) -> str:
    """Record a checkpoint file just written: its hash, size and ``metadata``; returns the SHA-256.

    A file in the shipped folder updates (or adds, named after the file) its registry entry,
    keeping the fields given once (``model``, ``data``, ``licence``, ``recreate``); ``fields``
    sets entry fields. Any other file gets a sidecar ``<file>.json``. Both writes are atomic.
    """
    path = Path(path)
    digest = sha256_file(path)
    size = path.stat().st_size
    if path.resolve().parent != SHIPPED_DIR:
        info = {"file": path.name, "sha256": digest, "size": size, "metadata": metadata or {}}
        atomic_write_text(sidecar_path(path), json.dumps(info, indent=2, sort_keys=True) + "\n")
        return digest
    reg_path = _registry_path()
    document = json.loads(reg_path.read_text(encoding="utf-8")) if reg_path.is_file() else {
        "about": __doc__.split("\n\n")[0], "models": {}}
    name = registered_name(path.name) or path.name.split(".")[0]
    old = document["models"].get(name, {"file": path.name})
    new = {**old, "sha256": digest, "size": size, **split_metadata(metadata or {}), **fields}
    new.setdefault("data", (metadata or {}).get("data"))
    new.setdefault("licence", (metadata or {}).get("licence", (metadata or {}).get("license")))
    if not (new.get("data") and new.get("licence")):
        warnings.warn(f"registry entry {name!r} ({reg_path}) has no data or licence yet: pass data= and licence= "
                      "to save_checkpoint / record_checkpoint, or add them to the entry", stacklevel=2)
    document["models"][name] = new
    for other in document["models"].values():  # entries that share the file (maml_sinusoid.pt holds two models)
        if other["file"] == new["file"]:
            other.update(sha256=digest, size=size)
    document["models"] = dict(sorted(document["models"].items()))
    atomic_write_text(reg_path, json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return digest


def absorb_sidecar(path: str | os.PathLike, **fields: Any) -> str:
    """Move the sidecar of a file in the shipped folder into the registry (for a file written
    with a sidecar, e.g. by older code), then delete the sidecar; ``fields`` such as ``data=``,
    ``licence=``, ``model=`` complete the entry. Refuses a sidecar whose hash is not the file's."""
    path = Path(path)
    if path.resolve().parent != SHIPPED_DIR:
        raise ValueError(f"{path} is not in the shipped folder {SHIPPED_DIR}: its sidecar is its record")
    record = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
    if record.get("sha256") != sha256_file(path):
        raise CorruptCheckpointError(f"{sidecar_path(path)} records sha256 {record.get('sha256')}, but {path} "
                                     "has another: re-create the file")
    digest = record_checkpoint(path, record.get("metadata", {}), **fields)
    sidecar_path(path).unlink()
    return digest


# ----------------------------------------------------------------------------- the one reader
def read_checkpoint(path: str | os.PathLike, expected_sha256: str | None = None, *, verify: bool = True,
                    map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint file after checking its SHA-256; the only reader of checkpoint files.

    The expected hash is ``expected_sha256``, else the registry's (a shipped file), else the
    sidecar's; ``verify=False`` skips the check (a file you made and hold no hash for).
    ``.npz`` files load with ``numpy.load(allow_pickle=False)`` into a dict of arrays; anything
    else with ``torch.load(weights_only=True)`` (tensors and plain containers only).
    Raises :class:`CheckpointNotFoundError` (no file: the message names the path) or
    :class:`CorruptCheckpointError` (hash mismatch, or not a readable checkpoint).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"no checkpoint file at {path}")
    if verify:
        expected = expected_sha256 or checkpoint_info(path)["sha256"]
        actual = sha256_file(path)
        if actual != expected:
            raise CorruptCheckpointError(f"checkpoint {path} has sha256 {actual}, expected {expected}: the file is "
                                         "corrupt or was changed; re-create it (the registry entry's command)")
    try:
        if path.suffix == ".npz":
            import numpy as np
            with np.load(path, allow_pickle=False) as archive:
                return {key: archive[key] for key in archive.files}
        import torch
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - numpy/torch raise many types for a bad file
        kind = ".npz archive (numpy.savez)" if path.suffix == ".npz" else "torch.save file of tensors and plain containers"
        raise CorruptCheckpointError(f"{path} is not a readable checkpoint: expected a {kind}; "
                                     f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(state, dict):
        raise CorruptCheckpointError(f"{path} holds a {type(state).__name__}, expected a dict")
    return state
