"""A sliding window animated on a small grid, as data: the figures of Dumoulin & Visin's "A guide
to convolution arithmetic" (input, padding, the kernel moving over it, the output filling in).

One frame per output cell, in row-major order: the frame writes that cell, and the kernel's taps
cover the grid cells listed in it. The grid is the layer's input with its padding; a transposed
convolution is drawn as the direct convolution it equals: stride - 1 zeros inserted between input
cells, padded by span - 1 - pad on each side (negative: cropped), and a window moving by 1.

A real layer's input is usually far too large to watch, so `animate_layer` plays the layer's own
kernel, stride, padding and dilation on a small input (a few cells per axis).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from itertools import product
from typing import Sequence

import numpy as np

from models.geometry import same_pads, span, window_count
from models.layers import AvgPool, Conv, ConvTranspose, DepthwiseConv, LayerSpec, MaxPool, \
    PointwiseConv, Shape

ANIMATED = (Conv, DepthwiseConv, PointwiseConv, ConvTranspose, MaxPool, AvgPool)
# Inputs up to these sizes are animated as they are; larger ones shrink to a size from
# (SMALL_INPUT, SMALL_TRANSPOSED_INPUT) up. A transposed window spreads each cell over `stride`.
MAX_SMALL_INPUT, MAX_SMALL_TRANSPOSED_INPUT = 7, 4
SMALL_INPUT, SMALL_TRANSPOSED_INPUT = 5, 3
MAX_ANIMATED_AXES = 2       # a 3D layer is shown on its last two axes


class Cell(IntEnum):
    """What a grid cell holds."""
    INPUT = 0
    PADDING = 1
    INSERTED_ZERO = 2  # a zero a transposed convolution puts between input cells


@dataclass(frozen=True)
class AxisSettings:
    """One spatial axis of a sliding window, as the layer applies it (sizes in pixels).

    For a transposed convolution, pad_begin/pad_end crop its output and output_padding adds
    cells at the end; ceil_mode is pooling's partial last window.
    """
    size: int
    kernel: int
    stride: int = 1
    pad_begin: int = 0
    pad_end: int = 0
    dilation: int = 1
    transposed: bool = False
    output_padding: int = 0
    ceil_mode: bool = False


@dataclass(frozen=True)
class AxisPlan:
    """How one axis is laid out on the grid.

    kinds: the Cell of every grid cell; input_index: the input pixel in each grid cell, -1 for
    padding and inserted zeros; taps: grid offsets of the kernel taps from the window's first
    cell (0, D, 2D, ...); step: grid cells the window moves per output (1 when transposed);
    output_size: outputs along the axis; grid_pads: (begin, end) padding cells drawn around the
    input (for a transposed convolution the equivalent direct convolution's padding, which may
    be negative: that many cells of the zero-inserted input are cropped).
    """
    settings: AxisSettings
    kinds: tuple[Cell, ...]
    input_index: tuple[int, ...]
    taps: tuple[int, ...]
    step: int
    output_size: int
    grid_pads: tuple[int, int]

    @property
    def grid_size(self) -> int:
        return len(self.kinds)

    def window(self, output: int) -> tuple[int, ...]:
        """Grid cells the taps of output `output` cover along this axis."""
        return tuple(output * self.step + t for t in self.taps)


def plan_axis(settings: AxisSettings) -> AxisPlan:
    """The grid of one axis. Raises ValueError when the window gives no output."""
    s = settings
    if min(s.size, s.kernel, s.stride, s.dilation) < 1 or min(s.pad_begin, s.pad_end,
                                                             s.output_padding) < 0:
        raise ValueError(f"sizes must be positive and pads not negative: {s}")
    extent = span(s.kernel, s.dilation)
    if s.transposed:
        stretched = (s.size - 1) * s.stride + 1
        begin = extent - 1 - s.pad_begin
        end = extent - 1 - s.pad_end + s.output_padding
        grid = stretched + begin + end
        output, step = grid - extent + 1, 1
    else:
        stretched, begin, end = s.size, s.pad_begin, s.pad_end
        output = window_count(s.size, s.kernel, s.stride, s.pad_begin, s.pad_end, s.dilation,
                              s.ceil_mode)
        # Ceil mode's last window may reach past the end padding: those cells are padding too.
        grid = max(begin + s.size + end, (output - 1) * s.stride + extent)
        step = s.stride
    if output < 1:
        raise ValueError(f"a window spanning {extent} cells gives no output on {s}")
    kinds, index = [], []
    for g in range(grid):
        u = g - begin  # position in the (zero-inserted) input
        if not 0 <= u < stretched:
            kinds.append(Cell.PADDING)
            index.append(-1)
        elif s.transposed and u % s.stride:
            kinds.append(Cell.INSERTED_ZERO)
            index.append(-1)
        else:
            kinds.append(Cell.INPUT)
            index.append(u // s.stride if s.transposed else u)
    return AxisPlan(s, tuple(kinds), tuple(index), tuple(t * s.dilation for t in range(s.kernel)),
                    step, output, (begin, end))


@dataclass(frozen=True)
class Frame:
    """One step: the output cell written and the grid cells under the kernel's taps."""
    output: tuple[int, ...]
    covered: tuple[tuple[int, ...], ...]

    def window_bounds(self) -> tuple[tuple[int, int], ...]:
        """(first, last) grid cell of the window per axis, holes between taps included."""
        return tuple((min(c[a] for c in self.covered), max(c[a] for c in self.covered))
                     for a in range(len(self.output)))


