"""Constant folding on import: shape computations fold at the input's concrete shape (a symbolic
batch read as 1), weights computed from constants (dequantised int8) fold into the layer that
reads them, nothing is fused (Conv then BatchNormalization stays two nodes), Identity and
inference Dropout are bypassed unless their result is a graph output; each network computes
what onnxruntime computes on the file."""
from __future__ import annotations

import numpy as np
import pytest
import onnx
from graph_checks import every_tensor, inferred_shapes, tensor_of
from helpers import assert_close
from onnx import TensorProto, helper, numpy_helper

from engine.executor import run
from engine.onnx.importer import import_model
from models.analysis import analyse
from models.layers.opaque import Opaque
from models.stack import INPUT


def _w(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.5, shape).astype(np.float32)


def _model(nodes, initializers, in_shape, out="y") -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _same_as_onnxruntime(model: onnx.ModelProto, stack) -> None:
    report = analyse(stack)
    assert report.ok, report.first_error
    x = np.random.default_rng(1).standard_normal(stack.input.shape).astype(np.float32)
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    theirs = every_tensor(fixed, x)
    result = run(stack, x)
    for layer, ours in zip(stack.layers, result.outputs):
        assert_close(ours, theirs[tensor_of(model, layer)])


def test_a_flatten_computed_from_the_input_shape_folds():
    """torch.flatten(x, 1) as traced with a dynamic batch: Shape, Gather, Unsqueeze, Concat."""
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"], name="/conv/Conv", kernel_shape=[3, 3]),
        helper.make_node("Shape", ["c"], ["s"], name="/Shape"),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="/Gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"], name="/Unsqueeze"),
        helper.make_node("Concat", ["n1", "minus_one"], ["target"], name="/Concat", axis=0),
        helper.make_node("Reshape", ["c", "target"], ["f"], name="/Reshape"),
        helper.make_node("Gemm", ["f", "G"], ["y"], name="/fc/Gemm", transB=1),
    ]
    weights = {"W": _w(4, 3, 3, 3), "zero": np.array(0, np.int64),
               "axes": np.array([0], np.int64), "minus_one": np.array([-1], np.int64),
               "G": _w(5, 4 * 4 * 4, seed=1)}
    model = _model(nodes, weights, ["batch", 3, 6, 6])
    stack = import_model(model)
    assert [(layer.name, layer.spec.type_name) for layer in stack.layers] == [
        ("/conv/Conv", "Conv2D"), ("/Reshape", "Reshape"), ("/fc/Gemm", "Dense")]
    assert stack.input.shape == (1, 3, 6, 6)
    _same_as_onnxruntime(model, stack)


def test_dequantised_weights_fold_into_the_convolution():
    """A QDQ-style weight: DequantizeLinear(int8, scale, zero point) -> Conv; the int8 tensor is
    large enough to be a stub until folding needs it."""
    q = np.random.default_rng(2).integers(-127, 128, (64, 8, 3, 3)).astype(np.int8)
    nodes = [
        helper.make_node("DequantizeLinear", ["q", "scale", "zp"], ["w"], name="/dq", axis=0),
        helper.make_node("Conv", ["x", "w"], ["y"], name="/conv/Conv", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1]),
    ]
    scale = np.linspace(0.01, 0.02, 64).astype(np.float32)
    zero = np.arange(64).astype(np.int8) % 5
    model = _model(nodes, {"q": q, "scale": scale, "zp": zero}, [1, 8, 5, 5])
    stack = import_model(model)
    (conv,) = stack.layers
    assert conv.spec.type_name == "Conv2D"
    expected = (q.astype(np.float32) - zero[:, None, None, None]) * scale[:, None, None, None]
    np.testing.assert_allclose(conv.weights["W"], expected, rtol=1e-6)
    x = np.random.default_rng(3).standard_normal((1, 8, 5, 5)).astype(np.float32)
    assert_close(run(stack, x).output, every_tensor(model, x)["y"])


def test_nothing_is_fused():
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", kernel_shape=[3, 3]),
        helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["n"], name="bn"),
        helper.make_node("Relu", ["n"], ["y"], name="relu"),
    ]
    weights = {"W": _w(4, 3, 3, 3), "B": _w(4, seed=1), "s": _w(4, seed=2),
               "b": _w(4, seed=3), "m": _w(4, seed=4), "v": np.abs(_w(4, seed=5)) + 0.5}
    model = _model(nodes, weights, [1, 3, 6, 6])
    stack = import_model(model)
    assert [layer.spec.type_name for layer in stack.layers] == ["Conv2D", "BatchNorm", "ReLU"]
    _same_as_onnxruntime(model, stack)


def test_identity_and_dropout_are_bypassed_unless_they_give_an_output():
    nodes = [
        helper.make_node("Identity", ["x"], ["i"], name="first"),
        helper.make_node("Relu", ["i"], ["r"], name="relu"),
        helper.make_node("Dropout", ["r"], ["d"], name="drop"),
        helper.make_node("Sigmoid", ["d"], ["s"], name="sigmoid"),
        helper.make_node("Identity", ["s"], ["y"], name="last"),
    ]
    model = _model(nodes, {}, [1, 2, 4])
    stack = import_model(model)
    assert [(layer.name, layer.inputs) for layer in stack.layers] == [
        ("relu", (INPUT,)), ("sigmoid", ("relu",)), ("last", ("sigmoid",))]
    assert stack.outputs == ("last",)
    assert not any(isinstance(layer.spec, Opaque) for layer in stack.layers)
    _same_as_onnxruntime(model, stack)


def test_nodes_no_output_needs_are_dropped_and_shapes_match_onnx():
    nodes = [
        helper.make_node("Relu", ["x"], ["y"], name="relu"),
        helper.make_node("Sigmoid", ["x"], ["unused"], name="dead"),
    ]
    model = _model(nodes, {}, [1, 2, 4])
    stack = import_model(model)
    assert [layer.name for layer in stack.layers] == ["relu"]
    assert analyse(stack).layers[0].output_shape == inferred_shapes(model)["y"]


def _weights_made_by_nodes(opset: int) -> onnx.ModelProto:
    """A Conv whose kernel is made by ConstantOfShape and a Mul whose scale is an Unsqueeze of a
    constant: how weightless exports (onnx's light models) make their weights."""
    value = numpy_helper.from_array(np.array([0.25], np.float32), "")
    axes = [1, 2]
    unsqueeze = (helper.make_node("Unsqueeze", ["s0"], ["s"], axes=axes) if opset < 13 else
                 helper.make_node("Unsqueeze", ["s0", "axes"], ["s"]))
    nodes = [helper.make_node("ConstantOfShape", ["wshape"], ["w"], value=value), unsqueeze,
             helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Mul", ["c", "s"], ["y"], name="scale")]
    initializers = {"wshape": np.array([4, 3, 3, 3], np.int64), "s0": _w(4, seed=3)}
    if opset >= 13:
        initializers["axes"] = np.array(axes, np.int64)
    model = _model(nodes, initializers, [1, 3, 8, 8])
    model.opset_import[0].version = opset
    return model


@pytest.mark.parametrize("opset", [9, 13])
def test_weights_made_by_constant_of_shape_and_unsqueeze_fold_to_their_values(opset):
    model = _weights_made_by_nodes(opset)
    stack = import_model(model.SerializeToString())
    assert [layer.spec.type_name for layer in stack.layers] == ["Conv2D", "Mul"]
    conv = stack.layers[0].weights["W"]
    assert conv.shape == (4, 3, 3, 3) and np.all(conv == np.float32(0.25))
    _same_as_onnxruntime(model, stack)
