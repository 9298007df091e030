"""The five losses compared, each in two implementations with the same interface
loss(output, target) -> scalar tensor:

- "dafl": dafl.torch's fused kernels (loss and gradient in one pass; what trains);
- "pytorch": the same loss written with PyTorch operations (torch.nn.functional where it
  has the loss), the reference the dafl losses are checked against and timed against.

This is the only module that imports dafl.torch.
"""

from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F

import dafl
import dafl.torch as dafl_torch


def penalty_focal_pytorch(logits, target, alpha=2.0, beta=4.0):
    """CornerNet's penalty-reduced focal loss written in PyTorch, on logits:
    y == 1: (1-p)^alpha * -log p;  y < 1: (1-y)^beta * p^alpha * -log(1-p);
    p = sigmoid(x), log p = logsigmoid(x), log(1-p) = logsigmoid(-x); the sum divided
    by the number of positives (the plain sum when there is none)."""
    pos = target == 1
    p = torch.sigmoid(logits)
    pos_loss = (1 - p).pow(alpha) * F.logsigmoid(logits)
    neg_loss = (1 - target).pow(beta) * p.pow(alpha) * F.logsigmoid(-logits)
    loss = -torch.where(pos, pos_loss, neg_loss).sum()
    return loss / pos.sum().clamp(min=1)


@dataclass(frozen=True)
class LossSpec:
    """How one loss trains: its target (hard labels or the Gaussian heatmap), how the
    network output reads as a score (sigmoid of logits, or the output itself), the
    output bias prior (model.HeatmapNet.init_output_bias), and its implementations."""
    name: str
    label: str
    target: str  # "hard" or "gaussian"
    sigmoid: bool
    prior: Optional[float]
    dafl: Callable
    pytorch: Callable

    def score(self, output):
        return torch.sigmoid(output) if self.sigmoid else output


LOSSES = (
    LossSpec("bce_hard", "BCE, hard labels", "hard", True, 0.1,
             lambda x, y: dafl_torch.binary_cross_entropy_with_logits(x, y),
             lambda x, y: F.binary_cross_entropy_with_logits(x, y)),
    LossSpec("bce_gauss", "BCE, Gaussian target", "gaussian", True, 0.1,
             lambda x, y: dafl_torch.binary_cross_entropy_with_logits(x, y),
             lambda x, y: F.binary_cross_entropy_with_logits(x, y)),
    LossSpec("mse", "MSE, Gaussian heatmap", "gaussian", False, None,
             lambda x, y: dafl_torch.mse_loss(x, y),
             lambda x, y: F.mse_loss(x, y)),
    LossSpec("focal_b0", "focal, beta 0 (no distance factor)", "gaussian", True, 0.1,
             lambda x, y: dafl_torch.penalty_focal_loss(x, y, alpha=2, beta=0),
             lambda x, y: penalty_focal_pytorch(x, y, alpha=2, beta=0)),
    LossSpec("penalty_focal", "penalty-reduced focal (alpha 2, beta 4)", "gaussian", True, 0.1,
             lambda x, y: dafl_torch.penalty_focal_loss(x, y, alpha=2, beta=4),
             lambda x, y: penalty_focal_pytorch(x, y, alpha=2, beta=4)),
)
BY_NAME = {spec.name: spec for spec in LOSSES}


def set_threads(threads):
    """dafl's thread pool, like torch's intra-op pool, gets ``threads`` threads."""
    dafl.set_num_threads(threads)


def dafl_version():
    return f"dafl {dafl.version()} ({dafl.active_isa()})"


def check_against_pytorch(spec, output, target, rtol=1e-5):
    """The dafl loss and its gradient (float32) against the PyTorch-written loss computed
    in float64 on the same values; returns the worst relative differences, raises
    AssertionError when one exceeds ``rtol`` (relative to the largest gradient element
    for the gradient)."""
    x32 = output.detach().float().contiguous().requires_grad_()
    x64 = output.detach().double().requires_grad_()
    y32 = target.float().contiguous()
    got, want = spec.dafl(x32, y32), spec.pytorch(x64, y32.double())
    got.backward()
    want.backward()
    loss_err = abs(got.item() - want.item()) / max(abs(want.item()), 1e-30)
    grad_err = ((x32.grad.double() - x64.grad).abs().max()
                / x64.grad.abs().max().clamp(min=1e-30)).item()
    if not (loss_err <= rtol and grad_err <= rtol):
        raise AssertionError(f"{spec.name}: dafl and the PyTorch-written loss differ: loss "
                             f"{got.item()!r} vs {want.item()!r} (relative {loss_err:.2e}), "
                             f"gradient relative {grad_err:.2e} > {rtol:.0e}")
    return loss_err, grad_err
