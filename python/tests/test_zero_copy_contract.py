"""The buffer cache's contract as a training loop exercises it (test_zero_copy.py covers
the layouts read in place, one loss's page faults and the cache's basic reuse rules):
a gradient that autograd or the user still holds is never handed out again - two loss
calls of one shape before a backward (stacked heads), gradients accumulated without
zeroing, a graph kept for a second backward -; a forked child starts with an empty cache
and computes the same bits; the cache stays within its bounds; and in steady state no
loss faults in a fresh gradient, in either layout."""

import os
import resource

import numpy as np
import pytest
import torch

import dafl
import dafl.torch as dt
from dafl import _buffers
from conftest import heatmap_batch

needs_cache = pytest.mark.skipif(not hasattr(torch._C, "_storage_Use_Count"),
                                 reason=f"torch {torch.__version__} has no buffer cache")

ELEMENTWISE = {
    "centernet": lambda x, y: dt.CenterNetFocalLoss()(x, y),
    "sigmoid_focal": lambda x, y: dt.sigmoid_focal_loss(x, y, reduction="mean"),
    "bce": lambda x, y: dt.binary_cross_entropy_with_logits(x, y),
    "mse": lambda x, y: dt.mse_loss(x, y),
}


@pytest.fixture(autouse=True)
def cache_small_buffers(monkeypatch):
    """The cache leaves buffers under 1 MiB to the allocator: these small batches go
    through it too, so that its rules are what the tests exercise."""
    monkeypatch.setattr(_buffers, "MIN_BYTES", 0)


def _batch(seed, n=2, c=3, h=12, w=10):
    rng = np.random.default_rng(seed)
    y = torch.tensor(heatmap_batch(rng, n, c, h, w, peaks=2))
    x = torch.tensor(rng.normal(0, 2, y.shape).astype(np.float32))
    return x, y


def _grad(loss_fn, x, y):
    """The gradient of one call alone, as a tensor nobody else holds."""
    x = x.detach().clone().requires_grad_()
    loss_fn(x, y).backward()
    return x.grad.clone()


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_two_calls_of_one_shape_before_one_backward(name):
    """Stacked heads (CenterNet's hourglass: one loss per stack) call the loss twice with
    the same shape before backward: the first call's gradient, still in the graph, must
    not become the second call's buffer."""
    loss_fn = ELEMENTWISE[name]
    (x1, y1), (x2, y2) = _batch(1), _batch(2)
    want1, want2 = _grad(loss_fn, x1, y1), _grad(loss_fn, x2, y2)
    a, b = x1.clone().requires_grad_(), x2.clone().requires_grad_()
    (loss_fn(a, y1) + loss_fn(b, y2)).backward()
    assert torch.equal(a.grad, want1) and torch.equal(b.grad, want2)
    # The same leaf twice: autograd adds the two gradients.
    c = x1.clone().requires_grad_()
    (loss_fn(c, y1) + loss_fn(c, y2)).backward()
    assert torch.equal(c.grad, want1 + _grad(loss_fn, x1, y2))


def test_softmax_focal_two_calls_before_one_backward():
    x1, _ = _batch(3, c=5)
    x2, _ = _batch(4, c=5)
    g = torch.Generator().manual_seed(5)
    l1 = torch.randint(0, 5, (2, 12, 10), generator=g)
    l2 = torch.randint(0, 5, (2, 12, 10), generator=g)
    want1 = _grad(dt.softmax_focal_loss, x1, l1)
    want2 = _grad(dt.softmax_focal_loss, x2, l2)
    a, b = x1.clone().requires_grad_(), x2.clone().requires_grad_()
    (dt.softmax_focal_loss(a, l1) + dt.softmax_focal_loss(b, l2)).backward()
    assert torch.equal(a.grad, want1) and torch.equal(b.grad, want2)


@pytest.mark.parametrize("name", ["centernet", "bce"])
def test_gradients_accumulated_without_zeroing(name):
    """Gradient accumulation: .grad is kept between steps and each backward adds into it
    (autograd may have adopted dafl's first buffer as .grad itself)."""
    loss_fn = ELEMENTWISE[name]
    x, y = _batch(6)
    want = _grad(loss_fn, x, y)
    x.requires_grad_()
    for _ in range(3):
        loss_fn(x, y).backward()
    assert torch.equal(x.grad, want + want + want)


