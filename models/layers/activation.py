"""Element-wise activations, element-wise math (Unary) and softmax: the shape passes through
unchanged. Softmax and LogSoftmax normalise along one axis; the rest act on each value alone
(PReLU with a learned slope that broadcasts over the sample)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from models.errors import ConfigError
from models.fields import param
from models.geometry import RFStep
from models.layers.base import (LayerInfo, LayerSpec, Shape, as_bool, as_choice, as_float,
                                describe_shape, register)


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


def _check_axis(spec: LayerSpec, in_shape: Shape) -> int:
    """The spec's `axis` counted from 0 (the batch) on a batch of in_shape; ConfigError if it is
    the batch or outside the tensor."""
    axis: int = spec.axis  # type: ignore[attr-defined]
    rank = len(in_shape) + 1
    names = "(N, " + ", ".join(["C"] + [f"D{i}" for i in range(1, rank - 1)]) + ")"
    if not -rank <= axis < rank:
        raise ConfigError(f"axis {axis} is outside the input's {rank} axes {names}; use an axis "
                          f"from {-rank + 1} to {rank - 1}", field="axis")
    normal = axis + rank if axis < 0 else axis
    if normal == 0:
        raise ConfigError(f"axis {axis} is the batch axis of {names}, which a layer never mixes; "
                          f"use 1 for the channels or a later axis", field="axis")
    return normal


@dataclass(frozen=True)
class _AxisSoftmax(LayerSpec):
    """Normalises along one axis, counted the ONNX way (0 = batch, 1 = channels, -1 = last)."""
    category = "Activation"

    axis: int = param(1, "Axis", "The axis the probabilities sum over: 1 = channels (classes), "
                      "-1 = the last axis; the batch (0) cannot be used.", minimum=-4, maximum=4)

    def __post_init__(self) -> None:
        if isinstance(self.axis, bool) or not isinstance(self.axis, int):
            raise ConfigError(f"axis must be a whole number, got {self.axis!r}", field="axis")

    def analyse(self, in_shape: Shape) -> LayerInfo:
        """Position-wise over channels. Along a spatial axis every output reads the whole axis:
        one step of kernel = the axis' size and stride 1 there (output 0 reads inputs 0..W-1, the
        jump is unchanged), and kernel 1 along the other axes."""
        axis = _check_axis(self, in_shape)
        spatial = in_shape[1:]
        steps = () if axis == 1 else (tuple(RFStep(w, 1) if i == axis - 2 else RFStep(1, 1)
                                            for i, w in enumerate(spatial)),)
        return LayerInfo(output_shape=tuple(in_shape), rf_steps=steps, attrs={"axis": axis})

    def summary(self) -> str:
        return "" if self.axis == 1 else f"axis {self.axis}"


@register
@dataclass(frozen=True)
class Softmax(_AxisSoftmax):
    """exp(x) / sum(exp(x)) along `axis` (default the channels: the classes of a flat output)."""
    description = "Turns the values along one axis (the class scores) into probabilities."


@register
@dataclass(frozen=True)
class LogSoftmax(_AxisSoftmax):
    """log(softmax(x)) along `axis`: x - max - log(sum(exp(x - max)))."""
    description = "The logarithm of Softmax along one axis, computed without overflow."


@register
@dataclass(frozen=True)
class Clip(_Activation):
    """min(max(x, min), max); a bound that is switched off does not clip (ReLU6 by default).

    Bounds are stored as flags and finite floats so project files never hold infinities.
    """
    description = "Clamps every value into [min, max]: ReLU6 by default."

    has_min: bool = param(True, "Lower bound", "Whether values below the minimum are raised to it.")
    min: float = param(0.0, "Minimum", "The smallest value let through.", minimum=-1e6,
                       maximum=1e6, step=0.5, used_when=("has_min", True))
    has_max: bool = param(True, "Upper bound", "Whether values above the maximum are lowered "
                          "to it.")
    max: float = param(6.0, "Maximum", "The largest value let through.", minimum=-1e6,
                       maximum=1e6, step=0.5, used_when=("has_max", True))

    def __post_init__(self) -> None:
        for name in ("has_min", "has_max"):
            as_bool(self, name)
        for name in ("min", "max"):
            as_float(self, name)

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        """(low, high), None where that side is not clipped."""
        return (self.min if self.has_min else None, self.max if self.has_max else None)

    def analyse(self, in_shape: Shape) -> LayerInfo:
        if self.has_min and self.has_max and self.min > self.max:
            raise ConfigError(f"min {self.min:g} is above max {self.max:g}, so every output "
                              f"would be {self.max:g}; lower min or raise max", field="min")
        return LayerInfo(output_shape=tuple(in_shape))

    def summary(self) -> str:
        low, high = self.bounds
        low_text = "-inf" if low is None else f"{low:g}"
        return f"[{low_text}, {'inf' if high is None else f'{high:g}'}]"


@register
@dataclass(frozen=True)
class HardSigmoid(_Activation):
    """max(0, min(1, alpha * x + beta))."""
    description = "A piecewise-linear sigmoid: a ramp from 0 to 1."

    alpha: float = param(0.2, "Slope", "The slope of the ramp.", minimum=-100.0, maximum=100.0,
                         step=0.01)
    beta: float = param(0.5, "Offset", "The ramp's value at x = 0.", minimum=-100.0,
                        maximum=100.0, step=0.05)

    def __post_init__(self) -> None:
        as_float(self, "alpha")
        as_float(self, "beta")

    def summary(self) -> str:
        return f"alpha {self.alpha:g}, beta {self.beta:g}"


@register
@dataclass(frozen=True)
class HardSwish(_Activation):
    """x * max(0, min(1, x / 6 + 0.5)) (MobileNetV3)."""
    description = "x times a hard sigmoid of x: a cheap Swish."


@register
@dataclass(frozen=True)
class SiLU(_Activation):
    """x * sigmoid(x) (Swish with beta 1)."""
    description = "x times sigmoid(x), also called Swish."


@register
@dataclass(frozen=True)
class ELU(_Activation):
    """x for x >= 0, alpha * (exp(x) - 1) below."""
    description = "Like ReLU above zero, a smooth curve down to -alpha below."

    alpha: float = param(1.0, "Alpha", "The value negative inputs approach.", minimum=0.0,
                         maximum=100.0, step=0.1)

    def __post_init__(self) -> None:
        as_float(self, "alpha")

    def summary(self) -> str:
        return f"alpha {self.alpha:g}"


GELU_APPROXIMATIONS = ("none", "tanh")


@register
@dataclass(frozen=True)
class GELU(_Activation):
    """0.5 * x * (1 + erf(x / sqrt 2)); "tanh": 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    description = "x weighted by the chance a standard normal lies below it (transformers)."

    approximate: str = param("none", "Approximation", "none: the exact erf form; tanh: the "
                             "tanh formula some models were trained with.",
                             choices=GELU_APPROXIMATIONS)

    def __post_init__(self) -> None:
        as_choice(self, "approximate", GELU_APPROXIMATIONS)

    def summary(self) -> str:
        return "" if self.approximate == "none" else "tanh form"


