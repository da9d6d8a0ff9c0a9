"""Hypothesis strategies for random layer specs and stacks of every kind, kept small to run fast.

Stacks drawn here are not always valid: tests that need a runnable stack filter on analyse().ok.
"""
from __future__ import annotations

from hypothesis import strategies as st

from models.layers import (AvgPool, BatchNorm, Conv, ConvTranspose, Dense, DepthwiseConv, Flatten,
                           Gated, GlobalAvgPool, GlobalMaxPool, LeakyReLU, MaxPool, PointwiseConv,
                           ReLU, Residual, SeparableConv, Sigmoid, Softmax, Tanh)
from models.analysis import analyse
from models.stack import InputSpec, Stack


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
                                     "maxpool", "avgpool", "global", "activation", "batchnorm",
                                     "residual", "gated"]))
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
    if kind == "global":
        return draw(st.sampled_from([GlobalMaxPool(), GlobalAvgPool()]))
    if kind == "residual":
        body = (Conv(rank=rank, out_channels=channels, kernel_size=3), ReLU(),
                Conv(rank=rank, out_channels=draw(st.integers(1, 4)), kernel_size=draw(st.integers(1, 3)),
                     stride=draw(st.integers(1, 2))))
        return Residual(body=body, shortcut=draw(st.sampled_from(["identity", "projection"])))
    return Gated(out_channels=draw(st.integers(1, 4)), dilation=dilation,
                 residual=draw(st.booleans()), **window)


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
