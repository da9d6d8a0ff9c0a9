"""The stack as a column of layer cards: reorder by drag and drop, delete, duplicate, rename.

Residual blocks expand to show their inner layers; selecting one edits it in the property
editor. The view never edits the stack itself: every change goes through the Document.
"""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QMimeData, QModelIndex, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QAction, QColor, QDropEvent, QFont, QFontMetrics, QKeySequence, \
    QPainter, QPalette, QPen
from PySide6.QtWidgets import (QAbstractItemView, QLineEdit, QStyle, QStyledItemDelegate, QStyleOption,
                               QStyleOptionViewItem, QTreeWidget, QTreeWidgetItem, QWidget)

from gui.document import Document, LayerPath
from gui.palette import ENTRIES, PALETTE_MIME
from gui.theme import colors
from models.analysis import LayerReport, StackReport
from models.errors import ConfigError
from models.layers import LayerInfo, LayerSpec, Residual
from models.stack import Stack

LAYER_MIME = "application/x-convscope-layer-index"
_CARD_ROLE = Qt.ItemDataRole.UserRole

CATEGORY_COLORS = {"Convolution": "#4c9be8", "Efficient": "#3fb6a8", "Pooling": "#e0a03c",
                   "Activation": "#b77be0", "Structure": "#7f8c9b", "Normalisation": "#d8667a"}


def shape_text(shape: tuple[int, ...] | None) -> str:
    return "(" + ", ".join(map(str, shape)) + ")" if shape else "—"


@dataclass(frozen=True)
class Card:
    """What one card shows. state is "ok", "error" or "waiting"; status says why when not ok."""
    path: LayerPath
    number: str
    name: str
    type_name: str
    summary: str
    shape_text: str
    params_text: str
    status: str
    state: str
    category: str


def layer_card(index: int, name: str, spec: LayerSpec, report: LayerReport) -> Card:
    state = "error" if report.error else "waiting" if report.waiting_on is not None else "ok"
    params = (f"{report.params:,} params" if report.params else "no weights") if report.ok else ""
    return Card((index, None), str(index + 1), name, spec.type_name, spec.summary(),
                shape_text(report.output_shape), params, report.status, state, spec.category)


def inner_cards(index: int, block: Residual, report: LayerReport) -> list[Card]:
    """Cards for a residual block's body; an error inside names the inner layer by its field."""
    infos: tuple[LayerInfo, ...] = report.info.inner if report.info else ()
    batch = report.input_shape[:1] if report.input_shape else ()
    failing = None
    if report.error and report.error.field and report.error.field.startswith("body."):
        failing = int(report.error.field.split(".")[1])
    cards = []
    for j, spec in enumerate(block.body):
        info = infos[j] if j < len(infos) else None
        if j == failing:
            state, status = "error", report.error.reason  # type: ignore[union-attr]
        elif info is None:
            state, status = "waiting", ""
        else:
            state, status = "ok", ""
        cards.append(Card((index, j), f"{index + 1}.{j + 1}", spec.type_name, "", spec.summary(),
                          shape_text(batch + tuple(info.output_shape)) if info and batch else "—",
                          (f"{info.params:,} params" if info.params else "no weights") if info
                          else "", status, state, spec.category))
    return cards


