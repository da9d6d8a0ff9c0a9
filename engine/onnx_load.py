"""Reading an ONNX file for import: loading it safely and with little memory, refusing what no
ConvScope network can be, and bringing old opsets up to date where onnx's version converter can.

Weights stream. A file (or bytes) is read by walking protobuf's wire format: the graph's nodes
and other small fields are parsed as usual, but each initializer's data is read straight into
its NumPy array (raw_data, float_data and double_data are plain little-endian arrays on disk),
one tensor at a time, and external data is read from its file the same way. So the weights
are held once, and the peak memory stays near the file's size (a protobuf parse of the whole
file would hold it twice). Only small constants (shapes, axes, scalars) go back into the model
as initializers; larger weights stand in the model as typed graph inputs (`Loaded.stubs`), so
shape inference, the version converter and constant folding never copy them.

Refused: missing, empty, truncated or non-ONNX files; external data outside the model's folder;
weights whose data does not fit their shape or that hold NaN or infinity; opsets newer than the
installed onnx knows; training-mode nodes; a graph with a cycle; anything but exactly one
runtime input, typed float32, (N, C, spatial...) with fixed sizes but for the batch.
"""
from __future__ import annotations

import heapq
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import TensorProto, helper, numpy_helper, version_converter

from models.errors import FileFormatError

TARGET_OPSET = 17
DOMAINS = ("", "ai.onnx")
INLINE_BYTES = 4096
"""Constants up to this size stay in the model as initializers (shape inference reads them);
larger ones are stubs."""

Source = str | os.PathLike | bytes | onnx.ModelProto

# TensorProto element types whose data on disk is a plain little-endian array.
_PLAIN = {TensorProto.FLOAT: "<f4", TensorProto.DOUBLE: "<f8", TensorProto.FLOAT16: "<f2",
          TensorProto.INT8: "i1", TensorProto.UINT8: "u1", TensorProto.INT16: "<i2",
          TensorProto.UINT16: "<u2", TensorProto.INT32: "<i4", TensorProto.UINT32: "<u4",
          TensorProto.INT64: "<i8", TensorProto.UINT64: "<u8", TensorProto.BOOL: "?"}
_RAW_DATA, _FLOAT_DATA, _DOUBLE_DATA = 9, 4, 10  # TensorProto field numbers
_MODEL_GRAPH, _GRAPH_INITIALIZER, _GRAPH_SPARSE = 7, 5, 15
_CHUNK = 1 << 24
_RESHAPE_INPUT_OPSET = 5  # before it, Reshape takes its target as an attribute  # values checked for NaN at a time, so the check allocates little


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


def load(source: Source) -> Loaded:
    """The model at `source` (a path, its bytes, or a ModelProto), checked and upgraded to
    TARGET_OPSET where onnx's converter can (else left at its own opset, whose rules the
    importers read). Raises FileFormatError, naming the file, for what the module refuses."""
    model, weights, label = _read(source)
    opset = _default_opset(model, label)
    _take_constant_nodes(model, weights, label)
    graph = model.graph
    runtime = [i for i in graph.input if i.name not in weights]
    # Old files list every initializer as a graph input too: those are constants, not inputs.
    del graph.input[:]
    graph.input.extend(runtime)
    input_name, input_shape = _runtime_input(graph, label)
    _check_order(graph, set(weights) | {input_name}, label)
    _refuse_training(graph, weights, opset, label)
    stubs = _stub_large(model, weights)
    model, opset = _upgraded(model, opset)
    # The converter writes some new operands (Dropout's ratio, Clip's bounds) as Constant nodes.
    before = set(weights)
    _take_constant_nodes(model, weights, label)
    stubs |= _stub_large(model, {k: v for k, v in weights.items() if k not in before})
    if opset < _RESHAPE_INPUT_OPSET:
        _reshape_shape_as_input(model, weights)
    return Loaded(model, weights, stubs, input_name, input_shape, opset, label)


# Reading ---------------------------------------------------------------------------------------

