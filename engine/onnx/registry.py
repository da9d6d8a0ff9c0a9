"""ONNX rules per layer kind: how a spec is written as ONNX nodes, and how an ONNX node is read
back as a spec. One contract per kind, looked up by spec class (export) and op type (import), so
a new kind adds its rules beside its kernel instead of to an if-chain.

Export: an `Exporter(w, spec, info, weights, prefix, inputs, out)` adds the nodes of one graph
node reading the tensors `inputs` (in the node's input order) and writes its result to the tensor
`out`, which it returns. `prefix` names its initializers ("conv1."). `info` is the node's
LayerInfo from shape inference.

Import: an `Importer(r, node)` reads one ONNX node (after constant folding) as an `Imported`:
its spec, its weights by key, and the names of the runtime tensors it reads, in the spec's input
order (constants it took as weights or attributes are left out). It raises `r.fail(node, why)`
for settings no spec can hold.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

import numpy as np
import onnx

from models.errors import FileFormatError
from models.layers import LayerInfo, LayerSpec


class Writer(Protocol):
    """What an exporter may add to the graph being built."""
    opset: int

    def node(self, op: str, inputs: list[str], output: str, shape: tuple[int, ...],
             name: str | None = None, domain: str = "", outputs: list[str] | None = None,
             **attrs: object) -> str:
        """A node whose output `output` has sample shape `shape` (no batch axis). `outputs`
        lists all its results in order where it writes more than `output`, which nothing reads."""

    def use_opset(self, domain: str, version: int) -> None:
        """Import `domain` at `version` (a custom domain an opaque node's operator lives in)."""

    def weight(self, name: str, array: np.ndarray) -> str:
        """A float32 initializer; returns its name."""

    def int64(self, name: str, values: Any) -> str:
        """An int64 initializer (shapes, axes, pads, ...); returns its name."""


class Reader(Protocol):
    """What an importer may ask of the model being read."""
    opset: int

    def attrs(self, node: onnx.NodeProto) -> dict[str, Any]:
        """The node's attributes by name (strings decoded)."""

    def constant(self, tensor: str) -> np.ndarray | None:
        """The tensor's value when it is a constant (initializer, Constant, folded), else None."""

    def shape(self, tensor: str) -> tuple[int, ...]:
        """The tensor's full static shape, batch axis included."""

    def fail(self, node: onnx.NodeProto, reason: str) -> FileFormatError:
        """An error naming the file, the node and the reason."""


@dataclass(frozen=True)
class Imported:
    spec: LayerSpec
    weights: Mapping[str, np.ndarray] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()


Exporter = Callable[[Writer, Any, LayerInfo, Mapping[str, np.ndarray], str, list[str], str], str]
Importer = Callable[[Reader, onnx.NodeProto], Imported]

EXPORTERS: dict[type[LayerSpec], Exporter] = {}
IMPORTERS: dict[str, Importer] = {}


def exports(*kinds: type[LayerSpec]) -> Callable[[Exporter], Exporter]:
    """Register an exporter for these spec classes."""
    def register(function: Exporter) -> Exporter:
        for kind in kinds:
            EXPORTERS[kind] = function
        return function
    return register


def imports(*op_types: str) -> Callable[[Importer], Importer]:
    """Register an importer for these ONNX op types (default domain)."""
    def register(function: Importer) -> Importer:
        for op in op_types:
            IMPORTERS[op] = function
        return function
    return register


def runtime_inputs(r: Reader, node: onnx.NodeProto) -> tuple[str, ...]:
    """The node's inputs that are not constants (empty names of skipped optionals left out)."""
    return tuple(name for name in node.input if name and r.constant(name) is None)
