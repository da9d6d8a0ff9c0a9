"""Batch normalization, inference form (ONNX ``BatchNormalization`` with
training_mode=0)."""

from __future__ import annotations

import numpy as np

from engine.ops import _arena
from engine.ops._elementwise import split_rows
from engine.ops.conv import _as_f32

__all__ = ["batch_normalization"]


def batch_normalization(
    x: np.ndarray,
    scale: np.ndarray,
    bias: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    epsilon: float = 1e-5,
) -> np.ndarray:
    """``(x - mean) / sqrt(var + epsilon) * scale + bias`` per channel.

    x: (N, C, *spatial) (any number of trailing axes, including none);
    scale, bias, mean, var: (C,), broadcast over axis 1. Folded into one
    multiply-add per element (coefficients computed in float64). Returns
    float32 of x's shape; ValueError when a parameter is not of shape (C,).
    """
    x = _as_f32(x)
    if x.ndim < 2:
        raise ValueError(f"BatchNormalization: input must be (N, C, ...), got {x.shape}.")
    c = x.shape[1]
    params = {"scale": scale, "bias": bias, "mean": mean, "var": var}
    for name, p in params.items():
        if np.shape(p) != (c,):
            raise ValueError(
                f"BatchNormalization: {name} must have shape ({c},), got {np.shape(p)}."
            )
    a = np.asarray(scale, np.float64) / np.sqrt(np.asarray(var, np.float64) + epsilon)
    shift = np.asarray(bias, np.float64) - np.asarray(mean, np.float64) * a
    # One row per (sample, channel), each with its own coefficients: rows split across the pool.
    n = x.shape[0]
    rows = np.ascontiguousarray(x).reshape(n * c, -1)
    out = _arena.empty(x.shape)
    per_row = [np.tile(v.astype(np.float32), n)[:, None] for v in (a, shift)]
    split_rows(_scale_shift, out.reshape(n * c, -1), rows, *per_row)
    return out


def _scale_shift(v: np.ndarray, a: np.ndarray, shift: np.ndarray, out: np.ndarray) -> None:
    np.multiply(v, a, out=out)
    out += shift
