"""The base of every layer spec: normalisation, serialisation, and what analysis returns."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from models.errors import ConfigError
from models.geometry import RFStep

Shape = tuple[int, ...]
AXIS_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}

LAYER_TYPES: dict[str, type[LayerSpec]] = {}


def register(cls: type[LayerSpec]) -> type[LayerSpec]:
    """Make a spec class known to project files and the palette by its class name."""
    LAYER_TYPES[cls.__name__] = cls
    return cls


@dataclass(frozen=True)
class LayerInfo:
    """What shape inference says of one layer on one input shape (no batch axis).

    output_shape: (C, *spatial) or (features,). param_shapes: learned tensors by weight key;
    buffer_shapes: stored but not learned (batch-norm statistics). macs: multiply-accumulates of
    weights for one sample. rf_steps: the layer's sliding windows in order, one RFStep per
    spatial axis each. attrs: values resolved from the input (explicit pads, ...) that the engine
    and the exporter use. inner: the infos of a block's inner layers. plain_params: what a plain
    convolution between the same channels with the same kernel would need, for layers that save.
    """
    output_shape: Shape
    param_shapes: Mapping[str, Shape] = field(default_factory=dict)
    buffer_shapes: Mapping[str, Shape] = field(default_factory=dict)
    macs: int = 0
    rf_steps: tuple[tuple[RFStep, ...], ...] = ()
    attrs: Mapping[str, Any] = field(default_factory=dict)
    inner: tuple[LayerInfo, ...] = ()
    plain_params: int | None = None

    @property
    def params(self) -> int:
        return sum(math.prod(s) for s in self.param_shapes.values())

    @property
    def weight_shapes(self) -> dict[str, Shape]:
        """Every stored tensor: learned parameters and buffers."""
        return {**self.param_shapes, **self.buffer_shapes}


def prefixed(prefix: str, shapes: Mapping[str, Shape]) -> dict[str, Shape]:
    return {f"{prefix}.{key}": shape for key, shape in shapes.items()}


@dataclass(frozen=True)
class LayerSpec:
    """An immutable description of one layer: its kind and hyperparameters.

    Subclasses declare their editable fields with models.fields.param and implement `analyse`.
    Construction normalises values (an int kernel becomes one per axis) and checks types only;
    whether the settings can work is `analyse`'s answer, so an invalid layer can still be shown
    and edited.
    """
    category: ClassVar[str] = ""
    description: ClassVar[str] = ""
    engine: ClassVar[str] = "numpy"
    """Who computes the kind: "numpy" (ConvScope's engine) or "onnxruntime" (opaque nodes)."""
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    """How many graph inputs the kind reads (None: any number); merges read several."""

    @property
    def type_name(self) -> str:
        """The name people know the layer by ("Conv2D", "MaxPool1D", "ReLU")."""
        return type(self).__name__

    @property
    def short_name(self) -> str:
        """Prefix for generated layer names ("conv" -> conv1, conv2...)."""
        return type(self).__name__.lower()

    def analyse(self, in_shape: Shape) -> LayerInfo:
        """Output shape, parameters, MACs and windows for an input of shape (C, *spatial).

        Raises ConfigError naming the field and the fix when the settings cannot work.
        """
        raise NotImplementedError

    def analyse_inputs(self, in_shapes: tuple[Shape, ...]) -> LayerInfo:
        """`analyse` for a node's input shapes in order; single-input kinds analyse the one.

        The caller has checked the count against min_inputs/max_inputs.
        """
        return self.analyse(in_shapes[0])

    def summary(self) -> str:
        """The key hyperparameters in a few words, for a layer card."""
        return ""

    def replace(self, **changes: Any) -> LayerSpec:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": type(self).__name__}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> LayerSpec:
        """The spec a to_dict() produced. Raises ConfigError on unknown types or fields."""
        if not isinstance(data, Mapping) or not isinstance(data.get("type"), str):
            raise ConfigError("a layer entry must be an object with a \"type\" string")
        cls = LAYER_TYPES.get(data["type"])
        if cls is None:
            raise ConfigError(f"unknown layer type {data['type']!r}; known types are "
                              + ", ".join(sorted(LAYER_TYPES)))
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names - {"type"}
        if unknown:
            raise ConfigError(f"{data['type']} has no setting {sorted(unknown)[0]!r}",
                              field=sorted(unknown)[0])
        kwargs = {k: v for k, v in data.items() if k != "type"}
        return cls(**kwargs)


# Normalisation helpers used by __post_init__ of the specs.

def set_field(spec: LayerSpec, name: str, value: Any) -> None:
    object.__setattr__(spec, name, value)


def as_int(spec: LayerSpec, name: str) -> None:
    value = getattr(spec, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ConfigError(f"{name} must be a whole number, got {value!r}", field=name)
    set_field(spec, name, int(value))


def as_bool(spec: LayerSpec, name: str) -> None:
    value = getattr(spec, name)
    if not isinstance(value, (bool, int)) or value not in (0, 1):
        raise ConfigError(f"{name} must be true or false, got {value!r}", field=name)
    set_field(spec, name, bool(value))


def as_float(spec: LayerSpec, name: str) -> None:
    value = getattr(spec, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}", field=name)
    set_field(spec, name, float(value))


def as_choice(spec: LayerSpec, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(spec, name)
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}", field=name)


def as_axes(spec: LayerSpec, name: str, rank: int, per_side: bool = False) -> None:
    """Turn an int (or one value per axis, for per-side fields) into the full tuple."""
    value = getattr(spec, name)
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    full = 2 * rank if per_side else rank
    if len(values) == 1:
        values = values * full
    elif per_side and len(values) == rank:
        values = values * 2
    if len(values) != full or any(isinstance(v, bool) or not isinstance(v, (int, float))
                                  or int(v) != v for v in values):
        what = f"{full} whole numbers (begins, then ends)" if per_side else \
            f"{rank} whole number{'s' if rank > 1 else ''}"
        raise ConfigError(f"{name} must be one whole number or {what}, got {value!r}", field=name)
    set_field(spec, name, tuple(int(v) for v in values))


def check_at_least(name: str, values: int | tuple[int, ...], minimum: int, fix: str = "") -> None:
    """Raise ConfigError when any value is below minimum."""
    for v in values if isinstance(values, tuple) else (values,):
        if v < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {v}" + (f"; {fix}" if fix else ""),
                              field=name)


def describe_shape(shape: Shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def require_rank(spec: LayerSpec, in_shape: Shape, rank: int) -> None:
    """Raise ConfigError unless the input has `rank` spatial axes. The error names the spec's
    `rank` field where it has one (Conv2D can become Conv1D); otherwise the input is at fault."""
    have = len(in_shape) - 1
    if have == rank:
        return
    at = "rank" if any(f.name == "rank" for f in dataclasses.fields(spec)) else None
    axes = f"{rank} spatial ax{'es' if rank > 1 else 'is'} (C, " \
        + ", ".join(a[0].upper() for a in AXIS_NAMES[rank]) + ")"
    if have == 0:
        raise ConfigError(f"{spec.type_name} needs an input with {axes}, but gets a flat vector "
                          f"of {in_shape[0]} features; move it before the Flatten or Dense layer",
                          field=at)
    fix = (f"use {spec.type_name.replace(f'{rank}D', f'{have}D')} instead"
           if 1 <= have <= 3 and at else "change the input")
    raise ConfigError(f"{spec.type_name} needs an input with {axes}, but gets "
                      f"{describe_shape(in_shape)} with {have}; {fix}", field=at)


def require_spatial(spec: LayerSpec, in_shape: Shape) -> None:
    """Raise ConfigError unless the input has at least one spatial axis."""
    if len(in_shape) < 2:
        raise ConfigError(f"{spec.type_name} needs spatial axes, but gets a flat vector of "
                          f"{in_shape[0]} features; move it before the Flatten or Dense layer")
