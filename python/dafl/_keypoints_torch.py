"""Keypoint batches for PyTorch: collate, render (in DataLoader workers, into shared or
pinned memory) and the penalty-reduced focal loss straight from the keypoints.

The batch format is dafl._keypoints' (padded (N, K, 4|5) rows (x, y, class, size[, k])
plus counts (N,)).  What dafl.torch exports from here:

- ``collate_keypoints(list)`` -> (padded float32 tensor, counts int64 tensor);
- ``render_heatmaps(keypoints, counts, shape, style=, out=)`` -> (N, C, H, W) float32
  tensor; inside a DataLoader worker a new batch is allocated in shared memory (as
  default_collate allocates its batches), so it reaches the main process with no copy;
- ``penalty_focal_keypoints(logits, keypoints, counts, ...)`` and the modules
  ``PenaltyFocalKeypointLoss`` / ``CenterNetFocalKeypointLoss``: the loss and gradient
  of render_heatmaps + penalty_focal_loss (CenterNetFocalLoss), bit for bit, with no
  (N, C, H, W) target tensor;

The loss is the operator ``dafl::penalty_focal_keypoints`` built and registered as
dafl._torch_ops builds the other losses (a LossOp: on torch >= 2.4 a torch.library custom
operator with fake kernel, registered autograd and vmap; before, its autograd.Function):
the forward computes the gradient with the loss, backward hands it over times
grad_output.  Keypoints and counts are data.  float32, bfloat16 and float16 logits are
read in place and the gradient written in their dtype (contiguous; other layouts go
through one copy of their dtype and the gradient comes back in their layout); float64
logits and double backward take the loss in torch operations on rendered targets
(dafl._reference), as the dense losses do.
"""

import math

import numpy as np
import torch

from . import _dafl, _keypoints, _torch_ops

__all__ = ["collate_keypoints", "render_heatmaps", "penalty_focal_keypoints",
           "PenaltyFocalKeypointLoss", "CenterNetFocalKeypointLoss"]

_T = _torch_ops._T  # float32 operands and outputs, from the buffer cache


def collate_keypoints(keypoints, dtype=torch.float32):
    """A list of per-image keypoints (tensors, arrays or lists of rows (x, y, class, size)
    or (x, y, class, size, k); an image may have none) -> (padded (N, K, 4|5) tensor of
    ``dtype``, counts (N,) int64 tensor): what render_heatmaps and
    penalty_focal_keypoints take.  Usable in a DataLoader collate_fn."""
    np_dtype = {torch.float32: np.float32, torch.float64: np.float64}.get(dtype)
    if np_dtype is None:
        raise ValueError(f"dafl.torch.collate_keypoints: 'dtype' must be torch.float32 or "
                         f"torch.float64, got {dtype}")
    padded, counts = _keypoints.collate_keypoints(keypoints, np_dtype,
                                                  "dafl.torch.collate_keypoints")
    return torch.from_numpy(padded), torch.from_numpy(counts)


def _in_worker():
    from torch.utils.data import get_worker_info
    return get_worker_info() is not None


def _shared_empty(shape):
    """A float32 tensor in shared memory, allocated there (no copy), as default_collate
    allocates a batch inside a DataLoader worker."""
    numel = math.prod(shape)
    t = torch.empty(0, dtype=torch.float32)
    storage = t._typed_storage() if hasattr(t, "_typed_storage") else t.storage()
    return t.new(storage._new_shared(numel)).resize_(shape)


