"""What the feature-map view draws of a layer's output, made once per output array, and made on
the compute worker's thread where that can be known in advance.

For a big stack the drawing data costs more than a frame. On VGG's 64-channel 224x224 layers one
layer's mosaic took 19 ms, its stats 5 ms, and each thumbnail of a recomputed layer about 2 ms,
all on the UI thread, for every edit. `PreviewCache` keeps them per output array, weakly (an
entry goes when its array does), so the view only looks them up. After each run the worker calls
`prepare(result)`: the thumbnails of every layer, and the stats and mosaic (with its lookup-table
indices) of the layer the view last drew, with the settings it drew it with (`MosaicRequest`),
which is what the view asks for next unless the person changed the view meanwhile. Anything else
is made on first request.

Thread-safety: the table of entries is guarded by one lock; the previews are made outside it and
stored with one attribute assignment, so at worst two threads make the same preview once each.
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.executor import RunResult
from gui.mosaic import LayerStats, Mosaic, layer_mosaic, layer_stats, thumbnail


@dataclass(frozen=True)
class MosaicRequest:
    """Which layer's mosaic the view shows, and how: the arguments of gui.mosaic.layer_mosaic."""
    layer: int
    shared: bool
    depth: int
    aspect: float


@dataclass
class _Entry:
    output: weakref.ref[np.ndarray]
    thumbnail: np.ndarray | None = None
    stats: LayerStats | None = None
    # Only the newest mosaic of an output is kept: one per output at most, about its size.
    mosaic: tuple[tuple[Any, ...], Mosaic | None] | None = None


# The longest side of a strip thumbnail, in pixels: twice the strip's icons (the view derives
# its icon size from this), which keeps them sharp on a high-density screen.
THUMBNAIL_SIDE = 104


class PreviewCache:
    """Thumbnails, stats and mosaics of sample 0 of layer outputs, per output array."""

    def __init__(self, thumbnail_side: int = THUMBNAIL_SIDE) -> None:
        """thumbnail_side: the longest side of a thumbnail, in pixels."""
        self.thumbnail_side = thumbnail_side
        # Re-entrant: an array dying during an allocation under the lock calls _forget.
        self._lock = threading.RLock()
        self._entries: dict[int, _Entry] = {}
        self._expected: MosaicRequest | None = None

    def thumbnail(self, output: np.ndarray) -> np.ndarray:
        """gui.mosaic.thumbnail of output[0], at most thumbnail_side pixels a side."""
        entry = self._entry(output)
        if entry.thumbnail is None:
            entry.thumbnail = thumbnail(output[0], self.thumbnail_side)
        return entry.thumbnail

    def stats(self, output: np.ndarray) -> LayerStats:
        """gui.mosaic.layer_stats of output[0]."""
        entry = self._entry(output)
        if entry.stats is None:
            entry.stats = layer_stats(output[0])
        return entry.stats

    def mosaic(self, output: np.ndarray, shared: bool, depth: int, aspect: float) -> Mosaic | None:
        """gui.mosaic.layer_mosaic of output[0] with these settings (None for flat outputs)."""
        entry = self._entry(output)
        key = (shared, depth, aspect)
        kept = entry.mosaic
        if kept is not None and kept[0] == key:
            return kept[1]
        made = layer_mosaic(output[0], shared=shared, depth=depth, aspect=aspect)
        entry.mosaic = (key, made)
        return made

    def expect(self, request: MosaicRequest | None) -> None:
        """The view says what it shows now; `prepare` makes that layer's mosaic for each result."""
        with self._lock:
            self._expected = request

    def prepare(self, result: RunResult) -> None:
        """Make what the view will ask of result: every layer's thumbnail, and the stats and
        mosaic of the layer it shows. For the compute worker's thread, before it sends result."""
        for output in result.outputs:
            if output is not None:
                self.thumbnail(output)
        with self._lock:
            request = self._expected
        if request is None or request.layer >= len(result.outputs):
            return
        output = result.outputs[request.layer]
        if output is not None:
            self.stats(output)
            mosaic = self.mosaic(output, request.shared, request.depth, request.aspect)
            if mosaic is not None:
                _ = mosaic.indices  # what the view hands pyqtgraph

    def __len__(self) -> int:
        """Outputs with an entry (arrays still alive that something was made for)."""
        with self._lock:
            return len(self._entries)

    def _entry(self, output: np.ndarray) -> _Entry:
        key = id(output)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.output() is output:
                return entry
            entry = _Entry(weakref.ref(output, lambda _ref, key=key: self._forget(key, _ref)))
            self._entries[key] = entry
            return entry

    def _forget(self, key: int, ref: weakref.ref[np.ndarray]) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.output is ref:
                del self._entries[key]
