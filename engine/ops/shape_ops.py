"""Kernels that move, select, reduce or reshape values (ONNX ``Pad``, ``DepthToSpace``,
``SpaceToDepth``, ``Slice``, ``Reduce*``, ``Gemm``, ``MatMul``, ``Transpose``, ``Reshape``) and
ShuffleNet's channel shuffle. Batch-first float32 in and out; axes count the batch as 0.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from engine.ops.conv import _as_f32

__all__ = ["channel_shuffle", "depth_to_space", "gemm", "matmul", "pad", "reduce", "reshape",
           "slice_axes", "space_to_depth", "transpose"]

_NUMPY_PAD = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}
_REDUCERS = {"mean": np.mean, "max": np.max, "sum": np.sum, "min": np.min}


def pad(x: np.ndarray, pads: Sequence[int], mode: str = "constant", value: float = 0.0
        ) -> np.ndarray:
    """ONNX Pad over the sample axes: pads = begins of axes 1.., then their ends (the batch is
    never padded). Negative pads crop after padding (constant and edge modes)."""
    x = _as_f32(x)
    rank = x.ndim - 1
    begins, ends = list(pads[:rank]), list(pads[rank:])
    widths = [(0, 0)] + [(max(b, 0), max(e, 0)) for b, e in zip(begins, ends)]
    kwargs = {"constant_values": np.float32(value)} if mode == "constant" else {}
    out = np.pad(x, widths, mode=_NUMPY_PAD[mode], **kwargs)  # type: ignore[call-overload]
    crop = (slice(None),) + tuple(slice(max(-b, 0), out.shape[i + 1] - max(-e, 0))
                                  for i, (b, e) in enumerate(zip(begins, ends)))
    return np.ascontiguousarray(out[crop], dtype=np.float32)


def depth_to_space(x: np.ndarray, blocksize: int, mode: str = "DCR") -> np.ndarray:
    """ONNX DepthToSpace on (N, C, H, W) -> (N, C / b^2, H * b, W * b)."""
    x = _as_f32(x)
    n, c, h, w = x.shape
    b = blocksize
    if mode == "DCR":
        t = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        t = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return np.ascontiguousarray(t).reshape(n, c // (b * b), h * b, w * b)


def space_to_depth(x: np.ndarray, blocksize: int, mode: str = "DCR") -> np.ndarray:
    """ONNX SpaceToDepth on (N, C, H, W) -> (N, C * b^2, H / b, W / b). Output channel
    (i * b + j) * C + c under DCR (the default), c * b^2 + i * b + j under CRD (opset 28), for
    the pixel at row i, column j of each block."""
    x = _as_f32(x)
    n, c, h, w = x.shape
    b = blocksize
    order = (0, 3, 5, 1, 2, 4) if mode == "DCR" else (0, 1, 3, 5, 2, 4)
    t = x.reshape(n, c, h // b, b, w // b, b).transpose(order)
    return np.ascontiguousarray(t).reshape(n, c * b * b, h // b, w // b)


def slice_axes(x: np.ndarray, ranges: dict[int, tuple[int, int, int]]) -> np.ndarray:
    """x sliced along full axes (batch = 0) by clamped (start, stop, step); a negative stop with
    a negative step runs through index 0 (as ONNX's clamped end -1)."""
    x = _as_f32(x)
    index = [slice(None)] * x.ndim
    for axis, (start, stop, step) in ranges.items():
        index[axis] = slice(start, None if stop < 0 else stop, step)
    return np.ascontiguousarray(x[tuple(index)])


def reduce(x: np.ndarray, op: str, axes: Sequence[int], keepdims: bool = True) -> np.ndarray:
    """ONNX ReduceMean / ReduceMax / ReduceSum / ReduceMin (op "mean", "max", "sum", "min")."""
    x = _as_f32(x)
    out = _REDUCERS[op](x, axis=tuple(axes), keepdims=keepdims)
    return np.ascontiguousarray(out, dtype=np.float32)


def gemm(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, alpha: float = 1.0,
         beta: float = 1.0, transB: bool = False) -> np.ndarray:
    """ONNX Gemm with transA = 0: alpha * x @ op(w) + beta * b, x (N, K)."""
    x = _as_f32(x)
    out = x @ (_as_f32(w).T if transB else _as_f32(w))
    if alpha != 1.0:
        out *= np.float32(alpha)
    if b is not None and beta != 0.0:
        out = out + np.float32(beta) * _as_f32(b) if beta != 1.0 else out + _as_f32(b)
    return np.ascontiguousarray(out, dtype=np.float32)


def matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """ONNX MatMul with a 2-D right operand: (N, ..., K) @ (K, M) -> (N, ..., M)."""
    return np.ascontiguousarray(_as_f32(x) @ _as_f32(w), dtype=np.float32)


def transpose(x: np.ndarray, perm: Sequence[int]) -> np.ndarray:
    """ONNX Transpose (perm over full axes, batch first)."""
    return np.ascontiguousarray(_as_f32(x).transpose(tuple(perm)))


def reshape(x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Each sample reshaped to `shape` (no batch axis), row-major."""
    return _as_f32(x).reshape((x.shape[0], *shape))


def channel_shuffle(x: np.ndarray, groups: int) -> np.ndarray:
    """(N, C, ...) with channel g * C/g + i moved to i * g + g: groups interleaved."""
    x = _as_f32(x)
    n, c, *rest = x.shape
    t = x.reshape(n, groups, c // groups, *rest).swapaxes(1, 2)
    return np.ascontiguousarray(t).reshape(x.shape)
