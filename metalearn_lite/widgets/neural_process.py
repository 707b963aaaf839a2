"""Context explorer for neural processes (chapter 04).

Add or remove context points on one GP curve and watch each neural process's predictive
mean and +/- 2 std band next to the exact GP posterior's (the oracle), with the
log-likelihood per target point of each in the panel titles::

    from metalearn_lite.widgets.neural_process import ContextExplorer
    ContextExplorer({"CNP": cnp, "latent NP": latent_np}, GPCurves())

The curve is a pool of points drawn from ``gp``: the first ``n`` points are the context
``C`` (the slider sets ``n``), and every point of the pool is a target (targets include
the context, as in training). The widget only evaluates the given, already-trained
models (``CNP``/``LatentNP``) and ``gp.posterior``/``gp.log_likelihood``; it trains
nothing, so each redraw takes well under a second.
"""
from __future__ import annotations

from typing import Mapping

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import nn

from ..algorithms.neural_process import LatentNP
from ..tasks.episode import Episode
from ..tasks.gp import GPCurves
from .base import CourseWidget

__all__ = ["ContextExplorer", "ORACLE"]

ORACLE = "GP oracle"


def _named_models(models) -> dict[str, nn.Module]:
    if isinstance(models, nn.Module):
        models = [models]
    if isinstance(models, Mapping):
        named = dict(models)
    else:
        named = {}
        for model in models:
            name = "latent NP" if isinstance(model, LatentNP) else type(model).__name__
            named[name if name not in named else f"{name} {len(named)}"] = model
    if not named:
        raise ValueError("ContextExplorer needs at least one model, got none")
    for name, model in named.items():
        if not isinstance(model, nn.Module):
            raise TypeError(f"model {name!r} must be a CNP or LatentNP (an nn.Module), got {type(model).__name__}")
        if name == ORACLE:
            raise ValueError(f"{ORACLE!r} is reserved for the exact GP posterior; rename that model")
    return named


