"""Hostile ONNX files (issue 17), through the real command line as a person runs it.

Each is either refused in one line on stderr that names the file, the node or tensor at fault
and what to do, with exit status 2 and no traceback, by every command that opens it - or it
opens and computes what it says. The files are tests/reliability/bad_files.py's hostile ONNX
cases (test_bad_files and test_cli_errors also open every one in-process).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import main
from engine.onnx.importer import import_model
from models import project
from tests.reliability.bad_files import EXTERNAL_W, BadFile, external_conv, residual_chain

ROOT = Path(__file__).resolve().parents[2]
SHORT = 600
"""Characters an error may take at most on stderr, whatever the length of a name in the file."""


def cli(*argv: str, budget: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CONVSCOPE_MEMORY_BUDGET"}
    if budget is not None:
        env["CONVSCOPE_MEMORY_BUDGET"] = budget
    return subprocess.run([sys.executable, "main.py", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=env)


def refusal_problems(run: subprocess.CompletedProcess[str], *words: str) -> list[str]:
    """What is wrong with a run that should be one clear refusal holding `words`."""
    problems = []
    if run.returncode != main.USER_ERROR:
        problems.append(f"exit status {run.returncode}")
    lines = run.stderr.splitlines()
    if len(lines) != 1 or not lines[0].startswith("convscope: error: "):
        problems.append(f"stderr is {run.stderr[:2000]!r}")
    if "Traceback" in run.stderr or "ONNXRuntimeError" in run.stderr:
        problems.append("a traceback or onnxruntime's raw error")
    if len(run.stderr) > SHORT:
        problems.append(f"{len(run.stderr):,} characters on stderr")
    missing = [w for w in words if w.lower() not in run.stderr.lower()]
    if missing:
        problems.append(f"the message lacks {missing}")
    return problems


def named(bad_files: list[BadFile], name: str) -> BadFile:
    return next(bad for bad in bad_files if bad.path.name == name)


def commands(path: Path, x: Path, out: Path) -> list[list[str]]:
    """Every command that opens an ONNX file."""
    infer = ["infer", str(path), "--input", str(x), "--output", str(out)]
    return [["summary", str(path)], infer, [*infer, "--engine", "onnxruntime"],
            ["export", str(path), "-o", str(out.with_suffix(".onnx"))]]


def save_input(path: Path, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    np.save(path, x)
    return x


# ---- malformed nodes --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["conv-scalar-kernel.onnx", "conv-scalar-kernel-shape.onnx",
                                  "maxpool-no-kernel.onnx", "conv-kernel-shape-floats.onnx"])
def test_a_malformed_node_is_refused_by_every_command(bad_files, tmp_path, name):
    """A Conv whose kernel is a 0-d tensor, a MaxPool without kernel_shape, an attribute of the
    wrong type: refused before any rule reads them (onnx's schemas and strict shape inference),
    with the node and the fix, not onnxruntime's raw error."""
    bad = named(bad_files, name)
    x = tmp_path / "x.npy"
    save_input(x, (1, 1, 8, 8))
    out = tmp_path / "y.npy"
    for argv in commands(bad.path, x, out):
        problems = refusal_problems(cli(*argv), name, *bad.words)
        assert not problems, f"{' '.join(argv[:1])}: {problems}"
    assert not out.exists() and not out.with_suffix(".onnx").exists()


def test_a_node_name_that_drives_the_terminal_is_escaped(tmp_path):
    path = tmp_path / "escape.onnx"
    pool = helper.make_node("MaxPool", ["x"], ["y"], name="\x1b[2J\u202epool\nrm -rf")
    graph = helper.make_graph([pool], "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 1, 8, 8])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 1, 4, 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    run = cli("summary", str(path))
    assert not refusal_problems(run, "escape.onnx", "\\x1b[2J\\u202epool\\nrm -rf",
                                "kernel_shape"), run.stderr
    assert "\x1b" not in run.stderr and "\u202e" not in run.stderr


def test_a_shape_the_file_declares_wrongly_does_not_stand(tmp_path):
    """A tensor declared (1, 3, 4, 4) between two ReLUs on a (1, 2, 4, 4) input: onnxruntime
    runs the model; ConvScope opens it with the shapes onnx infers, as plain ReLU layers."""
    f = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"], name="first"),
         helper.make_node("Relu", ["r"], ["y"], name="second")], "g",
        [f("x", TensorProto.FLOAT, [1, 2, 4, 4])], [f("y", TensorProto.FLOAT, [1, 2, 4, 4])],
        value_info=[f("r", TensorProto.FLOAT, [1, 3, 4, 4])])
    path = tmp_path / "declared.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    run = cli("summary", str(path), "--json")
    assert run.returncode == 0 and run.stderr == "", run.stderr[-3000:]
    layers = json.loads(run.stdout)["layers"]
    assert [(row["type"], row["output_shape"], row["engine"]) for row in layers] == \
        [("ReLU", [1, 2, 4, 4], "numpy")] * 2


