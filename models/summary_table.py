"""A network's summary as text (a table in the style torchinfo prints) or as JSON-ready data.

Both read a StackReport only: pure arithmetic, no engine. Rows are the network's nodes in
topological order (a block is one row; its parameters and MACs are its inner layers' sums, so
nothing is counted twice), each group a row of its nodes' totals before its first node. A graph
that is not a chain gets an "Inputs" column naming what each node reads.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from models.analysis import BYTES_PER_VALUE, LayerReport, StackReport

RULE_CHAR = "="
HEADERS = ("Layer (type)", "Output shape", "Param #", "MACs", "Receptive field")
INPUTS_HEADER = "Inputs"
INDENT = "  "


@dataclass(frozen=True)
class GroupTotals:
    """A group's nodes (nested groups included): their count, parameters, MACs and activation
    memory, the output shape of its last node (None when that node cannot compute), and the
    index of its first node."""
    name: str
    layers: int
    params: int
    macs: int
    activation_bytes: int
    output_shape: tuple[int, ...] | None
    first: int


def group_totals(report: StackReport) -> list[GroupTotals]:
    """Every group path and each of its ancestors, in the order their first node comes."""
    members: dict[str, list[LayerReport]] = {}
    for r in report.layers:
        parts = r.group.split("/") if r.group else []
        for depth in range(1, len(parts) + 1):
            members.setdefault("/".join(parts[:depth]), []).append(r)
    return [GroupTotals(name, len(rs), sum(r.params for r in rs), sum(r.macs for r in rs),
                        sum(r.activation_bytes for r in rs), rs[-1].output_shape, rs[0].index)
            for name, rs in members.items()]


def summary_json(report: StackReport) -> dict[str, Any]:
    """{"input_shape", "layers": [{"name", "type", "output_shape", "params", "macs",
    "receptive_field", "inputs", "group", "engine"}], "groups": [{"name", "layers", "params",
    "macs", "activation_bytes", "output_shape"}], "total_params", "total_macs"} (the command line's contract).

    output_shape includes the batch axis and is None for a layer that cannot compute; such a
    layer also has "error" (its message) or "waiting_on" (the 1-based failing layer). inputs
    names the layers it reads ("input" for the network's input).
    """
    layers = []
    for r in report.layers:
        entry: dict[str, Any] = {
            "name": r.name, "type": r.type_name,
            "output_shape": list(r.output_shape) if r.output_shape is not None else None,
            "params": r.params, "macs": r.macs,
            "receptive_field": list(r.receptive_field) if r.ok else None,
            "inputs": list(r.input_names), "group": r.group, "engine": r.engine}
        if r.error is not None:
            entry["error"] = str(r.error)
        elif r.waiting_on is not None:
            entry["waiting_on"] = r.waiting_on + 1
        layers.append(entry)
    groups = [{"name": g.name, "layers": g.layers, "params": g.params, "macs": g.macs,
               "activation_bytes": g.activation_bytes,
               "output_shape": list(g.output_shape) if g.output_shape else None}
              for g in group_totals(report)]
    return {"input_shape": list(report.input_shape), "layers": layers, "groups": groups,
            "total_params": report.total_params, "total_macs": report.total_macs}


def summary_table(report: StackReport) -> str:
    """One row per node (name and type, output shape, parameters, MACs, receptive field, and
    its inputs when the network branches), a row of totals per group, the failing node's message
    under its row, then totals and memory estimates in MB."""
    branched = any(r.sources != (r.index - 1,) for r in report.layers)
    headers = HEADERS + ((INPUTS_HEADER,) if branched else ())
    starts: dict[int, list[GroupTotals]] = {}
    for g in group_totals(report):
        starts.setdefault(g.first, []).append(g)
    body: list[tuple[tuple[str, ...], LayerReport | None]] = []
    for r in report.layers:
        for g in starts.get(r.index, []):
            depth = g.name.count("/")
            cells = (f"{INDENT * depth}{g.name.rsplit('/', 1)[-1]}/ ({g.layers} layer{'s' if g.layers != 1 else ''})",
                     _shape(g.output_shape) if g.output_shape else "--", f"{g.params:,}",
                     f"{g.macs:,}", "")
            body.append((cells + (("",) if branched else ()), None))
        depth = r.group.count("/") + 1 if r.group else 0
        cells = _row(r, INDENT * depth)
        body.append((cells + ((", ".join(r.input_names),) if branched else ()), r))
    rows = [headers] + [cells for cells, _ in body]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    total_width = sum(widths) + 2 * (len(widths) - 1)
    rule = RULE_CHAR * total_width

    def line(cells: tuple[str, ...]) -> str:
        # The name column reads left to right; numbers line up on their right edge.
        return "  ".join(c.ljust(w) if i in (0, 1, 4, 5) else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [rule, line(headers), rule]
    for cells, r in body:
        out.append(line(cells))
        if r is not None and r.error is not None:
            out.append(f"  ! {r.error}")
    param_bytes = report.total_params * BYTES_PER_VALUE
    input_bytes = math.prod(report.input_shape) * BYTES_PER_VALUE
    out += [rule,
            f"Input shape: {_shape(report.input_shape)}",
            f"Total params: {report.total_params:,}",
            f"Total MACs: {report.total_macs:,} ({_scaled(report.total_macs)})",
            rule,
            f"Input size (MB): {input_bytes / 1e6:.2f}",
            f"Activations size (MB): {report.total_activation_bytes / 1e6:.2f}",
            f"Params size (MB): {param_bytes / 1e6:.2f}",
            f"Estimated total size (MB): "
            f"{(input_bytes + report.total_activation_bytes + param_bytes) / 1e6:.2f}",
            rule]
    if report.first_error is not None:
        out.append(f"The network stops at {report.first_error}")
    return "\n".join(out)


def _row(r: LayerReport, indent: str = "") -> tuple[str, str, str, str, str]:
    label = f"{indent}{r.name} ({r.type_name})" + (" [onnxruntime]" if r.engine != "numpy" else "")
    if r.error is not None:
        return label, "error", "--", "--", "--"
    if r.waiting_on is not None:
        return label, f"waiting on layer {r.waiting_on + 1}", "--", "--", "--"
    rf = "x".join(map(str, r.receptive_field)) or "--"
    return label, _shape(r.output_shape or ()), f"{r.params:,}", f"{r.macs:,}", rf


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _scaled(count: int) -> str:
    for factor, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= factor:
            return f"{count / factor:.2f} {unit}"
    return str(count)
