"""Turning one layer's output into something one image item can draw (pure NumPy, no Qt).

A layer's output for one sample is (C, *spatial) or flat (F,):
- (C, H, W)    -> the channels tiled on a near-square grid with a gap between tiles;
- (C, L)       -> a heat map, one row per channel (a grid of one column, no gap);
- (C, D, H, W) -> the tiles of the slice at one depth;
- (F,)         -> values for a bar chart (no mosaic).
Mosaic images are float32, C-contiguous: tiles in [0, 1], gaps and empty grid cells GAP_VALUE
(below every tile value, so a view can give them a background colour with fixed LEVELS); a
mosaic's `indices` are the lookup-table indices those levels give, ready to draw.
The `TileGrid` maps a mosaic pixel back to (channel, y, x) for hover read-outs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

GAP = 1
GAP_VALUE = -1.0
LUT_SIZE = 256
# pyqtgraph maps v to index (v - low) * LUT_SIZE / (high - low), clipped to the table: with
# low = -1/255 a value of 0 lands on index 1 and 1 on the last index; gaps (< 0) clip to index 0.
LEVELS = (-1.0 / (LUT_SIZE - 1), 1.0)


@dataclass(frozen=True)
class TileGrid:
    """Where each channel's tile sits: channel k's pixel (y, x) is at mosaic pixel
    (row * (tile_h + gap) + y, col * (tile_w + gap) + x) with row, col = divmod(k, cols)."""
    channels: int
    tile_h: int
    tile_w: int
    rows: int
    cols: int
    gap: int = GAP

    @property
    def shape(self) -> tuple[int, int]:
        """The mosaic's (height, width) in pixels."""
        return (self.rows * (self.tile_h + self.gap) - self.gap,
                self.cols * (self.tile_w + self.gap) - self.gap)

    def origin(self, channel: int) -> tuple[int, int]:
        """The mosaic pixel (y, x) of the channel's top-left corner."""
        row, col = divmod(channel, self.cols)
        return row * (self.tile_h + self.gap), col * (self.tile_w + self.gap)

    def locate(self, y: int, x: int) -> tuple[int, int, int] | None:
        """(channel, y, x) in the layer's output for a mosaic pixel, or None on a gap or outside."""
        if y < 0 or x < 0:
            return None
        row, ty = divmod(y, self.tile_h + self.gap)
        col, tx = divmod(x, self.tile_w + self.gap)
        channel = row * self.cols + col
        if ty >= self.tile_h or tx >= self.tile_w or col >= self.cols or channel >= self.channels:
            return None
        return channel, ty, tx


@dataclass(frozen=True)
class Mosaic:
    """A float32 (height, width) image, tiles in [0, 1] and gaps GAP_VALUE, and its grid."""
    image: np.ndarray
    grid: TileGrid

    @cached_property
    def indices(self) -> np.ndarray:
        """lut_indices(image), made on first use."""
        return lut_indices(self.image)


def lut_indices(image: np.ndarray) -> np.ndarray:
    """The uint8 lookup-table indices pyqtgraph's ImageItem computes from a float image under
    LEVELS and a LUT_SIZE-entry table, each time it is handed a new one: (v - low) * LUT_SIZE /
    (high - low) in float32, clipped to the table and truncated. Handed these instead (with
    levels (0, LUT_SIZE - 1)), it draws the same pixels without the pass: for a 64-channel
    224x224 layer that pass and its NaN check took 6-9 ms of the UI thread."""
    low, high = LEVELS
    work = np.subtract(image, low, dtype=np.float32)
    work *= LUT_SIZE / (high - low)
    np.clip(work, 0, LUT_SIZE - 1, out=work)
    return work.astype(np.uint8)


@dataclass(frozen=True)
class LayerStats:
    """Summary of one layer's output: min, max, mean and the share of exact zeros (0..1)."""
    minimum: float
    maximum: float
    mean: float
    zeros: float

    def text(self) -> str:
        return (f"min {self.minimum:.4g} · max {self.maximum:.4g} · mean {self.mean:.4g} · "
                f"zeros {self.zeros:.0%}")


def grid_for(channels: int, tile_h: int, tile_w: int, gap: int = GAP,
             aspect: float = 1.0) -> TileGrid:
    """The grid that shows the tiles largest in a view `aspect` times as wide as high (1.0:
    near-square); among equally large layouts, the one with the fewest empty cells."""
    def fit(cols: int) -> tuple[float, int]:
        rows = math.ceil(channels / cols)
        width, height = cols * (tile_w + gap), rows * (tile_h + gap)
        return min(aspect / width, 1.0 / height), -(rows * cols - channels)

    cols = max(range(1, channels + 1), key=fit)
    rows = math.ceil(channels / cols)
    return TileGrid(channels, tile_h, tile_w, rows, cols, gap)


