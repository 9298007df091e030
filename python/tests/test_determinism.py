"""The same bits for every thread count and every ISA (DAFL_ISA, in fresh processes),
and DataLoader workers forked after the parent used dafl's thread pool."""

import textwrap

import numpy as np
import pytest
import torch

import dafl
import dafl.torch as dt
from conftest import bits, heatmap_batch, run_python

# Big enough to be split over the pool (DAFL_MIN_PARALLEL_ELEMENTS), odd-sized blocks.
SHAPE = (3, 5, 97, 89)


def all_losses(x, y, labels):
    """Loss and gradient bits of every dafl.torch loss on one input."""
    out = []
    for fn in (lambda v: dt.penalty_focal_loss(v, y),
               lambda v: dt.CenterNetFocalLoss()(v, y),
               lambda v: dt.sigmoid_focal_loss(v, y, reduction="sum"),
               lambda v: dt.binary_cross_entropy_with_logits(v, y),
               lambda v: dt.softmax_focal_loss(v, labels),
               lambda v: dt.mse_loss(v, y, weights=torch.arange(5.0))):
        v = x.clone().requires_grad_(True)
        loss = fn(v)
        loss.backward()
        out.append(bits(loss, v.grad))
    return out


def inputs(seed=7):
    rng = np.random.default_rng(seed)
    y = torch.tensor(heatmap_batch(rng, *SHAPE, peaks=6))
    x = torch.tensor(rng.normal(0, 4, SHAPE).astype(np.float32))
    labels = torch.tensor(rng.integers(0, SHAPE[1], (SHAPE[0],) + SHAPE[2:]))
    return x, y, labels


def test_same_bits_for_1_2_3_threads():
    x, y, labels = inputs()
    results = {}
    for n in (1, 2, 3):
        dafl.set_num_threads(n)
        results[n] = all_losses(x, y, labels)
    assert results[1] == results[2] == results[3]


ISA_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import dafl
    from test_determinism import all_losses, inputs
    print(dafl.active_isa())
    print(*all_losses(*inputs()))
""")


def test_same_bits_on_every_isa():
    import os
    tests = os.path.dirname(os.path.abspath(__file__))
    isas = [name for name in ("scalar", "avx2", "avx512", "neon") if dafl.isa_available(name)]
    if len(isas) < 2:
        pytest.skip(f"only {isas} on this CPU: nothing to compare")
    seen = {}
    for name in isas:
        out = run_python(ISA_SCRIPT.format(tests=tests), {"DAFL_ISA": name}).split("\n")
        assert out[0] == name, f"DAFL_ISA={name} ran {out[0]}"
        seen[name] = out[1]
    assert len(set(seen.values())) == 1, seen


DATALOADER_SCRIPT = textwrap.dedent("""
    import numpy as np, torch, dafl, dafl.torch
    from torch.utils.data import DataLoader, Dataset

    def render(i):
        hm = np.zeros((96, 128), np.float32)
        for k in range(6):
            dafl.draw_gaussian(hm, ((37 * (i + k)) % 128, (11 * (i + 3 * k)) % 96),
                               1 + (i + k) % 5)
        # and a loss call big enough for the pool, in the worker
        rng = np.random.default_rng(i)
        x = rng.normal(0, 3, (4, 96, 128)).astype(np.float32)
        loss, grad = dafl.penalty_focal(x, np.broadcast_to(hm, x.shape))
        return hm, np.float32(loss), grad

    class Targets(Dataset):
        def __len__(self):
            return 8
        def __getitem__(self, i):
            return render(i)

    # the parent runs a large threaded call first: the pool is up when the workers fork
    dafl.set_num_threads(2)
    big = np.random.default_rng(0).normal(0, 3, (8, 80, 64, 64)).astype(np.float32)
    dafl.penalty_focal(big, np.zeros_like(big))
    expected = [render(i) for i in range(8)]
    loader = DataLoader(Targets(), batch_size=None, num_workers=2,
                        multiprocessing_context="fork")
    for i, (hm, loss, grad) in enumerate(loader):
        e_hm, e_loss, e_grad = expected[i]
        assert np.array_equal(hm.numpy(), e_hm), i
        assert loss.item() == e_loss, i
        assert np.array_equal(grad.numpy(), e_grad), i
    print("ok")
""")


def test_dataloader_workers_after_threaded_parent():
    """No hang and the parent's bits in forked workers (killed after 60 s if it hangs;
    a healthy run takes a few seconds)."""
    assert run_python(DATALOADER_SCRIPT, timeout=60).strip() == "ok"


def test_gil_is_released_during_a_call():
    """Another Python thread runs while a long dafl call is in progress: some of its
    timestamps fall inside the call's window (impossible if the call held the GIL).
    The extension is called directly, on preallocated buffers, so that the window starts
    with the C call; its end can be late (handing the GIL back takes a switch interval
    and the scheduler's time), so only its first half counts, after a margin."""
    import threading
    import time
    from dafl import _dafl
    dafl.set_num_threads(1)
    x = np.random.default_rng(3).normal(0, 3, (8, 80, 128, 128)).astype(np.float32)
    y = np.zeros_like(x)
    g = np.empty_like(x)
    windows, stamps = [], []

    def worker():
        for _ in range(3):
            start = time.perf_counter()
            _dafl.penalty_focal(x, y, None, g)
            windows.append((start, time.perf_counter()))
    t = threading.Thread(target=worker)
    t.start()
    while t.is_alive():
        stamps.append(time.perf_counter())
    t.join()
    stamps = np.array(stamps)
    inside = sum(int(np.count_nonzero((stamps > a + 0.25 * (b - a)) & (stamps < a + 0.5 * (b - a))))
                 for a, b in windows)
    assert inside > 0, "no Python code ran while dafl computed: the GIL was held"
