"""Edits of one convolution weight tensor: hand-made kernel presets and weights loaded from .npy.

Pure NumPy. Every function returns a new float32 array and raises ConfigError (never changes
anything) when the edit cannot apply, so a caller can show the message and keep the old weights.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from models.errors import ConfigError
from models.kernel_presets import apply_to_filter, gabor_bank, preset_kernel

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


def load_weight(path: str | Path, expected_shape: tuple[int, ...]) -> np.ndarray:
    """A float32 weight read from a .npy file (no pickles) that has exactly `expected_shape`.

    Raises ConfigError naming the file and the expected shape when the file cannot be read, is
    not a floating-point array of that shape, or holds NaN or infinite values.
    """
    name = Path(path).name
    expected = "×".join(map(str, expected_shape))
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise ConfigError(f"cannot read {name} as a NumPy array ({err}); expected a .npy file "
                          f"holding {expected} floats") from None
    if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.floating):
        kind = getattr(array, "dtype", type(array).__name__)
        raise ConfigError(f"{name} holds {kind} values; the weight needs floats of shape "
                          f"{expected}")
    if array.shape != tuple(expected_shape):
        raise ConfigError(f"{name} has shape {'×'.join(map(str, array.shape)) or 'scalar'}; "
                          f"this weight needs shape {expected}")
    if not np.isfinite(array).all():
        raise ConfigError(f"{name} holds NaN or infinite values; the weight needs finite "
                          f"floats of shape {expected}")
    return np.ascontiguousarray(array, dtype=np.float32)
