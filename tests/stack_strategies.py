"""Hypothesis strategies for random layer specs and stacks of every kind, kept small to run fast,
and for the edits a person makes to them in the window (values drawn from the fields' metadata).

Stacks drawn here are not always valid: tests that need a runnable stack filter on analyse().ok.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

from hypothesis import strategies as st

from models.fields import FieldInfo, editable_fields
from models.layers import (LAYER_TYPES, AvgPool, BatchNorm, Conv, ConvTranspose, Dense,
                           DepthwiseConv, Flatten, GlobalAvgPool, GlobalMaxPool, LayerSpec,
                           LeakyReLU, MaxPool, PointwiseConv, ReLU, SeparableConv, Sigmoid,
                           Softmax, Tanh)
from models.analysis import analyse
from models.stack import InputSpec, Layer, Stack


def axes(rank: int, low: int, high: int) -> st.SearchStrategy:
    return st.one_of(st.integers(low, high), st.tuples(*[st.integers(low, high)] * rank))


def windowed(draw, rank: int) -> dict:
    padding = draw(st.sampled_from(["valid", "same", "explicit"]))
    return dict(rank=rank, kernel_size=draw(axes(rank, 1, 4)), stride=draw(axes(rank, 1, 3)),
                padding=padding, pads=draw(st.tuples(*[st.integers(0, 2)] * (2 * rank))))


@st.composite
def layer_specs(draw, rank: int, channels: int):
    """One spec that may fit an input of `channels` channels with `rank` spatial axes."""
    if rank == 0:
        kind = draw(st.sampled_from(["activation", "batchnorm", "dense"]))
        if kind == "dense":
            return Dense(units=draw(st.integers(1, 6)), bias=draw(st.booleans()))
    else:
        kind = draw(st.sampled_from(["conv", "depthwise", "pointwise", "separable", "transposed",
                                     "maxpool", "avgpool", "global", "activation", "batchnorm"]))
    if kind == "activation":
        return draw(st.sampled_from([ReLU(), Sigmoid(), Tanh(), Softmax(),
                                     LeakyReLU(alpha=draw(st.floats(0.0, 0.5)))]))
    if kind == "batchnorm":
        return BatchNorm(epsilon=draw(st.sampled_from([1e-5, 1e-3])))
    window = windowed(draw, rank)
    dilation = draw(axes(rank, 1, 3))
    if kind == "conv":
        groups = draw(st.sampled_from([g for g in (1, 2, 3) if channels % g == 0]))
        return Conv(out_channels=groups * draw(st.integers(1, 3)), dilation=dilation, groups=groups,
                    bias=draw(st.booleans()), **window)
    if kind == "depthwise":
        return DepthwiseConv(depth_multiplier=draw(st.integers(1, 2)), dilation=dilation,
                             bias=draw(st.booleans()), **window)
    if kind == "pointwise":
        return PointwiseConv(rank=rank, out_channels=draw(st.integers(1, 5)), bias=draw(st.booleans()))
    if kind == "separable":
        return SeparableConv(out_channels=draw(st.integers(1, 5)), dilation=dilation,
                             bias=draw(st.booleans()), **window)
    if kind == "transposed":
        stride = draw(st.integers(1, 3))
        groups = draw(st.sampled_from([g for g in (1, 2) if channels % g == 0]))
        return ConvTranspose(rank=rank, out_channels=groups * draw(st.integers(1, 3)),
                             kernel_size=draw(axes(rank, 1, 4)), stride=stride,
                             padding=draw(st.sampled_from(["valid", "same", "explicit"])),
                             pads=draw(st.integers(0, 1)), output_padding=draw(st.integers(0, stride - 1)),
                             groups=groups, bias=draw(st.booleans()))
    if kind == "maxpool":
        return MaxPool(ceil_mode=draw(st.booleans()), dilation=dilation, **window)
    if kind == "avgpool":
        return AvgPool(ceil_mode=draw(st.booleans()), count_include_pad=draw(st.booleans()), **window)
    return draw(st.sampled_from([GlobalMaxPool(), GlobalAvgPool()]))


@st.composite
def stacks(draw, max_layers: int = 4, dense_tail: bool = True):
    """A random stack on a small flat, 1D or 2D input, maybe ending in Flatten + Dense."""
    rank = draw(st.integers(0, 2))
    channels = draw(st.integers(1, 4))
    spatial = tuple(draw(st.integers(3, 12)) for _ in range(rank))
    stack = Stack(InputSpec(channels, spatial, batch=draw(st.integers(1, 2))),
                  seed=draw(st.integers(0, 1000)))
    for _ in range(draw(st.integers(1, max_layers))):
        stack = stack.appended(draw(layer_specs(rank, channels)))
        # Later layers are drawn for the channels the last valid layer gives.
        report = analyse(stack)
        if not report.ok:
            break
        channels = report.output_shape[1]
    if dense_tail and draw(st.booleans()):
        stack = stack.appended(Flatten()).appended(Dense(units=draw(st.integers(1, 6))))
    return stack


# ---- edits as a person makes them in the window ---------------------------------------------------

def scaled(count: int) -> int:
    """`count` times CONVSCOPE_HYPOTHESIS_SCALE (default 1): the suite stays fast, a long run by
    hand sets e.g. CONVSCOPE_HYPOTHESIS_SCALE=20."""
    return max(1, round(count * float(os.environ.get("CONVSCOPE_HYPOTHESIS_SCALE", "1"))))


# Values that break sliding windows most often: a 1-pixel kernel or input, a stride or dilation of
# 2-3 next to a kernel of 1-3, dilation 10, and 1024 channels.
NOTABLE_INTS = (1, 2, 3, 10, 1024)
# What the property editor's spin boxes allow when a field declares no bound.
EDITOR_INT_RANGE = (0, 1_000_000)


def ints_within(low: int, high: int) -> st.SearchStrategy[int]:
    """Whole numbers in [low, high], biased toward both ends and NOTABLE_INTS."""
    notable = sorted({low, min(low + 1, high), high, *(v for v in NOTABLE_INTS if low <= v <= high)})
    return st.one_of(st.sampled_from(notable), st.integers(low, min(high, low + 7)),
                     st.integers(low, high))


def field_values(info: FieldInfo, current: Any, cap: int | None = None) -> st.SearchStrategy:
    """Values the property editor can give the field described by `info`, now holding `current`.

    Follows the editor's one map from metadata to widget: one number per axis (per_axis), begins
    and ends (per_side), a choice, a check box, or a number within the field's range. `cap` lowers
    whole-number maxima, for tests that must also compute every stack quickly.
    """
    if info.choices:
        return st.sampled_from(info.choices)
    if isinstance(current, bool):
        return st.booleans()
    if isinstance(current, float):
        low = -1e9 if info.minimum is None else info.minimum
        high = 1e9 if info.maximum is None else info.maximum
        return st.one_of(st.sampled_from([low, high]), st.floats(low, high))
    low = EDITOR_INT_RANGE[0] if info.minimum is None else int(info.minimum)
    high = EDITOR_INT_RANGE[1] if info.maximum is None else int(info.maximum)
    ints = ints_within(low, max(low, min(high, cap)) if cap is not None else high)
    if info.per_axis or info.per_side:
        # Mostly one value on every axis, as people set kernels; sometimes each its own.
        count = len(current)
        return st.one_of(ints.map(lambda v: (v,) * count), st.tuples(*[ints] * count))
    if isinstance(current, int):
        return ints
    if isinstance(current, tuple):
        # A free list ("2, 2"): numbers of the kind it holds, any count the box can take.
        number = st.floats(-4.0, 4.0) if any(isinstance(v, float) for v in current) else \
            st.integers(-4, 8)
        return st.lists(number, min_size=0, max_size=5).map(tuple)
    raise TypeError(f"no strategy for field {info.label!r} holding {current!r}; teach "
                    f"field_values the new kind as the property editor's map was")


def editable_targets(stack: Stack) -> list[int]:
    """Every layer index whose spec has editable fields, as the property editor can select them."""
    return [index for index, layer in enumerate(stack.layers)
            if editable_fields(type(layer.spec))]


def with_field(stack: Stack, index: int, name: str, value: Any) -> Stack:
    """The stack with one field of a layer set, as the document applies a property-editor edit."""
    return stack.with_spec(index, stack.layers[index].spec.replace(**{name: value}))


def default_spec(spec_type: type[LayerSpec], rank: int) -> LayerSpec:
    """A layer type with its defaults, for an input with `rank` spatial axes (2 for a flat one,
    as the palette does), so every registered type is added without a list here."""
    names = {f.name for f in dataclasses.fields(spec_type)}
    return spec_type(rank=rank or 2) if "rank" in names else spec_type()


def channels_at(stack: Stack, index: int) -> int:
    """Channels fed to a layer inserted at `index` (1 when the layer before cannot compute)."""
    if index == 0:
        return stack.input.channels
    report = analyse(stack).layers[index - 1]
    return report.output_shape[1] if report.ok else 1


@st.composite
def input_edits(draw, stack: Stack) -> tuple[str, InputSpec]:
    """An edit of the input row: channels, one spatial size, the batch or the number of axes
    (new axes copy the last size, as the input editor does), biased toward 1-pixel inputs and
    1024 channels."""
    old = stack.input
    what = draw(st.sampled_from(["channels", "size", "batch", "axes"]))
    if what == "channels":
        return what, InputSpec(draw(st.one_of(st.sampled_from([1, 3, 1024, 4096]),
                                              st.integers(1, 8))), old.spatial, old.batch)
    if what == "size" and old.spatial:
        axis = draw(st.integers(0, len(old.spatial) - 1))
        size = draw(st.one_of(st.sampled_from([1, 2, 8192]), st.integers(1, 24)))
        spatial = old.spatial[:axis] + (size,) + old.spatial[axis + 1:]
        return what, InputSpec(old.channels, spatial, old.batch)
    if what == "batch":
        return what, InputSpec(old.channels, old.spatial, draw(ints_within(1, 4096)))
    rank = draw(st.integers(0, 3))
    spatial = (tuple(old.spatial) + (old.spatial[-1] if old.spatial else 32,) * 3)[:rank]
    return "axes", InputSpec(old.channels, spatial, old.batch)


@st.composite
def edits(draw, stack: Stack) -> tuple[str, Stack]:
    """One edit a person can make in the window, as (what it was, the edited stack).

    A field of a layer set to a value its metadata allows (most often), the input changed, a layer of any registered type inserted, or a layer removed,
    moved or duplicated.
    """
    targets = editable_targets(stack)
    kinds = ["field"] * 4 * bool(targets) + ["input", "insert"]
    kinds += ["remove", "move", "duplicate"] if stack.layers else []
    kind = draw(st.sampled_from(kinds))
    if kind == "field":
        index = draw(st.sampled_from(targets))
        target = stack.layers[index].spec
        name, info = draw(st.sampled_from(editable_fields(type(target))))
        value = draw(field_values(info, getattr(target, name)))
        return (f"set {target.type_name} {index} {name}={value!r}",
                with_field(stack, index, name, value))
    if kind == "input":
        what, input_spec = draw(input_edits(stack))
        return f"input {what} -> {input_spec}", stack.with_input(input_spec)
    if kind == "insert":
        index = draw(st.integers(0, len(stack)))
        rank = len(stack.input.spatial)
        # Every kind a person can add: opaque nodes come only from importing a model.
        addable = sorted(name for name, kind in LAYER_TYPES.items() if kind.engine == "numpy")
        defaults = st.sampled_from(addable).map(lambda name: default_spec(LAYER_TYPES[name], rank))
        spec = draw(st.one_of(defaults, layer_specs(rank, channels_at(stack, index))))
        return f"insert {spec} at {index}", stack.inserted(index, spec)
    index = draw(st.integers(0, len(stack) - 1))
    if kind == "remove":
        return f"remove {index}", stack.removed(index)
    if kind == "move":
        target = draw(st.integers(0, len(stack) - 1))
        return f"move {index} -> {target}", stack.moved(index, target)
    layer = stack.layers[index]
    copy = Layer(stack.unique_name(layer.spec), layer.spec, layer.weights)
    return f"duplicate {index}", stack.with_layers(stack.layers[:index + 1] + (copy,)
                                                   + stack.layers[index + 1:])
