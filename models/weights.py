"""Deterministic weight initialisers and filling a stack's missing weights.

Every default weight is drawn from a generator seeded by (stack seed, layer name, weight key), so
the same stack always gets the same numbers, and editing one layer never changes another's.
"""
from __future__ import annotations

import math
import zlib
from typing import Mapping

import numpy as np

from models.analysis import StackReport, analyse
from models.pacing import pace
from models.stack import Stack, frozen_array

INITIALISERS = ("he_normal", "he_uniform", "glorot_normal", "glorot_uniform")


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight tensor laid out (out, in, *kernel), as Keras and PyTorch do."""
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def initialise(shape: tuple[int, ...], method: str, rng: np.random.Generator) -> np.ndarray:
    """A float32 tensor drawn by He (ReLU networks) or Glorot (tanh/sigmoid) rules."""
    fan_in, fan_out = fans(shape) if len(shape) >= 2 else (shape[0], shape[0])
    if method.startswith("he"):
        variance = 2.0 / fan_in
    elif method.startswith("glorot"):
        variance = 2.0 / (fan_in + fan_out)
    else:
        raise ValueError(f"unknown initialiser {method!r}; use one of {', '.join(INITIALISERS)}")
    if method.endswith("normal"):
        values = rng.normal(0.0, math.sqrt(variance), size=shape)
    else:
        limit = math.sqrt(3.0 * variance)
        values = rng.uniform(-limit, limit, size=shape)
    return values.astype(np.float32)


def rng_for(seed: int, layer_name: str, key: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(layer_name.encode()), zlib.crc32(key.encode())])


def default_weight(key: str, shape: tuple[int, ...], rng: np.random.Generator,
                   method: str = "he_normal") -> np.ndarray:
    """The starting value of a weight by its role, read from the key's last part.

    Kernels (W) are drawn by `method`; biases, shifts and running means start at 0; batch-norm
    scales and variances at 1; PReLU slopes at 0.25.
    """
    role = key.rsplit(".", 1)[-1]
    if role == "W":
        return initialise(shape, method, rng)
    if role in ("scale", "var"):
        return np.ones(shape, np.float32)
    if role == "slope":  # PReLU starts as a leaky ReLU, as PyTorch's does
        return np.full(shape, 0.25, np.float32)
    return np.zeros(shape, np.float32)


def reinitialised(layer_name: str, shapes: Mapping[str, tuple[int, ...]], method: str,
                  seed: int) -> dict[str, np.ndarray]:
    """Fresh weights for every key of a layer, with the named initialiser and seed."""
    return {key: frozen_array(default_weight(key, shape, rng_for(seed, layer_name, key), method))
            for key, shape in shapes.items()}


def materialise(stack: Stack, report: StackReport | None = None) -> Stack:
    """The stack with every valid layer's weights present and of the right shapes.

    Weights that already fit are kept (the same arrays); missing or misfit ones get their
    deterministic defaults; keys the layer no longer has are dropped. Invalid layers are untouched.
    """
    report = report or analyse(stack)
    layers = list(stack.layers)
    changed = False
    for i, (layer, layer_report) in enumerate(zip(stack.layers, report.layers)):
        pace()
        if layer_report.info is None:
            continue
        shapes = layer_report.info.weight_shapes
        if set(layer.weights) == set(shapes) and all(
                layer.weights[k].shape == s for k, s in shapes.items()):
            continue
        weights = {k: layer.weights[k] if k in layer.weights and layer.weights[k].shape == s
                   else frozen_array(default_weight(k, s, rng_for(stack.seed, layer.name, k)))
                   for k, s in shapes.items()}
        layers[i] = layer.replace(weights=weights)
        changed = True
    return stack.with_layers(layers) if changed else stack
