"""How much memory a run that keeps every layer's output needs, known from the arithmetic alone.

The executor keeps the input and every layer's output (the feature maps show any of them), so a
run needs their sum, plus, while one layer computes, that layer's scratch. Both follow from shape
inference, so a stack too big for the budget is refused before anything is allocated, with the
estimate in the message, and the layer named when its scratch is most of it. Weights are
not counted: they belong to the stack, not to the run.

A windowed layer's scratch is what engine.ops allocates for it (see `window_scratch`): its
input padded and split by stride phase (pooling, depthwise convolution) and a pool's partial
results, the im2col patch matrix in blocks (other convolutions), the uncropped output and the
per-tap contributions (transposed convolution), and the kernels' Python tables of one entry per kernel tap, which
for a kernel of ten million taps outweigh everything else. A kernel far larger than its input
with `same` padding is refused for what its padding costs, not only for its small output.

The estimate is linear in the batch: costs that do not grow with it (the tap tables) are counted
per sample, which over-counts them for a large batch.

The budget is 2 GB unless the environment variable CONVSCOPE_MEMORY_BUDGET says otherwise
(bytes, or a number with K, M, G or T, e.g. "4G" or "512MB"; decimal units). A value that is not
a finite size of at least one byte (junk, negative, "1e400") is an error naming the variable,
not a silent default: a budget the person set and mistyped should not be replaced unnoticed.
"""
from __future__ import annotations

import math
import os
import re
import weakref
from dataclasses import dataclass
from typing import Sequence

from models.analysis import BYTES_PER_VALUE, StackReport
from models.errors import ConfigError, display_name
from models.layers import LayerInfo

GB = 1_000_000_000
DEFAULT_BUDGET = 2 * GB
BUDGET_VARIABLE = "CONVSCOPE_MEMORY_BUDGET"
_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
TAP_BYTES = {1: 384, 2: 512, 3: 640}
"""Bytes of the kernels' tables per kernel tap, by spatial axes (tuples of offsets and slices;
measured at 260, 440 and 560 bytes at their peak, with headroom)."""
# engine.ops.conv's im2col blocks: at least _MIN_BLOCK_PIXELS output pixels, or one output row,
# or _IM2COL_BLOCK_BYTES of working set, whichever is most; each thread keeps up to two block
# shapes (a regular one and the remainder).
_IM2COL_BLOCK_BYTES = 4 << 20
_MIN_BLOCK_PIXELS = 64
_BLOCKS_PER_THREAD = 2


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run needs. kept: the input plus every layer's output (what a RunResult holds);
    transient: the largest scratch of any one layer while it computes (a conservative bound);
    layer: the index of that layer (None when no layer runs); window: the part of transient
    that is that layer's padding, patch matrices and tap tables."""
    kept: int
    transient: int
    layer: int | None = None
    window: int = 0

    @property
    def total(self) -> int:
        return self.kept + self.transient


def _values(shape: Sequence[int]) -> int:
    return math.prod(shape)


