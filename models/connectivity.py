"""Per-axis connectivity of sliding windows: which input positions each output position reads.

A layer that connects positions axis by axis (its window is a product of per-axis taps) sends a
mask of output positions back to its input as one boolean (in, out) matrix per axis. Shared by
every kind's exact receptive-window rule (models.receptive_window and its kind modules).
"""
from __future__ import annotations

import numpy as np


def window_connectivity(size: int, out_size: int, kernel: int, stride: int, pad_begin: int,
                        dilation: int) -> np.ndarray:
    """(size, out_size) bool: which inputs output o of a sliding window reads along one axis.

    Output o reads input o*stride - pad_begin + t*dilation for each tap t < kernel; taps that
    land in the padding read no input (they are dropped here, which clips the window).
    """
    taps = (np.arange(out_size)[np.newaxis, :] * stride - pad_begin
            + np.arange(kernel)[:, np.newaxis] * dilation)  # (kernel, out_size)
    connected = np.zeros((size, out_size), bool)
    inside = (taps >= 0) & (taps < size)
    connected[taps[inside], np.broadcast_to(np.arange(out_size), taps.shape)[inside]] = True
    return connected


def transposed_connectivity(size: int, out_size: int, kernel: int, stride: int, pad_begin: int,
                            dilation: int) -> np.ndarray:
    """(size, out_size) bool for a transposed convolution along one axis.

    Input i paints output i*stride + t*dilation - pad_begin for each tap t < kernel; outputs
    cropped by the pads, and output_padding pixels no tap reaches, read no input.
    """
    targets = (np.arange(size)[:, np.newaxis] * stride - pad_begin
               + np.arange(kernel)[np.newaxis, :] * dilation)  # (size, kernel)
    connected = np.zeros((size, out_size), bool)
    inside = (targets >= 0) & (targets < out_size)
    connected[np.broadcast_to(np.arange(size)[:, np.newaxis], targets.shape)[inside],
              targets[inside]] = True
    return connected


def back_through(mask: np.ndarray, connectivity: list[np.ndarray]) -> np.ndarray:
    """The input mask that reaches the output mask, one (in, out) matrix per spatial axis."""
    for axis, connected in enumerate(connectivity):
        # Count the reached outputs each input position connects to; any count > 0 reaches.
        counts = np.tensordot(connected.astype(np.int32), mask.astype(np.int32), axes=([1], [axis]))
        mask = np.moveaxis(counts, 0, axis) > 0
    return mask
