"""How arrays reach dafl._dafl, for numpy and for torch: one object per array library.

The C extension reads C-contiguous CPU arrays in place through DLPack: a loss's operands
(input or logits, target, and the gradient it writes) as float32, bfloat16 or float16,
each its own dtype; everything else as float32 (weights, per-element losses, heatmaps),
int32 (labels) or uint8 (masks).  libdafl reads bfloat16 and float16 elements
themselves, computes in float32 on their exact values and writes the gradient in the
input's dtype (each element the float32 gradient rounded to nearest even): no widened
copy, no float32 gradient.  Everything else is converted here, with one documented copy:

- a float64 (or longer) operand is rounded to float32 (float64 inputs therefore lose
  precision: dafl computes in float32), and the gradient comes back as float64 (numpy;
  dafl.torch gives float64 tensors the formula in torch operations instead);
- another layout (a transposed or strided view, channels_last, an expanded tensor) is
  copied into C order, and the gradient is given back in the input's layout (torch:
  ``torch.empty_like(input)``, which keeps channels_last) - except that, with torch, the
  element-wise losses read logits and target that share their strides and are dense
  (channels_last, any permutation) in place and write the gradient in that layout (MSE
  with weights per channel too, when the images are outermost: the C call takes the
  channels' stride);
- torch's output and scratch buffers come from dafl._buffers' cache (no fresh mmap, no
  page faults, in steady state);
- torch: the loss is float32 whatever the input's dtype (dafl.torch casts it to the
  input's dtype outside autocast, as PyTorch's losses return);
- a read-only numpy array is copied (numpy cannot export one through DLPack).

numpy has float16 but no bfloat16: float16 arrays are read in place.  ml_dtypes'
bfloat16 is not a numpy float (numpy exports no DLPack for it) and is refused, naming the
argument: pass a torch tensor, or float32.

Refused: a tensor on another device (ValueError), a non-float input or target, a
non-integer label array (TypeError), naming the argument.
"""

import numpy as np

# The float dtypes a loss reads in place (beside float32, which every array may be).
_NUMPY_HALF = (np.dtype(np.float16),)


class NumpyArrays:
    """numpy arrays in and out; losses come back as numpy float32 scalars."""

    name = "numpy"

    @staticmethod
    def _float_array(a, what, fn):
        a = np.asarray(a)
        if a.dtype.kind != "f":
            raise TypeError(f"{fn}: '{what}' must be a floating-point array (float32, "
                            f"float16 or float64), got {a.dtype}")
        return a

    @staticmethod
    def floats(a, what, fn):
        """A float32 C-contiguous array (weights, a target to count): as it is, or one
        copy."""
        a = NumpyArrays._float_array(a, what, fn)
        if a.dtype == np.float32 and a.flags.c_contiguous and a.flags.writeable:
            return a
        return np.array(a, dtype=np.float32, order="C", copy=True)

    @staticmethod
    def operand(a, what, fn):
        """A loss's float operand (input or logits, target): float32 and float16 as they
        are (C-contiguous and writable: read in place; otherwise one copy in C order, of
        the same dtype); float64 rounded to float32 (one copy)."""
        a = NumpyArrays._float_array(a, what, fn)
        if a.dtype == np.float32 or a.dtype in _NUMPY_HALF:
            if a.flags.c_contiguous and a.flags.writeable:
                return a
            return np.array(a, order="C", copy=True)
        return np.array(a, dtype=np.float32, order="C", copy=True)

    @staticmethod
    def _integer_array(a, what, fn):
        a = np.asarray(a)
        if a.dtype.kind not in "iu":
            raise TypeError(f"{fn}: '{what}' must be an integer array, got {a.dtype}")
        return a

    @staticmethod
    def integers(a, what, fn):
        a = NumpyArrays._integer_array(a, what, fn)
        if a.dtype != np.int32:
            _check_int32_range(a.min() if a.size else 0, a.max() if a.size else 0, what, fn)
        if a.dtype == np.int32 and a.flags.c_contiguous and a.flags.writeable:
            return a
        return np.array(a, dtype=np.int32, order="C", copy=True)

    @staticmethod
    def empty(shape, dtype=np.float32):
        return np.empty(shape, dtype=dtype)

    @staticmethod
    def elementwise_operands(input, target, fn):
        """(x, y, layout): C-order arrays, each float32 or float16 (see operand)."""
        return (NumpyArrays.operand(input, "input", fn),
                NumpyArrays.operand(target, "target", fn), None)

    @staticmethod
    def channel_operands(input, target, fn):
        """(x, y, layout, order) for MSE with weights: C order (see operand); order None."""
        return (NumpyArrays.operand(input, "input", fn),
                NumpyArrays.operand(target, "target", fn), None, None)

    @staticmethod
    def permuted(a, order):
        return a

    @staticmethod
    def output(layout, shape, dtype=np.float32):
        return np.empty(shape, dtype=dtype)

    @staticmethod
    def c_view(a):
        return a

    @staticmethod
    def remap_label(a, old, new, what, fn):
        """Labels with the value ``old`` (outside int32) become ``new`` (int64)."""
        a = NumpyArrays._integer_array(a, what, fn)
        if np.any(a == new):
            raise ValueError(f"{fn}: '{what}' holds {new}, which an 'ignore_index' outside "
                             "int32 cannot be told apart from")
        return np.where(a == old, np.int64(new), a.astype(np.int64))

    @staticmethod
    def any_not_equal(a, value):
        return bool(np.any(a != value))

    @staticmethod
    def like_input(g, original):
        """The C-order result g (float32, or the gradient in the operand's dtype) in the
        dtype of the caller's array: as it is when it has it."""
        dtype = np.asarray(original).dtype
        return g if g.dtype == dtype else g.astype(dtype)

    @staticmethod
    def loss_like(loss, original):
        """The per-element loss in the dtype of the caller's array."""
        return NumpyArrays.like_input(loss, original)

    @staticmethod
    def pixel_loss(a, original):
        """A per-pixel loss (softmax focal) in the dtype of the caller's array."""
        dtype = np.asarray(original).dtype
        return a if dtype == np.float32 else a.astype(dtype)

    @staticmethod
    def scalar(value, original):
        return np.asarray(original).dtype.type(np.float32(value))


