"""Images too large to decode whole: refused from the header alone, or read downscaled while
decoding in bounded memory (measured as the peak resident size of a fresh process)."""
from __future__ import annotations

import io
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import image_downscale, input_files
from engine.image_downscale import box_reduce, reduction_factor
from engine.input_files import ImageTooLarge, load_input, native_shape
from models.errors import FileFormatError
from models.stack import InputSpec
from tests.reliability.huge_images import write_half_white_png

ROOT = Path(__file__).resolve().parents[2]
# A whole 20000 x 20000 decode needs 400 MB for 8-bit grey, and 1.6 GB as float32 bands.
PEAK_LIMIT_MB = 300

# The peak is VmHWM, this process's own high-water mark: ru_maxrss carries over from the parent
# across fork and exec, so it would report the test runner's size.
DOWNSCALE = """
import re, sys
from pathlib import Path
from engine.input_files import load_input
from models.stack import InputSpec
x = load_input(sys.argv[1], InputSpec(1, (16, 16)), downscale=True)[0, 0]
peak_kb = int(re.search(r"VmHWM:\\s*(\\d+)", Path("/proc/self/status").read_text()).group(1))
print(x[:, :6].min(), x[:, 10:].max(), peak_kb // 1024)
"""
WRITE_JPEG = """
import sys
from PIL import Image, ImageDraw
image = Image.new("L", (20000, 20000), 0)
ImageDraw.Draw(image).rectangle((0, 0, 9999, 19999), fill=255)
image.save(sys.argv[1], quality=90)
"""


def downscaled_in_a_fresh_process(path: Path) -> tuple[float, float, int]:
    """(darkest pixel of the left part, brightest of the right part, peak RSS in MB)."""
    done = subprocess.run([sys.executable, "-c", DOWNSCALE, str(path)], cwd=ROOT, check=True,
                          capture_output=True, text=True, timeout=300)
    low, high, peak = done.stdout.split()
    return float(low), float(high), int(peak)


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("huge") / "half-white.png"
    write_half_white_png(path, 20000, 20000)
    return path


def test_the_size_is_read_from_the_header_without_decoding(huge_png):
    start = time.perf_counter()
    with pytest.raises(ImageTooLarge) as caught:
        load_input(huge_png, InputSpec(1, (16, 16)))
    assert time.perf_counter() - start < 2.0
    assert caught.value.size == (20000, 20000)
    assert "half-white.png is 20000x20000 pixels (400 megapixels), more than the 50" \
        in str(caught.value)


def test_a_huge_png_downscales_in_bounded_memory(huge_png):
    low, high, peak = downscaled_in_a_fresh_process(huge_png)
    assert low > 0.99 and high < 0.01  # the white half stays white, the black half black
    assert peak < PEAK_LIMIT_MB, f"peak resident size {peak} MB"
    assert native_shape(huge_png, downscale=True) == (1, 2000, 2000)


def test_a_huge_jpeg_downscales_in_bounded_memory(tmp_path):
    path = tmp_path / "half-white.jpg"
    subprocess.run([sys.executable, "-c", WRITE_JPEG, str(path)], check=True, timeout=300)
    low, high, peak = downscaled_in_a_fresh_process(path)
    assert low > 0.95 and high < 0.05
    assert peak < PEAK_LIMIT_MB, f"peak resident size {peak} MB"


def _pngs(folder: Path) -> list[Path]:
    """One PNG of every layout the band decoder reads, saved by Pillow (which picks PNG's
    filters row by row), of a size that is no multiple of the bands or the reduction."""
    rng = np.random.default_rng(5)
    rgb = np.cumsum(rng.integers(0, 40, (301, 257, 3)), axis=1).astype(np.uint8)
    images = {
        "rgb": Image.fromarray(rgb), "grey": Image.fromarray(rgb[..., 0]),
        "rgba": Image.fromarray(np.dstack([rgb, rgb[..., 1:2]])),
        "grey-alpha": Image.fromarray(rgb[..., 0]).convert("LA"),
        "palette": Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16),
        "bits": Image.fromarray(rgb[..., 0] > 128),
        "grey16": Image.fromarray(rgb[..., 0].astype(np.uint16) * 257),
    }
    paths = []
    for name, image in images.items():
        paths.append(folder / f"{name}.png")
        image.save(paths[-1], optimize=True)
    image = images["palette"]
    image.save(folder / "palette4.png", bits=4)
    return [*paths, folder / "palette4.png"]


def test_band_decoding_equals_decoding_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(input_files, "MAX_PIXELS", 1000)
    monkeypatch.setattr(input_files, "DOWNSCALED_PIXELS", 2000)
    monkeypatch.setattr(image_downscale, "BAND_PIXELS", 3000)  # many bands of a few rows
    factor = reduction_factor(257, 301, 2000)
    for path in _pngs(tmp_path):
        with Image.open(path) as image:
            whole = box_reduce(input_files._image_bands(image), factor)
        banded = input_files._read_image(path, downscale=True)
        assert banded.shape == whole.shape == (whole.shape[0], 301 // factor, 257 // factor)
        np.testing.assert_array_equal(banded, whole, err_msg=path.name)


@pytest.mark.parametrize("kind", ["bmp", "png16-rgb", "interlaced", "cut"])
def test_what_cannot_be_reduced_while_reading_is_refused_clearly(tmp_path, monkeypatch, kind):
    monkeypatch.setattr(input_files, "MAX_PIXELS", 1000)
    pixels = np.random.default_rng(6).integers(0, 255, (60, 50, 3), dtype=np.uint8)
    path = tmp_path / ("big.bmp" if kind == "bmp" else "big.png")
    if kind == "png16-rgb":
        Image.fromarray(pixels).save(path)
        path.write_bytes(_as_16_bit_rgb(path.read_bytes()))
    else:
        Image.fromarray(pixels).save(path)
    if kind == "interlaced":  # Pillow writes no interlaced PNGs: mark the header as one
        data = bytearray(path.read_bytes())
        data[28] = 1  # IHDR's interlace method, after the signature, length, type and 12 bytes
        data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
        path.write_bytes(bytes(data))
    if kind == "cut":
        path.write_bytes(path.read_bytes()[:-300])
    with pytest.raises(ImageTooLarge):
        load_input(path, InputSpec(3, (8, 8)))
    words = "truncated" if kind == "cut" else "save it as a smaller image"
    with pytest.raises(FileFormatError, match=words) as caught:
        load_input(path, InputSpec(3, (8, 8)), downscale=True)
    assert "big." in str(caught.value) and "\n" not in str(caught.value)


def _as_16_bit_rgb(png: bytes) -> bytes:
    """The PNG re-encoded as 16 bits per sample (Pillow writes no 16-bit RGB)."""
    with Image.open(io.BytesIO(png)) as image:
        rgb = np.asarray(image.convert("RGB"), np.uint16) * 257
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in rgb)
    h, w = rgb.shape[:2]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
