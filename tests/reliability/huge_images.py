"""Writers of huge images in little memory and little disk: the rows are produced and compressed
one at a time, never held whole."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_half_white_png(path: Path, width: int, height: int) -> None:
    """A 1-bit grey PNG whose left half (width // 2 pixels, a multiple of 8) is white and right
    half black. Every row after the first uses PNG's Up filter, so decoding any row needs the one
    before it: a reader that decodes in bands must carry rows across them."""
    stride = (width + 7) // 8
    white = width // 2 // 8
    first = b"\x00" + b"\xff" * white + b"\x00" * (stride - white)
    same_as_above = b"\x02" + bytes(stride)
    compressor = zlib.compressobj(9)
    with open(path, "wb") as file:
        file.write(PNG_SIGNATURE)
        file.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)))
        data = compressor.compress(first)
        for _ in range(height - 1):
            data += compressor.compress(same_as_above)
            if len(data) > 1 << 16:
                file.write(_chunk(b"IDAT", data))
                data = b""
        file.write(_chunk(b"IDAT", data + compressor.flush()))
        file.write(_chunk(b"IEND", b""))


def write_png_header(path: Path, width: int, height: int, colour: int = 6, depth: int = 8) -> None:
    """A PNG whose header says width x height (colour type 6: 8-bit RGBA) and whose pixel data
    is one row's worth: enough for a reader that decides from the header, a few hundred bytes
    whatever the size it claims."""
    stride = (width * depth * {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour] + 7) // 8
    with open(path, "wb") as file:
        file.write(PNG_SIGNATURE)
        file.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)))
        file.write(_chunk(b"IDAT", zlib.compress(bytes(min(stride + 1, 1 << 16)))))
        file.write(_chunk(b"IEND", b""))


def write_uniform_png(path: Path, width: int, height: int, colour: int = 6) -> None:
    """An 8-bit PNG of the colour type (0 grey, 2 RGB, 4 grey+alpha, 6 RGBA) whose every pixel
    is zero: the rows are compressed one at a time, so a 10000 x 10000 RGBA image is written in
    a second and takes a few hundred kilobytes."""
    stride = width * {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    row = bytes(stride + 1)
    compressor = zlib.compressobj(9)
    with open(path, "wb") as file:
        file.write(PNG_SIGNATURE)
        file.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)))
        data = b""
        for _ in range(height):
            data += compressor.compress(row)
            if len(data) > 1 << 16:
                file.write(_chunk(b"IDAT", data))
                data = b""
        file.write(_chunk(b"IDAT", data + compressor.flush()))
        file.write(_chunk(b"IEND", b""))


def write_wav(path: Path, frames: int, channels: int = 1, width: int = 2,
              frames_present: int | None = None) -> None:
    """A PCM .wav whose header claims `frames` frames and whose data holds `frames_present`
    (default: all) frames of silence, made sparse: its size costs no disk and no time."""
    present = frames if frames_present is None else frames_present
    data_bytes = frames * channels * width
    header = (b"RIFF" + struct.pack("<I", min(36 + data_bytes, 0xFFFFFFFF)) + b"WAVE"
              + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, 8000, 8000 * channels * width,
                                      channels * width, 8 * width)
              + b"data" + struct.pack("<I", min(data_bytes, 0xFFFFFFFF)))
    with open(path, "wb") as file:
        file.write(header)
        file.truncate(len(header) + present * channels * width)


def write_npy(path: Path, shape: tuple[int, ...], dtype: str = "<f4",
              data_bytes: int | None = None) -> None:
    """A .npy file whose header promises `shape` of `dtype` and whose data is `data_bytes` zero
    bytes (default: all it promises), made sparse."""
    import numpy as np

    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    with open(path, "wb") as file:
        np.lib.format.write_array_header_1_0(file, header)
        start = file.tell()
        count = 1
        for size in shape:
            count *= size
        file.truncate(start + (count * np.dtype(dtype).itemsize if data_bytes is None
                               else data_bytes))
