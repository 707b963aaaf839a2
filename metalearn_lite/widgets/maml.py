"""MAML widgets (chapter 02): drive the inner loop and replay the outer loop.

- ``InnerLoopExplorer``: pick a task, slide the number of inner steps (0..10) and the
  inner learning rate ``alpha``; see each initialisation's adapted function against the
  true sinusoid and its support/query loss after every step (or, for classification
  episodes, the query accuracy).
- ``OuterLoopPlayer``: slide (or play) through meta-training checkpoints ``theta_t``;
  see the initialisation's function, its post-adaptation query loss and the meta-loss
  curve evolve.

Both run the package's ``inner_loop`` / ``meta_loss`` (nothing is re-implemented) on
already-trained parameters; the inner loop is run once per (task, alpha) and cached, so
moving the steps slider only redraws.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
from matplotlib import ticker
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn
from torch.func import functional_call

from ..algorithms.maml import accuracy, inner_loop, meta_loss
from ..tasks.episode import Episode
from ..tasks.sinusoid import SinusoidTasks, sinusoid
from ..training.history import History
from .base import CourseWidget

__all__ = ["InnerLoopExplorer", "OuterLoopPlayer"]

Params = dict[str, Tensor]
COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange")


DIVERGENCE_FACTOR = 1e3


def _diverged_at(support: Sequence[float], query: Sequence[float]) -> int | None:
    """First step where either loss is not finite or exceeds ``DIVERGENCE_FACTOR`` x its start."""
    limit = DIVERGENCE_FACTOR * max(support[0], query[0])
    for step, losses in enumerate(zip(support, query)):
        if not all(math.isfinite(v) and v <= limit for v in losses):
            return step
    return None


def _as_params(params: Mapping[str, Tensor]) -> Params:
    return {k: v.detach().clone() for k, v in params.items()}


def _plain_log_ticks(ax) -> None:
    """Plain numbers on a log axis (no mathtext: it doubled the redraw time)."""
    ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())


class _SinusoidTask:
    """One regression task: a batched-free episode plus its amplitude and phase (or ``None``)."""

    def __init__(self, episode: Episode, amplitude: float | None = None, phase: float | None = None):
        self.episode = episode
        self.amplitude = amplitude
        self.phase = phase


class InnerLoopExplorer(CourseWidget):
    """Adapt several initialisations to one task and compare them step by step.

    Args:
        inits: name -> ``(model, params)``, e.g. ``{"MAML": (mlp, maml_params),
            "pretrained": (mlp2, pre_params)}``; ``params`` is a dict name -> tensor.
        tasks: a ``SinusoidTasks`` (regression: the true curve is drawn, "new task" samples
            another), a list of single ``Episode``s, or an object with ``sample() -> Episode``
            (e.g. an ``EpisodeSampler``: classification, query accuracy is shown).
            Regression episodes: ``support_x/support_y [K, 1]``, ``query_x/query_y [Q, 1]``;
            classification: ``support_x [N*K, C, H, W]``, ``support_y [N*K]``.
        num_tasks: how many tasks to draw up front for the dropdown (sampled tasks only).
        num_shots: K support points per sinusoid task; num_queries: query points.
        inner_lr: the starting value of the ``alpha`` slider.
        max_steps: the steps slider's range ``0..max_steps``.
        loss_fn: default ``F.mse_loss`` for regression, ``F.cross_entropy`` for classification.
        seed: seeds the task draws.

    ``last_state`` holds, for the current control values: ``task``, ``steps``, ``inner_lr``,
    ``mode`` ("regression"/"classification") and per init name ``support_loss``,
    ``query_loss``, (classification) ``query_accuracy`` after ``steps`` steps, the full
    curves ``support_curve`` / ``query_curve`` / ``accuracy_curve`` over 0..max_steps, and
    ``diverged_at``: the first step whose support or query loss is not finite or above
    ``DIVERGENCE_FACTOR`` times the larger starting loss (``None`` if none). The figure
    stops each curve there and says so, instead of silently dropping NaN points.
    """

    def __init__(self, inits: Mapping[str, tuple[nn.Module, Mapping[str, Tensor]]], tasks: Any, *,
                 num_tasks: int = 5, num_shots: int = 5, num_queries: int = 50, inner_lr: float = 0.01,
                 max_steps: int = 10, loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None, seed: int = 0):
        if not inits:
            raise ValueError("inits must name at least one (model, params) pair, got an empty mapping")
        self.inits = {name: (model, _as_params(params)) for name, (model, params) in inits.items()}
        self.source = tasks
        self.num_shots, self.num_queries, self.max_steps = num_shots, num_queries, max_steps
        self._generator = torch.Generator().manual_seed(seed)
        self.tasks: list[_SinusoidTask] = []
        if isinstance(tasks, SinusoidTasks) or hasattr(tasks, "sample"):
            for _ in range(num_tasks):
                self.tasks.append(self._draw())
        else:
            self.tasks = [_SinusoidTask(ep) for ep in tasks]
            if not self.tasks:
                raise ValueError("tasks must hold at least one Episode, got none")
        first = self.tasks[0].episode
        if first.batched:
            raise ValueError("tasks must be single episodes, got a batched one (index it: batch[i])")
        self.classification = first.support_y.dtype in (torch.int64, torch.int32) and first.support_y.dim() == 1
        self.loss_fn = loss_fn or (F.cross_entropy if self.classification else F.mse_loss)
        self._cache: dict[tuple[int, float], dict[str, dict[str, list[float] | list[Params]]]] = {}

        self.task_picker = widgets.Dropdown(options=self._task_options(), value=0, description="task")
        self.new_task = widgets.Button(description="new task", icon="refresh",
                                       disabled=not hasattr(tasks, "sample"))
        self.steps = widgets.IntSlider(value=0, min=0, max=max_steps, description="inner steps",
                                       continuous_update=False)
        self.inner_lr = widgets.FloatLogSlider(value=inner_lr, base=10, min=-3, max=0, step=0.1,
                                               description="alpha", readout_format=".3f", continuous_update=False)
        for control in (self.task_picker, self.steps, self.inner_lr):
            control.observe(self.refresh, names="value")
        self.new_task.on_click(self._on_new_task)
        super().__init__([widgets.HBox([self.task_picker, self.new_task]), widgets.HBox([self.steps, self.inner_lr])])
        self.refresh()

    # -- tasks ---------------------------------------------------------------------------
    def _draw(self) -> _SinusoidTask:
        if isinstance(self.source, SinusoidTasks):
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self._generator))
            batch, (amplitude, phase) = self.source.sample(1, self.num_shots, self.num_queries, generator=seed,
                                                           return_params=True)
            return _SinusoidTask(batch[0], float(amplitude[0]), float(phase[0]))
        return _SinusoidTask(self.source.sample())

    def _task_options(self) -> list[tuple[str, int]]:
        options = []
        for i, task in enumerate(self.tasks):
            label = f"task {i + 1}"
            if task.amplitude is not None:
                label += f" (A={task.amplitude:.2f}, phi={task.phase:.2f})"
            options.append((label, i))
        return options

    def _on_new_task(self, *_) -> None:
        self.tasks.append(self._draw())
        self.task_picker.options = self._task_options()
        self.task_picker.value = len(self.tasks) - 1  # triggers refresh

    # -- computation (the package's inner loop, cached per task and alpha) --------------
    def _curves(self, task_index: int, inner_lr: float) -> dict:
        key = (task_index, round(float(inner_lr), 8))
        if key not in self._cache:
            episode = self.tasks[task_index].episode
            out = {}
            for name, (model, params) in self.inits.items():
                with torch.no_grad():
                    result = inner_loop(model, params, episode.support_x, episode.support_y, self.loss_fn,
                                        num_inner_steps=self.max_steps, inner_lr=float(inner_lr), trace=True)
                    query_loss, query_acc = [], []
                    for theta in result.params_trace:
                        predictions = functional_call(model, theta, (episode.query_x,))
                        query_loss.append(float(self.loss_fn(predictions, episode.query_y)))
                        if self.classification:
                            query_acc.append(float(accuracy(predictions, episode.query_y)))
                out[name] = {"support": [float(v) for v in result.losses], "query": query_loss,
                             "accuracy": query_acc, "trace": result.params_trace}
            self._cache[key] = out
        return self._cache[key]

    # -- drawing ------------------------------------------------------------------------
    def draw(self) -> Figure:
        index, steps, lr = int(self.task_picker.value), int(self.steps.value), float(self.inner_lr.value)
        curves = self._curves(index, lr)
        task = self.tasks[index]
        episode = task.episode
        state: dict[str, Any] = {"task": index, "steps": steps, "inner_lr": lr,
                                 "mode": "classification" if self.classification else "regression"}
        diverged = {name: _diverged_at(c["support"], c["query"]) for name, c in curves.items()}
        for name, c in curves.items():
            state[name] = {"support_loss": c["support"][steps], "query_loss": c["query"][steps],
                           "support_curve": list(c["support"]), "query_curve": list(c["query"]),
                           "diverged_at": diverged[name]}
            if self.classification:
                state[name]["query_accuracy"] = c["accuracy"][steps]
                state[name]["accuracy_curve"] = list(c["accuracy"])
        self.last_state = state

        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
        x_axis = range(self.max_steps + 1)
        if self.classification:
            for colour, (name, c) in zip(COLOURS, curves.items()):
                left.plot(x_axis, [100 * a for a in c["accuracy"]], "o-", color=colour, label=name)
            left.axvline(steps, color="grey", lw=1, ls=":")
            left.set(xlabel="inner steps", ylabel="query accuracy (%)", ylim=(0, 102),
                     title=f"task {index + 1}: {episode.num_ways}-way {episode.num_shots}-shot")
        else:
            lo = float(episode.query_x.min().clamp(max=-5.0))
            hi = float(episode.query_x.max().clamp(min=5.0))
            grid = torch.linspace(lo, hi, 200).unsqueeze(-1)
            if task.amplitude is not None:
                left.plot(grid.squeeze(-1), sinusoid(grid, task.amplitude, task.phase).squeeze(-1), color="black",
                          lw=2, label="true function")
            with torch.no_grad():
                for colour, (name, (model, params)) in zip(COLOURS, self.inits.items()):
                    theta0 = curves[name]["trace"][0]
                    theta = curves[name]["trace"][steps]
                    left.plot(grid.squeeze(-1), functional_call(model, theta0, (grid,)).squeeze(-1), color=colour,
                              ls=":", lw=1, label=f"{name}, 0 steps")
                    if diverged[name] is not None and steps >= diverged[name]:
                        left.plot([], [], color=colour, lw=2, label=f"{name}, {steps} steps: diverged")
                        continue
                    left.plot(grid.squeeze(-1), functional_call(model, theta, (grid,)).squeeze(-1), color=colour,
                              lw=2, label=f"{name}, {steps} step{'s' if steps != 1 else ''}")
            left.scatter(episode.support_x.squeeze(-1), episode.support_y.squeeze(-1), marker="^", s=60,
                         color="black", zorder=5, label=f"support (K={episode.support_x.shape[0]})")
            title = f"task {index + 1}"
            if task.amplitude is not None:
                title += f": A={task.amplitude:.2f}, phi={task.phase:.2f}"
            left.set(xlabel="x", ylabel="y", title=title)
            left.legend(fontsize=7, loc="upper right")
        notes = []
        for colour, (name, c) in zip(COLOURS, curves.items()):
            end = len(c["support"]) if diverged[name] is None else diverged[name]
            right.plot(x_axis[:end], c["support"][:end], "o-", color=colour, label=f"{name}: support")
            right.plot(x_axis[:end], c["query"][:end], "s--", color=colour, label=f"{name}: query")
            if diverged[name] is not None:
                right.axvline(diverged[name], color=colour, lw=1, ls="-.")
                notes.append(f"{name} diverged at step {diverged[name]}")
        right.axvline(steps, color="grey", lw=1, ls=":")
        title = f"loss after each step (alpha={lr:.3f})"
        if notes:
            title += "\n" + "; ".join(notes) + ": alpha too large for it"
        right.set(xlabel="inner steps", ylabel="loss (log scale)", yscale="log", title=title)
        _plain_log_ticks(right)
        right.legend(fontsize=7)
        fig.tight_layout()
        return fig


class OuterLoopPlayer(CourseWidget):
    """Replay meta-training: the initialisation ``theta_t`` at each saved checkpoint.

    Args:
        checkpoints: ``[(step, params), ...]`` in training order (e.g. saved by
            ``meta_train(..., callback=, callback_every=)``).
        model: the network the params belong to (evaluated with ``functional_call``).
        tasks: a ``SinusoidTasks``; ``num_eval_tasks`` tasks (K=``num_shots`` support,
            ``num_queries`` query points) are drawn once and reused for every checkpoint.
        history: the training ``History`` (its ``"loss"`` is the meta-loss curve), optional.
        inner_lr, num_inner_steps: ``alpha`` and the inner steps used to adapt.
        seed: seeds the evaluation tasks.
        log_steps: meta-steps on a log axis (symlog, so step 0 shows); ``None``: when the
            checkpoints span more than two factors of ten (log-spaced snapshots).

    Panels: the initialisation's function and its adapted function on one example task;
    the mean query loss before and after adaptation at every checkpoint, next to the loss of
    predicting 0 everywhere; the meta-loss. ``from_snapshots`` replays a snapshots file
    (``metalearn_lite.training.snapshots``, e.g. the shipped 49,306-step sinusoid run).
    ``last_state``: ``index``, ``step``, ``pre_adaptation_loss``, ``post_adaptation_loss``
    (means over the evaluation tasks at this checkpoint), ``zero_prediction_loss`` and the
    full per-checkpoint lists.
    """

    def __init__(self, checkpoints: Sequence[tuple[int, Mapping[str, Tensor]]], model: nn.Module,
                 tasks: SinusoidTasks, *, history: History | None = None, inner_lr: float = 0.01,
                 num_inner_steps: int = 1, num_shots: int = 5, num_queries: int = 50, num_eval_tasks: int = 25,
                 loss_fn: Callable[[Tensor, Tensor], Tensor] = F.mse_loss, seed: int = 0,
                 log_steps: bool | None = None):
        if not checkpoints:
            raise ValueError("checkpoints must hold at least one (step, params) pair, got none")
        self.checkpoints = [(int(step), _as_params(params)) for step, params in checkpoints]
        steps = [s for s, _ in self.checkpoints]
        if log_steps is None:
            positive = [s for s in steps if s > 0]
            log_steps = bool(positive) and max(positive) >= 100 * min(positive)
        self.log_steps = bool(log_steps)
        self.model, self.history, self.loss_fn = model, history, loss_fn
        self.inner_lr_value, self.num_inner_steps = float(inner_lr), int(num_inner_steps)
        self.eval_batch, (amplitude, phase) = tasks.sample(num_eval_tasks, num_shots, num_queries, generator=seed,
                                                           return_params=True)
        self.example = (self.eval_batch[0], float(amplitude[0]), float(phase[0]))
        query_y = self.eval_batch.query_y
        self.zero_loss = float(torch.stack([loss_fn(torch.zeros_like(y), y) for y in query_y]).mean())
        self.pre_losses, self.post_losses = [], []
        for _, params in self.checkpoints:
            with torch.no_grad():
                for steps, out in ((0, self.pre_losses), (self.num_inner_steps, self.post_losses)):
                    result = meta_loss(model, params, self.eval_batch, loss_fn, num_inner_steps=steps,
                                       inner_lr=self.inner_lr_value, strategy="loop")
                    out.append(float(result.loss))

        self.index = widgets.IntSlider(value=0, min=0, max=len(self.checkpoints) - 1, description="checkpoint",
                                       continuous_update=False)
        self.play = widgets.Play(value=0, min=0, max=len(self.checkpoints) - 1, interval=700, description="play")
        widgets.jslink((self.play, "value"), (self.index, "value"))
        self.step_button = widgets.Button(description="step", icon="step-forward")
        self.step_button.on_click(self._on_step)
        self.index.observe(self.refresh, names="value")
        super().__init__([widgets.HBox([self.play, self.step_button, self.index])])
        self.refresh()

    @classmethod
    def from_snapshots(cls, snapshots: Any, tasks: SinusoidTasks, **kwargs: Any) -> "OuterLoopPlayer":
        """Replay a ``Snapshots`` (``metalearn_lite.training.snapshots``): its theta at each saved
        step, its model shape, ``inner_lr`` and K from its config, and its meta-losses as history."""
        history = History()
        for step, value in zip(snapshots.steps, snapshots.meta_loss):
            if math.isfinite(value):
                history.log(step, loss=value)
        run = snapshots.run
        kwargs.setdefault("inner_lr", run.get("inner_lr", 0.01))
        kwargs.setdefault("num_shots", run.get("num_shots", 5))
        kwargs.setdefault("history", history)
        return cls(snapshots.checkpoints, snapshots.model(), tasks, **kwargs)

    def _on_step(self, *_) -> None:
        self.index.value = (self.index.value + 1) % len(self.checkpoints)

    def _step_axis(self, ax, steps: Sequence[int], limits: bool = True) -> None:
        if self.log_steps:
            ax.set_xscale("symlog", linthresh=1)
            # Plain tick labels (1, 10, 100): the default ones are mathtext ("$10^{2}$"), and
            # parsing them made a redraw fail now and then in CI ("ParseException ... at char 0",
            # on the main thread, cause not found); no mathtext, no parse.
            ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
            ax.xaxis.set_minor_formatter(ticker.NullFormatter())
            ax.set_xlim(min(min(steps), 0) - 0.5, max(steps) * 1.5)
            ax.set_xlabel("meta-step (log scale; 0 = random init)")
        else:
            if limits:
                ax.set_xlim(min(steps) - 1, max(steps) + 1)
            ax.set_xlabel("meta-step")

    def draw(self) -> Figure:
        i = int(self.index.value)
        step, params = self.checkpoints[i]
        episode, amplitude, phase = self.example
        with torch.no_grad():
            adapted = inner_loop(self.model, params, episode.support_x, episode.support_y, self.loss_fn,
                                 num_inner_steps=self.num_inner_steps, inner_lr=self.inner_lr_value).params
        steps = [s for s, _ in self.checkpoints]
        self.last_state = {"index": i, "step": step, "pre_adaptation_loss": self.pre_losses[i],
                           "post_adaptation_loss": self.post_losses[i], "steps": steps,
                           "zero_prediction_loss": self.zero_loss, "log_steps": self.log_steps,
                           "pre_adaptation_curve": list(self.pre_losses), "post_adaptation_curve": list(self.post_losses)}

        fig, (left, middle, right) = plt.subplots(1, 3, figsize=(13, 3.8))
        grid = torch.linspace(-5, 5, 200).unsqueeze(-1)
        with torch.no_grad():
            left.plot(grid.squeeze(-1), sinusoid(grid, amplitude, phase).squeeze(-1), color="black", lw=2,
                      label="true function")
            left.plot(grid.squeeze(-1), functional_call(self.model, params, (grid,)).squeeze(-1), color="tab:red",
                      ls=":", label="initialisation theta")
            left.plot(grid.squeeze(-1), functional_call(self.model, adapted, (grid,)).squeeze(-1), color="tab:red",
                      lw=2, label=f"after {self.num_inner_steps} step(s)")
        left.scatter(episode.support_x.squeeze(-1), episode.support_y.squeeze(-1), marker="^", color="black",
                     zorder=5, label="support")
        left.set(xlabel="x", ylabel="y", title=f"meta-step {step}: an example task", ylim=(-6, 6))
        left.legend(fontsize=7, loc="upper right")

        middle.plot(steps[:i + 1], self.pre_losses[:i + 1], "o:", color="grey", label="before adaptation")
        middle.plot(steps[:i + 1], self.post_losses[:i + 1], "o-", color="tab:red",
                    label=f"after {self.num_inner_steps} step(s)")
        middle.axhline(self.zero_loss, color="black", lw=1, ls="--", label="predicting 0 everywhere")
        top = max(self.zero_loss, *self.pre_losses, *self.post_losses)
        middle.set(ylabel="query loss (mean over tasks)", ylim=(0, 1.08 * top) if math.isfinite(top) else None,
                   title=f"{self.eval_batch.support_x.shape[0]} held-out tasks")
        self._step_axis(middle, steps)
        middle.legend(fontsize=7)

        if self.history is not None and self.history.steps:
            losses = torch.tensor(self.history["loss"])
            window = max(1, min(25, len(losses) // 10)) if len(losses) >= 100 else 1
            smooth = torch.nn.functional.avg_pool1d(losses[None, None], window, stride=1).flatten().tolist()
            if window > 1:   # few points (snapshots): the line up to this step is the data itself
                right.plot(self.history.steps, losses.tolist(), color="lightgrey", lw=0.8, label="per batch")
            shown = [(s, v) for s, v in zip(self.history.steps[window - 1:], smooth) if s <= step]
            if shown:
                right.plot(*zip(*shown), color="tab:blue", lw=1.5,
                           label=f"moving mean of {window}" if window > 1 else "at each snapshot, up to this one")
            right.axvline(step, color="tab:red", lw=1, ls=":")
            if right.get_legend_handles_labels()[0]:
                right.legend(fontsize=7)
        right.set(ylabel="meta-loss (training batch)", title="outer loop")
        self._step_axis(right, steps, limits=False)
        fig.tight_layout()
        return fig