# ---- depth, size and names --------------------------------------------------------------------

def chain_reference(x: np.ndarray, blocks: int) -> np.ndarray:
    """residual_chain(blocks, halve=True) computed with NumPy: a = (a + relu(a)) * 0.5."""
    a = x.copy()
    for _ in range(blocks):
        a = (a + np.maximum(a, np.float32(0))) * np.float32(0.5)
    return a


@pytest.mark.parametrize("blocks", [300, 2000])
def test_residual_chains_hundreds_and_thousands_deep_open_and_compute(tmp_path, blocks):
    path = tmp_path / f"chain{blocks}.onnx"
    onnx.save(residual_chain(blocks, halve=True), path)
    run = cli("summary", str(path))
    assert run.returncode == 0 and run.stderr == "", run.stderr[-3000:]
    assert f"/block{blocks - 1}/half" in run.stdout
    x = save_input(tmp_path / "x.npy", (1, 2, 4, 4))
    engines = ["numpy", "onnxruntime"] if blocks <= 300 else ["numpy"]
    for engine in engines:
        out = tmp_path / f"y-{engine}.npy"
        run = cli("infer", str(path), "--input", str(tmp_path / "x.npy"), "--output", str(out),
                  "--engine", engine)
        assert run.returncode == 0 and run.stderr == "", run.stderr[-3000:]
        np.testing.assert_allclose(np.load(out), chain_reference(x, blocks), rtol=1e-6, atol=0)


def test_a_chain_whose_values_overflow_in_both_runtimes_verifies(tmp_path):
    """Positive values double 300 times: infinity in the engine and in onnxruntime alike, which
    --verify counts as agreement (it reported a difference, and warned, before)."""
    path = tmp_path / "overflow.onnx"
    onnx.save(residual_chain(300), path)
    run = cli("export", str(path), "-o", str(tmp_path / "out.onnx"), "--verify")
    assert run.returncode == 0 and run.stderr == "", run.stderr[-3000:]
    assert run.stdout.splitlines()[-1].startswith("ok: ")


def test_a_constant_that_onnxruntime_cannot_compute_is_refused_in_one_line(bad_files):
    """Folding by parts once called itself without end on such a node: a RecursionError of
    thousands of lines behind a chain of 300 residual blocks."""
    bad = named(bad_files, "residual-300-bad-constant.onnx")
    run = cli("summary", str(bad.path))
    assert not refusal_problems(run, bad.path.name, *bad.words), run.stderr[-3000:]


@pytest.mark.parametrize("name", ["too-many-nodes.onnx", "long-node-name.onnx",
                                  "long-tensor-name.onnx"])
def test_a_graph_past_the_limits_is_refused_in_a_short_line(bad_files, name):
    bad = named(bad_files, name)
    run = cli("summary", str(bad.path))
    assert not refusal_problems(run, name, *bad.words), run.stderr[:3000]


