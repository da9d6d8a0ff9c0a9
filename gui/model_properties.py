"""Model properties, as Netron shows them: File > Model properties….

For every network: its file, input, outputs, counts and totals, and its opaque nodes (computed by
onnxruntime) with why each is opaque. For a model imported from ONNX, also what the file itself
says: format and IR version, producer, domain, opsets, metadata, the graph's inputs and outputs
with their dims, and every node with its raw attributes, an opaque one marked. The file is read
again for that (onnx.load without external data) on a pool thread when the dialog opens, so a
large model never holds up the window; the network's part shows at once.

`network_rows` and `onnx_rows` build plain rows (no Qt), which the dialog shows as a tree.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHeaderView, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

from gui.background import BackgroundJob
from gui.file_refusal import one_line, refusal
from gui.summary_table import human_count, shape_text
from models.analysis import StackReport
from models.stack import Stack

OPAQUE_MARK = "computed by onnxruntime"
MAX_LISTED = 16
"""Values of a list or a tensor attribute shown before "…"."""
MAX_VALUE = 200
"""Characters of one value shown (names and docstrings can be any length)."""


@dataclass(frozen=True)
class Row:
    """One line of the properties: a key, its value, and the lines under it."""
    key: str
    value: str = ""
    children: tuple[Row, ...] = ()


def network_rows(stack: Stack, report: StackReport, source: Path | None) -> list[Row]:
    """The network's own properties: what ConvScope holds, whatever file it came from."""
    groups: set[str] = set()  # every level: "layer1/0" counts layer1 and layer1/0
    for layer in stack.layers:
        parts = layer.group.split("/") if layer.group else []
        groups.update("/".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    outputs = [report.layers[i].name for i in report.outputs] or (
        [report.layers[-1].name] if report.layers else [])
    opaque = [r for r in report.layers if r.engine == "onnxruntime"]
    network = Row("Network", "", (
        Row("File", _text(str(source)) if source is not None else "not saved"),
        Row("Input", shape_text(report.input_shape)),
        Row("Outputs", _text(", ".join(outputs)) or "none"),
        Row("Nodes", f"{len(stack.layers):,}"),
        Row("Groups", f"{len(groups):,}"),
        Row("Parameters", f"{report.total_params:,}"),
        Row("MACs", human_count(report.total_macs)),
        Row("Opaque nodes", f"{len(opaque):,} ({OPAQUE_MARK})" if opaque else "none"),
    ))
    rows = [network]
    if opaque:
        rows.append(Row(f"Opaque nodes ({OPAQUE_MARK})", "", tuple(
            Row(_text(r.name), r.type_name,
                (Row("Why", _text(getattr(stack.layers[r.index].spec, "reason", ""))),))
            for r in opaque)))
    return rows


def onnx_rows(path: str | os.PathLike[str], opaque_names: frozenset[str] = frozenset()
              ) -> list[Row]:
    """What the ONNX file at `path` says of itself; nodes named in opaque_names are marked.

    Reads the file with onnx.load (external data left on disk); a file that cannot be read
    gives one row saying why (gui.file_refusal). Other exceptions are bugs and propagate."""
    import onnx  # here: only imported models need it, and it is slow to import

    try:
        model = onnx.load(os.fspath(path), load_external_data=False)
    except Exception as err:  # noqa: BLE001 - sorted by refusal(); a bug is raised again
        line = refusal(path, err)
        if line is None:
            raise
        return [Row("ONNX file", line)]
    graph = model.graph
    constants = {tensor.name for tensor in graph.initializer}
    opsets = "; ".join(f"{o.domain or 'ai.onnx'} v{o.version}" for o in model.opset_import)
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p)
    about = Row("Model", "", tuple(row for row in (
        Row("Format", f"ONNX v{model.ir_version}"),
        Row("Producer", _text(producer) or "not given"),
        Row("Domain", _text(model.domain)) if model.domain else None,
        Row("Model version", str(model.model_version)) if model.model_version else None,
        Row("Opsets", _text(opsets) or "none"),
        Row("Graph", _text(graph.name)) if graph.name else None,
        Row("Description", _text(model.doc_string)) if model.doc_string else None,
    ) if row is not None))
    metadata = Row("Metadata", "" if model.metadata_props else "none", tuple(
        Row(_text(p.key), _text(p.value)) for p in model.metadata_props))
    inputs = Row("Inputs", "", tuple(_value_row(v) for v in graph.input if v.name not in constants))
    outputs = Row("Outputs", "", tuple(_value_row(v) for v in graph.output))
    nodes = Row(f"Nodes ({len(graph.node):,})", "", tuple(
        _node_row(i, node, node.name in opaque_names) for i, node in enumerate(graph.node)))
    return [about, metadata, inputs, outputs, nodes]


def _value_row(value: Any) -> Row:
    return Row(_text(value.name), _type_text(value.type))


def _type_text(type_proto: Any) -> str:
    """"float32[N,3,224,224]" as Netron writes a tensor type; other kinds by their name."""
    if type_proto.WhichOneof("value") != "tensor_type":
        return type_proto.WhichOneof("value") or "unknown"
    tensor = type_proto.tensor_type
    dims = ",".join(str(d.dim_value) if d.HasField("dim_value") else _text(d.dim_param) or "?"
                    for d in tensor.shape.dim)
    shape = f"[{dims}]" if tensor.HasField("shape") else ""
    return f"{_dtype_text(tensor.elem_type)}{shape}"


