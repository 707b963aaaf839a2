"""One checkpoint format: the model's class and constructor arguments saved with its weights.

    save_checkpoint(path, model, config={"in_features": 1, "hidden_sizes": [40, 40], "out_features": 1},
                    metadata={"command": "python bench/...", "data": "...", "licence": "..."})
    model, info = load_model(path)                  # MLP(**config) with the weights, in eval mode
    model, info = load_model("cnp_gp")              # a shipped model, by its name in the registry

The file is ``{"model": class name, "config": kwargs, "state_dict": weights}`` written atomically
with ``torch.save``; its SHA-256 goes to the registry (``metalearn_lite/checkpoints/registry.json``)
when the file is in the shipped folder, else to a sidecar ``<file>.json`` with the metadata.
Every load checks that hash first (``metalearn_lite.checkpoints.read_checkpoint``, the one reader).

``save_checkpoint(path, state_dict_like, metadata)`` and ``load_checkpoint(path)`` (the raw dict)
keep working for other layouts, e.g. the two state dicts of ``maml_sinusoid.pt``.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .. import checkpoints as _store
from ..atomic import atomic_write_bytes
from ..checkpoints import (SHIPPED_DIR, CheckpointError, CheckpointNotFoundError, CorruptCheckpointError,
                           UnknownModelError, checkpoint_info, entry, entry_info, read_checkpoint,
                           record_checkpoint, registered_name, registry, shipped_path)

__all__ = ["save_checkpoint", "load_checkpoint", "load_model", "load_shipped", "model_classes", "CheckpointError",
           "CheckpointNotFoundError", "CorruptCheckpointError", "UnknownModelError", "checkpoint_info",
           "SHIPPED_DIR", "shipped_checkpoint", "registry"]


def model_classes() -> dict[str, Callable[..., Any]]:
    """Class name -> class, for every model a checkpoint may name."""
    from ..algorithms.attentive_np import AttentiveNP
    from ..algorithms.in_context import InContextClassifier, InContextRegressor
    from ..algorithms.neural_process import CNP, LatentNP
    from ..models import MLP, Conv4
    classes = [MLP, Conv4, CNP, LatentNP, AttentiveNP, InContextRegressor, InContextClassifier]
    return {cls.__name__: cls for cls in classes}


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any] | nn.Module,
                    metadata: dict[str, Any] | None = None, *, config: dict[str, Any] | None = None,
                    **registry_fields: Any) -> str:
    """Save a checkpoint to ``path`` atomically and record its SHA-256; return the hash.

    ``state`` an ``nn.Module``: writes the one format ``{"model": class name, "config": config,
    "state_dict": weights}``; ``config`` must be the constructor's keyword arguments (checked:
    the class is rebuilt from it and must take the weights). ``state`` a dict: saved as given.
    The hash, size and ``metadata`` go to the registry for a file in the shipped folder
    (``registry_fields`` such as ``data=``, ``licence=`` set entry fields), else to ``<path>.json``.
    """
    path = Path(path)
    if isinstance(state, nn.Module):
        model = state
        name = type(model).__name__
        if config is None:
            raise TypeError(f"save_checkpoint({path.name!r}, {name}(...)) needs config=, the {name} constructor's "
                            "keyword arguments, so that a loader can rebuild the model")
        weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        classes = model_classes()
        if name in classes:
            classes[name](**config).load_state_dict(weights)  # a config that does not rebuild this model fails here
        state = {"model": name, "config": dict(config), "state_dict": weights}
        registry_fields.setdefault("model", {"class": name, "config": dict(config)})
    elif config is not None:
        raise TypeError("config= goes with a model: save_checkpoint(path, model, config=...)")
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return record_checkpoint(path, metadata, **registry_fields)


def load_checkpoint(path: str | os.PathLike, expected_sha256: str | None = None,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The raw dict in a checkpoint file, after checking its SHA-256 (against ``expected_sha256``,
    the registry or the sidecar). Tensors and plain containers only (``weights_only=True``)."""
    return read_checkpoint(path, expected_sha256, map_location=map_location)


def _build(cls_name: str, config: dict[str, Any], weights: dict[str, Any], where: str) -> nn.Module:
    classes = model_classes()
    if cls_name not in classes:
        raise CorruptCheckpointError(f"{where} names model class {cls_name!r}; expected one of {sorted(classes)}")
    model = classes[cls_name](**config)
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise CorruptCheckpointError(f"{where}: the weights do not fit {cls_name}(**{config}): {exc}") from exc
    return model.eval()


def load_shipped(name: str, map_location: str | torch.device = "cpu") -> tuple[Any, dict[str, Any]]:
    """The shipped model ``name`` (a registry name such as ``"cnp_gp"``, or its file name), rebuilt
    from the registry's class and config, in eval mode, and its info (metadata, metrics, command).
    An entry without a ``model`` (tensors that are not a model) gives the file's raw dict."""
    found = entry(name)
    path = shipped_path(found["name"])
    spec = found.get("model") or {}
    if spec.get("class") == "TutorModel":
        from ..education.tutor import TutorModel
        return TutorModel.load(path, expected_sha256=found["sha256"]), entry_info(found)
    state = read_checkpoint(path, found["sha256"], map_location=map_location)
    if not spec:  # a shipped file of tensors that is not a model (e.g. a run's snapshots): the raw dict
        return state, entry_info(found)
    where = f"{path} (registry entry {found['name']!r})"
    key = spec.get("weights", "state_dict")
    if key not in state or not isinstance(state[key], dict):
        raise CorruptCheckpointError(f"{where}: expected the weights under {key!r}, found keys {sorted(state)}")
    if "class" not in spec or "config" not in spec:
        raise CorruptCheckpointError(f"{where}: the entry's 'model' must give 'class' and 'config'")
    return _build(spec["class"], spec["config"], state[key], where), entry_info(found)


def load_model(source: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[Any, dict[str, Any]]:
    """A model and its info from a shipped name (``"protonet_glyphs_conv4"``) or from a file in the
    one format (``{"model", "config", "state_dict"}``) written by :func:`save_checkpoint`."""
    if isinstance(source, str) and os.sep not in source and registered_name(source) is not None:
        return load_shipped(source, map_location)
    path = Path(source)
    if not path.exists() and isinstance(source, str) and os.sep not in source and "." not in source:
        entry(source)  # raises UnknownModelError listing the known names
    if path.resolve().parent == _store.SHIPPED_DIR and registered_name(path.name) is not None:
        return load_shipped(path.name, map_location)
    state = read_checkpoint(path, map_location=map_location)
    if not isinstance(state.get("model"), str) or not isinstance(state.get("state_dict"), dict):
        raise CorruptCheckpointError(f"{path} is not in the checkpoint format: expected {{'model': class name, "
                                     f"'config': kwargs, 'state_dict': weights}}, found keys {sorted(state)}")
    return (_build(state["model"], state.get("config", {}), state["state_dict"], str(path)),
            checkpoint_info(path).get("metadata", {}))


def shipped_checkpoint(name: str) -> Path | None:
    """Path of a shipped checkpoint file (a registry name or file name), or ``None`` when it is absent
    or unknown: chapters then train a short run instead ("load if present, else train")."""
    try:
        return shipped_path(name)
    except CheckpointError:
        return None
