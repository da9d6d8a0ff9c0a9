"""Loading an ONNX file for import: read safely and with little memory (engine.onnx.wire),
refused where no ConvScope network can be (engine.onnx.checks, engine.onnx.limits), and old
files brought up to date (engine.onnx.legacy).

Only small constants (shapes, axes, scalars) go back into the model as initializers; larger
weights stand in the model as typed graph inputs (`Loaded.stubs`), so shape inference, the
version converter and constant folding never copy them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

from engine.onnx.checks import (check_attributes, check_order, default_opset, refuse_training,
                                runtime_input)
from engine.onnx.legacy import (PRELU_BROADCAST_OPSET, RESHAPE_INPUT_OPSET, TARGET_OPSET,
                                per_channel_slopes, reshape_shape_as_input, take_constant_nodes,
                                upgraded)
from engine.onnx.limits import check_size_and_names
from engine.onnx.scopes import weight_scopes
from engine.onnx.tensors import checked_values, tensor_array
from engine.onnx.wire import Source, read_model

__all__ = ["INLINE_BYTES", "Loaded", "Source", "TARGET_OPSET", "load"]

INLINE_BYTES = 4096
"""Constants up to this size stay in the model as initializers (shape inference reads them);
larger ones are stubs."""


@dataclass
class Loaded:
    """A model ready for folding: its graph (weights left out, see the module docstring), every
    constant by tensor name in its own dtype, the names of the stub graph inputs standing for
    large weights, the runtime input's name and full shape (a symbolic batch read as 1), the
    default-domain opset and the label messages name the file by."""
    model: onnx.ModelProto
    weights: dict[str, np.ndarray]
    stubs: frozenset[str]
    input_name: str
    input_shape: tuple[int, ...]
    opset: int
    label: str
    weight_scopes: dict[str, list[str]] = field(default_factory=dict)
    """Scopes read from weight names, for nodes whose names carry none (engine.onnx.scopes)."""


def load(source: Source) -> Loaded:
    """The model at `source` (a path, its bytes, or a ModelProto), checked and upgraded to
    TARGET_OPSET where onnx's converter can (else left at its own opset, whose rules the
    importers read). Raises FileFormatError, naming the file, for what engine.onnx.wire,
    engine.onnx.checks and engine.onnx.limits refuse."""
    model, weights, label = read_model(source)
    check_size_and_names(model.graph, label)
    opset = default_opset(model, label)
    check_attributes(model.graph, opset, label)
    take_constant_nodes(model, weights, label)
    graph = model.graph
    runtime = [i for i in graph.input if i.name not in weights]
    # Old files list every initializer as a graph input too: those are constants, not inputs.
    del graph.input[:]
    graph.input.extend(runtime)
    input_name, input_shape = runtime_input(graph, label)
    check_order(graph, {**{name: "a weight" for name in weights},
                        input_name: "the graph's input"}, label)
    refuse_training(graph, weights, opset, label)
    stubs = _stub_large(model, weights)
    if opset < PRELU_BROADCAST_OPSET:
        stubs |= _stub_large(model, per_channel_slopes(model, weights))
    model, opset = upgraded(model, opset)
    # The converter writes some new operands as Constant nodes (Dropout's ratio, Clip's bounds),
    # which become constants as the file's own did; others as initializers (Pad's pads), which
    # stay in the model and join the constants.
    before = set(weights)
    take_constant_nodes(model, weights, label)
    stubs |= _stub_large(model, {k: v for k, v in weights.items() if k not in before})
    for tensor in model.graph.initializer:
        if tensor.name not in weights:
            weights[tensor.name] = checked_values(tensor_array(tensor, label), tensor, label)
    if opset < RESHAPE_INPUT_OPSET:
        reshape_shape_as_input(model, weights)
    return Loaded(model, weights, stubs, input_name, input_shape, opset, label,
                  weight_scopes(model.graph, set(weights)))


def _stub_large(model: onnx.ModelProto, weights: dict[str, np.ndarray]) -> frozenset[str]:
    """Put small constants into the model as initializers and larger ones as typed inputs."""
    graph, stubs = model.graph, []
    used = {name for node in graph.node for name in node.input} | \
        {o.name for o in graph.output}
    for name, values in weights.items():
        if name not in used:
            continue
        if values.nbytes <= INLINE_BYTES:
            graph.initializer.append(numpy_helper.from_array(values, name))
        else:
            stubs.append(name)
            graph.input.append(helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(values.dtype), values.shape))
    # Initializers need not be graph inputs from IR 4 on; older files said they must.
    model.ir_version = max(model.ir_version, 4)
    return frozenset(stubs)
