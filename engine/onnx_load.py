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

Refused: missing, empty, truncated or non-ONNX files; files over the bounds of
engine.onnx_limits (nodes, name lengths, the weights' total size against the memory budget);
external data outside the model's folder, not a regular file, named ambiguously (a key given
twice) or with a NUL in its name; weights whose data does not fit their shape or that hold NaN
or infinity; attributes that hold NaN or infinity, that have no type or the wrong one, or a
required attribute missing (onnx's operator schemas say which); opsets newer than the installed
onnx knows; training-mode nodes; a graph with a cycle, a tensor written twice or read but never
written, or no output; anything but exactly one runtime input, typed float32, (N, C,
spatial...) with fixed sizes but for the batch.

External data is read from its size: the declared shape and type give the bytes a tensor needs,
checked against the entry's length, the file's size and the memory budget before any byte is
read. A hard-linked data file is read as any other file in the folder: its bytes only ever become
weights (numbers), and messages never show a file's contents.
"""
from __future__ import annotations

import heapq
import io
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import TensorProto, helper, numpy_helper, version_converter

from engine.onnx_limits import (WeightBudget, all_graphs, check_name, check_node_count,
                                check_size_and_names, excerpt, shown)
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
_MODEL_GRAPH, _GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE = 7, 1, 5, 15
_CHUNK = 1 << 24  # values checked for NaN at a time, so the check allocates little
_RESHAPE_INPUT_OPSET = 5  # before it, Reshape takes its target as an attribute
_PACKED_4BIT = {getattr(TensorProto, name) for name in ("INT4", "UINT4", "FLOAT4E2M1")
                if hasattr(TensorProto, name)}


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
    check_size_and_names(model.graph, label)
    opset = _default_opset(model, label)
    _check_attributes(model.graph, opset, label)
    _take_constant_nodes(model, weights, label)
    graph = model.graph
    runtime = [i for i in graph.input if i.name not in weights]
    # Old files list every initializer as a graph input too: those are constants, not inputs.
    del graph.input[:]
    graph.input.extend(runtime)
    input_name, input_shape = _runtime_input(graph, label)
    _check_order(graph, {**{name: "a weight" for name in weights},
                         input_name: "the graph's input"}, label)
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
        weights, budget = {}, WeightBudget(label)
        for tensor in source.graph.initializer:
            _check_external(tensor, label, None)
            check_name(tensor.name, "weight", label)
            values = _to_array(tensor, label)
            budget.take(tensor.name, values.nbytes)
            weights[tensor.name] = _checked(values, tensor, label)
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
    head, weights, budget, nodes = bytearray(), {}, WeightBudget(label), 0
    try:
        for number, wire, key_at, value_at in list(_fields(file, 0, size)):
            if number != _MODEL_GRAPH or wire != 2:
                head += _slice(file, key_at, _field_end(file, key_at))
                continue
            graph_end = _field_end(file, key_at)
            graph = bytearray()
            # Walked lazily (a graph may hold millions of fields); each step leaves the file at
            # the end of its field, where the walk goes on.
            for g_number, g_wire, g_key, g_value in _fields(file, value_at, graph_end):
                g_end = _field_end(file, g_key)
                if g_number == _GRAPH_INITIALIZER and g_wire == 2:
                    tensor = _stream_tensor(file, g_value, g_end, label, folder, budget)
                    weights[tensor[0]] = tensor[1]
                elif g_number == _GRAPH_SPARSE:
                    raise FileFormatError(f"{label} keeps sparse weights, which ConvScope cannot "
                                          f"read; export it with dense weights")
                else:
                    if g_number == _GRAPH_NODE:  # counted before protobuf parses them all
                        nodes += 1
                        check_node_count(nodes, label)
                    graph += _slice(file, g_key, g_end)
                file.seek(g_end)
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


def _stream_tensor(file: BinaryIO, start: int, end: int, label: str, folder: Path | None,
                   budget: WeightBudget) -> tuple[str, np.ndarray]:
    """(name, values) of the serialized TensorProto between start and end, its data read
    straight into the array when it is a plain array, once its declared size fits the budget."""
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
    check_name(tensor.name, "weight", label)
    if tensor.data_location == TensorProto.EXTERNAL:
        return tensor.name, _checked(_external_array(tensor, label, folder, budget), tensor, label)
    dtype = _PLAIN.get(tensor.data_type)
    plain = data is not None and dtype is not None and (
        data[0] == _RAW_DATA or (data[0] == _FLOAT_DATA and tensor.data_type == TensorProto.FLOAT)
        or (data[0] == _DOUBLE_DATA and tensor.data_type == TensorProto.DOUBLE))
    if plain:
        values = _read_array(file, data[1], data[2] - data[1], np.dtype(dtype), tensor, label,
                             budget)
    else:  # packed ints, strings, 4- and 8-bit types: protobuf and onnx decode them from the
        # file's own bytes, so their size is bounded by the file's
        whole = TensorProto()
        try:
            whole.ParseFromString(_slice(file, start, end))
        except (DecodeError, ValueError):
            raise _undecodable(label) from None
        values = _to_array(whole, label)
        budget.take(tensor.name, values.nbytes)
    return tensor.name, _checked(values, tensor, label)


def _dims(tensor: TensorProto, label: str) -> list[int]:
    """The tensor's dims; a negative one is damage."""
    if any(d < 0 for d in tensor.dims):
        raise _damaged(tensor, label, "a size is negative")
    return list(tensor.dims)


def _declared_bytes(tensor: TensorProto, label: str) -> int | None:
    """The bytes the tensor's values take by its dims and type (None for strings, whose size
    the dims do not tell)."""
    count = math.prod(_dims(tensor, label))  # Python ints: huge dims cannot wrap around
    if tensor.data_type in _PACKED_4BIT:
        return (count + 1) // 2
    try:
        dtype = helper.tensor_dtype_to_np_dtype(tensor.data_type)
    except (KeyError, ValueError, TypeError):
        raise _damaged(tensor, label, f"its element type {tensor.data_type} is unknown") from None
    return None if dtype.kind in "OSU" else count * dtype.itemsize


def _read_array(file: BinaryIO, offset: int, length: int, dtype: np.dtype, tensor: TensorProto,
                label: str, budget: WeightBudget) -> np.ndarray:
    """The array of `length` bytes at `offset`, shaped as the tensor; damaged when they differ,
    refused over the budget, both before anything is allocated."""
    count = math.prod(_dims(tensor, label))
    if length != count * dtype.itemsize:
        raise _damaged(tensor, label, f"{length:,} bytes for {count:,} values of "
                                      f"{dtype.itemsize} bytes")
    budget.take(tensor.name, length)
    # Read straight into the array: a bytearray would be zero-filled first, which held the
    # GIL for 0.4 s on a 553 MB model (and the UI thread with it).
    array = np.empty(count, dtype)
    file.seek(offset)
    if file.readinto(memoryview(array).cast("B")) != length:
        raise _Truncated()
    return array.reshape(tuple(tensor.dims))


def _to_array(tensor: TensorProto, label: str) -> np.ndarray:
    try:
        return numpy_helper.to_array(tensor)
    except (ValueError, TypeError, KeyError) as err:
        raise _damaged(tensor, label, excerpt(str(err))) from None


def _damaged(tensor: TensorProto, label: str, why: str) -> FileFormatError:
    dims = str(list(tensor.dims))
    dims = dims if len(dims) <= 80 else f"of {len(tensor.dims)} axes"
    return FileFormatError(f"{label}: the weight {shown(tensor.name)} is damaged: its data does "
                           f"not fit its shape {dims} ({why})")


def nonfinite_count(values: np.ndarray) -> int:
    """How many NaN or infinite values the array holds (0 for non-float arrays), counted a chunk
    at a time so the count allocates little."""
    if values.dtype.kind not in "fc":
        return 0
    flat = values.reshape(-1)
    return sum(int(flat[i:i + _CHUNK].size - np.count_nonzero(np.isfinite(flat[i:i + _CHUNK])))
               for i in range(0, flat.size, _CHUNK))


def _checked(values: np.ndarray, tensor: TensorProto, label: str) -> np.ndarray:
    """The values, refused when they hold NaN or infinity."""
    bad = nonfinite_count(values)
    if bad:
        raise FileFormatError(f"{label}: the weight {shown(tensor.name)} holds {bad:,} NaN or "
                              f"infinite value{'' if bad == 1 else 's'}; ConvScope opens only "
                              f"finite weights")
    return values


def _check_external(tensor: TensorProto, label: str, folder: Path | None) -> None:
    if tensor.data_location == TensorProto.EXTERNAL and folder is None:
        raise FileFormatError(f"{label} keeps its weights in external files; open it from its "
                              f"file on disk so they can be found")


def _external_array(tensor: TensorProto, label: str, folder: Path | None,
                    budget: WeightBudget) -> np.ndarray:
    """The tensor's values from its external file, which must be a regular file inside the
    model's folder; its size is checked (declared bytes, entry length, file size, budget)
    before any byte is read."""
    _check_external(tensor, label, folder)
    assert folder is not None
    where = f"{label}: the weight {shown(tensor.name)}"
    entries: dict[str, str] = {}
    for entry in tensor.external_data:
        if entry.key in entries:  # readers disagree on which one counts: refuse the ambiguity
            raise FileFormatError(f"{where} gives its external data's {shown(entry.key)} twice; "
                                  f"the file is damaged: export it again")
        entries[entry.key] = entry.value
    location = entries.get("location", "")
    if "\x00" in location:
        raise FileFormatError(f"{where} names the external data file {shown(location)}, which "
                              f"holds a NUL character that no file name can; the file is "
                              f"damaged: export it again")
    try:
        target = (folder / location).resolve()
    except (OSError, RuntimeError):  # a link loop
        raise FileFormatError(f"{where} names the external data file {shown(location)}, which "
                              f"cannot be followed (a loop of links); keep the data beside the "
                              f"model as a plain file") from None
    if not location or Path(location).is_absolute() or folder not in target.parents:
        raise FileFormatError(f"{where} points to {shown(location)}, outside the model's folder; "
                              f"refusing to read it (keep external data beside the model)")
    try:
        info = target.stat()
    except FileNotFoundError:
        raise FileFormatError(f"{where}: its external data file {shown(location)} is "
                              f"missing") from None
    except OSError as err:
        raise FileFormatError(f"{where}: cannot read its external data file {shown(location)}: "
                              f"{err.strerror or err}") from None
    if not stat.S_ISREG(info.st_mode):
        raise FileFormatError(f"{where}: its external data {shown(location)} is not a regular "
                              f"file; keep the data beside the model as a plain file")
    declared = _declared_bytes(tensor, label)
    offset = _entry_int(entries, "offset", tensor, label) or 0
    length = _entry_int(entries, "length", tensor, label)
    if length is None:
        length = declared or 0
    elif declared is not None and length != declared:
        raise _damaged(tensor, label, f"its external data is {length:,} bytes where its shape "
                                      f"and type take {declared:,}")
    if offset + length > info.st_size:
        raise _damaged(tensor, label, f"{shown(location)} is shorter than the {length:,} bytes "
                                      f"at offset {offset:,}")
    dtype = _PLAIN.get(tensor.data_type)
    with target.open("rb") as file:
        if dtype is not None:
            return _read_array(file, offset, length, np.dtype(dtype), tensor, label, budget)
        budget.take(tensor.name, length)
        file.seek(offset)
        whole = TensorProto()
        whole.CopyFrom(tensor)
        whole.ClearField("external_data")
        whole.data_location = TensorProto.DEFAULT
        whole.raw_data = file.read(length)
        return _to_array(whole, label)


def _entry_int(entries: dict[str, str], key: str, tensor: TensorProto, label: str) -> int | None:
    """An external-data entry's offset or length as a whole number of bytes, None when absent."""
    text = entries.get(key)
    if text is None or text == "":
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise _damaged(tensor, label, f"its external data {key} {shown(text)} is not a number "
                                      f"of bytes")
    return int(text)


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
    """The node's attributes by name, strings decoded (bytes that are not UTF-8 replaced, so
    they match no setting)."""
    values = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return {k: v.decode("utf-8", "replace") if isinstance(v, bytes) else v
            for k, v in values.items()}


def node_label(node: onnx.NodeProto) -> str:
    """How a node is named: its name, else its first output."""
    return node.name or (node.output[0] if node.output else node.op_type)


def node_shown(node: onnx.NodeProto) -> str:
    """The node's label as messages quote it (cut and escaped, engine.onnx_limits.shown)."""
    return shown(node_label(node))


def listed(nodes: list[onnx.NodeProto]) -> str:
    """At most three node names for the end of a message."""
    names = ", ".join(node_shown(n) for n in nodes[:3])
    return names + (f" and {len(nodes) - 3} more" if len(nodes) > 3 else "")


def _check_attributes(graph: onnx.GraphProto, opset: int, label: str) -> None:
    """Refuse attributes no reader can trust, in every graph: one without a type, or holding NaN
    or infinity (no setting can hold one, and ConvScope opens only finite weights); and, on the
    main graph's standard nodes, a required attribute missing or one of the wrong type, as
    onnx's operator schema at the file's opset says. Every import rule then reads well-formed
    attributes."""
    for current in all_graphs(graph):
        for node in current.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.UNDEFINED:
                    raise _bad_node(node, label, f"its attribute {shown(attr.name)} has no type")
                if _nonfinite_attribute(attr):
                    raise FileFormatError(
                        f"{label}: {excerpt(node.op_type, 60)} node {node_shown(node)}: its "
                        f"attribute {shown(attr.name)} holds NaN or infinity (a float32 "
                        f"attribute is infinite beyond 3.4e38); ConvScope opens only finite "
                        f"settings: fix the value where the model is made, then export it again")
    for node in graph.node:
        if node.domain not in DOMAINS:
            continue
        try:
            schema = onnx.defs.get_schema(node.op_type, opset, "")
        except onnx.defs.SchemaError:
            continue  # an operator onnx does not know: onnxruntime has the last word
        given = {attr.name: attr.type for attr in node.attribute}
        for name, wanted in schema.attributes.items():
            want = int(wanted.type.value)
            if name not in given and wanted.required:
                raise _bad_node(node, label, f"it has no {shown(name)} attribute, which "
                                             f"{node.op_type} requires")
            if name in given and given[name] != want:
                have = onnx.AttributeProto.AttributeType.Name(given[name])
                raise _bad_node(node, label, f"its attribute {shown(name)} is of type {have}, "
                                             f"but {node.op_type} takes "
                                             f"{onnx.AttributeProto.AttributeType.Name(want)}")


def _nonfinite_attribute(attr: onnx.AttributeProto) -> bool:
    if attr.type == onnx.AttributeProto.FLOAT:
        return not math.isfinite(attr.f)
    if attr.type == onnx.AttributeProto.FLOATS:
        return not all(math.isfinite(v) for v in attr.floats)
    if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_location != TensorProto.EXTERNAL:
        try:
            return nonfinite_count(numpy_helper.to_array(attr.t)) > 0
        except (ValueError, TypeError, KeyError):
            return False  # a damaged tensor: the reader that needs it refuses it
    return False


def _bad_node(node: onnx.NodeProto, label: str, why: str) -> FileFormatError:
    return FileFormatError(f"{label}: {excerpt(node.op_type, 60)} node {node_shown(node)}: {why}; "
                           f"the file is damaged or was written wrongly: export the model again")


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
        names = ", ".join(excerpt(i.name, 60) for i in inputs[:3]) + \
            (" ..." if len(inputs) > 3 else "")
        raise FileFormatError(f"{label}: a ConvScope network has one input, but the graph has "
                              f"{len(inputs)} ({names or 'none'})")
    value = inputs[0]
    tensor = value.type.tensor_type
    if not value.type.HasField("tensor_type") or tensor.elem_type != TensorProto.FLOAT:
        raise FileFormatError(f"{label}: the input {shown(value.name)} must be a float32 tensor "
                              f"(images, signals or volumes as 32-bit floats)")
    if not tensor.HasField("shape"):
        raise FileFormatError(f"{label}: the input {shown(value.name)} has no shape; export the "
                              f"model with a fixed input size")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    if not 2 <= len(dims) <= 5:
        raise FileFormatError(f"{label}: the input {shown(value.name)} has {len(dims)} axes; a "
                              f"network's input is (N, C, spatial...) with up to 3 spatial axes")
    if any(d is None or d < 1 for d in dims[1:]):
        text = "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"
        raise FileFormatError(f"{label}: the input {shown(value.name)} has sizes {text}; every "
                              f"axis but the batch must be fixed; export with a fixed input size")
    return value.name, (dims[0] or 1, *dims[1:])


def _check_order(graph: onnx.GraphProto, known: dict[str, str], label: str) -> None:
    """Sort the nodes of the graph and of every body it holds so each comes after what it reads,
    keeping the file's order where it allows (the earliest ready node first); refuse cycles,
    tensors written twice (or over the input or a weight), tensors nothing gives and a graph
    without outputs. `known`: the main graph's input and weights, each with what it is."""
    if not graph.output:
        raise FileFormatError(f"{label}: the graph has no outputs, so nothing would be computed; "
                              f"export the model with its output")
    producers = _sort_nodes(graph, known, label)
    nodes = list(graph.node)
    missing = [n for n in nodes if any(name and name not in producers and name not in known
                                       for name in n.input)]
    if missing:
        name = next(t for t in missing[0].input if t and t not in producers and t not in known)
        raise FileFormatError(f"{label}: a node reads the tensor {shown(name)}, which nothing in "
                              f"the file gives: {listed(missing)}")
    for value in graph.output:
        if value.name not in producers and value.name not in known:
            raise FileFormatError(f"{label}: the graph's output {shown(value.name)} is a tensor "
                                  f"that nothing in the file gives; the file is damaged: export "
                                  f"the model again")
    for body in all_graphs(graph):
        if body is not graph:
            _sort_nodes(body, {}, label)


def _sort_nodes(graph: onnx.GraphProto, written: dict[str, str], label: str) -> set[str]:
    """Put the graph's nodes in order (see _check_order) with a loop; returns the tensors its
    nodes write. Tensors read but written by no node of this graph come from outside it.
    `written`: tensors the graph already holds (its input and weights), which no node may
    write again, each with what it is."""
    nodes = list(graph.node)
    producers: dict[str, int] = {}
    for i, node in enumerate(nodes):
        for out in node.output:
            if not out:
                continue
            if out in producers or out in written:
                first = f"node {node_shown(nodes[producers[out]])}" if out in producers else \
                    written[out]
                raise FileFormatError(f"{label}: the tensor {shown(out)} is written twice, by "
                                      f"{first} and node {node_shown(node)}; each tensor of a "
                                      f"graph has one writer: the file is damaged")
            producers[out] = i
    reads = [{producers[name] for name in n.input if name in producers} for n in nodes]
    if all(j < i for i, sources in enumerate(reads) for j in sources):
        return set(producers)
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
    return set(producers)


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
