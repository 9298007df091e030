"""dafl.torch: autograd for dafl's fused losses, and drop-ins for the losses in use.

Every loss here is one ``torch.autograd.Function`` (_FusedLoss): its forward makes the
fused C call, which computes the loss *and* d(loss)/d(input) in one pass over memory;
its backward returns that stored gradient times ``grad_output`` (no second pass; when
``grad_output`` is 1, as after ``loss.backward()``, the stored tensor itself).  The
gradient pass is skipped entirely when no gradient is wanted (``torch.no_grad()``, or an
input that does not require grad).  The graph can be backpropagated once (no
retain_graph=True): the stored gradient is handed to autograd, not copied.  Targets are data: no gradient flows to them.
Higher-order gradients are not available (``once_differentiable``).

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

Tensors: CPU only; float32 contiguous tensors are used in place; float16, bfloat16,
float64 and other layouts (strided views, channels_last) go through one copy, and the
gradient comes back in the input's dtype and layout (dafl._convert).  dafl's thread
pool is sized by ``torch.get_num_threads()`` when this module is imported; change it
with ``dafl.set_num_threads()``.
"""

import torch
from torch.autograd.function import once_differentiable

from . import _dafl, _losses
from ._convert import TorchArrays

__all__ = [
    "sigmoid_focal_loss", "CenterNetFocalLoss", "GaussianFocalLoss", "PenaltyFocalLoss",
    "penalty_focal_loss", "binary_cross_entropy_with_logits", "softmax_focal_loss",
    "mse_loss",
]

_T = TorchArrays()
_dafl.set_threads(max(1, min(torch.get_num_threads(), _dafl.MAX_THREADS)))


class _FusedLoss(torch.autograd.Function):
    """loss = compute(...)'s loss; d(loss)/d(input) = the gradient it computed with it.

    compute(want_grad) -> (loss, grad): grad is d(loss)/d(input) (None when not wanted).
    class_dim: for a per-pixel loss of class logits (softmax focal, reduction none), the
    dimension of the input the upstream gradient is broadcast along."""

    @staticmethod
    def forward(ctx, input, compute, class_dim):
        loss, grad = compute(True)
        ctx.grad = grad
        ctx.class_dim = class_dim
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        # The stored gradient is handed over, not kept: autograd then accumulates the
        # tensor itself into .grad instead of cloning it (a whole extra pass).  So a
        # second backward through the same graph (retain_graph=True) cannot work.
        grad, ctx.grad = ctx.grad, None
        if grad is None:
            raise RuntimeError("dafl.torch: this loss's gradient was already used by an "
                               "earlier backward(); compute the loss again (a fused loss "
                               "does not support retain_graph=True)")
        if grad_output.dim() == 0:
            if grad_output.item() == 1.0:  # loss.backward(): the fused gradient itself
                return grad, None, None
        elif ctx.class_dim is not None:
            grad_output = grad_output.unsqueeze(ctx.class_dim)
        return grad * grad_output, None, None


def _fused(input, compute, class_dim=None):
    if torch.is_grad_enabled() and isinstance(input, torch.Tensor) and input.requires_grad:
        return _FusedLoss.apply(input, compute, class_dim)
    return compute(False)[0]


def _drop_stats(run, scale=1.0):
    """compute(want_grad) for _fused from a dafl._losses call run(want_grad) whose gradient
    is already multiplied by ``scale`` (its grad_scale): the loss is scaled here."""
    def compute(want_grad):
        loss, grad, _ = run(want_grad)
        return (loss * scale if scale != 1.0 else loss), grad
    return compute


def _weighted(input, weight, run_none, reduction, divisor, scale, fn):
    """An element-wise weight (broadcast to the input), which no fused kernel takes: the
    per-element loss and gradient come from one fused call (run_none, reduction none),
    the weighting and the sum from PyTorch (an unfused fallback, exact all the same).
    reduction "none", "sum", or "mean" (divided by ``divisor``); times ``scale``."""
    if not isinstance(weight, torch.Tensor):
        weight = torch.as_tensor(weight, dtype=input.dtype)
    try:
        w = weight.detach().expand_as(input)
    except RuntimeError:
        raise ValueError(f"{fn}: 'weight' of shape {tuple(weight.shape)} does not broadcast "
                         f"to the input's shape {tuple(input.shape)}") from None
    factor = scale if reduction != "mean" else scale / divisor

    def compute(want_grad):
        loss, grad, _ = run_none(want_grad)
        loss = loss * w
        if reduction == "sum":
            loss = loss.sum()
        elif reduction == "mean":
            loss = loss.sum() / divisor
        if grad is not None:
            grad = grad * w * factor if factor != 1.0 else grad * w
        return (loss * scale if scale != 1.0 else loss), grad
    return compute


# ---- torchvision ------------------------------------------------------------------------

def sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2, reduction="none"):
    """torchvision.ops.sigmoid_focal_loss, fused: ``alpha`` < 0 turns the class weights
    off; reduction "none", "mean" (over elements) or "sum"."""
    fn = "dafl.torch.sigmoid_focal_loss"
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{fn}: invalid value for arg 'reduction': '{reduction}'; "
                         "supported reduction modes: 'none', 'mean', 'sum'")
    return _fused(inputs, _drop_stats(lambda want_grad: _losses.sigmoid_focal(
        _T, inputs, targets, gamma=float(gamma), alpha=float(alpha), reduction=reduction,
        want_grad=want_grad, fn=fn)))


# ---- CenterNet / CornerNet ----------------------------------------------------------------

def penalty_focal_loss(logits, target, alpha=2, beta=4, reduction="positives",
                       normalizer=None, *, pos_weight=1.0, neg_weight=1.0,
                       input_mode="logits", clamp_eps=1e-4, grad_scale=1.0):
    """Penalty-reduced focal loss on the head's logits (CornerNet eq. 1).

    reduction "positives" divides by the number of targets equal to 1 (CenterNet; the
    raw sum when there is none); "sum", "mean", "none" as usual.  ``normalizer`` (a
    number) replaces that divisor: a data-parallel trainer passes the global positive
    count.  input_mode "clamped_logits" is CenterNet's clamp(sigmoid(x), 1e-4, 1-1e-4)."""
    fn = "dafl.torch.penalty_focal_loss"
    if isinstance(normalizer, torch.Tensor):
        normalizer = float(normalizer)
    return _fused(logits, _drop_stats(lambda want_grad: _losses.penalty_focal(
        _T, logits, target, alpha=float(alpha), beta=float(beta), pos_weight=pos_weight,
        neg_weight=neg_weight, input_mode=input_mode, clamp_eps=clamp_eps,
        reduction=reduction, normalizer=normalizer, grad_scale=grad_scale,
        want_grad=want_grad, fn=fn)))


class PenaltyFocalLoss(torch.nn.Module):
    """Module form of penalty_focal_loss (on logits)."""

    def __init__(self, alpha=2.0, beta=4.0, reduction="positives", input_mode="logits"):
        super().__init__()
        self.alpha, self.beta = alpha, beta
        self.reduction, self.input_mode = reduction, input_mode

    def forward(self, logits, target, normalizer=None):
        return penalty_focal_loss(logits, target, self.alpha, self.beta, self.reduction,
                                  normalizer, input_mode=self.input_mode)


class CenterNetFocalLoss(torch.nn.Module):
    """CenterNet's ``FocalLoss`` (``_neg_loss``) applied to ``_sigmoid(logits)``, i.e. to
    clamp(sigmoid(logits), 1e-4, 1 - 1e-4), taking the head's logits: alpha 2, beta 4,
    divided by the number of positives (the raw negative sum when there is none); zero
    gradient where the clamp is active, as torch.clamp gives."""

    def forward(self, logits, target):
        return penalty_focal_loss(logits, target, 2.0, 4.0, "positives",
                                  input_mode="clamped_logits", clamp_eps=1e-4)


# ---- mmdetection --------------------------------------------------------------------------

class GaussianFocalLoss(torch.nn.Module):
    """mmdetection's GaussianFocalLoss on probabilities ``pred`` (the head's sigmoid):
    -log(pred + eps) * (1 - pred)^alpha where target == 1, -log(1 - pred + eps) * pred^alpha
    * (1 - target)^gamma elsewhere, eps = 1e-12 inside the logs; reduction "mean" (over
    elements), "sum" or "none"; ``avg_factor`` divides the sum by avg_factor + float32
    eps instead of the mean; the result times ``loss_weight``.  An element-wise
    ``weight`` is applied by PyTorch around the fused call (unfused, but exact)."""

    EPS = 1e-12  # mmdetection's eps inside the logs

    def __init__(self, alpha=2.0, gamma=4.0, reduction="mean", loss_weight=1.0,
                 pos_weight=1.0, neg_weight=1.0):
        super().__init__()
        self.alpha, self.gamma = alpha, gamma
        self.reduction, self.loss_weight = reduction, loss_weight
        self.pos_weight, self.neg_weight = pos_weight, neg_weight

    def forward(self, pred, target, weight=None, avg_factor=None, reduction_override=None):
        fn = "dafl.torch.GaussianFocalLoss"
        reduction = reduction_override if reduction_override else self.reduction
        if reduction not in ("none", "mean", "sum"):
            raise ValueError(f"{fn}: 'reduction' must be none, mean or sum, got {reduction!r}")
        normalizer = None
        if avg_factor is not None:
            if reduction == "sum":
                raise ValueError('avg_factor can not be used with reduction="sum"')
            if reduction == "mean":  # mmdetection: loss.sum() / (avg_factor + eps)
                normalizer = float(torch.tensor(float(avg_factor), dtype=torch.float32)
                                   + torch.finfo(torch.float32).eps)
        scale = float(self.loss_weight)

        def run(want_grad, reduction=reduction, normalizer=normalizer, grad_scale=scale):
            return _losses.penalty_focal(
                _T, pred, target, alpha=float(self.alpha), beta=float(self.gamma),
                pos_weight=self.pos_weight, neg_weight=self.neg_weight,
                input_mode="probabilities", log_eps=self.EPS, reduction=reduction,
                normalizer=normalizer, grad_scale=grad_scale, want_grad=want_grad, fn=fn)

        if weight is None:
            return _fused(pred, _drop_stats(run, scale))
        divisor = normalizer if normalizer is not None else pred.numel()
        return _fused(pred, _weighted(pred, weight, lambda g: run(g, "none", None, 1.0),
                                      reduction, divisor, scale, fn))


