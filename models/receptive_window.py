"""The exact receptive window of one output pixel: which positions of the input and of every
earlier layer's output can influence it.

Where models.geometry.RFState gives a receptive field's extent, this gives its exact shape: the
holes a dilated kernel leaves, the jumps of strides, the clipping where padding lies outside a
tensor, the union of a merge's branches. Masks are spatial only: a position counts when any of
its channels can reach the clicked output (grouped and depthwise layers connect the same
positions, just fewer channels). A flat tensor (after Flatten or Dense) has a 0-d mask.

Every layer connects positions axis by axis (its window is a product of per-axis taps), so a
mask goes back through a layer as one boolean "connectivity" matrix per axis: input position i
of that axis reaches output position o when connected[i, o].
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from models.analysis import StackReport
from models.connectivity import back_through, transposed_connectivity, window_connectivity
from models.layers import (Add, AvgPool, Concat, Conv, ConvTranspose, Dense, DepthwiseConv, Div,
                           Flatten, GlobalAvgPool, GlobalMaxPool, LayerInfo, LayerSpec, MaxPool,
                           Mul, PointwiseConv, SeparableConv, Shape, Sub)
from models.receptive_activation import BACK_ACTIVATION
from models.layers.opaque import BACK_OPAQUE
from models.receptive_shape import BACK_SHAPE
from models.stack import Stack


def _window(spec: LayerSpec, info: LayerInfo, in_shape: Shape, mask: np.ndarray) -> np.ndarray:
    kernel, stride, dilation = spec.kernel_size, spec.stride, spec.dilation  # type: ignore[attr-defined]
    pads = info.attrs["pads"]
    out = info.output_shape[1:]
    return back_through(mask, [window_connectivity(w, o, k, s, p, d) for w, o, k, s, p, d in
                               zip(in_shape[1:], out, kernel, stride, pads, dilation)])


def _transposed(spec: ConvTranspose, info: LayerInfo, in_shape: Shape,
                mask: np.ndarray) -> np.ndarray:
    pads = info.attrs["pads"]
    return back_through(mask, [transposed_connectivity(w, o, k, s, p, d) for w, o, k, s, p, d in
                               zip(in_shape[1:], info.output_shape[1:], spec.kernel_size,
                                   spec.stride, pads, spec.dilation)])


def _everything(spec: LayerSpec, info: LayerInfo, in_shape: Shape, mask: np.ndarray) -> np.ndarray:
    """Global pooling, Flatten and Dense: any reached output reads every input position."""
    return np.full(in_shape[1:], bool(mask.any()))


def _pointwise(spec: LayerSpec, info: LayerInfo, in_shape: Shape, mask: np.ndarray) -> np.ndarray:
    """Activations, batch norm, softmax over channels, 1x1 convolutions: position to position."""
    return mask.copy()


def _separable(spec: SeparableConv, info: LayerInfo, in_shape: Shape,
               mask: np.ndarray) -> np.ndarray:
    depthwise = spec.parts()[0]
    return _window(depthwise, info.inner[0], in_shape, mask)


BACK: dict[type[LayerSpec], Callable[..., np.ndarray]] = {
    Conv: _window, DepthwiseConv: _window, MaxPool: _window, AvgPool: _window,
    PointwiseConv: _pointwise, ConvTranspose: _transposed, SeparableConv: _separable,
    GlobalMaxPool: _everything, GlobalAvgPool: _everything, Flatten: _everything,
    Dense: _everything,
    **BACK_ACTIVATION, **BACK_SHAPE, **BACK_OPAQUE,
}


def layer_back(spec: LayerSpec, info: LayerInfo, in_shape: Shape, mask: np.ndarray) -> np.ndarray:
    """The mask over the layer's input spatial grid (in_shape = (C, *spatial)) that reaches
    `mask`, a bool mask over its output's spatial grid. Raises KeyError for a kind with no rule
    (every kind must say how it connects positions)."""
    return BACK[type(spec)](spec, info, in_shape, mask)


def _broadcast_back(in_spatial: Shape, mask: np.ndarray) -> np.ndarray:
    """An operand's mask for a broadcast merge: an axis it repeats (size 1) reads its one pixel."""
    for axis, (have, want) in enumerate(zip(in_spatial, mask.shape)):
        if have == 1 and want != 1:
            mask = mask.any(axis=axis, keepdims=True)
    return mask.copy()


