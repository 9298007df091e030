"""Half precision at the Python boundary (SPEC 13): bfloat16 and float16 logits and
targets - each its own dtype, float32 Gaussian targets beside half logits too - are read
in place by libdafl, which writes the gradient in the logits' dtype: no widened copy, no
float32 gradient.

For every loss of dafl (numpy: float16) and dafl.torch (bfloat16, float16):

- the loss is bit for bit the float32 call's on the widened inputs (``x.float()``), and
  so are the statistics and the per-element losses;
- the gradient is that call's float32 gradient rounded to the dtype (torch's and numpy's
  conversion: round to nearest even), bit for bit where it is not NaN, NaN where it is;
- nothing is copied: the C call gets the caller's memory (data pointers, recorded at the
  extension's entry point), the gradient autograd hands over is the buffer the C call
  wrote, and the profiler shows no aten copy of a tensor;
- the gradient is within one ULP of the float64 reference formula's gradient rounded to
  the dtype (a finite-difference check says nothing in 8 or 11 bits);
- torch.compile(fullgraph=True) (torch >= 2.4) and autocast, whose bfloat16 logits reach
  dafl as they are while the loss stays float32.

Every expected value comes from dafl's own float32 call (the contract is "the float32
call's bits"), from torch's dtype conversions, or from references.py in float64."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dafl
import dafl.torch as dt
import references as ref
from conftest import heatmap_batch

HALVES = [torch.bfloat16, torch.float16]
needs_ops = pytest.mark.skipif(not dt.HAVE_CUSTOM_OPS, reason=f"torch {torch.__version__} "
                               "has no torch.library custom operators (torch >= 2.4)")
# (aten::to itself copies nothing: it returns its input, or calls aten::_to_copy)
COPIES = {"aten::copy_", "aten::contiguous", "aten::clone", "aten::_to_copy"}
N, C, H, W = 2, 3, 12, 10
WEIGHTS = torch.tensor([0.5, 1.0, 2.0])


def _data(seed=5):
    rng = np.random.default_rng(seed)
    y = torch.tensor(heatmap_batch(rng, N, C, H, W, peaks=2))
    x = torch.tensor(rng.normal(0, 3, y.shape).astype(np.float32))
    hard = torch.tensor((rng.random(y.shape) < 0.3).astype(np.float32))
    # int32 labels are read in place (int64 ones are converted: a copy of the labels)
    labels = torch.tensor(rng.integers(0, C, (N, H, W)), dtype=torch.int32)
    labels[0, 0, :3] = -100  # ignored pixels
    keypoints = [[(3.0, 4.0, 1, 2.0), (7.0, 9.0, 0, 1.0)], [(5.0, 5.0, 2, 3.0)]]
    return x, y, hard, labels, keypoints


# name: (loss f(x, t), target kind, the _dafl entry point it calls)
LOSSES = {
    "penalty_focal": (lambda x, t: dt.penalty_focal_loss(x, t), "heatmap", "penalty_focal"),
    "penalty_focal_none": (lambda x, t: dt.penalty_focal_loss(x, t, reduction="none"),
                           "heatmap", "penalty_focal"),
    "centernet": (lambda x, t: dt.CenterNetFocalLoss()(x, t), "heatmap", "penalty_focal"),
    "gaussian_focal": (lambda p, t: dt.GaussianFocalLoss()(p, t), "probabilities",
                       "penalty_focal"),
    "sigmoid_focal": (lambda x, t: dt.sigmoid_focal_loss(x, t, reduction="mean"), "heatmap",
                      "sigmoid_focal"),
    "sigmoid_focal_none": (lambda x, t: dt.sigmoid_focal_loss(x, t), "heatmap",
                           "sigmoid_focal"),
    "bce": (dt.binary_cross_entropy_with_logits, "hard", "bce_with_logits"),
    "mse": (dt.mse_loss, "heatmap", "mse"),
    "mse_weights": (lambda x, t: dt.mse_loss(x, t, weights=WEIGHTS), "heatmap", "mse"),
    "softmax_focal": (lambda x, t: dt.softmax_focal_loss(x, t), "labels", "softmax_focal"),
    "softmax_focal_none": (lambda x, t: dt.softmax_focal_loss(x, t, reduction="none"),
                           "labels", "softmax_focal"),
    "keypoints": (lambda x, kp: dt.penalty_focal_keypoints(x, kp), "keypoints",
                  "penalty_focal_keypoints"),
    "centernet_keypoints": (lambda x, kp: dt.CenterNetFocalKeypointLoss()(x, kp),
                            "keypoints", "penalty_focal_keypoints"),
}
FLOAT_TARGETS = [n for n, (_, kind, _) in LOSSES.items()
                 if kind not in ("labels", "keypoints")]
# the C entry point's argument positions: (input, target or None, grad)
POSITIONS = {"penalty_focal": (0, 1, 3), "sigmoid_focal": (0, 1, 3),
             "bce_with_logits": (0, 1, 3), "mse": (0, 1, 3), "softmax_focal": (0, None, 3),
             "penalty_focal_keypoints": (0, None, 4)}


def _case(name, dtype, target="same"):
    """(loss, logits in dtype, target): the target in dtype ("same") or float32."""
    fn, kind, _ = LOSSES[name]
    x, y, hard, labels, keypoints = _data()
    if kind == "probabilities":
        x = torch.sigmoid(x)
    t = {"heatmap": y, "probabilities": y, "hard": hard, "labels": labels,
         "keypoints": keypoints}[kind]
    if isinstance(t, torch.Tensor) and t.is_floating_point():
        t = t.to(dtype if target == "same" else target)
    return fn, x.to(dtype), t


def _widened(t):
    return t.float() if isinstance(t, torch.Tensor) and t.is_floating_point() else t


def _backward(loss):
    (loss.sum() if loss.dim() else loss).backward()


def _value_and_grad(fn, x, t, autocast=False):
    x = x.detach().clone().requires_grad_()
    if autocast:  # the loss stays float32 under autocast: its own bits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = fn(x, t)
    else:
        loss = fn(x, t)
    _backward(loss)
    return loss.detach(), x.grad


def _int_view(t):
    return t.view(torch.int16) if t.element_size() == 2 else t.view(torch.int32)


def assert_same_bits(actual, expected, what="loss"):
    """The same bits (the same NaN positions, any NaN payload; +0 and -0 apart)."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, what
    a, e = actual.detach().reshape(-1), expected.detach().reshape(-1)
    nan = torch.isnan(e)
    assert torch.equal(torch.isnan(a), nan), f"{what}: NaN positions differ"
    assert torch.equal(_int_view(a[~nan]), _int_view(e[~nan])), f"{what}: bits differ"


