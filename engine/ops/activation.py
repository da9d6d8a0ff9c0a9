"""Elementwise activations and softmax (ONNX ``Relu``, ``LeakyRelu``,
``Sigmoid``, ``Tanh``, ``Softmax``). All return float32 arrays of the input's
shape; ``relu`` and ``leaky_relu`` accept ``out=`` (which may be ``x`` itself)
so a caller can fuse them in place after a convolution.
"""

from __future__ import annotations

import numpy as np

from engine.ops.conv import _as_f32

__all__ = ["leaky_relu", "relu", "sigmoid", "softmax", "tanh"]


def relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``max(x, 0)``. With ``out`` (float32, x's shape; may be ``x``) writes there."""
    return np.maximum(_as_f32(x), np.float32(0.0), out=out)


def leaky_relu(x: np.ndarray, alpha: float = 0.01,
               out: np.ndarray | None = None) -> np.ndarray:
    """``x`` where ``x >= 0``, else ``alpha * x``. ``out`` as in ``relu``."""
    x = _as_f32(x)
    a = np.float32(alpha)
    if 0.0 <= alpha <= 1.0:
        # Here max(x, alpha * x) is the same function, without a mask pass.
        return np.maximum(x, x * a, out=out)
    res = np.where(x >= 0, x, x * a)
    if out is None:
        return res
    out[...] = res
    return out


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, numerically stable: no overflow for any finite x.

    Uses ``e = exp(-|x|)`` (never above 1): ``1 / (1 + e)`` for x >= 0 and
    ``e / (1 + e)`` for x < 0.
    """
    x = _as_f32(x)
    e = np.exp(-np.abs(x))
    denom = 1.0 + e
    return np.where(x >= 0, 1.0 / denom, e / denom).astype(np.float32, copy=False)


def tanh(x: np.ndarray) -> np.ndarray:
    """Hyperbolic tangent (float32)."""
    return np.tanh(_as_f32(x))


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
