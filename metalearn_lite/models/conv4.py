"""Conv-4: the few-shot image backbone of Vinyals et al., MAML and prototypical networks.

Four blocks of [3x3 conv with 64 filters, batch norm, ReLU, 2x2 max-pool]; a 28x28
image becomes a 64-dimensional feature vector (28 -> 14 -> 7 -> 3 -> 1).

Batch norm uses the statistics of the current batch, in training and at test time, as
in MAML: there are no running statistics. It is written by hand (``BatchStatNorm2d``)
rather than ``nn.BatchNorm2d`` for two reasons measured on torch 2.13: the built-in
module updates running statistics in place, which ``vmap`` rejects, and under ``vmap``
second-order gradients through the built-in batch/layer/instance norm are wrong, while
this plain-tensor version is exact (``tests/test_maml.py`` checks it).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Conv4", "BatchStatNorm2d", "conv_block"]


class BatchStatNorm2d(nn.Module):
    """Batch norm with batch statistics only: ``gamma * (x - mean) / sqrt(var + eps) + beta``.

    ``x: [N, C, H, W]``; mean and (biased) variance over ``N, H, W`` per channel.
    """

    def __init__(self, num_channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        var = ((x - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
        x_hat = (x - mean) / torch.sqrt(var + self.eps)
        return x_hat * self.weight[:, None, None] + self.bias[:, None, None]


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return BatchStatNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'batch', 'group' or 'none', got {kind!r}")


def conv_block(in_channels: int, out_channels: int, norm: str = "batch") -> nn.Sequential:
    """[3x3 conv, norm, ReLU, 2x2 max-pool]."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        _norm(norm, out_channels),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class Conv4(nn.Module):
    """Conv-4 embedding, with an optional linear classification head.

    Args:
        in_channels: 1 for Omniglot/Glyphs.
        num_classes: size of the linear head (N for MAML); ``None`` for an embedding
            network (prototypical networks).
        hidden: filters per block (64 in the papers).
        norm: ``"batch"`` (batch statistics, the papers' choice), ``"group"`` or ``"none"``.

    Input ``x: [N, in_channels, 28, 28]``; output ``[N, num_classes]`` or ``[N, feature_dim]``
    (``feature_dim = hidden`` for 28x28 inputs).
    """

    def __init__(self, in_channels: int = 1, num_classes: int | None = 5, hidden: int = 64, norm: str = "batch"):
        super().__init__()
        self.in_channels = in_channels
        self.features = nn.Sequential(
            conv_block(in_channels, hidden, norm),
            conv_block(hidden, hidden, norm),
            conv_block(hidden, hidden, norm),
            conv_block(hidden, hidden, norm),
        )
        self.head = nn.Linear(hidden, num_classes) if num_classes is not None else None

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Conv4 input must be [N, {self.in_channels}, H, W], got {list(x.shape)}")
        z = self.features(x).flatten(1)
        return self.head(z) if self.head is not None else z
