"""Constant folding of a loaded model at the network's concrete input shape, so that what is
left is one node per operation on data.

What goes: every node whose inputs are all constants (weights made by ConstantOfShape,
dequantised or transposed weights, ...), shape computations once the input's batch is fixed
(Shape, Gather, Unsqueeze, Concat, Range, Cast, ... feeding a Reshape or a Resize), nodes
nothing reads, Identity and inference-mode Dropout (bypassed, except where their result is a
graph output). Nothing is fused: a Conv followed by a BatchNormalization stays two nodes.

How: onnx-graphsurgeon's `fold_constants` (vendored in onnxslim, which ConvScope already
installs; maintained by NVIDIA for TensorRT and used by onnxslim and Polygraphy) evaluates all
foldable nodes at once in one onnxruntime session and folds Shape nodes from inferred static
shapes (If/Loop bodies included); onnx's shape inference runs between rounds until nothing
changes. graphsurgeon never folds Q/DQ nodes (TensorRT wants them), so DequantizeLinear of
constant weights is computed here. When one node onnxruntime cannot evaluate stops the
whole-graph fold, the foldable nodes are evaluated one at a time, in order, in a loop
(`_fold_node_by_node`), skipping the ones that fail: graphsurgeon's own "basic" partitioning
calls itself again on a part that failed, without end (a RecursionError thousands of lines
long).

Then onnx's shape inference runs once more in strict mode on the folded graph: a node that no
runtime can compute as written (a Conv whose kernel has the wrong rank, a MaxPool without
kernel_shape, ...) is refused here, naming the node and onnx's reason - the check onnxruntime
makes before it runs a model. Alternatives measured (2 cores, onnx's light DenseNet-121:
910 nodes, its weights made by ConstantOfShape, 668 left after folding):
- onnxslim's `slim()`: 0.82 s with its fusions and eliminations switched off (it still runs
  its symbolic shape inference); switched on, they merge nodes (Conv+BN, Gelu, Pad into Conv),
  which a network that shows every ONNX node must not do;
- onnxruntime's optimiser at ORT_ENABLE_BASIC: fuses Conv+BN (a Conv and a BatchNormalization
  come out as one Conv); its fusions would have to be disabled one by one, by name;
- onnx.reference one node at a time: 0.12 s for the constant nodes alone, but Shape folding,
  the rounds with shape inference and subgraphs would be ours to write and keep;
- graphsurgeon as used here: 0.31 s (plus 0.36 s the first time, importing onnxslim).
Weights made by ConstantOfShape and Unsqueeze of constants (weightless exports) are computed
with NumPy first (`_fold_weight_makers`). A graph with nothing (left) to fold (the usual
PyTorch export, or DenseNet-121 after that step) never reaches graphsurgeon: a pass over the
nodes decides, and import then costs one shape inference.

Large weights are stubs (engine.onnx.load): only those that feed a node that might fold are
put back into the model before graphsurgeon sees it, so folding never copies a network's
weights.
"""
from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from engine.onnx.limits import excerpt, shown
from engine.onnx.load import INLINE_BYTES, Loaded
from engine.onnx.nodes import DOMAINS
from models.errors import FileFormatError

MAX_ROUNDS = 6
_RANDOM = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                     "Multinomial", "Bernoulli"})
_SHAPE_OF = frozenset({"Shape", "Size"})
_PASS_THROUGH = frozenset({"Identity", "Dropout"})


@dataclass
class Folded:
    """The folded model with inferred shapes, and every constant by tensor name (the loaded
    weights and what folding computed). shapes: each tensor's full shape (None for an unknown
    size), elem_types its ONNX element type, where shape inference knows them."""
    model: onnx.ModelProto
    constants: dict[str, np.ndarray]
    shapes: dict[str, tuple[int | None, ...]]
    elem_types: dict[str, int]


