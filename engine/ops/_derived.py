"""Arrays derived from a layer's weights (a Winograd kernel transform, a weight matrix with its
bias column), kept while the weights live.

A stack's weights are read-only and replaced, never written (models.stack.Layer), and the live
view runs the same layers again and again, so a kernel's re-laid-out weights need computing only
once per weight array. On the 2-core dev VM the Winograd transform of a 512 -> 512 3x3 kernel
took 3.6 ms per call, more than the 7x7 convolution itself (2.9 ms).

An entry is keyed by the identity of its source arrays and dropped as soon as one of them is
garbage-collected; only arrays that cannot change (read-only all the way down their bases) are
cached, anything else is derived afresh on every call. Entries beyond ``MAX_BYTES`` are dropped,
least recently used first, so old stacks kept by an undo history cannot pile them up.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np

__all__ = ["MAX_BYTES", "derived", "held_bytes"]

# A few networks' worth: ResNet-18's take 74 MB (its weights 47 MB). Not in the run's memory
# budget, as the weights are not: they live as long as the network does.
MAX_BYTES = 256 << 20

_lock = threading.Lock()
_cache: OrderedDict[tuple[Hashable, ...], np.ndarray] = OrderedDict()
_held = 0
# Keys whose sources carry a finalizer already (an entry dropped for space and made again).
_watched: set[tuple[Hashable, ...]] = set()


def _frozen(a: object) -> bool:
    """Whether a's values cannot change: a read-only ndarray whose bases are read-only too
    (or not arrays at all, such as the bytes an imported weight was read from)."""
    while isinstance(a, np.ndarray):
        if a.flags.writeable:
            return False
        a = a.base
    return True


def _forget(key: tuple[Hashable, ...]) -> None:
    global _held
    with _lock:
        _watched.discard(key)
        entry = _cache.pop(key, None)
        if entry is not None:
            _held -= entry.nbytes


def derived(tag: Hashable, sources: tuple[np.ndarray | None, ...],
            make: Callable[[], np.ndarray]) -> np.ndarray:
    """``make()``, computed once per (tag, source arrays) while every source lives unchanged.

    ``make`` must depend only on ``sources`` (None stands for an absent one, e.g. no bias) and
    on what ``tag`` names. A kept result is made read-only; callers only read it."""
    arrays = [s for s in sources if s is not None]
    if not all(_frozen(s) for s in arrays):
        return make()
    key = (tag, *(None if s is None else id(s) for s in sources))
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    value = make()
    value.flags.writeable = False
    _store(key, value, arrays)
    return value


def _store(key: tuple[Hashable, ...], value: np.ndarray, sources: list[np.ndarray]) -> None:
    global _held
    with _lock:
        if key in _cache:  # another thread made it meanwhile
            return
        _cache[key] = value
        _held += value.nbytes
        while _held > MAX_BYTES and len(_cache) > 1:
            _, dropped = _cache.popitem(last=False)
            _held -= dropped.nbytes
        if key in _watched:
            return
        _watched.add(key)
    for source in sources:
        # An id can be reused once its array is gone: the entry goes with the array.
        weakref.finalize(source, _forget, key)


def held_bytes() -> int:
    """Bytes of the derived arrays kept now."""
    with _lock:
        return _held