def _dtype_text(elem_type: int) -> str:
    from onnx import TensorProto, helper
    try:
        return str(helper.tensor_dtype_to_np_dtype(elem_type).name)
    except (KeyError, TypeError, ValueError):
        try:
            return TensorProto.DataType.Name(elem_type).lower()
        except ValueError:
            return f"type {elem_type}"


def _node_row(position: int, node: Any, opaque: bool) -> Row:
    kind = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
    details = [Row(_text(attribute.name), _attribute_text(attribute))
               for attribute in node.attribute]
    details.append(Row("inputs", _text(", ".join(node.input)) or "none"))
    details.append(Row("outputs", _text(", ".join(node.output)) or "none"))
    return Row(_text(node.name) or f"(unnamed node {position + 1})",
               _text(kind) + (f" · {OPAQUE_MARK}" if opaque else ""), tuple(details))


def _attribute_text(attribute: Any) -> str:
    from onnx import AttributeProto, TensorProto, helper, numpy_helper
    if attribute.type == AttributeProto.TENSOR:
        tensor = attribute.t
        text = f"tensor {_dtype_text(tensor.data_type)}[{','.join(map(str, tensor.dims))}]"
        count = 1
        for dim in tensor.dims:
            count *= dim
        if count <= MAX_LISTED and tensor.data_location != TensorProto.EXTERNAL:
            try:
                text += f" = {_listed(numpy_helper.to_array(tensor).reshape(-1).tolist())}"
            except (ValueError, TypeError, KeyError):
                pass  # a damaged constant: its type and dims are what can be said
        return text
    if attribute.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
        graphs = [attribute.g] if attribute.type == AttributeProto.GRAPH else list(attribute.graphs)
        return "; ".join(f"graph {_text(g.name) or '(unnamed)'} ({len(g.node)} nodes)"
                         for g in graphs)
    value = helper.get_attribute_value(attribute)
    if isinstance(value, bytes):
        return _text(value.decode("utf-8", "backslashreplace"))
    if isinstance(value, (list, tuple)):
        return _listed([v.decode("utf-8", "backslashreplace") if isinstance(v, bytes) else v
                        for v in value])
    return _text(str(value))


def _listed(values: list[Any]) -> str:
    shown = ", ".join(map(str, values[:MAX_LISTED]))
    return _text(f"[{shown}{', …' if len(values) > MAX_LISTED else ''}]")


def _text(value: str) -> str:
    return one_line(value, MAX_VALUE) if value else ""


class ModelPropertiesDialog(QDialog):
    """The properties of a network, and of the ONNX file it was imported from when `onnx_file`
    is given (read on a pool thread; `job` finishes when its rows are in)."""

    def __init__(self, stack: Stack, report: StackReport, source: Path | None,
                 onnx_file: Path | None, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Model properties — {title}")
        self.tree = QTreeWidget()
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["Property", "Value"])
        self.tree.setUniformRowHeights(True)  # fast with thousands of node rows
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.tree.setColumnWidth(0, 260)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tree, 1)
        layout.addWidget(buttons)
        self.resize(720, 620)
        self._add_rows(network_rows(stack, report, source))
        self.job = BackgroundJob(self)
        self._pending: QTreeWidgetItem | None = None
        if onnx_file is not None:
            opaque = frozenset(r.name for r in report.layers if r.engine == "onnxruntime")
            self._pending = QTreeWidgetItem(self.tree,
                                            ["ONNX file", f"reading {onnx_file.name}…"])
            self.job.succeeded.connect(self._show_onnx)
            self.job.failed.connect(self._show_failure)
            self.job.start(lambda _progress: onnx_rows(onnx_file, opaque))

    def rows(self) -> list[tuple[str, str]]:
        """Every (key, value) shown, depth first (for tests and copying)."""
        out: list[tuple[str, str]] = []

        def walk(item: QTreeWidgetItem) -> None:
            out.append((item.text(0), item.text(1)))
            for i in range(item.childCount()):
                walk(item.child(i))
        for i in range(self.tree.topLevelItemCount()):
            walk(self.tree.topLevelItem(i))
        return out

    def _add_rows(self, rows: list[Row]) -> None:
        """Sections open, their entries (a node's attributes) folded."""
        bold = QFont(self.tree.font())
        bold.setBold(True)
        for row in rows:
            item = _item(row)
            self.tree.addTopLevelItem(item)
            item.setFont(0, bold)
            item.setFirstColumnSpanned(not row.value)
            item.setExpanded(True)

    def _show_onnx(self, rows: list[Row]) -> None:
        self._drop_pending()
        self._add_rows(rows)

    def _show_failure(self, message: str) -> None:
        if self._pending is not None:
            self._pending.setText(1, one_line(message))

    def _drop_pending(self) -> None:
        if self._pending is not None:
            self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(self._pending))
            self._pending = None



def _item(row: Row) -> QTreeWidgetItem:
    item = QTreeWidgetItem([row.key, row.value])
    item.setToolTip(0, row.key)
    item.setToolTip(1, row.value)
    item.addChildren([_item(child) for child in row.children])
    return item
