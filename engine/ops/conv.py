"""N-d convolution (ONNX ``Conv``), the hot path of the live view.

Layout: everything stays channels-first (N, C, *spatial), so there is no
transpose on the way in or out. The general path is a blocked im2col. The
output is cut into blocks of a few output rows (first spatial axis) of one
image, or of several whole images when images are small. For each block the
patch matrix is built as (C_in * k_total, pixels): one row per (input
channel, kernel tap), filled with one strided copy per tap from the unpadded
input, which runs along the contiguous last axis. The patch buffer is zeroed
once per thread and block shape; padding cells along the non-first axes are
the same in every block and never rewritten, and rows that read padding at
the top or bottom are re-zeroed per block. One GEMM per group per block,
``[W_g | b_g] @ [patch_g; 1]`` (the bias rides along as a row of ones), writes
the block's final values straight into the (N, C_out, *out) result. Blocks
are sized to stay in one core's L2 cache and run on the shared pool with BLAS
at one thread (see ``_parallel``).

On the design: a channels-last variant (input transposed once, patch built as
(pixels, taps * C_in), block result transposed back into the output) was
measured as well and was as fast or slower on every shape tried (about 20%
slower on the 4x64x224x224 benchmark): ``W @ patch`` runs at nearly the BLAS
speed of ``patch^T @ W^T``, and the two transposes cost more than the
channels-last copy saves. A flat "garbage column" layout (see
``_PhaseGrid``) did not help the general path either.

Fast paths: 1x1 kernels with unit stride and no padding are a plain matmul
per block of pixels; depthwise convolutions (one input channel per group)
are a sum over kernel taps of contiguous multiply-adds, with no GEMM at all;
3x3 stride-1 undilated 2-D convolutions with at least 32 channels each way
go to Winograd F(2x2, 3x3) (``winograd``), 2.25x fewer multiply-adds.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Hashable, Sequence
from itertools import product

import numpy as np

from engine.ops import _arena
from engine.ops._derived import derived
from engine.ops._elementwise import per_row_loops
from engine.ops._parallel import num_workers, run_chunked, single_threaded_blas
from engine.ops._scratch import scratch
from engine.ops.winograd import conv_winograd, winograd_applies

__all__ = ["conv", "conv_output_size"]

# Target bytes of one chunk's working set in the window ops (depthwise conv,
# pooling), about half of a 2 MiB per-core L2. On the 2-core Intel dev VM
# 4 MiB made the depthwise 3x3 at 4x32x112x112 6.5 -> 7.6 ms and a 3x3
# average pool 3.0 -> 3.9 ms.
_BLOCK_BYTES = 1 << 20
# The same for an im2col block (patch matrix + GEMM result). Larger blocks
# mean fewer, wider GEMMs and fewer tap copies: on the same VM, against
# 1 MiB, 4 MiB took VGG's conv1 (3->64, 4x3x224x224) 12.7 -> 10.0 ms, a
# dilated 16->16 at 16x16x64x64 10.9 -> 8.3 ms and a dilated 64->64 at
# 4x64x112x112 44 -> 37 ms; 8 and 16 MiB were no better. (On an earlier AMD
# VM, 512 KiB to 2 MiB had timed the same.)
_IM2COL_BLOCK_BYTES = 4 << 20
# A block should hold at least this many output pixels, or the GEMM is too
# thin to run at full speed whatever the cache does.
_MIN_BLOCK_PIXELS = 64
# Below this many multiply-adds per block, splitting for the pool costs more
# (task hand-off, ~50 us, and up to a GIL switch interval) than it saves.
_MIN_PARALLEL_MACS = 1 << 20


def conv_output_size(size: int, kernel: int, stride: int, pad_begin: int,
                     pad_end: int, dilation: int) -> int:
    """Output length of a convolution along one axis (floor rule, as ONNX)."""
    return (size + pad_begin + pad_end - dilation * (kernel - 1) - 1) // stride + 1


def conv(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    *,
    strides: Sequence[int] | None,
    pads: Sequence[int] | None,
    dilations: Sequence[int] | None,
    group: int = 1,
    kernel_shape: Sequence[int] | None = None,
) -> np.ndarray:
    """ONNX ``Conv`` with explicit padding.

    x: (N, C_in, *spatial) with 1 to 3 spatial axes; w: (C_out, C_in/group,
    *k); b: (C_out,) or None. ``strides``/``dilations`` have one entry per
    spatial axis and ``pads`` two ([x1_begin, x2_begin, ..., x1_end, ...]);
    None means the ONNX default (1 or 0 everywhere). ``kernel_shape``, if
    given, must equal ``w.shape[2:]``. Returns float32 (N, C_out, *out) with
    ``out = (in + pad_begin + pad_end - dilation*(k-1) - 1) // stride + 1``.

    Raises ValueError when shapes or attribute lengths are inconsistent or an
    output size would be smaller than 1.
    """
    x, w, strides, pads, dilations = _window_args(x, w, strides, pads, dilations, kernel_shape,
                                                  "Conv", "(C_out, C_in/group, *kernel)")
    nd = x.ndim - 2
    ksize = w.shape[2:]
    n, c_in = x.shape[:2]
    c_out = w.shape[0]
    if group < 1 or c_in % group or c_out % group or w.shape[1] * group != c_in:
        raise ValueError(
            f"Conv: input has {c_in} channels and weight shape {w.shape} with "
            f"group={group}; need C_in = group * weight.shape[1] and C_out "
            f"divisible by group."
        )
    if b is not None:
        b = _as_f32(b)
        if b.shape != (c_out,):
            raise ValueError(f"Conv: bias must have shape ({c_out},), got {b.shape}.")
    out_size = tuple(
        conv_output_size(x.shape[2 + i], ksize[i], strides[i], pads[i], pads[nd + i],
                         dilations[i])
        for i in range(nd)
    )
    if min(out_size) < 1 or min(ksize) < 1 or min(strides) < 1 or min(dilations) < 1:
        raise ValueError(
            f"Conv: input spatial size {list(x.shape[2:])} with kernel {list(ksize)}, "
            f"strides {list(strides)}, dilations {list(dilations)} and pads "
            f"{list(pads)} gives output size {list(out_size)}; every size must be "
            f"at least 1."
        )
    if n == 0 or c_out == 0:
        return np.zeros((n, c_out, *out_size), dtype=np.float32)

    if group == c_in > 1:
        # Depthwise (C_in == 1 is one group: a single GEMM serves it better).
        return _conv_depthwise(x, w, b, strides, pads, dilations, out_size)
    if (
        all(k == 1 for k in ksize)
        and all(s == 1 for s in strides)
        and not any(pads)
    ):
        return _conv_pointwise(x, w, b, group)
    if winograd_applies(w.shape, strides, dilations, group):
        return conv_winograd(x, w, b, pads, out_size)
    return _conv_im2col(x, w, b, strides, pads, dilations, group, out_size)


# --------------------------------------------------------------------------
# helpers shared with the other kernel modules



def _window_args(x: np.ndarray, w: np.ndarray, strides: Sequence[int] | None,
                 pads: Sequence[int] | None, dilations: Sequence[int] | None,
                 kernel_shape: Sequence[int] | None, op: str, layout: str
                 ) -> tuple[np.ndarray, np.ndarray, tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """float32 x and w, and full strides/pads/dilations, for Conv and ConvTranspose.

    Raises ValueError when the weight's rank or kernel_shape disagrees with x.
    """
    x = _as_f32(x)
    w = _as_f32(w)
    nd = _check_spatial_input(x, op)
    if w.ndim != x.ndim:
        raise ValueError(f"{op}: weight must have shape {layout} with {nd} kernel axes, "
                         f"got shape {w.shape}.")
    if kernel_shape is not None and tuple(kernel_shape) != tuple(w.shape[2:]):
        raise ValueError(f"{op}: kernel_shape {list(kernel_shape)} does not match the weight's "
                         f"kernel {list(w.shape[2:])}.")
    return (x, w, _tuple_attr(strides, nd, 1, "strides", op), _tuple_attr(pads, 2 * nd, 0, "pads", op),
            _tuple_attr(dilations, nd, 1, "dilations", op))

def _as_f32(a: np.ndarray) -> np.ndarray:
    """``a`` as a float32 ndarray, without a copy when it already is one."""
    return np.asarray(a, dtype=np.float32)


def _ceil_div(a: int, b: int) -> int:
    """Ceiling of ``a / b`` for integers with ``b > 0`` (exact, no floats)."""
    return -((-a) // b)


def _check_spatial_input(x: np.ndarray, op: str) -> int:
    """Number of spatial axes of ``x`` (N, C, *spatial); ValueError unless 1-3."""
    if not 3 <= x.ndim <= 5:
        raise ValueError(
            f"{op} expects an input of shape (N, C, *spatial) with 1 to 3 spatial "
            f"axes, got shape {x.shape}."
        )
    return x.ndim - 2


def _tuple_attr(value: Sequence[int] | None, length: int, default: int, name: str,
                op: str) -> tuple[int, ...]:
    """An ONNX list attribute as a tuple; None means ``default`` on every axis."""
    if value is None:
        return (default,) * length
    out = tuple(int(v) for v in value)
    if len(out) != length:
        raise ValueError(f"{op}: {name} must have {length} entries, got {list(out)}.")
    return out


def _tap_valid_range(in_size: int, out_size: int, offset: int, stride: int,
                     pad_begin: int) -> tuple[int, int]:
    """Output indices ``[lo, hi)`` whose input index is inside the input.

    Output index ``o`` reads input index ``o * stride + offset - pad_begin``
    (``offset`` = kernel tap index * dilation); indices outside ``[lo, hi)``
    read padding. ``lo == hi`` when no index is valid.
    """
    lo = max(0, _ceil_div(pad_begin - offset, stride))
    hi = min(out_size, (in_size - 1 + pad_begin - offset) // stride + 1)
    return lo, max(lo, hi)


# --------------------------------------------------------------------------
# general path: blocked im2col + GEMM


def _plan_blocks(n: int, rows: int, row_pixels: int, pixel_bytes: int,
                 pixel_macs: int) -> list[tuple[int, int, int, int]]:
    """Cut the output into blocks ``(n0, n1, r0, r1)``.

    A block is either rows ``r0:r1`` of one image (``n1 == n0 + 1``) or whole
    images ``n0:n1`` (``r0 == 0, r1 == rows``), holding about
    ``_IM2COL_BLOCK_BYTES`` of working set, even with one worker (the dilated
    1-2-4 stack at 16x1x64x64 on one thread: 53 ms with each convolution's
    38 MB patch matrix whole, 28 ms in blocks). A small job is one block
    (then BLAS may use every core for it); a large one gets at least two
    blocks per worker.
    """
    image_pixels = rows * row_pixels
    total_pixels = n * image_pixels
    workers = num_workers()
    if total_pixels * pixel_macs < 2 * _MIN_PARALLEL_MACS:
        target = total_pixels
    else:
        target = max(_MIN_BLOCK_PIXELS, _IM2COL_BLOCK_BYTES // pixel_bytes)
        if workers > 1:
            # Enough blocks to keep every worker busy, as long as each block
            # still carries enough work to be worth a hand-off.
            target = min(target, max(_ceil_div(total_pixels, 2 * workers),
                                     _MIN_PARALLEL_MACS // pixel_macs, 1))
    if image_pixels <= target:
        per = max(1, min(n, target // image_pixels))
        return [(n0, min(n, n0 + per), 0, rows) for n0 in range(0, n, per)]
    rb = max(1, min(rows, target // row_pixels))
    return [(i, i + 1, r0, min(rows, r0 + rb)) for i in range(n) for r0 in range(0, rows, rb)]


@functools.lru_cache(maxsize=64)  # ~0.1 ms a call; a live view re-runs the same layers
def _block_taps(in_size, ksize, strides, pads, dilations, out_size):
    """Per kernel tap: what a block's patch copy needs.

    Returns ``(tap, (lo, hi, off), inner_dst, inner_src)`` per tap that reads
    real input somewhere: output rows ``[lo, hi)`` of axis 0 read real input
    (to be clipped to a block), ``off`` is the input row of output row 0, and
    the slices give the output range and input slice of the other axes, the
    same in every block. Taps reading only padding along axes 1.. are left
    out: their patch cells stay zero from the buffer's allocation.
    """
    nd = len(in_size)
    taps = []
    for t, kidx in enumerate(product(*(range(k) for k in ksize))):
        per_axis = []  # (lo, hi, input index of output 0)
        for i in range(nd):
            lo, hi = _tap_valid_range(in_size[i], out_size[i], kidx[i] * dilations[i],
                                      strides[i], pads[i])
            per_axis.append((lo, hi, kidx[i] * dilations[i] - pads[i]))
        if all(hi > lo for lo, hi, _ in per_axis[1:]):
            inner_dst = tuple(slice(lo, hi) for lo, hi, _ in per_axis[1:])
            inner_src = tuple(
                slice(lo * s + off, (hi - 1) * s + off + 1, s)
                for (lo, hi, off), s in zip(per_axis[1:], strides[1:])
            )
            taps.append((t, per_axis[0], inner_dst, inner_src))
    return tuple(taps)


def _conv_im2col(x, w, b, strides, pads, dilations, group, out_size):
    n, c_in = x.shape[:2]
    in_size = x.shape[2:]
    nd = len(in_size)
    ksize = w.shape[2:]
    c_out = w.shape[0]
    cg, cog = c_in // group, c_out // group
    ktot = math.prod(ksize)
    rows, rest = out_size[0], out_size[1:]
    row_pixels = math.prod(rest)
    kg = cg * ktot  # patch rows per group: (channel, tap), channel-major
    # The bias rides along the GEMM as an extra all-ones patch row, so the
    # GEMM writes final values straight into the output with no extra pass.
    kg1 = kg + (b is not None)
    wmat = w.reshape(group, cog, kg)  # matches the patch's (channel, tap) order
    if b is not None:
        wmat = derived(("im2col", group), (w, b),
                       lambda: np.concatenate([wmat, b.reshape(group, cog, 1)], axis=2))

    taps = _block_taps(in_size, ksize, strides, pads, dilations, out_size)

    out = _arena.empty((n, c_out, *out_size))
    blocks = _plan_blocks(n, rows, row_pixels, 4 * (group * kg1 + c_out), kg * cog)
    xg = x.reshape(n, group, cg, *in_size)
    geometry = ("im2col", in_size, w.shape, strides, pads, dilations, group, kg1)

    def patch_buffer(nb: int, rb: int) -> np.ndarray:
        def make() -> tuple[np.ndarray]:
            # Zeroed once: positions that read padding along axes 1.. are the
            # same in every block of this geometry, so they are never written
            # again. The bias row of ones is also set once.
            buf = np.zeros((group, kg1, nb * rb * row_pixels), dtype=np.float32)
            if kg1 > kg:
                buf[:, kg] = 1.0
            return (buf,)

        return scratch((*geometry, nb, rb), make)[0]

    def run_block(block: tuple[int, int, int, int]) -> None:
        n0, n1, r0, r1 = block
        nb, rb = n1 - n0, r1 - r0
        npix = nb * rb * row_pixels
        buf = patch_buffer(nb, rb)
        patch = buf[:, :kg].reshape(group, cg, ktot, nb, rb, *rest)
        src_all = xg[n0:n1].transpose(1, 2, 0, *range(3, 3 + nd))  # (G, cg, nb, *in)
        lead = (slice(None),) * 3  # group, channel, image
        s0 = strides[0]
        for t, (lo, hi, off), inner_dst, inner_src in taps:
            dst = patch[:, :, t]  # (G, cg, nb, rb, *rest)
            lo, hi = max(lo, r0) - r0, min(hi, r1) - r0
            if hi <= lo:
                dst[...] = 0  # only padding rows in this block
                continue
            src_rows = slice((lo + r0) * s0 + off, (hi - 1 + r0) * s0 + off + 1, s0)
            dst[(*lead, slice(lo, hi), *inner_dst)] = src_all[(*lead, src_rows, *inner_src)]
            if lo > 0:
                dst[(*lead, slice(0, lo))] = 0
            if hi < rb:
                dst[(*lead, slice(hi, rb))] = 0
        if nb == 1:
            dst_out = out[n0, :, r0:r1].reshape(group, cog, npix)
            for g in range(group):
                np.matmul(wmat[g], buf[g], out=dst_out[g])
        else:
            res = np.empty((group, cog, npix), dtype=np.float32)
            for g in range(group):
                np.matmul(wmat[g], buf[g], out=res[g])
            out[n0:n1].reshape(nb, c_out, -1)[...] = res.reshape(c_out, nb, -1).swapaxes(0, 1)

    run_chunked(blocks, run_block)
    return out


# --------------------------------------------------------------------------
# fast paths


def _conv_pointwise(x, w, b, group):
    """1x1 kernel, unit stride, no padding: a matmul over channels.

    Channels-first in and out: each block (a run of pixels of one image, or
    whole images) is ``W_g @ x[i, g, :, p0:p1]`` per image written into the
    output's view, with the bias added while the block is in cache; blocks
    are cut as im2col's (``_plan_blocks``) and run on the pool. On the 2-core
    Intel dev VM, against 1 MiB blocks, that took MobileNetV2's 1x1 shapes
    at one thread 2.30 -> 2.08 ms (one matmul per layer: 1.96 ms).
    """
    n, c_in = x.shape[:2]
    spatial = x.shape[2:]
    c_out = w.shape[0]
    cg, cog = c_in // group, c_out // group
    npix = math.prod(spatial)
    wg = w.reshape(group, cog, cg)
    if npix < _MIN_BLOCK_PIXELS and n > 1:
        # Tiny images: one GEMM over all N * P pixels instead of N thin ones.
        xt = x.reshape(n, group, cg, npix).transpose(1, 0, 3, 2).reshape(group, n * npix, cg)
        with single_threaded_blas():
            res = np.matmul(xt, wg.transpose(0, 2, 1))  # (G, N*P, C_out/G)
        out = np.ascontiguousarray(
            res.reshape(group, n, npix, cog).transpose(1, 0, 3, 2)
        ).reshape(n, c_out, npix)
        if b is not None:
            out += b[:, None]
        return out.reshape(n, c_out, *spatial)
    xg = x.reshape(n, group, cg, npix)
    out = _arena.empty((n, c_out, *spatial))
    outg = out.reshape(n, group, cog, npix)
    bias = None if b is None else b.reshape(group, cog, 1)
    blocks = _plan_blocks(n, npix, 1, 4 * (c_in + c_out), c_out * cg)

    def run_block(block: tuple[int, int, int, int]) -> None:
        n0, n1, p0, p1 = block
        for i in range(n0, n1):
            for g in range(group):
                dst = outg[i, g, :, p0:p1]
                np.matmul(wg[g], xg[i, g, :, p0:p1], out=dst)
                if bias is not None:
                    with per_row_loops(p1 - p0):
                        dst += bias[g]

    run_chunked(blocks, run_block)
    return out


class _PhaseGrid:
    """Geometry for window ops (depthwise conv, pooling) done as flat passes.

    To make every per-tap pass one contiguous 1-D operation, the padded
    input is split by stride phase: along an axis with stride ``s``, phase
    ``a`` holds padded positions ``a, a + s, a + 2s, ...``, so a tap at padded
    offset ``k * d`` reads phase ``(k * d) % s`` shifted by ``(k * d) // s``
    with unit stride. Each phase is stored flat per (image, channel) as a
    "plane", and outputs are computed on a grid that spans full plane rows
    (the cells past the output's extent on axes 1.. are garbage, cropped at
    the end), so a tap's input is one flat slice at a fixed offset.

    Attributes: ``taps``: per kernel tap ``(tap number, phase, offset)``;
    ``grid``: flat grid length; ``fills``: per phase ``(phase, plane slices,
    input slices)`` where the plane holds real input (elsewhere padding);
    ``axis_taps``: per axis, per kernel index ``(phase along the axis,
    shift)``; ``pstride``: per axis, the flat distance of one step along it;
    ``phase_index``: phase tuple -> plane number.
    """

    def __init__(self, in_size, ksize, strides, dilations, pads_begin, out_size):
        nd = len(in_size)
        self.out_size = tuple(out_size)
        axis_taps = []  # per axis, per kernel index: (phase, shift)
        plane_len = []
        for i in range(nd):
            s, d = strides[i], dilations[i]
            offs = [(k * d % s, k * d // s) for k in range(ksize[i])]
            axis_taps.append(offs)
            plane_len.append(out_size[i] + max(sh for _, sh in offs))
        self.plane_len = tuple(plane_len)
        self.axis_taps = tuple(tuple(offs) for offs in axis_taps)
        pstride = [math.prod(plane_len[i + 1:]) for i in range(nd)]
        self.pstride = tuple(pstride)
        self.grid = out_size[0] * pstride[0]
        # One extra row on axis 0: slack for the garbage cells of late taps.
        self.plane_shape = (plane_len[0] + 1, *plane_len[1:])
        self.plane_size = math.prod(self.plane_shape)

        kidxs = list(product(*(range(k) for k in ksize)))
        phases = sorted({tuple(axis_taps[i][k][0] for i, k in enumerate(kidx))
                         for kidx in kidxs})
        index = {ph: j for j, ph in enumerate(phases)}
        self.phase_index = index
        self.n_phases = len(phases)
        self.taps = [
            (t, index[tuple(axis_taps[i][k][0] for i, k in enumerate(kidx))],
             sum(axis_taps[i][k][1] * pstride[i] for i, k in enumerate(kidx)))
            for t, kidx in enumerate(kidxs)
        ]
        self.fills = []
        for ph in phases:
            dst_sl, src_sl = [], []
            for i, a in enumerate(ph):
                s, pb = strides[i], pads_begin[i]
                lo = max(0, _ceil_div(pb - a, s))
                hi = min(plane_len[i], (in_size[i] - 1 + pb - a) // s + 1)
                if hi <= lo:
                    break
                dst_sl.append(slice(lo, hi))
                src_sl.append(slice(lo * s + a - pb, (hi - 1) * s + a - pb + 1, s))
            else:
                self.fills.append((index[ph], tuple(dst_sl), tuple(src_sl)))

    def new_planes(self, lead: tuple[int, ...], pad_value: float) -> np.ndarray:
        """Phase planes (n_phases, *lead, plane_size) holding only padding."""
        return np.full((self.n_phases, *lead, self.plane_size), pad_value, dtype=np.float32)

    def fill(self, planes: np.ndarray, src: np.ndarray) -> None:
        """Copy ``src`` (*lead, *in_size) into the planes' real-input cells.

        The other cells are never written, so planes made by ``new_planes``
        can be refilled for every chunk of the same shape.
        """
        lead = (slice(None),) * (src.ndim - len(self.out_size))
        for j, dst_sl, src_sl in self.fills:
            plane = planes[j].reshape(*src.shape[:len(lead)], *self.plane_shape)
            plane[(*lead, *dst_sl)] = src[(*lead, *src_sl)]

    def tap_input(self, planes: np.ndarray, phase: int, offset: int) -> np.ndarray:
        """Flat (*lead, grid) view of the planes that a tap reads."""
        return planes[phase, ..., offset:offset + self.grid]

    def cropped(self, acc: np.ndarray) -> np.ndarray:
        """View of a flat (..., grid) result as (..., *out_size), garbage cut."""
        shaped = acc.reshape(*acc.shape[:-1], self.out_size[0], *self.plane_len[1:])
        return shaped[(..., *(slice(0, o) for o in self.out_size))]


class ThreadBuffers:
    """Scratch arrays per chunk shape for one kernel geometry, made by `make(nb, cb)` once per
    thread and reused across calls (see ``_scratch``), so a chunked kernel allocates nothing in
    its loop and keeps the padding cells it never writes. ``key`` must capture everything that
    decides those cells."""

    def __init__(self, key: tuple[Hashable, ...],
                 make: Callable[[int, int], tuple[np.ndarray, ...]]) -> None:
        self._key = key
        self._make = make

    def __call__(self, nb: int, cb: int) -> tuple[np.ndarray, ...]:
        return scratch((*self._key, nb, cb), lambda: self._make(nb, cb))


def _plan_chunks(n: int, c: int, chan_bytes: int,
                 total_work: int) -> list[tuple[int, int, int, int]]:
    """Chunks ``(n0, n1, c0, c1)`` of about ``_BLOCK_BYTES`` for window ops.

    Whole images' channels when one image fits, else a few channels of one
    image; a single chunk when the job is too small to be worth splitting.
    """
    if n == 0 or c == 0:
        return []
    per = max(1, _BLOCK_BYTES // max(1, chan_bytes))
    if total_work < 2 * _MIN_PARALLEL_MACS:
        per = n * c
    if per >= c:
        nb = max(1, min(n, per // c))
        return [(n0, min(n, n0 + nb), 0, c) for n0 in range(0, n, nb)]
    return [(i, i + 1, c0, min(c, c0 + per)) for i in range(n) for c0 in range(0, c, per)]


def _conv_depthwise(x, w, b, strides, pads, dilations, out_size):
    """One input channel per group: a sum over taps of multiply-adds.

    C_out may be a multiple ``m`` of C_in (ONNX depth multiplier); output
    channel ``c * m + j`` reads input channel ``c``. Each tap is one
    contiguous multiply and add over a chunk of (images, channels), see
    ``_PhaseGrid``; chunks are sized to stay in cache and run on the pool.
    """
    n, c_in = x.shape[:2]
    nd = x.ndim - 2
    ksize = w.shape[2:]
    mult = w.shape[0] // c_in
    ktot = math.prod(ksize)
    geo = _PhaseGrid(x.shape[2:], ksize, strides, dilations, pads[:nd], out_size)
    # (k_total, C_in, m, 1): per tap, one weight per (channel, multiplier).
    wtaps = np.ascontiguousarray(w.reshape(c_in, mult, ktot).transpose(2, 0, 1))[..., None]
    bias = None if b is None else b.reshape(c_in, mult, *(1,) * nd)
    out = _arena.empty((n, c_in * mult, *out_size))
    out_view = out.reshape(n, c_in, mult, *out_size)
    chunks = _plan_chunks(n, c_in, 4 * (geo.n_phases * geo.plane_size + 2 * mult * geo.grid),
                          n * c_in * mult * geo.grid * ktot)
    def make_buffers(nb: int, cb: int) -> tuple[np.ndarray, ...]:
        # The planes' padding cells stay zero across chunks.
        acc = np.empty((nb, cb, mult, geo.grid), dtype=np.float32)
        return geo.new_planes((nb, cb), 0.0), acc, np.empty_like(acc)

    buffers = ThreadBuffers(("depthwise", x.shape[2:], w.shape, strides, pads, dilations),
                            make_buffers)

    def run_chunk(chunk: tuple[int, int, int, int]) -> None:
        n0, n1, c0, c1 = chunk
        planes, acc, tmp = buffers(n1 - n0, c1 - c0)
        geo.fill(planes, x[n0:n1, c0:c1])
        for t, phase, off in geo.taps:
            tap_in = geo.tap_input(planes, phase, off)[:, :, None]  # (nb, cb, 1, grid)
            if t == 0:
                np.multiply(tap_in, wtaps[t, c0:c1], out=acc)
            else:
                np.multiply(tap_in, wtaps[t, c0:c1], out=tmp)
                acc += tmp
        dst = out_view[n0:n1, c0:c1]
        if bias is None:
            np.copyto(dst, geo.cropped(acc))
        else:
            np.add(geo.cropped(acc), bias[c0:c1], out=dst)

    run_chunked(chunks, run_chunk)
    return out