def merge_back(spec: LayerSpec, info: LayerInfo, in_shapes: tuple[Shape, ...],
               mask: np.ndarray) -> list[np.ndarray]:
    """One mask per input of a merge (Add, Sub, Mul, Div, Concat), in input order."""
    if isinstance(spec, Concat) and info.attrs["axis"] >= 2:
        axis = info.attrs["axis"] - 2
        bounds = np.cumsum([0] + [s[axis + 1] for s in in_shapes])
        return [np.take(mask, np.arange(lo, hi), axis=axis) for lo, hi in zip(bounds, bounds[1:])]
    return [_broadcast_back(s[1:], mask) for s in in_shapes]


MERGE_KINDS = (Add, Sub, Mul, Div, Concat)


def receptive_masks(stack: Stack, report: StackReport, layer_index: int,
                    position: tuple[int, ...]) -> list[np.ndarray]:
    """Bool masks of every position that can influence output `position` of layer `layer_index`.

    Returns layer_index + 2 masks: masks[0] over the network's input, masks[j + 1] over layer
    j's output for j < layer_index (all False for a layer not upstream of the clicked one), and
    masks[layer_index + 1] the clicked pixel alone. Each mask has its tensor's spatial shape (no
    batch or channel axis; () for flat tensors). The masks are exact: a position outside them
    cannot change the clicked output whatever its value; through branches they are the union.

    Raises ValueError when the layer does not exist or was not analysed (an earlier error), or
    when `position` does not name a pixel of its output.
    """
    if not 0 <= layer_index < len(stack.layers):
        raise ValueError(f"layer {layer_index} is not in a network of {len(stack.layers)} layers")
    layer_report = report.layers[layer_index]
    if layer_report.info is None:
        raise ValueError(f"layer {layer_index} has no output: {layer_report.status}")
    out_spatial = tuple(layer_report.info.output_shape[1:])
    position = tuple(position)
    if len(position) != len(out_spatial) or not all(0 <= p < n for p, n in
                                                    zip(position, out_spatial)):
        raise ValueError(f"position {position} is not a pixel of an output of spatial size "
                         f"{out_spatial}")
    masks: list[np.ndarray] = [np.zeros(report.input_shape[2:], bool)] + [
        np.zeros(r.info.output_shape[1:] if r.info else (), bool)
        for r in report.layers[:layer_index]]
    clicked = np.zeros(out_spatial, bool)
    clicked[position] = True
    masks.append(clicked)
    upstream = stack.upstream(layer_index)
    for j in range(layer_index, -1, -1):
        if j not in upstream or not masks[j + 1].any():
            continue
        layer = report.layers[j]
        assert layer.info is not None
        in_shapes = tuple(shape[1:] for shape in layer.input_shapes)
        if isinstance(stack.layers[j].spec, MERGE_KINDS):
            reached = merge_back(stack.layers[j].spec, layer.info, in_shapes, masks[j + 1])
        else:
            reached = [layer_back(stack.layers[j].spec, layer.info, in_shapes[0], masks[j + 1])]
        for source, mask in zip(layer.sources, reached):
            masks[source + 1] |= mask
    return masks


def extent(mask: np.ndarray) -> tuple[int, ...]:
    """The bounding box size of a mask per axis (0s for an empty mask, () for a 0-d one)."""
    if mask.ndim == 0 or not mask.any():
        return (0,) * mask.ndim
    where = np.nonzero(mask)
    return tuple(int(w.max() - w.min() + 1) for w in where)
