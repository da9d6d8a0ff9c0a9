"""Fields and arithmetic shared by every sliding-window layer (convolutions and pooling)."""
from __future__ import annotations

import dataclasses
from typing import Any

from models.errors import ConfigError
from models.fields import param
from models.geometry import PADDING_MODES, RFStep, resolve_pads, span, window_count
from models.layers.base import (AXIS_NAMES, LayerSpec, Shape, as_axes, as_bool, as_choice,
                                as_int, check_at_least)


def rank_field() -> Any:
    """Spatial axes (1 signal, 2 image, 3 volume): chosen in the palette, not edited later."""
    return dataclasses.field(default=2)


def kernel_field(default: int = 3) -> Any:
    return param(default, "Kernel size", "How many pixels the window covers along each axis.",
                 per_axis=True, minimum=1, maximum=63, unit="px")


def stride_field(default: int = 1) -> Any:
    return param(default, "Stride", "How far the window moves between outputs; 2 halves the size.",
                 per_axis=True, minimum=1, maximum=32, unit="px")


def padding_field(default: str = "same") -> Any:
    return param(default, "Padding",
                 "valid: no padding; same: pad so the output is ceil(input / stride); "
                 "explicit: the pads below.", choices=PADDING_MODES)


def pads_field() -> Any:
    return param(0, "Pads", "Zeros added before and after the input along each axis "
                 "(used when padding is explicit).", per_side=True, minimum=0, maximum=64, unit="px",
                 used_when=("padding", "explicit"))


def dilation_field() -> Any:
    return param(1, "Dilation", "Spacing between kernel taps (atrous); widens the window "
                 "without more weights.", per_axis=True, minimum=1, maximum=32)


def bias_field(default: bool = True) -> Any:
    return param(default, "Bias", "Add a learned constant to every output channel.")


def normalise_window(spec: LayerSpec) -> None:
    """Normalise rank, kernel_size, stride, padding, pads and dilation of a windowed spec."""
    as_int(spec, "rank")
    rank = spec.rank  # type: ignore[attr-defined]
    if rank not in (1, 2, 3):
        raise ConfigError(f"rank must be 1, 2 or 3, got {rank}", field="rank")
    for name in ("kernel_size", "stride", "dilation"):
        as_axes(spec, name, rank)
    as_choice(spec, "padding", PADDING_MODES)
    as_axes(spec, "pads", rank, per_side=True)


def normalise_flags(spec: LayerSpec, ints: tuple[str, ...] = (), bools: tuple[str, ...] = ()) -> None:
    for name in ints:
        as_int(spec, name)
    for name in bools:
        as_bool(spec, name)


def window_geometry(spec: Any, in_shape: Shape, *, dilation: tuple[int, ...] | None = None,
                    ceil_mode: bool = False, pool: bool = False) -> tuple[Shape, tuple[int, ...]]:
    """(output spatial size, explicit pads) of the spec's window over in_shape = (C, *spatial).

    Raises ConfigError naming the field when a window does not fit or pads are out of range.
    """
    kernel, stride = spec.kernel_size, spec.stride
    dil = dilation if dilation is not None else spec.dilation
    check_at_least("kernel_size", kernel, 1)
    check_at_least("stride", stride, 1)
    check_at_least("dilation", dil, 1)
    check_at_least("pads", spec.pads, 0, "padding cannot be negative")
    spatial = tuple(in_shape[1:])
    rank = len(spatial)
    pads = resolve_pads(spec.padding, spec.pads, spatial, kernel, stride, dil)
    names = AXIS_NAMES[rank]
    out = []
    for axis in range(rank):
        begin, end = pads[axis], pads[axis + rank]
        where = f" along the {names[axis]}" if rank > 1 else ""
        if pool and max(begin, end) >= kernel[axis]:
            raise ConfigError(f"pads of {max(begin, end)}{where} must be smaller than the kernel "
                              f"({kernel[axis]}); lower the padding or widen the kernel", field="pads")
        padded = spatial[axis] + begin + end
        extent = span(kernel[axis], dil[axis])
        if extent > padded:
            if dil[axis] > 1:
                raise ConfigError(
                    f"kernel {kernel[axis]} with dilation {dil[axis]} spans {extent} pixels{where}, "
                    f"but the padded input is {padded} wide; lower the dilation or add padding",
                    field="dilation")
            raise ConfigError(
                f"kernel {kernel[axis]} is larger than the padded input{where} ({padded} pixels); "
                f"use a smaller kernel, add padding, or use a larger input", field="kernel_size")
        count = window_count(spatial[axis], kernel[axis], stride[axis], begin, end, dil[axis],
                             ceil_mode)
        if pool and dil[axis] > 1:
            _check_windows_see_input(spatial[axis], kernel[axis], stride[axis], begin, dil[axis],
                                     count, where)
        out.append(count)
    return tuple(out), pads


def _check_windows_see_input(size: int, kernel: int, stride: int, pad_begin: int, dilation: int,
                             count: int, where: str) -> None:
    """Raise ConfigError when a dilated pooling window's taps all fall in the padding.

    Such a window has no value to pool (runtimes disagree on what it gives). Without dilation,
    pads smaller than the kernel already rule it out.
    """
    for index in range(count):
        start = index * stride - pad_begin
        if not any(0 <= start + tap * dilation < size for tap in range(kernel)):
            raise ConfigError(f"output {index + 1}{where} pools only padding: its {kernel} taps, "
                              f"{dilation} apart, all miss the {size}-pixel input; lower the "
                              f"dilation or the padding", field="dilation")


def window_rf(spec: Any, pads: tuple[int, ...], dilation: tuple[int, ...] | None = None,
              transposed: bool = False) -> tuple[RFStep, ...]:
    """One RFStep per axis for the spec's window."""
    dil = dilation if dilation is not None else spec.dilation
    return tuple(RFStep(span(k, d), s, p, transposed)
                 for k, d, s, p in zip(spec.kernel_size, dil, spec.stride, pads))


def axes_text(values: tuple[int, ...]) -> str:
    """3 for (3, 3), 3x5 for (3, 5)."""
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def check_channels(in_channels: int, groups: int, out_channels: int) -> None:
    """Raise ConfigError unless both channel counts divide by groups."""
    check_at_least("groups", groups, 1)
    if in_channels % groups:
        fits = [g for g in range(1, in_channels + 1) if in_channels % g == 0 and out_channels % g == 0]
        raise ConfigError(f"the input's {in_channels} channels must be divisible by groups, "
                          f"got groups={groups}; choose one of {', '.join(map(str, fits))}",
                          field="groups")
    if out_channels % groups:
        fits = [g for g in range(1, out_channels + 1) if in_channels % g == 0 and out_channels % g == 0]
        raise ConfigError(f"the number of filters must be divisible by groups, got groups={groups}, "
                          f"out_channels={out_channels}; choose groups among "
                          f"{', '.join(map(str, fits))}", field="groups")
