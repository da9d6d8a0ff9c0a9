"""Settings that cannot work give a clear message naming the layer, the field and a fix."""
from __future__ import annotations

import pytest

from models.analysis import analyse
from models.errors import ConfigError
from models.layers import (Add, AvgPool, Conv, ConvTranspose, Dense, MaxPool, ReLU,
                           SeparableConv)
from models.stack import INPUT, InputSpec, Layer, Stack
from models.templates import insert_template


def first_error(input_spec: InputSpec, *specs) -> ConfigError:
    stack = Stack(input_spec)
    for spec in specs:
        stack = stack.appended(spec)
    error = analyse(stack).first_error
    assert error is not None
    return error


def test_dilated_kernel_wider_than_padded_input() -> None:
    error = first_error(InputSpec(1, (10, 10)), ReLU(),
                        Conv(kernel_size=7, dilation=2, padding="valid"))
    assert error.layer_index == 1 and error.field == "dilation"
    assert "kernel 7 with dilation 2 spans 13 pixels" in str(error)
    assert "10 wide" in str(error) and "lower the dilation or add padding" in str(error)
    assert str(error).startswith("layer 2 (conv1, Conv2D):")


def test_kernel_larger_than_input() -> None:
    error = first_error(InputSpec(1, (5,)), Conv(rank=1, kernel_size=9, padding="valid"))
    assert error.field == "kernel_size" and "larger than the padded input" in error.reason


def test_channels_not_divisible_by_groups() -> None:
    error = first_error(InputSpec(6, (8, 8)), Conv(out_channels=8, groups=4))
    assert error.field == "groups" and "6 channels" in error.reason and "1, 2" in error.reason


def test_filters_not_divisible_by_groups() -> None:
    error = first_error(InputSpec(8, (8, 8)), Conv(out_channels=6, groups=4))
    assert error.field == "groups" and "out_channels=6" in error.reason


def test_output_padding_not_below_stride() -> None:
    error = first_error(InputSpec(1, (4, 4)), ConvTranspose(stride=2, output_padding=2))
    assert error.field == "output_padding" and "smaller than the stride" in error.reason


def test_residual_paths_disagree() -> None:
    stack = Stack(InputSpec(4, (8, 8))).with_layers([
        Layer("conv1", Conv(out_channels=8, stride=2)), Layer("add1", Add(), inputs=("conv1", INPUT))])
    error = analyse(stack).first_error
    assert error is not None and error.layer_name == "add1" and error.field == "inputs"
    assert "(N, 8, 4, 4) and (N, 4, 8, 8)" in error.reason and "make the sizes equal" in error.reason
    # The projection template's strided 1x1 shortcut fixes it.
    report = analyse(insert_template(Stack(InputSpec(4, (8, 8))), "Residual (projection)", None))
    assert report.ok and report.output_shape == (1, 8, 4, 4)


def test_error_inside_a_block_is_on_its_node_and_the_block_waits_on_it() -> None:
    stack = insert_template(Stack(InputSpec(2, (4, 4))), "Residual (identity)", None)
    conv = next(i for i, layer in enumerate(stack.layers) if isinstance(layer.spec, Conv))
    stack = stack.with_spec(conv, stack.layers[conv].spec.replace(kernel_size=9, padding="valid"))
    report = analyse(stack)
    error = report.first_error
    assert error.layer_index == conv and error.field == "kernel_size"
    assert str(error).startswith(f"layer {conv + 1} ({stack.layers[conv].name}, Conv2D): ")
    assert all(r.waiting_on == conv for r in report.layers[conv + 1:])


def test_gated_residual_needs_matching_shapes() -> None:
    with pytest.raises(ConfigError, match=r"cannot insert Gated \(GLU\) after the input: its Add "
                                          r"'add1' says: Add cannot broadcast"):
        insert_template(Stack(InputSpec(4, (16,))), "Gated (GLU)", None, out_channels=8,
                        residual=True)


def test_dense_needs_flat_input_and_conv_needs_spatial() -> None:
    assert "insert a Flatten" in first_error(InputSpec(3, (8, 8)), Dense()).reason
    error = first_error(InputSpec(3, (8,)), Conv())
    assert error.field == "rank" and "Conv1D" in error.reason


def test_pool_padding_must_be_below_kernel() -> None:
    error = first_error(InputSpec(1, (8, 8)), MaxPool(kernel_size=2, padding="explicit", pads=2))
    assert error.field == "pads"


def test_later_layers_wait_on_the_failing_one() -> None:
    stack = Stack(InputSpec(1, (4, 4)))
    for spec in (Conv(kernel_size=9, padding="valid"), ReLU(), AvgPool()):
        stack = stack.appended(spec)
    report = analyse(stack)
    assert [r.waiting_on for r in report.layers] == [None, 0, 0]
    assert report.layers[2].status == "waiting on layer 1"
    assert report.layers[1].output_shape is None


@pytest.mark.parametrize("make", [
    lambda: Conv(kernel_size="three"), lambda: Conv(stride=(1, 2, 3)), lambda: Conv(bias="yes"),
    lambda: Conv(padding="full"), lambda: SeparableConv(out_channels=2.5)])
def test_wrong_types_are_config_errors(make) -> None:
    with pytest.raises(ConfigError):
        make()


def test_zero_values_are_reported_not_raised() -> None:
    error = first_error(InputSpec(1, (8, 8)), Conv(stride=0))
    assert error.field == "stride" and "at least 1" in error.reason


def test_dilated_pool_window_that_sees_only_padding() -> None:
    # A 1-pixel input, kernel 2 dilated by 2 with same padding (one pixel each side): the two
    # taps land on the padding at -1 and +1.
    error = first_error(InputSpec(1, (1, 1)), MaxPool(kernel_size=2, stride=1, padding="same",
                                                      dilation=2))
    assert error.field == "dilation" and "pools only padding" in error.reason
    assert analyse(Stack(InputSpec(1, (3, 3))).appended(
        MaxPool(kernel_size=2, stride=1, padding="same", dilation=2))).ok