def fold(loaded: Loaded) -> Folded:
    """Fold `loaded` at its input shape (see the module docstring)."""
    model, constants = loaded.model, loaded.weights
    _fix_input(model, loaded.input_name, loaded.input_shape)
    # Shapes come from onnx's inference, not from what the file declares for its tensors: a
    # wrong declaration would otherwise stand (the lenient inference keeps it), and a shape onnx
    # cannot infer is learnt by running the node (engine.onnx.importer).
    del model.graph.value_info[:]
    _bypass_pass_through(model.graph)
    stubs = loaded.stubs | _dequantise_constants(model, constants)
    _fold_weight_makers(model.graph, constants)
    if _foldable(model.graph, set(constants)):
        _materialise(model, constants, stubs)
        model = _fold_rounds(model, constants, loaded.label)
        for tensor in model.graph.initializer:
            if tensor.name not in constants:
                constants[tensor.name] = numpy_helper.to_array(tensor)
    _drop_dead(model.graph)
    inferred = _infer(model, loaded.label, strict=True)
    shapes, types = _shapes(inferred)
    return Folded(model, constants, shapes, types)


def _fix_input(model: onnx.ModelProto, name: str, shape: tuple[int, ...]) -> None:
    """The runtime input's sizes made concrete (a symbolic batch becomes its value), so Shape
    nodes fold."""
    for value in model.graph.input:
        if value.name == name:
            for dim, size in zip(value.type.tensor_type.shape.dim, shape):
                dim.Clear()
                dim.dim_value = size


def _bypass_pass_through(graph: onnx.GraphProto) -> None:
    """Remove Identity and Dropout nodes whose only used result is their input unchanged
    (training-mode Dropout was refused on load), renaming their readers' inputs."""
    outputs = {o.name for o in graph.output}
    read = {name for node in graph.node for name in node.input}
    rename: dict[str, str] = {}
    keep = []
    for node in graph.node:
        extra = any(o in read or o in outputs for o in node.output[1:] if o)
        if node.op_type in _PASS_THROUGH and node.domain in DOMAINS and node.input and \
                node.input[0] and not extra and node.output[0] not in outputs:
            rename[node.output[0]] = rename.get(node.input[0], node.input[0])
            continue
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
        keep.append(node)
    if len(keep) != len(graph.node):
        del graph.node[:]
        graph.node.extend(keep)


def _dequantise_constants(model: onnx.ModelProto,
                          constants: dict[str, np.ndarray]) -> frozenset[str]:
    """Compute DequantizeLinear nodes whose inputs are constants (quantised weights), which
    graphsurgeon never folds (it keeps Q/DQ pairs for TensorRT); their results become
    constants, stubs when large (their names are returned). Block-wise dequantisation
    (block_size) stays a node, and so an opaque one."""
    graph, keep, made = model.graph, [], {}
    for node in graph.node:
        names = [name for name in node.input if name]
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type != "DequantizeLinear" or node.domain not in DOMAINS or \
                attrs.get("block_size") or not all(name in constants for name in names):
            keep.append(node)
            continue
        x, scale = constants[node.input[0]], constants[node.input[1]]
        zero = constants[node.input[2]] if len(node.input) > 2 and node.input[2] else 0
        if np.ndim(scale) == 1 and np.size(scale) > 1:  # per-axis: along `axis` of x
            axis = int(attrs.get("axis", 1)) % x.ndim
            where = [1] * x.ndim
            where[axis] = -1
            scale = np.reshape(scale, where)
            zero = np.reshape(zero, where) if np.ndim(zero) else zero
        values = (x.astype(np.float32) - np.asarray(zero, np.float32)) * scale.astype(np.float32)
        made[node.output[0]] = values.astype(scale.dtype)
    return _replace_by_constants(graph, keep, made, constants)


