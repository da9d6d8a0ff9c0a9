"""What a hostile tester did to project files and saves, through the real command-line process:
blocks nested hundreds deep, huge graphs and names, non-finite weights, files changed behind the
app's back, symbolic links, kills mid-export, and --layers outputs that collide or sync slowly.
Each refusal is one line on stderr with exit status 2; nothing the app holds is lost on the way
to disk and back."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import main
from models import project
from models.errors import ConfigError, FileChangedError
from models.layers import Conv, Gemm
from models.layers.activation import ReLU
from models.presets import lenet5
from models.stack import (MAX_NAME_LENGTH, MAX_NESTING_DEPTH, MAX_NODES, InputSpec, Layer,
                          Stack)
from tests.reliability.bad_files import LENET_INPUT

ROOT = Path(__file__).resolve().parents[2]


def cli(*argv: str, timeout: float = 300, **options) -> subprocess.CompletedProcess[bytes]:
    """`python main.py ARGV` in a real process; stdout and stderr as bytes, exactly as written."""
    return subprocess.run([sys.executable, "main.py", *argv], cwd=ROOT, capture_output=True,
                          timeout=timeout, **options)


def one_error_line(run: subprocess.CompletedProcess[bytes]) -> str:
    """The one error line of a run that must fail cleanly (asserts that it does)."""
    err = run.stderr.decode()
    assert run.returncode == main.USER_ERROR, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("convscope: error: "), err[-3000:]
    return lines[0]


def project_text(layers: list[dict], channels: int = 3, spatial: tuple[int, ...] = (8, 8)) -> str:
    """A project file's text, written as a hand or another program would write it."""
    return json.dumps({"format": "convscope-project", "version": 2,
                       "input": {"channels": channels, "spatial": list(spatial), "batch": 1},
                       "seed": 0, "layers": layers, "weights": {}})


def nested_residual(levels: int) -> dict:
    """A spec entry `levels` deep, as projects before version 3 held blocks: residual blocks
    around a ReLU (levels 1 is the ReLU)."""
    spec: dict = {"type": "ReLU"}
    for _ in range(levels - 1):
        spec = {"type": "Residual", "body": [spec], "shortcut": "identity"}
    return spec


# ---- nesting, graph size, name length: limits ----------------------------------------------

@pytest.mark.parametrize("levels", [MAX_NESTING_DEPTH + 1, 300])
def test_blocks_nested_past_the_limit_are_refused_in_one_line_by_every_command(tmp_path, levels):
    deep = tmp_path / "deep.convscope"
    deep.write_text(project_text([{"name": "res", "spec": nested_residual(levels)}]))
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 3, 8, 8), np.float32))
    for argv in (["summary", str(deep)], ["export", str(deep), "-o", str(tmp_path / "m.onnx")],
                 ["infer", str(deep), "--input", str(x), "--output", str(tmp_path / "y.npy")]):
        line = one_error_line(cli(*argv))
        assert "deep.convscope" in line and f"more than {MAX_NESTING_DEPTH} levels" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep.convscope", "x.npy"]


def test_blocks_nested_to_the_limit_open_as_nested_groups_save_reopen_and_run(tmp_path):
    old = tmp_path / "old.convscope"
    old.write_text(project_text([{"name": "res", "spec": nested_residual(MAX_NESTING_DEPTH)}]))
    stack = project.load(old)
    assert max(layer.group.count("/") + 1 for layer in stack.layers) == MAX_NESTING_DEPTH - 1
    path = tmp_path / "deep.convscope"
    project.save(stack, path)
    assert project.to_json(project.load(path)) == project.to_json(stack)
    run = cli("summary", str(path))
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    x = tmp_path / "x.npy"
    np.save(x, np.ones((1, 3, 8, 8), np.float32))
    run = cli("infer", str(old), "--input", str(x), "--output", str(tmp_path / "y.npy"))
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    # x + (x + (... + relu(x))): one x per level.
    assert np.array_equal(np.load(tmp_path / "y.npy"), np.full((1, 3, 8, 8), MAX_NESTING_DEPTH))


def test_a_stack_cannot_hold_what_a_project_could_not_reopen():
    """Construction and every edit refuse past the limits, so save never writes a project that
    load refuses."""
    base = Stack(InputSpec(3, (8, 8))).appended(ReLU())
    with pytest.raises(ConfigError, match="characters long"):
        base.replaced(0, base.layers[0].replace(name="n" * (MAX_NAME_LENGTH + 1)))
    with pytest.raises(ConfigError, match="groups deep"):
        base.replaced(0, base.layers[0].replace(group="/".join("g" * (MAX_NESTING_DEPTH + 1))))
    with pytest.raises(ConfigError, match=f"{MAX_NODES:,}"):
        Stack(InputSpec(3, (8, 8)), layers=tuple(Layer(f"r{i}", ReLU())
                                                  for i in range(MAX_NODES + 1)))


