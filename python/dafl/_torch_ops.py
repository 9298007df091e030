"""dafl's losses as PyTorch operators, and their autograd.

Each loss is one operator ``dafl::<name>(tensors..., parameters..., bool want_grad) ->
(Tensor loss, Tensor grad)``: a single fused C call gives the loss and, when want_grad,
d(loss)/d(input) (``grad``, in the input's dtype and layout; an empty tensor otherwise).

- torch >= 2.4: a ``torch.library`` custom operator with a fake kernel (shapes, dtypes and
  strides only: torch.compile traces it without running it), registered autograd and a
  vmap rule.  ``torch.compile(fullgraph=True)`` captures it as one node.
- torch 1.13 - 2.3: the same kernel and the same backward in a ``torch.autograd.Function``;
  on torch >= 2.4 a plain eager call takes that Function too (the operator's dispatch
  round trip costs more than the loss on small tensors), and anything that traces -
  torch.compile, export, make_fx, fake tensors, dispatch modes - gets the operator.

Autograd (both paths, one backward):

- first order, input: the stored fused gradient times the upstream gradient (when that
  is the number 1, as after ``loss.backward()``, the stored tensor itself: no pass over
  memory).  It is saved with ``save_for_backward``, so ``retain_graph=True`` works and,
  without it, autograd releases the saved tensor before accumulating, and ``.grad`` takes
  the tensor without a copy;
- a target or weight that requires grad, and every gradient of a double backward
  (``create_graph=True``): from the loss written in torch operations (dafl._reference),
  PyTorch's own derivative.  A one-time warning names that slower path.

Kernels: the C call.  float32, bfloat16 and float16 tensors are read in place, each
its own dtype (bfloat16 logits with float32 targets, for instance); the C library
computes in float32 on their exact values and writes the gradient in the input's dtype
(the float32 gradient rounded to nearest even): no widened copy, no float32 gradient.
The loss is float32.  The operators are on neither of autocast's lists: under autocast
they get their tensors as they are.  BCE's pos_weight tensor per class (or per image and
class) is read by the C call in the input's layout (see _class_layout).  float64 inputs
(and a pos_weight tensor of another shape, or with a negative or non-finite value) do not
reach the operator: LossOp.__call__ gives them dafl._reference's formula in the
input's dtype (exact, differentiable, unfused), with a one-time warning.
"""

import warnings

import torch

from ._losses import FLOAT32_MAX

from . import _dafl, _losses, _reference
from ._convert import TorchArrays, _dense

_T = TorchArrays()
_NONE = _dafl.REDUCTION_NONE
HAVE_CUSTOM_OPS = all(hasattr(torch.library, f) for f in
                      ("custom_op", "register_fake", "register_autograd", "register_vmap"))
_HALF = (torch.float16, torch.bfloat16)


def _for_reference(x):
    """The input as the formula in torch operations takes it: half precision widened to
    float32 (differentiably), float32 and float64 as they are."""
    return x.float() if x.dtype in _HALF else x

_warned = set()


def _warn_once(key, message):
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, stacklevel=4)


