"""Keypoint batches from Python (SPEC section 12): collate, render_heatmaps and the loss
straight from the keypoints.

- rendering against an independent numpy implementation of CenterNet's drawing (written
  here from its published formula), and against dafl's one-plane functions;
- the keypoint loss against render + the dense loss, bit for bit, numpy and torch, on
  every ISA this CPU runs (forced with dafl.set_isa) and 1, 2, 3 threads;
- DataLoader workers under fork, spawn and forkserver rendering into shared memory;
- errors that name the argument (and the keypoint), nothing written on failure."""

import math
import os
import textwrap

import numpy as np
import pytest
import torch

import dafl
import dafl._torch_ops
import dafl.torch as dt
from dafl import _keypoints_torch as kt
from conftest import bits, run_python

ISAS = [name for name in ("scalar", "avx2", "avx512", "neon") if dafl.isa_available(name)]
# Big enough to be split over the pool (DAFL_MIN_PARALLEL_ELEMENTS), odd-sized planes.
SHAPE = (3, 5, 61, 47)


# ---- an independent reference: CenterNet's drawing in numpy -----------------------------

def centernet_gaussian2d(diameter, sigma):
    """CenterNet's gaussian2D: exp(-(x^2 + y^2) / (2 sigma^2)) on an ogrid centred on the
    window, float64, values below float64 eps times the maximum set to 0."""
    m = (diameter - 1.0) / 2.0
    y, x = np.ogrid[-m:m + 1, -m:m + 1]
    g = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    g[g < np.finfo(g.dtype).eps * g.max()] = 0
    return g


def centernet_draw_umich(plane, x, y, radius, k=1.0):
    """CenterNet's draw_umich_gaussian: diameter 2r+1, sigma diameter/6, the window
    clipped to the plane, merged by np.maximum (rounded to the plane's float32)."""
    d = 2 * radius + 1
    g = centernet_gaussian2d(d, d / 6)
    h, w = plane.shape
    left, right = min(x, radius), min(w - x, radius + 1)
    top, bottom = min(y, radius), min(h - y, radius + 1)
    if x + right < 0 or y + bottom < 0:
        return  # far beyond the top or left border (a negative stop index would wrap)
    window = plane[y - top:y + bottom, x - left:x + right]
    part = g[radius - top:radius + bottom, radius - left:radius + right]
    if min(part.shape) > 0 and min(window.shape) > 0:
        np.maximum(window, part * k, out=window)


def centernet_batch(per_image, shape):
    """What a CenterNet data loader makes: per image np.zeros planes, one draw per
    object, then np.stack into the batch."""
    n, c, h, w = shape
    images = []
    for rows in per_image:
        planes = np.zeros((c, h, w), dtype=np.float32)
        for r in rows:
            k = float(np.float32(r[4])) if len(r) == 5 else 1.0  # dafl's k is a float
            centernet_draw_umich(planes[int(r[2])], int(r[0]), int(r[1]), int(r[3]), k)
        images.append(planes)
    return np.stack(images)


def random_keypoints(rng, shape, style="umich", most=9, peaks=False):
    """Per-image keypoint rows, some images empty, centres on and beyond the borders."""
    n, c, h, w = shape
    per_image = []
    for i in range(n):
        count = 0 if i == 1 else int(rng.integers(1, most + 1))
        rows = []
        for _ in range(count):
            x = int(rng.integers(-3, w + 3))
            y = int(rng.integers(-3, h + 3))
            if style == "msra":
                x, y = x + float(rng.random()), y + float(rng.random())
            size = int(rng.integers(0, 9)) if style == "umich" else float(rng.uniform(0.6, 4))
            row = [x, y, int(rng.integers(c)), size]
            if peaks:
                row.append(float(rng.choice([1.0, 0.75, 0.3])))
            rows.append(row)
        per_image.append(np.array(rows, dtype=np.float64).reshape(-1, 5 if peaks else 4))
    return per_image


# ---- collate ------------------------------------------------------------------------------