def layer_scratch(input_shapes: Sequence[tuple[int, ...]], info: LayerInfo) -> int:
    """Values (per sample) one layer may hold besides its inputs and output while it runs.

    input_shapes: the layer's input shapes without the batch axis. A re-laid-out copy of its
    inputs, two output-sized temporaries (a result in another layout before the copy into place;
    a gated block's second convolution and its sigmoid, a residual sum), a block's inner
    outputs, which live until the block ends, and its windows' scratch (window_scratch).
    """
    inner = sum(_values(part.output_shape) for part in info.inner)
    base = sum(_values(shape) for shape in input_shapes) + 2 * _values(info.output_shape) + inner
    window = window_scratch(input_shapes[0], info) if input_shapes else 0
    return base + -(-window // BYTES_PER_VALUE)


def window_scratch(input_shape: tuple[int, ...], info: LayerInfo) -> int:
    """Bytes (per sample) of the scratch engine.ops allocates for a windowed layer (convolution,
    pooling, or a block of them: its largest inner one); 0 for other layers.

    input_shape: (C, *spatial) without the batch axis.
    """
    if info.inner:
        largest, shape = 0, tuple(input_shape)
        for part in info.inner:  # a block's inner layers run one after the other
            largest = max(largest, window_scratch(shape, part))
            shape = tuple(part.output_shape)
        return largest
    if "pads" not in info.attrs or len(info.rf_steps) != 1 or len(input_shape) < 2:
        return 0
    steps = info.rf_steps[0]
    weights = [shape for key, shape in info.param_shapes.items()
               if key.rsplit(".", 1)[-1] == "W" and len(shape) == len(input_shape) + 1]
    # A pooling window's kernel and dilation are not in its info, only their span: taps and
    # phases counted from the span are never fewer than the real ones.
    kernel = tuple(weights[0][2:]) if weights else tuple(step.kernel for step in steps)
    tables = math.prod(kernel) * TAP_BYTES.get(len(kernel), max(TAP_BYTES.values()))
    if steps[0].transposed:
        return _transposed(input_shape, info, kernel, weights[0]) + tables
    if not weights:
        # Pooling: the planes, and per axis reduced before the first one at most as many
        # partial results again, plus the result, each of one plane's size (engine.ops.pooling).
        planes, _ = _phase_planes(steps, info.output_shape[1:])
        return BYTES_PER_VALUE * input_shape[0] * (len(steps) + 1) * planes + tables
    out_channels = sum(shape[0] for shape in weights)
    group = int(info.attrs.get("group", 1))
    if group == input_shape[0] > 1:  # depthwise: phase planes, and two accumulators
        planes, grid = _phase_planes(steps, info.output_shape[1:])
        return BYTES_PER_VALUE * (input_shape[0] * planes + 2 * out_channels * grid) + tables
    if all(k == 1 for k in kernel) and all(s.stride == 1 for s in steps) \
            and not any(info.attrs["pads"]):
        return tables  # a 1x1 convolution is a plain matmul into its output
    return _patch_blocks(input_shape[0] // group * math.prod(kernel) + 1, group, out_channels,
                         info.output_shape[1:]) + tables


def _phase_planes(steps: Sequence[object], out: Sequence[int]) -> tuple[int, int]:
    """(values of one channel's padded input split by stride phase, values of its accumulator
    grid), as engine.ops.conv._PhaseGrid lays them out: along each axis at most min(span, stride)
    phases of out + (span - 1) // stride cells, one extra row on the first axis."""
    lengths = [o + (step.kernel - 1) // step.stride for o, step in zip(out, steps)]  # type: ignore
    phases = math.prod(min(step.kernel, step.stride) for step in steps)  # type: ignore
    rest = math.prod(lengths[1:])
    return phases * (lengths[0] + 1) * rest, out[0] * rest


def _patch_blocks(rows_per_group: int, group: int, out_channels: int, out: Sequence[int]) -> int:
    """Bytes (per sample) of im2col patch blocks and their GEMM results: one image's whole
    patch matrix, or two blocks (a thread keeps a regular one and the remainder), whichever is
    smaller. The pool's threads share a batch's blocks, so a sample's share is this."""
    pixel_bytes = BYTES_PER_VALUE * (group * rows_per_group + out_channels)
    block_pixels = max(_MIN_BLOCK_PIXELS, _IM2COL_BLOCK_BYTES // pixel_bytes, _values(out[1:]))
    return pixel_bytes * min(_values(out), _BLOCKS_PER_THREAD * block_pixels)


def _transposed(input_shape: tuple[int, ...], info: LayerInfo, kernel: tuple[int, ...],
                weight: tuple[int, ...]) -> int:
    """Bytes (per sample) of a transposed convolution's uncropped output and the contributions
    of every tap of a group (C_out/group * taps * input pixels), two groups' at once."""
    pads = info.attrs["pads"]
    rank = len(kernel)
    full = info.output_shape[0] * math.prod(o + pads[i] + pads[i + rank]
                                            for i, o in enumerate(info.output_shape[1:]))
    contributions = weight[1] * math.prod(kernel) * _values(input_shape[1:])
    # With several groups, one group's contributions are made while the last one's still live.
    return BYTES_PER_VALUE * (full + contributions * min(int(info.attrs.get("group", 1)), 2))


def estimate(report: StackReport, batch: int | None = None) -> MemoryEstimate:
    """The memory of a run of the report's network on a batch of `batch` samples (default: the
    network's own batch). Layers that cannot compute are not run, so not counted."""
    batch = report.input_shape[0] if batch is None else batch
    kept, transient, largest, window = _per_sample(report)
    scale = batch * BYTES_PER_VALUE
    return MemoryEstimate(kept * scale, transient * scale, largest, window * batch)


# Per report, its per-sample figures: a report is immutable, and the executor checks the budget
# on every run of the same network (0.26 ms a run for MobileNetV2's 100 nodes).
_PER_SAMPLE: dict[int, tuple[int, int, int | None, int]] = {}


def _per_sample(report: StackReport) -> tuple[int, int, int | None, int]:
    """(kept values, transient values, that layer's index, window bytes) for one sample."""
    known = _PER_SAMPLE.get(id(report))
    if known is not None:
        return known
    kept = _values(report.input_shape[1:])
    transient, largest, window = 0, None, 0
    for layer in report.layers:
        if layer.info is None:
            continue
        kept += _values(layer.info.output_shape)
        shapes = [tuple(shape[1:]) for shape in layer.input_shapes]
        scratch = layer_scratch(shapes, layer.info)
        if scratch > transient:
            transient, largest = scratch, layer.index
            window = window_scratch(shapes[0], layer.info) if shapes else 0
    figures = _PER_SAMPLE[id(report)] = (kept, transient, largest, window)
    # An id is reused once its report is gone: the entry goes with the report.
    weakref.finalize(report, _PER_SAMPLE.pop, id(report), None)
    return figures


def size_text(count: int) -> str:
    """3_400_000_000 -> "3.4 GB", 25_000_000 -> "25 MB" (decimal units, as the budget)."""
    return f"{count / GB:.1f} GB" if count >= GB // 10 else f"{count / 10**6:.0f} MB"


def parse_budget(text: str) -> int:
    """Bytes from "2000000000", "2G", "1.5GB", "512M" (decimal units); raises ConfigError naming
    CONVSCOPE_MEMORY_BUDGET for anything else, including sizes that are not finite ("1e400"),
    negative, or under one byte."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([KMGT]?)B?\s*",
                         text.upper())
    size = float(match.group(1)) * _UNITS[match.group(2)] if match else math.nan
    if not math.isfinite(size) or size < 1:
        raise ConfigError(f"{BUDGET_VARIABLE}={display_name(text, 40)!r} is not a memory size; "
                          f"give bytes or a number with K, M, G or T, such as 4G")
    return int(size)


def default_budget() -> int:
    """CONVSCOPE_MEMORY_BUDGET when set (raises ConfigError if it is not a size), else 2 GB."""
    text = os.environ.get(BUDGET_VARIABLE)
    return DEFAULT_BUDGET if text is None else parse_budget(text)


def check_budget(report: StackReport, batch: int | None = None,
                 budget: int | None = None) -> MemoryEstimate:
    """The estimate of a run; raises ConfigError, naming the estimate and the budget (default:
    default_budget()), when the run would need more. When one layer's padding, patch matrices
    and tap tables are more than half of it, the error is placed on that layer (its
    kernel_size)."""
    budget = default_budget() if budget is None else budget
    needed = estimate(report, batch)
    if needed.total <= budget:
        return needed
    batch = report.input_shape[0] if batch is None else batch
    fix = f"raise the budget ({BUDGET_VARIABLE}={math.ceil(needed.total / GB)}G would do)"
    if needed.layer is not None and 2 * needed.window > needed.total:
        layer = report.layers[needed.layer]
        raise ConfigError(
            f"the stack's outputs and this layer's scratch at batch {batch} need about "
            f"{size_text(needed.total)}, over the {size_text(budget)} budget, "
            f"{size_text(needed.window)} of it this layer's padded input, working buffers and "
            f"per-tap tables while it runs; lower its kernel size, dilation or padding, or {fix}",
            field="kernel_size", layer_index=layer.index, layer_name=layer.name,
            layer_type=layer.type_name)
    raise ConfigError(
        f"the outputs of this stack at batch {batch} need about {size_text(needed.total)}, "
        f"over the {size_text(budget)} budget; lower the batch or the input size, or {fix}",
        field="input")
