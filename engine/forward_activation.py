"""Forward passes of the activation, element-wise math and normalisation kinds of
models.layers.activation and models.layers.normalization (Softmax included: it gained an axis).

Each function is `fn(spec, info, weights, x) -> y` with x the float32 batch (N, ...); the lead's
engine.forward merges FORWARD_ACTIVATION into its FORWARD table.
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from engine import ops
from models.layers.activation import (ELU, GELU, Clip, HardSigmoid, HardSwish, LogSoftmax, PReLU,
                                      SiLU, Softmax, Unary)
from models.layers.base import LayerInfo, LayerSpec
from models.layers.normalization import LRN, InstanceNorm

Weights = Mapping[str, np.ndarray]


def _prelu(spec: PReLU, info: LayerInfo, w: Weights, x: np.ndarray) -> np.ndarray:
    # The slope's shape is ONNX's, right-aligned against (N, C, ...): NumPy broadcasts it so.
    return ops.prelu(x, w["slope"])


FORWARD_ACTIVATION: dict[type[LayerSpec], Callable[..., np.ndarray]] = {
    Softmax: lambda s, i, w, x: ops.softmax(x, axis=i.attrs["axis"]),
    LogSoftmax: lambda s, i, w, x: ops.log_softmax(x, axis=i.attrs["axis"]),
    Clip: lambda s, i, w, x: ops.clip(x, *s.bounds),
    HardSigmoid: lambda s, i, w, x: ops.hard_sigmoid(x, s.alpha, s.beta),
    HardSwish: lambda s, i, w, x: ops.hard_swish(x),
    SiLU: lambda s, i, w, x: ops.silu(x),
    PReLU: _prelu,
    ELU: lambda s, i, w, x: ops.elu(x, s.alpha),
    GELU: lambda s, i, w, x: ops.gelu(x, s.approximate),
    Unary: lambda s, i, w, x: ops.unary(x, s.op),
    LRN: lambda s, i, w, x: ops.lrn(x, s.size, s.alpha, s.beta, s.bias),
    InstanceNorm: lambda s, i, w, x: ops.instance_normalization(x, w["scale"], w["bias"],
                                                                s.epsilon),
}
