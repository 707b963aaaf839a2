"""bench/reproduce_fewshot.py's training loop: the learning-rate schedule follows the limit that ends the run;
--class-loss labels each image with its training class and changes the training; a saved checkpoint
records its augmentation and the checkpoint it continued."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "reproduce_fewshot.py"


def _bench():
    spec = importlib.util.spec_from_file_location("reproduce_fewshot", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module           # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_progress_follows_max_steps_when_it_ends_the_run_first():
    bench = _bench()
    seen = []
    steps, _, _ = bench._timed_loop(lambda step, progress: seen.append(progress), budget_s=3600,
                                    description="test", max_steps=8)
    assert steps == 8
    assert seen == pytest.approx([i / 8 for i in range(8)], abs=1e-3)   # (+ a tiny wall fraction)
    # so the step decay halves the rate at step 4 and quarters it at step 6 of 8
    assert [bench._lr_factor(p) for p in seen] == [1, 1, 1, 1, 0.5, 0.5, 0.25, 0.25]


def test_progress_follows_the_wall_budget_without_max_steps():
    bench = _bench()
    seen = []
    bench._timed_loop(lambda step, progress: seen.append(progress), budget_s=0.2, description="test")
    assert seen and seen == sorted(seen) and 0 <= seen[0] < seen[-1] < 1


def _coded(num_classes: int, num_drawers: int):
    """``[C, D, 1, 28, 28]`` class images whose pixel (0, 0) holds the class index."""
    import torch
    x = torch.rand(num_classes, num_drawers, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    x[:, :, 0, 0, 0] = torch.arange(num_classes, dtype=torch.float32)[:, None]
    return x


@pytest.mark.usefixtures("one_torch_thread")
def test_class_loss_labels_every_image_with_its_training_class():
    """--class-loss: the whole-class softmax's target is the class-images row each image came from."""
    import torch

    from metalearn_lite.data.episodes import EpisodeSampler
    from metalearn_lite.data.within_alphabet import WithinAlphabetSampler

    bench = _bench()
    data = _coded(12, 6)
    for sampler in (EpisodeSampler(data, 5, 2, 3, seed=1),
                    WithinAlphabetSampler(data, ["a"] * 6 + ["b"] * 6, 5, 1, 2, seed=2)):
        for _ in range(3):
            indices = sampler.sample_indices()
            episode = sampler.episode(indices)
            images = torch.cat([episode.support_x, episode.query_x])
            assert bench._episode_classes(indices, episode).tolist() == images[:, 0, 0, 0].long().tolist()
    # the centres start at each class's mean embedding over its first drawers
    flat = bench.ProtoNet(torch.nn.Flatten())
    centres = bench._class_centres(flat, data, drawers=4)
    assert centres.shape == (12, 784) and centres.requires_grad
    assert torch.allclose(centres, data[:, :4].flatten(2).mean(1))


@pytest.mark.usefixtures("one_torch_thread")
def test_class_loss_changes_the_training_and_only_the_encoder_is_kept():
    """Two seeded runs on the same episodes, with and without --class-loss: the whole-class term
    changes the weights, and the result is still a plain ProtoNet (the class centres are dropped)."""
    import argparse

    import torch

    bench = _bench()
    trained = {}
    for weight in (0.0, 1.0, -0.0):   # -0.0: the control again, to show the runs repeat exactly
        args = argparse.Namespace(protonet_train="5w1s", protonet_queries=2, seed=0, within_alphabet=0.0,
                                  init_from=None, affine=False, protonet_lr=1e-3, class_loss=weight,
                                  log_every=100, max_steps=2)
        torch.manual_seed(0)
        net, steps, _, _ = bench.train_protonet(_coded(8, 4), 60, args, lambda *_: None)
        assert steps == 2 and not net.training
        plain = bench.ProtoNet(bench.Conv4(num_classes=None))
        assert [n for n, _ in net.named_parameters()] == [n for n, _ in plain.named_parameters()]
        trained[str(weight)] = net.state_dict()
    assert all(torch.equal(trained["0.0"][k], trained["-0.0"][k]) for k in trained["0.0"])
    assert any(not torch.allclose(trained["0.0"][k], trained["1.0"][k]) for k in trained["0.0"])


