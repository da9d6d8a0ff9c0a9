"""Whole preset models: the NumPy engine against onnxruntime CPU, with per-layer times.

Run from the repository root (the OpenBLAS variables some setups export force
old BLAS kernels; unset them for benchmarks only):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/bench_models.py

For each model of the performance issue, at a fixed input (see MODELS), it
times in interleaved rounds (engine, onnxruntime final output only,
onnxruntime with every layer's output as a graph output, NumPy matmul, ...)
and prints medians and the ratios engine / onnxruntime. The engine is
``engine.executor.run``, which keeps every layer's output as the live view
needs; onnxruntime runs the exported model (``engine.onnx.export``) on its CPU
provider with as many intra-op threads as the engine's pool has workers.
With only the final output onnxruntime may fuse a convolution with its
activation and reuse buffers, which the engine may not; the all-outputs
graph is the like-for-like peer.

Per layer it prints the engine's median time (``RunResult.seconds``, wall
time even with ``--cpu-time``) next to
onnxruntime's per-node kernel time from its profiler (all-outputs graph, so
nodes map one-to-one to layers, block nodes summed into their layer), and for
every convolution of at least 0.5 GFLOP its GFLOP/s as a percentage of the
float32 matmul GFLOP/s NumPy reaches in the same run (2048^3, BLAS on all
cores). onnxruntime's own MatMul on the same matrices is timed too: where
its convolutions run faster than either matmul, they do not owe it to a
faster GEMM.

``--threads N`` holds everything to N threads (engine pool, BLAS, the
onnxruntime session, the matmul). On a shared machine, ``--threads 1
--cpu-time`` times process CPU time instead of wall time: with one thread
nothing spins or waits, so other processes' load barely moves the figures.
Prints figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from _timing import interleaved_times, print_environment  # noqa: E402
from engine.executor import run  # noqa: E402
from engine.onnx.export import export_model  # noqa: E402
from engine.ops._parallel import num_workers, set_num_workers  # noqa: E402
from models import presets  # noqa: E402
from models.analysis import analyse  # noqa: E402
from models.layers import Conv, DepthwiseConv, PointwiseConv  # noqa: E402
from models.stack import InputSpec, Stack  # noqa: E402

ROUNDS = 7
LARGE_CONV_FLOP = 0.5e9
# Layers whose FLOPs are convolutions, for GFLOP/s (a gated block's is its one stacked conv).
CONVS = (Conv, DepthwiseConv, PointwiseConv)
MATMUL_SIZE = 2048


@dataclass(frozen=True)
class Case:
    """A preset stack at a fixed input batch (the preset's own sample shape)."""
    name: str
    build: Callable[[], Stack]
    batch: int
    why: str


MODELS = [
    Case("VGG block", presets.vgg_block, 4, "the issue's input, 4x3x224x224"),
    Case("MobileNet block", presets.mobilenet_block, 4, "4x32x112x112, as the VGG batch"),
    Case("Dilated 1-2-4 context", presets.dilated_context, 16, "16x1x64x64"),
    Case("Encoder-decoder", presets.encoder_decoder, 16, "16x3x64x64"),
    Case("Text CNN with GLU", presets.text_cnn, 32, "32x64x128 (32 sentences of 128 tokens)"),
    Case("Demo: edges to classes", presets.demo, 1,
         "1x3x128x128, the app's live view: fixed per-layer cost"),
]


def ort_session(model_bytes: bytes, profile_dir: str | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = num_workers()
    options.log_severity_level = 3
    if profile_dir is not None:
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(profile_dir, "ort")
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def ort_node_times(model_bytes: bytes, feed: dict[str, np.ndarray], layer_names: list[str],
                   rounds: int) -> dict[str, float]:
    """Median seconds per layer of onnxruntime's node kernels (profiler), block nodes summed."""
    with tempfile.TemporaryDirectory() as tmp:
        session = ort_session(model_bytes, tmp)
        session.run(None, feed)
        for _ in range(rounds):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    per_run: dict[str, list[float]] = {}
    by_length = sorted(layer_names, key=len, reverse=True)
    for event in events:
        name = event.get("name", "")
        if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        node = name[: -len("_kernel_time")].split("/")[0]
        layer = node if node in layer_names else next(
            (n for n in by_length if node.startswith(n)), "other")
        per_run.setdefault(layer, []).append(event["dur"] * 1e-6)
    # rounds + 1 runs were profiled (one warm-up): per layer, sum its nodes per run.
    runs = rounds + 1
    return {layer: statistics.median(sum(ts[r::runs]) for r in range(runs)) if len(ts) >= runs
            else sum(ts) / runs for layer, ts in per_run.items()}


def matmul_call() -> tuple[Callable[[], object], float]:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((MATMUL_SIZE, MATMUL_SIZE), dtype=np.float32)
    b = rng.standard_normal((MATMUL_SIZE, MATMUL_SIZE), dtype=np.float32)
    return (lambda: a @ b), 2.0 * MATMUL_SIZE ** 3


def ort_matmul_call() -> Callable[[], object]:
    """onnxruntime's MatMul of two MATMUL_SIZE^2 float32 matrices, on the benchmark's threads."""
    size = [MATMUL_SIZE, MATMUL_SIZE]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, size) for name in ("a", "b")],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, size)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort_session(model.SerializeToString())
    rng = np.random.default_rng(0)
    feed = {name: rng.standard_normal(size, dtype=np.float32) for name in ("a", "b")}
    return lambda: session.run(None, feed)


