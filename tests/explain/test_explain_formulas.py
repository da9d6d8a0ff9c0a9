"""The formula rows' values: hand-worked numbers, and for random layers the analysis' shapes,
parameters and MACs."""
from __future__ import annotations

import math

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from models.analysis import analyse
from models.explain_formulas import layer_formulas
from models.layers import (AvgPool, Conv, ConvTranspose, DepthwiseConv, MaxPool, PointwiseConv,
                           ReLU)
from models.stack import InputSpec, Stack
from tests.stack_strategies import layer_specs


def formulas_of(spec, in_shape, batch=1):
    return layer_formulas(spec, spec.analyse(in_shape), in_shape, batch)


def test_hand_worked_sizes_and_same_split() -> None:
    # Conv1D width 10, kernel 3, stride 2, valid: (10 - 2 - 1)/2 + 1 = 4.5 -> 4.
    rows = formulas_of(Conv(rank=1, out_channels=4, kernel_size=3, stride=2, padding="valid"),
                       (2, 10))
    assert rows.value("Output length") == 4
    assert next(r.numbers for r in rows.rows if r.label == "Output length").endswith("= ⌊4.5⌋")
    # Width 10, kernel 4, stride 1, same: total 3, begin 1, end 2 (the odd pixel at the end).
    rows = formulas_of(Conv(rank=1, out_channels=4, kernel_size=4, padding="same"), (2, 10))
    assert rows.value("Same padding total length") == 3
    assert rows.value("Same padding length") == "1 + 2"
    assert rows.rows[1].numbers == "⌊3/2⌋ + (3 − 1)" and rows.rows[1].note == \
        "the odd pixel at the end"
    assert rows.value("Output length") == 10
    # 13 wide, kernel 3, stride 2, pads 1: (13 - 2 - 1 + 2)/2 + 1 = 7.
    rows = formulas_of(Conv(out_channels=8, kernel_size=3, stride=2, padding="explicit", pads=1),
                       (3, 13, 13))
    assert rows.value("Output height") == rows.value("Output width") == 7
    # (3*3*3 + 1) * 8 = 224 parameters; 7*7 pixels * 8 filters * 27 taps = 10584 MACs per image.
    assert rows.value("Parameters") == 224
    assert rows.value("MACs") == 10584
    # A dense layer from 3*13*13 = 507 to 8*7*7 = 392 features: 507*392 + 392 weights.
    assert rows.value("Fully connected parameters") == 199136
    assert rows.value("Fully connected MACs") == 198744


def test_hand_worked_transposed_depthwise_and_pooling() -> None:
    # (8 - 1)*2 - 0 - 0 + 1*(2 - 1) + 0 + 1 = 16.
    rows = formulas_of(ConvTranspose(out_channels=3, kernel_size=2, stride=2), (4, 8, 8))
    assert rows.value("Output width") == 16
    assert rows.value("Parameters") == (2 * 2 * 4 + 1) * 3
    # Transposed same, kernel 3 stride 2: crops 1*(3-1) + 1 - 2 = 1 pixel, at the end.
    rows = formulas_of(ConvTranspose(rank=1, out_channels=3, kernel_size=3, stride=2,
                                     padding="same"), (4, 8))
    assert rows.value("Same crop length") == "0 + 1" and rows.value("Output length") == 16
    # Depthwise, 32 channels, 3x3, no bias: 3*3*32/32 * 32 = 288 weights (MobileNet's figure).
    rows = formulas_of(DepthwiseConv(bias=False), (32, 112, 112))
    assert rows.value("Parameters") == 288
    # Its pointwise partner, 32 -> 64 channels: 1*1*32*64 = 2048.
    assert formulas_of(PointwiseConv(out_channels=64, bias=False),
                       (32, 4, 4)).value("Parameters") == 2048
    # Max pool 2/2 with ceil mode on 7: ⌈(7 - 1 - 1)/2 + 1⌉ = ⌈3.5⌉ = 4.
    rows = formulas_of(MaxPool(kernel_size=2, ceil_mode=True), (3, 7, 7))
    assert rows.value("Output height") == 4
    # Ceil mode drops a last window that would start in the end padding: 5 wide, kernel 2,
    # stride 2, pads 0 + 1 -> ⌈(5 - 1 - 1 + 1)/2 + 1⌉ = 3, and window 3 starts at 4 < 5: kept.
    rows = formulas_of(AvgPool(rank=1, kernel_size=2, padding="explicit", pads=(0, 1),
                               ceil_mode=True), (1, 5))
    assert rows.value("Output length") == 3
    rows = formulas_of(ReLU(), (3, 4, 4))
    assert rows.rows == () and "no sliding window" in rows.note


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 2), st.integers(1, 4), st.data())
def test_values_agree_with_the_analysis(rank: int, channels: int, data: st.DataObject) -> None:
    spec = data.draw(layer_specs(rank, channels))
    assume(isinstance(spec, (Conv, DepthwiseConv, PointwiseConv, ConvTranspose, MaxPool,
                             AvgPool)))
    spatial = tuple(data.draw(st.integers(3, 12)) for _ in range(rank))
    batch = data.draw(st.integers(1, 3))
    report = analyse(Stack(InputSpec(channels, spatial, batch)).appended(spec))
    assume(report.ok)
    layer = report.layers[0]
    rows = layer_formulas(spec, layer.info, (channels, *spatial), batch)
    sizes = tuple(row.value for row in rows.rows if row.label.startswith("Output"))
    assert sizes == layer.output_shape[2:]
    if isinstance(spec, (MaxPool, AvgPool)):
        return
    assert rows.value("Parameters") == layer.params
    assert rows.value("MACs") == layer.macs
    features_in, features_out = channels * math.prod(spatial), math.prod(layer.output_shape[1:])
    assert rows.value("Fully connected parameters") == features_in * features_out + features_out
