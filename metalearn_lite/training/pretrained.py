"""The shipped Glyphs models, ready to use: a ProtoNet and two MAMLs (first and second order) on a Conv-4.

``bench/reproduce_fewshot.py --save-checkpoints`` trains them; their entries in
``metalearn_lite/checkpoints/registry.json`` record the Conv-4's class and arguments, the
training config (MAML's inner learning rate and steps), the data and licence, the test
accuracy and the command. These functions rebuild the model from that entry
(``training.checkpoint.load_shipped``), so a chapter loads one in a line and never has to
repeat the architecture::

    from metalearn_lite.training.pretrained import pretrained_glyphs_maml, pretrained_protonet
    protonet, info = pretrained_protonet()          # ProtoNet(Conv4(num_classes=None))
    maml, info = pretrained_glyphs_maml()           # first-order MAML(Conv4(num_classes=5)), 5-way
    maml2, info2 = pretrained_glyphs_maml(first_order=False)   # second-order MAML, same recipe
    info["config"], info["test_accuracy"]["5w1s"]   # what trained it, what it scored

and one ProtoNet for real handwriting: the mapped-and-bent Glyphs ProtoNet below fine-tuned on
the real Omniglot ``images_background_small1`` (5 alphabets, MIT licence; a quarter of its
episodes still from Glyphs), tested on alphabets it never saw::

    real, info = pretrained_protonet(data="omniglot-small1")   # = pretrained_real_protonet()
    info["real_train_alphabets"], info["test_accuracy"]["lake20"]

and the Glyphs ProtoNet trained on longer on Glyphs drawn with a thinner pen
(``GlyphStyle(pen_radius=(0.45, 0.9), elastic=(0.05, 0.12))``), every image randomly mapped and
bent (``random_affine``, ``random_elastic``): no real data, and fewer errors on real handwriting::

    bent, info = pretrained_protonet(data="glyphs-augmented")
"""
from __future__ import annotations

from typing import Any

import torch.nn.functional as F

from ..algorithms.maml import MAML, accuracy
from ..algorithms.protonet import ProtoNet
from .checkpoint import CorruptCheckpointError, load_shipped

__all__ = ["PROTONET_GLYPHS", "MAML_GLYPHS", "MAML2_GLYPHS", "PROTONET_REAL", "PROTONET_GLYPHS_AUGMENTED",
           "pretrained_protonet", "pretrained_real_protonet", "pretrained_glyphs_maml"]

# File names of registry entries (metalearn_lite/checkpoints/registry.json: config, data, licence,
# metrics and the command that re-creates each).
PROTONET_GLYPHS = "protonet_glyphs_conv4.pt"
MAML_GLYPHS = "maml_glyphs_conv4_5w1s.pt"         # first order
MAML2_GLYPHS = "maml2nd_glyphs_conv4_5w1s.pt"     # second order
PROTONET_REAL = "protonet_glyphs_small1_conv4.pt"  # the augmented Glyphs ProtoNet fine-tuned on real small1 (+ Glyphs)
PROTONET_GLYPHS_AUGMENTED = "protonet_glyphs_augmented_conv4.pt"  # Glyphs only, random affine maps and bends
_PROTONET_BY_DATA = {"glyphs": PROTONET_GLYPHS, "omniglot-small1": PROTONET_REAL,
                     "glyphs-augmented": PROTONET_GLYPHS_AUGMENTED}


def _load(name: str, *needs: str):
    """The registry's network for ``name`` and its info; ``needs``: keys its recorded training
    config must hold (the wrapper's settings)."""
    model, info = load_shipped(name)  # checks the SHA-256 recorded in the registry
    missing = [k for k in needs if k not in info.get("config", {})]
    if missing:
        raise CorruptCheckpointError(f"{name} is not a reproduce_fewshot checkpoint: expected a Conv4 model and "
                                     f"a recorded training config with {missing}")
    return model, info


def pretrained_protonet(name: str = PROTONET_GLYPHS, *, data: str | None = None) -> tuple[ProtoNet, dict[str, Any]]:
    """The shipped Glyphs ProtoNet (Conv-4 embedding, squared Euclidean logits) in eval mode,
    and its recorded info (``config``, ``test_accuracy``, ``command``, timings).

    ``data="omniglot-small1"`` loads :data:`PROTONET_REAL` instead, ``data="glyphs-augmented"``
    :data:`PROTONET_GLYPHS_AUGMENTED` (``data="glyphs"`` the default); ``name`` picks another
    registry entry."""
    if data is not None:
        if data not in _PROTONET_BY_DATA:
            raise ValueError(f"data must be one of {sorted(_PROTONET_BY_DATA)}, got {data!r}")
        name = _PROTONET_BY_DATA[data]
    encoder, info = _load(name)
    net = ProtoNet(encoder, distance=info.get("config", {}).get("distance", "euclidean"))
    return net.eval(), info


def pretrained_real_protonet() -> tuple[ProtoNet, dict[str, Any]]:
    """The shipped ProtoNet for real handwriting: the mapped-and-bent Glyphs ProtoNet
    (:data:`PROTONET_GLYPHS_AUGMENTED`) fine-tuned on Omniglot's ``images_background_small1``
    (Korean, Latin, Balinese, Greek, Early_Aramaic; MIT licence), rotations as new classes,
    random affine maps and bends. Its info lists the alphabets it
    saw (``real_train_alphabets``) and its accuracy on ones it did not (``test_alphabets``:
    the other small set's katakana, Sanskrit, Tagalog), Lake's 20-way protocol included."""
    return pretrained_protonet(PROTONET_REAL)


def pretrained_glyphs_maml(name: str | None = None, *, first_order: bool = True) -> tuple[MAML, dict[str, Any]]:
    """A shipped 5-way Glyphs MAML: ``MAML(Conv4(num_classes=5), cross-entropy)`` with the
    inner learning rate, inner steps and order it was trained with, and its recorded info.
    Adapt at test with ``info["config"]["test_inner_steps"]`` steps.

    ``first_order=True`` (the default) loads :data:`MAML_GLYPHS`, ``False`` the second-order
    :data:`MAML2_GLYPHS`; ``name`` picks another registry entry instead.
    """
    if name is None:
        name = MAML_GLYPHS if first_order else MAML2_GLYPHS
    model, info = _load(name, "inner_lr", "train_inner_steps", "first_order")
    config = info["config"]
    maml = MAML(model, F.cross_entropy, inner_lr=config["inner_lr"], num_inner_steps=config["train_inner_steps"],
                first_order=config["first_order"], metric_fn=accuracy)
    return maml.eval(), info
