"""dafl.torch as a PyTorch citizen: autograd that never lies (retain_graph, double
backward, float64, targets and weights that require grad, torch.func), autocast, the
peers' argument ranges, zero-size tensors, and - on torch >= 2.4 - the custom operators
(opcheck, torch.compile(fullgraph=True) with no graph break and eager's bits).

Every expected value comes from the peer (torch.nn.functional) or from the published
formulas in references.py, never from dafl."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dafl
import dafl.torch as dt
import references as ref
from conftest import assert_close, heatmap_batch

TORCH2 = dt.HAVE_CUSTOM_OPS
needs_ops = pytest.mark.skipif(not TORCH2, reason=f"torch {torch.__version__} has no "
                               "torch.library custom operators (torch >= 2.4)")
SHAPE = (2, 3, 6, 5)


def _inputs(seed=7):
    rng = np.random.default_rng(seed)
    y = torch.tensor(heatmap_batch(rng, 2, 3, 6, 5, peaks=2))
    x = torch.tensor(rng.normal(0, 2, SHAPE).astype(np.float32))
    hard = torch.tensor((rng.random(SHAPE) < 0.3).astype(np.float32))
    labels = torch.tensor(rng.integers(0, 3, (2, 6, 5)))
    w = torch.tensor(rng.uniform(0.2, 2.0, SHAPE).astype(np.float32))
    return x, y, hard, labels, w


# name: (dafl loss, peer loss, target for it, target differentiable in the peer)
# each loss f(x, t) with the same arguments for dafl and its peer
CASES = {
    "centernet": (lambda x, y: dt.CenterNetFocalLoss()(x, y), ref.centernet_focal, "y"),
    "penalty": (lambda x, y: dt.penalty_focal_loss(x, y, 2.5, 3.5),
                lambda x, y: ref.penalty_focal_logits(x, y, 2.5, 3.5), "y"),
    "gaussian_focal": (lambda x, y: dt.GaussianFocalLoss()(torch.sigmoid(x), y),
                       lambda x, y: ref.mmdet_gaussian_focal(torch.sigmoid(x), y), "y"),
    "sigmoid_focal": (lambda x, y: dt.sigmoid_focal_loss(x, y, reduction="mean"),
                      lambda x, y: ref.sigmoid_focal(x, y, reduction="mean"), "y"),
    "bce": (dt.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits, "hard"),
    "bce_weighted": (lambda x, y, w=None: dt.binary_cross_entropy_with_logits(x, y, weight=w),
                     lambda x, y, w=None: F.binary_cross_entropy_with_logits(x, y, weight=w),
                     "hard"),
    "softmax_focal": (lambda x, t: dt.softmax_focal_loss(x, t),
                      lambda x, t: ref.softmax_focal(x, t), "labels"),
    "mse": (dt.mse_loss, F.mse_loss, "y"),
}


def _case(name, dtype=torch.float32):
    fused, peer, tname = CASES[name]
    x, y, hard, labels, w = _inputs()
    t = {"y": y, "hard": hard, "labels": labels}[tname]
    if tname != "labels":
        t = t.to(dtype)
    if name == "bce_weighted":
        w = w.to(dtype)
        return (lambda a, b: fused(a, b, w)), (lambda a, b: peer(a, b, w)), x.to(dtype), t
    return fused, peer, x.to(dtype), t


@pytest.mark.parametrize("name", CASES)
def test_retain_graph_backpropagates_twice(name):
    fused, _, x, t = _case(name)
    x = x.requires_grad_()
    loss = fused(x, t)
    loss.backward(retain_graph=True)
    once = x.grad.clone()
    loss.backward()
    assert torch.equal(x.grad, 2 * once)


@pytest.mark.parametrize("name", CASES)
def test_double_backward_equals_pytorchs(name):
    """create_graph=True: the gradient is itself differentiable, and a gradient penalty
    gets PyTorch's second derivative (its own double backward through the peer)."""
    fused, peer, x, t = _case(name)
    v = torch.linspace(-1, 1, x.numel()).reshape(x.shape)
    results = []
    for f in (fused, peer):
        xx = x.clone().requires_grad_()
        g, = torch.autograd.grad(f(xx, t), xx, create_graph=True)
        assert g.requires_grad, "the gradient has no graph"
        (g * v).sum().backward()
        results.append((g.detach(), xx.grad))
    assert_close(results[0][0], results[1][0], 1e-4, 1e-6, "gradient")
    assert_close(results[0][1], results[1][1], 1e-4, 1e-5, "second derivative")


