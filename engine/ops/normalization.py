"""Normalisations: batch normalization, inference form (ONNX ``BatchNormalization`` with
training_mode=0), ``LRN`` and ``InstanceNormalization``."""

from __future__ import annotations

import numpy as np

from engine.ops import _arena
from engine.ops._elementwise import per_row_loops, split_rows
from engine.ops.conv import _as_f32

__all__ = ["batch_normalization", "instance_normalization", "lrn"]


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
    with per_row_loops(out.shape[-1]):
        np.multiply(v, a, out=out)
        out += shift


def lrn(x: np.ndarray, size: int, alpha: float = 1e-4, beta: float = 0.75,
        bias: float = 1.0) -> np.ndarray:
    """ONNX LRN: ``x / (bias + alpha / size * square_sum) ** beta``, where square_sum sums x^2
    over channels c - floor((size-1)/2) .. c + ceil((size-1)/2), clipped to 0 .. C-1.

    x: (N, C, ...) with any number of trailing axes. Returns float32 of x's shape; ValueError
    when x has no channel axis or size < 1.
    """
    x = _as_f32(x)
    if x.ndim < 2 or size < 1:
        raise ValueError(f"LRN: needs x of shape (N, C, ...) and size >= 1, got {x.shape} and "
                         f"size {size}.")
    c = x.shape[1]
    before, after = (size - 1) // 2, -(-(size - 1) // 2)
    squares = np.square(x)
    total = np.zeros_like(squares)
    # One shifted add per window offset: size is small (3 to 11 in real networks).
    for offset in range(-before, after + 1):
        lo, hi = max(0, -offset), min(c, c - offset)
        if lo < hi:
            total[:, lo:hi] += squares[:, lo + offset:hi + offset]
    total *= np.float32(alpha / size)
    total += np.float32(bias)
    np.power(total, np.float32(-beta), out=total)
    total *= x
    return total


def instance_normalization(x: np.ndarray, scale: np.ndarray, bias: np.ndarray,
                           epsilon: float = 1e-5) -> np.ndarray:
    """``scale * (x - mean) / sqrt(var + epsilon) + bias``, mean and (biased) var of each
    sample's channel over its spatial axes (ONNX InstanceNormalization).

    x: (N, C, *spatial) with at least one spatial axis; scale, bias: (C,). Statistics in
    float64. Returns float32 of x's shape; ValueError on other shapes.
    """
    x = _as_f32(x)
    if x.ndim < 3:
        raise ValueError(f"InstanceNormalization: input must be (N, C, spatial...), got {x.shape}.")
    c = x.shape[1]
    for name, p in (("scale", scale), ("bias", bias)):
        if np.shape(p) != (c,):
            raise ValueError(f"InstanceNormalization: {name} must have shape ({c},), got "
                             f"{np.shape(p)}.")
    n = x.shape[0]
    rows = x.reshape(n, c, -1).astype(np.float64)
    mean = rows.mean(axis=2)
    var = rows.var(axis=2)
    a = np.asarray(scale, np.float64) / np.sqrt(var + epsilon)  # (N, C)
    shift = np.asarray(bias, np.float64) - mean * a
    out = _arena.empty(x.shape)
    split_rows(_scale_shift, out.reshape(n * c, -1), np.ascontiguousarray(x).reshape(n * c, -1),
               a.astype(np.float32).reshape(-1, 1), shift.astype(np.float32).reshape(-1, 1))
    return out
