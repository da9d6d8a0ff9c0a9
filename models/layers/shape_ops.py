"""Layers that move, select, reduce or reshape values: Slice, Reduce, Transpose, Reshape,
ChannelShuffle, Identity and Flatten's axis arithmetic (flatten_shape).

Axis-valued fields count the batch as axis 0, as ONNX does, and are stored as given (negative
allowed); analyse normalises them and refuses the batch axis. Matrix products (Gemm, MatMul) are
in models/layers/matmul.py; resampling and padding in models/layers/resample.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from models.errors import ConfigError
from models.fields import param
from models.geometry import RFStep
from models.layers.base import (LayerInfo, LayerSpec, Shape, as_bool, as_choice, as_int,
                                describe_shape, register, set_field)


def as_int_tuple(spec: LayerSpec, name: str, minimum: int | None = None) -> None:
    """Normalise a list of whole numbers (a single int becomes a 1-tuple) to a tuple."""
    value = getattr(spec, name)
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v
           or (minimum is not None and v < minimum) for v in values):
        least = f" of at least {minimum}" if minimum is not None else ""
        raise ConfigError(f"{name} must be a list of whole numbers{least}, got {value!r}",
                          field=name)
    set_field(spec, name, tuple(int(v) for v in values))


def everything_step(in_shape: Shape) -> tuple[tuple[RFStep, ...], ...]:
    """One step in which every output position sees every input position (as Flatten)."""
    return (tuple(RFStep(w, w) for w in in_shape[1:]),) if len(in_shape) > 1 else ()


def normalise_axes(axes: tuple[int, ...], rank: int, field: str, what: str) -> tuple[int, ...]:
    """ONNX axes (batch = 0, negative from the end) on a tensor of `rank` axes with the batch,
    as non-negative ints. ConfigError naming `field` for an axis out of range, the batch, or a
    repeat."""
    out = []
    for axis in axes:
        full = axis + rank if axis < 0 else axis
        if not 0 <= full < rank:
            raise ConfigError(f"{field} holds {axis}, outside the input's {rank} axes (batch "
                              f"first); use an axis from {-rank + 1} to {rank - 1}, not the "
                              f"batch", field=field)
        if full == 0:
            raise ConfigError(f"{field} holds {axis}, the batch axis; {what} never touches the "
                              f"batch: use axes 1 (channels) to {rank - 1}", field=field)
        if full in out:
            raise ConfigError(f"{field} names axis {full} twice ({list(axes)}); list each axis "
                              f"once", field=field)
        out.append(full)
    return tuple(out)


def flatten_shape(in_shape: Shape, axis: int = 1) -> Shape:
    """The sample shape ONNX Flatten(axis) gives for the sample shape `in_shape`.

    ONNX makes (prod(dims[:axis]), prod(dims[axis:])) of the full shape, batch included, so any
    axis > 1 folds the sample axes before it into the batch. That is kept only where those axes
    all have size 1 (the batch stays the batch); otherwise ConfigError(field="axis").
    """
    rank = len(in_shape) + 1
    full = axis + rank if axis < 0 else axis
    if not 0 <= full <= rank:
        raise ConfigError(f"axis {axis} is outside the input's {rank} axes (N, "
                          f"{describe_shape(in_shape)[1:]}; use an axis from 1 to {rank}",
                          field="axis")
    if full == 0:
        raise ConfigError("axis 0 flattens the batch into the features; use axis 1 to keep "
                          "each sample apart", field="axis")
    lead = math.prod(in_shape[:full - 1])
    if lead != 1:
        raise ConfigError(f"Flatten at axis {axis} would fold {describe_shape(in_shape[:full - 1])}"
                          f" into the batch (ONNX gives (N*{lead}, {math.prod(in_shape[full - 1:])}))"
                          f"; use axis 1, or a Reshape to keep those axes", field="axis")
    return (math.prod(in_shape[full - 1:]),)


@register
@dataclass(frozen=True)
class Identity(LayerSpec):
    """Output = input (ONNX Identity, and Dropout at inference)."""
    category = "Structure"
    description = "Passes its input through unchanged (an Identity or inference Dropout)."

    def analyse(self, in_shape: Shape) -> LayerInfo:
        return LayerInfo(output_shape=tuple(in_shape))


@register
@dataclass(frozen=True)
class Slice(LayerSpec):
    """ONNX Slice: along each axis in `axes`, the elements start, start + step, ... before end.

    starts/ends are clamped as ONNX does (negative counts from the end; a huge end means "to
    the end"; with a negative step, end -1 - size means "through the first element").
    """
    category = "Structure"
    description = "Keeps a range (with a step) of some axes: crops, strides, reversals."

    starts: tuple[int, ...] = param((0,), "Starts", "First index per sliced axis (negative "
                                    "counts from the end).")
    ends: tuple[int, ...] = param((1,), "Ends", "Index to stop before, per sliced axis.")
    axes: tuple[int, ...] = param((1,), "Axes", "The axes sliced, counting the batch as 0 "
                                  "(1 = channels).")
    steps: tuple[int, ...] = param((1,), "Steps", "Stride per sliced axis; negative walks "
                                   "backwards.")

    def __post_init__(self) -> None:
        for name in ("starts", "ends", "axes", "steps"):
            as_int_tuple(self, name)

    def ranges(self, in_shape: Shape) -> dict[int, tuple[int, int, int]]:
        """{sample axis: (start, stop, step)} clamped, for the sample shape; stop < 0 only with
        a negative step (meaning: through index 0). ConfigError for settings that cannot work."""
        n = len(self.axes)
        for name in ("starts", "ends", "steps"):
            if len(getattr(self, name)) != n:
                raise ConfigError(f"{name} has {len(getattr(self, name))} entries but axes has "
                                  f"{n}; give one per sliced axis", field=name)
        axes = normalise_axes(self.axes, len(in_shape) + 1, "axes", "Slice")
        out = {}
        for axis, start, end, step in zip(axes, self.starts, self.ends, self.steps):
            size = in_shape[axis - 1]
            if step == 0:
                raise ConfigError("steps holds 0; use 1 (every element), 2, ... or a negative "
                                  "step to walk backwards", field="steps")
            start += size if start < 0 else 0
            end += size if end < 0 else 0
            if step > 0:
                start, end = min(max(start, 0), size), min(max(end, 0), size)
            else:
                start, end = min(max(start, 0), size - 1), min(max(end, -1), size - 1)
            out[axis - 1] = (start, end, step)
        return out

    def analyse(self, in_shape: Shape) -> LayerInfo:
        shape = list(in_shape)
        steps = [RFStep(1, 1)] * (len(in_shape) - 1)
        for axis, (start, stop, step) in self.ranges(in_shape).items():
            shape[axis] = max(0, -(-(stop - start) // step))
            if shape[axis] == 0:
                raise ConfigError(f"the slice of axis {axis + 1} from {start} to {stop} by {step} "
                                  f"is empty (the axis has {in_shape[axis]}); widen starts/ends",
                                  field="ends")
            if axis >= 1:
                # Exact for positive steps; a reversal keeps size 1 but its start is an estimate.
                steps[axis - 1] = RFStep(1, abs(step), -start if step > 0 else 0)
        moved = any(s != RFStep(1, 1) for s in steps)
        return LayerInfo(output_shape=tuple(shape), rf_steps=(tuple(steps),) if moved else ())

    def summary(self) -> str:
        return ", ".join(f"axis {a}: {s}:{e}" + (f":{st}" if st != 1 else "")
                         for a, s, e, st in zip(self.axes, self.starts, self.ends, self.steps))


REDUCE_OPS = ("mean", "max", "sum", "min")


@register
@dataclass(frozen=True)
class Reduce(LayerSpec):
    """ONNX ReduceMean / ReduceMax / ReduceSum / ReduceMin over `axes` (never the batch)."""
    category = "Pooling"
    description = "Averages (or max, sum, min) over some axes: global pooling, channel means."

    op: str = param("mean", "Operation", "How the values along the axes are combined.",
                    choices=REDUCE_OPS)
    axes: tuple[int, ...] = param((2, 3), "Axes", "The axes reduced, counting the batch as 0 "
                                  "(1 = channels, 2.. = spatial).")
    keepdims: bool = param(True, "Keep axes", "Keep each reduced axis with size 1 (else drop it).")

    def __post_init__(self) -> None:
        as_choice(self, "op", REDUCE_OPS)
        as_int_tuple(self, "axes")
        as_bool(self, "keepdims")

    @property
    def type_name(self) -> str:
        return "Reduce" + self.op.capitalize()

    def analyse(self, in_shape: Shape) -> LayerInfo:
        if not self.axes:
            raise ConfigError("axes is empty, which in ONNX reduces every axis, the batch "
                              "included; list the axes to reduce (1 = channels)", field="axes")
        axes = normalise_axes(self.axes, len(in_shape) + 1, "axes", "Reduce")
        sample = sorted(a - 1 for a in axes)
        if self.keepdims:
            out = tuple(1 if i in sample else d for i, d in enumerate(in_shape))
        else:
            out = tuple(d for i, d in enumerate(in_shape) if i not in sample)
        if not out:
            raise ConfigError(f"reducing every axis of {describe_shape(in_shape)} without keeping "
                              f"them leaves no sample axis; set keepdims", field="keepdims")
        spatial = [i for i in sample if i >= 1]
        if not spatial:
            steps: tuple[tuple[RFStep, ...], ...] = ()
        elif self.keepdims:
            steps = (tuple(RFStep(w, w) if i + 1 in spatial else RFStep(1, 1)
                           for i, w in enumerate(in_shape[1:])),)
        else:
            steps = everything_step(in_shape)
        return LayerInfo(output_shape=out, rf_steps=steps, attrs={"axes": tuple(axes)})

    def summary(self) -> str:
        return f"{self.op} over {', '.join(map(str, self.axes))}"


@register
@dataclass(frozen=True)
class Transpose(LayerSpec):
    """ONNX Transpose: output axis i is input axis perm[i]; perm[0] is the batch, 0."""
    category = "Structure"
    description = "Reorders the axes (channels last, swapped height and width, ...)."

    perm: tuple[int, ...] = param((0, 1, 3, 2), "Permutation", "Output axis i takes input axis "
                                  "perm[i], batch counted as 0 (which stays first).")

    def __post_init__(self) -> None:
        as_int_tuple(self, "perm")

    def analyse(self, in_shape: Shape) -> LayerInfo:
        rank = len(in_shape) + 1
        if sorted(self.perm) != list(range(rank)):
            raise ConfigError(f"perm {list(self.perm)} is not an order of the input's {rank} axes "
                              f"0..{rank - 1}; list each once", field="perm")
        if self.perm[0] != 0:
            raise ConfigError(f"perm {list(self.perm)} moves the batch axis; keep 0 first",
                              field="perm")
        out = tuple(in_shape[p - 1] for p in self.perm[1:])
        kept = list(self.perm) == list(range(rank))
        return LayerInfo(output_shape=out, rf_steps=() if kept else everything_step(in_shape))

    def summary(self) -> str:
        return "perm " + ",".join(map(str, self.perm))


@register
@dataclass(frozen=True)
class Reshape(LayerSpec):
    """Reshape each sample to `shape` (no batch axis), row-major as ONNX Reshape."""
    category = "Structure"
    description = "Gives each sample a new shape with the same number of values."

    shape: tuple[int, ...] = param((-1,), "Shape", "The sample's new shape without the batch; "
                                   "one -1 means 'whatever is left'.")

    def __post_init__(self) -> None:
        as_int_tuple(self, "shape", minimum=-1)

    def analyse(self, in_shape: Shape) -> LayerInfo:
        total = math.prod(in_shape)
        if not self.shape or 0 in self.shape or self.shape.count(-1) > 1:
            raise ConfigError(f"shape {list(self.shape)} must list sizes of at least 1, with at "
                              f"most one -1", field="shape")
        known = math.prod(d for d in self.shape if d != -1)
        out = tuple(total // known if d == -1 else d for d in self.shape)
        if math.prod(out) != total:
            raise ConfigError(f"shape {list(self.shape)} does not fit the {total} values of each "
                              f"sample {describe_shape(in_shape)}; "
                              f"make the sizes multiply to {total}", field="shape")
        kept = out == tuple(in_shape) or (len(in_shape) > 1 and out[1:] == tuple(in_shape[1:]))
        return LayerInfo(output_shape=out, rf_steps=() if kept else everything_step(in_shape))

    def summary(self) -> str:
        return "to " + describe_shape(self.shape)


@register
@dataclass(frozen=True)
class ChannelShuffle(LayerSpec):
    """ShuffleNet's channel shuffle: (g, C/g) channel groups transposed to (C/g, g)."""
    category = "Structure"
    description = "Interleaves the channels of its groups so grouped convolutions mix."

    groups: int = param(2, "Groups", "How many channel groups are interleaved.", minimum=1,
                        maximum=1024)

    def __post_init__(self) -> None:
        as_int(self, "groups")

    def analyse(self, in_shape: Shape) -> LayerInfo:
        if self.groups < 1 or in_shape[0] % self.groups:
            raise ConfigError(f"groups {self.groups} does not divide the {in_shape[0]} channels; "
                              f"use a divisor of {in_shape[0]}", field="groups")
        return LayerInfo(output_shape=tuple(in_shape))

    def summary(self) -> str:
        return f"{self.groups} groups"