# ---- external data ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["ext-nul.onnx", "ext-two-locations.onnx", "ext-link-loop.onnx",
                                  "ext-not-a-file.onnx", "ext-offset-text.onnx",
                                  "ext-negative-size.onnx", "ext-huge-dims.onnx"])
def test_external_data_that_cannot_be_trusted_is_refused(bad_files, name):
    bad = named(bad_files, name)
    run = cli("summary", str(bad.path))
    assert not refusal_problems(run, name, *bad.words), run.stderr[:3000]


def test_a_sparse_8_gib_data_file_is_refused_from_its_size_before_reading(tmp_path):
    """A 300-byte model beside a sparse 8 GiB file: refused from the declared size against the
    memory budget; the refusing process peaks far below the file's size (its peak RSS is
    measured by a parent process whose one child it is)."""
    model = tmp_path / "sparse.onnx"
    model.write_bytes(external_conv("sparse.bin", dims=(1 << 31, 1, 1, 1)))
    with open(tmp_path / "sparse.bin", "wb") as data:
        data.truncate(8 << 30)
    assert model.stat().st_size < 400
    measure = ("import resource, subprocess, sys; "
               "run = subprocess.run([sys.executable, 'main.py', 'summary', sys.argv[1]], "
               "capture_output=True, text=True); sys.stderr.write(run.stderr); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
               "sys.exit(run.returncode)")
    run = subprocess.run([sys.executable, "-c", measure, str(model)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert not refusal_problems(run, "sparse.onnx", "'W'", "8.6 GB", "memory budget",
                                "CONVSCOPE_MEMORY_BUDGET"), run.stderr[:3000]
    peak_mb = int(run.stdout) * (1 if sys.platform == "darwin" else 1024) / 1e6
    assert peak_mb < 300, f"peak RSS {peak_mb:.0f} MB"


def test_a_hard_linked_data_file_is_read_like_any_other(tmp_path):
    """Its bytes only become weights (and lie in the model's folder); the 1x1 convolution with
    them gives 2x and -3x."""
    (tmp_path / "data.bin").write_bytes(EXTERNAL_W.tobytes())
    os.link(tmp_path / "data.bin", tmp_path / "linked.bin")
    model = tmp_path / "linked.onnx"
    model.write_bytes(external_conv("linked.bin"))
    x = save_input(tmp_path / "x.npy", (1, 1, 4, 4))
    run = cli("infer", str(model), "--input", str(tmp_path / "x.npy"), "--output",
              str(tmp_path / "y.npy"))
    assert run.returncode == 0 and run.stderr == "", run.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"),
                               np.concatenate([2 * x, -3 * x], axis=1), rtol=1e-6)


# ---- outputs that are not computed ------------------------------------------------------------

@pytest.mark.parametrize("name", ["output-is-input.onnx", "no-outputs.onnx", "output-unknown.onnx",
                                  "tensor-written-twice.onnx", "input-overwritten.onnx"])
def test_infer_refuses_a_graph_whose_output_is_not_computed(bad_files, tmp_path, name):
    bad = named(bad_files, name)
    save_input(tmp_path / "x.npy", (1, 1, 8, 8))
    out = tmp_path / "y.npy"
    for engine in ("numpy", "onnxruntime"):
        run = cli("infer", str(bad.path), "--input", str(tmp_path / "x.npy"), "--output",
                  str(out), "--engine", engine)
        assert not refusal_problems(run, name, *bad.words), f"{engine}: {run.stderr[:3000]}"
    assert not out.exists()


# ---- values a project could not hold ----------------------------------------------------------

@pytest.mark.parametrize("name", ["gemm-alpha-inf.onnx", "gemm-alpha-nan.onnx",
                                  "leaky-alpha-nan.onnx", "gemm-product-overflows.onnx",
                                  "constant-overflows-float32.onnx"])
def test_nan_and_infinite_settings_and_weights_are_refused(bad_files, name):
    """Gemm's alpha of 1e39 (infinite as the float32 ONNX stores) or NaN, a weight that
    overflows float32 once alpha is folded into it or once cast: one line naming the node."""
    bad = named(bad_files, name)
    run = cli("summary", str(bad.path))
    assert not refusal_problems(run, name, *bad.words), run.stderr[:3000]


def test_the_largest_finite_values_open_save_and_reopen(tmp_path):
    """What opens can be saved as a project and reopened, the extremes of float32 included."""
    top = float(np.finfo(np.float32).max)
    b = numpy_helper.from_array(np.array([[1.0, -1.0, 0.5]] * 4, np.float32), "B")
    c = numpy_helper.from_array(np.array([top, -top, 1e-45], np.float32), "C")
    gemm = helper.make_node("Gemm", ["x", "B", "C"], ["y"], name="gemm", alpha=top / 2, beta=1.0)
    graph = helper.make_graph([gemm], "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 4])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 3])], [b, c])
    path = tmp_path / "extreme.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    stack = import_model(path)
    saved = tmp_path / "extreme.convscope"
    project.save(stack, saved)
    again = project.load(saved)
    for before, after in zip(stack.layers, again.layers):
        assert before.spec == after.spec
        for key, values in before.weights.items():
            assert np.isfinite(values).all()
            assert after.weights[key].tobytes() == values.tobytes()


# ---- onnxruntime's memory budget --------------------------------------------------------------

def vgg_style(path: Path) -> None:
    """Two VGG blocks (two 3x3 convolutions and a 2x2 max pool each) and a classifier, on a
    (N, 3, 32, 32) input of any batch: about 430 KB of layer outputs per sample, 150 KB of
    weights."""
    rng = np.random.default_rng(0)
    nodes, inits, cur, channels = [], [], "x", 3
    for block, width in enumerate((16, 32)):
        for conv in range(2):
            w = f"b{block}c{conv}.W"
            inits.append(numpy_helper.from_array(
                (rng.standard_normal((width, channels, 3, 3)) * 0.1).astype(np.float32), w))
            nodes += [helper.make_node("Conv", [cur, w], [f"{w}.y"], pads=[1, 1, 1, 1]),
                      helper.make_node("Relu", [f"{w}.y"], [f"{w}.r"])]
            cur, channels = f"{w}.r", width
        nodes.append(helper.make_node("MaxPool", [cur], [f"pool{block}"], kernel_shape=[2, 2],
                                      strides=[2, 2]))
        cur = f"pool{block}"
    inits.append(numpy_helper.from_array(
        (rng.standard_normal((10, 32 * 8 * 8)) * 0.01).astype(np.float32), "fc.W"))
    nodes += [helper.make_node("Flatten", [cur], ["flat"]),
              helper.make_node("Gemm", ["flat", "fc.W"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "vgg", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", 3, 32, 32])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, ["N", 10])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_infer_with_onnxruntime_refuses_a_batch_past_the_memory_budget(tmp_path):
    """Batch 64 needs about 28 MB of layer outputs: refused under a 20 MB budget before
    onnxruntime runs, and run under 1 GB."""
    model = tmp_path / "vgg.onnx"
    vgg_style(model)
    save_input(tmp_path / "x.npy", (64, 3, 32, 32))
    out = tmp_path / "y.npy"
    argv = ["infer", str(model), "--input", str(tmp_path / "x.npy"), "--output", str(out),
            "--engine", "onnxruntime"]
    run = cli(*argv, budget="20M")
    assert not refusal_problems(run, "batch 64", "budget", "CONVSCOPE_MEMORY_BUDGET"), run.stderr
    assert not out.exists()
    run = cli(*argv, budget="1G")
    assert run.returncode == 0, run.stderr[-3000:]
    assert np.load(out).shape == (64, 10)