def render_heatmaps(keypoints, counts=None, shape=None, *, style="umich", out=None,
                    shared=None):
    """dafl.render_heatmaps returning a tensor: the (N, C, H, W) float32 Gaussian targets
    of a keypoint batch (padded (N, K, 4|5) tensor + counts, or a list of per-image rows),
    written into ``out`` (a C-contiguous float32 CPU tensor: pinned, shared memory or
    plain) or into a new tensor of ``shape``.  ``shared``: allocate that new tensor in
    shared memory; by default (None) exactly when called in a DataLoader worker, so
    that the batch crosses to the main process without a copy.  The GIL is released."""
    fn = "dafl.torch.render_heatmaps"
    if out is None:
        if shape is None:
            raise TypeError(f"{fn}: give the heatmaps' 'shape' (N, C, H, W) or 'out'")
        shape = _keypoints.heatmap_shape(shape, fn)
        if shared is None:
            shared = _in_worker()
        # a new batch: in shared memory for a worker, else from the buffer cache (no
        # fresh mmap to fault in, once an earlier batch is released)
        out = _shared_empty(shape) if shared else _T.empty(shape)
    elif not isinstance(out, torch.Tensor):
        raise TypeError(f"{fn}: 'out' must be a torch.Tensor, not {type(out).__name__}")
    code = _keypoints.style_code(style, fn)
    kp, counts = _keypoints.prepare(keypoints, counts, fn)
    _keypoints.check_out(out, shape, fn)
    _dafl.render_heatmaps(kp, counts, out.detach(), code)
    return out


# ---- the operator: dafl::penalty_focal_keypoints, as dafl._torch_ops builds its losses ----

STYLE_NAMES = {code: name for name, code in _keypoints.STYLES.items()}


def _keypoint_c(input, keypoints, counts, style, alpha, beta, pos_weight, neg_weight,
                input_mode, clamp_eps, log_eps, reduction, normalizer, grad_scale, trust,
                want_grad):
    """The operator's C call (codes as in the schema): (loss float32 - 0-d, or for
    reduction none laid out as the input -, grad in the input's dtype and layout or
    None), what dafl._torch_ops.LossOp's fake kernel promises."""
    del trust  # validated keypoints give valid targets (DAFL_FLAG_TRUST_TARGETS: no-op)
    fn = "dafl::penalty_focal_keypoints"
    x = _T.operand(input, "logits", fn)
    value, loss_buf, grad, _ = _keypoints.run_penalty_focal_keypoints(
        x, keypoints, counts, style, input_mode, reduction, normalizer, alpha, beta,
        pos_weight, neg_weight, clamp_eps, log_eps, grad_scale, want_grad, _T.empty, fn)
    loss = _T.loss_like(loss_buf, input) if loss_buf is not None else _T.scalar(value, x)
    return loss, None if grad is None else _T.like_input(grad, input)


def _keypoint_reference(x, keypoints, counts, style, *params):
    """The loss in torch operations (float64, double backward): dafl._reference's
    penalty focal on the rendered targets."""
    from . import _reference
    target = render_heatmaps(keypoints, counts, tuple(x.shape), style=STYLE_NAMES[style],
                             shared=False)
    return _reference.penalty_focal(x, target, *params[:-1])  # (trust_targets dropped)


def _make_op():
    return _torch_ops.LossOp(
        "penalty_focal_keypoints",
        "Tensor input, Tensor keypoints, Tensor? counts, int style, float alpha, float beta, "
        "float pos_weight, float neg_weight, int input_mode, float clamp_eps, float log_eps, "
        "int reduction, float normalizer, float grad_scale, bool trust_targets",
        (0, 1, 2), _keypoint_c, _keypoint_reference, 11)


penalty_focal_keypoints_op = _make_op()
_LIBRARY = (_torch_ops.register([penalty_focal_keypoints_op], "FRAGMENT")
            if _torch_ops.HAVE_CUSTOM_OPS else None)


def _keypoint_tensors(keypoints, counts, fn):
    """The batch as tensors for the operator: float64 (N, K, F) keypoints, int64 counts."""
    if isinstance(keypoints, (list, tuple)):
        if counts is not None:
            raise ValueError(f"{fn}: 'counts' goes with a padded (N, K, F) 'keypoints' "
                             "tensor, not with a list of per-image keypoints")
        keypoints, counts = collate_keypoints(keypoints, torch.float64)
    if not isinstance(keypoints, torch.Tensor):
        keypoints = torch.from_numpy(np.ascontiguousarray(keypoints, dtype=np.float64))
    if counts is not None and not isinstance(counts, torch.Tensor):
        counts = torch.from_numpy(np.ascontiguousarray(counts))
    return keypoints.detach(), None if counts is None else counts.detach()


