"""One output value of a convolution written out as im2col does it: a row of the patch matrix
times a column of the kernel matrix, plus the bias.

Convention (per group g of `groups`, K = C_in/groups * prod(kernel)):
- the patch matrix is (N * out_pixels, K): row r = n * out_pixels + (the output pixel's
  row-major index); its entries run over the group's input channels, and within each channel
  over the kernel taps in row-major order, so entry c * prod(kernel) + t reads tap t of the
  group's input channel c;
- the kernel matrix is (K, C_out/groups): column j holds filter g * C_out/groups + j, its
  weights W[filter] flattened in the same (channel, tap) order.
So the GEMM patch @ kernel gives (N * out_pixels, C_out/groups) per group.

This is built by a direct gather from the zero-padded input, apart from engine.ops.conv (whose
fast paths lay patches out differently), so comparing `value` with the engine's output is a real
cross-check of both.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import product
from typing import Mapping

import numpy as np

from models.layers import Conv, DepthwiseConv, LayerInfo, LayerSpec, PointwiseConv

EXPLAINED = (Conv, DepthwiseConv, PointwiseConv)


@dataclass(frozen=True)
class Im2colEntry:
    """Where one patch-row entry comes from: the input channel and the input coordinates
    (negative or past the end where the tap lies in the padding)."""
    channel: int
    coords: tuple[int, ...]
    in_padding: bool


@dataclass(frozen=True)
class Im2colExplanation:
    """The GEMM behind one output value (see the module docstring for the layout).

    patch_shape and kernel_shape are one group's matrices; group is the clicked channel's
    group, row and column its indices in them. patch_row (float32) holds zeros where the tap
    fell in padding (entries[i].in_padding). dot is patch_row . kernel_column summed in float64;
    value = dot + bias.
    """
    groups: int
    patch_shape: tuple[int, int]
    kernel_shape: tuple[int, int]
    group: int
    row: int
    column: int
    patch_row: np.ndarray
    kernel_column: np.ndarray
    entries: tuple[Im2colEntry, ...]
    dot: float
    bias: float

    @property
    def value(self) -> float:
        return self.dot + self.bias

    @property
    def padded_count(self) -> int:
        return sum(entry.in_padding for entry in self.entries)


def explain_im2col(spec: LayerSpec, info: LayerInfo, weights: Mapping[str, np.ndarray],
                   x: np.ndarray, n: int, channel: int, position: tuple[int, ...]
                   ) -> Im2colExplanation:
    """The im2col product that gives output (n, channel, *position) of a convolution layer.

    spec: a Conv, DepthwiseConv or PointwiseConv; info: its LayerInfo (resolved pads, groups);
    weights: its "W" (C_out, C_in/groups, *kernel) and optional "B"; x: the layer's input
    (N, C_in, *spatial), i.e. the previous layer's output. Raises ValueError for other layer
    kinds or when (n, channel, position) is not an output of the layer.
    """
    if not isinstance(spec, EXPLAINED):
        raise ValueError(f"im2col explains Conv, DepthwiseConv and PointwiseConv layers, not "
                         f"{spec.type_name}")
    w = np.asarray(weights["W"], np.float32)
    c_out, c_group = w.shape[:2]
    kernel = tuple(w.shape[2:])
    groups = int(info.attrs["group"])
    out_spatial = tuple(info.output_shape[1:])
    rank = len(out_spatial)
    position = tuple(int(p) for p in position)
    if not (0 <= n < x.shape[0] and 0 <= channel < c_out and len(position) == rank
            and all(0 <= p < size for p, size in zip(position, out_spatial))):
        raise ValueError(f"output ({n}, {channel}, {position}) is not in the layer's output "
                         f"(N={x.shape[0]}, C={c_out}, spatial {out_spatial})")
    pads = info.attrs["pads"]
    stride, dilation = spec.stride, spec.dilation  # type: ignore[attr-defined]
    padded = np.pad(np.asarray(x[n], np.float32),
                    [(0, 0)] + [(pads[a], pads[a + rank]) for a in range(rank)])
    per_group_out = c_out // groups
    group, column = divmod(channel, per_group_out)
    taps = list(product(*(range(k) for k in kernel)))
    values, entries = [], []
    for c in range(c_group):
        in_channel = group * c_group + c
        for tap in taps:
            at = tuple(p * s + t * d for p, s, t, d in zip(position, stride, tap, dilation))
            coords = tuple(a - pads[axis] for axis, a in enumerate(at))
            outside = any(not 0 <= q < size for q, size in zip(coords, x.shape[2:]))
            values.append(padded[(in_channel, *at)])
            entries.append(Im2colEntry(in_channel, coords, outside))
    patch_row = np.array(values, np.float32)
    kernel_column = w[channel].reshape(-1)
    bias = weights.get("B")
    k = c_group * math.prod(kernel)
    return Im2colExplanation(
        groups=groups, patch_shape=(x.shape[0] * math.prod(out_spatial), k),
        kernel_shape=(k, per_group_out), group=group,
        row=n * math.prod(out_spatial) + int(np.ravel_multi_index(position, out_spatial)),
        column=column, patch_row=patch_row, kernel_column=kernel_column, entries=tuple(entries),
        dot=float(np.dot(patch_row.astype(np.float64), kernel_column.astype(np.float64))),
        bias=float(bias[channel]) if bias is not None else 0.0)