class CardDelegate(QStyledItemDelegate):
    """Paints a Card: number, name and type, key settings, output shape, params, and the
    error (red border and message) or the wait (greyed)."""
    PAD = 8
    GUTTER = 30

    def __init__(self, view: StackView) -> None:
        super().__init__(view)
        self.view = view

    def _fonts(self, option: QStyleOptionViewItem) -> tuple[QFont, QFont, QFont]:
        base = QFont(option.font)
        bold = QFont(base)
        bold.setBold(True)
        small = QFont(base)
        if base.pointSizeF() > 0:  # fonts sized in pixels report -1
            small.setPointSizeF(base.pointSizeF() * 0.92)
        return base, bold, small

    def _message_rect(self, rect: QRect) -> QRect:
        return QRect(rect.left() + self.GUTTER + self.PAD, 0,
                     max(rect.width() - self.GUTTER - 2 * self.PAD, 60), 10_000)

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        card: Card = index.data(_CARD_ROLE)
        _, _, small = self._fonts(option)
        line = QFontMetrics(option.font).height()
        height = 2 * line + 2 * self.PAD + 10
        if card and card.status:
            width = self.view.viewport().width() - self.view.indentation() * (card.path[1] is not None)
            rect = self._message_rect(QRect(0, 0, width - 12, 0))
            flags = int(Qt.TextFlag.TextWordWrap)
            height += QFontMetrics(small).boundingRect(rect, flags, card.status).height() + 4
        return QSize(200, height)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        card: Card = index.data(_CARD_ROLE)
        if card is None:
            return
        theme = colors()
        base, bold, small = self._fonts(option)
        # From the selection model: the view's highlight colour is transparent (see StackView).
        selected = self.view.selectionModel().isSelected(index)
        text = option.palette.text().color()
        muted = QColor(theme.muted)
        if card.state == "waiting":
            text = muted = QColor(theme.waiting)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = option.rect.adjusted(6, 3, -6, -3)
        fill = QColor(theme.error_fill if card.state == "error" else theme.card)
        border = QColor(theme.error if card.state == "error" else
                        theme.accent if selected else theme.card_border)
        painter.setPen(QPen(border, 2 if (selected or card.state == "error") else 1))
        painter.setBrush(fill)
        painter.drawRoundedRect(rect, 6, 6)
        # The category strip and the layer's number, so "waiting on layer 3" is easy to find.
        strip = QRect(rect.left() + 1, rect.top() + 1, self.GUTTER - 4, rect.height() - 1)
        category = QColor(CATEGORY_COLORS.get(card.category, theme.card_border))
        if card.state == "waiting":
            category = QColor(theme.waiting)
        category.setAlpha(70)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(category)
        painter.drawRoundedRect(strip, 5, 5)
        painter.setFont(small)
        painter.setPen(muted)
        painter.drawText(strip, Qt.AlignmentFlag.AlignCenter, card.number)

        line = QFontMetrics(base).height()
        left = rect.left() + self.GUTTER + self.PAD
        right = rect.right() - self.PAD
        top = rect.top() + self.PAD
        first = QRect(left, top, right - left, line)
        second = QRect(left, top + line + 4, right - left, line)
        # Line 1: name and type on the left, output shape on the right.
        painter.setFont(bold)
        painter.setPen(text)
        shape_width = QFontMetrics(bold).horizontalAdvance(card.shape_text)
        painter.drawText(first, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                         card.shape_text)
        name_width = QFontMetrics(bold).horizontalAdvance(card.name)
        painter.drawText(first, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, card.name)
        painter.setFont(base)
        painter.setPen(muted)
        type_rect = first.adjusted(name_width + 10, 0, -shape_width - 10, 0)
        painter.drawText(type_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         QFontMetrics(base).elidedText(card.type_name, Qt.TextElideMode.ElideRight,
                                                       max(type_rect.width(), 0)))
        # Line 2: key settings on the left, parameters on the right.
        painter.setFont(small)
        params_width = QFontMetrics(small).horizontalAdvance(card.params_text)
        painter.drawText(second, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                         card.params_text)
        summary_rect = second.adjusted(0, 0, -params_width - 10, 0)
        painter.drawText(summary_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         QFontMetrics(small).elidedText(card.summary, Qt.TextElideMode.ElideRight,
                                                        max(summary_rect.width(), 0)))
        if card.status:
            painter.setPen(QColor(theme.error if card.state == "error" else theme.waiting))
            message = QRect(left, second.bottom() + 6, right - left, rect.bottom() - second.bottom() - 6)
            painter.drawText(message, int(Qt.TextFlag.TextWordWrap) | int(Qt.AlignmentFlag.AlignTop),
                             card.status)
        painter.restore()

    # Inline renaming (F2): the editor shows the name; committing goes through the document.
    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem,
                     index: QModelIndex) -> QWidget:
        editor = QLineEdit(parent)
        editor.setFrame(True)
        return editor

    def setEditorData(self, editor: QWidget, index: QModelIndex) -> None:
        editor.setText(index.data(_CARD_ROLE).name)  # type: ignore[attr-defined]
        editor.selectAll()  # type: ignore[attr-defined]

    def setModelData(self, editor: QWidget, model: object, index: QModelIndex) -> None:
        card: Card = index.data(_CARD_ROLE)
        self.view.rename(card.path[0], editor.text())  # type: ignore[attr-defined]

    def updateEditorGeometry(self, editor: QWidget, option: QStyleOptionViewItem,
                             index: QModelIndex) -> None:
        rect = option.rect.adjusted(6 + self.GUTTER, 4, -8, 0)
        rect.setHeight(editor.sizeHint().height())
        editor.setGeometry(rect)


