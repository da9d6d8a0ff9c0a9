"""Reading an input for a stack from a file: a NumPy array, an image, or a 1D signal.

Every loader returns float32 (N, C, *spatial) that fits the stack's input spec (N = 1 except for
a batched .npy), or raises ConfigError/FileFormatError with the file's name and what to change.
- .npy: the array as it is (values untouched, integers and floats of any width converted to
  float32), with a batch axis added to a single sample. Its header is checked before any data is
  read: pickled (object), complex, bool, text and structured arrays, truncated files and arrays
  of more than MAX_SAMPLES values are refused. NaN and infinite values are kept (a run reports
  them; float64 values beyond float32's range become infinite).
- .png/.jpg/.jpeg/.bmp: values scaled to [0, 1] (16-bit images by 65535), converted to the
  stack's channels (1 = grey, 3 = RGB, 4 = RGBA), resized or centre-cropped to its size. An
  image of more than MAX_PIXELS is refused (ImageTooLarge) before decoding, unless `downscale`
  asks for it reduced while decoding (engine.image_downscale) to at most DOWNSCALED_PIXELS.
- .csv: one column per channel, one row per step (a single row is one channel).
- .wav: samples scaled to [-1, 1], one channel per audio channel.
A signal whose channels differ from the stack's is averaged to one channel when the stack has one.
"""
from __future__ import annotations

import math
import os
import warnings
import wave
from pathlib import Path
from tokenize import TokenError

import numpy as np

