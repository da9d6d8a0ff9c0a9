"""Reading an ONNX file (or its bytes, or a ModelProto) with its weights held once.

A file is read by walking protobuf's wire format: the graph's nodes and other small fields are
parsed as usual, but each initializer's data is read straight into its NumPy array (raw_data,
float_data and double_data are plain little-endian arrays on disk), one tensor at a time, and
external data from its file the same way (engine.onnx.tensors). So the peak memory stays near
the file's size, where a protobuf parse of the whole file would hold the weights twice.

Refused here: missing, empty, truncated or non-ONNX files, sparse weights, external data when
the model comes as bytes, and what engine.onnx.tensors and engine.onnx.limits refuse (damaged
or non-finite weights, too many nodes, over-long names, weights past the memory budget).
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import TensorProto

from engine.onnx.limits import WeightBudget, check_name, check_node_count
from engine.onnx.tensors import (PLAIN, Truncated, check_external, checked_values, external_array,
                                 read_array, tensor_array)
from models.errors import FileFormatError
from models.pacing import pace

Source = str | os.PathLike | bytes | onnx.ModelProto
"""What a model is read from: a path, the file's bytes, or a ModelProto."""

_RAW_DATA, _FLOAT_DATA, _DOUBLE_DATA = 9, 4, 10  # TensorProto field numbers
_MODEL_GRAPH, _GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE = 7, 1, 5, 15


def read_model(source: Source) -> tuple[onnx.ModelProto, dict[str, np.ndarray], str]:
    """(the model without initializers, the initializers as arrays, the label)."""
    if isinstance(source, onnx.ModelProto):
        label = "the ONNX model"
        if not source.HasField("graph") or not source.opset_import:
            raise FileFormatError(f"{label} is not an ONNX model (it has no graph or no opset)")
        weights, budget = {}, WeightBudget(label)
        for tensor in source.graph.initializer:
            check_external(tensor, label, None)
            check_name(tensor.name, "weight", label)
            values = tensor_array(tensor, label)
            budget.take(tensor.name, values.nbytes)
            weights[tensor.name] = checked_values(values, tensor, label)
        return _without_initializers(source), weights, label
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise FileFormatError("the ONNX data is empty; it is not an ONNX model")
        return _scan(_Reader(io.BytesIO(bytes(source))), len(source), "the ONNX data", None)
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
            return _scan(_Reader(file), size, label, path.resolve().parent)
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


class _Reader:
    """A binary file and the position in it, counted here: BufferedReader.tell() asks the OS
    every time (75,000 lseek calls for a 1,500-node file), and each call lets go of the GIL and
    takes it straight back, which keeps a waiting UI thread from it (models.pacing)."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.pos = 0
        file.seek(0)

    def seek(self, pos: int) -> None:
        self.file.seek(pos)  # inside the file's buffer: no system call
        self.pos = pos

    def read(self, size: int) -> bytes:
        data = self.file.read(size)
        self.pos += len(data)
        return data

    def varint(self) -> int:
        value, shift = 0, 0
        while True:
            byte = self.file.read(1)
            if not byte:
                raise Truncated()
            self.pos += 1
            value |= (byte[0] & 0x7F) << shift
            if byte[0] < 0x80:
                return value
            shift += 7
            if shift > 63:
                raise Truncated()

    def skip_value(self, wire: int) -> None:
        """Move past the value of a field of this wire type, whose key was just read."""
        if wire == 0:
            self.varint()
        elif wire in (1, 5):
            self.seek(self.pos + (8 if wire == 1 else 4))
        elif wire == 2:
            length = self.varint()
            self.seek(self.pos + length)
        else:
            raise Truncated()


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _fields(file: _Reader, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, start of the field's key, start of its value) of each field
    between start and end; after each, the file stands at the end of that field's value."""
    file.seek(start)
    while file.pos < end:
        key_at = file.pos
        key = file.varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            file.varint()
            value_at = file.pos
        elif wire in (1, 5):
            value_at = file.pos
            file.seek(value_at + (8 if wire == 1 else 4))
        elif wire == 2:
            length = file.varint()
            value_at = file.pos
            file.seek(value_at + length)
        else:
            raise Truncated()
        if number == 0 or file.pos > end:
            raise Truncated()
        yield number, wire, key_at, value_at


def _scan(file: _Reader, size: int, label: str, folder: Path | None
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
                pace()
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
    except Truncated:
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


def _field_end(file: _Reader, key_at: int) -> int:
    """Where the field whose key starts at key_at ends (the file is left there)."""
    file.seek(key_at)
    file.skip_value(file.varint() & 7)
    return file.pos


def _slice(file: _Reader, start: int, end: int) -> bytes:
    file.seek(start)
    data = file.read(end - start)
    if len(data) != end - start:
        raise Truncated()
    return data


def _stream_tensor(file: _Reader, start: int, end: int, label: str, folder: Path | None,
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
        values = external_array(tensor, label, folder, budget)
        return tensor.name, checked_values(values, tensor, label)
    dtype = PLAIN.get(tensor.data_type)
    plain = data is not None and dtype is not None and (
        data[0] == _RAW_DATA or (data[0] == _FLOAT_DATA and tensor.data_type == TensorProto.FLOAT)
        or (data[0] == _DOUBLE_DATA and tensor.data_type == TensorProto.DOUBLE))
    if plain:
        values = read_array(file.file, data[1], data[2] - data[1], np.dtype(dtype), tensor,
                            label, budget)
    else:  # packed ints, strings, 4- and 8-bit types: protobuf and onnx decode them from the
        # file's own bytes, so their size is bounded by the file's
        whole = TensorProto()
        try:
            whole.ParseFromString(_slice(file, start, end))
        except (DecodeError, ValueError):
            raise _undecodable(label) from None
        values = tensor_array(whole, label)
        budget.take(tensor.name, values.nbytes)
    return tensor.name, checked_values(values, tensor, label)
