"""Property tests of the input caps and the memory budget, over sizes up to 10^7 samples read
and 10^8 pixels (and headers claiming far more): whatever a file's header claims, a reader
either refuses it from the header and its size, before reading, at a peak of a few hundred
kilobytes, or reads it at a peak of what it returns plus a fixed chunk. The budget's estimate
is never below what a windowed layer really allocates, and a run over the budget is refused
before anything is allocated.

The files are made cheaply: headers that claim a size, and sparse files (truncate) whose holes
cost no disk and read as zeros. Peaks are tracemalloc's (NumPy and Python allocations), except
for decoded images, whose pixels Pillow allocates outside Python's view: those are measured as
the process's peak resident size, reset before the read (/proc/self/clear_refs).
"""
from __future__ import annotations

import math
import re
import time
import tracemalloc
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from engine import input_files
from engine.executor import run
from engine.input_files import ImageTooLarge, load_input
from engine.memory_budget import BUDGET_VARIABLE, check_budget, estimate, parse_budget
from models.analysis import analyse
from models.errors import ConfigError, FileFormatError
from models.layers import AvgPool, Conv, ConvTranspose, DepthwiseConv, MaxPool
from models.stack import InputSpec, Stack
from tests.reliability.huge_images import write_npy, write_png_header, write_uniform_png, \
    write_wav

MB = 1 << 20
REFUSAL_PEAK = MB // 4  # a refusal reads a header: a few kilobytes
CHUNK_PEAK = 6 * MB  # the readers' chunks (1 MiB of .npy data, 256 KiB of PCM), converted
RUN_OVERHEAD = 4 * MB  # a run's own objects (report, result, the engine's caches), any stack
PIXEL_PEAK = 9  # bytes per pixel of a whole decode: the decoded image, one float plane, slack
PROPERTY = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


def peak_of(read: Callable[[], object], warm: bool = True) -> tuple[object, int]:
    """(read()'s result or the ConfigError it raised, its tracemalloc peak in bytes). warm:
    call it once unmeasured first, so that what a first call imports or caches (Pillow's
    plugins, ...) is not counted."""
    if warm:
        peak_of(read, warm=False)
    tracemalloc.start()
    try:
        try:
            result: object = read()
        except ConfigError as err:
            result = err
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def sizes(largest_read: int, largest_claim: int) -> st.SearchStrategy[int]:
    """Sizes spread over every order of magnitude: up to largest_read, and claims beyond."""
    return st.one_of(st.integers(1, largest_read),
                     st.integers(1, int(math.log2(largest_claim))).map(lambda b: 2 ** b),
                     st.integers(largest_read, largest_claim))


@PROPERTY
@given(count=sizes(10**7, 10**12), dtype=st.sampled_from(["<f4", ">f8", "<i2", "|u1", "<u8"]))
def test_an_npy_input_is_refused_from_its_header_or_read_within_its_size(tmp_path, count, dtype):
    path = tmp_path / "x.npy"
    write_npy(path, (1, count), dtype)
    refused = count > input_files.MAX_SAMPLES
    result, peak = peak_of(lambda: load_input(path, InputSpec(1, (count,))))
    if refused:
        assert isinstance(result, FileFormatError) and "more than the" in str(result)
        assert peak < REFUSAL_PEAK
    else:
        assert isinstance(result, np.ndarray) and result.shape == (1, 1, count)
        assert peak <= 4 * count + CHUNK_PEAK


@PROPERTY
@given(frames=sizes(10**7, 10**10), channels=st.integers(1, 4), width=st.integers(1, 4),
       present=st.integers(0, 10**7))
