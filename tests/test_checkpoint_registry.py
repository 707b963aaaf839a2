"""One checkpoint format, one registry of shipped models, one reader (issue 19).

- every registry entry is complete (file, hash, size, class + config, data, licence, metrics,
  command), its file matches the recorded SHA-256 and size, and it loads through the one reader;
- ``save_checkpoint(path, model, config=...)`` / ``load_model(path)`` round-trip config and weights;
- the package opens checkpoint files in one module only: statically (no ``torch.load`` /
  ``np.load`` / ``pickle.load`` elsewhere, except the data-set caches listed below) and
  dynamically (loading every shipped model through every public loader calls them only there);
- the folder of shipped models is defined once;
- bad input names what was expected: an unknown name lists the known names, a missing or
  corrupt file names its path.
"""
from __future__ import annotations

import ast
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from metalearn_lite import checkpoints
from metalearn_lite.atomic import sha256_file
from metalearn_lite.checkpoints import (REGISTRY_FILE, SHIPPED_DIR, CheckpointError, CheckpointNotFoundError,
                                        CorruptCheckpointError, UnknownModelError, read_checkpoint, registry)
from metalearn_lite.models import MLP, Conv4
from metalearn_lite.training import checkpoint as training_checkpoint
from metalearn_lite.training.checkpoint import load_checkpoint, load_model, load_shipped, save_checkpoint

PACKAGE = Path(checkpoints.__file__).resolve().parents[1]
READER = Path(checkpoints.__file__).resolve()
REPO = PACKAGE.parent
ENTRIES = sorted(registry().items())
NAMES = [name for name, _ in ENTRIES]

# Modules that load *data sets* (not models) with numpy/torch: each caches or reads data files.
DATA_READERS = {
    "data/glyphs.py": "the generated Glyphs image cache (.npz)",
    "data/omniglot.py": "the Omniglot image cache (.npz)",
    "education/swesat.py": "SweSAT's response tensors inside the irtorch wheel",
}


# ----------------------------------------------------------------------------- the registry
def test_the_registry_lists_every_shipped_model():
    assert {"protonet_glyphs_conv4", "maml_glyphs_conv4_5w1s", "maml2nd_glyphs_conv4_5w1s",
            "protonet_glyphs_small1_conv4", "protonet_glyphs_augmented_conv4", "cnp_gp", "latent_np_gp",
            "attentive_np_gp", "transformer_gp",
            "transformer_sinusoid", "maml_sinusoid", "pretrained_sinusoid", "tutor_maml_swesat"} <= set(NAMES)
    files = {e["file"] for _, e in ENTRIES}
    on_disk = {p.name for p in SHIPPED_DIR.iterdir() if p.is_file() and p.name not in (REGISTRY_FILE, "__init__.py")}
    assert on_disk == files, f"files without an entry: {sorted(on_disk - files)}; entries without a file: {sorted(files - on_disk)}"


@pytest.mark.parametrize("name", NAMES)
def test_entry_is_complete_and_matches_its_file(name):
    e = registry()[name]
    needed = ("file", "sha256", "size", "data", "licence", "command") + (("metrics",) if e.get("model") else ())
    missing = [k for k in needed if not e.get(k)]
    assert not missing, (f"registry entry {name} lacks {missing}: add them to {REGISTRY_FILE} "
                         "(save_checkpoint(..., data=..., licence=...) sets them)")
    assert re.fullmatch(r"[0-9a-f]{64}", e["sha256"])
    path = SHIPPED_DIR / e["file"]
    assert path.stat().st_size == e["size"] and sha256_file(path) == e["sha256"], f"{path} does not match its entry"
    if e.get("model") is not None:
        assert set(e["model"]) <= {"class", "config", "weights"} and isinstance(e["model"]["config"], dict)
    # its commands run from a checkout: no path of the machine it was trained on
    leaked = re.findall(r"(?<![\w.])/(?:work|home|tmp|root|Users|mnt)/\S*", json.dumps(e))
    assert not leaked, f"registry entry {name} names paths of another machine: {leaked}"


