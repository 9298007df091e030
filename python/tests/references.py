"""Reference losses in PyTorch, written from the published formulas (not copied code):
run in float32 they are what a user has today, run in float64 they are the exact value
the float32 kernels approximate.  Gradients come from autograd."""

import torch
import torch.nn.functional as F


def centernet_focal(logits, gt):
    """CenterNet: pred = clamp(sigmoid(logits), 1e-4, 1 - 1e-4) (its _sigmoid), then
    _neg_loss: pos = log(pred) (1-pred)^2 where gt == 1, neg = log(1-pred) pred^2
    (1-gt)^4 where gt < 1; loss = -(pos + neg) / num_pos, or -neg when num_pos == 0."""
    pred = torch.clamp(torch.sigmoid(logits), min=1e-4, max=1 - 1e-4)
    pos = gt.eq(1).to(pred.dtype)
    neg = gt.lt(1).to(pred.dtype)
    pos_loss = (torch.log(pred) * (1 - pred) ** 2 * pos).sum()
    neg_loss = (torch.log(1 - pred) * pred ** 2 * (1 - gt) ** 4 * neg).sum()
    num_pos = pos.sum()
    if num_pos == 0:
        return -neg_loss
    return -(pos_loss + neg_loss) / num_pos


def penalty_focal_logits(x, y, alpha=2.0, beta=4.0, reduction="positives"):
    """CornerNet eq. 1 on logits, stably: -log p = softplus(-x), -log q = softplus(x)."""
    p, q = torch.sigmoid(x), torch.sigmoid(-x)
    pos = y.eq(1)
    l = torch.where(pos, q ** alpha * F.softplus(-x, threshold=1000),
                    (1 - y) ** beta * p ** alpha * F.softplus(x, threshold=1000))
    if reduction == "none":
        return l
    if reduction == "sum":
        return l.sum()
    if reduction == "mean":
        return l.mean()
    return l.sum() / max(int(pos.sum()), 1)


def mmdet_gaussian_focal(pred, target, weight=None, alpha=2.0, gamma=4.0,
                         reduction="mean", avg_factor=None, loss_weight=1.0, eps=1e-12):
    """mmdetection's gaussian_focal_loss with its weighted_loss reduction:
    pos = -log(pred + eps) (1-pred)^alpha [target == 1],
    neg = -log(1 - pred + eps) pred^alpha (1-target)^gamma; times weight; mean, sum, or
    sum / (avg_factor + float32 eps); times loss_weight."""
    pos_w = target.eq(1).to(pred.dtype)
    neg_w = (1 - target) ** gamma
    pos = -(pred + eps).log() * (1 - pred) ** alpha * pos_w
    neg = -(1 - pred + eps).log() * pred ** alpha * neg_w
    l = pos + neg
    if weight is not None:
        l = l * weight
    if avg_factor is None:
        l = l.mean() if reduction == "mean" else l.sum() if reduction == "sum" else l
    elif reduction == "mean":
        l = l.sum() / (avg_factor + torch.finfo(torch.float32).eps)
    return loss_weight * l


def softmax_focal(logits, labels, gamma=2.0, weight=None, ignore_index=-100,
                  reduction="mean"):
    """-w[t] (1 - p_t)^gamma log p_t per pixel, logits (N, C, ...); "mean" divides by the
    sum of w[t] over non-ignored pixels (F.cross_entropy's rule)."""
    logp = F.log_softmax(logits, dim=1)
    keep = labels != ignore_index
    safe = torch.where(keep, labels, torch.zeros_like(labels))
    s = logp.gather(1, safe.unsqueeze(1)).squeeze(1)
    w = torch.ones(logits.shape[1], dtype=logits.dtype) if weight is None else weight
    wt = w.to(logits.dtype)[safe] * keep.to(logits.dtype)
    m = 1 - s.exp()
    l = -wt * m ** gamma * s if gamma else -wt * s
    if reduction == "none":
        return l
    if reduction == "sum":
        return l.sum()
    return l.sum() / wt.sum()


def value_and_grad(fn, x, *args, **kw):
    """(loss, d loss / d x) of fn at x by autograd (x a leaf copy)."""
    x = x.detach().clone().requires_grad_(True)
    loss = fn(x, *args, **kw)
    (loss.sum() if loss.dim() else loss).backward()
    return loss.detach(), x.grad


def sigmoid_focal(inputs, targets, alpha=0.25, gamma=2.0, reduction="none"):
    """torchvision.ops.sigmoid_focal_loss's published formula: ce * (1 - p_t)^gamma, times
    alpha_t = alpha*y + (1-alpha)*(1-y) when alpha >= 0 (any alpha above that)."""
    p = torch.sigmoid(inputs)
    ce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss
