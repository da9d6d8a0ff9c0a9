"""Shape arithmetic, settings errors and exact receptive windows of the shape, resampling and
matrix-product kinds. The windows are checked by brute force on the engine: an input position is
in the window exactly when changing its values changes the clicked output."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.forward_shape import FORWARD_SHAPE
from models.errors import ConfigError
from models.layers.matmul import Gemm, MatMul
from models.layers.resample import DepthToSpace, Pad, Resize, SpaceToDepth
from models.layers.shape_ops import (ChannelShuffle, Identity, Reduce, Reshape, Slice, Transpose,
                                     flatten_shape)
from models.layers.structure import Flatten
from models.receptive_shape import BACK_SHAPE

RNG = np.random.default_rng(0)

WINDOW_CASES = [
    (Resize(mode="nearest", coordinate_transformation_mode="half_pixel", scales=(1.7, 0.6)),
     (1, 5, 7)),
    (Resize(mode="linear", coordinate_transformation_mode="align_corners", scales=(2.5,)), (2, 4)),
    (Resize(mode="linear", coordinate_transformation_mode="asymmetric", scales=(),
            sizes=(3, 7)), (1, 6, 4)),
    (Pad(mode="constant", pads=(0, 1, 2, 0, 2, 1)), (2, 3, 4)),
    (Pad(mode="reflect", pads=(1, 2, 1, 0, 1, 3)), (2, 4, 5)),
    (Pad(mode="edge", pads=(0, -1, 2, 0, 2, -1)), (1, 4, 5)),
    (Pad(mode="wrap", pads=(0, 2, 0, 3)), (1, 5)),
    (DepthToSpace(blocksize=2, mode="DCR"), (8, 2, 3)),
    (DepthToSpace(blocksize=2, mode="CRD"), (8, 2, 3)),
    (SpaceToDepth(blocksize=2), (2, 4, 6)),
    (SpaceToDepth(blocksize=2, mode="CRD"), (2, 4, 6)),
    (Slice(starts=(4, 1), ends=(0, 5), axes=(2, 3), steps=(-2, 2)), (2, 6, 6)),
    (Reduce(op="mean", axes=(3,), keepdims=True), (2, 3, 4)),
    (Reduce(op="sum", axes=(2,), keepdims=False), (2, 3, 4)),
    (Reduce(op="mean", axes=(1,), keepdims=False), (2, 3, 4)),
    (Transpose(perm=(0, 3, 1, 2)), (2, 3, 4)),
    (Transpose(perm=(0, 1, 3, 2)), (2, 3, 4)),
    (Reshape(shape=(6, 4)), (2, 3, 4)),
    (Reshape(shape=(2, 2, 6)), (2, 3, 4)),
    (MatMul(units=3), (2, 3, 4)),
    (Gemm(units=3, bias_shape=None), (5,)),
    (Flatten(), (2, 3, 4)),
    (ChannelShuffle(groups=2), (4, 3, 2)),
    (Identity(), (2, 3)),
]


def _weights(info):
    return {k: RNG.standard_normal(s).astype(np.float32) for k, s in info.param_shapes.items()}


@pytest.mark.parametrize("spec,in_shape", WINDOW_CASES,
                         ids=lambda v: type(v).__name__ if not isinstance(v, tuple) else
                         "x".join(map(str, v)))
def test_window_is_exact(spec, in_shape):
    info = spec.analyse(in_shape)
    weights = _weights(info)
    forward = FORWARD_SHAPE[type(spec)]
    x = RNG.standard_normal((1, *in_shape)).astype(np.float32)
    base = forward(spec, info, weights, x)
    out_spatial = info.output_shape[1:]
    for position in list(np.ndindex(*out_spatial))[:12]:
        mask = np.zeros(out_spatial, bool)
        mask[position] = True
        window = BACK_SHAPE[type(spec)](spec, info, in_shape, mask)
        assert window.shape == tuple(in_shape[1:])
        reached = np.zeros(in_shape[1:], bool)
        for element in np.ndindex(*in_shape):
            changed = x.copy()
            changed[(0, *element)] += 10.0
            out = forward(spec, info, weights, changed)
            if not np.allclose(out[(0, slice(None), *position)], base[(0, slice(None), *position)]):
                reached[element[1:]] = True
        np.testing.assert_array_equal(window, reached, err_msg=f"output {position}")


@pytest.mark.parametrize("spec,in_shape,field", [
    (Resize(scales=(2.0,)), (3, 4, 5), "scales"),
    (Resize(scales=(), sizes=(4, 0)), (3, 4, 5), "sizes"),
    (Resize(scales=(0.1, 1.0)), (3, 4, 5), "scales"),
    (Pad(pads=(1, 1)), (3, 4, 5), "pads"),
    (Pad(mode="reflect", pads=(0, 4, 0, 0, 0, 0)), (3, 4, 5), "pads"),
    (Pad(mode="wrap", pads=(0, -1, 0, 0, 0, 0)), (3, 4, 5), "pads"),
    (DepthToSpace(blocksize=3), (8, 2, 2), "blocksize"),
    (DepthToSpace(), (8, 2), None),
    (SpaceToDepth(blocksize=3), (2, 4, 6), "blocksize"),
    (Slice(axes=(0,)), (3, 4), "axes"),
    (Slice(starts=(0,), ends=(1, 2), axes=(1,)), (3, 4), "ends"),
    (Slice(steps=(0,)), (3, 4), "steps"),
    (Slice(starts=(3,), ends=(1,), axes=(1,)), (3, 4), "ends"),
    (Reduce(axes=(0, 1)), (3, 4), "axes"),
    (Reduce(axes=()), (3, 4), "axes"),
    (Reduce(axes=(4,)), (3, 4), "axes"),
    (Reduce(axes=(1, 1)), (3, 4), "axes"),
    (Reduce(axes=(1,), keepdims=False), (3,), "keepdims"),
    (Transpose(perm=(1, 0, 2)), (3, 4), "perm"),
    (Transpose(perm=(0, 1)), (3, 4), "perm"),
    (Reshape(shape=(5, -1)), (3, 4), "shape"),
    (Reshape(shape=(-1, -1)), (3, 4), "shape"),
    (ChannelShuffle(groups=4), (6, 2), "groups"),
    (Gemm(transA=True), (4,), "transA"),
    (Gemm(), (4, 5), None),
    (Gemm(units=6, bias_shape=(4,)), (4,), "bias_shape"),
])
def test_errors_name_the_field(spec, in_shape, field):
    """Errors name the field to change, or none where the input is at fault."""
    with pytest.raises(ConfigError) as caught:
        spec.analyse(in_shape)
    assert caught.value.field == field
    assert field is None or field in {f.name for f in dataclasses.fields(spec)}


def test_flatten_shape():
    assert flatten_shape((3, 4, 5), 1) == (60,)
    assert flatten_shape((1, 4, 5), 2) == (20,)
    assert flatten_shape((3, 4), -2) == (12,)
    assert flatten_shape((1, 1), 3) == (1,)
    for axis in (0, 2, 5, -4):
        with pytest.raises(ConfigError) as caught:
            flatten_shape((3, 4, 5), axis)
        assert caught.value.field == "axis"


def test_settings_types_are_checked_at_construction():
    for make, field in [(lambda: Resize(mode="cubic"), "mode"),
                        (lambda: Resize(scales=("a",)), "scales"),
                        (lambda: Pad(pads=(1.5,)), "pads"),
                        (lambda: Reduce(op="prod"), "op"),
                        (lambda: Gemm(alpha="x"), "alpha")]:
        with pytest.raises(ConfigError) as caught:
            make()
        assert caught.value.field == field


def test_shapes_params_and_steps():
    assert Resize(scales=(1.5, 0.5)).analyse((3, 5, 6)).output_shape == (3, 7, 3)
    assert Pad(pads=(1, 0, 2, 0, 3, 0)).analyse((2, 4, 5)).output_shape == (3, 7, 7)
    assert Pad(pads=(1, 0, 0, 1, 0, 0)).analyse((2, 4, 5)).rf_steps == ()
    info = Gemm(units=6, transB=False, bias_shape=(1, 6)).analyse((5,))
    assert info.param_shapes == {"W": (5, 6), "B": (1, 6)} and info.macs == 30
    assert MatMul(units=7).analyse((3, 4, 5)).param_shapes == {"W": (5, 7)}
    assert Reduce(axes=(-1, 2), keepdims=False).analyse((3, 4, 5)).output_shape == (3,)
    assert Transpose(perm=(0, 2, 3, 1)).analyse((3, 4, 5)).output_shape == (4, 5, 3)
    assert Reshape(shape=(-1, 5)).analyse((3, 4, 5)).output_shape == (12, 5)
    assert Slice(starts=(-1,), ends=(-100,), axes=(2,), steps=(-1,)).analyse(
        (3, 4)).output_shape == (3, 4)
    assert DepthToSpace(blocksize=2).analyse((8, 2, 3)).output_shape == (2, 4, 6)
    assert SpaceToDepth(blocksize=2).analyse((2, 4, 6)).output_shape == (8, 2, 3)
    assert Identity().analyse((3, 4)).rf_steps == ()
