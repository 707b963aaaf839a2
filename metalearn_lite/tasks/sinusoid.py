"""Sinusoid regression, exactly as in the MAML paper (Finn et al., 2017, section 5.1).

Each task is ``y = A sin(x - phi)`` with amplitude ``A ~ U[0.1, 5]``, phase
``phi ~ U[0, pi]`` and inputs ``x ~ U[-5, 5]``; the loss is the mean squared error.
Taught in chapters 01 and 02.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..reproducibility import make_generator
from .episode import Episode

__all__ = ["SinusoidTasks", "sinusoid"]


def sinusoid(x: Tensor, amplitude: Tensor, phase: Tensor) -> Tensor:
    """``A sin(x - phi)``; ``amplitude``/``phase`` broadcast against ``x``."""
    return amplitude * torch.sin(x - phase)


@dataclass(frozen=True)
class SinusoidTasks:
    """The distribution over sinusoid tasks p(T).

    Example::

        tasks = SinusoidTasks()
        batch = tasks.sample(num_tasks=25, num_shots=10, num_queries=10, generator=0)
        batch.support_x.shape  # [25, 10, 1]
    """

    amplitude_range: tuple[float, float] = (0.1, 5.0)
    phase_range: tuple[float, float] = (0.0, math.pi)
    x_range: tuple[float, float] = (-5.0, 5.0)

    def sample_params(self, num_tasks: int, generator=None) -> tuple[Tensor, Tensor]:
        """Amplitudes and phases, each ``[num_tasks]``."""
        gen = make_generator(generator)
        lo, hi = self.amplitude_range
        amplitude = lo + (hi - lo) * torch.rand(num_tasks, generator=gen)
        lo, hi = self.phase_range
        phase = lo + (hi - lo) * torch.rand(num_tasks, generator=gen)
        return amplitude, phase

    def sample_x(self, num_tasks: int, num_points: int, generator=None) -> Tensor:
        """Inputs ``[num_tasks, num_points, 1]`` uniform on ``x_range``."""
        gen = make_generator(generator)
        lo, hi = self.x_range
        return lo + (hi - lo) * torch.rand(num_tasks, num_points, 1, generator=gen)

    def sample(self, num_tasks: int, num_shots: int, num_queries: int, generator=None,
               return_params: bool = False):
        """A batched episode: ``support_x/support_y [B, K, 1]``, ``query_x/query_y [B, Q, 1]``.

        With ``return_params=True`` also returns ``(amplitude [B], phase [B])``.
        """
        for name, value in (("num_tasks", num_tasks), ("num_shots", num_shots), ("num_queries", num_queries)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        gen = make_generator(generator)
        amplitude, phase = self.sample_params(num_tasks, gen)
        x = self.sample_x(num_tasks, num_shots + num_queries, gen)
        y = sinusoid(x, amplitude[:, None, None], phase[:, None, None])
        episode = Episode(
            support_x=x[:, :num_shots], support_y=y[:, :num_shots],
            query_x=x[:, num_shots:], query_y=y[:, num_shots:], batched=True,
        )
        return (episode, (amplitude, phase)) if return_params else episode
