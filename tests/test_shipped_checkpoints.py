"""Checkpoints shipped in ``metalearn_lite/checkpoints/``: intact, loadable, and actually trained.

Every file there needs a registry entry (``registry.json``) whose SHA-256 and size match, must
load with ``weights_only=True`` into the model its entry names (strictly: no missing or extra
keys), and must name the command that produced it. The Glyphs Conv-4 checkpoints are
also tested on 20 Glyphs evaluation episodes: they must beat chance and the same network
freshly initialised by a clear margin (a checkpoint of untrained or mismatched weights fails).
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from metalearn_lite.algorithms.maml import MAML, accuracy
from metalearn_lite.algorithms.protonet import ProtoNet
from metalearn_lite.atomic import sha256_file
from metalearn_lite.checkpoints import REGISTRY_FILE, SHIPPED_DIR, registry
from metalearn_lite.models import Conv4
from metalearn_lite.training import load_checkpoint
from metalearn_lite.training.checkpoint import load_shipped, shipped_checkpoint
from metalearn_lite.training.pretrained import (MAML2_GLYPHS, MAML_GLYPHS, PROTONET_GLYPHS, pretrained_glyphs_maml,
                                                 pretrained_protonet)

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_BYTES = 1_000_000
NUM_EPISODES = 20

CHECKPOINTS = sorted(p for p in SHIPPED_DIR.glob("*") if p.is_file() and p.name not in (REGISTRY_FILE, "__init__.py"))
ENTRIES = sorted(registry().items())


def test_the_shipped_folder_holds_checkpoints():
    assert CHECKPOINTS, f"no checkpoints in {SHIPPED_DIR}"
    assert not [p.name for p in CHECKPOINTS if p.suffix == ".json"], "shipped files are recorded in registry.json, not sidecars"


@pytest.mark.parametrize("path", CHECKPOINTS, ids=lambda p: p.name)
def test_checkpoint_is_registered_with_its_hash_size_and_command(path):
    entries = [e for _, e in ENTRIES if e["file"] == path.name]
    assert entries, f"{path.name} is shipped but has no entry in {REGISTRY_FILE}"
    for info in entries:
        assert info["sha256"] == sha256_file(path), f"{path.name} does not match the hash in the registry"
        assert info["size"] == path.stat().st_size <= MAX_BYTES
        command = info["command"]
        script = re.match(r"python (bench/\S+\.py)", command)
        module = re.match(r"python -m (metalearn_lite\.\S+)", command)
        assert (script and (REPO_ROOT / script.group(1)).is_file()) or (
            module and (REPO_ROOT / (module.group(1).replace(".", "/") + ".py")).is_file()), \
            f"{path.name}: command {command!r} names no bench script or package module"
    assert shipped_checkpoint(path.name) == path


@pytest.mark.parametrize("name, info", ENTRIES, ids=[n for n, _ in ENTRIES])
def test_every_registry_entry_has_its_file(name, info):
    assert (SHIPPED_DIR / info["file"]).is_file(), f"registry entry {name} describes {info['file']}, which is not shipped"


@pytest.mark.parametrize("name", [n for n, e in ENTRIES if e["file"].endswith(".pt")])
def test_checkpoint_loads_weights_only_into_its_model(name):
    info = registry()[name]
    state = load_checkpoint(SHIPPED_DIR / info["file"])  # checks the hash, then torch.load(weights_only=True)
    weights = state[info["model"].get("weights", "state_dict")]
    model, _ = load_shipped(name)                         # the class and config the registry gives
    assert type(model).__name__ == info["model"]["class"]
    model.load_state_dict(weights, strict=True)
    for key, tensor in weights.items():
        if tensor.is_floating_point():
            assert tensor.dtype == torch.float32, f"{name}: {key} is {tensor.dtype}, ship float32"
        assert torch.isfinite(tensor.float()).all(), f"{name}: {key} has NaN or inf"
        assert torch.equal(model.state_dict()[key], tensor)


# ----------------------------------------------------------------------------- trained, not just loadable

def _glyphs_test_episodes(num_ways: int, num_shots: int):
    from metalearn_lite.data.episodes import EpisodeSampler
    from metalearn_lite.data.glyphs import Glyphs
    # Uses (or creates once, ~1-2 min) the Glyphs cache under $METALEARN_LITE_CACHE, shared with the notebooks.
    test = Glyphs(background=False, progress=False)
    return list(EpisodeSampler(test, num_ways, num_shots, 15, seed=123).episodes(NUM_EPISODES))


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def _agrees_with_registry(acc: float, metadata: dict) -> None:
    """The 5-way 1-shot accuracy the registry records (on other episodes) agrees with ``acc``."""
    recorded = metadata.get("test_accuracy", {}).get("5w1s")
    if recorded is not None:
        assert abs(acc - recorded["mean"]) < 0.1, f"measured {acc:.3f} here, the registry records {recorded}"


def test_protonet_checkpoint_beats_chance_and_an_untrained_network():
    if shipped_checkpoint(PROTONET_GLYPHS) is None:
        pytest.skip(f"{PROTONET_GLYPHS} is not shipped")
    trained, info = pretrained_protonet()   # the loader the chapters use
    episodes = _glyphs_test_episodes(5, 1)

    def mean_accuracy(net: ProtoNet) -> float:
        with torch.no_grad():
            return sum(float(net(e).accuracy) for e in episodes) / len(episodes)

    torch.manual_seed(0)
    untrained = ProtoNet(Conv4(**info["config"]["model_kwargs"]))
    acc, baseline = mean_accuracy(trained), mean_accuracy(untrained)
    assert acc > 0.75, f"trained ProtoNet scored {acc:.3f} on 5-way 1-shot (chance 0.2)"
    assert acc > baseline + 0.1, f"trained {acc:.3f} vs untrained {baseline:.3f}"
    _agrees_with_registry(acc, info)


@pytest.mark.parametrize("first_order, name", [(True, MAML_GLYPHS), (False, MAML2_GLYPHS)])
def test_maml_checkpoint_adapts_better_than_an_untrained_network(first_order, name):
    if shipped_checkpoint(name) is None:
        pytest.skip(f"{name} is not shipped")
    trained, info = pretrained_glyphs_maml(first_order=first_order)   # the loader the chapters use
    config = info["config"]
    assert config["first_order"] is first_order
    assert (trained.first_order, trained.num_inner_steps) == (config["first_order"], config["train_inner_steps"])
    episodes = _glyphs_test_episodes(5, 1)

    def mean_accuracy(maml: MAML) -> float:
        total = 0.0
        for e in episodes:
            adapted = maml.adapt(e.support_x, e.support_y, num_inner_steps=config["test_inner_steps"]).params
            with torch.no_grad():
                total += float(accuracy(maml(e.query_x, adapted), e.query_y))
        return total / len(episodes)

    torch.manual_seed(0)
    untrained = MAML(Conv4(**config["model_kwargs"]), F.cross_entropy, inner_lr=config["inner_lr"],
                     first_order=config["first_order"])
    acc, baseline = mean_accuracy(trained), mean_accuracy(untrained)
    assert acc > 0.5, f"adapted MAML scored {acc:.3f} on 5-way 1-shot (chance 0.2)"
    assert acc > baseline + 0.1, f"trained {acc:.3f} vs untrained {baseline:.3f}"
    _agrees_with_registry(acc, info)


def test_pretrained_loaders_say_what_is_missing_or_malformed(tmp_path, monkeypatch):
    from metalearn_lite import checkpoints as checkpoints_module
    from metalearn_lite.training.checkpoint import CheckpointError, save_checkpoint

    shutil.copy(SHIPPED_DIR / REGISTRY_FILE, tmp_path / REGISTRY_FILE)  # the registry without the weights
    monkeypatch.setattr(checkpoints_module, "SHIPPED_DIR", tmp_path)
    with pytest.raises(CheckpointError, match=r"protonet_glyphs_conv4\.pt is missing.*reproduce_fewshot\.py --methods protonet"):
        pretrained_protonet()
    save_checkpoint(tmp_path / MAML_GLYPHS, {"weights": {}}, metadata={"config": {}})  # updates the copied registry
    with pytest.raises(CheckpointError, match="expected the weights under 'state_dict'"):
        pretrained_glyphs_maml()