def _replace_by_constants(graph: onnx.GraphProto, keep: list[onnx.NodeProto],
                          made: dict[str, np.ndarray],
                          constants: dict[str, np.ndarray]) -> frozenset[str]:
    """The graph's nodes become `keep`, and the tensors in `made` (computed from the nodes left
    out) join `constants`: small ones as initializers too, large ones as typed graph inputs
    standing for their values (stubs, as _stub_constants leaves them). Returns the stubs."""
    if not made:
        return frozenset()
    del graph.node[:]
    graph.node.extend(keep)
    for name, values in made.items():
        constants[name] = values
        if values.nbytes <= INLINE_BYTES:
            graph.initializer.append(numpy_helper.from_array(values, name))
        else:
            graph.input.append(onnx.helper.make_tensor_value_info(
                name, onnx.helper.np_dtype_to_tensor_dtype(values.dtype), values.shape))
    return frozenset(name for name, values in made.items() if values.nbytes > INLINE_BYTES)


_MADE_BY_NUMPY = 10**8
"""The most values a weight-making node is computed to here; a larger one is left to folding."""


def _fold_weight_makers(graph: onnx.GraphProto, constants: dict[str, np.ndarray]) -> None:
    """Compute with NumPy the nodes that only make weights from constants: ConstantOfShape and
    Unsqueeze, which weightless exports (onnx's light models: 1,078 of DenseNet-121's 1,746
    nodes) use for every weight. Exact, and without importing onnxslim and onnxruntime for a
    graph then left with nothing to fold: on the 2-core dev VM DenseNet-121 imports in 0.23 s
    instead of 1.17 s."""
    keep, made = [], {}
    for node in graph.node:
        result = _weight_maker(node, constants)
        if result is None:
            keep.append(node)
            continue
        constants[node.output[0]] = made[node.output[0]] = result
    _replace_by_constants(graph, keep, made, constants)


def _weight_maker(node: onnx.NodeProto, constants: dict[str, np.ndarray]) -> np.ndarray | None:
    """The node's one result when it is a ConstantOfShape or Unsqueeze of constants that ONNX
    defines, else None (the node is left to folding, which also reports what is wrong)."""
    names = list(node.input)
    if (node.domain not in DOMAINS or len(node.output) != 1 or not names
            or not all(name in constants for name in names)):
        return None
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if node.op_type == "ConstantOfShape" and len(names) == 1 and set(attrs) <= {"value"}:
        shape = constants[names[0]]
        value = numpy_helper.to_array(attrs["value"]) if "value" in attrs else np.zeros(1, np.float32)
        if (shape.ndim != 1 or shape.dtype != np.int64 or np.any(shape < 0) or value.size != 1
                or math.prod(int(d) for d in shape) > _MADE_BY_NUMPY):
            return None
        return np.full(tuple(int(d) for d in shape), value.reshape(()), value.dtype)
    if node.op_type == "Unsqueeze":
        if len(names) == 1 and set(attrs) == {"axes"}:  # opsets 1-12
            axes = list(attrs["axes"])
        elif len(names) == 2 and not attrs and constants[names[1]].ndim == 1:  # opset 13 on
            axes = [int(a) for a in constants[names[1]]]
        else:
            return None
        data = constants[names[0]]
        rank = data.ndim + len(axes)
        axes = [a + rank if a < 0 else a for a in axes]
        if sorted(set(axes)) != sorted(axes) or not all(0 <= a < rank for a in axes):
            return None
        return np.expand_dims(data, tuple(axes))
    return None


def _candidates(graph: onnx.GraphProto, constants: set[str]) -> Iterator[onnx.NodeProto]:
    """Nodes that may fold: default-domain, deterministic, reading only constants or the
    results of Shape/Size (whose input shapes may turn out static). An over-estimate: a
    candidate that does not fold merely costs graphsurgeon's pass."""
    known = set(constants)
    for node in graph.node:
        if node.domain not in DOMAINS or node.op_type in _RANDOM:
            continue
        if node.op_type in _SHAPE_OF or (
                any(node.input) and all(not name or name in known for name in node.input)):
            known.update(o for o in node.output if o)
            yield node


def _foldable(graph: onnx.GraphProto, constants: set[str]) -> bool:
    return next(_candidates(graph, constants), None) is not None


