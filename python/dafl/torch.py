"""dafl.torch: dafl's fused losses for PyTorch, and drop-ins for the losses in use.

Each loss is one operator (``torch.ops.dafl.*`` on torch >= 2.4, a custom operator that
``torch.compile(fullgraph=True)`` captures; an autograd.Function on older torch): one C
call computes the loss *and* d(loss)/d(input) in one pass over memory, and backward hands
that gradient to autograd (times ``grad_output``; when that is 1, the tensor itself).
No gradient pass runs when none is wanted (``torch.no_grad()``, or an input that does
not require grad).  See dafl._torch_ops for the autograd rules and docs/python.md.

Drop-ins (same signature, values and gradients as the peer):

======================================================  ===================================
peer                                                    dafl.torch
======================================================  ===================================
torchvision.ops.sigmoid_focal_loss                      sigmoid_focal_loss
CenterNet: FocalLoss()(_sigmoid(logits), target)        CenterNetFocalLoss()(logits, target)
mmdet GaussianFocalLoss (pred = sigmoid probabilities)  GaussianFocalLoss
F.binary_cross_entropy_with_logits                      binary_cross_entropy_with_logits
F.cross_entropy (gamma = 0)                             softmax_focal_loss
F.mse_loss, plus per-channel weights                    mse_loss
CornerNet / CenterNet penalty-reduced focal on logits   penalty_focal_loss
======================================================  ===================================

Tensors: CPU.  float32, bfloat16 and float16 logits and targets are read in place, each
its own dtype (bfloat16 logits with float32 Gaussian targets, for instance): the loss is
computed in float32 on their exact values, and the gradient written in the logits' dtype
(the float32 gradient rounded to nearest even), with no copy.  float64 takes the exact
path in float64 (the formula in torch operations).  The loss has the input's dtype,
except under CPU autocast, where it is float32 (as PyTorch's losses on autocast's
float32 list); autocast casts nothing for dafl: its losses get the bfloat16 logits as
they are.  Layouts: contiguous tensors and, for the element-wise losses, logits and
target sharing a dense layout (channels_last...) are read in place; softmax focal reads
channels_last in place; other layouts go through one copy and the gradient comes back in
the input's layout.  dafl's thread pool is sized by ``torch.get_num_threads()``
when this module is imported; change it with ``dafl.set_num_threads()``.
"""

from typing import Optional, Union

import torch

from . import _dafl, _losses, _torch_ops
from ._torch_ops import HAVE_CUSTOM_OPS

__all__ = [
    "sigmoid_focal_loss", "CenterNetFocalLoss", "GaussianFocalLoss", "PenaltyFocalLoss",
    "penalty_focal_loss", "binary_cross_entropy_with_logits", "softmax_focal_loss",
    "mse_loss", "HAVE_CUSTOM_OPS", "collate_keypoints", "render_heatmaps",
    "penalty_focal_keypoints", "PenaltyFocalKeypointLoss", "CenterNetFocalKeypointLoss",
    "set_buffer_cache",
]

Number = Union[int, float]
TensorOrNumber = Union[torch.Tensor, int, float]

_dafl.set_threads(max(1, min(torch.get_num_threads(), _dafl.MAX_THREADS)))


# ---- shared argument handling -------------------------------------------------------------

def _tensor(t, name: str, fn: str, floating: bool = True) -> torch.Tensor:
    _torch_ops._T.check(t, name, fn)
    if floating and not t.is_floating_point():
        raise TypeError(f"{fn}: '{name}' must be a floating-point tensor, got {t.dtype}")
    return t


def _pair(input, target, fn: str, names=("input", "target")):
    _tensor(input, names[0], fn)
    _tensor(target, names[1], fn)
    if target.shape != input.shape:
        raise ValueError(f"{fn}: '{names[1]}' has shape {tuple(target.shape)}, expected the "
                         f"shape of '{names[0]}' {tuple(input.shape)}")


