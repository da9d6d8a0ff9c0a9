"""Refusing what no ConvScope network can be, on a model as read: an opset newer than the
installed onnx knows; attributes without a type, of the wrong type, missing where required, or
holding NaN or infinity; anything but exactly one runtime input, typed float32, (N, C,
spatial...) with fixed sizes but for the batch; a cycle, a tensor written twice or read but
never written, or no output (the nodes are put in order on the way); training-mode nodes.
"""
from __future__ import annotations

import heapq
import math

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from engine.onnx.limits import all_graphs, excerpt, shown
from engine.onnx.nodes import DOMAINS, listed, node_attributes, node_shown
from engine.onnx.tensors import nonfinite_count
from models.errors import FileFormatError
from models.pacing import pace


def default_opset(model: onnx.ModelProto, label: str) -> int:
    newest = onnx.defs.onnx_opset_version()
    for entry in model.opset_import:
        if entry.domain in DOMAINS:
            if entry.version > newest:
                raise FileFormatError(f"{label} uses ONNX opset {entry.version}, newer than the "
                                      f"{newest} the installed onnx package knows; update onnx "
                                      f"or export the model at opset {newest} or lower")
            return int(entry.version)
    raise FileFormatError(f"{label} imports no standard ONNX opset")


def check_attributes(graph: onnx.GraphProto, opset: int, label: str) -> None:
    """Refuse attributes no reader can trust, in every graph: one without a type, or holding NaN
    or infinity (no setting can hold one, and ConvScope opens only finite weights); and, on the
    main graph's standard nodes, a required attribute missing or one of the wrong type, as
    onnx's operator schema at the file's opset says. Every import rule then reads well-formed
    attributes."""
    for current in all_graphs(graph):
        for node in current.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.UNDEFINED:
                    raise _bad_node(node, label, f"its attribute {shown(attr.name)} has no type")
                if _nonfinite_attribute(attr):
                    raise FileFormatError(
                        f"{label}: {excerpt(node.op_type, 60)} node {node_shown(node)}: its "
                        f"attribute {shown(attr.name)} holds NaN or infinity (a float32 "
                        f"attribute is infinite beyond 3.4e38); ConvScope opens only finite "
                        f"settings: fix the value where the model is made, then export it again")
    for node in graph.node:
        pace()
        if node.domain not in DOMAINS:
            continue
        try:
            schema = onnx.defs.get_schema(node.op_type, opset, "")
        except onnx.defs.SchemaError:
            continue  # an operator onnx does not know: onnxruntime has the last word
        given = {attr.name: attr.type for attr in node.attribute}
        for name, wanted in schema.attributes.items():
            want = int(wanted.type.value)
            if name not in given and wanted.required:
                raise _bad_node(node, label, f"it has no {shown(name)} attribute, which "
                                             f"{node.op_type} requires")
            if name in given and given[name] != want:
                have = onnx.AttributeProto.AttributeType.Name(given[name])
                raise _bad_node(node, label, f"its attribute {shown(name)} is of type {have}, "
                                             f"but {node.op_type} takes "
                                             f"{onnx.AttributeProto.AttributeType.Name(want)}")


def _nonfinite_attribute(attr: onnx.AttributeProto) -> bool:
    if attr.type == onnx.AttributeProto.FLOAT:
        return not math.isfinite(attr.f)
    if attr.type == onnx.AttributeProto.FLOATS:
        return not all(math.isfinite(v) for v in attr.floats)
    if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_location != TensorProto.EXTERNAL:
        try:
            return nonfinite_count(numpy_helper.to_array(attr.t)) > 0
        except (ValueError, TypeError, KeyError):
            return False  # a damaged tensor: the reader that needs it refuses it
    return False


def _bad_node(node: onnx.NodeProto, label: str, why: str) -> FileFormatError:
    return FileFormatError(f"{label}: {excerpt(node.op_type, 60)} node {node_shown(node)}: {why}; "
                           f"the file is damaged or was written wrongly: export the model again")


def runtime_input(graph: onnx.GraphProto, label: str) -> tuple[str, tuple[int, ...]]:
    """The one runtime input's name and full shape (a symbolic batch read as 1)."""
    inputs = list(graph.input)
    if len(inputs) != 1:
        names = ", ".join(excerpt(i.name, 60) for i in inputs[:3]) + \
            (" ..." if len(inputs) > 3 else "")
        raise FileFormatError(f"{label}: a ConvScope network has one input, but the graph has "
                              f"{len(inputs)} ({names or 'none'})")
    value = inputs[0]
    tensor = value.type.tensor_type
    if not value.type.HasField("tensor_type") or tensor.elem_type != TensorProto.FLOAT:
        raise FileFormatError(f"{label}: the input {shown(value.name)} must be a float32 tensor "
                              f"(images, signals or volumes as 32-bit floats)")
    if not tensor.HasField("shape"):
        raise FileFormatError(f"{label}: the input {shown(value.name)} has no shape; export the "
                              f"model with a fixed input size")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    if not 2 <= len(dims) <= 5:
        raise FileFormatError(f"{label}: the input {shown(value.name)} has {len(dims)} "
                              f"{'axis' if len(dims) == 1 else 'axes'}; a "
                              f"network's input is (N, C, spatial...) with up to 3 spatial axes")
    if any(d is None or d < 1 for d in dims[1:]):
        text = "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"
        raise FileFormatError(f"{label}: the input {shown(value.name)} has sizes {text}; every "
                              f"axis but the batch must be fixed; export with a fixed input size")
    return value.name, (dims[0] or 1, *dims[1:])


