"""The five losses, once, for any array library (dafl._convert's numpy and torch).

Each function converts its arguments (dafl._convert), allocates the outputs, makes the
one fused C call (dafl._dafl, GIL released) and returns ``(loss, grad, stats)``:

- loss: the reduced loss as a float32 scalar of the array library, or for reduction
  "none" the per-element loss in the input's shape (softmax focal: per pixel);
- grad: d(loss)/d(input) times grad_scale, in the input's dtype and layout, or None
  when ``want_grad`` is false (forward only: no gradient pass at all).  For a float32,
  bfloat16 or float16 input the C call writes it in that dtype, in place: the buffer
  allocated here is the gradient returned;
- stats: the call's exact partial statistics (dafl.Stats).
"""

import functools
import math
import numbers

from . import _dafl

FLOAT32_MAX = 3.4028234663852886e38


def _number(value, name, fn):
    """value as a Python float (what the C call receives, rounded to float32), or
    TypeError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        if hasattr(value, "numel") and value.numel() == 1:  # a one-element tensor
            return float(value)
        raise TypeError(f"{fn}: '{name}' must be a real number, got {value!r}")
    return float(value)


def check_param(fn, name, value, ok, rule):
    """A parameter the C call would refuse with a bare DAFL_ERR_INVALID_PARAMETER is
    refused here first, with its name, its value and the rule: ValueError."""
    v = _number(value, name, fn)
    if not ok(v):
        raise ValueError(f"{fn}: '{name}' must be {rule}, got {value!r}")
    return v


def _finite32(v):
    return math.isfinite(v) and abs(v) <= FLOAT32_MAX


def exponent(fn, name, value):
    return check_param(fn, name, value, lambda v: v >= 0 and _finite32(v),
                       "a finite number >= 0")


def weight(fn, name, value):
    return check_param(fn, name, value, lambda v: v >= 0 and _finite32(v),
                       "a finite number >= 0")


def check_integer(fn, name, value, lo, hi):
    """An integer argument in [lo, hi]: never truncated; TypeError / ValueError naming
    it and its value."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if hasattr(value, "numel") and value.numel() == 1 and not value.is_floating_point():
            value = int(value)
        else:
            raise TypeError(f"{fn}: '{name}' must be an integer, got {value!r}")
    value = int(value)
    if not lo <= value <= hi:
        raise ValueError(f"{fn}: '{name}' must be in [{lo}, {hi}], got {value}")
    return value

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
    return _dafl.REDUCTION_NORMALIZER, check_param(
        fn, "normalizer", normalizer, lambda v: v > 0 and _finite32(v), "a finite number > 0")


def check_common(fn, grad_scale):
    return check_param(fn, "grad_scale", grad_scale, _finite32, "a finite number")


def _memoized(check):
    """check(fn, *values), remembered for hashable values: a training loop passes the
    same parameters every step, and their checks would cost a few microseconds a call."""
    cached = functools.lru_cache(maxsize=64)(check)

    def lookup(*args):
        if all(type(a) in (int, float, str) for a in args):
            return cached(*args)
        return check(*args)  # a tensor, a bool, a numpy number...: checked each time
    lookup.__doc__ = check.__doc__
    return lookup


@_memoized
def penalty_params(fn, alpha, beta, pos_weight, neg_weight, input_mode, clamp_eps, log_eps):
    """The penalty-focal parameters checked (names and values in the errors), and the
    input mode's C code."""
    if input_mode not in INPUT_MODES:
        raise ValueError(f"{fn}: 'input_mode' must be one of {', '.join(INPUT_MODES)}; "
                         f"got {input_mode!r}")
    clamp_eps = _number(clamp_eps, "clamp_eps", fn)
    if input_mode == "clamped_logits":
        check_param(fn, "clamp_eps", clamp_eps, lambda v: 0 < v < 0.5, "in (0, 0.5)")
    log_eps = check_param(fn, "log_eps", log_eps, lambda v: 0 <= v < 0.5, "in [0, 0.5)")
    if log_eps != 0 and input_mode != "probabilities":
        raise ValueError(f"{fn}: 'log_eps' ({log_eps!r}) is only for input_mode "
                         "'probabilities'")
    return (exponent(fn, "alpha", alpha), exponent(fn, "beta", beta),
            weight(fn, "pos_weight", pos_weight), weight(fn, "neg_weight", neg_weight),
            INPUT_MODES[input_mode], clamp_eps, log_eps)


