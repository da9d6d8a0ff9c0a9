"""Checks shared by the graph-import tests: every tensor of a model computed by onnxruntime,
onnx's inferred shapes, and the ONNX tensor each imported layer stands for."""
from __future__ import annotations

import copy

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, shape_inference

from models.stack import Layer


def inferred_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape by onnx's shape inference (static shapes only)."""
    graph = shape_inference.infer_shapes(model, data_prop=True).graph
    shapes = {}
    for value in (*graph.input, *graph.value_info, *graph.output):
        dims = value.type.tensor_type.shape.dim
        if value.type.tensor_type.HasField("shape") and all(d.HasField("dim_value")
                                                            for d in dims):
            shapes[value.name] = tuple(d.dim_value for d in dims)
    return shapes


def every_tensor(model: onnx.ModelProto, x: np.ndarray) -> dict[str, np.ndarray]:
    """Each float tensor a node of the model gives, by name, as onnxruntime computes it (a copy
    of the model lists them all as graph outputs)."""
    inferred = shape_inference.infer_shapes(model)
    full = copy.deepcopy(inferred)
    listed = {o.name for o in full.graph.output}
    typed = {value.name: value for value in inferred.graph.value_info}
    for node in inferred.graph.node:
        for name in node.output:
            value = typed.get(name)
            if name and name not in listed and value is None:
                # onnx cannot type a contrib op's result: such a result is float32 here
                full.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT,
                                                                       None))
            elif name and name not in listed and \
                    value.type.tensor_type.elem_type == TensorProto.FLOAT:
                full.graph.output.append(value)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(full.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {session.get_inputs()[0].name: x})))


def tensor_of(model: onnx.ModelProto, layer: Layer) -> str:
    """The ONNX tensor a layer imported from `model` gives: its node's first output, or output
    k for a layer named "<node>:<k>"."""
    nodes = {node.name: node for node in model.graph.node if node.name}
    if layer.name in nodes:
        return nodes[layer.name].output[0]
    base, _, k = layer.name.rpartition(":")
    return nodes[base].output[int(k)]
