"""The shipped GP-curve and sinusoid regressors: neural processes (chapters 04, 07, 09) and the in-context
transformer (chapter 09), rebuilt from their checkpoints in one line::

    from metalearn_lite.training.pretrained_np import pretrained_regressor
    transformer, info = pretrained_regressor("transformer_gp.pt")   # InContextRegressor, eval mode
    info["held_out_by_context"]["10"]                                # what it scored, by context size

``bench/train_np.py`` (GP curves) and ``bench/train_in_context.py`` (sinusoids) write them as
``{"model": class name, "config": constructor arguments, "state_dict": weights}``. The config
records the decoder's std floor ``min_std``; a checkpoint without one (``cnp_gp.pt``,
``latent_np_gp.pt``) was trained with, and is rebuilt with, the papers' 0.1.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from ..algorithms.attentive_np import AttentiveNP
from ..algorithms.in_context import InContextRegressor
from ..algorithms.neural_process import CNP, LatentNP
from .checkpoint import CheckpointError, checkpoint_info, load_checkpoint, shipped_checkpoint

__all__ = ["REGRESSORS", "SHIPPED_REGRESSORS", "pretrained_regressor"]

REGRESSORS = {"CNP": CNP, "LatentNP": LatentNP, "AttentiveNP": AttentiveNP, "InContextRegressor": InContextRegressor}
SHIPPED_REGRESSORS = {
    "cnp_gp.pt": "python bench/train_np.py --model cnp",
    "latent_np_gp.pt": "python bench/train_np.py --model latent_np",
    "attentive_np_gp.pt": "python bench/train_np.py --model attentive_np",
    "transformer_gp.pt": "python bench/train_np.py --model transformer",
    "transformer_sinusoid.pt": "python bench/train_in_context.py",
}


def pretrained_regressor(name: str) -> tuple[nn.Module, dict[str, Any]]:
    """The shipped model ``name`` (a file in ``metalearn_lite/checkpoints/``) in eval mode, and its
    sidecar's metadata (``command``, ``config``, held-out figures). Raises ``CheckpointError`` naming
    the command that re-creates a missing file, or what a malformed one lacks."""
    path = shipped_checkpoint(name)
    if path is None:
        how = SHIPPED_REGRESSORS.get(name, "bench/train_np.py or bench/train_in_context.py")
        raise CheckpointError(f"the shipped checkpoint {name} is missing from metalearn_lite/checkpoints/; "
                              f"re-create it with `{how}`")
    state = load_checkpoint(path)  # checks the SHA-256 recorded in the sidecar
    if not isinstance(state.get("model"), str) or state["model"] not in REGRESSORS or "state_dict" not in state:
        raise CheckpointError(f"{path} is not a regressor checkpoint: expected {{'model': one of {sorted(REGRESSORS)}, "
                              "'config': ..., 'state_dict': ...}")
    model = REGRESSORS[state["model"]](**state.get("config", {}))
    model.load_state_dict(state["state_dict"])
    return model.eval(), checkpoint_info(path)["metadata"]
