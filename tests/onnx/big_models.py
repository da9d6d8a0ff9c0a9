"""Large synthetic models for the memory tests of ONNX import, written to disk on demand (never
committed), and a measurement of one import's peak memory in a fresh process.

`write_vgg11` writes a VGG-11-shaped classifier (8 convolutions 3x3 with ReLU and 5 max pools,
then Flatten and three Gemm layers) with seeded random weights: at width 1 and a 224x224 input
it is torchvision's VGG-11, 133 million weights, 507 MiB; `width` scales every layer's channels
and units. `measure_import` imports a file in a child process and reports its peak resident
memory above what the process held before the import began.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[2]
VGG11 = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]


def write_vgg11(path: Path, width: float = 1.0, side: int = 224, external: bool = False) -> int:
    """Write the model to `path` (its weights to path + ".data" when external); returns the
    bytes written in all."""
    rng = np.random.default_rng(0)
    nodes, weights = [], []
    x, channels, size = "input", 3, side

    def weight(name: str, shape: tuple[int, ...], fan_in: int) -> str:
        values = rng.standard_normal(shape, dtype=np.float32)
        values *= np.float32(np.sqrt(2.0 / fan_in))
        weights.append(numpy_helper.from_array(values, name))
        return name

    conv = 0
    for item in VGG11:
        if item == "M":
            nodes.append(helper.make_node("MaxPool", [x], [f"pool{conv}"], name=f"/pool{conv}",
                                          kernel_shape=[2, 2], strides=[2, 2]))
            x, size = f"pool{conv}", size // 2
            continue
        conv += 1
        out = max(1, int(item * width))
        w = weight(f"conv{conv}.weight", (out, channels, 3, 3), channels * 9)
        b = weight(f"conv{conv}.bias", (out,), channels * 9)
        nodes.append(helper.make_node("Conv", [x, w, b], [f"c{conv}"], name=f"/conv{conv}/Conv",
                                      kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"c{conv}"], [f"r{conv}"],
                                      name=f"/relu{conv}/Relu"))
        x, channels = f"r{conv}", out
    nodes.append(helper.make_node("Flatten", [x], ["flat"], name="/Flatten", axis=1))
    features, x = channels * size * size, "flat"
    for i, units in enumerate((int(4096 * width), int(4096 * width), 1000)):
        w = weight(f"fc{i}.weight", (units, features), features)
        b = weight(f"fc{i}.bias", (units,), features)
        nodes.append(helper.make_node("Gemm", [x, w, b], [f"fc{i}"], name=f"/fc{i}/Gemm",
                                      transB=1))
        x, features = f"fc{i}", units
    graph = helper.make_graph(
        nodes, "vgg11", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                       ["N", 3, side, side])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["N", 1000])], initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    del weights, graph
    if external:
        (path.parent / (path.name + ".data")).unlink(missing_ok=True)  # onnx appends to it
        onnx.save_model(model, str(path), save_as_external_data=True,
                        all_tensors_to_one_file=True, location=path.name + ".data",
                        size_threshold=1024)
        return path.stat().st_size + (path.parent / (path.name + ".data")).stat().st_size
    path.write_bytes(model.SerializeToString())
    return path.stat().st_size


_CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[2])
from engine.onnx.importer import import_model
from models.analysis import analyse

def status(key):
    with open("/proc/self/status") as lines:
        return next(int(l.split()[1]) for l in lines if l.startswith(key)) * 1024

before = status("VmRSS")
start = time.perf_counter()
stack = import_model(sys.argv[1])
report = analyse(stack)
seconds = time.perf_counter() - start
peak = status("VmHWM")  # ru_maxrss would keep the parent's peak across exec
print(json.dumps({"before": before, "peak": peak, "seconds": seconds, "ok": report.ok,
                  "layers": len(stack.layers), "weights": stack.weight_bytes}))
"""


def measure_import(path: Path) -> dict:
    """{"before", "peak" (bytes of resident memory), "seconds", "ok", "layers", "weights"} of
    importing and analysing `path` in a fresh Python process."""
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(ROOT)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])
