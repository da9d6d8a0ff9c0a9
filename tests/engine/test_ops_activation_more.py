"""engine.ops' newer activations, element-wise math and normalisations against onnxruntime
(and onnx's reference implementation where onnxruntime does not run a shape)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine.ops import (clip, elu, erf, gelu, hard_sigmoid, hard_swish, instance_normalization,
                        log_softmax, lrn, prelu, silu, softmax, unary)
from tests.engine.onnx_single_op import run_onnxruntime

TOL = {"rtol": 1e-5, "atol": 1e-6}
SHAPES = [(2, 3), (2, 3, 7), (1, 4, 5, 6), (2, 2, 3, 4, 3)]


def _x(shape: tuple[int, ...], scale: float = 3.0, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def _scalar(v: float) -> np.ndarray:
    return np.array(v, np.float32)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("low, high", [(0.0, 6.0), (None, 1.5), (-1.0, None), (None, None),
                                       (2.0, -1.0)])
def test_clip_matches_onnxruntime(shape, low, high):
    x = _x(shape)
    inputs = {"x": x, "min": None if low is None else _scalar(low),
              "max": None if high is None else _scalar(high)}
    got = clip(x, low, high)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, run_onnxruntime("Clip", inputs))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("alpha, beta", [(0.2, 0.5), (1 / 6, 0.5), (-0.7, 0.1)])
def test_hard_sigmoid_matches_onnxruntime(shape, alpha, beta):
    x = _x(shape)
    np.testing.assert_allclose(hard_sigmoid(x, alpha, beta),
                               run_onnxruntime("HardSigmoid", {"x": x}, alpha=alpha, beta=beta),
                               **TOL)


@pytest.mark.parametrize("shape", SHAPES)
def test_hard_swish_matches_onnxruntime(shape):
    x = _x(shape, scale=5.0)
    np.testing.assert_allclose(hard_swish(x), run_onnxruntime("HardSwish", {"x": x}), **TOL)


@pytest.mark.parametrize("shape", SHAPES)
def test_silu_is_x_times_sigmoid(shape):
    x = _x(shape, scale=10.0)
    expected = x * run_onnxruntime("Sigmoid", {"x": x})
    np.testing.assert_allclose(silu(x), expected, **TOL)


@pytest.mark.parametrize("x_shape, slope_shape", [
    ((2, 3, 4, 5), (3, 1, 1)), ((2, 3, 4, 5), (1,)), ((2, 3, 4, 5), ()), ((2, 3, 4, 5), (5,)),
    ((2, 3, 4, 5), (4, 1)), ((2, 3, 4, 5), (1, 3, 4, 5)), ((2, 6), (6,)), ((2, 3, 7), (3, 1))])
def test_prelu_matches_onnxruntime(x_shape, slope_shape):
    x = _x(x_shape)
    slope = _x(slope_shape, scale=0.5, seed=1)
    np.testing.assert_allclose(prelu(x, slope),
                               run_onnxruntime("PRelu", {"x": x, "slope": slope}), **TOL)


def test_prelu_refuses_a_slope_that_does_not_broadcast():
    with pytest.raises(ValueError, match="does not broadcast"):
        prelu(np.zeros((2, 3, 4), np.float32), np.zeros((4, 1), np.float32))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("alpha", [1.0, 0.3, 2.5])
def test_elu_matches_onnxruntime(shape, alpha):
    x = _x(shape, scale=4.0)
    np.testing.assert_allclose(elu(x, alpha), run_onnxruntime("Elu", {"x": x}, alpha=alpha),
                               **TOL)


def test_erf_matches_math_erf_to_float32_precision():
    x = np.concatenate([np.linspace(-7, 7, 20001), np.logspace(-30, 0.6, 400),
                        -np.logspace(-30, 0.6, 400)]).astype(np.float32)
    expected = np.array([math.erf(float(v)) for v in x])
    got = erf(x)
    np.testing.assert_allclose(got, expected, rtol=2e-7, atol=1.2e-7)


@pytest.mark.parametrize("shape", SHAPES)
def test_erf_matches_onnxruntime(shape):
    x = _x(shape, scale=2.0)
    np.testing.assert_allclose(erf(x), run_onnxruntime("Erf", {"x": x}), **TOL)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_matches_onnxruntime(shape, approximate):
    x = _x(shape, scale=4.0)
    np.testing.assert_allclose(gelu(x, approximate),
                               run_onnxruntime("Gelu", {"x": x}, approximate=approximate),
                               rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("op", ["Exp", "Log", "Sqrt", "Abs", "Neg", "Reciprocal", "Floor", "Ceil",
                                "Softplus", "Erf"])
def test_unary_matches_onnxruntime(shape, op):
    x = _x(shape, scale=4.0)
    if op in ("Log", "Sqrt", "Reciprocal"):
        x = np.abs(x) + np.float32(0.05)
    np.testing.assert_allclose(unary(x, op), run_onnxruntime(op, {"x": x}), **TOL)


@pytest.mark.parametrize("op", ["Log", "Sqrt", "Reciprocal"])
def test_unary_outside_the_domain_gives_what_onnxruntime_gives(op):
    x = np.array([[-2.0, 0.0, -0.0, 1.0, np.inf, np.nan]], np.float32)
    with np.errstate(all="raise"):  # the kernel must not warn either
        got = unary(x, op)
    np.testing.assert_array_equal(got, run_onnxruntime(op, {"x": x}))


def test_unary_refuses_an_unknown_op():
    with pytest.raises(ValueError, match="Cos"):
        unary(np.zeros((1, 2), np.float32), "Cos")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("axis", [1, -1, 2])
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_on_any_axis_matches_onnxruntime(shape, axis, op):
    if axis >= len(shape):
        pytest.skip("no such axis")
    x = _x(shape, scale=5.0)
    kernel = softmax if op == "Softmax" else log_softmax
    np.testing.assert_allclose(kernel(x, axis=axis), run_onnxruntime(op, {"x": x}, axis=axis),
                               **TOL)


def test_log_softmax_of_huge_logits_stays_finite():
    x = np.array([[1e30, 0.0, -1e30]], np.float32)
    got = log_softmax(x, axis=1)
    np.testing.assert_allclose(got, run_onnxruntime("LogSoftmax", {"x": x}, axis=1))
    assert np.isfinite(got).all()


@pytest.mark.parametrize("size", [1, 3, 5, 9])
@pytest.mark.parametrize("alpha, beta, bias", [(1e-4, 0.75, 1.0), (0.5, 0.5, 2.0)])
def test_lrn_matches_onnxruntime(size, alpha, beta, bias):
    x = _x((2, 7, 4, 5))
    attrs = {"size": size, "alpha": alpha, "beta": beta, "bias": bias}
    np.testing.assert_allclose(lrn(x, **attrs), run_onnxruntime("LRN", {"x": x}, **attrs), **TOL)


@pytest.mark.parametrize("shape, size", [((2, 5, 7), 2), ((1, 6, 2, 3), 4), ((1, 3, 2, 2, 2), 3)])
def test_lrn_of_even_sizes_and_other_ranks_follows_the_onnx_formula(shape, size):
    # onnxruntime and onnx's reference run odd sizes of 4-D tensors only: the formula of the
    # ONNX specification, written out channel by channel, is the reference here.
    x = _x(shape).astype(np.float64)
    expected = np.empty_like(x)
    for c in range(shape[1]):
        lo, hi = max(0, c - (size - 1) // 2), min(shape[1] - 1, c + math.ceil((size - 1) / 2))
        square_sum = (x[:, lo:hi + 1] ** 2).sum(axis=1)
        expected[:, c] = x[:, c] / (1.5 + 0.3 / size * square_sum) ** 0.6
    np.testing.assert_allclose(lrn(x, size, 0.3, 0.6, 1.5), expected, **TOL)


@pytest.mark.parametrize("shape", [(2, 3, 7), (2, 4, 5, 6), (1, 2, 3, 4, 5), (3, 2, 1, 3)])
@pytest.mark.parametrize("epsilon", [1e-5, 0.1])
def test_instance_normalization_matches_onnxruntime(shape, epsilon):
    x = _x(shape) + np.float32(2.0)
    scale, bias = _x(shape[1:2], seed=1), _x(shape[1:2], seed=2)
    expected = run_onnxruntime("InstanceNormalization", {"x": x, "scale": scale, "bias": bias},
                               epsilon=epsilon)
    np.testing.assert_allclose(instance_normalization(x, scale, bias, epsilon), expected,
                               rtol=1e-5, atol=1e-5)


def test_instance_normalization_refuses_a_flat_input_and_wrong_weights():
    with pytest.raises(ValueError, match="spatial"):
        instance_normalization(np.zeros((2, 3), np.float32), np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match="scale"):
        instance_normalization(np.zeros((2, 3, 4), np.float32), np.ones(4), np.zeros(3))


def test_large_inputs_split_over_the_pool_give_the_same_values():
    # 8 MiB: above the size where elementwise kernels split into pieces on threads.
    x = _x((2, 16, 256, 256))
    small = x[:, :, :8, :8].copy()
    for kernel in (hard_swish, silu, lambda v: gelu(v, "none"), lambda v: unary(v, "Softplus"),
                   lambda v: clip(v, -1.0, 1.0), lambda v: elu(v, 0.5)):
        np.testing.assert_array_equal(kernel(x)[:, :, :8, :8], kernel(small))
