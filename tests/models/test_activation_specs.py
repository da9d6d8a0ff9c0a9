"""The activation, element-wise math and normalisation specs: shape arithmetic against onnx's
shape inference, the errors that name their field, project-file round trips, receptive fields
and exact receptive windows."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from models.errors import ConfigError
from models.geometry import RFState
from models.layers.activation import (ELU, GELU, UNARY_OPS, Clip, HardSigmoid, HardSwish,
                                      LogSoftmax, PReLU, SiLU, Softmax, Unary)
from models.layers.base import LayerSpec
from models.layers.normalization import LRN, InstanceNorm
from models.receptive_activation import BACK_ACTIVATION

SHAPES = [(10,), (3, 7), (4, 5, 6), (2, 3, 4, 5)]


def _inferred_shape(op: str, sample: tuple[int, ...], opset: int = 21,
                    constants: dict[str, np.ndarray] | None = None, **attrs) -> tuple[int, ...]:
    """The output's sample shape by onnx's strict shape inference of one `op` node."""
    constants = constants or {}
    node = helper.make_node(op, ["x", *constants], ["y"], **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, *sample])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(v, k) for k, v in constants.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    dims = inferred.graph.output[0].type.tensor_type.shape.dim
    assert dims[0].dim_value == 2
    return tuple(d.dim_value for d in dims[1:])


ELEMENTWISE = [
    (Clip(), "Clip", {}), (HardSigmoid(alpha=0.3, beta=0.4), "HardSigmoid", {}),
    (HardSwish(), "HardSwish", {}), (ELU(alpha=0.5), "Elu", {}),
    (GELU(approximate="tanh"), "Gelu", {"approximate": "tanh"}),
    *[(Unary(op=op), op, {}) for op in UNARY_OPS],
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("spec, op, attrs", ELEMENTWISE, ids=lambda v: getattr(v, "type_name", ""))
def test_elementwise_shapes_match_onnx_shape_inference(spec, op, attrs, shape):
    info = spec.analyse(shape)
    assert info.output_shape == _inferred_shape(op, shape, **attrs)
    assert info.rf_steps == () and info.params == 0


@pytest.mark.parametrize("shape", SHAPES)
def test_silu_keeps_the_shape(shape):
    assert SiLU().analyse(shape).output_shape == _inferred_shape("Sigmoid", shape)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", [Softmax, LogSoftmax])
def test_softmax_shape_and_axis_on_every_axis(kind, shape):
    rank = len(shape) + 1
    for axis in [*range(1, rank), *range(-rank + 1, 0)]:
        info = kind(axis=axis).analyse(shape)
        assert info.output_shape == _inferred_shape(kind.__name__, shape, axis=axis)
        assert info.attrs["axis"] == axis % rank


@pytest.mark.parametrize("axis", [0, -4, 4, 7, -9])
def test_softmax_refuses_the_batch_and_missing_axes(axis):
    with pytest.raises(ConfigError, match=f"axis {axis}") as caught:
        Softmax(axis=axis).analyse((3, 4, 5))
    assert caught.value.field == "axis"


def test_softmax_without_an_axis_key_loads_as_channels():
    old = LayerSpec.from_dict({"type": "Softmax"})
    assert old == Softmax(axis=1) and old.analyse((10,)).rf_steps == ()
    assert LayerSpec.from_dict(json.loads(json.dumps(Softmax(axis=-1).to_dict()))) == \
        Softmax(axis=-1)


def test_softmax_over_a_spatial_axis_sees_that_whole_axis():
    info = Softmax(axis=3).analyse((2, 5, 7))
    states = [RFState().then(step) for step in info.rf_steps[0]]
    assert [(s.size, s.jump) for s in states] == [(1, 1), (7, 1)]
    mask = np.zeros((5, 7), bool)
    mask[2, 3] = True
    back = BACK_ACTIVATION[Softmax](Softmax(axis=3), info, (2, 5, 7), mask)
    expected = np.zeros((5, 7), bool)
    expected[2, :] = True
    np.testing.assert_array_equal(back, expected)
    channels = Softmax().analyse((2, 5, 7))
    np.testing.assert_array_equal(BACK_ACTIVATION[Softmax](Softmax(), channels, (2, 5, 7), mask),
                                  mask)


def test_clip_bounds_serialise_without_infinities():
    spec = Clip(has_min=False, has_max=True, max=1.5)
    text = json.dumps(spec.to_dict(), allow_nan=False)
    assert LayerSpec.from_dict(json.loads(text)) == spec
    assert spec.bounds == (None, 1.5) and Clip().bounds == (0.0, 6.0)


def test_clip_refuses_min_above_max_and_bad_values():
    with pytest.raises(ConfigError, match="min 3 is above max 1") as caught:
        Clip(min=3, max=1).analyse((3,))
    assert caught.value.field == "min"
    Clip(min=3, max=1, has_max=False).analyse((3,))
    with pytest.raises(ConfigError) as caught:
        Clip(max=float("inf"))
    assert caught.value.field == "max"


@pytest.mark.parametrize("sample, slope_shape", [
    ((3, 4, 5), None), ((3, 4, 5), ()), ((3, 4, 5), (1,)), ((3, 4, 5), (5,)),
    ((3, 4, 5), (4, 1)), ((3, 4, 5), (1, 3, 4, 5)), ((6,), None), ((3, 7), (3, 1))])
def test_prelu_slope_shape_matches_onnx(sample, slope_shape):
    spec = PReLU(slope_shape=slope_shape)
    info = spec.analyse(sample)
    slope = info.param_shapes["slope"]
    assert slope == (slope_shape if slope_shape is not None
                     else (sample[0],) + (1,) * (len(sample) - 1))
    constants = {"slope": np.ones(slope, np.float32)}
    assert info.output_shape == _inferred_shape("PRelu", sample, constants=constants)
    assert LayerSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


@pytest.mark.parametrize("slope_shape", [(4,), (3, 1, 1, 1), (2, 3, 4, 5), (1, 1, 3, 4, 5)])
def test_prelu_refuses_a_slope_that_does_not_broadcast(slope_shape):
    with pytest.raises(ConfigError, match="does not broadcast") as caught:
        PReLU(slope_shape=slope_shape).analyse((3, 4, 5))
    assert caught.value.field == "slope_shape"


def test_prelu_refuses_a_malformed_slope_shape():
    with pytest.raises(ConfigError) as caught:
        PReLU(slope_shape=(3, 0))
    assert caught.value.field == "slope_shape"


@pytest.mark.parametrize("field, value", [("approximate", "fast")])
def test_gelu_refuses_an_unknown_approximation(field, value):
    with pytest.raises(ConfigError) as caught:
        GELU(**{field: value})
    assert caught.value.field == field


def test_unary_is_named_by_its_op_and_refuses_others():
    assert Unary(op="Sqrt").type_name == "Sqrt" and Unary(op="Sqrt").short_name == "sqrt"
    with pytest.raises(ConfigError) as caught:
        Unary(op="Cos")
    assert caught.value.field == "op"


@pytest.mark.parametrize("size", [1, 3, 5])
def test_lrn_shape_matches_onnx(size):
    spec = LRN(size=size, alpha=0.001, beta=0.5, bias=2.0)
    assert spec.analyse((6, 4, 5)).output_shape == _inferred_shape("LRN", (6, 4, 5), size=size)


@pytest.mark.parametrize("spec, shape, field", [
    (LRN(size=4), (6, 4, 5), "size"), (LRN(size=0), (6, 4, 5), "size"),
    (LRN(), (6, 4), None), (LRN(), (6, 4, 5, 2), None)])
def test_lrn_refusals_name_the_field(spec, shape, field):
    """A wrong input rank is the input's fault: no field of LRN is named."""
    with pytest.raises(ConfigError) as caught:
        spec.analyse(shape)
    assert caught.value.field == field


