"""Graph models: the NumPy engine against onnxruntime's every-node graph, on standard CNNs.

Run from the repository root (unset the OpenBLAS overrides some setups export, for benchmarks
only):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/bench_graphs.py

Each model is built as PyTorch exports it (tests/onnx/architectures.py), imported by ConvScope
(engine.onnx.importer), and timed in interleaved rounds: the engine (engine.executor.run, which
keeps every node's output as the live view needs) against onnxruntime (CPU provider, as many
intra-op threads as the engine's pool has workers) running the same file with every node's output
made a graph output, the like-for-like peer. Prints medians and the ratio engine / onnxruntime
(target: at most 1.5), then the engine's per-node Python overhead on the demo model: a run's wall
time minus the time spent inside its kernels, divided by its node count. Nothing is asserted.

On a machine shared with other work, `--threads 1 --cpu-time` gives steadier figures: both
sides on one thread (the engine's pool, BLAS and onnxruntime's intra-op pool) timed by the
process's CPU time, which another process's load does not inflate (cache and memory contention
still can).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from threadpoolctl import threadpool_limits  # noqa: E402

from _timing import interleaved_times, print_environment  # noqa: E402
from engine.executor import run  # noqa: E402
from engine.onnx.importer import import_model  # noqa: E402
from engine.ops._parallel import num_workers, set_num_workers  # noqa: E402
from models.presets import demo  # noqa: E402
from tests.onnx.architectures import ARCHITECTURES  # noqa: E402

# The five, at their usual input sizes.
MODELS = {
    "ResNet-18": ("resnet18", (1, 3, 224, 224)),
    "MobileNetV2": ("mobilenet_v2", (1, 3, 224, 224)),
    "Inception block": ("inception_block", (1, 192, 28, 28)),
    "DenseNet block": ("densenet_block", (1, 64, 56, 56)),
    "U-Net": ("unet", (1, 3, 128, 128)),
}


def every_node_output(model: onnx.ModelProto) -> bytes:
    """The model with every node's first output also a graph output."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    present = {o.name for o in copy.graph.output}
    for node in copy.graph.node:
        if node.op_type != "Constant" and node.output[0] not in present:
            copy.graph.output.append(onnx.ValueInfoProto(name=node.output[0]))
            present.add(node.output[0])
    return copy.SerializeToString()


def session(model: bytes, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def bench_model(label: str, builder: str, shape: tuple[int, ...], rounds: int,
                clock: Callable[[], float]) -> float:
    model = ARCHITECTURES[builder](input_shape=shape)
    stack = import_model(model)
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    stack = run(stack, x).stack  # weights in place, as after an edit in the app
    peer = session(every_node_output(model), num_workers())
    feed = {peer.get_inputs()[0].name: x}
    engine_s, ort_s = (statistics.median(t) for t in interleaved_times(
        [lambda: run(stack, x), lambda: peer.run(None, feed)], rounds, clock))
    ratio = engine_s / ort_s
    print(f"{label:<16} {len(stack.layers):>4} nodes  engine {engine_s * 1e3:8.1f} ms  "
          f"onnxruntime {ort_s * 1e3:8.1f} ms  ratio {ratio:5.2f}")
    return ratio


def node_overhead(rounds: int) -> None:
    stack = demo()
    x = np.random.default_rng(0).standard_normal(stack.input.shape, dtype=np.float32)
    stack = run(stack, x).stack
    overheads = []
    for _ in range(rounds):
        # Wall time, as the executor times its kernels (the median drops preempted rounds).
        start = time.perf_counter()
        result = run(stack, x)
        overheads.append(time.perf_counter() - start - sum(result.seconds))
    per_node = statistics.median(overheads) / len(stack.layers)
    print(f"demo: {len(stack.layers)} nodes, Python overhead {per_node * 1e6:.1f} us per node "
          f"(run wall time minus time in kernels)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", choices=sorted(MODELS), action="append")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads on each side (default: one per logical CPU)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time by the process's CPU time (needs --threads 1)")
    args = parser.parse_args()
    if args.cpu_time and args.threads != 1:
        parser.error("--cpu-time needs --threads 1: with more threads CPU time adds up every "
                     "thread's, onnxruntime's spinning ones included")
    set_num_workers(args.threads)
    if args.threads is not None:
        # The engine's pool holds BLAS to one thread only inside its parallel regions.
        threadpool_limits(limits=args.threads, user_api="blas")
    clock = time.process_time if args.cpu_time else time.perf_counter
    print_environment(f", engine pool {num_workers()} workers, "
                      f"{'CPU' if args.cpu_time else 'wall'} time")
    for label in args.only or MODELS:
        bench_model(label, *MODELS[label], args.rounds, clock)
    node_overhead(max(args.rounds, 20))


if __name__ == "__main__":
    main()
