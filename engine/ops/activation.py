"""Elementwise activations and softmax (ONNX ``Relu``, ``LeakyRelu``,
``Sigmoid``, ``Tanh``, ``Softmax``). All return new float32 arrays of the
input's shape; the elementwise ones run in pieces on the pool when large
(``_elementwise``).
"""

from __future__ import annotations

import numpy as np

from engine.ops import _arena
from engine.ops._elementwise import elementwise
from engine.ops.conv import _as_f32

__all__ = ["leaky_relu", "relu", "sigmoid", "softmax", "tanh"]

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)


def _new_like(x: np.ndarray) -> np.ndarray:
    return _arena.empty(x.shape)


def relu(x: np.ndarray) -> np.ndarray:
    """``max(x, 0)``."""
    x = _as_f32(x)
    return elementwise(lambda a, out: np.maximum(a, _ZERO, out=out), _new_like(x), x)


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