def test_collate_keypoints_pads_and_counts():
    per = [np.array([[1, 2, 0, 3], [4, 5, 1, 2]], np.int64), [], [[7, 8, 2, 1, 0.5]],
           torch.tensor([[9.0, 9.0, 0.0, 0.0]])]
    kp, counts = dafl.collate_keypoints(per)
    assert kp.dtype == np.float32 and kp.shape == (4, 2, 5)
    assert counts.tolist() == [2, 0, 1, 1]
    assert kp[0, :, 4].tolist() == [1.0, 1.0]   # k = 1 for the 4-column images
    assert kp[2, 0].tolist() == [7, 8, 2, 1, 0.5]
    assert not kp[1].any() and not kp[3, 1].any()  # padding is zeros
    t, tc = kt.collate_keypoints(per)
    assert t.dtype == torch.float32 and tc.dtype == torch.int64
    assert np.array_equal(t.numpy(), kp) and np.array_equal(tc.numpy(), counts)
    kp, counts = dafl.collate_keypoints([[], []])
    assert kp.shape == (2, 0, 4) and counts.tolist() == [0, 0]
    with pytest.raises(ValueError, match="image 1 have shape"):
        dafl.collate_keypoints([[[1, 2, 0, 3]], [[1, 2, 3]]])


# ---- rendering ------------------------------------------------------------------------------

@pytest.mark.parametrize("peaks", [False, True])
def test_render_umich_equals_centernet_numpy(rng, peaks):
    shape = (4, 3, 37, 29)
    for _ in range(5):
        per = random_keypoints(rng, shape, peaks=peaks)
        expected = centernet_batch(per, shape)
        got = dafl.render_heatmaps(per, shape=shape)
        assert got.dtype == np.float32 and got.shape == shape
        assert bits(got) == bits(expected)
        kp, counts = dafl.collate_keypoints(per)
        assert bits(dafl.render_heatmaps(kp, counts, shape)) == bits(expected)
        assert bits(kt.render_heatmaps(*kt.collate_keypoints(per), shape)) == bits(expected)


def test_render_msra_and_distance_equal_the_one_plane_functions(rng):
    shape = (3, 2, 30, 26)
    per = random_keypoints(rng, shape, "msra")
    expected = np.zeros(shape, np.float32)
    for i, rows in enumerate(per):
        for x, y, c, s in rows:
            dafl.draw_gaussian_sigma(expected[i, int(c)], (x, y), s)
    assert bits(dafl.render_heatmaps(per, shape=shape, style="msra")) == bits(expected)
    # distance: one sigma per plane, centres inside: dafl.distance_targets of the mask
    expected = np.zeros(shape, np.float32)
    per = []
    for i in range(shape[0]):
        rows = []
        for c in range(shape[1]):
            mask = np.zeros(shape[2:], np.uint8)
            for _ in range(int(rng.integers(0, 3))):
                x, y = int(rng.integers(shape[3])), int(rng.integers(shape[2]))
                mask[y, x] = 1
                rows.append([x, y, c, 2.5])
            if mask.any():
                expected[i, c] = dafl.distance_targets(mask, 2.5)
        per.append(np.array(rows, np.float64).reshape(-1, 4))
    assert bits(dafl.render_heatmaps(per, shape=shape, style="distance")) == bits(expected)


def test_render_and_loss_same_bits_every_isa_and_thread_count(rng):
    per = random_keypoints(rng, SHAPE, most=30)
    kp, counts = dafl.collate_keypoints(per)
    expected = centernet_batch(per, SHAPE)
    x = rng.normal(-1, 3, SHAPE).astype(np.float32)
    x.reshape(-1)[::97] = np.float32(9.5)   # some saturated and clamped logits
    reference = None
    for isa in ISAS:
        dafl.set_isa(isa)
        for threads in (1, 2, 3):
            dafl.set_num_threads(threads)
            out = np.full(SHAPE, np.nan, np.float32)
            assert dafl.render_heatmaps(kp, counts, out=out) is out
            assert bits(out) == bits(expected), (isa, threads)
            t_out = torch.full(SHAPE, float("nan"))
            kt.render_heatmaps(torch.from_numpy(kp), torch.from_numpy(counts), out=t_out)
            assert bits(t_out) == bits(expected), (isa, threads)
            results = []
            for reduction in ("positives", "sum", "mean", "none"):
                for mode in ("logits", "clamped_logits"):
                    dense = dafl.penalty_focal(x, expected, reduction=reduction,
                                               input_mode=mode, return_stats=True)
                    fused = dafl.penalty_focal_keypoints(x, kp, counts, reduction=reduction,
                                                         input_mode=mode, return_stats=True)
                    assert bits(dense[0], dense[1]) == bits(fused[0], fused[1]), \
                        (isa, threads, reduction, mode)
                    assert dense[2].to_bytes() == fused[2].to_bytes()
                    results.append(bits(fused[0], fused[1]))
            # torch: CenterNetFocalLoss on rendered targets vs the keypoint loss
            xa = torch.tensor(x, requires_grad=True)
            la = dt.CenterNetFocalLoss()(xa, torch.from_numpy(expected))
            la.backward()
            xb = torch.tensor(x, requires_grad=True)
            lb = kt.CenterNetFocalKeypointLoss()(xb, torch.from_numpy(kp),
                                                 torch.from_numpy(counts))
            lb.backward()
            assert bits(la, xa.grad) == bits(lb, xb.grad), (isa, threads)
            xc = torch.tensor(x, requires_grad=True)
            lc = dt.penalty_focal_loss(xc, torch.from_numpy(expected), normalizer=7.0)
            lc.backward()
            xd = torch.tensor(x, requires_grad=True)
            ld = kt.penalty_focal_keypoints(xd, per, normalizer=7.0)
            ld.backward()
            assert bits(lc, xc.grad) == bits(ld, xd.grad), (isa, threads)
            results.append(bits(lb, xb.grad, ld, xd.grad))
            if reference is None:
                reference = results
            assert results == reference, (isa, threads)