def test_a_graph_past_the_node_limit_is_refused_before_it_is_built(tmp_path):
    huge = tmp_path / "huge.convscope"
    huge.write_text(project_text([{"name": f"r{i}", "spec": {"type": "ReLU"}}
                                  for i in range(MAX_NODES + 1)]))
    started = time.perf_counter()
    line = one_error_line(cli("summary", str(huge)))
    assert "huge.convscope" in line and f"{MAX_NODES + 1:,} layers" in line
    assert time.perf_counter() - started < 60


def test_a_million_character_name_is_refused_in_a_short_line(tmp_path):
    path = tmp_path / "long.convscope"
    name = "n" * 1_000_000
    path.write_text(project_text([{"name": name, "spec": {"type": "ReLU"}}]))
    line = one_error_line(cli("summary", str(path)))
    assert "long.convscope" in line and "1,000,000 characters long" in line
    assert len(line) < 400
    # A long name that fits the limit, on a layer that cannot compute, is cut in the message.
    name = "m" * MAX_NAME_LENGTH
    path.write_text(project_text([{"name": name, "spec": {"type": "Conv", "kernel_size": [9, 9],
                                                          "padding": "valid"}}]))
    run = cli("summary", str(path))
    assert run.returncode == main.USER_ERROR and b"Traceback" not in run.stderr
    assert run.stderr.decode().startswith("convscope: error: ")
    assert len(run.stderr) < 400 and "m" * 60 + "…" in run.stderr.decode()
    assert name not in run.stdout.decode()  # the table cuts it too


# ---- weights: what a stack holds, a project holds ----------------------------------------------

def test_weights_of_any_float32_value_save_and_reopen_bit_for_bit(tmp_path):
    stack = Stack(InputSpec(1, (4, 4))).appended(Conv(out_channels=2, kernel_size=(3, 3)))
    big = np.finfo(np.float32).max
    with np.errstate(over="ignore"):
        values = np.array([0, 0, np.inf, -np.inf, big, -big, np.finfo(np.float32).tiny, 1e-45,
                           -0.0, 1e39,  # as a float32 holds it: inf
                           1.0, 0.5, 3.0, -2.0, 7.0, 8.0, 9.0, 10.0]).astype(np.float32)
    bits = values.view(np.uint32).copy()
    bits[0] = 0x7FC12345  # a NaN with a payload
    bits[1] = 0xFFA00001  # a signalling NaN's pattern
    weights = bits.view(np.float32).reshape(2, 1, 3, 3)
    stack = stack.with_weights(0, {"W": weights, "B": np.array([np.inf, np.nan], np.float32)})
    path = tmp_path / "hot.convscope"
    project.save(stack, path)
    reopened = project.load(path)
    assert reopened.layers[0].weights["W"].view(np.uint32).tobytes() == bits.tobytes()
    assert np.array_equal(reopened.layers[0].weights["B"], [np.inf, np.nan], equal_nan=True)
    project.save(reopened, tmp_path / "again.convscope")
    assert (tmp_path / "again.convscope").read_bytes() == path.read_bytes()

    assert cli("summary", str(path)).returncode == 0
    x = tmp_path / "x.npy"
    np.save(x, np.ones((1, 1, 4, 4), np.float32))
    run = cli("infer", str(path), "--input", str(x), "--output", str(tmp_path / "y.npy"))
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    assert run.stderr.decode().startswith("convscope: warning: ")  # told where NaN starts


# ---- saves: files changed behind the app's back, symbolic links ------------------------------

WRITE_ELSEWHERE = "import sys; open(sys.argv[1], 'a').write(' ')"


def test_a_file_changed_by_another_program_is_not_overwritten_without_asking(tmp_path):
    path = tmp_path / "net.convscope"
    project.save(lenet5(), path)
    stack, stamp = project.load_stamped(path)
    edited = dataclasses.replace(stack, seed=5)

    # Another program appends to it (same inode, new size and time) ...
    subprocess.run([sys.executable, "-c", WRITE_ELSEWHERE, str(path)], check=True)
    theirs = path.read_bytes()
    with pytest.raises(FileChangedError, match="net.convscope changed on disk") as caught:
        project.save(edited, path, expect=stamp)
    assert caught.value.path == path and path.read_bytes() == theirs

    # ... or replaces it whole (a new inode, as editors and our own saves do).
    _, stamp = project.load_stamped(path)
    other = tmp_path / "other.convscope"
    project.save(lenet5(), other)
    os.replace(other, path)
    with pytest.raises(FileChangedError):
        project.save(edited, path, expect=stamp)

    # Unchanged since read or last saved: saves, and the new stamp guards the next save.
    _, stamp = project.load_stamped(path)
    stamp = project.save(edited, path, expect=stamp)
    assert stamp == project.FileStamp.of(path)
    assert project.save(stack, path, expect=stamp) == project.FileStamp.of(path)
    path.unlink()  # gone: nothing to lose, so no conflict
    project.save(stack, path, expect=stamp)
    assert project.to_json(project.load(path)) == project.to_json(stack)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_saving_through_a_symbolic_link_writes_the_file_it_points_to(tmp_path, lenet_file):
    real = tmp_path / "real" / "model.onnx"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / "link.onnx"
    link.symlink_to(Path("real") / "model.onnx")
    run = cli("export", str(lenet_file), "-o", str(link))
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    assert link.is_symlink() and os.readlink(link) == str(Path("real") / "model.onnx")
    assert real.read_bytes()[:2] != b"ol" and len(real.read_bytes()) > 1000
    assert sorted(p.name for p in real.parent.iterdir()) == ["model.onnx"]

    chained = tmp_path / "chained.convscope"  # a link to a link to a project
    project_link = tmp_path / "project-link.convscope"
    project_link.symlink_to(lenet_file)
    chained.symlink_to(project_link)
    project.save(dataclasses.replace(project.load(chained), seed=5), chained)
    assert chained.is_symlink() and project_link.is_symlink()
    assert project.load(lenet_file).seed == 5


