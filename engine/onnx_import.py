"""Import an ONNX model whose graph is a chain of supported layers as a stack with its weights.

What becomes a layer:
- one layer per node, in the order the chain runs from the input to the output, named after the
  node (names made unique; unnamed nodes get names such as conv1);
- Conv: group == C_in > 1 -> DepthwiseConv; 1x1, stride 1, unpadded, undilated, group 1 ->
  PointwiseConv; else Conv, always with explicit pads (auto_pad SAME_UPPER/SAME_LOWER/VALID are
  resolved against the input size);
- MatMul followed by an Add of a constant bias (or MatMul alone), and Gemm with transA=0
  (alpha and beta folded into the weights) -> Dense;
- Reshape to (batch, -1) -> Flatten;
- an Add joining a chain with the tensor it started from (or with a 1x1 convolution of it)
  -> Residual; Conv, Conv, Sigmoid, Mul (+ Add of the input) -> Gated;
- Identity and inference-mode Dropout are no-ops and are dropped (they add no layer).

Anything else raises FileFormatError naming the ops and nodes; nothing is dropped silently.
Models older than opset 17 are upgraded with onnx's version converter where it can; where it
cannot, each op is read by its own opset's rules (Softmax/Flatten axes before opset 13,
BatchNormalization's spatial/is_test, Gemm's broadcast, Dropout's is_test, Reshape's shape
attribute before opset 5).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from models.errors import ConfigError, FileFormatError
from models.layers import (AvgPool, BatchNorm, Conv, ConvTranspose, Dense, DepthwiseConv, Flatten,
                           Gated, GlobalAvgPool, GlobalMaxPool, LayerSpec, LeakyReLU, MaxPool,
                           PointwiseConv, ReLU, Residual, Sigmoid, Softmax, Tanh)
from models.layers.base import Shape, describe_shape
from engine.onnx_load import Source, load_supported, node_attributes
from models.stack import InputSpec, Layer, Stack, frozen_array

_SIMPLE: dict[str, Callable[[], LayerSpec]] = {
    "Relu": ReLU, "Sigmoid": Sigmoid, "Tanh": Tanh, "GlobalMaxPool": GlobalMaxPool,
    "GlobalAveragePool": GlobalAvgPool}

def import_model(source: Source) -> Stack:
    """The stack an ONNX model (a file path, its bytes, or a ModelProto) describes.

    The input spec comes from the graph's single runtime input (N, C, *spatial), a symbolic batch
    read as 1. Raises FileFormatError, naming the file, for a missing, empty, truncated or
    non-ONNX file, external data outside the model's folder, training-mode nodes, unsupported ops
    (listed with their node names), or a graph that is not a chain of supported layers.
    """
    model, opset, label = load_supported(source)
    graph = _Graph(model, opset, label)
    return _Reader(graph).stack()


# The graph -----------------------------------------------------------------------------------

class _Graph:
    """Nodes, constants, consumers and shapes of a loaded model."""

    def __init__(self, model: onnx.ModelProto, opset: int, label: str) -> None:
        self.label = label
        self.opset = opset
        self.constants: dict[str, np.ndarray] = {
            t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        self.nodes: list[onnx.NodeProto] = []
        for node in model.graph.node:
            if node.op_type == "Constant":
                self.constants[node.output[0]] = _constant_value(node, label)
            else:
                self.nodes.append(node)
        self.order = {id(n): i for i, n in enumerate(self.nodes)}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in self.nodes:
            for name in dict.fromkeys(node.input):
                if name and name not in self.constants:
                    self.consumers.setdefault(name, []).append(node)
        self.outputs = [o.name for o in model.graph.output]
        self.input_name, self.input_shape = self._input(model.graph)
        self.inferred = _inferred_shapes(model, label)

    def _input(self, graph: onnx.GraphProto) -> tuple[str, tuple[int, ...]]:
        inputs = [i for i in graph.input if i.name not in self.constants]
        if len(inputs) != 1:
            names = ", ".join(i.name for i in inputs) or "none"
            raise FileFormatError(f"{self.label}: a stack has one input, but the graph has "
                                  f"{len(inputs)} ({names})")
        value = inputs[0]
        tensor = value.type.tensor_type
        if not value.type.HasField("tensor_type") or tensor.elem_type != onnx.TensorProto.FLOAT:
            raise FileFormatError(f"{self.label}: the input {value.name!r} must be a float32 "
                                  f"tensor")
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        if not 2 <= len(dims) <= 5:
            raise FileFormatError(
                f"{self.label}: the input {value.name!r} has {len(dims)} axes; a stack's input "
                f"is (N, C, spatial...) with up to 3 spatial axes")
        if any(d is None or d < 1 for d in dims[1:]):
            raise FileFormatError(f"{self.label}: the input {value.name!r} has sizes "
                                  f"{_dims_text(dims)}; every axis but the batch must be fixed")
        batch = dims[0] if dims[0] else 1
        return value.name, (batch, *dims[1:])

    def constant(self, name: str) -> np.ndarray | None:
        return self.constants.get(name)

    def sole_consumer(self, tensor: str) -> onnx.NodeProto | None:
        nodes = self.consumers.get(tensor, [])
        return nodes[0] if len(nodes) == 1 else None

    def used(self, tensor: str) -> bool:
        return bool(tensor) and (tensor in self.consumers or tensor in self.outputs)


def _dims_text(dims: list[int | None]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"


def _constant_value(node: onnx.NodeProto, label: str) -> np.ndarray:
    for attr in node.attribute:
        if attr.name == "value":
            return numpy_helper.to_array(attr.t)
        if attr.name in ("value_float", "value_int", "value_floats", "value_ints"):
            return np.asarray(helper.get_attribute_value(attr))
    raise FileFormatError(f"{label}: Constant {node.name or node.output[0]!r} holds no numeric "
                          f"value ConvScope can read")


def _inferred_shapes(model: onnx.ModelProto, label: str) -> dict[str, tuple[int | None, ...]]:
    """Tensor shapes by name from onnx shape inference (None for unknown sizes)."""
    try:
        inferred = shape_inference.infer_shapes(model)
    except Exception as err:  # InferenceError and C++ errors surface as several types
        raise FileFormatError(f"{label}: onnx shape inference fails: {err}") from None
    shapes = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.output):
        tensor = value.type.tensor_type
        if value.type.HasField("tensor_type") and tensor.HasField("shape"):
            shapes[value.name] = tuple(d.dim_value if d.HasField("dim_value") else None
                                       for d in tensor.shape.dim)
    return shapes


# Reading layers ------------------------------------------------------------------------------

@dataclass
class _Part:
    """One layer read from the graph: its spec and weights, the nodes it used, its output."""
    name: str
    spec: LayerSpec | None  # None for a no-op (Identity, inference Dropout)
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    output: str = ""


class _Reader:
    """Walks the chain from the graph input and turns it into layers."""

    def __init__(self, graph: _Graph) -> None:
        self.g = graph
        self.batch = graph.input_shape[0]
        self.visited: set[int] = set()

    def fail(self, node: onnx.NodeProto | None, reason: str) -> FileFormatError:
        where = f"{node.op_type} node {node.name or node.output[0]!r}: " if node else ""
        return FileFormatError(f"{self.g.label}: {where}{reason}")

    def stack(self) -> Stack:
        g = self.g
        parts, end = self.chain(g.input_name, g.input_shape[1:], stop=None)
        layers = self.layers(parts)
        seen = {g.input_name, end} | {p.output for p in parts}
        if end not in g.outputs:
            raise self.fail(None, f"the chain ends at tensor {end!r}, which is not a graph output")
        stray = [o for o in g.outputs if o not in seen]
        if stray:
            raise self.fail(None, f"the graph outputs {', '.join(stray)} are not layer outputs "
                                  f"(a stack has one output, plus its layers' outputs)")
        left = [n for n in g.nodes if id(n) not in self.visited]
        if left:
            listed = ", ".join(f"{n.op_type} ({n.name or n.output[0]})" for n in left[:12])
            raise self.fail(None, f"these nodes are not on the chain from the input to the "
                                  f"output: {listed}")
        return Stack(InputSpec.from_shape(g.input_shape), tuple(layers))

    def layers(self, parts: list[_Part]) -> list[Layer]:
        taken: set[str] = set()
        layers = []
        for part in parts:
            assert part.spec is not None
            name = _layer_name(part.name, part.spec, taken)
            taken.add(name)
            layers.append(Layer(name, part.spec, {k: frozen_array(v)
                                                  for k, v in part.weights.items()}))
        return layers

    # The walk.

    def chain(self, tensor: str, shape: Shape, stop: str | None,
              first: list[onnx.NodeProto] | None = None) -> tuple[list[_Part], str]:
        """Layers from `tensor` (sample shape `shape`) until `stop` or the last consumer-less
        tensor; `first` forces the first consumers when the tensor also feeds a shortcut.
        Returns the layers (no-ops left out) and the tensor where the walk ended."""
        parts: list[_Part] = []
        while tensor != stop:
            consumers = first if first is not None else \
                [n for n in self.g.consumers.get(tensor, []) if id(n) not in self.visited]
            first = None
            if not consumers:
                break
            part = self.part(tensor, shape, consumers)
            self.visited.update(id(n) for n in part.nodes)
            tensor = part.output
            if part.spec is not None:
                shape = self.checked_shape(part, shape)
                parts.append(part)
        if stop is not None and tensor != stop:
            raise self.fail(None, f"the branch from {tensor!r} never reaches {stop!r}")
        return parts, tensor

    def checked_shape(self, part: _Part, in_shape: Shape) -> Shape:
        """The part's output shape, after checking its settings, weights and onnx's shape."""
        node = part.nodes[-1]
        try:
            info = part.spec.analyse(in_shape)  # type: ignore[union-attr]
        except ConfigError as err:
            raise self.fail(node, err.reason) from None
        for key, want in info.weight_shapes.items():
            have = part.weights.get(key)
            if have is None or tuple(have.shape) != tuple(want):
                got = "none" if have is None else describe_shape(have.shape)
                raise self.fail(node, f"the weight {key} has shape {got}, but the layer needs "
                                      f"{describe_shape(want)}")
        inferred = self.g.inferred.get(part.output)
        out = tuple(info.output_shape)
        # Before opset 22 onnx's ceil-mode pooling may count one more window than onnxruntime
        # and ConvScope (see onnx_export.CEIL_RULE_OPSET): no ground for refusing the model.
        ceil_mode = getattr(part.spec, "ceil_mode", False)
        if inferred and not ceil_mode and None not in inferred[1:] and tuple(inferred[1:]) != out:
            raise self.fail(node, f"onnx infers the output shape {_dims_text(list(inferred))}, "
                                  f"but ConvScope computes (N, {', '.join(map(str, out))})")
        return out

    def part(self, tensor: str, shape: Shape, consumers: list[onnx.NodeProto]) -> _Part:
        if len(consumers) > 1:
            block = self.gated(tensor, shape, consumers) or self.residual(tensor, shape, consumers)
            if block is None:
                names = ", ".join(f"{n.op_type} ({n.name or n.output[0]})" for n in consumers)
                raise self.fail(None, f"the tensor {tensor!r} feeds {len(consumers)} nodes "
                                      f"({names}) that form no residual or gated block")
            return block
        node = consumers[0]
        if node.input[0] != tensor:
            raise self.fail(node, f"it reads the running tensor {tensor!r} as a later input; "
                                  f"only residual and gated blocks join branches")
        reader = getattr(self, f"read_{node.op_type}", None)
        if reader is None:
            raise self.fail(node, "this operator is only supported inside a Dense (MatMul + "
                                  "Add), residual or gated block")
        return reader(node, shape)

    # Helpers for node readers.

    def weight(self, node: onnx.NodeProto, index: int, role: str) -> np.ndarray:
        name = node.input[index] if index < len(node.input) else ""
        value = self.g.constant(name) if name else None
        if value is None:
            raise self.fail(node, f"its {role} (input {index + 1}) "
                                  f"{'is missing' if not name else 'is computed at run time'}; "
                                  f"ConvScope needs constant weights")
        return value

    def optional_weight(self, node: onnx.NodeProto, index: int, role: str) -> np.ndarray | None:
        if index >= len(node.input) or not node.input[index]:
            return None
        return self.weight(node, index, role)

    def only_first_output(self, node: onnx.NodeProto, what: str) -> None:
        extra = [o for o in node.output[1:] if self.g.used(o)]
        if extra:
            raise self.fail(node, f"its {what} output {extra[0]!r} is used; ConvScope computes "
                                  f"only the first output")

    def window(self, node: onnx.NodeProto, shape: Shape,
               kernel: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        """kernel_size, stride, dilation and explicit pads of a windowed node on this input."""
        attrs = node_attributes(node)
        rank = len(shape) - 1
        if rank < 1:
            raise self.fail(node, "it needs spatial axes, but its input is a flat vector")
        strides = tuple(attrs.get("strides", [1] * rank))
        dilations = tuple(attrs.get("dilations", [1] * rank))
        pads = _resolve_pads(attrs.get("auto_pad", "NOTSET"), attrs.get("pads"), shape[1:],
                             kernel, strides, dilations)
        if pads is None:
            raise self.fail(node, f"unknown auto_pad {attrs.get('auto_pad')!r}")
        return dict(kernel_size=kernel, stride=strides, dilation=dilations, pads=pads)

    # Node readers: read_<OpType>(node, input shape) -> _Part.

    def read_Identity(self, node: onnx.NodeProto, shape: Shape) -> _Part:
        return _Part(node.name, None, nodes=[node], output=node.output[0])

    def read_Dropout(self, node: onnx.NodeProto, shape: Shape) -> _Part:
        # Training-mode dropout was refused before the walk; what is left is the identity.
        self.only_first_output(node, "mask")
        return _Part(node.name, None, nodes=[node], output=node.output[0])

    def read_Conv(self, node: onnx.NodeProto, shape: Shape) -> _Part:
        w = self.weight(node, 1, "kernel")
        b = self.optional_weight(node, 2, "bias")
        spec = self.conv_spec(node, shape, w, b is not None)
        weights = {"W": w} if b is None else {"W": w, "B": b}
        return _Part(node.name, spec, weights, [node], node.output[0])

    def conv_spec(self, node: onnx.NodeProto, shape: Shape, w: np.ndarray,
                  bias: bool) -> LayerSpec:
        attrs = node_attributes(node)
        kernel = tuple(attrs.get("kernel_shape", w.shape[2:]))
        win = self.window(node, shape, kernel)
        rank, channels, group = len(kernel), shape[0], int(attrs.get("group", 1))
        out_channels = int(w.shape[0])
        if group == channels > 1:
            return DepthwiseConv(rank=rank, depth_multiplier=max(out_channels // channels, 1),
                                 padding="explicit", bias=bias, **win)
        if group == 1 and set(kernel) == {1} and set(win["stride"]) == {1} and \
                set(win["dilation"]) == {1} and not any(win["pads"]):
            return PointwiseConv(rank=rank, out_channels=out_channels, bias=bias)
        return Conv(rank=rank, out_channels=out_channels, groups=group, padding="explicit",
                    bias=bias, **win)

    def read_ConvTranspose(self, node: onnx.NodeProto, shape: Shape) -> _Part:
        w = self.weight(node, 1, "kernel")
        b = self.optional_weight(node, 2, "bias")
        attrs = node_attributes(node)
        kernel = tuple(attrs.get("kernel_shape", w.shape[2:]))
        rank = len(kernel)
        strides = tuple(attrs.get("strides", [1] * rank))
        dilations = tuple(attrs.get("dilations", [1] * rank))
        output_padding = tuple(attrs.get("output_padding", [0] * rank))
        pads, output_padding = _transposed_pads(attrs, shape[1:], kernel, strides, dilations,
                                                output_padding)
        if pads is None:
            raise self.fail(node, f"unknown auto_pad {attrs.get('auto_pad')!r}")
        group = int(attrs.get("group", 1))
        spec = ConvTranspose(rank=rank, out_channels=int(w.shape[1]) * group, kernel_size=kernel,
                             stride=strides, padding="explicit", pads=pads,
                             output_padding=output_padding, dilation=dilations, groups=group,
                             bias=b is not None)
        weights = {"W": w} if b is None else {"W": w, "B": b}
        return _Part(node.name, spec, weights, [node], node.output[0])

    def read_MaxPool(self, node: onnx.NodeProto, shape: Shape) -> _Part:
        self.only_first_output(node, "indices")
        attrs = node_attributes(node)
        win = self.window(node, shape, tuple(attrs["kernel_shape"]))
        spec = MaxPool(rank=len(shape) - 1, padding="explicit",
                       ceil_mode=bool(attrs.get("ceil_mode", 0)), **win)
        return _Part(node.name, spec, nodes=[node], output=node.output[0])

    def read_AveragePool(self, node: onnx.NodeProto, shape: Shape) -> _Part:
        attrs = node_attributes(node)
        win = self.window(node, shape, tuple(attrs["kernel_shape"]))
        spec = AvgPool(rank=len(shape) - 1, padding="explicit",
                       ceil_mode=bool(attrs.get("ceil_mode", 0)),
                       count_include_pad=bool(attrs.get("count_include_pad", 0)), **win)
        return _Part(node.name, spec, nodes=[node], output=node.output[0])

    def read_simple(self, node: onnx.NodeProto, shape: Shape) -> _Part:
        return _Part(node.name, _SIMPLE[node.op_type](), nodes=[node], output=node.output[0])

    read_Relu = read_Sigmoid = read_Tanh = read_GlobalMaxPool = read_GlobalAveragePool = \
        read_simple

    def read_LeakyRelu(self, node: onnx.NodeProto, shape: Shape) -> _Part:
        alpha = float(node_attributes(node).get("alpha", 0.01))
        return _Part(node.name, LeakyReLU(alpha=alpha), nodes=[node], output=node.output[0])

    def read_Softmax(self, node: onnx.NodeProto, shape: Shape) -> _Part:
        rank = len(shape) + 1
        old = self.g.opset < 13
        axis = int(node_attributes(node).get("axis", 1 if old else -1))
        axis = axis + rank if axis < 0 else axis
        # Before opset 13 Softmax normalises over every axis from `axis` on, flattened.
        channel_only = axis == 1 and (not old or math.prod(shape[1:]) == 1)
        if not channel_only:
            span = f"axes {axis}.." if old else f"axis {axis}"
            raise self.fail(node, f"it normalises over {span} of a {rank}-axis tensor; "
                                  f"ConvScope's Softmax normalises over the channel axis (1) only")
        return _Part(node.name, Softmax(), nodes=[node], output=node.output[0])

    def read_Flatten(self, node: onnx.NodeProto, shape: Shape) -> _Part:
        rank = len(shape) + 1
        axis = int(node_attributes(node).get("axis", 1))
        if (axis + rank if axis < 0 else axis) != 1:
            raise self.fail(node, f"it flattens at axis {axis}; ConvScope's Flatten keeps the "
                                  f"batch axis (axis 1)")
        return _Part(node.name, Flatten(), nodes=[node], output=node.output[0])

    def read_Reshape(self, node: onnx.NodeProto, shape: Shape) -> _Part:
        attrs = node_attributes(node)
        target = attrs.get("shape") if self.g.opset < 5 else self.optional_weight(node, 1, "shape")
        if target is None:
            raise self.fail(node, "its target shape is computed at run time; ConvScope reads a "
                                  "Reshape as a Flatten only with a constant shape")
        target = [int(v) for v in np.asarray(target).ravel()]
        features = math.prod(shape)
        zero_copies = not attrs.get("allowzero", 0)
        batch_ok = len(target) == 2 and (target[0] in (-1, self.batch)
                                         or (target[0] == 0 and zero_copies))
        if not batch_ok or target[1] not in (-1, features) or target == [-1, -1]:
            raise self.fail(node, f"it reshapes (N, {', '.join(map(str, shape))}) to {target}; "
                                  f"ConvScope reads a Reshape only as a Flatten to (N, -1)")
        return _Part(node.name, Flatten(), nodes=[node], output=node.output[0])

    def read_BatchNormalization(self, node: onnx.NodeProto, shape: Shape) -> _Part:
        self.only_first_output(node, "training statistics")
        weights = {key: self.weight(node, i + 1, key)
                   for i, key in enumerate(("scale", "bias", "mean", "var"))}
        epsilon = float(node_attributes(node).get("epsilon", 1e-5))
        return _Part(node.name, BatchNorm(epsilon=epsilon), weights, [node], node.output[0])

    def read_Gemm(self, node: onnx.NodeProto, shape: Shape) -> _Part:
        attrs = node_attributes(node)
        if attrs.get("transA", 0):
            raise self.fail(node, "transA=1 would treat the batch as features; ConvScope's "
                                  "Dense needs transA=0")
        b = self.weight(node, 1, "weight matrix")
        w = b if attrs.get("transB", 0) else b.T
        w = w * np.float32(attrs.get("alpha", 1.0))
        c = self.optional_weight(node, 2, "bias")
        bias = None if c is None else self.dense_bias(node, c * np.float32(attrs.get("beta", 1.0)),
                                                      w.shape[0])
        return self.dense(node, w, bias, [node], node.output[0])

    def read_MatMul(self, node: onnx.NodeProto, shape: Shape) -> _Part:
        b = self.weight(node, 1, "weight matrix")
        if b.ndim != 2 or len(shape) != 1:
            raise self.fail(node, f"it multiplies (N, {', '.join(map(str, shape))}) by "
                                  f"{describe_shape(b.shape)}; ConvScope reads MatMul only as a "
                                  f"Dense layer on a flat input")
        w, nodes, output, bias = b.T, [node], node.output[0], None
        add = self.g.sole_consumer(output)
        if add is not None and add.op_type == "Add" and output not in self.g.outputs:
            other = [t for t in add.input if t != output]
            constant = self.g.constant(other[0]) if len(other) == 1 else None
            if constant is not None:
                bias = self.dense_bias(add, constant, w.shape[0])
                nodes, output = [node, add], add.output[0]
        return self.dense(node, w, bias, nodes, output)

    def dense_bias(self, node: onnx.NodeProto, c: np.ndarray, units: int) -> np.ndarray:
        """A bias of `units` values from a constant that broadcasts along the batch only."""
        if c.size == 1:
            return np.full(units, c.ravel()[0], np.float32)
        if c.size == units and c.shape[-1] == units:
            return c.reshape(units)
        raise self.fail(node, f"its bias has shape {describe_shape(c.shape)}; a Dense bias has "
                              f"one value per unit ({units}), the same for every sample")

    def dense(self, node: onnx.NodeProto, w: np.ndarray, bias: np.ndarray | None,
              nodes: list[onnx.NodeProto], output: str) -> _Part:
        weights = {"W": np.ascontiguousarray(w)} if bias is None else \
            {"W": np.ascontiguousarray(w), "B": bias}
        spec = Dense(units=int(w.shape[0]), bias=bias is not None)
        return _Part(node.name, spec, weights, nodes, output)

    # Blocks.

    def gated(self, x: str, shape: Shape, consumers: list[onnx.NodeProto]) -> _Part | None:
        """Conv a, Conv b -> Sigmoid -> Mul(a, sigmoid) (-> Add(mul, x)) from x, else None."""
        convs = [n for n in consumers if n.op_type == "Conv" and n.input[0] == x]
        for gate_conv in convs:
            gate = self.g.sole_consumer(gate_conv.output[0])
            mul = self.g.sole_consumer(gate.output[0]) if gate is not None and \
                gate.op_type == "Sigmoid" else None
            if mul is None or mul.op_type != "Mul":
                continue
            value_tensor = next((t for t in mul.input if t != gate.output[0]), None)
            value_conv = next((n for n in convs if n.output[0] == value_tensor
                               and n is not gate_conv), None)
            if value_conv is None or self.g.sole_consumer(value_tensor) is not mul:
                continue
            rest = [n for n in consumers if n is not gate_conv and n is not value_conv]
            add = self.g.sole_consumer(mul.output[0])
            residual = bool(rest) and add is not None and add.op_type == "Add" and \
                rest == [add] and set(add.input) == {mul.output[0], x}
            if rest and not residual:
                continue
            return self.gated_part(x, shape, value_conv, gate_conv, [gate, mul] +
                                   ([add] if residual else []), residual)
        return None

    def gated_part(self, x: str, shape: Shape, a: onnx.NodeProto, b: onnx.NodeProto,
                   tail: list[onnx.NodeProto], residual: bool) -> _Part:
        weights: dict[str, np.ndarray] = {}
        specs = []
        for key, conv in (("a.", a), ("b.", b)):
            w = self.weight(conv, 1, "kernel")
            bias = self.optional_weight(conv, 2, "bias")
            attrs = node_attributes(conv)
            if int(attrs.get("group", 1)) != 1:
                raise self.fail(conv, "a gated block's convolutions must have group 1")
            kernel = tuple(attrs.get("kernel_shape", w.shape[2:]))
            specs.append(Gated(rank=len(kernel), out_channels=int(w.shape[0]), padding="explicit",
                               bias=bias is not None, residual=residual,
                               **self.window(conv, shape, kernel)))
            weights[f"{key}W"] = w
            if bias is not None:
                weights[f"{key}B"] = bias
        if specs[0] != specs[1]:
            raise self.fail(b, "the two convolutions of a gated block must share their "
                               "settings (kernel, stride, pads, dilation, filters, bias)")
        nodes = [a, b] + tail
        return _Part(_block_name(nodes), specs[0], weights, nodes, tail[-1].output[0])

    def residual(self, x: str, shape: Shape, consumers: list[onnx.NodeProto]) -> _Part | None:
        """body(x) + x or body(x) + conv1x1(x), else None."""
        for add in consumers:
            if add.op_type == "Add" and x in add.input:
                others = [t for t in add.input if t != x]
                if len(others) == 1:
                    body_first = [n for n in consumers if n is not add]
                    return self.residual_part(x, shape, body_first, others[0], add, None)
        projections = [n for n in consumers if self.is_projection(n, x)]
        # A 1x1 body and a projection look alike: the exporter's name, else the later node, wins.
        projections.sort(key=lambda n: (n.name.endswith("/shortcut"), self.g.order[id(n)]))
        for projection in reversed(projections):
            add = self.g.sole_consumer(projection.output[0])
            others = [t for t in add.input if t != projection.output[0]]
            body_first = [n for n in consumers if n is not projection]
            if len(others) == 1 and others[0] != x:
                return self.residual_part(x, shape, body_first, others[0], add, projection)
        return None

    def is_projection(self, node: onnx.NodeProto, x: str) -> bool:
        if node.op_type != "Conv" or node.input[0] != x or len([i for i in node.input if i]) != 2:
            return False
        w = self.g.constant(node.input[1])
        attrs = node_attributes(node)
        add = self.g.sole_consumer(node.output[0])
        return w is not None and set(w.shape[2:]) == {1} and not any(attrs.get("pads", [0])) \
            and attrs.get("auto_pad", "NOTSET") in ("NOTSET", "VALID") \
            and set(attrs.get("dilations", [1])) == {1} and attrs.get("group", 1) == 1 \
            and add is not None and add.op_type == "Add"

    def residual_part(self, x: str, shape: Shape, body_first: list[onnx.NodeProto], body_end: str,
                      add: onnx.NodeProto, projection: onnx.NodeProto | None) -> _Part:
        self.visited.update(id(n) for n in (add, projection) if n is not None)
        body, _ = self.chain(x, shape, stop=body_end, first=body_first)
        if not body:
            raise self.fail(add, "its residual branch holds no layer")
        weights: dict[str, np.ndarray] = {}
        for i, part in enumerate(body):
            weights.update({f"body.{i}.{k}": v for k, v in part.weights.items()})
        spec = Residual(body=tuple(p.spec for p in body),
                        shortcut="identity" if projection is None else "projection")
        if projection is not None:
            weights["shortcut.W"] = self.weight(projection, 1, "kernel")
            self.check_projection_strides(spec, shape, projection)
        nodes = [n for p in body for n in p.nodes] + [n for n in (projection, add) if n]
        return _Part(_block_name(nodes), spec, weights, nodes, add.output[0])

    def check_projection_strides(self, spec: Residual, shape: Shape,
                                 projection: onnx.NodeProto) -> None:
        try:
            want = tuple(spec.analyse(shape).attrs["strides"])
        except ConfigError as err:
            raise self.fail(projection, err.reason) from None
        rank = len(shape) - 1
        have = tuple(node_attributes(projection).get("strides", [1] * rank))
        if have != want:
            raise self.fail(projection, f"a projection shortcut with strides {list(have)} does "
                                        f"not match the body, which needs strides {list(want)}")


# Arithmetic and names ------------------------------------------------------------------------

def _resolve_pads(auto_pad: str, pads: list[int] | None, spatial: Shape, kernel: Shape,
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


def _transposed_pads(attrs: Mapping[str, Any], spatial: Shape, kernel: Shape, strides: Shape,
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
        pads = _resolve_pads(auto_pad, attrs.get("pads"), spatial, kernel, strides, dilations)
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


def _block_name(nodes: list[onnx.NodeProto]) -> str:
    """The common "<block>/" prefix of the nodes' names, else the last node's name."""
    prefixes = {n.name.split("/", 1)[0] for n in nodes if "/" in n.name}
    if len(prefixes) == 1 and all("/" in n.name for n in nodes):
        return prefixes.pop()
    return nodes[-1].name


def _layer_name(name: str, spec: LayerSpec, taken: set[str]) -> str:
    """The node's name made unique among taken; a generated one (conv1) when it has none."""
    name = name.strip()
    if not name:
        return Stack().unique_name(spec, taken)
    unique, n = name, 1
    while unique in taken:
        n += 1
        unique = f"{name}_{n}"
    return unique