def _read(source: Source) -> tuple[onnx.ModelProto, dict[str, np.ndarray], str]:
    """(the model without initializers, the initializers as arrays, the label)."""
    if isinstance(source, onnx.ModelProto):
        label = "the ONNX model"
        if not source.HasField("graph") or not source.opset_import:
            raise FileFormatError(f"{label} is not an ONNX model (it has no graph or no opset)")
        weights = {}
        for tensor in source.graph.initializer:
            _check_external(tensor, label, None)
            weights[tensor.name] = _checked(_to_array(tensor, label), tensor, label)
        return _without_initializers(source), weights, label
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise FileFormatError("the ONNX data is empty; it is not an ONNX model")
        return _scan(io.BytesIO(bytes(source)), len(source), "the ONNX data", None)
    path = Path(source)
    label = path.name or str(path)
    if not path.exists():
        raise FileFormatError(f"{label}: no such file ({path})")
    if path.is_dir():
        raise FileFormatError(f"{label} is a folder, not an ONNX file")
    try:
        size = path.stat().st_size
        if not size:
            raise FileFormatError(f"{label} is empty; it is not an ONNX model")
        with path.open("rb") as file:
            return _scan(file, size, label, path.resolve().parent)
    except OSError as err:
        raise FileFormatError(f"cannot read {label}: {err.strerror or err}") from None


def _without_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    for field, value in model.ListFields():
        if field.name != "graph":
            _copy_field(out, field, value)
    for field, value in model.graph.ListFields():
        if field.name not in ("initializer", "sparse_initializer"):
            _copy_field(out.graph, field, value)
    return out


def _copy_field(target: Any, field: Any, value: Any) -> None:
    if field.is_repeated:
        getattr(target, field.name).extend(value)
    elif field.type == field.TYPE_MESSAGE:
        getattr(target, field.name).CopyFrom(value)
    else:
        setattr(target, field.name, value)


class _Truncated(Exception):
    """The wire data ends inside a field, or holds a field protobuf cannot have."""