@pytest.mark.parametrize("name", NAMES)
def test_every_entry_loads_through_the_one_reader(name, monkeypatch):
    calls = []
    real = checkpoints.read_checkpoint

    def spy(path, *args, **kwargs):
        calls.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(checkpoints, "read_checkpoint", spy)
    monkeypatch.setattr(training_checkpoint, "read_checkpoint", spy)
    e = registry()[name]
    model, info = load_model(name)
    assert calls == [e["file"]]
    spec = e.get("model")
    if spec is not None:
        assert type(model).__name__ == spec["class"]
        if spec["class"] == "TutorModel":
            assert (model.num_items, model.dim, model.num_inner_steps) == tuple(
                spec["config"][k] for k in ("num_items", "dim", "num_inner_steps"))
        else:
            assert not model.training
            # the one format: a file that carries its class and config agrees with the registry
            state = load_checkpoint(SHIPPED_DIR / e["file"])
            if "weights" not in spec:
                assert (state["model"], state["config"]) == (spec["class"], spec["config"])
    assert info["command"] == e["command"]
    for key, value in e["metrics"].items():
        assert info[key] == value


def test_file_names_and_registry_names_both_work():
    by_file, _ = load_model("cnp_gp.pt")
    by_name, _ = load_model("cnp_gp")
    by_path, _ = load_model(SHIPPED_DIR / "cnp_gp.pt")
    for other in (by_file, by_path):
        for (k, a), b in zip(by_name.state_dict().items(), other.state_dict().values()):
            assert torch.equal(a, b), k
    maml, _ = load_model("maml_sinusoid")        # two entries share maml_sinusoid.pt
    pretrained, _ = load_model("pretrained_sinusoid")
    raw = load_checkpoint(SHIPPED_DIR / "maml_sinusoid.pt")
    assert all(torch.equal(maml.state_dict()[k], v) for k, v in raw["maml"].items())
    assert all(torch.equal(pretrained.state_dict()[k], v) for k, v in raw["pretrained"].items())


# ----------------------------------------------------------------------------- the one format
def test_save_load_round_trip_keeps_config_and_weights(tmp_path):
    torch.manual_seed(0)
    for model, config in [(MLP(1, (7, 5), 2), {"in_features": 1, "hidden_sizes": [7, 5], "out_features": 2}),
                          (Conv4(num_classes=3, hidden=8), {"num_classes": 3, "hidden": 8})]:
        path = tmp_path / f"{type(model).__name__}.pt"
        digest = save_checkpoint(path, model, {"command": "python bench/x.py", "note": "test"}, config=config)
        sidecar = json.loads((tmp_path / f"{path.name}.json").read_text())
        assert sidecar["sha256"] == digest == sha256_file(path) and sidecar["size"] == path.stat().st_size
        state = torch.load(path, weights_only=True)
        assert (state["model"], state["config"]) == (type(model).__name__, config)
        loaded, info = load_model(path)
        assert type(loaded) is type(model) and not loaded.training
        assert info == {"command": "python bench/x.py", "note": "test"}
        assert loaded.state_dict().keys() == model.state_dict().keys()
        for key, value in model.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), key
    assert not list(tmp_path.glob(".*.part"))  # atomic writes left no temporary file


def test_save_checkpoint_refuses_a_model_without_a_config_that_rebuilds_it(tmp_path):
    with pytest.raises(TypeError, match="needs config=, the MLP constructor's keyword arguments"):
        save_checkpoint(tmp_path / "m.pt", MLP(1, (4,), 1))
    with pytest.raises(RuntimeError, match="size mismatch"):
        save_checkpoint(tmp_path / "m.pt", MLP(1, (4,), 1), config={"hidden_sizes": [5]})
    assert not (tmp_path / "m.pt").exists()


def test_save_into_the_shipped_folder_updates_its_registry_entry(tmp_path, monkeypatch):
    shutil.copy(SHIPPED_DIR / REGISTRY_FILE, tmp_path / REGISTRY_FILE)
    monkeypatch.setattr(checkpoints, "SHIPPED_DIR", tmp_path)
    model = MLP(1, (3,), 1)
    config = {"in_features": 1, "hidden_sizes": [3], "out_features": 1}
    digest = save_checkpoint(tmp_path / "cnp_gp.pt", model, {"command": "python bench/train_np.py --steps 1",
                                                              "held_out": {"model_ll": 1.0}, "seed": 3}, config=config)
    assert not (tmp_path / "cnp_gp.pt.json").exists()  # no sidecar: the registry is the one record
    e = checkpoints.entry("cnp_gp")
    assert (e["sha256"], e["size"]) == (digest, (tmp_path / "cnp_gp.pt").stat().st_size)
    assert e["model"] == {"class": "MLP", "config": config} and e["metrics"] == {"held_out": {"model_ll": 1.0}}
    assert e["metadata"] == {"seed": 3} and e["command"] == "python bench/train_np.py --steps 1"
    assert e["licence"] == registry()["cnp_gp"]["licence"]  # fields given once are kept
    loaded, info = load_model("cnp_gp")
    assert isinstance(loaded, MLP) and info["held_out"] == {"model_ll": 1.0}


