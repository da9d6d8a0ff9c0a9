"""engine.ops activations against onnx's reference implementation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from engine.ops import leaky_relu, relu, sigmoid, softmax, tanh
from tests.engine.onnx_single_op import run_reference

TOL = {"atol": 1e-4, "rtol": 1e-4}

finite_f32 = st.floats(-1e4, 1e4, width=32, allow_nan=False, allow_infinity=False)
arrays = hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=4, max_side=5),
                    elements=finite_f32)


@settings(max_examples=60, deadline=None)
@given(arrays)
def test_relu(x):
    got = relu(x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, run_reference("Relu", {"x": x}), **TOL)


@settings(max_examples=60, deadline=None)
@given(arrays, st.floats(-3, 3, allow_nan=False).filter(lambda a: a != 0) | st.just(0.01))
def test_leaky_relu(x, alpha):
    got = leaky_relu(x, alpha)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, run_reference("LeakyRelu", {"x": x}, alpha=alpha), **TOL)


@settings(max_examples=60, deadline=None)
@given(arrays)
def test_sigmoid_and_tanh(x):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings, even at |x| = 1e4
        got_s, got_t = sigmoid(x), tanh(x)
    assert got_s.dtype == got_t.dtype == np.float32
    # The reference itself overflows in exp for large |x|; silence it.
    with np.errstate(over="ignore", invalid="ignore"):
        expected_s = run_reference("Sigmoid", {"x": x})
    np.testing.assert_allclose(got_s, expected_s, **TOL)
    np.testing.assert_allclose(got_t, run_reference("Tanh", {"x": x}), **TOL)


def test_sigmoid_extremes():
    x = np.array([-1e30, -100.0, -88.8, 0.0, 88.8, 100.0, 1e30], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = sigmoid(x)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got[[0, -1]], [0.0, 1.0])
    assert got[3] == 0.5


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=4, max_side=5),
                  elements=st.floats(-80, 80, width=32)), st.data())
def test_softmax(x, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    got = softmax(x, axis=axis)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, run_reference("Softmax", {"x": x}, axis=axis), **TOL)


def test_softmax_default_axis_and_large_logits():
    x = np.array([[1000.0, 1001.0, 1002.0], [-1000.0, 0.0, 1000.0]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = softmax(x)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(got, run_reference("Softmax", {"x": x}, axis=1), **TOL)


@pytest.mark.parametrize("fn,kwargs,reference", [
    (relu, {}, lambda v: np.maximum(v, 0)),
    (leaky_relu, {"alpha": 0.2}, lambda v: np.where(v >= 0, v, 0.2 * v)),
    (leaky_relu, {"alpha": -2.0}, lambda v: np.where(v >= 0, v, -2.0 * v)),
    (sigmoid, {}, lambda v: 1 / (1 + np.exp(-v.astype(np.float64)))),
    (tanh, {}, np.tanh),
])
@pytest.mark.parametrize("contiguous", [True, False])
def test_large_inputs_split_across_threads(fn, kwargs, reference, contiguous):
    """Over 4 MiB the pass runs in pieces on the pool: every piece must land in its place."""
    x = np.random.default_rng(0).standard_normal((3, 8, 256, 300), dtype=np.float32) * 4
    if not contiguous:  # e.g. one half of a gated block's channels
        x = x[:, 2:7]
    got = fn(x, **kwargs)
    assert got.shape == x.shape and got.flags.c_contiguous
    np.testing.assert_allclose(got, reference(x), rtol=1e-6, atol=1e-7)
