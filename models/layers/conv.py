"""Convolution specs: plain/grouped, depthwise, pointwise and transposed, in 1D, 2D and 3D.

What frameworks call convolution is cross-correlation: the kernel is not flipped.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from models.errors import ConfigError
from models.fields import param
from models.geometry import RFStep, span, transposed_size
from models.layers.base import LayerInfo, LayerSpec, Shape, as_axes, check_at_least, register, \
    require_rank
from models.layers.window import (axes_text, bias_field, check_channels, dilation_field,
                                  kernel_field, normalise_flags, normalise_window, pads_field,
                                  padding_field, rank_field, stride_field, window_geometry,
                                  window_rf)


def filters_field(default: int = 16) -> object:
    return param(default, "Filters", "Output channels: how many kernels the layer learns.",
                 minimum=1, maximum=4096)


def groups_field() -> object:
    return param(1, "Groups", "Split the channels into this many independent convolutions; "
                 "divides the weights by the same factor.", minimum=1, maximum=4096)


def conv_info(in_shape: Shape, spec: object, out_channels: int, groups: int, bias: bool,
              key: str = "") -> LayerInfo:
    """LayerInfo of a (grouped) convolution with the spec's window, weights under `key` + W/B."""
    in_channels = in_shape[0]
    check_at_least("out_channels", out_channels, 1)
    check_channels(in_channels, groups, out_channels)
    out_spatial, pads = window_geometry(spec, in_shape)
    kernel = spec.kernel_size  # type: ignore[attr-defined]
    shapes = {f"{key}W": (out_channels, in_channels // groups, *kernel)}
    if bias:
        shapes[f"{key}B"] = (out_channels,)
    taps = math.prod(kernel) * (in_channels // groups)
    return LayerInfo(output_shape=(out_channels, *out_spatial), param_shapes=shapes,
                     macs=math.prod(out_spatial) * out_channels * taps,
                     rf_steps=(window_rf(spec, pads),), attrs={"pads": pads, "group": groups},
                     plain_params=(in_channels * out_channels * math.prod(kernel) + bias * out_channels
                                   if groups > 1 else None))


@register
@dataclass(frozen=True)
class Conv(LayerSpec):
    """Convolution (cross-correlation) with stride, padding, dilation and groups."""
    category = "Convolution"
    description = "Slides learned kernels over the input; each filter gives one output channel."

    rank: int = rank_field()
    out_channels: int = filters_field()
    kernel_size: tuple[int, ...] = kernel_field()
    stride: tuple[int, ...] = stride_field()
    padding: str = padding_field()
    pads: tuple[int, ...] = pads_field()
    dilation: tuple[int, ...] = dilation_field()
    groups: int = groups_field()
    bias: bool = bias_field()

    def __post_init__(self) -> None:
        normalise_window(self)
        normalise_flags(self, ints=("out_channels", "groups"), bools=("bias",))

    @property
    def type_name(self) -> str:
        return f"Conv{self.rank}D"

    @property
    def short_name(self) -> str:
        return "conv"

    def analyse(self, in_shape: Shape) -> LayerInfo:
        require_rank(self, in_shape, self.rank)
        return conv_info(in_shape, self, self.out_channels, self.groups, self.bias)

    def summary(self) -> str:
        text = f"{self.out_channels} filters {axes_text(self.kernel_size)}"
        if max(self.stride) > 1:
            text += f" /{axes_text(self.stride)}"
        if max(self.dilation) > 1:
            text += f" dil {axes_text(self.dilation)}"
        if self.groups > 1:
            text += f" g{self.groups}"
        return text + f" {self.padding}"


@register
@dataclass(frozen=True)
class DepthwiseConv(LayerSpec):
    """One kernel (or `depth_multiplier` kernels) per input channel: groups = input channels."""
    category = "Efficient"
    description = "Filters each channel on its own; mixes no channels."

    rank: int = rank_field()
    depth_multiplier: int = param(1, "Depth multiplier", "Output channels per input channel.",
                                  minimum=1, maximum=64)
    kernel_size: tuple[int, ...] = kernel_field()
    stride: tuple[int, ...] = stride_field()
    padding: str = padding_field()
    pads: tuple[int, ...] = pads_field()
    dilation: tuple[int, ...] = dilation_field()
    bias: bool = bias_field()

    def __post_init__(self) -> None:
        normalise_window(self)
        normalise_flags(self, ints=("depth_multiplier",), bools=("bias",))

    @property
    def type_name(self) -> str:
        return f"DepthwiseConv{self.rank}D"

    @property
    def short_name(self) -> str:
        return "dwconv"

    def analyse(self, in_shape: Shape) -> LayerInfo:
        require_rank(self, in_shape, self.rank)
        check_at_least("depth_multiplier", self.depth_multiplier, 1)
        return conv_info(in_shape, self, in_shape[0] * self.depth_multiplier, in_shape[0], self.bias)

    def summary(self) -> str:
        text = f"x{self.depth_multiplier} {axes_text(self.kernel_size)}"
        if max(self.stride) > 1:
            text += f" /{axes_text(self.stride)}"
        return text + f" {self.padding}"


@register
@dataclass(frozen=True)
class PointwiseConv(LayerSpec):
    """A 1x1 convolution: mixes channels at every pixel, changes no spatial size."""
    category = "Efficient"
    description = "A 1x1 convolution: a dense layer applied at every pixel."

    rank: int = rank_field()
    out_channels: int = filters_field()
    bias: bool = bias_field()

    def __post_init__(self) -> None:
        normalise_flags(self, ints=("rank", "out_channels"), bools=("bias",))

    @property
    def type_name(self) -> str:
        return f"PointwiseConv{self.rank}D"

    @property
    def short_name(self) -> str:
        return "pwconv"

    # The window fields of a 1x1 convolution, for the shared arithmetic and the engine.
    @property
    def kernel_size(self) -> tuple[int, ...]:
        return (1,) * self.rank

    stride = dilation = kernel_size

    @property
    def padding(self) -> str:
        return "valid"

    @property
    def pads(self) -> tuple[int, ...]:
        return (0,) * (2 * self.rank)

    def analyse(self, in_shape: Shape) -> LayerInfo:
        require_rank(self, in_shape, self.rank)
        return conv_info(in_shape, self, self.out_channels, 1, self.bias)

    def summary(self) -> str:
        return f"{self.out_channels} filters 1x1"


@register
@dataclass(frozen=True)
class ConvTranspose(LayerSpec):
    """Transposed convolution: spreads each input pixel over a kernel-sized patch (upsampling)."""
    category = "Convolution"
    description = "Upsamples: each input pixel paints a weighted kernel into the output."

    rank: int = rank_field()
    out_channels: int = filters_field()
    kernel_size: tuple[int, ...] = kernel_field(2)
    stride: tuple[int, ...] = stride_field(2)
    padding: str = param("valid", "Padding", "Pixels cropped from the output: valid crops none, "
                         "same gives input x stride, explicit crops the pads below.",
                         choices=("valid", "same", "explicit"))
    pads: tuple[int, ...] = pads_field()
    output_padding: tuple[int, ...] = param(0, "Output padding", "Extra pixels added at the end of "
                                            "each axis to pick between output sizes; below stride.",
                                            per_axis=True, minimum=0, maximum=31, unit="px")
    dilation: tuple[int, ...] = dilation_field()
    groups: int = groups_field()
    bias: bool = bias_field()

    def __post_init__(self) -> None:
        normalise_window(self)
        as_axes(self, "output_padding", self.rank)
        normalise_flags(self, ints=("out_channels", "groups"), bools=("bias",))

    @property
    def type_name(self) -> str:
        return f"ConvTranspose{self.rank}D"

    @property
    def short_name(self) -> str:
        return "deconv"

    def resolved_pads(self) -> tuple[int, ...]:
        """Explicit pads; for `same`, the crop that makes the output input x stride."""
        if self.padding == "valid":
            return (0,) * (2 * self.rank)
        if self.padding == "explicit":
            return self.pads
        totals = [span(k, d) - s + op for k, d, s, op in
                  zip(self.kernel_size, self.dilation, self.stride, self.output_padding)]
        for total in totals:
            if total < 0:
                raise ConfigError("same padding needs a kernel span of at least the stride; "
                                  "widen the kernel or use valid padding", field="padding")
        return tuple(t // 2 for t in totals) + tuple(t - t // 2 for t in totals)

    def analyse(self, in_shape: Shape) -> LayerInfo:
        require_rank(self, in_shape, self.rank)
        for name in ("kernel_size", "stride", "dilation"):
            check_at_least(name, getattr(self, name), 1)
        check_at_least("pads", self.pads, 0, "padding cannot be negative")
        check_at_least("output_padding", self.output_padding, 0)
        check_at_least("out_channels", self.out_channels, 1)
        in_channels = in_shape[0]
        check_channels(in_channels, self.groups, self.out_channels)
        # ONNX allows output_padding below max(stride, dilation), but onnxruntime (and PyTorch
        # for most cases) require it below the stride: the stricter rule exports everywhere.
        for op, s in zip(self.output_padding, self.stride):
            if op >= s:
                raise ConfigError(f"output_padding {op} must be smaller than the stride ({s}); "
                                  f"lower it or raise the stride", field="output_padding")
        pads = self.resolved_pads()
        rank = self.rank
        out = tuple(transposed_size(w, k, s, pads[i], pads[i + rank], d, op) for i, (w, k, s, d, op)
                    in enumerate(zip(in_shape[1:], self.kernel_size, self.stride, self.dilation,
                                     self.output_padding)))
        if min(out) < 1:
            raise ConfigError(f"the pads crop the output to {axes_text(out)} pixels; lower the pads",
                              field="pads")
        shapes = {"W": (in_channels, self.out_channels // self.groups, *self.kernel_size)}
        if self.bias:
            shapes["B"] = (self.out_channels,)
        macs = math.prod(in_shape[1:]) * in_channels * (self.out_channels // self.groups) \
            * math.prod(self.kernel_size)
        steps = tuple(RFStep(span(k, d), s, p, True) for k, d, s, p in
                      zip(self.kernel_size, self.dilation, self.stride, pads))
        return LayerInfo(output_shape=(self.out_channels, *out), param_shapes=shapes, macs=macs,
                         rf_steps=(steps,), attrs={"pads": pads, "group": self.groups})

    def summary(self) -> str:
        return f"{self.out_channels} filters {axes_text(self.kernel_size)} x{axes_text(self.stride)}"
