"""The welcome widget (chapter 00), driven without a browser."""
from __future__ import annotations

import base64

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from metalearn_lite.tasks import SinusoidTasks, sinusoid  # noqa: E402
from metalearn_lite.widgets.welcome import SupportSizeWidget, fit_polynomial  # noqa: E402


def test_fit_polynomial_recovers_a_polynomial_and_interpolates():
    x = torch.linspace(-4, 4, 9).unsqueeze(-1)
    y = 0.5 - 2.0 * x + 0.25 * x**3
    predict = fit_polynomial(x, y, degree=3)
    grid = torch.linspace(-5, 5, 11).unsqueeze(-1)
    torch.testing.assert_close(predict(grid), 0.5 - 2.0 * grid + 0.25 * grid**3, atol=1e-4, rtol=0)
    # degree + 1 points: an exact interpolation of anything, e.g. a sine
    x4 = torch.tensor([[-3.0], [-1.0], [0.5], [2.0]])
    y4 = torch.sin(x4)
    torch.testing.assert_close(fit_polynomial(x4, y4, degree=3)(x4), y4, atol=1e-5, rtol=0)
    # degree 0 is the mean
    torch.testing.assert_close(fit_polynomial(x4, y4, degree=0)(x4), y4.mean().expand(4, 1), atol=1e-6, rtol=0)


def test_fit_polynomial_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"support_x must be \[K, 1\], got \[5\]"):
        fit_polynomial(torch.zeros(5), torch.zeros(5))
    with pytest.raises(ValueError, match="support_y must be"):
        fit_polynomial(torch.zeros(5, 1), torch.zeros(4, 1))


def test_widget_state_follows_the_sliders():
    w = SupportSizeWidget(seed=3, num_shots=2, degree=3)
    first_png = bytes(w.plot.value)
    assert first_png.startswith(b"\x89PNG")
    state = dict(w.last_state)
    assert state["num_shots"] == 2 and state["degree"] == 3
    # K=2 <= degree: the fit passes through both support points, but generalises badly
    assert state["support_mse"] < 1e-8

    # the widget's numbers are those of the package's task and the learner
    episode, (amp, phase) = SinusoidTasks().sample(1, w.max_shots, w.num_queries, generator=3, return_params=True)
    assert state["amplitude"] == pytest.approx(float(amp[0]))
    predictor = fit_polynomial(episode.support_x[0, :2], episode.support_y[0, :2], 3)
    expected_query = float(((predictor(episode.query_x[0]) - episode.query_y[0]) ** 2).mean())
    assert state["query_mse"] == pytest.approx(expected_query, rel=1e-6)

    w.shots.value = 20
    after = dict(w.last_state)
    assert after["num_shots"] == 20
    assert after["support_mse"] > 1e-6          # 20 points no longer fit exactly by a cubic
    assert after["query_mse"] < state["query_mse"]  # more support data, better predictor
    assert bytes(w.plot.value) != first_png

    png_20 = bytes(w.plot.value)
    w.degree.value = 6
    assert w.last_state["degree"] == 6
    assert w.last_state["support_mse"] <= after["support_mse"] + 1e-9  # a richer learner fits the support better
    assert bytes(w.plot.value) != png_20


def test_new_task_button_changes_the_task_and_static_fallback():
    w = SupportSizeWidget(seed=0)
    before = dict(w.last_state)
    w.resample.click()
    assert w.last_state["seed"] == 1
    assert w.last_state["amplitude"] != before["amplitude"]
    bundle = w._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"]) == bytes(w.plot.value)


def test_widget_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_shots must be in 1..20, got 0"):
        SupportSizeWidget(num_shots=0)


def test_true_function_is_the_package_sinusoid():
    # the plotted dashed curve uses the package's sinusoid with the task's parameters
    w = SupportSizeWidget(seed=5, num_shots=20)
    x = w.task.support_x
    torch.testing.assert_close(sinusoid(x, w.amplitude, w.phase), w.task.support_y, atol=1e-5, rtol=0)


def test_a_failed_redraw_shows_under_the_plot_and_a_good_one_clears_it():
    """An error in a control's callback reaches JupyterLab's log console only; the widget says
    so itself (escaped), still raises, keeps the last good plot, and clears the message after."""
    w = SupportSizeWidget(seed=3, num_shots=2, degree=3)
    good_png, original_draw = bytes(w.plot.value), w.draw

    def broken_draw():
        raise RuntimeError("shapes <[3]> and [4] differ")

    w.draw = broken_draw
    with pytest.raises(RuntimeError, match="differ"):
        w.refresh()
    assert "could not be redrawn: RuntimeError: shapes &lt;[3]&gt; and [4] differ (in thread MainThread)" in w.status.value
    assert bytes(w.plot.value) == good_png and w.status in w.children
    w.draw = original_draw
    w.refresh()
    assert w.status.value == ""
