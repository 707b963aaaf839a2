"""Conv-4: the few-shot image backbone of Vinyals et al., MAML and prototypical networks.

Four blocks of [3x3 conv with 64 filters, batch norm, ReLU, 2x2 max-pool]; a 28x28
image becomes a 64-dimensional feature vector (28 -> 14 -> 7 -> 3 -> 1).

Batch norm uses the statistics of the current batch, in training and at test time, as
in MAML: there are no running statistics (``BatchStatNorm2d``). Outside ``torch.func``
transforms it calls the native kernel (``F.batch_norm(training=True)`` without running
statistics: second order through it is exact there, and it is about 1.4x faster than the
same formula in plain tensor ops). Under ``vmap`` second-order gradients through the
native batch/layer/instance norm are wrong (torch 2.13), so inside any ``torch.func``
transform it uses the plain-tensor formula, which is exact (``tests/test_maml.py`` checks
both).

``Conv4.task_batched_forward`` runs the network for several tasks at once, each with its
own parameters: the tasks' convolutions become one grouped convolution (task ``i``'s
filters are group ``i``) and the layout ``[n, tasks * channels, H, W]`` makes the native
batch norm compute each task's own statistics.
``metalearn_lite.algorithms.maml.meta_backward`` uses it for chunks of several tasks.

Each block pools before its ReLU (``conv_block``): the same function and gradients as
[conv, norm, ReLU, pool], with the ReLU on a quarter of the pixels. The pool is
``MaxPool2x2`` (``fast_ops.max_pool2x2``): ``nn.MaxPool2d(2)``'s values and gradients from a
faster CPU kernel.

``Conv4.functional_forward(params, x)`` is the forward pass as a pure function of the
parameters (no module state is touched, so several threads may run it at once, as MAML's
task-parallel meta-gradient does); ``lean=True`` runs the blocks as ``fast_ops.lean_block``,
for passes differentiated only once.
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .fast_ops import lean_block, max_pool2x2

__all__ = ["Conv4", "BatchStatNorm2d", "MaxPool2x2", "batch_stat_norm_reference", "conv_block"]


class BatchStatNorm2d(nn.Module):
    """Batch norm with batch statistics only: ``gamma * (x - mean) / sqrt(var + eps) + beta``.

    ``x: [N, C, H, W]``; mean and (biased) variance over ``N, H, W`` per channel. Uses the
    native kernel unless a ``torch.func`` transform (``vmap``, ``grad``) is active, where the
    plain-tensor formula keeps second-order gradients exact under ``vmap``.
    """

    def __init__(self, num_channels: int, eps: float = 1e-5, native: bool = True):
        super().__init__()
        self.eps = eps
        self.native = native  # False: always the plain-tensor formula (tests and benches compare the two)
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: Tensor) -> Tensor:
        return self.normalize(x, self.weight, self.bias)

    def normalize(self, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        """This layer with ``weight`` and ``bias`` given (``Conv4.functional_forward`` passes its own)."""
        if self.native and not torch._C._are_functorch_transforms_active():
            return F.batch_norm(x, None, None, weight, bias, training=True, eps=self.eps)
        return batch_stat_norm_reference(x, weight, bias, self.eps)


def batch_stat_norm_reference(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    """``BatchStatNorm2d`` in plain tensor ops (exact under ``vmap``, second order)."""
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
    x_hat = (x - mean) / torch.sqrt(var + eps)
    return x_hat * weight[:, None, None] + bias[:, None, None]


class MaxPool2x2(nn.MaxPool2d):
    """``nn.MaxPool2d(2)`` computed by ``fast_ops.max_pool2x2``: the same values and gradients, faster on CPU."""

    def __init__(self):
        super().__init__(kernel_size=2)

    def forward(self, x: Tensor) -> Tensor:
        return max_pool2x2(x)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return BatchStatNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'batch', 'group' or 'none', got {kind!r}")


def conv_block(in_channels: int, out_channels: int, norm: str = "batch") -> nn.Sequential:
    """[3x3 conv, norm, ReLU, 2x2 max-pool], computed as [conv, norm, max-pool, ReLU].

    ReLU and max commute (``max(relu(x)) = relu(max(x))``, both monotone), with the same
    gradients; pooling first runs the ReLU and its backward on a quarter of the pixels.
    Neither layer has parameters, so checkpoints are unaffected.
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        _norm(norm, out_channels),
        MaxPool2x2(),
        nn.ReLU(),
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

    def task_batched_forward(self, params: Mapping[str, Tensor], x: Tensor) -> Tensor:
        """The forward pass of ``T`` tasks at once, each with its own parameters.

        Args:
            params: name -> ``[T, *shape]`` (this module's parameter names, a task dimension in
                front), e.g. each task's adapted ``theta'_i``.
            x: ``[T, n, in_channels, H, W]``, ``n`` images per task.

        Returns ``[T, n, num_classes]`` (or ``[T, n, feature_dim]``), equal to
        ``functional_call(self, params_i, (x[i],))`` for every task ``i``, batch statistics
        per task. Each block is one grouped convolution (groups = tasks) on
        ``[n, T * channels, H, W]``, a layout in which per-channel batch norm is per-task
        batch norm; max-pooling before the ReLU gives the same values and gradients as after
        it (both are monotone) on a quarter of the pixels.
        """
        if x.dim() != 5 or x.shape[2] != self.in_channels:
            raise ValueError(f"task_batched_forward needs x [T, n, {self.in_channels}, H, W], got {list(x.shape)}")
        tasks, n = x.shape[:2]
        h = x.transpose(0, 1).reshape(n, tasks * self.in_channels, *x.shape[3:])
        for i, block in enumerate(self.features):
            conv, norm = block[0], block[1]
            w = params[f"features.{i}.0.weight"]
            h = F.conv2d(h, w.reshape(-1, *w.shape[2:]), params[f"features.{i}.0.bias"].reshape(-1),
                         padding=conv.padding, groups=tasks)
            if isinstance(norm, BatchStatNorm2d):
                h = F.batch_norm(h, None, None, params[f"features.{i}.1.weight"].reshape(-1),
                                 params[f"features.{i}.1.bias"].reshape(-1), training=True, eps=norm.eps)
            elif isinstance(norm, nn.GroupNorm):
                h = F.group_norm(h, tasks * norm.num_groups, params[f"features.{i}.1.weight"].reshape(-1),
                                 params[f"features.{i}.1.bias"].reshape(-1), eps=norm.eps)
            h = F.relu(max_pool2x2(h))
        z = h.reshape(n, tasks, -1).transpose(0, 1)           # [T, n, feature_dim]
        if self.head is None:
            return z
        return torch.baddbmm(params["head.bias"].unsqueeze(1), z, params["head.weight"].transpose(1, 2))

    def functional_forward(self, params: Mapping[str, Tensor], x: Tensor, lean: bool = False) -> Tensor:
        """``functional_call(self, params, (x,))`` as a pure function: reads no module parameters.

        Safe to run from several threads at once (``functional_call`` swaps the module's
        parameters while it runs, so it is not). ``lean=True`` (batch norm only) computes each
        block with ``fast_ops.lean_block``: the same values and first-order gradients with less
        kept for the backward, but it cannot be differentiated twice (MAML's query pass, not its
        inner loop). Batch norm uses the native kernel outside ``torch.func`` transforms and the
        plain-tensor formula inside them, as ``BatchStatNorm2d`` does.
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Conv4 input must be [N, {self.in_channels}, H, W], got {list(x.shape)}")
        h = x
        if lean and x.device.type == "cpu" and not torch._C._are_functorch_transforms_active() and \
                not (x.stride(1) == 1 and x.is_contiguous(memory_format=torch.channels_last)):
            # The lean blocks run channels-last (oneDNN's convolutions and the native norm and pool
            # kernels need no layout copies then). A 1-channel image counts as channels-last either
            # way, so its strides are set explicitly (stride 1 between channels): the first convolution
            # then runs ~7x faster (one thread, 75 images: 1.3 ms against 9.3 ms). The small support
            # passes (lean=False) ran ~7% faster in NCHW, so they keep the caller's layout.
            h = x.clone(memory_format=torch.channels_last)
        for i, block in enumerate(self.features):
            conv, norm = block[0], block[1]
            w, b = params[f"features.{i}.0.weight"], params[f"features.{i}.0.bias"]
            if lean:
                if not isinstance(norm, BatchStatNorm2d):
                    raise ValueError(f"lean=True needs norm='batch', this Conv4 has {type(norm).__name__}")
                h = lean_block(h, w, b, params[f"features.{i}.1.weight"], params[f"features.{i}.1.bias"],
                               eps=norm.eps, recompute_conv=w.shape[1] <= 3)
                continue
            h = F.conv2d(h, w, b, padding=conv.padding)
            if isinstance(norm, BatchStatNorm2d):
                h = norm.normalize(h, params[f"features.{i}.1.weight"], params[f"features.{i}.1.bias"])
            elif isinstance(norm, nn.GroupNorm):
                h = F.group_norm(h, norm.num_groups, params[f"features.{i}.1.weight"],
                                 params[f"features.{i}.1.bias"], eps=norm.eps)
            h = F.relu(max_pool2x2(h))
        z = h.flatten(1)  # [N, C, 1, 1]: the same in either layout
        return z if self.head is None else F.linear(z, params["head.weight"], params["head.bias"])
