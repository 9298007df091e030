"""dafl: fused focal-loss kernels (forward + gradient in one pass) for CPU training.

The numpy face of libdafl; ``dafl.torch`` has the autograd modules and the drop-ins for
torchvision, CenterNet and mmdetection.  Every loss returns ``(loss, grad)``, or
``(loss, grad, stats)`` with ``return_stats=True``:

    loss, grad = dafl.penalty_focal(logits, heatmap)        # CenterNet's loss, fused

- loss: the reduced loss (a scalar of the input's dtype), or for reduction="none" the
  per-element loss;
- grad: d(loss)/d(input) times grad_scale, or None with ``gradient=False``;
- stats: exact partial statistics (dafl.Stats) that combine across shards, threads and
  processes into the bits of one call (``Stats.combine``, ``Stats.reduce``).

Arrays: float32 and float16 C-contiguous arrays are used in place (DLPack), each operand
its own dtype, and the gradient is written in the input's dtype; float64, other strides
and read-only arrays are converted with one copy (see dafl._convert).  A failing libdafl
status raises DaflError (a ValueError) with dafl_status_string's text.
"""

from typing import Optional

import numpy as np
from numpy.typing import ArrayLike

from . import _dafl, _keypoints, _losses
from ._convert import NumpyArrays
from ._dafl import DaflError, Stats

__all__ = [
    "DaflError", "Stats", "penalty_focal", "sigmoid_focal", "bce_with_logits",
    "softmax_focal", "mse", "count_positives", "gaussian_radius", "draw_gaussian",
    "draw_gaussian_sigma", "distance_targets", "combine_stats", "reduce_stats",
    "set_isa", "active_isa", "isa_available", "capabilities", "ISA_REQUIREMENTS",
    "set_num_threads", "get_num_threads",
    "version", "version_number", "status_string", "render_heatmaps", "collate_keypoints",
    "penalty_focal_keypoints", "stop_threads",
]

_NP = NumpyArrays()
ISAS = {"auto": _dafl.ISA_AUTO, "scalar": _dafl.ISA_SCALAR, "avx2": _dafl.ISA_AVX2,
        "avx512": _dafl.ISA_AVX512, "neon": _dafl.ISA_NEON}
RADIUS_VARIANTS = {"cornernet": _dafl.RADIUS_CORNERNET, "exact": _dafl.RADIUS_EXACT}


def _result(loss, grad, stats, return_stats):
    return (loss, grad, stats) if return_stats else (loss, grad)


# ---- losses --------------------------------------------------------------------------

def penalty_focal(input: ArrayLike, target: ArrayLike, *, alpha: float = 2.0,
                  beta: float = 4.0, pos_weight: float = 1.0, neg_weight: float = 1.0,
                  input_mode: str = "logits", clamp_eps: float = 1e-4, log_eps: float = 0.0,
                  reduction: str = "positives", normalizer: Optional[float] = None,
                  grad_scale: float = 1.0, trust_targets: bool = False, gradient: bool = True,
                  return_stats: bool = False):
    """Penalty-reduced focal loss (CornerNet eq. 1; the distance-aware loss).

    y == 1: l = pos_weight * q^alpha * -log p;  y < 1: l = neg_weight * (1-y)^beta * p^alpha
    * -log q, with p = sigmoid(input) (input_mode "logits"), p = clamp(sigmoid(input),
    clamp_eps, 1-clamp_eps) ("clamped_logits", CenterNet's code) or p = input
    ("probabilities", where log_eps is added inside both logs as mmdetection does).
    reduction: "positives" (sum / max(positives, 1)), "sum", "mean", "none"; a
    ``normalizer`` (e.g. a global positive count) replaces the divisor."""
    return _result(*_losses.penalty_focal(
        _NP, input, target, alpha=alpha, beta=beta, pos_weight=pos_weight,
        neg_weight=neg_weight, input_mode=input_mode, clamp_eps=clamp_eps, log_eps=log_eps,
        reduction=reduction, normalizer=normalizer, grad_scale=grad_scale,
        trust_targets=trust_targets, want_grad=gradient), return_stats)


