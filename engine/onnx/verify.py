"""Checking an ONNX export against the NumPy engine, layer by layer, on the same input.

The relative difference of a layer is its largest absolute difference divided by the largest
magnitude of the engine's output for that layer: a scale-aware measure that does not blow up on
values near zero, as an element-wise ratio would.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.executor import run
from engine.onnx.runner import OrtRunner
from models.stack import Stack

TOLERANCE = 1e-4  # fp32 exports differ by about 1e-6; TF32 by about 1e-3 (GPU.md)


@dataclass(frozen=True)
class LayerDifference:
    """One layer's largest absolute and relative difference between the engine and onnxruntime."""
    index: int
    name: str
    type_name: str
    max_abs: float
    max_rel: float

    @property
    def ok(self) -> bool:
        return self.max_rel <= TOLERANCE


@dataclass(frozen=True)
class VerifyReport:
    """Per-layer differences, the provider that ran the export and the input shape used."""
    layers: tuple[LayerDifference, ...]
    provider: str
    input_shape: tuple[int, ...]

    @property
    def ok(self) -> bool:
        return all(layer.ok for layer in self.layers)

    @property
    def worst(self) -> LayerDifference | None:
        return max(self.layers, key=lambda layer: layer.max_rel, default=None)


def random_input(stack: Stack, seed: int = 0) -> np.ndarray:
    """A standard-normal float32 batch of the stack's input shape (negative values included, so
    every branch of ReLU-like layers is exercised)."""
    return np.random.default_rng(seed).standard_normal(stack.input.shape, dtype=np.float32)


def compare(reference: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """(largest absolute difference, that over the reference's largest finite magnitude).

    Values that agree count as no difference, non-finite ones included: the same infinity on
    both sides (a network whose values overflow float32 overflows in both), or NaN on both sides.
    inf when the shapes differ or where only one side is NaN or infinite, or the two differ in
    sign of infinity.
    """
    if reference.shape != other.shape:
        return float("inf"), float("inf")
    reference = reference.astype(np.float64)
    other = other.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        difference = np.abs(reference - other)
    agree = (reference == other) | (np.isnan(reference) & np.isnan(other))
    difference = np.where(agree, 0.0, np.nan_to_num(difference, nan=np.inf))
    max_abs = float(difference.max(initial=0.0))
    finite = np.abs(reference[np.isfinite(reference)])
    scale = float(finite.max(initial=0.0))
    return max_abs, (max_abs / scale if scale > 0 else max_abs)


def verify(stack: Stack, x: np.ndarray | None = None, provider: str = "cpu",
           runner: OrtRunner | None = None) -> VerifyReport:
    """Run the stack with the engine and its ONNX export with onnxruntime; compare every layer.

    x defaults to random_input(stack). Raises ConfigError when the stack cannot run or the
    provider is unavailable.
    """
    x = random_input(stack) if x is None else x
    result = run(stack, x)
    if result.error is not None:
        raise result.error
    ort_run = (runner or OrtRunner()).run(result.stack, x, provider, layer_outputs=True)
    rows = []
    for i, (layer, ours, theirs) in enumerate(zip(result.stack.layers, result.outputs,
                                                   ort_run.outputs)):
        max_abs, max_rel = compare(ours, theirs)
        rows.append(LayerDifference(i, layer.name, layer.spec.type_name, max_abs, max_rel))
    return VerifyReport(tuple(rows), ort_run.provider, tuple(x.shape))


def format_report(report: VerifyReport) -> str:
    """A table: one row per layer with its differences, then a verdict line."""
    width = max([len(f"{r.name} ({r.type_name})") for r in report.layers] + [12])
    lines = [f"{'layer':<{width}}  {'max abs diff':>12}  {'max rel diff':>12}"]
    for r in report.layers:
        flag = "" if r.ok else "  above tolerance"
        lines.append(f"{f'{r.name} ({r.type_name})':<{width}}  {r.max_abs:>12.3e}  "
                     f"{r.max_rel:>12.3e}{flag}")
    worst = report.worst
    verdict = "ok" if report.ok else "FAILED"
    detail = f"largest relative difference {worst.max_rel:.3e} at {worst.name}" if worst else \
        "no layers"
    lines.append(f"{verdict}: onnxruntime ({report.provider}) against the engine on input "
                 f"{report.input_shape}, {detail}, tolerance {TOLERANCE:g}")
    return "\n".join(lines)
