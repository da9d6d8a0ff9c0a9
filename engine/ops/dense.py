"""Fully connected layer (ONNX ``Gemm`` with transB=1) and ``Flatten``."""

from __future__ import annotations

import math

import numpy as np

from engine.ops.conv import _as_f32

__all__ = ["dense", "flatten"]


def dense(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """``x @ w.T + b``.

    x: (N, in_features); w: (units, in_features) (PyTorch / ONNX Gemm
    transB=1 layout); b: (units,) or None. Returns float32 (N, units).
    Raises ValueError when the shapes do not fit together.
    """
    x = _as_f32(x)
    w = _as_f32(w)
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(
            f"Dense: need x of shape (N, in_features) and w of shape (units, "
            f"in_features); got x {x.shape} and w {w.shape}."
        )
    out = x @ w.T
    if b is not None:
        b = _as_f32(b)
        if b.shape != (w.shape[0],):
            raise ValueError(f"Dense: bias must have shape ({w.shape[0]},), got {b.shape}.")
        out += b
    return out


def flatten(x: np.ndarray, axis: int = 1) -> np.ndarray:
    """ONNX ``Flatten``: reshape to (prod(shape[:axis]), prod(shape[axis:])).

    ``axis`` may be negative (counted from the end) and lies in [-ndim, ndim].
    Returns a view when possible. Raises ValueError for an axis out of range.
    """
    x = _as_f32(x)
    if not -x.ndim <= axis <= x.ndim:
        raise ValueError(f"Flatten: axis {axis} is out of range for a {x.ndim}-d input.")
    if axis < 0:
        axis += x.ndim
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))
