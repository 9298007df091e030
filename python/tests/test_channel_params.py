"""Weights per channel in other layouts: dafl.torch.mse_loss with weights and
binary_cross_entropy_with_logits with a per-class pos_weight tensor read channels_last
(and other dense layouts) in place - no aten copy in the profiler, no fallback to the
formula in torch operations - with the contiguous call's bits, the gradient in the same
layout, and PyTorch's values."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dafl.torch as dt

COPIES = {"aten::copy_", "aten::contiguous", "aten::clone", "aten::to", "aten::_to_copy"}


def _ops_run(f):
    with torch.autograd.profiler.profile() as prof:
        f()
    return {e.name for e in prof.function_events}


def _batch(n=2, c=5, h=9, w=7, seed=1, hard=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g) * 3
    y = torch.rand(n, c, h, w, generator=g)
    if hard:
        y = torch.where(y > 0.7, torch.ones_like(y), torch.where(y < 0.3, torch.zeros_like(y), y))
    return x, y


def _layouts(x, y):
    """channels_last, and (N, C, H, W) viewed from an (N, H, C, W)-ordered buffer."""
    yield "channels_last", (x.contiguous(memory_format=torch.channels_last),
                            y.contiguous(memory_format=torch.channels_last))
    yield "nhcw", (x.permute(0, 2, 1, 3).contiguous().permute(0, 2, 1, 3),
                   y.permute(0, 2, 1, 3).contiguous().permute(0, 2, 1, 3))


def _mse(weights_kind):
    def f(x, y):
        w = (torch.linspace(0.5, 2.0, x.shape[1]) if weights_kind == "c"
             else torch.linspace(0.5, 2.0, x.shape[0] * x.shape[1]).reshape(x.shape[:2]))
        return dt.mse_loss(x, y, w)
    return f


def _bce(pw_kind):
    def f(x, y):
        c = x.shape[1]
        pw = (torch.linspace(0.5, 3.0, c).reshape(c, 1, 1) if pw_kind == "c"
              else torch.linspace(0.5, 3.0, x.shape[0] * c).reshape(x.shape[0], c, 1, 1))
        return dt.binary_cross_entropy_with_logits(x, y, pos_weight=pw)
    return f


LOSSES = {"mse_c": _mse("c"), "mse_nc": _mse("nc"), "bce_c": _bce("c"), "bce_nc": _bce("nc")}


@pytest.mark.parametrize("name", LOSSES)
def test_layouts_in_place_with_the_contiguous_bits(name):
    x, y = _batch(hard=name.startswith("bce"))
    loss_fn = LOSSES[name]
    xc = x.clone().requires_grad_()
    loss_c = loss_fn(xc, y)
    loss_c.backward()
    for layout, (xl, yl) in _layouts(x, y):
        assert not xl.is_contiguous() and xl.stride() == yl.stride()
        xl = xl.detach().requires_grad_()
        result = {}

        def step():
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # no fallback to the unfused formula
                result["loss"] = loss_fn(xl, yl)
                result["loss"].backward()
        ops = _ops_run(step)
        assert not (ops & COPIES), f"{name} {layout}: copies {sorted(ops & COPIES)}"
        assert torch.equal(result["loss"], loss_c), layout
        assert xl.grad.stride() == xl.stride(), layout
        assert torch.equal(xl.grad, xc.grad), layout


def test_gradient_written_in_place_into_the_input_layout():
    x, y = _batch()
    xl = x.contiguous(memory_format=torch.channels_last)
    yl = y.contiguous(memory_format=torch.channels_last)
    w = torch.linspace(0.5, 2.0, x.shape[1])
    loss = dt.mse_loss(xl.requires_grad_(), yl, w, reduction="none")
    assert loss.stride() == xl.stride()
    ref = (xl.detach() - yl) ** 2 * w.reshape(1, -1, 1, 1)
    torch.testing.assert_close(loss, ref, rtol=1e-6, atol=0)


@pytest.mark.parametrize("shape,pw_shape", [((2, 5, 9, 7), (5, 1, 1)), ((2, 5, 9, 7), (2, 5, 1, 1)),
                                            ((16, 6), (6,)), ((4, 3, 11), (3, 1))])
@pytest.mark.parametrize("channels_last", [False, True])
def test_bce_pos_weight_matches_pytorch(shape, pw_shape, channels_last):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(shape, generator=g) * 4
    y = torch.rand(shape, generator=g)
    y = torch.where(y > 0.6, torch.ones_like(y), torch.where(y < 0.3, torch.zeros_like(y), y))
    pw = torch.rand(pw_shape, generator=g) * 3
    if channels_last:
        if len(shape) != 4:
            pytest.skip("channels_last is 4-D")
        x = x.contiguous(memory_format=torch.channels_last)
        y = y.contiguous(memory_format=torch.channels_last)
    for reduction in ("mean", "sum", "none"):
        a = x.clone().requires_grad_()
        b = x.clone().requires_grad_()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ours = dt.binary_cross_entropy_with_logits(a, y, pos_weight=pw, reduction=reduction)
        theirs = F.binary_cross_entropy_with_logits(b, y, pos_weight=pw, reduction=reduction)
        torch.testing.assert_close(ours, theirs, rtol=2e-5, atol=1e-6)
        ours.sum().backward()
        theirs.sum().backward()
        torch.testing.assert_close(a.grad, b.grad, rtol=2e-5, atol=1e-6)


def test_bce_pos_weight_shapes_the_c_call_cannot_take_fall_back():
    x, y = _batch(hard=True)
    # varies along two dimensions other than the images: the formula in torch operations
    pw = torch.rand(5, 9, 1) + 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the one-time warning of the unfused path
        ours = dt.binary_cross_entropy_with_logits(x, y, pos_weight=pw)
    torch.testing.assert_close(ours, F.binary_cross_entropy_with_logits(x, y, pos_weight=pw))
    # a negative pos_weight: PyTorch takes it, the C call does not
    pw = torch.tensor([1.0, -1.0, 2.0, 0.5, 1.0]).reshape(5, 1, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = dt.binary_cross_entropy_with_logits(x, y, pos_weight=pw)
    torch.testing.assert_close(ours, F.binary_cross_entropy_with_logits(x, y, pos_weight=pw))


def test_mse_layout_with_images_not_outermost_takes_one_copy():
    x, y = _batch()
    # (N, C, H, W) viewed from a (C, N, H, W)-ordered buffer: the images are not outermost
    xl = x.transpose(0, 1).contiguous().transpose(0, 1)
    yl = y.transpose(0, 1).contiguous().transpose(0, 1)
    w = torch.linspace(0.5, 2.0, x.shape[0] * x.shape[1]).reshape(x.shape[:2])
    a = x.clone().requires_grad_()
    b = xl.clone().requires_grad_()
    la = dt.mse_loss(a, y, w)
    lb = dt.mse_loss(b, yl, w)
    la.backward()
    lb.backward()
    assert torch.equal(la, lb)
    assert torch.equal(a.grad, b.grad)
    assert b.grad.stride() == b.stride()


def test_numpy_mse_channel_dim_and_bce_pos_weights():
    import dafl
    from dafl import _dafl
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 3, 5)).astype(np.float32)
    y = rng.random((2, 4, 3, 5)).astype(np.float32)
    w = np.linspace(0.5, 2.0, 4).astype(np.float32)
    ref, _ = _dafl.mse(x, y, weights=w)
    nhwc, _ = _dafl.mse(np.ascontiguousarray(x.transpose(0, 2, 3, 1)),
                        np.ascontiguousarray(y.transpose(0, 2, 3, 1)), weights=w, channel_dim=3)
    assert np.float32(ref) == np.float32(nhwc)
    with pytest.raises(ValueError, match="channel_dim"):
        _dafl.mse(x, y, weights=w, channel_dim=4)
    yb = (y > 0.5).astype(np.float32)
    ref_b, _ = _dafl.bce_with_logits(x, yb, pos_weights=w, channels=4, channel_stride=15)
    nhwc_b, _ = _dafl.bce_with_logits(np.ascontiguousarray(x.transpose(0, 2, 3, 1)),
                                      np.ascontiguousarray(yb.transpose(0, 2, 3, 1)),
                                      pos_weights=w, channels=4, channel_stride=1)
    assert np.float32(ref_b) == np.float32(nhwc_b)
    with pytest.raises(dafl.DaflError):
        _dafl.bce_with_logits(x, yb, pos_weights=w, channels=4, channel_stride=0)


@pytest.mark.skipif(not dt.HAVE_CUSTOM_OPS,
                    reason=f"torch {torch.__version__} has no custom operators")
def test_operator_called_directly_honours_its_pos_weight_tensor():
    """torch.ops.dafl.bce_with_logits called with a pos_weight tensor: per class it takes
    the fused C call, in another shape PyTorch's formula; never the tensor left out (the
    operator once called C with the scalar pos_weight alone, a silently wrong result)."""
    from dafl import _torch_ops as O
    from dafl import _dafl as D
    x, y = _batch(hard=True)
    positives = max(int((y == 1).sum()), 1)
    # (reduction, normalizer, grad_scale, what the sum is divided by)
    reductions = ((D.REDUCTION_SUM, 1.0, 1.0, 1.0), (D.REDUCTION_MEAN, 1.0, 0.5, x.numel()),
                  (D.REDUCTION_POSITIVES, 1.0, 2.0, positives),
                  (D.REDUCTION_NORMALIZER, 7.0, 0.25, 7.0))
    for pw in (torch.linspace(0.5, 3.0, 5).reshape(5, 1, 1), torch.rand(5, 9, 1) + 0.5):
        for reduction, normalizer, grad_scale, divisor in reductions:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the unfused path's one-time warning
                loss, grad = O.bce_with_logits.op(x, y, 1.0, pw, reduction, normalizer,
                                                  grad_scale, False, True)
            a = x.clone().requires_grad_()
            want = F.binary_cross_entropy_with_logits(a, y, pos_weight=pw,
                                                      reduction="sum") / divisor
            (want * grad_scale).backward()
            torch.testing.assert_close(loss, want.detach(), rtol=2e-6, atol=0)
            torch.testing.assert_close(grad, a.grad, rtol=2e-5, atol=1e-6)