@pytest.mark.parametrize("name", CASES)
def test_float64_gradcheck_and_gradgradcheck(name):
    fused, _, x, t = _case(name, torch.float64)
    x = (x * 0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda a: fused(a, t), (x,))
    assert torch.autograd.gradgradcheck(lambda a: fused(a, t), (x,))


@pytest.mark.parametrize("name", ["centernet", "penalty", "sigmoid_focal", "bce",
                                  "bce_weighted", "mse"])
def test_target_that_requires_grad_gets_pytorchs_gradient(name):
    fused, peer, x, t = _case(name)
    grads = []
    for f in (fused, peer):
        tt = t.clone().requires_grad_()
        xx = x.clone().requires_grad_()
        f(xx, tt).backward()
        assert tt.grad is not None, "the target's gradient is silently missing"
        grads.append((tt.grad, xx.grad))
    assert_close(grads[0][0], grads[1][0], 1e-4, 1e-6, "target gradient")
    assert_close(grads[0][1], grads[1][1], 1e-4, 1e-6, "input gradient")


@pytest.mark.parametrize("what", ["bce", "gaussian_focal"])
def test_weight_that_requires_grad_gets_pytorchs_gradient(what):
    x, _, hard, _, w = _inputs()
    grads = []
    for peer in (False, True):
        ww = w.clone().requires_grad_()
        if what == "bce" and peer:
            # F.binary_cross_entropy_with_logits refuses a weight that requires grad;
            # its formula, weight * l, differentiated by PyTorch:
            (F.binary_cross_entropy_with_logits(x, hard, reduction="none") * ww).mean() \
                .backward()
        elif what == "bce":
            dt.binary_cross_entropy_with_logits(x, hard, weight=ww).backward()
        else:
            f = ref.mmdet_gaussian_focal if peer else dt.GaussianFocalLoss()
            f(torch.sigmoid(x), hard, weight=ww).backward()
        grads.append(ww.grad)
    assert grads[0] is not None
    assert_close(grads[0], grads[1], 1e-5, 1e-7, "weight gradient")


def test_mse_weights_that_require_grad_get_pytorchs_gradient():
    x, y, _, _, _ = _inputs()
    w = torch.tensor([0.5, 1.0, 2.0])
    wd, wp = w.clone().requires_grad_(), w.clone().requires_grad_()
    dt.mse_loss(x, y, weights=wd).backward()
    (((x - y) ** 2) * wp.view(1, 3, 1, 1)).mean().backward()
    assert_close(wd.grad, wp.grad, 1e-5, 1e-7, "weights gradient")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", ["centernet", "penalty", "sigmoid_focal", "bce",
                                  "softmax_focal", "mse"])
def test_autocast_loss_is_float32_and_gradient_the_rounded_float32_one(name, dtype):
    if dtype == torch.float16 and not TORCH2:
        pytest.skip(f"torch {torch.__version__}'s CPU autocast has no float16")
    fused, _, x, t = _case(name)
    x = x.to(dtype)  # the head's output under autocast
    if t.is_floating_point():
        t = t.to(dtype)
    xh = x.clone().requires_grad_()
    with torch.autocast("cpu", dtype=dtype):
        loss = fused(xh, t)
        loss.backward()
    assert loss.dtype == torch.float32
    assert xh.grad.dtype == dtype
    x32 = x.float().requires_grad_()
    loss32 = fused(x32, t.float() if t.is_floating_point() else t)
    loss32.backward()
    assert torch.equal(loss, loss32)
    assert torch.equal(xh.grad, x32.grad.to(dtype))
    # outside autocast the loss has the input's dtype, as PyTorch's losses
    assert fused(x, t).dtype == dtype


# ---- the peers' argument ranges ------------------------------------------------------------