# ---- torch.nn.functional ------------------------------------------------------------------

def _legacy_reduction(size_average, reduce, reduction):
    if size_average is None and reduce is None:
        return reduction
    from torch.nn import _reduction
    return _reduction.legacy_get_string(size_average, reduce)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None):
    """F.binary_cross_entropy_with_logits, fused.  ``pos_weight`` must be one number (a
    Python number or a one-element tensor): the kernel takes one positive weight, so a
    per-class pos_weight tensor raises ValueError (use PyTorch's function for it).  An
    element-wise ``weight`` is applied around the fused call (see _weighted)."""
    fn = "dafl.torch.binary_cross_entropy_with_logits"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{fn}: {reduction} is not a valid value for reduction")
    pw = 1.0
    if pos_weight is not None:
        if isinstance(pos_weight, torch.Tensor):
            if pos_weight.numel() != 1:
                raise ValueError(
                    f"{fn}: 'pos_weight' must be one number; a per-class pos_weight of "
                    f"shape {tuple(pos_weight.shape)} is not supported by the fused "
                    "kernel (use torch.nn.functional.binary_cross_entropy_with_logits)")
            pos_weight = pos_weight.item()
        pw = float(pos_weight)
    if weight is None:
        return _fused(input, _drop_stats(lambda want_grad: _losses.bce_with_logits(
            _T, input, target, pos_weight=pw, reduction=reduction, want_grad=want_grad,
            fn=fn)))
    return _fused(input, _weighted(
        input, weight, lambda want_grad: _losses.bce_with_logits(
            _T, input, target, pos_weight=pw, reduction="none", want_grad=want_grad, fn=fn),
        reduction, input.numel(), 1.0, fn))


def _channels_last_view(logits):
    """(N, C, H, W) stored channels_last is (N, H, W, C) stored contiguously: that view
    goes to the kernel's class-contiguous layout with no copy."""
    if (logits.dim() == 4 and not logits.is_contiguous()
            and logits.is_contiguous(memory_format=torch.channels_last)):
        return logits.permute(0, 2, 3, 1)
    return None


def softmax_focal_loss(logits, labels, gamma=2, weight=None, ignore_index=-100,
                       reduction="mean"):
    """Softmax focal loss, -w[t] (1 - p_t)^gamma log p_t, over logits (N, C) or
    (N, C, d1, ...) and integer labels (N,) or (N, d1, ...); gamma 0 is F.cross_entropy
    (weight, ignore_index, reduction as there: "mean" divides by the sum of the weights
    of the non-ignored labels).  channels_last logits are read in place."""
    fn = "dafl.torch.softmax_focal_loss"
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{fn}: {reduction} is not a valid value for reduction")
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"{fn}: 'logits' must be a torch.Tensor")
    nhwc = _channels_last_view(logits)

    def compute(want_grad):
        x = logits if nhwc is None else nhwc
        loss, grad, _ = _losses.softmax_focal(
            _T, x, labels, gamma=float(gamma), class_weights=weight,
            ignore_index=int(ignore_index), reduction=reduction,
            channels_last=nhwc is not None, want_grad=want_grad, fn=fn)
        if grad is not None and nhwc is not None:
            grad = grad.permute(0, 3, 1, 2)  # back to (N, C, H, W), channels_last strides
        return loss, grad
    return _fused(logits, compute, class_dim=1)


def mse_loss(input, target, weights=None, reduction="mean"):
    """Heatmap MSE, w[c] * (input - target)^2 over (N, C, ...); ``weights`` per channel
    (C,) or per image and channel (N, C) (joint visibility, for example); without
    weights it is F.mse_loss.  reduction "mean" divides by the number of elements."""
    fn = "dafl.torch.mse_loss"
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{fn}: {reduction} is not a valid value for reduction")
    return _fused(input, _drop_stats(lambda want_grad: _losses.mse(
        _T, input, target, weights=weights, reduction=reduction, want_grad=want_grad,
        fn=fn)))
