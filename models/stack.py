"""A stack: an input spec and an ordered list of named layers with their weights.

Stacks, layers and weight arrays are immutable values: every edit returns a new Stack that shares
what did not change. So undo keeps old stacks, and the engine can tell by identity which layers
changed since its last run.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from models.errors import ConfigError
from models.layers import LayerSpec

MAX_SPATIAL_RANK = 3


@dataclass(frozen=True)
class InputSpec:
    """The input: channels and 0-3 spatial sizes (pixels), and the batch size.

    No spatial size means a flat feature vector of `channels` values, as a dense network takes.
    """
    channels: int = 3
    spatial: tuple[int, ...] = (64, 64)
    batch: int = 1

    def __post_init__(self) -> None:
        spatial = tuple(self.spatial) if isinstance(self.spatial, (list, tuple)) else (self.spatial,)
        object.__setattr__(self, "spatial", spatial)
        for name, values in (("channels", (self.channels,)), ("batch", (self.batch,)),
                             ("spatial", spatial)):
            if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
                raise ConfigError(f"input {name} must be whole numbers of at least 1, got "
                                  f"{getattr(self, name)!r}", field=f"input.{name}")
        if len(spatial) > MAX_SPATIAL_RANK:
            raise ConfigError(f"the input has at most 3 spatial sizes, got {len(spatial)}",
                              field="input.spatial")

    @property
    def shape(self) -> tuple[int, ...]:
        """(N, C, *spatial)."""
        return (self.batch, self.channels, *self.spatial)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """(C, *spatial): one sample, as layer specs see it."""
        return (self.channels, *self.spatial)

    @staticmethod
    def from_shape(shape: tuple[int, ...]) -> InputSpec:
        """From (N, C, *spatial)."""
        if not 2 <= len(shape) <= 2 + MAX_SPATIAL_RANK:
            raise ConfigError(f"an input shape is N,C followed by up to 3 spatial sizes, got "
                              f"{','.join(map(str, shape))}", field="input")
        return InputSpec(channels=shape[1], spatial=tuple(shape[2:]), batch=shape[0])


@dataclass(frozen=True, eq=False)
class Layer:
    """A named layer of a stack: its spec and its weights by key ("W", "B", "body.0.W", ...).

    Weight arrays are float32 and read-only; replace them, never write into them.
    """
    name: str
    spec: LayerSpec
    weights: Mapping[str, np.ndarray] = field(default_factory=dict)

    def replace(self, **changes: object) -> Layer:
        return dataclasses.replace(self, **changes)


def frozen_array(array: np.ndarray) -> np.ndarray:
    """A read-only float32 C-contiguous copy (or the array itself when it already is one)."""
    out = np.ascontiguousarray(array, dtype=np.float32)
    if out is array and not array.flags.writeable:
        return out
    out = out.copy() if out is array else out
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class Stack:
    """An input spec plus an ordered tuple of layers; `seed` drives the default initialisers."""
    input: InputSpec = field(default_factory=InputSpec)
    layers: tuple[Layer, ...] = ()
    seed: int = 0

    def __len__(self) -> int:
        return len(self.layers)

    def index_of(self, name: str) -> int:
        for i, layer in enumerate(self.layers):
            if layer.name == name:
                return i
        raise KeyError(name)

    def unique_name(self, spec: LayerSpec, taken: set[str] | None = None) -> str:
        """The first free name <short_name><n>, such as conv3."""
        taken = taken if taken is not None else {layer.name for layer in self.layers}
        base = spec.short_name
        n = 1 + sum(1 for name in taken if re.fullmatch(rf"{re.escape(base)}\d+", name))
        while f"{base}{n}" in taken:
            n += 1
        return f"{base}{n}"

    def with_input(self, input_spec: InputSpec) -> Stack:
        return dataclasses.replace(self, input=input_spec)

    def with_layers(self, layers: tuple[Layer, ...] | list[Layer]) -> Stack:
        names = [layer.name for layer in layers]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise ConfigError(f"two layers are named {dup!r}; layer names must be unique",
                              field="name")
        return dataclasses.replace(self, layers=tuple(layers))

    def appended(self, spec: LayerSpec, name: str | None = None) -> Stack:
        return self.inserted(len(self.layers), spec, name)

    def inserted(self, index: int, spec: LayerSpec, name: str | None = None) -> Stack:
        layer = Layer(name or self.unique_name(spec), spec)
        layers = list(self.layers)
        layers.insert(index, layer)
        return self.with_layers(layers)

    def removed(self, index: int) -> Stack:
        return self.with_layers(self.layers[:index] + self.layers[index + 1:])

    def moved(self, source: int, target: int) -> Stack:
        """The layer at source moved so that it ends at index target."""
        layers = list(self.layers)
        layers.insert(target, layers.pop(source))
        return self.with_layers(layers)

    def replaced(self, index: int, layer: Layer) -> Stack:
        layers = list(self.layers)
        layers[index] = layer
        return self.with_layers(layers)

    def with_spec(self, index: int, spec: LayerSpec) -> Stack:
        """New settings for one layer; weights whose shapes no longer fit are re-initialised later."""
        return self.replaced(index, self.layers[index].replace(spec=spec))

    def with_weights(self, index: int, weights: Mapping[str, np.ndarray]) -> Stack:
        merged = dict(self.layers[index].weights)
        merged.update({k: frozen_array(v) for k, v in weights.items()})
        return self.replaced(index, self.layers[index].replace(weights=merged))

    @property
    def weight_bytes(self) -> int:
        return sum(a.nbytes for layer in self.layers for a in layer.weights.values())
