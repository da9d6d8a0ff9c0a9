"""A pool's scratch (its stride-phase planes, the partial results of its axis-by-axis reduction
and the result) stays within what engine.memory_budget estimates as its window scratch, without
the estimate's general headroom (input copies, output temporaries): measured with tracemalloc on
the first run of each geometry, on inputs of one channel so large that the whole layer is one
chunk."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from engine.executor import run
from engine.memory_budget import estimate
from models.analysis import analyse
from models.layers import AvgPool, MaxPool
from models.stack import InputSpec, Stack

MB = 1 << 20
# A run's own objects (report, result, tap tables): small beside the several MB of planes here.
RUN_OVERHEAD = MB


@pytest.mark.parametrize("spec,spatial", [
    (MaxPool(rank=2, kernel_size=(3, 3), stride=1, padding="same"), (1024, 1024)),
    (MaxPool(rank=2, kernel_size=(3, 3), stride=2, padding="same"), (1024, 1024)),
    (AvgPool(rank=2, kernel_size=(5, 3), stride=(3, 2), padding="same"), (1024, 1024)),
    (MaxPool(rank=2, kernel_size=(3, 3), stride=1, dilation=2, padding="same"), (1024, 1024)),
    (MaxPool(rank=3, kernel_size=(3, 3, 3), stride=1, padding="same"), (96, 96, 96)),
    (AvgPool(rank=3, kernel_size=(3, 3, 3), stride=2, padding="same"), (96, 96, 96)),
], ids=["2d", "2d-stride-2", "2d-avg-uneven", "2d-dilated", "3d", "3d-avg-stride-2"])
def test_a_pool_runs_within_its_estimate(spec, spatial):
    stack = Stack(InputSpec(1, spatial), ()).appended(spec)
    report = analyse(stack)
    assert report.ok
    needed = estimate(report)
    x = np.ones((1, 1, *spatial), np.float32)
    tracemalloc.start()
    try:
        result = run(stack, x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.error is None
    assert needed.window > 0
    assert peak <= needed.kept + needed.window + RUN_OVERHEAD, (peak, needed)