def sigmoid_focal(input: ArrayLike, target: ArrayLike, *, gamma: float = 2.0,
                  alpha: float = 0.25, reduction: str = "none",
                  normalizer: Optional[float] = None,
                  grad_scale=1.0, trust_targets=False, gradient=True, return_stats=False):
    """Sigmoid focal loss (RetinaNet; torchvision's semantics, soft targets allowed);
    alpha < 0 turns the class balance off."""
    return _result(*_losses.sigmoid_focal(
        _NP, input, target, gamma=gamma, alpha=alpha, reduction=reduction,
        normalizer=normalizer, grad_scale=grad_scale, trust_targets=trust_targets,
        want_grad=gradient), return_stats)


def bce_with_logits(input: ArrayLike, target: ArrayLike, *, pos_weight: float = 1.0,
                    reduction: str = "mean", normalizer: Optional[float] = None,
                    grad_scale=1.0, trust_targets=False, gradient=True, return_stats=False):
    """Binary cross-entropy with logits, l = pos_weight*y*-log p + (1-y)*-log q."""
    return _result(*_losses.bce_with_logits(
        _NP, input, target, pos_weight=pos_weight, reduction=reduction,
        normalizer=normalizer, grad_scale=grad_scale, trust_targets=trust_targets,
        want_grad=gradient), return_stats)


def softmax_focal(logits: ArrayLike, labels: ArrayLike, *, gamma: float = 2.0,
                  class_weights: Optional[ArrayLike] = None, ignore_index: int = -100,
                  reduction="mean", normalizer=None, grad_scale=1.0, channels_last=False,
                  gradient=True, return_stats=False):
    """Softmax focal loss over logits (N, C, ...) (channels_last: (N, ..., C)) and integer
    labels (N, ...); gamma 0 is (weighted) cross-entropy; "mean" divides by the sum of
    the class weights of the non-ignored pixels."""
    return _result(*_losses.softmax_focal(
        _NP, logits, labels, gamma=gamma, class_weights=class_weights,
        ignore_index=ignore_index, reduction=reduction, normalizer=normalizer,
        grad_scale=grad_scale, channels_last=channels_last, want_grad=gradient),
        return_stats)


def mse(input: ArrayLike, target: ArrayLike, *, weights: Optional[ArrayLike] = None,
        reduction: str = "mean", normalizer: Optional[float] = None, grad_scale: float = 1.0,
        trust_targets=False, gradient=True, return_stats=False):
    """Heatmap MSE over (N, C, ...): l = w[c] * (x - y)^2, weights per channel (C,) or per
    image and channel (N, C) (e.g. joint visibility)."""
    return _result(*_losses.mse(
        _NP, input, target, weights=weights, reduction=reduction, normalizer=normalizer,
        grad_scale=grad_scale, trust_targets=trust_targets, want_grad=gradient),
        return_stats)


def count_positives(target: ArrayLike, *, trust_targets: bool = False) -> int:
    """Number of targets equal to 1 (what a data-parallel trainer all-reduces)."""
    return _dafl.count_positives(_NP.floats(target, "target", "dafl.count_positives"),
                                 _dafl.FLAG_TRUST_TARGETS if trust_targets else 0)


# ---- statistics ---------------------------------------------------------------------

def combine_stats(stats):
    """One Stats holding the exact sum of an iterable of Stats (any order, same bits)."""
    total = Stats()
    for s in stats:
        total.combine(s)
    return total


def reduce_stats(stats, reduction="positives", normalizer=None):
    """The loss one call over all the data behind ``stats`` gives, bit for bit."""
    code, norm = _losses.reduction_code(reduction, normalizer, "dafl.reduce_stats",
                                        ("sum", "mean", "positives", "normalizer"))
    return np.float32(stats.reduce(code, norm))


# ---- targets --------------------------------------------------------------------------

def gaussian_radius(height: float, width: float, min_overlap: float = 0.7,
                    variant: str = "cornernet") -> float:
    """CornerNet's Gaussian radius (not rounded); variant "cornernet" (CenterNet master)
    or "exact" (mmdetection's corrected roots)."""
    if variant not in RADIUS_VARIANTS:
        raise ValueError(f"dafl.gaussian_radius: 'variant' must be cornernet or exact, "
                         f"got {variant!r}")
    return _dafl.gaussian_radius(height, width, min_overlap, RADIUS_VARIANTS[variant])


