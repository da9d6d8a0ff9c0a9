"""Turning a convolution's weight tensor into one mosaic image and per-filter numbers (NumPy only).

A kernel tensor is laid out (filters, channels, *kernel) -- ConvTranspose's (C_in, C_out/g, ...)
is swapped first so rows are always output filters. The mosaic has one row of tiles per filter and
one column per input channel (or one tile per filter when summed over channels). Values map to
[0, 1] around a symmetric range (0 -> 0.5) so a diverging colour map shows the sign; gaps are
GAP_VALUE as in gui.mosaic, so the feature maps' lookup tables and levels apply unchanged.
Bounded as gui.mosaic's previews are: a mosaic holds at most PREVIEW_PIXELS pixels (kernels
averaged over blocks past that, and only the first filters and channels past a million tiles),
and the statistics and histogram read the tensor a CHUNK of values at a time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Mapping

import numpy as np
from numpy.lib.stride_tricks import as_strided

from gui.mosaic import (CHUNK, GAP, GAP_VALUE, PREVIEW_PIXELS, Mosaic, TileGrid, chunks,
                        grid_for, pool)


@dataclass(frozen=True)
class FilterStats:
    """min, max, mean and std of each filter's weights, each an array of length filters."""
    minimum: np.ndarray
    maximum: np.ndarray
    mean: np.ndarray
    std: np.ndarray


def kernel_keys(weights: Mapping[str, np.ndarray]) -> list[str]:
    """The weight keys holding convolution kernels ("W", "depthwise.W", "pointwise.W"): the W
    tensors with at least one kernel axis. A Dense layer's (out, in) W is not one."""
    return [key for key, w in weights.items() if key.rsplit(".", 1)[-1] == "W" and w.ndim >= 3]