def test_keypoint_loss_every_style_parameter_and_reduction(rng):
    shape = (2, 3, 33, 35)
    x = rng.normal(-1, 2.5, shape).astype(np.float32)
    p = 1 / (1 + np.exp(-x.astype(np.float64)))
    probs = np.clip(p, 0.01, 0.99).astype(np.float32)
    for style in ("umich", "msra", "distance"):
        per = random_keypoints(rng, shape, "msra" if style == "msra" else "umich", peaks=True)
        if style == "distance":
            for rows in per:
                rows[:, 3] = 1.5
        kp, counts = dafl.collate_keypoints(per, np.float64)
        y = dafl.render_heatmaps(kp, counts, shape, style=style)
        for kwargs in ({}, {"alpha": 1.5, "beta": 3.0, "pos_weight": 2.0, "neg_weight": 0.5},
                       {"reduction": "sum", "grad_scale": 0.25},
                       {"reduction": "mean", "normalizer": 3.0},
                       {"reduction": "none"}):
            dense = dafl.penalty_focal(x, y, **kwargs)
            fused = dafl.penalty_focal_keypoints(x, kp, counts, style=style, **kwargs)
            assert bits(*dense) == bits(*fused), (style, kwargs)
        dense = dafl.penalty_focal(probs, y, input_mode="probabilities", log_eps=1e-12)
        fused = dafl.penalty_focal_keypoints(probs, kp, counts, style=style,
                                             input_mode="probabilities", log_eps=1e-12)
        assert bits(*dense) == bits(*fused), style
        loss, grad = dafl.penalty_focal_keypoints(x, kp, counts, style=style, gradient=False)
        assert grad is None and bits(loss) == bits(dafl.penalty_focal(x, y)[0])


def test_torch_keypoint_loss_dtypes_layouts_and_reduction_none(rng):
    per = random_keypoints(rng, SHAPE)
    y = torch.from_numpy(dafl.render_heatmaps(per, shape=SHAPE))
    base = torch.tensor(rng.normal(-1, 3, SHAPE).astype(np.float32))
    for make in (lambda: base.clone(),
                 lambda: base.clone().to(memory_format=torch.channels_last),
                 lambda: base.to(torch.bfloat16),
                 lambda: base.double()):
        xa, xb = make().requires_grad_(True), make().requires_grad_(True)
        la = dt.penalty_focal_loss(xa, y)
        lb = kt.penalty_focal_keypoints(xb, per)
        la.backward()
        lb.backward()
        # the loss in the logits' dtype (outside autocast), the gradient in their layout
        # (float64 is dafl.torch's own float64 path on the rendered targets)
        assert lb.dtype == (la.dtype if xb.dtype == torch.float64 else xb.dtype)
        assert xb.grad.dtype == xb.dtype and xa.grad.dtype == xb.grad.dtype
        assert xb.grad.stride() == xb.stride()
        assert bits(la.to(lb.dtype), xa.grad) == bits(lb, xb.grad), xa.dtype
    # reduction none, with an upstream gradient
    xa, xb = base.clone().requires_grad_(True), base.clone().requires_grad_(True)
    up = torch.tensor(rng.normal(0, 1, SHAPE).astype(np.float32))
    la = dt.penalty_focal_loss(xa, y, reduction="none")
    lb = kt.PenaltyFocalKeypointLoss(reduction="none")(xb, per)
    (la * up).sum().backward()
    (lb * up).sum().backward()
    assert bits(la, xa.grad) == bits(lb, xb.grad)
    # forward only: no graph, the same value
    with torch.no_grad():
        assert bits(kt.penalty_focal_keypoints(base, per)) == bits(
            dt.penalty_focal_loss(base, y))
    # retain_graph: a second backward accumulates the same gradient again, as dense
    xa, xb = base.clone().requires_grad_(True), base.clone().requires_grad_(True)
    la = dt.penalty_focal_loss(xa, y)
    lb = kt.penalty_focal_keypoints(xb, per)
    for _ in range(2):
        la.backward(retain_graph=True)
        lb.backward(retain_graph=True)
    assert bits(xa.grad) == bits(xb.grad)


