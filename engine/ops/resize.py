"""ONNX ``Resize`` (nearest and linear, every coordinate transformation mode) over the spatial
axes of a batch-first tensor. The per-axis taps come from models.layers.resample.resize_taps,
the arithmetic the exact receptive window also uses.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from engine.ops import _arena
from engine.ops.conv import _as_f32
from models.layers.resample import resize_taps

__all__ = ["resize"]


def resize(x: np.ndarray, sizes: Sequence[int], scales: Sequence[float], mode: str = "nearest",
           coordinate_transformation_mode: str = "half_pixel",
           nearest_mode: str = "round_prefer_floor", from_sizes: bool = False) -> np.ndarray:
    """x (N, C, *spatial) resized to (N, C, *sizes); `scales` are the float32 scales the
    coordinates use (one per spatial axis, out / in when the sizes were given: `from_sizes`).
    An output of the input's shape is a copy of it, as onnxruntime gives.

    Separable: one gather (nearest) or two gathers and a blend (linear) per spatial axis, which
    is the multilinear formula up to float32 rounding. Returns float32.

    The gathers write into buffers from the output arena and blend in place: on the 2-core dev
    VM a bilinear 1x32x64x64 -> 128x128 (U-Net's) took 5.7 ms of CPU time with fresh
    temporaries (page faults included), 1.1 ms so.
    """
    x = _as_f32(x)
    if tuple(sizes) == x.shape[2:]:
        return x.copy()
    for axis, (out_size, scale) in enumerate(zip(sizes, scales), start=2):
        size = x.shape[axis]
        first, second, w_first, w_second = resize_taps(size, out_size, scale, mode,
                                                       coordinate_transformation_mode,
                                                       nearest_mode, from_sizes)
        shape = (*x.shape[:axis], out_size, *x.shape[axis + 1:])
        # The taps are always in range; with mode="raise" np.take would gather into a buffer and
        # copy it into `out` (1.4 ms against 1.1 for the bilinear above).
        gathered = np.take(x, first, axis=axis, out=_arena.empty(shape), mode="clip")
        if mode != "nearest":
            weights = [1] * x.ndim
            weights[axis] = out_size
            gathered *= w_first.reshape(weights)
            other = np.take(x, second, axis=axis, out=_arena.empty(shape), mode="clip")
            other *= w_second.reshape(weights)
            gathered += other
        x = gathered
    return x
