"""N-d max and average pooling (ONNX ``MaxPool``, ``AveragePool`` and the
global variants).

The windowed max pools combine kernel taps one spatial axis at a time (a box
window is separable: 2 + 2 passes for 3x3 instead of 8; averages keep one pass per tap,
the summation order earlier releases used): each step is one
contiguous ``np.maximum`` or ``np.add`` pass over a chunk of (images,
channels), using the stride-phase planes of ``conv._PhaseGrid`` (padding
cells hold -inf for max, 0 for average), and chunks run on the shared pool.
On the 2-core Intel dev VM at one thread that took Inception's 3x3 stride-1
max pool (1x192x28x28) 0.43 -> 0.22 ms and ResNet-18's 3x3 stride-2 one
(1x64x112x112) 0.78 -> 0.59 ms, against a pass per tap over (channel, cell)
views. The output-size rule, including ceil mode, lives in
``pool_output_size``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from engine.ops import _arena
from engine.ops._parallel import run_chunked
from engine.ops.conv import (
    _as_f32,
    _ceil_div,
    _check_spatial_input,
    _PhaseGrid,
    ThreadBuffers,
    _plan_chunks,
    _tuple_attr,
)

__all__ = [
    "average_pool",
    "global_average_pool",
    "global_max_pool",
    "max_pool",
    "pool_output_size",
]


def pool_output_size(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int,
                     dilation: int, ceil_mode: int) -> int:
    """Output length of a pooling window along one axis (ONNX opset 19+ rule).

    ``span = dilation * (kernel - 1) + 1`` and ``total = size + pad_begin +
    pad_end``. Floor mode: ``(total - span) // stride + 1``. Ceil mode rounds
    the division up instead, then drops the last window if it would start in
    the right padding, i.e. when ``(out - 1) * stride >= size + pad_begin``.
    May return a value below 1 when the window does not fit at all.
    """
    span = dilation * (kernel - 1) + 1
    room = size + pad_begin + pad_end - span
    if not ceil_mode:
        return room // stride + 1
    out = _ceil_div(room, stride) + 1
    if out > 1 and (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


def max_pool(
    x: np.ndarray,
    *,
    kernel_shape: Sequence[int],
    strides: Sequence[int] | None = None,
    pads: Sequence[int] | None = None,
    ceil_mode: int = 0,
    dilations: Sequence[int] | None = None,
) -> np.ndarray:
    """ONNX ``MaxPool`` (first output only) with explicit pads.

    x: (N, C, *spatial) with 1 to 3 spatial axes. ``kernel_shape``, ``strides``
    and ``dilations`` have one entry per spatial axis, ``pads`` two ([x1_begin,
    ..., x1_end, ...]); None means 1 or 0 everywhere. Padding never wins the
    max (it is -inf). Returns float32 (N, C, *out) with ``out`` from
    ``pool_output_size``. Raises ValueError on inconsistent attribute lengths
    or an output size below 1.
    """
    x = _as_f32(x)
    geom = _geometry(x, "MaxPool", kernel_shape, strides, pads, dilations, ceil_mode)
    if _is_tiling(geom):
        return _max_pool_tiling(x, geom)
    return _window_reduce(x, geom, np.maximum, -np.inf, None)


def average_pool(
    x: np.ndarray,
    *,
    kernel_shape: Sequence[int],
    strides: Sequence[int] | None = None,
    pads: Sequence[int] | None = None,
    ceil_mode: int = 0,
    count_include_pad: int = 0,
    dilations: Sequence[int] | None = None,
) -> np.ndarray:
    """ONNX ``AveragePool`` with explicit pads.

    Arguments as ``max_pool``. Each output is the sum of the window's cells
    divided by the number of window taps that lie inside the real input
    (``count_include_pad=0``) or inside the input plus the explicit pads
    (``count_include_pad=1``); the extra cells that ceil mode adds past the
    end pad are never counted. Returns float32 (N, C, *out).
    """
    x = _as_f32(x)
    geom = _geometry(x, "AveragePool", kernel_shape, strides, pads, dilations, ceil_mode)
    inv_counts = np.float32(1.0) / _window_counts(geom, bool(count_include_pad))
    return _window_reduce(x, geom, np.add, 0.0, inv_counts[0, 0])


def global_max_pool(x: np.ndarray) -> np.ndarray:
    """ONNX ``GlobalMaxPool``: (N, C, *spatial) -> (N, C, 1, ..., 1), float32."""
    x = _as_f32(x)
    nd = _check_spatial_input(x, "GlobalMaxPool")
    return x.max(axis=tuple(range(2, 2 + nd)), keepdims=True)


def global_average_pool(x: np.ndarray) -> np.ndarray:
    """ONNX ``GlobalAveragePool``: (N, C, *spatial) -> (N, C, 1, ..., 1), float32."""
    x = _as_f32(x)
    nd = _check_spatial_input(x, "GlobalAveragePool")
    return x.mean(axis=tuple(range(2, 2 + nd)), keepdims=True, dtype=np.float32)


# --------------------------------------------------------------------------


class _Geometry:
    """Per-axis window geometry of one pooling call (validated attributes)."""

    __slots__ = ("in_size", "kernel", "strides", "dilations", "pad_begin", "pad_end",
                 "out_size")

    def __init__(self, in_size, kernel, strides, dilations, pad_begin, pad_end, out_size):
        self.in_size = in_size
        self.kernel = kernel
        self.strides = strides
        self.dilations = dilations
        self.pad_begin = pad_begin
        self.pad_end = pad_end
        self.out_size = out_size


def _geometry(x, op, kernel_shape, strides, pads, dilations, ceil_mode) -> _Geometry:
    nd = _check_spatial_input(x, op)
    kernel = _tuple_attr(kernel_shape, nd, 1, "kernel_shape", op)
    strides = _tuple_attr(strides, nd, 1, "strides", op)
    dilations = _tuple_attr(dilations, nd, 1, "dilations", op)
    pads = _tuple_attr(pads, 2 * nd, 0, "pads", op)
    in_size = x.shape[2:]
    if min(kernel) < 1 or min(strides) < 1 or min(dilations) < 1 or min(pads) < 0:
        raise ValueError(
            f"{op}: kernel_shape {list(kernel)}, strides {list(strides)} and dilations "
            f"{list(dilations)} must be positive and pads {list(pads)} non-negative."
        )
    out_size = tuple(
        pool_output_size(in_size[i], kernel[i], strides[i], pads[i], pads[nd + i],
                         dilations[i], ceil_mode)
        for i in range(nd)
    )
    if min(out_size) < 1:
        raise ValueError(
            f"{op}: input spatial size {list(in_size)} with kernel {list(kernel)}, "
            f"strides {list(strides)}, dilations {list(dilations)} and pads {list(pads)} "
            f"gives output size {list(out_size)}; every size must be at least 1."
        )
    return _Geometry(in_size, kernel, strides, dilations, pads[:nd], pads[nd:], out_size)


def _window_reduce(x: np.ndarray, geom: _Geometry, combine: np.ufunc, pad_value: float,
                   scale: np.ndarray | None) -> np.ndarray:
    """Combine every window's taps with ``combine`` (padding = ``pad_value``),
    then multiply by ``scale`` (broadcast over the output's spatial axes) if
    given. Runs in (images, channels) chunks on the pool."""
    n, c = x.shape[:2]
    grid = _PhaseGrid(geom.in_size, geom.kernel, geom.strides, geom.dilations,
                      geom.pad_begin, geom.out_size)
    out = _arena.empty((n, c, *geom.out_size))
    stages = _stage_shapes(grid)
    chunks = _plan_chunks(n, c, 4 * grid.plane_size * (grid.n_phases + 1 + sum(stages)),
                          n * c * grid.grid * math.prod(geom.kernel))
    # The planes' padding cells keep pad_value across chunks.
    key = ("pool", geom.in_size, geom.kernel, geom.strides, geom.dilations, geom.pad_begin,
           geom.out_size, pad_value)

    # A max is exact in any order, so it goes axis by axis; a sum keeps the tap-by-tap order,
    # so that averages stay bit-identical to what earlier releases computed and saved.
    separable = combine is np.maximum

    def make_buffers(nb: int, cb: int) -> tuple[np.ndarray, ...]:
        planes = grid.new_planes((nb, cb), pad_value)
        if not separable:
            return planes, np.empty((nb, cb, grid.grid), dtype=np.float32)
        # Results laid out as the planes, one plane_size slot per (image, channel).
        return (planes, *(np.empty((count, nb * cb * grid.plane_size), dtype=np.float32)
                          for count in (*stages, 1)))

    buffers = ThreadBuffers(key, make_buffers)

    def run_chunk(chunk: tuple[int, int, int, int]) -> None:
        n0, n1, c0, c1 = chunk
        planes, *partial, acc = buffers(n1 - n0, c1 - c0)
        grid.fill(planes, x[n0:n1, c0:c1])
        if separable:
            _reduce_by_axis(grid, planes.reshape(grid.n_phases, -1), combine, partial, acc[0])
            result = grid.cropped(acc.reshape(n1 - n0, c1 - c0, -1)[..., :grid.grid])
        else:
            for t, phase, off in grid.taps:
                tap_in = grid.tap_input(planes, phase, off)
                if t == 0:
                    np.copyto(acc, tap_in)
                else:
                    combine(acc, tap_in, out=acc)
            result = grid.cropped(acc)
        dst = out[n0:n1, c0:c1]
        if scale is None:
            np.copyto(dst, result)
        else:
            np.multiply(result, scale, out=dst)

    run_chunked(chunks, run_chunk)
    return out


def _stage_shapes(grid: _PhaseGrid) -> list[int]:
    """Per axis reduced before axis 0 (the last axis first), how many partial results it makes:
    one per stride phase of the axes not reduced yet."""
    phases = [len({a for a, _ in taps}) for taps in grid.axis_taps]
    return [math.prod(phases[:axis]) for axis in range(len(phases) - 1, 0, -1)]


def _reduce_by_axis(grid: _PhaseGrid, planes: np.ndarray, combine: np.ufunc,
                    partial: list[np.ndarray], acc: np.ndarray) -> None:
    """``acc`` = ``combine`` over every kernel tap of the planes, one axis at a time.

    ``planes`` (n_phases, chunk * plane_size), ``partial`` the buffers of ``_stage_shapes`` and
    ``acc`` hold one plane_size slot per (image, channel) of the chunk, flat: every pass is one
    contiguous NumPy call over all of the chunk's slots, the garbage cells between them
    included (on the 2-core dev VM twice as fast as a call over (channel, cell) views, which
    pays for every row). Reducing axis j combines, per phase tuple of the axes before j, the
    planes (or the previous step's results) of each phase along j shifted by the tap's shift
    along j: kernel_j - 1 passes. Max is exact in any order; a sum differs from the tap-by-tap
    order by float32 rounding.
    """
    nd = len(grid.out_size)
    slots = acc.shape[-1] // grid.plane_size
    # Cells each step must make right in a slot: what the later steps' taps read.
    reach = [max(sh for _, sh in taps) * step for taps, step in zip(grid.axis_taps, grid.pstride)]
    sources = {phase: planes[j] for phase, j in grid.phase_index.items()}
    for axis in range(nd - 1, -1, -1):
        step = grid.pstride[axis]
        length = (slots - 1) * grid.plane_size + grid.grid + sum(reach[:axis])
        prefixes = sorted({phase[:axis] for phase in sources})
        results = {}
        for i, prefix in enumerate(prefixes):
            dst = acc if axis == 0 else partial[nd - 1 - axis][i]
            views = [sources[(*prefix, a)][sh * step:sh * step + length]
                     for a, sh in grid.axis_taps[axis]]
            if len(views) == 1:
                np.copyto(dst[:length], views[0])
            else:
                combine(views[0], views[1], out=dst[:length])
                for view in views[2:]:
                    combine(dst[:length], view, out=dst[:length])
            results[prefix] = dst
        sources = results


def _is_tiling(geom: _Geometry) -> bool:
    """Whether the windows tile the input: kernel == stride, no padding or
    dilation, and every window inside the input (e.g. VGG's 2x2 stride 2)."""
    return all(k == s and d == 1 and pb == pe == 0 and o * k <= size
               for k, s, d, pb, pe, o, size in zip(geom.kernel, geom.strides, geom.dilations,
                                                    geom.pad_begin, geom.pad_end,
                                                    geom.out_size, geom.in_size))


def _max_pool_tiling(x: np.ndarray, geom: _Geometry) -> np.ndarray:
    """Max pool of non-overlapping windows: per axis, ``np.maximum`` over the
    kernel's strided views of the input, with no padded copy (two passes for
    2x2 against the general path's four plus a fill). Chunks of (images,
    channels) run on the pool."""
    n, c = x.shape[:2]
    out = _arena.empty((n, c, *geom.out_size))
    chunks = _plan_chunks(n, c, 8 * math.prod(geom.in_size), x.size)
    reduced = [axis for axis, k in enumerate(geom.kernel) if k > 1]
    crop = tuple(slice(0, o * k) for o, k in zip(geom.out_size, geom.kernel))

    def run_chunk(chunk: tuple[int, int, int, int]) -> None:
        n0, n1, c0, c1 = chunk
        dst = out[n0:n1, c0:c1]
        cur = x[(slice(n0, n1), slice(c0, c1), *crop)]
        if not reduced:
            np.copyto(dst, cur)
        for axis in reduced:
            k = geom.kernel[axis]
            lead = (slice(None),) * (2 + axis)
            taps = [cur[(*lead, slice(j, None, k))] for j in range(k)]
            # The last reduced axis writes straight into the output.
            cur = np.maximum(taps[0], taps[1], out=dst if axis == reduced[-1] else None)
            for tap in taps[2:]:
                np.maximum(cur, tap, out=cur)

    run_chunked(chunks, run_chunk)
    return out


def _window_counts(geom: _Geometry, include_pad: bool) -> np.ndarray:
    """Divisor per output cell: window taps inside the counted region.

    The counted region is the real input, or the input plus explicit pads with
    ``include_pad``. It is a box, so the count is a product of per-axis counts
    (broadcast to the output's spatial shape, with leading N and C axes of 1).
    """
    nd = len(geom.out_size)
    counts = np.ones((1, 1) + (1,) * nd, dtype=np.float32)
    for i in range(nd):
        if include_pad:
            lo, hi = -geom.pad_begin[i], geom.in_size[i] + geom.pad_end[i]
        else:
            lo, hi = 0, geom.in_size[i]
        # Tap k of output o reads base + k * d; the taps inside [lo, hi) are a run of k, counted
        # in closed form: an (out x kernel) table would be the run's largest array for big kernels.
        base = np.arange(geom.out_size[i]) * geom.strides[i] - geom.pad_begin[i]
        d, taps = geom.dilations[i], geom.kernel[i]
        first = np.clip(-((base - lo) // d), 0, taps)  # ceil((lo - base) / d)
        stop = np.clip(-((base - hi) // d), 0, taps)  # ceil((hi - base) / d)
        per_axis = (stop - first).astype(np.float32)
        shape = [1] * (2 + nd)
        shape[2 + i] = geom.out_size[i]
        counts = counts * per_axis.reshape(shape)
    # A window with no counted tap only happens for pads >= kernel (invalid in
    # ONNX); divide its zero sum by 1 rather than warn and return NaN.
    return np.maximum(counts, 1.0)
