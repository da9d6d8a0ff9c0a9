"""Which exceptions a bad file causes, and the one line the person is shown for them.

The project reader and the ONNX importer turn what they check into ConfigError, but a damaged or
hostile file can also make them, or the libraries under them, run out of memory or recursion
depth, fail a read, fail onnx's and protobuf's own checks, or hand a value Python refuses (a
ValueError or an OverflowError: a seek past any offset, a number no int can hold). Those are the
file's fault, not a bug in ConvScope: `refusal` gives them one line naming the file. Any other
exception (TypeError, KeyError, AttributeError, RuntimeError, ...) is a bug and is left to
propagate to the crash reporter, so it is logged rather than explained away.
No Qt here: this is the rule, the window only shows its answer.
"""
from __future__ import annotations

import os
import sys
import unicodedata
from pathlib import Path

from models.errors import ConfigError

MAX_LINE = 400
"""Characters of a refusal shown at most: a file can hold a name a megabyte long."""


def refusal(path: str | os.PathLike[str], err: BaseException) -> str | None:
    """The one line saying why the file at `path` cannot be opened, or None when `err` is not
    something a bad file causes (a bug: the caller re-raises it).

    The line names the file (by its name, not its folder), holds no control or bidirectional
    characters and at most MAX_LINE characters; it never quotes the file's contents beyond what
    a ConfigError chose to say.
    """
    name = Path(path).name or str(path)
    reason = _reason(name, err)
    if reason is None:
        return None
    if name not in reason:
        reason = f"cannot open {name}: {reason}"
    return one_line(reason)


def one_line(text: str, limit: int = MAX_LINE) -> str:
    """text on one line, control and format characters (newlines, terminal escapes,
    right-to-left overrides) written as escapes, cut to `limit` characters with an ellipsis."""
    out = []
    for char in text:
        if char in "\n\r\t":
            out.append(" ")
        elif unicodedata.category(char) in ("Cc", "Cf", "Cs"):
            out.append(char.encode("unicode_escape", "backslashreplace").decode("ascii"))
        else:
            out.append(char)
    line = " ".join("".join(out).split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _reason(name: str, err: BaseException) -> str | None:
    if isinstance(err, ConfigError):
        return str(err)
    if isinstance(err, OSError):
        # strerror only: an OSError's own text may quote what a read returned.
        other = Path(err.filename).name if isinstance(err.filename, str) else ""
        where = f" ({other})" if other and other != name else ""
        return f"cannot read {name}{where}: {err.strerror or type(err).__name__}"
    if isinstance(err, MemoryError):
        return f"cannot open {name}: it needs more memory than is free"
    if isinstance(err, RecursionError):
        return f"cannot open {name}: it is nested too deeply to read"
    if isinstance(err, EOFError):
        return f"cannot open {name}: it ends early (it may be truncated)"
    if isinstance(err, UnicodeError):
        return f"cannot open {name}: it holds bytes that are not valid text"
    onnx_kind = _onnx_error_kind(err)
    if onnx_kind is not None:
        return f"cannot open {name}: {onnx_kind}: {_first_line(err)}"
    if isinstance(err, (ValueError, ArithmeticError)):
        return f"cannot open {name}: {_first_line(err)}"
    return None


def _onnx_error_kind(err: BaseException) -> str | None:
    """What refused the file when err is one of onnx's or protobuf's own errors, else None.
    Looked up only once those libraries are loaded: before that none of their errors exist."""
    if "google.protobuf" in sys.modules:
        from google.protobuf.message import Error as ProtobufError
        if isinstance(err, ProtobufError):
            return "it is not a valid ONNX model (its data cannot be decoded)"
    if "onnx" in sys.modules:
        from onnx.onnx_cpp2py_export import checker, shape_inference, version_converter
        if isinstance(err, checker.ValidationError):
            return "the onnx checker refuses it"
        if isinstance(err, shape_inference.InferenceError):
            return "onnx's shape inference refuses it"
        if isinstance(err, version_converter.ConvertError):
            return "onnx cannot convert its opset"
    return None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__

