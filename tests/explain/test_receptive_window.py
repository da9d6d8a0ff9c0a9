"""The exact receptive window: the dilated 1-2-4 stack's fields worked by hand, and for random
stacks, perturbing the input outside the window never changes the clicked output."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.executor import run
from models.analysis import analyse
from models.layers import (Add, AvgPool, BatchNorm, Conv, ConvTranspose, Dense, DepthwiseConv,
                           Flatten, GlobalAvgPool, MaxPool, PointwiseConv, SeparableConv)
from models.presets import dilated_context
from models.receptive_window import extent, receptive_masks
from models.stack import INPUT, InputSpec, Layer, Stack
from tests.stack_strategies import stacks

CENTRE = (32, 32)


def lattice(shape: tuple[int, ...], centre: tuple[int, ...], offsets: list[int]) -> np.ndarray:
    """A mask with a pixel at centre + (a, b) for every a, b in offsets."""
    mask = np.zeros(shape, bool)
    for a in offsets:
        for b in offsets:
            mask[centre[0] + a, centre[1] + b] = True
    return mask


def test_dilated_1_2_4_fields_are_3_7_15_at_the_input() -> None:
    stack = dilated_context()  # conv d1, relu, conv d2, relu, conv d4, relu on 64x64
    report = analyse(stack)
    for conv, size in ((0, 3), (2, 7), (4, 15)):
        masks = receptive_masks(stack, report, conv, CENTRE)
        assert len(masks) == conv + 2
        # Stride 1 and no pixel near the border: the field is a full square, centred.
        expected = np.zeros((64, 64), bool)
        half = size // 2
        expected[32 - half:32 + half + 1, 32 - half:32 + half + 1] = True
        np.testing.assert_array_equal(masks[0], expected)
        assert extent(masks[0]) == (size, size)
        assert masks[-1].sum() == 1 and masks[-1][CENTRE]


def test_dilated_kernels_leave_holes_in_the_earlier_layers_fields() -> None:
    stack = dilated_context()
    report = analyse(stack)
    masks = receptive_masks(stack, report, 4, CENTRE)
    # Third conv (dilation 4) reads a 3x3 lattice 4 apart from relu2's output.
    np.testing.assert_array_equal(masks[4], lattice((64, 64), CENTRE, [-4, 0, 4]))
    np.testing.assert_array_equal(masks[3], masks[4])  # ReLU maps a pixel onto itself
    # The second conv (dilation 2) under it: offsets {-4,0,4} + {-2,0,2}, a 7x7 lattice 2 apart.
    np.testing.assert_array_equal(masks[2], lattice((64, 64), CENTRE, [-6, -4, -2, 0, 2, 4, 6]))
    assert extent(masks[2]) == (13, 13) and masks[2].sum() == 49
    # Clicking the second conv: a 3x3 lattice 2 apart on its input, a full 7x7 on the image.
    masks = receptive_masks(stack, report, 2, CENTRE)
    np.testing.assert_array_equal(masks[2], lattice((64, 64), CENTRE, [-2, 0, 2]))
    assert extent(masks[0]) == (7, 7) and masks[0].sum() == 49


def test_a_corner_pixel_is_clipped_where_padding_lies() -> None:
    stack = dilated_context()
    masks = receptive_masks(stack, analyse(stack), 4, (0, 0))
    # The 15x15 window centred on (0, 0) keeps only its 8x8 quarter inside the image.
    assert extent(masks[0]) == (8, 8) and masks[0][:8, :8].all() and masks[0].sum() == 64


def test_strides_jump_and_pooling_and_flatten_widen() -> None:
    stack = Stack(InputSpec(1, (16,)))
    for spec in (Conv(rank=1, out_channels=2, kernel_size=3, stride=2, padding="valid"),
                 MaxPool(rank=1, kernel_size=2, stride=2), Flatten(), Dense(units=3)):
        stack = stack.appended(spec)
    report = analyse(stack)
    # Pool output 1 reads conv outputs 2, 3, which read inputs 4..6 and 6..8.
    masks = receptive_masks(stack, report, 1, (1,))
    assert np.flatnonzero(masks[1]).tolist() == [2, 3]
    assert np.flatnonzero(masks[0]).tolist() == [4, 5, 6, 7, 8]
    # Flatten and Dense read every position the pool gives; the pool drops conv output 6
    # (7 outputs, windows of 2), so inputs 13..15 reach nothing at all.
    masks = receptive_masks(stack, report, 3, ())
    assert masks[2].all() and masks[3].shape == () and masks[3]
    assert np.flatnonzero(masks[0]).tolist() == list(range(13))


def test_transposed_convolution_spreads_inputs_over_stride_outputs() -> None:
    # Kernel 3, stride 2, no pads: input i paints outputs 2i, 2i+1, 2i+2.
    stack = Stack(InputSpec(1, (5,))).appended(
        ConvTranspose(rank=1, out_channels=1, kernel_size=3, stride=2, padding="valid"))
    report = analyse(stack)
    assert np.flatnonzero(receptive_masks(stack, report, 0, (4,))[0]).tolist() == [1, 2]
    assert np.flatnonzero(receptive_masks(stack, report, 0, (5,))[0]).tolist() == [2]


def test_residual_identity_adds_the_clicked_position_itself() -> None:
    # Kernel 2, dilation 2, pads 1 + 1: output o reads o - 1 and o + 1, never o itself.
    body = (Conv(rank=1, out_channels=1, kernel_size=2, padding="explicit", pads=(1, 1),
                 dilation=2),)
    body_stack = Stack(InputSpec(1, (10,))).appended(body[0])
    assert np.flatnonzero(receptive_masks(body_stack, analyse(body_stack), 0, (4,))[0]).tolist() \
        == [3, 5]
    stack = Stack(InputSpec(1, (10,))).with_layers(
        [Layer("conv1", body[0]), Layer("add1", Add(), inputs=("conv1", INPUT))])
    assert np.flatnonzero(receptive_masks(stack, analyse(stack), 1, (4,))[0]).tolist() == [3, 4, 5]


def test_volume_fields_and_bad_positions() -> None:
    stack = Stack(InputSpec(2, (9, 9, 9))).appended(
        Conv(rank=3, out_channels=2, kernel_size=3, dilation=(1, 2, 3)))
    report = analyse(stack)
    mask = receptive_masks(stack, report, 0, (4, 4, 4))[0]
    assert extent(mask) == (3, 5, 7) and mask.sum() == 27
    with pytest.raises(ValueError):
        receptive_masks(stack, report, 0, (9, 0, 0))
    with pytest.raises(ValueError):
        receptive_masks(stack, report, 1, (0, 0, 0))


# Layers that are linear in their input (with the default weights: BatchNorm scale 1): through a
# stack of these, an input pixel inside the window changes the clicked output for almost every
# choice of weights and perturbation, so "inside can change it" is asserted per example.
LINEAR = (Conv, DepthwiseConv, PointwiseConv, SeparableConv, ConvTranspose, AvgPool, BatchNorm,
          GlobalAvgPool, Flatten, Dense)


def clicked(output: np.ndarray, position: tuple[int, ...]) -> np.ndarray:
    """Every sample's values at position, all channels: (N, C), or (N, F) for flat outputs."""
    return output if not position else output[(slice(None), slice(None), *position)]