@dataclass(frozen=True)
class ConvAnimation:
    """The frames of a window over a grid of one or two axes (see the module docstring)."""
    axes: tuple[AxisPlan, ...]

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return tuple(a.grid_size for a in self.axes)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(a.output_size for a in self.axes)

    @property
    def frame_count(self) -> int:
        return math.prod(self.output_shape)

    def kinds(self) -> np.ndarray:
        """(grid_shape) int8 array of Cell values: padding where any axis pads, an inserted
        zero where any axis inserts one (and none pads), input elsewhere."""
        grids = np.meshgrid(*(np.array(a.kinds, np.int8) for a in self.axes), indexing="ij")
        out = np.full(self.grid_shape, Cell.INPUT, np.int8)
        out[np.logical_or.reduce([g == Cell.INSERTED_ZERO for g in grids])] = Cell.INSERTED_ZERO
        out[np.logical_or.reduce([g == Cell.PADDING for g in grids])] = Cell.PADDING
        return out

    def frame(self, index: int) -> Frame:
        """Frame `index` (0 <= index < frame_count); IndexError otherwise."""
        if not 0 <= index < self.frame_count:
            raise IndexError(f"frame {index} of {self.frame_count}")
        output = tuple(int(i) for i in np.unravel_index(index, self.output_shape))
        windows = [plan.window(o) for plan, o in zip(self.axes, output)]
        return Frame(output, tuple(product(*windows)))


def build_animation(axes: Sequence[AxisSettings]) -> ConvAnimation:
    """The animation of a window with these per-axis settings (one or two axes).

    Raises ValueError when an axis gives no output or there are not 1-2 axes.
    """
    if not 1 <= len(axes) <= MAX_ANIMATED_AXES:
        raise ValueError(f"an animation has 1 or 2 axes, not {len(axes)}")
    return ConvAnimation(tuple(plan_axis(a) for a in axes))


@dataclass(frozen=True)
class LayerAnimation:
    """A layer's window played on a small input.

    animation: the frames; axes: the spatial axes of the layer shown (indices into its
    spatial shape); real_input/real_output: the layer's own sizes along those axes; small: whether the grid's input is smaller
    than the real one.
    """
    spec: LayerSpec
    animation: ConvAnimation
    axes: tuple[int, ...]
    real_input: tuple[int, ...]
    real_output: tuple[int, ...]

    @property
    def small(self) -> bool:
        return tuple(a.settings.size for a in self.animation.axes) != self.real_input


def _axis_settings(spec: LayerSpec, axis: int, size: int) -> AxisSettings:
    rank = spec.rank  # type: ignore[attr-defined]
    kernel = spec.kernel_size[axis]  # type: ignore[attr-defined]
    stride = spec.stride[axis]  # type: ignore[attr-defined]
    dilation = spec.dilation[axis]  # type: ignore[attr-defined]
    if isinstance(spec, ConvTranspose):
        pads = spec.resolved_pads()
        return AxisSettings(size, kernel, stride, pads[axis], pads[axis + rank], dilation,
                            transposed=True, output_padding=spec.output_padding[axis])
    if spec.padding == "same":  # type: ignore[attr-defined]
        begin, end = same_pads(size, kernel, stride, dilation)
    elif spec.padding == "valid":  # type: ignore[attr-defined]
        begin = end = 0
    else:
        begin, end = spec.pads[axis], spec.pads[axis + rank]  # type: ignore[attr-defined]
    return AxisSettings(size, kernel, stride, begin, end, dilation,
                        ceil_mode=bool(getattr(spec, "ceil_mode", False)))


def _small_size(spec: LayerSpec, axis: int, real: int) -> int:
    """The real size when it is small already; else the fewest cells from SMALL_INPUT up that
    give two outputs (so the stride shows), never more than the real size."""
    transposed = isinstance(spec, ConvTranspose)
    if real <= (MAX_SMALL_TRANSPOSED_INPUT if transposed else MAX_SMALL_INPUT):
        return real
    size = SMALL_TRANSPOSED_INPUT if transposed else SMALL_INPUT
    while size < real:
        try:
            if plan_axis(_axis_settings(spec, axis, size)).output_size >= 2:
                break
        except ValueError:
            pass
        size += 1
    return size


def animate_layer(spec: LayerSpec, in_shape: Shape) -> LayerAnimation:
    """The animation of a convolution or pooling layer on an input of shape (C, *spatial).

    The layer's kernel, stride, padding (same padding worked out for the small input),
    dilation and output padding are kept; the input shrinks to a few cells per axis. A 3D
    layer shows its last two axes. Raises ValueError for other layer kinds, and the layer's own
    ConfigError when its settings cannot work on in_shape.
    """
    if not isinstance(spec, ANIMATED):
        raise ValueError(f"{spec.type_name} has no sliding window to animate")
    info = spec.analyse(tuple(in_shape))  # raises the layer's own ConfigError
    spatial = tuple(in_shape[1:])
    axes = tuple(range(len(spatial)))[-MAX_ANIMATED_AXES:]
    settings = [_axis_settings(spec, a, _small_size(spec, a, spatial[a])) for a in axes]
    # The layer works on its real input and a small size is only kept where it gives outputs.
    return LayerAnimation(spec, build_animation(settings), axes, tuple(spatial[a] for a in axes),
                          tuple(info.output_shape[1:][a] for a in axes))
