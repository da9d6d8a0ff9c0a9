"""The built-in sample input that fits a stack: an image, a signal or a volume by spatial rank
(a flat input of C values gets the signal resampled to C values; a small grey image input gets a
handwritten digit).

Samples live in resources/samples/ (see resources/README.md). Whatever the stack's input size and
channel count, `load_sample` returns float32 (1, C, *spatial) that fits it exactly, so the live
view always has something to show; a file the person opens goes through `load_user_input`, which
refuses what does not fit instead of bending it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.input_files import load_input
from models.stack import InputSpec

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"
SAMPLE_BY_RANK = {0: "signal.npy", 1: "signal.npy", 2: "photo.jpg", 3: "volume.npy"}
DIGIT = "digit.png"
DIGIT_MAX_SIZE = 64  # a grey input up to this size is digit-sized (LeNet-5's 32x32, MNIST's 28)


FIT_WORDS = {"resize": "resized", "crop": "cropped"}


def sample_path(input_spec: InputSpec) -> Path:
    """The sample file for the input's number of spatial axes (0 to 3); a small one-channel 2D
    input gets the handwritten digit, as such stacks are usually digit classifiers."""
    spatial = input_spec.spatial
    if len(spatial) == 2 and input_spec.channels == 1 and max(spatial) <= DIGIT_MAX_SIZE:
        return SAMPLES / DIGIT
    return SAMPLES / SAMPLE_BY_RANK[len(spatial)]


def load_sample(input_spec: InputSpec, mode: str = "resize") -> np.ndarray:
    """The sample for input_spec as float32 (1, C, *spatial), fitted and channel-converted.

    mode ("resize" or "crop") is how an image sample meets the input's size, as in load_input;
    array samples are always resampled.

    Raises FileFormatError when the sample file is missing or unreadable.
    """
    path = sample_path(input_spec)
    if path.suffix in (".png", ".jpg"):
        # Images convert to 1, 3 or 4 channels; other counts get the grey image repeated.
        channels = input_spec.channels if input_spec.channels in (1, 3, 4) else 1
        image = load_input(path, InputSpec(channels, input_spec.spatial), mode=mode)
        return fit_array(image[0], input_spec)
    array = np.load(path, allow_pickle=False)
    if not input_spec.spatial:
        # A flat vector: the signal's first channel stretched to one value per input channel.
        values = _resample_axis(array[:1], 1, input_spec.channels)[0]
        return np.ascontiguousarray(values, dtype=np.float32)[np.newaxis]
    return fit_array(array, input_spec)


def sample_files() -> list[Path]:
    """Every built-in sample, for a menu that opens any of them as the input."""
    return sorted(p for p in SAMPLES.iterdir() if p.suffix in (".png", ".jpg", ".npy"))


def load_user_input(path: str | Path, input_spec: InputSpec, mode: str = "resize",
                    downscale: bool = False) -> np.ndarray:
    """A file the person chose, through engine.input_files.load_input: images and signals
    resized or centre-cropped by mode, arrays taken as they are; downscale reads an image too
    large to decode whole reduced (the person is asked first).

    Raises ConfigError or FileFormatError saying why the file cannot feed this stack
    (engine.input_files.ImageTooLarge for such an image when downscale is false).
    """
    return load_input(path, input_spec, mode=mode, downscale=downscale)


def input_caption(path: Path, sample: bool, mode: str) -> str:
    """The input's name for the view: "pattern.png (sample), cropped", "x.npy"; the fit is named
    only for files it applies to (arrays must already fit, so they are never resized or cut)."""
    name = f"{path.name} (sample)" if sample else path.name
    return name if path.suffix.lower() == ".npy" else f"{name}, {FIT_WORDS[mode]}"


def fit_array(array: np.ndarray, input_spec: InputSpec) -> np.ndarray:
    """(c, *size) -> float32 (1, C, *spatial): channels averaged then repeated, each spatial
    axis resampled linearly. The rank of `size` must equal the input's spatial rank."""
    if array.shape[0] != input_spec.channels:
        grey = array.mean(axis=0, keepdims=True)
        array = np.repeat(grey, input_spec.channels, axis=0)
    for axis, length in enumerate(input_spec.spatial, start=1):
        array = _resample_axis(array, axis, length)
    return np.ascontiguousarray(array, dtype=np.float32)[np.newaxis]


def _resample_axis(array: np.ndarray, axis: int, length: int) -> np.ndarray:
    have = array.shape[axis]
    if have == length:
        return array
    positions = np.linspace(0.0, have - 1.0, length)
    low = np.floor(positions).astype(int)
    high = np.minimum(low + 1, have - 1)
    shape = [1] * array.ndim
    shape[axis] = length
    frac = (positions - low).reshape(shape)
    return np.take(array, low, axis=axis) * (1 - frac) + np.take(array, high, axis=axis) * frac
