"""Chapter 09's in-context explorer, driven without a browser: your own points join the context,
each click is a forward pass (the numbers equal the models' and the oracle's on that context),
and clearing or a new curve removes them."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from metalearn_lite import Episode  # noqa: E402
from metalearn_lite.algorithms import AttentiveNP, InContextRegressor  # noqa: E402
from metalearn_lite.tasks import GPCurves  # noqa: E402
from metalearn_lite.widgets.in_context import ORACLE, InContextExplorer  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {"transformer": InContextRegressor(d_model=16, num_heads=2, num_layers=1, dim_feedforward=16),
            "attentive NP": AttentiveNP(hidden=16, r_dim=16, num_heads=2, latent_path=False, min_std=1e-3)}


def test_my_points_join_the_context_and_the_numbers_follow(models):
    gp = GPCurves()
    w = InContextExplorer(models, gp, num_context=3, max_context=10, seed=4)
    before, png = w.last_state, bytes(w.plot.value)
    assert before["my_points"] == [] and before["num_context"] == 3
    w.x_slider.value, w.y_slider.value = 0.5, 1.25
    w.add_mine_button.click()
    after = w.last_state
    assert after["my_points"] == [(0.5, 1.25)] and after["num_context"] == 4
    assert after["context_x"] == before["context_x"] + [0.5]
    assert bytes(w.plot.value) != png

    pool = gp.sample(1, num_context=10, num_extra_targets=40, generator=4)
    cx = torch.cat([pool.query_x[:, :3], torch.tensor([[[0.5]]])], 1)
    cy = torch.cat([pool.query_y[:, :3], torch.tensor([[[1.25]]])], 1)
    episode = Episode(cx, cy, pool.query_x, pool.query_y, batched=True)
    for name, model in models.items():
        assert after["log_likelihood"][name] == pytest.approx(float(model.log_likelihood(episode)[0]), abs=1e-5)
    assert after["log_likelihood"][ORACLE] == pytest.approx(float(gp.log_likelihood(episode)[0]), abs=1e-5)
    assert after["log_likelihood"][ORACLE] != pytest.approx(before["log_likelihood"][ORACLE])

    w.add_button.click()                              # the curve's next point goes before my points
    assert w.last_state["num_context"] == 5 and w.last_state["context_x"][-1] == 0.5
    w.clear_mine_button.click()
    assert w.last_state["my_points"] == [] and w.last_state["num_context"] == 4


def test_my_points_are_capped_and_a_new_curve_drops_them(models):
    w = InContextExplorer(models, GPCurves(), num_context=2, max_my_points=2)
    for _ in range(3):
        w.add_mine_button.click()
    assert len(w.last_state["my_points"]) == 2
    w.new_curve_button.click()
    assert w.last_state["my_points"] == [] and w.last_state["curve_seed"] == 1 and w.last_state["num_context"] == 2
