"""Snapshots of a meta-training run: theta at a few dozen (log-spaced) meta-steps, one file.

``bench/reproduce_sinusoid.py --snapshots PATH`` writes such a file with ``save_snapshots``
(through ``save_checkpoint``: atomic, its SHA-256 recorded with the command). The shipped
one, ``metalearn_lite/checkpoints/maml_sinusoid_snapshots.pt``, replays the run that made the
shipped ``maml_sinusoid.pt``; chapter 02's outer-loop player shows it
(``OuterLoopPlayer.from_snapshots``). The file is a checkpoint of the last theta in the
course's one format (``model``, ``config``, ``state_dict``) plus the replay::

    steps      LongTensor [S]             meta-steps, strictly increasing (0 = the random init)
    meta_loss  DoubleTensor [S]           the training batch's meta-loss at that step (NaN at 0)
    params     {name: Tensor [S, ...]}    theta at each step, stacked
    run        {"inner_lr": ..., "num_shots": ..., "seed": ..., ...}   how the run was trained
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import Tensor

from ..models import MLP
from .checkpoint import SHIPPED_DIR, CheckpointError, checkpoint_info, load_checkpoint, save_checkpoint

__all__ = ["Snapshots", "save_snapshots", "load_snapshots", "shipped_sinusoid_snapshots", "SINUSOID_SNAPSHOTS"]

SINUSOID_SNAPSHOTS = "maml_sinusoid_snapshots.pt"
KEYS = ("model", "config", "state_dict", "steps", "meta_loss", "params", "run")


@dataclass
class Snapshots:
    """theta at ``steps[i]`` is ``params[i]`` (a dict name -> tensor) of an ``MLP(**config)``."""

    steps: list[int]
    params: list[dict[str, Tensor]]
    meta_loss: list[float]
    config: dict[str, Any]
    run: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def checkpoints(self) -> list[tuple[int, dict[str, Tensor]]]:
        """``[(step, params), ...]``: what ``OuterLoopPlayer`` takes."""
        return list(zip(self.steps, self.params))

    def model(self) -> MLP:
        """A fresh ``MLP(**config)`` of the snapshots' shape (evaluate it with ``functional_call``)."""
        return MLP(**self.config)


def save_snapshots(path: str | os.PathLike, steps: Sequence[int], params: Sequence[dict[str, Tensor]],
                   meta_loss: Sequence[float], config: dict[str, Any], run: dict[str, Any],
                   metadata: dict[str, Any] | None = None, **registry_fields: Any) -> str:
    """Write snapshots ``params[i]`` (theta of an ``MLP(**config)`` at meta-step ``steps[i]``) to
    ``path`` atomically with ``save_checkpoint``; returns the SHA-256. In the shipped folder the
    file gets a registry entry (``registry_fields``: ``data=``, ``licence=``, ...; its ``model``
    is the last theta, ``MLP(**config)``), elsewhere a sidecar."""
    if not steps or len(steps) != len(params) or len(steps) != len(meta_loss):
        raise ValueError(f"expected as many steps, params and meta_loss values (at least one), got "
                         f"{len(steps)}, {len(params)}, {len(meta_loss)}")
    state = {"model": "MLP", "config": dict(config),
             "state_dict": {k: v.detach().clone() for k, v in params[-1].items()},
             "steps": torch.tensor(list(steps), dtype=torch.long),
             "meta_loss": torch.tensor([float(v) for v in meta_loss], dtype=torch.float64),
             "params": {k: torch.stack([p[k].detach() for p in params]) for k in params[0]},
             "run": dict(run)}
    registry_fields.setdefault("model", {"class": "MLP", "config": dict(config)})
    return save_checkpoint(path, state, metadata, **registry_fields)


def load_snapshots(path: str | os.PathLike) -> Snapshots:
    """Read a snapshots file (its hash checked first); a clear error if it is malformed."""
    state = load_checkpoint(path)
    missing = [k for k in KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path} is not a snapshots file: expected keys {', '.join(KEYS)}; missing {missing}")
    steps = [int(s) for s in state["steps"].tolist()]
    if any(b <= a for a, b in zip(steps, steps[1:])):
        raise CheckpointError(f"{path}: snapshot steps must be strictly increasing, got {steps}")
    count = len(steps)
    for name, stacked in state["params"].items():
        if stacked.shape[0] != count:
            raise CheckpointError(f"{path}: params[{name!r}] holds {stacked.shape[0]} snapshots, expected {count} "
                                  "(one per step)")
    if len(state["meta_loss"]) != count:
        raise CheckpointError(f"{path}: meta_loss holds {len(state['meta_loss'])} values, expected {count}")
    params = [{name: stacked[i].clone() for name, stacked in state["params"].items()} for i in range(count)]
    meta_loss = [float(v) for v in state["meta_loss"].tolist()]
    return Snapshots(steps, params, meta_loss, dict(state["config"]), dict(state["run"]),
                     checkpoint_info(path).get("metadata", {}))


def shipped_sinusoid_snapshots() -> Snapshots:
    """The shipped replay of ``maml_sinusoid.pt``'s meta-training (``CheckpointError`` if absent)."""
    path = SHIPPED_DIR / SINUSOID_SNAPSHOTS
    if not path.is_file():
        raise CheckpointError(f"the package ships no {SINUSOID_SNAPSHOTS} in {SHIPPED_DIR}; make it with "
                              "`python bench/reproduce_sinusoid.py --steps 49306 --snapshots "
                              f"metalearn_lite/checkpoints/{SINUSOID_SNAPSHOTS}`")
    return load_snapshots(path)


def finite_meta_losses(snapshots: Snapshots) -> tuple[list[int], list[float]]:
    """The (step, meta-loss) pairs that have a value (step 0 has none)."""
    pairs = [(s, v) for s, v in zip(snapshots.steps, snapshots.meta_loss) if math.isfinite(v)]
    return [s for s, _ in pairs], [v for _, v in pairs]
