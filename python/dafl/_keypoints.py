"""Keypoint batches (SPEC section 12) for numpy: the batch format, its collate function,
rendering and the loss straight from the keypoints.

The format follows how a detection or pose dataset hands its labels over: per image a
list of keypoints, each a row (x, y, class, size) or (x, y, class, size, k):

- x, y: the centre in output pixels (column, row); integers for the "umich" and
  "distance" styles (CenterNet's int(center)), any real for "msra";
- class: the heatmap channel, an integer in 0 .. C-1;
- size: the radius (umich: an integer >= 0, e.g. CenterNet's
  max(0, int(gaussian_radius(...)))) or sigma (msra, distance: > 0);
- k: the peak in [0, 1] (1 when there is no fifth column).

A batch is those rows padded to one length: ``keypoints`` (N, K, 4 or 5) and
``counts`` (N,), the number of real rows of each image (the rest is padding and never
read).  ``collate_keypoints`` makes it from a list of per-image arrays; counts=None means
every row is a keypoint.  Every function here takes either form (padded + counts, or the
list).  The rows are read as float64 (float32 holds every integer coordinate below 2^24
exactly; a float64 batch keeps msra's real centres as they were).
"""

import numpy as np

from . import _dafl

STYLES = {"umich": _dafl.KEYPOINT_UMICH, "msra": _dafl.KEYPOINT_MSRA,
          "distance": _dafl.KEYPOINT_DISTANCE}


def style_code(style, fn):
    if style not in STYLES:
        raise ValueError(f"{fn}: 'style' must be one of {', '.join(STYLES)}, got {style!r}")
    return STYLES[style]


def _rows(a, i, fn):
    """One image's keypoints as a float64 (K, F) array (F 4 or 5; an empty image: (0, 0))."""
    if hasattr(a, "detach"):  # a torch tensor
        a = a.detach().cpu().numpy()
    a = np.asarray(a, dtype=np.float64) if not isinstance(a, np.ndarray) else a
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{fn}: keypoints of image {i} must be numbers, got {a.dtype}")
    if a.size == 0:
        return np.zeros((0, a.shape[-1] if a.ndim == 2 else 0), dtype=np.float64)
    if a.ndim != 2 or a.shape[1] not in (4, 5):
        raise ValueError(f"{fn}: keypoints of image {i} have shape {a.shape}, expected "
                         "(K, 4) or (K, 5) rows of (x, y, class, size[, k])")
    return a


def collate_keypoints(keypoints, dtype=np.float32, fn="dafl.collate_keypoints"):
    """A list of per-image keypoints (arrays, tensors or lists of rows (x, y, class, size)
    or (x, y, class, size, k); an image may have none) -> (padded, counts): padded
    (N, K, F) of ``dtype`` with K the largest count (zeros after each image's rows) and
    counts (N,) int64.  F is 5 when any image has a fifth column (the others get k = 1),
    else 4."""
    rows = [_rows(a, i, fn) for i, a in enumerate(keypoints)]
    cols = 5 if any(r.shape[1] == 5 for r in rows) else 4
    k = max((len(r) for r in rows), default=0)
    padded = np.zeros((len(rows), k, cols), dtype=dtype)
    counts = np.empty(len(rows), dtype=np.int64)
    for i, r in enumerate(rows):
        counts[i] = len(r)
        if len(r):
            padded[i, :len(r), :r.shape[1]] = r
            if r.shape[1] == 4 and cols == 5:
                padded[i, :len(r), 4] = 1.0
    return padded, counts


def prepare(keypoints, counts, fn):
    """(keypoints float64 C-contiguous (N, K, F), counts int64 (N,) or None) for the C
    layer, from either form; shapes are checked there (against the heatmaps' N and C)."""
    if isinstance(keypoints, (list, tuple)):
        if counts is not None:
            raise ValueError(f"{fn}: 'counts' goes with a padded (N, K, F) 'keypoints' "
                             "array, not with a list of per-image keypoints")
        keypoints, counts = collate_keypoints(keypoints, np.float64, fn)
    if hasattr(keypoints, "detach"):
        keypoints = keypoints.detach().cpu().numpy()
    kp = np.asarray(keypoints)
    if kp.dtype.kind not in "fiub":
        raise TypeError(f"{fn}: 'keypoints' must be a number array, got {kp.dtype}")
    kp = np.ascontiguousarray(kp, dtype=np.float64)
    if not kp.flags.writeable:  # numpy exports no read-only array through DLPack
        kp = kp.copy()
    if counts is not None:
        if hasattr(counts, "detach"):
            counts = counts.detach().cpu().numpy()
        c = np.asarray(counts)
        if c.dtype.kind not in "iu":
            raise TypeError(f"{fn}: 'counts' must be an integer array, got {c.dtype}")
        counts = np.array(c, dtype=np.int64, order="C", copy=True)
    return kp, counts


