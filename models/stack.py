"""A network: an input spec and named layers (nodes) in topological order, each with its
weights and the names of the nodes it reads, and one or more outputs: a directed acyclic graph.

A chain is the graph whose layers each read the previous one; such a layer leaves `inputs` unset
(None), so chain edits (insert, remove, move) keep working as they always have. A layer with
explicit `inputs` reads those nodes (or INPUT, the network's input), which must come before it.

Networks, layers and weight arrays are immutable values: every edit returns a new Stack that
shares what did not change. So undo keeps old networks, and the engine can tell by identity which
layers changed since its last run.
"""
from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from models.errors import ConfigError, display_name
from models.layers import LayerSpec

MAX_SPATIAL_RANK = 3
INPUT = "input"
"""The name by which a layer's explicit inputs refer to the network's input."""

# The limits of a network, checked whenever a Stack is made (so by every edit, by the project
# loader and by the ONNX importer, which build stacks) and so never exceeded by a saved project.
# Code that walks groups may recurse: these keep it far from Python's recursion limit, and a
# damaged or hostile file from exhausting memory or flooding a terminal with one name.
MAX_NODES = 50_000
"""The most nodes a network may have (a large ONNX model has a few thousand)."""
MAX_NESTING_DEPTH = 32
"""The most levels of a group path ("a/b/c" is 3), and of blocks inside blocks in the project
files that held such blocks (a plain layer is 1 level, a residual block of plain layers 2)."""
MAX_NAME_LENGTH = 1_000
"""The most characters of a node's name, or of its group path."""
_SURROGATE = re.compile("[\ud800-\udfff]")


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
    """A named node of a network: its spec, its weights by key ("W", "B", "body.0.W", ...), the
    names of the nodes it reads (None: the previous layer, as in a chain) and its group, a
    "/"-separated path of nested group names ("layer1/0"; "" for none).

    Weight arrays are float32 and read-only; replace them, never write into them.
    """
    name: str
    spec: LayerSpec
    weights: Mapping[str, np.ndarray] = field(default_factory=dict)
    inputs: tuple[str, ...] | None = None
    group: str = ""

    def replace(self, **changes: object) -> Layer:
        return dataclasses.replace(self, **changes)


