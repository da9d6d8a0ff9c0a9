"""Bounds on what an ONNX file may hold, checked before the work they bound, so that no file can
make the import recurse without end, exhaust memory or print megabytes.

The limits are the network's own (models.stack), so that whatever opens can be saved and
reopened as a project:
- Graph size: at most MAX_NODES nodes in all, the bodies of If, Loop and Scan included,
  counted as the file is read, before protobuf parses them.
- Names: at most MAX_NAME_CHARS characters in any node, tensor, operator or domain name.
- Groups: name scopes deeper than MAX_GROUP_DEPTH levels are kept to their first
  MAX_GROUP_DEPTH levels (engine.onnx.importer): groups only fold the view.
- Messages show a name cut to SHOWN_NAME_CHARS characters (`shown`), its control characters
  escaped, so a long or hostile name never floods or drives a terminal.
- Weights: their total size, counted from each tensor's declared shape and type before any
  byte is read, at most the memory budget (engine.memory_budget, CONVSCOPE_MEMORY_BUDGET):
  a tiny model naming a sparse 8 GiB external file is refused from the sizes alone.
- Depth: no step of the import recurses over the graph. The nodes of every graph, bodies
  included, are put in order with loops (engine.onnx.checks) before onnxslim's graphsurgeon sees
  them, so its recursive topological sort finds every input already placed and never goes more
  than one call deep; constant folding by parts runs as a loop (engine.onnx.fold). So a
  residual chain 2,000 blocks deep imports like a short one. Bodies nest at most as deep as
  protobuf decodes messages (100 levels); a deeper file is refused as undecodable.
"""
from __future__ import annotations

import math
from typing import Iterator

import onnx

from engine.memory_budget import BUDGET_VARIABLE, GB, default_budget, size_text
from models.errors import DISPLAY_LIMIT, FileFormatError, display_name
from models.stack import MAX_NAME_LENGTH, MAX_NESTING_DEPTH, MAX_NODES

MAX_NAME_CHARS = MAX_NAME_LENGTH
MAX_GROUP_DEPTH = MAX_NESTING_DEPTH
SHOWN_NAME_CHARS = DISPLAY_LIMIT


def shown(name: str) -> str:
    """The name as messages quote it: models.errors.display_name's text (control characters,
    newlines and direction overrides escaped; cut to SHOWN_NAME_CHARS characters and "…") in
    quotes."""
    return f"'{display_name(name, SHOWN_NAME_CHARS)}'"


def excerpt(text: str, chars: int = 200) -> str:
    """Text for a message without quotes - an operator's name, or the first line of another
    program's message (onnx's, onnxruntime's), which may repeat names of any length from the
    file: escaped and cut as display_name does."""
    return display_name(text.splitlines()[0] if text else "", chars)


def all_graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """The graph and every body its nodes hold (If branches, Loop and Scan bodies), at any
    depth, walked with a work list rather than by recursion."""
    pending = [graph]
    while pending:
        current = pending.pop()
        yield current
        for node in current.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    pending.append(attr.g)
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    pending.extend(attr.graphs)


def check_size_and_names(graph: onnx.GraphProto, label: str) -> None:
    """Refuse a graph over MAX_NODES nodes or with a name over MAX_NAME_CHARS characters
    (FileFormatError naming the file, the limit and the fix)."""
    count = 0
    for current in all_graphs(graph):
        count += len(current.node)
        check_node_count(count, label)
        for value in (*current.input, *current.output):
            check_name(value.name, "tensor", label)
        for node in current.node:
            for name, what in ((node.name, "node"), (node.op_type, "operator"),
                               (node.domain, "domain")):
                check_name(name, what, label)
            for name in (*node.input, *node.output):
                check_name(name, "tensor", label)


def check_node_count(count: int, label: str) -> None:
    """Refuse a graph of `count` nodes when that is over MAX_NODES."""
    if count > MAX_NODES:
        raise FileFormatError(f"{label} has more than {MAX_NODES:,} nodes, more than ConvScope "
                              f"opens; export a smaller part of the model")


def check_name(name: str, what: str, label: str) -> None:
    """Refuse a name (of a tensor, a node, ...) longer than MAX_NAME_CHARS characters."""
    if len(name) > MAX_NAME_CHARS:
        article = "an" if what[0] in "aeiou" else "a"
        raise FileFormatError(f"{label}: {article} {what} name is {len(name):,} characters long "
                              f"({shown(name)}), over the {MAX_NAME_CHARS:,} ConvScope accepts; "
                              f"give it a shorter name")


class WeightBudget:
    """The bytes of weights read so far against the memory budget; `take` is called with a
    tensor's size from its declared shape, before its data is read."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.budget = default_budget()
        self.total = 0

    def take(self, name: str, nbytes: int) -> None:
        """Count a tensor of nbytes; raise FileFormatError when the weights so far exceed the
        budget."""
        self.total += nbytes
        if self.total > self.budget:
            raise FileFormatError(
                f"{self.label}: its weights need at least {size_text(self.total)} (the weight "
                f"{shown(name)} alone {size_text(nbytes)}), over the {size_text(self.budget)} "
                f"memory budget; if the machine has the memory, raise it "
                f"({BUDGET_VARIABLE}={math.ceil(self.total / GB)}G)")
