"""What a hostile tester did to input files, weight files and the memory budget, each through the
real command-line process (`python main.py infer FILE --input IN --output OUT.npy`) or, for
Load W, through models.kernel_edits.load_weight: a .wav without samples, a budget of 1e400,
kernels of ten million taps, pipes and devices, headers promising terabytes, sparse files,
decompression bombs, formats in disguise, a symbolic link to /proc/self/environ, and weights
beyond float32. Each is refused in one line naming the file (or the layer, or the variable), in
seconds, without a traceback, without an output, and without quoting the file's contents."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import main
from engine import input_files
from models import project
from models.errors import ConfigError
from models.kernel_edits import load_weight
from models.layers import AvgPool, Conv, DepthwiseConv, MaxPool
from models.stack import InputSpec, Stack
from tests.reliability.huge_images import write_npy, write_png_header, write_wav

ROOT = Path(__file__).resolve().parents[2]
SECRET = "hostile-secret-7f3a9c"
GIB = 1 << 30
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")


def cli(*argv: object, env: dict[str, str] | None = None, timeout: float = 60
        ) -> subprocess.CompletedProcess[str]:
    """`python main.py ARGV` in a real process, with extra environment variables (first in
    the process's environment, in their order)."""
    extra = env or {}
    return subprocess.run([sys.executable, "main.py", *map(str, argv)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={**extra, **{k: v for k, v in os.environ.items() if k not in extra}})


def npy_with_descr(descr: str) -> bytes:
    """A .npy header, well formed but for its dtype: `descr` (numpy quotes it when refusing)."""
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': (4, 1, 3, 3), }}"
    text += " " * (-(len(text) + 11) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode()


def refused(run: subprocess.CompletedProcess[str], *words: str) -> str:
    """The one error line of a run that must have failed cleanly, holding every word."""
    assert run.returncode == main.USER_ERROR, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("convscope: error: "), run.stderr[-3000:]
    for word in words:
        assert word.lower() in lines[0].lower(), lines[0]
    return lines[0]


def infer(project_file: Path, source: Path, folder: Path, env: dict[str, str] | None = None
          ) -> str:
    """The error line of `infer` refusing `source` (asserts no output was written)."""
    out = folder / "out.npy"
    start = time.perf_counter()
    run = cli("infer", project_file, "--input", source, "--output", out, env=env)
    line = refused(run)
    assert time.perf_counter() - start < 20, "a refusal must not read or compute first"
    assert not out.exists()
    return line


@pytest.fixture(scope="module")
def signal_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project for 1-channel signals of 64 samples."""
    path = tmp_path_factory.mktemp("signal") / "signal.convscope"
    project.save(Stack(InputSpec(1, (64,)), ()).appended(Conv(rank=1, out_channels=2)), path)
    return path


# 1. A .wav with zero samples.

@pytest.mark.parametrize("present", [0, None])
def test_a_wav_without_samples_is_refused_in_one_line(signal_file, tmp_path, present):
    path = tmp_path / "silence.wav"
    write_wav(path, frames=0 if present is None else 1_000_000, frames_present=present)
    line = infer(signal_file, path, tmp_path)
    assert "silence.wav holds no samples" in line


# 2. A memory budget that is not a size.

@pytest.mark.parametrize("value", ["1e400", "-5G", "nan", "inf", "lots", "0.2", "9" * 500])
def test_a_memory_budget_that_is_not_a_size_is_named_in_one_line(lenet_file, tmp_path, value):
    np.save(tmp_path / "x.npy", np.zeros((1, 32, 32), np.float32))
    line = infer(lenet_file, tmp_path / "x.npy", tmp_path, env={"CONVSCOPE_MEMORY_BUDGET": value})
    assert "CONVSCOPE_MEMORY_BUDGET=" in line and "is not a memory size" in line
    assert len(line) < 200


# 3. Kernels of ten million taps: padding and the kernels' scratch count, not only outputs.

@pytest.mark.parametrize("spec", [
    Conv(rank=1, out_channels=1, kernel_size=10**7, padding="same"),
    MaxPool(rank=1, kernel_size=10**7, stride=1, padding="same"),
    AvgPool(rank=1, kernel_size=10**7, stride=1, padding="same"),
    DepthwiseConv(rank=1, kernel_size=10**7, padding="same"),
], ids=lambda spec: spec.type_name)
def test_a_kernel_of_ten_million_taps_is_refused_before_it_runs(tmp_path, spec):
    path = tmp_path / "wide.convscope"
    project.save(Stack(InputSpec(2, (32,)), ()).appended(spec), path)
    np.save(tmp_path / "x.npy", np.zeros((2, 32), np.float32))
    line = infer(path, tmp_path / "x.npy", tmp_path, env={"CONVSCOPE_MEMORY_BUDGET": "200M"})
    assert f"layer 1 ({spec.short_name}1, {spec.type_name})" in line
    assert "over the 0.2 GB budget" in line and "kernel size" in line


# 4. Pipes, devices, headers promising terabytes, sparse files: as inputs and as weights.

@needs_fifo
def test_an_input_that_is_a_named_pipe_is_refused_without_blocking(lenet_file, tmp_path):
    pipe = tmp_path / "pipe.npy"
    os.mkfifo(pipe)
    assert "pipe.npy is a named pipe" in infer(lenet_file, pipe, tmp_path)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_an_input_that_is_a_device_is_refused(lenet_file, tmp_path):
    device = tmp_path / "zeros.npy"
    device.symlink_to("/dev/zero")
    assert "zeros.npy is a device" in infer(lenet_file, device, tmp_path)


def test_an_input_header_promising_a_terabyte_is_refused_from_the_header(lenet_file, tmp_path):
    path = tmp_path / "tera.npy"
    write_npy(path, (10**6, 1, 1000, 1000), data_bytes=64)
    assert "tera.npy holds 1,000,000,000,000 values, more than the" in infer(lenet_file, path,
                                                                               tmp_path)


def test_a_sparse_8_gib_input_is_refused_from_its_size(lenet_file, tmp_path):
    path = tmp_path / "sparse.npy"
    write_npy(path, (1, 32, 32), data_bytes=8 * GIB)  # a fitting header, then 8 GiB of holes
    assert "sparse.npy is 8,589,934," in infer(lenet_file, path, tmp_path)


def call_with_timeout(function, seconds: float):
    """function()'s result or exception, failing the test if it takes longer than `seconds`
    (a call that blocks is left behind in a daemon thread)."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = function()
        except BaseException as err:  # noqa: BLE001 - handed to the test below
            outcome["error"] = err
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]


@needs_fifo
def test_load_w_from_a_named_pipe_is_refused_at_once(tmp_path):
    pipe = tmp_path / "w.npy"
    os.mkfifo(pipe)
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="w.npy is a named pipe"):
        call_with_timeout(lambda: load_weight(pipe, (4, 1, 3, 3)), 5)
    assert time.perf_counter() - start < 1


@pytest.mark.parametrize("case, words", [
    ("tera", "has shape 1000000×1000×1000×1000"),
    ("sparse", "is 8,589,934,"),
    ("truncated", "truncated"),
    ("folder", "is a folder"),
    ("device", "is a device"),
    ("missing", "no such file"),
    ("damaged", "header is damaged"),
    ("integers", "holds int32 values"),
])
def test_load_w_refuses_what_it_cannot_hold_before_reading(tmp_path, case, words):
    path = tmp_path / "w.npy"
    shape = (4, 1, 3, 3)
    if case == "tera":
        write_npy(path, (10**6, 1000, 1000, 1000), data_bytes=64)
    elif case == "sparse":
        write_npy(path, shape, data_bytes=8 * GIB)
    elif case == "truncated":
        write_npy(path, shape, data_bytes=20)
    elif case == "folder":
        path.mkdir()
    elif case == "device":
        if not Path("/dev/zero").exists():
            pytest.skip("needs /dev/zero")
        path.symlink_to("/dev/zero")
    elif case == "damaged":
        path.write_bytes(npy_with_descr(SECRET))
    elif case == "integers":
        np.save(path, np.zeros(shape, np.int32))
    with pytest.raises(ConfigError) as caught:
        call_with_timeout(lambda: load_weight(path, shape), 5)
    message = str(caught.value)
    assert "w.npy" in message and words in message and "\n" not in message
    assert SECRET not in message


# 5. Every input has caps, checked before decoding.

def test_a_10000_square_rgba_png_is_refused_from_its_header(lenet_file, tmp_path):
    path = tmp_path / "bomb.png"
    write_png_header(path, 10_000, 10_000)
    line = infer(lenet_file, path, tmp_path)
    assert "bomb.png is 10000x10000 pixels (100 megapixels), more than the" in line


def test_a_csv_over_its_byte_cap_is_refused_from_its_size(signal_file, tmp_path):
    path = tmp_path / "huge.csv"
    with open(path, "wb") as file:
        file.truncate(input_files.MAX_CSV_BYTES + 1)
    assert f"huge.csv is {input_files.MAX_CSV_BYTES + 1:,} bytes" in infer(signal_file, path,
                                                                           tmp_path)


def test_a_wav_of_more_samples_than_the_cap_is_refused_from_its_header(signal_file, tmp_path):
    path = tmp_path / "long.wav"
    write_wav(path, frames=input_files.MAX_SAMPLES // 2 + 1, channels=2)
    assert "long.wav holds 100,000,002 samples, more than the" in infer(signal_file, path,
                                                                        tmp_path)


PEAK = """
import re, sys
from pathlib import Path
import main
status = main.main(sys.argv[1:])
peak = re.search(r"VmHWM:\\s*(\\d+)", Path("/proc/self/status").read_text()).group(1)
Path(sys.argv[-1] + ".peak").write_text(peak)
sys.exit(status)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_a_180_mb_wav_is_read_in_chunks(signal_file, tmp_path):
    """The tester's 180 MB .wav peaked at 2.4 GB: read in chunks, the process peaks at its
    float32 samples (360 MB) plus the interpreter (385 MB measured)."""
    path = tmp_path / "long.wav"
    write_wav(path, frames=45_000_000, channels=2)  # 16-bit stereo: 180 MB
    out = tmp_path / "y.npy"
    run = subprocess.run([sys.executable, "-c", PEAK, "infer", str(signal_file), "--input",
                          str(path), "--output", str(out)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    peak_mb = int(Path(f"{out}.peak").read_text()) // 1024
    assert peak_mb < 360 + 120, f"peak resident size {peak_mb} MB"
    assert np.load(out).shape == (1, 2, 64)


# 6. Only PNG, JPEG and BMP are decoded, recognised by content whatever the suffix.

EPS = b"""%!PS-Adobe-3.0 EPSF-3.0
%%BoundingBox: 0 0 32 32
newpath 0 0 moveto 32 32 lineto stroke
showpage
"""


def test_an_eps_named_png_never_reaches_ghostscript(lenet_file, tmp_path):
    folder = tmp_path / "bin"
    folder.mkdir()
    marker = tmp_path / "ghostscript-ran"
    for name in ("gs", "gswin32c", "gswin64c"):  # what Pillow's EPS plugin runs
        fake = folder / name
        fake.write_text(f"#!/bin/sh\ntouch {marker}\n")
        fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    path = tmp_path / "drawing.png"
    path.write_bytes(EPS)
    env = {"PATH": f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"}
    line = infer(lenet_file, path, tmp_path, env=env)
    assert "drawing.png is not an image ConvScope can read (PNG, JPEG or BMP)" in line
    assert not marker.exists()


@pytest.mark.parametrize("fmt", ["TIFF", "GIF", "WEBP", "ICO"])
def test_other_formats_named_png_are_refused(lenet_file, tmp_path, fmt):
    path = tmp_path / "photo.png"
    Image.new("L", (32, 32)).save(path, format=fmt)
    assert "photo.png is not an image ConvScope can read" in infer(lenet_file, path, tmp_path)


def test_a_jpeg_named_png_is_read_by_its_contents(lenet_file, tmp_path):
    path = tmp_path / "photo.png"
    Image.new("L", (32, 32), 255).save(path, format="JPEG")
    run = cli("infer", lenet_file, "--input", path, "--output", tmp_path / "y.npy")
    assert run.returncode == 0, run.stderr


# 7. Messages never quote a file's contents.

@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_a_csv_linked_to_proc_environ_echoes_no_environment(signal_file, tmp_path):
    link = tmp_path / "environ.csv"
    link.symlink_to("/proc/self/environ")
    line = infer(signal_file, link, tmp_path, env={"HOSTILE_SECRET": SECRET})
    assert "environ.csv" in line and SECRET not in line


QUOTING = {
    "table.csv": f"1,2\n{SECRET},3\n".encode(),
    "ragged.csv": f"1,2\n3,4,{SECRET}\n".encode(),
    "bytes.csv": b"1,2\n\xff" + SECRET.encode() + b"\n",
    "audio.wav": b"RIFF\x24\x00\x00\x00WAVE" + SECRET.encode() * 4,
    "image.png": b"\x89PNG\r\n\x1a\n" + SECRET.encode() * 4,
    "array.npy": npy_with_descr(SECRET),
}


@pytest.mark.parametrize("name, data", QUOTING.items(), ids=list(QUOTING))
def test_no_error_quotes_the_file(signal_file, lenet_file, tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    line = infer(signal_file if name.endswith((".csv", ".wav")) else lenet_file, path, tmp_path)
    assert name in line and SECRET not in line


def test_the_row_and_column_of_a_bad_cell_are_named_without_the_cell(signal_file, tmp_path):
    path = tmp_path / "table.csv"
    path.write_text(f"1,2\n3,{SECRET}\n")
    line = infer(signal_file, path, tmp_path)
    assert "(row 2, column 2)" in line and SECRET not in line


# 8. Load W accepts only what a project can save and reopen.

@pytest.mark.parametrize("value", [1e39, -1e39, np.nan, np.inf])
def test_load_w_refuses_values_that_are_not_finite_float32(tmp_path, value):
    weight = np.zeros((4, 1, 3, 3), np.float64)
    weight[2, 0, 1, 1] = value
    np.save(tmp_path / "w.npy", weight)
    with pytest.raises(ConfigError, match="w.npy holds NaN or infinite values, or values beyond "
                                          "float32's range"):
        load_weight(tmp_path / "w.npy", (4, 1, 3, 3))


def test_load_w_accepts_the_largest_float32_and_keeps_it(tmp_path):
    weight = np.full((4, 1, 3, 3), -1.5, np.float64)
    weight[0, 0, 0, 0] = float(np.finfo(np.float32).max)
    weight[1, 0, 0, 0] = 1e-45  # rounds to float32's smallest subnormal
    np.save(tmp_path / "w.npy", np.asfortranarray(weight))
    loaded = load_weight(tmp_path / "w.npy", (4, 1, 3, 3))
    assert loaded.dtype == np.float32 and loaded.flags.c_contiguous
    np.testing.assert_array_equal(loaded, weight.astype(np.float32))