def changed_samples(outputs: np.ndarray) -> np.ndarray:
    """(N - 1,) bool: which samples 1.. differ from sample 0 beyond float32 rounding."""
    base = outputs[0]
    scale = max(1.0, float(np.abs(base).max()))
    return np.any(np.abs(outputs[1:] - base).reshape(len(outputs) - 1, -1) > 1e-6 * scale, axis=1)


def perturbed_batch(x: np.ndarray, pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sample 0 as it is, then one sample per pixel with that pixel changed in every channel, by a
    different amount per channel (an equal shift could cancel in a softmax over channels)."""
    batch = np.repeat(x[:1], len(pixels) + 1, axis=0)
    for i, pixel in enumerate(pixels, start=1):
        batch[(i, slice(None), *pixel)] += rng.uniform(1.0, 2.0, size=x.shape[1])
    return batch


def test_perturbing_outside_the_window_never_changes_the_output_and_inside_can() -> None:
    changed_inside: list[np.ndarray] = []

    @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(stacks(max_layers=4), st.data())
    def check(stack: Stack, data: st.DataObject) -> None:
        report = analyse(stack)
        ok = [i for i, layer in enumerate(report.layers) if layer.ok]
        if not ok or not stack.input.spatial:
            return
        k = data.draw(st.sampled_from(ok), label="layer")
        out_spatial = report.layers[k].info.output_shape[1:]
        position = tuple(data.draw(st.integers(0, n - 1)) for n in out_spatial)
        mask = receptive_masks(stack, report, k, position)[0]
        rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
        x = rng.normal(size=stack.input.shape).astype(np.float32)
        # Every input pixel perturbed on its own, one sample each, in one run.
        pixels = np.argwhere(np.ones(stack.input.spatial, bool))
        changed = changed_samples(clicked(run(stack, perturbed_batch(x, pixels, rng)).outputs[k],
                                          position))
        inside = mask[tuple(pixels.T)]
        assert not changed[~inside].any(), \
            f"outside pixels {pixels[~inside & changed].tolist()} changed the output"
        if inside.any():
            changed_inside.append(changed[inside])
            if all(isinstance(layer.spec, LINEAR) for layer in stack.layers[:k + 1]):
                assert changed[inside].any(), "no inside pixel changed a linear stack's output"

    check()
    # Even through ReLUs, max pooling and saturating activations, most inside pixels matter in a
    # typical example. (Pooled over all examples' pixels, one global max pool's window, where by
    # design one pixel in a thousand matters, could outweigh the rest.)
    assert np.median([inside.mean() for inside in changed_inside]) > 0.5
