"""Models as older exporters wrote them (opsets 4-9, with their old attributes) open, run in the
engine and match a reference: onnxruntime where it runs that opset, else onnx's
ReferenceEvaluator. Each is read both after onnx's version converter and, with the converter
failing, by the op's own opset rules."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import assert_close, ort_run
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from engine.executor import forward, run
from engine.onnx.importer import import_model
from models.errors import FileFormatError
from models.layers.opaque import Opaque

REFERENCE_OPSET = 7  # the oldest opset onnxruntime runs


def _tensor(name: str, *shape: int, positive: bool = False) -> onnx.TensorProto:
    """Weights drawn from the name, so a network rebuilt at another opset has the same ones."""
    rng = np.random.default_rng(list(name.encode()))
    values = rng.uniform(0.5, 1.5, shape) if positive else rng.normal(0, 0.5, shape)
    return numpy_helper.from_array(values.astype(np.float32), name)


def _model(nodes, initializers, in_shape, out_shape, opset, ir_version=3) -> onnx.ModelProto:
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)]
    if ir_version < 4:  # IR 3 lists every initializer as a graph input too, as exporters did
        inputs += [helper.make_tensor_value_info(t.name, t.data_type, t.dims)
                   for t in initializers]
    graph = helper.make_graph(
        nodes, "old", inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                             ir_version=ir_version, producer_name="pytorch",
                             producer_version="0.3")


def early_pytorch_classifier(opset: int = 6) -> onnx.ModelProto:
    """Conv, BatchNormalization(spatial=1, is_test=1), Relu, MaxPool, Reshape, Gemm(broadcast=1);
    before opset 5 Reshape takes its shape as an attribute."""
    reshape = helper.make_node("Reshape", ["p"], ["f"], name="view", shape=[1, -1]) \
        if opset < 5 else helper.make_node("Reshape", ["p", "shape"], ["f"], name="view")
    bn_attrs = dict(epsilon=1e-5, momentum=0.9, spatial=1)
    gemm_attrs = dict(transB=1, alpha=1.0, beta=1.0)
    if opset < 7:
        bn_attrs["is_test"] = gemm_attrs["broadcast"] = 1
    if opset < 6:
        bn_attrs["consumed_inputs"] = [0, 0, 0, 1, 1]
    nodes = [
        helper.make_node("Conv", ["x", "conv.W", "conv.B"], ["c"], name="conv",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1],
                         dilations=[1, 1], group=1),
        helper.make_node("BatchNormalization", ["c", "bn.s", "bn.b", "bn.m", "bn.v"], ["n"],
                         name="bn", **bn_attrs),
        helper.make_node("Relu", ["n"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2],
                         strides=[2, 2], pads=[0, 0, 0, 0]),
        reshape,
        helper.make_node("Gemm", ["f", "fc.W", "fc.B"], ["y"], name="fc", **gemm_attrs),
    ]
    weights = [_tensor("conv.W", 4, 3, 3, 3), _tensor("conv.B", 4), _tensor("bn.s", 4),
               _tensor("bn.b", 4), _tensor("bn.m", 4), _tensor("bn.v", 4, positive=True),
               _tensor("fc.W", 5, 4 * 4 * 4), _tensor("fc.B", 5)]
    if opset >= 5:
        weights.append(numpy_helper.from_array(np.array([1, -1], np.int64), "shape"))
    return _model(nodes, weights, [1, 3, 8, 8], [1, 5], opset)


def flatten_softmax_opset9() -> onnx.ModelProto:
    """Conv, Dropout (opset 7-11: inference), GlobalAveragePool, Flatten, Gemm, Softmax(axis=1)."""
    nodes = [
        helper.make_node("Conv", ["x", "conv.W"], ["c"], name="conv", kernel_shape=[3, 3]),
        helper.make_node("Dropout", ["c"], ["d"], name="drop", ratio=0.5),
        helper.make_node("GlobalAveragePool", ["d"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat", axis=1),
        helper.make_node("Gemm", ["f", "fc.W", "fc.B"], ["z"], name="fc", transB=1),
        helper.make_node("Softmax", ["z"], ["y"], name="prob", axis=1),
    ]
    weights = [_tensor("conv.W", 6, 2, 3, 3), _tensor("fc.W", 4, 6), _tensor("fc.B", 4)]
    return _model(nodes, weights, ["batch", 2, 7, 7], ["batch", 4], 9, ir_version=4)


def dropout_is_test(opset: int = 6) -> onnx.ModelProto:
    """Conv1D, Dropout(is_test=1 before opset 7), Tanh, the input symbolic in batch."""
    dropout_attrs: dict = dict(ratio=0.3, is_test=1) if opset < 7 else dict(ratio=0.3)
    nodes = [
        helper.make_node("Conv", ["x", "conv.W", "conv.B"], ["c"], name="conv",
                         kernel_shape=[3], pads=[2, 0], strides=[2]),
        helper.make_node("Dropout", ["c"], ["d"], name="drop", **dropout_attrs),
        helper.make_node("Tanh", ["d"], ["y"], name="tanh"),
    ]
    weights = [_tensor("conv.W", 3, 2, 3), _tensor("conv.B", 3)]
    return _model(nodes, weights, ["N", 2, 9], ["N", 3, 5], opset)


CLASSIFIER = ["Conv2D", "BatchNorm", "ReLU", "MaxPool2D", "Reshape", "Dense"]
# name: (builder taking an opset, the opset the file is written at, the layer types it imports as)
MODELS = {
    "pytorch-opset6": (early_pytorch_classifier, 6, CLASSIFIER),
    "pytorch-opset4": (early_pytorch_classifier, 4, CLASSIFIER),
    "flatten-softmax-opset9": (lambda opset: flatten_softmax_opset9(), 9,
                               ["Conv2D", "GlobalAvgPool", "Flatten", "Dense", "Softmax"]),
    "dropout-is-test-opset6": (dropout_is_test, 6, ["Conv1D", "Tanh"]),
}


def _reference(build, opset: int, x: np.ndarray) -> np.ndarray:
    model = build(max(opset, REFERENCE_OPSET))
    onnx.checker.check_model(model)
    if opset >= REFERENCE_OPSET:
        # onnx's own evaluator agrees with onnxruntime on the file as written
        np.testing.assert_allclose(ReferenceEvaluator(model).run(None, {"x": x})[0],
                                   ort_run(model, x)[0], rtol=1e-4, atol=1e-5)
    return ort_run(model, x)[0]


@pytest.fixture(params=["converted", "own-rules"])
def upgrade(request, monkeypatch):
    if request.param == "own-rules":
        def refuse(*args, **kwargs):
            raise RuntimeError("no adapter")
        monkeypatch.setattr("engine.onnx.legacy.version_converter.convert_version", refuse)
    return request.param


@pytest.mark.parametrize("name", list(MODELS))
def test_old_model_opens_and_matches(name, upgrade, tmp_path):
    build, opset, types = MODELS[name]
    model = build(opset)
    assert model.opset_import[0].version == opset
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(model.SerializeToString())
    stack = import_model(path)
    assert [layer.spec.type_name for layer in stack.layers] == types
    assert stack.input.batch == 1
    x = np.random.default_rng(3).standard_normal(stack.input.shape).astype(np.float32)
    assert_close(forward(stack, x), _reference(build, opset, x), rtol=1e-4, atol=1e-5)


def test_old_softmax_over_a_feature_map_computes_what_the_file_says(upgrade):
    """Before opset 13, Softmax(axis=1) normalises over C*H*W together: not a channel softmax.
    Converted, it is the nodes the converter writes; read by its own rules, no layer holds it
    and it stays an opaque node; either way the network computes what the file says."""
    nodes = [helper.make_node("Softmax", ["x"], ["y"], name="prob", axis=1)]
    model = _model(nodes, [], [1, 3, 4, 4], [1, 3, 4, 4], 9)
    stack = import_model(model)
    if upgrade == "own-rules":
        assert [layer.spec.type_name for layer in stack.layers] == ["Softmax"]
        assert isinstance(stack.layers[0].spec, Opaque)
    x = np.random.default_rng(4).standard_normal((1, 3, 4, 4)).astype(np.float32)
    result = run(stack, x)
    assert_close(result.output, ort_run(model, x)[0])


@pytest.mark.parametrize("op", ["Dropout", "BatchNormalization"])
def test_training_mode_is_refused(op):
    inputs = ["x"] if op == "Dropout" else ["x", "s", "b", "m", "v"]
    weights = [] if op == "Dropout" else [_tensor(n, 3) for n in "sbmv"]
    nodes = [helper.make_node(op, inputs, ["y"], name="train", is_test=0)]
    model = _model(nodes, weights, [1, 3, 4], [1, 3, 4], 6)
    with pytest.raises(FileFormatError, match="training mode"):
        import_model(model)


def test_prelu_slopes_before_opset_7_are_per_channel(upgrade):
    """Before opset 7 a PRelu slope of C values is one per channel (as PyTorch's exporter meant
    it), not broadcast from the last axis: here one slope serves a 4-D and a 3-D map, which
    need it shaped (3, 1, 1) and (3, 1)."""
    slope = _tensor("slope", 3)
    nodes = [helper.make_node("PRelu", ["x", "slope"], ["a"], name="prelu1"),
             helper.make_node("ReduceMean", ["a"], ["m"], name="mean", axes=[3], keepdims=0),
             helper.make_node("PRelu", ["m", "slope"], ["y"], name="prelu2")]
    model = _model(nodes, [slope], [1, 3, 4, 5], [1, 3, 4], 6)
    stack = import_model(model)
    assert [layer.spec.type_name for layer in stack.layers] == ["PReLU", "ReduceMean", "PReLU"]
    x = np.random.default_rng(5).standard_normal((1, 3, 4, 5)).astype(np.float32)
    s = numpy_helper.to_array(slope)
    a = np.where(x >= 0, x, x * s[:, None, None])
    m = a.mean(axis=3)
    assert_close(run(stack, x).output, np.where(m >= 0, m, m * s[:, None]))
