"""Zero copy at the PyTorch boundary: logits and targets that share a dense layout
(channels_last, any permutation) are read in place - no aten copy in the profiler, the
contiguous call's bits, the gradient in the same layout - and the buffer cache's basic
rules (its steady state per loss: test_zero_copy_contract.py)."""

import resource

import numpy as np
import pytest
import torch

import dafl
import dafl.torch as dt
from conftest import heatmap_batch

COPIES = {"aten::copy_", "aten::contiguous", "aten::clone", "aten::to", "aten::_to_copy"}


def _batch(n=2, c=3, h=12, w=10, seed=3):
    rng = np.random.default_rng(seed)
    y = torch.tensor(heatmap_batch(rng, n, c, h, w, peaks=2))
    x = torch.tensor(rng.normal(0, 2, y.shape).astype(np.float32))
    return x, y


LOSSES = {
    "centernet": lambda x, y: dt.CenterNetFocalLoss()(x, y),
    "penalty_none": lambda x, y: dt.penalty_focal_loss(x, y, reduction="none"),
    "sigmoid_focal": lambda x, y: dt.sigmoid_focal_loss(x, y, reduction="sum"),
    "bce": lambda x, y: dt.binary_cross_entropy_with_logits(x, y),
    "mse": lambda x, y: dt.mse_loss(x, y),
}


def _ops_run(f):
    with torch.autograd.profiler.profile() as prof:
        f()
    return {e.name for e in prof.function_events}


@pytest.mark.parametrize("layout", ["channels_last", "permuted"])
@pytest.mark.parametrize("name", LOSSES)
def test_shared_dense_layouts_are_read_in_place(name, layout):
    x, y = _batch()
    if layout == "channels_last":
        xl = x.to(memory_format=torch.channels_last)
        yl = y.to(memory_format=torch.channels_last)
    else:  # (N, C, H, W) viewed from a (W, N, H, C)-ordered buffer
        xl = x.permute(3, 0, 2, 1).contiguous().permute(1, 3, 2, 0)
        yl = y.permute(3, 0, 2, 1).contiguous().permute(1, 3, 2, 0)
    assert not xl.is_contiguous() and xl.stride() == yl.stride()
    loss_fn = LOSSES[name]
    xc = x.clone().requires_grad_()
    loss_c = loss_fn(xc, y)
    loss_c.sum().backward()

    xl = xl.detach().requires_grad_()
    result = {}

    def step():
        result["loss"] = loss = loss_fn(xl, yl)
        loss.sum().backward()
    ops = _ops_run(step)
    copies = ops & COPIES
    assert not copies, f"copies at the boundary: {sorted(copies)}"
    assert torch.equal(result["loss"].detach().contiguous(), loss_c.detach().contiguous())
    assert xl.grad.stride() == xl.stride()
    assert torch.equal(xl.grad.contiguous(), xc.grad)


def test_softmax_focal_channels_last_in_place():
    x, _ = _batch(c=5)
    # int32 labels (int64 ones are converted: one copy of the labels, 1/C of the logits)
    labels = torch.randint(0, 5, (2, 12, 10), generator=torch.Generator().manual_seed(1),
                           dtype=torch.int32)
    xc = x.clone().requires_grad_()
    dt.softmax_focal_loss(xc, labels).backward()
    xl = x.to(memory_format=torch.channels_last).requires_grad_()
    loss = {}
    ops = _ops_run(lambda: loss.setdefault("v", dt.softmax_focal_loss(xl, labels)).backward())
    assert not ops & COPIES, f"copies at the boundary: {sorted(ops & COPIES)}"
    assert xl.grad.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(xl.grad.contiguous(), xc.grad)


def test_layouts_that_differ_take_one_copy_and_keep_the_bits():
    x, y = _batch()
    xl = x.to(memory_format=torch.channels_last).requires_grad_()
    xc = x.clone().requires_grad_()
    dt.CenterNetFocalLoss()(xl, y).backward()  # target contiguous, logits channels_last
    dt.CenterNetFocalLoss()(xc, y).backward()
    assert xl.grad.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(xl.grad.contiguous(), xc.grad)


# ---- page faults -------------------------------------------------------------------------

needs_cache = pytest.mark.skipif(not hasattr(torch._C, "_storage_Use_Count"),
                                 reason=f"torch {torch.__version__} cannot tell when a "
                                 "buffer is free (no _storage_Use_Count): no buffer cache")


@pytest.fixture
def cache_small_buffers(monkeypatch):
    """The cache leaves buffers under 1 MiB to the allocator: small test batches go
    through it too, so that its rules are what a test exercises."""
    from dafl import _buffers
    monkeypatch.setattr(_buffers, "MIN_BYTES", 0)


def _minor_faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


@needs_cache
def test_a_buffer_still_referenced_is_never_reused(cache_small_buffers):
    x, y = _batch()
    x.requires_grad_()
    dt.CenterNetFocalLoss()(x, y).backward()
    kept = x.grad                 # the user keeps the first gradient
    first = kept.clone()
    view = x.grad[0]              # and a view of it
    x.grad = None
    dt.CenterNetFocalLoss()(x * 2, y).backward()
    assert x.grad.data_ptr() != kept.data_ptr()
    assert torch.equal(kept, first) and torch.equal(view, first[0])
    del kept
    x.grad = None
    dt.CenterNetFocalLoss()(x * 3, y).backward()
    assert torch.equal(view, first[0])  # the view alone keeps the storage out of reuse


@needs_cache
def test_released_gradient_is_reused_and_the_cache_can_be_turned_off(cache_small_buffers):
    x, y = _batch()
    x.requires_grad_()
    dt.CenterNetFocalLoss()(x, y).backward()
    ptr = x.grad.data_ptr()
    x.grad = None
    dt.CenterNetFocalLoss()(x, y).backward()
    assert x.grad.data_ptr() == ptr
    try:
        dt.set_buffer_cache(False)
        x.grad = None
        dt.CenterNetFocalLoss()(x, y).backward()
        assert x.grad is not None
    finally:
        dt.set_buffer_cache(True)


@needs_cache
def test_render_heatmaps_into_a_new_tensor_faults_in_nothing_in_steady_state():
    shape = (8, 80, 128, 128)
    keypoints = [[(10.0 * (i + 1), 20.0, i % 80, 4.0)] for i in range(8)]
    for _ in range(2):
        heatmaps = dt.render_heatmaps(keypoints, shape=shape)
        del heatmaps
    before = _minor_faults()
    for _ in range(3):
        heatmaps = dt.render_heatmaps(keypoints, shape=shape)
        assert heatmaps[0, 0, 20, 10] == 1.0
        del heatmaps
    per_call = (_minor_faults() - before) / 3
    pages = int(np.prod(shape)) * 4 // resource.getpagesize()
    assert per_call < pages / 2, f"{per_call:.0f} minor faults per call ({pages} pages)"
