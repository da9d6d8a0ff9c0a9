"""engine.ops.shape_ops against onnxruntime and onnx.reference on random inputs: Pad, DepthToSpace,
SpaceToDepth, Slice, Reduce*, Gemm, MatMul, Transpose, Reshape, and the channel shuffle."""
from __future__ import annotations

import numpy as np
import pytest
from onnx.reference import ReferenceEvaluator

from engine.ops import shape_ops
from models.layers.shape_ops import Slice
from tests.onnx.registry_doubles import run_model, single_node_model

RNG = np.random.default_rng(0)


def _check(ours, model, x, reference: bool = True):
    """ours equals onnxruntime's output (and onnx.reference's unless it cannot run the case)."""
    outputs = [run_model(model, x)]
    if reference:
        outputs.append(ReferenceEvaluator(model).run(None, {"x": x})[0])
    for expected in outputs:
        assert ours.shape == expected.shape
        np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode,pads,value", [
    ("constant", (0, 1, 2, 0, 2, 1), 0.0), ("constant", (1, 0, 1, 2, 1, 0), -1.5),
    ("constant", (0, -1, 2, 0, 1, -2), 0.0), ("reflect", (0, 2, 1, 0, 1, 3), 0.0),
    ("edge", (0, 3, 0, 0, 1, 2), 0.0), ("edge", (0, -1, 2, 0, 2, -1), 0.0),
    ("wrap", (0, 2, 1, 0, 1, 3), 0.0)])
def test_pad(mode, pads, value):
    x = RNG.standard_normal((2, 3, 5, 6)).astype(np.float32)
    ours = shape_ops.pad(x, pads, mode, value)
    full = [0, *pads[:3], 0, *pads[3:]]
    constants = {"pads": np.array(full, np.int64), "value": np.array(value, np.float32)}
    model = single_node_model("Pad", x.shape, 19, constants, y_shape=ours.shape, mode=mode)
    _check(ours, model, x, reference=min(pads) >= 0)  # the reference cannot crop


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_depth_to_space(mode):
    x = RNG.standard_normal((2, 12, 3, 4)).astype(np.float32)
    ours = shape_ops.depth_to_space(x, 2, mode)
    _check(ours, single_node_model("DepthToSpace", x.shape, 13, y_shape=ours.shape,
                                   blocksize=2, mode=mode), x)


def test_space_to_depth():
    x = RNG.standard_normal((2, 3, 6, 9)).astype(np.float32)
    ours = shape_ops.space_to_depth(x, 3)
    _check(ours, single_node_model("SpaceToDepth", x.shape, 13, y_shape=ours.shape,
                                   blocksize=3), x)


@pytest.mark.parametrize("starts,ends,axes,steps", [
    ((1,), (3,), (1,), (1,)), ((-4, 0), (100, -1), (2, 3), (2, 1)),
    ((10, -1), (-100, 0), (2, -1), (-1, -2)), ((0,), (2**62,), (-2,), (3,)),
    ((4, 1), (0, 5), (2, 1), (-2, 2))])
def test_slice(starts, ends, axes, steps):
    x = RNG.standard_normal((2, 6, 7, 5)).astype(np.float32)
    spec = Slice(starts=starts, ends=ends, axes=axes, steps=steps)
    ranges = spec.ranges(x.shape[1:])
    ours = shape_ops.slice_axes(x, {a + 1: r for a, r in ranges.items()})
    constants = {k: np.array(v, np.int64) for k, v in
                 dict(starts=starts, ends=ends, axes=axes, steps=steps).items()}
    _check(ours, single_node_model("Slice", x.shape, 13, constants, y_shape=ours.shape), x)


@pytest.mark.parametrize("op", ["mean", "max", "sum", "min"])
@pytest.mark.parametrize("axes,keepdims", [((2, 3), True), ((1,), False), ((-1, 1), True),
                                           ((2,), False)])
def test_reduce(op, axes, keepdims):
    x = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
    full = tuple(a % 4 for a in axes)
    ours = shape_ops.reduce(x, op, full, keepdims)
    name = "Reduce" + op.capitalize()
    model = single_node_model(name, x.shape, 18, {"axes": np.array(axes, np.int64)},
                              y_shape=ours.shape, keepdims=int(keepdims))
    _check(ours, model, x)


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("bias_shape", [None, (), (5,), (1, 5), (3, 5), (1,)])
def test_gemm(trans_b, bias_shape):
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    w = RNG.standard_normal((5, 4) if trans_b else (4, 5)).astype(np.float32)
    constants = {"W": w}
    if bias_shape is not None:
        constants["B"] = RNG.standard_normal(bias_shape).astype(np.float32)
    ours = shape_ops.gemm(x, w, constants.get("B"), 0.5, 2.0, bool(trans_b))
    model = single_node_model("Gemm", x.shape, 13, constants, y_shape=(3, 5), alpha=0.5,
                              beta=2.0, transB=trans_b)
    _check(ours, model, x)


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4), (2, 2, 3, 4)])
def test_matmul(shape):
    x = RNG.standard_normal(shape).astype(np.float32)
    w = RNG.standard_normal((4, 6)).astype(np.float32)
    ours = shape_ops.matmul(x, w)
    _check(ours, single_node_model("MatMul", shape, 13, {"W": w},
                                   y_shape=(*shape[:-1], 6)), x)


@pytest.mark.parametrize("perm", [(0, 2, 3, 1), (0, 3, 1, 2), (0, 1, 3, 2)])
def test_transpose(perm):
    x = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
    ours = shape_ops.transpose(x, perm)
    _check(ours, single_node_model("Transpose", x.shape, 13, y_shape=ours.shape,
                                   perm=list(perm)), x)


def test_reshape():
    x = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
    ours = shape_ops.reshape(x, (12, 5))
    _check(ours, single_node_model("Reshape", x.shape, 13, {"shape": np.array([0, 12, 5])},
                                   y_shape=(2, 12, 5)), x)


def test_channel_shuffle_interleaves_groups():
    x = np.arange(6, dtype=np.float32).reshape(1, 6, 1, 1)
    ours = shape_ops.channel_shuffle(x, 2)
    assert ours.ravel().tolist() == [0, 3, 1, 4, 2, 5]