def test_a_wav_is_read_within_what_the_file_holds_whatever_its_header_claims(
        tmp_path, frames, channels, width, present):
    present = min(present, frames, 10**7 // channels)
    path = tmp_path / "x.wav"
    write_wav(path, frames, channels, width, frames_present=present)
    result, peak = peak_of(lambda: input_files._read_wav(path))
    if present == 0:
        assert isinstance(result, FileFormatError) and "holds no samples" in str(result)
        return
    assert isinstance(result, np.ndarray) and result.shape == (channels, present)
    # The allocation follows the file's size, not the header's claim (44 header bytes at most
    # add a few frames).
    assert peak <= 4 * channels * (present + 44) + CHUNK_PEAK


@PROPERTY
@given(samples=st.integers(input_files.MAX_SAMPLES + 1, 10**10), channels=st.integers(1, 8))
def test_a_wav_past_the_sample_cap_is_refused_from_its_header(tmp_path, samples, channels):
    path = tmp_path / "x.wav"
    frames = -(-samples // channels)
    assume(frames * channels * 2 < 1 << 32)  # a .wav's data size is 32 bits
    write_wav(path, frames, channels, 2)
    start = time.perf_counter()
    result, peak = peak_of(lambda: input_files._read_wav(path))
    assert isinstance(result, FileFormatError), result
    assert "more than the" in str(result) or "bytes, more than" in str(result)
    assert peak < REFUSAL_PEAK and time.perf_counter() - start < 1


@PROPERTY
@given(values=st.integers(1, 20_000), columns=st.integers(1, 4),
       oversize=st.integers(1, 10**10))
def test_a_csv_is_parsed_within_its_cap_or_refused_from_its_size(tmp_path, values, columns,
                                                                 oversize):
    rows = -(-values // columns)
    path = tmp_path / "x.csv"
    path.write_text("\n".join(",".join(f"{r * columns + c}.5" for c in range(columns))
                              for r in range(rows)))
    result, peak = peak_of(lambda: input_files._read_csv(path))
    assert isinstance(result, np.ndarray) and result.size == rows * columns
    assert peak <= 3 * path.stat().st_size + 8 * result.size + MB
    with open(path, "wb") as file:
        file.truncate(input_files.MAX_CSV_BYTES + oversize)
    result, peak = peak_of(lambda: input_files._read_csv(path))
    assert isinstance(result, FileFormatError) and "bytes, more than the" in str(result)
    assert peak < REFUSAL_PEAK


@PROPERTY
@given(width=st.integers(1, 2**31 - 1), height=st.integers(1, 2**31 - 1),
       colour=st.sampled_from([0, 2, 4, 6]))
def test_an_image_past_the_pixel_cap_is_refused_from_its_header(tmp_path, width, height, colour):
    assume(width * height > input_files.MAX_PIXELS)
    path = tmp_path / "x.png"
    write_png_header(path, width, height, colour)
    start = time.perf_counter()
    result, peak = peak_of(lambda: load_input(path, InputSpec(3, (8, 8))))
    assert isinstance(result, ImageTooLarge) and result.size == (width, height)
    assert peak < REFUSAL_PEAK and time.perf_counter() - start < 1


def resident_mb(field: str) -> float:
    return int(re.search(rf"{field}:\s*(\d+)", Path("/proc/self/status").read_text()
                         ).group(1)) / 1024


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc")
@PROPERTY
@given(width=st.integers(1, 2500), height=st.integers(1, 2500),
       colour=st.sampled_from([0, 2, 4, 6]), channels=st.sampled_from([1, 3, 4]),
       mode=st.sampled_from(["resize", "crop"]))
def test_a_decoded_image_peaks_at_a_few_bytes_per_pixel(tmp_path, width, height, colour,
                                                         channels, mode):
    """Up to 6 megapixels decoded here; at the cap (MAX_PIXELS) the same rate gives the
    stated peak: 9 bytes per pixel, about 450 MB."""
    path = tmp_path / "x.png"
    write_uniform_png(path, 8, 8, colour)
    load_input(path, InputSpec(channels, (32, 48)), mode=mode)  # imports and caches, unmeasured
    write_uniform_png(path, width, height, colour)
    Path("/proc/self/clear_refs").write_text("5")  # the peak resident size starts again here
    before = resident_mb("VmRSS")
    x = load_input(path, InputSpec(channels, (32, 48)), mode=mode)
    peak = resident_mb("VmHWM") - before
    assert x.shape == (1, channels, 32, 48)
    assert peak <= (PIXEL_PEAK * width * height + 24 * MB) / MB, f"{peak:.0f} MB"


def kernels(largest: int) -> st.SearchStrategy[int]:
    """Kernel sizes: mostly small enough to run, and every order of magnitude up to largest."""
    return st.integers(1, 64) | st.integers(1, int(math.log2(largest))).map(lambda b: 2 ** b) \
        | st.integers(1, largest)


WINDOWS = st.one_of(
    st.builds(lambda k, s, d: Conv(rank=1, out_channels=2, kernel_size=k, stride=s,
                                   dilation=d, padding="same"),
              kernels(10**7), st.integers(1, 4), st.integers(1, 3)),
    st.builds(lambda k, s: MaxPool(rank=1, kernel_size=k, stride=s, padding="same"),
              kernels(10**7), st.integers(1, 4)),
    st.builds(lambda k, s: AvgPool(rank=1, kernel_size=k, stride=s, padding="same"),
              kernels(10**7), st.integers(1, 4)),
    st.builds(lambda k, s: DepthwiseConv(rank=1, kernel_size=k, stride=s, padding="same"),
              kernels(10**7), st.integers(1, 4)),
    st.builds(lambda k, s: Conv(rank=2, out_channels=3, kernel_size=k, stride=s,
                                padding="same"), kernels(3000), st.integers(1, 3)),
    st.builds(lambda k: MaxPool(rank=2, kernel_size=k, stride=1, padding="same"),
              kernels(3000)),
    st.builds(lambda k, s, g: ConvTranspose(rank=2, out_channels=2 * g, kernel_size=k, stride=s,
                                            groups=g), kernels(3000), st.integers(1, 3),
              st.integers(1, 2)),
)


@pytest.fixture(scope="module", autouse=True)
def engine_started() -> None:
    """One small run first: the engine's thread pool and imports are not a run's memory."""
    stack = Stack(InputSpec(2, (8, 8)), ()).appended(Conv(rank=2, out_channels=2))
    run(stack, np.ones((1, 2, 8, 8), np.float32))


@settings(PROPERTY, max_examples=60)
@given(spec=WINDOWS, length=st.integers(1, 10**4), batch=st.integers(1, 3),
       budget=st.integers(10, 30).map(lambda b: 2 ** b))
# A kernel far wider than its input: the average's divisors were once an (out x taps) table.
@example(spec=AvgPool(rank=1, kernel_size=4000, stride=1, padding="same"), length=1000, batch=1,
         budget=2 ** 30)
def test_a_windowed_layer_runs_within_its_estimate_or_is_refused_before_allocating(
        spec, length, batch, budget):
    spatial = (length,) if spec.rank == 1 else (min(length, 64),) * 2
    channels = 2 * getattr(spec, "groups", 1)
    stack = Stack(InputSpec(channels, spatial, batch), ()).appended(spec)
    report = analyse(stack)
    assume(report.ok)
    needed = estimate(report)
    taps = math.prod(spec.kernel_size)
    x = np.ones((batch, channels, *spatial), np.float32)
    if needed.total > budget:
        event("refused")
        result, peak = peak_of(lambda: run(stack, x, memory_budget=budget))
        assert isinstance(result, ConfigError) and "over the" in str(result)
        assert peak < REFUSAL_PEAK
        if 2 * needed.window > needed.total:
            assert str(result).startswith(f"layer 1 ({stack.layers[0].name}, {spec.type_name})")
        return
    assume(taps <= 4000)  # the engine loops over taps in Python: bigger kernels take seconds
    event("ran")
    weights = 12 * report.total_params  # drawn in float64, kept in float32: not a run's memory
    # Measured on the first run of this geometry: its scratch is made, not found in a cache.
    result, peak = peak_of(lambda: run(stack, x, memory_budget=budget), warm=False)
    assert not isinstance(result, ConfigError), result
    assert peak <= needed.total + weights + RUN_OVERHEAD, (peak, needed)


@given(number=st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10**400, 10**400),
       unit=st.sampled_from(["", "K", "M", "G", "T", "KB", "g", " GB", "GiB", "x"]))
def test_any_budget_text_is_a_size_of_at_least_a_byte_or_an_error_naming_the_variable(number,
                                                                                      unit):
    for text in (f"{number}{unit}", f"{number!r}{unit}"):
        try:
            size = parse_budget(text)
        except ConfigError as err:
            assert f"{BUDGET_VARIABLE}=" in str(err) and len(str(err)) < 200
        else:
            assert isinstance(size, int) and size >= 1
            assert math.isfinite(float(re.match(r"\s*[-+0-9.eE]+", text).group(0)))


def test_a_budget_refusal_names_the_layer_whose_padding_does_not_fit():
    stack = Stack(InputSpec(1, (32,)), ()).appended(MaxPool(rank=1, kernel_size=10**6,
                                                             stride=1, padding="same"))
    with pytest.raises(ConfigError) as caught:
        check_budget(analyse(stack), budget=200 * 10**6)
    assert caught.value.layer_index == 0 and caught.value.field == "kernel_size"
    assert "at batch 1 need about" in str(caught.value)
