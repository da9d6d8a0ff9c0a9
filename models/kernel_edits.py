"""Edits of one convolution weight tensor: hand-made kernel presets and weights loaded from .npy.

Pure NumPy. Every function returns a new float32 array and raises ConfigError (never changes
anything) when the edit cannot apply, so a caller can show the message and keep the old weights.
"""
from __future__ import annotations

import math
import os

import numpy as np

from models.errors import ConfigError, FileFormatError
from models.file_guard import open_regular, read_npy_header, read_npy_values, shown
from models.kernel_presets import apply_to_filter, gabor_bank, preset_kernel

MAX_HEADER_BYTES = 1 << 16  # numpy reads headers of at most 10,000 bytes
FLOAT32_MAX = float(np.finfo(np.float32).max)
GABOR_BANK = "gabor bank"
"""The preset name that gives filter i a Gabor kernel at angle i * pi / filters."""


def with_preset(weight: np.ndarray, name: str, filter_index: int | None,
                transposed: bool = False) -> np.ndarray:
    """A copy of a 2D conv weight with the preset `name` in one filter (or all, when None).

    weight: (C_out, C_in/g, kH, kW), or (C_in, C_out/g, kH, kW) when `transposed` (a
    ConvTranspose), in which case "filter" still means an output channel. The gabor bank gives
    filter i the angle i * pi / filters; one filter alone gets its own angle from that bank.
    Raises ConfigError for non-2D weights, non-square or unmatched sizes, and unknown names.
    """
    if np.ndim(weight) != 4:
        raise ConfigError("kernel presets are 2D; use them on a 2D convolution",
                          field="kernel_size")
    w = np.swapaxes(weight, 0, 1) if transposed else np.asarray(weight)
    filters, size = w.shape[0], w.shape[2]
    if w.shape[2] != w.shape[3]:
        raise ConfigError(f"kernel presets are square but the layer's kernel is "
                          f"{w.shape[2]}x{w.shape[3]}", field="kernel_size")
    if filter_index is not None and not 0 <= filter_index < filters:
        raise ConfigError(f"filter {filter_index} does not exist; the layer has {filters}")
    bank = gabor_bank(size, filters) if name == GABOR_BANK else None
    kernel = preset_kernel(name, size) if bank is None else None
    out = np.asarray(w, np.float32)
    for f in range(filters) if filter_index is None else (filter_index,):
        out = apply_to_filter(out, f, bank[f] if bank is not None else kernel)
    return np.ascontiguousarray(np.swapaxes(out, 0, 1) if transposed else out)


def load_weight(path: str | os.PathLike[str], expected_shape: tuple[int, ...]) -> np.ndarray:
    """A float32 weight read from a .npy file (no pickles) that has exactly `expected_shape`.

    Raises ConfigError naming the file and the expected shape, before reading its data, when it
    is not a regular file (a pipe or a device is never opened for long: see models.file_guard),
    is larger than such an array can be, or its header promises anything but floats of that
    shape; and after reading, when a value is NaN, infinite or beyond float32's range (such a
    weight could not be saved in a project and opened again).
    """
    name = shown(path)
    expected = "×".join(map(str, expected_shape))
    # The largest file such an array can be: its values at 16 bytes (long double) plus a header.
    max_bytes = MAX_HEADER_BYTES + 16 * math.prod(expected_shape)
    with open_regular(path, max_bytes, "weights") as file:
        try:
            header = read_npy_header(file, name)
        except FileFormatError as err:
            raise FileFormatError(f"{err}; expected a .npy file holding {expected} floats"
                                  ) from None
        if header.dtype.kind != "f":
            raise ConfigError(f"{name} holds {header.dtype} values; the weight needs floats of "
                              f"shape {expected}")
        if header.shape != tuple(expected_shape):
            raise ConfigError(f"{name} has shape {'×'.join(map(str, header.shape)) or 'scalar'}; "
                              f"this weight needs shape {expected}")
        array = read_npy_values(file, header, name)
    if not _all_finite(array):
        raise ConfigError(f"{name} holds NaN or infinite values, or values beyond float32's "
                          f"range (±{FLOAT32_MAX:.1e}); the weight needs finite floats of shape "
                          f"{expected}")
    return array


def _all_finite(array: np.ndarray) -> bool:
    """Whether every value is finite, checked in slices so no full-size mask is made."""
    flat = array.reshape(-1)
    step = 1 << 20
    return all(np.isfinite(flat[i:i + step]).all() for i in range(0, flat.size, step))