def _want_grad(input: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and input.requires_grad


def _autocast_cpu() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled()


def _in_dtype(loss: torch.Tensor, input: torch.Tensor) -> torch.Tensor:
    """The operators' float32 loss in the input's dtype, as PyTorch's losses return it;
    under CPU autocast it stays float32, as the losses on autocast's float32 list return
    it (those cast their inputs to float32 first; dafl reads them as they are and computes
    in float32 all the same)."""
    if loss.dtype == input.dtype or _autocast_cpu():
        return loss
    return loss.to(input.dtype)


def _reduction(reduction: str, fn: str) -> int:
    """The C code of a PyTorch reduction name ("none", "mean", "sum"), or ValueError."""
    return _losses.reduction_code(reduction, None, fn, ("none", "mean", "sum"))[0]


def _normalizer(normalizer):
    """A tensor normalizer (a global positive count) as a number: a graph break under
    torch.compile; pass a Python number there."""
    return float(normalizer) if isinstance(normalizer, torch.Tensor) else normalizer


def _weighted(per_element: torch.Tensor, weight, input: torch.Tensor, reduction: str,
              divisor, fn: str) -> torch.Tensor:
    """An element-wise weight (broadcast to the input), which no fused kernel takes: the
    fused per-element loss times the weight, reduced by PyTorch (autograd gives the
    weight its gradient); "mean" divides by ``divisor``."""
    if not isinstance(weight, torch.Tensor):
        weight = torch.as_tensor(weight, dtype=input.dtype)
    _tensor(weight, "weight", fn)
    try:
        torch.broadcast_shapes(weight.shape, input.shape)
    except RuntimeError:
        raise ValueError(f"{fn}: 'weight' of shape {tuple(weight.shape)} does not broadcast "
                         f"to the input's shape {tuple(input.shape)}") from None
    loss = per_element * weight
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.sum() / divisor
    return loss


# ---- torchvision ------------------------------------------------------------------------

def sigmoid_focal_loss(inputs: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25,
                       gamma: float = 2, reduction: str = "none") -> torch.Tensor:
    """torchvision.ops.sigmoid_focal_loss, fused.

    inputs: logits of any shape; targets: the same shape, in [0, 1] (soft targets
    allowed).  loss = alpha_t * (1 - p_t)^gamma * BCE, alpha_t = alpha*y + (1-alpha)*(1-y);
    any alpha torchvision takes (alpha < 0: no weighting; alpha > 1: negative weights on
    the negatives), gamma >= 0.  reduction "none" (per element, the input's shape),
    "mean" (over elements) or "sum".  Matches torchvision to float32 rounding."""
    fn = "dafl.torch.sigmoid_focal_loss"
    code = _reduction(reduction, fn)
    _pair(inputs, targets, fn, ("inputs", "targets"))
    gamma, alpha = _losses.sigmoid_params(fn, gamma, alpha)
    loss = _torch_ops.sigmoid_focal(inputs, targets, gamma, alpha,
                                    code, 1.0, 1.0, False,
                                    _want_grad(inputs))
    return _in_dtype(loss, inputs)


# ---- CenterNet / CornerNet ----------------------------------------------------------------

def penalty_focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: Number = 2,
                       beta: Number = 4, reduction: str = "positives",
                       normalizer: Optional[TensorOrNumber] = None, *,
                       pos_weight: Number = 1.0, neg_weight: Number = 1.0,
                       input_mode: str = "logits", clamp_eps: float = 1e-4,
                       log_eps: float = 0.0, grad_scale: float = 1.0,
                       trust_targets: bool = False) -> torch.Tensor:
    """Penalty-reduced focal loss (CornerNet eq. 1, CenterNet's heatmap loss), fused.

    logits: the head's output, any shape (N, C, H, W typically); target: the same shape,
    Gaussian heatmaps in [0, 1] with exact 1.0 at the keypoints.
    y == 1: pos_weight * (1-p)^alpha * -log p;  y < 1: neg_weight * (1-y)^beta * p^alpha *
    -log(1-p), p = sigmoid(logits) (input_mode "logits"), clamp(sigmoid(logits), clamp_eps,
    1 - clamp_eps) ("clamped_logits", CenterNet's code) or logits itself ("probabilities",
    log_eps added inside both logs).
    reduction: "positives" (the sum over the number of targets equal to 1, the raw sum
    when there is none; CenterNet), "sum", "mean", "none"; ``normalizer`` replaces that
    divisor (a data-parallel trainer passes the global positive count; a tensor
    normalizer is read with float(), a graph break under torch.compile).  grad_scale
    multiplies the gradient only (DDP's averaging undone, for instance)."""
    fn = "dafl.torch.penalty_focal_loss"
    _pair(logits, target, fn, ("logits", "target"))
    params = _losses.penalty_params(fn, alpha, beta, pos_weight, neg_weight, input_mode,
                                    clamp_eps, log_eps)
    code, norm = _losses.reduction_code(reduction, _normalizer(normalizer), fn,
                                        ("none", "sum", "mean", "positives"))
    loss = _torch_ops.penalty_focal(logits, target, *params, code, norm,
                                    _losses.check_common(fn, grad_scale), bool(trust_targets),
                                    _want_grad(logits))
    return _in_dtype(loss, logits)


