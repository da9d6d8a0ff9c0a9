"""One layer's forward pass: maps each spec kind onto the NumPy kernels in engine.ops.

`info` is the layer's LayerInfo from shape inference: it carries the values resolved from the
input shape (explicit pads, conv groups), so the engine never re-derives the arithmetic.
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from engine import ops
from engine.forward_activation import FORWARD_ACTIVATION
from engine.forward_shape import FORWARD_SHAPE
from engine.ops import _arena
from engine.ops._elementwise import elementwise
from models.layers import (Add, AvgPool, BatchNorm, Concat, Conv, ConvTranspose, Dense,
                           DepthwiseConv, Div, GlobalAvgPool, GlobalMaxPool, LayerInfo, LayerSpec,
                           LeakyReLU, MaxPool, Mul, Opaque, PointwiseConv, ReLU, SeparableConv,
                           Sigmoid, Sub, Tanh)

Weights = Mapping[str, np.ndarray]


def _conv(spec: Conv | DepthwiseConv | PointwiseConv, info: LayerInfo, w: Weights,
          x: np.ndarray, key: str = "") -> np.ndarray:
    return ops.conv(x, w[f"{key}W"], w.get(f"{key}B"), strides=spec.stride, pads=info.attrs["pads"],
                    dilations=spec.dilation, group=info.attrs["group"])


def _conv_transpose(spec: ConvTranspose, info: LayerInfo, w: Weights, x: np.ndarray) -> np.ndarray:
    return ops.conv_transpose(x, w["W"], w.get("B"), strides=spec.stride, pads=info.attrs["pads"],
                              dilations=spec.dilation, group=spec.groups,
                              output_padding=spec.output_padding)


def _max_pool(spec: MaxPool, info: LayerInfo, w: Weights, x: np.ndarray) -> np.ndarray:
    return ops.max_pool(x, kernel_shape=spec.kernel_size, strides=spec.stride,
                        pads=info.attrs["pads"], ceil_mode=int(spec.ceil_mode),
                        dilations=spec.dilation)


def _avg_pool(spec: AvgPool, info: LayerInfo, w: Weights, x: np.ndarray) -> np.ndarray:
    return ops.average_pool(x, kernel_shape=spec.kernel_size, strides=spec.stride,
                            pads=info.attrs["pads"], ceil_mode=int(spec.ceil_mode),
                            count_include_pad=int(spec.count_include_pad), dilations=spec.dilation)


def _separable(spec: SeparableConv, info: LayerInfo, w: Weights, x: np.ndarray) -> np.ndarray:
    for part, part_info, key in zip(spec.parts(), info.inner, ("depthwise.", "pointwise.")):
        x = _conv(part, part_info, w, x, key)
    return x


_UFUNCS = {Add: np.add, Sub: np.subtract, Mul: np.multiply, Div: np.divide}


def _arithmetic(spec: Add | Sub | Mul | Div, info: LayerInfo, w: Weights,
                *xs: np.ndarray) -> np.ndarray:
    operands = list(xs)
    if "C" in w:
        operands.insert(0 if spec.constant_first else len(operands), w["C"])
    ufunc = _UFUNCS[type(spec)]
    shape = np.broadcast_shapes(*(a.shape for a in operands))
    first, second = operands[0], operands[1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # inf/NaN as ONNX gives
        if first.shape == second.shape == shape:
            out = elementwise(ufunc, _arena.empty(shape), first, second)
        else:
            out = ufunc(first, second, out=_arena.empty(shape))
        for more in operands[2:]:
            ufunc(out, more, out=out)
    return out


def _concat(spec: Concat, info: LayerInfo, w: Weights, *xs: np.ndarray) -> np.ndarray:
    axis = info.attrs["axis"]
    shape = list(xs[0].shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    return np.concatenate(xs, axis=axis, out=_arena.empty(tuple(shape)))


def _opaque(spec: Opaque, info: LayerInfo, w: Weights, *xs: np.ndarray) -> np.ndarray:
    # onnxruntime computes it; onnx and onnxruntime load only when a network has such a node.
    from engine.onnx.opaque import run_opaque
    return run_opaque(spec, w, *xs)


FORWARD: dict[type[LayerSpec], Callable[..., np.ndarray]] = {
    Conv: _conv, DepthwiseConv: _conv, PointwiseConv: _conv, ConvTranspose: _conv_transpose,
    SeparableConv: _separable, MaxPool: _max_pool, AvgPool: _avg_pool,
    GlobalMaxPool: lambda s, i, w, x: ops.global_max_pool(x),
    GlobalAvgPool: lambda s, i, w, x: ops.global_average_pool(x),
    ReLU: lambda s, i, w, x: ops.relu(x),
    LeakyReLU: lambda s, i, w, x: ops.leaky_relu(x, s.alpha),
    Sigmoid: lambda s, i, w, x: ops.sigmoid(x),
    Tanh: lambda s, i, w, x: ops.tanh(x),
    Dense: lambda s, i, w, x: ops.dense(x, w["W"], w.get("B")),
    BatchNorm: lambda s, i, w, x: ops.batch_normalization(x, w["scale"], w["bias"], w["mean"],
                                                          w["var"], s.epsilon),
    Add: _arithmetic, Sub: _arithmetic, Mul: _arithmetic, Div: _arithmetic, Concat: _concat,
    Opaque: _opaque, **FORWARD_ACTIVATION, **FORWARD_SHAPE,
}


def layer_forward(spec: LayerSpec, info: LayerInfo, weights: Weights,
                  *inputs: np.ndarray) -> np.ndarray:
    """The layer's float32 output for its input batches (N, ...), in the node's input order."""
    return FORWARD[type(spec)](spec, info, weights, *inputs)
