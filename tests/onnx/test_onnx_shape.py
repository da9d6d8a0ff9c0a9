"""The ONNX rules of engine.onnx.shape: export at opsets 13, 17 and 21 gives a model that onnx's
full checker accepts (its shape inference agrees with analyse) and onnxruntime computes as the
engine does; reading the node back gives the same spec. Old forms (Upsample, Resize 10, Pad and
Slice attributes, Reduce axes, Squeeze/Unsqueeze, Split) are built by hand and read."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

import engine.onnx.shape as onnx_shape
from engine.forward_shape import FORWARD_SHAPE
from engine.onnx.registry import EXPORTERS, IMPORTERS
from models.errors import ConfigError, FileFormatError
from models.layers.matmul import Gemm, MatMul
from models.layers.resample import DepthToSpace, Pad, Resize, SpaceToDepth
from models.layers.shape_ops import (ChannelShuffle, Identity, Reduce, Reshape, Slice, Transpose)
from models.layers.structure import Flatten
from tests.onnx.registry_doubles import ModelReader, RecordingWriter, run_model, single_node_model

RNG = np.random.default_rng(0)
BATCH = 2
CASES = [
    (Resize(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor",
            scales=(2.0, 3.0)), (3, 4, 5)),
    (Resize(mode="linear", coordinate_transformation_mode="half_pixel", scales=(1.7, 0.6)),
     (3, 5, 7)),
    (Resize(mode="linear", coordinate_transformation_mode="align_corners", scales=(),
            sizes=(7, 3, 9)), (2, 3, 4, 5)),
    (Resize(mode="nearest", coordinate_transformation_mode="pytorch_half_pixel",
            nearest_mode="round_prefer_ceil", scales=(), sizes=(11,)), (2, 7)),
    (Resize(mode="linear", coordinate_transformation_mode="tf_crop_and_resize",
            scales=(2.5, 1.5)), (1, 4, 4)),
    (Resize(mode="nearest", coordinate_transformation_mode="half_pixel_symmetric",
            scales=(2.0, 2.0)), (1, 3, 4)),
    (Pad(mode="constant", pads=(0, 1, 2, 0, 2, 1), value=0.5), (3, 4, 5)),
    (Pad(mode="reflect", pads=(1, 2, 0, 1, 0, 3)), (3, 4, 5)),
    (Pad(mode="edge", pads=(0, 2, 0, 1)), (3, 6)),
    (DepthToSpace(blocksize=2, mode="CRD"), (8, 3, 4)),
    (DepthToSpace(blocksize=2, mode="DCR"), (8, 3, 4)),
    (SpaceToDepth(blocksize=2), (3, 4, 6)),
    (Slice(starts=(1, -1), ends=(100, -100), axes=(2, -1), steps=(2, -1)), (3, 6, 5)),
    (Reduce(op="mean", axes=(2, 3), keepdims=True), (3, 4, 5)),
    (Reduce(op="max", axes=(1,), keepdims=False), (3, 4, 5)),
    (Reduce(op="sum", axes=(-1,), keepdims=True), (3, 4)),
    (Reduce(op="min", axes=(2,), keepdims=False), (3, 4, 5)),
    (Flatten(), (3, 4, 5)),
    (Gemm(units=6, alpha=0.5, beta=2.0, transB=True, bias_shape=(6,)), (5,)),
    (Gemm(units=6, transB=False, bias_shape=(1, 6)), (5,)),
    (Gemm(units=6, transB=False, bias_shape=None), (5,)),
    (MatMul(units=7), (3, 4, 5)),
    (Transpose(perm=(0, 2, 3, 1)), (3, 4, 5)),
    (Reshape(shape=(12, 5)), (3, 4, 5)),
    (ChannelShuffle(groups=3), (6, 4, 5)),
    (Identity(), (3, 4)),
]


def _weights(spec, in_shape):
    info = spec.analyse(in_shape)
    return info, {k: RNG.standard_normal(s).astype(np.float32)
                  for k, s in info.param_shapes.items()}


def _export(spec, in_shape, opset):
    info, weights = _weights(spec, in_shape)
    w = RecordingWriter(opset)
    out = EXPORTERS[type(spec)](w, spec, info, weights, "layer.", ["x"], "y")
    return w.model({"x": (BATCH, *in_shape)}, out, batch=BATCH), info, weights


@pytest.mark.parametrize("opset", [13, 17, 21])
@pytest.mark.parametrize("spec,in_shape", CASES, ids=lambda v: type(v).__name__
                         if not isinstance(v, tuple) else "x".join(map(str, v)))
def test_export_runs_as_the_engine_and_reads_back(spec, in_shape, opset):
    if getattr(spec, "coordinate_transformation_mode", "") == "half_pixel_symmetric" \
            and opset < 19:
        spec_for_file = spec.replace(coordinate_transformation_mode="half_pixel")
    else:
        spec_for_file = spec
    model, info, weights = _export(spec, in_shape, opset)
    x = RNG.standard_normal((BATCH, *in_shape)).astype(np.float32)
    ours = FORWARD_SHAPE[type(spec)](spec, info, weights, x)
    assert ours.shape == (BATCH, *info.output_shape)
    np.testing.assert_allclose(ours, run_model(model, x), rtol=1e-5, atol=1e-5)
    if isinstance(spec, ChannelShuffle):
        return  # three nodes: recognising the pattern is the graph importer's business
    reader = ModelReader(model)
    node = reader.nodes[-1]
    imported = IMPORTERS[node.op_type](reader, node)
    if getattr(spec, "sizes", ()) and opset < onnx_shape.RESIZE_AXES_OPSET:
        # Sizes travel as the scales that give them (no axes attribute before opset 18).
        assert imported.spec.analyse(in_shape).output_shape == info.output_shape
        spec_for_file = spec_for_file.replace(sizes=(), scales=imported.spec.scales)
    assert imported.spec == spec_for_file
    assert imported.inputs == ("x",)
    assert set(imported.weights) == set(weights)
    for key, value in weights.items():
        np.testing.assert_array_equal(imported.weights[key], value)


def test_half_pixel_symmetric_that_differs_needs_opset_19():
    spec = Resize(mode="linear", coordinate_transformation_mode="half_pixel_symmetric",
                  scales=(1.7, 0.6))
    with pytest.raises(FileFormatError, match="opset 19"):
        _export(spec, (1, 5, 7), 17)
    _export(spec, (1, 5, 7), 19)


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_space_to_depth_order_at_opset_28(mode):
    """From opset 28 SpaceToDepth has a mode; onnxruntime gives the engine's numbers in both
    orders and the mode reads back. The two orders differ on this input."""
    spec = SpaceToDepth(blocksize=2, mode=mode)
    model, info, weights = _export(spec, (3, 4, 6), 28)
    (node,) = model.graph.node
    assert {a.name: helper.get_attribute_value(a) for a in node.attribute} == \
        {"blocksize": 2, "mode": mode.encode()}
    x = RNG.standard_normal((BATCH, 3, 4, 6)).astype(np.float32)
    ours = FORWARD_SHAPE[SpaceToDepth](spec, info, weights, x)
    np.testing.assert_array_equal(ours, run_model(model, x))
    other = SpaceToDepth(blocksize=2, mode="CRD" if mode == "DCR" else "DCR")
    assert not np.array_equal(ours, FORWARD_SHAPE[SpaceToDepth](other, info, weights, x))
    reader = ModelReader(model)
    assert IMPORTERS["SpaceToDepth"](reader, node).spec == spec


def test_space_to_depth_crd_before_opset_28_is_refused_naming_the_fix():
    with pytest.raises(ConfigError, match="opset 28") as caught:
        _export(SpaceToDepth(blocksize=2, mode="CRD"), (3, 4, 6), 27)
    assert caught.value.field == "mode" and "DCR" in str(caught.value)
    model, _, _ = _export(SpaceToDepth(blocksize=2), (3, 4, 6), 27)
    assert [a.name for a in model.graph.node[0].attribute] == ["blocksize"]  # DCR: no mode


def test_unknown_block_order_is_refused():
    model = single_node_model("SpaceToDepth", (1, 3, 4, 6), 28, y_shape=(1, 12, 2, 3),
                              blocksize=2, mode="CRD")
    model.graph.node[0].attribute[1].s = b"XYZ"
    reader = ModelReader(model)
    with pytest.raises(FileFormatError, match="mode 'XYZ' is unknown"):
        IMPORTERS["SpaceToDepth"](reader, model.graph.node[0])


def test_wrap_pad_needs_opset_19():
    with pytest.raises(FileFormatError, match="opset 19"):
        _export(Pad(mode="wrap", pads=(0, 1, 0, 1)), (2, 4), 17)
    model, info, weights = _export(Pad(mode="wrap", pads=(0, 1, 0, 2)), (2, 4), 19)
    x = RNG.standard_normal((BATCH, 2, 4)).astype(np.float32)
    np.testing.assert_allclose(FORWARD_SHAPE[Pad](Pad(mode="wrap", pads=(0, 1, 0, 2)), info,
                                                  weights, x), run_model(model, x))


def _read(model):
    reader = ModelReader(model)
    node = reader.nodes[-1]
    return reader, node, IMPORTERS[node.op_type](reader, node)


def _engine_equals_file(model, imported, x):
    info = imported.spec.analyse(x.shape[1:])
    ours = FORWARD_SHAPE[type(imported.spec)](imported.spec, info, dict(imported.weights), x)
    np.testing.assert_allclose(ours, run_model(model, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("opset,attrs,constants", [
    (7, {"scales": [1.0, 1.0, 2.0, 3.0], "mode": "nearest"}, {}),
    (9, {"mode": "linear"}, {"scales": np.array([1, 1, 2.0, 2.5], np.float32)})])
def test_upsample(opset, attrs, constants):
    y = (1, 2, 6, 12) if "scales" in attrs else (1, 2, 6, 10)
    model = single_node_model("Upsample", (1, 2, 3, 4), opset, constants, y_shape=y, **attrs)
    reader, node, imported = _read(model)
    assert imported.spec.coordinate_transformation_mode == "asymmetric"
    _engine_equals_file(model, imported, RNG.standard_normal((1, 2, 3, 4)).astype(np.float32))


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_opset_10(mode):
    model = single_node_model("Resize", (1, 2, 3, 4), 10,
                              {"scales": np.array([1, 1, 2.0, 1.5], np.float32)},
                              y_shape=(1, 2, 6, 6), mode=mode)
    _, _, imported = _read(model)
    _engine_equals_file(model, imported, RNG.standard_normal((1, 2, 3, 4)).astype(np.float32))


def test_resize_axes_and_sizes_opset_18():
    model = single_node_model("Resize", (1, 2, 3, 4), 18, {"sizes": np.array([5, 7])},
                              inputs=["x", "", "", "sizes"], y_shape=(1, 2, 5, 7),
                              mode="linear", axes=[2, 3])
    _, _, imported = _read(model)
    assert imported.spec.sizes == (5, 7)
    _engine_equals_file(model, imported, RNG.standard_normal((1, 2, 3, 4)).astype(np.float32))


@pytest.mark.parametrize("attrs,why", [({"mode": "cubic"}, "cubic"),
                                       ({"mode": "linear", "antialias": 1}, "antialias")])
def test_resize_refusals(attrs, why):
    model = single_node_model("Resize", (1, 2, 3, 4), 18,
                              {"scales": np.array([1, 1, 0.5, 0.5], np.float32)},
                              inputs=["x", "", "scales"], y_shape=(1, 2, 1, 2), **attrs)
    with pytest.raises(FileFormatError, match=why):
        _read(model)


def test_resize_of_channels_is_refused():
    model = single_node_model("Resize", (1, 2, 3, 4), 13,
                              {"scales": np.array([1, 2, 1, 1], np.float32)},
                              inputs=["x", "", "scales"], y_shape=(1, 4, 3, 4))
    with pytest.raises(FileFormatError, match="channel"):
        _read(model)


def test_pad_attribute_form_and_axes_input():
    old = single_node_model("Pad", (1, 2, 3, 4), 10, y_shape=(1, 2, 5, 5),
                            pads=[0, 0, 1, 0, 0, 0, 1, 1], mode="edge")
    _, _, imported = _read(old)
    assert imported.spec == Pad(mode="edge", pads=(0, 1, 0, 0, 1, 1))
    _engine_equals_file(old, imported, RNG.standard_normal((1, 2, 3, 4)).astype(np.float32))
    new = single_node_model("Pad", (1, 2, 3, 4), 18,
                            {"pads": np.array([1, 2, 0, 1]), "value": np.array(2.5, np.float32),
                             "axes": np.array([-1, 2])}, y_shape=(1, 2, 6, 5))
    _, _, imported = _read(new)
    assert imported.spec == Pad(pads=(0, 2, 1, 0, 1, 0), value=2.5)
    _engine_equals_file(new, imported, RNG.standard_normal((1, 2, 3, 4)).astype(np.float32))
    batch = single_node_model("Pad", (1, 2, 3, 4), 13, {"pads": np.array([1, 0, 0, 0] * 2)},
                              y_shape=(3, 2, 3, 4))
    with pytest.raises(FileFormatError, match="batch"):
        _read(batch)


def test_slice_attribute_form_drops_a_whole_batch_entry():
    model = single_node_model("Slice", (2, 3, 6), 9, y_shape=(2, 3, 3), starts=[0, 1],
                              ends=[1000, 4], axes=[0, 2])
    _, _, imported = _read(model)
    assert imported.spec == Slice(starts=(1,), ends=(4,), axes=(2,), steps=(1,))
    _engine_equals_file(model, imported, RNG.standard_normal((2, 3, 6)).astype(np.float32))
    cut = single_node_model("Slice", (2, 3, 6), 9, y_shape=(1, 3, 6), starts=[0], ends=[1],
                            axes=[0])
    with pytest.raises(FileFormatError, match="batch"):
        _read(cut)


@pytest.mark.parametrize("op,opset,axes_input", [("ReduceMean", 11, False),
                                                 ("ReduceSum", 13, True),
                                                 ("ReduceMax", 17, False),
                                                 ("ReduceMin", 18, True)])
def test_reduce_forms(op, opset, axes_input):
    kwargs = {} if axes_input else {"axes": [2, 3]}
    constants = {"axes": np.array([2, 3])} if axes_input else {}
    model = single_node_model(op, (1, 2, 3, 4), opset, constants, y_shape=(1, 2, 1, 1),
                              **kwargs)
    _, _, imported = _read(model)
    assert imported.spec == Reduce(op=op[6:].lower(), axes=(2, 3), keepdims=True)
    _engine_equals_file(model, imported, RNG.standard_normal((1, 2, 3, 4)).astype(np.float32))


def test_reduce_over_every_axis_is_refused():
    model = single_node_model("ReduceMean", (1, 2, 3), 13, y_shape=(1, 1, 1))
    with pytest.raises(FileFormatError, match="batch"):
        _read(model)


@pytest.mark.parametrize("target,expected", [([0, -1], (24,)), ([2, 0, 8], (3, 8)),
                                             ([-1, 4, 6], (4, 6)), ([0, 3, -1, 2], (3, 4, 2))])
def test_reshape_targets_resolved(target, expected):
    model = single_node_model("Reshape", (2, 3, 8), 13, {"shape": np.array(target)},
                              y_shape=(2, *expected))
    _, _, imported = _read(model)
    assert imported.spec == Reshape(shape=expected)
    _engine_equals_file(model, imported, RNG.standard_normal((2, 3, 8)).astype(np.float32))


def test_reshape_of_the_batch_is_refused():
    model = single_node_model("Reshape", (2, 3, 8), 13, {"shape": np.array([1, -1])},
                              y_shape=(1, 48))
    with pytest.raises(FileFormatError, match="batch"):
        _read(model)


@pytest.mark.parametrize("op,opset,axes,x_shape,y_shape", [
    ("Squeeze", 11, [2], (2, 3, 1, 4), (2, 3, 4)), ("Squeeze", 13, [-1], (2, 3, 1), (2, 3)),
    ("Unsqueeze", 11, [1], (2, 3), (2, 1, 3)), ("Unsqueeze", 13, [-1, 2], (2, 3), (2, 3, 1, 1))])
def test_squeeze_unsqueeze_as_reshape(op, opset, axes, x_shape, y_shape):
    if opset < 13:
        model = single_node_model(op, x_shape, opset, y_shape=y_shape, axes=axes)
    else:
        model = single_node_model(op, x_shape, opset, {"axes": np.array(axes)}, y_shape=y_shape)
    _, _, imported = _read(model)
    assert imported.spec == Reshape(shape=y_shape[1:])
    _engine_equals_file(model, imported, RNG.standard_normal(x_shape).astype(np.float32))


def test_gemm_trans_a_and_matmul_with_runtime_weights_are_refused():
    model = single_node_model("Gemm", (4, 2), 13, {"W": np.ones((4, 3), np.float32)},
                              y_shape=(2, 3), transA=1)
    with pytest.raises(FileFormatError, match="transA"):
        _read(model)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", 1, [3, 3])],
        [helper.make_tensor_value_info("y", 1, [3, 3])])
    with pytest.raises(FileFormatError, match="constant"):
        _read(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))


def test_identity_and_dropout():
    _, _, imported = _read(single_node_model("Identity", (1, 3), 13))
    assert imported.spec == Identity() and imported.inputs == ("x",)
    _, _, imported = _read(single_node_model("Dropout", (1, 3), 13,
                                             {"ratio": np.array(0.5, np.float32),
                                              "mode": np.array(False)}))
    assert imported.spec == Identity() and imported.inputs == ("x",)
    training = single_node_model("Dropout", (1, 3), 13, {"ratio": np.array(0.5, np.float32),
                                                          "mode": np.array(True)})
    with pytest.raises(FileFormatError, match="training"):
        _read(training)


def _split_model(opset, attrs, constants, outputs):
    node = helper.make_node("Split", ["x", *constants], [f"y{i}" for i in range(len(outputs))],
                            name="split0", **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", 1, [1, 2, 7])],
        [helper.make_tensor_value_info(f"y{i}", 1, [1, 2, n]) for i, n in enumerate(outputs)],
        initializer=[numpy_helper.from_array(v, k) for k, v in constants.items()])
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = helper.find_min_ir_version_for(opsets)
    return model


@pytest.mark.parametrize("opset,attrs,constants,sizes", [
    (11, {"axis": 2, "split": [3, 4]}, {}, [3, 4]),
    (13, {"axis": -1}, {"split": np.array([2, 5])}, [2, 5]),
    (18, {"axis": 2, "num_outputs": 3}, {}, [3, 3, 1])])
def test_split_parts(opset, attrs, constants, sizes):
    model = _split_model(opset, attrs, constants, sizes)
    reader = ModelReader(model)
    parts = onnx_shape.split_parts(reader, reader.nodes[0])
    x = RNG.standard_normal((1, 2, 7)).astype(np.float32)
    expected = ort.InferenceSession(model.SerializeToString(),
                                    providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert len(parts) == len(sizes)
    for part, want in zip(parts, expected):
        assert part.inputs == ("x",)
        info = part.spec.analyse((2, 7))
        np.testing.assert_array_equal(FORWARD_SHAPE[Slice](part.spec, info, {}, x), want)
