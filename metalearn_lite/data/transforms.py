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

__all__ = ["random_affine", "random_elastic", "augment_episode"]


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


def random_elastic(images: Tensor, generator: torch.Generator | None = None, alpha: float = 0.08,
                   control_points: int = 4) -> Tensor:
    """Each image through its own smooth random displacement field: the wobble of a hand-drawn stroke.

    Args:
        images: ``[n, C, H, W]`` (ink = 1, paper = 0).
        alpha: the displacement's standard deviation at the control points, as a fraction of the
            half-width (0.08 = 1.1 px at 28x28).
        control_points: per side; the field is their bicubic upsampling, so fewer points give
            smoother, larger-scale bends.

    Returns ``[n, C, H, W]``, same dtype; ``alpha = 0`` returns the images unchanged (up to float
    rounding).
    """
    if images.dim() != 4:
        raise ValueError(f"images must be [n, C, H, W], got {list(images.shape)}")
    if alpha < 0 or control_points < 2:
        raise ValueError(f"need alpha >= 0 and control_points >= 2, got {alpha} and {control_points}")
    n, _, h, w = images.shape
    coarse = alpha * torch.randn(n, 2, control_points, control_points, generator=generator)
    field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True).permute(0, 2, 3, 1)
    identity = torch.eye(2, 3).expand(n, 2, 3)
    grid = F.affine_grid(identity, [n, 1, h, w], align_corners=False) + field
    return F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)


def augment_episode(episode: Episode, generator: torch.Generator | None = None, elastic: float = 0.0,
                    **kwargs) -> Episode:
    """The episode with :func:`random_affine` (``kwargs``) applied to every support and query image,
    then, with ``elastic > 0``, :func:`random_elastic` with ``alpha = elastic`` (labels and
    shapes unchanged; a single, unbatched image episode ``[n, C, H, W]``)."""
    if episode.batched:
        raise ValueError("augment_episode takes a single episode, not a batched one")

    def transform(images: Tensor) -> Tensor:
        images = random_affine(images, generator, **kwargs)
        return random_elastic(images, generator, alpha=elastic) if elastic > 0 else images

    return Episode(transform(episode.support_x), episode.support_y, transform(episode.query_x), episode.query_y,
                   num_ways=episode.num_ways, num_shots=episode.num_shots, num_queries=episode.num_queries)
