"""Export a stack to an ONNX model: one node per layer (two for a separable conv), weights inside.

The graph reads as the stack does: a layer's node and its output tensor carry the layer's name
("conv1"); a separable conv's first node is named "<layer>/depthwise" and its last writes the
tensor named after the layer; a layer's group ("layer1/0") is written on its nodes as metadata
(engine.onnx.nodes.tag_group), which the importer reads back. Weights are initializers named
"<layer>.<key>" ("conv1.W", "sepconv1.depthwise.W"). Padding is always written as explicit `pads`,
never `auto_pad`, and the batch axis is the symbol "N". Every intermediate tensor has a
value_info with its shape, so viewers such as Netron show shapes on every edge.
"""
from __future__ import annotations

import os
from importlib import metadata
from typing import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper

from models.analysis import analyse
from models.atomic import write_atomic
from models.errors import ConfigError
import engine.onnx.activation  # noqa: F401  (registers the activation and normalisation rules)
import engine.onnx.shape  # noqa: F401  (registers the shape, resampling and matrix rules)
from engine.onnx.nodes import tag_group
from engine.onnx.registry import EXPORTERS, Exporter, exports
from models.layers import (Add, AvgPool, Concat, Conv, ConvTranspose, Dense, DepthwiseConv, Div,
                           GlobalAvgPool, GlobalMaxPool, LayerInfo, LayerSpec,
                           MaxPool, Mul, PointwiseConv, SeparableConv, Sub)
from models.stack import Stack
from models.weights import materialise

MIN_OPSET = 13  # Softmax normalises over one axis (not a flattened tail) from opset 13 on
# From opset 22 on, ONNX's ceil-mode pooling drops a last window that would start past the input
# (and its padding at the start), as ConvScope, PyTorch and onnxruntime do at every opset.
CEIL_RULE_OPSET = 22
# AveragePool takes dilations from opset 19 on (MaxPool has had them since opset 10).
AVERAGE_POOL_DILATION_OPSET = 19
DEFAULT_OPSET = 17
BATCH = "N"

Weights = Mapping[str, np.ndarray]

_SIMPLE_OPS: dict[type[LayerSpec], str] = {
    GlobalMaxPool: "GlobalMaxPool", GlobalAvgPool: "GlobalAveragePool"}


def max_opset() -> int:
    """The newest default-domain opset the installed onnx package knows."""
    return onnx.defs.onnx_opset_version()


def _producer_version() -> str:
    try:
        return metadata.version("convscope")
    except metadata.PackageNotFoundError:
        return "0"


class _GraphBuilder:
    """Collects nodes and the sample shape (no batch axis) of every tensor, and writes the
    weights straight into the model's graph: a 574 MB VGG-19 went through three whole copies
    (a TensorProto per weight, the graph's, the model's) before this."""

    def __init__(self, opset: int) -> None:
        self.opset = opset
        self.model = onnx.ModelProto()
        self.nodes: list[onnx.NodeProto] = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.opsets: dict[str, int] = {}  # custom domains by version

    def node(self, op: str, inputs: list[str], output: str, shape: tuple[int, ...],
             name: str | None = None, domain: str = "", outputs: list[str] | None = None,
             **attrs: object) -> str:
        """Add a node whose output `output` has sample shape `shape`; returns `output`."""
        self.nodes.append(helper.make_node(op, inputs, outputs or [output], name=name or output,
                                           domain=domain or None, **attrs))
        self.shapes[output] = tuple(shape)
        return output

    def use_opset(self, domain: str, version: int) -> None:
        if domain not in ("", "ai.onnx"):
            self.opsets[domain] = max(version, self.opsets.get(domain, 0))

    def weight(self, name: str, array: np.ndarray) -> str:
        self._initializer(name, np.asarray(array, "<f4"), TensorProto.FLOAT)
        return name

    def int64(self, name: str, values: object) -> str:
        self._initializer(name, np.asarray(values, "<i8"), TensorProto.INT64)
        return name

    def _initializer(self, name: str, array: np.ndarray, data_type: int) -> None:
        tensor = self.model.graph.initializer.add()
        tensor.name = name
        tensor.data_type = data_type
        tensor.dims.extend(array.shape)
        tensor.raw_data = array.tobytes()