class ContextExplorer(CourseWidget):
    """Slide the number of context points; compare NPs with the exact GP posterior.

    Args:
        models: one trained ``CNP``/``LatentNP``, a list of them, or a ``{name: model}`` dict.
        gp: the task distribution the models were trained on (``GPCurves``); its
            ``posterior`` is the oracle.
        num_context: context points shown first (1..``max_context``).
        max_context: the slider's maximum (size of the pool of possible context points).
        num_extra_targets: targets besides the context points (all pool points are targets).
        seed: seed of the first curve; "new curve" moves to ``seed + 1``, ``seed + 2``, ...
        num_samples: draws of ``z ~ q(z | C)`` for a latent NP (fixed generator, so a
            redraw of the same state is identical).
        grid_size: points of the dense grid ``[1, grid_size, 1]`` the bands are drawn on.

    Controls: ``num_context`` (IntSlider), ``add_button``, ``remove_button``,
    ``new_curve_button``. ``last_state`` holds ``num_context``, ``curve_seed``,
    ``context_x`` (list), ``log_likelihood`` ``{name: float}`` per target point (models
    and ``"GP oracle"``) and ``gap`` ``{name: oracle - model}``.
    """

    def __init__(self, models, gp: GPCurves, num_context: int = 3, max_context: int = 30,
                 num_extra_targets: int = 40, seed: int = 0, num_samples: int = 32, grid_size: int = 200):
        if not isinstance(gp, GPCurves):
            raise TypeError(f"gp must be a GPCurves, got {type(gp).__name__}")
        if max_context < 1:
            raise ValueError(f"max_context must be >= 1, got {max_context}")
        if not 1 <= num_context <= max_context:
            raise ValueError(f"num_context must be in 1..max_context={max_context}, got {num_context}")
        if num_extra_targets < 0:
            raise ValueError(f"num_extra_targets must be >= 0, got {num_extra_targets}")
        self.models = _named_models(models)
        self.gp = gp
        self.max_context = max_context
        self.num_extra_targets = num_extra_targets
        self.num_samples = num_samples
        self.curve_seed = seed
        lo, hi = gp.x_range
        self.grid_x = torch.linspace(lo, hi, grid_size).reshape(1, grid_size, 1)
        self._sample_curve()

        self.num_context = widgets.IntSlider(value=num_context, min=1, max=max_context, step=1,
                                             description="context points", continuous_update=False,
                                             style={"description_width": "initial"})
        self.add_button = widgets.Button(description="add point", icon="plus")
        self.remove_button = widgets.Button(description="remove point", icon="minus")
        self.new_curve_button = widgets.Button(description="new curve", icon="refresh")
        self.num_context.observe(self.refresh, names="value")
        self.add_button.on_click(self.add_point)
        self.remove_button.on_click(self.remove_point)
        self.new_curve_button.on_click(self.new_curve)
        buttons = widgets.HBox([self.add_button, self.remove_button, self.new_curve_button])
        super().__init__([self.num_context, buttons])
        self.refresh()

    # ------------------------------------------------------------------ actions
    def add_point(self, *_) -> None:
        """One more context point (the next point of the curve's pool), up to ``max_context``."""
        self.num_context.value = min(self.num_context.value + 1, self.max_context)

    def remove_point(self, *_) -> None:
        """One context point fewer (the last one added), down to 1."""
        self.num_context.value = max(self.num_context.value - 1, 1)

    def new_curve(self, *_) -> None:
        """Draw the next curve (seed + 1) and redraw with the same number of context points."""
        self.curve_seed += 1
        self._sample_curve()
        self.refresh()

    def _sample_curve(self) -> None:
        pool = self.gp.sample(1, num_context=self.max_context, num_extra_targets=self.num_extra_targets,
                              generator=self.curve_seed)
        self.x, self.y = pool.query_x, pool.query_y          # [1, max_context + extra, 1]; context = first n

    # ------------------------------------------------------------------ numbers
    def episode(self) -> Episode:
        """The current task: first ``n`` pool points as context (support), all pool points as targets."""
        n = self.num_context.value
        return Episode(support_x=self.x[:, :n], support_y=self.y[:, :n], query_x=self.x, query_y=self.y,
                       batched=True)

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.curve_seed)

    def _log_likelihood(self, model: nn.Module, episode: Episode) -> float:
        if isinstance(model, LatentNP):
            return float(model.log_likelihood(episode, num_samples=self.num_samples, generator=self._generator())[0])
        return float(model.log_likelihood(episode)[0])

    def _predict(self, model: nn.Module, episode: Episode):
        if isinstance(model, LatentNP):
            pred = model(episode.support_x, episode.support_y, self.grid_x, num_samples=self.num_samples,
                         generator=self._generator())
        else:
            pred = model(episode.support_x, episode.support_y, self.grid_x)
        return pred.mean[0, :, 0], pred.std[0, :, 0]

    # ------------------------------------------------------------------ picture
    def draw(self) -> Figure:
        episode = self.episode()
        n = episode.support_x.shape[1]
        with torch.no_grad():
            oracle = self.gp.posterior(episode.support_x, episode.support_y, self.grid_x)
            o_mean, o_std = oracle.mean[0], oracle.std[0]
            lls = {name: self._log_likelihood(model, episode) for name, model in self.models.items()}
            lls[ORACLE] = float(self.gp.log_likelihood(episode)[0])
            preds = {name: self._predict(model, episode) for name, model in self.models.items()}
        preds[ORACLE] = (o_mean, o_std)
        self.last_state = {
            "num_context": int(n), "curve_seed": self.curve_seed,
            "context_x": [round(float(v), 6) for v in episode.support_x[0, :, 0]],
            "log_likelihood": lls,
            "gap": {name: lls[ORACLE] - ll for name, ll in lls.items() if name != ORACLE},
        }

        grid = self.grid_x[0, :, 0].numpy()
        panels = list(preds)
        fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels), 3.5), sharey=True, squeeze=False)
        colours = ["tab:blue", "tab:orange", "tab:purple", "tab:brown"]
        for i, (ax, name) in enumerate(zip(axes[0], panels)):
            mean, std = (t.numpy() for t in preds[name])
            colour = "tab:green" if name == ORACLE else colours[i % len(colours)]
            ax.fill_between(grid, mean - 2 * std, mean + 2 * std, color=colour, alpha=0.25,
                            label="mean +/- 2 std")
            ax.plot(grid, mean, color=colour, lw=2, label=f"{name} mean")
            if name != ORACLE:
                om, os_ = o_mean.numpy(), o_std.numpy()
                ax.plot(grid, om, "k--", lw=1, label=f"{ORACLE} mean +/- 2 std")
                ax.plot(grid, om - 2 * os_, "k:", lw=1)
                ax.plot(grid, om + 2 * os_, "k:", lw=1)
            k = self.num_context.value   # the curve's points in the context (a subclass may add others)
            ax.scatter(self.x[0, k:, 0], self.y[0, k:, 0], s=10, color="0.6", zorder=3, label="targets")
            ax.scatter(self.x[0, :k, 0], self.y[0, :k, 0], s=36, color="k", zorder=4, label="context")
            ax.set_title(f"{name}\nlog-lik per target point {lls[name]:.3f}")
            ax.set_xlabel("x")
            if i == 0:
                ax.set_ylabel("y")
                ax.legend(loc="lower left", fontsize=7)
        fig.suptitle(f"{n} context point{'s' if n != 1 else ''} (curve {self.curve_seed})", y=1.02)
        fig.tight_layout()
        return fig
