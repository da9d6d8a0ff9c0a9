"""Exact receptive windows of the shape, resampling and matrix-product kinds: BACK_SHAPE maps
each spec class to `back(spec, info, in_shape, mask) -> mask` (see models.receptive_window);
the lead merges it into receptive_window.BACK.

Resize connects positions axis by axis (its taps, from resize_taps). The kinds that move
values around (Pad, Slice, Transpose, Reshape, DepthToSpace, SpaceToDepth, Flatten) are
followed element by element: the same movement applied to the input's element numbers says
which input element each output element holds; an output position is reached in every
channel, and an input position counts when any of its channels is reached. Reduce and MatMul
spread each output over the axes they combine. All are exact.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from models.layers.base import LayerInfo, LayerSpec, Shape
from models.layers.matmul import Gemm, MatMul
from models.layers.resample import DepthToSpace, Pad, Resize, SpaceToDepth, resize_taps
from models.layers.shape_ops import ChannelShuffle, Identity, Reduce, Reshape, Slice, Transpose
from models.layers.structure import Flatten
from models.connectivity import back_through

Back = Callable[[LayerSpec, LayerInfo, Shape, np.ndarray], np.ndarray]


def _lift(mask: np.ndarray, out_shape: Shape) -> np.ndarray:
    """The output's bool mask over every element: a reached position in every channel."""
    if len(out_shape) == 0:
        return np.asarray(mask, bool)
    return np.broadcast_to(np.asarray(mask, bool)[np.newaxis], tuple(out_shape))


def _positions(elements: np.ndarray) -> np.ndarray:
    """An element mask over the sample shape (C, *spatial) as a position mask (any channel)."""
    return elements.any(axis=0)


def _moved(move: Callable[[np.ndarray], np.ndarray]) -> Back:
    """A back function for a kind whose output element holds one input element (or a constant),
    given `move`: the kind applied to an int array of the sample shape (-1 marks a constant)."""
    def back(spec: LayerSpec, info: LayerInfo, in_shape: Shape, mask: np.ndarray) -> np.ndarray:
        numbers = np.arange(math.prod(in_shape)).reshape(in_shape)
        held = move(spec, info, numbers)  # type: ignore[call-arg]
        reached = held[_lift(mask, info.output_shape)]
        elements = np.zeros(math.prod(in_shape), bool)
        elements[reached[reached >= 0]] = True
        return _positions(elements.reshape(in_shape))
    return back


def _pad_move(spec: Pad, info: LayerInfo, numbers: np.ndarray) -> np.ndarray:
    rank = numbers.ndim
    begins, ends = spec.pads[:rank], spec.pads[rank:]
    widths = [(max(b, 0), max(e, 0)) for b, e in zip(begins, ends)]
    if spec.mode == "constant":
        out = np.pad(numbers, widths, constant_values=-1)
    else:
        out = np.pad(numbers, widths, mode=spec.mode)  # type: ignore[call-overload]
    return out[tuple(slice(max(-b, 0), out.shape[i] - max(-e, 0))
                     for i, (b, e) in enumerate(zip(begins, ends)))]


def _slice_move(spec: Slice, info: LayerInfo, numbers: np.ndarray) -> np.ndarray:
    index = [slice(None)] * numbers.ndim
    for axis, (start, stop, step) in spec.ranges(numbers.shape).items():
        index[axis] = slice(start, None if stop < 0 else stop, step)
    return numbers[tuple(index)]


def _depth_to_space_move(spec: DepthToSpace, info: LayerInfo, numbers: np.ndarray) -> np.ndarray:
    c, h, w = numbers.shape
    b = spec.blocksize
    if spec.mode == "DCR":
        t = numbers.reshape(b, b, c // (b * b), h, w).transpose(2, 3, 0, 4, 1)
    else:
        t = numbers.reshape(c // (b * b), b, b, h, w).transpose(0, 3, 1, 4, 2)
    return t.reshape(info.output_shape)


def _space_to_depth_move(spec: SpaceToDepth, info: LayerInfo, numbers: np.ndarray) -> np.ndarray:
    c, h, w = numbers.shape
    b = spec.blocksize
    order = (2, 4, 0, 1, 3) if spec.mode == "DCR" else (0, 2, 4, 1, 3)
    return numbers.reshape(c, h // b, b, w // b, b).transpose(order).reshape(info.output_shape)


def _resize(spec: Resize, info: LayerInfo, in_shape: Shape, mask: np.ndarray) -> np.ndarray:
    if tuple(info.attrs["sizes"]) == tuple(in_shape[1:]):
        return np.array(mask, bool)  # a copy (see resize_plan)
    connectivity = []
    for size, out_size, scale in zip(in_shape[1:], info.attrs["sizes"], info.attrs["scales"]):
        first, second, w_first, w_second = resize_taps(
            size, out_size, scale, spec.mode, spec.coordinate_transformation_mode,
            spec.nearest_mode, bool(spec.sizes))
        connected = np.zeros((size, out_size), bool)
        outputs = np.arange(out_size)
        # A tap whose weight is 0 cannot change the output: it is not connected.
        connected[first[w_first != 0], outputs[w_first != 0]] = True
        connected[second[w_second != 0], outputs[w_second != 0]] = True
        connectivity.append(connected)
    return back_through(mask, connectivity)


def _reduce(spec: Reduce, info: LayerInfo, in_shape: Shape, mask: np.ndarray) -> np.ndarray:
    sample_axes = tuple(a - 1 for a in info.attrs["axes"])
    kept = tuple(1 if i in sample_axes else d for i, d in enumerate(in_shape))
    elements = _lift(mask, info.output_shape).reshape(kept)
    return _positions(np.broadcast_to(elements, tuple(in_shape)))


def _matmul(spec: MatMul, info: LayerInfo, in_shape: Shape, mask: np.ndarray) -> np.ndarray:
    # Input element (..., k) feeds every output (..., m) of its row.
    rows = _lift(mask, info.output_shape).any(axis=-1, keepdims=True)
    return _positions(np.broadcast_to(rows, tuple(in_shape)))


def _everything(spec: LayerSpec, info: LayerInfo, in_shape: Shape, mask: np.ndarray) -> np.ndarray:
    return np.full(tuple(in_shape[1:]), bool(np.any(mask)))


def _same(spec: LayerSpec, info: LayerInfo, in_shape: Shape, mask: np.ndarray) -> np.ndarray:
    return np.array(mask, bool)


BACK_SHAPE: dict[type[LayerSpec], Back] = {
    Resize: _resize,  # type: ignore[dict-item]
    Pad: _moved(_pad_move),
    Slice: _moved(_slice_move),
    Transpose: _moved(lambda s, i, n: n.transpose(tuple(p - 1 for p in s.perm[1:]))),
    Reshape: _moved(lambda s, i, n: n.reshape(i.output_shape)),
    Flatten: _moved(lambda s, i, n: n.reshape(i.output_shape)),
    DepthToSpace: _moved(_depth_to_space_move),
    SpaceToDepth: _moved(_space_to_depth_move),
    Reduce: _reduce,  # type: ignore[dict-item]
    MatMul: _matmul,  # type: ignore[dict-item]
    Gemm: _everything,
    ChannelShuffle: _same,
    Identity: _same,
}
