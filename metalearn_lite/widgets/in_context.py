"""In-context explorer (chapter 09): add context points and watch an in-context learner's
prediction and band update, next to the exact GP posterior's.

Chapter 04's ``ContextExplorer`` with two more ways to add context: pick a point ``(x, y)``
with two sliders and press "add my point" (your own data, not the curve's), or take the next
point of the curve with "add point" / the slider. Nothing is trained: each click is one forward
pass of each model (the transformer reads the new context; no gradient step), so a redraw takes
well under a second::

    from metalearn_lite.widgets.in_context import InContextExplorer
    InContextExplorer({"transformer": transformer, "attentive NP": anp}, GPCurves())

``last_state`` adds ``my_points`` (the ``(x, y)`` pairs you added) to chapter 04's keys; the
log-likelihoods are on the curve's pool of targets, with your points in the context.
"""
from __future__ import annotations

import ipywidgets as widgets
import torch

from ..tasks.episode import Episode
from ..tasks.gp import GPCurves
from .neural_process import ORACLE, ContextExplorer

__all__ = ["InContextExplorer", "ORACLE"]


class InContextExplorer(ContextExplorer):
    """``ContextExplorer`` plus your own context points.

    Args: as ``ContextExplorer``; ``max_my_points`` caps how many points you can add.

    Extra controls: ``x_slider``, ``y_slider`` (FloatSliders over the curve's x range and
    [-3, 3]), ``add_mine_button`` ("add my point"), ``clear_mine_button`` ("clear my points").
    """

    def __init__(self, models, gp: GPCurves, num_context: int = 3, max_context: int = 30,
                 num_extra_targets: int = 40, seed: int = 0, num_samples: int = 32, grid_size: int = 200,
                 max_my_points: int = 20):
        self.my_points: list[tuple[float, float]] = []
        self.max_my_points = max_my_points
        lo, hi = gp.x_range if isinstance(gp, GPCurves) else (-2.0, 2.0)
        self.x_slider = widgets.FloatSlider(value=0.0, min=lo, max=hi, step=0.05, description="my x",
                                            continuous_update=False)
        self.y_slider = widgets.FloatSlider(value=0.0, min=-3.0, max=3.0, step=0.05, description="my y",
                                            continuous_update=False)
        self.add_mine_button = widgets.Button(description="add my point", icon="plus-circle")
        self.clear_mine_button = widgets.Button(description="clear my points", icon="trash")
        super().__init__(models, gp, num_context=num_context, max_context=max_context,
                         num_extra_targets=num_extra_targets, seed=seed, num_samples=num_samples,
                         grid_size=grid_size)
        self.add_mine_button.on_click(self.add_my_point)
        self.clear_mine_button.on_click(self.clear_my_points)
        mine = widgets.HBox([self.x_slider, self.y_slider, self.add_mine_button, self.clear_mine_button])
        self.children = (self.children[0], self.children[1], mine, *self.children[2:])

    def add_my_point(self, *_) -> None:
        """Add ``(x_slider, y_slider)`` to the context (at most ``max_my_points``) and redraw."""
        if len(self.my_points) < self.max_my_points:
            self.my_points.append((float(self.x_slider.value), float(self.y_slider.value)))
        self.refresh()

    def clear_my_points(self, *_) -> None:
        """Remove every point you added and redraw."""
        self.my_points.clear()
        self.refresh()

    def new_curve(self, *_) -> None:
        """A new curve starts without your points (they belonged to the old one)."""
        self.my_points.clear()
        super().new_curve()

    def episode(self) -> Episode:
        """Context: the first ``n`` points of the curve, then your points; targets: the curve's pool."""
        base = super().episode()
        if not self.my_points:
            return base
        mine = torch.tensor(self.my_points, dtype=base.support_x.dtype).reshape(1, -1, 2)
        return Episode(support_x=torch.cat([base.support_x, mine[..., :1]], 1),
                       support_y=torch.cat([base.support_y, mine[..., 1:]], 1),
                       query_x=base.query_x, query_y=base.query_y, batched=True)

    def draw(self):
        fig = super().draw()
        self.last_state["my_points"] = [(round(x, 6), round(y, 6)) for x, y in self.my_points]
        if self.my_points:
            xs, ys = zip(*self.my_points)
            for ax in fig.axes:
                ax.scatter(xs, ys, s=70, marker="*", color="crimson", zorder=5, label="my points")
        return fig
