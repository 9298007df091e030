"""dafl.torch's drop-ins against the real peers (torchvision, torch.nn.functional) and
against references written from CenterNet's and mmdetection's published formulas, in
float32 and against float64: values and gradients through backward()."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dafl
import dafl.torch as dt
import references as ref
from conftest import assert_close, heatmap_batch

try:
    import torchvision.ops
    TORCHVISION = None
except Exception as e:  # PyPI's torchvision does not import beside torch 2.13 here
    TORCHVISION = f"torchvision does not import beside torch {torch.__version__}: {e}"

needs_torchvision = pytest.mark.skipif(TORCHVISION is not None, reason=str(TORCHVISION))


def grads(fn, x, *args, **kw):
    """(loss, x.grad) of fn at a leaf copy of x."""
    return ref.value_and_grad(fn, x, *args, **kw)


def logits_like(rng, shape, scale=3.0):
    return torch.tensor(rng.normal(0, scale, shape).astype(np.float32))


# ---- torchvision.ops.sigmoid_focal_loss ----------------------------------------------------

@needs_torchvision
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("alpha,gamma", [(0.25, 2), (-1, 2), (0.5, 0), (0.25, 1.5), (0.75, 3)])
def test_sigmoid_focal_equals_torchvision(rng, reduction, alpha, gamma):
    x = logits_like(rng, (64, 80))
    y = torch.tensor((rng.random((64, 80)) < 0.1).astype(np.float32))
    l_d, g_d = grads(dt.sigmoid_focal_loss, x, y, alpha=alpha, gamma=gamma, reduction=reduction)
    l_t, g_t = grads(torchvision.ops.sigmoid_focal_loss, x, y, alpha=alpha, gamma=gamma,
                     reduction=reduction)
    assert l_d.dtype == l_t.dtype and l_d.shape == l_t.shape
    assert_close(l_d, l_t, 1e-5, 1e-6, "loss")
    assert_close(g_d, g_t, 1e-4, 1e-6, "grad")


@needs_torchvision
def test_sigmoid_focal_soft_targets_nchw_and_float64(rng):
    x = logits_like(rng, (2, 5, 9, 7))
    y = torch.tensor(rng.random((2, 5, 9, 7)).astype(np.float32))
    l_d, g_d = grads(dt.sigmoid_focal_loss, x, y, reduction="sum")
    l_t, g_t = grads(torchvision.ops.sigmoid_focal_loss, x, y, reduction="sum")
    assert_close(l_d, l_t, 1e-5, 0, "loss")
    assert_close(g_d, g_t, 1e-4, 1e-6, "grad")
    # the exact value: torchvision's formula in float64
    l_64, g_64 = grads(torchvision.ops.sigmoid_focal_loss, x.double(), y.double(),
                       reduction="sum")
    assert_close(l_d, l_64, 2e-6, 0, "loss vs float64")
    assert_close(g_d, g_64, 1e-5, 1e-6, "grad vs float64")


def test_sigmoid_focal_bad_reduction():
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="reduction"):
        dt.sigmoid_focal_loss(x, x, reduction="avg")


# ---- CenterNet ----------------------------------------------------------------------------

def test_centernet_equals_reference_float32_and_float64(rng):
    y = torch.tensor(heatmap_batch(rng, n=2, c=4, h=32, w=28))
    x = logits_like(rng, y.shape, 4.0)
    x[0, 0, :2] = 12.0   # beyond the clamp: zero gradient in both
    x[1, 1, :2] = -12.0
    l_d, g_d = grads(dt.CenterNetFocalLoss(), x, y)
    l_r, g_r = grads(ref.centernet_focal, x, y)
    assert_close(l_d, l_r, 1e-5, 0, "loss vs float32 reference")
    assert_close(g_d, g_r, 1e-4, 1e-6, "grad vs float32 reference")
    l_64, g_64 = grads(ref.centernet_focal, x.double(), y.double())
    assert_close(l_d, l_64, 2e-6, 0, "loss vs float64")
    assert_close(g_d, g_64, 1e-5, 1e-6, "grad vs float64")
    assert torch.all(g_d[0, 0, :2] == 0) and torch.all(g_d[1, 1, :2] == 0)


def test_centernet_no_positive_is_raw_negative_sum(rng):
    y = torch.tensor(rng.random((2, 3, 8, 8)).astype(np.float32) * 0.9)
    x = logits_like(rng, y.shape)
    l_d, g_d = grads(dt.CenterNetFocalLoss(), x, y)
    l_64, g_64 = grads(ref.centernet_focal, x.double(), y.double())
    assert_close(l_d, l_64, 2e-6, 0, "loss")
    assert_close(g_d, g_64, 1e-5, 1e-6, "grad")


@pytest.mark.parametrize("reduction", ["positives", "sum", "mean", "none"])
def test_penalty_focal_every_reduction_vs_float64(rng, reduction):
    y = torch.tensor(heatmap_batch(rng))
    x = logits_like(rng, y.shape)
    l_d, g_d = grads(dt.penalty_focal_loss, x, y, reduction=reduction)
    l_64, g_64 = grads(ref.penalty_focal_logits, x.double(), y.double(), reduction=reduction)
    assert_close(l_d, l_64, 2e-6, 0, "loss")
    assert_close(g_d, g_64, 1e-5, 1e-6, "grad")


def test_penalty_focal_normalizer_and_grad_output(rng):
    y = torch.tensor(heatmap_batch(rng))
    x = logits_like(rng, y.shape)
    l_d, g_d = grads(lambda v: 3.0 * dt.penalty_focal_loss(v, y, normalizer=7.0), x)
    l_64, g_64 = grads(lambda v: 3.0 * ref.penalty_focal_logits(v, y.double(), reduction="sum")
                       / 7.0, x.double())
    assert_close(l_d, l_64, 2e-6, 0, "loss")
    assert_close(g_d, g_64, 1e-5, 1e-6, "grad")


def test_penalty_focal_adversarial_logits():
    """+-100, 1e-30 against float64; +-inf take the mathematical limits (no NaN)."""
    x = torch.tensor([100.0, -100.0, 1e-30, -1e-30, 30.0, -30.0, 0.0, 100.0, -100.0])
    y = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.2])
    l_d, g_d = grads(dt.penalty_focal_loss, x, y, reduction="none")
    l_64, g_64 = grads(ref.penalty_focal_logits, x.double(), y.double(), reduction="none")
    assert_close(l_d, l_64, 1e-5, 0, "loss")
    assert_close(g_d, g_64, 1e-5, 0, "grad")
    xi = torch.tensor([float("inf"), float("-inf"), float("inf"), float("-inf")])
    yi = torch.tensor([1.0, 0.0, 0.0, 1.0])
    l, g = grads(dt.penalty_focal_loss, xi, yi, reduction="none")
    assert l.tolist() == [0.0, 0.0, float("inf"), float("inf")]
    assert not torch.isnan(g[:2]).any() and g[:2].tolist() == [0.0, 0.0]


# ---- mmdetection ---------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gaussian_focal_equals_mmdet_formula(rng, reduction):
    y = torch.tensor(heatmap_batch(rng))
    pred = torch.sigmoid(logits_like(rng, y.shape, 6.0))
    pred[0, 0, 0, :3] = torch.tensor([0.0, 1.0, 1.0])  # the eps inside the logs matters
    y[0, 0, 0, :3] = torch.tensor([1.0, 0.0, 0.5])
    loss = dt.GaussianFocalLoss(reduction=reduction, loss_weight=0.5)
    l_d, g_d = grads(loss, pred, y)
    l_r, g_r = grads(ref.mmdet_gaussian_focal, pred, y, reduction=reduction, loss_weight=0.5)
    assert torch.isfinite(l_d).all()
    assert_close(l_d, l_r, 1e-5, 1e-7, "loss")
    assert_close(g_d, g_r, 1e-4, 1e-6, "grad")


def test_gaussian_focal_avg_factor_and_weight(rng):
    y = torch.tensor(heatmap_batch(rng))
    pred = torch.sigmoid(logits_like(rng, y.shape))
    w = torch.tensor(rng.random((1, 3, 1, 1)).astype(np.float32))
    loss = dt.GaussianFocalLoss()
    for kw in [dict(avg_factor=5.0), dict(weight=w), dict(weight=w, avg_factor=3.0),
               dict(weight=w, reduction_override="sum"),
               dict(weight=w, reduction_override="none")]:
        l_d, g_d = grads(lambda p: loss(p, y, **kw), pred)
        rkw = dict(kw)
        rkw["reduction"] = rkw.pop("reduction_override", "mean")
        l_r, g_r = grads(lambda p: ref.mmdet_gaussian_focal(p, y, **rkw), pred.double())
        assert_close(l_d, l_r, 1e-5, 1e-7, f"loss {kw.keys()}")
        assert_close(g_d, g_r, 1e-4, 1e-6, f"grad {kw.keys()}")
    with pytest.raises(ValueError, match="avg_factor"):
        loss(pred, y, avg_factor=2.0, reduction_override="sum")


# ---- torch.nn.functional --------------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_bce_equals_functional(rng, reduction):
    x = logits_like(rng, (4, 6, 5, 5))
    y = torch.tensor(rng.random((4, 6, 5, 5)).astype(np.float32))
    for pw in [None, 3.0, torch.tensor([2.5])]:
        l_d, g_d = grads(dt.binary_cross_entropy_with_logits, x, y, reduction=reduction,
                         pos_weight=pw)
        l_t, g_t = grads(F.binary_cross_entropy_with_logits, x, y, reduction=reduction,
                         pos_weight=pw if pw is None or isinstance(pw, torch.Tensor)
                         else torch.tensor(pw))
        assert_close(l_d, l_t, 1e-5, 1e-7, "loss")
        assert_close(g_d, g_t, 1e-4, 1e-6, "grad")
    w = torch.tensor(rng.random((1, 6, 1, 1)).astype(np.float32))
    l_d, g_d = grads(dt.binary_cross_entropy_with_logits, x, y, weight=w, reduction=reduction)
    l_t, g_t = grads(F.binary_cross_entropy_with_logits, x, y, weight=w, reduction=reduction)
    assert_close(l_d, l_t, 1e-5, 1e-7, "weighted loss")
    assert_close(g_d, g_t, 1e-4, 1e-6, "weighted grad")


@pytest.mark.parametrize("shape,pw_shape", [((4, 3), (3,)), ((2, 3, 5, 4), (3, 1, 1)),
                                             ((2, 3, 5, 4), (2, 3, 5, 4))])
def test_bce_tensor_pos_weight_as_pytorch_broadcasts_it(rng, shape, pw_shape):
    """A per-class pos_weight: PyTorch's value and gradient (also for the weight itself)."""
    x = logits_like(rng, shape)
    y = torch.tensor((rng.random(shape) < 0.3).astype(np.float32))
    pw = torch.tensor(rng.uniform(0.5, 3.0, pw_shape).astype(np.float32))
    for reduction in ("none", "mean", "sum"):
        l_d, g_d = grads(dt.binary_cross_entropy_with_logits, x, y, pos_weight=pw,
                         reduction=reduction)
        l_t, g_t = grads(F.binary_cross_entropy_with_logits, x, y, pos_weight=pw,
                         reduction=reduction)
        assert_close(l_d, l_t, 1e-6, 1e-7, "loss")
        assert_close(g_d, g_t, 1e-6, 1e-7, "grad")
    # PyTorch does not differentiate pos_weight: an error naming it, never a silent None
    for f in (dt.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits):
        with pytest.raises(RuntimeError, match="pos_weight"):
            f(x, y, pos_weight=pw.clone().requires_grad_()).backward()
    with pytest.raises(ValueError, match="'pos_weight' of shape"):
        dt.binary_cross_entropy_with_logits(x, y, pos_weight=torch.ones(7))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_softmax_gamma0_equals_cross_entropy(rng, reduction):
    x = logits_like(rng, (3, 7, 6, 5))
    labels = torch.tensor(rng.integers(0, 7, (3, 6, 5)))
    labels[0, 0] = -100
    w = torch.tensor(rng.random(7).astype(np.float32) + 0.1)
    for weight in [None, w]:
        l_d, g_d = grads(dt.softmax_focal_loss, x, labels, gamma=0, weight=weight,
                         reduction=reduction)
        l_t, g_t = grads(F.cross_entropy, x, labels, weight=weight, reduction=reduction)
        assert_close(l_d, l_t, 1e-5, 1e-7, "loss")
        assert_close(g_d, g_t, 1e-4, 1e-6, "grad")