def assert_rounded(grad, grad32, dtype):
    """grad is grad32 rounded to dtype element by element (torch's conversion: round to
    nearest even, overflow to infinity), in grad32's layout."""
    assert grad.dtype == dtype
    assert grad.stride() == grad32.stride()
    assert_same_bits(grad, grad32.to(dtype), "gradient")


# ---- bits: the float32 call's loss, its gradient rounded ---------------------------------

def _check_against_float32(name, dtype, target):
    fn, x, t = _case(name, dtype, target)
    loss32, grad32 = _value_and_grad(fn, x.float(), _widened(t))
    loss, grad = _value_and_grad(fn, x, t, autocast=True)
    assert loss.dtype == torch.float32
    assert_same_bits(loss, loss32)
    assert_rounded(grad, grad32, dtype)
    # outside autocast the loss has the input's dtype: the float32 loss rounded
    plain, grad_plain = _value_and_grad(fn, x, t)
    assert_same_bits(plain, loss32.to(dtype))
    assert_rounded(grad_plain, grad32, dtype)


@pytest.mark.parametrize("dtype", HALVES)
@pytest.mark.parametrize("name", LOSSES)
def test_torch_half_is_the_float32_calls_bits(name, dtype):
    _check_against_float32(name, dtype, "same")


@pytest.mark.parametrize("dtype", HALVES)
@pytest.mark.parametrize("name", FLOAT_TARGETS)
def test_torch_half_logits_with_float32_targets(name, dtype):
    _check_against_float32(name, dtype, torch.float32)


