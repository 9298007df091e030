"""Output buffers that dafl.torch takes back once nothing references them.

A fresh 42 MB gradient from glibc's allocator is a fresh mmap: every one of its pages
faults on first write (about 10,000 minor faults, tens of milliseconds, per call at
8x80x128x128).  PyTorch's CPU allocator keeps nothing, so each step would pay that again.
This cache keeps, per (shape, strides, dtype), a few of the buffers of 1 MiB and more that dafl
handed out - to autograd as a gradient, or as a scratch buffer - and reuses one only when
nothing else holds it any more: the tensor handed out is dead (a weak reference to it is gone: after
``.grad = None``, ``zero_grad()``, or the end of a backward that consumed it) and its
storage has no other owner (no view of it survives; ``torch._C._storage_Use_Count``).
A buffer still referenced is never reused.

Bounded (MAX_ENTRIES buffers per shape, MAX_BYTES in all, the least recently used shape
dropped first), per process (a forked child starts empty), thread-safe.  Off with
``dafl.torch.set_buffer_cache(False)`` or ``DAFL_TORCH_BUFFER_CACHE=0``; torch without
``_storage_Use_Count`` (before 2.0) never caches.
"""

import collections
import math
import os
import threading
import weakref

import torch

MAX_ENTRIES = 2           # per (shape, strides, dtype): a gradient in use and the next one
MAX_BYTES = 1 << 30       # 1 GiB in all
MIN_BYTES = 1 << 20       # below 1 MiB glibc's heap serves a buffer with no fresh mmap:
                          # plain torch.empty_strided, without the cache's bookkeeping
_use_count = getattr(torch._C, "_storage_Use_Count", None)


def _itemsize(dtype):
    """Bytes per element (torch.dtype.itemsize is torch >= 2.1's)."""
    return getattr(dtype, "itemsize", None) or torch.empty(0, dtype=dtype).element_size()


class BufferCache:
    def __init__(self):
        self._lock = threading.Lock()
        self._entries = collections.OrderedDict()  # key -> [[weakref, storage], ...]
        self._bytes = 0
        self.enabled = (_use_count is not None
                        and os.environ.get("DAFL_TORCH_BUFFER_CACHE", "1") != "0")
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self.clear)

    def clear(self):
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def empty(self, shape, strides, dtype=torch.float32):
        """An uninitialized tensor of this shape, these strides and this dtype (float32, or
        a gradient's bfloat16 / float16)."""
        if not self.enabled or math.prod(shape) * _itemsize(dtype) < MIN_BYTES:
            return torch.empty_strided(shape, strides, dtype=dtype)
        key = (tuple(shape), tuple(strides), dtype)
        with self._lock:
            entries = self._entries.get(key)
            if entries is not None:
                self._entries.move_to_end(key)
                for entry in entries:
                    ref, storage = entry
                    if ref() is None and _use_count(storage._cdata) == 1:
                        t = torch.empty(0, dtype=dtype).set_(storage, 0, shape, strides)
                        entry[0] = weakref.ref(t)
                        return t
            t = torch.empty_strided(shape, strides, dtype=dtype)
            self._remember(key, t)
            return t

    def _remember(self, key, t):
        size = t.untyped_storage().nbytes()
        if size > MAX_BYTES:
            return
        entries = self._entries.setdefault(key, [])
        if len(entries) >= MAX_ENTRIES:
            return
        entries.append([weakref.ref(t), t.untyped_storage()])
        self._bytes += size
        while self._bytes > MAX_BYTES and len(self._entries) > 1:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= sum(storage.nbytes() for _, storage in dropped)


CACHE = BufferCache()
