"""Peak memory of a VGG-16-sized run that keeps every layer's output, against those outputs' sum.

Run from the repository root (unset the OpenBLAS overrides for benchmarks only):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/bench_memory.py

The stack is VGG-16 (Simonyan & Zisserman 2014, configuration D): 13 3x3 same convolutions
each followed by ReLU, 5 2x2 max pools, then flatten and dense 4096, 4096, 1000 with ReLU
between; 138M parameters, on a 1x3x224x224 input (--batch to change).

What is counted: the weights are materialised first and the input is prepared, both outside the
measurement; then one engine.executor.run is measured two ways:
- after a warm-up run whose result is dropped: the bytes the engine's output arena holds before
  the run (the warm-up's buffers, which this run reuses) plus tracemalloc's peak of what the run
  allocates besides (NumPy reports its array buffers to it), and
- the growth of the process's peak resident set (ru_maxrss) over one first run in a fresh
  subprocess, the peak reset after the weights and the input exist (it counts page-level
  memory: thread pools' first touch, BLAS buffers, allocator slack).
Both are compared with the sum of the kept arrays (the input and every layer's output) and with
engine.memory_budget's estimate, made before the run from the arithmetic alone. Prints figures
only; nothing is asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from engine.executor import run  # noqa: E402
from engine.memory_budget import estimate  # noqa: E402
from engine.ops._arena import held_bytes  # noqa: E402
from models.analysis import analyse  # noqa: E402
from models import presets  # noqa: E402
from models.stack import Stack  # noqa: E402
from models.weights import materialise  # noqa: E402

MB = 1e6


def vgg16(batch: int = 1) -> Stack:
    """VGG-16 at batch x 3 x 224 x 224, weights materialised."""
    return materialise(presets.vgg16(batch))


def kept_bytes(result) -> tuple[int, int]:
    """(sum of the kept arrays' sizes, bytes they really own: views such as Flatten's output
    share their input's buffer)."""
    arrays = [result.input, *[o for o in result.outputs if o is not None]]
    total = sum(a.nbytes for a in arrays)
    owners = {id(a if a.base is None else a.base): (a if a.base is None else a.base).nbytes
              for a in arrays}
    return total, sum(owners.values())


def measure(batch: int) -> dict[str, float]:
    """One measured run of VGG-16 (see the module docstring); figures in bytes and seconds."""
    stack = vgg16(batch)
    x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32)
    run(stack, x)  # warm-up: thread pools, BLAS buffers, scratch caches, the output arena
    weights = sum(w.nbytes for layer in stack.layers for w in layer.weights.values())
    arena = sum(held_bytes())  # all idle now: the warm-up's result is gone
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    result = run(stack, x)
    seconds = time.perf_counter() - start
    traced_peak = tracemalloc.get_traced_memory()[1] - base + arena
    tracemalloc.stop()
    total, owned = kept_bytes(result)
    expected = estimate(analyse(stack), batch)
    return {"weights": weights, "kept": total, "owned": owned, "traced_peak": traced_peak,
            "arena": arena,
            "estimate_kept": expected.kept, "estimate_total": expected.total, "seconds": seconds}


def measure_in_subprocess(batch: int) -> dict[str, float]:
    """measure_cold() in a fresh interpreter, so the process's peak RSS is this run's alone."""
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import bench_memory; print(json.dumps(bench_memory.measure_cold({batch})))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def reset_peak_rss() -> bool:
    """Reset the process's peak RSS to its current RSS (Linux 4.0+); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measure_cold(batch: int) -> dict[str, float]:
    """Peak RSS growth of the first run after the weights and the input exist (no warm-up).

    Drawing the weights passes through float64 temporaries bigger than the run itself, so the
    peak is reset after them; without that (not Linux) the growth reads 0."""
    stack = vgg16(batch)
    x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32)
    reset_peak_rss()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result = run(stack, x)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    total, owned = kept_bytes(result)
    return {"rss_before": before, "rss_growth": after - before, "kept": total, "owned": owned}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    print(f"VGG-16 at {args.batch}x3x224x224, numpy {np.__version__}, {os.cpu_count()} logical "
          f"CPUs, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    # The fresh process first: a child inherits its parent's peak RSS through fork, and this
    # process holds no weights yet.
    cold = measure_in_subprocess(args.batch)
    warm = measure(args.batch)
    kept = warm["kept"]
    print(f"weights (materialised before, not counted)      {warm['weights'] / MB:9.1f} MB")
    print(f"kept: input + every layer's output (sum)        {kept / MB:9.1f} MB"
          f"   ({warm['owned'] / MB:.1f} MB own buffers; Flatten is a view)")
    total = warm["estimate_total"]
    print(f"budget estimate before the run: kept, total     {warm['estimate_kept'] / MB:9.1f} MB, "
          f"{total / MB:.1f} MB   (total / kept {total / kept:.2f})")
    print(f"peak during the run (warm): arena + tracemalloc {warm['traced_peak'] / MB:9.1f} MB"
          f"   peak / kept {warm['traced_peak'] / kept:.2f}"
          f"   (arena before the run: {warm['arena'] / MB:.1f} MB)")
    print(f"peak RSS growth, fresh process, first run       {cold['rss_growth'] / MB:9.1f} MB"
          f"   peak / kept {cold['rss_growth'] / kept:.2f}"
          f"   (RSS before: {cold['rss_before'] / MB:.0f} MB, the weights included)")
    print(f"run time (warm)                                 {warm['seconds'] * 1e3:9.0f} ms")


if __name__ == "__main__":
    main()