def test_render_into_torch_outputs(rng):
    per = random_keypoints(rng, SHAPE)
    expected = centernet_batch(per, SHAPE)
    kp, counts = kt.collate_keypoints(per)
    shared = torch.full(SHAPE, 7.0).share_memory_()
    assert kt.render_heatmaps(kp, counts, out=shared) is shared
    assert shared.is_shared() and bits(shared) == bits(expected)
    fresh = kt.render_heatmaps(kp, counts, SHAPE, shared=True)
    assert fresh.is_shared() and bits(fresh) == bits(expected)
    plain = kt.render_heatmaps(kp, counts, SHAPE)
    assert not plain.is_shared() and bits(plain) == bits(expected)
    # the numpy function writes a tensor in place too, and returns it
    t = torch.empty(SHAPE, requires_grad=True)
    assert dafl.render_heatmaps(kp, counts, out=t) is t
    assert bits(t) == bits(expected)
    # a view that is C-contiguous (one image of a bigger batch) is written in place
    big = torch.zeros((SHAPE[0] + 1,) + SHAPE[1:])
    kt.render_heatmaps(kp, counts, out=big[1:])
    assert bits(big[1:]) == bits(expected) and not big[0].any()
    if torch.cuda.is_available():  # pinned host memory (needs a CUDA driver)
        pinned = torch.empty(SHAPE).pin_memory()
        kt.render_heatmaps(kp, counts, out=pinned)
        assert pinned.is_pinned() and bits(pinned) == bits(expected)


# ---- errors -----------------------------------------------------------------------------------

