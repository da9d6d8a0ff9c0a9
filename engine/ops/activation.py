"""Elementwise activations and softmax (ONNX ``Relu``, ``LeakyRelu``,
``Sigmoid``, ``Tanh``, ``Softmax``). All return float32 arrays of the input's
shape; ``relu`` and ``leaky_relu`` accept ``out=`` (which may be ``x`` itself)
so a caller can fuse them in place after a convolution.
"""

from __future__ import annotations

import numpy as np

from engine.ops import _arena
from engine.ops.conv import _as_f32

__all__ = ["leaky_relu", "relu", "sigmoid", "softmax", "tanh"]


def relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``max(x, 0)``. With ``out`` (float32, x's shape; may be ``x``) writes there."""
    x = _as_f32(x)
    return np.maximum(x, np.float32(0.0), out=_arena.empty(x.shape) if out is None else out)


def leaky_relu(x: np.ndarray, alpha: float = 0.01,
               out: np.ndarray | None = None) -> np.ndarray:
    """``x`` where ``x >= 0``, else ``alpha * x``. ``out`` as in ``relu``."""
    x = _as_f32(x)
    a = np.float32(alpha)
    if 0.0 <= alpha <= 1.0:
        # Here max(x, alpha * x) is the same function, without a mask pass.
        if out is None:  # alpha * x into the output first: one temporary fewer
            out = np.multiply(x, a, out=_arena.empty(x.shape))
            return np.maximum(x, out, out=out)
        return np.maximum(x, x * a, out=out)
    res = np.where(x >= 0, x, x * a)
    if out is None:
        return res
    out[...] = res
    return out


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function ``1 / (1 + exp(-x))``, float32, without warnings.

    For x below about -88, ``exp(-x)`` overflows to +inf in float32 and the
    result is exactly 0.0, the correctly rounded limit (the true value is
    below the smallest normal float32); the overflow is expected, so its
    warning is silenced. For large positive x the result rounds to 1.0.
    This is 3 passes, several times faster than a two-branch formula.
    """
    x = _as_f32(x)
    y = np.negative(x, out=_arena.empty(x.shape))
    with np.errstate(over="ignore"):
        np.exp(y, out=y)
    y += np.float32(1.0)
    return np.divide(np.float32(1.0), y, out=y)


def tanh(x: np.ndarray) -> np.ndarray:
    """Hyperbolic tangent (float32)."""
    x = _as_f32(x)
    return np.tanh(x, out=_arena.empty(x.shape))


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
