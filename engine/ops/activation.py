"""Elementwise activations, element-wise math and softmax (ONNX ``Relu``,
``LeakyRelu``, ``Sigmoid``, ``Tanh``, ``Softmax``, ``LogSoftmax``, ``Clip``,
``HardSigmoid``, ``HardSwish``, ``PRelu``, ``Elu``, ``Gelu``, ``Erf``, ``Exp``,
``Log``, ``Sqrt``, ``Abs``, ``Neg``, ``Reciprocal``, ``Floor``, ``Ceil``,
``Softplus``, and SiLU = x * sigmoid(x)). All return new float32 arrays of the
input's shape; the elementwise ones run in pieces on the pool when large
(``_elementwise``).
"""

from __future__ import annotations

import math

import numpy as np

from engine.ops import _arena
from engine.ops._elementwise import elementwise
from engine.ops.conv import _as_f32

__all__ = ["clip", "elu", "erf", "gelu", "hard_sigmoid", "hard_swish", "leaky_relu",
           "log_softmax", "prelu", "relu", "sigmoid", "silu", "softmax", "tanh", "unary"]

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_INF = np.float32(np.inf)

# ReLU and Clip are ``np.clip`` passes: in NumPy 2.4, ``np.maximum`` and ``np.minimum`` against a
# scalar run a slow loop (0.44 ms over 4.8 MB on the 2-core dev VM, against 0.13 ms for
# ``np.clip`` or an array-array ``np.maximum``). np.clip propagates NaN as they do.


def _new_like(x: np.ndarray) -> np.ndarray:
    return _arena.empty(x.shape)


def relu(x: np.ndarray) -> np.ndarray:
    """``max(x, 0)``."""
    x = _as_f32(x)
    return elementwise(lambda a, out: np.clip(a, _ZERO, _INF, out=out), _new_like(x), x)


def leaky_relu(x: np.ndarray, alpha: float = 0.01) -> np.ndarray:
    """``x`` where ``x >= 0``, else ``alpha * x``."""
    x = _as_f32(x)
    a = np.float32(alpha)

    def piece(v: np.ndarray, out: np.ndarray) -> None:
        if 0.0 <= alpha <= 1.0:
            # Here max(x, alpha * x) is the same function, without a mask pass.
            np.maximum(v, np.multiply(v, a, out=out), out=out)
        else:
            np.copyto(out, np.where(v >= 0, v, v * a))

    return elementwise(piece, _new_like(x), x)