@pytest.mark.parametrize("name", ["penalty_focal", "bce", "mse"])
def test_float32_logits_with_half_targets(name):
    for dtype in HALVES:
        fn, x, t = _case(name, dtype)
        loss32, grad32 = _value_and_grad(fn, x.float(), t.float())
        loss, grad = _value_and_grad(fn, x.float(), t)
        assert_same_bits(loss, loss32)
        assert_same_bits(grad, grad32, "gradient")


def test_float16_logits_with_bfloat16_targets():
    fn, x, t = _case("penalty_focal", torch.float16)
    t = t.float().to(torch.bfloat16)
    loss32, grad32 = _value_and_grad(fn, x.float(), t.float())
    loss, grad = _value_and_grad(fn, x, t, autocast=True)
    assert_same_bits(loss, loss32)
    assert_rounded(grad, grad32, torch.float16)


def test_float64_targets_beside_half_logits_are_rounded_to_float32():
    """A float64 target is the one operand not read in place (one copy to float32, as
    every float64 array): the result is the float32 call's with that target."""
    fn, x, t = _case("penalty_focal", torch.bfloat16)
    loss32, grad32 = _value_and_grad(fn, x.float(), t.float())
    loss, grad = _value_and_grad(fn, x, t.double(), autocast=True)
    assert_same_bits(loss, loss32)
    assert_rounded(grad, grad32, torch.bfloat16)


# ---- special values: NaN, infinities, denormals, float16 overflow ------------------------

@pytest.mark.parametrize("dtype", HALVES)
@pytest.mark.parametrize("name", ["mse", "bce", "penalty_focal", "sigmoid_focal_none"])
def test_special_values_round_as_the_contract_says(name, dtype):
    """NaN and infinite logits, the largest finite values, denormals; in float16 the MSE
    gradient of 60000 overflows to infinity (IEEE rounding), as torch's conversion of the
    float32 gradient does."""
    fn, x, t = _case(name, dtype)
    info = torch.finfo(dtype)
    flat = x.view(-1)
    special = [float("nan"), float("inf"), float("-inf"), info.max, -info.max, info.tiny,
               info.tiny * info.eps, -info.tiny * info.eps * 3, 0.0, -0.0]
    if name == "mse" and dtype == torch.float16:
        special += [60000.0, -60000.0, 40000.0]
    flat[:len(special)] = torch.tensor(special).to(dtype)
    sum_fn = {"mse": lambda a, b: dt.mse_loss(a, b, reduction="sum"),
              "bce": lambda a, b: dt.binary_cross_entropy_with_logits(a, b, reduction="sum"),
              }.get(name, fn)
    loss32, grad32 = _value_and_grad(sum_fn, x.float(), t.float())
    loss, grad = _value_and_grad(sum_fn, x, t, autocast=True)
    assert_same_bits(loss, loss32)
    assert_rounded(grad, grad32, dtype)
    if name == "mse" and dtype == torch.float16:
        assert torch.isinf(grad.view(-1)[len(special) - 3:len(special) - 1]).all()


# ---- no copy -----------------------------------------------------------------------------

def _address(a):
    if isinstance(a, torch.Tensor):
        return a.data_ptr(), a.dtype
    if isinstance(a, np.ndarray):
        return a.__array_interface__["data"][0], a.dtype
    return None


@pytest.fixture
def calls(monkeypatch):
    """calls(entry) -> the list the extension's entry point ``entry`` records into: for
    each call, (data pointer, dtype) of each array argument, as the C code reads it."""
    def record(entry):
        seen = []
        original = getattr(dafl._dafl, entry)

        def recording(*args, **kw):
            seen.append([_address(a) for a in args])
            return original(*args, **kw)
        monkeypatch.setattr(dafl._dafl, entry, recording)
        return seen
    return record


def _copies(prof):
    """The copies of a tensor of more than one element the profiler saw."""
    found = []
    for e in prof.function_events:
        shapes = [s for s in (e.input_shapes or []) if s]
        if e.name in COPIES and any(int(np.prod(s)) > 1 for s in shapes):
            found.append((e.name, shapes))
    return found


