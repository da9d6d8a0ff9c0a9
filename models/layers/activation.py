"""Element-wise activations and softmax: the shape passes through unchanged."""
from __future__ import annotations

from dataclasses import dataclass

from models.fields import param
from models.layers.base import LayerInfo, LayerSpec, Shape, as_float, register


class _Activation(LayerSpec):
    category = "Activation"

    def analyse(self, in_shape: Shape) -> LayerInfo:
        return LayerInfo(output_shape=tuple(in_shape))


@register
@dataclass(frozen=True)
class ReLU(_Activation):
    """max(x, 0)."""
    description = "Keeps positive values, zeroes the rest."


@register
@dataclass(frozen=True)
class LeakyReLU(_Activation):
    """x for x >= 0, alpha * x below."""
    description = "Like ReLU, but lets a small slope through below zero."

    alpha: float = param(0.01, "Slope", "The slope for negative inputs.", minimum=0.0, maximum=1.0,
                         step=0.01)

    def __post_init__(self) -> None:
        as_float(self, "alpha")

    def summary(self) -> str:
        return f"alpha {self.alpha:g}"


@register
@dataclass(frozen=True)
class Sigmoid(_Activation):
    """1 / (1 + exp(-x))."""
    description = "Squashes every value into (0, 1)."


@register
@dataclass(frozen=True)
class Tanh(_Activation):
    """tanh(x)."""
    description = "Squashes every value into (-1, 1)."


@register
@dataclass(frozen=True)
class Softmax(_Activation):
    """exp(x) / sum(exp(x)) over the channel axis (the classes of a flat output)."""
    description = "Turns the channels (class scores) into probabilities that sum to 1."
