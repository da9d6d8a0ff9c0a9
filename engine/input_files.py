"""Reading an input for a stack from a file: a NumPy array, an image, or a 1D signal.

Every loader returns float32 (N, C, *spatial) that fits the stack's input spec (N = 1 except for
a batched .npy), or raises ConfigError/FileFormatError with the file's name and what to change.
- .npy: the array as it is (values untouched, integers and floats of any width converted to
  float32), with a batch axis added to a single sample. Its header is checked before any data is
  read: pickled (object), complex, bool, text and structured arrays, truncated files and arrays
  of more than MAX_SAMPLES values are refused. NaN and infinite values are kept (a run reports
  them; float64 values beyond float32's range become infinite).
- .png/.jpg/.jpeg/.bmp: values scaled to [0, 1] (16-bit images by 65535), converted to the
  stack's channels (1 = grey, 3 = RGB, 4 = RGBA), resized or centre-cropped to its size. Only
  PNG, JPEG and BMP are decoded, recognised by their contents whatever the suffix. An image of
  more than MAX_PIXELS is refused (ImageTooLarge) before decoding, unless `downscale` asks for
  it reduced while decoding (engine.image_downscale) to at most DOWNSCALED_PIXELS.
- .csv: one column per channel, one row per step (a single row is one channel).
- .wav: samples scaled to [-1, 1], one channel per audio channel.
A signal whose channels differ from the stack's is averaged to one channel when the stack has one.

Limits, checked from the file's size and header before decoding (the caps below, in one place):
every file is opened through models.file_guard (regular files only, never blocking, at most
MAX_FILE_BYTES); decoding then holds at most the result plus a bounded working set: .npy and
.wav are converted to float32 a chunk at a time, a .csv is parsed from at most MAX_CSV_BYTES of
text, and an image is decoded once and turned into the stack's channels one full-size plane at a
time, each fitted to the stack's size before the next is made. Messages name the file and never
quote its contents.
"""
from __future__ import annotations

import io
import os
import re
import struct
import warnings
import wave
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterator

import numpy as np

from engine.image_downscale import read_reduced
from models.errors import ConfigError, FileFormatError
from models.file_guard import (NpyHeader, file_size, open_regular, read_npy_header,
                               read_npy_values, shown)
from models.stack import InputSpec

if TYPE_CHECKING:
    from PIL.Image import Image as PilImage

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
SIGNAL_SUFFIXES = (".csv", ".wav")
SUFFIXES = (".npy", *IMAGE_SUFFIXES, *SIGNAL_SUFFIXES)
IMAGE_FORMATS = ("PNG", "JPEG", "BMP")  # Pillow's names; nothing else is decoded
FIT_MODES = ("resize", "crop")
# The caps of every input. Refuse what would take too much memory once decoded, before decoding.
MAX_FILE_BYTES = 1 << 30  # any input file
MAX_SAMPLES = 100_000_000  # values of a .npy array, samples (frames x channels) of a .wav
MAX_CSV_BYTES = 64 << 20  # text of a .csv: at least 2 bytes per value; parsed in about a second
MAX_PIXELS = 50_000_000  # an image decoded whole: about 8 bytes per pixel at the peak (400 MB)
DOWNSCALED_PIXELS = 4_000_000  # a downscaled image: plenty for any stack's input
WAV_CHUNK_BYTES = 1 << 18  # PCM bytes converted to float32 at a time
STRIP_PIXELS = 1 << 18  # image pixels converted to float32 at a time (16 bytes each for RGBA)
# numpy's kinds of real numbers: signed and unsigned integers, floats.
REAL_KINDS = "iuf"
# ITU-R 601-2 luma, the weights Pillow's "L" conversion uses.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
IMAGE_CHANNELS = (1, 3, 4)


class ImageTooLarge(FileFormatError):
    """An image of more than MAX_PIXELS, refused before decoding; reading it again with
    downscale=True reduces it while decoding. size: (width, height) in pixels."""

    def __init__(self, name: str, size: tuple[int, int]) -> None:
        width, height = size
        super().__init__(f"{name} is {width}x{height} pixels ({width * height / 1e6:.0f} "
                         f"megapixels), more than the {MAX_PIXELS // 1_000_000} megapixels "
                         f"ConvScope decodes whole; downscale it while opening it in the app, or "
                         f"save it smaller first")
        self.size = size