@pytest.mark.parametrize("shape", [(3, 7), (4, 5, 6), (2, 3, 4, 5)])
def test_instance_norm_shape_weights_and_window(shape):
    info = InstanceNorm().analyse(shape)
    constants = {"scale": np.ones(shape[0], np.float32), "bias": np.zeros(shape[0], np.float32)}
    assert info.output_shape == _inferred_shape("InstanceNormalization", shape,
                                                constants=constants)
    assert info.param_shapes == {"scale": (shape[0],), "bias": (shape[0],)}
    assert [RFState().then(step).size for step in info.rf_steps[0]] == list(shape[1:])
    mask = np.zeros(shape[1:], bool)
    assert not BACK_ACTIVATION[InstanceNorm](InstanceNorm(), info, shape, mask).any()
    mask.flat[0] = True
    assert BACK_ACTIVATION[InstanceNorm](InstanceNorm(), info, shape, mask).all()


def test_instance_norm_refusals():
    with pytest.raises(ConfigError, match="spatial"):
        InstanceNorm().analyse((10,))
    with pytest.raises(ConfigError) as caught:
        InstanceNorm(epsilon=0).analyse((3, 4))
    assert caught.value.field == "epsilon"


@pytest.mark.parametrize("spec", [Clip(), HardSwish(), SiLU(), PReLU(), ELU(), GELU(),
                                  Unary(op="Exp"), LRN(), HardSigmoid()])
def test_position_wise_kinds_map_each_position_onto_itself(spec):
    shape = (6, 4, 5)
    mask = np.random.default_rng(0).random((4, 5)) > 0.7
    back = BACK_ACTIVATION[type(spec)](spec, spec.analyse(shape), shape, mask)
    np.testing.assert_array_equal(back, mask)
    assert back is not mask


@pytest.mark.parametrize("spec", [Clip(has_min=False, max=2.0), HardSigmoid(alpha=0.1, beta=0.2),
                                  ELU(alpha=0.3), GELU(approximate="tanh"), Unary(op="Log"),
                                  PReLU(slope_shape=(1,)), LRN(size=3, alpha=0.5),
                                  InstanceNorm(epsilon=0.001), LogSoftmax(axis=-2)])
def test_project_file_round_trip(spec):
    assert LayerSpec.from_dict(json.loads(json.dumps(spec.to_dict(), allow_nan=False))) == spec
