"""SeparableConv: a depthwise and a pointwise convolution as one layer, MobileNet's building block.

Residual and gated (GLU) blocks are templates that insert grouped subgraphs (models.templates);
the block layers of older project files open as those (models.legacy_blocks).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from models.fields import param
from models.layers.base import LayerInfo, LayerSpec, Shape, prefixed, register, require_rank
from models.layers.conv import DepthwiseConv, PointwiseConv, filters_field
from models.layers.window import (axes_text, bias_field, dilation_field, kernel_field,
                                  normalise_flags, normalise_window, pads_field, padding_field,
                                  rank_field, stride_field)


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
