"""Cross-correlation against true convolution on small 2D examples, for the explain texts.

What every framework calls convolution is cross-correlation: out[i, j] = sum x[i + a, j + b]
* k[a, b], the kernel not flipped. True (mathematical) convolution flips the kernel: convolving
with k is cross-correlating with k rotated by 180 degrees. So the two agree exactly once the
kernel is flipped, and convolving the flipped input with the kernel gives the cross-correlation
flipped. All results here are "valid" (no padding), stride 1, no dilation, in float64.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from models.layers import Conv, DepthwiseConv, LayerSpec, PointwiseConv

CORRELATED = (Conv, DepthwiseConv, PointwiseConv)
EXAMPLE_OUTPUT = 3  # the example patch is kernel + 2 per axis: a 3x3 result
SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def flip(a: np.ndarray) -> np.ndarray:
    """a rotated by 180 degrees (reversed along both axes)."""
    return np.ascontiguousarray(np.asarray(a)[::-1, ::-1])


def correlate2d(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Valid cross-correlation of 2D x (H, W) with 2D k (kh, kw): (H - kh + 1, W - kw + 1).

    Raises ValueError when k is larger than x along an axis or either is not 2D.
    """
    x, k = np.asarray(x, np.float64), np.asarray(k, np.float64)
    if x.ndim != 2 or k.ndim != 2 or k.shape[0] > x.shape[0] or k.shape[1] > x.shape[1]:
        raise ValueError(f"need 2D arrays with the kernel {k.shape} no larger than x {x.shape}")
    return np.einsum("ijab,ab->ij", sliding_window_view(x, k.shape), k)


def convolve2d(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Valid true convolution: the kernel flipped, then slid as in correlate2d."""
    return correlate2d(x, flip(k))


@dataclass(frozen=True)
class CorrelationExample:
    """One kernel on one patch, worked both ways (all float64, 2D).

    correlation = correlate2d(patch, kernel), what the layer computes;
    convolution_flipped_kernel = convolve2d(patch, flip(kernel)): equal to it;
    convolution_flipped_input = convolve2d(flip(patch), kernel): equal to it flipped.
    source says where the numbers come from, for a caption.
    """
    patch: np.ndarray
    kernel: np.ndarray
    source: str

    @property
    def correlation(self) -> np.ndarray:
        return correlate2d(self.patch, self.kernel)

    @property
    def flipped_kernel(self) -> np.ndarray:
        return flip(self.kernel)

    @property
    def flipped_patch(self) -> np.ndarray:
        return flip(self.patch)

    @property
    def convolution_flipped_kernel(self) -> np.ndarray:
        return convolve2d(self.patch, self.flipped_kernel)

    @property
    def convolution_flipped_input(self) -> np.ndarray:
        return convolve2d(self.flipped_patch, self.kernel)

    @property
    def plain_convolution(self) -> np.ndarray:
        """convolve2d(patch, kernel): differs from the correlation unless the kernel is
        symmetric under a 180-degree turn."""
        return convolve2d(self.patch, self.kernel)


def _plane(a: np.ndarray) -> np.ndarray:
    """A 2D plane of a 1D, 2D or 3D array: a 1D one as one row, a 3D one's middle slice."""
    a = np.asarray(a, np.float64)
    if a.ndim == 1:
        return a[np.newaxis, :]
    if a.ndim == 3:
        return a[a.shape[0] // 2]
    return a


def _centre_patch(plane: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The centred window of `shape` (clipped to the plane) of a 2D plane."""
    starts = [max((size - want) // 2, 0) for size, want in zip(plane.shape, shape)]
    return plane[starts[0]:starts[0] + shape[0], starts[1]:starts[1] + shape[1]]


def sample_patch(shape: tuple[int, int]) -> np.ndarray:
    """A small deterministic patch with an edge and a ramp, so a gradient kernel responds."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    return np.round((cols >= shape[1] // 2) * 0.8 + rows * 0.05, 2)


def layer_example(spec: LayerSpec | None, weights: dict[str, np.ndarray] | None,
                  layer_input: np.ndarray | None) -> CorrelationExample:
    """The example for a layer: its first filter's kernel for its first input channel, on a
    centred patch of the first sample's channel 0 of layer_input (N, C, *spatial), sized
    kernel + 2 per axis (a 3x3 result where the input allows).

    Falls back to a Sobel kernel when spec is not a convolution with weights "W", and to
    sample_patch when layer_input is None or smaller than the kernel. 1D layers show one row,
    3D layers their middle depth slice.
    """
    if isinstance(spec, CORRELATED) and weights is not None and "W" in weights:
        w = np.asarray(weights["W"])
        kernel = _plane(w[0, 0])
        source = f"{spec.type_name}: filter 1, input channel 1" \
            + (", middle depth slice" if w.ndim == 5 else "")
    else:
        kernel = SOBEL_X
        source = "a Sobel kernel (select a convolution to see its own)"
    # A 1D input has one row: the centred patch clips to it.
    want = (kernel.shape[0] + EXAMPLE_OUTPUT - 1, kernel.shape[1] + EXAMPLE_OUTPUT - 1)
    if layer_input is not None:
        patch = _centre_patch(_plane(np.asarray(layer_input)[0, 0]), want)
        if patch.shape[0] >= kernel.shape[0] and patch.shape[1] >= kernel.shape[1]:
            return CorrelationExample(patch, kernel, source + ", on the layer's input")
    return CorrelationExample(sample_patch(want), kernel, source + ", on a sample patch")
