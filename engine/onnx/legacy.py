"""Bringing old ONNX files to the form the import rules read: weights held in Constant nodes
become constants, PRelu slopes of opsets before 7 (one per channel) get the shape that
broadcasting gives them from opset 7 on, opsets below TARGET_OPSET go through onnx's version
converter where it can take them, and the Reshapes it leaves before opset 5 take their target
as an input.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference, version_converter

from engine.onnx.nodes import DOMAINS, node_attributes, node_label
from engine.onnx.tensors import checked_values, tensor_array

TARGET_OPSET = 17
RESHAPE_INPUT_OPSET = 5  # before it, Reshape takes its target as an attribute
PRELU_BROADCAST_OPSET = 7  # before it, PRelu's slope of C values is one per channel


def take_constant_nodes(model: onnx.ModelProto, weights: dict[str, np.ndarray],
                        label: str) -> None:
    """Move the values of Constant nodes into weights (old exporters kept weights so)."""
    keep = []
    for node in model.graph.node:
        value = _constant_value(node, label) if node.op_type == "Constant" and \
            node.domain in DOMAINS and len(node.output) == 1 else None
        if value is None:
            keep.append(node)
        else:
            weights[node.output[0]] = value
    if len(keep) != len(model.graph.node):
        del model.graph.node[:]
        model.graph.node.extend(keep)


def _constant_value(node: onnx.NodeProto, label: str) -> np.ndarray | None:
    for attr in node.attribute:
        if attr.name == "value":
            tensor = attr.t
            if tensor.data_location == TensorProto.EXTERNAL:
                return None  # left to the folder; external Constant values are unheard of
            return checked_values(tensor_array(tensor, label), tensor, label)
        if attr.name in ("value_float", "value_int", "value_floats", "value_ints"):
            value = np.asarray(helper.get_attribute_value(attr))
            return value.astype(np.float32 if attr.name.startswith("value_float") else np.int64)
    return None


def per_channel_slopes(model: onnx.ModelProto, weights: dict[str, np.ndarray]
                       ) -> dict[str, np.ndarray]:
    """Before opset 7 a PRelu slope of C values is one per channel (axis 1), as Caffe2's and
    PyTorch's exporters wrote it; from opset 7 on a slope broadcasts from the last axis, and the
    version converter leaves it as it is. Give each such slope the shape (C, 1, ...) that its
    input's rank needs, as a new weight (another node may read the old one), and drop the old
    one where nothing reads it any more. Returns the new weights."""
    graph = model.graph
    nodes = [n for n in graph.node if n.op_type == "PRelu" and n.domain in DOMAINS and
             len(n.input) > 1 and n.input[1] in weights and weights[n.input[1]].ndim == 1 and
             weights[n.input[1]].size > 1]
    if not nodes:
        return {}
    inferred = shape_inference.infer_shapes(model).graph
    ranks = {v.name: len(v.type.tensor_type.shape.dim)
             for v in (*inferred.input, *inferred.value_info)
             if v.type.tensor_type.HasField("shape")}
    taken = set(weights) | {name for node in graph.node for name in node.output}
    made: dict[tuple[str, int], str] = {}  # one new weight per slope and rank
    added: dict[str, np.ndarray] = {}
    for node in nodes:
        rank = ranks.get(node.input[0], 0)
        if rank < 3:  # (N, C): the last axis is the channel axis already
            continue
        old = node.input[1]
        if (old, rank) not in made:
            name, n = f"{old}/per_channel", 1
            while name in taken:
                n += 1
                name = f"{old}/per_channel_{n}"
            taken.add(name)
            added[name] = weights[name] = weights[old].reshape(-1, *[1] * (rank - 2))
            made[old, rank] = name
        node.input[1] = made[old, rank]
    read = {name for node in graph.node for name in node.input}
    for values in (graph.initializer, graph.input):
        kept = [v for v in values if v.name in read or v.name not in weights]
        if len(kept) != len(values):
            del values[:]
            values.extend(kept)
    return added


def reshape_shape_as_input(model: onnx.ModelProto, weights: dict[str, np.ndarray]) -> None:
    """Give pre-opset-5 Reshapes (left so when the converter failed) their target as a
    constant input, the form the import rules read."""
    for node in model.graph.node:
        attrs = node_attributes(node)
        if node.op_type != "Reshape" or node.domain not in DOMAINS or "shape" not in attrs:
            continue
        name = f"{node_label(node)}/shape"
        weights[name] = np.asarray(attrs["shape"], np.int64)
        model.graph.initializer.append(numpy_helper.from_array(weights[name], name))
        kept = [a for a in node.attribute if a.name != "shape"]
        del node.attribute[:]
        node.attribute.extend(kept)
        node.input.append(name)


def upgraded(model: onnx.ModelProto, opset: int) -> tuple[onnx.ModelProto, int]:
    """The model at TARGET_OPSET when onnx's converter can bring it there, else as it is."""
    if opset >= TARGET_OPSET:
        return model, opset
    try:
        return version_converter.convert_version(model, TARGET_OPSET), TARGET_OPSET
    except Exception:  # the converter raises bare RuntimeErrors and more for ops it cannot adapt
        return model, opset