def _in_place(name, dtype, target, calls, layout=None):
    fn, x, t = _case(name, dtype, target)
    _, _, entry = LOSSES[name]
    if layout == "channels_last":
        x = x.to(memory_format=torch.channels_last)
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            t = t.to(memory_format=torch.channels_last)
    loss32, grad32 = _value_and_grad(fn, x.float(), _widened(t))
    seen = calls(entry)
    xh = x.detach().requires_grad_()
    # a per-element loss is float32 (as libdafl writes it); outside autocast dafl.torch
    # returns it in the input's dtype, a conversion of the loss (not of the input): under
    # autocast it stays float32, and loss.sum().backward() then hands over the gradient
    # the C call wrote, as loss.backward() does
    per_element = name.endswith("_none")
    with torch.autograd.profiler.profile(record_shapes=True) as prof:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=per_element):
            loss = fn(xh, t)
        _backward(loss)
    copies = _copies(prof)
    assert not copies, f"copies at the boundary: {copies}"
    assert len(seen) == 1
    i, j, g = POSITIONS[entry]
    assert seen[0][i] == (xh.data_ptr(), dtype), "the logits were not read in place"
    if j is not None:
        assert seen[0][j] == (t.data_ptr(), t.dtype), "the target was not read in place"
    assert seen[0][g][1] == dtype, "the gradient was not written in the logits' dtype"
    assert xh.grad.data_ptr() == seen[0][g][0]  # autograd hands over what the C call wrote
    assert_rounded(xh.grad, grad32, dtype)


@pytest.mark.parametrize("dtype", HALVES)
@pytest.mark.parametrize("name", LOSSES)
def test_torch_half_is_read_and_written_in_place(name, dtype, calls):
    _in_place(name, dtype, "same", calls)


@pytest.mark.parametrize("name", ["centernet", "gaussian_focal", "bce", "mse", "sigmoid_focal"])
def test_bfloat16_logits_with_float32_targets_in_place(name, calls):
    _in_place(name, torch.bfloat16, torch.float32, calls)


@pytest.mark.parametrize("dtype", HALVES)
@pytest.mark.parametrize("name", ["centernet", "penalty_focal_none", "sigmoid_focal", "bce",
                                  "mse", "softmax_focal"])
def test_channels_last_half_is_read_in_place(name, dtype, calls):
    """channels_last logits with a channels_last target (bfloat16 or float32): read in
    place, the gradient written in that layout; softmax focal's channels_last logits are
    its class-contiguous layout."""
    _in_place(name, dtype, "same", calls, "channels_last")
    if name != "softmax_focal":
        _in_place(name, dtype, torch.float32, calls, "channels_last")


def test_half_in_another_layout_takes_one_copy_of_its_own_dtype(calls):
    """Logits and target in different layouts: the logits are copied once into C order,
    in bfloat16 (not widened), and the gradient comes back in their layout."""
    fn, x, t = _case("centernet", torch.bfloat16, torch.float32)
    loss32, grad32 = _value_and_grad(fn, x.float(), t)
    seen = calls("penalty_focal")
    xl = x.to(memory_format=torch.channels_last).requires_grad_()
    fn(xl, t).backward()
    assert seen[0][0][1] == torch.bfloat16 and seen[0][3][1] == torch.bfloat16
    assert xl.grad.is_contiguous(memory_format=torch.channels_last)
    assert_same_bits(xl.grad.contiguous(), grad32.to(torch.bfloat16), "gradient")


# ---- accuracy: against float64 -----------------------------------------------------------

def _ulp(v, dtype):
    """The spacing of dtype's values at each element of v (float64): 2^e * eps in the
    binade of |v|, the subnormal spacing below the smallest normal."""
    info = torch.finfo(dtype)
    a = torch.clamp(v.abs(), min=info.tiny)
    return torch.exp2(torch.floor(torch.log2(a))) * info.eps


REFERENCES = {
    "penalty_focal": lambda x, t: ref.penalty_focal_logits(x, t),
    "centernet": ref.centernet_focal,
    "gaussian_focal": lambda p, t: ref.mmdet_gaussian_focal(p, t),
    "sigmoid_focal": lambda x, t: ref.sigmoid_focal(x, t, reduction="mean"),
    "bce": F.binary_cross_entropy_with_logits,
    "mse": F.mse_loss,
    "mse_weights": lambda x, t: ((x - t) ** 2 * WEIGHTS.double().view(1, C, 1, 1)).mean(),
    "softmax_focal": lambda x, t: ref.softmax_focal(x, t.long()),
    "keypoints": lambda x, t: ref.penalty_focal_logits(x, t),
}