UNARY_OPS = ("Erf", "Exp", "Log", "Sqrt", "Abs", "Neg", "Reciprocal", "Floor", "Ceil", "Softplus")
"""The element-wise math ops a Unary layer can be, by their ONNX op names."""


@register
@dataclass(frozen=True)
class Unary(_Activation):
    """One element-wise math function, named as its ONNX op (Softplus = log(1 + exp(x)))."""
    description = "One element-wise math function: exp, log, sqrt, erf, abs, ..."

    op: str = param("Exp", "Function", "The function applied to every value.", choices=UNARY_OPS)

    def __post_init__(self) -> None:
        as_choice(self, "op", UNARY_OPS)

    @property
    def type_name(self) -> str:
        return self.op

    @property
    def short_name(self) -> str:
        return self.op.lower()


@register
@dataclass(frozen=True)
class PReLU(LayerSpec):
    """x for x >= 0, slope * x below, with a learned slope (weight "slope").

    slope_shape None: one slope per channel, of shape (C, 1, ..., 1). Otherwise the slope's
    shape as ONNX gives it, right-aligned against the batch (N, C, ...) and broadcast onto it
    (it must not repeat the batch): () or (1,) share one slope, (C, 1, 1) is per channel.
    """
    category = "Activation"
    description = "Like LeakyReLU, with the slope below zero learned (per channel by default)."

    slope_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        shape = self.slope_shape
        if shape is None:
            return
        if not isinstance(shape, (list, tuple)) or any(
                isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape):
            raise ConfigError(f"slope_shape must be a list of sizes of at least 1, got {shape!r}",
                              field="slope_shape")
        object.__setattr__(self, "slope_shape", tuple(shape))

    def slope_for(self, in_shape: Shape) -> Shape:
        """The slope's shape on an input of sample shape in_shape."""
        if self.slope_shape is None:
            return (in_shape[0],) + (1,) * (len(in_shape) - 1)
        return self.slope_shape

    def analyse(self, in_shape: Shape) -> LayerInfo:
        slope = self.slope_for(in_shape)
        full = (1, *in_shape)
        aligned = full[len(full) - len(slope):] if slope else ()
        if len(slope) > len(full) or any(s not in (1, d) for s, d in zip(slope, aligned)) or (
                len(slope) == len(full) and slope[0] != 1):
            raise ConfigError(f"slope shape {describe_shape(slope)} does not broadcast onto the "
                              f"input (N, {', '.join(map(str, in_shape))}): right-aligned, each "
                              f"size must be 1 or the input's, and the batch 1; use per-channel "
                              f"slopes ({in_shape[0]}{', 1' * (len(in_shape) - 1)})",
                              field="slope_shape")
        return LayerInfo(output_shape=tuple(in_shape), param_shapes={"slope": slope},
                         macs=math.prod(in_shape))

    def summary(self) -> str:
        if self.slope_shape is None:
            return "per channel"
        return "shared" if math.prod(self.slope_shape) == 1 else \
            "slope " + "x".join(map(str, self.slope_shape))
