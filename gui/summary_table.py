"""A live summary table in torchinfo's manner: one row per layer, totals at the bottom.

Totals come from the StackReport, which counts each parameter tensor once, so blocks never
double-count.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from gui.document import Document
from gui.theme import colors
from models.analysis import LayerReport, StackReport
from models.stack import Stack

COLUMNS = ("Layer", "Type", "Output shape", "Params", "MACs", "Receptive field", "Activations",
           "Saves")
_NUMERIC = {"Params", "MACs", "Activations"}


def human_bytes(count: float) -> str:
    """1536 -> "1.5 KiB"; bytes in binary units."""
    if count < 1024:
        return f"{count:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        count /= 1024
        if count < 1024 or unit == "GiB":
            return f"{count:.1f} {unit}"
    raise AssertionError("unreachable")


def human_count(count: int) -> str:
    """MACs in short form: 1234567 -> "1.23M"."""
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= factor:
            return f"{count / factor:.2f}{suffix}"
    return str(count)


def saves_text(report: LayerReport) -> str:
    """"656 vs 4,608 (7.0x)": this layer's parameters against a plain convolution's."""
    plain = report.info.plain_params if report.info else None
    if not plain or not report.params:
        return ""
    return f"{report.params:,} vs {plain:,} ({plain / report.params:.1f}x)"


def shape_text(shape: tuple[int, ...] | None) -> str:
    return "(" + ", ".join(map(str, shape)) + ")" if shape else "—"


def row_texts(report: LayerReport) -> tuple[str, ...]:
    """The cells of one layer's row, in COLUMNS order."""
    if not report.ok:
        status = "error" if report.error else report.status
        return (report.name, report.type_name, status, "", "", "", "", "")
    rf = "x".join(map(str, report.receptive_field)) if report.receptive_field else "—"
    return (report.name, report.type_name, shape_text(report.output_shape), f"{report.params:,}",
            human_count(report.macs), rf, human_bytes(report.activation_bytes), saves_text(report))


class SummaryTable(QTableWidget):
    """The document's layers with shapes, costs and receptive fields, and a totals row."""

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        self.verticalHeader().hide()
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setAlternatingRowColors(True)
        self.setShowGrid(False)
        self.setWordWrap(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.verticalHeader().setDefaultSectionSize(22)
        # What each row shows, as last filled: an edit refills only the rows it changed.
        self._rows: list[tuple[tuple[str, ...], bool, bool, bool]] = []
        self._document = document
        document.stackChanged.connect(self.show_report)
        self.show_report(document.stack, document.report)

    def show_report(self, _stack: Stack, report: StackReport) -> None:
        rows = [(row_texts(layer), layer.error is not None, layer.waiting_on is not None, False)
                for layer in report.layers]
        totals = ("Total", "", shape_text(report.output_shape) if report.ok else "",
                  f"{report.total_params:,}", human_count(report.total_macs), "",
                  human_bytes(report.total_activation_bytes), "")
        rows.append((totals, False, False, True))
        changed = [i for i, row in enumerate(rows) if i >= len(self._rows) or self._rows[i] != row]
        if not changed and len(rows) == len(self._rows):
            return
        # ResizeToContents re-measures every column on each setItem (tens of ms per edit): fill
        # with fixed columns, then let them fit the contents once.
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.setRowCount(len(rows))
        for i in changed:
            texts, error, waiting, bold = rows[i]
            self._fill(i, texts, error=error, waiting=waiting, bold=bold)
        self._rows = rows
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)

    def follow_theme(self) -> None:
        """Refill every row in the current theme's colours."""
        self._rows = []
        self.show_report(self._document.stack, self._document.report)

    def _fill(self, row: int, texts: tuple[str, ...], *, error: bool = False,
              waiting: bool = False, bold: bool = False) -> None:
        theme = colors()
        for column, text in enumerate(texts):
            item = QTableWidgetItem(text)
            if COLUMNS[column] in _NUMERIC:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if error:
                item.setForeground(QColor(theme.error))
            elif waiting:
                item.setForeground(QColor(theme.waiting))
            if bold:
                font = QFont(self.font())
                font.setBold(True)
                item.setFont(font)
            self.setItem(row, column, item)

    def cell_text(self, row: int, column: str) -> str:
        """The text of one cell by column name; row -1 is the totals row."""
        row = self.rowCount() - 1 if row == -1 else row
        return self.item(row, COLUMNS.index(column)).text()