def test_softmax_focal_ignore_label_and_nk_input(rng):
    x = logits_like(rng, (50, 9))
    labels = torch.tensor(rng.integers(0, 9, 50))
    labels[::7] = 255
    for gamma in [2.0, 0.5]:
        l_d, g_d = grads(dt.softmax_focal_loss, x, labels, gamma=gamma, ignore_index=255)
        l_64, g_64 = grads(ref.softmax_focal, x.double(), labels, gamma=gamma, ignore_index=255)
        assert_close(l_d, l_64, 2e-6, 0, "loss")
        assert_close(g_d, g_64, 1e-5, 1e-6, "grad")
        assert torch.all(g_d[::7] == 0)


@pytest.mark.parametrize("weights", [None, "channel", "image"])
def test_mse_weights(rng, weights):
    x = logits_like(rng, (2, 4, 6, 6))
    y = torch.tensor(rng.random((2, 4, 6, 6)).astype(np.float32))
    w = None
    if weights == "channel":
        w = torch.tensor(rng.random(4).astype(np.float32))
    elif weights == "image":
        w = torch.tensor(rng.random((2, 4)).astype(np.float32))
    for reduction in ["mean", "sum", "none"]:
        l_d, g_d = grads(dt.mse_loss, x, y, weights=w, reduction=reduction)
        wb = 1.0 if w is None else w.double().reshape(w.shape + (1, 1)) \
            if w.dim() == 2 else w.double().reshape(1, 4, 1, 1)

        def expected(v):
            l = wb * (v - y.double()) ** 2
            return l.mean() if reduction == "mean" else l.sum() if reduction == "sum" else l
        l_64, g_64 = grads(expected, x.double())
        assert_close(l_d, l_64, 2e-6, 0, "loss")
        assert_close(g_d, g_64, 1e-5, 1e-7, "grad")
        if w is None:
            assert_close(l_d, F.mse_loss(x, y, reduction=reduction), 1e-5, 1e-7, "vs F")


