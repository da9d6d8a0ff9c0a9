"""ONNX import rules (engine.onnx.registry) for the convolution, pooling, merge and dense kinds.

- Conv -> DepthwiseConv when group == input channels > 1 and each group has the same number of
  kernels; -> PointwiseConv when 1x1, stride 1, unpadded, undilated, group 1; else Conv. Pads
  are always explicit: auto_pad (SAME_UPPER, SAME_LOWER, VALID) is resolved against the input.
- ConvTranspose (output_shape and auto_pad resolved to pads and output_padding), MaxPool (its
  indices output unused), AveragePool, GlobalMaxPool, GlobalAveragePool.
- Add, Sub, Mul, Div, Sum: runtime operands are the node's inputs; one constant operand is
  the stored operand "C" in its ONNX shape (constant_first when it comes first). Before opset
  7 these ops broadcast a second operand from an `axis`: it is reshaped to the modern
  right-aligned form.
- Concat of runtime tensors.
- Gemm, only as a Dense layer: `dense_from_gemm` (the graph importer tries it before the
  registry's general "Gemm" rule).

Importers raise `r.fail(node, why)` for settings no layer can hold; the graph importer then keeps
the node as an opaque one.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import onnx

from engine.onnx.limits import shown
from engine.onnx.registry import Imported, Reader, imports, runtime_inputs
from models.layers import (Add, AvgPool, Concat, Conv, ConvTranspose, Dense, DepthwiseConv, Div,
                           GlobalAvgPool, GlobalMaxPool, LayerSpec, MaxPool, Mul, PointwiseConv,
                           Sub)
from models.layers.base import Shape, describe_shape

_MERGES: dict[str, type[LayerSpec]] = {"Add": Add, "Sum": Add, "Sub": Sub, "Mul": Mul, "Div": Div}
_LEGACY_BROADCAST_OPSET = 7  # before it, Add/Sub/Mul/Div broadcast B from an `axis` attribute


def resolve_pads(auto_pad: str, pads: list[int] | None, spatial: Shape, kernel: Shape,
                 strides: Shape, dilations: Shape) -> tuple[int, ...] | None:
    """Explicit ONNX-ordered pads for a window's auto_pad; None for an unknown auto_pad."""
    rank = len(spatial)
    if auto_pad == "NOTSET":
        return tuple(pads) if pads else (0,) * (2 * rank)
    if auto_pad == "VALID":
        return (0,) * (2 * rank)
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        return None
    totals = [max((-(-w // s) - 1) * s + (k - 1) * d + 1 - w, 0)
              for w, k, s, d in zip(spatial, kernel, strides, dilations)]
    small = tuple(t // 2 for t in totals)
    large = tuple(t - t // 2 for t in totals)
    # SAME_UPPER puts the odd pixel at the end, SAME_LOWER at the beginning.
    return small + large if auto_pad == "SAME_UPPER" else large + small


def transposed_pads(attrs: Mapping[str, Any], spatial: Shape, kernel: Shape, strides: Shape,
                    dilations: Shape, output_padding: Shape
                    ) -> tuple[tuple[int, ...] | None, tuple[int, ...]]:
    """(explicit pads, output_padding) of a ConvTranspose, from output_shape or auto_pad.

    A requested output larger than the full transposed size grows output_padding instead.
    """
    auto_pad = attrs.get("auto_pad", "NOTSET")
    wanted = attrs.get("output_shape")
    if wanted is None and auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        wanted = [w * s for w, s in zip(spatial, strides)]
    if wanted is None:
        pads = resolve_pads(auto_pad, attrs.get("pads"), spatial, kernel, strides, dilations)
        return pads, tuple(output_padding)
    wanted = list(wanted)[-len(spatial):]
    begins, ends, extra = [], [], []
    for w, k, s, d, op, out in zip(spatial, kernel, strides, dilations, output_padding, wanted):
        total = s * (w - 1) + op + (k - 1) * d + 1 - out
        extra.append(op + max(-total, 0))
        total = max(total, 0)
        # The ONNX rule: SAME_UPPER puts the larger half at the end, otherwise at the beginning.
        small, large = total // 2, total - total // 2
        begins.append(small if auto_pad == "SAME_UPPER" else large)
        ends.append(large if auto_pad == "SAME_UPPER" else small)
    return tuple(begins + ends), tuple(extra)


def _weight(r: Reader, node: onnx.NodeProto, index: int, role: str) -> np.ndarray:
    name = node.input[index] if index < len(node.input) else ""
    value = r.constant(name) if name else None
    if value is None:
        raise r.fail(node, f"its {role} (input {index + 1}) "
                           f"{'is missing' if not name else 'is computed at run time'}; a layer "
                           f"needs constant weights")
    return np.asarray(value, np.float32)


def _optional_weight(r: Reader, node: onnx.NodeProto, index: int,
                     role: str) -> np.ndarray | None:
    if index >= len(node.input) or not node.input[index]:
        return None
    return _weight(r, node, index, role)


def _data_shape(r: Reader, node: onnx.NodeProto) -> Shape:
    """The sample shape (no batch) of the node's data input, which must have spatial axes."""
    shape = tuple(r.shape(node.input[0]))[1:]
    if len(shape) < 2:
        raise r.fail(node, "it needs spatial axes, but its input is a flat vector")
    return shape


def _window(r: Reader, node: onnx.NodeProto, shape: Shape,
            kernel: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """kernel_size, stride, dilation and explicit pads of a windowed node on this input."""
    attrs = r.attrs(node)
    rank = len(shape) - 1
    if len(kernel) != rank:
        raise r.fail(node, f"its {len(kernel)}-axis kernel does not fit an input with {rank} "
                           f"spatial axes")
    strides = tuple(attrs.get("strides") or [1] * rank)
    dilations = tuple(attrs.get("dilations") or [1] * rank)
    pads = resolve_pads(attrs.get("auto_pad", "NOTSET"), attrs.get("pads"), shape[1:], kernel,
                        strides, dilations)
    if pads is None:
        raise r.fail(node, f"its auto_pad {shown(str(attrs.get('auto_pad')))} is not one ONNX "
                           f"defines")
    return dict(kernel_size=kernel, stride=strides, dilation=dilations, pads=pads)


def _with_bias(w: np.ndarray, b: np.ndarray | None) -> dict[str, np.ndarray]:
    return {"W": w} if b is None else {"W": w, "B": b}


@imports("Conv")
def _import_conv(r: Reader, node: onnx.NodeProto) -> Imported:
    shape = _data_shape(r, node)
    w = _weight(r, node, 1, "kernel")
    b = _optional_weight(r, node, 2, "bias")
    attrs = r.attrs(node)
    kernel = tuple(attrs.get("kernel_shape") or w.shape[2:])
    win = _window(r, node, shape, kernel)
    rank, channels, group = len(kernel), shape[0], int(attrs.get("group", 1))
    out_channels, bias = int(w.shape[0]), b is not None
    spec: LayerSpec
    if group == channels > 1 and out_channels % channels == 0:
        spec = DepthwiseConv(rank=rank, depth_multiplier=out_channels // channels,
                             padding="explicit", bias=bias, **win)
    elif group == 1 and set(kernel) == {1} and set(win["stride"]) == {1} and \
            set(win["dilation"]) == {1} and not any(win["pads"]):
        spec = PointwiseConv(rank=rank, out_channels=out_channels, bias=bias)
    else:
        spec = Conv(rank=rank, out_channels=out_channels, groups=group, padding="explicit",
                    bias=bias, **win)
    return Imported(spec, _with_bias(w, b), runtime_inputs(r, node))


@imports("ConvTranspose")
def _import_conv_transpose(r: Reader, node: onnx.NodeProto) -> Imported:
    shape = _data_shape(r, node)
    w = _weight(r, node, 1, "kernel")
    b = _optional_weight(r, node, 2, "bias")
    attrs = r.attrs(node)
    kernel = tuple(attrs.get("kernel_shape") or w.shape[2:])
    rank = len(kernel)
    strides = tuple(attrs.get("strides") or [1] * rank)
    dilations = tuple(attrs.get("dilations") or [1] * rank)
    output_padding = tuple(attrs.get("output_padding") or [0] * rank)
    pads, output_padding = transposed_pads(attrs, shape[1:], kernel, strides, dilations,
                                           output_padding)
    if pads is None:
        raise r.fail(node, f"its auto_pad {shown(str(attrs.get('auto_pad')))} is not one ONNX "
                           f"defines")
    group = int(attrs.get("group", 1))
    spec = ConvTranspose(rank=rank, out_channels=int(w.shape[1]) * group, kernel_size=kernel,
                         stride=strides, padding="explicit", pads=pads,
                         output_padding=output_padding, dilation=dilations, groups=group,
                         bias=b is not None)
    return Imported(spec, _with_bias(w, b), runtime_inputs(r, node))


@imports("MaxPool")
def _import_max_pool(r: Reader, node: onnx.NodeProto) -> Imported:
    shape = _data_shape(r, node)
    attrs = r.attrs(node)
    win = _window(r, node, shape, tuple(attrs["kernel_shape"]))
    spec = MaxPool(rank=len(shape) - 1, padding="explicit",
                   ceil_mode=bool(attrs.get("ceil_mode", 0)), **win)
    return Imported(spec, {}, runtime_inputs(r, node))


@imports("AveragePool")
def _import_average_pool(r: Reader, node: onnx.NodeProto) -> Imported:
    shape = _data_shape(r, node)
    attrs = r.attrs(node)
    win = _window(r, node, shape, tuple(attrs["kernel_shape"]))
    spec = AvgPool(rank=len(shape) - 1, padding="explicit",
                   ceil_mode=bool(attrs.get("ceil_mode", 0)),
                   count_include_pad=bool(attrs.get("count_include_pad", 0)), **win)
    return Imported(spec, {}, runtime_inputs(r, node))


@imports("GlobalMaxPool", "GlobalAveragePool")
def _import_global_pool(r: Reader, node: onnx.NodeProto) -> Imported:
    _data_shape(r, node)
    spec = GlobalMaxPool() if node.op_type == "GlobalMaxPool" else GlobalAvgPool()
    return Imported(spec, {}, runtime_inputs(r, node))


@imports("Add", "Sub", "Mul", "Div", "Sum")
def _import_arithmetic(r: Reader, node: onnx.NodeProto) -> Imported:
    names = [name for name in node.input if name]
    constants = [(i, r.constant(name)) for i, name in enumerate(names)]
    constants = [(i, value) for i, value in constants if value is not None]
    runtime = runtime_inputs(r, node)
    kind = _MERGES[node.op_type]
    if not runtime:
        raise r.fail(node, "all its operands are constants that folding left")
    if len(constants) > 1 and kind is not Add:
        raise r.fail(node, "it has two constant operands")
    if not constants:
        return Imported(kind(), {}, runtime)
    if len(constants) == 1:
        first, value = constants[0]
    else:  # a Sum with several constant operands: their sum is one stored operand
        first, value = 1, sum(np.asarray(v, np.float64) for _, v in constants)
    value = _modern_broadcast(r, node, np.asarray(value, np.float32))
    spec = kind(constant_shape=tuple(int(d) for d in value.shape),
                constant_first=first == 0)
    return Imported(spec, {"C": value}, runtime)


def _modern_broadcast(r: Reader, node: onnx.NodeProto, value: np.ndarray) -> np.ndarray:
    """The constant operand of a pre-opset-7 broadcast (aligned at `axis`, else at the end)
    reshaped so that right-aligned broadcasting reads it the same way."""
    attrs = r.attrs(node)
    if r.opset >= _LEGACY_BROADCAST_OPSET or not attrs.get("broadcast", 0):
        return value
    rank = len(r.shape(node.input[0]))
    axis = int(attrs.get("axis", rank - value.ndim))
    axis = axis + rank if axis < 0 else axis
    trailing = rank - axis - value.ndim
    if trailing < 0:
        raise r.fail(node, f"its operand {describe_shape(value.shape)} does not fit at axis "
                           f"{axis} of a {rank}-axis input")
    return value.reshape(value.shape + (1,) * trailing)


@imports("Concat")
def _import_concat(r: Reader, node: onnx.NodeProto) -> Imported:
    runtime = runtime_inputs(r, node)
    if len(runtime) != len([name for name in node.input if name]):
        raise r.fail(node, "it joins a constant tensor to its inputs; a concatenation of "
                           "branches joins computed tensors only")
    return Imported(Concat(axis=int(r.attrs(node).get("axis", 1))), {}, runtime)


def dense_from_gemm(r: Reader, node: onnx.NodeProto) -> Imported | None:
    """A Gemm that is exactly a Dense layer on a flat input, else None (the general Gemm rule
    then reads it): transA=0, a constant B (transB=1 reads it as (units, features); 0 as
    (features, units), transposed), alpha and beta folded into the weights, and a constant
    bias that is the same for every sample (one value, or one per unit) or none."""
    attrs = r.attrs(node)
    b = r.constant(node.input[1]) if len(node.input) > 1 else None
    if attrs.get("transA", 0) or b is None or np.ndim(b) != 2 or \
            len(r.shape(node.input[0])) != 2 or r.constant(node.input[0]) is not None:
        return None
    w = np.asarray(b, np.float32) if attrs.get("transB", 0) else np.asarray(b, np.float32).T
    alpha = float(attrs.get("alpha", 1.0))
    w = np.ascontiguousarray(w if alpha == 1.0 else w * np.float32(alpha))
    units = w.shape[0]
    c = r.constant(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if len(node.input) > 2 and node.input[2] and c is None:
        return None
    weights = {"W": w}
    if c is not None:
        beta = float(attrs.get("beta", 1.0))
        c = np.asarray(c, np.float32) if beta == 1.0 else np.asarray(c, np.float32) * np.float32(beta)
        if c.size == 1:
            weights["B"] = np.full(units, c.reshape(-1)[0], np.float32)
        elif c.size == units and c.shape[-1] == units and c.ndim <= 2:
            weights["B"] = c.reshape(units)
        else:
            return None
    return Imported(Dense(units=int(units), bias="B" in weights), weights, (node.input[0],))
