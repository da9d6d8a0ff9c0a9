"""Helpers shared by the ONNX tests: running a model with onnxruntime, comparing arrays, and
describing a graph so two exports can be compared node by node."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper


def ort_run(model: onnx.ModelProto | bytes, x: np.ndarray) -> list[np.ndarray]:
    """Every graph output of the model on input x, by onnxruntime on the CPU."""
    data = model if isinstance(model, bytes) else model.SerializeToString()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})


def assert_close(actual: np.ndarray, expected: np.ndarray, rtol: float = 1e-4,
                 atol: float = 1e-5) -> None:
    """Element-wise closeness with the absolute tolerance scaled by the expected magnitude, so a
    layer whose values are large is not held to an absolute 1e-5 that float32 cannot meet."""
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale)


def graph_signature(model: onnx.ModelProto) -> list[tuple[str, dict]]:
    """(op type, attributes) of every node in order: what must survive a round trip."""
    return [(node.op_type, {a.name: helper.get_attribute_value(a) for a in node.attribute})
            for node in model.graph.node]


def node_weights(model: onnx.ModelProto) -> list[np.ndarray]:
    """The constant inputs of the nodes in order (names aside): the weights as the graph uses
    them."""
    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return [constants[name] for node in model.graph.node for name in node.input
            if name in constants]
