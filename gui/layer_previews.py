"""What the feature-map view draws of a layer's output, made once per output array, and made on
the compute worker's thread where that can be known in advance.

For a big stack the drawing data costs more than a frame. On VGG's 64-channel 224x224 layers one
layer's mosaic took 19 ms, its stats 5 ms, and each thumbnail of a recomputed layer about 2 ms,
all on the UI thread, for every edit. `PreviewCache` keeps them per output array, weakly (an
entry goes when its array does), so the view only looks them up. After each run the worker calls
`prepare(result)`: the thumbnails of every layer, and the stats and mosaic (with its lookup-table
indices) of the layer the view last drew, with the settings it drew it with (`MosaicRequest`),
which is what the view asks for next unless the person changed the view meanwhile. Anything else
is made on first request. Every preview is bounded in size and in the memory it takes to make,
whatever the output's size (see gui.mosaic).

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
from gui.mosaic import (THUMBNAIL_SIDE, TOP_CLASSES, InputPreview, LayerStats, Mosaic,
                        binned_extremes, input_preview, layer_mosaic, layer_stats, thumbnail,
                        top_classes, vector_values)

MAX_BARS = 512  # a vector with more values is drawn as this many bins of them


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
    bars: tuple[np.ndarray, int] | None = None
    classes: list[tuple[int, float]] | None = None
    input: tuple[int | None, InputPreview] | None = None  # (depth asked for, preview)
    # Only the newest mosaic of an output is kept: one per output at most, about its size.
    mosaic: tuple[tuple[Any, ...], Mosaic | None] | None = None


class PreviewCache:
    """Thumbnails, stats, mosaics and bars of sample 0 of layer outputs, and the preview of
    sample 0 of the input, per array."""

    def __init__(self, thumbnail_side: int = THUMBNAIL_SIDE) -> None:
        """thumbnail_side: the side of every (square) thumbnail, in pixels."""
        self.thumbnail_side = thumbnail_side
        # Re-entrant: an array dying during an allocation under the lock calls _forget.
        self._lock = threading.RLock()
        self._entries: dict[int, _Entry] = {}
        self._expected: MosaicRequest | None = None

    def thumbnail(self, output: np.ndarray) -> np.ndarray:
        """gui.mosaic.thumbnail of output[0], thumbnail_side pixels a side."""
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

    def input_preview(self, x: np.ndarray, depth: int | None = None) -> InputPreview:
        """gui.mosaic.input_preview of the input x[0] at `depth` (the newest depth kept)."""
        entry = self._entry(x)
        if entry.input is None or entry.input[0] != depth:
            entry.input = (depth, input_preview(x[0], depth))
        return entry.input[1]

    def bars(self, output: np.ndarray) -> tuple[np.ndarray, int]:
        """(heights, width) of the bar chart of output[0], a vector (gui.mosaic.vector_values):
        gui.mosaic.binned_extremes in at most MAX_BARS bins of `width` values."""
        entry = self._entry(output)
        if entry.bars is None:
            values = vector_values(output[0])
            assert values is not None, "bars are drawn for vectors only"
            entry.bars = binned_extremes(values, MAX_BARS)
        return entry.bars

    def classes(self, output: np.ndarray) -> list[tuple[int, float]]:
        """gui.mosaic.top_classes of output[0], a vector: its TOP_CLASSES largest values."""
        entry = self._entry(output)
        if entry.classes is None:
            values = vector_values(output[0])
            assert values is not None, "classes are ranked for vectors only"
            entry.classes = top_classes(values, TOP_CLASSES)
        return entry.classes

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
        mosaic (or bars and top classes, for a vector) of the layer it shows, and the input's
        preview (a volume's at its middle slice). For the compute worker's thread, before it
        sends result."""
        self.input_preview(result.input)
        for output in result.outputs:
            if output is not None:
                self.thumbnail(output)
        with self._lock:
            request = self._expected
        if request is None or request.layer >= len(result.outputs):
            return
        output = result.outputs[request.layer]
        if output is None:
            return
        self.stats(output)
        if vector_values(output[0]) is not None:  # drawn as bars, ranked as classes
            self.bars(output)
            self.classes(output)
            return
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