from engine.image_downscale import read_reduced
from models.errors import ConfigError, FileFormatError
from models.stack import InputSpec

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
SIGNAL_SUFFIXES = (".csv", ".wav")
SUFFIXES = (".npy", *IMAGE_SUFFIXES, *SIGNAL_SUFFIXES)
FIT_MODES = ("resize", "crop")
# Refuse what would take gigabytes once decoded, before decoding it (a "decompression bomb").
MAX_PIXELS = 100_000_000
MAX_SAMPLES = 100_000_000
DOWNSCALED_PIXELS = 4_000_000  # a downscaled image: plenty for any stack's input
# numpy's kinds of real numbers: signed and unsigned integers, floats.
REAL_KINDS = "iuf"
# ITU-R 601-2 luma, the weights Pillow's "L" conversion uses.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


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
    suffix = path.suffix.lower()
    if path.is_dir():
        raise FileFormatError(f"{path.name} is a folder, not an input file")
    if suffix not in SUFFIXES:
        raise FileFormatError(f"{path.name}: cannot read {suffix or 'files without a suffix'} "
                              f"as an input; use one of {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise FileFormatError(f"{path.name}: no such file")
    if suffix == ".npy":
        return load_array(path, input_spec)
    if suffix in IMAGE_SUFFIXES:
        return load_image(path, input_spec, mode, downscale)
    signal = _read_csv(path) if suffix == ".csv" else _read_wav(path)
    return _fit_signal(signal, input_spec, mode, path.name)


def native_shape(path: str | os.PathLike[str], downscale: bool = False) -> tuple[int, ...]:
    """(C, *spatial) of the input as the file stores it, for an input spec that takes it as is.

    A .npy of 5 axes, or of 4 whose first is 1, is read as (N, C, *spatial); images give their
    bands (grey 1, RGB 3, RGBA 4) and (H, W), downscaled as load_input would; signals their
    channels and length. Raises FileFormatError like load_input.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES or not path.is_file():
        raise FileFormatError(f"{path.name}: not an input file ConvScope reads")
    if suffix == ".npy":
        shape = _npy_header(path)[0]
        if len(shape) == 5 or (len(shape) == 4 and shape[0] == 1):
            shape = shape[1:]
        if not 1 <= len(shape) <= 4 or 0 in shape:
            raise FileFormatError(f"{path.name} holds an array of shape {shape}; an input is "
                                  f"(C, *spatial) with up to 3 spatial axes")
        return tuple(int(d) for d in shape)
    if suffix in IMAGE_SUFFIXES:
        return tuple(_read_image(path, downscale).shape)
    signal = _read_csv(path) if suffix == ".csv" else _read_wav(path)
    return tuple(signal.shape)


def load_array(path: Path, input_spec: InputSpec) -> np.ndarray:
    """A .npy of shape (C, *spatial) or (N, C, *spatial) with real values, as float32."""
    _npy_header(path)  # refuses what np.load must not be given, before reading any data
    try:
        # allow_pickle=False: an object array would unpickle, which runs code from the file.
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise FileFormatError(f"{path.name} is not a readable .npy array ({err})") from None
    want = input_spec.sample_shape
    if array.shape == want:
        array = array[np.newaxis]
    if array.ndim != len(want) + 1 or array.shape[1:] != want:
        raise ConfigError(f"{path.name} holds an array of shape {array.shape}, but the stack "
                          f"expects ({', '.join(map(str, want))}) or (N, "
                          f"{', '.join(map(str, want))}); save the array in that shape or change "
                          f"the stack's input", field="input")
    with np.errstate(over="ignore"):  # float64 beyond float32's range: infinite, reported later
        return np.ascontiguousarray(array, dtype=np.float32)


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from a .npy file's header, read without touching its data; raises
    FileFormatError when the file is not a .npy array of real numbers that is whole and of at
    most MAX_SAMPLES values."""
    name = path.name
    try:
        with open(path, "rb") as file:
            version = np.lib.format.read_magic(file)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(file)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(file)
            else:
                raise FileFormatError(f"{name} is a .npy file of format version "
                                      f"{'.'.join(map(str, version))}, which holds text or "
                                      f"structured data; save a plain array of numbers")
            data_start = file.tell()
    except OSError as err:
        raise FileFormatError(f"cannot read {name}: {err.strerror or err}") from None
    except (ValueError, SyntaxError, TokenError, EOFError) as err:
        raise FileFormatError(f"{name} is not a .npy array, or its header is damaged ({err})"
                              ) from None
    if dtype.kind not in REAL_KINDS:
        # Refused before reading: object arrays would need pickle, which runs code.
        raise FileFormatError(f"{name} holds {dtype} values; an input must hold real numbers "
                              f"(integers or floats)")
    if any(d < 0 for d in shape):
        raise FileFormatError(f"{name} has a damaged header (shape {shape})")
    count = math.prod(shape)
    if count == 0:
        raise FileFormatError(f"{name} holds an array of shape {shape}, which has no values")
    if count > MAX_SAMPLES:
        raise FileFormatError(f"{name} holds {count:,} values, more than the {MAX_SAMPLES:,} "
                              f"ConvScope reads as an input; save a smaller array")
    have = path.stat().st_size - data_start
    if have < count * dtype.itemsize:
        raise FileFormatError(f"{name} is truncated: its header promises {count:,} {dtype} "
                              f"values ({count * dtype.itemsize:,} bytes) but it holds {have:,} "
                              f"bytes of data")
    return tuple(int(d) for d in shape), dtype


def load_image(path: Path, input_spec: InputSpec, mode: str = "resize", downscale: bool = False
               ) -> np.ndarray:
    """An image as float32 (1, C, H, W) in [0, 1] for a 2D stack (see the module docstring)."""
    if len(input_spec.spatial) != 2:
        raise ConfigError(f"{path.name} is an image, but the stack's input has "
                          f"{len(input_spec.spatial)} spatial axes; use a .npy array instead",
                          field="input")
    channels = _convert_channels(_read_image(path, downscale), input_spec.channels, path.name)
    return _fit_image(channels, input_spec.spatial, mode)[np.newaxis]


def _read_image(path: Path, downscale: bool = False) -> np.ndarray:
    """The image's (bands, H, W) in [0, 1]; an image of more than MAX_PIXELS raises
    ImageTooLarge from its header alone, or is reduced while decoding when downscale is true."""
    from PIL import Image, UnidentifiedImageError  # Pillow costs startup time: load on use
    # Image.open only reads the header; MAX_PIXELS is checked against it before any decoding.
    # Pillow's own bomb check would refuse first, before the size is known to offer a downscale.
    Image.MAX_IMAGE_PIXELS = None
    if path.stat().st_size == 0:
        raise FileFormatError(f"{path.name} is empty; it is not an image")
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height <= MAX_PIXELS:
                return _image_bands(image)
        if not downscale:
            raise ImageTooLarge(path.name, (width, height))
        return read_reduced(path, DOWNSCALED_PIXELS, _image_bands)
    except FileFormatError:
        raise
    except UnidentifiedImageError:
        raise FileFormatError(f"{path.name} is not an image ConvScope can read (PNG, JPEG or BMP)"
                              ) from None
    except (OSError, SyntaxError, ValueError) as err:
        raise FileFormatError(f"{path.name} is not a readable image ({err})") from None


def _image_bands(image: object) -> np.ndarray:
    """(bands, H, W) float32 in [0, 1]: 1 grey, 2 grey+alpha, 3 RGB or 4 RGBA bands."""
    mode = image.mode  # type: ignore[attr-defined]
    if mode.startswith("I;16") or mode == "I":
        # 16-bit greyscale PNGs open as I;16 (or I in older Pillow), values 0..65535.
        return (np.asarray(image, dtype=np.float32) / 65535.0)[np.newaxis]
    if mode == "F":
        return np.asarray(image, dtype=np.float32)[np.newaxis]
    if mode in ("1", "L"):
        target = "L"
    elif mode in ("LA", "La"):
        target = "LA"
    elif "A" in mode or "a" in mode or "transparency" in image.info:  # type: ignore[attr-defined]
        target = "RGBA"
    else:
        target = "RGB"
    array = np.asarray(image.convert(target), dtype=np.float32) / 255.0  # type: ignore
    return array[np.newaxis] if array.ndim == 2 else np.moveaxis(array, -1, 0)


def _convert_channels(bands: np.ndarray, channels: int, name: str) -> np.ndarray:
    """The image's bands as `channels` channels: grey <-> colour, alpha dropped or made opaque."""
    count = bands.shape[0]
    if count == channels:
        return bands
    colour = bands[:3] if count >= 3 else np.repeat(bands[:1], 3, axis=0)
    alpha = bands[-1:] if count in (2, 4) else np.ones_like(bands[:1])
    if channels == 1:
        return np.tensordot(LUMA, colour, axes=1)[np.newaxis] if count >= 3 else bands[:1]
    if channels == 3:
        return colour
    if channels == 4:
        return np.concatenate([colour, alpha])
    raise ConfigError(f"{name} is an image, which gives 1 (grey), 3 (RGB) or 4 (RGBA) channels, "
                      f"but the stack's input has {channels}; use a .npy array or change the "
                      f"input channels", field="input.channels")


def _fit_image(bands: np.ndarray, size: tuple[int, ...], mode: str) -> np.ndarray:
    """(C, h, w) -> (C, H, W), stretched (resize) or scaled to cover and centre-cropped (crop)."""
    height, width = size
    h, w = bands.shape[1:]
    if mode == "resize":
        return _resample(bands, height, width)
    scale = max(height / h, width / w, 1.0)
    if scale > 1.0:
        bands = _resample(bands, max(height, round(h * scale)), max(width, round(w * scale)))
        h, w = bands.shape[1:]
    top, left = (h - height) // 2, (w - width) // 2
    return np.ascontiguousarray(bands[:, top:top + height, left:left + width])


def _resample(bands: np.ndarray, height: int, width: int) -> np.ndarray:
    if bands.shape[1:] == (height, width):
        return bands
    from PIL import Image
    # Pillow's bilinear filter widens its support when shrinking (antialiasing) and never
    # overshoots, so values stay in [0, 1]; mode "F" keeps full float precision.
    return np.stack([np.asarray(Image.fromarray(band, "F").resize((width, height),
                                                                   Image.Resampling.BILINEAR))
                     for band in bands]).astype(np.float32, copy=False)


def _read_csv(path: Path) -> np.ndarray:
    """(C, L): one column per channel, one row per step; a single row is one channel."""
    try:
        with warnings.catch_warnings():
            # An empty file warns before returning nothing: it is refused just below instead.
            warnings.simplefilter("ignore", UserWarning)
            values = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)
    except ValueError as err:
        raise FileFormatError(f"{path.name} is not a table of numbers ({err})") from None
    if values.size == 0:
        raise FileFormatError(f"{path.name} holds no numbers")
    return values if values.shape[0] == 1 else np.ascontiguousarray(values.T)


