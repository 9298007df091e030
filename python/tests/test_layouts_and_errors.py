"""What crosses the boundary: zero-copy where it can, one copy with the right answer for
other strides and dtypes, clear exceptions for the rest, and dafl statuses as
DaflError."""

import numpy as np
import pytest
import torch

import dafl
import dafl.torch as dt
import references as ref
from conftest import assert_close, heatmap_batch


def test_noncontiguous_view_gives_the_contiguous_answer(rng):
    """The ctypes shortcut (data_ptr on a transposed view) reads the wrong elements; the
    DLPack path copies a strided view once and gets the same answer as its copy."""
    y = torch.tensor(heatmap_batch(rng, n=2, c=3, h=16, w=16))
    x = torch.tensor(rng.normal(0, 3, y.shape).astype(np.float32))
    xt, yt = x.transpose(2, 3), y.transpose(2, 3)
    assert not xt.is_contiguous()
    xl = xt.clone().requires_grad_(True)
    l_view = dt.penalty_focal_loss(xl, yt)
    l_view.backward()
    xc = xt.contiguous().requires_grad_(True)
    l_copy = dt.penalty_focal_loss(xc, yt.contiguous())
    l_copy.backward()
    assert l_view.item() == l_copy.item()
    assert torch.equal(xl.grad, xc.grad)
    # a strided slice too
    xs = x[:, ::2]
    ys = y[:, ::2]
    assert_close(dt.penalty_focal_loss(xs, ys),
                 ref.penalty_focal_logits(xs.double(), ys.double()), 2e-6, 0)


def test_channels_last_gradient_keeps_layout(rng):
    y = torch.tensor(heatmap_batch(rng)).contiguous(memory_format=torch.channels_last)
    x = torch.tensor(rng.normal(0, 3, y.shape).astype(np.float32))
    xc = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    l = dt.CenterNetFocalLoss()(xc, y)
    l.backward()
    assert xc.grad.is_contiguous(memory_format=torch.channels_last)
    l_r, g_r = ref.value_and_grad(ref.centernet_focal, x.double(), y.double())
    assert_close(l, l_r, 2e-6, 0, "loss")
    assert_close(xc.grad, g_r, 1e-5, 1e-6, "grad")


def test_channels_last_softmax_is_read_in_place(rng):
    x = torch.tensor(rng.normal(0, 2, (2, 5, 7, 6)).astype(np.float32))
    labels = torch.tensor(rng.integers(0, 5, (2, 7, 6)))
    xc = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    l = dt.softmax_focal_loss(xc, labels)
    l.backward()
    l_r, g_r = ref.value_and_grad(ref.softmax_focal, x.double(), labels)
    assert_close(l, l_r, 2e-6, 0, "loss")
    assert_close(xc.grad, g_r, 1e-5, 1e-6, "grad")
    assert xc.grad.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_dtypes(rng, dtype):
    """Read as they are (libdafl widens each element to float32, exactly) and the
    gradient rounded once to the input's dtype: the float32 answer rounded to dtype
    (every loss, layout and dtype mix: test_half_precision.py)."""
    y = torch.tensor(heatmap_batch(rng))
    x = torch.tensor(rng.normal(0, 3, y.shape).astype(np.float32)).to(dtype)
    xd = x.clone().requires_grad_(True)
    l = dt.penalty_focal_loss(xd, y.to(dtype))
    l.backward()
    assert l.dtype == dtype and xd.grad.dtype == dtype
    x32 = x.float().requires_grad_(True)
    l32 = dt.penalty_focal_loss(x32, y.to(dtype).float())
    l32.backward()
    assert l.item() == l32.to(dtype).item()
    assert torch.equal(xd.grad, x32.grad.to(dtype))


def test_float64_is_computed_in_float64(rng):
    """float64 logits are not rounded to float32: the loss and gradient are the float64
    reference's (the published formula, written independently), to float64 rounding."""
    y = torch.tensor(heatmap_batch(rng)).double()
    x = torch.tensor(rng.normal(0, 3, y.shape))
    dafl._torch_ops._warned.clear()  # the warning is given once per process
    with pytest.warns(UserWarning, match="unfused"):
        l, g = ref.value_and_grad(dt.penalty_focal_loss, x, y)
    l_r, g_r = ref.value_and_grad(ref.penalty_focal_logits, x, y)
    assert l.dtype == torch.float64 and g.dtype == torch.float64
    assert_close(l, l_r, 1e-13, 0, "loss")
    assert_close(g, g_r, 1e-12, 1e-13, "grad")
    # and float32 could not be that close
    l32 = dt.penalty_focal_loss(x.float(), y.float()).double()
    assert abs(l32 - l_r) > 1e-12 * abs(l_r)


def test_numpy_readonly_and_float64_arrays(rng):
    y = heatmap_batch(rng)
    x = rng.normal(0, 3, y.shape)
    ro = x.astype(np.float32)
    ro.flags.writeable = False
    l1, g1 = dafl.penalty_focal(ro, y)
    l2, g2 = dafl.penalty_focal(x, y)  # float64: rounded to float32, results as float64
    assert g2.dtype == np.float64 and isinstance(l2, np.float64)
    assert l1 == np.float32(l2) and np.array_equal(g1, g2.astype(np.float32))


