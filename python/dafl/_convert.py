"""How arrays reach dafl._dafl, for numpy and for torch: one object per array library.

The C extension takes exactly float32 (int32 labels, uint8 masks), C-contiguous, on the
CPU, and reads it in place through DLPack.  Everything else is converted here, with one
documented copy:

- another float dtype (float16, bfloat16, float64) is rounded to float32 (float64
  inputs therefore lose precision: dafl computes in float32), and the gradient is
  rounded back to the input's dtype;
- another layout (a transposed or strided view, channels_last, an expanded tensor) is
  copied into C order, and the gradient is given back in the input's layout (torch:
  ``torch.empty_like(input)``, which keeps channels_last);
- a read-only numpy array is copied (numpy cannot export one through DLPack).

Refused: a tensor on another device (ValueError), a non-float input or target, a
non-integer label array (TypeError), naming the argument.
"""

import numpy as np


class NumpyArrays:
    """numpy arrays in and out; losses come back as numpy float32 scalars."""

    name = "numpy"

    @staticmethod
    def floats(a, what, fn):
        a = np.asarray(a)
        if a.dtype.kind != "f":
            raise TypeError(f"{fn}: '{what}' must be a floating-point array, got {a.dtype}")
        if a.dtype == np.float32 and a.flags.c_contiguous and a.flags.writeable:
            return a
        return np.array(a, dtype=np.float32, order="C", copy=True)

    @staticmethod
    def integers(a, what, fn):
        a = np.asarray(a)
        if a.dtype.kind not in "iu":
            raise TypeError(f"{fn}: '{what}' must be an integer array, got {a.dtype}")
        if a.dtype != np.int32:
            _check_int32_range(a.min() if a.size else 0, a.max() if a.size else 0, what, fn)
        if a.dtype == np.int32 and a.flags.c_contiguous and a.flags.writeable:
            return a
        return np.array(a, dtype=np.int32, order="C", copy=True)

    @staticmethod
    def empty(shape):
        return np.empty(shape, dtype=np.float32)

    @staticmethod
    def like_input(g, original):
        """The float32 C-order result g in the dtype of the caller's array."""
        original = np.asarray(original)
        return g if original.dtype == np.float32 else g.astype(original.dtype)

    @staticmethod
    def cast_like(a, original):
        """a in the dtype of the caller's array (a new shape: no layout to keep)."""
        dtype = np.asarray(original).dtype
        return a if dtype == np.float32 else a.astype(dtype)

    @staticmethod
    def scalar(value, original):
        return np.asarray(original).dtype.type(np.float32(value))


def _check_int32_range(lo, hi, what, fn):
    if lo < -2**31 or hi >= 2**31:
        raise ValueError(f"{fn}: '{what}' has values outside the int32 range")


class TorchArrays:
    """torch tensors in and out (CPU only); losses come back as 0-d float32 tensors."""

    name = "torch"

    def __init__(self):
        import torch
        self.torch = torch

    def _tensor(self, t, what, fn):
        if not isinstance(t, self.torch.Tensor):
            raise TypeError(f"{fn}: '{what}' must be a torch.Tensor, not {type(t).__name__}")
        if t.device.type != "cpu":
            raise ValueError(f"{fn}: '{what}' is on {t.device}; dafl computes on the CPU "
                             "(move it with .cpu())")
        return t.detach()

    def floats(self, t, what, fn):
        t = self._tensor(t, what, fn)
        if not t.is_floating_point():
            raise TypeError(f"{fn}: '{what}' must be a floating-point tensor, got {t.dtype}")
        if t.dtype != self.torch.float32:
            return t.to(self.torch.float32, memory_format=self.torch.contiguous_format)
        return t if t.is_contiguous() else t.contiguous()

    def integers(self, t, what, fn):
        t = self._tensor(t, what, fn)
        if t.is_floating_point() or t.is_complex() or t.dtype == self.torch.bool:
            raise TypeError(f"{fn}: '{what}' must be an integer (class index) tensor, "
                            f"got {t.dtype}")
        if t.dtype != self.torch.int32:
            if t.numel():
                _check_int32_range(int(t.min()), int(t.max()), what, fn)
            return t.to(self.torch.int32, memory_format=self.torch.contiguous_format)
        return t if t.is_contiguous() else t.contiguous()

    def empty(self, shape):
        return self.torch.empty(shape, dtype=self.torch.float32)

    def like_input(self, g, original):
        """The float32 C-order result g in the dtype and layout of the caller's tensor."""
        if original.dtype == self.torch.float32 and original.is_contiguous():
            return g
        out = self.torch.empty_like(original, memory_format=self.torch.preserve_format)
        out.copy_(g.view(original.shape))
        return out

    def cast_like(self, t, original):
        """t in the dtype of the caller's tensor (a new shape: no layout to keep)."""
        return t if t.dtype == original.dtype else t.to(original.dtype)

    def scalar(self, value, original):
        return self.torch.tensor(value, dtype=self.torch.float32).to(original.dtype)