def _weight_inputs(builder: _GraphBuilder, weights: Weights, prefix: str, keys: tuple[str, ...]
                   ) -> list[str]:
    """Initializer names for the keys present in weights (a missing bias is simply left out)."""
    return [builder.weight(f"{prefix}{key}", weights[key]) for key in keys if key in weights]


def _conv_attrs(spec: LayerSpec, info: LayerInfo) -> dict[str, object]:
    return dict(kernel_shape=list(spec.kernel_size), strides=list(spec.stride),  # type: ignore[attr-defined]
                pads=list(info.attrs["pads"]), dilations=list(spec.dilation),  # type: ignore[attr-defined]
                group=int(info.attrs["group"]))


def _emit_conv(b: _GraphBuilder, spec: LayerSpec, info: LayerInfo, w: Weights, prefix: str,
               x: str, out: str, key: str = "") -> str:
    inputs = [x] + _weight_inputs(b, w, prefix, (f"{key}W", f"{key}B"))
    return b.node("Conv", inputs, out, info.output_shape, **_conv_attrs(spec, info))


@exports(Conv, DepthwiseConv, PointwiseConv)
def _conv(b: _GraphBuilder, spec: LayerSpec, info: LayerInfo, w: Weights, prefix: str,
          inputs: list[str], out: str) -> str:
    return _emit_conv(b, spec, info, w, prefix, inputs[0], out)


@exports(*_SIMPLE_OPS)
def _simple(b: _GraphBuilder, spec: LayerSpec, info: LayerInfo, w: Weights, prefix: str,
            inputs: list[str], out: str) -> str:
    return b.node(_SIMPLE_OPS[type(spec)], inputs[:1], out, info.output_shape)


@exports(ConvTranspose)
def _conv_transpose(b: _GraphBuilder, spec: ConvTranspose, info: LayerInfo, w: Weights,
                    prefix: str, inputs: list[str], out: str) -> str:
    return b.node("ConvTranspose", inputs[:1] + _weight_inputs(b, w, prefix, ("W", "B")), out,
                  info.output_shape, kernel_shape=list(spec.kernel_size),
                  strides=list(spec.stride), pads=list(info.attrs["pads"]),
                  dilations=list(spec.dilation), group=spec.groups,
                  output_padding=list(spec.output_padding))


@exports(MaxPool)
def _max_pool(b: _GraphBuilder, spec: MaxPool, info: LayerInfo, w: Weights, prefix: str,
              inputs: list[str], out: str) -> str:
    pads, ceil_mode = _pool_window(spec, info, b.shapes[inputs[0]], b.opset)
    return b.node("MaxPool", inputs[:1], out, info.output_shape,
                  kernel_shape=list(spec.kernel_size), strides=list(spec.stride), pads=pads,
                  ceil_mode=ceil_mode, dilations=list(spec.dilation))


@exports(AvgPool)
def _avg_pool(b: _GraphBuilder, spec: AvgPool, info: LayerInfo, w: Weights, prefix: str,
              inputs: list[str], out: str) -> str:
    pads, ceil_mode = _pool_window(spec, info, b.shapes[inputs[0]], b.opset)
    dilated = max(spec.dilation) > 1
    if dilated and b.opset < AVERAGE_POOL_DILATION_OPSET:
        raise ConfigError(f"average pooling with dilation needs ONNX opset "
                          f"{AVERAGE_POOL_DILATION_OPSET} or later; export with --opset "
                          f"{AVERAGE_POOL_DILATION_OPSET}, or set the dilation to 1",
                          field="dilation")
    extra = {"dilations": list(spec.dilation)} if dilated else {}
    return b.node("AveragePool", inputs[:1], out, info.output_shape,
                  kernel_shape=list(spec.kernel_size), strides=list(spec.stride), pads=pads,
                  ceil_mode=ceil_mode, **extra,
                  # without pads there is nothing to count: writing 0 keeps rewritten pads exact
                  count_include_pad=int(spec.count_include_pad and any(info.attrs["pads"])))