def _ranges(data: np.ndarray, shared: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(data, low, span) for scaling data (C, ...) to [0, 1]; low and span broadcast against it.

    Non-finite values are set to 0 (in a copy) only when there are any: a finite channel's min
    and max are finite, so two reductions tell. A constant range gets an infinite span, which
    maps its values (all equal to low) to 0 without a division by zero.
    """
    axes = None if shared else tuple(range(1, data.ndim))
    low = data.min(axis=axes, keepdims=True)
    high = data.max(axis=axes, keepdims=True)
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
        low = data.min(axis=axes, keepdims=True)
        high = data.max(axis=axes, keepdims=True)
    span = high - low
    span[span == 0] = np.inf
    return data, low, span


def normalise(maps: np.ndarray, shared: bool) -> np.ndarray:
    """maps (C, ...) scaled to [0, 1]: one range for all channels (shared) or one per channel.

    A constant range maps to 0; non-finite values become 0 so the image stays drawable.
    """
    data, low, span = _ranges(np.asarray(maps, dtype=np.float32), shared)
    scaled = np.subtract(data, low)
    return np.divide(scaled, span, out=scaled)


def tile(maps: np.ndarray, shared: bool = True, grid: TileGrid | None = None,
         aspect: float = 1.0) -> Mosaic:
    """Tile (C, H, W) maps into one mosaic on `grid` (default: grid_for the aspect, 1-pixel gap).

    Each tile is scaled straight into its place in the mosaic: two passes over the values in
    all, with no full-size temporary (the mosaic of a 64-channel 224x224 layer is drawn on
    the UI thread whenever the view asks for a layer the worker did not prepare).
    """
    channels, height, width = maps.shape
    grid = grid or grid_for(channels, height, width, aspect=aspect)
    data, low, span = _ranges(np.asarray(maps, dtype=np.float32), shared)
    low = np.broadcast_to(low, (channels, 1, 1))
    span = np.broadcast_to(span, (channels, 1, 1))
    image = np.full(grid.shape, GAP_VALUE, np.float32)
    for k in range(channels):
        y, x = grid.origin(k)
        place = image[y:y + height, x:x + width]
        np.subtract(data[k], low[k], out=place)
        np.divide(place, span[k], out=place)
    return Mosaic(image, grid)


def heat_map(signals: np.ndarray, shared: bool = True) -> Mosaic:
    """(C, L) -> a C x L mosaic, channel k on row k (a one-column grid without gaps)."""
    channels, length = signals.shape
    return tile(signals[:, np.newaxis, :], shared, TileGrid(channels, 1, length, channels, 1, 0))


def layer_maps(output: np.ndarray, depth: int = 0) -> np.ndarray | None:
    """The (C, H, W) values a mosaic of one sample's output shows: a signal (C, L) as (C, 1, L),
    a volume's slice at `depth` (clamped); None for flat (F,) outputs."""
    if output.ndim == 2:
        return output[:, np.newaxis, :]
    if output.ndim == 3:
        return output
    if output.ndim == 4:
        return output[:, min(max(depth, 0), output.shape[1] - 1)]
    return None


def layer_mosaic(output: np.ndarray, shared: bool = True, depth: int = 0,
                 aspect: float = 1.0) -> Mosaic | None:
    """The mosaic for one sample's output (C, *spatial); None for flat (F,) outputs.

    depth: the slice shown of a 3D output; aspect: the view's width / height (see grid_for).
    """
    if output.ndim == 2:
        return heat_map(output, shared)
    maps = layer_maps(output, depth)
    return None if maps is None else tile(maps, shared, aspect=aspect)


def thumbnail(output: np.ndarray, max_side: int | None = None) -> np.ndarray:
    """A small-view image in [0, 1] of one sample's output: the mean over channels (the middle
    slice for 3D, a one-row strip for flat outputs), averaged down over square blocks until no
    side is longer than max_side (None: full size; see `shrink`)."""
    if output.ndim == 1:
        image = output[np.newaxis]
    elif output.ndim == 2:
        image = output.mean(axis=0)[np.newaxis]
    elif output.ndim == 3:
        image = output.mean(axis=0)
    else:
        image = output[:, output.shape[1] // 2].mean(axis=0)
    if max_side is not None:
        image = shrink(image, max_side)
    if output.ndim == 2:  # the signal as a strip 8 times as wide as it is tall
        image = np.repeat(image, max(1, image.shape[1] // 8), axis=0)
    return normalise(image[np.newaxis], shared=True)[0]


def shrink(image: np.ndarray, max_side: int) -> np.ndarray:
    """image (H, W) averaged over f x f blocks, f the smallest factor that brings both sides to
    max_side or below (a side shorter than f is averaged whole); the rows and columns past the
    last whole block are dropped. image itself when it is small enough already."""
    height, width = image.shape
    factor = -(-max(height, width) // max_side)
    if factor <= 1:
        return image
    fy, fx = min(factor, height), min(factor, width)
    rows, cols = height // fy, width // fx
    blocks = image[:rows * fy, :cols * fx].reshape(rows, fy, cols, fx)
    return blocks.mean(axis=(1, 3), dtype=np.float32)


def layer_stats(output: np.ndarray) -> LayerStats:
    """min, max, mean and share of zeros over the whole output (any shape, non-empty)."""
    data = np.asarray(output, dtype=np.float32)
    return LayerStats(float(data.min()), float(data.max()), float(data.mean()),
                      float(np.count_nonzero(data == 0)) / data.size)