class LossOp:
    """One loss: its operator schema, its C call and its torch-operations formula.

    schema_args: the schema's arguments after the name (want_grad last, added here);
    tensors: indices of the Tensor arguments (the input first); c_call(*args) -> (loss,
    grad or None) for float32, bfloat16 and float16 inputs; reference(*args[:-1]) -> the loss in torch
    operations; pixel_loss: reduction "none" gives one value per pixel (class dim 1)."""

    def __init__(self, name, schema_args, tensors, c_call, reference, reduction_arg,
                 pixel_loss=False, needs_reference=None):
        self.name = name
        self.schema = f"{name}({schema_args}, bool want_grad) -> (Tensor, Tensor)"
        self.tensors = tensors
        self.c_call = c_call
        self.reference = reference
        self.reduction_arg = reduction_arg
        self.pixel_loss = pixel_loss
        self.needs_reference = needs_reference or (lambda args: False)
        self.op = None  # the torch.ops.dafl overload, once registered

    # ---- kernels ------------------------------------------------------------------

    def kernel(self, *args):
        """The CPU kernel: (loss, grad): a float32 loss, and the gradient the C call wrote
        in the input's dtype (float32, bfloat16, float16)."""
        loss, grad = self.c_call(*args)
        return loss, grad if args[-1] else args[0].new_empty((0,))

    def fake(self, *args):
        """Shapes, dtypes and strides only: the loss is float32, 0-d or, for reduction
        "none", laid out as the input (per pixel: C order); grad is
        torch.empty_like(input) - the input's dtype, bfloat16 and float16 included, and
        its layout -, or empty without want_grad."""
        input, want_grad = args[0], args[-1]
        dtype = torch.float32
        if args[self.reduction_arg] != _NONE:
            loss = input.new_empty((), dtype=dtype)
        elif self.pixel_loss:
            loss = input.new_empty((input.shape[0],) + tuple(input.shape[2:]), dtype=dtype)
        else:
            loss = torch.empty_like(input, dtype=dtype)
        grad = torch.empty_like(input) if want_grad else input.new_empty((0,))
        return loss, grad

    # ---- autograd -----------------------------------------------------------------

    def setup_context(self, ctx, inputs, output):
        # the tensors are saved (version-checked, released after a backward without
        # retain_graph); ctx keeps the parameters
        ctx.args = [None if isinstance(a, torch.Tensor) else a for a in inputs]
        ctx.save_for_backward(*(inputs[i] for i in self.tensors), output[1])
        ctx.mark_non_differentiable(output[1])
        ctx.set_materialize_grads(False)

    def backward(self, ctx, grad_loss, _grad_of_grad, needs=None):
        """Gradients for the operator's arguments (None for the non-tensor ones)."""
        needs = ctx.needs_input_grad if needs is None else needs
        results = [None] * len(ctx.args)
        if grad_loss is None:
            return tuple(results)
        *saved, grad = ctx.saved_tensors
        args = list(ctx.args)
        for i, t in zip(self.tensors, saved):
            args[i] = t
        wanted = [i for i in self.tensors if needs[i]]
        if torch.is_grad_enabled():
            # create_graph=True: the gradient must itself be differentiable.
            _warn_once((self.name, "double"), f"dafl::{self.name}: a backward with "
                       "create_graph=True takes the unfused path (the loss in torch "
                       "operations): exact, slower")
            exact = wanted
        else:
            # the input's gradient is the fused one, unless the call did not compute it
            # (want_grad false: a direct call of the operator on an input that requires
            # grad): then it comes from the exact path too, never silently missing
            fused = needs[0] and grad.shape == saved[0].shape
            exact = [i for i in wanted if i != 0 or not fused]
            if fused:
                results[0] = self._fused_input_grad(grad, grad_loss)
            if exact:
                _warn_once((self.name, "target"), f"dafl::{self.name}: the gradient of "
                           "a target or weight comes from the unfused path (the loss in "
                           "torch operations): exact, slower")
        if exact:
            for i, g in zip(exact, self._reference_grads(args, exact, grad_loss)):
                results[i] = g
        return tuple(results)

    def _fused_input_grad(self, grad, grad_loss):
        plain = type(grad_loss) is torch.Tensor and not _functorch_active()
        if plain and grad_loss.dim() and grad_loss.numel() and not any(grad_loss.stride()):
            # one number broadcast to the loss's shape (the backward of sum() or mean() of
            # a per-element loss): that number, so that the product reads no tensor of
            # upstream gradients (nor, for a half gradient, promotes to float32 and back)
            grad_loss = grad_loss.as_strided((), ())
        if plain and grad_loss.dim() == 0 and grad_loss.item() == 1.0:
            return grad  # loss.backward(), loss.sum().backward(): the fused gradient itself
        if grad_loss.dim() != 0 and self.pixel_loss:
            grad_loss = grad_loss.unsqueeze(1)
        return grad * grad_loss

    def _reference_grads(self, args, wanted, grad_loss):
        create_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            args = list(args)
            if not create_graph:
                for i in wanted:
                    args[i] = args[i].detach().requires_grad_()
            x = args[0]
            args[0] = _for_reference(x)
            loss = self.reference(*args[:-1])
            sources = [x if i == 0 else args[i] for i in wanted]
            return torch.autograd.grad(loss, sources, grad_loss.to(loss.dtype),
                                       create_graph=create_graph, allow_unused=True)

    # ---- vmap: one call per batch entry -------------------------------------------

    def vmap_rule(self, info, in_dims, *args):
        def entry(i):
            return [a.select(d, i) if d is not None else a for a, d in zip(args, in_dims)]
        outs = [self.op(*entry(i)) for i in range(info.batch_size)]
        return (torch.stack([o[0] for o in outs]), torch.stack([o[1] for o in outs])), (0, 0)

    # ---- calling ------------------------------------------------------------------

    def __call__(self, *args):
        """The loss (grad is kept by autograd); args as in the schema, want_grad last.
        float64 inputs, what needs_reference picks, and calls inside torch.func
        transforms (grad, vmap, jacrev...: they cannot see into the fused kernel's
        gradient) take the formula in torch operations instead: exact in the input's
        dtype, differentiable to every order, unfused."""
        if (args[0].dtype == torch.float64 or self.needs_reference(args)
                or _functorch_active()):
            _warn_once((self.name, "exact"), f"dafl::{self.name}: float64 input, a "
                       "torch.func transform or an argument the fused kernel does not take: "
                       "the unfused path (the loss in torch operations), exact, slower")
            return self.reference(_for_reference(args[0]), *args[1:-1])
        if self.op is not None and _traced(args[0]):
            return self.op(*args)[0]
        if torch.is_grad_enabled() and any(
                args[i] is not None and args[i].requires_grad for i in self.tensors):
            return _FusedFunction.apply(self, args, *(args[i] for i in self.tensors))[0]
        return self.c_call(*args)[0]