@pytest.mark.parametrize("dtype", HALVES)
@pytest.mark.parametrize("name", REFERENCES)
def test_half_gradient_within_one_ulp_of_float64(name, dtype):
    """The gradient against autograd of the formula (references.py) in float64 on the
    same (exactly widened) values, rounded to dtype: within one ULP of dtype, where the
    float32 computation itself is accurate to a few float32 ULPs of the largest
    gradient."""
    fn, x, t = _case(name, dtype)
    if name == "keypoints":
        _, grad = _value_and_grad(fn, x, t)
        t = dt.render_heatmaps(t, shape=tuple(x.shape))
    else:
        _, grad = _value_and_grad(fn, x, t)
    t64 = t.double() if t.is_floating_point() else t
    _, grad64 = ref.value_and_grad(REFERENCES[name], x.double(), t64)
    expected = grad64.to(dtype).double()
    err = torch.where(grad.double() == expected, torch.zeros_like(expected),
                      (grad.double() - expected).abs())  # (float16 overflows: inf == inf)
    bound = _ulp(expected, dtype) + 8 * 2.0 ** -24 * grad64.abs().max()
    worst = torch.argmax(err - bound)
    assert bool((err <= bound).all()), (
        f"{name}: {grad.view(-1)[worst]} against float64 {grad64.view(-1)[worst]}")


# ---- torch.compile and autocast ----------------------------------------------------------

@needs_ops
@pytest.mark.parametrize("dtype", HALVES)
@pytest.mark.parametrize("name", ["centernet", "softmax_focal", "keypoints"])
def test_fullgraph_compile_with_half_logits(name, dtype, calls):
    """compiled with fullgraph=True (no graph break), the half logits go to the operator
    as they are (no conversion in the graph), its kernel reads them in place, and the
    results are eager's bits; the fake kernel gives the gradient the logits' dtype."""
    import torch._dynamo
    from torch._dynamo.testing import CompileCounterWithBackend
    fn, x, t = _case(name, dtype, torch.float32)
    if name == "keypoints":  # the batch as tensors (a list is Python data to trace)
        t = dt.collate_keypoints(t, torch.float64)
        fn = lambda v, batch: dt.penalty_focal_keypoints(v, *batch)  # noqa: E731
    torch._dynamo.reset()
    backend = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(fn, backend=backend, fullgraph=True)
    seen = calls(LOSSES[name][2])
    xc = x.clone().requires_grad_()
    loss_c = compiled(xc, t)
    loss_c.backward()
    loss_c, grad_c = loss_c.detach(), xc.grad
    assert seen[-1][0] == (xc.data_ptr(), dtype)
    loss_e, grad_e = _value_and_grad(fn, x, t)
    graph, = (g.graph for g in backend.graphs)
    first = next(n for n in graph.nodes if n.op == "placeholder")
    op, = (n for n in graph.nodes if "dafl." in str(n.target))
    assert op.args[0] is first, graph  # the logits themselves, no conversion in between
    assert loss_c.dtype == dtype and grad_c.dtype == dtype
    assert_same_bits(loss_c, loss_e)
    assert_same_bits(grad_c, grad_e, "gradient")
    torch._dynamo.reset()


@needs_ops
def test_inductor_compiled_step_under_autocast():
    """A model and the loss under CPU autocast, compiled by the default backend with
    fullgraph=True: the loss is float32, the bits of the eager step."""
    import torch._dynamo
    fn, _, t = _case("centernet", torch.bfloat16, torch.float32)
    torch.manual_seed(0)
    model = torch.nn.Conv2d(4, C, 3, padding=1)
    features = torch.randn(N, 4, H, W)

    def step(features):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(features) * 3
            return fn(logits, t), logits

    torch._dynamo.reset()
    loss_c, logits_c = torch.compile(step, fullgraph=True)(features)
    assert loss_c.dtype == torch.float32 and logits_c.dtype == torch.bfloat16
    loss_c.backward()
    loss_e, _ = _value_and_grad(fn, logits_c.detach(), t, autocast=True)
    assert_same_bits(loss_c.detach(), loss_e)
    assert model.weight.grad is not None
    torch._dynamo.reset()


