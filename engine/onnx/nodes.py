"""What the importer reads on an ONNX node, and how messages name nodes: the standard domains,
the attributes by name, the group ConvScope wrote on it, a node's label (cut and escaped for
messages) and short lists of nodes.
"""
from __future__ import annotations

from typing import Any

import onnx
from onnx import helper

from engine.onnx.limits import shown

DOMAINS = ("", "ai.onnx")
"""The names of the default (standard ONNX) domain."""
GROUP_KEY = "convscope.group"
"""The node metadata key that holds the group of the layer a node was exported from."""


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
    """The node's label as messages quote it (cut and escaped, engine.onnx.limits.shown)."""
    return shown(node_label(node))


def listed(nodes: list[onnx.NodeProto]) -> str:
    """At most three node names for the end of a message."""
    names = ", ".join(node_shown(n) for n in nodes[:3])
    return names + (f" and {len(nodes) - 3} more" if len(nodes) > 3 else "")


def tag_group(nodes: list[onnx.NodeProto], group: str) -> None:
    """Write `group` ("layer1/0"; "" for none, which writes nothing) on each node as metadata,
    so an import gives the layer its group back: name scopes tell groups only for graphs
    named as PyTorch names them."""
    if group:
        for node in nodes:
            node.metadata_props.add(key=GROUP_KEY, value=group)


def node_group(node: onnx.NodeProto) -> str | None:
    """The group ConvScope wrote on the node (tag_group), None where it wrote none."""
    for entry in node.metadata_props:
        if entry.key == GROUP_KEY:
            return entry.value
    return None
