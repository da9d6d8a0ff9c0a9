"""Opaque nodes: ONNX nodes outside the vocabulary (TopK, Einsum, a com.microsoft contrib op, a
Concat with a constant, which the Concat rule refuses) import as Opaque layers whose output
equals onnxruntime's on the original file; their spec survives a project round trip, their
export runs in onnxruntime; what cannot be kept is refused with a clear message."""
from __future__ import annotations

import json

import numpy as np
import pytest
from graph_checks import every_tensor, inferred_shapes, tensor_of
from helpers import assert_close
from onnx import TensorProto, helper, numpy_helper

from engine.executor import run
from engine.onnx.export import export_model
from engine.onnx.importer import import_model
from engine.onnx.verify import verify
from models.analysis import analyse
from models.errors import ConfigError, FileFormatError
from models.layers import LayerSpec
from models.layers.opaque import Opaque, back_opaque
from models.stack import INPUT

IN_SHAPE = [1, 3, 6, 6]




def _w(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.5, shape).astype(np.float32)


def _model(nodes, initializers, extra_opsets=(), out="y", in_shape=IN_SHAPE):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(v, k) for k, v in initializers.items()])
    opsets = [helper.make_opsetid("", 17), *(helper.make_opsetid(d, v) for d, v in extra_opsets)]
    return helper.make_model(graph, opset_imports=opsets)


def _conv(name="conv", out="c"):
    return helper.make_node("Conv", ["x", "W"], [out], name=name, kernel_shape=[3, 3],
                            pads=[1, 1, 1, 1])


def _top_k():
    nodes = [_conv(), helper.make_node("TopK", ["c", "k"], ["v", "i"], name="topk", axis=1),
             helper.make_node("Relu", ["v"], ["y"], name="relu")]
    return _model(nodes, {"W": _w(4, 3, 3, 3), "k": np.array([2], np.int64)})


def _einsum():
    nodes = [_conv(), helper.make_node("Einsum", ["c", "E"], ["e"], name="mix",
                                       equation="nchw,dc->ndhw"),
             helper.make_node("Sigmoid", ["e"], ["y"], name="sigmoid")]
    return _model(nodes, {"W": _w(4, 3, 3, 3), "E": _w(5, 4, seed=1)})


def _contrib():
    nodes = [_conv(), helper.make_node("Gelu", ["c"], ["g"], name="gelu", domain="com.microsoft"),
             helper.make_node("Add", ["g", "x2"], ["y"], name="add")]
    return _model(nodes, {"W": _w(4, 3, 3, 3), "x2": _w(1, 4, 1, 1, seed=2)},
                  extra_opsets=[("com.microsoft", 1)])


def _concat_constant():
    nodes = [_conv(), helper.make_node("Concat", ["c", "K"], ["y"], name="join", axis=1)]
    return _model(nodes, {"W": _w(4, 3, 3, 3), "K": _w(1, 2, 6, 6, seed=3)})


CASES = {"topk": (_top_k, "topk", "TopK"), "einsum": (_einsum, "mix", "Einsum"),
         "contrib": (_contrib, "gelu", "com.microsoft.Gelu"),
         "refused-by-its-rule": (_concat_constant, "join", "Concat")}


def _opaque_layers(stack):
    return [layer for layer in stack.layers if isinstance(layer.spec, Opaque)]


@pytest.mark.parametrize("case", list(CASES))
def test_opaque_node_equals_onnxruntime(case):
    build, name, type_name = CASES[case]
    model = build()
    stack = import_model(model)
    (layer,) = _opaque_layers(stack)
    assert (layer.name, layer.spec.type_name) == (name, type_name)
    assert layer.inputs == ("conv",)
    report = analyse(stack)
    assert report.ok, report.first_error
    shapes = inferred_shapes(model)
    x = np.random.default_rng(5).standard_normal(IN_SHAPE).astype(np.float32)
    theirs = every_tensor(model, x)
    result = run(stack, x)
    engines = {r.name: r.engine for r in report.layers}
    assert {engines[layer.name] for layer in _opaque_layers(stack)} == {"onnxruntime"}
    assert "numpy" in engines.values()  # the others are ours
    for each, layer_report, ours in zip(stack.layers, report.layers, result.outputs):
        tensor = tensor_of(model, each)
        if tensor in shapes:  # onnx cannot size the contrib op; onnxruntime can
            assert layer_report.output_shape == shapes[tensor]
        assert_close(ours, theirs[tensor])


