"""Local response normalisation (across channels) and instance normalisation (per sample and
channel, over the spatial axes). BatchNorm lives in models.layers.structure."""
from __future__ import annotations

import math
from dataclasses import dataclass

from models.errors import ConfigError
from models.fields import param
from models.geometry import RFStep
from models.layers.base import (LayerInfo, LayerSpec, Shape, as_float, as_int, describe_shape,
                                register)


@register
@dataclass(frozen=True)
class LRN(LayerSpec):
    """ONNX LRN: x / (bias + alpha / size * sum of x^2 over `size` neighbouring channels)^beta.

    The window covers channels c - floor((size-1)/2) .. c + ceil((size-1)/2), clipped at the
    ends. It mixes channels only, so it is position-wise. ONNX defines it for any rank and size,
    but onnxruntime (and onnx's reference) run only 4-D tensors (N, C, H, W) and odd sizes, so
    analyse asks for those: a model that passes it runs everywhere.
    """
    category = "Normalisation"
    description = "Divides each value by the energy of its neighbouring channels (AlexNet)."

    size: int = param(5, "Size", "How many neighbouring channels are summed.", minimum=1,
                      maximum=1000)
    alpha: float = param(1e-4, "Alpha", "The scale of the summed squares.", minimum=0.0,
                         maximum=10.0, step=1e-4)
    beta: float = param(0.75, "Beta", "The exponent of the divisor.", minimum=0.0,
                        maximum=10.0, step=0.05)
    bias: float = param(1.0, "Bias", "Added to the scaled sum before the power.", minimum=0.0,
                        maximum=100.0, step=0.1)

    def __post_init__(self) -> None:
        as_int(self, "size")
        for name in ("alpha", "beta", "bias"):
            as_float(self, name)

    def analyse(self, in_shape: Shape) -> LayerInfo:
        if self.size < 1 or self.size % 2 == 0:
            raise ConfigError(f"size must be an odd number of channels (a window centred on "
                              f"each channel), got {self.size}; use 5 as AlexNet does",
                              field="size")
        if len(in_shape) != 3:
            raise ConfigError(f"LRN needs an input (C, H, W), as onnxruntime runs it, but gets "
                              f"{describe_shape(in_shape)}; use it on 2-D feature maps")
        return LayerInfo(output_shape=tuple(in_shape))

    def summary(self) -> str:
        return f"size {self.size}"


@register
@dataclass(frozen=True)
class InstanceNorm(LayerSpec):
    """scale * (x - mean) / sqrt(var + epsilon) + bias, with mean and var of each sample's
    channel over all its spatial positions; scale and bias are learned per channel."""
    category = "Normalisation"
    description = "Normalises each channel of each sample over its positions, then scales it."

    epsilon: float = param(1e-5, "Epsilon", "Added to the variance so it is never divided by zero.",
                           minimum=1e-12, maximum=1.0, step=1e-5)

    def __post_init__(self) -> None:
        as_float(self, "epsilon")

    @property
    def short_name(self) -> str:
        return "in"

    def analyse(self, in_shape: Shape) -> LayerInfo:
        """Every output reads every position of its channel: one step of kernel = the axis' size
        and stride 1 per axis (the size stays, so does the jump)."""
        if self.epsilon <= 0:
            raise ConfigError(f"epsilon must be positive, got {self.epsilon:g}; use 1e-5",
                              field="epsilon")
        if len(in_shape) < 2:
            raise ConfigError(f"InstanceNorm needs spatial axes to normalise over, but gets a flat "
                              f"vector of {in_shape[0]} features; move it before the Flatten or "
                              f"use BatchNorm")
        channels = (in_shape[0],)
        return LayerInfo(output_shape=tuple(in_shape),
                         param_shapes={"scale": channels, "bias": channels},
                         macs=math.prod(in_shape),
                         rf_steps=(tuple(RFStep(w, 1) for w in in_shape[1:]),))
