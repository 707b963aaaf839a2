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
one input channel, where the convolution is cheap) it keeps no full-size map at all: it works
through the images in chunks of ~4 MB of conv output (written, as a matrix product, into
buffers that every chunk reuses: ``_ChunkWorkspace``), pools before normalising, and
recomputes the convolution and the pooling in the backward, so its full-size memory no longer
grows with the batch (one full-size map: 15 MB for 75 query images, 240 MB for a 60-way ProtoNet
episode's 1,200; a MAML worker's peak fell by ~20 MB) and each chunk stays in cache (see
``_LeanRecomputedBlock``). Batch norm's backward, with ``G`` the full-size
gradient (nonzero only where a window's maximum was) and ``M = N * H * W``::

    dL/dc = gamma * invstd * (G - mean(G) - x_hat * mean(G * x_hat))
    mean(G) = dL/dbeta / M,   mean(G * x_hat) = dL/dgamma / M

so it is one per-channel affine map of ``c`` plus a scatter of the pooled gradient.

Both fall back to the plain layers inside ``torch.func`` transforms (``vmap``, ``grad``).
"""
from __future__ import annotations

import itertools

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


def _moments(c: Tensor, rows_per_chunk: int = 4096) -> tuple[int, Tensor, Tensor]:
    """Per channel of a channels-last ``c``: the count, the mean, and ``sum((c - mean)^2)``.

    Two passes over ``c`` seen as an ``[N*H*W, C]`` matrix, the second in chunks, so no
    full-size temporary is made (``torch.var_mean`` over these dims is ~10x slower here).
    """
    rows = c.permute(0, 2, 3, 1).reshape(-1, c.shape[1])  # a view: c is channels-last
    mean = rows.sum(0) / rows.shape[0]
    m2 = torch.zeros_like(mean)
    for chunk in rows.split(rows_per_chunk):
        m2 += (chunk - mean).square_().sum(0)
    return rows.shape[0], mean, m2


def _merge_moments(parts: list[tuple[int, Tensor, Tensor]], eps: float) -> tuple[Tensor, Tensor]:
    """Mean and ``1 / sqrt(var + eps)`` of the union of chunks from their ``_moments`` (Chan et al.):
    ``M2 = sum_i M2_i + sum_i n_i (mean_i - mean)^2``, as exact as two passes over the whole."""
    count = sum(n for n, _, _ in parts)
    mean = sum(n * m for n, m, _ in parts) / count
    m2 = sum(s + n * (m - mean).square() for n, m, s in parts)
    return mean, torch.rsqrt(m2 / count + eps)


def _images_per_chunk(h: Tensor, out_channels: int, chunk_bytes: int = 4 << 20) -> int:
    """How many images' full-size conv outputs fit in ``chunk_bytes`` (at least one)."""
    per_image = out_channels * h.shape[2] * h.shape[3] * h.element_size()
    return max(1, chunk_bytes // per_image)


class _LeanBlock(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h: Tensor, weight: Tensor, bias: Tensor | None, gamma: Tensor, beta: Tensor,
                eps: float) -> Tensor:
        c = F.conv2d(h, weight, bias, padding=1).contiguous(memory_format=torch.channels_last)
        # the native kernel (fastest on channels-last); c is kept for the backward
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
        flat_idx = indices.flatten(2)
        grad_z = torch.ops.aten.threshold_backward(grad_y, y, 0)            # through the ReLU
        x_hat = c.flatten(2).gather(2, flat_idx).view(indices.shape)        # c at each window's maximum,
        x_hat.sub_(mean[:, None, None]).mul_(invstd[:, None, None])          # normalised (in place)
        grad_beta = grad_z.sum((0, 2, 3))
        grad_gamma = x_hat.mul_(grad_z).sum((0, 2, 3))
        del x_hat
        a, b, k = _norm_backward_coefficients(gamma, mean, invstd, grad_gamma, grad_beta,
                                              c.shape[0] * c.shape[2] * c.shape[3])
        grad_c = torch.addcmul(k[:, None, None], c, b[:, None, None])
        grad_c.flatten(2).scatter_add_(2, flat_idx, grad_z.mul_(a[:, None, None]).flatten(2))
        grad_h, grad_w, grad_b = _conv_backward(ctx, grad_c, h, weight, bias)
        return grad_h, grad_w, grad_b, grad_gamma, grad_beta, None


def _norm_backward_coefficients(gamma: Tensor, mean: Tensor, invstd: Tensor, grad_gamma: Tensor, grad_beta: Tensor,
                                m: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per channel ``a, b, k`` with ``dL/dc = a*G + b*c + k`` (see the module docstring), for ``c``
    of ``m = N * H * W`` values per channel."""
    a = gamma * invstd
    b = -a * invstd * grad_gamma / m
    k = -a * grad_beta / m - b * mean
    return a, b, k


def _conv_backward(ctx, grad_c: Tensor, h: Tensor, weight: Tensor, bias: Tensor | None):
    return torch.ops.aten.convolution_backward(
        grad_c, h, weight, None if bias is None else [weight.shape[0]], [1, 1], [1, 1], [1, 1], False, [0, 0], 1,
        [ctx.needs_input_grad[0], ctx.needs_input_grad[1], bias is not None and ctx.needs_input_grad[2]])


class _ChunkWorkspace:
    """The buffers that every chunk of a ``_LeanRecomputedBlock`` writes into, in turn.

    **Why reuse:** a chunk's conv output is ~4 MB. Allocated afresh for each chunk, every such
    buffer came from ``mmap`` (glibc's threshold) and cost ~1,000 page faults: block 1's
    convolution took 2.4 ms per 20-image chunk inside a MAML step, against 0.4 ms on memory
    already mapped (one thread). So the forward allocates the buffers once and every chunk
    reuses them, and so does the backward for both its passes.

    **The convolution as a matrix product** (``c_in`` input channels, 3x3, padding 1): with
    ``P`` the patches, one row per output pixel ``(n, y, x)`` holding its ``c_in * 9`` inputs and
    a 1 (for the bias), and ``A = [W.reshape(C, c_in * 9).T; b]``::

        c[(n, y, x), :] = P[(n, y, x), :] @ A          (channels-last, into the buffer: out=)
        dL/dA = P.T @ dL/dc                             (dL/dW.T, and dL/db in the last row)

    For one input channel a patch row is 10 numbers, so the patches (~0.6 MB a chunk) are far
    smaller than the output. The product's order matters: ``[10, rows] x [rows, C]`` took 0.33 ms
    for a 20-image chunk, ``[C, rows] x [rows, 10]`` 2.6 ms, and oneDNN's weight gradient 1.6 ms.
    """

    def __init__(self, h: Tensor, weight: Tensor, bias: Tensor | None, images: int):
        _, c_in, height, width = h.shape
        out_channels, taps = weight.shape[0], weight[0].numel()
        rows = images * height * width
        self.patches_t = h.new_empty((taps + (bias is not None), rows))  # P.T: one row per tap
        if bias is not None:
            self.patches_t[taps] = 1.0
        self.matrix = weight.reshape(out_channels, taps).t()  # A = [W.T; b]
        if bias is not None:
            self.matrix = torch.cat([self.matrix, bias[None]])
        self.conv = h.new_empty((rows, out_channels))
        pooled_shape = (images, out_channels, height // 2, width // 2)
        self.pooled = torch.empty(pooled_shape, dtype=h.dtype, device=h.device, memory_format=torch.channels_last)
        self.indices = torch.empty(pooled_shape, dtype=torch.long, device=h.device, memory_format=torch.channels_last)

    def conv3x3(self, part: Tensor) -> Tensor:
        """``F.conv2d(part, weight, bias, padding=1)``, channels-last, in the workspace (a view)."""
        n, c_in, height, width = part.shape
        rows = n * height * width
        padded = F.pad(part, (1, 1, 1, 1))
        patches_t = self.patches_t[:, :rows]
        for tap, (channel, dy, dx) in enumerate(itertools.product(range(c_in), range(3), range(3))):
            patches_t[tap].view(n, height, width).copy_(padded[:, channel, dy:dy + height, dx:dx + width])
        out = torch.mm(patches_t.t(), self.matrix, out=self.conv[:rows])
        return out.view(n, height, width, -1).permute(0, 3, 1, 2)

    def pool(self, c: Tensor, out: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """2x2 max-pool of a channels-last ``c`` into ``out`` (or the workspace), and its indices."""
        n = c.shape[0]
        pooled = self.pooled[:n] if out is None else out
        indices = self.indices[:n]
        torch.ops.aten.max_pool2d_with_indices.out(c, [2, 2], [2, 2], [0, 0], [1, 1], False,
                                                   out=pooled, indices=indices)
        return pooled, indices

    def signed_max_pool(self, c: Tensor, sign: Tensor | None, out: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The 2x2 pool of ``c`` that batch norm's affine map turns into the max-pool of the
        normalised map: per channel the max where ``gamma >= 0`` and the min where ``gamma < 0``
        (``sign`` is -1 there; None when no gamma is negative), and its windows' winners.
        ``x -> fl(x * s + t)`` is monotonic, so ``max(normalise(c)) = normalise(this pool of c)`` in
        floating point too, and the winner is the plain pool's (first in scan order among ties of
        ``c``). Only where the normalised values tie and ``c`` does not (a channel with ``gamma =
        0``, or two values one rounding apart) can the winner differ: the values are the same, and
        the gradient goes to the other candidate of the tie (at ``gamma = 0``: ``dL/dgamma``'s
        right-hand derivative). ``c`` (a workspace view) is flipped in place where ``gamma < 0``
        and stays so (exact: a sign flip); the pooled values come back unflipped."""
        if sign is not None:
            c.mul_(sign[:, None, None])
        pooled, indices = self.pool(c, out)
        if sign is not None:
            pooled.mul_(sign[:, None, None])
        return pooled, indices

    def add_matrix_grad(self, grad: Tensor, grad_c: Tensor) -> None:
        """``grad += P.T @ dL/dc`` for the chunk whose ``dL/dc`` the conv buffer holds."""
        rows = grad_c.numel() // grad_c.shape[1]
        grad.addmm_(self.patches_t[:, :rows], self.conv[:rows])


def _pool_chunks(work: _ChunkWorkspace, h: Tensor, sign: Tensor | None, pooled: Tensor,
                 with_moments: bool) -> list[tuple[int, Tensor, Tensor]]:
    """Write the signed max-pool of ``conv3x3(h)`` into ``pooled``, chunk by chunk of images;
    with ``with_moments``, also return each chunk's ``_moments`` of the conv output."""
    moments = []
    chunks = h.split(work.pooled.shape[0])
    for part, out in zip(chunks, pooled.split([len(part) for part in chunks])):
        c = work.conv3x3(part)
        if with_moments:
            moments.append(_moments(c))
        work.signed_max_pool(c, sign, out)
    return moments


class _LeanRecomputedBlock(torch.autograd.Function):
    """The lean block keeping no full-size map at all, for a cheap convolution (one input
    channel). It pools **before** normalising (``_ChunkWorkspace.signed_max_pool``: batch norm
    is a per-channel monotonic map), so the forward is one pass over chunks of images (``_images_per_chunk``:
    ~4 MB of conv output each): the convolution, its per-chunk moments (merged into the batch
    statistics) and its pooled map; the normalisation and the ReLU then run on the pooled map, a
    quarter of the size. It keeps only its input, the statistics and its output (for the
    ReLU's mask; the next block keeps that anyway). The backward recomputes the
    pooled map (a pass over the chunks), gets ``dL/dgamma`` and ``dL/dbeta`` (they fix ``a, b,
    k``) from it, then a second pass recomputes the convolution and its windows' winners for
    ``dL/dc`` and the convolution's gradients. Each chunk stays in cache: block 1's forward and
    backward ran ~1.6x faster than the whole-batch block's (``[75, 1, 28, 28]``, one thread) and
    1.5x (1,200 images, two threads); the workspace's matrix products and reused buffers made it
    another 1.6-3x faster (forward + backward, ``[75, 1, 28, 28]``, one thread, A/B in one
    process: 11-16 + 37-59 ms against 6-7 + 16-24 ms)."""

    @staticmethod
    def forward(ctx, h: Tensor, weight: Tensor, bias: Tensor | None, gamma: Tensor, beta: Tensor,
                eps: float) -> Tensor:
        sign = torch.where(gamma < 0, -1.0, 1.0).to(gamma.dtype) if bool((gamma < 0).any()) else None
        pooled = torch.empty((h.shape[0], weight.shape[0], h.shape[2] // 2, h.shape[3] // 2), dtype=h.dtype,
                             device=h.device, memory_format=torch.channels_last)
        work = _ChunkWorkspace(h, weight, bias, min(_images_per_chunk(h, weight.shape[0]), h.shape[0]))
        moments = _pool_chunks(work, h, sign, pooled, with_moments=True)
        mean, invstd = _merge_moments(moments, eps)
        scale = gamma * invstd  # the native kernel's form, c * scale + shift (the backward's too, to the bit)
        y = pooled.mul_(scale[:, None, None]).add_((beta - mean * scale)[:, None, None]).relu_()
        # y is kept for the ReLU's mask (y > 0 where the normalised map is): the next block keeps it
        # as its input anyway, so this costs no memory
        ctx.save_for_backward(h, weight, bias, gamma, mean, invstd, y)
        ctx.sign = sign  # the workspace dies here: kept for the backward, it raised a MAML
        return y         # worker's live peak to 115 MB (103-107 MB without)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y: Tensor):
        h, weight, bias, gamma, mean, invstd, y = ctx.saved_tensors
        sign = ctx.sign
        work = _ChunkWorkspace(h, weight, bias, min(_images_per_chunk(h, weight.shape[0]), h.shape[0]))
        pooled = torch.empty_like(grad_y, memory_format=torch.channels_last)
        _pool_chunks(work, h, sign, pooled, with_moments=False)  # recomputed: cheaper than keeping it
        grad_z = torch.ops.aten.threshold_backward(grad_y, y, 0)          # through the ReLU
        x_hat = pooled.sub_(mean[:, None, None]).mul_(invstd[:, None, None])  # x_hat at each window's winner
        grad_beta = grad_z.sum((0, 2, 3))                                     # sum(G)
        grad_gamma = x_hat.mul_(grad_z).sum((0, 2, 3))                        # sum(G * x_hat)
        del x_hat, pooled
        a, b, k = _norm_backward_coefficients(gamma, mean, invstd, grad_gamma, grad_beta,
                                              h.shape[0] * h.shape[2] * h.shape[3])
        grad_z.mul_(a[:, None, None])
        # dL/dc = a*G + b*c + k, chunk by chunk. Where gamma < 0 the buffer holds -c (the flip
        # signed_max_pool makes), so b is flipped with it: (-c) * (-b) = c * b exactly.
        b_c = b if sign is None else b * sign
        grad_matrix = torch.zeros_like(work.matrix)
        grad_h = []
        per_chunk = work.pooled.shape[0]
        for part, grad_part in zip(h.split(per_chunk), grad_z.split(per_chunk)):
            c = work.conv3x3(part)
            _, indices = work.signed_max_pool(c, sign)  # c now holds -c where gamma < 0
            grad_c = c.mul_(b_c[:, None, None]).add_(k[:, None, None])
            grad_c.flatten(2).scatter_add_(2, indices.flatten(2), grad_part.flatten(2))
            work.add_matrix_grad(grad_matrix, grad_c)
            if ctx.needs_input_grad[0]:
                grad_h.append(torch.ops.aten.convolution_backward(
                    grad_c, part, weight, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, [True, False, False])[0])
        taps = weight[0].numel()
        grad_w = grad_matrix[:taps].t().reshape(weight.shape) if ctx.needs_input_grad[1] else None
        grad_b = grad_matrix[taps] if bias is not None and ctx.needs_input_grad[2] else None
        grad_h = torch.cat(grad_h) if ctx.needs_input_grad[0] else None
        return grad_h, grad_w, grad_b, grad_gamma, grad_beta, None


def lean_block(h: Tensor, weight: Tensor, bias: Tensor | None, gamma: Tensor, beta: Tensor,
               eps: float = 1e-5, recompute_conv: bool = False) -> Tensor:
    """``relu(max_pool2d(batch_norm(conv2d(h, weight, bias, padding=1), gamma, beta), 2))``, batch statistics.

    For passes differentiated once (see the module docstring); a second ``autograd.grad``
    through it raises. ``recompute_conv`` keeps no full-size map: chunks of images, recomputed in
the backward (for a cheap convolution: one input channel).
    On the CPU the output is channels-last (``Conv4.functional_forward`` keeps that layout).
    """
    if _transforms_active() or h.is_cuda:  # the plain formula (exact under vmap)
        from .conv4 import batch_stat_norm_reference  # here, not at the top: conv4 imports this module
        c = batch_stat_norm_reference(F.conv2d(h, weight, bias, padding=1), gamma, beta, eps)
        return F.relu(F.max_pool2d(c, 2))
    if recompute_conv:
        return _LeanRecomputedBlock.apply(h, weight, bias, gamma, beta, eps)
    return _LeanBlock.apply(h, weight, bias, gamma, beta, eps)
