"""Runs a whole network on an input in topological order and keeps every layer's output,
recomputing only what changed.

Layers are immutable values, so a layer that is the same object as in the previous run, reading
layers that were themselves reused (or the same input), gives the same output: a run reuses it,
and recomputes only what lies downstream of an edit (an edit to one branch leaves the others).

A run that would not fit the memory budget (engine.memory_budget) is refused before anything is
allocated.
"""
from __future__ import annotations

import functools
import time
import weakref
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from engine.forward import layer_forward
from engine.memory_budget import check_budget
from engine.nonfinite import nonfinite_warning
from models.analysis import StackReport, analyse
from models.errors import ConfigError
from models.stack import Stack
from models.weights import materialise


class Cancelled(Exception):
    """The run was superseded by a newer one before it finished."""


@dataclass
class RunResult:
    """Every layer's output for one input (None for a layer that cannot run or waits on one).

    report: the arithmetic the run followed; error: the first layer's ConfigError, if any;
    seconds: time spent per layer in this run (0 for reused outputs); reused: how many layers
    came from the previous run (for a chain, a leading run of them).
    """
    stack: Stack
    input: np.ndarray
    report: StackReport
    outputs: list[np.ndarray | None]
    seconds: list[float] = field(default_factory=list)
    reused: int = 0

    @property
    def error(self) -> ConfigError | None:
        return self.report.first_error

    @property
    def output(self) -> np.ndarray | None:
        """The first network output's array (the input for an empty network)."""
        if not self.outputs:
            return self.input
        return self.outputs[self.report.outputs[0] if self.report.outputs else -1]

    @functools.cached_property
    def nonfinite(self) -> str | None:
        """The sentence naming where NaN or infinite values start (engine.nonfinite), or None.

        A pass over every output, made once: the live view's worker asks for it before handing
        the result to the UI thread."""
        return nonfinite_warning(self.input, self.outputs,
                                 [layer.name for layer in self.stack.layers])


# Per network, its arithmetic and whether it holds all of its weights: a Stack is an immutable
# value, and the live view runs the same one on each new input. On the 2-core dev VM analyse()
# took 1.2 ms per run of MobileNetV2 (100 nodes), and materialise() 2.5 us per node on the demo.
_KNOWN: weakref.WeakKeyDictionary[Stack, tuple[StackReport, bool]] = weakref.WeakKeyDictionary()


def _known(stack: Stack) -> tuple[StackReport, bool]:
    """(the stack's report, whether every weight is in place)."""
    known = _KNOWN.get(stack)
    if known is None:
        known = _KNOWN[stack] = (analyse(stack), False)
    return known


def prepare_input(stack: Stack, x: np.ndarray) -> np.ndarray:
    """x as float32 (N, C, *spatial) matching the stack's input; raises ConfigError otherwise."""
    x = np.asarray(x)
    want = stack.input.sample_shape
    if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want:
        raise ConfigError(f"the input array has shape {tuple(x.shape)}, but the stack expects "
                          f"(N, {', '.join(map(str, want))}); resize the input or change the "
                          f"stack's input size", field="input")
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise ConfigError(f"the input array holds {x.dtype} values; it must hold real numbers",
                          field="input")
    return np.ascontiguousarray(x, dtype=np.float32)


def run(stack: Stack, x: np.ndarray, previous: RunResult | None = None,
        should_stop: Callable[[], bool] | None = None,
        memory_budget: int | None = None) -> RunResult:
    """Forward x through every layer that can run; weights missing from the stack are filled.

    Raises ConfigError when x does not fit the stack's input or when the kept outputs of x's
    batch would exceed memory_budget bytes (None: engine.memory_budget.default_budget(), 2 GB
    unless set) -- both before anything is allocated -- and Cancelled when should_stop() turns
    true between layers. A layer whose settings cannot work stops the run there (see .error).
    """
    report, complete = _known(stack)
    x = np.asarray(x)
    if x.ndim > 0 and tuple(x.shape[1:]) == stack.input.sample_shape:  # else prepare_input refuses
        check_budget(report, batch=x.shape[0], budget=memory_budget)
    if not complete:
        filled = materialise(stack, report)
        if filled is stack:
            _KNOWN[stack] = (report, True)
        stack = filled
    x = prepare_input(stack, x)
    count = len(stack.layers)
    outputs: list[np.ndarray | None] = [None] * count
    seconds = [0.0] * count
    reused = _reusable(stack, x, previous)
    for i in range(count):
        layer_report = report.layers[i]
        if layer_report.info is None:
            continue
        if reused[i] is not None:
            outputs[i] = reused[i]
            continue
        if should_stop is not None and should_stop():
            raise Cancelled()
        inputs = [x if j < 0 else outputs[j] for j in stack.sources[i]]
        start = time.perf_counter()
        outputs[i] = layer_forward(stack.layers[i].spec, layer_report.info,
                                   stack.layers[i].weights, *inputs)
        seconds[i] = time.perf_counter() - start
    return RunResult(stack, x, report, outputs, seconds,
                     sum(1 for r in reused if r is not None))


def _reusable(stack: Stack, x: np.ndarray, previous: RunResult | None) -> list[np.ndarray | None]:
    """Per layer, the previous run's output when the same layer object read the same arrays."""
    reused: list[np.ndarray | None] = [None] * len(stack.layers)
    if previous is None or not (previous.input is x or (previous.input.shape == x.shape
                                                         and np.array_equal(previous.input, x))):
        return reused
    where = {id(layer): j for j, layer in enumerate(previous.stack.layers)}
    mapped: dict[int, int] = {-1: -1}  # this run's index -> the previous run's, for reused layers
    for i, layer in enumerate(stack.layers):
        j = where.get(id(layer))
        if j is None or previous.outputs[j] is None:
            continue
        old_sources = previous.stack.sources[j]
        if len(old_sources) == len(stack.sources[i]) and all(
                mapped.get(source) == old for source, old in zip(stack.sources[i], old_sources)):
            reused[i] = previous.outputs[j]
            mapped[i] = j
    return reused


def forward(stack: Stack, x: np.ndarray) -> np.ndarray:
    """The stack's final output; raises the first layer's ConfigError if the stack cannot run."""
    result = run(stack, x)
    if result.error is not None:
        raise result.error
    return result.output