def load_input(path: str | os.PathLike[str], input_spec: InputSpec, mode: str = "resize",
               downscale: bool = False) -> np.ndarray:
    """The input stored in the file, as float32 (N, C, *spatial) fitting input_spec.

    mode: "resize" stretches an image or signal to the input's size; "crop" keeps its scale and
    cuts the centre out (scaling up first only when it is smaller than the input).
    downscale: read an image of more than MAX_PIXELS reduced (see the module docstring) instead
    of raising ImageTooLarge.
    """
    if mode not in FIT_MODES:
        raise ConfigError(f"fit mode must be resize or crop, got {mode!r}", field="mode")
    path = Path(path)
    suffix = _suffix(path)
    if suffix == ".npy":
        return load_array(path, input_spec)
    if suffix in IMAGE_SUFFIXES:
        return load_image(path, input_spec, mode, downscale)
    signal = _read_csv(path) if suffix == ".csv" else _read_wav(path)
    return _fit_signal(signal, input_spec, mode, shown(path))


def native_shape(path: str | os.PathLike[str], downscale: bool = False) -> tuple[int, ...]:
    """(C, *spatial) of the input as the file stores it, for an input spec that takes it as is.

    A .npy of 5 axes, or of 4 whose first is 1, is read as (N, C, *spatial); images give their
    bands (grey 1, RGB 3, RGBA 4) and (H, W) from their header, downscaled as load_input would;
    signals their channels and length. Raises FileFormatError like load_input.
    """
    path = Path(path)
    suffix = _suffix(path)
    name = shown(path)
    if suffix == ".npy":
        with open_regular(path, MAX_FILE_BYTES, "array") as file:
            shape = _checked_npy_header(file, name).shape
        if len(shape) == 5 or (len(shape) == 4 and shape[0] == 1):
            shape = shape[1:]
        if not 1 <= len(shape) <= 4:
            raise FileFormatError(f"{name} holds an array of shape {shape}; an input is "
                                  f"(C, *spatial) with up to 3 spatial axes")
        return shape
    if suffix in IMAGE_SUFFIXES:
        with open_regular(path, MAX_FILE_BYTES, "pixels") as file, \
                _opened_image(file, name) as image:
            width, height = image.size
            if width * height <= MAX_PIXELS:
                return (_band_count(image), height, width)
            if not downscale:
                raise ImageTooLarge(name, (width, height))
            return tuple(_decoded(lambda: read_reduced(image, file, name, DOWNSCALED_PIXELS,
                                                       _image_bands), name).shape)
    signal = _read_csv(path) if suffix == ".csv" else _read_wav(path)
    return tuple(signal.shape)