def test_backward_with_upstream_gradient_and_forward_only(rng):
    y = torch.tensor(heatmap_batch(rng))
    x = logits_like(rng, y.shape).requires_grad_(True)
    l = dt.penalty_focal_loss(x, y, reduction="none")
    up = torch.tensor(rng.random(y.shape).astype(np.float32))
    l.backward(up)
    _, g1 = grads(ref.penalty_focal_logits, x.double(), y.double(), reduction="none")
    xr = x.detach().double().requires_grad_(True)
    ref.penalty_focal_logits(xr, y.double(), reduction="none").backward(up.double())
    assert_close(x.grad, xr.grad, 1e-5, 1e-6, "grad")
    with torch.no_grad():
        assert dt.penalty_focal_loss(x, y).requires_grad is False
    assert dt.penalty_focal_loss(x.detach(), y).grad_fn is None


def test_backward_hands_over_the_fused_gradient(rng, monkeypatch):
    """loss.backward() costs no pass of its own: .grad is the very tensor the fused call
    wrote (not a product, not a clone).  With retain_graph=True a second backward works
    (and then .grad is accumulated, so it cannot be that tensor)."""
    from dafl import _torch_ops
    written = []
    c_call = _torch_ops.penalty_focal.c_call

    def spy(*args):
        loss, grad = c_call(*args)
        written.append(grad.data_ptr())
        return loss, grad
    monkeypatch.setattr(_torch_ops.penalty_focal, "c_call", spy)
    y = torch.tensor(heatmap_batch(rng))
    x = logits_like(rng, y.shape).requires_grad_(True)
    dt.CenterNetFocalLoss()(x, y).backward()
    assert x.grad.data_ptr() == written[-1]
    once = x.grad.clone()
    x.grad = None
    loss = dt.CenterNetFocalLoss()(x, y)
    loss.backward(retain_graph=True)
    assert torch.equal(x.grad, once)
    loss.backward()
    assert torch.equal(x.grad, 2 * once)