def test_wrong_dtypes_shapes_devices_raise():
    x = torch.zeros(2, 3, 4, 4)
    with pytest.raises(TypeError, match="'logits'"):
        dt.penalty_focal_loss(x.long(), x)
    with pytest.raises(TypeError, match="'target'"):
        dt.penalty_focal_loss(x, x.int())
    with pytest.raises(ValueError, match="'target' has shape"):
        dt.penalty_focal_loss(x, x[:, :2])
    with pytest.raises(TypeError, match="'labels'"):
        dt.softmax_focal_loss(x, torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="'labels' has shape"):
        dt.softmax_focal_loss(x, torch.zeros(2, 4, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="'weights'"):
        dt.mse_loss(x, x, weights=torch.ones(5))
    with pytest.raises(TypeError, match="'input'"):
        dafl.penalty_focal([1, 2, 3], [0.0, 1.0, 0.0])
    meta = torch.zeros(3, device="meta")
    with pytest.raises(ValueError, match="'inputs' is on meta"):
        dt.sigmoid_focal_loss(meta, meta)
    if torch.cuda.is_available():  # pragma: no cover - no GPU on CI
        with pytest.raises(ValueError, match="CPU"):
            dt.sigmoid_focal_loss(x.cuda(), x.cuda())


def test_c_layer_refuses_what_it_cannot_read():
    """dafl._dafl itself names the argument for a dtype, a layout or a device it does not
    read (the Python layer converts before it gets there)."""
    from dafl import _dafl
    x = np.zeros((4, 4), np.float32)
    with pytest.raises(TypeError, match="'target' must be float32, bfloat16 or float16, "
                       "got float64"):
        _dafl.penalty_focal(x, np.zeros((4, 4)))
    with pytest.raises(ValueError, match="'input' must be C-contiguous"):
        _dafl.penalty_focal(x.T[:, ::2], x[:, :2])
    with pytest.raises(TypeError, match="__dlpack__"):
        _dafl.penalty_focal([1.0], x)
    with pytest.raises(ValueError, match="'loss' must be an output array"):
        _dafl.penalty_focal(x, x, reduction=dafl._losses.REDUCTIONS["none"])


def test_dafl_statuses_become_daflerror(rng):
    x = np.zeros(8, np.float32)
    bad = np.full(8, 1.5, np.float32)
    with pytest.raises(dafl.DaflError, match="DAFL_ERR_INVALID_TARGET") as e:
        dafl.penalty_focal(x, bad)
    assert e.value.status == 4 and e.value.status_name == "DAFL_ERR_INVALID_TARGET"
    assert isinstance(e.value, ValueError) and str(e.value) == dafl.status_string(4)
    with pytest.raises(dafl.DaflError, match="DAFL_ERR_INVALID_PARAMETER"):
        dafl._dafl.penalty_focal(x, x, alpha=-1.0)  # the C layer's own status
    with pytest.raises(ValueError, match=r"'alpha' must be a finite number >= 0, got -1.0"):
        dafl.penalty_focal(x, x, alpha=-1.0)
    with pytest.raises(dafl.DaflError, match="DAFL_ERR_INVALID_LABEL"):
        dafl.softmax_focal(np.zeros((1, 3, 2), np.float32), np.array([[0, 7]]))
    with pytest.raises(dafl.DaflError, match="DAFL_ERR_INVALID_PARAMETER"):
        dafl.draw_gaussian(np.zeros((4, 4), np.float32), (1, 1), -1)
    with pytest.raises(ValueError, match=r"'threads' must be in \[0, 256\], got 100000"):
        dafl.set_num_threads(100000)
    with pytest.raises(ValueError, match="reduction"):
        dafl.penalty_focal(x, x, reduction="avg")
    g = np.full(8, 7.0, np.float32)
    from dafl import _dafl
    with pytest.raises(dafl.DaflError):
        _dafl.penalty_focal(x, bad, None, g)
    assert np.all(g == 7.0)  # a failing call writes nothing
    # a tensor whose targets are invalid: the same exception from dafl.torch
    with pytest.raises(dafl.DaflError, match="TARGET"):
        dt.penalty_focal_loss(torch.zeros(8, requires_grad=True), torch.full((8,), -0.5))


def test_zero_copy_for_contiguous_float32():
    """The C layer reads a C-contiguous float32 tensor where it lies: a view into a
    bigger buffer works, and the gradient lands in the caller's buffer."""
    from dafl import _dafl
    base = torch.zeros(10)
    x = base[2:6]
    y = torch.tensor([1.0, 0.0, 0.0, 0.0])
    g = torch.full((4,), 9.0)
    loss, stats = _dafl.penalty_focal(x, y, None, g)
    assert stats.positives == 1 and stats.elements == 4
    assert g[0].item() < 0 and g[1].item() > 0