def test_a_sidecar_in_the_shipped_folder_moves_into_the_registry(tmp_path, monkeypatch):
    outside = tmp_path / "run"
    save_checkpoint(outside / "snap.pt", {"steps": torch.arange(3)}, {"command": "python bench/x.py --snapshots"})
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    shutil.copy(SHIPPED_DIR / REGISTRY_FILE, shipped / REGISTRY_FILE)
    for name in ("snap.pt", "snap.pt.json"):
        shutil.copy(outside / name, shipped / name)
    monkeypatch.setattr(checkpoints, "SHIPPED_DIR", shipped)
    checkpoints.absorb_sidecar(shipped / "snap.pt", data="sinusoid tasks", licence="synthetic")
    assert not (shipped / "snap.pt.json").exists()
    e = checkpoints.entry("snap")
    assert (e["command"], e["data"], e["licence"], e["model"] if "model" in e else None) == (
        "python bench/x.py --snapshots", "sinusoid tasks", "synthetic", None)
    state, info = load_shipped("snap")  # no model: the raw dict, through the reader
    assert torch.equal(state["steps"], torch.arange(3)) and info["command"] == "python bench/x.py --snapshots"
    with pytest.raises(ValueError, match="not in the shipped folder"):
        checkpoints.absorb_sidecar(outside / "snap.pt")


# ----------------------------------------------------------------------------- one reader, one folder
def _calls(tree: ast.AST, names: set[str]) -> list[str]:
    """``module.load``-style calls in ``tree`` whose dotted name is in ``names``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
            dotted = f"{node.func.value.id}.{node.func.attr}"
            if dotted in names:
                found.append(f"{dotted} (line {node.lineno})")
        if isinstance(node, ast.ImportFrom) and node.module in ("torch", "numpy", "pickle"):
            found += [f"from {node.module} import load (line {node.lineno})" for a in node.names if a.name == "load"]
    return found


def test_the_package_reads_checkpoint_files_in_one_module_only():
    loaders = {"torch.load", "np.load", "numpy.load", "pickle.load", "pickle.loads"}
    offenders, data_readers = {}, set()
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        calls = _calls(ast.parse(path.read_text(encoding="utf-8")), loaders)
        if not calls or path.resolve() == READER:
            continue
        if rel in DATA_READERS:
            data_readers.add(rel)
            assert "checkpoint" not in path.read_text(encoding="utf-8").lower(), f"{rel} reads data, not checkpoints"
            continue
        offenders[rel] = calls
    assert not offenders, (f"checkpoint files are read only by {READER.relative_to(PACKAGE)} (read_checkpoint); "
                           f"these modules load files themselves: {offenders}")
    assert data_readers == set(DATA_READERS), "a listed data reader no longer loads files: drop it from the list"
    assert _calls(ast.parse(READER.read_text(encoding="utf-8")), loaders)  # the scan finds the reader's own calls


def test_every_public_loader_reads_through_the_one_reader(monkeypatch):
    """Loading every shipped model through every public loader calls torch.load / numpy.load only
    from the reader module."""
    callers = []
    real_torch_load, real_np_load = torch.load, np.load

    def where():
        return Path(sys._getframe(2).f_code.co_filename).resolve()  # the caller of torch.load / np.load

    def torch_load(*args, **kwargs):
        callers.append(where())
        return real_torch_load(*args, **kwargs)

    def np_load(*args, **kwargs):
        callers.append(where())
        return real_np_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", torch_load)
    monkeypatch.setattr(np, "load", np_load)
    from metalearn_lite.education.tutor import load_default_tutor
    from metalearn_lite.training.pretrained import pretrained_glyphs_maml, pretrained_protonet, pretrained_real_protonet
    from metalearn_lite.training.pretrained_np import SHIPPED_REGRESSORS, pretrained_regressor
    pretrained_protonet(), pretrained_real_protonet(), pretrained_glyphs_maml(), pretrained_glyphs_maml(first_order=False)
    for name in SHIPPED_REGRESSORS:
        pretrained_regressor(name)
    load_default_tutor()
    load_checkpoint(training_checkpoint.shipped_checkpoint("maml_sinusoid.pt"))  # chapters 02 and 09, as written
    for name in NAMES:
        load_shipped(name)
    assert len(callers) >= len(NAMES) + 8
    assert set(callers) == {READER}, f"files read outside {READER.name}: {sorted(set(callers) - {READER})}"


def test_the_shipped_folder_is_defined_once():
    """No module builds a path to ``checkpoints`` or ``shipped`` itself (``paths.checkpoint_dir`` is the
    user's own folder in the cache, not the shipped one); benches use ``SHIPPED_DIR`` too."""
    offenders = []
    for root in (PACKAGE, REPO / "bench"):
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.right, ast.Constant)
                        and node.right.value in ("checkpoints", "shipped") and rel != "metalearn_lite/paths.py"):
                    offenders.append(f"{rel}:{node.lineno}")
    assert not offenders, f"the shipped folder is metalearn_lite.checkpoints.SHIPPED_DIR; found others at {offenders}"
    from metalearn_lite.commands import info
    from metalearn_lite.education.tutor import default_tutor_model_path
    assert info.SHIPPED_CHECKPOINTS == training_checkpoint.SHIPPED_DIR == SHIPPED_DIR == READER.parent
    assert default_tutor_model_path().parent == SHIPPED_DIR