class PenaltyFocalLoss(torch.nn.Module):
    """Module form of :func:`penalty_focal_loss` (on logits): ``forward(logits, target,
    normalizer=None)``, the loss as that function returns it."""

    def __init__(self, alpha: Number = 2.0, beta: Number = 4.0,
                 reduction: str = "positives", input_mode: str = "logits"):
        super().__init__()
        self.alpha, self.beta = alpha, beta
        self.reduction, self.input_mode = reduction, input_mode

    def forward(self, logits: torch.Tensor, target: torch.Tensor,
                normalizer: Optional[TensorOrNumber] = None) -> torch.Tensor:
        """logits, target: (N, C, H, W) (any shape, the same for both); returns the
        reduced loss (0-d) or, for reduction "none", the per-element loss."""
        return penalty_focal_loss(logits, target, self.alpha, self.beta, self.reduction,
                                  normalizer, input_mode=self.input_mode)


class CenterNetFocalLoss(torch.nn.Module):
    """CenterNet's ``FocalLoss`` (``_neg_loss``) applied to ``_sigmoid(logits)``, taking the
    head's logits: p = clamp(sigmoid(logits), 1e-4, 1 - 1e-4), alpha 2, beta 4, divided by
    the number of positives (the raw negative sum when there is none); zero gradient where
    the clamp is active, as torch.clamp gives.  Matches CenterNet to float32 rounding."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """logits: (N, C, H, W) heatmap logits; target: (N, C, H, W) Gaussian heatmaps
        with 1.0 at object centres.  Returns the 0-d loss (float32 for float32, bfloat16
        and float16 under autocast; the input's dtype otherwise)."""
        return penalty_focal_loss(logits, target, 2.0, 4.0, "positives",
                                  input_mode="clamped_logits", clamp_eps=1e-4)


# ---- mmdetection --------------------------------------------------------------------------

class GaussianFocalLoss(torch.nn.Module):
    """mmdetection's GaussianFocalLoss on probabilities ``pred`` (the head's sigmoid):
    -log(pred + eps) * (1 - pred)^alpha where target == 1, -log(1 - pred + eps) * pred^alpha
    * (1 - target)^gamma elsewhere, eps = 1e-12 inside the logs, times pos_weight /
    neg_weight; reduction "mean" (over elements), "sum" or "none"; ``avg_factor`` divides
    the sum by avg_factor + float32 eps instead of the mean; the result times
    ``loss_weight``.  An element-wise ``weight`` multiplies the fused per-element loss
    (PyTorch reduces it; the weight gets its gradient)."""

    EPS = 1e-12  # mmdetection's eps inside the logs

    def __init__(self, alpha: Number = 2.0, gamma: Number = 4.0, reduction: str = "mean",
                 loss_weight: float = 1.0, pos_weight: Number = 1.0,
                 neg_weight: Number = 1.0):
        super().__init__()
        self.alpha, self.gamma = alpha, gamma
        self.reduction, self.loss_weight = reduction, loss_weight
        self.pos_weight, self.neg_weight = pos_weight, neg_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                weight: Optional[TensorOrNumber] = None,
                avg_factor: Optional[Number] = None,
                reduction_override: Optional[str] = None) -> torch.Tensor:
        """pred: probabilities in [0, 1], any shape; target: the same shape; weight:
        broadcast to pred.  Returns the loss as mmdetection's does."""
        fn = "dafl.torch.GaussianFocalLoss"
        reduction = reduction_override if reduction_override else self.reduction
        _reduction(reduction, fn)
        _pair(pred, target, fn, ("pred", "target"))
        normalizer = None
        if avg_factor is not None:
            if reduction == "sum":
                raise ValueError('avg_factor can not be used with reduction="sum"')
            if reduction == "mean":  # mmdetection: loss.sum() / (avg_factor + eps)
                normalizer = float(torch.tensor(float(avg_factor), dtype=torch.float32)
                                   + torch.finfo(torch.float32).eps)
        params = _losses.penalty_params(fn, self.alpha, self.gamma, self.pos_weight,
                                        self.neg_weight, "probabilities", 1e-4, self.EPS)
        fused = reduction if weight is None else "none"
        code, norm = _losses.reduction_code(fused, normalizer if weight is None else None, fn)
        loss = _torch_ops.penalty_focal(pred, target, *params, code, norm, 1.0, False,
                                        _want_grad(pred))
        if weight is not None:
            divisor = normalizer if normalizer is not None else pred.numel()
            loss = _weighted(loss, weight, pred, reduction, divisor, fn)
        if self.loss_weight != 1.0:
            loss = loss * float(self.loss_weight)
        return _in_dtype(loss, pred)


