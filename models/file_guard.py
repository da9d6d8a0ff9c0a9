"""Opening a file the person chose, so that no file can hang, flood or fool the reader.

Every input and weight file goes through `open_regular`, which refuses, before reading a byte:
what is not a regular file (a folder, a named pipe that would block until something writes to it,
a device such as /dev/zero that never ends, a socket), an empty file (the pseudo-files of /proc
report no size and would pour out their contents), and a file over the caller's byte cap.
It opens with O_NONBLOCK, so a file swapped for a pipe after the check cannot block either.

`.npy` arrays are read here too, header first: the caller checks the shape and the kind of
numbers against its own limits before `read_npy_values` reads exactly the bytes the header
promises, converting them to float32 a chunk at a time (memory: the result plus one chunk).

Messages name the file (its name only, as models.errors.display_name shows it) and never quote
its contents: a parser's own message can hold a piece of the file (a token, a header field),
so it is never passed on.
"""
from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from tokenize import TokenError
from typing import BinaryIO

import numpy as np

from models.errors import FileFormatError, display_name

CHUNK_BYTES = 1 << 20
"""Bytes of a .npy file read and converted at a time: the reader's memory beyond its result."""
_KINDS_OF = {stat.S_ISFIFO: "a named pipe", stat.S_ISCHR: "a device", stat.S_ISBLK: "a device",
             stat.S_ISSOCK: "a socket"}


def shown(path: str | os.PathLike[str]) -> str:
    """The file's name as messages show it: its last part, escaped and cut (display_name)."""
    return display_name(Path(path).name or str(path))


def open_regular(path: str | os.PathLike[str], max_bytes: int, holds: str = "data"
                 ) -> BinaryIO:
    """The regular file at path, opened for binary reading without ever blocking.

    Raises FileFormatError naming the file when it is missing, unreadable, not a regular file
    (checked before opening, and again on the opened descriptor), empty (then the message says
    it holds no `holds`: "numbers", "samples"), or over max_bytes.
    """
    name = shown(path)
    try:
        _check_regular(os.stat(path), name, max_bytes, holds)
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) \
            | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
        descriptor = os.open(path, flags)
    except FileFormatError:
        raise
    except FileNotFoundError:
        raise FileFormatError(f"{name}: no such file") from None
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the path
        raise FileFormatError(f"cannot read {name}: {_os_reason(err)}") from None
    try:
        # The file opened is the one checked, even if the path was swapped in between.
        _check_regular(os.fstat(descriptor), name, max_bytes, holds)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def file_size(file: BinaryIO) -> int:
    """The size in bytes of an open file, as the file system reports it."""
    return os.fstat(file.fileno()).st_size


def _check_regular(info: os.stat_result, name: str, max_bytes: int, holds: str) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise FileFormatError(f"{name} is a folder, not a file; choose a file inside it")
    if not stat.S_ISREG(info.st_mode):
        kind = next((kind for test, kind in _KINDS_OF.items() if test(info.st_mode)),
                    "a special file")
        raise FileFormatError(f"{name} is {kind}, not a regular file; save its data to a file "
                              f"and open that")
    if info.st_size == 0:
        raise FileFormatError(f"{name} is empty: it holds no {holds}")
    if info.st_size > max_bytes:
        raise FileFormatError(f"{name} is {info.st_size:,} bytes, more than the {max_bytes:,} "
                              f"ConvScope reads from such a file; save a smaller one")


def _os_reason(err: BaseException) -> str:
    """What the system said, without the path it echoes (the caller names the file)."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror.lower()
    return "the path cannot be opened"


@dataclass(frozen=True)
class NpyHeader:
    """What a .npy header promises: the array's shape and dtype, whether its data is stored
    column-major, and where the data starts."""
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    data_start: int

    @property
    def count(self) -> int:
        return math.prod(self.shape)

    @property
    def data_bytes(self) -> int:
        return self.count * self.dtype.itemsize


def read_npy_header(file: BinaryIO, name: str) -> NpyHeader:
    """The header of the .npy file open at its start (no data is read); raises FileFormatError
    when it is not a .npy file, holds no plain array (format 3.0: text or structured fields),
    or is damaged (a negative size)."""
    try:
        version = np.lib.format.read_magic(file)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(file)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(file)
        else:
            raise FileFormatError(f"{name} is a .npy file of format version "
                                  f"{'.'.join(map(str, version))}, which holds text or structured "
                                  f"data; save a plain array of numbers")
        data_start = file.tell()
    except OSError as err:
        raise FileFormatError(f"cannot read {name}: {_os_reason(err)}") from None
    except (ValueError, SyntaxError, TokenError, EOFError, TypeError, MemoryError,
            RecursionError):
        # numpy's message quotes the header's text: never echoed.
        raise FileFormatError(f"{name} is not a .npy array, or its header is damaged") from None
    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise FileFormatError(f"{name} has a damaged header (a negative size)")
    return NpyHeader(shape, dtype, bool(fortran), data_start)


def read_npy_values(file: BinaryIO, header: NpyHeader, name: str) -> np.ndarray:
    """The array's values as float32, of header.shape, read from header.data_start.

    The caller has checked the header's kind of numbers (real: integer or float) and count.
    Raises FileFormatError, before reading, when the file holds fewer bytes than the header
    promises. Values beyond float32's range become infinite (a caller that refuses those
    checks np.isfinite on the result).
    """
    have = file_size(file) - header.data_start
    if have < header.data_bytes:
        raise FileFormatError(f"{name} is truncated: its header promises {header.count:,} "
                              f"{header.dtype} values ({header.data_bytes:,} bytes) but it holds "
                              f"{max(have, 0):,} bytes of data")
    stored = header.shape[::-1] if header.fortran_order else header.shape
    values = np.empty(header.count, np.float32)
    per_chunk = max(1, CHUNK_BYTES // max(1, header.dtype.itemsize))
    file.seek(header.data_start)
    for start in range(0, header.count, per_chunk):
        count = min(per_chunk, header.count - start)
        try:
            data = file.read(count * header.dtype.itemsize)
        except OSError as err:
            raise FileFormatError(f"cannot read {name}: {_os_reason(err)}") from None
        if len(data) < count * header.dtype.itemsize:  # shrunk since it was measured
            raise FileFormatError(f"{name} is truncated: its data ends before the "
                                  f"{header.count:,} values its header promises")
        with np.errstate(over="ignore", invalid="ignore"):
            values[start:start + count] = np.frombuffer(data, header.dtype)
    array = values.reshape(stored)
    return np.ascontiguousarray(array.T) if header.fortran_order else array