# ----------------------------------------------------------------------------- bad input
def test_an_unknown_name_lists_the_known_names():
    with pytest.raises(UnknownModelError, match=r"no shipped model named 'cnp'.*known names: .*cnp_gp.*tutor_maml_swesat"):
        load_model("cnp")
    with pytest.raises(CheckpointError, match="known names: .*transformer_gp"):
        checkpoints.entry("nope.pt")


def test_a_missing_or_corrupt_file_names_its_path(tmp_path, monkeypatch):
    with pytest.raises(CheckpointNotFoundError, match=re.escape(str(tmp_path / "absent.pt"))):
        load_model(tmp_path / "absent.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointNotFoundError, match=r"junk\.pt has no sidecar junk\.pt\.json"):
        read_checkpoint(junk)
    with pytest.raises(CorruptCheckpointError, match=re.escape(str(junk)) + r" is not a readable checkpoint: expected a torch\.save"):
        read_checkpoint(junk, sha256_file(junk))
    with pytest.raises(CorruptCheckpointError, match=r"expected a \.npz archive"):
        shutil.copy(junk, tmp_path / "junk.npz")
        read_checkpoint(tmp_path / "junk.npz", verify=False)
    save_checkpoint(tmp_path / "raw.pt", {"weights": {"w": torch.zeros(2)}})
    with pytest.raises(CorruptCheckpointError, match=r"raw\.pt is not in the checkpoint format: expected \{'model'"):
        load_model(tmp_path / "raw.pt")

    # a shipped file changed on disk: the registry's hash catches it, naming the path and the hash expected
    shutil.copy(SHIPPED_DIR / REGISTRY_FILE, tmp_path / REGISTRY_FILE)
    shutil.copy(SHIPPED_DIR / "cnp_gp.pt", tmp_path / "cnp_gp.pt")
    monkeypatch.setattr(checkpoints, "SHIPPED_DIR", tmp_path)
    with (tmp_path / "cnp_gp.pt").open("r+b") as handle:
        handle.seek(100)
        handle.write(b"\x00\x01")
    expected = registry()["cnp_gp"]["sha256"]
    with pytest.raises(CorruptCheckpointError, match=re.escape(str(tmp_path / "cnp_gp.pt")) + f".*expected {expected}"):
        load_model("cnp_gp")
    with pytest.raises(CheckpointNotFoundError, match=r"latent_np_gp\.pt is missing.*re-create it with `python bench/train_np\.py"):
        load_model("latent_np_gp")