@exports(Dense)
def _dense(b: _GraphBuilder, spec: Dense, info: LayerInfo, w: Weights, prefix: str,
           inputs: list[str], out: str) -> str:
    return b.node("Gemm", inputs[:1] + _weight_inputs(b, w, prefix, ("W", "B")), out,
                  info.output_shape, transB=1)


@exports(SeparableConv)
def _separable(b: _GraphBuilder, spec: SeparableConv, info: LayerInfo, w: Weights, prefix: str,
               inputs: list[str], out: str) -> str:
    depthwise, pointwise = spec.parts()
    mid = _emit_conv(b, depthwise, info.inner[0], w, prefix, inputs[0], f"{out}/depthwise",
                     "depthwise.")
    return _emit_conv(b, pointwise, info.inner[1], w, prefix, mid, out, "pointwise.")


_MERGE_OPS = {Add: "Add", Sub: "Sub", Mul: "Mul", Div: "Div"}


@exports(*_MERGE_OPS)
def _arithmetic(b: _GraphBuilder, spec: Add | Sub | Mul | Div, info: LayerInfo, w: Weights,
                prefix: str, inputs: list[str], out: str) -> str:
    operands = list(inputs)
    if "C" in w:
        operands.insert(0 if spec.constant_first else len(operands),
                        b.weight(f"{prefix}C", w["C"]))
    op = _MERGE_OPS[type(spec)]
    if len(operands) > 2:  # an n-ary Add
        return b.node("Sum", operands, out, info.output_shape)
    return b.node(op, operands, out, info.output_shape)


@exports(Concat)
def _concat(b: _GraphBuilder, spec: Concat, info: LayerInfo, w: Weights, prefix: str,
            inputs: list[str], out: str) -> str:
    return b.node("Concat", list(inputs), out, info.output_shape, axis=int(info.attrs["axis"]))


def exporter_for(spec: LayerSpec) -> Exporter:
    """The registered exporter of the spec's kind; ConfigError when the kind has none."""
    exporter = EXPORTERS.get(type(spec))
    if exporter is None:
        raise ConfigError(f"{spec.type_name} cannot be exported to ONNX yet")
    return exporter