def _traced(input):
    """Whether a tracer sees this call (torch.compile, export, make_fx, a FakeTensor or
    any other tensor subclass or dispatch mode): then it must see the operator.  A plain
    eager call runs the same kernel and backward through _FusedFunction, without the
    dispatcher's round trip (measured in docs/python.md)."""
    return (type(input) is not torch.Tensor or torch.compiler.is_compiling()
            or torch._C._len_torch_dispatch_stack() > 0)


def _functorch_active():
    active = getattr(torch._C, "_are_functorch_transforms_active", None)
    return bool(active and active())


class _FusedFunction(torch.autograd.Function):
    """The operator's kernel and backward as an autograd.Function: torch < 2.4, and
    plain eager calls on torch >= 2.4 (see _traced).  apply(loss_op, args, *tensors):
    the operator's arguments, and its tensors again as arguments of their own (what
    autograd tracks; every argument of apply costs time on each call)."""

    @staticmethod
    def forward(ctx, loss_op, args, *tensors):
        loss, grad = loss_op.kernel(*args)
        loss_op.setup_context(ctx, args, (loss, grad))
        ctx.loss_op = loss_op
        return loss, grad

    @staticmethod
    def backward(ctx, grad_loss, grad_of_grad):
        loss_op = ctx.loss_op
        needs = [False] * len(ctx.args)
        for i, need in zip(loss_op.tensors, ctx.needs_input_grad[2:]):
            needs[i] = need
        grads = loss_op.backward(ctx, grad_loss, grad_of_grad, needs)
        return (None, None) + tuple(grads[i] for i in loss_op.tensors)


# ---- the five losses -------------------------------------------------------------------

def _elementwise_call(cfun, name):
    fn = "dafl::" + name

    def call(input, target, *params):
        *params, reduction, normalizer, grad_scale, trust, want_grad = params
        return cfun(input, target, params, reduction, normalizer, grad_scale,
                    _dafl.FLAG_TRUST_TARGETS if trust else 0, want_grad, fn)
    return call


def _penalty_c(input, target, params, reduction, normalizer, grad_scale, flags, want_grad,
               fn):
    alpha, beta, pos_weight, neg_weight, mode, clamp_eps, log_eps = params
    loss, grad, _ = _losses.run_elementwise(
        _T, _dafl.penalty_focal, fn, input, target, reduction, normalizer, grad_scale,
        want_grad, alpha=alpha, beta=beta, pos_weight=pos_weight, neg_weight=neg_weight,
        input_mode=mode, clamp_eps=clamp_eps, log_eps=log_eps, flags=flags)
    return loss, grad


def _sigmoid_c(input, target, params, reduction, normalizer, grad_scale, flags, want_grad,
               fn):
    gamma, alpha = params
    loss, grad, _ = _losses.run_elementwise(
        _T, _dafl.sigmoid_focal, fn, input, target, reduction, normalizer, grad_scale,
        want_grad, gamma=gamma, alpha=alpha, flags=flags)
    return loss, grad


