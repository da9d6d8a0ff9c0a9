"""Speed check of engine.ops.conv against onnxruntime and raw NumPy matmul.

Run from the repository root (the OpenBLAS variables some setups export force
old BLAS kernels; unset them for benchmarks only):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/bench_conv.py

Prints, per case, the median of interleaved timed rounds (ours, onnxruntime,
matmul, ours, ...) after a warm-up, for: our ``conv``, onnxruntime's CPU Conv
(one node, intra_op_num_threads = the engine's worker count), and a NumPy
float32 matmul with the same FLOP count; plus GFLOP/s, ours as a percentage
of the matmul's, and the ratio ours / onnxruntime. The cases are the
convolutions of the VGG block (the 3x3 64- and 128-channel ones take the
Winograd path), a dilated one (blocked im2col) and MobileNet's depthwise one.
Reports figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from _timing import interleaved_times, print_environment  # noqa: E402
from engine.ops import conv  # noqa: E402
from engine.ops._parallel import num_workers  # noqa: E402

ROUNDS = 7
def ort_session(w: np.ndarray, b: np.ndarray, x_shape, attrs) -> ort.InferenceSession:
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], **attrs)
    graph = helper.make_graph(
        [node], "bench",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    options = ort.SessionOptions()
    options.intra_op_num_threads = num_workers()
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def matmul_same_flops(flops: float):
    """A float32 (m x k) @ (k x n) with about ``flops`` FLOPs, k = n = 576."""
    k = n = 576
    m = max(1, int(flops // (2 * k * n)))
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    bm = rng.standard_normal((k, n), dtype=np.float32)
    return (lambda: a @ bm), 2.0 * m * k * n


CASES = [
    # name, x shape, w shape, group, dilation (pads = dilation: same size)
    ("VGG conv1 3->64", (4, 3, 224, 224), (64, 3, 3, 3), 1, 1),
    ("VGG conv2 64->64", (4, 64, 224, 224), (64, 64, 3, 3), 1, 1),
    ("VGG conv3 64->128", (4, 64, 112, 112), (128, 64, 3, 3), 1, 1),
    ("VGG conv4 128->128", (4, 128, 112, 112), (128, 128, 3, 3), 1, 1),
    ("dilated 2 64->64", (4, 64, 112, 112), (64, 64, 3, 3), 1, 2),
    ("depthwise 3x3 64", (4, 64, 112, 112), (64, 1, 3, 3), 64, 1),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()

    print_environment()
    print(f"medians of {args.rounds} interleaved rounds\n")

    header = (f"{'case':<20} {'ours ms':>8} {'ort ms':>8} {'matmul ms':>9} "
              f"{'ours GF/s':>9} {'ort GF/s':>9} {'mm GF/s':>8} {'% mm':>5} {'ours/ort':>8}")
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    for name, x_shape, w_shape, group, dilation in CASES:
        x = rng.standard_normal(x_shape, dtype=np.float32)
        w = rng.standard_normal(w_shape, dtype=np.float32)
        b = rng.standard_normal(w_shape[0], dtype=np.float32)
        attrs = {"strides": [1, 1], "pads": [dilation] * 4, "dilations": [dilation] * 2,
                 "group": group}
        session = ort_session(w, b, x_shape, attrs)
        ours_out = conv(x, w, b, **attrs)
        ort_out = session.run(None, {"x": x})[0]
        err = float(np.abs(ours_out - ort_out).max() / np.abs(ort_out).max())
        # Same output size: FLOPs = 2 * N * C_out * H * W * C_in/g * k.
        flops = 2.0 * ours_out.size * w.shape[1] * w.shape[2] * w.shape[3]
        mm_fn, mm_flops = matmul_same_flops(flops)
        t_ours, t_ort, t_mm = (statistics.median(t) for t in interleaved_times(
            [lambda: conv(x, w, b, **attrs), lambda: session.run(None, {"x": x}), mm_fn],
            args.rounds,
        ))
        mm_gflops = mm_flops / t_mm / 1e9
        print(f"{name:<20} {t_ours * 1e3:8.1f} {t_ort * 1e3:8.1f} {t_mm * 1e3:9.1f} "
              f"{flops / t_ours / 1e9:9.1f} {flops / t_ort / 1e9:9.1f} {mm_gflops:8.1f} "
              f"{100 * flops / t_ours / 1e9 / mm_gflops:4.0f}% {t_ours / t_ort:8.2f}"
              f"   (max |ours-ort| / max |ort| {err:.1e})")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