@_memoized
def sigmoid_params(fn, gamma, alpha):
    """torchvision takes any alpha (< 0: no weighting; > 1: negative weights for the
    negatives); NaN and +inf are refused."""
    return (exponent(fn, "gamma", gamma),
            check_param(fn, "alpha", alpha, lambda v: v < FLOAT32_MAX, "a number below "
                        "+inf (not NaN)"))


INT32_MIN, INT32_MAX = -2**31, 2**31 - 1


def _finish(arrays, code, loss_value, loss_buf, grad, original_input, stats,
            per_pixel=False):
    """Results in the dtype (and for arrays, the layout) of the caller's input; for
    reduction "none", the per-element loss, or with per_pixel softmax focal's per-pixel
    loss (no class dimension)."""
    if code == _dafl.REDUCTION_NONE:
        if per_pixel:
            loss = arrays.pixel_loss(loss_buf, original_input)
        else:
            loss = arrays.loss_like(loss_buf, original_input)
    else:
        loss = arrays.scalar(loss_value, original_input)
    if grad is not None:
        grad = arrays.like_input(grad, original_input)
    return loss, grad, stats


def elementwise(arrays, cfun, fn, input, target, reduction, normalizer, want_grad,
                grad_scale, allowed=tuple(REDUCTIONS), **params):
    """penalty focal, sigmoid focal, BCE: input and target of one shape."""
    code, norm = reduction_code(reduction, normalizer, fn, allowed)
    return run_elementwise(arrays, cfun, fn, input, target, code, norm,
                           check_common(fn, grad_scale), want_grad, **params)


def run_elementwise(arrays, cfun, fn, input, target, code, norm, grad_scale, want_grad,
                    **params):
    """The C call of an element-wise loss, its reduction given as the C code and its
    parameters already checked."""
    x, y, layout = arrays.elementwise_operands(input, target, fn)
    if tuple(y.shape) != tuple(x.shape):
        raise ValueError(f"{fn}: 'target' has shape {tuple(y.shape)}, expected the shape "
                         f"of 'input' {tuple(x.shape)}")
    shape = tuple(x.shape)
    loss_buf = arrays.output(layout, shape) if code == _dafl.REDUCTION_NONE else None
    grad = arrays.output(layout, shape, x.dtype) if want_grad else None
    value, stats = cfun(x, y, arrays.c_view(loss_buf), arrays.c_view(grad), reduction=code,
                        normalizer=norm, grad_scale=grad_scale, **params)
    return _finish(arrays, code, value, loss_buf, grad, input, stats)


def _flags(trust_targets):
    return _dafl.FLAG_TRUST_TARGETS if trust_targets else 0


def penalty_focal(arrays, input, target, *, alpha=2.0, beta=4.0, pos_weight=1.0,
                  neg_weight=1.0, input_mode="logits", clamp_eps=1e-4, log_eps=0.0,
                  reduction="positives", normalizer=None, grad_scale=1.0,
                  trust_targets=False, want_grad=True, fn="dafl.penalty_focal"):
    alpha, beta, pos_weight, neg_weight, mode, clamp_eps, log_eps = penalty_params(
        fn, alpha, beta, pos_weight, neg_weight, input_mode, clamp_eps, log_eps)
    return elementwise(arrays, _dafl.penalty_focal, fn, input, target, reduction,
                       normalizer, want_grad, grad_scale, alpha=alpha, beta=beta,
                       pos_weight=pos_weight, neg_weight=neg_weight, input_mode=mode,
                       clamp_eps=clamp_eps, log_eps=log_eps, flags=_flags(trust_targets))


def sigmoid_focal(arrays, input, target, *, gamma=2.0, alpha=0.25, reduction="none",
                  normalizer=None, grad_scale=1.0, trust_targets=False, want_grad=True,
                  fn="dafl.sigmoid_focal"):
    gamma, alpha = sigmoid_params(fn, gamma, alpha)
    return elementwise(arrays, _dafl.sigmoid_focal, fn, input, target, reduction,
                       normalizer, want_grad, grad_scale, gamma=gamma, alpha=alpha,
                       flags=_flags(trust_targets))


def bce_with_logits(arrays, input, target, *, pos_weight=1.0, reduction="mean",
                    normalizer=None, grad_scale=1.0, trust_targets=False, want_grad=True,
                    fn="dafl.bce_with_logits"):
    return elementwise(arrays, _dafl.bce_with_logits, fn, input, target, reduction,
                       normalizer, want_grad, grad_scale,
                       pos_weight=weight(fn, "pos_weight", pos_weight),
                       flags=_flags(trust_targets))