def _sigmoid_piece(v: np.ndarray, out: np.ndarray) -> None:
    np.negative(v, out=out)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += _ONE
    np.divide(_ONE, out, out=out)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function ``1 / (1 + exp(-x))``, float32, without warnings.

    For x below about -88, ``exp(-x)`` overflows to +inf in float32 and the
    result is exactly 0.0, the correctly rounded limit (the true value is
    below the smallest normal float32); the overflow is expected, so its
    warning is silenced. For large positive x the result rounds to 1.0.
    This is 4 passes over each piece while it is in cache, several times
    faster than a two-branch formula.
    """
    x = _as_f32(x)
    return elementwise(_sigmoid_piece, _new_like(x), x)


def tanh(x: np.ndarray) -> np.ndarray:
    """Hyperbolic tangent (float32)."""
    x = _as_f32(x)
    return elementwise(lambda a, out: np.tanh(a, out=out), _new_like(x), x)


def softmax(x: np.ndarray, axis: int = 1) -> np.ndarray:
    """Softmax along ``axis`` (ONNX opset 13+ semantics: one axis only).

    Stable: the maximum along ``axis`` is subtracted before ``exp``. Note the
    ONNX attribute's default is ``axis=-1``; for (N, classes) logits the two
    are the same. Raises ValueError (numpy's AxisError) for an axis out of range.
    """
    x = _as_f32(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    e /= e.sum(axis=axis, keepdims=True)
    return e


def log_softmax(x: np.ndarray, axis: int = 1) -> np.ndarray:
    """``x - max - log(sum(exp(x - max)))`` along ``axis`` (ONNX opset 13+ LogSoftmax)."""
    x = _as_f32(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return shifted


def clip(x: np.ndarray, low: float | None = 0.0, high: float | None = 6.0) -> np.ndarray:
    """``min(max(x, low), high)``; a None bound does not clip. With low > high every value
    becomes ``high``, as ONNX Clip computes it. NaN passes through."""
    x = _as_f32(x)
    lower = -_INF if low is None else np.float32(low)
    upper = _INF if high is None else np.float32(high)  # np.clip gives it where lower > upper
    return elementwise(lambda v, out: np.clip(v, lower, upper, out=out), _new_like(x), x)


def _hard_sigmoid_piece(alpha: float, beta: float):
    a, b = np.float32(alpha), np.float32(beta)

    def piece(v: np.ndarray, out: np.ndarray) -> None:
        np.multiply(v, a, out=out)
        out += b
        np.clip(out, _ZERO, _ONE, out=out)

    return piece


def hard_sigmoid(x: np.ndarray, alpha: float = 0.2, beta: float = 0.5) -> np.ndarray:
    """``max(0, min(1, alpha * x + beta))``."""
    x = _as_f32(x)
    return elementwise(_hard_sigmoid_piece(alpha, beta), _new_like(x), x)


def hard_swish(x: np.ndarray) -> np.ndarray:
    """``x * max(0, min(1, x / 6 + 0.5))`` (ONNX HardSwish: HardSigmoid with alpha 1/6)."""
    x = _as_f32(x)
    gate = _hard_sigmoid_piece(1.0 / 6.0, 0.5)

    def piece(v: np.ndarray, out: np.ndarray) -> None:
        gate(v, out)
        out *= v

    return elementwise(piece, _new_like(x), x)


def silu(x: np.ndarray) -> np.ndarray:
    """``x * sigmoid(x)`` (Swish)."""
    x = _as_f32(x)

    def piece(v: np.ndarray, out: np.ndarray) -> None:
        _sigmoid_piece(v, out)
        out *= v

    return elementwise(piece, _new_like(x), x)


def prelu(x: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """``x`` where ``x >= 0``, else ``slope * x``; slope broadcasts onto x the ONNX way
    (right-aligned, unidirectional). ValueError when it does not."""
    x = _as_f32(x)
    slope = np.asarray(slope, np.float32)
    try:
        fits = np.broadcast_shapes(x.shape, slope.shape) == x.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"PRelu: slope of shape {slope.shape} does not broadcast onto {x.shape}.")
    return np.where(x < 0, x * slope, x).astype(np.float32, copy=False)


def elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """``x`` where ``x >= 0``, else ``alpha * (exp(x) - 1)``."""
    x = _as_f32(x)
    a = np.float32(alpha)

    def piece(v: np.ndarray, out: np.ndarray) -> None:
        np.clip(v, -_INF, _ZERO, out=out)  # exp of the negative part only: no overflow
        np.expm1(out, out=out)
        out *= a
        np.copyto(out, v, where=v >= 0)

    return elementwise(piece, _new_like(x), x)


# Eigen's single-precision erf (also XLA's): an odd rational function on [-4, 4], erf = +-1 in
# float32 outside. Evaluated in float64 (in float32 the rational loses 6 ulp near |x| = 3.3):
# within 1e-7 of math.erf, and relative error under 1e-7 for tiny inputs.
_ERF_NUMERATOR = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
                  -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
                  -1.60960333262415e-02)
_ERF_DENOMINATOR = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
                    -7.37332916720468e-03, -1.42647390514189e-02)


def _erf_piece(v: np.ndarray, out: np.ndarray) -> None:
    x = np.clip(v, -4.0, 4.0, dtype=np.float64)
    x2 = x * x
    p = np.full_like(x, _ERF_NUMERATOR[0])
    for c in _ERF_NUMERATOR[1:]:
        p *= x2
        p += c
    q = np.full_like(x, _ERF_DENOMINATOR[0])
    for c in _ERF_DENOMINATOR[1:]:
        q *= x2
        q += c
    p *= x
    np.divide(p, q, out=out, casting="same_kind")


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, float32 (see _ERF_NUMERATOR for its accuracy)."""
    x = _as_f32(x)
    return elementwise(_erf_piece, _new_like(x), x)


_SQRT_HALF = np.float32(math.sqrt(0.5))
_SQRT_2_OVER_PI = np.float32(math.sqrt(2.0 / math.pi))
_HALF = np.float32(0.5)


def gelu(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    """``0.5 x (1 + erf(x / sqrt 2))``, or with approximate="tanh"
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` (ONNX Gelu)."""
    x = _as_f32(x)
    if approximate not in ("none", "tanh"):
        raise ValueError(f"Gelu: approximate must be 'none' or 'tanh', got {approximate!r}.")

    def piece(v: np.ndarray, out: np.ndarray) -> None:
        if approximate == "none":
            _erf_piece(v * _SQRT_HALF, out)
        else:
            np.multiply(v, v, out=out)
            out *= np.float32(0.044715)
            out += _ONE
            out *= v
            out *= _SQRT_2_OVER_PI
            np.tanh(out, out=out)
        out += _ONE
        out *= v
        out *= _HALF

    return elementwise(piece, _new_like(x), x)


def _softplus(v: np.ndarray, out: np.ndarray) -> None:
    np.logaddexp(v, _ZERO, out=out)


_UNARY = {
    "Erf": _erf_piece,
    "Exp": lambda v, out: np.exp(v, out=out),
    "Log": lambda v, out: np.log(v, out=out),
    "Sqrt": lambda v, out: np.sqrt(v, out=out),
    "Abs": lambda v, out: np.abs(v, out=out),
    "Neg": lambda v, out: np.negative(v, out=out),
    "Reciprocal": lambda v, out: np.divide(_ONE, v, out=out),
    "Floor": lambda v, out: np.floor(v, out=out),
    "Ceil": lambda v, out: np.ceil(v, out=out),
    "Softplus": _softplus,
}


def unary(x: np.ndarray, op: str) -> np.ndarray:
    """The ONNX element-wise op ``op`` (Erf, Exp, Log, Sqrt, Abs, Neg, Reciprocal, Floor, Ceil,
    Softplus) of x. Out-of-domain values give inf or NaN without warnings, as onnxruntime
    does (log of a negative is NaN, 1 / 0 is inf). ValueError for an unknown op."""
    x = _as_f32(x)
    if op not in _UNARY:
        raise ValueError(f"unknown element-wise op {op!r}; known: {', '.join(_UNARY)}.")
    function = _UNARY[op]

    def piece(v: np.ndarray, out: np.ndarray) -> None:
        # Inside the piece: the pool's threads do not inherit the caller's error state.
        with np.errstate(all="ignore"):
            function(v, out)

    return elementwise(piece, _new_like(x), x)
