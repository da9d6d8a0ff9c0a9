"""The Summary dock, in torchinfo's manner: one row per node in topological order, group rows
with their totals that fold and unfold, and a Total row under the tree that stays visible however
far the tree scrolls.

Totals come from the StackReport, which counts each parameter tensor once, so blocks never
double-count; group totals are models.summary_table.group_totals, as the command line prints them.
The Inputs column shows only when the network branches, the Saves column only when some node
saves parameters against a plain convolution. An edit that keeps the rows (the same nodes in the
same groups) rewrites only the rows whose texts changed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)

from gui.card_delegate import short_name
from gui.document import Document
from gui.group_tree import TreeEntry, group_tree, walk
from gui.stack_view import COLLAPSE_ABOVE
from gui.theme import colors
from models.analysis import LayerReport, StackReport
from models.stack import Stack
from models.summary_table import GroupTotals, group_totals

COLUMNS = ("Layer", "Type", "Output shape", "Params", "MACs", "Receptive field", "Activations",
           "Saves", "Inputs")
_NUMERIC = frozenset(COLUMNS.index(c) for c in ("Params", "MACs", "Activations"))
_SAVES, _INPUTS = COLUMNS.index("Saves"), COLUMNS.index("Inputs")
_OPAQUE_TIP = ("Computed by onnxruntime: ConvScope has no layer of its own for this ONNX "
               "operator, so it cannot explain it or show its kernels.")
_KEY = Qt.ItemDataRole.UserRole  # a row's key: "n:<index>" or "g:<path>#<piece>"
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_PADDING = 14  # pixels a cell needs beyond its text's advance (margins and focus frame)


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


def is_branched(report: StackReport) -> bool:
    """Whether some node reads other than the node before it (then rows name their inputs)."""
    return any(r.sources != (r.index - 1,) for r in report.layers)


@dataclass
class SummaryRow:
    """One row of the tree: its cells in COLUMNS order, a tooltip per cell ("" for none), its
    state ("ok", "error", "waiting"; a group's is its worst member's), and the rows folded under
    it. index is the node's index, None for a group (whose "/" path is `group`)."""
    key: str
    texts: tuple[str, ...]
    tips: tuple[str, ...]
    state: str
    index: int | None = None
    group: str = ""
    children: list[SummaryRow] = field(default_factory=list)

    @property
    def look(self) -> tuple:
        """What the row shows: equal looks need no redraw."""
        return self.texts, self.tips, self.state


def node_row(report: LayerReport) -> SummaryRow:
    """A node's row: short name (the full one in the tooltip), type (opaque nodes marked), shape,
    costs, receptive field, saving, and the names it reads."""
    tips = [""] * len(COLUMNS)
    tips[0] = report.name
    type_name = report.type_name
    if report.engine == "onnxruntime":
        type_name += " · onnxruntime"
        tips[1] = _OPAQUE_TIP
    inputs = ", ".join(short_name(n) for n in report.input_names)
    tips[_INPUTS] = "\n".join(report.input_names)
    if report.ok:
        rf = "x".join(map(str, report.receptive_field)) or "—"
        texts = (short_name(report.name), type_name, shape_text(report.output_shape),
                 f"{report.params:,}", human_count(report.macs), rf,
                 human_bytes(report.activation_bytes), saves_text(report), inputs)
        state = "ok"
    else:
        state = "error" if report.error is not None else "waiting"
        status = "error" if report.error is not None else report.status
        tips[0] = f"{report.name}\n{report.status}"
        tips[2] = report.status
        texts = (short_name(report.name), type_name, status, "", "", "", "", "", inputs)
    return SummaryRow(f"n:{report.index}", texts, tuple(tips), state, index=report.index)


def group_row(totals: GroupTotals, key: str, state: str) -> SummaryRow:
    """A group's row: its last path part, its node count, and the totals of all its nodes."""
    count = f"{totals.layers} node{'s' if totals.layers != 1 else ''}"
    texts = (totals.name.rsplit("/", 1)[-1], f"group · {count}", shape_text(totals.output_shape),
             f"{totals.params:,}", human_count(totals.macs), "",
             human_bytes(totals.activation_bytes), "", "")
    tips = [""] * len(COLUMNS)
    tips[0] = f"group {totals.name}: totals of its {count}"
    return SummaryRow(key, texts, tuple(tips), state, group=totals.name)


