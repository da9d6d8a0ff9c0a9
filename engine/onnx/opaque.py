"""Opaque nodes (models.layers.opaque): made from an ONNX node on import, computed by
onnxruntime on the CPU, written back unchanged on export.

The engine is float32 throughout: an opaque node's inputs are cast to the element types the
node reads (an index tensor computed by an earlier opaque node travels as float32, exact up to
2**24) and its result is returned as float32. One onnxruntime session per distinct spec is kept
(an LRU cache keyed by the spec, a frozen value), with the weights fed as inputs, so a session
never holds a copy of them.
"""
from __future__ import annotations

import base64
import functools
from typing import Mapping, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from engine.onnx.registry import Imported, Writer, exports
from models.errors import ConfigError
from models.layers.base import LayerInfo
from models.layers.opaque import Opaque

OUTPUT = "y"
SESSIONS_KEPT = 64
Weights = Mapping[str, np.ndarray]


def runtime_name(index: int) -> str:
    return f"x{index}"


def constant_key(position: int) -> str:
    """The weight key of the node's input at `position` when it is a constant."""
    return f"in{position}"


def opaque_node(node: onnx.NodeProto, runtime: Sequence[str], constants: Mapping[str, np.ndarray],
                input_shapes: Sequence[tuple[int, ...]], elem_types: Mapping[str, int],
                output_index: int, output_shape: tuple[int, ...],
                opsets: Sequence[tuple[str, int]], reason: str) -> Imported:
    """The Opaque layer for `node`: runtime lists its distinct runtime input tensors (their
    sample shapes in input_shapes), constants gives the value of every constant input by tensor
    name, elem_types the element type of tensors by name, output_index the one output used
    (sample shape output_shape)."""
    inner = onnx.NodeProto()
    inner.CopyFrom(node)
    del inner.input[:], inner.output[:]
    graph = onnx.GraphProto(name="opaque")
    weights: dict[str, np.ndarray] = {}
    shapes: list[tuple[str, tuple[int, ...]]] = []
    for position, name in enumerate(node.input):
        if not name:
            inner.input.append("")
        elif name in constants:
            key, value = constant_key(position), np.asarray(constants[name])
            inner.input.append(key)
            if value.dtype.kind == "f":
                weights[key] = value.astype(np.float32)
                shapes.append((key, tuple(value.shape)))
                graph.value_info.append(helper.make_tensor_value_info(
                    key, helper.np_dtype_to_tensor_dtype(value.dtype), value.shape))
            else:
                graph.initializer.append(numpy_helper.from_array(value, key))
        else:
            inner.input.append(runtime_name(list(runtime).index(name)))
    for k, name in enumerate(node.output):
        inner.output.append(OUTPUT if k == output_index else f"unused{k}" if name else "")
    for j, (name, shape) in enumerate(zip(runtime, input_shapes)):
        graph.input.append(helper.make_tensor_value_info(
            runtime_name(j), elem_types.get(name, TensorProto.FLOAT), ["N", *shape]))
    out_type = elem_types.get(node.output[output_index])
    # An output onnx cannot type (a contrib op's) stays untyped: onnxruntime types it.
    graph.output.append(onnx.ValueInfoProto(name=OUTPUT) if out_type is None else
                        helper.make_tensor_value_info(OUTPUT, out_type, None))
    graph.node.append(inner)
    spec = Opaque(op_type=node.op_type, domain=node.domain, opsets=tuple(opsets),
                  node=base64.b64encode(graph.SerializeToString()).decode("ascii"),
                  input_shapes=tuple(tuple(s) for s in input_shapes),
                  output_shape=tuple(output_shape), constants=tuple(shapes), reason=reason)
    return Imported(spec, weights, tuple(runtime))


def graph_of(spec: Opaque) -> onnx.GraphProto:
    """The spec's node, its typed inputs and its non-float constants (see Opaque.node)."""
    graph = onnx.GraphProto()
    graph.ParseFromString(base64.b64decode(spec.node))
    return graph