def _pool_window(spec: MaxPool | AvgPool, info: LayerInfo, in_shape: tuple[int, ...],
                 opset: int) -> tuple[list[int], int]:
    """(pads, ceil_mode) that give the spec's windows under the opset's output-size rule.

    Before CEIL_RULE_OPSET, ONNX's ceil mode keeps a last window that starts past the input;
    where that would add a window, floor mode with end pads that stop where the last window
    ends gives the same windows (the pads hold -inf for max and are not counted in a mean
    without count_include_pad). Raises ConfigError when only a newer opset can say it.
    """
    pads = list(info.attrs["pads"])
    if not spec.ceil_mode or opset >= CEIL_RULE_OPSET:
        return pads, int(spec.ceil_mode)
    rank = len(spec.kernel_size)
    spans = [(k - 1) * d + 1 for k, d in zip(spec.kernel_size, spec.dilation)]
    geometry = list(zip(in_shape[1:], spans, spec.stride, pads[:rank], pads[rank:],
                        info.output_shape[1:]))
    if all(-(-(w + begin + end - k) // s) + 1 == out
           for w, k, s, begin, end, out in geometry):
        return pads, 1
    if isinstance(spec, AvgPool) and spec.count_include_pad and any(pads):
        raise ConfigError(f"with ceil mode and count_include_pad, ONNX before opset "
                          f"{CEIL_RULE_OPSET} adds a last window that starts past the input; "
                          f"export with opset {CEIL_RULE_OPSET} or later, or turn ceil mode off",
                          field="ceil_mode")
    ends = [max((out - 1) * s + k - w - begin, 0) for w, k, s, begin, _, out in geometry]
    return pads[:rank] + ends, 0


def _check_opset(opset: int) -> None:
    if isinstance(opset, bool) or not isinstance(opset, int) or not \
            MIN_OPSET <= opset <= max_opset():
        raise ConfigError(f"opset must be a whole number from {MIN_OPSET} to {max_opset()}, got "
                          f"{opset!r}; use {DEFAULT_OPSET} unless a runtime needs another",
                          field="opset")


def _input_name(stack: Stack) -> str:
    """"input", or "input_<n>" when a layer already uses that name for its output."""
    taken = {layer.name for layer in stack.layers}
    name, n = "input", 0
    while name in taken:
        n += 1
        name = f"input_{n}"
    return name


def _value_info(name: str, shape: tuple[int, ...]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [BATCH, *shape])


def _build_model(stack: Stack, opset: int, layer_outputs: bool) -> onnx.ModelProto:
    """The unchecked model of export_model."""
    _check_opset(opset)
    if not stack.layers:
        raise ConfigError("the stack has no layers; add one before exporting")
    report = analyse(stack)
    if report.first_error is not None:
        raise report.first_error
    stack = materialise(stack, report)
    builder = _GraphBuilder(opset)
    input_name = _input_name(stack)
    builder.shapes[input_name] = stack.input.sample_shape
    for index, (layer, layer_report) in enumerate(zip(stack.layers, report.layers)):
        inputs = [input_name if j < 0 else stack.layers[j].name for j in stack.sources[index]]
        first = len(builder.nodes)
        try:
            exporter_for(layer.spec)(builder, layer.spec, layer_report.info, layer.weights,
                                     f"{layer.name}.", inputs, layer.name)
        except ConfigError as err:
            raise err.at(index, layer.name, layer.spec.type_name) from None
        tag_group(builder.nodes[first:], layer.group)
    names = [layer.name for layer in stack.layers] if layer_outputs else \
        [stack.layers[i].name for i in stack.output_indices]
    outputs = [_value_info(name, builder.shapes[name]) for name in names]
    value_infos = [_value_info(name, shape) for name, shape in builder.shapes.items()
                   if name not in names and name != input_name]
    model = builder.model
    graph = model.graph
    graph.name = "convscope"
    graph.node.extend(builder.nodes)
    graph.input.append(_value_info(input_name, stack.input.sample_shape))
    graph.output.extend(outputs)
    graph.value_info.extend(value_infos)
    opset_ids = [helper.make_opsetid("", opset)] + [
        helper.make_opsetid(domain, version) for domain, version in builder.opsets.items()]
    model.opset_import.extend(opset_ids)
    model.ir_version = helper.find_min_ir_version_for(opset_ids, ignore_unknown=True)
    model.producer_name = "ConvScope"
    model.producer_version = _producer_version()
    return model


def export_model(stack: Stack, opset: int = DEFAULT_OPSET,
                 layer_outputs: bool = False) -> onnx.ModelProto:
    """The stack as a checked ONNX model (weights as initializers, missing ones filled).

    The graph has one float32 input (N, C, *spatial) with a symbolic batch N, and the last layer's
    output as its output; with layer_outputs every layer's output tensor (named after the layer)
    is a graph output too, in stack order. Raises ConfigError for an opset outside 13..the newest
    the onnx package knows, for a stack with no layers, and the stack's first ConfigError when it
    cannot run.
    """
    model = _build_model(stack, opset, layer_outputs)
    onnx.checker.check_model(model, full_check=True)
    return model


def save_model(stack: Stack, path: str | os.PathLike[str], opset: int = DEFAULT_OPSET) -> None:
    """Export the stack (see export_model) and write it to path atomically.

    The model is serialised once, and the checker reads those bytes (it would serialise the
    model again: 3.5 s of VGG-19's export)."""
    data = _build_model(stack, opset, layer_outputs=False).SerializeToString()
    onnx.checker.check_model(data, full_check=True)
    write_atomic(path, data)
