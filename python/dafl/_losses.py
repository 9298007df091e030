"""The five losses, once, for any array library (dafl._convert's numpy and torch).

Each function converts its arguments (dafl._convert), allocates the outputs, makes the
one fused C call (dafl._dafl, GIL released) and returns ``(loss, grad, stats)``:

- loss: the reduced loss as a float32 scalar of the array library, or for reduction
  "none" the per-element loss in the input's shape (softmax focal: per pixel);
- grad: d(loss)/d(input) times grad_scale, in the input's dtype and layout, or None
  when ``want_grad`` is false (forward only: no gradient pass at all);
- stats: the call's exact partial statistics (dafl.Stats).
"""

from . import _dafl

REDUCTIONS = {
    "none": _dafl.REDUCTION_NONE,
    "sum": _dafl.REDUCTION_SUM,
    "mean": _dafl.REDUCTION_MEAN,
    "positives": _dafl.REDUCTION_POSITIVES,
    "normalizer": _dafl.REDUCTION_NORMALIZER,
}

INPUT_MODES = {
    "logits": _dafl.INPUT_LOGITS,
    "probabilities": _dafl.INPUT_PROBABILITIES,
    "clamped_logits": _dafl.INPUT_CLAMPED_LOGITS,
}


def reduction_code(reduction, normalizer, fn, allowed=tuple(REDUCTIONS)):
    """The C reduction for a reduction name and an optional normalizer.

    A normalizer (mmdetection's avg_factor, a global positive count) replaces the
    divisor of "positives" and "mean": the reduction becomes "normalizer"."""
    if reduction not in allowed:
        raise ValueError(f"{fn}: 'reduction' must be one of {', '.join(allowed)}; "
                         f"got {reduction!r}")
    if normalizer is None:
        if reduction == "normalizer":
            raise ValueError(f"{fn}: reduction 'normalizer' needs a 'normalizer'")
        return REDUCTIONS[reduction], 1.0
    if reduction in ("none", "sum"):
        raise ValueError(f"{fn}: a 'normalizer' cannot be used with reduction {reduction!r}")
    return _dafl.REDUCTION_NORMALIZER, float(normalizer)


def _finish(arrays, code, loss_value, loss_buf, grad, original_input, stats):
    """Results in the dtype (and for arrays, the layout) of the caller's input."""
    if code == _dafl.REDUCTION_NONE:
        loss = arrays.like_input(loss_buf, original_input)
    else:
        loss = arrays.scalar(loss_value, original_input)
    if grad is not None:
        grad = arrays.like_input(grad, original_input)
    return loss, grad, stats


def elementwise(arrays, cfun, fn, input, target, reduction, normalizer, want_grad,
                allowed=tuple(REDUCTIONS), **params):
    """penalty focal, sigmoid focal, BCE: input and target of one shape."""
    code, norm = reduction_code(reduction, normalizer, fn, allowed)
    x = arrays.floats(input, "input", fn)
    y = arrays.floats(target, "target", fn)
    if tuple(y.shape) != tuple(x.shape):
        raise ValueError(f"{fn}: 'target' has shape {tuple(y.shape)}, expected the shape "
                         f"of 'input' {tuple(x.shape)}")
    loss_buf = arrays.empty(tuple(x.shape)) if code == _dafl.REDUCTION_NONE else None
    grad = arrays.empty(tuple(x.shape)) if want_grad else None
    value, stats = cfun(x, y, loss_buf, grad, reduction=code, normalizer=norm, **params)
    return _finish(arrays, code, value, loss_buf, grad, input, stats)


def penalty_focal(arrays, input, target, *, alpha=2.0, beta=4.0, pos_weight=1.0,
                  neg_weight=1.0, input_mode="logits", clamp_eps=1e-4, log_eps=0.0,
                  reduction="positives", normalizer=None, grad_scale=1.0,
                  trust_targets=False, want_grad=True, fn="dafl.penalty_focal"):
    if input_mode not in INPUT_MODES:
        raise ValueError(f"{fn}: 'input_mode' must be one of {', '.join(INPUT_MODES)}; "
                         f"got {input_mode!r}")
    return elementwise(arrays, _dafl.penalty_focal, fn, input, target, reduction,
                       normalizer, want_grad, alpha=alpha, beta=beta,
                       pos_weight=pos_weight, neg_weight=neg_weight,
                       input_mode=INPUT_MODES[input_mode], clamp_eps=clamp_eps,
                       log_eps=log_eps, grad_scale=grad_scale,
                       flags=_dafl.FLAG_TRUST_TARGETS if trust_targets else 0)


