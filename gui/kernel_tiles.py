"""Turning a convolution's weight tensor into one mosaic image and per-filter numbers (NumPy only).

A kernel tensor is laid out (filters, channels, *kernel) -- ConvTranspose's (C_in, C_out/g, ...)
is swapped first so rows are always output filters. The mosaic has one row of tiles per filter and
one column per input channel (or one tile per filter when summed over channels). Values map to
[0, 1] around a symmetric range (0 -> 0.5) so a diverging colour map shows the sign; gaps are
GAP_VALUE as in gui.mosaic, so the feature maps' lookup tables and levels apply unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from gui.mosaic import GAP_VALUE, Mosaic, TileGrid, grid_for


@dataclass(frozen=True)
class FilterStats:
    """min, max, mean and std of each filter's weights, each an array of length filters."""
    minimum: np.ndarray
    maximum: np.ndarray
    mean: np.ndarray
    std: np.ndarray


def kernel_keys(weights: Mapping[str, np.ndarray]) -> list[str]:
    """The weight keys holding convolution kernels ("W", "depthwise.W", "a.W"...): the W tensors
    with at least one kernel axis. A Dense layer's (out, in) W is not one."""
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


def kernel_mosaic(planes: np.ndarray, summed: bool = False, per_filter: bool = False,
                  aspect: float = 1.0) -> Mosaic:
    """The mosaic of (F, C, kH, kW) planes. Not summed: grid channel f * C + c is the tile of
    filter f, input channel c (F rows, C columns). Summed: one tile per filter (the sum over its
    channels) on a near-`aspect` grid. One symmetric range for the whole mosaic, or one per filter
    (`per_filter`), so small filters next to a large one stay visible."""
    filters, channels, height, width = planes.shape
    values = np.asarray(planes.sum(axis=1, keepdims=True) if summed else planes, np.float32)
    if per_filter:
        scaled = np.stack([symmetric_scale(f) for f in values])
    else:
        scaled = symmetric_scale(values)
    if summed:
        tiles = scaled[:, 0]
        grid = grid_for(filters, height, width, aspect=aspect)
    else:
        tiles = scaled.reshape(filters * channels, height, width)
        grid = TileGrid(filters * channels, height, width, filters, channels)
    image = np.full(grid.shape, GAP_VALUE, np.float32)
    for k in range(grid.channels):
        y, x = grid.origin(k)
        image[y:y + height, x:x + width] = tiles[k]
    return Mosaic(image, grid)


def filter_stats(planes: np.ndarray) -> FilterStats:
    """Statistics of each filter of a (filters, ...) tensor over all its other axes."""
    flat = np.asarray(planes, np.float64).reshape(planes.shape[0], -1)
    return FilterStats(flat.min(axis=1), flat.max(axis=1), flat.mean(axis=1), flat.std(axis=1))


def histogram(values: np.ndarray, max_bins: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """(edges, counts) of all finite values, with about sqrt(n) bins up to max_bins (one empty
    bin on [0, 1] when none is finite)."""
    values = values[np.isfinite(values)]
    bins = max(1, min(max_bins, int(math.sqrt(values.size))))
    if not values.size:
        return np.array([0.0, 1.0]), np.zeros(1, np.int64)
    counts, edges = np.histogram(values, bins=bins)
    return edges, counts