def _suffix(path: Path) -> str:
    """The path's suffix, lower-cased; raises FileFormatError for one ConvScope does not read."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise FileFormatError(f"{shown(path)}: cannot read {suffix or 'files without a suffix'} "
                              f"as an input; use one of {', '.join(SUFFIXES)}")
    return suffix


def load_array(path: Path, input_spec: InputSpec) -> np.ndarray:
    """A .npy of shape (C, *spatial) or (N, C, *spatial) with real values, as float32."""
    name = shown(path)
    want = input_spec.sample_shape
    with open_regular(path, MAX_FILE_BYTES, "array") as file:
        header = _checked_npy_header(file, name)
        shape = header.shape
        if shape != want and (len(shape) != len(want) + 1 or shape[1:] != want):
            raise ConfigError(f"{name} holds an array of shape {shape}, but the stack "
                              f"expects ({', '.join(map(str, want))}) or (N, "
                              f"{', '.join(map(str, want))}); save the array in that shape or "
                              f"change the stack's input", field="input")
        array = read_npy_values(file, header, name)
    return array[np.newaxis] if shape == want else array


def _checked_npy_header(file: BinaryIO, name: str) -> NpyHeader:
    """The .npy header, refused unless it promises between 1 and MAX_SAMPLES real numbers."""
    header = read_npy_header(file, name)
    if header.dtype.kind not in REAL_KINDS:
        # Refused before reading: object arrays would need pickle, which runs code.
        raise FileFormatError(f"{name} holds {header.dtype} values; an input must hold real "
                              f"numbers (integers or floats)")
    if header.count == 0:
        raise FileFormatError(f"{name} holds an array of shape {header.shape}, which has no "
                              f"values")
    if header.count > MAX_SAMPLES:
        raise FileFormatError(f"{name} holds {header.count:,} values, more than the "
                              f"{MAX_SAMPLES:,} ConvScope reads as an input; save a smaller array")
    return header


def load_image(path: Path, input_spec: InputSpec, mode: str = "resize", downscale: bool = False
               ) -> np.ndarray:
    """An image as float32 (1, C, H, W) in [0, 1] for a 2D stack (see the module docstring)."""
    name = shown(path)
    if len(input_spec.spatial) != 2:
        raise ConfigError(f"{name} is an image, but the stack's input has "
                          f"{len(input_spec.spatial)} spatial axes; use a .npy array instead",
                          field="input")
    channels = input_spec.channels
    if channels not in IMAGE_CHANNELS:
        raise ConfigError(f"{name} is an image, which gives 1 (grey), 3 (RGB) or 4 (RGBA) "
                          f"channels, but the stack's input has {channels}; use a .npy array or "
                          f"change the input channels", field="input.channels")
    with open_regular(path, MAX_FILE_BYTES, "pixels") as file, \
            _opened_image(file, name) as image:
        width, height = image.size
        if width * height <= MAX_PIXELS:
            return _decoded(lambda: _fitted_image(image, channels, input_spec.spatial, mode),
                            name)[np.newaxis]
        if not downscale:
            raise ImageTooLarge(name, (width, height))
        bands = _decoded(lambda: read_reduced(image, file, name, DOWNSCALED_PIXELS,
                                              _image_bands), name)
    return _fit_image(_convert_channels(bands, channels), input_spec.spatial,
                      mode)[np.newaxis]


def _read_image(path: Path, downscale: bool = False) -> np.ndarray:
    """The image's (bands, H, W) in [0, 1], whole; an image of more than MAX_PIXELS raises
    ImageTooLarge from its header alone, or is reduced while decoding when downscale is true."""
    name = shown(path)
    with open_regular(path, MAX_FILE_BYTES, "pixels") as file, \
            _opened_image(file, name) as image:
        width, height = image.size
        if width * height <= MAX_PIXELS:
            return _decoded(lambda: _image_bands(image), name)
        if not downscale:
            raise ImageTooLarge(name, (width, height))
        return _decoded(lambda: read_reduced(image, file, name, DOWNSCALED_PIXELS, _image_bands),
                        name)


def _opened_image(file: BinaryIO, name: str) -> PilImage:
    """The image in the open file, its header read (no pixels decoded): PNG, JPEG or BMP by its
    contents, whatever its suffix; raises FileFormatError for anything else."""
    from PIL import Image, UnidentifiedImageError  # Pillow costs startup time: load on use
    # MAX_PIXELS is checked against the header right after opening. Pillow's own bomb check
    # would refuse first, before the size is known to offer a downscale.
    Image.MAX_IMAGE_PIXELS = None
    try:
        return Image.open(file, formats=IMAGE_FORMATS)
    except UnidentifiedImageError:
        raise FileFormatError(f"{name} is not an image ConvScope can read (PNG, JPEG or BMP)"
                              ) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, MemoryError):
        raise FileFormatError(f"{name} is a damaged image: its header cannot be read") from None


def _decoded(decode: Callable[[], np.ndarray], name: str) -> np.ndarray:
    """decode()'s result, with the errors of a damaged or truncated image as one line naming
    the file (Pillow's own words are not passed on: they may quote the file)."""
    try:
        return decode()
    except FileFormatError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error):
        raise FileFormatError(f"{name} is a damaged or truncated image: its pixels cannot be "
                              f"decoded") from None