def _dense(t):
    """Whether the tensor's elements fill its memory span with no gap and no overlap
    (some permutation of C order: what torch.empty_like keeps)."""
    expected = 1
    for stride, size in sorted((st, n) for st, n in zip(t.stride(), t.shape) if n != 1):
        if stride != expected:
            return False
        expected *= size
    return True


def _check_int32_range(lo, hi, what, fn):
    if lo < -2**31 or hi >= 2**31:
        raise ValueError(f"{fn}: '{what}' has values outside the int32 range")


class TorchArrays:
    """torch tensors in and out (CPU only); losses come back as 0-d float32 tensors."""

    name = "torch"

    def __init__(self):
        import torch
        from ._buffers import CACHE
        self.torch = torch
        self.cache = CACHE
        # what a loss reads in place and writes its gradient in
        self.in_place = (torch.float32, torch.bfloat16, torch.float16)

    def check(self, t, what, fn):
        """A CPU tensor, or TypeError / ValueError naming the argument."""
        if not isinstance(t, self.torch.Tensor):
            raise TypeError(f"{fn}: '{what}' must be a torch.Tensor, not {type(t).__name__}")
        if not t.is_cpu:
            raise ValueError(f"{fn}: '{what}' is on {t.device}; dafl computes on the CPU "
                             "(move it with .cpu())")

    def _tensor(self, t, what, fn):
        self.check(t, what, fn)
        return t.detach()

    def floats(self, t, what, fn):
        return self._floats(self._tensor(t, what, fn), what, fn)

    def _floats(self, t, what, fn):
        """floats() of a tensor _tensor() has already checked and detached: float32
        C-contiguous, as it is or one copy (weights)."""
        if not t.is_floating_point():
            raise TypeError(f"{fn}: '{what}' must be a floating-point tensor, got {t.dtype}")
        if t.dtype == self.torch.float32 and t.is_contiguous():
            return t
        out = self.empty(tuple(t.shape))  # one copy, into a reused buffer
        out.copy_(t)
        return out

    def operand(self, t, what, fn):
        return self._operand(self._tensor(t, what, fn), what, fn)

    def _operand(self, t, what, fn):
        """A loss's float operand (input or logits, target), checked and detached:
        float32, bfloat16 and float16 contiguous as they are (read in place); in another
        layout one copy in C order, of the same dtype; float64 rounded to float32 (one
        copy)."""
        if not t.is_floating_point():
            raise TypeError(f"{fn}: '{what}' must be a floating-point tensor (float32, "
                            f"bfloat16, float16 or float64), got {t.dtype}")
        if t.dtype in self.in_place:
            if t.is_contiguous():
                return t
            out = self.empty(tuple(t.shape), t.dtype)  # one copy, into a reused buffer
        else:
            out = self.empty(tuple(t.shape))
        out.copy_(t)
        return out

    def elementwise_operands(self, input, target, fn):
        """(x, y, layout) for an element-wise loss.  Logits and target that share their
        strides and are dense (channels_last, any permutation) are read in place as 1-D
        views in memory order, and layout is the input: outputs are then made with its
        strides (the sums are exact, so the order of the elements changes no bit).
        Otherwise x, y are C order (one copy; see _operand) and layout is None.  Each
        keeps its dtype (float32, bfloat16, float16): a bfloat16 input with a float32
        target is read as it is."""
        x, y = self._tensor(input, "input", fn), self._tensor(target, "target", fn)
        if (not x.is_contiguous() and x.stride() == y.stride() and x.shape == y.shape
                and _dense(x)):
            n = x.numel()
            return (self._operand(x.as_strided((n,), (1,)), "input", fn),
                    self._operand(y.as_strided((n,), (1,)), "target", fn), x)
        return self._operand(x, "input", fn), self._operand(y, "target", fn), None

    def channel_operands(self, input, target, fn):
        """(x, y, layout, order) for MSE with weights per channel: input and target
        (N, C, ...) that share their strides and are dense with the images outermost
        (channels_last, any such permutation) are read in place.  order is then the
        permutation of the dimensions into memory order (the images first):
        x and y are returned permuted so (views, C-contiguous), layout is the input (the
        outputs get its strides; ``permuted(output, order)`` is what the C call writes),
        and the C call finds the channels at ``order.index(1)`` (the dimensions after it
        in memory are its channel stride).  Otherwise x, y are C order (one copy, see _operand) and layout, order are None."""
        x, y = self._tensor(input, "input", fn), self._tensor(target, "target", fn)
        if (x.dim() >= 2 and not x.is_contiguous() and x.stride() == y.stride()
                and x.shape == y.shape and _dense(x)):
            rest = sorted(range(1, x.dim()), key=lambda d: (-x.stride(d), d))
            order = [0] + rest
            xp, yp = x.permute(order), y.permute(order)
            if xp.is_contiguous():  # the images outermost
                return (self._operand(xp, "input", fn), self._operand(yp, "target", fn),
                        x, order)
        return self._operand(x, "input", fn), self._operand(y, "target", fn), None, None

    @staticmethod
    def permuted(t, order):
        """A buffer in memory order for the C call (see channel_operands)."""
        return t if t is None or order is None else t.permute(order)

    def output(self, layout, shape, dtype=None):
        """An output buffer of ``dtype`` (float32 by default; a gradient: the operand's):
        C order, or the strides of the input read in place."""
        dtype = self.torch.float32 if dtype is None else dtype
        if layout is None:
            return self.empty(shape, dtype)
        return self.cache.empty(tuple(layout.shape), layout.stride(), dtype)

    @staticmethod
    def c_view(t):
        """What the C call writes: the buffer itself, or its 1-D view in memory order."""
        if t is None or t.is_contiguous():
            return t
        return t.as_strided((t.numel(),), (1,))

    def _integer_tensor(self, t, what, fn):
        t = self._tensor(t, what, fn)
        if t.is_floating_point() or t.is_complex() or t.dtype == self.torch.bool:
            raise TypeError(f"{fn}: '{what}' must be an integer (class index) tensor, "
                            f"got {t.dtype}")
        return t

    def integers(self, t, what, fn):
        t = self._integer_tensor(t, what, fn)
        if t.dtype != self.torch.int32:
            if t.numel():
                _check_int32_range(int(t.min()), int(t.max()), what, fn)
            return t.to(self.torch.int32, memory_format=self.torch.contiguous_format)
        return t if t.is_contiguous() else t.contiguous()

    def empty(self, shape, dtype=None):
        """A C-order buffer of ``dtype`` (float32 by default), from the buffer cache
        (dafl._buffers)."""
        strides, step = [], 1
        for n in reversed(shape):
            strides.append(step)
            step *= max(n, 1)
        return self.cache.empty(shape, strides[::-1],
                                self.torch.float32 if dtype is None else dtype)

    def remap_label(self, t, old, new, what, fn):
        """Labels with the value ``old`` (outside int32) become ``new`` (int64)."""
        t = self._integer_tensor(t, what, fn).long()
        if bool((t == new).any()):
            raise ValueError(f"{fn}: '{what}' holds {new}, which an 'ignore_index' outside "
                             "int32 cannot be told apart from")
        return self.torch.where(t == old, self.torch.full_like(t, new), t)

    def any_not_equal(self, t, value):
        return bool((t != value).any())

    def like_input(self, g, original, dtype=None):
        """The result g (the gradient, in the operand's dtype; a float32 loss) in the
        layout of the caller's tensor and in its dtype (or ``dtype``): what
        torch.empty_like(original) gives, as the fake kernels of dafl._torch_ops promise.
        g itself when it is that already (a gradient the C call wrote in place); one
        copy otherwise (another layout, a float64 input)."""
        dtype = original.dtype if dtype is None else dtype
        if g.dtype == dtype and (
                g.stride() == original.stride()
                or (g.is_contiguous() and (original.is_contiguous() or not _dense(original)))):
            return g  # already what empty_like(original) would be
        out = self.torch.empty_like(original, dtype=dtype,
                                    memory_format=self.torch.preserve_format)
        out.copy_(g.view(original.shape))
        return out

    def loss_like(self, loss, original):
        """The per-element loss: float32 (the loss of a dafl.torch op is float32 for
        every input dtype; dafl.torch casts it), in the layout of the caller's tensor."""
        return self.like_input(loss, original, self.torch.float32)

    @staticmethod
    def pixel_loss(t, original):
        """A per-pixel loss (softmax focal): float32, C order."""
        return t

    def scalar(self, value, original):
        return self.torch.scalar_tensor(value, dtype=self.torch.float32)
