"""Chapter 06's teacher's class view as a widget: a sorted heat map of predicted mastery, with flags.

``class_view_figure(view)`` draws an ``education.class_view.ClassView``: students (rows,
lowest predicted mastery at the top) x item groups, the cell colour the predicted mastery, the
number in each cell its SD; a marker column shows "intervene" (low) and "ask more"
(uncertain); the title lists the suggested next items per group.

``ClassViewWidget`` draws a class of students from a response matrix, gives each a few
random answers, and redraws as you change the number of answers, the flagged share, or the
class. ``last_state`` holds the numbers behind the picture.
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

from ..education.class_view import ClassView, class_view
from ..education.tutor import TutorModel
from .base import CourseWidget

__all__ = ["class_view_figure", "sample_class", "ClassViewWidget"]


def class_view_figure(view: ClassView, title: str | None = None):
    """A heat map of the class sorted by predicted mastery, with the flags and suggestions."""
    order = view.order
    num_students = len(order)
    num_groups = len(view.group_names)
    fig, (ax, ax_flag) = plt.subplots(1, 2, figsize=(2.2 + 1.3 * num_groups, 0.9 + 0.24 * num_students),
                                      gridspec_kw={"width_ratios": [num_groups + 1, 1.2]}, sharey=True,
                                      layout="constrained")
    data = np.column_stack([view.mastery[order], view.overall[order]])
    sds = np.column_stack([view.sd[order], view.overall_sd[order]])
    low, high = np.percentile(data, [2, 98])  # the class's range, for contrast
    image = ax.imshow(data, cmap="RdYlGn", vmin=np.floor(low * 20) / 20, vmax=np.ceil(high * 20) / 20, aspect="auto")
    for r in range(num_students):
        for c in range(data.shape[1]):
            ax.text(c, r, f"±{sds[r, c]:.2f}", ha="center", va="center", fontsize=6.5)
    ax.set_xticks(range(num_groups + 1), [*view.group_names, "all items"])
    labels = [f"{view.student_ids[i]} ({int(view.num_answers[i])}: {view.raw_score[i]:.0%})" for i in order]
    ax.set_yticks(range(num_students), labels, fontsize=7)
    ax.set_ylabel("student (answers: raw score), lowest predicted mastery first")
    ax.set_title(title or "predicted mastery (± SD)")
    fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02, label="predicted P(correct)")
    ax_flag.set_xlim(-0.5, 1.5)
    for r, i in enumerate(order):
        if view.low[i]:
            ax_flag.plot(0, r, "v", color="C3", ms=7)
        if view.uncertain[i]:
            ax_flag.plot(1, r, "o", color="C0", ms=6, mfc="none")
    ax_flag.set_xticks([0, 1], ["intervene", "ask more"], rotation=30, fontsize=8)
    ax_flag.set_title("flags", fontsize=9)
    ax_flag.grid(axis="y", alpha=0.2)
    cut = int(np.sum(view.overall <= view.cutoff)) - 0.5
    ax.axhline(cut, color="k", lw=1.2, ls="--")
    suggestions = "\n".join(f"{g}: {', '.join(items)}" for g, items in view.suggestions.items())
    fig.suptitle(f"next items for the flagged students\n{suggestions}", fontsize=8)
    return fig


def sample_class(correct: np.ndarray, class_size: int, num_answers: int, seed: int = 0):
    """A class from a response matrix [N, I] (0/1, NaN missing): ``class_size`` students, each with
    ``num_answers`` random observed items. Returns (rows [S], items [S, K], answers [S, K])."""
    correct = np.asarray(correct, dtype=np.float64)
    rng = np.random.default_rng(seed)
    observed = ~np.isnan(correct)
    eligible = np.flatnonzero(observed.sum(1) >= num_answers)
    rows = rng.choice(eligible, size=class_size, replace=False)
    scores = np.where(observed[rows], rng.random((class_size, correct.shape[1])), 2.0)
    items = np.argsort(scores, 1)[:, :num_answers]
    return rows, items, np.take_along_axis(correct[rows], items, 1)


class ClassViewWidget(CourseWidget):
    """Sliders for answers per student and flagged share, a "new class" button, and the heat map."""

    def __init__(self, tutor: TutorModel, correct: np.ndarray, class_size: int = 20, num_answers: int = 5,
                 low_fraction: float = 0.2, seed: int = 0):
        self.tutor = tutor
        self.correct = np.asarray(correct, dtype=np.float64)
        self.class_size = class_size
        self.seed = seed
        self.answers_slider = widgets.IntSlider(value=num_answers, min=1, max=40, description="answers each")
        self.fraction_slider = widgets.FloatSlider(value=low_fraction, min=0.1, max=0.4, step=0.05,
                                                   description="flag share")
        self.new_class = widgets.Button(description="new class")
        self.new_class.on_click(self._next_class)
        for control in (self.answers_slider, self.fraction_slider):
            control.observe(self.refresh, names="value")
        super().__init__([widgets.HBox([self.answers_slider, self.fraction_slider, self.new_class])])
        self.refresh()

    def _next_class(self, *_):
        self.seed += 1
        self.refresh()

    def compute(self) -> ClassView:
        rows, items, answers = sample_class(self.correct, self.class_size, self.answers_slider.value, self.seed)
        self.rows = rows
        return class_view(self.tutor, items, answers, low_fraction=self.fraction_slider.value,
                          student_ids=[f"#{r}" for r in rows])

    def draw(self):
        return class_view_figure(self.view)

    def refresh(self, *_) -> None:
        self.view = self.compute()
        v = self.view
        self.last_state = {"seed": self.seed, "num_answers": self.answers_slider.value,
                           "low": [v.student_ids[i] for i in v.order if v.low[i]],
                           "uncertain": [v.student_ids[i] for i in v.order if v.uncertain[i]],
                           "suggestions": v.suggestions, "cutoff": v.cutoff}
        super().refresh()
