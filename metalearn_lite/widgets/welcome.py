"""The welcome chapter's demo widget (chapter 00): a learner is a mapping from a data set
to a predictor, and it needs data.

``SupportSizeWidget`` draws one sinusoid task, lets the student choose how many support
points ``K`` the learner sees (and the polynomial degree of the learner), fits the
polynomial by least squares (``fit_polynomial``: the learner), and plots the fitted curve
against the true function, with the support and query mean squared errors.
"""
from __future__ import annotations

from typing import Callable

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import Tensor

from ..tasks.sinusoid import SinusoidTasks, sinusoid
from .base import CourseWidget

__all__ = ["fit_polynomial", "SupportSizeWidget"]

Predictor = Callable[[Tensor], Tensor]


def _features(x: Tensor, degree: int, scale: float) -> Tensor:
    """``[n, 1] -> [n, degree + 1]``: powers of ``x / scale`` (scaled for a well-conditioned fit)."""
    return torch.cat([(x / scale) ** p for p in range(degree + 1)], dim=-1)


def fit_polynomial(support_x: Tensor, support_y: Tensor, degree: int = 1, scale: float = 5.0) -> Predictor:
    """A learner: the least-squares polynomial of ``degree`` through the support set.

    support_x: ``[K, 1]``, support_y: ``[K, 1]``. Returns a predictor mapping
    ``x [n, 1] -> y_hat [n, 1]``. With fewer points than coefficients (``K <= degree``)
    the minimum-norm solution is used (``torch.linalg.lstsq`` with the ``gelsd`` driver).
    """
    if support_x.dim() != 2 or support_x.shape[-1] != 1:
        raise ValueError(f"support_x must be [K, 1], got {list(support_x.shape)}")
    if support_y.shape != support_x.shape:
        raise ValueError(f"support_y must be [K, 1] like support_x {list(support_x.shape)}, "
                         f"got {list(support_y.shape)}")
    if not isinstance(degree, int) or degree < 0:
        raise ValueError(f"degree must be an int >= 0, got {degree!r}")
    design = _features(support_x.double(), degree, scale)
    coef = torch.linalg.lstsq(design, support_y.double(), driver="gelsd").solution  # [degree + 1, 1]

    def predict(x: Tensor) -> Tensor:
        return (_features(x.double(), degree, scale) @ coef).to(x.dtype)

    return predict


class SupportSizeWidget(CourseWidget):
    """Slide the number of support points ``K`` (and the degree) and watch the fit change.

    Args:
        seed: which sinusoid task (amplitude, phase and the order of its points).
        max_shots: the largest ``K`` on the slider.
        num_shots: initial ``K``; degree: initial polynomial degree.
        num_queries: query points used for the query MSE.

    Controls: ``self.shots`` (IntSlider, K), ``self.degree`` (IntSlider), ``self.resample``
    (Button: the next task). ``last_state`` holds ``seed``, ``num_shots``, ``degree``,
    ``support_mse``, ``query_mse``, ``amplitude``, ``phase``.
    """

    def __init__(self, seed: int = 0, max_shots: int = 20, num_shots: int = 2, degree: int = 3,
                 num_queries: int = 200):
        if not 1 <= num_shots <= max_shots:
            raise ValueError(f"num_shots must be in 1..{max_shots}, got {num_shots}")
        self.seed = seed
        self.max_shots = max_shots
        self.num_queries = num_queries
        self.shots = widgets.IntSlider(value=num_shots, min=1, max=max_shots, description="K (support)",
                                       continuous_update=False)
        self.degree = widgets.IntSlider(value=degree, min=0, max=7, description="degree",
                                        continuous_update=False)
        self.resample = widgets.Button(description="new task", icon="refresh")
        super().__init__([widgets.HBox([self.shots, self.degree, self.resample])])
        self._sample_task()
        self.shots.observe(self.refresh, names="value")
        self.degree.observe(self.refresh, names="value")
        self.resample.on_click(self._next_task)
        self.refresh()

    def _sample_task(self) -> None:
        # All max_shots support points are drawn once: K = 3 uses the first 3 of them, so
        # moving the slider adds points instead of drawing a new set.
        episode, (amplitude, phase) = SinusoidTasks().sample(
            1, self.max_shots, self.num_queries, generator=self.seed, return_params=True)
        self.task = episode[0]
        self.amplitude, self.phase = float(amplitude[0]), float(phase[0])

    def _next_task(self, *_) -> None:
        self.seed += 1
        self._sample_task()
        self.refresh()

    def draw(self) -> Figure:
        k, degree = int(self.shots.value), int(self.degree.value)
        sx, sy = self.task.support_x[:k], self.task.support_y[:k]
        qx, qy = self.task.query_x, self.task.query_y
        predictor = fit_polynomial(sx, sy, degree)
        support_mse = float(((predictor(sx) - sy) ** 2).mean())
        query_mse = float(((predictor(qx) - qy) ** 2).mean())
        self.last_state = {"seed": self.seed, "num_shots": k, "degree": degree, "support_mse": support_mse,
                           "query_mse": query_mse, "amplitude": self.amplitude, "phase": self.phase}

        grid = torch.linspace(-5, 5, 200).unsqueeze(-1)
        fig, ax = plt.subplots(figsize=(6.5, 3.6))
        ax.plot(grid[:, 0], sinusoid(grid, self.amplitude, self.phase)[:, 0], color="0.55", lw=1.5,
                ls="--", label="true function")
        ax.plot(grid[:, 0], predictor(grid)[:, 0], color="C0", lw=2, label=f"fitted (degree {degree})")
        ax.scatter(sx[:, 0], sy[:, 0], color="C3", zorder=3, s=30, label=f"support (K={k})")
        ax.set_ylim(-6, 6)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_title(f"learner(support set) -> predictor: support MSE {support_mse:.2f}, "
                     f"query MSE {query_mse:.2f}", fontsize=10)
        ax.legend(loc="upper right", fontsize=8)
        fig.tight_layout()
        return fig