def test_errors_name_the_argument_and_write_nothing():
    shape = (2, 3, 8, 8)
    good = np.array([[[1, 1, 0, 1], [2, 2, 2, 0]], [[3, 3, 1, 2], [0, 0, 0, 0]]], np.float32)
    counts = np.array([2, 1])
    out = np.full(shape, 5.0, np.float32)
    x = np.zeros(shape, np.float32)

    def refused(exc, match, **kw):
        args = dict(keypoints=good, counts=counts, out=out)
        args.update(kw)
        with pytest.raises(exc, match=match):
            dafl.render_heatmaps(args.pop("keypoints"), args.pop("counts"), **args)
        assert (out == 5.0).all(), "a failing call wrote to 'out'"

    bad = good.copy()
    bad[1, 0, 2] = 3  # class outside 0..2
    refused(ValueError, r"'keypoints'\[1, 0, 2\], the class, is 3.0", keypoints=bad)
    bad = good.copy()
    bad[0, 1, 2] = 1.5
    refused(ValueError, r"'keypoints'\[0, 1, 2\], the class", keypoints=bad)
    bad = good.copy()
    bad[0, 1, 3] = 2.5  # umich radius must be an integer
    refused(dafl.DaflError, r"'keypoints'\[0, 1\] \(x 2.0, y 2.0, size 2.5.*INVALID_PARAMETER",
            keypoints=bad)
    bad = good.copy()
    bad[1, 0, 0] = np.nan
    refused(dafl.DaflError, r"'keypoints'\[1, 0\]", keypoints=bad)
    refused(dafl.DaflError, r"'keypoints'\[1, 0\].*msra", keypoints=np.where(
        np.arange(4) == 3, 0.0, good).astype(np.float32), counts=np.array([0, 1]),
        style="msra")
    refused(ValueError, r"'counts'\[1\] is 3, outside 0..2", counts=np.array([2, 3]))
    refused(ValueError, r"'counts' has shape \(3,\), expected \(2,\)",
            counts=np.array([1, 1, 1]))
    refused(TypeError, "'counts' must be an integer array", counts=np.array([1.0, 1.0]))
    refused(ValueError, r"'keypoints' has shape \(2, 2, 3\)", keypoints=good[..., :3])
    refused(ValueError, r"'keypoints' has shape \(1, 2, 4\), expected \(2, K, 4\)",
            keypoints=good[:1], counts=None)
    refused(ValueError, "'style' must be one of umich, msra, distance", style="gauss")
    refused(ValueError, r"'out' has shape \(2, 3, 8, 8\), but 'shape' is", shape=(2, 3, 8, 9))
    refused(ValueError, "'counts' goes with a padded", keypoints=[good[0], good[1]])
    with pytest.raises(TypeError, match="give the heatmaps' 'shape'"):
        dafl.render_heatmaps(good, counts)
    with pytest.raises(ValueError, match="'shape' must be"):
        dafl.render_heatmaps(good, counts, (2, 3, 8))
    with pytest.raises(TypeError, match="'out' must be float32"):
        dafl.render_heatmaps(good, counts, out=np.zeros(shape))
    with pytest.raises(ValueError, match="'out' must be C-contiguous"):
        dafl.render_heatmaps(good, counts, out=np.zeros((2, 3, 8, 16), np.float32)[..., ::2])
    with pytest.raises(ValueError, match="'out' must be 4-D"):
        dafl.render_heatmaps(good, counts, out=np.zeros((6, 8, 8), np.float32))
    ro = np.zeros(shape, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="'out' is read-only"):
        dafl.render_heatmaps(good, counts, out=ro)
    with pytest.raises(ValueError, match="'out' must be C-contiguous"):
        kt.render_heatmaps(good, counts, out=torch.zeros(shape).transpose(2, 3))
    with pytest.raises(TypeError, match="'out' must be a torch.Tensor"):
        kt.render_heatmaps(good, counts, out=out)
    # the loss
    with pytest.raises(ValueError, match=r"'logits' must be \(N, C, H, W\)"):
        dafl.penalty_focal_keypoints(x[0], good, counts)
    with pytest.raises(ValueError, match=r"'keypoints'\[1, 0, 2\]"):
        bad = good.copy()
        bad[1, 0, 2] = -1
        dafl.penalty_focal_keypoints(x, bad, counts)
    with pytest.raises(dafl.DaflError, match="penalty_focal_keypoints: DAFL_ERR_INVALID_PARAM"):
        dafl.penalty_focal_keypoints(x, good, counts, alpha=-1.0)
    with pytest.raises(ValueError, match="'input_mode' must be"):
        dafl.penalty_focal_keypoints(x, good, counts, input_mode="probs")
    with pytest.raises(TypeError, match="'logits' must be a floating-point tensor"):
        kt.penalty_focal_keypoints(torch.zeros(shape, dtype=torch.int32), good, counts)
    with pytest.raises(ValueError, match=r"'keypoints' has shape \(2, 2, 4\), expected \(3"):
        kt.penalty_focal_keypoints(torch.zeros((3,) + shape[1:]), good, counts)


# ---- DataLoader workers -------------------------------------------------------------------

class SyntheticObjects(torch.utils.data.Dataset):
    """Per image a list of (x, y, class, radius) rows, from the index alone."""

    shape = (4, 48, 40)

    def __len__(self):
        return 12

    def __getitem__(self, i):
        rng = np.random.default_rng(i)
        rows = random_keypoints(rng, (1,) + self.shape)[0] if i % 5 else np.zeros((0, 4))
        return torch.tensor(float(i)), rows


def render_collate(batch):
    """A collate_fn that renders the batch's targets in the worker (into shared memory)
    and passes the keypoints on as well."""
    index = torch.stack([b[0] for b in batch])
    kp, counts = kt.collate_keypoints([b[1] for b in batch])
    heatmaps = kt.render_heatmaps(kp, counts, (len(batch),) + SyntheticObjects.shape)
    return index, kp, counts, heatmaps, heatmaps.is_shared()


