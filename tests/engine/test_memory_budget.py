"""The memory budget: a run whose kept outputs would not fit is refused, with the estimate, before
anything is allocated; one that fits runs. The estimate is checked against the real outputs."""
from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

from engine.executor import run
from engine.memory_budget import (BUDGET_VARIABLE, DEFAULT_BUDGET, estimate, parse_budget,
                                  size_text)
from models.analysis import analyse
from models.errors import ConfigError
from models.presets import demo, vgg16
from models.stack import Stack


def outputs_bytes(stack: Stack) -> int:
    """The input's and every layer's float32 output size, from the report's shapes alone."""
    report = analyse(stack)
    shapes = [report.input_shape] + [layer.output_shape for layer in report.layers]
    return sum(math.prod(shape) * 4 for shape in shapes)


@pytest.fixture(autouse=True)
def no_budget_variable(monkeypatch):
    monkeypatch.delenv(BUDGET_VARIABLE, raising=False)


def test_a_stack_over_the_budget_is_refused_before_anything_is_allocated():
    stack = vgg16(batch=32)
    x = np.zeros((32, 3, 224, 224), np.float32)
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as caught:
            run(stack, x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # VGG-16 weights alone are 553 MB and one batch-32 conv output 411 MB: none was made.
    assert peak < 5_000_000
    message = str(caught.value)
    needed = estimate(analyse(stack), 32).total
    assert f"at batch 32 need about {size_text(needed)}" in message
    assert f"over the {size_text(DEFAULT_BUDGET)} budget" in message
    assert BUDGET_VARIABLE in message
    real = outputs_bytes(stack)
    assert real > DEFAULT_BUDGET
    assert real <= needed <= 2 * real


def test_the_estimate_follows_the_batch_of_the_input_given():
    stack = vgg16(batch=1)
    one = estimate(analyse(stack), 1)
    assert estimate(analyse(stack), 32).total == 32 * one.total
    assert one.kept == outputs_bytes(stack)


def test_a_stack_under_the_budget_runs_and_keeps_what_was_estimated():
    stack = demo()
    x = np.random.default_rng(0).standard_normal((1, 3, 128, 128), dtype=np.float32)
    needed = estimate(analyse(stack))
    result = run(stack, x, memory_budget=needed.total)
    kept = result.input.nbytes + sum(out.nbytes for out in result.outputs)
    assert kept == needed.kept
    with pytest.raises(ConfigError, match="over the"):
        run(stack, x, memory_budget=needed.total - 1)


def test_the_budget_comes_from_the_environment(monkeypatch):
    stack = demo()
    x = np.zeros((1, 3, 128, 128), np.float32)
    monkeypatch.setenv(BUDGET_VARIABLE, "1M")
    with pytest.raises(ConfigError, match="over the 1 MB budget"):
        run(stack, x)
    monkeypatch.setenv(BUDGET_VARIABLE, "a lot")
    with pytest.raises(ConfigError, match=BUDGET_VARIABLE):
        run(stack, x)


@pytest.mark.parametrize("text, expected", [
    ("2000000000", 2 * 10**9), ("2G", 2 * 10**9), ("1.5GB", 1_500_000_000), ("512m", 512 * 10**6),
    (" 64 KB ", 64_000),
])
def test_budget_sizes_parse_in_decimal_units(text, expected):
    assert parse_budget(text) == expected


@pytest.mark.parametrize("text", ["", "-1G", "0", "2 GiB", "G"])
def test_a_budget_that_is_not_a_size_is_a_config_error(text):
    with pytest.raises(ConfigError):
        parse_budget(text)


def test_the_command_line_refuses_an_oversized_run_in_one_line(capsys):
    import main

    status = main.main(["bench", "vgg block", "--input-shape", "64,3,224,224"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1
    assert "at batch 64 need about" in err[0] and "over the 2.0 GB budget" in err[0]
