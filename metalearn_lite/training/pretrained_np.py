"""The shipped GP-curve and sinusoid regressors: neural processes (chapters 04, 07, 09) and the in-context
transformer (chapter 09), rebuilt from their checkpoints in one line::

    from metalearn_lite.training.pretrained_np import pretrained_regressor
    transformer, info = pretrained_regressor("transformer_gp.pt")   # InContextRegressor, eval mode
    info["held_out_by_context"]["10"]                                # what it scored, by context size

``bench/train_np.py`` (GP curves) and ``bench/train_in_context.py`` (sinusoids) write them in the
one checkpoint format, ``{"model": class name, "config": constructor arguments, "state_dict": weights}``;
their entries in ``metalearn_lite/checkpoints/registry.json`` name the command that made each. The config
records the decoder's std floor ``min_std``; a checkpoint without one (``cnp_gp.pt``,
``latent_np_gp.pt``) was trained with, and is rebuilt with, the papers' 0.1.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from ..algorithms.attentive_np import AttentiveNP
from ..algorithms.in_context import InContextRegressor
from ..algorithms.neural_process import CNP, LatentNP
from ..checkpoints import registry
from .checkpoint import CorruptCheckpointError, entry, load_shipped

__all__ = ["REGRESSORS", "SHIPPED_REGRESSORS", "pretrained_regressor"]

REGRESSORS = {"CNP": CNP, "LatentNP": LatentNP, "AttentiveNP": AttentiveNP, "InContextRegressor": InContextRegressor}
# file name -> the command that re-creates it, read from the registry (kept for older code)
SHIPPED_REGRESSORS = {e["file"]: e.get("recreate") or e["command"] for e in registry().values()
                      if e.get("model", {}).get("class") in REGRESSORS}


def pretrained_regressor(name: str) -> tuple[nn.Module, dict[str, Any]]:
    """The shipped model ``name`` (a registry name such as ``"transformer_gp"``, or its file name
    ``"transformer_gp.pt"``) in eval mode, and its recorded info (``command``, ``config``, held-out
    figures). Raises ``CheckpointError`` naming the command that re-creates a missing file, the
    known names for an unknown one, or what a malformed one lacks."""
    found = entry(name)
    if found.get("model", {}).get("class") not in REGRESSORS:
        raise CorruptCheckpointError(f"{name} is not a regressor checkpoint: expected a model of class one of "
                                     f"{sorted(REGRESSORS)}, the registry gives {found.get('model')}")
    return load_shipped(found["name"])
