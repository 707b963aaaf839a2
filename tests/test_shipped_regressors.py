"""The shipped regressors of chapters 04, 07 and 09 (``training.pretrained_np``): each loads with the
std floor it was trained with (0.1 for the chapter-04 CNP and latent NP, recorded 1e-3 for the others),
the GP transformer is trained (beats the shipped CNP, agrees with its registry entry), and a missing file's
error names the command that makes it."""
from __future__ import annotations

import pytest

from metalearn_lite.tasks import GPCurves

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def test_shipped_regressors_load_with_the_floor_they_were_trained_with():
    from metalearn_lite.training.pretrained_np import SHIPPED_REGRESSORS, pretrained_regressor
    for name in SHIPPED_REGRESSORS:
        model, info = pretrained_regressor(name)
        assert not model.training
        expected = info["config"].get("min_std", 0.1)
        assert model.min_std == expected
        assert (expected == 0.1) == (name in ("cnp_gp.pt", "latent_np_gp.pt")), (name, expected)
        assert info["command"].startswith(SHIPPED_REGRESSORS[name].split(" --")[0])


def test_shipped_gp_transformer_beats_the_shipped_cnp_and_matches_its_registry_entry():
    from metalearn_lite.training.pretrained_np import pretrained_regressor
    transformer, info = pretrained_regressor("transformer_gp.pt")
    cnp, _ = pretrained_regressor("cnp_gp.pt")
    gp = GPCurves()
    episode = gp.sample(200, num_context=10, num_extra_targets=20, generator=7)
    t, c, o = (float(m.mean()) for m in (transformer.log_likelihood(episode), cnp.log_likelihood(episode),
                                        gp.log_likelihood(episode)))
    assert t > c + 0.3 and t < o, (t, c, o)
    recorded = info["held_out_by_context"]["10"]["gap"]
    assert abs((o - t) - recorded) < 0.15, f"gap {o - t:.3f} here, the registry records {recorded}"


def test_pretrained_regressor_names_the_command_for_a_missing_file(tmp_path, monkeypatch):
    import shutil

    from metalearn_lite import checkpoints as checkpoints_module
    from metalearn_lite.training.checkpoint import CheckpointError, save_checkpoint
    from metalearn_lite.training.pretrained_np import pretrained_regressor
    shutil.copy(checkpoints_module.SHIPPED_DIR / "registry.json", tmp_path / "registry.json")  # no weights
    monkeypatch.setattr(checkpoints_module, "SHIPPED_DIR", tmp_path)
    with pytest.raises(CheckpointError, match=r"transformer_gp\.pt is missing.*bench/train_np\.py --model transformer"):
        pretrained_regressor("transformer_gp.pt")
    save_checkpoint(tmp_path / "odd.pt", {"weights": {}}, metadata={"command": "python bench/train_np.py"},
                    data="none", licence="none")
    with pytest.raises(CheckpointError, match="is not a regressor checkpoint"):
        pretrained_regressor("odd.pt")
    with pytest.raises(CheckpointError, match="known names: .*cnp_gp"):
        pretrained_regressor("no_such_model")
