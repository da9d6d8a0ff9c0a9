"""The im2col row of a clicked output times its kernel column, plus the bias, is the engine's
value, for random convolutions of every kind the explanation covers."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.executor import run
from engine.explain_im2col import explain_im2col
from models.analysis import analyse
from models.layers import Conv, DepthwiseConv, MaxPool, PointwiseConv
from models.stack import InputSpec, Stack


@st.composite
def conv_stacks(draw) -> Stack:
    """One convolution (plain, grouped, depthwise or pointwise) on a small 1D, 2D or 3D input."""
    rank = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 2, 3]))
    channels = groups * draw(st.integers(1, 2))
    spatial = tuple(draw(st.integers(3, 9 if rank < 3 else 5)) for _ in range(rank))
    window = dict(rank=rank, kernel_size=draw(st.tuples(*[st.integers(1, 3)] * rank)),
                  stride=draw(st.tuples(*[st.integers(1, 3)] * rank)),
                  dilation=draw(st.tuples(*[st.integers(1, 2)] * rank)),
                  padding=draw(st.sampled_from(["valid", "same", "explicit"])),
                  pads=draw(st.tuples(*[st.integers(0, 2)] * (2 * rank))),
                  bias=draw(st.booleans()))
    kind = draw(st.sampled_from(["conv", "depthwise", "pointwise"]))
    if kind == "conv":
        spec = Conv(out_channels=groups * draw(st.integers(1, 3)), groups=groups, **window)
    elif kind == "depthwise":
        spec = DepthwiseConv(depth_multiplier=draw(st.integers(1, 2)), **window)
    else:
        spec = PointwiseConv(rank=rank, out_channels=draw(st.integers(1, 4)), bias=window["bias"])
    stack = Stack(InputSpec(channels, spatial, batch=draw(st.integers(1, 2))),
                  seed=draw(st.integers(0, 99))).appended(spec)
    if window["bias"]:  # non-zero biases, so adding them is checked too
        report = analyse(stack)
        assume(report.ok)
        c_out = report.output_shape[1]
        stack = stack.with_weights(0, {"B": np.linspace(-1, 1, c_out, dtype=np.float32)})
    return stack


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_stacks(), st.data())
def test_dot_plus_bias_is_the_engine_value(stack: Stack, data: st.DataObject) -> None:
    report = analyse(stack)
    assume(report.ok)
    x = np.random.default_rng(1).normal(size=stack.input.shape).astype(np.float32)
    result = run(stack, x)
    output = result.outputs[0]
    n = data.draw(st.integers(0, output.shape[0] - 1))
    channel = data.draw(st.integers(0, output.shape[1] - 1))
    position = tuple(data.draw(st.integers(0, s - 1)) for s in output.shape[2:])
    layer = result.stack.layers[0]
    info = report.layers[0].info
    explained = explain_im2col(layer.spec, info, layer.weights, x, n, channel, position)

    engine_value = float(output[(n, channel, *position)])
    magnitude = float(np.abs(explained.patch_row * explained.kernel_column).sum()
                      + abs(explained.bias)) + 1e-6
    assert abs(explained.value - engine_value) <= 1e-5 * magnitude

    groups = info.attrs["group"]
    c_in, c_out = x.shape[1], output.shape[1]
    k = c_in // groups * math.prod(layer.weights["W"].shape[2:])
    assert explained.patch_shape == (x.shape[0] * math.prod(output.shape[2:]), k)
    assert explained.kernel_shape == (k, c_out // groups)
    assert explained.group * (c_out // groups) + explained.column == channel
    # Entries in the padding are zeros; the others are the input's values at their coordinates.
    for value, entry in zip(explained.patch_row, explained.entries):
        if entry.in_padding:
            assert value == 0
        else:
            assert value == x[(n, entry.channel, *entry.coords)]
        assert entry.channel // (c_in // groups) == explained.group


def test_a_hand_worked_corner_with_padding() -> None:
    # 1 channel 3x3 input 1..9, a 2x2 kernel of ones, pads 1 all round: output (0, 0) sees the
    # padded corner, so only the input's (0, 0) = 1 is read; output (1, 1) reads 1 + 2 + 4 + 5.
    stack = Stack(InputSpec(1, (3, 3))).appended(
        Conv(out_channels=1, kernel_size=2, padding="explicit", pads=1))
    stack = stack.with_weights(0, {"W": np.ones((1, 1, 2, 2), np.float32),
                                   "B": np.array([0.5], np.float32)})
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)
    info = analyse(stack).layers[0].info
    corner = explain_im2col(stack.layers[0].spec, info, stack.layers[0].weights, x, 0, 0, (0, 0))
    assert corner.patch_row.tolist() == [0, 0, 0, 1]
    assert [e.in_padding for e in corner.entries] == [True, True, True, False]
    assert corner.padded_count == 3
    assert (corner.dot, corner.bias, corner.value) == (1.0, 0.5, 1.5)
    assert corner.patch_shape == (16, 4) and corner.kernel_shape == (4, 1)
    middle = explain_im2col(stack.layers[0].spec, info, stack.layers[0].weights, x, 0, 0, (1, 1))
    assert middle.patch_row.tolist() == [1, 2, 4, 5] and middle.value == 12.5
    assert middle.row == 5
    assert run(stack, x).outputs[0][0, 0, 1, 1] == 12.5


def test_other_layers_are_refused() -> None:
    stack = Stack(InputSpec(1, (4, 4))).appended(MaxPool())
    info = analyse(stack).layers[0].info
    with pytest.raises(ValueError, match="MaxPool2D"):
        explain_im2col(stack.layers[0].spec, info, {}, np.zeros((1, 1, 4, 4), np.float32),
                       0, 0, (0, 0))