def total_texts(report: StackReport) -> tuple[str, ...]:
    """The Total row's cells in COLUMNS order."""
    count = len(report.layers)
    return ("Total", f"{count} node{'s' if count != 1 else ''}",
            shape_text(report.output_shape) if report.ok else "", f"{report.total_params:,}",
            human_count(report.total_macs), "", human_bytes(report.total_activation_bytes), "", "")


def summary_rows(report: StackReport) -> list[SummaryRow]:
    """The rows to show: nodes in topological order, each inside the rows of its groups, nested
    as the cards nest them (gui.group_tree): a group that other nodes interrupt shows again
    where it resumes, with the same totals (the whole group's, as on its cards and in the
    command line's summary); a group row holding one node shows as the node, and one holding
    one group as one row for both."""
    totals = {t.name: t for t in group_totals(report)}
    worst: dict[str, str] = {}  # a folded group still shows an error or a wait inside it
    for r in report.layers:
        if not r.ok and r.group:
            parts = r.group.split("/")
            for depth in range(1, len(parts) + 1):
                path = "/".join(parts[:depth])
                if worst.get(path) != "error":
                    worst[path] = "error" if r.error is not None else "waiting"

    def row(entry: TreeEntry) -> SummaryRow:
        if entry.index is None:
            made = group_row(totals[entry.group], entry.key, worst.get(entry.group, "ok"))
            made.texts = (entry.label, *made.texts[1:])
            made.children = [row(child) for child in entry.children]
            return made
        return node_row(report.layers[entry.index])

    return [row(entry) for entry in group_tree([r.group for r in report.layers])]


def _signature(rows: list[SummaryRow]) -> tuple:
    return tuple((row.key, _signature(row.children)) for row in rows)


