"""The shipped Glyphs models, ready to use: a ProtoNet and two MAMLs (first and second order) on a Conv-4.

``bench/reproduce_fewshot.py --save-checkpoints`` trains them and writes
``metalearn_lite/checkpoints/*.pt`` with a sidecar that records the command, the config
(the Conv-4's arguments, MAML's inner learning rate and steps) and the test accuracy. These
functions rebuild the model from that config, so a chapter loads one in a line and never
has to repeat the architecture::

    from metalearn_lite.training.pretrained import pretrained_glyphs_maml, pretrained_protonet
    protonet, info = pretrained_protonet()          # ProtoNet(Conv4(num_classes=None))
    maml, info = pretrained_glyphs_maml()           # first-order MAML(Conv4(num_classes=5)), 5-way
    maml2, info2 = pretrained_glyphs_maml(first_order=False)   # second-order MAML, same recipe
    info["config"], info["test_accuracy"]["5w1s"]   # what trained it, what it scored

and one ProtoNet for real handwriting: the Glyphs ProtoNet fine-tuned on the real Omniglot
``images_background_small1`` (5 alphabets, MIT licence), tested on alphabets it never saw::

    real, info = pretrained_protonet(data="omniglot-small1")   # = pretrained_real_protonet()
    info["real_train_alphabets"], info["test_accuracy"]["lake20"]
"""
from __future__ import annotations

from typing import Any

import torch.nn.functional as F

from ..algorithms.maml import MAML, accuracy
from ..algorithms.protonet import ProtoNet
from ..models import Conv4
from .checkpoint import CheckpointError, checkpoint_info, load_checkpoint, shipped_checkpoint

__all__ = ["PROTONET_GLYPHS", "MAML_GLYPHS", "MAML2_GLYPHS", "PROTONET_REAL", "pretrained_protonet",
           "pretrained_real_protonet", "pretrained_glyphs_maml"]

PROTONET_GLYPHS = "protonet_glyphs_conv4.pt"
MAML_GLYPHS = "maml_glyphs_conv4_5w1s.pt"         # first order
MAML2_GLYPHS = "maml2nd_glyphs_conv4_5w1s.pt"     # second order
PROTONET_REAL = "protonet_glyphs_small1_conv4.pt"  # Glyphs ProtoNet fine-tuned on real Omniglot small1
_PROTONET_BY_DATA = {"glyphs": PROTONET_GLYPHS, "omniglot-small1": PROTONET_REAL}
_RECREATE = {
    PROTONET_GLYPHS: "python bench/reproduce_fewshot.py --methods protonet --data glyphs --save-checkpoints metalearn_lite/checkpoints",
    MAML_GLYPHS: "python bench/reproduce_fewshot.py --methods fomaml --data glyphs --save-checkpoints metalearn_lite/checkpoints",
    MAML2_GLYPHS: "python bench/reproduce_fewshot.py --methods maml --data glyphs --save-checkpoints metalearn_lite/checkpoints",
    PROTONET_REAL: ("python bench/reproduce_fewshot.py --methods protonet --data glyphs+small1 --rotations 0,90,180,270 "
                    "--affine --within-alphabet 0.5 --save-checkpoints run1, then the same with --init-from "
                    "run1/protonet_glyphs_small1_conv4.pt --save-checkpoints run2, then --init-from "
                    "run2/protonet_glyphs_small1_conv4.pt --within-alphabet 0.75 --protonet-lr 3e-4 "
                    "--save-checkpoints metalearn_lite/checkpoints (bench/reproduce_fewshot.py's docstring)"),
}


def _load(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    path = shipped_checkpoint(name)
    if path is None:
        how = _RECREATE.get(name, "bench/reproduce_fewshot.py --save-checkpoints metalearn_lite/checkpoints")
        raise CheckpointError(f"the shipped checkpoint {name} is missing from metalearn_lite/checkpoints/; "
                              f"re-create it with `{how}`")
    metadata = checkpoint_info(path)["metadata"]
    state = load_checkpoint(path)  # checks the SHA-256 recorded in the sidecar
    if "model" not in state or "config" not in metadata or "model_kwargs" not in metadata["config"]:
        raise CheckpointError(f"{path} is not a reproduce_fewshot checkpoint: expected a 'model' state dict "
                              "and a sidecar config with 'model_kwargs'")
    return state["model"], metadata


def pretrained_protonet(name: str = PROTONET_GLYPHS, *, data: str | None = None) -> tuple[ProtoNet, dict[str, Any]]:
    """The shipped Glyphs ProtoNet (Conv-4 embedding, squared Euclidean logits) in eval mode,
    and the sidecar's metadata (``config``, ``test_accuracy``, ``command``, timings).

    ``data="omniglot-small1"`` loads :data:`PROTONET_REAL` instead (``data="glyphs"`` the
    default); ``name`` picks a file in the checkpoint folder."""
    if data is not None:
        if data not in _PROTONET_BY_DATA:
            raise ValueError(f"data must be one of {sorted(_PROTONET_BY_DATA)}, got {data!r}")
        name = _PROTONET_BY_DATA[data]
    weights, metadata = _load(name)
    config = metadata["config"]
    net = ProtoNet(Conv4(**config["model_kwargs"]), distance=config.get("distance", "euclidean"))
    net.encoder.load_state_dict(weights)
    return net.eval(), metadata


def pretrained_real_protonet() -> tuple[ProtoNet, dict[str, Any]]:
    """The shipped ProtoNet for real handwriting: the Glyphs ProtoNet fine-tuned on Omniglot's
    ``images_background_small1`` (Korean, Latin, Balinese, Greek, Early_Aramaic; MIT licence),
    rotations as new classes and small random affine maps. Its sidecar lists the alphabets it
    saw (``real_train_alphabets``) and its accuracy on ones it did not (``test_alphabets``:
    the other small set's katakana, Sanskrit, Tagalog), Lake's 20-way protocol included."""
    return pretrained_protonet(PROTONET_REAL)


def pretrained_glyphs_maml(name: str | None = None, *, first_order: bool = True) -> tuple[MAML, dict[str, Any]]:
    """A shipped 5-way Glyphs MAML: ``MAML(Conv4(num_classes=5), cross-entropy)`` with the
    inner learning rate, inner steps and order it was trained with, and the sidecar's
    metadata. Adapt at test with ``metadata["config"]["test_inner_steps"]`` steps.

    ``first_order=True`` (the default) loads :data:`MAML_GLYPHS`, ``False`` the second-order
    :data:`MAML2_GLYPHS`; ``name`` picks another file in the checkpoint folder instead.
    """
    if name is None:
        name = MAML_GLYPHS if first_order else MAML2_GLYPHS
    weights, metadata = _load(name)
    config = metadata["config"]
    model = Conv4(**config["model_kwargs"])
    model.load_state_dict(weights)
    maml = MAML(model, F.cross_entropy, inner_lr=config["inner_lr"], num_inner_steps=config["train_inner_steps"],
                first_order=config["first_order"], metric_fn=accuracy)
    return maml.eval(), metadata
