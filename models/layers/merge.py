"""Merges: layers that read several graph inputs (Add/Sum, Sub, Mul, Div with ONNX broadcasting,
and Concat).

Every tensor of the graph carries the batch axis, so two graph inputs of a merge have the same
rank and broadcast axis by axis. An arithmetic merge may also read one stored operand, the weight
"C" (a bias, a scale, the 3 of HardSwish's x + 3), whose shape is given the ONNX way with the
batch axis counted and broadcasts right-aligned, as ONNX does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from models.errors import ConfigError
from models.fields import param
from models.layers.base import LayerInfo, LayerSpec, Shape, as_bool, describe_shape, register


def broadcast(shapes: list[Shape], what: str) -> Shape:
    """The ONNX multidirectional broadcast of full shapes (right-aligned, axis 0 the batch);
    ConfigError naming the clashing axis when they do not broadcast."""
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out = []
    for axis, sizes in enumerate(zip(*padded)):
        wide = list(dict.fromkeys(s for s in sizes if s != 1))
        if len(wide) > 1:
            listed = " and ".join(_full_text(s, rank) for s in shapes)
            raise ConfigError(f"{what} cannot broadcast {listed}: axis {axis} is "
                              f"{' vs '.join(map(str, wide))}; make the sizes equal, or "
                              f"1 where one operand should repeat", field="inputs")
        out.append(wide[0] if wide else 1)
    return tuple(out)


def _full_text(shape: Shape, rank: int) -> str:
    """A full shape as text, its batch axis shown as N (a stored operand's shape as it is)."""
    if len(shape) == rank and shape[0] == 1:
        return "(" + ", ".join(["N", *map(str, shape[1:])]) + ")"
    return describe_shape(shape)


@dataclass(frozen=True)
class _Arithmetic(LayerSpec):
    """An element-wise operation over its operands, broadcast as ONNX does."""
    category = "Merge"
    min_inputs = 1
    max_inputs: ClassVar[int | None] = None
    operands: ClassVar[int | None] = None  # exact operand count (inputs + stored), None: two or more
    symbol: ClassVar[str] = ""

    constant_shape: tuple[int, ...] | None = None
    constant_first: bool = False

    def __post_init__(self) -> None:
        if self.constant_shape is not None:
            shape = self.constant_shape
            if not isinstance(shape, (list, tuple)) or any(
                    isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape):
                raise ConfigError(f"constant_shape must be a list of sizes of at least 1, got "
                                  f"{shape!r}", field="constant_shape")
            object.__setattr__(self, "constant_shape", tuple(shape))
        as_bool(self, "constant_first")

    def analyse_inputs(self, in_shapes: tuple[Shape, ...]) -> LayerInfo:
        count = len(in_shapes) + (self.constant_shape is not None)
        want = self.operands
        if (want is not None and count != want) or count < 2:
            need = f"exactly {want}" if want else "at least 2"
            raise ConfigError(f"{self.type_name} needs {need} operands, got {count}; connect "
                              f"{'another input' if count < (want or 2) else 'fewer inputs'}",
                              field="inputs")
        ranks = {len(s) for s in in_shapes}
        if len(ranks) > 1:
            raise ConfigError(f"{self.type_name} joins tensors of different ranks ("
                              + ", ".join(describe_shape(s) for s in in_shapes)
                              + "); reshape one so both have the same axes", field="inputs")
        full = [(1, *s) for s in in_shapes]
        params = {}
        if self.constant_shape is not None:
            if len(self.constant_shape) > len(full[0]):
                raise ConfigError(f"the stored operand {describe_shape(self.constant_shape)} has "
                                  f"more axes than the input {describe_shape(full[0])}",
                                  field="constant_shape")
            if len(self.constant_shape) == len(full[0]) and self.constant_shape[0] != 1:
                raise ConfigError(f"the stored operand {describe_shape(self.constant_shape)} would "
                                  f"repeat the batch; its first size must be 1",
                                  field="constant_shape")
            full.append(self.constant_shape)
            params["C"] = self.constant_shape
        out = broadcast(full, self.type_name)
        if len(out) != len(full[0]) or out[0] != 1:
            raise ConfigError(f"{self.type_name}'s output {describe_shape(out)} would not keep the "
                              f"batch axis first", field="constant_shape")
        return LayerInfo(output_shape=out[1:], param_shapes=params)

    def analyse(self, in_shape: Shape) -> LayerInfo:
        return self.analyse_inputs((in_shape,))

    def summary(self) -> str:
        if self.constant_shape is None:
            return f"a {self.symbol} b" if self.operands == 2 else "sum of inputs"
        shape = "x".join(map(str, self.constant_shape)) or "scalar"
        return f"C {self.symbol} x ({shape})" if self.constant_first else f"x {self.symbol} C ({shape})"


@register
@dataclass(frozen=True)
class Add(_Arithmetic):
    """The element-wise sum of its operands (ONNX Add, and Sum for more than two)."""
    description = "Adds its inputs element by element: residual shortcuts, FPN merges."
    symbol = "+"


@register
@dataclass(frozen=True)
class Mul(_Arithmetic):
    """The element-wise product of its operands, broadcast (squeeze-excitation's gating)."""
    description = "Multiplies its inputs element by element: gates and channel attention."
    symbol = "*"
    operands = 2


@register
@dataclass(frozen=True)
class Sub(_Arithmetic):
    """a - b, broadcast."""
    description = "Subtracts its second input from its first, element by element."
    symbol = "-"
    operands = 2
    max_inputs = 2


@register
@dataclass(frozen=True)
class Div(_Arithmetic):
    """a / b, broadcast."""
    description = "Divides its first input by its second, element by element."
    symbol = "/"
    operands = 2
    max_inputs = 2


@register
@dataclass(frozen=True)
class Concat(LayerSpec):
    """Its inputs joined along one axis (ONNX Concat; axis counts the batch as 0)."""
    category = "Merge"
    description = "Stacks its inputs' channels (or another axis): Inception, DenseNet, U-Net skips."
    min_inputs = 1
    max_inputs = None

    axis: int = param(1, "Axis", "The axis the inputs are joined along: 1 = channels; the batch "
                      "(0) cannot be joined.", minimum=-4, maximum=4)

    def __post_init__(self) -> None:
        value = self.axis
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"axis must be a whole number, got {value!r}", field="axis")

    def analyse_inputs(self, in_shapes: tuple[Shape, ...]) -> LayerInfo:
        rank = len(in_shapes[0]) + 1
        if any(len(s) + 1 != rank for s in in_shapes):
            raise ConfigError("Concat joins tensors of different ranks ("
                              + ", ".join(describe_shape(s) for s in in_shapes)
                              + "); reshape one so all have the same axes", field="inputs")
        axis = self.axis + rank if self.axis < 0 else self.axis
        if not 1 <= axis < rank:
            raise ConfigError(f"axis {self.axis} is not an axis Concat can join on a {rank}-axis "
                              f"tensor (the batch is axis 0); use 1 for channels, up to "
                              f"{rank - 1}", field="axis")
        i = axis - 1
        first = in_shapes[0]
        for other in in_shapes[1:]:
            if other[:i] + other[i + 1:] != first[:i] + first[i + 1:]:
                raise ConfigError(f"Concat on axis {axis} needs the other axes equal, got "
                                  + " and ".join(describe_shape(s) for s in in_shapes)
                                  + "; resize or crop the branches to one size", field="inputs")
        out = first[:i] + (sum(s[i] for s in in_shapes),) + first[i + 1:]
        return LayerInfo(output_shape=out, attrs={"axis": axis})

    def analyse(self, in_shape: Shape) -> LayerInfo:
        return self.analyse_inputs((in_shape,))

    def summary(self) -> str:
        return "channels" if self.axis == 1 else f"axis {self.axis}"

