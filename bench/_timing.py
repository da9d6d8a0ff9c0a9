"""What the benchmarks share: interleaved timing rounds and the header naming the machine.

Run from a script in this folder (its own folder is on sys.path), after the repository root has
been put on sys.path.
"""
from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_info

# Pause before each timed call: onnxruntime's pool threads spin for a while after a run, and
# OpenBLAS's (after a threaded matmul) for up to ~0.1 s; either would take a core from whatever
# runs next.
SETTLE_S = 0.25


def interleaved_times(calls: list[Callable[[], object]], rounds: int,
                      clock: Callable[[], float] = time.perf_counter) -> list[list[float]]:
    """Per call, its times over ``rounds`` rounds of (call 0, call 1, ...), after one warm-up
    call each (page faults, thread pools, BLAS buffers). Interleaving spreads any drift of the
    machine over every call alike."""
    for call in calls:
        call()
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(rounds):
        for i, call in enumerate(calls):
            time.sleep(SETTLE_S)
            start = clock()
            call()
            times[i].append(clock() - start)
    return times


def print_environment(extra: str = "") -> None:
    """Versions, CPUs, load, the BLAS kernel NumPy runs, and a warning where an override forces
    older kernels."""
    import onnxruntime as ort

    print(f"python {platform.python_version()}, numpy {np.__version__}, onnxruntime "
          f"{ort.__version__}, {os.cpu_count()} logical CPUs{extra}, load average "
          f"{os.getloadavg()[0]:.2f}")
    for lib in threadpool_info():
        if lib.get("user_api") == "blas":
            print(f"BLAS: {lib.get('internal_api')} {lib.get('version')}, kernel "
                  f"{lib.get('architecture')}, {lib.get('num_threads')} threads")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            print(f"warning: {var}={os.environ[var]} is set; BLAS may use old kernels")