def _read_wav(path: Path) -> np.ndarray:
    """(C, L) PCM samples scaled to [-1, 1]: 8-bit unsigned, 16/24/32-bit signed."""
    try:
        with wave.open(str(path), "rb") as audio:
            channels, width, frames = audio.getnchannels(), audio.getsampwidth(), audio.getnframes()
            if frames * channels > MAX_SAMPLES:
                raise FileFormatError(f"{path.name} holds {frames * channels} samples, more than "
                                      f"the {MAX_SAMPLES} ConvScope reads; shorten it first")
            raw = audio.readframes(frames)
    except FileFormatError:
        raise
    except (wave.Error, EOFError, OSError) as err:
        raise FileFormatError(f"{path.name} is not a readable PCM .wav file ({err})") from None
    if width == 1:
        samples = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 3:
        bytes3 = np.frombuffer(raw, np.uint8).reshape(-1, 3)
        # Little-endian 24-bit: put the three bytes at the top of an int32 to keep the sign.
        samples = (bytes3[:, 0].astype(np.int32) << 8 | bytes3[:, 1].astype(np.int32) << 16
                   | bytes3[:, 2].astype(np.int32) << 24).astype(np.float32) / 2.0 ** 31
    elif width in (2, 4):
        dtype = np.dtype(f"<i{width}")
        samples = np.frombuffer(raw, dtype).astype(np.float32) / float(2 ** (8 * width - 1))
    else:
        raise FileFormatError(f"{path.name} has {8 * width}-bit samples; ConvScope reads 8, 16, "
                              f"24 and 32-bit PCM")
    frames_read = samples.size // channels
    return np.ascontiguousarray(samples[:frames_read * channels].reshape(frames_read, channels).T)