def bench_case(case: Case, rounds: int, batch: int | None,
               clock: Callable[[], float]) -> dict[str, float]:
    base = case.build()
    n = batch or case.batch
    stack = base.with_input(InputSpec(base.input.channels, base.input.spatial, n))
    report = analyse(stack)
    x = np.random.default_rng(1).standard_normal(stack.input.shape, dtype=np.float32)
    names = [layer.name for layer in stack.layers]

    final_model = export_model(stack).SerializeToString()
    all_model = export_model(stack, layer_outputs=True).SerializeToString()
    final_session, all_session = ort_session(final_model), ort_session(all_model)
    feed = {final_session.get_inputs()[0].name: x}
    ours = run(stack, x)
    ort_out = final_session.run(None, feed)[0]
    err = float(np.abs(ours.output - ort_out).max())

    seconds: list[list[float]] = []

    def engine() -> None:
        seconds.append(run(stack, x).seconds)

    mm, mm_flops = matmul_call()
    t_ours, t_final, t_all, t_mm, t_ort_mm = interleaved_times(
        [engine, lambda: final_session.run(None, feed), lambda: all_session.run(None, feed), mm,
         ort_matmul_call()], rounds, clock)
    med = {k: statistics.median(v) for k, v in
           (("ours", t_ours), ("final", t_final), ("all", t_all), ("mm", t_mm),
            ("ort_mm", t_ort_mm))}
    mm_gflops = mm_flops / med["mm"] / 1e9
    layer_ours = [statistics.median(s[i] for s in seconds) for i in range(len(names))]
    layer_ort = ort_node_times(all_model, feed, names, rounds)

    print(f"== {case.name}, input {'x'.join(map(str, stack.input.shape))} ({case.why})")
    print(f"   engine {med['ours'] * 1e3:8.2f} ms | onnxruntime final output "
          f"{med['final'] * 1e3:8.2f} ms, ratio {med['ours'] / med['final']:5.2f} | every layer "
          f"{med['all'] * 1e3:8.2f} ms, ratio {med['ours'] / med['all']:5.2f} | "
          f"max |diff| {err:.1e}")
    print(f"   NumPy matmul {MATMUL_SIZE}^3: {mm_gflops:.0f} GFLOP/s; onnxruntime MatMul: "
          f"{mm_flops / med['ort_mm'] / 1e9:.0f} GFLOP/s")
    print(f"   {'layer':<10} {'type':<14} {'GFLOP':>6} {'ours ms':>8} {'ort ms':>8} "
          f"{'ours/ort':>8} {'GFLOP/s':>8} {'% matmul':>8}")
    for i, (name, layer_report) in enumerate(zip(names, report.layers)):
        flop = 2.0 * layer_report.macs
        t_layer, t_node = layer_ours[i], layer_ort.get(name, 0.0)
        ratio = f"{t_layer / t_node:8.2f}" if t_node > 0 else f"{'-':>8}"
        line = (f"   {name:<10} {layer_report.type_name:<14} {flop / 1e9:6.3f} "
                f"{t_layer * 1e3:8.2f} {t_node * 1e3:8.2f} {ratio}")
        if isinstance(stack.layers[i].spec, CONVS) and flop > 0:
            gflops = flop / t_layer / 1e9
            line += f" {gflops:8.1f}"
            if flop >= LARGE_CONV_FLOP:
                line += f" {100 * gflops / mm_gflops:7.0f}%"
        print(line)
    if "other" in layer_ort:
        print(f"   (onnxruntime nodes not matched to a layer: {layer_ort['other'] * 1e3:.2f} ms)")
    print()
    return {"ours": med["ours"], "final": med["final"], "all": med["all"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="timed rounds (median)")
    parser.add_argument("--batch", type=int, default=None, help="override every model's batch")
    parser.add_argument("--only", default=None, help="run models whose name contains this")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for everything (default: one per logical CPU)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time process CPU time (needs --threads 1)")
    args = parser.parse_args()
    if args.cpu_time and args.threads != 1:
        parser.error("--cpu-time needs --threads 1 (other threads spin or wait)")
    set_num_workers(args.threads)
    with threadpool_limits(limits=args.threads, user_api="blas"):
        run_all(args)


def run_all(args: argparse.Namespace) -> None:
    print_environment(f", {num_workers()} engine workers and onnxruntime intra-op threads")
    print(f"medians of {args.rounds} interleaved rounds of "
          f"{'process CPU' if args.cpu_time else 'wall'} time\n")

    summary = []
    for case in MODELS:
        if args.only and args.only.lower() not in case.name.lower():
            continue
        clock = time.process_time if args.cpu_time else time.perf_counter
        summary.append((case.name, bench_case(case, args.rounds, args.batch, clock)))
    print(f"{'model':<24} {'engine ms':>10} {'ort ms':>10} {'ratio':>6} {'ort all ms':>10} "
          f"{'ratio':>6}")
    for name, med in summary:
        print(f"{name:<24} {med['ours'] * 1e3:10.2f} {med['final'] * 1e3:10.2f} "
              f"{med['ours'] / med['final']:6.2f} {med['all'] * 1e3:10.2f} "
              f"{med['ours'] / med['all']:6.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
