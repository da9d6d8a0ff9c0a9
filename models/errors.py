"""Errors a person can cause by their settings or files.

Every message says what is wrong, with the value received, and how to fix it. Errors raised by a
layer spec carry the field; the stack adds the layer's index, name and type when it reports them.
"""
from __future__ import annotations


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
        label = ", ".join(part for part in (self.layer_name, self.layer_type) if part)
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
