"""Winograd F(2x2, 3x3) convolution: 3x3 kernels, stride 1, no dilation, 2-D.

Each 2x2 output tile is computed from a 4x4 input tile with 16 multiplies
per (input, output) channel pair instead of 36 (Lavin & Gray 2016): the
input tile ``d`` becomes ``V = B^T d B``, the kernel ``g`` becomes ``U = G g
G^T`` (once per weight array, see ``_derived``), the 16 products ``U_kl *
V_kl`` summed over input channels are 16 GEMMs ``(C_out x C_in) @ (C_in x
tiles)``, and ``Y = A^T M A`` gives the output tile. The GEMMs do 2.25x
fewer multiply-adds than im2col's; the input and output transforms only add
and subtract and the kernel transform only adds and halves, so the result
differs from direct convolution by a few float32 roundings (about 5e-7 of
the output's largest magnitude on the tests' shapes).

Layout: the padded input is split into its four (row, column) parity planes,
each stored flat per channel with rows of ``tiles_x + 1`` cells, so every 4x4
tile element is one flat slice at a fixed offset (see ``conv._PhaseGrid``);
the transforms are contiguous NumPy passes over whole blocks of tile rows,
with one garbage tile per row that is cropped on output. Blocks of a few tile
rows of one image keep their working set in cache and run on the shared pool.
"""

from __future__ import annotations

import numpy as np

from engine.ops import _arena
from engine.ops._derived import derived
from engine.ops._elementwise import per_row_loops
from engine.ops._parallel import run_chunked, single_threaded_blas
from engine.ops._scratch import scratch

__all__ = ["conv_winograd", "winograd_applies"]

# Minimum channels on both sides: below this the 16 GEMMs are too thin to
# beat im2col's single one (and the transforms dominate). On the 2-core
# Intel dev VM, 16 -> 16 at 16x16x64x64 took 11.9 ms here against im2col's
# 10.0, and 32 -> 32 at 16x32x64x64 20.2 ms against 23.7.
_MIN_CHANNELS = 32
# GEMM columns (tiles) per block: below ~400 OpenBLAS's sgemm runs well
# under its peak; above ~1000 the block (16 x channels x tiles, twice) no
# longer fits in cache. Measured on 64 and 128 channels at 224x224.
_TARGET_TILES = 448

_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
# G g G^T for all 16 (a, b) at once: entry ((a, b), (i, j)) = G[a, i] * G[b, j],
# products of 0, 1/2 and 1, so exact in float32.
_G_KRON = np.einsum("ai,bj->abij", _G, _G).reshape(16, 9).astype(np.float32)
_AT = np.array([[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, -1.0]])
# The output transform of all four outputs as one (4, 16) matrix, so it is a
# single GEMM over the block (rows: output (a, b); columns: product (k, l)),
# applied as M^T @ A16^T so that each tile's four outputs come out adjacent.
_A16 = np.einsum("ak,bl->abkl", _AT, _AT).reshape(4, 16).astype(np.float32)


def winograd_applies(w_shape: tuple[int, ...], strides: tuple[int, ...],
                     dilations: tuple[int, ...], group: int) -> bool:
    """Whether ``conv_winograd`` serves a Conv with this weight shape and attributes."""
    return (len(w_shape) == 4 and w_shape[2:] == (3, 3) and strides == (1, 1)
            and dilations == (1, 1) and group == 1
            and min(w_shape[0], w_shape[1]) >= _MIN_CHANNELS)


def _kernel_transform(w: np.ndarray) -> np.ndarray:
    """(16, C_out, C_in) float32: ``G g G^T`` per channel pair, as one GEMM."""
    c_out, c_in = w.shape[:2]
    with single_threaded_blas():
        u = _G_KRON @ w.reshape(c_out * c_in, 9).T  # (16, C_out * C_in)
    return u.reshape(16, c_out, c_in)


