"""Import of graphs as other exporters write them: MatMul + Add, Gemm with alpha/beta, weights
in Constant nodes, auto_pad, Reshape, unnamed nodes, residual and gated blocks (as the nodes
they are: a graph keeps one layer per ONNX node); each compared with onnxruntime on the
original file."""
from __future__ import annotations

import numpy as np
from helpers import assert_close, ort_run
from onnx import TensorProto, helper, numpy_helper

from engine.executor import forward
from engine.onnx.importer import import_model


def _w(name: str, *shape: int) -> np.ndarray:
    return np.random.default_rng(list(name.encode())).normal(0, 0.5, shape).astype(np.float32)


def _model(nodes, weights: dict, in_shape, opset: int = 17):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(v, k) for k, v in weights.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _check(model, types: list[str], names: list[str] | None = None):
    stack = import_model(model.SerializeToString())
    assert [layer.spec.type_name for layer in stack.layers] == types
    if names is not None:
        assert [layer.name for layer in stack.layers] == names
    x = np.random.default_rng(1).standard_normal(stack.input.shape).astype(np.float32)
    assert_close(forward(stack, x), ort_run(model, x)[0])
    return stack


def test_keras_style_dense_and_same_lower_padding():
    nodes = [
        helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(_w("k", 4, 3, 3, 3))),
        helper.make_node("Conv", ["x", "k"], ["c"], name="conv", auto_pad="SAME_LOWER",
                         strides=[2, 2]),
        helper.make_node("Conv", ["c", "dw"], ["d"], name="dw", group=4, auto_pad="SAME_UPPER",
                         kernel_shape=[3, 3]),
        helper.make_node("Conv", ["d", "pw"], ["p"], name="", kernel_shape=[1, 1]),
        helper.make_node("LeakyRelu", ["p"], ["r"], alpha=0.2),
        helper.make_node("Reshape", ["r", "shape"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "m"], ["mm"], name="dense"),
        helper.make_node("Add", ["mm", "mb"], ["z"], name="bias"),
        helper.make_node("Gemm", ["z", "g", "gb"], ["y"], name="head", alpha=0.5, beta=2.0),
    ]
    weights = {"dw": _w("dw", 8, 1, 3, 3), "pw": _w("pw", 5, 8, 1, 1),
               "shape": np.array([0, -1], np.int64), "m": _w("m", 5 * 3 * 3, 6),
               "mb": _w("mb", 6), "g": _w("g", 6, 2), "gb": _w("gb", 1, 2)}
    stack = _check(_model(nodes, weights, ["batch", 3, 6, 5]),
                   ["Conv2D", "DepthwiseConv2D", "PointwiseConv2D", "LeakyReLU", "Reshape",
                    "MatMul", "Add", "Dense"],
                   ["conv", "dw", "pwconv1", "leakyrelu1", "flatten", "dense", "bias", "head"])
    assert stack.layers[0].spec.pads == (1, 1, 0, 1)  # the odd pixel at the beginning
    np.testing.assert_array_equal(stack.layers[5].weights["W"], weights["m"])
    assert stack.layers[6].spec.constant_shape == (6,)
    np.testing.assert_array_equal(stack.layers[7].weights["W"], weights["g"].T * 0.5)
    np.testing.assert_array_equal(stack.layers[7].weights["B"], weights["gb"][0] * 2.0)


def test_residual_with_projection_and_gated_block():
    nodes = [
        helper.make_node("Conv", ["x", "a"], ["b1"], name="block/conv_a", kernel_shape=[3],
                         pads=[1, 1], strides=[2]),
        helper.make_node("Relu", ["b1"], ["b2"], name="block/relu"),
        helper.make_node("Conv", ["x", "proj"], ["s"], name="block/proj", kernel_shape=[1],
                         strides=[2]),
        helper.make_node("Add", ["s", "b2"], ["r"], name="block/sum"),
        helper.make_node("Conv", ["r", "ga", "gab"], ["va"], name="glu/value", pads=[1, 1]),
        helper.make_node("Conv", ["r", "gb", "gbb"], ["vb"], name="glu/gate", pads=[1, 1]),
        helper.make_node("Sigmoid", ["vb"], ["sg"], name="glu/sigmoid"),
        helper.make_node("Mul", ["sg", "va"], ["m"], name="glu/mul"),
        helper.make_node("Add", ["r", "m"], ["y"], name="glu/add"),
    ]
    weights = {"a": _w("a", 4, 2, 3), "proj": _w("proj", 4, 2, 1), "ga": _w("ga", 4, 4, 3),
               "gab": _w("gab", 4), "gb": _w("gb", 4, 4, 3), "gbb": _w("gbb", 4)}
    stack = _check(_model(nodes, weights, [1, 2, 9]),
                   ["Conv1D", "ReLU", "Conv1D", "Add", "Conv1D", "Conv1D", "Sigmoid", "Mul",
                    "Add"],
                   ["block/conv_a", "block/relu", "block/proj", "block/sum", "glu/value",
                    "glu/gate", "glu/sigmoid", "glu/mul", "glu/add"])
    assert [layer.inputs for layer in stack.layers] == [
        ("input",), ("block/conv_a",), ("input",), ("block/proj", "block/relu"),
        ("block/sum",), ("block/sum",), ("glu/gate",), ("glu/sigmoid", "glu/value"),
        ("block/sum", "glu/mul")]
    assert [layer.group for layer in stack.layers] == ["block"] * 4 + ["glu"] * 5