def _target_mode(image: PilImage) -> str:
    """The Pillow mode whose bands an image is read as: 16-bit and float greys as they are;
    "L" (grey), "LA" (grey + alpha), "RGBA" (any colour image with alpha) or "RGB"."""
    mode = image.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        return mode
    if mode in ("1", "L"):
        return "L"
    if mode in ("LA", "La"):
        return "LA"
    if "A" in mode or "a" in mode or "transparency" in image.info:
        return "RGBA"
    return "RGB"


def _band_count(image: PilImage) -> int:
    return len(_target_mode(image)) if _target_mode(image) in ("L", "LA", "RGB", "RGBA") else 1


def _image_bands(image: PilImage) -> np.ndarray:
    """(bands, H, W) float32 in [0, 1]: 1 grey, 2 grey+alpha, 3 RGB or 4 RGBA bands."""
    return np.stack([np.asarray(plane, dtype=np.float32)
                     for plane in _planes(image, list(range(_band_count(image))))])


def _planes(image: PilImage, recipes: list[int | str]) -> Iterator[PilImage]:
    """Full-size float32 planes in [0, 1] as Pillow "F" images, one at a time: for each recipe,
    the band of that number (of those _image_bands gives) or, for "luma", the ITU-R 601-2 luma
    of the colour bands. Each plane is filled from strips of STRIP_PIXELS pixels, so the decoded
    image and one plane are all that is full-size (a Pillow plane is resized or cropped without
    a NumPy copy of it)."""
    from PIL import Image
    target = _target_mode(image)
    source = image if image.mode == target else image.convert(target)
    # 16-bit greys (I;16, or I in older Pillow) hold 0..65535; float images are kept as they are.
    scale = 65535.0 if target.startswith("I;16") or target == "I" else \
        1.0 if target == "F" else 255.0
    width, height = source.size
    rows = max(1, STRIP_PIXELS // max(width, 1))
    for recipe in recipes:
        plane = Image.new("F", (width, height))
        for top in range(0, height, rows):
            box = (0, top, width, min(height, top + rows))
            strip = np.asarray(source.crop(box), dtype=np.float32)
            if scale != 1.0:
                strip /= scale
            if strip.ndim == 3:
                strip = np.tensordot(LUMA, np.moveaxis(strip[..., :3], -1, 0), axes=1) \
                    if recipe == "luma" else np.ascontiguousarray(strip[..., recipe])
            plane.paste(Image.fromarray(strip, "F"), box)
        yield plane
        del plane  # not kept alive while the next plane is made


def _fitted_image(image: PilImage, channels: int, size: tuple[int, ...], mode: str) -> np.ndarray:
    """The decoded image as the stack's (channels, H, W), made one channel at a time: each
    full-size plane is fitted to `size` before the next is made. Bands map to channels as in
    _convert_channels."""
    count = _band_count(image)
    colour: list[int | str] = [0, 1, 2] if count >= 3 else [0]
    if channels == 1:
        recipes = ["luma"] if count >= 3 else [0]
    else:
        recipes = colour + ([count - 1] if channels == 4 and count in (2, 4) else [])
    fitted = []
    for plane in _planes(image, recipes):
        fitted.append(_fit_plane(plane, size, mode))
        del plane  # freed before the next plane is made
    if channels >= 3 and count < 3:  # grey to colour: the grey plane three times
        fitted[1:1] = [fitted[0], fitted[0]]
    if channels == 4 and len(fitted) == 3:  # no alpha in the file: opaque
        fitted.append(np.ones_like(fitted[0]))
    return np.stack(fitted)


def _fit_plane(plane: PilImage, size: tuple[int, ...], mode: str) -> np.ndarray:
    """A Pillow "F" plane (w, h) as float32 (H, W): stretched (resize), or scaled to cover and
    centre-cropped (crop). Only the part that is kept is resampled: a crop of a thin image
    scaled up to cover never makes the whole scaled-up image.

    Pillow's bilinear filter widens its support when shrinking (antialiasing) and never
    overshoots, so values stay in [0, 1]; mode "F" keeps full float precision.
    """
    from PIL.Image import Resampling
    height, width = size
    w, h = plane.size
    if mode == "resize":
        if (w, h) != (width, height):
            plane = plane.resize((width, height), Resampling.BILINEAR)
        return np.array(plane, dtype=np.float32)
    scale = max(height / h, width / w, 1.0)
    if scale == 1.0:
        top, left = (h - height) // 2, (w - width) // 2
        return np.array(plane.crop((left, top, left + width, top + height)), dtype=np.float32)
    # The image scaled to cover is (scaled_w, scaled_h); its centre (width, height) is the box
    # of the source below, resampled alone.
    scaled_h, scaled_w = max(height, round(h * scale)), max(width, round(w * scale))
    top, left = (scaled_h - height) // 2, (scaled_w - width) // 2
    box = (left * w / scaled_w, top * h / scaled_h, (left + width) * w / scaled_w,
           (top + height) * h / scaled_h)
    scaled = plane.resize((width, height), Resampling.BILINEAR, box=box)
    return np.array(scaled, dtype=np.float32)


def _convert_channels(bands: np.ndarray, channels: int) -> np.ndarray:
    """The image's bands as `channels` (1, 3 or 4) channels: grey <-> colour, alpha dropped or
    made opaque."""
    count = bands.shape[0]
    if count == channels:
        return bands
    colour = bands[:3] if count >= 3 else np.repeat(bands[:1], 3, axis=0)
    alpha = bands[-1:] if count in (2, 4) else np.ones_like(bands[:1])
    if channels == 1:
        return np.tensordot(LUMA, colour, axes=1)[np.newaxis] if count >= 3 else bands[:1]
    return colour if channels == 3 else np.concatenate([colour, alpha])


def _fit_image(bands: np.ndarray, size: tuple[int, ...], mode: str) -> np.ndarray:
    """(C, h, w) -> (C, H, W), band by band as _fit_plane fits them."""
    from PIL import Image
    return np.stack([_fit_plane(Image.fromarray(band, "F"), size, mode) for band in bands])


def _read_csv(path: Path) -> np.ndarray:
    """(C, L): one column per channel, one row per step; a single row is one channel. The text
    is read whole (at most MAX_CSV_BYTES) and parsed from memory."""
    name = shown(path)
    with open_regular(path, MAX_CSV_BYTES, "numbers") as file:
        try:
            text = file.read(file_size(file))  # read(n) would set n bytes aside first
        except OSError as err:
            raise FileFormatError(f"cannot read {name}: {err.strerror or 'a read failed'}"
                                  ) from None
    try:
        with warnings.catch_warnings():
            # A file of blank lines warns before returning nothing: it is refused below instead.
            warnings.simplefilter("ignore", UserWarning)
            values = np.loadtxt(io.BytesIO(text), delimiter=",", dtype=np.float32, ndmin=2,
                                encoding="utf-8")
    except UnicodeDecodeError:
        raise FileFormatError(f"{name} is not a text table: it holds bytes that are not UTF-8 "
                              f"text") from None
    except ValueError as err:
        # numpy's message quotes the cell it could not read: only where it is, is passed on.
        where = re.search(r"at row (\d+)(?:, column (\d+))?", str(err))
        place = "" if where is None else f" (row {int(where.group(1)) + 1}" + (
            f", column {where.group(2)})" if where.group(2) else ")")
        raise FileFormatError(f"{name} is not a table of numbers{place}; save one number per "
                              f"cell, columns separated by commas, the same count on every row"
                              ) from None
    if values.size == 0:
        raise FileFormatError(f"{name} holds no numbers")
    return values if values.shape[0] == 1 else np.ascontiguousarray(values.T)


def _read_wav(path: Path) -> np.ndarray:
    """(C, L) PCM samples scaled to [-1, 1]: 8-bit unsigned, 16/24/32-bit signed; converted
    WAV_CHUNK_BYTES at a time into the result."""
    name = shown(path)
    with open_regular(path, MAX_FILE_BYTES, "samples") as file:
        try:
            with wave.open(file, "rb") as audio:
                channels, width = audio.getnchannels(), audio.getsampwidth()
                if width not in (1, 2, 3, 4):
                    raise FileFormatError(f"{name} has {8 * width}-bit samples; ConvScope reads "
                                          f"8, 16, 24 and 32-bit PCM")
                # The header may promise more than the file holds: allocate what it can hold.
                frames = min(audio.getnframes(), file_size(file) // (channels * width))
                if frames == 0:
                    raise FileFormatError(f"{name} holds no samples; give a recording of at "
                                          f"least one sample")
                if frames * channels > MAX_SAMPLES:
                    raise FileFormatError(f"{name} holds {frames * channels:,} samples, more "
                                          f"than the {MAX_SAMPLES:,} ConvScope reads; shorten it "
                                          f"first")
                signal = np.empty((channels, frames), np.float32)
                done = 0
                step = max(1, WAV_CHUNK_BYTES // (channels * width))
                while done < frames:
                    raw = audio.readframes(min(step, frames - done))
                    count = len(raw) // (channels * width)
                    if count == 0:
                        break
                    samples = _pcm_to_float(raw[:count * channels * width], width)
                    signal[:, done:done + count] = samples.reshape(count, channels).T
                    done += count
        except FileFormatError:
            raise
        except (wave.Error, EOFError, OSError, struct.error, ValueError, OverflowError,
                RuntimeError):
            # What the wave module raises for a damaged header (a RuntimeError for a chunk that
            # claims more than the file holds); its words may quote the header, so not passed on.
            raise FileFormatError(f"{name} is not a readable PCM .wav file (8, 16, 24 or 32-bit "
                                  f"integer samples)") from None
    if done == 0:
        raise FileFormatError(f"{name} holds no samples; give a recording of at least one "
                              f"sample")
    return signal[:, :done]


def _pcm_to_float(raw: bytes, width: int) -> np.ndarray:
    """Little-endian PCM samples of `width` bytes as float32 in [-1, 1]."""
    if width == 3:
        # Little-endian 24-bit: the three bytes at the top of an int32 keep the sign.
        padded = np.zeros((len(raw) // 3, 4), np.uint8)
        padded[:, 1:] = np.frombuffer(raw, np.uint8).reshape(-1, 3)
        samples = padded.view("<i4")[:, 0].astype(np.float32)
        samples /= 2.0 ** 31
        return samples
    samples = np.frombuffer(raw, np.uint8 if width == 1 else f"<i{width}").astype(np.float32)
    if width == 1:  # unsigned, centred on 128
        samples -= 128.0
        samples /= 128.0
    else:
        samples /= float(2 ** (8 * width - 1))
    return samples


def _fit_signal(signal: np.ndarray, input_spec: InputSpec, mode: str, name: str) -> np.ndarray:
    """(c, l) -> (1, C, L): channels matched, then resized by linear interpolation, or
    centre-cropped (zero-padded at both ends when shorter). The signal is the reader's own and
    is overwritten (channels are averaged into its first); memory beyond it: arrays of the
    output's length."""
    if len(input_spec.spatial) != 1:
        raise ConfigError(f"{name} is a 1D signal, but the stack's input has "
                          f"{len(input_spec.spatial)} spatial axes; use a .npy array or an image",
                          field="input")
    channels, (length,) = input_spec.channels, input_spec.spatial
    if signal.shape[0] != channels:
        if channels != 1:
            raise ConfigError(f"{name} has {signal.shape[0]} channels, but the stack's input has "
                              f"{channels}; change the input channels to match", field="input")
        # The mean of the channels, summed into the first in place: no copy of a long signal.
        total = signal[0]
        for row in signal[1:]:
            total += row
        total /= signal.shape[0]
        signal = signal[:1]
    have = signal.shape[1]
    if mode == "resize" and have != length:
        # np.interp over np.arange(have) would make a float64 copy of every position; the
        # neighbours of each output position are gathered instead, by the same formula.
        positions = np.linspace(0.0, have - 1.0, length)
        left = np.minimum(positions.astype(np.int64), have - 1)
        right = np.minimum(left + 1, have - 1)
        fraction = positions - left
        low = signal[:, left].astype(np.float64)
        signal = low + fraction * (signal[:, right] - low)
    elif have > length:
        start = (have - length) // 2
        signal = signal[:, start:start + length]
    elif have < length:
        before = (length - have) // 2
        signal = np.pad(signal, ((0, 0), (before, length - have - before)))
    return np.ascontiguousarray(signal, dtype=np.float32)[np.newaxis]
