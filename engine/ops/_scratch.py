"""Per-thread scratch buffers, reused across kernel calls.

The blocked kernels work in buffers of a few hundred KiB to a few MiB (patch
matrices, padded planes). Allocating them per call costs more than small
layers' arithmetic: fresh pages fault in and ``np.zeros`` clears them, about
1 ms per run of the 1x3x128x128 demo model. So each thread keeps its buffers
by key, least recently used dropped beyond ``_MAX_BYTES``.

Kernels rely on cells they never write keeping their first value (padding
zeros, a bias row of ones), so a key must capture everything that decides
those cells: the geometry, the fill value and the buffer shapes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np

__all__ = ["scratch"]

# Per thread (the caller and each pool thread): enough for a few layers'
# block buffers at once, small beside the layer outputs the executor keeps.
_MAX_BYTES = 32 << 20

_local = threading.local()


def scratch(key: Hashable, make: Callable[[], tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """The calling thread's buffers for ``key``, made by ``make()`` on first use."""
    cache: OrderedDict[Hashable, tuple[np.ndarray, ...]] | None = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = OrderedDict()
    buffers = cache.get(key)
    if buffers is not None:
        cache.move_to_end(key)
        return buffers
    buffers = cache[key] = make()
    total = sum(a.nbytes for entry in cache.values() for a in entry)
    while total > _MAX_BYTES and len(cache) > 1:
        _, dropped = cache.popitem(last=False)
        total -= sum(a.nbytes for a in dropped)
    return buffers