def check_order(graph: onnx.GraphProto, known: dict[str, str], label: str) -> None:
    """Sort the nodes of the graph and of every body it holds so each comes after what it reads,
    keeping the file's order where it allows (the earliest ready node first); refuse cycles,
    tensors written twice (or over the input or a weight), tensors nothing gives and a graph
    without outputs. `known`: the main graph's input and weights, each with what it is."""
    if not graph.output:
        raise FileFormatError(f"{label}: the graph has no outputs, so nothing would be computed; "
                              f"export the model with its output")
    producers = _sort_nodes(graph, known, label)
    nodes = list(graph.node)
    missing = [n for n in nodes if any(name and name not in producers and name not in known
                                       for name in n.input)]
    if missing:
        name = next(t for t in missing[0].input if t and t not in producers and t not in known)
        raise FileFormatError(f"{label}: a node reads the tensor {shown(name)}, which nothing in "
                              f"the file gives: {listed(missing)}")
    for value in graph.output:
        if value.name not in producers and value.name not in known:
            raise FileFormatError(f"{label}: the graph's output {shown(value.name)} is a tensor "
                                  f"that nothing in the file gives; the file is damaged: export "
                                  f"the model again")
    for body in all_graphs(graph):
        if body is not graph:
            _sort_nodes(body, {}, label)


def _sort_nodes(graph: onnx.GraphProto, written: dict[str, str], label: str) -> set[str]:
    """Put the graph's nodes in order (see check_order) with a loop; returns the tensors its
    nodes write. Tensors read but written by no node of this graph come from outside it.
    `written`: tensors the graph already holds (its input and weights), which no node may
    write again, each with what it is."""
    nodes = list(graph.node)
    producers: dict[str, int] = {}
    for i, node in enumerate(nodes):
        for out in node.output:
            if not out:
                continue
            if out in producers or out in written:
                first = f"node {node_shown(nodes[producers[out]])}" if out in producers else \
                    written[out]
                raise FileFormatError(f"{label}: the tensor {shown(out)} is written twice, by "
                                      f"{first} and node {node_shown(node)}; each tensor of a "
                                      f"graph has one writer: the file is damaged")
            producers[out] = i
    reads = [{producers[name] for name in n.input if name in producers} for n in nodes]
    if all(j < i for i, sources in enumerate(reads) for j in sources):
        return set(producers)
    waiting = [len(sources) for sources in reads]
    readers: dict[int, list[int]] = {}
    for i, sources in enumerate(reads):
        for j in sources:
            readers.setdefault(j, []).append(i)
    ready = [i for i, count in enumerate(waiting) if not count]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in readers.get(i, ()):
            waiting[j] -= 1
            if not waiting[j]:
                heapq.heappush(ready, j)
    if len(order) != len(nodes):
        stuck = [nodes[i] for i, count in enumerate(waiting) if count]
        raise FileFormatError(f"{label}: the graph has a cycle (nodes that read their own "
                              f"results), which no network can compute: {listed(stuck)}")
    del graph.node[:]
    graph.node.extend(nodes[i] for i in order)
    return set(producers)


def refuse_training(graph: onnx.GraphProto, weights: dict[str, np.ndarray], opset: int,
                    label: str) -> None:
    """Training-mode Dropout and BatchNormalization compute something no layer does (checked on
    the original graph: the version converter drops the old is_test flags)."""
    for node in graph.node:
        if node.domain not in DOMAINS or node.op_type not in ("Dropout", "BatchNormalization"):
            continue
        attrs = node_attributes(node)
        what = "dropout" if node.op_type == "Dropout" else "batch normalisation"
        training = attrs.get("is_test", 1) == 0 or bool(attrs.get("training_mode", 0))
        if node.op_type == "Dropout" and opset >= 12 and len(node.input) > 2 and node.input[2]:
            mode = weights.get(node.input[2])
            training = training or mode is None or bool(np.asarray(mode).any())
        if training:
            raise FileFormatError(f"{label}: a {what} runs in training mode (it would draw or "
                                  f"learn at every run); export the model in evaluation mode: "
                                  f"{listed([node])}")
