"""Timing the NumPy engine against onnxruntime (CPU, and CUDA when present) on the same input.

Each contender runs once to warm up (allocations, onnxruntime's first-run planning), then
repeatedly until it has run `min_runs` times and for `budget_s` seconds, or `max_runs` times.
The ratio of a contender is the engine's best time over its best time: above 1, onnxruntime is
that many times faster than the engine.
On CUDA the input stays on the GPU (IOBinding), as GPU.md advises, so the time is the GPU's
work; a second row includes the host-to-device and back copies a plain run pays.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from engine.executor import run
from engine.onnx.runner import CPU, CUDA, OrtRunner, available_providers
from models.stack import Stack
from models.weights import materialise


@dataclass(frozen=True)
class Timing:
    """Seconds per run of one contender: best and median over `runs` timed runs."""
    label: str
    engine: str
    provider: str | None
    best: float
    median: float
    runs: int


@dataclass(frozen=True)
class BenchReport:
    input_shape: tuple[int, ...]
    timings: tuple[Timing, ...]

    @property
    def engine(self) -> Timing:
        return self.timings[0]

    def ratio(self, timing: Timing) -> float:
        """The engine's best time over this contender's best time."""
        return self.engine.best / timing.best if timing.best > 0 else float("inf")


def time_runs(call: Callable[[], object], min_runs: int = 5, max_runs: int = 100,
              budget_s: float = 1.0) -> list[float]:
    """Seconds of each timed call after one warm-up call."""
    call()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < max_runs and (len(times) < min_runs
                                     or time.perf_counter() - started < budget_s):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def benchmark(stack: Stack, x: np.ndarray, min_runs: int = 5, max_runs: int = 100,
              budget_s: float = 1.0, runner: OrtRunner | None = None) -> BenchReport:
    """Time the engine, onnxruntime on CPU and, when available, on CUDA, on the input x.

    Raises ConfigError when the stack cannot run or x does not fit it.
    """
    stack = materialise(stack)
    first = run(stack, x)
    if first.error is not None:
        raise first.error
    runner = runner or OrtRunner()

    def timing(label: str, engine: str, provider: str | None, call: Callable[[], object]) -> Timing:
        times = time_runs(call, min_runs, max_runs, budget_s)
        return Timing(label, engine, provider, min(times), statistics.median(times), len(times))

    timings = [timing("NumPy engine", "numpy", None, lambda: run(stack, x))]
    timings.append(timing("onnxruntime CPU", "onnxruntime", CPU,
                          lambda: runner.run(stack, x, CPU)))
    if CUDA in available_providers():
        timings.append(timing("onnxruntime CUDA", "onnxruntime", CUDA,
                              _device_resident(runner, stack, x)))
        timings.append(timing("onnxruntime CUDA incl. copies", "onnxruntime", CUDA,
                              lambda: runner.run(stack, x, CUDA)))
    return BenchReport(tuple(x.shape), tuple(timings))


def _device_resident(runner: OrtRunner, stack: Stack, x: np.ndarray) -> Callable[[], object]:
    """A call that runs the CUDA session on an input already on the GPU, output left there."""
    import onnxruntime
    session, names = runner.session(stack, CUDA, x.shape[0])
    binding = session.io_binding()
    on_device = onnxruntime.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(x, np.float32),
                                                         "cuda", 0)
    binding.bind_ortvalue_input(session.get_inputs()[0].name, on_device)
    for name in names:
        binding.bind_output(name, "cuda")

    def call() -> None:
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()
    return call


def format_report(report: BenchReport) -> str:
    """A table of best and median times per contender, with the engine/contender ratio."""
    width = max(len(t.label) for t in report.timings)
    lines = [f"input {report.input_shape}",
             f"{'':<{width}}  {'best':>10}  {'median':>10}  {'runs':>4}  {'engine/this':>11}"]
    for t in report.timings:
        lines.append(f"{t.label:<{width}}  {_ms(t.best):>10}  {_ms(t.median):>10}  {t.runs:>4}  "
                     f"{report.ratio(t):>11.2f}")
    return "\n".join(lines)


def report_json(report: BenchReport) -> dict[str, object]:
    """The report as JSON-ready data: times in seconds, ratio as engine/contender."""
    return {"input_shape": list(report.input_shape),
            "results": [{"label": t.label, "engine": t.engine, "provider": t.provider,
                         "best_s": t.best, "median_s": t.median, "runs": t.runs,
                         "engine_over_this": report.ratio(t)} for t in report.timings]}


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"