def penalty_focal_keypoints(logits, keypoints, counts=None, alpha=2, beta=4,
                            reduction="positives", normalizer=None, *, style="umich",
                            pos_weight=1.0, neg_weight=1.0, input_mode="logits",
                            clamp_eps=1e-4, log_eps=0.0, grad_scale=1.0):
    """penalty_focal_loss(logits, render_heatmaps(keypoints, counts, logits.shape,
    style=style), alpha, beta, reduction, normalizer, ...) - the same loss and gradient,
    bit for bit - without the target tensor.  logits (N, C, H, W); keypoints a padded
    (N, K, 4|5) batch of rows (x, y, class, size[, k]) with counts (N,) (see
    collate_keypoints) or a list of per-image rows.  input_mode "clamped_logits" is
    CenterNet's clamp(sigmoid(x), 1e-4, 1-1e-4).  The operator dafl::penalty_focal_keypoints
    (torch >= 2.4; an autograd.Function before): float64 logits take the loss in torch
    operations on rendered targets, as dafl.torch.penalty_focal_loss does."""
    from . import _losses
    from . import torch as dafl_torch  # (imported lazily: dafl.torch imports this module)
    fn = "dafl.torch.penalty_focal_keypoints"
    dafl_torch._tensor(logits, "logits", fn)
    if logits.dim() != 4:
        raise ValueError(f"{fn}: 'logits' must be (N, C, H, W), got shape "
                         f"{tuple(logits.shape)}")
    kp, counts = _keypoint_tensors(keypoints, counts, fn)
    params = _losses.penalty_params(fn, alpha, beta, pos_weight, neg_weight, input_mode,
                                    clamp_eps, log_eps)
    code, norm = _losses.reduction_code(reduction, dafl_torch._normalizer(normalizer), fn,
                                        ("none", "sum", "mean", "positives"))
    loss = penalty_focal_keypoints_op(
        logits, kp, counts, _keypoints.style_code(style, fn), *params, code, norm,
        _losses.check_common(fn, grad_scale), False, dafl_torch._want_grad(logits))
    return dafl_torch._in_dtype(loss, logits)


class PenaltyFocalKeypointLoss(torch.nn.Module):
    """Module form of penalty_focal_keypoints: forward(logits, keypoints, counts=None,
    normalizer=None)."""

    def __init__(self, alpha=2.0, beta=4.0, reduction="positives", input_mode="logits",
                 style="umich"):
        super().__init__()
        self.alpha, self.beta, self.style = alpha, beta, style
        self.reduction, self.input_mode = reduction, input_mode

    def forward(self, logits, keypoints, counts=None, normalizer=None):
        return penalty_focal_keypoints(logits, keypoints, counts, self.alpha, self.beta,
                                       self.reduction, normalizer, style=self.style,
                                       input_mode=self.input_mode)


class CenterNetFocalKeypointLoss(torch.nn.Module):
    """CenterNetFocalLoss()(logits, render_heatmaps(keypoints, counts, logits.shape)),
    bit for bit, from the keypoints: CenterNet's _neg_loss on clamp(sigmoid(logits),
    1e-4, 1 - 1e-4), alpha 2, beta 4, divided by the number of positives."""

    def __init__(self, style="umich"):
        super().__init__()
        self.style = style

    def forward(self, logits, keypoints, counts=None):
        return penalty_focal_keypoints(logits, keypoints, counts, 2.0, 4.0, "positives",
                                       style=self.style, input_mode="clamped_logits",
                                       clamp_eps=1e-4)
