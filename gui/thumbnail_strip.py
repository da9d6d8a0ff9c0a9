"""The strip of per-layer thumbnails under the feature maps: one same-sized icon per layer, and a
click (or the arrow keys) chooses that layer.

A model of 668 layers once cost a 300 ms pause on the UI thread after it opened: one QToolButton
per layer, every thumbnail coloured and scaled at once. Here one QListView shows a list model
whose thumbnails are coloured only when Qt asks for one, which it does for the items in sight,
so the strip's cost follows what is visible, not the model's size. A drawn icon is kept while
its output array and colour table stay the same objects: after an edit the engine hands back
the outputs it reused as the same arrays, so only the changed layers in sight are drawn again.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import (QAbstractListModel, QItemSelectionModel, QModelIndex,
                            QPersistentModelIndex, QSize, Qt, Signal)
from PySide6.QtGui import QColor, QFontMetrics, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QFrame, QListView, QStyle, QStyledItemDelegate,
                               QStyleOptionViewItem, QWidget)

from engine.executor import RunResult
from gui.layer_previews import PreviewCache
from gui.mosaic import THUMBNAIL_SIDE, lut_indices
from gui.theme import colors

THUMB_SIZE = THUMBNAIL_SIDE // 2  # the strip's icons, drawn from previews twice as large
THUMB_BUTTON_WIDTH = THUMB_SIZE + 24  # every item alike; longer names are elided
ITEM_SPACING = 3
ICON_INSET = 3  # pixels between an item's top and its icon
STRIP_HEIGHT = THUMB_SIZE + 48  # an item, its name and a horizontal scroll bar

AnyIndex = QModelIndex | QPersistentModelIndex


def colour_image(image: np.ndarray, lut: np.ndarray) -> QImage:
    """A float image (H, W) coloured as the mosaics are (values in [0, 1] through lut's colour-map
    entries, values below 0 in its background entry), as an RGB QImage that owns its pixels."""
    rgb = np.ascontiguousarray(lut[lut_indices(image)])
    height, width = image.shape
    return QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


class ThumbnailModel(QAbstractListModel):
    """One row per layer of the shown result: its name elided to the item's width (display), its
    thumbnail (decoration, drawn on request; none for a layer not computed) and a tooltip
    ("name: output C×H×W" or "name: not computed").

    `draws` counts the thumbnails coloured so far (tests and benchmarks read it); `is_drawn(row)`
    says whether a row's icon is held ready."""

    def __init__(self, previews: PreviewCache, metrics: QFontMetrics) -> None:
        super().__init__()
        self._previews = previews
        self._metrics = metrics
        self._names: list[str] = []
        self._outputs: list[np.ndarray | None] = []
        self._lut: np.ndarray | None = None
        # id(output) -> (output, its icon in the current lookup table; a new table clears them
        # all); the output is held so that its id cannot be reused while the entry lives.
        self._icons: dict[int, tuple[np.ndarray, QIcon]] = {}
        self._item_size = QSize(THUMB_BUTTON_WIDTH, THUMB_SIZE + metrics.height() + 12)
        self.draws = 0

    def show_layers(self, result: RunResult, lut: np.ndarray) -> None:
        """Show result's layers coloured with lut. Rows whose name and output are unchanged keep
        their icon; views are told only of the rows that changed."""
        names = [layer.name for layer in result.stack.layers]
        outputs = list(result.outputs)
        if lut is not self._lut:
            self._icons.clear()
        else:  # forget icons of outputs that are gone, keep those the engine reused
            kept = {id(output) for output in outputs if output is not None}
            self._icons = {key: entry for key, entry in self._icons.items() if key in kept}
        old_names, old_outputs, self._lut = self._names, self._outputs, lut
        if len(names) != len(old_names):
            self.beginResetModel()
            self._names, self._outputs = names, outputs
            self.endResetModel()
            return
        self._names, self._outputs = names, outputs
        changed = [row for row in range(len(names))
                   if names[row] != old_names[row] or outputs[row] is not old_outputs[row]
                   or (outputs[row] is not None and id(outputs[row]) not in self._icons)]
        if changed:
            self.dataChanged.emit(self.index(changed[0]), self.index(changed[-1]))

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._names)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._names):
            return None
        row = index.row()
        name, output = self._names[row], self._outputs[row]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._metrics.elidedText(name, Qt.TextElideMode.ElideMiddle,
                                            THUMB_BUTTON_WIDTH - 8)
        if role == Qt.ItemDataRole.DecorationRole:
            return None if output is None else self._icon(output)
        if role == Qt.ItemDataRole.ToolTipRole:
            if output is None:
                return f"{name}: not computed"
            return f"{name}: output {'×'.join(map(str, output.shape[1:]))}"
        if role == Qt.ItemDataRole.SizeHintRole:
            # Answered without the icon, so laying the strip out draws no thumbnail.
            return self._item_size
        return None

    def is_drawn(self, row: int) -> bool:
        output = self._outputs[row]
        return output is not None and id(output) in self._icons

    def _icon(self, output: np.ndarray) -> QIcon:
        entry = self._icons.get(id(output))
        if entry is not None and entry[0] is output:
            return entry[1]
        assert self._lut is not None  # set with the outputs
        pixmap = QPixmap.fromImage(colour_image(self._previews.thumbnail(output), self._lut))
        icon = QIcon(pixmap.scaled(THUMB_SIZE, THUMB_SIZE, Qt.AspectRatioMode.IgnoreAspectRatio,
                                   Qt.TransformationMode.SmoothTransformation))
        self._icons[id(output)] = (output, icon)
        self.draws += 1
        return icon


