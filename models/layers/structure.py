"""Flatten, fully connected (dense) and batch normalisation."""
from __future__ import annotations

import math
from dataclasses import dataclass

from models.errors import ConfigError
from models.fields import param
from models.geometry import RFStep
from models.layers.base import (LayerInfo, LayerSpec, Shape, as_float, as_int, check_at_least,
                                describe_shape, register)
from models.layers.shape_ops import flatten_shape
from models.layers.window import bias_field, normalise_flags


@register
@dataclass(frozen=True)
class Flatten(LayerSpec):
    """Everything from `axis` on as one axis (ONNX Flatten; the batch is axis 0): with axis 1,
    (C, *spatial) -> (C * prod(spatial),), channel-major."""
    category = "Structure"
    description = "Lays all channels and positions out as one vector for dense layers."

    axis: int = param(1, "Axis", "Flatten from this axis on (the batch is axis 0; 1 = "
                      "everything).", minimum=-4, maximum=4)

    def __post_init__(self) -> None:
        as_int(self, "axis")

    def analyse(self, in_shape: Shape) -> LayerInfo:
        out = flatten_shape(in_shape, self.axis)
        steps = (tuple(RFStep(w, w) for w in in_shape[1:]),) if len(in_shape) > 1 else ()
        return LayerInfo(output_shape=out, rf_steps=steps)


@register
@dataclass(frozen=True)
class Dense(LayerSpec):
    """Fully connected: every output unit sees every input feature. Weights (units, features)."""
    category = "Structure"
    description = "Fully connected: each unit weighs every input value."

    units: int = param(10, "Units", "Output features (classes, for a last layer).",
                       minimum=1, maximum=100000)
    bias: bool = bias_field()

    def __post_init__(self) -> None:
        normalise_flags(self, ints=("units",), bools=("bias",))

    def analyse(self, in_shape: Shape) -> LayerInfo:
        check_at_least("units", self.units, 1)
        if len(in_shape) != 1:
            raise ConfigError(f"Dense needs a flat input, but gets {describe_shape(in_shape)}; "
                              f"insert a Flatten (or a global pooling and a Flatten) before it")
        shapes = {"W": (self.units, in_shape[0])}
        if self.bias:
            shapes["B"] = (self.units,)
        return LayerInfo(output_shape=(self.units,), param_shapes=shapes,
                         macs=self.units * in_shape[0])

    def summary(self) -> str:
        return f"{self.units} units"


@register
@dataclass(frozen=True)
class BatchNorm(LayerSpec):
    """Inference-form batch normalisation: scale * (x - mean) / sqrt(var + eps) + bias per channel.

    scale and bias are learned parameters; mean and var are stored statistics (buffers).
    """
    category = "Normalisation"
    description = "Normalises each channel with stored statistics, then scales and shifts it."

    epsilon: float = param(1e-5, "Epsilon", "Added to the variance so it is never divided by zero.",
                           minimum=1e-12, maximum=1.0, step=1e-5)

    def __post_init__(self) -> None:
        as_float(self, "epsilon")

    @property
    def short_name(self) -> str:
        return "bn"

    def analyse(self, in_shape: Shape) -> LayerInfo:
        if self.epsilon <= 0:
            raise ConfigError(f"epsilon must be positive, got {self.epsilon:g}", field="epsilon")
        channels = (in_shape[0],)
        return LayerInfo(output_shape=tuple(in_shape),
                         param_shapes={"scale": channels, "bias": channels},
                         buffer_shapes={"mean": channels, "var": channels},
                         macs=math.prod(in_shape))