def _materialise(model: onnx.ModelProto, constants: dict[str, np.ndarray],
                 stubs: frozenset[str]) -> None:
    """Turn the stubs that feed a candidate back into initializers, so they can fold."""
    wanted = {name for node in _candidates(model.graph, set(constants)) for name in node.input}
    wanted &= stubs
    if not wanted:
        return
    inputs = [i for i in model.graph.input if i.name not in wanted]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    model.graph.initializer.extend(numpy_helper.from_array(constants[name], name)
                                   for name in sorted(wanted))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    import onnxruntime as ort
    from onnxslim.third_party.onnx_graphsurgeon.logger import G_LOGGER

    # onnxruntime's optimiser warns about the small graphs graphsurgeon evaluates, and logs an
    # error for each node it cannot evaluate, which folding expects and works around: fatal
    # errors only while folding. Its default logger has no getter; errors show again after.
    ort.set_default_logger_severity(4)
    severity = G_LOGGER.severity
    G_LOGGER.severity = G_LOGGER.CRITICAL
    try:
        yield
    finally:
        G_LOGGER.severity = severity
        ort.set_default_logger_severity(3)


def _fold_rounds(model: onnx.ModelProto, constants: dict[str, np.ndarray],
                 label: str) -> onnx.ModelProto:
    """graphsurgeon's folding and onnx's shape inference, in turns, until the graph is stable.

    After each round, large constants leave the model for `constants` (as stubs), so neither
    shape inference nor the export of the next round copies them."""
    import onnxslim.third_party.onnx_graphsurgeon as gs

    count = -1
    for _ in range(MAX_ROUNDS):
        if count == len(model.graph.node):
            break
        count = len(model.graph.node)
        model = _infer(model, label)
        with _quiet():
            graph = gs.import_onnx(model)
            graph.toposort().fold_constants(partitioning=None)
            if len(graph.cleanup().nodes) == count:
                # One node onnxruntime cannot evaluate stops a whole-graph fold: fold by parts.
                model = _fold_node_by_node(model, constants)
                graph = gs.import_onnx(model)
            graph.toposort()
            _stub_constants(gs, graph, constants)
            model = gs.export_onnx(graph)
    return model


def _fold_node_by_node(model: onnx.ModelProto,
                       constants: dict[str, np.ndarray]) -> onnx.ModelProto:
    """The model (shapes inferred) with each node that may fold evaluated on its own, in order,
    its results made constants; a node onnxruntime cannot evaluate stays, and so do the nodes
    that read it. A loop over the nodes: no recursion, whatever the graph's depth."""
    graph = model.graph
    values = dict(constants)
    values.update((t.name, numpy_helper.to_array(t)) for t in graph.initializer)
    static = {name: shape for name, shape in _shapes(model)[0].items() if None not in shape}
    keep, made = [], {}
    for node in graph.node:
        results = None
        if node.domain in DOMAINS and node.op_type not in _RANDOM:
            results = _evaluate(model, node, values, static)
        if results is None:
            keep.append(node)
            continue
        for name, result in zip(node.output, results):
            if name:
                values[name] = made[name] = result
    _replace_by_constants(graph, keep, made, constants)
    return model