class StackView(QTreeWidget):
    """Layer cards of the document's stack, in order, with their blocks' inner layers.

    Emits `pathSelected(LayerPath | None)` when the selection moves to another layer and
    `message(str)` for a refused edit (a taken name) to show in the status bar.
    """
    pathSelected = Signal(object)
    message = Signal(str)

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.setHeaderHidden(True)
        self.setIndentation(18)
        self.setUniformRowHeights(False)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.setDropIndicatorShown(True)
        self.setEditTriggers(QAbstractItemView.EditTrigger.EditKeyPressed)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setItemDelegate(CardDelegate(self))
        self.setFrameShape(QTreeWidget.Shape.NoFrame)
        # Cards show the selection with their border; the style's highlight would also paint
        # each selected row's indentation as a coloured strip.
        palette = self.palette()
        palette.setColor(QPalette.ColorRole.Highlight, Qt.GlobalColor.transparent)
        self.setPalette(palette)
        self._expanded: set[str] = set()
        self._selected_name: str | None = None
        self._selected_path: LayerPath | None = None

        self.delete_action = self._action("&Delete", QKeySequence.StandardKey.Delete, self.delete_current)
        self.duplicate_action = self._action("D&uplicate", QKeySequence("Ctrl+D"), self.duplicate_current)
        self.rename_action = self._action("&Rename", QKeySequence("F2"), self.rename_current)

        self.currentItemChanged.connect(self._current_changed)
        self.itemExpanded.connect(lambda item: self._expanded.add(item.data(0, _CARD_ROLE).name))
        self.itemCollapsed.connect(lambda item: self._expanded.discard(item.data(0, _CARD_ROLE).name))
        document.stackChanged.connect(self.show_stack)
        self.show_stack(document.stack, document.report)

    def _action(self, text: str, keys: QKeySequence | QKeySequence.StandardKey,
                slot: object) -> QAction:
        action = QAction(text, self)
        action.setShortcut(keys)
        # Only while the cards have focus: Del in a spin box must not delete a layer.
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    # ---- showing ------------------------------------------------------------------------------
    def show_stack(self, stack: Stack, report: StackReport) -> None:
        """Show the stack's cards, keeping the selected layer (by name) and the open blocks.

        When the layers and blocks are as many as shown, only the cards that changed are
        replaced: a rebuild re-measures and repaints every card, which made each edit cost the
        UI thread about 6 ms more on the demo model (bench/bench_live.py).
        """
        previous = self._selected_path
        cards = []
        for index, (layer, layer_report) in enumerate(zip(stack.layers, report.layers)):
            card = layer_card(index, layer.name, layer.spec, layer_report)
            inner = (inner_cards(index, layer.spec, layer_report)
                     if isinstance(layer.spec, Residual) else [])
            cards.append((card, card.status or layer.spec.description, inner))
        self.blockSignals(True)
        if self._same_structure(cards):
            self._update_cards(cards)
        else:
            self._rebuild(stack, cards)
        path = self._path_after_rebuild(stack, previous)
        current = self.item_at(path) if path is not None else None
        if current is not self.currentItem():
            self.setCurrentItem(current)
        self.blockSignals(False)
        self._selected_path = path
        self._selected_name = stack.layers[path[0]].name if path else None
        if path != previous:
            self.pathSelected.emit(path)

    def _same_structure(self, cards: list[tuple[Card, str, list[Card]]]) -> bool:
        return self.topLevelItemCount() == len(cards) and all(
            self.topLevelItem(i).childCount() == len(inner)
            for i, (_card, _tip, inner) in enumerate(cards))

    def _update_cards(self, cards: list[tuple[Card, str, list[Card]]]) -> None:
        for i, (card, tip, inner) in enumerate(cards):
            item = self.topLevelItem(i)
            old = item.data(0, _CARD_ROLE)
            if old != card:
                item.setData(0, _CARD_ROLE, card)
                item.setToolTip(0, tip)
                if old.name != card.name and old.name in self._expanded:  # renamed
                    self._expanded.discard(old.name)
                    self._expanded.add(card.name)
            for j, inner_card in enumerate(inner):
                child = item.child(j)
                if child.data(0, _CARD_ROLE) != inner_card:
                    child.setData(0, _CARD_ROLE, inner_card)
                    child.setToolTip(0, inner_card.status)

    def _rebuild(self, stack: Stack, cards: list[tuple[Card, str, list[Card]]]) -> None:
        self.clear()
        for layer, (card, tip, inner) in zip(stack.layers, cards):
            item = QTreeWidgetItem(self)
            item.setData(0, _CARD_ROLE, card)
            item.setToolTip(0, tip)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                          | Qt.ItemFlag.ItemIsDragEnabled | Qt.ItemFlag.ItemIsEditable)
            for inner_card in inner:
                child = QTreeWidgetItem(item)
                child.setData(0, _CARD_ROLE, inner_card)
                child.setToolTip(0, inner_card.status)
                child.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            if isinstance(layer.spec, Residual):
                item.setExpanded(layer.name in self._expanded)
        self._expanded &= {layer.name for layer in stack.layers}

    def _path_after_rebuild(self, stack: Stack, previous: LayerPath | None) -> LayerPath | None:
        if previous is None or not stack.layers:
            return None
        names = [layer.name for layer in stack.layers]
        if self._selected_name in names:
            index = names.index(self._selected_name)
        else:  # deleted (or renamed): stay at the same place
            index = min(previous[0], len(names) - 1)
        inner = previous[1] if names[index] == self._selected_name else None
        spec = stack.layers[index].spec
        if inner is not None and not (isinstance(spec, Residual) and inner < len(spec.body)):
            inner = None
        return index, inner

    def item_at(self, path: LayerPath) -> QTreeWidgetItem:
        item = self.topLevelItem(path[0])
        return item if path[1] is None else item.child(path[1])

    def card(self, path: LayerPath | int) -> Card:
        """The card shown for a layer (an index) or a block's inner layer (a path)."""
        path = (path, None) if isinstance(path, int) else path
        return self.item_at(path).data(0, _CARD_ROLE)

    def current_path(self) -> LayerPath | None:
        return self._selected_path

    def select(self, path: LayerPath | int | None) -> None:
        path = (path, None) if isinstance(path, int) else path
        if path is None:
            self.setCurrentItem(None)
            return
        item = self.item_at(path)
        if path[1] is not None:
            item.parent().setExpanded(True)
        self.setCurrentItem(item)

    def _current_changed(self, item: QTreeWidgetItem | None, _previous: object) -> None:
        path = item.data(0, _CARD_ROLE).path if item is not None else None
        self._selected_path = path
        self._selected_name = self.document.stack.layers[path[0]].name if path else None
        self.pathSelected.emit(path)

    def drawBranches(self, painter: QPainter, rect: QRect, index: QModelIndex) -> None:
        # Only the expand arrow of a block: the style's branch area would paint the selection
        # colour as a strip beside every selected card.
        if not self.model().hasChildren(index):
            return
        option = QStyleOption()
        option.initFrom(self)
        option.rect = QRect(rect.right() - self.indentation() + 1, rect.top(), self.indentation(),
                            rect.height())
        option.state = QStyle.StateFlag.State_Children | QStyle.StateFlag.State_Enabled
        if self.isExpanded(index):
            option.state |= QStyle.StateFlag.State_Open
        self.style().drawPrimitive(QStyle.PrimitiveElement.PE_IndicatorBranch, option, painter, self)

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)
        # Card heights depend on the width (wrapped error messages): lay them out again.
        self.scheduleDelayedItemsLayout()

    # ---- editing ------------------------------------------------------------------------------
    def add_from_palette(self, label: str, index: int | None = None) -> None:
        """Add the palette entry `label` at `index` (default: after the selected layer, else at
        the end) with the input's spatial rank, and select it."""
        if index is None:
            index = self._selected_path[0] + 1 if self._selected_path else len(self.document.stack)
        spec = ENTRIES[label].spec(len(self.document.stack.input.spatial))
        try:
            index = self.document.add_layer(spec, index)
        except ConfigError as err:  # the edit would break an edge of the graph
            self.message.emit(err.reason)
            return
        self.select(index)

    def delete_current(self) -> None:
        if self._selected_path is not None:
            try:
                self.document.remove_layer(self._selected_path[0])
            except ConfigError as err:  # other nodes read it: say which, change nothing
                self.message.emit(err.reason)

    def duplicate_current(self) -> None:
        if self._selected_path is not None:
            self.select(self.document.duplicate_layer(self._selected_path[0]))

    def rename_current(self) -> None:
        if self._selected_path is not None:
            self.editItem(self.item_at((self._selected_path[0], None)))

    def rename(self, index: int, name: str) -> None:
        try:
            self.document.rename_layer(index, name)
        except ConfigError as err:
            self.message.emit(err.reason)

    # ---- drag and drop ------------------------------------------------------------------------
    def mimeTypes(self) -> list[str]:
        return [LAYER_MIME, PALETTE_MIME]

    def mimeData(self, items: list[QTreeWidgetItem]) -> QMimeData:
        data = QMimeData()
        paths = [item.data(0, _CARD_ROLE).path for item in items]
        if paths and paths[0][1] is None:
            data.setData(LAYER_MIME, str(paths[0][0]).encode())
        return data

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction | Qt.DropAction.CopyAction

    def drop_row(self, pos: QPoint) -> int:
        """The stack index a drop at `pos` (viewport coordinates) inserts before."""
        item = self.itemAt(pos)
        if item is None:
            return self.topLevelItemCount()
        while item.parent() is not None:
            item = item.parent()
        row = self.indexOfTopLevelItem(item)
        rect = self.visualItemRect(item)
        return row + 1 if pos.y() > rect.center().y() else row

    def dropEvent(self, event: QDropEvent) -> None:
        mime = event.mimeData()
        target = self.drop_row(event.position().toPoint())
        if mime.hasFormat(PALETTE_MIME):
            self.add_from_palette(bytes(mime.data(PALETTE_MIME)).decode(), target)
        elif mime.hasFormat(LAYER_MIME):
            source = int(bytes(mime.data(LAYER_MIME)).decode())
            destination = target - 1 if target > source else target
            try:
                self.document.move_layer(source, destination)
            except ConfigError as err:  # a node would come before what it reads
                self.message.emit(err.reason)
                event.ignore()
                return
            self.select(destination)
        else:
            event.ignore()
            return
        # Copy, not Move: the document has already moved the layer, and a Move would make Qt
        # remove the dragged row from the (rebuilt) tree.
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()