def _heatmap(heatmap, fn):
    if not (isinstance(heatmap, np.ndarray) and heatmap.dtype == np.float32
            and heatmap.ndim == 2 and heatmap.flags.c_contiguous and heatmap.flags.writeable):
        raise TypeError(f"{fn}: 'heatmap' must be a writable C-contiguous 2-D float32 "
                        "numpy array (it is drawn into in place)")
    return heatmap


def draw_gaussian(heatmap, center, radius, k=1.0):
    """CenterNet's "umich" Gaussian of integer radius into heatmap (h, w), in place, by
    element-wise max; center is (x, y) in pixels.  Returns heatmap."""
    hm = _heatmap(heatmap, "dafl.draw_gaussian")
    _dafl.draw_gaussian(hm, int(center[0]), int(center[1]), int(radius), float(k))
    return heatmap


def draw_gaussian_sigma(heatmap, center, sigma):
    """CenterNet's "msra" Gaussian of explicit sigma into heatmap (h, w), in place."""
    hm = _heatmap(heatmap, "dafl.draw_gaussian_sigma")
    _dafl.draw_gaussian_sigma(hm, float(center[0]), float(center[1]), float(sigma))
    return heatmap


def distance_targets(mask, sigma):
    """exp(-d^2 / (2 sigma^2)) of the exact distance d to the nearest non-zero pixel of
    the 2-D mask, as a new float32 array."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"dafl.distance_targets: 'mask' must be 2-D, got {m.ndim} "
                         "dimensions")
    m = np.ascontiguousarray(m != 0, dtype=np.uint8)
    out = np.empty(m.shape, dtype=np.float32)
    _dafl.distance_targets(m, float(sigma), out)
    return out


# ---- keypoint batches (SPEC section 12) -------------------------------------------------

def collate_keypoints(keypoints, dtype=np.float32):
    """A list of per-image keypoints -> (padded (N, K, 4|5) array, counts (N,) int64).

    Each image's keypoints: an array, tensor or list of rows (x, y, class, size) or
    (x, y, class, size, k) - centre, heatmap channel, radius (umich) or sigma (msra,
    distance), peak (default 1); an image may have none.  Rows past counts[i] are zero
    padding.  Every keypoint function takes this pair (or the list itself)."""
    return _keypoints.collate_keypoints(keypoints, dtype)


def render_heatmaps(keypoints, counts=None, shape=None, *, style="umich", out=None):
    """Gaussian targets of a keypoint batch as one (N, C, H, W) float32 batch.

    keypoints: padded (N, K, 4|5) rows (x, y, class, size[, k]) with counts (N,), or a
    list of per-image rows (see collate_keypoints).  style: "umich" (CenterNet's
    draw_umich_gaussian: integer x, y, radius), "msra" (draw_msra_gaussian: real x, y,
    sigma) or "distance" (exp(-d^2 / (2 sigma^2)) over the whole plane).  Into a new
    array of ``shape``, or into ``out`` (a writable C-contiguous float32 array or tensor
    of that shape: pinned or shared-memory tensors too), which is returned.  The bits of
    zeroing the batch and calling draw_gaussian / draw_gaussian_sigma per keypoint; on
    dafl's threads, the GIL released.  Bad keypoints raise before anything is written,
    naming the keypoint."""
    return _keypoints.render_heatmaps(keypoints, counts, shape, style=style, out=out)


def penalty_focal_keypoints(logits, keypoints, counts=None, *, style="umich", alpha=2.0,
                            beta=4.0, pos_weight=1.0, neg_weight=1.0, input_mode="logits",
                            clamp_eps=1e-4, log_eps=0.0, reduction="positives",
                            normalizer=None, grad_scale=1.0, gradient=True,
                            return_stats=False):
    """penalty_focal(logits, render_heatmaps(keypoints, counts, logits.shape, style=style))
    bit for bit - loss, gradient, statistics - without the (N, C, H, W) targets: each
    block of 1024 elements gets its targets rendered on the thread's stack.  logits
    (N, C, H, W); the other arguments as penalty_focal's."""
    fn = "dafl.penalty_focal_keypoints"
    x = _NP.operand(logits, "logits", fn)
    code, value, loss_buf, grad, stats = _keypoints.penalty_focal_keypoints(
        x, keypoints, counts, style=style, alpha=alpha, beta=beta, pos_weight=pos_weight,
        neg_weight=neg_weight, input_mode=input_mode, clamp_eps=clamp_eps, log_eps=log_eps,
        reduction=reduction, normalizer=normalizer, grad_scale=grad_scale,
        want_grad=gradient, fn=fn)
    return _result(*_losses._finish(_NP, code, value, loss_buf, grad, logits, stats),
                   return_stats)