def _ir_version(opsets: Sequence[tuple[str, int]]) -> int:
    default = [helper.make_opsetid(d, v) for d, v in opsets if d in ("", "ai.onnx")]
    return helper.find_min_ir_version_for(default, ignore_unknown=True)


@functools.lru_cache(maxsize=SESSIONS_KEPT)
def _session(spec: Opaque) -> tuple[object, list[tuple[str, np.dtype]]]:
    """(the onnxruntime session computing the node, its inputs' names and dtypes)."""
    import onnxruntime as ort

    graph = graph_of(spec)
    for info in graph.value_info:  # weights are fed as inputs: the session holds no copy
        graph.input.append(info)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v)
                                                    for d, v in spec.opsets],
                              ir_version=_ir_version(spec.opsets))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    dtypes = [(value.name, helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))
              for value in graph.input]
    return session, dtypes


def prepare(spec: Opaque) -> None:
    """Build (and keep) the node's onnxruntime session; raises onnxruntime's error when the
    operator cannot run there."""
    _session(spec)


def run_opaque(spec: Opaque, weights: Weights, *xs: np.ndarray) -> np.ndarray:
    """The node's result for its runtime inputs (batch first), as float32.

    Raises RuntimeError-like onnxruntime errors when the operator cannot run."""
    session, dtypes = _session(spec)
    arrays = {runtime_name(j): x for j, x in enumerate(xs)}
    arrays.update(weights)
    feeds = {name: np.asarray(arrays[name], dtype) for name, dtype in dtypes}
    (out,) = session.run([OUTPUT], feeds)  # type: ignore[attr-defined]
    return np.ascontiguousarray(out, dtype=np.float32)


def _required_results(node: onnx.NodeProto, opsets: Mapping[str, int]) -> int:
    """How many results the operator must write (1 where onnx does not know the operator)."""
    try:
        schema = onnx.defs.get_schema(node.op_type, opsets.get(node.domain, 1), node.domain)
    except onnx.defs.SchemaError:
        return 1
    optional = onnx.defs.OpSchema.FormalParameterOption.Optional
    return max(1, sum(1 for out in schema.outputs if out.option != optional))


@exports(Opaque)
def _export_opaque(w: Writer, spec: Opaque, info: LayerInfo, weights: Weights, prefix: str,
                   inputs: list[str], out: str) -> str:
    """The node as it was imported, its constants as initializers named f"{prefix}in<i>"."""
    graph = graph_of(spec)
    node = graph.node[0]
    results = max(_required_results(node, dict(spec.opsets)), len(node.output))
    # Results nothing reads keep a name, as operators such as TopK must write them all.
    outputs = [out if name == OUTPUT else f"{out}/result{k}" if name or k < results else ""
               for k, name in enumerate(list(node.output) + [""] * (results - len(node.output)))]
    float_types = {v.name: v.type.tensor_type.elem_type for v in graph.value_info}
    fixed = {t.name: t for t in graph.initializer}
    names = []
    for name in node.input:
        if not name:
            names.append("")
        elif name in float_types:
            written = w.weight(f"{prefix}{name}", weights[name])
            if float_types[name] != TensorProto.FLOAT:
                written = w.node("Cast", [written], f"{out}/{name}", weights[name].shape,
                                 to=float_types[name])
            names.append(written)
        elif name in fixed:
            value = numpy_helper.to_array(fixed[name])
            written = w.int64(f"{prefix}{name}", value.astype(np.int64))
            if fixed[name].data_type != TensorProto.INT64:
                written = w.node("Cast", [written], f"{out}/{name}", value.shape,
                                 to=fixed[name].data_type)
            names.append(written)
        else:
            names.append(inputs[int(name[1:])])
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    for domain, version in spec.opsets:
        w.use_opset(domain, version)
    return w.node(node.op_type, names, out, info.output_shape, domain=node.domain,
                  outputs=outputs, **attrs)
