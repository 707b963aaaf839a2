"""Adaptive-testing widget for chapter 6: answer items with buttons, watch the estimates move.

The learner answers the recommended item ("correct" / "wrong"); after each answer the widget
shows the ability posterior on a grid (with its mean, the EAP estimate, and SD), the predicted
mastery (mean predicted P(correct) over the item bank, per part when parts are given) and the
next recommended item (maximum Fisher information at the EAP among unanswered items).

``AdaptiveTester`` holds the state and draws a static matplotlib figure (``figure()``), so it
works without a front end (a script, a terminal); ``AdaptivePracticeWidget`` wraps it in
ipywidgets 8 (buttons + an ``Image`` of the same figure, via ``base.CourseWidget``, which
also attaches a static PNG for renderings without widget state). ``show()`` returns the
widget inside IPython and the static figure otherwise.
"""
from __future__ import annotations

from typing import Sequence

import ipywidgets as widgets
import torch

from ..education import irt
from .base import CourseWidget

__all__ = ["AdaptiveTester", "AdaptivePracticeWidget", "show"]


class AdaptiveTester:
    """State of one adaptive test under a fitted 2PL.

    Args:
        a, b: [num_items] 2PL discriminations and difficulties.
        prior_mean, prior_sd: ability prior (use the fitted scale: ``TwoPL.prior_mean/prior_sd``).
        item_names: optional names, length num_items.
        parts: optional part label per item (e.g. "quant"/"verbal") for per-part mastery.
    """

    def __init__(self, a: torch.Tensor, b: torch.Tensor, prior_mean: float = 0.0, prior_sd: float = 1.0,
                 item_names: Sequence[str] | None = None, parts: Sequence[str] | None = None):
        if a.dim() != 1 or a.shape != b.shape:
            raise ValueError(f"a and b must both be [num_items], got {list(a.shape)} and {list(b.shape)}")
        self.a, self.b = a.double(), b.double()
        n = a.shape[0]
        self.item_names = list(item_names) if item_names is not None else [f"item {i}" for i in range(n)]
        self.parts = list(parts) if parts is not None else None
        for name, seq in (("item_names", self.item_names), ("parts", self.parts)):
            if seq is not None and len(seq) != n:
                raise ValueError(f"{name} must have length num_items = {n}, got {len(seq)}")
        self.grid = irt.ability_grid(prior_mean, prior_sd)
        self.prior = irt.normal_prior(self.grid, prior_mean, prior_sd)
        self.reset()

    # state ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget all answers."""
        self.items: list[int] = []
        self.answers: list[float] = []
        self.history: list[tuple[float, float]] = [self.ability()]

    def posterior(self) -> torch.Tensor:
        """[G] ability posterior given the answers so far."""
        items = torch.tensor([self.items], dtype=torch.long).reshape(1, -1)
        answers = torch.tensor([self.answers], dtype=torch.float64).reshape(1, -1)
        return irt.ability_posterior(self.a, self.b, items, answers, self.grid, self.prior)[0]

    def ability(self) -> tuple[float, float]:
        """(EAP ability, posterior SD)."""
        mean, sd = irt.posterior_mean_sd(self.posterior().unsqueeze(0), self.grid)
        return mean.item(), sd.item()

    def predicted(self) -> torch.Tensor:
        """[num_items] posterior-predictive P(correct) on every item."""
        return irt.predict_proba(self.a, self.b, self.posterior().unsqueeze(0), self.grid)[0]

    def mastery(self) -> dict[str, float]:
        """Predicted mastery: mean P(correct) over all items, and per part if parts were given."""
        p = self.predicted()
        out = {"all items": p.mean().item()}
        if self.parts is not None:
            for part in dict.fromkeys(self.parts):
                idx = [i for i, q in enumerate(self.parts) if q == part]
                out[part] = p[idx].mean().item()
        return out

    def next_item(self) -> int:
        """The unanswered item with maximum Fisher information at the EAP (-1 when all are answered)."""
        available = torch.ones(1, self.a.shape[0], dtype=torch.bool)
        if self.items:
            available[0, self.items] = False
        theta = torch.tensor([self.ability()[0]], dtype=torch.float64)
        return int(irt.select_max_information(self.a, self.b, theta, available)[0])

    def answer(self, correct: bool, item: int | None = None) -> int:
        """Record an answer to ``item`` (default: the recommended one); returns the next item."""
        item = self.next_item() if item is None else int(item)
        if item < 0:
            raise ValueError("every item has been answered; call reset()")
        if item in self.items:
            raise ValueError(f"item {item} ({self.item_names[item]}) was already answered")
        self.items.append(item)
        self.answers.append(1.0 if correct else 0.0)
        self.history.append(self.ability())
        return self.next_item()

    def summary(self) -> str:
        """One line: answers, ability, mastery, next item (rounded, for printing)."""
        mean, sd = self.ability()
        nxt = self.next_item()
        mastery = ", ".join(f"{k} {v:.2f}" for k, v in self.mastery().items())
        nxt_name = self.item_names[nxt] if nxt >= 0 else "none"
        return (f"{len(self.items)} answers ({int(sum(self.answers))} correct); ability {mean:+.2f} ± {sd:.2f}; "
                f"predicted mastery: {mastery}; next item: {nxt_name}")

    # drawing ----------------------------------------------------------------------------
    def figure(self):
        """A static matplotlib figure of the current state (posterior, item predictions, history)."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(11, 3.2))
        ax1, ax2, ax3 = fig.subplots(1, 3)
        post = self.posterior()
        mean, sd = self.ability()
        ax1.plot(self.grid.numpy(), self.prior.numpy(), color="0.6", ls="--", label="prior")
        ax1.plot(self.grid.numpy(), post.numpy(), color="C0", label="posterior")
        ax1.axvline(mean, color="C3", lw=1, label=f"EAP {mean:+.2f}")
        ax1.set_xlabel("ability θ")
        ax1.set_ylabel("probability (grid weight)")
        ax1.set_title(f"ability after {len(self.items)} answers")
        ax1.legend(fontsize=7)
        p = self.predicted().numpy()
        order = torch.argsort(self.b).numpy()
        ax2.plot(range(len(p)), p[order], color="C0", lw=1)
        nxt = self.next_item()
        rank = {int(item): r for r, item in enumerate(order)}
        for item, y in zip(self.items, self.answers):
            ax2.scatter(rank[item], p[item], color="C2" if y else "C3", s=18, zorder=3)
        if nxt >= 0:
            ax2.scatter(rank[nxt], p[nxt], marker="*", color="C1", s=90, zorder=4, label=f"next: {self.item_names[nxt]}")
            ax2.legend(fontsize=7, loc="upper right")
        ax2.set_ylim(0, 1)
        ax2.set_xlabel("items, easy → hard")
        ax2.set_ylabel("predicted P(correct)")
        ax2.set_title(f"predicted mastery {self.mastery()['all items']:.2f}")
        hist = torch.tensor(self.history)
        steps = range(len(self.history))
        ax3.plot(steps, hist[:, 0].numpy(), color="C0", marker="o", ms=3)
        ax3.fill_between(steps, (hist[:, 0] - hist[:, 1]).numpy(), (hist[:, 0] + hist[:, 1]).numpy(), alpha=0.2)
        ax3.set_xlabel("answers given")
        ax3.set_ylabel("EAP ability ± SD")
        ax3.set_title("estimate so far")
        fig.tight_layout()
        return fig



class AdaptivePracticeWidget(CourseWidget):
    """ipywidgets 8 UI around an ``AdaptiveTester``: the recommended item, buttons
    (correct / wrong / reset) and the figure; a static PNG where no front end is attached
    (``CourseWidget``).

    ``last_state`` holds the numbers behind the picture: answers, ability, sd, mastery,
    next_item.
    """

    def __init__(self, tester: AdaptiveTester):
        self.tester = tester
        self.label = widgets.HTML()
        self.buttons = {
            "correct": widgets.Button(description="✓ correct", button_style="success"),
            "wrong": widgets.Button(description="✗ wrong", button_style="danger"),
            "reset": widgets.Button(description="reset"),
        }
        self.buttons["correct"].on_click(lambda _b: self.answer(True))
        self.buttons["wrong"].on_click(lambda _b: self.answer(False))
        self.buttons["reset"].on_click(lambda _b: self.reset())
        super().__init__([self.label, widgets.HBox(list(self.buttons.values()))])
        self.refresh()

    def answer(self, correct: bool) -> None:
        """Answer the recommended item (what the buttons do)."""
        self.tester.answer(correct)
        self.refresh()

    def reset(self) -> None:
        self.tester.reset()
        self.refresh()

    def draw(self):
        return self.tester.figure()

    def refresh(self, *_) -> None:
        t = self.tester
        nxt = t.next_item()
        mean, sd = t.ability()
        self.last_state = {"answers": list(t.answers), "ability": mean, "sd": sd, "mastery": t.mastery(),
                           "next_item": nxt}
        self.label.value = (f"<b>Next recommended item:</b> {t.item_names[nxt] if nxt >= 0 else 'none'}"
                            f"<br>{t.summary()}")
        self.buttons["correct"].disabled = self.buttons["wrong"].disabled = nxt < 0
        super().refresh()


def show(tester: AdaptiveTester):
    """The widget (a Jupyter front end shows it live, static renderings show its PNG); outside
    IPython, the static figure."""
    try:
        from IPython import get_ipython
    except ImportError:
        return tester.figure()
    if get_ipython() is None:
        return tester.figure()
    return AdaptivePracticeWidget(tester)
