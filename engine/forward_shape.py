"""Forward functions of the shape, resampling and matrix-product kinds, by spec class; the
lead merges FORWARD_SHAPE into engine.forward.FORWARD. Signature: fn(spec, info, weights, x)."""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from engine.ops.resize import resize
from engine.ops.shape_ops import (channel_shuffle, depth_to_space, gemm, matmul, pad, reduce,
                                  reshape, slice_axes, space_to_depth, transpose)
from models.layers.base import LayerInfo, LayerSpec
from models.layers.matmul import Gemm, MatMul
from models.layers.resample import DepthToSpace, Pad, Resize, SpaceToDepth
from models.layers.shape_ops import (ChannelShuffle, Identity, Reduce, Reshape, Slice, Transpose,
                                     flatten_shape)
from models.layers.structure import Flatten

Weights = Mapping[str, np.ndarray]


def _resize(spec: Resize, info: LayerInfo, w: Weights, x: np.ndarray) -> np.ndarray:
    return resize(x, info.attrs["sizes"], info.attrs["scales"], spec.mode,
                  spec.coordinate_transformation_mode, spec.nearest_mode, bool(spec.sizes))


def _slice(spec: Slice, info: LayerInfo, w: Weights, x: np.ndarray) -> np.ndarray:
    ranges = spec.ranges(x.shape[1:])
    return slice_axes(x, {axis + 1: r for axis, r in ranges.items()})


def _flatten(spec: Flatten, info: LayerInfo, w: Weights, x: np.ndarray) -> np.ndarray:
    return x.reshape((x.shape[0], *flatten_shape(x.shape[1:], getattr(spec, "axis", 1))))


FORWARD_SHAPE: dict[type[LayerSpec], Callable[..., np.ndarray]] = {
    Resize: _resize,
    Pad: lambda s, i, w, x: pad(x, s.pads, s.mode, s.value),
    DepthToSpace: lambda s, i, w, x: depth_to_space(x, s.blocksize, s.mode),
    SpaceToDepth: lambda s, i, w, x: space_to_depth(x, s.blocksize, s.mode),
    Slice: _slice,
    Reduce: lambda s, i, w, x: reduce(x, s.op, i.attrs["axes"], s.keepdims),
    Gemm: lambda s, i, w, x: gemm(x, w["W"], w.get("B"), s.alpha, s.beta, s.transB),
    MatMul: lambda s, i, w, x: matmul(x, w["W"]),
    Transpose: lambda s, i, w, x: transpose(x, s.perm),
    Reshape: lambda s, i, w, x: reshape(x, i.output_shape),
    ChannelShuffle: lambda s, i, w, x: channel_shuffle(x, s.groups),
    Identity: lambda s, i, w, x: x,
    Flatten: _flatten,
}