def test_reasons_say_why_a_node_is_opaque():
    reasons = {case: _opaque_layers(import_model(build()))[0].spec.reason
               for case, (build, _, _) in CASES.items()}
    assert reasons["topk"] == "ConvScope has no layer for the ONNX operator TopK"
    assert reasons["contrib"] == "ConvScope has no layer for the ONNX operator com.microsoft.Gelu"
    assert "constant tensor" in reasons["refused-by-its-rule"]


def test_float_constants_are_weights_and_others_stay_in_the_node():
    (einsum,) = _opaque_layers(import_model(_einsum()))
    assert einsum.spec.constants == (("in1", (5, 4)),)
    np.testing.assert_array_equal(einsum.weights["in1"], _w(5, 4, seed=1))
    (top_k,) = _opaque_layers(import_model(_top_k()))
    assert top_k.spec.constants == () and top_k.weights == {}
    assert top_k.spec.input_shapes == ((4, 6, 6),) and top_k.spec.output_shape == (2, 6, 6)


def test_spec_survives_a_project_round_trip_and_refuses_other_sizes():
    (layer,) = _opaque_layers(import_model(_einsum()))
    data = layer.spec.to_dict()
    again = LayerSpec.from_dict(json.loads(json.dumps(data)))
    assert again == layer.spec
    info = again.analyse((4, 6, 6))
    assert info.param_shapes == {"in1": (5, 4)}
    with pytest.raises(ConfigError, match=r"read for input \(4, 6, 6\) but now gets "
                                          r"\(4, 8, 8\)") as err:
        again.analyse((4, 8, 8))
    assert err.value.field == "inputs"


def test_receptive_field_is_every_position():
    stack = import_model(_einsum())
    report = analyse(stack)
    index = stack.index_of("mix")
    # every one of the conv's 6 outputs per axis, each seeing 3 pixels: 3 + 5 = 8 (padding included)
    assert report.layers[index].receptive_field == (8, 8)
    mask = np.zeros((6, 6), bool)
    mask[2, 3] = True
    spec = stack.layers[index].spec
    assert back_opaque(spec, report.layers[index].info, (4, 6, 6), mask).all()
    assert not back_opaque(spec, report.layers[index].info, (4, 6, 6), ~np.ones((6, 6), bool)).any()


@pytest.mark.parametrize("case", ["einsum", "contrib", "topk"])
def test_export_writes_the_node_back_and_onnxruntime_agrees(case):
    build, name, _ = CASES[case]
    stack = import_model(build())
    spec = stack.layers[stack.index_of(name)].spec
    model = export_model(stack)
    (node,) = [n for n in model.graph.node if n.name == name]
    assert (node.op_type, node.domain) == (spec.op_type, spec.domain)
    if spec.domain:
        assert (spec.domain, 1) in {(o.domain, o.version) for o in model.opset_import}
    if case == "topk":  # TopK must write its indices too, though nothing reads them
        assert len(node.output) == 2
    report = verify(stack)
    assert report.ok, report.worst


def test_an_operator_onnxruntime_cannot_run_either_is_refused():
    nodes = [_conv(), helper.make_node("Frobnicate", ["c"], ["y"], name="frob", domain="my.ops")]
    with pytest.raises(FileFormatError, match=r"no layer for the operator my\.ops\.Frobnicate, "
                                              r"and onnxruntime cannot run it either.*'frob'"):
        import_model(_model(nodes, {"W": _w(4, 3, 3, 3)}, extra_opsets=[("my.ops", 1)]))


def test_several_used_results_of_an_opaque_node_are_refused():
    nodes = [_conv(), helper.make_node("TopK", ["c", "k"], ["v", "i"], name="topk", axis=1),
             helper.make_node("Cast", ["i"], ["f"], name="cast", to=TensorProto.FLOAT),
             helper.make_node("Add", ["v", "f"], ["y"], name="add")]
    model = _model(nodes, {"W": _w(4, 3, 3, 3), "k": np.array([2], np.int64)})
    with pytest.raises(FileFormatError, match=r"\(TopK\) gives 2 results that later nodes read"
                                              r".*'topk'$"):
        import_model(model)


def test_an_opaque_node_may_read_the_input_and_index_tensors():
    """ArgMax gives int64 indices; the next opaque node reads them (as float32 in between)."""
    nodes = [helper.make_node("ArgMax", ["x"], ["a"], name="argmax", axis=1, keepdims=1),
             helper.make_node("Cast", ["a"], ["y"], name="cast", to=TensorProto.FLOAT)]
    model = _model(nodes, {})
    stack = import_model(model)
    assert stack.layers[0].inputs == (INPUT,)
    x = np.random.default_rng(7).standard_normal(IN_SHAPE).astype(np.float32)
    result = run(stack, x)
    np.testing.assert_array_equal(result.output, every_tensor(model, x)["y"])
