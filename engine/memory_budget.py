"""How much memory a run that keeps every layer's output needs, known from the arithmetic alone.

The executor keeps the input and every layer's output (the feature maps show any of them), so a
run needs their sum, plus, while one layer computes, that layer's scratch. Both follow from shape
inference, so a stack too big for the budget is refused before anything is allocated, with the
estimate in the message. Weights are not counted: they belong to the stack, not to the run.

The budget is 2 GB unless the environment variable CONVSCOPE_MEMORY_BUDGET says otherwise
(bytes, or a number with K, M or G, e.g. "4G" or "512MB"; decimal units).
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from models.analysis import BYTES_PER_VALUE, StackReport
from models.errors import ConfigError
from models.layers import LayerInfo

GB = 1_000_000_000
DEFAULT_BUDGET = 2 * GB
BUDGET_VARIABLE = "CONVSCOPE_MEMORY_BUDGET"
_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run needs. kept: the input plus every layer's output (what a RunResult holds);
    transient: the largest scratch of any one layer while it computes (a conservative bound)."""
    kept: int
    transient: int

    @property
    def total(self) -> int:
        return self.kept + self.transient


def _values(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def layer_scratch(input_shape: tuple[int, ...], info: LayerInfo) -> int:
    """Values (per sample) one layer may hold besides its input and output while it runs.

    A re-laid-out or padded copy of its input, two output-sized temporaries (a result in another
    layout before the copy into place; a gated block's second convolution and its sigmoid, a
    residual sum), and a block's inner outputs, which live until the block ends. The engine's
    patch matrices are built in bounded blocks and fit well inside this.
    """
    inner = sum(_values(part.output_shape) for part in info.inner)
    return _values(input_shape) + 2 * _values(info.output_shape) + inner


def estimate(report: StackReport, batch: int | None = None) -> MemoryEstimate:
    """The memory of a run of the report's network on a batch of `batch` samples (default: the
    network's own batch). Layers that cannot compute are not run, so not counted."""
    batch = report.input_shape[0] if batch is None else batch
    kept = _values(report.input_shape[1:])
    transient = 0
    for layer in report.layers:
        if layer.info is None:
            continue
        kept += _values(layer.info.output_shape)
        inputs = sum(_values(shape[1:]) for shape in layer.input_shapes)
        transient = max(transient, layer_scratch((inputs,), layer.info))
    scale = batch * BYTES_PER_VALUE
    return MemoryEstimate(kept * scale, transient * scale)


def size_text(count: int) -> str:
    """3_400_000_000 -> "3.4 GB", 25_000_000 -> "25 MB" (decimal units, as the budget)."""
    return f"{count / GB:.1f} GB" if count >= GB // 10 else f"{count / 10**6:.0f} MB"


def parse_budget(text: str) -> int:
    """Bytes from "2000000000", "2G", "1.5GB", "512M" (decimal units); raises ConfigError."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([KMGT]?)B?\s*", text.upper())
    if match is None or float(match.group(1)) <= 0:
        raise ConfigError(f"{BUDGET_VARIABLE}={text!r} is not a memory size; give bytes or a "
                          f"number with K, M or G, such as 4G")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def default_budget() -> int:
    """CONVSCOPE_MEMORY_BUDGET when set (raises ConfigError if it is not a size), else 2 GB."""
    text = os.environ.get(BUDGET_VARIABLE)
    return DEFAULT_BUDGET if text is None else parse_budget(text)


def check_budget(report: StackReport, batch: int | None = None,
                 budget: int | None = None) -> MemoryEstimate:
    """The estimate of a run; raises ConfigError, naming the estimate and the budget (default:
    default_budget()), when the run would need more."""
    budget = default_budget() if budget is None else budget
    needed = estimate(report, batch)
    if needed.total > budget:
        batch = report.input_shape[0] if batch is None else batch
        raise ConfigError(
            f"the outputs of this stack at batch {batch} need about {size_text(needed.total)}, "
            f"over the {size_text(budget)} budget; lower the batch or the input size, or raise "
            f"the budget ({BUDGET_VARIABLE}={math.ceil(needed.total / GB)}G would do)",
            field="input")
    return needed
