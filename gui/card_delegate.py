"""What a card shows and how it is painted: a node (number, name, type, settings, output shape,
parameters, its error or wait) or a group with its totals; and,
left of every card, the lanes of the graph (gui.graph_lanes)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex, QPointF, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QLineEdit, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from gui.document import LayerPath
from gui.graph_lanes import RowLanes
from gui.theme import colors

if TYPE_CHECKING:
    from gui.stack_view import StackView

CARD_ROLE = Qt.ItemDataRole.UserRole
KEY_ROLE = Qt.ItemDataRole.UserRole + 1

CATEGORY_COLORS = {"Convolution": "#4c9be8", "Efficient": "#3fb6a8", "Pooling": "#e0a03c",
                   "Activation": "#b77be0", "Structure": "#7f8c9b", "Normalisation": "#d8667a",
                   "Merge": "#5fb85f", "Resampling": "#c9a24a", "Group": "#8a94a6"}
LANE_COLORS = ("#4c9be8", "#e0a03c", "#5fb85f", "#d8667a", "#b77be0", "#3fb6a8", "#c9a24a",
               "#8a94a6")
LANE_STEP = 11  # pixels between lanes
LANE_MARGIN = 8
MAX_LANE_AREA = 120  # more lanes than fit are drawn closer together
INDENT = 16  # per group level
MAX_NAME = 40  # longer names are cut on the card (the tooltip has the whole)


def shape_text(shape: tuple[int, ...] | None) -> str:
    return "(" + ", ".join(map(str, shape)) + ")" if shape else "—"


def short_name(name: str) -> str:
    """Imported names are scope paths ("/layer1/layer1.0/conv1/Conv") whose head the group cards
    already show: keep the last two parts, and cut what is still long from the left."""
    parts = name.strip("/").split("/")
    if len(parts) > 2:
        name = "…/" + "/".join(parts[-2:])
    return name if len(name) <= MAX_NAME else "…" + name[-(MAX_NAME - 1):]


@dataclass(frozen=True)
class Card:
    """What one card shows. state is "ok", "error" or "waiting"; status says why when not ok.

    path is the node's LayerPath (gui.document) for a node, None for a group,
    whose "/" path is `group`. depth is the number of groups around the card.
    """
    path: LayerPath | None
    number: str
    name: str
    type_name: str
    summary: str
    shape_text: str
    params_text: str
    status: str
    state: str
    category: str
    depth: int = 0
    group: str = ""


def lane_x(column: int, width: int) -> float:
    """The x of lane `column` of `width` lanes."""
    step = LANE_STEP if width * LANE_STEP <= MAX_LANE_AREA else MAX_LANE_AREA / width
    return LANE_MARGIN + column * step


def lanes_width(width: int) -> int:
    """Pixels the lanes of `width` columns take left of the cards."""
    return int(lane_x(max(width, 1) - 1, width)) + LANE_MARGIN + 4


class CardDelegate(QStyledItemDelegate):
    """Paints a Card: number, name and type, key settings, output shape, params, and the
    error (red border and message) or the wait (greyed); a group's card has its totals and an
    arrow; and the lanes left of it."""
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

    def card_left(self, card: Card) -> int:
        return self.view.lane_area + card.depth * INDENT

    def _message_rect(self, left: int, width: int) -> QRect:
        return QRect(left + self.GUTTER + self.PAD, 0,
                     max(width - left - self.GUTTER - 2 * self.PAD, 60), 10_000)

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        # Asked for every open card whenever the cards are laid out again (per-pixel scrolling
        # needs their total height), so a card without a message costs one metrics lookup.
        card: Card = index.data(CARD_ROLE)
        line = QFontMetrics(option.font).height()
        height = 2 * line + 2 * self.PAD + 10
        if card and card.status:
            _, _, small = self._fonts(option)
            rect = self._message_rect(self.card_left(card), self.view.viewport().width() - 12)
            flags = int(Qt.TextFlag.TextWordWrap)
            height += QFontMetrics(small).boundingRect(rect, flags, card.status).height() + 4
        return QSize(200, height)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        card: Card = index.data(CARD_ROLE)
        if card is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        lanes = self.view.lanes_at(index)
        if lanes is not None:
            self._paint_lanes(painter, option.rect, lanes, card)
        self._paint_card(painter, option, index, card)
        painter.restore()

    def _paint_lanes(self, painter: QPainter, row: QRect, lanes: RowLanes, card: Card) -> None:
        width = self.view.lane_columns
        top, bottom = float(row.top()), float(row.bottom() + 1)
        mid = row.top() + row.height() / 2

        def pen(column: int) -> QPen:  # by column, as lanes never move sideways: one colour each
            return QPen(QColor(LANE_COLORS[column % len(LANE_COLORS)]), 2)

        for c in lanes.through + lanes.taps:
            painter.setPen(pen(c))
            painter.drawLine(QPointF(lane_x(c, width), top), QPointF(lane_x(c, width), bottom))
        if lanes.node is None:
            return
        dot = QPointF(lane_x(lanes.node, width), mid)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for c in lanes.ends + lanes.taps:
            painter.setPen(pen(c))
            x = lane_x(c, width)
            path = QPainterPath(QPointF(x, top if c in lanes.ends else mid - 8))
            if c in lanes.ends:
                path.lineTo(QPointF(x, mid - 8))
            path.quadTo(QPointF(x, mid), dot)
            painter.drawPath(path)
        if lanes.out is not None:
            painter.setPen(pen(lanes.out))
            x = lane_x(lanes.out, width)
            path = QPainterPath(dot)
            path.quadTo(QPointF(x, mid), QPointF(x, mid + 8))
            path.lineTo(QPointF(x, bottom))
            painter.drawPath(path)
        theme = colors()
        painter.setPen(QPen(QColor(theme.accent), 1.5))
        painter.setBrush(QColor(theme.card))
        if card.path is None:  # a collapsed group: a square, for "several nodes"
            painter.drawRect(QRect(int(dot.x()) - 4, int(mid) - 4, 8, 8))
        else:
            painter.drawEllipse(dot, 4, 4)

    def _paint_card(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex,
                    card: Card) -> None:
        theme = colors()
        base, bold, small = self._fonts(option)
        # From the selection model: the view's highlight colour is transparent (see StackView).
        selected = self.view.selectionModel().isSelected(index)
        text = option.palette.text().color()
        muted = QColor(theme.muted)
        if card.state == "waiting":
            text = muted = QColor(theme.waiting)
        rect = option.rect.adjusted(6 + self.card_left(card), 3, -6, -3)
        fill = QColor(theme.error_fill if card.state == "error" else theme.card)
        border = QColor(theme.error if card.state == "error" else
                        theme.accent if selected else theme.card_border)
        painter.setPen(QPen(border, 2 if (selected or card.state == "error") else 1,
                            Qt.PenStyle.DashLine if card.path is None else Qt.PenStyle.SolidLine))
        painter.setBrush(fill)
        painter.drawRoundedRect(rect, 6, 6)
        # The category strip and the layer's number, so "waiting on layer 3" is easy to find;
        # a group's strip holds its open/closed arrow.
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
        number = card.number
        if self.view.model().hasChildren(index):
            number = ("▾ " if self.view.isExpanded(index) else "▸ ") + (number if card.path else "")
        painter.drawText(strip, Qt.AlignmentFlag.AlignCenter, number)

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
        name = QFontMetrics(bold).elidedText(short_name(card.name), Qt.TextElideMode.ElideLeft,
                                             max(first.width() - shape_width - 20, 40))
        name_width = QFontMetrics(bold).horizontalAdvance(name)
        painter.drawText(first, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, name)
        painter.setFont(base)
        painter.setPen(muted)
        type_rect = first.adjusted(name_width + 10, 0, -shape_width - 10, 0)
        painter.drawText(type_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         QFontMetrics(base).elidedText(card.type_name, Qt.TextElideMode.ElideRight,
                                                       max(type_rect.width(), 0)))
        # Line 2: key settings (and what the node reads) on the left, parameters on the right.
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

    # Inline renaming (F2): the editor shows the name; committing goes through the document.
    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem,
                     index: QModelIndex) -> QWidget:
        editor = QLineEdit(parent)
        editor.setFrame(True)
        return editor

    def setEditorData(self, editor: QWidget, index: QModelIndex) -> None:
        editor.setText(index.data(CARD_ROLE).name)  # type: ignore[attr-defined]
        editor.selectAll()  # type: ignore[attr-defined]

    def setModelData(self, editor: QWidget, model: object, index: QModelIndex) -> None:
        card: Card = index.data(CARD_ROLE)
        if card.path is not None:
            self.view.rename(card.path[0], editor.text())  # type: ignore[attr-defined]

    def updateEditorGeometry(self, editor: QWidget, option: QStyleOptionViewItem,
                             index: QModelIndex) -> None:
        card: Card = index.data(CARD_ROLE)
        rect = option.rect.adjusted(6 + self.GUTTER + self.card_left(card), 4, -8, 0)
        rect.setHeight(editor.sizeHint().height())
        editor.setGeometry(rect)