def _c_strides(shape):
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return strides[::-1]


def _class_layout(input, target, pos_weight):
    """A pos_weight tensor as the C call takes it: (weights, channels, channel_stride), or
    None where it cannot (the formula in torch operations then).

    pos_weight broadcast to the input (aligned on the right, as PyTorch does) may vary
    along one dimension d of size C (per class: (C, 1, 1) on NCHW, (C,) on (N, C)), or along
    dimension 0 and one d (per image and class, (N, C, 1, 1)).  In a dense layout the index
    along d of element i (in memory order) is (i / stride_d) % C, so the C call reads any
    such layout with channel_stride = stride_d in the buffer it reads (the input's own
    strides where it reads the input in place, see TorchArrays.elementwise_operands;
    C order where it copies); per image and class also needs the images outermost
    (stride_0 = numel / N).  Its weights must be finite and >= 0 (PyTorch takes any)."""
    if pos_weight.dim() > input.dim() or input.numel() == 0:
        return None
    shape = (1,) * (input.dim() - pos_weight.dim()) + tuple(pos_weight.shape)
    varying = [d for d in range(input.dim()) if shape[d] != 1]
    if any(shape[d] != input.shape[d] for d in varying):
        return None  # pos_weight larger than the input along a dimension
    in_place = (input.is_contiguous() or (
        input.stride() == target.stride() and input.shape == target.shape
        and _dense(input)))
    strides = input.stride() if in_place else _c_strides(input.shape)
    if len(varying) == 1:
        d, images = varying[0], 1
    elif len(varying) == 2 and varying[0] == 0 and strides[0] * input.shape[0] == input.numel():
        d, images = varying[1], input.shape[0]
    else:
        return None
    classes = input.shape[d]
    w = pos_weight.detach().reshape(images * classes)
    if w.dtype != torch.float32:
        w = w.float()
    lo, hi = w.min().item(), w.max().item()  # NaN propagates into both
    if not (lo >= 0 and hi <= FLOAT32_MAX):
        return None
    return w, classes, strides[d]


def _bce_c(input, target, params, reduction, normalizer, grad_scale, flags, want_grad, fn):
    pos_weight, pos_weight_tensor = params
    extra = {}
    if pos_weight_tensor is not None:
        layout = _class_layout(input, target, pos_weight_tensor)
        if layout is None:  # the operator called directly with a pos_weight it cannot take
            return _bce_reference_call(input, target, pos_weight_tensor, reduction,
                                       normalizer, grad_scale, want_grad)
        w, classes, stride = layout
        extra = dict(pos_weights=w, channels=classes, channel_stride=stride)
    loss, grad, _ = _losses.run_elementwise(
        _T, _dafl.bce_with_logits, fn, input, target, reduction, normalizer, grad_scale,
        want_grad, pos_weight=pos_weight, flags=flags, **extra)
    return loss, grad


def _bce_reference_call(input, target, pos_weight_tensor, reduction, normalizer, grad_scale,
                        want_grad):
    """The kernel's (loss, grad) from the formula in torch operations: the float32 loss of
    _reference.bce_with_logits, and the gradient in the input's dtype and layout from
    the derivative, written out rather than taken by autograd (an operator's kernel runs
    below autograd's dispatch key, where no graph is recorded):

        dl/dx = (1 - y) * sigmoid(x) - pos_weight * y * sigmoid(-x)

    times grad_scale over the reduction's divisor (_reference._divisor)."""
    x = _for_reference(input.detach())
    y = target.detach().to(x.dtype)
    pw = pos_weight_tensor.detach().to(x.dtype)
    loss = _reference.bce_with_logits(x, y, 1.0, reduction, normalizer, grad_scale, pw)
    grad = None
    if want_grad:
        divisor = _reference._divisor(x.numel(), reduction, normalizer, y == 1)
        d = (1 - y) * torch.sigmoid(x) - pw * y * torch.sigmoid(-x)
        grad = torch.empty_like(input)
        if x.numel():  # (an empty mean divides by 0)
            grad.copy_(d * (grad_scale / divisor))
    return loss.detach().float(), grad