@pytest.mark.parametrize("alpha", [2.0, 1.5, -1.0, -0.5, 0.0, 1.0])
def test_sigmoid_focal_takes_any_alpha_torchvision_takes(alpha):
    x, _, hard, _, _ = _inputs()
    for reduction in ("none", "sum"):
        l_d, g_d = ref.value_and_grad(dt.sigmoid_focal_loss, x, hard, alpha=alpha,
                                      reduction=reduction)
        l_r, g_r = ref.value_and_grad(ref.sigmoid_focal, x.double(), hard.double(),
                                      alpha=alpha, reduction=reduction)
        assert_close(l_d, l_r, 1e-5, 1e-6, "loss")
        assert_close(g_d, g_r, 1e-4, 1e-6, "grad")
    with pytest.raises(ValueError, match=r"'alpha' must be .*got nan"):
        dt.sigmoid_focal_loss(x, hard, alpha=float("nan"))


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512", "neon"])
def test_sigmoid_focal_alpha_above_one_same_bits_on_every_isa(isa):
    if not dafl.isa_available(isa):
        pytest.skip(f"this CPU or build has no {isa}")
    x, y, _, _, _ = _inputs()
    dafl.set_isa("scalar")
    l0, g0 = ref.value_and_grad(dt.sigmoid_focal_loss, x, y, alpha=2.0, reduction="sum")
    dafl.set_isa(isa)
    l1, g1 = ref.value_and_grad(dt.sigmoid_focal_loss, x, y, alpha=2.0, reduction="sum")
    assert torch.equal(l0, l1) and torch.equal(g0, g1)


def test_ignore_index_outside_int32_as_cross_entropy():
    x, _, _, labels, _ = _inputs()
    big = 2**31
    labels = labels.clone()
    labels[0, 0, :3] = big
    for ii in (big, -2**40):
        lab = labels if ii == big else labels.clamp(max=2)
        l_d, g_d = ref.value_and_grad(dt.softmax_focal_loss, x, lab, gamma=0, ignore_index=ii)
        l_t, g_t = ref.value_and_grad(F.cross_entropy, x, lab, ignore_index=ii)
        assert_close(l_d, l_t, 1e-6, 0, "loss")
        assert_close(g_d, g_t, 1e-5, 1e-7, "grad")
    with pytest.raises(ValueError, match=r"'ignore_index' must be in .*got 9223372036854775808"):
        dt.softmax_focal_loss(x, labels, ignore_index=2**63)
    with pytest.raises(TypeError, match="'ignore_index' must be an integer, got 1.5"):
        dt.softmax_focal_loss(x, labels, ignore_index=1.5)


def test_softmax_zero_classes_checks_the_labels():
    with pytest.raises(IndexError):
        F.cross_entropy(torch.empty(2, 0), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="'labels'.*0 classes"):
        dt.softmax_focal_loss(torch.empty(2, 0), torch.tensor([0, 1]))
    # all ignored: nothing to check, NaN as PyTorch's mean over no weight
    l_t = F.cross_entropy(torch.empty(2, 0), torch.tensor([-100, -100]))
    l_d = dt.softmax_focal_loss(torch.empty(2, 0), torch.tensor([-100, -100]), gamma=0)
    assert torch.isnan(l_t) and torch.isnan(l_d)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_zero_size_tensors_behave_as_pytorchs(reduction):
    x = torch.empty(2, 0, 4, 4, requires_grad=True)
    y = torch.empty(2, 0, 4, 4)
    pairs = [
        (dt.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits),
        (dt.mse_loss, F.mse_loss),
        (dt.sigmoid_focal_loss, ref.sigmoid_focal),
    ]
    for fused, peer in pairs:
        l_d, l_p = fused(x, y, reduction=reduction), peer(x, y, reduction=reduction)
        assert l_d.shape == l_p.shape and l_d.dtype == l_p.dtype
        assert torch.equal(l_d, l_p) or (torch.isnan(l_d).all() and torch.isnan(l_p).all())
        if l_d.dim() == 0:
            l_d.backward()
            assert x.grad.shape == x.shape
    l_d = dt.softmax_focal_loss(torch.empty(2, 3, 0, 4), torch.empty(2, 0, 4, dtype=torch.long),
                                reduction=reduction, gamma=0)
    l_p = F.cross_entropy(torch.empty(2, 3, 0, 4), torch.empty(2, 0, 4, dtype=torch.long),
                          reduction=reduction)
    assert l_d.shape == l_p.shape
    assert torch.equal(l_d, l_p) or (torch.isnan(l_d).all() and torch.isnan(l_p).all())


