"""Conv-4's faster kernels compute exactly what the plain layers compute (issue 18).

``max_pool2x2`` must give ``F.max_pool2d(x, 2)``'s values, gradients and second-order
gradients bit for bit (the chapters' stored outputs depend on it); ``lean_block`` must give a
plain [conv, batch norm, max-pool, ReLU] block's values and first-order gradients, and refuse
a second differentiation.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from metalearn_lite.models import Conv4
from metalearn_lite.models.conv4 import MaxPool2x2
from metalearn_lite.models import fast_ops
from metalearn_lite.models.fast_ops import _merge_moments, _moments, lean_block, max_pool2x2

CL = torch.channels_last


def _images(shape, seed, blank_rows=0, layout=torch.contiguous_format):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    if blank_rows:  # constant regions: every 2x2 window there is a tie
        x[..., :blank_rows, :] = 0.25
    return x.contiguous(memory_format=layout)


@pytest.mark.parametrize("shape", [(3, 4, 8, 8), (2, 5, 7, 7), (4, 3, 3, 3), (1, 64, 14, 14)])
@pytest.mark.parametrize("layout", [torch.contiguous_format, CL])
def test_max_pool2x2_equals_max_pool2d_to_the_bit_with_second_order(shape, layout):
    x = _images(shape, seed=sum(shape), blank_rows=2, layout=layout).requires_grad_()
    ref = F.max_pool2d(x, 2)
    out = max_pool2x2(x)
    assert torch.equal(out, ref) and out.shape == ref.shape
    g = torch.randn_like(ref).requires_grad_()
    ref_gx, = torch.autograd.grad(ref, x, g, create_graph=True)
    gx, = torch.autograd.grad(out, x, g, create_graph=True)
    assert torch.equal(gx, ref_gx)                       # ties go to the same element
    v = torch.randn_like(gx)
    assert torch.equal(torch.autograd.grad(gx, g, v)[0], torch.autograd.grad(ref_gx, g, v)[0])


def test_max_pool2x2_under_torch_func_and_the_module_is_a_max_pool():
    x = _images((2, 3, 6, 6), seed=1)
    f = lambda t: max_pool2x2(t).square().sum()  # noqa: E731
    ref = torch.func.grad(lambda t: F.max_pool2d(t, 2).square().sum())(x)
    assert torch.equal(torch.func.grad(f)(x), ref)
    assert torch.equal(torch.vmap(max_pool2x2)(x.unsqueeze(1)).squeeze(1), F.max_pool2d(x, 2))
    pool = MaxPool2x2()
    assert isinstance(pool, nn.MaxPool2d) and pool.kernel_size == 2 and pool.stride == 2
    assert Conv4().features[0][2].__class__ is MaxPool2x2


def _plain_block(h, w, b, gamma, beta, eps=1e-5):
    c = F.batch_norm(F.conv2d(h, w, b, padding=1), None, None, gamma, beta, training=True, eps=eps)
    return F.relu(F.max_pool2d(c, 2))


def _block_inputs(cin, size, seed, layout, blank_rows, channels=8):
    """Inputs of a block in float64, ties in the blank rows, one negative gamma (min-pooling in effect)."""
    gen = torch.Generator().manual_seed(seed)
    h = _images((5, cin, size, size), seed=size, blank_rows=blank_rows, layout=layout).requires_grad_()
    # Weights on a 1/64 grid: over the blank (0.25) rows every partial sum of the convolution is
    # exact, so tied windows tie in any kernel's summation order (this one's matrix product and
    # the plain block's convolution); with arbitrary weights a kernel's rounding can split a tie.
    w = (torch.randn(channels, cin, 3, 3, generator=gen, dtype=torch.float64) * 64).round_().div_(64).requires_grad_()
    b = torch.randn(channels, generator=gen, dtype=torch.float64, requires_grad=True)
    gamma = torch.randn(channels, generator=gen, dtype=torch.float64)
    gamma[0] = -1.5
    gamma.requires_grad_()
    beta = torch.randn(channels, generator=gen, dtype=torch.float64, requires_grad=True)
    return h, w, b, gamma, beta


def _assert_equals_plain_block(inputs, recompute):
    """``lean_block``'s values and first-order gradients are the plain block's."""
    ref = _plain_block(*inputs)
    out = lean_block(*inputs, recompute_conv=recompute)
    assert torch.allclose(out, ref, rtol=0, atol=1e-12)
    g = torch.randn_like(ref)
    leaves = [t for t in inputs if t is not None]  # a block without bias passes None
    for a, r in zip(torch.autograd.grad(out, leaves, g), torch.autograd.grad(ref, leaves, g)):
        assert torch.allclose(a, r, rtol=0, atol=1e-11 * max(1.0, float(r.abs().max())))
    return out


@pytest.mark.parametrize("cin,size,recompute,layout", [(1, 12, True, CL), (1, 12, False, torch.contiguous_format),
                                                       (6, 7, False, CL), (6, 10, True, torch.contiguous_format)])
def test_lean_block_equals_the_plain_block_first_order(cin, size, recompute, layout):
    inputs = _block_inputs(cin, size, seed=cin * size, layout=layout, blank_rows=3)
    _assert_equals_plain_block(inputs, recompute)
    # Differentiated once only: a second differentiation is an error, not a silent wrong answer.
    gx, = torch.autograd.grad(lean_block(*inputs, recompute_conv=recompute).square().sum(), inputs[1],
                              create_graph=True)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(gx.sum(), inputs[3])


@pytest.mark.parametrize("images_per_chunk", [1, 2, 3])
def test_recomputed_block_in_chunks_equals_the_plain_block(monkeypatch, images_per_chunk):
    """The first block works through the images in chunks (statistics merged over chunks, the
    windows' winners recomputed in the backward): the same values and gradients as the plain
    block, ties and negative gammas included, for any split of the batch."""
    monkeypatch.setattr(fast_ops, "_images_per_chunk", lambda h, out_channels: images_per_chunk)
    inputs = _block_inputs(1, 10, seed=images_per_chunk, layout=CL, blank_rows=4, channels=6)
    out = _assert_equals_plain_block(inputs, recompute=True)
    assert out.is_contiguous(memory_format=CL)


def test_recomputed_block_without_bias_on_odd_sizes(monkeypatch):
    """The workspace convolution (a matrix product into reused buffers) with no bias, an odd
    image size (the pool drops the last row and column) and a last chunk smaller than the rest."""
    monkeypatch.setattr(fast_ops, "_images_per_chunk", lambda h, out_channels: 2)
    h, w, _, gamma, beta = _block_inputs(1, 9, seed=11, layout=torch.contiguous_format, blank_rows=2)
    _assert_equals_plain_block((h, w, None, gamma, beta), recompute=True)


def test_recomputed_block_backward_twice_with_a_retained_graph():
    """The backward frees the forward's chunk buffers; a second backward (``retain_graph=True``)
    makes new ones and gives the same gradients."""
    inputs = _block_inputs(1, 10, seed=5, layout=CL, blank_rows=2)
    loss = lean_block(*inputs, recompute_conv=True).square().sum()
    first = torch.autograd.grad(loss, inputs, retain_graph=True)
    second = torch.autograd.grad(loss, inputs)
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_batch_stats_merged_over_chunks_match_var_mean():
    c = _images((7, 5, 9, 9), seed=4, layout=CL) * 3 + 2
    parts = [_moments(part, rows_per_chunk=37) for part in c.split([1, 4, 2])]  # uneven chunks, uneven rows
    mean, invstd = _merge_moments(parts, 1e-5)
    var, ref_mean = torch.var_mean(c, dim=(0, 2, 3), correction=0)
    assert torch.allclose(mean, ref_mean, rtol=1e-13) and torch.allclose(invstd, torch.rsqrt(var + 1e-5), rtol=1e-12)


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_functional_forward_equals_functional_call(norm):
    torch.manual_seed(0)
    model = Conv4(num_classes=4, hidden=8, norm=norm).double()
    params = {k: v * 1.5 for k, v in model.named_parameters()}
    x = _images((7, 1, 28, 28), seed=2, blank_rows=6)
    ref = functional_call(model, params, (x,))
    assert torch.equal(model.functional_forward(params, x), ref)
    if norm == "batch":
        assert torch.allclose(model.functional_forward(params, x, lean=True), ref, rtol=0, atol=1e-12)
    else:
        with pytest.raises(ValueError, match="norm='batch'"):
            model.functional_forward(params, x, lean=True)
    with pytest.raises(ValueError, match=r"\[N, 1, H, W\]"):
        model.functional_forward(params, x[0])


def test_lean_protonet_trains_with_the_same_loss_and_gradients():
    from metalearn_lite import Episode
    from metalearn_lite.algorithms.protonet import ProtoNet
    torch.manual_seed(1)
    encoder = Conv4(num_classes=None, hidden=8).double()
    plain, lean = ProtoNet(encoder), ProtoNet(encoder, lean=True)
    x = _images((4, 5, 1, 28, 28), seed=9, blank_rows=5)
    episode = Episode(x[:, :2].reshape(-1, 1, 28, 28), torch.arange(4).repeat_interleave(2),
                      x[:, 2:].reshape(-1, 1, 28, 28), torch.arange(4).repeat_interleave(3),
                      num_ways=4, num_shots=2, num_queries=3)
    ref, out = plain(episode), lean(episode)
    assert torch.allclose(out.loss, ref.loss, rtol=1e-12)
    params = list(encoder.parameters())
    for a, r in zip(torch.autograd.grad(out.loss, params), torch.autograd.grad(ref.loss, params)):
        assert torch.allclose(a, r, rtol=0, atol=1e-11)
    with torch.no_grad():  # evaluation runs the encoder itself
        assert torch.equal(lean(episode).logits, plain(episode).logits)
    with pytest.raises(ValueError, match="functional_forward"):
        ProtoNet(nn.Flatten(), lean=True)


def test_lean_block_under_vmap_falls_back_to_the_plain_formula():
    gen = torch.Generator().manual_seed(5)
    h = torch.rand(3, 2, 8, 8, generator=gen, dtype=torch.float64)
    w, b = torch.randn(4, 2, 3, 3, generator=gen, dtype=torch.float64), torch.randn(4, generator=gen, dtype=torch.float64)
    gamma, beta = torch.rand(4, generator=gen, dtype=torch.float64), torch.randn(4, generator=gen, dtype=torch.float64)
    out = torch.vmap(lambda t: lean_block(t, w, b, gamma, beta))(h.unsqueeze(0))[0]
    assert torch.allclose(out, _plain_block(h, w, b, gamma, beta), rtol=0, atol=1e-12)