@needs_ops
def test_opcheck_with_half_and_mixed_dtypes():
    """The fake kernels give the real kernels' dtypes, shapes and strides (the gradient
    in the logits' dtype, the loss float32), and autograd is registered, for half and
    mixed inputs."""
    from dafl import _torch_ops as O
    from dafl import _keypoints_torch as kt
    from dafl._dafl import (INPUT_CLAMPED_LOGITS, REDUCTION_MEAN, REDUCTION_NONE,
                            REDUCTION_POSITIVES, REDUCTION_SUM)
    x, y, hard, labels, keypoints = _data()
    kp, counts = dt.collate_keypoints(keypoints, torch.float64)
    for dtype in HALVES:
        xh = x.to(dtype).requires_grad_()
        cl = x.to(dtype).to(memory_format=torch.channels_last).requires_grad_()
        for tgt in (y.to(dtype), y):
            torch.library.opcheck(O.penalty_focal.op, (
                xh, tgt, 2.0, 4.0, 1.0, 1.0, INPUT_CLAMPED_LOGITS, 1e-4, 0.0,
                REDUCTION_POSITIVES, 1.0, 1.0, False, True))
            torch.library.opcheck(O.sigmoid_focal.op, (
                cl, tgt.to(memory_format=torch.channels_last), 2.0, 0.25, REDUCTION_NONE,
                1.0, 1.0, False, True))
            torch.library.opcheck(O.mse.op, (xh, tgt, WEIGHTS, REDUCTION_MEAN, 1.0, 1.0,
                                             False, True))
        torch.library.opcheck(O.bce_with_logits.op, (xh, hard.to(dtype), 1.5, None,
                                                     REDUCTION_SUM, 1.0, 1.0, False, True))
        torch.library.opcheck(O.softmax_focal.op, (cl, labels, None, 2.0, -100,
                                                   REDUCTION_NONE, 1.0, 1.0, True))
        torch.library.opcheck(kt.penalty_focal_keypoints_op.op, (
            xh, kp, counts, 0, 2.0, 4.0, 1.0, 1.0, INPUT_CLAMPED_LOGITS, 1e-4, 0.0,
            REDUCTION_POSITIVES, 1.0, 1.0, False, True))


@pytest.mark.parametrize("name,fn,peer", [
    ("bce", dt.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits),
    ("mse", dt.mse_loss, F.mse_loss),
    ("softmax_focal", lambda x, t: dt.softmax_focal_loss(x, t, gamma=0),
     lambda x, t: F.cross_entropy(x, t.long())),
])
def test_autocast_reads_the_bfloat16_logits_as_they_are(name, fn, peer, calls):
    """Under autocast("cpu", bfloat16) a model's bfloat16 logits reach dafl as they are:
    no float32 copy (the extension reads the logits' own memory), the loss float32 - as
    PyTorch's losses on autocast's float32 list return it -, bit for bit the float32
    call's on the widened logits, the gradient that call's rounded to bfloat16.  PyTorch's
    own loss under autocast casts the logits (and a bfloat16 target) to float32 first
    and rounds its float32 gradient to bfloat16 too: the same contract, so the two agree
    to float32 rounding in the loss and within one bfloat16 ULP in the gradient."""
    _, _, t = _case(name, torch.bfloat16, torch.float32)
    _, _, entry = LOSSES[name]
    torch.manual_seed(0)
    model = torch.nn.Conv2d(4, C, 3, padding=1)
    features = torch.randn(N, 4, H, W)
    seen = calls(entry)
    results = []
    for loss_fn in (fn, peer):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(features) * 3
            logits.retain_grad()
            loss = loss_fn(logits, t)
        loss.backward()
        results.append((logits, loss))
    (logits, loss), (logits_p, loss_p) = results
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    assert seen[0][0] == (logits.data_ptr(), torch.bfloat16)
    loss32, grad32 = _value_and_grad(fn, logits.detach().float(), t)
    assert_same_bits(loss.detach(), loss32)
    assert_rounded(logits.grad, grad32, torch.bfloat16)
    assert loss_p.dtype == torch.float32 and logits_p.grad.dtype == torch.bfloat16
    assert abs(loss.item() - loss_p.item()) <= 1e-5 * abs(loss_p.item())
    err = (logits.grad.double() - logits_p.grad.double()).abs()
    bound = _ulp(logits_p.grad.double(), torch.bfloat16) + 2.0 ** -20 * grad32.abs().max()
    assert bool((err <= bound).all())


