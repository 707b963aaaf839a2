"""Small random affine distortions of character images, for training on few real drawers.

Real Omniglot has 20 drawings per character; a small background set has only a few
thousand images, and a network fine-tuned on them memorises the drawers. Drawing a new
small rotation, scale, shear and shift for every image of every training episode (as
Snell et al. and later Omniglot work did with rotations and shifts) gives new drawings of
the same character. Used by ``bench/reproduce_fewshot.py --affine``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..tasks.episode import Episode

__all__ = ["random_affine", "augment_episode"]


def random_affine(images: Tensor, generator: torch.Generator | None = None, max_degrees: float = 10.0,
                  scale: tuple[float, float] = (0.9, 1.1), max_shear: float = 0.1,
                  max_shift: float = 0.1) -> Tensor:
    """Each image through its own random affine map (bilinear, zero = paper outside).

    Args:
        images: ``[n, C, H, W]`` (ink = 1, paper = 0).
        max_degrees: rotation drawn uniformly in ``[-max_degrees, max_degrees]``.
        scale: zoom drawn uniformly in ``[scale[0], scale[1]]``.
        max_shear: shear factor drawn uniformly in ``[-max_shear, max_shear]``.
        max_shift: translation, as a fraction of the half-width (0.1 = 1.4 px at 28x28).

    Returns:
        ``[n, C, H, W]``, same dtype. ``max_degrees = max_shear = max_shift = 0`` and
        ``scale = (1, 1)`` return the images unchanged (up to float rounding).
    """
    if images.dim() != 4:
        raise ValueError(f"images must be [n, C, H, W], got {list(images.shape)}")
    if not scale[0] > 0 or scale[0] > scale[1]:
        raise ValueError(f"scale must be (low, high) with 0 < low <= high, got {scale}")
    n = images.shape[0]

    def uniform(low: float, high: float) -> Tensor:
        return low + (high - low) * torch.rand(n, generator=generator)

    angle = uniform(-max_degrees, max_degrees) * (math.pi / 180)
    zoom = uniform(*scale)
    shear = uniform(-max_shear, max_shear)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom      # output -> input coordinates
    theta = torch.stack([
        torch.stack([cos, -sin + shear * cos, uniform(-max_shift, max_shift)], dim=1),
        torch.stack([sin, cos + shear * sin, uniform(-max_shift, max_shift)], dim=1),
    ], dim=1).to(images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def augment_episode(episode: Episode, generator: torch.Generator | None = None, **kwargs) -> Episode:
    """The episode with :func:`random_affine` applied to every support and query image
    (labels and shapes unchanged; a single, unbatched image episode ``[n, C, H, W]``)."""
    if episode.batched:
        raise ValueError("augment_episode takes a single episode, not a batched one")
    return Episode(random_affine(episode.support_x, generator, **kwargs), episode.support_y,
                   random_affine(episode.query_x, generator, **kwargs), episode.query_y,
                   num_ways=episode.num_ways, num_shots=episode.num_shots, num_queries=episode.num_queries)
