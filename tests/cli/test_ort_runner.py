"""The onnxruntime runner (provider choice, caching), the per-layer comparison and the timings."""
from __future__ import annotations

import numpy as np
import pytest

from engine import benchmark
from engine.onnx import verify
from engine.executor import run
from engine.onnx.runner import CPU, OrtRunner, resolve_provider
from models import presets
from models.errors import ConfigError
from models.stack import InputSpec


def test_provider_names():
    assert resolve_provider("cpu") == CPU
    assert resolve_provider(CPU) == CPU
    assert resolve_provider("auto") in ("CUDAExecutionProvider", CPU)
    with pytest.raises(ConfigError, match="auto, cpu or cuda"):
        resolve_provider("tpu")


def test_cuda_without_cuda_says_how_to_get_it(monkeypatch):
    from engine.onnx import runner as ort_runner
    monkeypatch.setattr(ort_runner, "available_providers", lambda: [CPU])
    with pytest.raises(ConfigError, match="install onnxruntime-gpu in place of onnxruntime"):
        resolve_provider("cuda")
    assert resolve_provider("auto") == CPU


def test_sessions_are_cached_per_stack_and_batch():
    runner = OrtRunner()
    stack = presets.lenet5()
    first = runner.session(stack, "cpu")
    assert runner.session(stack, "cpu")[0] is first[0]
    assert runner.session(stack, "cpu", batch=3)[0] is not first[0]
    assert runner.session(presets.lenet5(), "cpu")[0] is not first[0]  # an equal, new stack


def test_layer_outputs_match_the_engine_for_any_batch():
    stack = presets.lenet5()
    x = np.random.default_rng(0).standard_normal((3, 1, 32, 32), dtype=np.float32)
    ours = run(stack, x)
    theirs = OrtRunner().run(stack, x, "cpu", layer_outputs=True)
    assert theirs.provider == CPU and theirs.seconds > 0
    assert len(theirs.outputs) == len(stack.layers)
    for a, b in zip(ours.outputs, theirs.outputs):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


def test_a_stack_that_cannot_compute_is_refused_before_export():
    stack = presets.lenet5()
    stack = stack.with_input(InputSpec(1, (8, 8)))
    with pytest.raises(ConfigError, match="layer 4"):
        OrtRunner().run(stack, np.zeros((1, 1, 8, 8), np.float32), "cpu")


def test_compare_is_relative_to_the_layer_scale():
    reference = np.array([0.0, 100.0, -50.0], np.float32)
    assert verify.compare(reference, reference + [0.0, 0.01, 0.0]) == pytest.approx((0.01, 1e-4))
    assert verify.compare(reference, reference[:2]) == (np.inf, np.inf)
    assert verify.compare(reference, np.array([np.nan, 100, -50], np.float32))[0] == np.inf


def test_verify_report_lists_every_layer():
    report = verify.verify(presets.lenet5())
    assert report.ok and [r.name for r in report.layers] == [l.name for l in
                                                            presets.lenet5().layers]
    assert "ok: onnxruntime (CPUExecutionProvider)" in verify.format_report(report)


def test_time_runs_warms_up_then_times_at_least_min_runs():
    calls = []
    times = benchmark.time_runs(lambda: calls.append(1), min_runs=3, max_runs=4, budget_s=0.0)
    assert len(times) == 3 and len(calls) == 4
