"""Import any ONNX CNN graph as a ConvScope network: one node per ONNX node left after constant
folding, each reading the nodes (or the input) its ONNX node reads.

The path: engine.onnx.load (safe, streaming load; refusals; opset upgrade), engine.onnx.fold
(constant folding at the input's concrete shape; Identity and inference Dropout bypassed), then
each ONNX node, in order, through the import rules of engine.onnx.registry:
- Gemm tries `dense_from_gemm` first (a Dense layer), then the registry's general Gemm rule;
- Split becomes one node per used output (`split_parts`), named "<node>:<output index>";
- any other default-domain op through IMPORTERS[op_type].
A node that no rule reads - no rule for its operator, a rule's refusal (`r.fail`), or a layer
whose shape arithmetic disagrees with onnx's shape inference - becomes an Opaque node that
onnxruntime computes (engine.onnx.opaque); nothing is dropped and nothing is approximated. Still
refused: an opaque node with several used results, or one whose output size neither onnx nor
onnxruntime can tell.

Names: the ONNX node's name, made unique ("_2", ...); an unnamed node gets a generated one
(conv1); "input" is kept for the network's input. A node ConvScope exported carries its layer's
group as metadata (engine.onnx.nodes.GROUP_KEY), which is the layer's group again. Other groups
come from the name scopes, as Model Explorer shows them: a name "/layer1/layer1.0/conv1/Conv"
has the scopes layer1, layer1.0, conv1 and the op part Conv. The group is the scope path without
the op part, with PyTorch's repeated prefixes removed (layer1.0 inside layer1 reads 0), and
without the last scope when that scope holds this one node only (a module such as conv1 that is
one op): so the node "/layer1/layer1.0/conv1/Conv" is in group "layer1/0", and
"/layer1/layer1.0/Add" too. A name without "/" has no group. A group path keeps at most
MAX_GROUP_DEPTH scopes (the network's limit on nesting, engine.onnx.limits); the network's other
limits (a group given as metadata among them), checked when its stack is made, are refused
naming the file.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Callable

import numpy as np
import onnx

import engine.onnx.activation  # noqa: F401  (registers its import rules)
import engine.onnx.core_rules  # noqa: F401
import engine.onnx.shape  # noqa: F401
from engine.onnx.core_rules import dense_from_gemm
from engine.onnx.fold import Folded, fold
from engine.onnx.limits import MAX_GROUP_DEPTH, excerpt, shown
from engine.onnx.load import Loaded, Source, load
from engine.onnx.nodes import DOMAINS, listed, node_attributes, node_group, node_shown
from engine.onnx.registry import IMPORTERS, Imported
from engine.onnx.shape import split_parts
from engine.onnx.tensors import nonfinite_count
from engine.onnx.opaque import opaque_node, prepare, run_opaque
from models.analysis import check_arity
from models.errors import ConfigError, FileFormatError
from models.layers import LayerInfo
from models.layers.base import describe_shape
from models.pacing import pace
from models.stack import INPUT, InputSpec, Layer, Stack, frozen_array

__all__ = ["import_model", "Source"]


def import_model(source: Source) -> Stack:
    """The network an ONNX model (a file path, its bytes, or a ModelProto) describes.

    The input spec comes from the graph's single runtime input (N, C, *spatial), a symbolic
    batch read as 1. Raises FileFormatError, naming the file, for what engine.onnx.load and
    engine.onnx.fold refuse (malformed nodes among them), for an opaque node that cannot be kept
    (several used results, unknown output size), for weights that are not finite as float32,
    and for a network past the limits of models.stack; ConfigError for an unreadable
    CONVSCOPE_MEMORY_BUDGET.
    """
    loaded = load(source)
    # Constants computed or converted to float32 may overflow: a layer's weights that do are
    # refused, naming the node (_Mapper.add), rather than warned about on the way.
    with np.errstate(over="ignore"):
        return _Mapper(loaded, fold(loaded)).stack()


class _NodeRefusal(FileFormatError):
    """A rule's refusal of one node: `why` is the reason alone, for the opaque node."""

    def __init__(self, message: str, why: str) -> None:
        super().__init__(message)
        self.why = why


