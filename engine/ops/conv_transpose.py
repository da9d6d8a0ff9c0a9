"""N-d transposed convolution (ONNX ``ConvTranspose``).

One GEMM per group turns every input pixel into its C_out/g * k_total
contributions (``w_g^T @ x_g`` over all input pixels of an image), then a
col2im scatter-adds each kernel tap's contributions into a strided view of the
full-size output (a loop over taps only), and finally the pads are cropped.
Images are split into chunks that run on the shared pool.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import product

import numpy as np

from engine.ops import _arena
from engine.ops._parallel import run_chunked
from engine.ops.conv import _as_f32, _tuple_attr, _window_args

__all__ = ["conv_transpose", "conv_transpose_output_size"]

# Below this many multiply-adds per image the pool hand-off is not worth it.
_MIN_PARALLEL_MACS = 1 << 20


def conv_transpose_output_size(size: int, kernel: int, stride: int, pad_begin: int,
                               pad_end: int, dilation: int, output_padding: int) -> int:
    """Output length along one axis, as the ONNX ``ConvTranspose`` formula:

    ``stride * (size - 1) + dilation * (kernel - 1) + 1 - pad_begin - pad_end
    + output_padding``.
    """
    return (stride * (size - 1) + dilation * (kernel - 1) + 1 - pad_begin - pad_end
            + output_padding)


def conv_transpose(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    *,
    strides: Sequence[int] | None,
    pads: Sequence[int] | None,
    dilations: Sequence[int] | None,
    group: int = 1,
    output_padding: Sequence[int] | None = None,
    kernel_shape: Sequence[int] | None = None,
) -> np.ndarray:
    """ONNX ``ConvTranspose`` with explicit pads.

    x: (N, C_in, *spatial) with 1 to 3 spatial axes; w: (C_in, C_out/group,
    *k) (ONNX layout); b: (C_out,) or None. ``strides``, ``dilations`` and
    ``output_padding`` have one entry per spatial axis, ``pads`` two
    ([x1_begin, ..., x1_end, ...]); None means the ONNX default (1 or 0).
    ``kernel_shape``, if given, must equal ``w.shape[2:]``. Returns float32
    (N, C_out, *out) with ``out`` as in ``conv_transpose_output_size``.

    Raises ValueError on inconsistent shapes or attribute lengths, or when an
    output size would be smaller than 1.
    """
    x, w, strides, pads, dilations = _window_args(x, w, strides, pads, dilations, kernel_shape,
                                                  "ConvTranspose", "(C_in, C_out/group, *kernel)")
    nd = x.ndim - 2
    output_padding = _tuple_attr(output_padding, nd, 0, "output_padding", "ConvTranspose")
    ksize = w.shape[2:]
    n, c_in = x.shape[:2]
    if group < 1 or c_in % group or w.shape[0] != c_in:
        raise ValueError(
            f"ConvTranspose: input has {c_in} channels and weight shape {w.shape} with "
            f"group={group}; need weight.shape[0] == C_in, divisible by group."
        )
    cg, cog = c_in // group, w.shape[1]
    c_out = cog * group
    if b is not None:
        b = _as_f32(b)
        if b.shape != (c_out,):
            raise ValueError(
                f"ConvTranspose: bias must have shape ({c_out},), got {b.shape}."
            )
    in_size = x.shape[2:]
    out_size = tuple(
        conv_transpose_output_size(in_size[i], ksize[i], strides[i], pads[i],
                                   pads[nd + i], dilations[i], output_padding[i])
        for i in range(nd)
    )
    if (min(out_size) < 1 or min(ksize) < 1 or min(strides) < 1 or min(dilations) < 1
            or min(in_size) < 1):
        raise ValueError(
            f"ConvTranspose: input spatial size {list(in_size)} with kernel "
            f"{list(ksize)}, strides {list(strides)}, dilations {list(dilations)}, pads "
            f"{list(pads)} and output_padding {list(output_padding)} gives output size "
            f"{list(out_size)}; every size must be at least 1."
        )

    ktot = math.prod(ksize)
    in_pixels = math.prod(in_size)
    # Full (uncropped) output: every tap's scatter fits, plus output_padding.
    full_size = tuple(
        strides[i] * (in_size[i] - 1) + dilations[i] * (ksize[i] - 1) + 1 + output_padding[i]
        for i in range(nd)
    )
    # (G, C_out/g * k_total, C_in/g): row index = out_channel * k_total + tap.
    wt = w.reshape(group, cg, cog * ktot).transpose(0, 2, 1)
    xg = x.reshape(n, group, cg, in_pixels)
    full = _arena.empty((n, c_out, *full_size))
    tap_slices = [
        tuple(slice(k * d, k * d + s * (sz - 1) + 1, s)
              for k, d, s, sz in zip(kidx, dilations, strides, in_size))
        for kidx in product(*(range(k) for k in ksize))
    ]
    fill = (0.0 if b is None else b.reshape(c_out, *(1,) * nd))
    # Kernel == stride (e.g. 2x2 stride 2 upsampling): every output cell gets
    # exactly one tap, so each tap writes its cells (plus bias) directly, with
    # no fill pass and no read-modify-write.
    tiling = (tuple(strides) == tuple(ksize) and all(d == 1 for d in dilations)
              and not any(output_padding))
    bias_g = None if b is None else b.reshape(group, cog, *(1,) * nd)

    def run_images(n0: int, n1: int) -> None:
        dst = full[n0:n1]
        if not tiling:
            dst[...] = fill  # bias (or zero) first, taps accumulate on top
        for g in range(group):
            # (nb, C_out/g * k_total, in_pixels): all taps' contributions.
            cols = np.matmul(wt[g], xg[n0:n1, g]).reshape(n1 - n0, cog, ktot, *in_size)
            dst_g = dst[:, g * cog:(g + 1) * cog]
            for t, sl in enumerate(tap_slices):
                tap_dst = dst_g[(slice(None), slice(None), *sl)]
                if not tiling:
                    tap_dst += cols[:, :, t]
                elif bias_g is None:
                    np.copyto(tap_dst, cols[:, :, t])
                else:
                    np.add(cols[:, :, t], bias_g[g], out=tap_dst)

    macs_per_image = c_out * ktot * cg * in_pixels
    per = max(1, min(n, _MIN_PARALLEL_MACS // max(1, macs_per_image)))
    run_chunked([(n0, min(n, n0 + per)) for n0 in range(0, n, per)],
                lambda chunk: run_images(*chunk))

    crop = tuple(slice(pads[i], pads[i] + out_size[i]) for i in range(nd))
    if all(sl.start == 0 and sl.stop == fs for sl, fs in zip(crop, full_size)):
        return full
    out = _arena.empty((n, c_out, *out_size))
    np.copyto(out, full[(slice(None), slice(None), *crop)])
    return out
