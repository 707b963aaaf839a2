"""The NP context explorer, driven without a browser: controls change the state and the plot."""
from __future__ import annotations

import base64

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from metalearn_lite import Episode  # noqa: E402
from metalearn_lite.algorithms import CNP, LatentNP  # noqa: E402
from metalearn_lite.tasks import GPCurves  # noqa: E402
from metalearn_lite.widgets.neural_process import ORACLE, ContextExplorer  # noqa: E402


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {"CNP": CNP(hidden=16, r_dim=16), "latent NP": LatentNP(hidden=16, r_dim=16, z_dim=4)}


@pytest.fixture(scope="module")
def gp():
    return GPCurves()


def _pool_episode(gp, seed, n, max_context=30, extra=40):
    pool = gp.sample(1, num_context=max_context, num_extra_targets=extra, generator=seed)
    return Episode(pool.query_x[:, :n], pool.query_y[:, :n], pool.query_x, pool.query_y, batched=True)


def test_state_matches_the_package_models_and_the_oracle(models, gp):
    w = ContextExplorer(models, gp, num_context=4, seed=3)
    state = w.last_state
    assert state["num_context"] == 4 and state["curve_seed"] == 3
    episode = _pool_episode(gp, 3, 4)
    assert state["context_x"] == [round(float(v), 6) for v in episode.support_x[0, :, 0]]
    assert state["log_likelihood"]["CNP"] == pytest.approx(float(models["CNP"].log_likelihood(episode)[0]), abs=1e-6)
    latent_ll = models["latent NP"].log_likelihood(episode, num_samples=32, generator=torch.Generator().manual_seed(3))
    assert state["log_likelihood"]["latent NP"] == pytest.approx(float(latent_ll[0]), abs=1e-6)
    assert state["log_likelihood"][ORACLE] == pytest.approx(float(gp.log_likelihood(episode)[0]), abs=1e-6)
    for name in models:
        assert state["gap"][name] == pytest.approx(state["log_likelihood"][ORACLE] - state["log_likelihood"][name])
    assert bytes(w.plot.value).startswith(b"\x89PNG")


def test_add_remove_and_slider_change_the_context_and_the_plot(models, gp):
    w = ContextExplorer(models, gp, num_context=3, max_context=12)
    png3, state3 = bytes(w.plot.value), w.last_state
    w.add_button.click()
    assert w.last_state["num_context"] == 4 and w.num_context.value == 4
    assert w.last_state["context_x"][:3] == state3["context_x"]          # the next point of the same curve
    assert bytes(w.plot.value) != png3
    w.remove_button.click()
    assert w.last_state["context_x"] == state3["context_x"]
    assert w.last_state["log_likelihood"] == state3["log_likelihood"]    # same state, same numbers

    w.num_context.value = 12
    oracle_12 = w.last_state["log_likelihood"][ORACLE]
    assert oracle_12 > state3["log_likelihood"][ORACLE]                   # the oracle gains from 9 more points
    w.add_button.click()                                                 # clamped at max_context
    assert w.num_context.value == 12
    w.num_context.value = 1
    w.remove_button.click()                                              # clamped at 1
    assert w.num_context.value == 1 and w.last_state["num_context"] == 1


def test_new_curve_changes_the_data_and_keeps_the_context_size(models, gp):
    w = ContextExplorer(models, gp, num_context=5, seed=0)
    before, png = w.last_state, bytes(w.plot.value)
    w.new_curve_button.click()
    after = w.last_state
    assert after["curve_seed"] == 1 and after["num_context"] == 5
    assert after["context_x"] != before["context_x"]
    assert bytes(w.plot.value) != png
    assert after["context_x"] == [round(float(v), 6) for v in _pool_episode(gp, 1, 5).support_x[0, :, 0]]


def test_redrawing_the_same_state_is_deterministic(models, gp):
    a = ContextExplorer(models, gp, num_context=6, seed=2)
    b = ContextExplorer(models, gp, num_context=6, seed=2)
    assert a.last_state == b.last_state


def test_a_single_model_and_the_static_fallback(gp):
    torch.manual_seed(1)
    w = ContextExplorer(CNP(hidden=8, r_dim=8), gp, num_context=2)
    assert set(w.last_state["log_likelihood"]) == {"CNP", ORACLE}
    bundle = w._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")


@pytest.mark.parametrize("kwargs, error, message", [
    ({"num_context": 0}, ValueError, "num_context must be in 1..max_context=30, got 0"),
    ({"num_context": 5, "max_context": 4}, ValueError, "num_context must be in 1..max_context=4, got 5"),
    ({"num_extra_targets": -1}, ValueError, "num_extra_targets must be >= 0, got -1"),
])
def test_bad_arguments_say_what_was_expected(models, gp, kwargs, error, message):
    with pytest.raises(error, match=message.replace(".", r"\.")):
        ContextExplorer(models, gp, **kwargs)


def test_bad_models_and_gp_are_refused(gp):
    with pytest.raises(TypeError, match="gp must be a GPCurves"):
        ContextExplorer(CNP(hidden=8, r_dim=8), "gp")
    with pytest.raises(ValueError, match="at least one model"):
        ContextExplorer({}, gp)
    with pytest.raises(TypeError, match="must be a CNP or LatentNP"):
        ContextExplorer({"mine": lambda *a: None}, gp)
    with pytest.raises(ValueError, match="reserved"):
        ContextExplorer({ORACLE: CNP(hidden=8, r_dim=8)}, gp)