class _Reader:
    """The engine.onnx.registry.Reader over a folded model."""

    def __init__(self, folded: Folded, opset: int, label: str) -> None:
        self.opset = opset
        self.label = label
        self.folded = folded
        self.shapes: dict[str, tuple[int, ...]] = {}  # full shapes ConvScope computed

    def attrs(self, node: onnx.NodeProto) -> dict[str, Any]:
        return node_attributes(node)

    def constant(self, tensor: str) -> np.ndarray | None:
        return self.folded.constants.get(tensor)

    def shape(self, tensor: str) -> tuple[int, ...]:
        if tensor in self.shapes:
            return self.shapes[tensor]
        value = self.folded.constants.get(tensor)
        if value is not None:
            return tuple(value.shape)
        inferred = self.folded.shapes.get(tensor)
        if inferred is None or None in inferred:
            raise FileFormatError(f"{self.label}: the size of the tensor {shown(tensor)} is "
                                  f"unknown")
        return tuple(inferred)  # type: ignore[arg-type]

    def fail(self, node: onnx.NodeProto, reason: str) -> FileFormatError:
        return _NodeRefusal(f"{self.label}: {_op_name(node)} node {node_shown(node)}: {reason}",
                            reason)


class _Mapper:
    """Turns the folded graph's nodes into layers, in order."""

    def __init__(self, loaded: Loaded, folded: Folded) -> None:
        self.loaded = loaded
        self.folded = folded
        self.graph = folded.model.graph
        self.r = _Reader(folded, loaded.opset, loaded.label)
        self.r.shapes[loaded.input_name] = loaded.input_shape
        self.batch = loaded.input_shape[0]
        self.producer: dict[str, str] = {loaded.input_name: INPUT}
        self.read = {name for node in self.graph.node for name in node.input if name} | \
            {o.name for o in self.graph.output}
        self.layers: list[Layer] = []
        self.scopes: list[list[str]] = []
        self.given_groups: list[str | None] = []
        self.taken: set[str] = {INPUT}
        self.opsets = tuple((e.domain, int(e.version)) for e in folded.model.opset_import)

    def stack(self) -> Stack:
        for node in self.graph.node:
            pace()
            for output, imported in self.parts(node):
                self.add(node, output, imported)
        outputs = []
        for value in self.graph.output:
            source = self.producer.get(value.name)
            if source == INPUT or source is None:
                what = "its input unchanged" if source else "a constant"
                raise FileFormatError(f"{self.loaded.label}: the graph's output "
                                      f"{shown(value.name)} is {what}; there is no layer to "
                                      f"show: export the model with that output computed from "
                                      f"the input")
            if source not in outputs:
                outputs.append(source)
        groups = [given if given is not None else derived
                  for given, derived in zip(self.given_groups, _groups(self.scopes))]
        layers = [layer.replace(group=group) for layer, group in zip(self.layers, groups)]
        try:
            return Stack(InputSpec.from_shape(self.loaded.input_shape)).with_layers(
                layers, tuple(outputs))
        except ConfigError as err:  # the network's limits (models.stack), named with the file
            raise FileFormatError(f"{self.loaded.label}: {err}", field=err.field) from None

    # Reading one node --------------------------------------------------------------------

    def parts(self, node: onnx.NodeProto) -> list[tuple[str, Imported]]:
        """(output tensor, layer) for each layer the node becomes."""
        used = [k for k, name in enumerate(node.output) if name in self.read]
        rule = self.rule(node)
        reason = f"ConvScope has no layer for the ONNX operator {_op_name(node)}"
        if rule is not None:
            try:
                if node.op_type == "Split":
                    parts = split_parts(self.r, node)
                    return [(node.output[k], self.checked(node, parts[k], node.output[k]))
                            for k in used]
                if used != [0]:
                    raise ConfigError("later nodes read its other results, but a layer gives "
                                      "its first result only")
                imported = rule(self.r, node)
                if imported is None:
                    raise ConfigError("no import rule reads it")
                return [(node.output[0], self.checked(node, imported, node.output[0]))]
            except _NodeRefusal as err:
                reason = err.why
            except ConfigError as err:
                reason = err.reason
            except (KeyError, IndexError, ValueError, TypeError) as err:
                # A node a rule cannot parse (a required attribute missing, ...): onnxruntime
                # gets the last word, and refuses it below if it is malformed.
                reason = f"its import rule cannot read it ({type(err).__name__}: {err})"
        return [self.opaque(node, used, reason)]

    def rule(self, node: onnx.NodeProto) -> Callable[..., Any] | None:
        if node.domain not in DOMAINS:
            return None
        if node.op_type == "Split":
            return split_parts
        if node.op_type == "Gemm":
            general = IMPORTERS.get("Gemm")
            return lambda r, n: dense_from_gemm(r, n) or (general(r, n) if general else None)
        return IMPORTERS.get(node.op_type)

    def checked(self, node: onnx.NodeProto, imported: Imported, output: str) -> Imported:
        """The layer, once its arithmetic agrees with its weights and onnx's shape inference;
        ConfigError otherwise."""
        missing = [t for t in imported.inputs if t not in self.r.shapes]
        if missing:
            raise ConfigError(f"it reads {shown(missing[0])}, which is neither the input nor a "
                              f"layer")
        info = self.analysed(imported)
        for key, want in info.weight_shapes.items():
            have = imported.weights.get(key)
            if have is None or tuple(have.shape) != tuple(want):
                got = "none" if have is None else describe_shape(have.shape)
                raise ConfigError(f"its weight {key} has shape {got}, but the layer needs "
                                  f"{describe_shape(want)}")
        out = (self.batch, *info.output_shape)
        inferred = self.folded.shapes.get(output)
        # Before opset 22 onnx's ceil-mode pooling may count one more window than onnxruntime
        # and ConvScope do (see engine.onnx.export.CEIL_RULE_OPSET): no ground for a mismatch.
        ceil_mode = getattr(imported.spec, "ceil_mode", False)
        if inferred and None not in inferred and tuple(inferred) != out and not ceil_mode:
            raise ConfigError(f"onnx infers the output shape {describe_shape(inferred)}, but "
                              f"the layer computes {describe_shape(out)}")
        return imported

    def analysed(self, imported: Imported) -> LayerInfo:
        shapes = tuple(self.r.shapes[t][1:] for t in imported.inputs)
        check_arity(imported.spec, len(shapes))
        return imported.spec.analyse_inputs(shapes)

    def opaque(self, node: onnx.NodeProto, used: list[int], reason: str) -> tuple[str, Imported]:
        label = self.loaded.label
        if len(used) > 1:
            raise FileFormatError(
                f"{label}: an operator ({_op_name(node)}) gives {len(used)} results that later "
                f"nodes read, but ConvScope has no layer for it and keeps one result per "
                f"opaque node: {listed([node])}")
        constants = {n: v for n in node.input if n and (v := self.r.constant(n)) is not None}
        runtime = list(dict.fromkeys(n for n in node.input if n and n not in constants))
        if not runtime:
            raise FileFormatError(f"{label}: an operator ({_op_name(node)}) computes a value from "
                                  f"constants only, which ConvScope could not compute "
                                  f"(onnxruntime cannot evaluate it on its own, or it is random): "
                                  f"{listed([node])}")
        shapes = [self.r.shapes[t][1:] for t in runtime]
        output = node.output[used[0]]
        imported = opaque_node(node, runtime, constants, shapes, self.folded.elem_types,
                               used[0], (), self.opsets, reason)
        full = self.folded.shapes.get(output)
        try:
            if full is None or None in full:  # onnx cannot tell: run it once on zeros
                zeros = [np.zeros(self.r.shapes[t], np.float32) for t in runtime]
                full = tuple(run_opaque(imported.spec, imported.weights, *zeros).shape)
            spec = imported.spec.replace(output_shape=tuple(full[1:]))
            prepare(spec)
        except Exception as err:  # onnxruntime raises its own exception types
            first = excerpt(str(err)) or type(err).__name__
            raise FileFormatError(
                f"{label}: ConvScope has no layer for the operator {_op_name(node)}, and "
                f"onnxruntime cannot run it either ({first}): {listed([node])}") from None
        if not full or full[0] != self.batch:
            raise FileFormatError(f"{label}: an operator ({_op_name(node)}) gives a result "
                                  f"without the batch axis first, so no layer can hold it: "
                                  f"{listed([node])}")
        return output, Imported(spec, imported.weights, imported.inputs)

    # Adding a layer ----------------------------------------------------------------------

    def add(self, node: onnx.NodeProto, output: str, imported: Imported) -> None:
        info = self.analysed(imported)  # checked above; opaque nodes agree by construction
        base = node.name.strip()
        if base and len(node.output) > 1 and node.op_type == "Split":
            base = f"{base}:{list(node.output).index(output)}"
        name = self.unique(base, imported)
        self.taken.add(name)
        self.producer[output] = name
        self.r.shapes[output] = (self.batch, *info.output_shape)
        inputs = tuple(self.producer[t] for t in imported.inputs)
        weights = {k: _frozen(v) for k, v in imported.weights.items()}
        for key, values in weights.items():
            bad = nonfinite_count(values)
            # Finite in the file (engine.onnx.tensors refuses the rest), but not as the float32 a layer
            # holds: a double past 3.4e38, or alpha folded in. Refused alike.
            if bad:
                raise FileFormatError(
                    f"{self.loaded.label}: {_op_name(node)} node {node_shown(node)}: its weight "
                    f"{key} holds {bad:,} NaN or infinite value{'' if bad == 1 else 's'} as "
                    f"float32 (beyond 3.4e38, or a scale such as alpha folded into it); "
                    f"ConvScope opens only finite weights: rescale them and export again")
        self.layers.append(Layer(name, imported.spec, weights, inputs))
        self.scopes.append(_scope(node.name) or
                           self.loaded.weight_scopes.get(node.name, [])[:MAX_GROUP_DEPTH + 1])
        self.given_groups.append(node_group(node))

    def unique(self, base: str, imported: Imported) -> str:
        if not base:
            return Stack().unique_name(imported.spec, self.taken)
        name, n = base, 1
        while name in self.taken:
            n += 1
            name = f"{base}_{n}"
        return name


