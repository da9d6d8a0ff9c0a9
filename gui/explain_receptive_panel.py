"""The "Receptive field" tab: the input and every earlier layer's map, each with the clicked
pixel's exact receptive field tinted and its bounding box outlined.

Each map is the channel mean of sample 0 (a volume's slice through the field's middle), in
grey; the field is tinted orange pixel by pixel, so the holes of a dilated kernel stay visible.
Element-wise layers (activations, normalisation) are left out: their field is the one of the
layer before them.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import (QCheckBox, QGraphicsRectItem, QGridLayout, QHBoxLayout, QLabel,
                               QVBoxLayout, QWidget)

from engine.executor import RunResult
from gui.mosaic import normalise
from gui.theme import mute
from models.layers import BatchNorm, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from models.receptive_window import extent

ELEMENTWISE = (ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, BatchNorm)
FIELD_RGB = (255, 150, 0)
FIELD_ALPHA = 150
COLUMNS = 4
SIGNAL_ROWS = 6  # a 1D map is drawn this many rows tall so it reads as a strip, not a line
MIN_MARGIN = 8  # zoomed, a map shows at least this many pixels around its field


def field_overlay(mask: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 RGBA: the field's colour where mask is set, transparent elsewhere."""
    rgba = np.zeros((*mask.shape, 4), np.uint8)
    rgba[mask] = (*FIELD_RGB, FIELD_ALPHA)
    return rgba


def plane(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """A (H, W) grey image of one sample's (C, *spatial) values and the matching (H, W) mask:
    the channel mean; a signal as a strip; a volume's slice through the field's middle."""
    mean = values.mean(axis=0)
    if mean.ndim == 1:
        return (np.repeat(mean[np.newaxis], SIGNAL_ROWS, axis=0),
                np.repeat(mask[np.newaxis], SIGNAL_ROWS, axis=0), "")
    if mean.ndim == 3:
        depths = np.flatnonzero(mask.any(axis=(1, 2)))
        depth = int(depths[len(depths) // 2]) if len(depths) else mean.shape[0] // 2
        return mean[depth], mask[depth], f" · depth {depth}"
    return mean, mask, ""


class ReceptivePanel(QWidget):
    """Draws `show(result, layer_index, masks)`: masks as models.receptive_window gives them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = mute(QLabel("Click a pixel of a feature map to see what it sees."))
        self.caption.setWordWrap(True)
        self.zoom = QCheckBox("Zoom to the field")
        self.zoom.setChecked(True)
        self.zoom.setToolTip("Show each map around its field (off: the whole map)")
        self.zoom.toggled.connect(lambda _on: self._frame_all())
        # One small plot widget per map in an equal-column grid, so every map is drawn at the
        # same scale.
        self.canvas = QWidget()
        self.grid = QGridLayout(self.canvas)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.boxes: list[pg.ViewBox] = []
        self._fields: list[QRectF | None] = []  # each box's field bounds, for zooming
        self.titles: list[str] = []  # one per drawn map, for tests and screenshots
        top = QHBoxLayout()
        top.addWidget(self.caption, 1)
        top.addWidget(self.zoom)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.canvas, 1)

    def clear(self, text: str) -> None:
        while self.grid.count():
            plot = self.grid.takeAt(0).widget()
            plot.hide()  # at once: deleteLater alone would leave it drawn until the next loop
            plot.deleteLater()
        self.boxes, self._fields, self.titles = [], [], []
        self.caption.setText(text)

    def show(self, result: RunResult, layer_index: int, masks: list[np.ndarray]) -> None:
        """The input and each earlier non-element-wise layer with its field, then the clicked
        layer's map with the clicked pixel."""
        self.clear("")
        layers = result.stack.layers
        tensors = [("input", result.input[0], masks[0], False)]
        for j in range(layer_index + 1):
            if j < layer_index and isinstance(layers[j].spec, ELEMENTWISE):
                continue
            output = result.outputs[j]
            if output is not None and output.ndim > 2:
                tensors.append((layers[j].name, output[0], masks[j + 1], j == layer_index))
        skipped = sum(1 for j in range(layer_index) if isinstance(layers[j].spec, ELEMENTWISE))
        field = extent(masks[0])
        self.caption.setText(
            f"Receptive field of the clicked pixel of {layers[layer_index].name}: "
            f"{'×'.join(map(str, field)) or 'the whole input'} input pixels "
            f"({int(masks[0].sum()):,} of them), tinted on each map (channel mean, grey)."
            + (f" {skipped} element-wise layers are left out: they see what the layer before "
               f"them sees." if skipped else ""))
        for index, (name, values, mask, clicked) in enumerate(tensors):
            if values.ndim >= 2:  # a flat input has no map to draw
                self._add_map(index, name, values, mask, clicked)
        self._frame_all()

    def _add_map(self, index: int, name: str, values: np.ndarray, mask: np.ndarray,
                 clicked: bool) -> None:
        image, image_mask, where = plane(values, mask)
        row, col = divmod(index, COLUMNS)
        size = "×".join(map(str, extent(mask))) if mask.any() else "nothing"
        title = f"{name}: {'clicked pixel' if clicked else size}{where}"
        self.titles.append(title)
        plot = pg.GraphicsLayoutWidget()
        plot.ci.setContentsMargins(2, 2, 2, 2)
        plot.addLabel(title, size="9pt")
        box = plot.addViewBox(row=1, col=0, lockAspect=values.ndim > 2, invertY=True,
                              enableMouse=False)
        self.grid.addWidget(plot, row, col)
        grey = pg.ImageItem(np.ascontiguousarray(normalise(image[np.newaxis], True)[0]),
                            axisOrder="row-major", levels=(0, 1))
        box.addItem(grey)
        box.addItem(pg.ImageItem(field_overlay(image_mask), axisOrder="row-major"))
        bounds = None
        if image_mask.any():
            ys, xs = np.nonzero(image_mask)
            bounds = QRectF(xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
            outline = QGraphicsRectItem(bounds)
            pen = pg.mkPen(FIELD_RGB, width=2)
            pen.setCosmetic(True)
            outline.setPen(pen)
            box.addItem(outline)
        self.boxes.append(box)
        self._fields.append(bounds)

    def _frame_all(self) -> None:
        """The whole maps, or zoomed: every map on the same part of the picture, the input's
        field with its own size (at least MIN_MARGIN pixels) around it, scaled to each map."""
        if not self.boxes:
            return
        for col in range(COLUMNS):
            self.grid.setColumnStretch(col, 1 if col < len(self.boxes) else 0)
        first, shape = self._fields[0], self.boxes[0].addedItems[0].image.shape
        region = QRectF(0, 0, 1, 1)
        if self.zoom.isChecked() and first is not None:
            margin_x = max(first.width(), MIN_MARGIN)
            margin_y = max(first.height(), MIN_MARGIN) if shape[0] > SIGNAL_ROWS else 0
            zoomed = first.adjusted(-margin_x, -margin_y, margin_x, margin_y).intersected(
                QRectF(0, 0, shape[1], shape[0]))
            region = QRectF(zoomed.x() / shape[1], zoomed.y() / shape[0],
                            zoomed.width() / shape[1], zoomed.height() / shape[0])
        for box in self.boxes:
            height, width = box.addedItems[0].image.shape[:2]
            box.setRange(QRectF(region.x() * width, region.y() * height,
                                region.width() * width, region.height() * height), padding=0)
