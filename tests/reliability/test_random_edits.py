"""Any setting the property editor can reach gives a computed result or a clear message on the
layer at fault.

Random stacks take random sequences of edits whose values come from each field's own metadata
(the ranges and choices the property editor offers), biased toward the extremes: kernel 1 and
kernels larger than the input, strides larger than the kernel, dilation 10, 1 and 1024 channels,
1-pixel inputs. After every edit the arithmetic answers for every layer without raising, an error
sits on the layer at fault and says how to fix it, and the engine computes exactly the shapes the
arithmetic predicts. Stacks too large to compute quickly are only analysed.

CONVSCOPE_HYPOTHESIS_SCALE multiplies the number of stacks (see tests.stack_strategies.scaled).
"""
from __future__ import annotations

import dataclasses
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.executor import run
from models.analysis import StackReport, analyse
from models.errors import ConfigError
from models.layers import Dense, LayerInfo, LayerSpec, SeparableConv
from models.presets import PRESETS
from models.stack import Stack
from models.weights import materialise
from tests.stack_strategies import edits, scaled, stacks

MAX_WORK = 5e7
"""Multiply-accumulates plus pooling taps above which a stack is analysed but not run."""
MAX_VALUES = 4e6
"""The most values one tensor (an activation or a layer's weights) may hold for a stack to run."""
MAX_EDITS = 8
LAYER_WEIGHT_BUDGET = 2**28
"""Values (1 GiB of float32) a valid layer's weights may need: the window creates them on every
edit, on the UI thread, so a larger layer must be an error, not an allocation."""


def inner_specs(spec: LayerSpec) -> tuple[LayerSpec, ...]:
    """The specs a layer's LayerInfo.inner describes, in the same order (a separable conv's)."""
    if isinstance(spec, SeparableConv):
        return spec.parts()
    return ()


def cost(stack: Stack, report: StackReport) -> tuple[float, float]:
    """(work, largest tensor) of running the layers that can run, in MACs and values.

    Work adds to the MACs the taps of every window (pooling has no MACs but visits them all).
    """
    batch = stack.input.batch
    work = float(report.total_macs)
    largest = float(math.prod(stack.input.shape))
    for layer, layer_report in zip(stack.layers, report.layers):
        if layer_report.info is None:
            break
        parts: list[tuple[LayerSpec, LayerInfo]] = [(layer.spec, layer_report.info)]
        parts += zip(inner_specs(layer.spec), layer_report.info.inner)
        for spec, info in parts:
            values = batch * math.prod(info.output_shape)
            work += values * math.prod(getattr(spec, "kernel_size", ()))
            largest = max(largest, values, *(math.prod(s) for s in info.weight_shapes.values()))
    return work, largest


def spec_field_exists(spec: LayerSpec, field: str) -> bool:
    """Whether an error field ("stride") names a field of spec, or is "inputs", the node's edges
    (a merge with too few operands)."""
    return field == "inputs" or field in {f.name for f in dataclasses.fields(spec)}


def check_error(stack: Stack, index: int, error: ConfigError) -> None:
    """The error is on layer `index`, names a real field (or none), and says how to fix it."""
    layer = stack.layers[index]
    assert isinstance(error, ConfigError), error
    assert (error.layer_index, error.layer_name, error.layer_type) == (
        index, layer.name, layer.spec.type_name), error
    assert str(error).startswith(f"layer {index + 1} ({layer.name}, {layer.spec.type_name}): ")
    # Every message reads "what is wrong; how to fix it".
    what, _, fix = error.reason.partition("; ")
    assert what.strip() and fix.strip(), f"no fix in: {error.reason!r}"
    assert error.field is None or spec_field_exists(layer.spec, error.field), \
        f"{error.field!r} is no field of {layer.spec}"


def check_arithmetic(stack: Stack) -> StackReport:
    """Analyse the stack (which must not raise) and check where errors and waits sit."""
    report = analyse(stack)
    assert report.input_shape == stack.input.shape
    assert len(report.layers) == len(stack)
    failed = None
    for index, layer_report in enumerate(report.layers):
        assert layer_report.index == index and layer_report.name == stack.layers[index].name
        if failed is not None:
            assert layer_report.waiting_on == failed and layer_report.error is None
            assert not layer_report.ok
        elif layer_report.error is not None:
            check_error(stack, index, layer_report.error)
            assert not layer_report.ok
            failed = index
        else:
            assert layer_report.ok and layer_report.waiting_on is None
            assert all(d >= 1 for d in layer_report.output_shape), layer_report
            weights = layer_report.info.weight_shapes.values()
            assert sum(math.prod(shape) for shape in weights) <= LAYER_WEIGHT_BUDGET
    assert report.first_error is (None if failed is None else report.layers[failed].error)
    return report


def check_engine(stack: Stack, report: StackReport, rng: np.random.Generator) -> None:
    """Run the stack on a random input: every layer the arithmetic passes has an output of its
    predicted shape, finite and float32; the failing layer and those after it have none. An input
    that does not fit is a ConfigError."""
    x = rng.normal(size=stack.input.shape).astype(np.float32)
    with pytest.raises(ConfigError, match="the stack expects"):
        run(stack, np.concatenate([x, x[:, :1]], axis=1))  # one channel too many
    result = run(stack, x)
    assert str(result.error) == str(report.first_error)
    for layer_report, output in zip(report.layers, result.outputs):
        if layer_report.ok:
            assert output is not None, f"layer {layer_report.index} computed nothing"
            assert output.shape == layer_report.output_shape, (layer_report.index, output.shape)
            assert output.dtype == np.float32
            assert np.isfinite(output).all(), f"layer {layer_report.index} is not finite"
        else:
            assert output is None


def test_random_edits_give_a_result_or_a_clear_message() -> None:
    counts: Counter[str] = Counter()

    @settings(max_examples=scaled(150), deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(stacks(), st.data())
    def edit_and_check(stack: Stack, data: st.DataObject) -> None:
        counts["starting stacks"] += 1
        rng = np.random.default_rng(0)
        for step in range(data.draw(st.integers(0, MAX_EDITS), label="edits") + 1):
            if step:
                _, stack = data.draw(edits(stack), label=f"edit {step}")
                counts["edits"] += 1
            report = check_arithmetic(stack)
            counts["stacks analysed"] += 1
            counts["with an error"] += report.first_error is not None
            work, largest = cost(stack, report)
            if work > MAX_WORK or largest > MAX_VALUES:
                counts["too large to run"] += 1
                continue
            check_engine(stack, report, rng)
            counts["stacks run"] += 1

    edit_and_check()
    print("random edits:", dict(counts))


def test_a_layer_too_large_to_hold_says_so_instead_of_allocating() -> None:
    # The demo without its global pooling flattens 32x32x32 values: 100,000 dense units would
    # need 12 GiB of weights (and biases).
    stack = PRESETS["Demo: edges to classes"].build()
    stack = stack.removed(stack.index_of("globalavgpool1"))
    index = stack.index_of("dense1")
    stack = stack.with_spec(index, Dense(units=100_000))
    report = check_arithmetic(stack)
    error = report.layers[index].error
    assert error is not None and "3,276,900,000 values (12.2 GiB)" in error.reason
    assert materialise(stack, report).layers[index] is stack.layers[index]  # nothing allocated
