"""The worked examples of the articles ConvScope grew from, checked against our arithmetic.

Every expected number below is the one the article states, not one our code produced.
"""
from __future__ import annotations

import numpy as np
import pytest

from engine.executor import forward
from models.analysis import analyse
from models.layers import Conv, ConvTranspose, Dense, DepthwiseConv, Flatten, PointwiseConv, \
    SeparableConv
from models.stack import InputSpec, Stack


def out_width(spec, width: int, channels: int = 1) -> int:
    return spec.analyse((channels, width)).output_shape[1]


@pytest.mark.parametrize("padding,stride,expected", [
    ("valid", 1, 8), ("valid", 2, 4), ("valid", 3, 3),
    ("same", 1, 10), ("same", 2, 5), ("same", 3, 4)])
def test_tf_conv1d_width_10_filter_3(padding: str, stride: int, expected: int) -> None:
    spec = Conv(rank=1, out_channels=32, kernel_size=3, stride=stride, padding=padding)
    assert out_width(spec, 10) == expected
    assert spec.analyse((1, 10)).output_shape[0] == 32


@pytest.mark.parametrize("kernel", [4, 5])
def test_tf_same_stride_1_keeps_width(kernel: int) -> None:
    assert out_width(Conv(rank=1, kernel_size=kernel, padding="same"), 10) == 10


def test_tf_width_13_filter_6_stride_5() -> None:
    assert out_width(Conv(rank=1, kernel_size=6, stride=5, padding="valid"), 13) == 2
    assert out_width(Conv(rank=1, kernel_size=6, stride=5, padding="same"), 13) == 3


def test_cs231n_output_size_w5_f3_p0_s2() -> None:
    assert out_width(Conv(rank=1, kernel_size=3, stride=2, padding="valid"), 5) == 2


def test_cs231n_5x5x3_two_filters_pad_1_stride_2() -> None:
    spec = Conv(out_channels=2, kernel_size=3, stride=2, padding="explicit", pads=1)
    info = spec.analyse((3, 5, 5))
    assert info.output_shape == (2, 3, 3)
    assert info.params == (3 * 3 * 3 + 1) * 2 == 56


@pytest.mark.parametrize("width,kernel,stride,pad,expected", [(2, 3, 1, 0, 4), (3, 3, 2, 1, 5)])
def test_transposed_output_size(width: int, kernel: int, stride: int, pad: int, expected: int) -> None:
    spec = ConvTranspose(rank=1, out_channels=1, kernel_size=kernel, stride=stride,
                         padding="explicit", pads=pad)
    assert out_width(spec, width) == expected


def test_dilated_stack_receptive_fields() -> None:
    def fields(dilations: tuple[int, ...]) -> list[tuple[int, ...]]:
        stack = Stack(InputSpec(1, (64, 64)))
        for d in dilations:
            stack = stack.appended(Conv(out_channels=4, dilation=d))
        return [r.receptive_field for r in analyse(stack).layers]

    assert fields((1, 2, 4)) == [(3, 3), (7, 7), (15, 15)]
    assert fields((1, 1, 1))[-1] == (7, 7)


def test_group_convolution_saves_eight_times() -> None:
    grouped = Conv(out_channels=64, groups=8, bias=False).analyse((64, 16, 16))
    plain = Conv(out_channels=64, bias=False).analyse((64, 16, 16))
    assert grouped.params == 4608
    assert plain.params == 36864 == grouped.plain_params


def test_depthwise_separable_656_against_4608() -> None:
    separable = SeparableConv(out_channels=32, bias=False).analyse((16, 16, 16))
    assert separable.params == 144 + 512 == 656
    assert separable.plain_params == 4608
    assert DepthwiseConv(bias=False).analyse((16, 16, 16)).params == 144
    assert PointwiseConv(out_channels=32, bias=False).analyse((16, 16, 16)).params == 512


def test_dense_from_megapixel_image_without_allocating() -> None:
    stack = Stack(InputSpec(1, (1000, 1000))).appended(Flatten()).appended(Dense(units=100))
    report = analyse(stack)
    assert report.layers[1].params == (1000 * 1000 + 1) * 100
    assert all(not layer.weights for layer in stack.layers)


def test_im2col_example_two_2x2x3_kernels_on_3x3x3() -> None:
    stack = Stack(InputSpec(3, (3, 3))).appended(Conv(out_channels=2, kernel_size=2,
                                                      padding="valid"))
    assert analyse(stack).output_shape == (1, 2, 2, 2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 3, 3, 3)).astype(np.float32)
    w = rng.normal(size=(2, 3, 2, 2)).astype(np.float32)
    stack = stack.with_weights(0, {"W": w, "B": np.zeros(2, np.float32)})
    y = forward(stack, x)
    # Each output is the dot product of a 2x2x3 patch with a kernel: written out by hand.
    for o in range(2):
        for i in range(2):
            for j in range(2):
                patch = x[0, :, i:i + 2, j:j + 2]
                assert y[0, o, i, j] == pytest.approx(float((patch * w[o]).sum()), rel=1e-5)
