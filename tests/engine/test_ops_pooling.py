"""engine.ops pooling against onnxruntime and onnx's reference implementation.

onnxruntime is the reference for every configuration. onnx's
ReferenceEvaluator (onnx 1.23) is also compared, but only where it is right:

* MaxPool with all strides and dilations equal to 1 goes through a legacy
  code path that mishandles padding (wrong output shapes or IndexError for
  1-D/3-D pads and asymmetric pads, no "last window must start inside" rule).
* AveragePool with ceil_mode splits the extra ceil-mode padding between the
  start and the end of the axis; once that extra is 2 or more cells (stride
  of 3 or more) the windows are shifted by one cell versus onnxruntime and
  the ONNX spec.

* GlobalMaxPool reduces axes ``(ndim-2, ndim-1)`` instead of all spatial
  axes, so it is only right for 2-D inputs.

``test_reference_quirks_still_present`` pins the first two, so the
restrictions can be lifted when onnx fixes them.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine.ops import (
    average_pool,
    global_average_pool,
    global_max_pool,
    max_pool,
    pool_output_size,
)
from tests.engine.onnx_single_op import run_onnxruntime, run_reference

TOL = {"atol": 1e-4, "rtol": 1e-4}


@st.composite
def pool_cases(draw, average: bool):
    nd = draw(st.integers(1, 3))
    kernel = draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd))
    strides = draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd))
    dilations = draw(st.lists(st.integers(1, 2), min_size=nd, max_size=nd))
    # ONNX requires pads smaller than the kernel.
    pads = [draw(st.integers(0, k - 1)) for k in kernel * 2]
    ceil_mode = draw(st.integers(0, 1))
    max_side = {1: 10, 2: 6, 3: 4}[nd]
    size = [draw(st.integers(1, max_side)) for _ in range(nd)]
    outs = [pool_output_size(size[i], kernel[i], strides[i], pads[i], pads[nd + i],
                             dilations[i], ceil_mode) for i in range(nd)]
    assume(min(outs) >= 1)
    # Every window must contain at least one real input cell (with dilation a
    # window can straddle a short input; the runtimes then disagree: -inf,
    # NaN or -FLT_MAX).
    for i in range(nd):
        for o in range(outs[i]):
            taps = [o * strides[i] + k * dilations[i] - pads[i] for k in range(kernel[i])]
            assume(any(0 <= t < size[i] for t in taps))
    n = draw(st.integers(1, 2))
    c = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((n, c, *size), dtype=np.float32)
    attrs = {"kernel_shape": kernel, "strides": strides, "pads": pads,
             "ceil_mode": ceil_mode, "dilations": dilations}
    if average:
        attrs["count_include_pad"] = draw(st.integers(0, 1))
    return x, attrs


def _ceil_extra(x, attrs):
    """Cells ceil mode adds past the end pad, per axis."""
    nd = x.ndim - 2
    extra = []
    for i in range(nd):
        k, s, d = attrs["kernel_shape"][i], attrs["strides"][i], attrs["dilations"][i]
        pb, pe = attrs["pads"][i], attrs["pads"][nd + i]
        out = pool_output_size(x.shape[2 + i], k, s, pb, pe, d, attrs["ceil_mode"])
        extra.append((out - 1) * s + d * (k - 1) + 1 - (x.shape[2 + i] + pb + pe))
    return extra


@settings(max_examples=80, deadline=None)
@given(pool_cases(average=False))
def test_max_pool_matches_onnxruntime(case):
    x, attrs = case
    expected = run_onnxruntime("MaxPool", {"x": x}, **attrs)
    got = max_pool(x, **attrs)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, **TOL)


@settings(max_examples=60, deadline=None)
@given(pool_cases(average=False))
def test_max_pool_matches_reference(case):
    x, attrs = case
    assume(max(attrs["strides"]) > 1 or max(attrs["dilations"]) > 1)  # see module doc
    expected = run_reference("MaxPool", {"x": x}, **attrs)
    got = max_pool(x, **attrs)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, **TOL)


@settings(max_examples=80, deadline=None)
@given(pool_cases(average=True))
def test_average_pool_matches_onnxruntime(case):
    x, attrs = case
    expected = run_onnxruntime("AveragePool", {"x": x}, **attrs)
    got = average_pool(x, **attrs)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, **TOL)


@settings(max_examples=60, deadline=None)
@given(pool_cases(average=True))
def test_average_pool_matches_reference(case):
    x, attrs = case
    assume(max(_ceil_extra(x, attrs)) < 2)  # see module doc
    expected = run_reference("AveragePool", {"x": x}, **attrs)
    got = average_pool(x, **attrs)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, **TOL)


def test_reference_quirks_still_present():
    x = np.arange(7, dtype=np.float32).reshape(1, 1, 7)
    # AveragePool, ceil mode, extra of 2 cells: the reference shifts windows.
    attrs = {"kernel_shape": [3], "strides": [3], "pads": [0, 0], "ceil_mode": 1}
    ort = run_onnxruntime("AveragePool", {"x": x}, **attrs)
    ref = run_reference("AveragePool", {"x": x}, **attrs)
    np.testing.assert_allclose(average_pool(x, **attrs), ort)
    np.testing.assert_allclose(ort, [[[1.0, 4.0, 6.0]]])
    assert not np.allclose(ref, ort)
    # MaxPool, unit strides, 1-D asymmetric pads: the reference's shape is off.
    attrs = {"kernel_shape": [2], "strides": [1], "pads": [0, 1]}
    assert run_onnxruntime("MaxPool", {"x": x}, **attrs).shape == (1, 1, 7)
    assert run_reference("MaxPool", {"x": x}, **attrs).shape != (1, 1, 7)


# size, kernel, stride, pad_begin, pad_end, dilation: ceil-mode edge cases.
CEIL_EDGE_CASES = [
    (7, 3, 3, 0, 0, 1),  # ceil adds a window reaching 2 cells past the input
    (6, 2, 2, 0, 0, 1),  # exact fit, ceil changes nothing
    (5, 2, 2, 0, 0, 1),  # last window half outside, kept
    (5, 2, 4, 0, 1, 1),  # last window would start in the end pad: dropped
    (4, 3, 3, 1, 1, 1),  # window starting exactly at size + pad_begin: dropped
    (5, 3, 2, 1, 1, 2),  # dilated
    (1, 2, 3, 1, 1, 1),  # tiny input, window covers padding on both sides
    (8, 1, 3, 0, 0, 1),  # 1-wide kernel
    (10, 3, 4, 2, 0, 1),  # padding at the start only
]


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("ceil_mode", [0, 1])
@pytest.mark.parametrize("size,kernel,stride,pb,pe,dilation", CEIL_EDGE_CASES)
def test_pool_output_size_matches_onnxruntime(op, ceil_mode, size, kernel, stride, pb, pe,
                                              dilation):
    x = np.ones((1, 1, size), np.float32)
    attrs = {"kernel_shape": [kernel], "strides": [stride], "pads": [pb, pe],
             "ceil_mode": ceil_mode, "dilations": [dilation]}
    expected = run_onnxruntime(op, {"x": x}, **attrs).shape[2]
    assert pool_output_size(size, kernel, stride, pb, pe, dilation, ceil_mode) == expected


@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_average_pool_ceil_cells_never_counted(count_include_pad):
    # size 5, kernel 2, stride 2, ceil: the last window covers x[4] and one
    # ceil-mode cell, which is never counted: the average is x[4] itself.
    x = np.arange(1, 6, dtype=np.float32).reshape(1, 1, 5)
    attrs = {"kernel_shape": [2], "strides": [2], "pads": [0, 0], "ceil_mode": 1,
             "count_include_pad": count_include_pad}
    got = average_pool(x, **attrs)
    np.testing.assert_allclose(got, [[[1.5, 3.5, 5.0]]])
    np.testing.assert_allclose(got, run_onnxruntime("AveragePool", {"x": x}, **attrs))


def test_average_pool_count_include_pad_counts_explicit_pads():
    x = np.full((1, 1, 3, 3), 9.0, np.float32)
    attrs = {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [1, 1, 1, 1]}
    corner_with_pads = average_pool(x, count_include_pad=1, **attrs)[0, 0, 0, 0]
    corner_without = average_pool(x, count_include_pad=0, **attrs)[0, 0, 0, 0]
    assert corner_with_pads == pytest.approx(9.0 * 4 / 9)
    assert corner_without == pytest.approx(9.0)


def test_max_pool_padding_never_wins():
    x = -np.ones((1, 2, 4, 4), np.float32) * 5
    got = max_pool(x, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    np.testing.assert_array_equal(got, -5.0)


@pytest.mark.parametrize("shape", [(2, 3, 7), (2, 3, 5, 4), (1, 2, 3, 4, 5)])
@pytest.mark.parametrize("fn,op", [(global_max_pool, "GlobalMaxPool"),
                                   (global_average_pool, "GlobalAveragePool")])
def test_global_pools(fn, op, shape):
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    got = fn(x)
    assert got.dtype == np.float32
    assert got.shape == shape[:2] + (1,) * (len(shape) - 2)
    np.testing.assert_allclose(got, run_onnxruntime(op, {"x": x}), **TOL)
    # The reference's GlobalMaxPool reduces the wrong axes unless the input
    # is 2-D (see module doc); GlobalAveragePool is fine for every rank.
    if op == "GlobalAveragePool" or len(shape) == 4:
        np.testing.assert_allclose(got, run_reference(op, {"x": x}), **TOL)


def test_bad_attributes_raise():
    x = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError):
        max_pool(x, kernel_shape=[3], strides=[1, 1], pads=[0, 0, 0, 0])
    with pytest.raises(ValueError):
        average_pool(x, kernel_shape=[5, 5], strides=[1, 1], pads=[0, 0, 0, 0])
    with pytest.raises(ValueError):
        max_pool(np.zeros((4, 4), np.float32), kernel_shape=[2, 2])


@pytest.mark.parametrize("block_bytes", [1 << 12, 1 << 16], ids=["channel-chunks",
                                                                 "image-chunks"])
def test_chunked_pools_match_onnxruntime(monkeypatch, block_bytes):
    # Force several chunks: a few channels of one image, or several images.
    conv_module = importlib.import_module("engine.ops.conv")
    monkeypatch.setattr(conv_module, "_BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(conv_module, "_MIN_PARALLEL_MACS", 1)
    x = np.random.default_rng(3).standard_normal((5, 6, 13, 11), dtype=np.float32)
    attrs = {"kernel_shape": [3, 2], "strides": [2, 3], "pads": [1, 0, 1, 1],
             "ceil_mode": 1, "dilations": [1, 2]}
    np.testing.assert_allclose(max_pool(x, **attrs),
                               run_onnxruntime("MaxPool", {"x": x}, **attrs), **TOL)
    for cip in (0, 1):
        np.testing.assert_allclose(
            average_pool(x, count_include_pad=cip, **attrs),
            run_onnxruntime("AveragePool", {"x": x}, count_include_pad=cip, **attrs), **TOL)


@pytest.mark.parametrize(
    "shape,kernel,ceil_mode",
    [
        ((2, 3, 8, 10), [2, 2], 0),  # VGG's 2x2 stride 2
        ((2, 3, 9, 11), [2, 2], 0),  # floor mode drops the last row and column
        ((1, 2, 9, 12), [3, 3], 1),  # ceil mode with an exact fit
        ((2, 2, 7, 8), [1, 2], 0),  # one axis not pooled
        ((1, 2, 13), [3], 0),
        ((1, 2, 4, 6, 5), [2, 3, 1], 0),
        ((1, 2, 5, 5), [1, 1], 0),  # a plain copy
    ],
)
def test_tiling_max_pool_matches_onnxruntime(shape, kernel, ceil_mode):
    # kernel == stride, no pads: the strided-view fast path, not the planes.
    pooling = importlib.import_module("engine.ops.pooling")
    x = np.random.default_rng(4).standard_normal(shape, dtype=np.float32)
    attrs = {"kernel_shape": kernel, "strides": kernel, "ceil_mode": ceil_mode}
    geom = pooling._geometry(x, "MaxPool", kernel, kernel, None, None, ceil_mode)
    assert pooling._is_tiling(geom)
    np.testing.assert_array_equal(max_pool(x, **attrs),
                                  run_onnxruntime("MaxPool", {"x": x}, **attrs))


def test_tiling_max_pool_in_chunks(monkeypatch):
    conv_module = importlib.import_module("engine.ops.conv")
    monkeypatch.setattr(conv_module, "_BLOCK_BYTES", 1 << 10)
    monkeypatch.setattr(conv_module, "_MIN_PARALLEL_MACS", 1)
    x = np.random.default_rng(5).standard_normal((3, 5, 12, 14), dtype=np.float32)
    attrs = {"kernel_shape": [2, 2], "strides": [2, 2]}
    np.testing.assert_array_equal(max_pool(x, **attrs),
                                  run_onnxruntime("MaxPool", {"x": x}, **attrs))
