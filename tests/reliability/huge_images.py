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
