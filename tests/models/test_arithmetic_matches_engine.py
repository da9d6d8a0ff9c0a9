"""The arithmetic's shapes equal the engine's, for random stacks of every layer kind."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings

from engine.executor import run
from models.analysis import analyse
from tests.stack_strategies import stacks


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks())
def test_every_layer_output_has_the_predicted_shape(stack) -> None:
    report = analyse(stack)
    x = np.random.default_rng(0).normal(size=stack.input.shape).astype(np.float32)
    result = run(stack, x)
    for layer_report, output in zip(report.layers, result.outputs):
        if layer_report.ok:
            assert output is not None and output.shape == layer_report.output_shape
            assert output.dtype == np.float32
        else:
            assert output is None
