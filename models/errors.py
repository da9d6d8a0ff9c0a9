"""Errors a person can cause by their settings or files.

Every message says what is wrong, with the value received, and how to fix it. Errors raised by a
layer spec carry the field; the stack adds the layer's index, name and type when it reports them.
"""
from __future__ import annotations

import os

DISPLAY_LIMIT = 60
"""The most characters of a name that a message shows; a longer name is cut and ends in "…"."""


def display_name(name: str, limit: int | None = DISPLAY_LIMIT) -> str:
    """name as one line of text that shows what it holds and cannot act on the terminal.

    Every character that is not printable (control characters such as ESC or a newline, the
    bidirectional overrides U+202A-U+202E and U+2066-U+2069, other format characters, lone
    surrogates, separators other than the space) is written as a visible escape, as repr()
    writes it: \\x1b, \\n, \\u202e, \\udc80. The result is cut to `limit` characters plus "…"
    (None: never cut), without reading further than needed, so a name of a million characters
    costs as much as one of sixty.
    """
    pieces: list[str] = []
    length = 0
    for char in name:
        piece = char if char.isprintable() else _escape(char)
        if limit is not None and length + len(piece) > limit:
            pieces.append("…")
            break
        pieces.append(piece)
        length += len(piece)
    return "".join(pieces)


_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    code = ord(char)
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else \
        f"\\U{code:08x}"


class ConfigError(ValueError):
    """A setting or a file that cannot work.

    Attributes:
        reason: the sentence about the setting itself ("kernel 7 ... lower the dilation").
        field: the spec field at fault (dotted for a block's inner layer, e.g. "body.1.stride"),
            or None when no single field is.
        layer_index: 0-based position in the stack, or None when not yet placed.
        layer_name: the layer's name in the stack, or None.
        layer_type: the layer's type as the palette names it ("Conv2D"), or None.
    """

    def __init__(self, reason: str, *, field: str | None = None, layer_index: int | None = None,
                 layer_name: str | None = None, layer_type: str | None = None) -> None:
        self.reason = reason
        self.field = field
        self.layer_index = layer_index
        self.layer_name = layer_name
        self.layer_type = layer_type
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.layer_index is None:
            return self.reason
        name = display_name(self.layer_name) if self.layer_name else None
        label = ", ".join(part for part in (name, self.layer_type) if part)
        return f"layer {self.layer_index + 1} ({label}): {self.reason}"

    def at(self, layer_index: int, layer_name: str, layer_type: str) -> ConfigError:
        """The same error, placed on a layer of the stack."""
        return ConfigError(self.reason, field=self.field, layer_index=layer_index,
                           layer_name=layer_name, layer_type=layer_type)

    def inside(self, prefix: str, where: str) -> ConfigError:
        """The same error raised by an inner layer of a block, re-worded from the block's view."""
        field = f"{prefix}.{self.field}" if self.field else prefix
        return ConfigError(f"{where}: {self.reason}", field=field)


class FileFormatError(ConfigError):
    """A project, ONNX, image or array file that cannot be read; the message names the file."""


class FileChangedError(ConfigError):
    """A save would overwrite a file that another program changed (or replaced) on disk since
    ConvScope read or last wrote it. `path` is the file, as the caller named it."""

    def __init__(self, reason: str, path: str | os.PathLike[str]) -> None:
        super().__init__(reason)
        self.path = path
