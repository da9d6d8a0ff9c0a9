"""ONNX rules of the activation, element-wise math and normalisation kinds (engine.onnx.activation):
each exporter's nodes pass onnx's full checker and compute in onnxruntime what the NumPy kernel
computes, at several opsets; each importer reads the node back as the same spec and weights;
old opsets' forms, built by hand, are read by their own rules; unreadable settings are refused."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from engine import ops
from engine.forward_activation import FORWARD_ACTIVATION
from engine.onnx.activation import GELU_OPSET, HARD_SWISH_OPSET
from engine.onnx.registry import EXPORTERS, IMPORTERS
from models.errors import FileFormatError
from models.layers.activation import (ELU, GELU, UNARY_OPS, Clip, HardSigmoid, HardSwish,
                                      LeakyReLU, LogSoftmax, PReLU, ReLU, Sigmoid, SiLU, Softmax,
                                      Tanh, Unary)
from models.layers.base import LayerSpec
from models.layers.normalization import LRN, InstanceNorm
from models.layers.structure import BatchNorm
from registry_doubles import ModelReader, RecordingWriter, run_model, single_node_model

OPSETS = [13, 17, 21, 23]

FORWARD = {
    ReLU: lambda s, i, w, x: ops.relu(x), Sigmoid: lambda s, i, w, x: ops.sigmoid(x),
    Tanh: lambda s, i, w, x: ops.tanh(x), LeakyReLU: lambda s, i, w, x: ops.leaky_relu(x, s.alpha),
    BatchNorm: lambda s, i, w, x: ops.batch_normalization(x, w["scale"], w["bias"], w["mean"],
                                                          w["var"], s.epsilon),
    **FORWARD_ACTIVATION,
}

CASES: list[tuple[LayerSpec, tuple[int, ...]]] = [
    (ReLU(), (3, 4, 5)), (Sigmoid(), (6,)), (Tanh(), (2, 7)), (LeakyReLU(alpha=0.2), (3, 4, 5)),
    (Softmax(), (10,)), (Softmax(axis=-1), (3, 4, 5)), (Softmax(axis=2), (3, 4, 5)),
    (LogSoftmax(), (3, 4, 5)), (LogSoftmax(axis=-2), (2, 3, 4, 5)),
    (Clip(), (3, 4, 5)), (Clip(has_min=False, max=1.5), (3, 4)),
    (Clip(min=-0.5, has_max=False), (3, 4)), (Clip(has_min=False, has_max=False), (5,)),
    (HardSigmoid(), (3, 4, 5)), (HardSigmoid(alpha=0.3, beta=0.1), (3, 4)),
    (HardSwish(), (3, 4, 5)), (SiLU(), (3, 4, 5)),
    (PReLU(), (3, 4, 5)), (PReLU(), (6,)), (PReLU(slope_shape=()), (3, 4, 5)),
    (PReLU(slope_shape=(1,)), (3, 4)), (PReLU(slope_shape=(5,)), (3, 4, 5)),
    (PReLU(slope_shape=(1, 3, 4, 5)), (3, 4, 5)),
    (ELU(), (3, 4, 5)), (ELU(alpha=0.3), (3, 4)),
    (GELU(), (3, 4, 5)), (GELU(approximate="tanh"), (3, 4, 5)),
    *[(Unary(op=op), (3, 4, 5)) for op in UNARY_OPS],
    (LRN(), (7, 4, 5)), (LRN(size=3, alpha=0.01, beta=0.5, bias=2.0), (7, 4, 5)),
    (InstanceNorm(), (3, 4, 5)), (InstanceNorm(epsilon=0.01), (3, 7)),
    (BatchNorm(), (3, 4, 5)), (BatchNorm(epsilon=0.001), (3,)),
]

# Multi-node forms at some opsets: read back as their parts, not as one node.
def _node_ops(spec: LayerSpec, opset: int) -> list[str] | None:
    if isinstance(spec, SiLU):
        return ["Sigmoid", "Mul"]
    if isinstance(spec, HardSwish) and opset < HARD_SWISH_OPSET:
        return ["HardSigmoid", "Mul"]
    if isinstance(spec, GELU) and opset < GELU_OPSET:
        return (["Div", "Erf"] if spec.approximate == "none" else
                ["Mul", "Mul", "Mul", "Add", "Mul", "Tanh"]) + ["Add", "Mul", "Mul"]
    return None


def _input(sample: tuple[int, ...], seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((2, *sample)).astype(np.float32) * 3
    return x


def _weights(spec: LayerSpec, sample: tuple[int, ...]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    info = spec.analyse(sample)
    weights = {k: rng.standard_normal(s).astype(np.float32) for k, s in info.weight_shapes.items()}
    if "var" in weights:
        weights["var"] = np.abs(weights["var"]) + np.float32(0.1)
    return weights


def _domain_input(spec: LayerSpec, x: np.ndarray) -> np.ndarray:
    if isinstance(spec, Unary) and spec.op in ("Log", "Sqrt", "Reciprocal"):
        return np.abs(x) + np.float32(0.05)
    return x


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("spec, sample", CASES, ids=lambda v: repr(v) if isinstance(v, tuple)
                         else f"{v.type_name}{sorted(vars(v).items())}")
def test_export_runs_in_onnxruntime_and_imports_back(spec, sample, opset):
    info = spec.analyse(sample)
    weights = _weights(spec, sample)
    w = RecordingWriter(opset)
    out = EXPORTERS[type(spec)](w, spec, info, weights, "layer1.", ["x"], "y")
    assert out == "y"
    model = w.model({"x": (2, *sample)}, out, batch=2)
    x = _domain_input(spec, _input(sample))
    expected = FORWARD[type(spec)](spec, info, weights, x)
    np.testing.assert_allclose(run_model(model, x), expected, rtol=1e-5, atol=2e-6)

    parts = _node_ops(spec, opset)
    if parts is not None:
        assert [n.op_type for n in model.graph.node] == parts
        return
    assert len(model.graph.node) == 1
    reader = ModelReader(model)
    node = reader.nodes[0]
    imported = IMPORTERS[node.op_type](reader, node)
    assert imported.spec == spec
    assert imported.inputs == ("x",)
    assert imported.weights.keys() == weights.keys()
    for key, value in weights.items():
        assert imported.weights[key].dtype == np.float32
        np.testing.assert_array_equal(imported.weights[key], value)


def _import(model) -> LayerSpec:
    reader = ModelReader(model)
    node = reader.nodes[0]
    return IMPORTERS[node.op_type](reader, node)


def _check_runs_alike(model, imported, sample: tuple[int, ...]) -> None:
    x = _input(sample, seed=3)
    spec = imported.spec
    np.testing.assert_allclose(run_model(model, x),
                               FORWARD[type(spec)](spec, spec.analyse(sample), imported.weights, x),
                               rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("opset", [7, 9, 10])
@pytest.mark.parametrize("attrs, expected", [
    ({"min": 0.0, "max": 6.0}, Clip()), ({}, Clip(has_min=False, has_max=False)),
    ({"max": 2.5}, Clip(has_min=False, max=2.5)), ({"min": -1.0}, Clip(min=-1.0, has_max=False)),
    ({"min": -3.4028234663852886e38, "max": 1.0}, Clip(has_min=False, max=1.0))])
def test_clip_before_opset_11_reads_attributes(opset, attrs, expected):
    model = single_node_model("Clip", (2, 3, 4), opset, **attrs)
    imported = _import(model)
    assert imported.spec == expected and imported.inputs == ("x",)
    _check_runs_alike(model, imported, (3, 4))


@pytest.mark.parametrize("opset", [11, 12, 13])
@pytest.mark.parametrize("inputs, expected", [
    (["x", "lo", "hi"], Clip(min=-1.0, max=0.5)), (["x", "", "hi"], Clip(has_min=False, max=0.5)),
    (["x", "lo"], Clip(min=-1.0, has_max=False)), (["x"], Clip(has_min=False, has_max=False))])
def test_clip_from_opset_11_reads_constant_inputs(opset, inputs, expected):
    constants = {"lo": np.array(-1.0, np.float32), "hi": np.array(0.5, np.float32)}
    model = single_node_model("Clip", (2, 3, 4), opset, constants=constants, inputs=inputs)
    imported = _import(model)
    assert imported.spec == expected and imported.inputs == ("x",)
    _check_runs_alike(model, imported, (3, 4))


def test_clip_with_a_bound_computed_at_run_time_is_refused():
    node = helper.make_node("Clip", ["x", "lo"], ["y"], name="clip0")
    graph = helper.make_graph([node], "g", [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3]),
        helper.make_tensor_value_info("lo", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(FileFormatError, match="minimum .* computed at run time"):
        _import(model)


@pytest.mark.parametrize("op, kind", [("Softmax", Softmax), ("LogSoftmax", LogSoftmax)])
@pytest.mark.parametrize("opset", [7, 11, 12])
@pytest.mark.parametrize("shape, attrs, axis", [
    ((2, 10), {}, 1), ((2, 10, 1, 1), {}, 1), ((2, 1, 1, 7), {}, 3), ((2, 3, 4, 5), {"axis": 3}, 3),
    ((2, 3, 4, 5), {"axis": -1}, 3), ((2, 3, 1, 1), {"axis": 2}, 2)])
def test_softmax_before_opset_13_reads_a_one_axis_tail(op, kind, opset, shape, attrs, axis):
    model = single_node_model(op, shape, opset, **attrs)
    imported = _import(model)
    assert imported.spec == kind(axis=axis)
    _check_runs_alike(model, imported, shape[1:])


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_before_opset_13_over_a_flattened_tail_is_refused(op):
    model = single_node_model(op, (2, 3, 4, 5), 11, axis=2)
    with pytest.raises(FileFormatError, match="axes 2 to 3 .* flattened together"):
        _import(model)
    model = single_node_model(op, (1, 3, 4, 5), 11, axis=0)
    with pytest.raises(FileFormatError, match="flattened together"):
        _import(model)


def test_softmax_from_opset_13_defaults_to_the_last_axis():
    model = single_node_model("Softmax", (2, 3, 4), 13)
    assert _import(model).spec == Softmax(axis=-1)


def _batch_norm_constants(c: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    return {"scale": rng.standard_normal(c).astype(np.float32),
            "bias": rng.standard_normal(c).astype(np.float32),
            "mean": rng.standard_normal(c).astype(np.float32),
            "var": rng.random(c).astype(np.float32) + np.float32(0.5)}


@pytest.mark.parametrize("opset, attrs", [(7, {"spatial": 1}), (7, {}), (9, {}), (14, {}),
                                          (15, {"training_mode": 0, "epsilon": 0.001})])
def test_batch_norm_reads_inference_forms(opset, attrs):
    constants = _batch_norm_constants(3)
    model = single_node_model("BatchNormalization", (2, 3, 4, 5), opset, constants=constants,
                              **attrs)
    imported = _import(model)
    assert imported.spec == BatchNorm(epsilon=attrs.get("epsilon", 1e-5))
    assert imported.inputs == ("x",)
    for key, value in constants.items():
        np.testing.assert_array_equal(imported.weights[key], value)
    _check_runs_alike(model, imported, (3, 4, 5))


@pytest.mark.parametrize("opset, attrs, outputs, match", [
    (7, {"spatial": 0}, 1, "spatial=0"), (15, {"training_mode": 1}, 3, "training_mode=1"),
    (9, {}, 5, "running statistics")])
def test_batch_norm_in_training_form_is_refused(opset, attrs, outputs, match):
    constants = _batch_norm_constants(3)
    node = helper.make_node("BatchNormalization", ["x", *constants],
                            ["y", *[f"s{i}" for i in range(outputs - 1)]], name="bn0", **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[helper.make_tensor(k, TensorProto.FLOAT, v.shape, v) for k, v in
                     constants.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    with pytest.raises(FileFormatError, match=match):
        _import(model)


@pytest.mark.parametrize("opset", [7, 9, 16])
@pytest.mark.parametrize("slope_shape, expected", [
    ((3, 1, 1), None), ((1,), (1,)), ((), ()), ((5,), (5,)), ((4, 1), (4, 1)),
    ((1, 3, 1, 1), (1, 3, 1, 1))])
def test_prelu_keeps_any_slope_shape(opset, slope_shape, expected):
    slope = np.random.default_rng(4).standard_normal(slope_shape).astype(np.float32)
    model = single_node_model("PRelu", (2, 3, 4, 5), opset, constants={"slope": slope})
    imported = _import(model)
    assert imported.spec == PReLU(slope_shape=expected)
    assert imported.weights["slope"].shape == slope_shape
    assert imported.spec.analyse((3, 4, 5)).param_shapes["slope"] == slope_shape
    _check_runs_alike(model, imported, (3, 4, 5))


def test_prelu_with_a_slope_computed_at_run_time_is_refused():
    node = helper.make_node("PRelu", ["x", "slope"], ["y"], name="prelu0")
    graph = helper.make_graph([node], "g", [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 2]),
        helper.make_tensor_value_info("slope", TensorProto.FLOAT, [3, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(FileFormatError, match="slope .* must be a constant"):
        _import(model)


@pytest.mark.parametrize("opset", [7, 13])
def test_old_attribute_defaults_are_read(opset):
    assert _import(single_node_model("LeakyRelu", (1, 3), opset)).spec == LeakyReLU()
    assert _import(single_node_model("Elu", (1, 3), opset)).spec == ELU()
    assert _import(single_node_model("HardSigmoid", (1, 3), opset)).spec == HardSigmoid()
    lrn = single_node_model("LRN", (1, 5, 2, 2), opset, size=3)
    assert _import(lrn).spec == LRN(size=3)
    scale_bias = {"scale": np.ones(3, np.float32), "bias": np.zeros(3, np.float32)}
    model = single_node_model("InstanceNormalization", (1, 3, 2), opset, constants=scale_bias)
    assert _import(model).spec == InstanceNorm()


def test_gelu_at_opset_20_reads_its_approximation():
    assert _import(single_node_model("Gelu", (1, 3), 20)).spec == GELU()
    model = single_node_model("Gelu", (1, 3), 20, approximate="tanh")
    assert _import(model).spec == GELU(approximate="tanh")
