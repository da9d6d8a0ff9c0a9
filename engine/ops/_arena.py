"""Layer outputs in memory that earlier runs have let go of.

The executor keeps every layer's output, so each run allocates them afresh. Arrays this large
come straight from the kernel (mmap) and go back to it when freed, so every run pays a page
fault per 4 KiB on first touch: on the 2-core dev VM a ReLU on a 51 MB activation took 66 ms
that way and 9 ms in memory touched before. onnxruntime keeps an arena for the same reason.

So the kernels ask ``empty`` for their outputs. A buffer is handed out again only when nothing
outside this module refers to it any more: every array made from a buffer is a view whose
``.base`` is that buffer, so its reference count says whether any result still holds it. Idle
buffers are kept up to ``MAX_IDLE_BYTES``, least recently used dropped first; small arrays go to
NumPy's allocator, which reuses them well by itself.
"""

from __future__ import annotations

import math
import sys
import threading

import numpy as np

__all__ = ["MAX_IDLE_BYTES", "empty", "held_bytes", "release_idle"]

# Below this, malloc's own free lists serve as well and no page faults are involved.
MIN_BYTES = 1 << 20
# Idle memory kept for later runs: the VGG block's outputs at batch 4 (320 MB) fit; a switch to a
# smaller model leaves at most this much behind.
MAX_IDLE_BYTES = 512 << 20

_lock = threading.Lock()
# Least recently handed out first. Each buffer is a 1-D uint8 array that owns its memory.
_buffers: list[np.ndarray] = []


def _refs(index: int) -> int:
    return sys.getrefcount(_buffers[index])


def _calibrate() -> int:
    """References an idle buffer has, as ``_refs`` sees it (the list slot and the call's own)."""
    _buffers.append(np.empty(1, dtype=np.uint8))
    count = _refs(len(_buffers) - 1)
    _buffers.pop()
    return count


_IDLE_REFS = _calibrate()


def empty(shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
    """An uninitialised C-contiguous array, in a reused buffer when one of its size is idle."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < MIN_BYTES:
        return np.empty(shape, dtype=dtype)
    with _lock:
        for i in range(len(_buffers) - 1, -1, -1):
            if _buffers[i].nbytes == nbytes and _refs(i) == _IDLE_REFS:
                buffer = _buffers.pop(i)
                break
        else:
            buffer = np.empty(nbytes, dtype=np.uint8)
        _buffers.append(buffer)
        array = buffer.view(dtype).reshape(shape)
        _trim()
    return array


def _trim() -> None:
    """Drop the least recently used idle buffers beyond MAX_IDLE_BYTES (lock held)."""
    idle = [i for i in range(len(_buffers)) if _refs(i) == _IDLE_REFS]
    excess = sum(_buffers[i].nbytes for i in idle) - MAX_IDLE_BYTES
    drop = set()
    for i in idle:
        if excess <= 0:
            break
        drop.add(i)
        excess -= _buffers[i].nbytes
    if drop:
        _buffers[:] = [b for i, b in enumerate(_buffers) if i not in drop]


def held_bytes() -> tuple[int, int]:
    """(bytes of buffers some array still uses, bytes of idle buffers kept for reuse)."""
    with _lock:
        idle = sum(_buffers[i].nbytes for i in range(len(_buffers)) if _refs(i) == _IDLE_REFS)
        return sum(b.nbytes for b in _buffers) - idle, idle


def release_idle() -> None:
    """Give every idle buffer back to the allocator (and so to the system)."""
    with _lock:
        _buffers[:] = [_buffers[i] for i in range(len(_buffers)) if _refs(i) != _IDLE_REFS]
