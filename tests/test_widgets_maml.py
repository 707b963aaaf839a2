"""The chapter 02 widgets without a browser: build them, move the controls, check the numbers
behind the plot (``last_state``), the PNG and the static fallback."""
from __future__ import annotations

import base64
import math

import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn.functional as F

from metalearn_lite import Episode
from metalearn_lite.algorithms import MAML, inner_loop
from metalearn_lite.models import MLP, Conv4
from metalearn_lite.tasks import SinusoidTasks
from metalearn_lite.training import meta_train
from metalearn_lite.widgets.maml import InnerLoopExplorer, OuterLoopPlayer


@pytest.fixture(scope="module")
def trained():
    """A briefly meta-trained MLP with checkpoints, plus a random MLP (seeded)."""
    torch.manual_seed(0)
    tasks = SinusoidTasks()
    maml = MAML(MLP(1, (40, 40), 1), F.mse_loss, inner_lr=0.01, num_inner_steps=1)
    opt = torch.optim.Adam(maml.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    checkpoints = []

    def save(step, history):
        checkpoints.append((step, {k: v.detach().clone() for k, v in maml.params().items()}))

    history = meta_train(lambda step: maml.meta_loss(tasks.sample(10, 5, 5, generator=gen)).loss, opt, 150,
                         progress=False, callback=save, callback_every=30)
    random_model = MLP(1, (40, 40), 1)
    return tasks, maml, checkpoints, history, random_model


def _explorer(trained, **kwargs):
    tasks, maml, _, _, random_model = trained
    inits = {"MAML": (maml.model, maml.params()), "random": (random_model, dict(random_model.named_parameters()))}
    return InnerLoopExplorer(inits, tasks, num_tasks=2, **kwargs)


def test_inner_loop_explorer_steps_slider(trained):
    w = _explorer(trained)
    png0, state0 = bytes(w.plot.value), w.last_state
    assert png0.startswith(b"\x89PNG")
    assert state0["steps"] == 0 and state0["mode"] == "regression"
    w.steps.value = 5
    state5 = w.last_state
    assert state5["steps"] == 5 and bytes(w.plot.value) != png0
    for name in ("MAML", "random"):
        # gradient descent with a small alpha lowers the support loss
        assert state5[name]["support_loss"] < state0[name]["support_loss"]
        assert len(state5[name]["support_curve"]) == 11
        # the curves are the package's inner loop on this task, not something else
        episode = w.tasks[0].episode
        model, params = w.inits[name]
        ref = inner_loop(model, params, episode.support_x, episode.support_y, F.mse_loss, num_inner_steps=5,
                         inner_lr=0.01, trace=True)
        assert state5[name]["support_loss"] == pytest.approx(float(ref.losses[-1]), rel=1e-5)


def test_inner_loop_explorer_lr_and_tasks(trained):
    w = _explorer(trained)
    w.steps.value = 3
    slow = w.last_state["MAML"]["support_loss"]
    png = bytes(w.plot.value)
    w.inner_lr.value = 0.001
    assert w.last_state["inner_lr"] == pytest.approx(0.001)
    assert bytes(w.plot.value) != png
    # with a 10x smaller alpha, three steps move the support loss less
    start = w.last_state["MAML"]["support_curve"][0]
    assert abs(start - w.last_state["MAML"]["support_loss"]) < abs(start - slow)
    # a new task is added to the dropdown and shown
    w.new_task.click()
    assert len(w.tasks) == 3 and w.last_state["task"] == 2
    assert w.task_picker.value == 2
    w.task_picker.value = 0
    assert w.last_state["task"] == 0


def test_meta_learned_init_adapts_better_than_random(trained):
    """After meta-training, one step from theta beats one step from a random init (on average)."""
    tasks, maml, _, _, random_model = trained
    inits = {"MAML": (maml.model, maml.params()), "random": (random_model, dict(random_model.named_parameters()))}
    batch = tasks.sample(20, 5, 50, generator=123)
    w = InnerLoopExplorer(inits, [batch[i] for i in range(20)])
    assert w.new_task.disabled
    w.steps.value = 1
    maml_query, random_query = [], []
    for i in range(20):
        w.task_picker.value = i
        maml_query.append(w.last_state["MAML"]["query_loss"])
        random_query.append(w.last_state["random"]["query_loss"])
    assert sum(maml_query) < sum(random_query)


def test_inner_loop_explorer_classification():
    torch.manual_seed(0)
    model = Conv4(1, num_classes=3, hidden=8)
    x = torch.rand(3 * 2, 1, 28, 28)
    episode = Episode(support_x=x[:3], support_y=torch.arange(3), query_x=x[3:], query_y=torch.arange(3))
    w = InnerLoopExplorer({"random": (model, dict(model.named_parameters()))}, [episode], max_steps=3,
                          inner_lr=0.1)
    assert w.last_state["mode"] == "classification"
    w.steps.value = 3
    state = w.last_state["random"]
    assert 0.0 <= state["query_accuracy"] <= 1.0 and len(state["accuracy_curve"]) == 4
    assert state["support_loss"] < state["support_curve"][0]


def test_inner_loop_explorer_static_fallback(trained):
    w = _explorer(trained)
    bundle = w._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert base64.b64decode(bundle["image/png"]) == bytes(w.plot.value)


def test_inner_loop_explorer_rejects_bad_input(trained):
    with pytest.raises(ValueError, match="inits"):
        InnerLoopExplorer({}, SinusoidTasks())
    batch = SinusoidTasks().sample(2, 5, 5, generator=0)
    model = MLP()
    with pytest.raises(ValueError, match="batched"):
        InnerLoopExplorer({"m": (model, dict(model.named_parameters()))}, [batch])


def test_outer_loop_player(trained):
    tasks, maml, checkpoints, history, _ = trained
    p = OuterLoopPlayer(checkpoints, maml.model, tasks, history=history, num_eval_tasks=10)
    assert p.last_state["index"] == 0 and p.last_state["step"] == checkpoints[0][0]
    png0 = bytes(p.plot.value)
    p.step_button.click()
    assert p.last_state["index"] == 1 and p.last_state["step"] == checkpoints[1][0]
    assert bytes(p.plot.value) != png0
    p.index.value = len(checkpoints) - 1
    state = p.last_state
    # one inner step lowers the held-out query loss at every checkpoint, and meta-training
    # lowered the post-adaptation loss from the first checkpoint to the last
    assert all(post < pre for pre, post in zip(state["pre_adaptation_curve"], state["post_adaptation_curve"]))
    assert state["post_adaptation_curve"][-1] < state["post_adaptation_curve"][0]
    p.step_button.click()  # wraps around
    assert p.last_state["index"] == 0
    assert "image/png" in p._repr_mimebundle_()
    with pytest.raises(ValueError, match="checkpoints"):
        OuterLoopPlayer([], maml.model, tasks)


def test_inner_loop_explorer_says_when_a_large_alpha_diverges(trained):
    """With alpha = 1 the inner loop blows up: the state and the figure say where, no NaN is drawn."""
    tasks, maml, _, _, _ = trained
    w = InnerLoopExplorer({"MAML": (maml.model, maml.params())}, tasks, num_tasks=1, inner_lr=0.01)
    assert w.last_state["MAML"]["diverged_at"] is None
    w.inner_lr.value = 1.0
    w.steps.value = w.max_steps
    state = w.last_state["MAML"]
    step = state["diverged_at"]
    assert step is not None and 1 <= step <= w.max_steps
    losses = state["support_curve"][step], state["query_curve"][step]
    assert not all(math.isfinite(v) and v < 1e3 * max(state["support_curve"][0], state["query_curve"][0])
                   for v in losses)
    assert all(math.isfinite(v) for v in state["support_curve"][:step])
    fig = w.draw()
    left, right = fig.axes
    assert f"MAML diverged at step {step}" in right.get_title()
    assert any("diverged" in t.get_text() for t in left.get_legend().get_texts())
    for line in right.get_lines():
        assert all(math.isfinite(v) for v in line.get_ydata())
    plt.close(fig)


def test_outer_loop_player_replays_the_shipped_long_run_on_a_log_axis():
    """The shipped snapshots (0 .. 49,306 meta-steps): the held-out loss after one step falls far
    below predicting 0, the step axis is logarithmic, and every snapshot redraws."""
    from metalearn_lite.training.snapshots import shipped_sinusoid_snapshots

    snaps = shipped_sinusoid_snapshots()
    p = OuterLoopPlayer.from_snapshots(snaps, SinusoidTasks(), num_eval_tasks=20)
    state = p.last_state
    assert state["log_steps"] and state["steps"] == snaps.steps and state["step"] == 0
    fig = p.draw()
    assert [ax.get_xscale() for ax in fig.axes] == ["linear", "symlog", "symlog"]
    fig.canvas.draw()  # plain step labels, no mathtext to parse on every redraw
    labels = [t.get_text() for ax in fig.axes[1:] for t in ax.get_xticklabels() if t.get_text()]
    assert "10000" in labels and not any("$" in t for t in labels)
    plt.close(fig)
    png0 = bytes(p.plot.value)
    p.index.value = len(snaps.steps) - 1
    state = p.last_state
    assert state["step"] == snaps.steps[-1] and bytes(p.plot.value) != png0
    post, zero = state["post_adaptation_curve"], state["zero_prediction_loss"]
    assert post[0] > 0.6 * zero                  # the random init after one step: about as bad as predicting 0
    assert post[-1] < 0.3 * zero                 # the trained init after one step: far better
    assert len(p.history.steps) == len(snaps.steps) - 1   # a meta-loss per snapshot, none at step 0


def test_outer_loop_player_keeps_a_linear_axis_for_evenly_spaced_checkpoints(trained):
    tasks, maml, checkpoints, history, _ = trained
    p = OuterLoopPlayer(checkpoints, maml.model, tasks, history=history, num_eval_tasks=5)
    assert not p.last_state["log_steps"]
    assert p.last_state["zero_prediction_loss"] > 0