def _varint(file: BinaryIO) -> int:
    value, shift = 0, 0
    while True:
        byte = file.read(1)
        if not byte:
            raise _Truncated()
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7
        if shift > 63:
            raise _Truncated()


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _fields(file: BinaryIO, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, start of the field's key, start of its value) of each field
    between start and end; after each, the file stands at the end of that field's value."""
    file.seek(start)
    while file.tell() < end:
        key_at = file.tell()
        key = _varint(file)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _varint(file)
            value_at = file.tell()
        elif wire in (1, 5):
            value_at = file.tell()
            file.seek(value_at + (8 if wire == 1 else 4))
        elif wire == 2:
            length = _varint(file)
            value_at = file.tell()
            file.seek(value_at + length)
        else:
            raise _Truncated()
        if number == 0 or file.tell() > end:
            raise _Truncated()
        yield number, wire, key_at, value_at


def _scan(file: BinaryIO, size: int, label: str, folder: Path | None
          ) -> tuple[onnx.ModelProto, dict[str, np.ndarray], str]:
    """Parse the model's small fields and stream its initializers into arrays (module doc)."""
    head, weights = bytearray(), {}
    try:
        for number, wire, key_at, value_at in list(_fields(file, 0, size)):
            if number != _MODEL_GRAPH or wire != 2:
                head += _slice(file, key_at, _field_end(file, key_at))
                continue
            graph_end = _field_end(file, key_at)
            graph = bytearray()
            for g_number, g_wire, g_key, g_value in list(_fields(file, value_at, graph_end)):
                g_end = _field_end(file, g_key)
                if g_number == _GRAPH_INITIALIZER and g_wire == 2:
                    tensor = _stream_tensor(file, g_value, g_end, label, folder)
                    weights[tensor[0]] = tensor[1]
                elif g_number == _GRAPH_SPARSE:
                    raise FileFormatError(f"{label} keeps sparse weights, which ConvScope cannot "
                                          f"read; export it with dense weights")
                else:
                    graph += _slice(file, g_key, g_end)
            head += _encode_varint(_MODEL_GRAPH << 3 | 2) + _encode_varint(len(graph)) + graph
    except _Truncated:
        raise _undecodable(label) from None
    model = onnx.ModelProto()
    try:
        model.ParseFromString(bytes(head))
    except (DecodeError, ValueError):
        raise _undecodable(label) from None
    if not model.HasField("graph") or not model.opset_import:
        raise FileFormatError(f"{label} is not an ONNX model (it has no graph or no opset)")
    return model, weights, label


def _undecodable(label: str) -> FileFormatError:
    return FileFormatError(f"{label} is not an ONNX model, or it is truncated (it cannot be "
                           f"decoded); export it again")


def _field_end(file: BinaryIO, key_at: int) -> int:
    """Where the field whose key starts at key_at ends (the file is left there)."""
    file.seek(key_at)
    key = _varint(file)
    wire = key & 7
    if wire == 0:
        _varint(file)
    elif wire in (1, 5):
        file.seek(file.tell() + (8 if wire == 1 else 4))
    else:
        length = _varint(file)
        file.seek(file.tell() + length)
    return file.tell()


def _slice(file: BinaryIO, start: int, end: int) -> bytes:
    file.seek(start)
    data = file.read(end - start)
    if len(data) != end - start:
        raise _Truncated()
    return data


def _stream_tensor(file: BinaryIO, start: int, end: int, label: str, folder: Path | None
                   ) -> tuple[str, np.ndarray]:
    """(name, values) of the serialized TensorProto between start and end, its data read
    straight into the array when it is a plain array."""
    header, data = bytearray(), None
    for number, wire, key_at, value_at in list(_fields(file, start, end)):
        field_end = _field_end(file, key_at)
        if number in (_RAW_DATA, _FLOAT_DATA, _DOUBLE_DATA) and wire == 2 and data is None:
            data = (number, value_at, field_end)
        else:
            header += _slice(file, key_at, field_end)
    tensor = TensorProto()
    try:
        tensor.ParseFromString(bytes(header))
    except (DecodeError, ValueError):
        raise _undecodable(label) from None
    if tensor.data_location == TensorProto.EXTERNAL:
        return tensor.name, _checked(_external_array(tensor, label, folder), tensor, label)
    dtype = _PLAIN.get(tensor.data_type)
    plain = data is not None and dtype is not None and (
        data[0] == _RAW_DATA or (data[0] == _FLOAT_DATA and tensor.data_type == TensorProto.FLOAT)
        or (data[0] == _DOUBLE_DATA and tensor.data_type == TensorProto.DOUBLE))
    if plain:
        values = _read_array(file, data[1], data[2] - data[1], np.dtype(dtype), tensor, label)
    else:  # packed ints, strings, 4- and 8-bit types: protobuf and onnx decode them
        whole = TensorProto()
        try:
            whole.ParseFromString(_slice(file, start, end))
        except (DecodeError, ValueError):
            raise _undecodable(label) from None
        values = _to_array(whole, label)
    return tensor.name, _checked(values, tensor, label)


def _read_array(file: BinaryIO, offset: int, length: int, dtype: np.dtype, tensor: TensorProto,
                label: str) -> np.ndarray:
    """The array of `length` bytes at `offset`, shaped as the tensor; damaged when they differ."""
    count = int(np.prod(tensor.dims, dtype=np.int64))
    if length != count * dtype.itemsize:
        raise _damaged(tensor, label, f"{length:,} bytes for {count:,} values of "
                                      f"{dtype.itemsize} bytes")
    buffer = bytearray(length)
    file.seek(offset)
    if file.readinto(buffer) != length:
        raise _Truncated()
    return np.frombuffer(buffer, dtype).reshape(tuple(tensor.dims))


def _to_array(tensor: TensorProto, label: str) -> np.ndarray:
    try:
        return numpy_helper.to_array(tensor)
    except (ValueError, TypeError, KeyError) as err:
        raise _damaged(tensor, label, str(err)) from None


def _damaged(tensor: TensorProto, label: str, why: str) -> FileFormatError:
    return FileFormatError(f"{label}: the weight {tensor.name!r} is damaged: its data does not "
                           f"fit its shape {list(tensor.dims)} ({why})")


def _checked(values: np.ndarray, tensor: TensorProto, label: str) -> np.ndarray:
    """The values, refused when they hold NaN or infinity (checked a chunk at a time)."""
    if values.dtype.kind in "fc":
        flat = values.reshape(-1)
        bad = sum(int(flat[i:i + _CHUNK].size - np.count_nonzero(np.isfinite(flat[i:i + _CHUNK])))
                  for i in range(0, flat.size, _CHUNK))
        if bad:
            raise FileFormatError(f"{label}: the weight {tensor.name!r} holds {bad:,} NaN or "
                                  f"infinite value{'' if bad == 1 else 's'}; ConvScope opens "
                                  f"only finite weights")
    return values


def _check_external(tensor: TensorProto, label: str, folder: Path | None) -> None:
    if tensor.data_location == TensorProto.EXTERNAL and folder is None:
        raise FileFormatError(f"{label} keeps its weights in external files; open it from its "
                              f"file on disk so they can be found")


def _external_array(tensor: TensorProto, label: str, folder: Path | None) -> np.ndarray:
    """The tensor's values from its external file, which must lie inside the model's folder."""
    _check_external(tensor, label, folder)
    entries = {e.key: e.value for e in tensor.external_data}
    location = entries.get("location", "")
    target = (folder / location).resolve()
    if not location or Path(location).is_absolute() or folder not in target.parents:
        raise FileFormatError(f"{label}: the weights {tensor.name!r} point to {location!r}, "
                              f"outside the model's folder; refusing to read them (keep "
                              f"external data beside the model)")
    if not target.is_file():
        raise FileFormatError(f"{label}: the external data file {location!r} of "
                              f"{tensor.name!r} is missing")
    dtype = _PLAIN.get(tensor.data_type)
    count = int(np.prod(tensor.dims, dtype=np.int64))
    offset = int(entries.get("offset", 0) or 0)
    itemsize = np.dtype(dtype).itemsize if dtype else 0
    length = int(entries.get("length", 0) or 0) or count * itemsize
    if offset + length > target.stat().st_size:
        raise _damaged(tensor, label, f"{location!r} is shorter than the {length:,} bytes at "
                                      f"offset {offset:,}")
    with target.open("rb") as file:
        if dtype is not None:
            return _read_array(file, offset, length, np.dtype(dtype), tensor, label)
        file.seek(offset)
        whole = TensorProto()
        whole.CopyFrom(tensor)
        whole.ClearField("external_data")
        whole.data_location = TensorProto.DEFAULT
        whole.raw_data = file.read(length)
        return _to_array(whole, label)


# Checks ----------------------------------------------------------------------------------------

def _default_opset(model: onnx.ModelProto, label: str) -> int:
    newest = onnx.defs.onnx_opset_version()
    for entry in model.opset_import:
        if entry.domain in DOMAINS:
            if entry.version > newest:
                raise FileFormatError(f"{label} uses ONNX opset {entry.version}, newer than the "
                                      f"{newest} the installed onnx package knows; update onnx "
                                      f"or export the model at opset {newest} or lower")
            return int(entry.version)
    raise FileFormatError(f"{label} imports no standard ONNX opset")


def node_attributes(node: onnx.NodeProto) -> dict[str, Any]:
    """The node's attributes by name, strings decoded."""
    values = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in values.items()}