def test_sigmoid_focal_and_bce_adversarial_logits():
    """+-100 and 1e-30 against float64 (stable formulas: -log p = softplus(-x)); +-inf
    take their limits where torchvision's own formula gives NaN (inf - inf)."""
    x = torch.tensor([100.0, -100.0, 1e-30, -1e-30, 30.0, -30.0, 100.0, -100.0])
    y = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.3, 0.7])
    xd, yd = x.double(), y.double()

    def focal64(v):
        p, q = torch.sigmoid(v), torch.sigmoid(-v)
        ce = yd * F.softplus(-v, threshold=1000) + (1 - yd) * F.softplus(v, threshold=1000)
        m = yd * q + (1 - yd) * p
        return (0.25 * yd + 0.75 * (1 - yd)) * m ** 2 * ce
    l_d, g_d = grads(dt.sigmoid_focal_loss, x, y)
    l_64, g_64 = grads(focal64, xd)
    assert_close(l_d, l_64, 1e-5, 0, "focal loss")
    assert_close(g_d, g_64, 1e-4, 1e-7, "focal grad")
    # BCE against softplus in float64: F.binary_cross_entropy_with_logits's own float64
    # formula, log(exp(-m) + exp(-x - m)), loses 1e-3 relative at x = -30
    l_d, g_d = grads(dt.binary_cross_entropy_with_logits, x, y, reduction="none")
    l_64, g_64 = grads(lambda v: yd * F.softplus(-v, threshold=1000)
                       + (1 - yd) * F.softplus(v, threshold=1000), xd)
    assert_close(l_d, l_64, 1e-5, 0, "bce loss")
    assert_close(g_d, g_64, 1e-5, 1e-7, "bce grad")
    xi = torch.tensor([float("inf"), float("-inf"), float("inf"), float("-inf")])
    yi = torch.tensor([1.0, 0.0, 0.0, 1.0])
    l, g = grads(dt.sigmoid_focal_loss, xi, yi)
    assert l.tolist() == [0.0, 0.0, float("inf"), float("inf")]
    assert g[:2].tolist() == [0.0, 0.0]


def test_import_sizes_the_pool_by_torch_threads():
    from conftest import run_python
    out = run_python("import torch; torch.set_num_threads(3); import dafl, dafl.torch; "
                     "print(dafl.get_num_threads())")
    assert out.strip() == "3"