def test_saved_glyphs_protonet_records_its_augmentation_and_where_it_started(tmp_path):
    """A Glyphs run's checkpoint states how its images were augmented and which checkpoint it
    continued (``--init-from``), with that one's own history, so a shipped model's entry needs
    no hand-written fields."""
    import argparse
    import json

    bench = _bench()
    start = tmp_path / "start"
    first = argparse.Namespace(threads=1, budget_minutes=0.1, episodes=10, protonet_train="5w1s", protonet_queries=2,
                               protonet_lr=1e-3, seed=0, class_loss=0.0, rotations="0", affine=False,
                               affine_degrees=15.0, elastic=0.0, init_from=None)
    run = bench.MethodRun("protonet", steps={"5w1s": 3}, models={0: bench.ProtoNet(bench.Conv4(num_classes=None))})
    bench.save_checkpoints([run], start, "glyphs", first, "python first", lambda *_: None)
    second = argparse.Namespace(**{**vars(first), "affine": True, "elastic": 0.08,
                                   "init_from": start / bench.PROTONET_CHECKPOINT})
    run.steps = {"5w1s": 7}
    bench.save_checkpoints([run], tmp_path / "next", "glyphs", second, "python second", lambda *_: None)
    first_meta = json.loads((start / (bench.PROTONET_CHECKPOINT + ".json")).read_text())["metadata"]
    meta = json.loads((tmp_path / "next" / (bench.PROTONET_CHECKPOINT + ".json")).read_text())["metadata"]
    assert "init" not in first_meta and first_meta["augmentation"]["elastic"] == 0.0
    assert meta["augmentation"] == {"rotations": "0", "affine": True, "affine_degrees": 15.0, "elastic": 0.08}
    digest = json.loads((start / (bench.PROTONET_CHECKPOINT + ".json")).read_text())["sha256"]
    assert meta["init"] == f"{bench.PROTONET_CHECKPOINT} (sha256 {digest[:12]}...)"
    assert meta["init_history"] == [{"command": "python first", "episodes": 3, "train_cpu_s": 0.0}]
    assert meta["config"]["train"]["episodes"] == 7 and "real_train_set" not in meta


@pytest.mark.usefixtures("one_torch_thread")
def test_mix_glyphs_draws_that_fraction_of_the_episodes_from_glyphs(monkeypatch):
    """--mix-glyphs P: about P of the training episodes come from the Glyphs images, the rest
    from the real set, seeded; without Glyphs images the option changes nothing."""
    import argparse

    import torch

    bench = _bench()
    drawn: list[str] = []
    real, glyphs = _coded(8, 4), _coded(8, 4) + 100.0       # told apart by their pixel values

    class Recording(bench.EpisodeSampler):
        def episode(self, indices):
            episode = super().episode(indices)
            drawn.append("glyphs" if float(episode.support_x.min()) >= 100 else "real")
            return episode

    monkeypatch.setattr(bench, "EpisodeSampler", Recording)
    args = argparse.Namespace(protonet_train="5w1s", protonet_queries=2, seed=0, within_alphabet=0.0,
                              init_from=None, affine=False, protonet_lr=1e-4, class_loss=0.0,
                              log_every=1000, max_steps=60, mix_glyphs=0.25)
    runs = []
    for mix in (glyphs, glyphs, None):
        drawn.clear()
        bench.train_protonet(real, 600, args, lambda *_: None, mix=mix)
        runs.append(list(drawn))
    assert len(runs[0]) == 60 and runs[0] == runs[1]                 # seeded
    assert 5 <= runs[0].count("glyphs") <= 25                        # about a quarter of 60
    assert runs[2] == ["real"] * 60


@pytest.mark.parametrize("argv, expected", [
    (["--mix-glyphs", "1.0", "--data", "small1"], r"--mix-glyphs must be a fraction in \[0, 1\), got 1.0"),
    (["--mix-glyphs", "0.3", "--data", "glyphs"], "--mix-glyphs mixes Glyphs episodes into real training"),
])
def test_mix_glyphs_refuses_what_it_cannot_do(argv, expected, capsys):
    import re

    with pytest.raises(SystemExit):
        _bench().main(["--methods", "protonet", *argv])
    assert re.search(expected, capsys.readouterr().err)