def conv_winograd(x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                  pads: tuple[int, ...], out_size: tuple[int, int]) -> np.ndarray:
    """3x3 stride-1 convolution of float32 x (N, C_in, H, W) with w (C_out, C_in, 3, 3).

    ``pads`` = (top, left, bottom, right), ``out_size`` the (already checked)
    output (H_out, W_out). Returns float32 (N, C_out, H_out, W_out).
    """
    n, c_in, h, wd = x.shape
    c_out = w.shape[0]
    h_out, w_out = out_size
    pad_top, pad_left = pads[0], pads[1]
    tiles_y, tiles_x = (h_out + 1) // 2, (w_out + 1) // 2
    row = tiles_x + 1  # plane row length: one extra cell for the tiles' +1 column shift
    per_block = max(1, min(tiles_y, -(-_TARGET_TILES // row)))
    u = derived("winograd", (w,), lambda: _kernel_transform(w))
    out = _arena.empty((n, c_out, h_out, w_out))
    bias = None if b is None else b.reshape(c_out, 1)
    blocks = [(i, t0, min(tiles_y, t0 + per_block))
              for i in range(n) for t0 in range(0, tiles_y, per_block)]
    # Plane column X of parity px is padded column 2X + px, i.e. input column
    # 2X + px - pad_left: per parity, (first input column, valid plane columns).
    cols = [(px - pad_left, _parity_range(px - pad_left, row, wd)) for px in range(2)]

    def make_buffers(t: int) -> tuple[np.ndarray, ...]:
        plane = _plane_length(t, row)
        # Zeros: plane cells never written are padding, the same in every
        # block; the slack past the last channel keeps the garbage cells finite.
        return (np.zeros((2, 2, c_in * plane + row + 1), dtype=np.float32),
                np.empty((4, 2, c_in * plane), dtype=np.float32),  # row stage
                np.empty((16, c_in * plane), dtype=np.float32),  # V, garbage cells included
                np.empty((16, c_out, t * row), dtype=np.float32),  # M
                np.empty((c_out * t * row, 4), dtype=np.float32))  # Y, a tile's 4 side by side

    def run_block(block: tuple[int, int, int]) -> None:
        i, t0, t1 = block
        t = t1 - t0
        grid = t * row
        planes, rows, v, m, y = scratch(("winograd", c_in, c_out, h, wd, pads, t),
                                        lambda: make_buffers(t))
        _fill_planes(planes, x[i], t0, t, row, pad_top, cols)
        _input_transform(planes, rows, v, row)
        # Each channel's V cells past its grid are garbage: the GEMM skips them (ldb = plane).
        np.matmul(u, v.reshape(16, c_in, -1)[:, :, :grid], out=m)
        if bias is not None:
            # Product (1, 1) enters all four outputs with weight 1 (A^T's second column), so
            # the bias added there is added to every output, at 1/16 of the cost.
            with per_row_loops(grid):
                m[5] += bias
        np.matmul(m.reshape(16, -1).T, _A16.T, out=y)
        # Output (a, b) of tile (Y, X) is pixel (2Y + a, 2X + b) of the block.
        if 2 * t1 <= h_out and w_out % 2 == 0:
            # Pixels (2X, 2X + 1) of an output row are outputs (a, 0) and (a, 1) of tile X,
            # adjacent in y: one 8-byte element each side, so one contiguous copy per row.
            src = y.reshape(c_out, t, row, 2, 2).view(np.float64)[..., 0]
            dst = out[i, :, 2 * t0:2 * t1].view(np.float64).reshape(c_out, t, 2, w_out // 2)
            np.copyto(dst, src[:, :, :w_out // 2].transpose(0, 1, 3, 2))
            return
        for a in range(2):
            r0 = 2 * t0 + a
            n_rows = min(t, (h_out - 1 - r0) // 2 + 1)
            for bb in range(2):
                n_cols = (w_out - bb + 1) // 2
                if n_rows > 0 and n_cols > 0:
                    src = y[:, 2 * a + bb].reshape(c_out, t, row)[:, :n_rows, :n_cols]
                    np.copyto(out[i, :, r0:r0 + 2 * n_rows - 1:2, bb:bb + 2 * n_cols - 1:2], src)

    run_chunked(blocks, run_block)
    return out


def _parity_range(first: int, count: int, size: int) -> tuple[int, int]:
    """Plane indices ``[lo, hi)`` whose input index ``first + 2 * k`` lies in ``[0, size)``."""
    lo = 0 if first >= 0 else (-first + 1) // 2
    hi = min(count, (size - 1 - first) // 2 + 1)
    return lo, max(lo, hi)


def _plane_length(t: int, row: int) -> int:
    """Cells of one channel's parity plane for ``t`` tile rows: ``t + 1`` rows of ``row`` cells
    (tile row Y reads plane rows Y and Y + 1) and one more for the column shift."""
    return (t + 1) * row + 1


def _fill_planes(planes: np.ndarray, image: np.ndarray, t0: int, t: int, row: int,
                 pad_top: int, cols: list[tuple[int, tuple[int, int]]]) -> None:
    """Copy the input rows under tile rows ``t0 : t0 + t`` of one image (C, H, W)
    into the parity planes (2, 2, C * plane length + slack).

    Plane (py, px) row Y holds padded row ``2 * (t0 + Y) + py``. Rows in the
    padding are zeroed here (which rows they are differs between blocks);
    padding columns are the same in every block and stay zero from allocation.
    """
    c, h = image.shape[:2]
    length = _plane_length(t, row)
    for py in range(2):
        first_row = 2 * t0 + py - pad_top  # input row of plane row 0
        ylo, yhi = _parity_range(first_row, t + 1, h)
        for px, (first_col, (xlo, xhi)) in enumerate(cols):
            plane = planes[py, px, :c * length].reshape(c, length)[:, :-1].reshape(c, t + 1, row)
            if yhi > ylo and xhi > xlo:
                r0, c0 = first_row + 2 * ylo, first_col + 2 * xlo
                plane[:, ylo:yhi, xlo:xhi] = image[:, r0:r0 + 2 * (yhi - ylo) - 1:2,
                                                   c0:c0 + 2 * (xhi - xlo) - 1:2]
            if ylo > 0:
                plane[:, :ylo] = 0
            if yhi < t + 1:
                plane[:, yhi:] = 0


def _input_transform(planes: np.ndarray, rows: np.ndarray, v: np.ndarray, row: int) -> None:
    """``V = B^T d B`` for every tile of the block, into v (16, C * plane length).

    Tile element d[i][j] of the tile at plane cell g is plane (i % 2, j % 2)
    at ``g + (i // 2) * row + j // 2``. B^T's rows combine two elements each
    (d0 - d2, d1 + d2, d2 - d1, d1 - d3), first along the tile's rows (into
    ``rows`` (4, 2, C * plane length)), then along its columns. Every pass
    runs over all channels' planes as one flat range, garbage cells between
    them included: one contiguous NumPy call per combination. On the 2-core
    Intel dev VM such a call ran twice as fast as over (channel, cell) views,
    and the whole convolution 8% faster.
    """
    flat = rows.shape[-1]
    d0, d1 = planes[0, :, :flat], planes[1, :, :flat]  # (2 column parities, flat)
    d2, d3 = planes[0, :, row:row + flat], planes[1, :, row:row + flat]
    np.subtract(d0, d2, out=rows[0])
    np.add(d1, d2, out=rows[1])
    np.subtract(d2, d1, out=rows[2])
    np.subtract(d1, d3, out=rows[3])
    even, odd = rows[:, 0], rows[:, 1]  # (4 tile rows k, flat)
    e0, o0, e1, o1 = even[:, :-1], odd[:, :-1], even[:, 1:], odd[:, 1:]
    v4 = v.reshape(4, 4, flat)[..., :-1]  # (k, l, flat - 1); the last cell is never read
    np.subtract(e0, e1, out=v4[:, 0])
    np.add(o0, e1, out=v4[:, 1])
    np.subtract(e1, o0, out=v4[:, 2])
    np.subtract(o0, o1, out=v4[:, 3])