def node_label(node: onnx.NodeProto) -> str:
    """How messages name a node: its name, else its first output."""
    return node.name or (node.output[0] if node.output else node.op_type)


def listed(nodes: list[onnx.NodeProto]) -> str:
    """At most three node names for the end of a message."""
    names = ", ".join(repr(node_label(n)) for n in nodes[:3])
    return names + (f" and {len(nodes) - 3} more" if len(nodes) > 3 else "")


def _take_constant_nodes(model: onnx.ModelProto, weights: dict[str, np.ndarray],
                         label: str) -> None:
    """Move the values of Constant nodes into weights (old exporters kept weights so)."""
    keep = []
    for node in model.graph.node:
        value = _constant_value(node, label) if node.op_type == "Constant" and \
            node.domain in DOMAINS and len(node.output) == 1 else None
        if value is None:
            keep.append(node)
        else:
            weights[node.output[0]] = value
    if len(keep) != len(model.graph.node):
        del model.graph.node[:]
        model.graph.node.extend(keep)


def _constant_value(node: onnx.NodeProto, label: str) -> np.ndarray | None:
    for attr in node.attribute:
        if attr.name == "value":
            tensor = attr.t
            if tensor.data_location == TensorProto.EXTERNAL:
                return None  # left to the folder; external Constant values are unheard of
            return _checked(_to_array(tensor, label), tensor, label)
        if attr.name in ("value_float", "value_int", "value_floats", "value_ints"):
            value = np.asarray(helper.get_attribute_value(attr))
            return value.astype(np.float32 if attr.name.startswith("value_float") else np.int64)
    return None


def _runtime_input(graph: onnx.GraphProto, label: str) -> tuple[str, tuple[int, ...]]:
    """The one runtime input's name and full shape (a symbolic batch read as 1)."""
    inputs = list(graph.input)
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs[:3]) + (" ..." if len(inputs) > 3 else "")
        raise FileFormatError(f"{label}: a ConvScope network has one input, but the graph has "
                              f"{len(inputs)} ({names or 'none'})")
    value = inputs[0]
    tensor = value.type.tensor_type
    if not value.type.HasField("tensor_type") or tensor.elem_type != TensorProto.FLOAT:
        raise FileFormatError(f"{label}: the input {value.name!r} must be a float32 tensor "
                              f"(images, signals or volumes as 32-bit floats)")
    if not tensor.HasField("shape"):
        raise FileFormatError(f"{label}: the input {value.name!r} has no shape; export the "
                              f"model with a fixed input size")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    if not 2 <= len(dims) <= 5:
        raise FileFormatError(f"{label}: the input {value.name!r} has {len(dims)} axes; a "
                              f"network's input is (N, C, spatial...) with up to 3 spatial axes")
    if any(d is None or d < 1 for d in dims[1:]):
        text = "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"
        raise FileFormatError(f"{label}: the input {value.name!r} has sizes {text}; every "
                              f"axis but the batch must be fixed; export with a fixed input size")
    return value.name, (dims[0] or 1, *dims[1:])


