"""engine.ops.batch_normalization against onnx's reference BatchNormalization."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.ops import batch_normalization
from tests.engine.onnx_single_op import run_reference

TOL = {"atol": 1e-4, "rtol": 1e-4}


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3), st.integers(1, 5), st.lists(st.integers(1, 5), max_size=3),
       st.sampled_from([1e-5, 1e-3, 0.1]), st.integers(0, 2**32 - 1))
def test_matches_reference(n, c, spatial, epsilon, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, *spatial), dtype=np.float32)
    scale = rng.standard_normal(c, dtype=np.float32)
    bias = rng.standard_normal(c, dtype=np.float32)
    mean = rng.standard_normal(c, dtype=np.float32)
    var = rng.uniform(0.0, 3.0, c).astype(np.float32)
    expected = run_reference(
        "BatchNormalization",
        {"x": x, "scale": scale, "bias": bias, "mean": mean, "var": var},
        epsilon=epsilon,
    )
    got = batch_normalization(x, scale, bias, mean, var, epsilon)
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_allclose(got, expected, **TOL)


def test_parameter_shape_error():
    x = np.zeros((1, 3, 2, 2), np.float32)
    ones = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="var"):
        batch_normalization(x, ones, ones, ones, np.ones(2, np.float32))