def _evaluate(model: onnx.ModelProto, node: onnx.NodeProto, values: dict[str, np.ndarray],
              static: dict[str, tuple[int, ...]]) -> list[np.ndarray] | None:
    """The node's results when it reads only known values (or is Shape/Size of a tensor whose
    shape is static), else None; None too when onnxruntime cannot evaluate it."""
    import onnxruntime as ort

    names = [name for name in node.input if name]
    if node.op_type in _SHAPE_OF and names and names[0] not in values:
        shape = static.get(names[0])
        if shape is None:
            return None
        if node.op_type == "Size":
            return [np.array(math.prod(shape), np.int64)]
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        # ONNX clamps start and end to the rank, as Python's slices do.
        return [np.array(shape[attrs.get("start", 0):attrs.get("end", len(shape))], np.int64)]
    if not names or not all(name in values for name in names):
        return None
    inputs = [onnx.helper.make_tensor_value_info(
        name, onnx.helper.np_dtype_to_tensor_dtype(values[name].dtype), values[name].shape)
        for name in dict.fromkeys(names)]
    outputs = [onnx.ValueInfoProto(name=name) for name in node.output if name]
    single = onnx.helper.make_model(onnx.helper.make_graph([node], "fold", inputs, outputs),
                                    opset_imports=list(model.opset_import),
                                    ir_version=model.ir_version)
    options = ort.SessionOptions()
    options.log_severity_level = 4
    try:
        session = ort.InferenceSession(single.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        got = session.run(None, {name: values[name] for name in dict.fromkeys(names)})
    except Exception:  # onnxruntime's own error types: the node simply does not fold
        return None
    results = iter(got)
    return [next(results) if name else np.zeros(0) for name in node.output]


def _stub_constants(gs: Any, graph: Any, constants: dict[str, np.ndarray]) -> None:
    """Turn the graph's large constants into graph inputs, their values kept in `constants`."""
    for tensor in list(graph.tensors().values()):
        if not isinstance(tensor, gs.Constant) or tensor.name in graph.inputs:
            continue
        if tensor.name not in constants:
            if int(np.prod(tensor.shape, dtype=np.int64)) * np.dtype(tensor.dtype).itemsize \
                    <= INLINE_BYTES:
                continue
            constants[tensor.name] = np.asarray(tensor.values)
        elif constants[tensor.name].nbytes <= INLINE_BYTES:
            continue
        tensor.to_variable(dtype=tensor.dtype, shape=list(tensor.shape))
        graph.inputs.append(tensor)


def _drop_dead(graph: onnx.GraphProto) -> None:
    """Remove the nodes no graph output depends on."""
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output if o):
            needed.update(name for name in node.input if name)
            keep.append(node)
    if len(keep) != len(graph.node):
        del graph.node[:]
        graph.node.extend(reversed(keep))


def _infer(model: onnx.ModelProto, label: str, strict: bool = False) -> onnx.ModelProto:
    """The model with inferred shapes. strict: a node whose own inference fails is refused. Not
    a fault of the node, and then the lenient inference is kept: an input onnx cannot type (an
    old operator upstream), or a shape the file declares for a tensor that differs from the
    inferred one (onnxruntime merges such shapes leniently, and so does the lenient
    inference)."""
    try:
        return shape_inference.infer_shapes(model, strict_mode=strict, data_prop=True)
    except Exception as err:  # InferenceError and C++ errors surface as several types
        message = str(err) or repr(err)
    found = [m for line in message.splitlines() if (m := _NODE_ERROR.search(line))]
    faults = [m for m in found if not _NOT_A_FAULT.search(m.group(3))]
    if strict and found and not faults:
        return _infer(model, label)
    if not faults:
        raise FileFormatError(f"{label}: the model is inconsistent: onnx's shape inference "
                              f"fails ({excerpt(message)})")
    op, node, why = faults[0].groups()
    raise FileFormatError(f"{label}: {excerpt(op, 60)} node {shown(node)}: "
                          f"{excerpt(why.strip().rstrip('.'))}; no runtime can compute it as "
                          f"written: the file is damaged or was written wrongly, export the "
                          f"model again")


_NODE_ERROR = re.compile(r"\(op_type:([^,]*), node name: (.*?)\): (?:\[\w+\] )?(.*)")
_NOT_A_FAULT = re.compile(r"expected to have type but instead is null|"
                          r"Inferred shape and existing shape differ")


def _shapes(model: onnx.ModelProto) -> tuple[dict[str, tuple[int | None, ...]], dict[str, int]]:
    shapes, types = {}, {}
    graph = model.graph
    for value in [*graph.input, *graph.value_info, *graph.output]:
        if not value.type.HasField("tensor_type"):
            continue
        tensor = value.type.tensor_type
        types[value.name] = tensor.elem_type
        if tensor.HasField("shape"):
            shapes[value.name] = tuple(d.dim_value if d.HasField("dim_value") else None
                                       for d in tensor.shape.dim)
    return shapes, types
