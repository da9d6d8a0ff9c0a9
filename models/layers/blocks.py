"""Blocks: layers that hold a small inner stack (depthwise-separable, residual, gated/GLU)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from models.errors import ConfigError
from models.fields import param
from models.layers.base import (LayerInfo, LayerSpec, Shape, as_choice, describe_shape, prefixed,
                                register, require_rank)
from models.layers.conv import Conv, DepthwiseConv, PointwiseConv, conv_info, filters_field
from models.layers.window import (axes_text, bias_field, dilation_field, kernel_field,
                                  normalise_flags, normalise_window, pads_field, padding_field,
                                  rank_field, stride_field)
from models.layers.activation import ReLU


@register
@dataclass(frozen=True)
class SeparableConv(LayerSpec):
    """Depthwise convolution, then a pointwise (1x1) one: MobileNet's building block.

    The bias, when on, is the pointwise one (as in Keras' SeparableConv).
    """
    category = "Efficient"
    description = "A depthwise filter per channel, then a 1x1 mix: a fraction of a conv's weights."

    rank: int = rank_field()
    out_channels: int = filters_field(32)
    kernel_size: tuple[int, ...] = kernel_field()
    stride: tuple[int, ...] = stride_field()
    padding: str = padding_field()
    pads: tuple[int, ...] = pads_field()
    dilation: tuple[int, ...] = dilation_field()
    depth_multiplier: int = param(1, "Depth multiplier", "Depthwise outputs per input channel.",
                                  minimum=1, maximum=64)
    bias: bool = bias_field(False)

    def __post_init__(self) -> None:
        normalise_window(self)
        normalise_flags(self, ints=("out_channels", "depth_multiplier"), bools=("bias",))

    @property
    def type_name(self) -> str:
        return f"SeparableConv{self.rank}D"

    @property
    def short_name(self) -> str:
        return "sepconv"

    def parts(self) -> tuple[DepthwiseConv, PointwiseConv]:
        """The two inner layers, as specs, in order."""
        return (DepthwiseConv(rank=self.rank, depth_multiplier=self.depth_multiplier,
                              kernel_size=self.kernel_size, stride=self.stride,
                              padding=self.padding, pads=self.pads, dilation=self.dilation,
                              bias=False),
                PointwiseConv(rank=self.rank, out_channels=self.out_channels, bias=self.bias))

    def analyse(self, in_shape: Shape) -> LayerInfo:
        require_rank(self, in_shape, self.rank)
        depthwise, pointwise = self.parts()
        first = depthwise.analyse(in_shape)
        second = pointwise.analyse(first.output_shape)
        kernel = math.prod(self.kernel_size)
        return LayerInfo(output_shape=second.output_shape,
                         param_shapes={**prefixed("depthwise", first.param_shapes),
                                       **prefixed("pointwise", second.param_shapes)},
                         macs=first.macs + second.macs, rf_steps=first.rf_steps,
                         inner=(first, second),
                         plain_params=in_shape[0] * self.out_channels * kernel
                         + self.bias * self.out_channels)

    def summary(self) -> str:
        return f"{self.out_channels} filters {axes_text(self.kernel_size)} dw+pw"


def _default_body() -> tuple[LayerSpec, ...]:
    return (Conv(out_channels=16), ReLU(), Conv(out_channels=16))


@register
@dataclass(frozen=True)
class Residual(LayerSpec):
    """x + body(x), the shortcut either the identity or a strided 1x1 projection (no bias)."""
    category = "Structure"
    description = "Adds the block's input to its output, so the body learns a correction."

    body: tuple[LayerSpec, ...] = dataclasses.field(default_factory=_default_body)
    shortcut: str = param("identity", "Shortcut", "identity adds the input as it is; projection "
                          "passes it through a 1x1 convolution to match the body's shape.",
                          choices=("identity", "projection"))

    def __post_init__(self) -> None:
        body = self.body
        if not isinstance(body, (list, tuple)) or not body:
            raise ConfigError("a residual block needs a body of at least one layer", field="body")
        object.__setattr__(self, "body", tuple(
            b if isinstance(b, LayerSpec) else LayerSpec.from_dict(b) for b in body))
        as_choice(self, "shortcut", ("identity", "projection"))

    @property
    def short_name(self) -> str:
        return "res"

    def analyse(self, in_shape: Shape) -> LayerInfo:
        infos, shapes, steps, macs = analyse_inner(self.body, in_shape, "body")
        out = infos[-1].output_shape
        attrs: dict[str, Any] = {}
        if self.shortcut == "identity":
            if tuple(out) != tuple(in_shape):
                raise ConfigError(
                    f"the body gives {describe_shape(out)} but the identity shortcut gives "
                    f"{describe_shape(in_shape)}; set shortcut to projection, or make the body keep "
                    f"the input's shape", field="shortcut")
        else:
            attrs["strides"] = projection_strides(in_shape, out)
            shapes["shortcut.W"] = (out[0], in_shape[0]) + (1,) * (len(in_shape) - 1)
            macs += math.prod(out) * in_shape[0]
        return LayerInfo(output_shape=out, param_shapes=shapes, macs=macs, rf_steps=steps,
                         attrs=attrs, inner=tuple(infos))

    def summary(self) -> str:
        return f"{len(self.body)} layers + {self.shortcut}"


def analyse_inner(body: tuple[LayerSpec, ...], in_shape: Shape, prefix: str
                  ) -> tuple[list[LayerInfo], dict[str, tuple[int, ...]], tuple, int]:
    """Analyse a block's inner layers in order: (infos, prefixed weight shapes, rf steps, MACs)."""
    infos, shapes, steps, macs = [], {}, (), 0
    shape = tuple(in_shape)
    for i, spec in enumerate(body):
        try:
            info = spec.analyse(shape)
        except ConfigError as err:
            raise err.inside(f"{prefix}.{i}", f"in the {prefix}'s layer {i + 1} ({spec.type_name})")
        infos.append(info)
        shapes.update(prefixed(f"{prefix}.{i}", info.weight_shapes))
        steps += info.rf_steps
        macs += info.macs
        shape = info.output_shape
    return infos, shapes, steps, macs


def projection_strides(in_shape: Shape, out_shape: Shape) -> tuple[int, ...]:
    """The strides of a 1x1 convolution that maps in_shape's spatial size onto out_shape's."""
    if len(in_shape) != len(out_shape) or len(in_shape) < 2:
        raise ConfigError(f"a projection cannot map {describe_shape(in_shape)} onto the body's "
                          f"{describe_shape(out_shape)}; keep the body's spatial axes", field="shortcut")
    strides = []
    for have, want in zip(in_shape[1:], out_shape[1:]):
        stride = -(-have // want)
        if -(-have // stride) != want:
            raise ConfigError(f"no strided 1x1 projection maps {describe_shape(in_shape)} onto the "
                              f"body's {describe_shape(out_shape)}; make the body's size a whole "
                              f"fraction of the input's", field="shortcut")
        strides.append(stride)
    return tuple(strides)


@register
@dataclass(frozen=True)
class Gated(LayerSpec):
    """Gated convolution (GLU): conv_a(x) * sigmoid(conv_b(x)), optionally plus x.

    Both convolutions share the window settings; weights a.W, a.B, b.W, b.B.
    """
    category = "Structure"
    description = "One convolution's output, let through by a sigmoid gate from a second one."

    rank: int = rank_field()
    out_channels: int = filters_field()
    kernel_size: tuple[int, ...] = kernel_field()
    stride: tuple[int, ...] = stride_field()
    padding: str = padding_field()
    pads: tuple[int, ...] = pads_field()
    dilation: tuple[int, ...] = dilation_field()
    bias: bool = bias_field()
    residual: bool = param(False, "Residual", "Add the block's input to its output (the shapes "
                           "must then agree).")

    def __post_init__(self) -> None:
        normalise_window(self)
        normalise_flags(self, ints=("out_channels",), bools=("bias", "residual"))

    @property
    def type_name(self) -> str:
        return f"Gated{self.rank}D"

    @property
    def short_name(self) -> str:
        return "glu"

    def analyse(self, in_shape: Shape) -> LayerInfo:
        require_rank(self, in_shape, self.rank)
        a = conv_info(in_shape, self, self.out_channels, 1, self.bias, "a.")
        b = conv_info(in_shape, self, self.out_channels, 1, self.bias, "b.")
        if self.residual and tuple(a.output_shape) != tuple(in_shape):
            raise ConfigError(f"the residual adds the input {describe_shape(in_shape)} to the gated "
                              f"output {describe_shape(a.output_shape)}; keep filters at "
                              f"{in_shape[0]}, stride 1 and same padding, or turn residual off",
                              field="residual")
        return LayerInfo(output_shape=a.output_shape,
                         param_shapes={**a.param_shapes, **b.param_shapes}, macs=a.macs + b.macs,
                         rf_steps=a.rf_steps, attrs=a.attrs)

    def summary(self) -> str:
        return (f"{self.out_channels} filters {axes_text(self.kernel_size)}"
                + (" +x" if self.residual else ""))
