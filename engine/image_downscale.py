"""Reading an image too large to decode whole, reduced while it is decoded, in bounded memory.

`read_reduced(image, file, name, max_pixels, image_bands)` returns the image's (bands, H, W)
float32 in [0, 1] (as engine.input_files reads images), shrunk by a whole factor f so that
H * W <= max_pixels, each output pixel the mean of an f x f block (the last W % f columns and
H % f rows are dropped).
- JPEG: libjpeg scales while decoding (Image.draft, 1/2 to 1/8), then the rest is averaged.
- PNG (not interlaced; 1 to 8 bits per sample, or 16-bit grey / grey+alpha): the compressed rows
  are inflated as a stream and decoded in bands of rows, each averaged before the next is read.
  Memory is a few bands, never the whole image.
Other formats and PNG variants raise FileFormatError saying how to shrink the file instead.
"""
from __future__ import annotations

import io
import math
import struct
import zlib
from typing import BinaryIO, Callable, Iterator

import numpy as np

from models.errors import FileFormatError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Pixels decoded per band (before averaging): about 4 MB of 8-bit samples.
BAND_PIXELS = 4_000_000
# The most pixels decoded at once when a band cannot be smaller (one row group of a PNG that
# is `factor` rows high; a JPEG after libjpeg's scaling): about 64 MB of 8-bit RGBA.
MAX_BAND_PIXELS = 16_000_000
READ_BYTES = 1 << 20  # compressed bytes inflated at a time
# Colour types whose unfiltered bytes an 8-bit colour type with the same bytes per pixel holds
# losslessly (see _unfiltered): bytes per pixel -> (colour type, samples per pixel).
_LOSSLESS_BY_BPP = {1: (0, 1), 2: (4, 2), 3: (2, 3), 4: (6, 4)}
_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_MAX_HEADER_CHUNK = 1024  # IHDR is 13 bytes, PLTE at most 768, tRNS at most 256

Bands = Callable[[object], np.ndarray]  # a Pillow image -> (bands, h, w) float32 in [0, 1]