LOADER_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import numpy as np, torch, dafl
    from torch.utils.data import DataLoader
    from test_keypoints import SyntheticObjects, render_collate, centernet_batch
    from dafl import _keypoints_torch as kt

    if __name__ == "__main__":
        # the parent used dafl's pool before the workers start
        dafl.set_num_threads(2)
        big = np.zeros((8, 80, 64, 64), np.float32)
        dafl.render_heatmaps([[[3, 3, 1, 2]]] * 8, shape=big.shape, out=big)
        data = SyntheticObjects()
        loader = DataLoader(data, batch_size=4, num_workers=2, collate_fn=render_collate,
                            multiprocessing_context={method!r})
        seen = 0
        for index, kp, counts, heatmaps, shared in loader:
            assert shared, "the worker's batch was not allocated in shared memory"
            per = [data[int(i)][1] for i in index]
            expected = centernet_batch(per, heatmaps.shape)
            assert np.array_equal(heatmaps.numpy().view(np.uint32), expected.view(np.uint32))
            x = torch.linspace(-6, 3, heatmaps.numel()).reshape(heatmaps.shape)
            a = dafl.penalty_focal(x.numpy(), heatmaps.numpy())
            b = dafl.penalty_focal_keypoints(x.numpy(), kp, counts)
            assert a[0] == b[0] and np.array_equal(a[1], b[1])
            seen += len(index)
        assert seen == len(data)
        print("ok")
""")


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_render_in_dataloader_workers(tmp_path, method):
    """Workers started by fork (after the parent's pool ran), spawn and forkserver render
    the CenterNet bits into shared memory (killed after 120 s if it hangs)."""
    tests = os.path.dirname(os.path.abspath(__file__))
    script = tmp_path / "loader.py"  # spawn re-imports __main__: a file, not -c
    script.write_text(LOADER_SCRIPT.format(tests=tests, method=method))
    out = run_python(f"import runpy; runpy.run_path({str(script)!r}, run_name='__main__')",
                     timeout=120)
    assert out.strip().endswith("ok")


# ---- the rest of the binding ---------------------------------------------------------------

def test_stop_threads_then_the_same_bits(rng):
    per = random_keypoints(rng, SHAPE, most=20)
    x = rng.normal(0, 3, SHAPE).astype(np.float32)
    dafl.set_num_threads(2)
    before = dafl.penalty_focal_keypoints(x, per)
    dafl.stop_threads()
    dafl.stop_threads()  # twice: nothing to stop
    assert bits(*dafl.penalty_focal_keypoints(x, per)) == bits(*before)
    assert dafl.get_num_threads() == 2


@pytest.mark.xfail(not hasattr(dt, "penalty_focal_keypoints"), strict=True,
                   reason="dafl.torch re-exports the keypoint API of dafl._keypoints_torch")
def test_dafl_torch_exports_the_keypoint_api():
    for name in ("collate_keypoints", "render_heatmaps", "penalty_focal_keypoints",
                 "PenaltyFocalKeypointLoss", "CenterNetFocalKeypointLoss"):
        assert hasattr(dt, name), name
    assert math.isfinite(float(dt.penalty_focal_keypoints(torch.zeros(1, 1, 4, 4),
                                                          [[[1, 1, 0, 1]]])))


@pytest.mark.skipif(not dafl._torch_ops.HAVE_CUSTOM_OPS,
                    reason="torch.library custom operators need torch >= 2.4")
def test_keypoint_operator_compiles_without_graph_breaks(rng):
    """dafl::penalty_focal_keypoints under torch.compile(fullgraph=True): eager's bits."""
    per = random_keypoints(rng, SHAPE)
    kp, counts = kt.collate_keypoints(per, torch.float64)
    x = torch.tensor(rng.normal(-1, 3, SHAPE).astype(np.float32))

    def step(v, kp, counts):
        return kt.CenterNetFocalKeypointLoss()(v * 1.0, kp, counts)
    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    la, lb = step(xa, kp, counts), compiled(xb, kp, counts)
    la.backward()
    lb.backward()
    assert bits(la, xa.grad) == bits(lb, xb.grad)
    torch.library.opcheck(torch.ops.dafl.penalty_focal_keypoints.default,
                          (x, kp, counts, 0, 2.0, 4.0, 1.0, 1.0, 0, 1e-4, 0.0, 3, 1.0, 1.0,
                           False, True))