class _Footer(QTreeWidget):
    """The one Total row, under the tree, with the tree's columns: it never scrolls away."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setColumnCount(len(COLUMNS))
        self.setHeaderHidden(True)
        self.setRootIsDecorated(False)
        self.setIndentation(0)
        self.setUniformRowHeights(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.header().setStretchLastSection(False)
        self.row = QTreeWidgetItem(self, [""] * len(COLUMNS))
        font = QFont(self.font())
        font.setBold(True)
        for column in range(len(COLUMNS)):
            self.row.setFont(column, font)
            if column in _NUMERIC:
                self.row.setTextAlignment(column, _RIGHT)
        self.setFixedHeight(self.sizeHintForRow(0) + 2 * self.frameWidth() + 2)

    def match_viewport(self, width: int) -> None:
        """Narrow the viewport to `width` (the tree's, less its vertical scroll bar) so both
        scroll horizontally over the same range and the columns stay aligned."""
        self.setViewportMargins(0, 0, max(0, self.width() - 2 * self.frameWidth() - width), 0)


class SummaryTable(QWidget):
    """The document's nodes and groups with shapes, costs and receptive fields, and the totals.

    `tree` holds the rows, `footer` the Total row. Emits `layerChosen(int)` when a person moves
    the current row to a node (a click or the keys); select_layer() follows the window's
    selection without emitting.
    """
    layerChosen = Signal(int)

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setUniformRowHeights(True)  # the view lays out 700 rows without measuring each
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setAllColumnsShowFocus(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setWordWrap(False)
        self.tree.setIndentation(14)
        self.tree.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        header = self.tree.header()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        header.setSectionsMovable(False)  # the footer's cells follow the columns by position
        self.footer = _Footer()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.footer)

        header.sectionResized.connect(
            lambda column, _old, new: self.footer.setColumnWidth(column, new))
        self.tree.horizontalScrollBar().valueChanged.connect(
            self.footer.horizontalScrollBar().setValue)
        self.tree.viewport().installEventFilter(self)
        self.footer.installEventFilter(self)
        self.tree.currentItemChanged.connect(self._current_changed)
        self.tree.itemExpanded.connect(lambda item: self._expanded.add(item.data(0, _KEY)))
        self.tree.itemCollapsed.connect(lambda item: self._expanded.discard(item.data(0, _KEY)))

        self._items: dict[str, QTreeWidgetItem] = {}
        self._looks: dict[str, tuple] = {}  # what each row shows, as last filled
        self._signature: tuple = ()
        self._expanded: set[str] = set()
        self._selected: int | None = None
        self._totals: tuple[str, ...] = ()
        self._bold = QFont(self.tree.font())  # group names, so they read as headings
        self._bold.setBold(True)
        self.document = document
        document.stackChanged.connect(self.show_report)
        self.show_report(document.stack, document.report)

    # ---- showing ------------------------------------------------------------------------------
    def show_report(self, _stack: Stack, report: StackReport) -> None:
        """Show the report's rows: rewrite the changed ones when the rows are the same ones
        (nodes by position, groups by path), else rebuild keeping the folds that still apply."""
        rows = summary_rows(report)
        signature = _signature(rows)
        self.tree.blockSignals(True)
        if signature == self._signature:
            self._update(rows)
        else:
            self._rebuild(rows, len(report.layers))
        self._show_columns(report)
        self._show_totals(report)
        self._fit_totals()
        self._signature = signature
        self.tree.blockSignals(False)

    def _update(self, rows: list[SummaryRow]) -> None:
        changed = [(row, depth) for row, depth in walk(rows)
                   if self._looks.get(row.key) != row.look]
        for row, _depth in changed:
            self._fill(self._items[row.key], row)
            self._looks[row.key] = row.look
        self._fit_columns(changed, grow_only=True)

    def _rebuild(self, rows: list[SummaryRow], nodes: int) -> None:
        keys = {row.key for row, _depth in walk(rows)}
        groups = {key for key in keys if key.startswith("g:")}
        if groups and not groups & set(self._items):
            # Another network: a big one opens folded, so it reads as its blocks.
            self._expanded = set(groups) if nodes <= COLLAPSE_ABOVE else set()
        else:  # groups an edit added open, so their new nodes can be seen
            self._expanded |= groups - set(self._items)
        self._expanded &= keys
        self.tree.setUpdatesEnabled(False)
        self.tree.clear()
        self._items, self._looks = {}, {}
        self.tree.addTopLevelItems(self._make_items(rows))
        self.tree.setRootIsDecorated(bool(groups))  # fold arrows only where there is a fold
        for key in self._expanded:
            self._items[key].setExpanded(True)
        selected = self._items.get(f"n:{self._selected}")
        self.tree.setCurrentItem(selected)  # signals are blocked: the window chose it already
        if selected is None:
            self._selected = None
        self._fit_columns(list(walk(rows)), grow_only=False)
        self.tree.setUpdatesEnabled(True)

    def _make_items(self, rows: list[SummaryRow]) -> list[QTreeWidgetItem]:
        items = []
        for row in rows:
            item = QTreeWidgetItem(list(row.texts))
            item.setData(0, _KEY, row.key)
            for column in _NUMERIC:
                item.setTextAlignment(column, _RIGHT)
            self._fill(item, row, fresh=True)
            self._items[row.key] = item
            self._looks[row.key] = row.look
            item.addChildren(self._make_items(row.children))
            items.append(item)
        return items

    def _fill(self, item: QTreeWidgetItem, row: SummaryRow, fresh: bool = False) -> None:
        """Show the row's texts, tooltips and state colour in `item`. A fresh item, made with
        the texts, gets only the tips and colour it has (a rebuild of 700 rows otherwise spent
        a third of its time setting texts again and empty tips)."""
        theme = colors()
        colour = {"error": theme.error, "waiting": theme.waiting}.get(row.state)
        brush = QBrush(QColor(colour)) if colour else QBrush()
        for column, (text, tip) in enumerate(zip(row.texts, row.tips)):
            if not fresh:
                item.setText(column, text)
            if tip or not fresh:
                item.setToolTip(column, tip)
            if colour or not fresh:
                item.setForeground(column, brush)
        if row.index is None:
            item.setFont(0, self._bold)

    def _fit_columns(self, rows: list[tuple[SummaryRow, int]], grow_only: bool) -> None:
        """Fit each column to its header and to these rows' texts, folded rows included (the
        view's own fitting measures only the rows it shows, so opening a group would cut its
        texts); grow_only keeps wider columns, so an edit never makes them jump."""
        header = self.tree.header()
        plain = QFontMetrics(self.tree.font())
        bold = QFontMetrics(self._bold)
        indent = self.tree.indentation()
        decorated = 1 if self.tree.rootIsDecorated() else 0
        for column in range(len(COLUMNS)):
            if column == 0:  # names after their indentation, a group's in bold
                needed = max(((bold if row.index is None else plain).horizontalAdvance(row.texts[0])
                              + indent * (depth + decorated) for row, depth in rows),
                             default=indent * decorated)
            else:  # texts repeat (types, shapes, counts): each distinct one measured once
                needed = max(map(plain.horizontalAdvance, {row.texts[column] for row, _ in rows}),
                             default=0)
            needed += _PADDING
            if grow_only and needed > self.tree.columnWidth(column):
                self.tree.setColumnWidth(column, needed)
            elif not grow_only:
                label = header.sectionSizeFromContents(column).width()
                self.tree.setColumnWidth(column, max(needed, label))

    def _show_columns(self, report: StackReport) -> None:
        """Saves only where some node saves; Inputs only where the network branches."""
        for column, shown in ((_SAVES, any(saves_text(r) for r in report.layers)),
                              (_INPUTS, is_branched(report))):
            if self.tree.isColumnHidden(column) == shown:
                self.tree.setColumnHidden(column, not shown)
                self.footer.setColumnHidden(column, not shown)

    def _show_totals(self, report: StackReport) -> None:
        texts = total_texts(report)
        if texts == self._totals:
            return
        self._totals = texts
        for column, text in enumerate(texts):
            self.footer.row.setText(column, text)
        tip = str(report.first_error) if report.first_error else \
            "every node's parameters, MACs and activations (each weight counted once)"
        self.footer.row.setToolTip(0, tip)

    def _fit_totals(self) -> None:
        """Widen the columns whose bold totals would not fit: the footer follows the tree's
        column widths, which fit the rows' lighter texts."""
        metrics = QFontMetrics(self.footer.row.font(0))
        for column, text in enumerate(self._totals):
            needed = metrics.horizontalAdvance(text) + _PADDING if text else 0
            if needed > self.tree.columnWidth(column):
                self.tree.setColumnWidth(column, needed)

    def follow_theme(self) -> None:
        """Refill every row in the current theme's colours."""
        self._looks = {}
        self._totals = ()
        self.show_report(self.document.stack, self.document.report)

    # ---- selection ----------------------------------------------------------------------------
    def select_layer(self, index: int | None) -> None:
        """Make node `index` the current row (opening the groups around it), or none; emits
        nothing, so following the window's selection never loops back."""
        item = self._items.get(f"n:{index}") if index is not None else None
        self._selected = index if item is not None else None
        self.tree.blockSignals(True)
        parent = item.parent() if item is not None else None
        while parent is not None:
            parent.setExpanded(True)
            self._expanded.add(parent.data(0, _KEY))
            parent = parent.parent()
        self.tree.setCurrentItem(item)
        self.tree.blockSignals(False)
        if item is not None:
            self.tree.scrollToItem(item)

    def _current_changed(self, item: QTreeWidgetItem | None, _previous: object) -> None:
        key = item.data(0, _KEY) if item is not None else None
        if key is not None and key.startswith("n:"):
            self._selected = int(key[2:])
            self.layerChosen.emit(self._selected)

    # ---- reading (tests and the window) -------------------------------------------------------
    def node_item(self, index: int) -> QTreeWidgetItem:
        """The row of node `index`."""
        return self._items[f"n:{index}"]

    def group_item(self, group: str, piece: int = 1) -> QTreeWidgetItem:
        """The row of group `group` (its `piece`-th row when other nodes interrupt it)."""
        return self._items[f"g:{group}#{piece}"]

    def all_items(self) -> list[QTreeWidgetItem]:
        """Every row of the tree in display order, folded ones included (not the Total row)."""
        items: list[QTreeWidgetItem] = []
        todo = [self.tree.topLevelItem(i) for i in reversed(range(self.tree.topLevelItemCount()))]
        while todo:
            item = todo.pop()
            items.append(item)
            todo.extend(item.child(i) for i in reversed(range(item.childCount())))
        return items

    def node_count(self) -> int:
        """How many rows of the tree are nodes' (the others are groups')."""
        return sum(1 for item in self.all_items() if item.data(0, _KEY).startswith("n:"))

    def cell_text(self, row: int, column: str) -> str:
        """The text of node `row`'s cell by column name; row -1 is the Total row."""
        item = self.footer.row if row == -1 else self.node_item(row)
        return item.text(COLUMNS.index(column))

    def column_shown(self, column: str) -> bool:
        """Whether the column named `column` shows (Saves and Inputs show only where they apply)."""
        return not self.tree.isColumnHidden(COLUMNS.index(column))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize and watched in (self.tree.viewport(), self.footer):
            self.footer.match_viewport(self.tree.viewport().width())
        return super().eventFilter(watched, event)

