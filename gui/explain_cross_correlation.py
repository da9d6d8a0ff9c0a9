"""What frameworks call convolution is cross-correlation: a plain-words note and a worked example
with the selected layer's own kernel on a patch of its own input, and a toggle that shows the
same numbers as true convolution (the kernel flipped) with a check mark where they agree.

The arithmetic is engine.cross_correlation's; this module lays the matrices out and paints them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (QCheckBox, QFrame, QLabel, QScrollArea, QSizePolicy, QVBoxLayout,
                               QWidget)

from engine.cross_correlation import CorrelationExample, flip, layer_example
from gui.theme import current_theme, mute
from models.layers import LayerSpec

NOTE = ("What deep-learning frameworks call <i>convolution</i> is <b>cross-correlation</b>: the "
        "kernel slides over the input as it is, out[i, j] = Σ x[i + a, j + b] · k[a, b]. "
        "<b>True convolution</b>, as in mathematics and signal processing, first flips the kernel "
        "(turns it by 180°). For a network it makes no difference: it simply learns the flipped "
        "kernel. The two give the same numbers once the kernel is flipped.")
PAD, ROW_GAP, TITLE, OPERATOR_WIDTH = 12, 22, 20, 36


@dataclass(frozen=True)
class Term:
    """One matrix of an equation: its title, values, and role ("input", "kernel", "result");
    flipped terms are outlined."""
    title: str
    values: np.ndarray
    role: str
    flipped: bool = False


@dataclass(frozen=True)
class EquationRow:
    """left op kernel = result [then more terms]; check: whether it matches the
    cross-correlation (None when there is nothing to check); note: the words after it."""
    terms: tuple[Term | str, ...]
    check: bool | None
    note: str


def equations(example: CorrelationExample, true_convolution: bool) -> list[EquationRow]:
    """The rows the panel shows: the cross-correlation the layer computes, then, with
    true_convolution, the same numbers from true convolution with the kernel flipped and with
    the input flipped."""
    correlation = example.correlation
    patch, kernel = example.patch, example.kernel
    layer_row = (Term("input patch", patch, "input"), "⋆", Term("kernel", kernel, "kernel"), "=",
                 Term("cross-correlation", correlation, "result"))
    if not true_convolution:
        differs = float(np.max(np.abs(example.plain_convolution - correlation)))
        note = ("True convolution with this kernel unflipped would give other numbers "
                f"(they differ by up to {differs:.3g})." if differs > 0 else
                "This kernel is its own 180° turn, so true convolution gives the same numbers.")
        return [EquationRow(layer_row, None, "What the layer computes. " + note)]
    by_kernel = example.convolution_flipped_kernel
    by_input = example.convolution_flipped_input
    return [
        EquationRow(layer_row, None, "What the layer computes."),
        EquationRow((Term("input patch", patch, "input"), "∗",
                     Term("kernel flipped 180°", example.flipped_kernel, "kernel", True), "=",
                     Term("true convolution", by_kernel, "result")),
                    bool(np.array_equal(by_kernel, correlation)),
                    "identical to the cross-correlation above"),
        EquationRow((Term("input flipped 180°", example.flipped_patch, "input", True), "∗",
                     Term("kernel", kernel, "kernel"), "=",
                     Term("true convolution", by_input, "result"), "→",
                     Term("flipped back", flip(by_input), "result", True)),
                    bool(np.allclose(flip(by_input), correlation, rtol=1e-12, atol=1e-12)),
                    "identical to the cross-correlation above"),
    ]


@dataclass(frozen=True)
class _Palette:
    text: str
    muted: str
    input: str
    kernel: str
    result: str
    border: str
    flipped: str
    ok: str
    bad: str


LIGHT = _Palette(text="#1f2227", muted="#5f6670", input="#b9d3ee", kernel="#d3d8df",
                 result="#a8e6e2", border="#7a8594", flipped="#e07b00", ok="#1b8a3a", bad="#c62828")
DARK = _Palette(text="#e6e8eb", muted="#a4abb5", input="#2f5d8a", kernel="#4a5260",
                result="#1f6f6b", border="#8a94a3", flipped="#ffb347", ok="#5fd37a", bad="#ff6b6b")


def _number_format(rows: list[EquationRow]) -> str:
    """Two decimals, fewer for large values, one format for every matrix so columns align."""
    largest = max(float(np.max(np.abs(t.values))) for row in rows for t in row.terms
                  if isinstance(t, Term))
    return "{:.0f}" if largest >= 100 else "{:.1f}" if largest >= 10 else "{:.2f}"


class _EquationCanvas(QWidget):
    """Paints the panel's equation rows: matrices with numbers, operators and check marks."""

    def __init__(self, panel: CrossCorrelationPanel) -> None:
        super().__init__(panel)
        self.panel = panel
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def _font(self, size: int, bold: bool = False) -> QFont:
        font = QFont(self.font())
        font.setPixelSize(size)
        font.setBold(bold)
        return font

    def _cell(self, rows: list[EquationRow]) -> QSize:
        fmt = _number_format(rows)
        metrics = QFontMetrics(self._font(12))
        widest = max(metrics.horizontalAdvance(fmt.format(v)) for row in rows for t in row.terms
                     if isinstance(t, Term) for v in t.values.ravel())
        return QSize(widest + 12, 24)

    def sizeHint(self) -> QSize:
        rows = self.panel.rows
        if not rows:
            return QSize(400, 100)
        cell = self._cell(rows)
        width = max(sum(t.values.shape[1] * cell.width() if isinstance(t, Term) else OPERATOR_WIDTH
                        for t in row.terms) for row in rows) + 2 * PAD
        height = sum(TITLE + max(t.values.shape[0] for t in row.terms if isinstance(t, Term))
                     * cell.height() + 2 * ROW_GAP for row in rows)
        return QSize(width, height + PAD)

    def paintEvent(self, event: QPaintEvent) -> None:
        rows = self.panel.rows
        if not rows:
            return
        colors = DARK if current_theme() == "dark" else LIGHT
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        cell = self._cell(rows)
        fmt = _number_format(rows)
        y = float(PAD)
        for row in rows:
            height = max(t.values.shape[0] for t in row.terms if isinstance(t, Term)) * cell.height()
            x = float(PAD)
            for term in row.terms:
                if isinstance(term, str):
                    # The star of cross-correlation is a small glyph in most fonts.
                    painter.setFont(self._font(34 if term == "⋆" else 22, bold=True))
                    painter.setPen(QColor(colors.text))
                    painter.drawText(QRectF(x, y + TITLE, OPERATOR_WIDTH, height),
                                     Qt.AlignmentFlag.AlignCenter, term)
                    x += OPERATOR_WIDTH
                    continue
                x = self._paint_term(painter, term, x, y, height, cell, fmt, colors)
            painter.setFont(self._font(12, bold=row.check is not None))
            if row.check is None:
                painter.setPen(QColor(colors.muted))
                text = row.note
            else:
                painter.setPen(QColor(colors.ok if row.check else colors.bad))
                text = ("✓ " if row.check else "✗ not ") + row.note
            painter.drawText(QRectF(PAD, y + TITLE + height + 4, self.width() - 2 * PAD, ROW_GAP),
                             Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap, text)
            y += TITLE + height + 2 * ROW_GAP
        painter.end()

    def _paint_term(self, painter: QPainter, term: Term, x: float, y: float, row_height: float,
                    cell: QSize, fmt: str, colors: _Palette) -> float:
        """Draw one matrix vertically centred in its row; the x after it."""
        rows, cols = term.values.shape
        top = y + TITLE + (row_height - rows * cell.height()) / 2
        painter.setFont(self._font(11))
        painter.setPen(QColor(colors.flipped if term.flipped else colors.muted))
        painter.drawText(QRectF(x - 10, top - TITLE, cols * cell.width() + 20, TITLE),
                         Qt.AlignmentFlag.AlignCenter, term.title)
        painter.setFont(self._font(12))
        fill = QColor(getattr(colors, term.role))
        for r in range(rows):
            for c in range(cols):
                rect = QRectF(x + c * cell.width(), top + r * cell.height(), cell.width(),
                              cell.height())
                painter.setPen(QPen(QColor(colors.border), 1))
                painter.setBrush(fill)
                painter.drawRect(rect)
                painter.setPen(QColor(colors.text))
                painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, fmt.format(term.values[r, c]))
        if term.flipped:
            painter.setPen(QPen(QColor(colors.flipped), 2.5))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(QRectF(x, top, cols * cell.width(), rows * cell.height()))
        return x + cols * cell.width()


