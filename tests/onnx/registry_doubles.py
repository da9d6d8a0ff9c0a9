"""Test doubles of engine.onnx.registry's Writer and Reader over real onnx objects, so one
exporter or importer can be exercised alone: RecordingWriter collects the nodes and initializers
an exporter writes and wraps them into a checked model; ModelReader answers an importer's
questions from a model (initializers and Constant nodes are constants, shapes come from onnx's
shape inference)."""
from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from models.errors import FileFormatError


class RecordingWriter:
    """A Writer at `opset` that records nodes and initializers for `model`."""

    def __init__(self, opset: int) -> None:
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.shapes: dict[str, tuple[int, ...]] = {}

    def node(self, op: str, inputs: list[str], output: str, shape: tuple[int, ...],
             name: str | None = None, **attrs: object) -> str:
        self.nodes.append(helper.make_node(op, list(inputs), [output], name=name or output,
                                           **attrs))
        self.shapes[output] = tuple(shape)
        return output

    def weight(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
        return name

    def int64(self, name: str, values: Any) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(values, np.int64), name))
        return name

    def model(self, inputs: dict[str, tuple[int, ...]], output: str,
              batch: int = 1) -> onnx.ModelProto:
        """The recorded nodes as a model reading float32 `inputs` (full shapes, batch included)
        and giving `output`, of shape (batch, *its recorded sample shape); checked by onnx's
        full checker."""
        graph = helper.make_graph(
            self.nodes, "exported",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in
             inputs.items()],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT,
                                           [batch, *self.shapes[output]])],
            initializer=self.initializers)
        opsets = [helper.make_opsetid("", self.opset)]
        model = helper.make_model(graph, opset_imports=opsets)
        model.ir_version = helper.find_min_ir_version_for(opsets)
        onnx.checker.check_model(model, full_check=True)
        return model


class ModelReader:
    """A Reader over `model`: constants from initializers and Constant nodes, full shapes from
    onnx's shape inference."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
        inferred = onnx.shape_inference.infer_shapes(model)
        graph = inferred.graph
        self.constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant":
                self.constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        self.shapes = {v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim)
                       for v in (*graph.input, *graph.value_info, *graph.output)}
        self.nodes = [n for n in graph.node if n.op_type != "Constant"]

    def attrs(self, node: onnx.NodeProto) -> dict[str, Any]:
        values = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        return {k: v.decode() if isinstance(v, bytes) else v for k, v in values.items()}

    def constant(self, tensor: str) -> np.ndarray | None:
        return self.constants.get(tensor)

    def shape(self, tensor: str) -> tuple[int, ...]:
        return self.shapes[tensor]

    def fail(self, node: onnx.NodeProto, reason: str) -> FileFormatError:
        return FileFormatError(f"node {node.name or node.op_type!r} ({node.op_type}): {reason}")


def single_node_model(op: str, x_shape: tuple[int, ...], opset: int,
                      constants: dict[str, np.ndarray] | None = None,
                      inputs: list[str] | None = None, y_shape: tuple[int, ...] | None = None,
                      **attrs: object) -> onnx.ModelProto:
    """One `op` node reading the float32 graph input "x" of x_shape, then the constant
    initializers (or, with `inputs`, exactly those names in order, "" for a skipped optional)
    and writing "y" of y_shape (default x_shape); at `opset`, checked by onnx's full checker.
    Builds old-opset forms by hand."""
    constants = constants or {}
    names = inputs if inputs is not None else ["x", *constants]
    node = helper.make_node(op, names, ["y"], name=f"{op.lower()}0", **attrs)
    opsets = [helper.make_opsetid("", opset)]
    ir_version = helper.find_min_ir_version_for(opsets)
    graph_inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))]
    if ir_version < 4:  # IR 3 (opsets 7 and 8) lists every initializer as a graph input too
        graph_inputs += [helper.make_tensor_value_info(k, TensorProto.FLOAT, np.shape(v))
                         for k, v in constants.items()]
    graph = helper.make_graph(
        [node], "single", graph_inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(y_shape or x_shape))],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in constants.items()])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = ir_version
    onnx.checker.check_model(model, full_check=True)
    return model


def run_model(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """The first output of the model on graph input "x", by onnxruntime on the CPU."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]
