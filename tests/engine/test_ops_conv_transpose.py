"""engine.ops.conv_transpose against onnx's reference ConvTranspose and
onnxruntime.

Where the two references fall short, the tests say so and use the other one:
onnx's reference implementation does not support ``group > 1`` (it fails with
a reshape error), and onnxruntime (like the reference) rejects
``output_padding >= stride`` even though the ONNX spec allows
``output_padding < max(stride, dilation)``; that case is checked against the
reference's uncropped output, extended by output_padding and then cropped.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.ops import conv_transpose, conv_transpose_output_size
from tests.engine.onnx_single_op import run_onnxruntime, run_reference

TOL = {"atol": 1e-4, "rtol": 1e-4}


def _inputs(x, w, b):
    return {"x": x, "w": w, "b": b}


@st.composite
def conv_transpose_cases(draw, grouped: bool, padding_beyond_stride: bool = False):
    nd = draw(st.integers(1, 3))
    group = draw(st.integers(2, 3)) if grouped else 1
    c_in = group * draw(st.integers(1, 3))
    c_out_g = draw(st.integers(1, 3))
    kernel = draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd))
    strides = draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd))
    if padding_beyond_stride:
        # output_padding in [stride, dilation) on at least one axis.
        dilations = draw(st.lists(st.integers(2, 3), min_size=nd, max_size=nd))
        strides = [min(s, d - 1) for s, d in zip(strides, dilations)]
        output_padding = [draw(st.integers(0, max(s, d) - 1))
                          for s, d in zip(strides, dilations)]
        axis = draw(st.integers(0, nd - 1))
        output_padding[axis] = draw(st.integers(strides[axis], dilations[axis] - 1))
    else:
        dilations = draw(st.lists(st.integers(1, 2), min_size=nd, max_size=nd))
        output_padding = [draw(st.integers(0, s - 1)) for s in strides]
    pads = draw(st.lists(st.integers(0, 2), min_size=2 * nd, max_size=2 * nd))
    max_side = {1: 8, 2: 5, 3: 3}[nd]
    size = []
    for i in range(nd):
        full = dilations[i] * (kernel[i] - 1) + 1 + output_padding[i]
        # Smallest input with a non-empty output after cropping the pads.
        need = pads[i] + pads[nd + i] + 1 - full
        lo = max(1, -(-need // strides[i]) + 1) if need > 0 else 1
        size.append(draw(st.integers(lo, max(lo, max_side))))
    n = draw(st.integers(1, 2))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((n, c_in, *size), dtype=np.float32)
    w = rng.standard_normal((c_in, c_out_g, *kernel), dtype=np.float32)
    b = rng.standard_normal(group * c_out_g, dtype=np.float32) if draw(st.booleans()) else None
    attrs = {"strides": strides, "pads": pads, "dilations": dilations, "group": group,
             "output_padding": output_padding}
    return x, w, b, attrs


@settings(max_examples=70, deadline=None)
@given(conv_transpose_cases(grouped=False))
def test_matches_reference(case):
    x, w, b, attrs = case
    expected = run_reference("ConvTranspose", _inputs(x, w, b), **attrs)
    got = conv_transpose(x, w, b, **attrs)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, **TOL)


@settings(max_examples=50, deadline=None)
@given(conv_transpose_cases(grouped=True))
def test_groups_match_onnxruntime(case):
    x, w, b, attrs = case
    expected = run_onnxruntime("ConvTranspose", _inputs(x, w, b), **attrs)
    np.testing.assert_allclose(conv_transpose(x, w, b, **attrs), expected, **TOL)


@settings(max_examples=30, deadline=None)
@given(conv_transpose_cases(grouped=True))
def test_groups_match_reference_per_group(case):
    # The reference has no groups: run it once per group and concatenate.
    x, w, b, attrs = case
    group = attrs["group"]
    single = dict(attrs, group=1)
    cg, cog = x.shape[1] // group, w.shape[1]
    parts = [
        run_reference(
            "ConvTranspose",
            _inputs(x[:, g * cg:(g + 1) * cg], w[g * cg:(g + 1) * cg],
                    None if b is None else b[g * cog:(g + 1) * cog]),
            **single,
        )
        for g in range(group)
    ]
    np.testing.assert_allclose(conv_transpose(x, w, b, **attrs), np.concatenate(parts, 1),
                               **TOL)


@settings(max_examples=30, deadline=None)
@given(conv_transpose_cases(grouped=False, padding_beyond_stride=True))
def test_output_padding_beyond_stride(case):
    # Per the spec, output_padding appends cells (holding only the bias) after
    # the full scatter, before pads are cropped. Reference: the full scatter
    # from the reference (no pads, no output_padding), extended and cropped.
    x, w, b, attrs = case
    nd = x.ndim - 2
    op, pads = attrs["output_padding"], attrs["pads"]
    full = run_reference("ConvTranspose", _inputs(x, w, b),
                         **dict(attrs, output_padding=[0] * nd, pads=[0] * (2 * nd)))
    widths = [(0, 0), (0, 0)] + [(0, op[i]) for i in range(nd)]
    extended = np.pad(full, widths)
    if b is not None:
        appended = np.pad(np.zeros(full.shape, bool), widths, constant_values=True)
        extended = np.where(appended, b.reshape(1, -1, *(1,) * nd), extended)
    crop = tuple(slice(pads[i], extended.shape[2 + i] - pads[nd + i]) for i in range(nd))
    expected = extended[(slice(None), slice(None), *crop)]
    got = conv_transpose(x, w, b, **attrs)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, **TOL)


def test_batch_bias_stride_2d():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 6, 5), dtype=np.float32)
    w = rng.standard_normal((4, 3, 3, 2), dtype=np.float32)
    b = rng.standard_normal(3, dtype=np.float32)
    attrs = {"strides": [2, 3], "pads": [1, 0, 0, 1], "dilations": [1, 2], "group": 1,
             "output_padding": [1, 2]}
    expected = run_reference("ConvTranspose", _inputs(x, w, b), **attrs)
    np.testing.assert_allclose(conv_transpose(x, w, b, **attrs), expected, **TOL)


def test_large_enough_for_parallel_chunks():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 16, 20, 20), dtype=np.float32)
    w = rng.standard_normal((16, 8, 4, 4), dtype=np.float32)
    b = rng.standard_normal(16, dtype=np.float32)
    attrs = {"strides": [2, 2], "pads": [1, 1, 1, 1], "dilations": [1, 1], "group": 2,
             "output_padding": [0, 0]}
    expected = run_onnxruntime("ConvTranspose", _inputs(x, w, b), **attrs)
    np.testing.assert_allclose(conv_transpose(x, w, b, **attrs), expected, **TOL)


@pytest.mark.parametrize(
    "x_shape,kernel,group,pads,bias",
    [
        ((2, 4, 5, 6), [2, 2], 1, [0, 0, 0, 0], True),  # the decoder's 2x upsampling
        ((2, 4, 5, 6), [2, 2], 1, [0, 0, 0, 0], False),
        ((1, 6, 4, 3), [3, 2], 2, [1, 0, 2, 1], True),  # groups, cropped pads
        ((2, 3, 7), [2], 1, [1, 0], True),
        ((1, 2, 3, 2, 2), [2, 1, 2], 1, [0, 0, 0, 0, 0, 1], True),
    ],
)
def test_kernel_equal_to_stride_writes_taps_directly(x_shape, kernel, group, pads, bias):
    # Non-overlapping taps: each output cell is written once, no fill pass.
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape, dtype=np.float32)
    w = rng.standard_normal((x_shape[1], 3, *kernel), dtype=np.float32)
    b = rng.standard_normal(3 * group, dtype=np.float32) if bias else None
    nd = len(kernel)
    attrs = {"strides": kernel, "pads": pads, "dilations": [1] * nd, "group": group,
             "output_padding": [0] * nd}
    inputs = _inputs(x, w, b) if bias else {"x": x, "w": w}
    expected = run_onnxruntime("ConvTranspose", inputs, **attrs)
    np.testing.assert_allclose(conv_transpose(x, w, b, **attrs), expected, **TOL)


@pytest.mark.parametrize("size,k,s,pb,pe,d,op", [(5, 3, 2, 1, 1, 1, 1), (1, 1, 1, 0, 0, 1, 0),
                                                (4, 2, 3, 0, 2, 2, 2)])
def test_output_size_formula(size, k, s, pb, pe, d, op):
    x = np.zeros((1, 1, size), np.float32)
    w = np.zeros((1, 1, k), np.float32)
    expected = run_onnxruntime("ConvTranspose", {"x": x, "w": w}, strides=[s], pads=[pb, pe],
                               dilations=[d], output_padding=[op])
    assert conv_transpose_output_size(size, k, s, pb, pe, d, op) == expected.shape[2]


def test_inconsistent_shapes_raise():
    x = np.zeros((1, 4, 5, 5), np.float32)
    with pytest.raises(ValueError):
        conv_transpose(x, np.zeros((3, 2, 3, 3), np.float32), strides=None, pads=None,
                       dilations=None)
    with pytest.raises(ValueError):
        conv_transpose(x, np.zeros((4, 2, 3, 3), np.float32), np.zeros(3, np.float32),
                       strides=None, pads=None, dilations=None)
    with pytest.raises(ValueError):  # output would be empty
        conv_transpose(np.zeros((1, 4, 1, 1), np.float32), np.zeros((4, 2, 1, 1), np.float32),
                       strides=None, pads=[1, 0, 0, 0], dilations=None)
