"""Hand-made kernels for image work: identity, blurs, sharpen, edge detectors and Gabor filters.

Each preset is a 2D float32 array; applying one to a filter copies it to every input channel of
that filter (scaled by 1 / channels, so a preset keeps its meaning on an RGB input).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from models.errors import ConfigError


def _identity(size: int) -> np.ndarray:
    k = np.zeros((size, size), np.float32)
    k[size // 2, size // 2] = 1
    return k


def _box(size: int) -> np.ndarray:
    return np.full((size, size), 1.0 / (size * size), np.float32)


def _gaussian(size: int, sigma: float | None = None) -> np.ndarray:
    sigma = sigma or max(size / 6.0, 0.5)
    r = np.arange(size) - (size - 1) / 2
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma ** 2))
    return (g / g.sum()).astype(np.float32)


def _sharpen(size: int) -> np.ndarray:
    return (2 * _identity(size) - _box(size)).astype(np.float32)


def _fixed(values: list[list[float]]) -> Callable[[int], np.ndarray]:
    def make(size: int) -> np.ndarray:
        if size != 3:
            raise ConfigError("this kernel is defined for 3x3; set the kernel size to 3",
                              field="kernel_size")
        return np.array(values, np.float32)
    return make


def gabor(size: int, theta: float, wavelength: float | None = None, sigma: float | None = None,
          gamma: float = 0.5, phase: float = 0.0) -> np.ndarray:
    """A zero-mean Gabor kernel: a cosine grating at angle theta (radians) under a Gaussian."""
    # A period of 2 pixels would sample the cosine only at its zeros on even grids.
    wavelength = wavelength or max(size / 2.0, 2.5)
    sigma = sigma or 0.56 * wavelength
    r = np.arange(size) - (size - 1) / 2
    y, x = np.meshgrid(r, r, indexing="ij")
    xr = x * math.cos(theta) + y * math.sin(theta)
    yr = -x * math.sin(theta) + y * math.cos(theta)
    g = np.exp(-(xr ** 2 + (gamma * yr) ** 2) / (2 * sigma ** 2)) * np.cos(2 * math.pi * xr / wavelength + phase)
    g -= g.mean()
    norm = np.abs(g).sum()
    if norm < 1e-6:  # the grating vanishes on a tiny grid (1x1, 2x2, some angles at 3x3)
        raise ConfigError(f"a Gabor kernel at {math.degrees(theta):.0f} degrees has no pattern on a "
                          f"{size}x{size} grid; use a larger kernel or another preset",
                          field="kernel_size")
    return (g / norm).astype(np.float32)


PRESETS = {
    "identity": _identity,
    "box blur": _box,
    "gaussian blur": _gaussian,
    "sharpen": _sharpen,
    "sobel x": _fixed([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]),
    "sobel y": _fixed([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]),
    "prewitt x": _fixed([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]]),
    "prewitt y": _fixed([[-1, -1, -1], [0, 0, 0], [1, 1, 1]]),
    "laplacian": _fixed([[0, 1, 0], [1, -4, 1], [0, 1, 0]]),
}
GABOR_ANGLES = 8


def preset_kernel(name: str, size: int) -> np.ndarray:
    """The named preset as a (size, size) kernel. Raises ConfigError for unknown names or sizes."""
    if name not in PRESETS:
        raise ConfigError(f"unknown kernel preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name](size)


def gabor_bank(size: int, count: int = GABOR_ANGLES) -> np.ndarray:
    """(count, size, size) Gabor kernels at evenly spaced angles in [0, pi)."""
    return np.stack([gabor(size, math.pi * i / count) for i in range(count)])


def apply_to_filter(weight: np.ndarray, filter_index: int, kernel: np.ndarray) -> np.ndarray:
    """A copy of a 2D conv weight (C_out, C_in, kH, kW) with one filter set to the kernel.

    The kernel goes to every input channel of the filter, divided by the channel count, so
    e.g. Sobel x on an RGB input detects edges of the grey image.
    """
    if weight.ndim != 4:
        raise ConfigError("kernel presets are 2D; use them on a Conv2D layer", field="kernel_size")
    if weight.shape[2:] != kernel.shape:
        raise ConfigError(f"the preset is {kernel.shape[0]}x{kernel.shape[1]} but the layer's "
                          f"kernel is {weight.shape[2]}x{weight.shape[3]}", field="kernel_size")
    if not 0 <= filter_index < weight.shape[0]:
        raise ConfigError(f"filter {filter_index} does not exist; the layer has {weight.shape[0]}")
    out = np.array(weight, dtype=np.float32, copy=True)
    out[filter_index] = kernel[None] / weight.shape[1]
    return out
