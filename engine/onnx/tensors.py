"""A weight's values, read and checked: a tensor's data as an array (plain arrays read straight
from the file into place, other types decoded by onnx), sized before any byte is read, and
refused when damaged (data that does not fit the shape, a negative or unknown size) or not
finite.

External data is read from its size: the declared shape and type give the bytes a tensor needs,
checked against the entry's length, the file's size and the memory budget before any byte is
read. The data file must be a regular file inside the model's folder, named without a NUL and
with no key given twice. A hard-linked data file is read as any other file in the folder: its
bytes only ever become weights (numbers), and messages never show a file's contents.
"""
from __future__ import annotations

import math
import stat
from pathlib import Path
from typing import BinaryIO

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from engine.onnx.limits import WeightBudget, excerpt, shown
from models.errors import FileFormatError

# TensorProto element types whose data on disk is a plain little-endian array.
PLAIN = {TensorProto.FLOAT: "<f4", TensorProto.DOUBLE: "<f8", TensorProto.FLOAT16: "<f2",
         TensorProto.INT8: "i1", TensorProto.UINT8: "u1", TensorProto.INT16: "<i2",
         TensorProto.UINT16: "<u2", TensorProto.INT32: "<i4", TensorProto.UINT32: "<u4",
         TensorProto.INT64: "<i8", TensorProto.UINT64: "<u8", TensorProto.BOOL: "?"}
_CHUNK = 1 << 24  # values checked for NaN at a time, so the check allocates little
_PACKED_4BIT = {getattr(TensorProto, name) for name in ("INT4", "UINT4", "FLOAT4E2M1")
                if hasattr(TensorProto, name)}


class Truncated(Exception):
    """The data ends before the bytes a field (or a tensor) says it holds, or holds a field
    protobuf cannot have."""


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


def read_array(file: BinaryIO, offset: int, length: int, dtype: np.dtype, tensor: TensorProto,
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
        raise Truncated()
    return array.reshape(tuple(tensor.dims))


def tensor_array(tensor: TensorProto, label: str) -> np.ndarray:
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


def checked_values(values: np.ndarray, tensor: TensorProto, label: str) -> np.ndarray:
    """The values, refused when they hold NaN or infinity."""
    bad = nonfinite_count(values)
    if bad:
        raise FileFormatError(f"{label}: the weight {shown(tensor.name)} holds {bad:,} NaN or "
                              f"infinite value{'' if bad == 1 else 's'}; ConvScope opens only "
                              f"finite weights")
    return values


def check_external(tensor: TensorProto, label: str, folder: Path | None) -> None:
    if tensor.data_location == TensorProto.EXTERNAL and folder is None:
        raise FileFormatError(f"{label} keeps its weights in external files; open it from its "
                              f"file on disk so they can be found")


def external_array(tensor: TensorProto, label: str, folder: Path | None,
                   budget: WeightBudget) -> np.ndarray:
    """The tensor's values from its external file, which must be a regular file inside the
    model's folder; its size is checked (declared bytes, entry length, file size, budget)
    before any byte is read."""
    check_external(tensor, label, folder)
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
    dtype = PLAIN.get(tensor.data_type)
    with target.open("rb") as file:
        if dtype is not None:
            return read_array(file, offset, length, np.dtype(dtype), tensor, label, budget)
        budget.take(tensor.name, length)
        file.seek(offset)
        whole = TensorProto()
        whole.CopyFrom(tensor)
        whole.ClearField("external_data")
        whole.data_location = TensorProto.DEFAULT
        whole.raw_data = file.read(length)
        return tensor_array(whole, label)


def _entry_int(entries: dict[str, str], key: str, tensor: TensorProto, label: str) -> int | None:
    """An external-data entry's offset or length as a whole number of bytes, None when absent."""
    text = entries.get(key)
    if text is None or text == "":
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise _damaged(tensor, label, f"its external data {key} {shown(text)} is not a number "
                                      f"of bytes")
    return int(text)