def frozen_array(array: np.ndarray) -> np.ndarray:
    """A read-only float32 C-contiguous copy (or the array itself when it already is one), of
    the same shape (ascontiguousarray alone makes a 0-d scalar operand 1-d)."""
    out = np.ascontiguousarray(array, dtype=np.float32).reshape(np.shape(array))
    if out is array and not array.flags.writeable:
        return out
    out = out.copy() if out is array or out.base is array else out
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class Stack:
    """An input spec plus layers in topological order; `seed` drives the default initialisers.

    outputs names the network's outputs; empty means every layer nothing reads (for a chain,
    the last layer).
    """
    input: InputSpec = field(default_factory=InputSpec)
    layers: tuple[Layer, ...] = ()
    seed: int = 0
    outputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_limits(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def input_names(self, index: int) -> tuple[str, ...]:
        """The names layer `index` reads: its explicit inputs, or the previous layer (INPUT first)."""
        layer = self.layers[index]
        if layer.inputs is not None:
            return layer.inputs
        return (self.layers[index - 1].name,) if index else (INPUT,)

    @functools.cached_property
    def sources(self) -> tuple[tuple[int, ...], ...]:
        """Per layer, the indices of the layers it reads in order (-1: the network's input)."""
        where = {layer.name: i for i, layer in enumerate(self.layers)}
        return tuple((i - 1,) if layer.inputs is None else
                     tuple(-1 if name == INPUT else where[name] for name in layer.inputs)
                     for i, layer in enumerate(self.layers))

    @functools.cached_property
    def consumers(self) -> tuple[tuple[int, ...], ...]:
        """Per layer, the indices of the layers that read it, in order."""
        readers: list[list[int]] = [[] for _ in self.layers]
        for i, sources in enumerate(self.sources):
            for j in dict.fromkeys(sources):
                if j >= 0:
                    readers[j].append(i)
        return tuple(tuple(r) for r in readers)

    @property
    def output_indices(self) -> tuple[int, ...]:
        """The layers whose outputs are the network's outputs, in order."""
        if self.outputs:
            return tuple(self.index_of(name) for name in self.outputs)
        return tuple(i for i, readers in enumerate(self.consumers) if not readers)

    @property
    def is_chain(self) -> bool:
        """Whether every layer reads exactly the one before it and the last is the one output."""
        return all(sources == (i - 1,) for i, sources in enumerate(self.sources)) and \
            self.output_indices == ((len(self.layers) - 1,) if self.layers else ())

    def upstream(self, index: int) -> set[int]:
        """The layers whose outputs can reach layer `index` (itself included)."""
        seen, todo = set(), [index]
        while todo:
            i = todo.pop()
            if i >= 0 and i not in seen:
                seen.add(i)
                todo.extend(self.sources[i])
        return seen

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

    def with_layers(self, layers: tuple[Layer, ...] | list[Layer],
                    outputs: tuple[str, ...] | None = None) -> Stack:
        """The network with these layers (and outputs; None keeps those still present).

        Raises ConfigError for duplicate names, an input that names no earlier layer (so the
        graph stays acyclic and in topological order) or an output that names no layer.
        """
        names = [layer.name for layer in layers]
        if len(set(names)) != len(names):
            seen: set[str] = set()
            dup = next(n for n in names if n in seen or seen.add(n))  # type: ignore[func-returns-value]
            raise ConfigError(f"two layers are named {dup!r}; layer names must be unique",
                              field="name")
        earlier: set[str] = set()
        for layer in layers:
            for source in layer.inputs or ():
                if source not in earlier and source != INPUT:
                    where = "comes after it" if source in names else "does not exist"
                    raise ConfigError(f"layer {layer.name!r} reads {source!r}, which {where}; a "
                                      f"layer can only read the input or layers before it",
                                      field="inputs")
            earlier.add(layer.name)
        if outputs is None:
            outputs = tuple(name for name in self.outputs if name in earlier)
        missing = [name for name in outputs if name not in earlier]
        if missing:
            raise ConfigError(f"the output {missing[0]!r} names no layer", field="outputs")
        return dataclasses.replace(self, layers=tuple(layers), outputs=tuple(outputs))

    def appended(self, spec: LayerSpec, name: str | None = None) -> Stack:
        return self.inserted(len(self.layers), spec, name)

    def inserted(self, index: int, spec: LayerSpec, name: str | None = None) -> Stack:
        layer = Layer(name or self.unique_name(spec), spec)
        layers = list(self.layers)
        layers.insert(index, layer)
        return self.with_layers(layers)

    def removed(self, index: int) -> Stack:
        """Without layer `index`; ConfigError when a later layer names it as an input."""
        name = self.layers[index].name
        readers = [layer.name for layer in self.layers if name in (layer.inputs or ())]
        if readers:
            raise ConfigError(f"{', '.join(map(repr, readers[:3]))} read{'s' if len(readers) == 1 else ''} "
                              f"{name!r}; reconnect {'it' if len(readers) == 1 else 'them'} first",
                              field="inputs")
        return self.with_layers(self.layers[:index] + self.layers[index + 1:])

    def moved(self, source: int, target: int) -> Stack:
        """The layer at source moved so that it ends at index target."""
        layers = list(self.layers)
        layers.insert(target, layers.pop(source))
        return self.with_layers(layers)

    def replaced(self, index: int, layer: Layer) -> Stack:
        """Layer `index` replaced; a new name is followed by the inputs and outputs naming it."""
        old = self.layers[index].name
        layers = list(self.layers)
        layers[index] = layer
        outputs = self.outputs
        if layer.name != old:
            def renamed(names: tuple[str, ...]) -> tuple[str, ...]:
                return tuple(layer.name if n == old else n for n in names)
            layers = [other.replace(inputs=renamed(other.inputs))
                      if other.inputs is not None and old in other.inputs else other
                      for other in layers]
            outputs = renamed(outputs)
        return self.with_layers(layers, outputs)

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


def check_limits(layers: tuple[Layer, ...] | list[Layer]) -> None:
    """Refuse a network past MAX_NODES, MAX_NESTING_DEPTH or MAX_NAME_LENGTH, or whose names
    are not text every file format can hold (a lone surrogate cannot be written as UTF-8).

    Raises ConfigError placed on the first layer at fault.
    """
    if len(layers) > MAX_NODES:
        raise ConfigError(f"the network has {len(layers):,} nodes, more than the {MAX_NODES:,} "
                          f"ConvScope handles; split it into smaller networks", field="layers")
    for index, layer in enumerate(layers):
        problem = _name_problem("name", layer.name) or _group_problem(layer.group)
        if problem is not None:
            reason, where = problem
            raise ConfigError(reason, field=where).at(index, layer.name, layer.spec.type_name)


def _name_problem(what: str, name: str) -> tuple[str, str] | None:
    if len(name) > MAX_NAME_LENGTH:
        return (f"its {what} is {len(name):,} characters long, more than the {MAX_NAME_LENGTH:,} "
                f"ConvScope handles; give it a shorter one", what)
    if _SURROGATE.search(name):
        return (f"its {what} holds a lone surrogate ({display_name(name)}), which is not text any "
                f"file can hold; rename it", what)
    return None


def _group_problem(group: str) -> tuple[str, str] | None:
    if not group:
        return None
    depth = group.count("/") + 1
    if depth > MAX_NESTING_DEPTH:
        return (f"its group path is {depth} groups deep, more than the {MAX_NESTING_DEPTH} "
                f"ConvScope handles; flatten the groups", "group")
    return _name_problem("group", group)
