"""engine.ops._elementwise.per_row_loops: the kernels that broadcast a per-row coefficient
(batch norm, a 1x1 convolution's and a Winograd convolution's bias) give onnxruntime's results
at row lengths below, inside and above the range where NumPy is made to loop row by row, and
NumPy's buffer size is back as it was after the block, also when the block raises."""
from __future__ import annotations

import numpy as np
import pytest

from engine.ops import batch_normalization, conv
from engine.ops._elementwise import per_row_loops
from tests.engine.onnx_single_op import run_onnxruntime

# Spatial sizes giving rows of 196, 784, 3136 and 10000 values: under, in and over the range.
SIDES = [14, 28, 56, 100]


def _assert_close(got: np.ndarray, expected: np.ndarray) -> None:
    scale = float(np.abs(expected).max(initial=1.0))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("side", SIDES)
def test_batch_norm_matches_onnxruntime(side):
    rng = np.random.default_rng(side)
    x = rng.standard_normal((2, 24, side, side), dtype=np.float32)
    scale, bias, mean = (rng.standard_normal(24, dtype=np.float32) for _ in range(3))
    var = rng.random(24, dtype=np.float32) + 0.1
    expected = run_onnxruntime("BatchNormalization", {"x": x, "scale": scale, "b": bias,
                                                      "mean": mean, "var": var}, epsilon=1e-5)
    _assert_close(batch_normalization(x, scale, bias, mean, var, 1e-5), expected)


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("kernel", [1, 3], ids=["pointwise", "winograd"])
def test_conv_bias_matches_onnxruntime(side, kernel):
    rng = np.random.default_rng(side + kernel)
    x = rng.standard_normal((1, 32, side, side), dtype=np.float32)
    w = rng.standard_normal((40, 32, kernel, kernel), dtype=np.float32)
    b = rng.standard_normal(40, dtype=np.float32)
    pad = kernel // 2
    attrs = {"strides": [1, 1], "pads": [pad] * 4, "dilations": [1, 1], "group": 1}
    expected = run_onnxruntime("Conv", {"x": x, "w": w, "b": b}, **attrs)
    _assert_close(conv(x, w, b, **attrs), expected)


@pytest.mark.parametrize("row_length", [10, 3136, 10**6])
def test_the_buffer_size_is_restored(row_length):
    before = np.getbufsize()
    with per_row_loops(row_length):
        pass
    assert np.getbufsize() == before
    with pytest.raises(ZeroDivisionError):
        with per_row_loops(row_length):
            raise ZeroDivisionError
    assert np.getbufsize() == before