@pytest.mark.parametrize("name", ["centernet", "sigmoid_focal"])
def test_a_retained_graph_keeps_its_gradient_while_other_calls_run(name):
    loss_fn = ELEMENTWISE[name]
    x, y = _batch(7)
    x.requires_grad_()
    loss = loss_fn(x, y)
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    for seed in (8, 9, 10):  # other calls of the same shape, their gradients released
        other, oy = _batch(seed)
        other.requires_grad_()
        loss_fn(other, oy).backward()
        other.grad = None
    x.grad = None
    loss.backward()
    assert torch.equal(x.grad, first)


@needs_cache
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_starts_with_an_empty_cache_and_the_same_bits():
    if not _buffers.CACHE.enabled:
        pytest.skip("the buffer cache is turned off")
    loss_fn = ELEMENTWISE["centernet"]
    x, y = _batch(11)
    want = _grad(loss_fn, x, y)
    x.requires_grad_()
    loss_fn(x, y).backward()          # the parent's cache holds this shape's buffer
    x.grad = None
    assert _buffers.CACHE._entries
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            dafl.set_num_threads(1)
            torch.set_num_threads(1)
            empty = not _buffers.CACHE._entries
            x2 = x.detach().clone().requires_grad_()
            loss_fn(x2, y).backward()
            code = 0 if empty and torch.equal(x2.grad, want) else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    loss_fn(x, y).backward()          # and the parent's cache still serves the parent
    assert torch.equal(x.grad, want)


@needs_cache
def test_the_cache_stays_within_its_bounds(monkeypatch):
    if not _buffers.CACHE.enabled:
        pytest.skip("the buffer cache is turned off")
    monkeypatch.setattr(_buffers, "MAX_BYTES", 64 * 1024)
    _buffers.CACHE.clear()
    try:
        loss_fn = ELEMENTWISE["bce"]
        for w in range(40, 80, 4):       # 10 shapes of 2x3x40x(40..76): 38-73 KB each
            x = torch.randn(2, 3, 40, w, generator=torch.Generator().manual_seed(w))
            y = (torch.rand(2, 3, 40, w) > 0.9).float()
            want = _grad(loss_fn, x, y)
            for _ in range(3):
                xr = x.clone().requires_grad_()
                loss_fn(xr, y).backward()
                assert torch.equal(xr.grad, want)
            assert _buffers.CACHE._bytes <= _buffers.MAX_BYTES or \
                len(_buffers.CACHE._entries) == 1
            assert all(len(e) <= _buffers.MAX_ENTRIES
                       for e in _buffers.CACHE._entries.values())
    finally:
        _buffers.CACHE.clear()


def _minor_faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


@needs_cache
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("name", ["centernet", "sigmoid_focal", "bce", "softmax_focal"])
def test_steady_state_faults_in_no_gradient(name, layout):
    """8x80x128x128 float32 (40 MiB: every fresh buffer is a fresh mmap under glibc):
    after two warm-up steps, fewer than half a gradient's pages of minor faults per
    step, counted with getrusage."""
    shape = (8, 80, 128, 128)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g)
    if name == "softmax_focal":
        y = torch.randint(0, shape[1], (shape[0],) + shape[2:], generator=g,
                          dtype=torch.int32)
        loss_fn = dt.softmax_focal_loss
    else:
        y = (torch.rand(shape, generator=g) > 0.99).float()
        loss_fn = ELEMENTWISE[name]
    if layout == "channels_last":
        x = x.to(memory_format=torch.channels_last)
        if y.dim() == 4:
            y = y.to(memory_format=torch.channels_last)
    x.requires_grad_()

    def step():
        x.grad = None
        loss_fn(x, y).backward()
    for _ in range(2):
        step()
    steps, before = 4, _minor_faults()
    for _ in range(steps):
        step()
    per_step = (_minor_faults() - before) / steps
    pages = x.numel() * 4 // resource.getpagesize()
    assert per_step < pages / 2, f"{per_step:.0f} minor faults per step ({pages} pages)"
    if layout == "channels_last":
        assert x.grad.is_contiguous(memory_format=torch.channels_last)
