"""Exact, faster CPU kernels for Conv-4's blocks: a 2x2 max-pool and a lean query block.

Both compute the same function as the plain layers (``tests/test_fast_ops.py`` checks values
and gradients, in float64, against ``F.max_pool2d`` and ``F.batch_norm``); they only choose
faster kernels and keep less in memory.

``max_pool2x2(x)``: ``F.max_pool2d(x, 2)``. PyTorch's CPU max-pool is 3-4x slower on NCHW
tensors than on channels-last ones (one thread, ``[75, 64, 28, 28]``: 20 ms against 5 ms,
the layout copy included), so the forward pools a channels-last copy. The backward sends
each output's gradient to the input that won its window (the same index the plain layer
picks, ties included: both kernels keep the first maximum in scan order) and is itself
differentiable, so second-order MAML works through it.

``lean_block(h, weight, bias, gamma, beta)``: one Conv-4 block,
``relu(max_pool2d(batch_norm(conv3x3(h)), 2))`` with batch statistics, for passes that are
differentiated **once** (MAML's query loss: its gradient flows into the adapted parameters
``theta'`` and from there through the inner loop, but the query pass itself is never
differentiated twice). Its backward is written by hand and is not differentiable again
(``once_differentiable``). It keeps the conv output, the pooled output and the pooling
indices, not the normalised full-size map; with ``recompute_conv=True`` (the first block,
one input channel, where the convolution is cheap) it keeps no full-size map at all and
recomputes the convolution in the backward. Batch norm's backward, with ``G`` the full-size
gradient (nonzero only where a window's maximum was) and ``M = N * H * W``::

    dL/dc = gamma * invstd * (G - mean(G) - x_hat * mean(G * x_hat))
    mean(G) = dL/dbeta / M,   mean(G * x_hat) = dL/dgamma / M

so it is one per-channel affine map of ``c`` plus a scatter of the pooled gradient.

Both fall back to the plain layers inside ``torch.func`` transforms (``vmap``, ``grad``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["max_pool2x2", "lean_block"]


def _transforms_active() -> bool:
    return torch._C._are_functorch_transforms_active()


def _pool_channels_last(x: Tensor) -> tuple[Tensor, Tensor]:
    """``F.max_pool2d(x, 2, return_indices=True)`` computed on a channels-last copy, NCHW out."""
    if x.is_contiguous(memory_format=torch.channels_last):
        return F.max_pool2d(x, 2, return_indices=True)
    pooled, indices = F.max_pool2d(x.contiguous(memory_format=torch.channels_last), 2, return_indices=True)
    return pooled.contiguous(), indices.contiguous()


class _ScatterToWinners(torch.autograd.Function):
    """The max-pool backward, ``grad_x[idx] = grad_y``, differentiable in ``grad_y``."""

    @staticmethod
    def forward(ctx, grad_y: Tensor, indices: Tensor, input_shape: torch.Size) -> Tensor:
        ctx.save_for_backward(indices)
        layout = torch.channels_last if indices.is_contiguous(memory_format=torch.channels_last) and \
            not indices.is_contiguous() else torch.contiguous_format
        grad_x = grad_y.new_zeros(input_shape).contiguous(memory_format=layout)
        grad_x.flatten(2).scatter_(2, indices.flatten(2), grad_y.flatten(2))
        return grad_x

    @staticmethod
    def backward(ctx, grad_grad_x: Tensor):
        indices, = ctx.saved_tensors
        return grad_grad_x.flatten(2).gather(2, indices.flatten(2)).view(indices.shape), None, None


class _MaxPool2x2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        pooled, indices = _pool_channels_last(x)
        ctx.save_for_backward(indices)
        ctx.input_shape = x.shape
        return pooled

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        indices, = ctx.saved_tensors
        return _ScatterToWinners.apply(grad_y, indices, ctx.input_shape)


def max_pool2x2(x: Tensor) -> Tensor:
    """``F.max_pool2d(x, 2)`` for ``x: [N, C, H, W]``: the same values and gradients, faster on CPU."""
    if x.dim() != 4 or _transforms_active() or x.is_cuda:
        return F.max_pool2d(x, 2)
    return _MaxPool2x2.apply(x)


def _batch_stats(c: Tensor, eps: float, rows_per_chunk: int = 4096) -> tuple[Tensor, Tensor]:
    """Per-channel mean and ``1 / sqrt(var + eps)`` (biased variance) of a channels-last ``c``.

    Two passes over ``c`` seen as an ``[N*H*W, C]`` matrix, the second in chunks, so no
    full-size temporary is made (``torch.var_mean`` over these dims is ~10x slower here).
    """
    rows = c.permute(0, 2, 3, 1).reshape(-1, c.shape[1])  # a view: c is channels-last
    mean = rows.sum(0) / rows.shape[0]
    sq = torch.zeros_like(mean)
    for chunk in rows.split(rows_per_chunk):
        sq += (chunk - mean).square_().sum(0)
    return mean, torch.rsqrt(sq / rows.shape[0] + eps)


class _LeanBlock(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h: Tensor, weight: Tensor, bias: Tensor | None, gamma: Tensor, beta: Tensor,
                eps: float, recompute_conv: bool) -> Tensor:
        c = F.conv2d(h, weight, bias, padding=1).contiguous(memory_format=torch.channels_last)
        if recompute_conv:  # normalise c in place: it is not kept, and a fresh full-size buffer costs page faults
            mean, invstd = _batch_stats(c, eps)
            scale = gamma * invstd
            normed = c.sub_(mean[:, None, None]).mul_(scale[:, None, None]).add_(beta[:, None, None])
            c = None
        else:  # the native kernel (fastest on channels-last); c is kept for the backward
            normed, mean, invstd = torch.ops.aten.native_batch_norm(c, gamma, beta, None, None, True, 0.0, eps)
        pooled, indices = F.max_pool2d(normed, 2, return_indices=True)
        del normed
        y = pooled.relu_()  # channels-last, like everything in this block
        ctx.save_for_backward(h, weight, bias, gamma, mean, invstd, indices, y, c)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y: Tensor):
        h, weight, bias, gamma, mean, invstd, indices, y, c = ctx.saved_tensors
        owned = c is None
        if owned:
            c = F.conv2d(h, weight, bias, padding=1)
        flat_idx = indices.flatten(2)
        grad_z = torch.ops.aten.threshold_backward(grad_y, y, 0)            # through the ReLU
        x_hat = c.flatten(2).gather(2, flat_idx).view(indices.shape)        # c at each window's maximum,
        x_hat.sub_(mean[:, None, None]).mul_(invstd[:, None, None])          # normalised (in place)
        grad_beta = grad_z.sum((0, 2, 3))
        grad_gamma = x_hat.mul_(grad_z).sum((0, 2, 3))
        del x_hat
        m = c.shape[0] * c.shape[2] * c.shape[3]
        a = gamma * invstd                                                   # dL/dc = a*G + b*c + k per channel
        b = -a * invstd * grad_gamma / m
        k = -a * grad_beta / m - b * mean
        if owned:
            grad_c = c.mul_(b[:, None, None]).add_(k[:, None, None])
        else:
            grad_c = torch.addcmul(k[:, None, None], c, b[:, None, None])
        grad_c.flatten(2).scatter_add_(2, flat_idx, grad_z.mul_(a[:, None, None]).flatten(2))
        grad_h, grad_w, grad_b = torch.ops.aten.convolution_backward(
            grad_c, h, weight, None if bias is None else [weight.shape[0]], [1, 1], [1, 1], [1, 1], False, [0, 0], 1,
            [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2]])
        return grad_h, grad_w, grad_b, grad_gamma, grad_beta, None, None


def lean_block(h: Tensor, weight: Tensor, bias: Tensor | None, gamma: Tensor, beta: Tensor,
               eps: float = 1e-5, recompute_conv: bool = False) -> Tensor:
    """``relu(max_pool2d(batch_norm(conv2d(h, weight, bias, padding=1), gamma, beta), 2))``, batch statistics.

    For passes differentiated once (see the module docstring); a second ``autograd.grad``
    through it raises. ``recompute_conv`` keeps no conv output and recomputes it in the backward.
    On the CPU the output is channels-last (``Conv4.functional_forward`` keeps that layout).
    """
    if _transforms_active() or h.is_cuda:  # the plain formula (exact under vmap)
        from .conv4 import batch_stat_norm_reference  # here, not at the top: conv4 imports this module
        c = batch_stat_norm_reference(F.conv2d(h, weight, bias, padding=1), gamma, beta, eps)
        return F.relu(F.max_pool2d(c, 2))
    return _LeanBlock.apply(h, weight, bias, gamma, beta, eps, recompute_conv)
