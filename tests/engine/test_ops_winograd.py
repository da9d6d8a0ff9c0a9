"""engine.ops.winograd (F(2x2, 3x3)) against onnxruntime's Conv, and the dispatch to it.

Tolerance: Winograd adds a few float32 roundings per output (input transform,
16 products summed over channels, output transform, all additions of terms
of the output's size), so the error scales with the output's magnitude, not
with each value: about 5e-7 of ``max|y|`` measured on these shapes. The tests
allow 1e-4 of ``max|y|`` (and 1e-4 relative), as for the other kernels.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.ops import conv
from engine.ops.winograd import winograd_applies
from tests.engine.onnx_single_op import run_onnxruntime

conv_module = importlib.import_module("engine.ops.conv")
winograd_module = importlib.import_module("engine.ops.winograd")

REL = 1e-4


def _assert_close(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.dtype == np.float32 and got.shape == expected.shape
    scale = float(np.abs(expected).max(initial=1.0))
    np.testing.assert_allclose(got, expected, rtol=REL, atol=REL * scale)


@st.composite
def winograd_cases(draw):
    c_in, c_out = draw(st.integers(16, 24)), draw(st.integers(16, 24))
    pads = draw(st.lists(st.integers(0, 2), min_size=4, max_size=4))
    # Output sizes from 1 up, odd and even (odd ones end in a half tile).
    h = draw(st.integers(max(1, 3 - pads[0] - pads[2]), 19))
    w = draw(st.integers(max(1, 3 - pads[1] - pads[3]), 19))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((draw(st.integers(1, 3)), c_in, h, w), dtype=np.float32)
    wt = rng.standard_normal((c_out, c_in, 3, 3), dtype=np.float32)
    b = rng.standard_normal(c_out, dtype=np.float32) if draw(st.booleans()) else None
    return x, wt, b, {"strides": [1, 1], "pads": pads, "dilations": [1, 1], "group": 1}


def _expected(x, w, b, attrs):
    inputs = {"x": x, "w": w} if b is None else {"x": x, "w": w, "b": b}
    return run_onnxruntime("Conv", inputs, **attrs)


@settings(max_examples=40, deadline=None)
@given(winograd_cases())
def test_matches_onnxruntime(case):
    x, w, b, attrs = case
    _assert_close(conv(x, w, b, **attrs), _expected(x, w, b, attrs))


@pytest.mark.parametrize("target_tiles", [1, 7], ids=["one-tile-row", "few-tile-rows"])
def test_blocks_of_tile_rows(monkeypatch, target_tiles):
    # Many blocks per image, a shorter last block, an odd height and width,
    # asymmetric pads, on the pool; run twice so reused buffers are checked.
    monkeypatch.setattr(winograd_module, "_TARGET_TILES", target_tiles)
    rng = np.random.default_rng(11)
    w = rng.standard_normal((20, 17, 3, 3), dtype=np.float32)
    b = rng.standard_normal(20, dtype=np.float32)
    attrs = {"strides": [1, 1], "pads": [2, 0, 1, 1], "dilations": [1, 1], "group": 1}
    for seed in (0, 1):
        x = np.random.default_rng(seed).standard_normal((2, 17, 21, 14), dtype=np.float32)
        _assert_close(conv(x, w, b, **attrs), _expected(x, w, b, attrs))


def test_same_shapes_different_pads_reuse_nothing_stale():
    # Buffers are cached per thread by geometry; a call with other pads must
    # not see the previous call's zero cells in the wrong place.
    rng = np.random.default_rng(12)
    x = rng.standard_normal((1, 16, 12, 12), dtype=np.float32)
    w = rng.standard_normal((16, 16, 3, 3), dtype=np.float32)
    for pads in ([1, 1, 1, 1], [0, 2, 2, 0], [1, 1, 1, 1]):
        attrs = {"strides": [1, 1], "pads": pads, "dilations": [1, 1], "group": 1}
        _assert_close(conv(x, w, None, **attrs), _expected(x, w, None, attrs))


def test_large_conv_matches_onnxruntime():
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 32, 57, 70), dtype=np.float32)
    w = rng.standard_normal((48, 32, 3, 3), dtype=np.float32)
    b = rng.standard_normal(48, dtype=np.float32)
    attrs = {"strides": [1, 1], "pads": [1, 1, 1, 1], "dilations": [1, 1], "group": 1}
    _assert_close(conv(x, w, b, **attrs), _expected(x, w, b, attrs))


@pytest.mark.parametrize(
    "w_shape,strides,dilations,group,applies",
    [
        ((32, 32, 3, 3), (1, 1), (1, 1), 1, True),
        ((64, 128, 3, 3), (1, 1), (1, 1), 1, True),
        ((32, 32, 3, 3), (2, 2), (1, 1), 1, False),  # stride
        ((32, 32, 3, 3), (1, 1), (2, 2), 1, False),  # dilation
        ((64, 32, 3, 3), (1, 1), (1, 1), 2, False),  # groups
        ((32, 32, 5, 5), (1, 1), (1, 1), 1, False),  # kernel size
        ((32, 32, 3, 1), (1, 1), (1, 1), 1, False),
        ((16, 32, 3, 3), (1, 1), (1, 1), 1, False),  # too few channels
        ((32, 16, 3, 3), (1, 1), (1, 1), 1, False),
        ((32, 3, 3, 3), (1, 1), (1, 1), 1, False),
        ((32, 32, 3), (1,), (1,), 1, False),  # 1-D
    ],
)
def test_applies(w_shape, strides, dilations, group, applies):
    assert winograd_applies(w_shape, strides, dilations, group) is applies


@pytest.mark.parametrize("dilation,taken", [(1, True), (2, False)])
def test_conv_dispatches_to_winograd_only_where_it_applies(monkeypatch, dilation, taken):
    calls = []
    real = conv_module.conv_winograd

    def recording(*args):
        calls.append(args[1].shape)
        return real(*args)

    monkeypatch.setattr(conv_module, "conv_winograd", recording)
    rng = np.random.default_rng(14)
    x = rng.standard_normal((1, 32, 10, 9), dtype=np.float32)
    w = rng.standard_normal((32, 32, 3, 3), dtype=np.float32)
    attrs = {"strides": [1, 1], "pads": [dilation] * 4, "dilations": [dilation] * 2, "group": 1}
    _assert_close(conv(x, w, None, **attrs), _expected(x, w, None, attrs))
    assert bool(calls) is taken