def reduction_factor(width: int, height: int, max_pixels: int) -> int:
    """The least whole f with (width // f) * (height // f) <= max_pixels."""
    factor = max(1, math.ceil(math.sqrt(width * height / max_pixels)))
    while (width // factor) * (height // factor) > max_pixels:
        factor += 1
    return factor


def box_reduce(bands: np.ndarray, factor: int) -> np.ndarray:
    """(c, h, w) -> (c, h // factor, w // factor): the mean of each factor x factor block."""
    if factor == 1:
        return bands
    c, h, w = bands.shape
    h, w = h - h % factor, w - w % factor
    blocks = bands[:, :h, :w].reshape(c, h // factor, factor, w // factor, factor)
    return blocks.mean(axis=(2, 4), dtype=np.float32)


def read_reduced(image: object, file: BinaryIO, name: str, max_pixels: int,
                 image_bands: Bands) -> np.ndarray:
    """The image, reduced to at most max_pixels (see the module docstring).

    image: the Pillow image opened on `file` (its header read, nothing decoded); name: the
    file's name for messages. image_bands converts a decoded Pillow image to (bands, h, w)
    float32, so reduced images get the same bands and scaling as whole ones. Raises
    FileFormatError for damaged files, for formats that cannot be reduced while decoding, and
    for shapes whose rows alone would not fit a band (a PNG of a billion pixels by one).
    """
    width, height = image.size  # type: ignore[attr-defined]
    factor = reduction_factor(width, height, max_pixels)
    if (width // factor) * (height // factor) == 0:
        raise FileFormatError(f"{name} is {width}x{height} pixels, too thin to shrink by "
                              f"{factor}; save it as a smaller image first")
    if image.format == "JPEG":  # type: ignore[attr-defined]
        return _jpeg(image, factor, max_pixels, image_bands, name)
    if image.format == "PNG":  # type: ignore[attr-defined]
        if width * factor > MAX_BAND_PIXELS:
            raise FileFormatError(f"{name} is {width}x{height} pixels, too wide to shrink while "
                                  f"reading it; save it as a smaller image first")
        file.seek(0)
        return _png(file, factor, image_bands, name)
    raise FileFormatError(f"{name} is {width}x{height} pixels and ConvScope can shrink only "
                          f"JPEG and PNG images while reading them; save it as a smaller image "
                          f"first")


def _jpeg(image: object, factor: int, max_pixels: int, image_bands: Bands, name: str
          ) -> np.ndarray:
    width, height = image.size  # type: ignore[attr-defined]
    mode = "L" if image.mode == "L" else "RGB"  # type: ignore[attr-defined]
    image.draft(mode, (width // factor, height // factor))  # type: ignore[attr-defined]
    scaled_w, scaled_h = image.size  # type: ignore[attr-defined]
    if scaled_w * scaled_h > MAX_BAND_PIXELS:
        # libjpeg scales by 1/8 at most; the rest would still be too large to decode.
        raise FileFormatError(f"{name} is {width}x{height} pixels, too large to shrink while "
                              f"reading it; save it as a smaller image first")
    bands = image_bands(image)
    return box_reduce(bands, reduction_factor(scaled_w, scaled_h, max_pixels))


def _png(file: BinaryIO, factor: int, image_bands: Bands, name: str) -> np.ndarray:
    from PIL import Image
    header, palette_chunks, first_idat = _png_header(file, name)
    width, height, depth, colour, interlace = struct.unpack(">IIBBxxB", header)
    if interlace or colour not in _SAMPLES or depth == 16 and colour not in (0, 4):
        raise FileFormatError(f"{name} is {width}x{height} pixels, and ConvScope shrinks only "
                              f"non-interlaced PNGs of up to 8 bits per sample (or 16-bit grey) "
                              f"while reading them; save it as a smaller image first")
    bits = depth * _SAMPLES[colour]
    stride = (width * bits + 7) // 8
    bpp = max(1, bits // 8)
    band = max(1, BAND_PIXELS // max(width, 1) // factor) * factor
    out = []
    previous = bytes(stride)  # the row before the first is zeros, as PNG's filters define
    for filtered in _row_bands(_idat_stream(file, first_idat, name), stride + 1, band, height,
                               name):
        raw = _unfiltered(filtered, previous, stride, bpp, name)
        previous = raw[-stride:]
        rows = len(raw) // stride
        band_png = _png_bytes(struct.pack(">IIBBBBB", width, rows, depth, colour, 0, 0, 0),
                              _with_filter_none(raw, stride), palette_chunks)
        with Image.open(io.BytesIO(band_png), formats=["PNG"]) as band_image:
            out.append(box_reduce(image_bands(band_image), factor))
    return np.ascontiguousarray(np.concatenate(out, axis=1))


def _unfiltered(filtered: bytes, previous: bytes, stride: int, bpp: int, name: str) -> bytes:
    """The band's rows with PNG's filters undone, decoded by Pillow.

    PNG's filters work on bytes, spaced by the bytes per pixel, so an 8-bit image of the same
    bytes per pixel and `stride` bytes per row decodes to exactly the unfiltered bytes. The
    previous band's last row goes first, unfiltered (filter 0), as the row the filters refer to.
    """
    from PIL import Image
    colour, samples = _LOSSLESS_BY_BPP[bpp]
    rows = len(filtered) // (stride + 1) + 1
    header = struct.pack(">IIBBBBB", stride // samples, rows, 8, colour, 0, 0, 0)
    data = _png_bytes(header, b"\x00" + previous + filtered, [])
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            array = np.asarray(image, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError):
        raise FileFormatError(f"{name} is damaged: its pixel rows cannot be decoded") from None
    return array.reshape(rows, stride)[1:].tobytes()


def _with_filter_none(raw: bytes, stride: int) -> bytes:
    rows = np.frombuffer(raw, np.uint8).reshape(-1, stride)
    return np.concatenate([np.zeros((len(rows), 1), np.uint8), rows], axis=1).tobytes()


def _png_bytes(header: bytes, rows: bytes, extra_chunks: list[tuple[bytes, bytes]]) -> bytes:
    """A whole PNG file: IHDR, the extra chunks (palette, transparency), the rows stored."""
    chunks = [(b"IHDR", header), *extra_chunks, (b"IDAT", zlib.compress(rows, 0)), (b"IEND", b"")]
    return PNG_SIGNATURE + b"".join(struct.pack(">I", len(data)) + kind + data
                                    + struct.pack(">I", zlib.crc32(kind + data))
                                    for kind, data in chunks)


def _png_header(file: BinaryIO, name: str) -> tuple[bytes, list[tuple[bytes, bytes]], int]:
    """(IHDR data, the PLTE and tRNS chunks, the length of the first IDAT chunk); leaves the file
    at that chunk's data."""
    if file.read(8) != PNG_SIGNATURE:
        raise FileFormatError(f"{name} is not a PNG file")
    header, extra = b"", []
    while True:
        kind, length = _chunk_start(file, name)
        if kind == b"IDAT":
            if not header:
                raise FileFormatError(f"{name} is damaged: it has no PNG header")
            return header, extra, length
        if kind not in (b"IHDR", b"PLTE", b"tRNS"):
            file.seek(length + 4, io.SEEK_CUR)  # text, metadata: skipped, never read
            continue
        if length > _MAX_HEADER_CHUNK:
            raise FileFormatError(f"{name} is damaged: its header chunks are too long")
        data = file.read(length)
        file.read(4)  # CRC
        if len(data) < length:
            raise FileFormatError(f"{name} is truncated before its pixel data")
        if kind == b"IHDR":
            header = data
        else:
            extra.append((kind, data))


def _chunk_start(file: BinaryIO, name: str) -> tuple[bytes, int]:
    start = file.read(8)
    if len(start) < 8:
        raise FileFormatError(f"{name} is truncated: its pixel data ends early")
    length, kind = struct.unpack(">I4s", start)
    return kind, length


def _idat_stream(file: BinaryIO, length: int, name: str) -> Iterator[bytes]:
    """The compressed pixel data of consecutive IDAT chunks, READ_BYTES at a time."""
    while True:
        while length:
            piece = file.read(min(length, READ_BYTES))
            if not piece:
                raise FileFormatError(f"{name} is truncated: its pixel data ends early")
            length -= len(piece)
            yield piece
        file.read(4)  # CRC
        kind, length = _chunk_start(file, name)
        if kind != b"IDAT":
            return


def _row_bands(compressed: Iterator[bytes], row_bytes: int, band: int, height: int,
               name: str) -> Iterator[bytes]:
    """The filtered rows (filter byte + row) inflated from the stream, `band` rows at a time;
    output is bounded by inflating at most one band's bytes per call."""
    inflater = zlib.decompressobj()
    pending = b""
    left = height
    band_bytes = band * row_bytes
    for piece in compressed:
        data = piece
        while data or len(pending) >= band_bytes:
            try:
                pending += inflater.decompress(data, band_bytes)
            except zlib.error:
                raise FileFormatError(f"{name} is damaged: its pixel data cannot be "
                                      f"inflated") from None
            data = inflater.unconsumed_tail
            while len(pending) >= band_bytes and left:
                rows = min(band, left)
                yield pending[:rows * row_bytes]
                pending, left = pending[rows * row_bytes:], left - rows
            if not left:
                return
    if left:
        rows = len(pending) // row_bytes
        if rows < left:
            raise FileFormatError(f"{name} is truncated: it holds {height - left + rows} of its "
                                  f"{height} rows of pixels")
        yield pending[:left * row_bytes]