# ---- numpy: float16 ----------------------------------------------------------------------

def _np_data(seed=9):
    x, y, hard, labels, keypoints = _data(seed)
    return x.numpy(), y.numpy(), hard.numpy(), labels.numpy(), keypoints


NP_LOSSES = {
    "penalty_focal": (lambda x, t, **k: dafl.penalty_focal(x, t, **k), "heatmap",
                      "penalty_focal"),
    "penalty_focal_clamped": (lambda x, t, **k: dafl.penalty_focal(
        x, t, input_mode="clamped_logits", **k), "heatmap", "penalty_focal"),
    "penalty_focal_none": (lambda x, t, **k: dafl.penalty_focal(x, t, reduction="none", **k),
                           "heatmap", "penalty_focal"),
    "sigmoid_focal": (lambda x, t, **k: dafl.sigmoid_focal(x, t, reduction="sum", **k),
                      "heatmap", "sigmoid_focal"),
    "bce": (lambda x, t, **k: dafl.bce_with_logits(x, t, **k), "hard", "bce_with_logits"),
    "mse": (lambda x, t, **k: dafl.mse(x, t, **k), "heatmap", "mse"),
    "mse_weights": (lambda x, t, **k: dafl.mse(x, t, weights=WEIGHTS.numpy(), **k),
                    "heatmap", "mse"),
    "softmax_focal": (lambda x, t, **k: dafl.softmax_focal(x, t, **k), "labels",
                      "softmax_focal"),
    "keypoints": (lambda x, kp, **k: dafl.penalty_focal_keypoints(x, kp, **k), "keypoints",
                  "penalty_focal_keypoints"),
}


@pytest.mark.parametrize("name,target", [
    (name, target) for name, (_, kind, _) in NP_LOSSES.items()
    for target in (["float16", "float32"] if kind not in ("labels", "keypoints") else [None])])
def test_numpy_float16_in_place_and_the_float32_calls_bits(name, target, calls):
    fn, kind, entry = NP_LOSSES[name]
    x, y, hard, labels, keypoints = _np_data()
    t = {"heatmap": y, "hard": hard, "labels": labels, "keypoints": keypoints}[kind]
    if target is not None:
        t = t.astype(target)
    x16 = x.astype(np.float16)
    t32 = t.astype(np.float32) if kind not in ("labels", "keypoints") else t
    loss32, grad32, stats32 = fn(x16.astype(np.float32), t32, return_stats=True)
    seen = calls(entry)
    loss, grad, stats = fn(x16, t, return_stats=True)
    i, j, g = POSITIONS[entry]
    address = x16.__array_interface__["data"][0]
    assert seen[0][i] == (address, np.dtype(np.float16))
    if j is not None:
        assert seen[0][j] == (t.__array_interface__["data"][0], t.dtype)
    assert seen[0][g] == (grad.__array_interface__["data"][0], np.dtype(np.float16))
    assert stats.to_bytes() == stats32.to_bytes()
    assert grad.dtype == np.float16
    assert np.array_equal(grad.view(np.uint16), grad32.astype(np.float16).view(np.uint16))
    # the loss in the input's dtype, as every numpy loss: the float32 loss rounded
    assert np.asarray(loss).dtype == np.float16
    assert np.array_equal(np.asarray(loss).view(np.uint16),
                          np.asarray(loss32).astype(np.float16).view(np.uint16))