# ---- torch.nn.functional ------------------------------------------------------------------

def _legacy_reduction(size_average, reduce, reduction):
    if size_average is None and reduce is None:
        return reduction
    from torch.nn import _reduction
    return _reduction.legacy_get_string(size_average, reduce)


def binary_cross_entropy_with_logits(
        input: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor] = None,
        size_average: Optional[bool] = None, reduce: Optional[bool] = None,
        reduction: str = "mean",
        pos_weight: Optional[TensorOrNumber] = None) -> torch.Tensor:
    """F.binary_cross_entropy_with_logits, fused: l = pos_weight*y*-log p + (1-y)*-log(1-p).

    input, target: the same shape.  ``pos_weight``: a number or a one-element tensor
    (fused), or a tensor broadcast to the input as PyTorch does (per class, e.g. (C, 1, 1)
    for NCHW): computed then by PyTorch's own formula inside the operator (exact,
    unfused).  ``weight``: broadcast to the input, multiplies the fused per-element loss.
    reduction "none", "mean", "sum"."""
    fn = "dafl.torch.binary_cross_entropy_with_logits"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _reduction(reduction, fn)
    _pair(input, target, fn)
    pw, pw_tensor = 1.0, None
    if isinstance(pos_weight, torch.Tensor):
        _tensor(pos_weight, "pos_weight", fn)
        if pos_weight.numel() == 1 and not pos_weight.requires_grad:
            pw = _losses.weight(fn, "pos_weight", float(pos_weight))
        else:
            try:
                torch.broadcast_shapes(pos_weight.shape, input.shape)
            except RuntimeError:
                raise ValueError(f"{fn}: 'pos_weight' of shape {tuple(pos_weight.shape)} "
                                 "does not broadcast to the input's shape "
                                 f"{tuple(input.shape)}") from None
            pw_tensor = pos_weight
    elif pos_weight is not None:
        pw = _losses.weight(fn, "pos_weight", pos_weight)
    fused = reduction if weight is None else "none"
    loss = _torch_ops.bce_with_logits(input, target, pw, pw_tensor, _losses.REDUCTIONS[fused],
                                      1.0, 1.0, False, _want_grad(input))
    if weight is not None:
        loss = _weighted(loss, weight, input, reduction, input.numel(), fn)
    return _in_dtype(loss, input)