def sigmoid_focal(arrays, input, target, *, gamma=2.0, alpha=0.25, reduction="none",
                  normalizer=None, grad_scale=1.0, trust_targets=False, want_grad=True,
                  fn="dafl.sigmoid_focal"):
    return elementwise(arrays, _dafl.sigmoid_focal, fn, input, target, reduction,
                       normalizer, want_grad, ("none", "sum", "mean", "positives",
                                               "normalizer"),
                       gamma=gamma, alpha=alpha, grad_scale=grad_scale,
                       flags=_dafl.FLAG_TRUST_TARGETS if trust_targets else 0)


def bce_with_logits(arrays, input, target, *, pos_weight=1.0, reduction="mean",
                    normalizer=None, grad_scale=1.0, trust_targets=False, want_grad=True,
                    fn="dafl.bce_with_logits"):
    return elementwise(arrays, _dafl.bce_with_logits, fn, input, target, reduction,
                       normalizer, want_grad, pos_weight=pos_weight, grad_scale=grad_scale,
                       flags=_dafl.FLAG_TRUST_TARGETS if trust_targets else 0)


def mse(arrays, input, target, *, weights=None, reduction="mean", normalizer=None,
        grad_scale=1.0, trust_targets=False, want_grad=True, fn="dafl.mse"):
    """Heatmap MSE over (N, C, ...); weights per channel (C,) or per image and channel
    (N, C)."""
    code, norm = reduction_code(reduction, normalizer, fn)
    x = arrays.floats(input, "input", fn)
    y = arrays.floats(target, "target", fn)
    if tuple(y.shape) != tuple(x.shape):
        raise ValueError(f"{fn}: 'target' has shape {tuple(y.shape)}, expected the shape "
                         f"of 'input' {tuple(x.shape)}")
    w = None if weights is None else arrays.floats(weights, "weights", fn)
    loss_buf = arrays.empty(tuple(x.shape)) if code == _dafl.REDUCTION_NONE else None
    grad = arrays.empty(tuple(x.shape)) if want_grad else None
    value, stats = _dafl.mse(x, y, loss_buf, grad, weights=w, reduction=code, normalizer=norm,
                             grad_scale=grad_scale,
                             flags=_dafl.FLAG_TRUST_TARGETS if trust_targets else 0)
    return _finish(arrays, code, value, loss_buf, grad, input, stats)


def softmax_focal(arrays, logits, labels, *, gamma=2.0, class_weights=None,
                  ignore_index=-100, reduction="mean", normalizer=None, grad_scale=1.0,
                  channels_last=False, want_grad=True, fn="dafl.softmax_focal"):
    """logits (N, C, ...) with labels (N, ...); channels_last=True: logits are
    (N, ..., C), classes contiguous per pixel (how a channels_last tensor is stored)."""
    code, norm = reduction_code(reduction, normalizer, fn,
                                ("none", "sum", "mean", "normalizer"))
    x = arrays.floats(logits, "logits", fn)
    t = arrays.integers(labels, "labels", fn)
    w = None if class_weights is None else arrays.floats(class_weights, "weight", fn)
    shape = tuple(x.shape)
    if len(shape) < 2:
        raise ValueError(f"{fn}: 'logits' must be (N, C) or (N, C, d1, ...), got {shape}")
    pixel_shape = shape[:-1] if channels_last else shape[:1] + shape[2:]
    loss_buf = arrays.empty(pixel_shape) if code == _dafl.REDUCTION_NONE else None
    grad = arrays.empty(shape) if want_grad else None
    value, stats = _dafl.softmax_focal(x, t, loss_buf, grad, channels_last=channels_last,
                                       gamma=gamma, ignore_index=ignore_index,
                                       class_weights=w, reduction=code, normalizer=norm,
                                       grad_scale=grad_scale)
    if code == _dafl.REDUCTION_NONE:
        loss = arrays.cast_like(loss_buf, logits)
    else:
        loss = arrays.scalar(value, logits)
    if grad is not None:
        grad = arrays.like_input(grad, logits)
    return loss, grad, stats