def test_errors_name_the_argument_and_its_value():
    x, y, hard, labels, _ = _inputs()
    checks = [
        (lambda: dt.penalty_focal_loss(x, y, alpha=-1), r"'alpha' must be .* got -1"),
        (lambda: dt.penalty_focal_loss(x, y, beta=float("inf")), r"'beta' .* got inf"),
        (lambda: dt.penalty_focal_loss(x, y, normalizer=0), r"'normalizer' .* got 0"),
        (lambda: dt.penalty_focal_loss(x, y, input_mode="clamped_logits", clamp_eps=0.7),
         r"'clamp_eps' must be in \(0, 0.5\), got 0.7"),
        (lambda: dt.penalty_focal_loss(x, y, grad_scale=float("nan")), r"'grad_scale' .* nan"),
        (lambda: dt.sigmoid_focal_loss(x, hard, gamma=-2), r"'gamma' .* got -2"),
        (lambda: dt.binary_cross_entropy_with_logits(x, hard, pos_weight=-3.0),
         r"'pos_weight' .* got -3.0"),
        (lambda: dt.softmax_focal_loss(x, labels, gamma=-1), r"'gamma' .* got -1"),
        (lambda: dt.softmax_focal_loss(x, labels, weight=torch.ones(4)), r"'weight' must have"),
        (lambda: dafl.set_num_threads(2**32 + 3), r"'threads' must be in \[0, 256\], got "
                                                 "4294967299"),
        (lambda: dafl.set_num_threads(-1), r"'threads' must be in \[0, 256\], got -1"),
    ]
    for call, message in checks:
        with pytest.raises(ValueError, match=message):
            call()
    with pytest.raises(TypeError, match="'threads' must be an integer, got 2.5"):
        dafl.set_num_threads(2.5)
    assert dafl.get_num_threads() >= 1


def test_module_help_describes_shapes_and_dtypes():
    for obj in (dt.CenterNetFocalLoss, dt.PenaltyFocalLoss, dt.GaussianFocalLoss):
        assert "Define the computation" not in (obj.forward.__doc__ or "")
        assert "(N, C, H, W)" in obj.forward.__doc__ or "shape" in obj.forward.__doc__
    for fn in (dt.sigmoid_focal_loss, dt.penalty_focal_loss, dt.softmax_focal_loss,
               dt.binary_cross_entropy_with_logits, dt.mse_loss):
        assert fn.__doc__ and fn.__annotations__.get("return") is torch.Tensor
    import importlib.resources
    assert (importlib.resources.files("dafl") / "py.typed").is_file()


# ---- torch.func ------------------------------------------------------------------------------

@pytest.mark.skipif(not hasattr(torch, "func"), reason=f"torch {torch.__version__} has no "
                    "torch.func")
def test_torch_func_grad_and_vmap():
    x, y, _, _, _ = _inputs()
    g = torch.func.grad(lambda a: dt.penalty_focal_loss(a, y))(x)
    _, g_eager = ref.value_and_grad(dt.penalty_focal_loss, x, y)
    assert_close(g, g_eager, 1e-5, 1e-6, "torch.func.grad")
    per_image = torch.func.vmap(lambda a, b: dt.sigmoid_focal_loss(a, b, reduction="sum"))(x, y)
    expected = torch.stack([dt.sigmoid_focal_loss(x[i], y[i], reduction="sum")
                            for i in range(x.shape[0])])
    assert_close(per_image, expected, 1e-5, 0, "vmap")


# ---- the custom operators (torch >= 2.4) -----------------------------------------------------

