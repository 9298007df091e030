"""dafl's losses written in torch operations: the exact, differentiable path.

dafl.torch computes a loss and its gradient in one fused C call.  That call gives one
derivative, d(loss)/d(input), in float32.  Where more is asked for, these formulas (the
same mathematics, in the input's dtype, made of differentiable torch operations) give it:

- float64 inputs (computed in float64, not rounded to float32);
- double backward (``create_graph=True``: the gradient's own graph);
- the gradient of a target or a weight that requires grad (what PyTorch's loss gives);
- a per-class ``pos_weight`` for BCE (which the fused kernel does not take).

Each function takes the arguments of its custom operator (dafl._torch_ops) after the
tensors, and returns the reduced loss (or the per-element loss for reduction "none").
``grad_scale`` multiplies the gradient and leaves the value alone, as the C call does.
"""

import torch
import torch.nn.functional as F

from . import _dafl

_NONE, _SUM, _MEAN = _dafl.REDUCTION_NONE, _dafl.REDUCTION_SUM, _dafl.REDUCTION_MEAN
_POSITIVES, _NORMALIZER = _dafl.REDUCTION_POSITIVES, _dafl.REDUCTION_NORMALIZER


def _softplus(x):
    """log(1 + e^x), stable and differentiable to every order in any dtype."""
    return torch.logaddexp(x, torch.zeros_like(x))


def _scale_gradient(loss, grad_scale):
    """loss's value, with grad_scale times its gradient (every order)."""
    if grad_scale == 1.0:
        return loss
    return loss * grad_scale + (loss * (1.0 - grad_scale)).detach()


def _divisor(numel, reduction, normalizer, positives=None, mean_divisor=None):
    """What the C library's reductions divide the sum by: 1 for none and sum, the element
    count (or mean_divisor) for mean, normalizer, and for positives the count of targets
    equal to 1, at least 1 (the raw sum when there is none; a tensor, not .item(): vmap
    and compile trace it)."""
    if reduction == _MEAN:
        return numel if mean_divisor is None else mean_divisor
    if reduction == _NORMALIZER:
        return normalizer
    if reduction == _POSITIVES:
        return torch.clamp(positives.sum(), min=1)
    return 1


def _reduce(per_element, reduction, normalizer, positives=None, mean_divisor=None):
    """The C library's reductions (see _divisor)."""
    if reduction == _NONE:
        return per_element
    total = per_element.sum()
    if reduction == _SUM:
        return total
    divisor = _divisor(per_element.numel(), reduction, normalizer, positives, mean_divisor)
    if torch.is_tensor(divisor):
        divisor = divisor.to(total.dtype)
    return total / divisor


def penalty_focal(input, target, alpha, beta, pos_weight, neg_weight, input_mode,
                  clamp_eps, log_eps, reduction, normalizer, grad_scale):
    """CornerNet's penalty-reduced focal loss.  y == 1: pos_weight * (1-p)^alpha * -log p;
    y < 1: neg_weight * (1-y)^beta * p^alpha * -log(1-p)."""
    target = target.to(input.dtype)
    if input_mode == _dafl.INPUT_LOGITS:
        p, q = torch.sigmoid(input), torch.sigmoid(-input)
        neg_log_p, neg_log_q = _softplus(-input), _softplus(input)
    else:
        if input_mode == _dafl.INPUT_CLAMPED_LOGITS:
            p = torch.clamp(torch.sigmoid(input), clamp_eps, 1.0 - clamp_eps)
        else:
            p = input
        q = 1.0 - p
        neg_log_p, neg_log_q = -torch.log(p + log_eps), -torch.log(q + log_eps)
    positive = target == 1
    per_element = torch.where(
        positive, pos_weight * q.pow(alpha) * neg_log_p,
        neg_weight * (1.0 - target).pow(beta) * p.pow(alpha) * neg_log_q)
    return _scale_gradient(_reduce(per_element, reduction, normalizer, positive), grad_scale)


def sigmoid_focal(input, target, gamma, alpha, reduction, normalizer, grad_scale):
    """RetinaNet's focal loss, torchvision's formula: ce * (1 - p_t)^gamma * alpha_t."""
    target = target.to(input.dtype)
    p = torch.sigmoid(input)
    ce = F.binary_cross_entropy_with_logits(input, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    per_element = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        per_element = (alpha * target + (1 - alpha) * (1 - target)) * per_element
    return _scale_gradient(_reduce(per_element, reduction, normalizer, target == 1),
                           grad_scale)


def bce_with_logits(input, target, pos_weight, reduction, normalizer, grad_scale,
                    pos_weight_tensor=None):
    """F.binary_cross_entropy_with_logits; pos_weight_tensor (broadcast as PyTorch does)
    replaces the number pos_weight when given."""
    target = target.to(input.dtype)
    pw = (pos_weight_tensor.to(input.dtype) if pos_weight_tensor is not None
          else torch.tensor(pos_weight, dtype=input.dtype))
    per_element = F.binary_cross_entropy_with_logits(input, target, pos_weight=pw,
                                                     reduction="none")
    return _scale_gradient(_reduce(per_element, reduction, normalizer, target == 1),
                           grad_scale)


def softmax_focal(logits, labels, class_weights, gamma, ignore_index, reduction, normalizer,
                  grad_scale):
    """-w[t] * (1 - p_t)^gamma * log p_t per pixel; mean divides by the summed weights of
    the labels that are not ignore_index."""
    log_p = torch.log_softmax(logits, 1)
    labels = labels.long()
    kept = labels != ignore_index
    index = torch.where(kept, labels, torch.zeros_like(labels)).unsqueeze(1)
    log_p_t = log_p.gather(1, index).squeeze(1)
    w = torch.ones_like(log_p_t) if class_weights is None else \
        class_weights.to(logits.dtype)[index.squeeze(1)]
    w = torch.where(kept, w, torch.zeros_like(w))
    per_pixel = -w * (1 - log_p_t.exp()) ** gamma * log_p_t
    return _scale_gradient(_reduce(per_pixel, reduction, normalizer,
                                   mean_divisor=w.sum()), grad_scale)


def mse(input, target, weights, reduction, normalizer, grad_scale):
    """w[c] * (x - y)^2 over (N, C, ...), weights per channel (C,) or (N, C)."""
    per_element = (input - target.to(input.dtype)) ** 2
    if weights is not None:
        w = weights.to(input.dtype)
        shape = (1, -1) if w.dim() == 1 else tuple(w.shape)
        per_element = per_element * w.reshape(shape + (1,) * (input.dim() - 2))
    return _scale_gradient(_reduce(per_element, reduction, normalizer, target == 1),
                           grad_scale)