def softmax_focal_loss(logits: torch.Tensor, labels: torch.Tensor, gamma: Number = 2,
                       weight: Optional[torch.Tensor] = None, ignore_index: int = -100,
                       reduction: str = "mean") -> torch.Tensor:
    """Softmax focal loss, -w[t] (1 - p_t)^gamma log p_t, fused.

    logits: (N, C) or (N, C, d1, ...) (channels_last is read in place); labels: integer
    class indices (N,) or (N, d1, ...); gamma 0 is F.cross_entropy (weight (C,),
    ignore_index — any 64-bit integer —, reduction as there: "mean" divides by the sum of
    the weights of the labels that are not ignored).  reduction "none" gives (N, d1, ...)."""
    fn = "dafl.torch.softmax_focal_loss"
    code = _reduction(reduction, fn)
    _tensor(logits, "logits", fn)
    _tensor(labels, "labels", fn, floating=False)
    if logits.dim() < 2:
        raise ValueError(f"{fn}: 'logits' must be (N, C) or (N, C, d1, ...), got "
                         f"{tuple(logits.shape)}")
    pixels = (logits.shape[0],) + tuple(logits.shape[2:])
    if tuple(labels.shape) != pixels:
        raise ValueError(f"{fn}: 'labels' has shape {tuple(labels.shape)}, expected {pixels} "
                         f"(the shape of 'logits' {tuple(logits.shape)} without its class "
                         "dimension)")
    if weight is not None:
        _tensor(weight, "weight", fn)
        if tuple(weight.shape) != (logits.shape[1],):
            raise ValueError(f"{fn}: 'weight' must have shape ({logits.shape[1]},) (one per "
                             f"class), got {tuple(weight.shape)}")
    loss = _torch_ops.softmax_focal(
        logits, labels, weight, _losses.exponent(fn, "gamma", gamma),
        _losses.check_integer(fn, "ignore_index", ignore_index, -2**63, 2**63 - 1),
        code, 1.0, 1.0, _want_grad(logits))
    return _in_dtype(loss, logits)


def mse_loss(input: torch.Tensor, target: torch.Tensor,
             weights: Optional[torch.Tensor] = None, reduction: str = "mean") -> torch.Tensor:
    """Heatmap MSE, w[c] * (input - target)^2 over (N, C, ...), fused.

    ``weights`` per channel (C,) or per image and channel (N, C) (joint visibility, for
    example); without weights it is F.mse_loss.  reduction "mean" divides by the number of
    elements; "sum", "none"."""
    fn = "dafl.torch.mse_loss"
    code = _reduction(reduction, fn)
    _pair(input, target, fn)
    if weights is not None:
        _tensor(weights, "weights", fn)
        shape = tuple(input.shape)
        allowed = [shape[1:2], shape[:2]] if input.dim() >= 2 else []
        if tuple(weights.shape) not in allowed:
            raise ValueError(f"{fn}: 'weights' must be (C,) or (N, C) for an input of shape "
                             f"{shape}, got {tuple(weights.shape)}")
    loss = _torch_ops.mse(input, target, weights, code, 1.0, 1.0,
                          False, _want_grad(input))
    return _in_dtype(loss, input)


# ---- keypoint batches (dafl._keypoints_torch) ---------------------------------------------

from ._keypoints_torch import (CenterNetFocalKeypointLoss, PenaltyFocalKeypointLoss,  # noqa: E402
                               collate_keypoints, penalty_focal_keypoints, render_heatmaps)


# ---- buffers ------------------------------------------------------------------------------

def set_buffer_cache(enabled: bool) -> None:
    """Turn dafl's cache of output buffers on or off (dafl._buffers: gradients and
    rendered batches reused once nothing references them, so that a training step does
    not fault in a fresh gradient's pages; on by default with torch >= 2.0, or set
    DAFL_TORCH_BUFFER_CACHE=0).  Turning it off releases the buffers it holds."""
    from ._buffers import CACHE, _use_count
    CACHE.enabled = bool(enabled) and _use_count is not None
    if not CACHE.enabled:
        CACHE.clear()