def _fit_signal(signal: np.ndarray, input_spec: InputSpec, mode: str, name: str) -> np.ndarray:
    """(c, l) -> (1, C, L): channels matched, then resized by linear interpolation, or
    centre-cropped (zero-padded at both ends when shorter)."""
    if len(input_spec.spatial) != 1:
        raise ConfigError(f"{name} is a 1D signal, but the stack's input has "
                          f"{len(input_spec.spatial)} spatial axes; use a .npy array or an image",
                          field="input")
    channels, (length,) = input_spec.channels, input_spec.spatial
    if signal.shape[0] != channels:
        if channels != 1:
            raise ConfigError(f"{name} has {signal.shape[0]} channels, but the stack's input has "
                              f"{channels}; change the input channels to match", field="input")
        signal = signal.mean(axis=0, keepdims=True)
    have = signal.shape[1]
    if mode == "resize" and have != length:
        positions = np.linspace(0.0, have - 1.0, length)
        signal = np.stack([np.interp(positions, np.arange(have), row) for row in signal])
    elif have > length:
        start = (have - length) // 2
        signal = signal[:, start:start + length]
    elif have < length:
        before = (length - have) // 2
        signal = np.pad(signal, ((0, 0), (before, length - have - before)))
    return np.ascontiguousarray(signal, dtype=np.float32)[np.newaxis]