# ---- kills mid-export ------------------------------------------------------------------------

def big_project(path: Path) -> Path:
    """A small file whose export is 128 MB: its weights are drawn from the seed at export."""
    stack = Stack(InputSpec(4096, ())).appended(Gemm(units=8192, bias_shape=None))
    project.save(stack, path)
    return path


def kill_mid_write(argv: list[str], folder: Path, prefix: str) -> str:
    """Start `main.py ARGV`, SIGKILL it while a hidden temporary file starting with prefix exists
    in folder, and return that file's name (tries again if a run finishes first)."""
    for _ in range(5):
        process = subprocess.Popen([sys.executable, "main.py", *argv], cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while process.poll() is None:
                temps = [n for n in os.listdir(folder) if n.startswith(prefix)]
                if temps:
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    return temps[0]
                time.sleep(0.001)
        finally:
            process.kill()
            process.wait()
    pytest.fail("every export finished before it could be killed mid-write")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_temporary_file_left_by_a_killed_export_goes_with_the_next_write_to_its_folder(
        tmp_path, lenet_file):
    big = big_project(tmp_path / "big.convscope")
    out = tmp_path / "out"
    out.mkdir()
    left = kill_mid_write(["export", str(big), "-o", str(out / "big.onnx")], out, ".big.onnx.")
    assert left.startswith(".big.onnx.convscope-") and left.endswith(".tmp")
    assert os.listdir(out) == [left]

    # The next write to that folder, of any other name, removes it.
    run = cli("export", str(lenet_file), "-o", str(out / "lenet.onnx"))
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    assert os.listdir(out) == ["lenet.onnx"]


# ---- infer --layers ---------------------------------------------------------------------------

def test_an_output_inside_the_layers_folder_that_a_layer_would_overwrite_is_refused(tmp_path,
                                                                                 lenet_file):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros(LENET_INPUT, np.float32))
    layers = tmp_path / "layers"
    layers.mkdir()
    names = [layer.name for layer in lenet5().layers]
    first = f"{1:0{len(str(len(names)))}d}_{names[0]}.npy"
    for output in (layers / first, layers / first.upper()):
        line = one_error_line(cli("infer", str(lenet_file), "--input", str(x), "--output",
                                  str(output), "--layers", str(layers)))
        assert str(output) in line and "layer 1's output" in line
        assert os.listdir(layers) == []
    run = cli("infer", str(lenet_file), "--input", str(x), "--output", str(layers / "y.npy"),
              "--layers", str(layers))
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    assert "y.npy" in os.listdir(layers) and first in os.listdir(layers)


# Counts the fsync calls of a real `main.py` run (each still syncs), then prints the count.
COUNT_FSYNCS = """
import os, runpy, sys
calls = [0]
real_fsync = os.fsync
def fsync(fd):
    calls[0] += 1
    return real_fsync(fd)
os.fsync = fsync
sys.argv = ["main.py", *sys.argv[1:]]
try:
    runpy.run_path("main.py", run_name="__main__")
finally:
    print("fsyncs", calls[0], file=sys.stderr)
"""


def test_layer_outputs_of_a_2000_node_chain_are_flushed_to_disk_once(tmp_path):
    chain = tmp_path / "chain.convscope"
    stack = Stack(InputSpec(1, (8, 8))).with_layers([Layer(f"relu{i}", ReLU())
                                                      for i in range(2000)])
    project.save(stack, chain)
    x = tmp_path / "x.npy"
    np.save(x, np.arange(-32, 32, dtype=np.float32).reshape(1, 1, 8, 8))
    layers = tmp_path / "layers"
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", COUNT_FSYNCS, "infer", str(chain), "--input",
                          str(x), "--output", str(tmp_path / "y.npy"), "--layers", str(layers)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - started
    assert run.returncode == 0, run.stderr[-3000:]
    fsyncs = int(run.stderr.split("fsyncs ")[-1])
    print(f"infer --layers on a 2000-node chain: {seconds:.2f} s, {fsyncs} fsync calls")
    assert fsyncs < 10  # the output and its folder, then the layers all at once: not 2 per file
    files = sorted(os.listdir(layers))
    assert len(files) == 2000 and files[0] == "0001_relu0.npy" and files[-1] == "2000_relu1999.npy"
    expected = np.maximum(np.arange(-32, 32, dtype=np.float32), 0).reshape(1, 1, 8, 8)
    assert all(np.array_equal(np.load(layers / name), expected) for name in files[::199])