class _SelectedAsChecked(QStyledItemDelegate):
    """Draws the selected item as a checked tool button looks (a framed panel behind icon and
    name) instead of an item view's highlighted name, so every name keeps its contrast; the
    icon sits a few pixels below the panel's edge, as on a button."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        if option.state & QStyle.StateFlag.State_Selected:
            painter.save()
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(QColor(colors().card_border))
            painter.setBrush(option.palette.button())
            painter.drawRoundedRect(option.rect.adjusted(0, 0, -1, -1), 3, 3)
            painter.restore()
        plain = QStyleOptionViewItem(option)
        plain.state &= ~QStyle.StateFlag.State_Selected
        plain.rect = option.rect.adjusted(0, ICON_INSET, 0, 0)
        super().paint(painter, plain, index)


class ThumbnailStrip(QListView):
    """One item per layer showing its thumbnail, in one scrolling row; `chosen(index)` when the
    person picks one (a click, or the arrow, Home and End keys).

    Every item has the same size and every icon is THUMB_SIZE square, whatever the output
    (gui.mosaic.thumbnail: maps, a signal's heat map, a vector's bars); a name longer than the
    item is elided in the middle, and the tooltip has it whole. `thumbnails` is the model (rows,
    texts, tooltips, icons, draws); `marked()` is the row selected."""
    chosen = Signal(int)

    def __init__(self, previews: PreviewCache, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.thumbnails = ThumbnailModel(previews, self.fontMetrics())
        self.setModel(self.thumbnails)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setSpacing(ITEM_SPACING)
        self.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setFixedHeight(STRIP_HEIGHT)
        self.setItemDelegate(_SelectedAsChecked(self))
        self._marking = False  # mark() moves the current item: that is no person's choice
        self.selectionModel().currentChanged.connect(self._current_changed)

    def show_layers(self, result: RunResult, lut: np.ndarray) -> None:
        """An item for every layer of result: a thumbnail, or none past a failure (see
        ThumbnailModel.show_layers for what is redrawn)."""
        self.thumbnails.show_layers(result, lut)

    def mark(self, index: int | None) -> None:
        """Select layer `index` (none for None) and scroll it into sight, without `chosen`."""
        self._marking = True
        try:
            if index is None or not 0 <= index < self.thumbnails.rowCount():
                self.selectionModel().clear()
                return
            item = self.thumbnails.index(index)
            self.selectionModel().setCurrentIndex(
                item, QItemSelectionModel.SelectionFlag.ClearAndSelect)
            self.scrollTo(item)
        finally:
            self._marking = False

    def marked(self) -> int | None:
        rows = self.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid() and not self._marking:
            self.chosen.emit(current.row())