def heatmap_shape(shape, fn):
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"{fn}: 'shape' must be (N, C, H, W), got {shape!r}") from None
    if len(shape) != 4 or min(shape) < 0:
        raise ValueError(f"{fn}: 'shape' must be (N, C, H, W) of sizes >= 0, got {shape}")
    return shape


def check_out(out, shape, fn):
    """out's shape against an explicit shape; numpy arrays must be writable float32
    C-contiguous (the C layer checks the rest through DLPack and names 'out')."""
    if isinstance(out, np.ndarray) and not out.flags.writeable:
        raise ValueError(f"{fn}: 'out' is read-only")
    if shape is not None and tuple(out.shape) != heatmap_shape(shape, fn):
        raise ValueError(f"{fn}: 'out' has shape {tuple(out.shape)}, but 'shape' is "
                         f"{tuple(shape)}")


def render_heatmaps(keypoints, counts=None, shape=None, *, style="umich", out=None):
    fn = "dafl.render_heatmaps"
    code = style_code(style, fn)
    kp, counts = prepare(keypoints, counts, fn)
    if out is None:
        if shape is None:
            raise TypeError(f"{fn}: give the heatmaps' 'shape' (N, C, H, W) or 'out'")
        out = np.empty(heatmap_shape(shape, fn), dtype=np.float32)
        target = out
    else:
        check_out(out, shape, fn)
        # a tensor is written in place through its memory (detached: no autograd record)
        target = out.detach() if hasattr(out, "detach") else out
    _dafl.render_heatmaps(kp, counts, target, code)
    return out


def penalty_focal_keypoints(x, keypoints, counts, *, style="umich", alpha=2.0, beta=4.0,
                            pos_weight=1.0, neg_weight=1.0, input_mode="logits",
                            clamp_eps=1e-4, log_eps=0.0, reduction="positives",
                            normalizer=None, grad_scale=1.0, want_grad=True, empty=None,
                            fn="dafl.penalty_focal_keypoints"):
    """The one C call for any array library: x is the logits already C-contiguous
    (N, C, H, W), float32, bfloat16 or float16 (numpy or torch), ``empty(shape, dtype)``
    allocates the outputs in x's library (float32 without a dtype).  Returns (reduction
    code, loss value, per-element loss buffer or None, grad or None, Stats)."""
    from ._losses import INPUT_MODES, reduction_code
    code, norm = reduction_code(reduction, normalizer, fn)
    if input_mode not in INPUT_MODES:
        raise ValueError(f"{fn}: 'input_mode' must be one of {', '.join(INPUT_MODES)}; "
                         f"got {input_mode!r}")
    value, loss_buf, grad, stats = run_penalty_focal_keypoints(
        x, keypoints, counts, style_code(style, fn), INPUT_MODES[input_mode], code, norm,
        float(alpha), float(beta), float(pos_weight), float(neg_weight), float(clamp_eps),
        float(log_eps), float(grad_scale), want_grad,
        empty or (lambda s, dtype=np.float32: np.empty(s, dtype=dtype)), fn)
    return code, value, loss_buf, grad, stats


def run_penalty_focal_keypoints(x, keypoints, counts, style, input_mode, code, norm, alpha,
                                beta, pos_weight, neg_weight, clamp_eps, log_eps,
                                grad_scale, want_grad, empty, fn):
    """The C call with the style, input mode and reduction as their C codes: x
    C-contiguous (N, C, H, W) float32, bfloat16 or float16; ``empty(shape, dtype)``
    allocates the outputs: the per-element loss float32, the gradient in x's dtype (the C
    call writes it in place).  Returns (loss value, per-element loss buffer or None, grad
    or None, Stats)."""
    shape = tuple(x.shape)
    if len(shape) != 4:
        raise ValueError(f"{fn}: 'logits' must be (N, C, H, W), got shape {shape}")
    kp, counts = prepare(keypoints, counts, fn)
    loss_buf = empty(shape) if code == _dafl.REDUCTION_NONE else None
    grad = empty(shape, x.dtype) if want_grad else None
    value, stats = _dafl.penalty_focal_keypoints(
        x, kp, counts, loss_buf, grad, style=style, alpha=alpha, beta=beta,
        pos_weight=pos_weight, neg_weight=neg_weight, input_mode=input_mode,
        clamp_eps=clamp_eps, log_eps=log_eps, reduction=code, normalizer=norm,
        grad_scale=grad_scale)
    return value, loss_buf, grad, stats