def _frozen(values: np.ndarray) -> np.ndarray:
    """A read-only float32 array, the same one where it already is float32 and contiguous:
    the importer owns the arrays it read, and a copy would double a large model's memory."""
    values = np.asarray(values)
    if values.dtype == np.float32 and values.flags.c_contiguous:
        values.flags.writeable = False
    # frozen_array gives a 0-d value (x * 0.5's 0.5) one axis, as np.ascontiguousarray does; the
    # layer's weight must keep the shape its spec names, or it is not the weight the file holds.
    return frozen_array(values).reshape(values.shape)


def _op_name(node: onnx.NodeProto) -> str:
    """The operator as messages name it (cut: a file may give it any length)."""
    name = node.op_type if node.domain in DOMAINS else f"{node.domain}.{node.op_type}"
    return excerpt(name, 60)


def _scope(name: str) -> list[str]:
    """The name's scopes with PyTorch's repeated prefixes removed (see the module docstring),
    at most MAX_GROUP_DEPTH + 1 of them (a group path is the scopes but perhaps the last)."""
    if "/" not in name:
        return []
    parts = [p for p in name.split("/") if p][:-1][:MAX_GROUP_DEPTH + 1]
    out = []
    for i, part in enumerate(parts):
        previous = parts[i - 1] if i else ""
        out.append(part[len(previous) + 1:] if previous and part.startswith(previous + ".")
                   and len(part) > len(previous) + 1 else part)
    return out


def _groups(scopes: list[list[str]]) -> list[str]:
    """Each node's group: its scope path, without a last scope that holds only this node."""
    counts = Counter(tuple(s[:k]) for s in scopes for k in range(1, len(s) + 1))
    groups = []
    for s in scopes:
        path = s[:-1] if s and counts[tuple(s)] == 1 else s
        groups.append("/".join(path[:MAX_GROUP_DEPTH]))
    return groups
