"""A stack's summary as text (a table in the style torchinfo prints) or as JSON-ready data.

Both read a StackReport only: pure arithmetic, no engine. Rows are the stack's layers (a block is
one row; its parameters and MACs are its inner layers' sums, so nothing is counted twice).
"""
from __future__ import annotations

import math
from typing import Any

from models.analysis import BYTES_PER_VALUE, LayerReport, StackReport

RULE_CHAR = "="
HEADERS = ("Layer (type)", "Output shape", "Param #", "MACs", "Receptive field")


def summary_json(report: StackReport) -> dict[str, Any]:
    """{"input_shape", "layers": [{"name", "type", "output_shape", "params", "macs",
    "receptive_field"}], "total_params", "total_macs"} (the command line's contract).

    output_shape includes the batch axis and is None for a layer that cannot compute; such a
    layer also has "error" (its message) or "waiting_on" (the 1-based failing layer).
    """
    layers = []
    for r in report.layers:
        entry: dict[str, Any] = {
            "name": r.name, "type": r.type_name,
            "output_shape": list(r.output_shape) if r.output_shape is not None else None,
            "params": r.params, "macs": r.macs,
            "receptive_field": list(r.receptive_field) if r.ok else None}
        if r.error is not None:
            entry["error"] = str(r.error)
        elif r.waiting_on is not None:
            entry["waiting_on"] = r.waiting_on + 1
        layers.append(entry)
    return {"input_shape": list(report.input_shape), "layers": layers,
            "total_params": report.total_params, "total_macs": report.total_macs}


def summary_table(report: StackReport) -> str:
    """One row per layer (name and type, output shape, parameters, MACs, receptive field), the
    failing layer's message under its row, then totals and memory estimates in MB."""
    rows = [HEADERS] + [_row(r) for r in report.layers]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    total_width = sum(widths) + 2 * (len(widths) - 1)
    rule = RULE_CHAR * total_width

    def line(cells: tuple[str, ...]) -> str:
        # The name column reads left to right; numbers line up on their right edge.
        return "  ".join(c.ljust(w) if i in (0, 1, 4) else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [rule, line(HEADERS), rule]
    for r, cells in zip(report.layers, rows[1:]):
        out.append(line(cells))
        if r.error is not None:
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
        out.append(f"The stack stops at {report.first_error}")
    return "\n".join(out)


def _row(r: LayerReport) -> tuple[str, str, str, str, str]:
    label = f"{r.name} ({r.type_name})"
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