def kernel_planes(weight: np.ndarray, transposed: bool = False) -> np.ndarray:
    """(filters, channels, kH, kW) views of a kernel tensor: a 1D kernel (F, C, k) as a 1 x k
    strip, a 3D one (F, C, kD, kH, kW) by its middle depth slice; `transposed` swaps the first two
    axes (ConvTranspose's in/out layout)."""
    w = np.swapaxes(weight, 0, 1) if transposed else weight
    if w.ndim == 3:
        return w[:, :, np.newaxis, :]
    if w.ndim == 5:
        return w[:, :, w.shape[2] // 2]
    return w


def symmetric_scale(values: np.ndarray) -> np.ndarray:
    """values mapped to [0, 1] by (v / m + 1) / 2 with m = max |value| (all 0.5 when m is 0);
    non-finite values count as 0, so the image stays drawable."""
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    m = float(np.abs(values).max()) if values.size else 0.0
    if m == 0.0:
        return np.full(values.shape, 0.5, np.float32)
    return ((values / m + 1.0) / 2.0).astype(np.float32)


def kernel_grid(filters: int, channels: int, height: int, width: int,
                budget: int = PREVIEW_PIXELS) -> TileGrid:
    """The grid of a mosaic with one row of tiles per filter and one column per input channel:
    kernels averaged over square blocks (its step) until it has at most `budget` pixels; past
    that with 1-pixel tiles, only the first filters and channels (rows and cols)."""
    factor = 1
    rows, cols = filters, channels
    while True:
        step_y, step_x = min(factor, height), min(factor, width)
        th, tw = height // step_y, width // step_x
        grid = TileGrid(rows * cols, th, tw, rows, cols, GAP, (step_y, step_x))
        if grid.pixels <= budget:
            return grid
        if th == 1 and tw == 1:
            side = max(1, math.isqrt(budget) // (1 + GAP))
            rows, cols = min(rows, side), min(cols, max(1, budget // (1 + GAP) ** 2 // side))
        else:
            factor += max(1, factor // 8)


def kernel_mosaic(planes: np.ndarray, summed: bool = False, per_filter: bool = False,
                  aspect: float = 1.0) -> Mosaic:
    """The mosaic of (F, C, kH, kW) planes. Not summed: grid channel f * cols + c is the tile of
    filter f, input channel c (a row per filter, a column per channel; see kernel_grid). Summed:
    one tile per filter (the sum over its channels) on a near-`aspect` grid. One symmetric
    range for the whole mosaic, or one per filter (`per_filter`), so small filters next to a
    large one stay visible. Each filter is made in its place: no full-size temporary."""
    filters, channels, height, width = planes.shape
    grid = (grid_for(filters, height, width, aspect=aspect) if summed
            else kernel_grid(filters, channels, height, width))
    image = np.full(grid.shape, GAP_VALUE, np.float32)
    largest = np.zeros(grid.channels if summed else grid.rows)  # each filter's max |value|
    step_y, step_x = grid.step
    for filter_, region in _filter_regions(image, grid, summed):
        if summed and grid.step == (1, 1):
            np.sum(planes[filter_], axis=0, dtype=np.float32, out=region)
        elif summed:
            region[...] = 0.0
            scratch = np.empty_like(region)
            for channel in range(channels):
                region += pool(planes[filter_, channel], step_y, step_x, out=scratch)
        elif grid.step == (1, 1):
            region[...] = np.swapaxes(planes[filter_, :grid.cols], 0, 1)
        else:
            for channel in range(grid.cols):
                pool(planes[filter_, channel], step_y, step_x, out=region[:, channel])
        np.nan_to_num(region, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        largest[filter_] = max(float(region.max()), -float(region.min()))
    overall = float(largest.max()) if largest.size else 0.0
    for filter_, region in _filter_regions(image, grid, summed):
        m = largest[filter_] if per_filter else overall
        if m == 0.0:
            region[...] = 0.5
        else:
            region *= np.float32(0.5 / m)
            region += np.float32(0.5)
    return Mosaic(image, grid)


def _filter_regions(image: np.ndarray, grid: TileGrid,
                    summed: bool) -> Iterator[tuple[int, np.ndarray]]:
    """(filter, view of its pixels) for each filter of a kernel mosaic: its tile (kH, kW) when
    summed, else its row of tiles as a (kH, cols, kW) view that skips the gaps."""
    if summed:
        for filter_ in range(grid.channels):
            y, x = grid.origin(filter_)
            yield filter_, image[y:y + grid.tile_h, x:x + grid.tile_w]
        return
    row_stride, column_stride = image.strides
    for filter_ in range(grid.rows):
        y = filter_ * (grid.tile_h + grid.gap)
        yield filter_, as_strided(image[y:], (grid.tile_h, grid.cols, grid.tile_w),
                                  (row_stride, (grid.tile_w + grid.gap) * column_stride,
                                   column_stride))


def filter_stats(planes: np.ndarray) -> FilterStats:
    """Statistics of each filter of a (filters, ...) tensor over all its other axes, in float64,
    reading groups of filters of at most CHUNK values (or one larger filter in chunks)."""
    count = planes.shape[0]
    size = planes[0].size if count else 0
    rows: list[tuple[np.ndarray, ...]] = []
    if size > CHUNK:
        rows = [tuple(np.array([v]) for v in _large_filter_stats(f)) for f in planes]
    else:
        group = max(1, CHUNK // max(1, size))
        for start in range(0, count, group):
            flat = np.asarray(planes[start:start + group], np.float64).reshape(
                min(group, count - start), -1)
            rows.append((flat.min(axis=1), flat.max(axis=1), flat.mean(axis=1),
                         flat.std(axis=1)))
    if not rows:
        return FilterStats(*(np.zeros(0) for _ in range(4)))
    return FilterStats(*(np.concatenate(column) for column in zip(*rows)))


def _large_filter_stats(values: np.ndarray) -> tuple[float, float, float, float]:
    """(min, max, mean, std) of one filter too large to copy, in two passes over chunks."""
    low, high, total = math.inf, -math.inf, 0.0
    for part in chunks(values):
        low = float(np.minimum(low, part.min()))
        high = float(np.maximum(high, part.max()))
        total += float(part.sum(dtype=np.float64))
    mean = total / values.size
    squares = sum(float(np.square(np.asarray(part, np.float64) - mean).sum())
                  for part in chunks(values))
    return low, high, mean, math.sqrt(squares / values.size)


def histogram(values: np.ndarray, max_bins: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """(edges, counts) of all finite values, with about sqrt(n) bins up to max_bins (one empty
    bin on [0, 1] when none is finite), read a CHUNK of values at a time."""
    low, high, finite = math.inf, -math.inf, 0
    for part in chunks(values):
        kept = part[np.isfinite(part)]
        if kept.size:
            low, high = min(low, float(kept.min())), max(high, float(kept.max()))
            finite += kept.size
    if not finite:
        return np.array([0.0, 1.0]), np.zeros(1, np.int64)
    bins = max(1, min(max_bins, int(math.sqrt(finite))))
    counts = np.zeros(bins, np.int64)
    edges = np.histogram_bin_edges(np.array([low, high]), bins=bins)
    for part in chunks(values):
        kept = part[np.isfinite(part)]
        counts += np.histogram(kept, bins=edges)[0]
    return edges, counts
