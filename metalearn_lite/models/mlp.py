"""A plain multilayer perceptron, the sinusoid model of the MAML paper (1-40-40-1)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

__all__ = ["MLP"]


class MLP(nn.Module):
    """``in_features -> hidden_sizes... -> out_features`` with ReLU between layers.

    Works with ``torch.func.functional_call(model, params, (x,))`` on ``x [..., in_features]``.
    Parameter names are ``layers.{i}.weight`` / ``layers.{i}.bias``.
    """

    def __init__(self, in_features: int = 1, hidden_sizes: Sequence[int] = (40, 40), out_features: int = 1):
        super().__init__()
        sizes = [in_features, *hidden_sizes, out_features]
        self.in_features = in_features
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"MLP input must be [..., {self.in_features}], got {list(x.shape)}")
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x