def mse(arrays, input, target, *, weights=None, reduction="mean", normalizer=None,
        grad_scale=1.0, trust_targets=False, want_grad=True, fn="dafl.mse"):
    """Heatmap MSE over (N, C, ...); weights per channel (C,) or per image and channel
    (N, C)."""
    code, norm = reduction_code(reduction, normalizer, fn)
    return run_mse(arrays, fn, input, target, weights, code, norm,
                   check_common(fn, grad_scale), _flags(trust_targets), want_grad)


def run_mse(arrays, fn, input, target, weights, code, norm, grad_scale, flags, want_grad):
    if weights is None:  # element-wise: any shared layout is read in place
        return run_elementwise(arrays, _dafl.mse, fn, input, target, code, norm,
                               grad_scale, want_grad, flags=flags)
    # weights per channel: a layout with the images outermost (channels_last...) is read
    # in place, the C call told where the channels are (order, see channel_operands)
    x, y, layout, order = arrays.channel_operands(input, target, fn)
    if tuple(y.shape) != tuple(x.shape):
        raise ValueError(f"{fn}: 'target' has shape {tuple(y.shape)}, expected the shape "
                         f"of 'input' {tuple(x.shape)}")
    w = None if weights is None else arrays.floats(weights, "weights", fn)
    shape = tuple(x.shape if layout is None else layout.shape)
    loss_buf = arrays.output(layout, shape) if code == _dafl.REDUCTION_NONE else None
    grad = arrays.output(layout, shape, x.dtype) if want_grad else None
    value, stats = _dafl.mse(
        x, y, arrays.permuted(loss_buf, order), arrays.permuted(grad, order), weights=w,
        reduction=code, normalizer=norm, grad_scale=grad_scale, flags=flags,
        channel_dim=1 if order is None else order.index(1))
    return _finish(arrays, code, value, loss_buf, grad, input, stats)


def softmax_focal(arrays, logits, labels, *, gamma=2.0, class_weights=None,
                  ignore_index=-100, reduction="mean", normalizer=None, grad_scale=1.0,
                  channels_last=False, want_grad=True, fn="dafl.softmax_focal"):
    """logits (N, C, ...) with labels (N, ...); channels_last=True: logits are
    (N, ..., C), classes contiguous per pixel (how a channels_last tensor is stored).

    ignore_index may be any 64-bit integer, as PyTorch's: one outside int32 (which no
    int32 label equals) is given to the C call as INT32_MIN, with the labels equal to it
    mapped there too (a label INT32_MIN is refused then: it could not be told apart)."""
    code, norm = reduction_code(reduction, normalizer, fn,
                                ("none", "sum", "mean", "normalizer"))
    return run_softmax_focal(
        arrays, fn, logits, labels, class_weights, exponent(fn, "gamma", gamma),
        check_integer(fn, "ignore_index", ignore_index, -2**63, 2**63 - 1), code, norm,
        check_common(fn, grad_scale), channels_last, want_grad)


def run_softmax_focal(arrays, fn, logits, labels, class_weights, gamma, ignore_index, code,
                      norm, grad_scale, channels_last, want_grad):
    x = arrays.operand(logits, "logits", fn)
    if not INT32_MIN <= ignore_index <= INT32_MAX:
        labels = arrays.remap_label(labels, ignore_index, INT32_MIN, "labels", fn)
        ignore_index = INT32_MIN
    t = arrays.integers(labels, "labels", fn)
    w = None if class_weights is None else arrays.floats(class_weights, "weight", fn)
    shape = tuple(x.shape)
    if len(shape) < 2:
        raise ValueError(f"{fn}: 'logits' must be (N, C) or (N, C, d1, ...), got {shape}")
    if shape[-1 if channels_last else 1] == 0 and arrays.any_not_equal(t, ignore_index):
        raise ValueError(f"{fn}: 'labels' holds a class index, but 'logits' has 0 classes "
                         f"(shape {shape})")
    pixel_shape = shape[:-1] if channels_last else shape[:1] + shape[2:]
    loss_buf = arrays.empty(pixel_shape) if code == _dafl.REDUCTION_NONE else None
    grad = arrays.empty(shape, x.dtype) if want_grad else None
    value, stats = _dafl.softmax_focal(x, t, loss_buf, grad, channels_last=channels_last,
                                       gamma=gamma, ignore_index=ignore_index,
                                       class_weights=w, reduction=code, normalizer=norm,
                                       grad_scale=grad_scale)
    return _finish(arrays, code, value, loss_buf, grad, logits, stats, per_pixel=True)
