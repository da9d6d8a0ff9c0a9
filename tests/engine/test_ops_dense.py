"""engine.ops.dense / flatten against onnx's reference Gemm / Flatten."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.ops import dense, flatten
from tests.engine.onnx_single_op import run_reference

TOL = {"atol": 1e-4, "rtol": 1e-4}


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 40), st.integers(1, 20), st.booleans(),
       st.integers(0, 2**32 - 1))
def test_dense_matches_gemm(n, in_features, units, with_bias, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, in_features), dtype=np.float32)
    w = rng.standard_normal((units, in_features), dtype=np.float32)
    b = rng.standard_normal(units, dtype=np.float32) if with_bias else None
    expected = run_reference("Gemm", {"a": x, "b": w, "c": b}, transB=1)
    got = dense(x, w, b)
    assert got.dtype == np.float32 and got.shape == (n, units)
    np.testing.assert_allclose(got, expected, **TOL)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=5), st.data())
def test_flatten_matches_reference(shape, data):
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    axis = data.draw(st.integers(-len(shape), len(shape)))
    expected = run_reference("Flatten", {"x": x}, axis=axis)
    got = flatten(x, axis)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_dense_shape_errors():
    with pytest.raises(ValueError):
        dense(np.zeros((2, 3), np.float32), np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError):
        dense(np.zeros((2, 3), np.float32), np.zeros((4, 3), np.float32),
              np.zeros(3, np.float32))
    with pytest.raises(ValueError):
        flatten(np.zeros((2, 3), np.float32), 3)