def _mse_c(input, target, weights, reduction, normalizer, grad_scale, trust, want_grad):
    loss, grad, _ = _losses.run_mse(
        _T, "dafl::mse", input, target, weights, reduction, normalizer, grad_scale,
        _dafl.FLAG_TRUST_TARGETS if trust else 0, want_grad)
    return loss, grad


def _softmax_c(logits, labels, class_weights, gamma, ignore_index, reduction, normalizer,
               grad_scale, want_grad):
    # channels_last (N, C, H, W) is (N, H, W, C) in memory: read in place.
    nhwc = (logits.dim() == 4 and not logits.is_contiguous()
            and logits.is_contiguous(memory_format=torch.channels_last))
    x = logits.permute(0, 2, 3, 1) if nhwc else logits
    loss, grad, _ = _losses.run_softmax_focal(
        _T, "dafl::softmax_focal", x, labels, class_weights, gamma, ignore_index, reduction,
        normalizer, grad_scale, nhwc, want_grad)
    if grad is not None and nhwc:
        grad = grad.permute(0, 3, 1, 2)  # back to (N, C, H, W), channels_last strides
    return loss, grad


_ELEMENTWISE_TAIL = "int reduction, float normalizer, float grad_scale, bool trust_targets"

penalty_focal = LossOp(
    "penalty_focal",
    "Tensor input, Tensor target, float alpha, float beta, float pos_weight, "
    "float neg_weight, int input_mode, float clamp_eps, float log_eps, " + _ELEMENTWISE_TAIL,
    (0, 1), _elementwise_call(_penalty_c, "penalty_focal"),
    lambda *args: _reference.penalty_focal(*args[:-1]), 9)

sigmoid_focal = LossOp(
    "sigmoid_focal", "Tensor input, Tensor target, float gamma, float alpha, "
    + _ELEMENTWISE_TAIL, (0, 1), _elementwise_call(_sigmoid_c, "sigmoid_focal"),
    lambda *args: _reference.sigmoid_focal(*args[:-1]), 4)

bce_with_logits = LossOp(
    "bce_with_logits", "Tensor input, Tensor target, float pos_weight, "
    "Tensor? pos_weight_tensor, " + _ELEMENTWISE_TAIL, (0, 1, 3),
    _elementwise_call(_bce_c, "bce_with_logits"),
    lambda x, y, pw, pwt, red, norm, gs, trust: _reference.bce_with_logits(
        x, y, pw, red, norm, gs, pwt), 4,
    # a pos_weight tensor the C call cannot take (see _class_layout): PyTorch's formula
    needs_reference=lambda args: (args[3] is not None
                                  and _class_layout(args[0], args[1], args[3]) is None))

mse = LossOp(
    "mse", "Tensor input, Tensor target, Tensor? weights, " + _ELEMENTWISE_TAIL,
    (0, 1, 2), _mse_c,
    lambda x, y, w, red, norm, gs, trust: _reference.mse(x, y, w, red, norm, gs), 3)

softmax_focal = LossOp(
    "softmax_focal", "Tensor logits, Tensor labels, Tensor? class_weights, float gamma, "
    "int ignore_index, int reduction, float normalizer, float grad_scale", (0, 1, 2),
    _softmax_c, _reference.softmax_focal, 5, pixel_loss=True)

LOSSES = (penalty_focal, sigmoid_focal, bce_with_logits, mse, softmax_focal)


def register(losses, kind="DEF"):
    """Each LossOp as the custom operator dafl::<name> (torch >= 2.4): its schema, CPU
    kernel, fake kernel, autograd and vmap rule.  kind "FRAGMENT" adds to the namespace
    another module defined."""
    lib = torch.library.Library("dafl", kind)
    for loss in losses:
        lib.define(loss.schema)
        qualname = "dafl::" + loss.name
        lib.impl(loss.name, loss.kernel, "CPU")
        torch.library.register_fake(qualname, loss.fake, lib=lib)
        torch.library.register_autograd(qualname, loss.backward,
                                        setup_context=loss.setup_context, lib=lib)
        torch.library.register_vmap(qualname, loss.vmap_rule, lib=lib)
        loss.op = getattr(torch.ops.dafl, loss.name).default
    return lib


_LIBRARY = register(LOSSES) if HAVE_CUSTOM_OPS else None
