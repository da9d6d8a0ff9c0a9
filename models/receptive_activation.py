"""Exact receptive windows of the activation, element-wise math and normalisation kinds:
`back(spec, info, in_shape, mask) -> mask` as in models.receptive_window, where in_shape is the
sample shape (C, *spatial) and masks have its spatial shape.

Element-wise kinds (the older ReLU, LeakyReLU, Sigmoid, Tanh and BatchNorm too), LRN (it mixes
channels only) and softmax over the channels map each position onto itself; softmax along a
spatial axis lets every position of that axis reach every other; InstanceNorm's statistics read
every position of the channel.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from models.layers.activation import (ELU, GELU, Clip, HardSigmoid, HardSwish, LeakyReLU,
                                      LogSoftmax, PReLU, ReLU, Sigmoid, SiLU, Softmax, Tanh, Unary)
from models.layers.base import LayerInfo, LayerSpec, Shape
from models.layers.normalization import LRN, InstanceNorm
from models.layers.structure import BatchNorm


def _pointwise(spec: LayerSpec, info: LayerInfo, in_shape: Shape, mask: np.ndarray) -> np.ndarray:
    return mask.copy()


def _along_axis(spec: Softmax | LogSoftmax, info: LayerInfo, in_shape: Shape,
                mask: np.ndarray) -> np.ndarray:
    """Softmax over the channels (axis 1) is position-wise; over spatial axis k (counting the
    batch as 0) a reached output reaches its whole line along k."""
    axis = info.attrs["axis"]
    if axis == 1:
        return mask.copy()
    spatial = axis - 2
    return np.broadcast_to(mask.any(axis=spatial, keepdims=True), mask.shape).copy()


def _everything(spec: LayerSpec, info: LayerInfo, in_shape: Shape, mask: np.ndarray) -> np.ndarray:
    """InstanceNorm: the mean and variance read every position of the channel."""
    return np.full(in_shape[1:], bool(mask.any()))


BACK_ACTIVATION: dict[type[LayerSpec], Callable[..., np.ndarray]] = {
    ReLU: _pointwise, LeakyReLU: _pointwise, Sigmoid: _pointwise, Tanh: _pointwise,
    BatchNorm: _pointwise, Softmax: _along_axis, LogSoftmax: _along_axis,
    Clip: _pointwise, HardSigmoid: _pointwise, HardSwish: _pointwise, SiLU: _pointwise,
    PReLU: _pointwise, ELU: _pointwise, GELU: _pointwise, Unary: _pointwise, LRN: _pointwise,
    InstanceNorm: _everything,
}