def _check_order(graph: onnx.GraphProto, known: set[str], label: str) -> None:
    """Sort the nodes so each comes after what it reads, keeping the file's order where it
    allows (the earliest ready node first); refuse cycles and tensors nothing gives."""
    nodes = list(graph.node)
    producers = {out: i for i, node in enumerate(nodes) for out in node.output if out}
    missing = [n for n in nodes if any(name and name not in producers and name not in known
                                       for name in n.input)]
    if missing:
        name = next(t for t in missing[0].input if t and t not in producers and t not in known)
        raise FileFormatError(f"{label}: a node reads the tensor {name!r}, which nothing in the "
                              f"file gives: {listed(missing)}")
    reads = [{producers[name] for name in n.input if name in producers} for n in nodes]
    if all(j < i for i, sources in enumerate(reads) for j in sources):
        return
    waiting = [len(sources) for sources in reads]
    readers: dict[int, list[int]] = {}
    for i, sources in enumerate(reads):
        for j in sources:
            readers.setdefault(j, []).append(i)
    ready = [i for i, count in enumerate(waiting) if not count]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in readers.get(i, ()):
            waiting[j] -= 1
            if not waiting[j]:
                heapq.heappush(ready, j)
    if len(order) != len(nodes):
        stuck = [nodes[i] for i, count in enumerate(waiting) if count]
        raise FileFormatError(f"{label}: the graph has a cycle (nodes that read their own "
                              f"results), which no network can compute: {listed(stuck)}")
    del graph.node[:]
    graph.node.extend(nodes[i] for i in order)


def _refuse_training(graph: onnx.GraphProto, weights: dict[str, np.ndarray], opset: int,
                     label: str) -> None:
    """Training-mode Dropout and BatchNormalization compute something no layer does (checked on
    the original graph: the version converter drops the old is_test flags)."""
    for node in graph.node:
        if node.domain not in DOMAINS or node.op_type not in ("Dropout", "BatchNormalization"):
            continue
        attrs = node_attributes(node)
        what = "dropout" if node.op_type == "Dropout" else "batch normalisation"
        training = attrs.get("is_test", 1) == 0 or bool(attrs.get("training_mode", 0))
        if node.op_type == "Dropout" and opset >= 12 and len(node.input) > 2 and node.input[2]:
            mode = weights.get(node.input[2])
            training = training or mode is None or bool(np.asarray(mode).any())
        if training:
            raise FileFormatError(f"{label}: a {what} runs in training mode (it would draw or "
                                  f"learn at every run); export the model in evaluation mode: "
                                  f"{listed([node])}")


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


def _reshape_shape_as_input(model: onnx.ModelProto, weights: dict[str, np.ndarray]) -> None:
    """Give pre-opset-5 Reshapes (left so when the converter failed) their target as a
    constant input, the form the import rules read."""
    for node in model.graph.node:
        attrs = node_attributes(node)
        if node.op_type != "Reshape" or node.domain not in DOMAINS or "shape" not in attrs:
            continue
        name = f"{node_label(node)}/shape"
        weights[name] = np.asarray(attrs["shape"], np.int64)
        model.graph.initializer.append(numpy_helper.from_array(weights[name], name))
        kept = [a for a in node.attribute if a.name != "shape"]
        del node.attribute[:]
        node.attribute.extend(kept)
        node.input.append(name)


def _upgraded(model: onnx.ModelProto, opset: int) -> tuple[onnx.ModelProto, int]:
    """The model at TARGET_OPSET when onnx's converter can bring it there, else as it is."""
    if opset >= TARGET_OPSET:
        return model, opset
    try:
        return version_converter.convert_version(model, TARGET_OPSET), TARGET_OPSET
    except Exception:  # the converter raises bare RuntimeErrors and more for ops it cannot adapt
        return model, opset