class CrossCorrelationPanel(QWidget):
    """The cross-correlation note with a worked example from the selected layer.

    Call `set_layer(spec, weights, layer_input)`. State tests read: `example` (the
    CorrelationExample shown), `rows` (the EquationRows painted), `true_convolution` (the
    "Show as true convolution" check box), `source` (where the numbers come from).
    `follow_theme()` redraws after a theme switch.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.example = layer_example(None, None, None)
        self.rows: list[EquationRow] = []
        self.note = QLabel(NOTE)
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.TextFormat.RichText)
        self.source = mute(QLabel())
        self.source.setWordWrap(True)
        self.true_convolution = QCheckBox("Show as true convolution")
        self.true_convolution.setToolTip("Flip the kernel (or the input) and compute a true "
                                         "convolution: the numbers stay the same")
        self.true_convolution.toggled.connect(self._refresh)
        self.canvas = _EquationCanvas(self)
        # Large kernels make wide matrices: scroll rather than squeeze the numbers.
        scroll = QScrollArea()
        scroll.setWidget(self.canvas)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.source)
        layout.addWidget(self.true_convolution)
        layout.addWidget(scroll, 1)
        self._refresh()

    def set_layer(self, spec: LayerSpec | None, weights: Mapping[str, np.ndarray] | None,
                  layer_input: np.ndarray | None) -> None:
        """Show the example for a layer: `weights` its tensors by key ("W" is used), and
        `layer_input` the layer's input (N, C, *spatial), or None for a sample patch. Layers
        other than convolutions show a Sobel kernel instead."""
        self.example = layer_example(spec, dict(weights) if weights is not None else None,
                                     layer_input)
        self._refresh()

    def follow_theme(self) -> None:
        """Redraw in the colours of the theme now applied."""
        self.canvas.update()

    def _refresh(self) -> None:
        self.rows = equations(self.example, self.true_convolution.isChecked())
        self.source.setText(f"Numbers from {self.example.source}; stride 1, no padding, "
                            f"no dilation, rounded for display.")
        self.canvas.setMinimumSize(self.canvas.sizeHint())
        self.canvas.updateGeometry()
        self.canvas.update()
