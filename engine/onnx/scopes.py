"""Scopes for the nodes of files whose node names carry none (Caffe2's n0, n1...), read from the
names of the weights they use, so that such a model still opens with its layers as groups.
"""
from __future__ import annotations

import os
import re

import onnx

_PARAMETER = re.compile(r"[_.][A-Za-z]+(?:_\d+)?$")  # a weight name's own part: _w_0, .weight


def weight_scopes(graph: onnx.GraphProto, constants: set[str]) -> dict[str, list[str]]:
    """Scopes, by node name, for the nodes whose names have no "/".

    A node reading conv2_1/x1/bn_scale_0 and its siblings is in conv2_1/x1/bn (the names'
    common "/" parts once each loses its own part, _scale_0); a node reading no named weight
    continues the scopes of the latest node it reads. A weight computed from another
    (Unsqueeze, Reshape, Cast... of a weight) goes by that weight's name; one made from a shape
    alone (ConstantOfShape) by its own. Run before folding, which names computed weights after
    their node's output. Files whose weight names carry no scope ("conv1.W", as ConvScope and
    most exporters write them) get none: a node's own name is not a group.
    """
    if not any("/" in name for name in constants):
        return {}
    origin = {name: name for name in constants}
    made: dict[str, tuple[int, list[str]]] = {}  # runtime tensor -> (node order, its scopes)
    runtime = {value.name for value in graph.input if value.name not in constants}
    scopes: dict[str, list[str]] = {}
    for k, node in enumerate(graph.node):
        data = [name for name in node.input if name in runtime]
        if not data:
            source = node.op_type in ("Constant", "ConstantOfShape") or not node.input
            for output in node.output:
                origin[output] = output if source else origin.get(node.input[0], output)
            continue
        weights = [_PARAMETER.sub("", origin[n]).split("/") for n in node.input if n in origin]
        if weights:
            found = [p for p in os.path.commonprefix(weights) if p]
        else:
            found = max((made.get(n, (-1, [])) for n in data), key=lambda m: m[0])[1]
        if "/" not in node.name:
            scopes[node.name] = found
        for output in node.output:
            runtime.add(output)
            made[output] = (k, found)
    return scopes