# ---- dispatch, threads, version --------------------------------------------------------

def set_isa(name: str) -> None:
    """Select the kernels ("auto", "scalar", "avx2", "avx512", "neon"); DaflError when
    the CPU or the build lacks it (nothing changes then)."""
    if name not in ISAS:
        raise ValueError(f"dafl.set_isa: 'name' must be one of {', '.join(ISAS)}, "
                         f"got {name!r}")
    _dafl.set_isa(ISAS[name])


def active_isa() -> str:
    """The name of the ISA whose kernels run now."""
    return _dafl.isa_name(_dafl.active_isa())


def isa_available(name: str) -> bool:
    if name not in ISAS:
        raise ValueError(f"dafl.isa_available: unknown ISA {name!r}")
    return _dafl.isa_available(ISAS[name])


ISA_REQUIREMENTS = {
    "scalar": "any CPU (with FMA3 the FMA build of the scalar kernels, without it the "
              "non-FMA build)",
    "avx2": "x86-64 with AVX2 and FMA3 (CPUID) and the YMM state enabled by the operating "
            "system (XGETBV)",
    "avx512": "x86-64 with AVX-512 F, DQ, BW and VL (CPUID) and the opmask and ZMM state "
              "enabled by the operating system (XGETBV)",
    "neon": "AArch64 (Advanced SIMD is part of the baseline)",
}


def capabilities() -> dict:
    """What dafl runs on this machine, as its CPU detection (CPUID and XGETBV, run once)
    and its build decided:

    - ``active_isa``: the kernels in use now;
    - ``available``: for each ISA, whether this build has its kernels and this CPU and
      operating system run them (``ISA_REQUIREMENTS`` says what each one needs: what
      dafl's detection checked to say yes);
    - ``DAFL_ISA``: the environment variable as read by this process (None if unset): a
      name from ``available`` chooses the kernels at the first call; an unknown or
      unavailable one prints one line on stderr and keeps the automatic choice;
    - ``threads``: the thread count calls use; ``version``: libdafl's.

    Every ISA gives the same bits."""
    import os
    return {
        "active_isa": active_isa(),
        "available": {name: isa_available(name) for name in ISAS if name != "auto"},
        "DAFL_ISA": os.environ.get("DAFL_ISA"),
        "threads": get_num_threads(),
        "version": version(),
    }


def set_num_threads(threads: int) -> None:
    """dafl's thread count for later calls (1: the calling thread only; 0: the default,
    the CPUs this process may use).  Results are the same bits for any count."""
    _dafl.set_threads(_losses.check_integer("dafl.set_num_threads", "threads", threads, 0,
                                            _dafl.MAX_THREADS))


def get_num_threads() -> int:
    return _dafl.threads()


def stop_threads() -> None:
    """Stop and join dafl's pool threads now (dafl_stop_threads; waits for a call that
    uses them); the next large call starts the pool again.  For leak checkers and before
    an embedding host unloads dafl.  (dafl_set_parallel_for, the C hook that hands
    dafl's work to a host's own thread pool, takes C function pointers and has no Python
    binding.)"""
    _dafl.stop_threads()


def version() -> str:
    """The version of the libdafl actually loaded."""
    return _dafl.version()


def version_number() -> int:
    return _dafl.version_number()


def status_string(status: int) -> str:
    return _dafl.status_string(int(status))


__version__ = version()