def _op_calls():
    from dafl import _torch_ops as O
    from dafl._dafl import (REDUCTION_MEAN, REDUCTION_NONE, REDUCTION_POSITIVES,
                            REDUCTION_SUM, INPUT_CLAMPED_LOGITS, INPUT_LOGITS)
    x, y, hard, labels, w = _inputs()
    x = x.requires_grad_()
    perm = x.detach().permute(0, 2, 3, 1).requires_grad_()  # a dense permutation
    cl = x.detach().to(memory_format=torch.channels_last).requires_grad_()
    calls = []
    for inp, tgt in ((x, y), (perm, y.permute(0, 2, 3, 1)), (cl, y)):
        calls += [
            (O.penalty_focal, (inp, tgt, 2.0, 4.0, 1.0, 1.0, INPUT_CLAMPED_LOGITS, 1e-4, 0.0,
                               REDUCTION_POSITIVES, 1.0, 1.0, False, True)),
            (O.penalty_focal, (inp, tgt, 2.0, 4.0, 1.0, 1.0, INPUT_LOGITS, 1e-4, 0.0,
                               REDUCTION_NONE, 1.0, 1.0, False, True)),
            (O.sigmoid_focal, (inp, tgt, 2.0, 0.25, REDUCTION_MEAN, 1.0, 1.0, False, True)),
            (O.bce_with_logits, (inp, tgt, 1.5, None, REDUCTION_SUM, 1.0, 1.0, False, True)),
            (O.bce_with_logits, (inp, tgt, 1.0, None, REDUCTION_NONE, 1.0, 1.0, False,
                                 False)),
        ]
    calls += [
        (O.mse, (x, y, torch.tensor([1.0, 2.0, 0.5]), REDUCTION_MEAN, 1.0, 1.0, False, True)),
        (O.mse, (cl, y, None, REDUCTION_NONE, 1.0, 1.0, False, True)),
        (O.softmax_focal, (x, labels, None, 2.0, -100, REDUCTION_MEAN, 1.0, 1.0, True)),
        (O.softmax_focal, (cl, labels, torch.tensor([1.0, 2.0, 0.5]), 2.0, 1, REDUCTION_NONE,
                           1.0, 1.0, True)),
    ]
    return calls


@needs_ops
def test_opcheck_every_operator_contiguous_and_permuted():
    ops = set()
    for loss_op, args in _op_calls():
        torch.library.opcheck(loss_op.op, args)
        ops.add(loss_op.name)
    assert ops == {"penalty_focal", "sigmoid_focal", "bce_with_logits", "mse",
                   "softmax_focal"}


COMPILED = {name: case[0] for name, case in CASES.items()}
COMPILED["gaussian_focal"] = lambda p, y: dt.GaussianFocalLoss()(p, y)  # the model's sigmoid


@needs_ops
@pytest.mark.parametrize("name", CASES)
def test_fullgraph_compile_no_graph_break_and_eagers_bits(name):
    """A small model and the loss compiled with fullgraph=True: no graph break, and the
    loss and the gradient of the logits are the bits of the eager call on the same
    logits (the model itself may round differently when compiled).  The element-wise
    weight of bce_weighted is applied and summed by PyTorch, whose compiled sum may
    round differently: that one to float rounding."""
    import torch._dynamo
    _, _, x, t = _case(name)
    fused = COMPILED[name]
    if name == "bce_weighted":
        fused = (lambda w: lambda a, b: dt.binary_cross_entropy_with_logits(a, b, weight=w))(
            _inputs()[4])
    torch.manual_seed(0)
    model = torch.nn.Conv2d(4, 3, 3, padding=1)
    features = torch.randn(2, 4, 6, 5)
    shift = torch.zeros(x.shape, requires_grad=True)  # d loss / d shift = d loss / d logits

    def step(features):
        logits = model(features) * 3
        if name == "gaussian_focal":
            logits = torch.sigmoid(logits) * 0.98 + 0.01
        logits = logits + shift
        return fused(logits, t), logits

    torch._dynamo.reset()
    explained = torch._dynamo.explain(step)(features)
    assert explained.graph_break_count == 0 and explained.graph_count == 1
    torch._dynamo.reset()
    loss_c, logits_c = torch.compile(step, fullgraph=True)(features)
    grad_c, = torch.autograd.grad(loss_c, shift)
    loss_e, grad_e = ref.value_and_grad(fused, logits_c.detach(), t)
    if name == "bce_weighted":
        assert_close(loss_c, loss_e, 1e-6, 0, "loss")
        assert_close(grad_c, grad_e, 1e-6, 0, "grad")
        return
    assert torch.equal(loss_c.detach(), loss_e)
    assert torch.equal(grad_c, grad_e)


@needs_ops
def test_compiled_graph_holds_the_dafl_operator():
    from torch._dynamo.testing import CompileCounterWithBackend
    backend = CompileCounterWithBackend("aot_eager")
    x, y, _, _, _ = _inputs()
    torch._dynamo.reset()
    f = torch.compile(lambda a: dt.CenterNetFocalLoss()(a, y), backend=backend,
                      fullgraph=True)
    f(x.requires_grad_())
    code = "\n".join(g.code for g in backend.graphs)
    assert "dafl.penalty_focal" in code