def test_numpy_float16_readonly_and_strided_take_one_copy_in_float16(calls):
    x, y, _, _, _ = _np_data()
    x16 = x.astype(np.float16)
    l0, g0 = dafl.penalty_focal(x16, y)
    seen = calls("penalty_focal")
    ro = x16.copy()
    ro.flags.writeable = False
    strided = np.asfortranarray(x16)
    for arr in (ro, strided):
        loss, grad = dafl.penalty_focal(arr, y)
        assert seen[-1][0][1] == np.dtype(np.float16)  # copied, not widened
        assert loss == l0 and np.array_equal(grad.view(np.uint16), g0.view(np.uint16))


def test_numpy_float64_keeps_one_copy_to_float32(calls):
    x, y, _, _, _ = _np_data()
    seen = calls("penalty_focal")
    loss, grad = dafl.penalty_focal(x.astype(np.float64), y)
    assert seen[0][0][1] == np.dtype(np.float32) and seen[0][3][1] == np.dtype(np.float32)
    assert grad.dtype == np.float64 and isinstance(loss, np.float64)


def test_numpy_bfloat16_of_ml_dtypes_is_refused_naming_the_argument():
    """numpy has no bfloat16; ml_dtypes' is not a numpy float and numpy exports no DLPack
    for it: refused with the argument's name (a torch tensor is read in place)."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x, y, _, _, _ = _np_data()
    with pytest.raises(TypeError, match="'input' must be a floating-point array"):
        dafl.penalty_focal(x.astype(ml_dtypes.bfloat16), y)


# ---- what the extension accepts ----------------------------------------------------------

def test_extension_dtype_errors_name_the_argument():
    x, y, _, labels, _ = _data()
    xb = x.to(torch.bfloat16)
    with pytest.raises(TypeError, match=r"'input' must be float32, bfloat16 or float16, "
                       r"got float64"):
        dafl._dafl.penalty_focal(x.double(), y)
    with pytest.raises(TypeError, match=r"'target' must be float32, bfloat16 or float16, "
                       r"got int32"):
        dafl._dafl.bce_with_logits(xb, torch.zeros(x.shape, dtype=torch.int32))
    with pytest.raises(TypeError, match=r"'loss' must be float32, got bfloat16"):
        dafl._dafl.mse(xb, y, torch.empty_like(xb), None, reduction=dafl._dafl.REDUCTION_NONE)
    with pytest.raises(TypeError, match=r"'grad' must be float32, bfloat16 or float16, "
                       r"got float64"):
        dafl._dafl.softmax_focal(xb, labels, None, torch.empty(x.shape, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"'logits' must be a floating-point tensor"):
        dt.penalty_focal_loss(x.to(torch.int16), y)
    with pytest.raises(TypeError, match=r"'input' must be a floating-point array"):
        dafl.penalty_focal(x.numpy().astype(np.int16), y.numpy())


def test_a_gradient_of_another_dtype_is_written_as_asked():
    """The extension takes each buffer's own dtype: a float32 gradient of bfloat16 logits
    is the float32 call's exactly; a float16 one the float32 one rounded."""
    x, y, _, _, _ = _data()
    xb = x.to(torch.bfloat16)
    g32 = torch.empty_like(x)
    dafl._dafl.penalty_focal(xb.float(), y, None, g32)
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        g = torch.empty(x.shape, dtype=dtype)
        dafl._dafl.penalty_focal(xb, y, None, g)
        assert_same_bits(g, g32.to(dtype), str(dtype))


@pytest.mark.skipif(not hasattr(torch._C, "_storage_Use_Count"),
                    reason=f"torch {torch.__version__} has no buffer cache")
def test_buffer_cache_keeps_half_gradients_apart(monkeypatch):
    from dafl import _buffers
    monkeypatch.setattr(_buffers, "MIN_BYTES", 0)
    fn, x, t = _case("centernet", torch.bfloat16)
    xh = x.clone().requires_grad_()
    fn(xh, t).backward()
    ptr = xh.grad.data_ptr()
    xh.grad = None
    fn(xh, t).backward()
    assert xh.grad.data_ptr() == ptr and xh.grad.dtype == torch.bfloat16
    x32 = x.float().requires_grad_()  # a float32 gradient of that size never reuses it
    fn(x32, t).backward()
    assert x32.grad.data_ptr() != ptr and xh.grad.dtype == torch.bfloat16
