"""Evaluation over many test episodes, reported as mean and 95% confidence interval.

The protocol of the few-shot literature (chapter 01): at least 600 test episodes,
``mean +/- 1.96 * std / sqrt(n)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import torch
from tqdm.auto import tqdm

from ..tasks.episode import Episode

__all__ = ["EvalResult", "mean_confidence_interval", "evaluate"]


@dataclass(frozen=True)
class EvalResult:
    """``mean`` and the 95% CI half-width ``ci95`` of ``values`` (one per episode)."""

    mean: float
    ci95: float
    values: tuple[float, ...]

    @property
    def num_episodes(self) -> int:
        return len(self.values)

    def __str__(self) -> str:
        return f"{self.mean:.4f} +/- {self.ci95:.4f} (95% CI, {self.num_episodes} episodes)"

    def percent(self) -> str:
        """Formatted as a percentage, e.g. ``'97.12 +/- 0.31 %'``."""
        return f"{100 * self.mean:.2f} +/- {100 * self.ci95:.2f} %"


def mean_confidence_interval(values: Sequence[float], z: float = 1.96) -> EvalResult:
    """Mean and normal-approximation 95% CI half-width (``z * sample std / sqrt(n)``)."""
    values = tuple(float(v) for v in values)
    n = len(values)
    if n == 0:
        raise ValueError("need at least one value to compute a mean")
    mean = sum(values) / n
    if n == 1:
        return EvalResult(mean, float("nan"), values)
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return EvalResult(mean, z * math.sqrt(var / n), values)


def evaluate(metric_fn: Callable[[Episode], float | torch.Tensor], episodes: Iterable[Episode],
             num_episodes: int | None = None, progress: bool = True, description: str = "evaluating") -> EvalResult:
    """Apply ``metric_fn`` to each episode and summarise (mean, 95% CI).

    ``episodes`` is any iterable of single episodes (e.g. a sampler); ``num_episodes``
    stops after that many. A batched episode counts as its tasks.
    """
    values: list[float] = []
    bar = tqdm(total=num_episodes, desc=description, disable=not progress, leave=False)
    for episode in episodes:
        for task in episode:
            value = metric_fn(task)
            values.append(float(value))
            bar.update(1)
            if num_episodes is not None and len(values) >= num_episodes:
                break
        if num_episodes is not None and len(values) >= num_episodes:
            break
    bar.close()
    if num_episodes is not None and len(values) < num_episodes:
        raise ValueError(f"asked for {num_episodes} episodes, the iterable gave only {len(values)}")
    return mean_confidence_interval(values)
