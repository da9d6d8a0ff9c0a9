"""The live feature-map view: the selected layer's output drawn from the newest RunResult.

One pyqtgraph ImageItem shows the whole layer as a tiled mosaic (gui.mosaic), on its fastest
path: the mosaic's uint8 lookup-table indices (gui.mosaic.lut_indices, made by the compute worker)
and a 256-entry uint8 table whose first entry is the background colour, so the mosaic's gaps
(below 0) vanish into the background while values 0..1 take the other 255 colours. The mosaic
zooms (wheel) and pans (drag); channel badges show only on tiles drawn large enough that a badge
covers little of them, and the hovered tile is outlined. Signals (C, L) are a heat map with
channel and position axes. Vectors (flat, or every spatial size 1) are a bar chart, with the top
classes beside it when the vector is a network output. 3D outputs show one depth slice chosen
with a slider (the middle one at first), and the input beside them shows the same slice. Beside
the maps sits the input, below them a strip of same-sized per-layer thumbnails that select a
layer when clicked (gui.thumbnail_strip). Clicking a tile shows that channel enlarged in the
input's place; clicking it again or choosing another layer brings the input back. The view never
computes a layer: it only draws what `show_result` hands it (the engine runs in gui.compute_worker),
so changing the selection, colour map or contrast is instant. Thumbnails, stats and mosaics come
from a gui.layer_previews.PreviewCache, which the worker fills for each result with what the view
last asked for: after an edit the view only looks them up.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPen, QResizeEvent
from PySide6.QtWidgets import (QBoxLayout, QCheckBox, QComboBox, QGraphicsRectItem,
                               QHBoxLayout, QHeaderView, QLabel, QProgressBar, QSlider,
                               QStackedWidget, QTableWidget, QTableWidgetItem, QToolButton,
                               QVBoxLayout, QWidget)

from engine.executor import RunResult
from models.stack import Stack
from gui.elided_label import ElidedLabel
from gui.explain_receptive_panel import field_overlay
from gui.layer_previews import MosaicRequest, PreviewCache
from gui.mosaic import (LEVELS, LUT_SIZE, TOP_CLASSES, InputPreview, Mosaic, TileGrid,
                        clamp_depth, layer_maps, pool_mask, vector_values)
from gui.theme import colors, mute
from gui.thumbnail_strip import ThumbnailStrip


COLORMAPS = ("viridis", "inferno", "CET-L1", "CET-D1")  # CET-L1: grey; CET-D1: diverging
COLORMAP_LABELS = {"viridis": "Viridis", "inferno": "Inferno", "CET-L1": "Grey",
                   "CET-D1": "Blue-red"}
MAX_LABELS = 128  # badges on the tiles in sight; made once and reused
# A badge shows only on tiles at least this many screen pixels a side, where it covers a few
# per cent of the tile: smaller tiles are read by hovering (or zooming in).
LABEL_MIN_TILE = 64
INPUT_WIDTH = 150
MIN_WIDTH = 100
HOVER_HINT = "Hover over a map to read a value; scroll to zoom, drag to pan."


def lookup_table(name: str, background: QColor) -> np.ndarray:
    """(256, 3) uint8: the background colour, then the colour map in 255 steps (see LEVELS)."""
    colours = pg.colormap.get(name).getLookupTable(nPts=LUT_SIZE - 1, alpha=False)
    first = np.array([[background.red(), background.green(), background.blue()]], np.uint8)
    return np.ascontiguousarray(np.concatenate([first, colours]))


class FeatureMapView(QWidget):
    """The feature maps of the selected layer for the newest result (see the module docstring).

    Signals: `layerChosen(index)` when a thumbnail is clicked; `drawn()` after a result (or a
    failure to compute one) is shown; `fitChosen(mode)` when "Fit: resize / crop" changes (the
    window refits the input: the view only draws); `pixelClicked(layer, channel, position)` when
    a pixel of a map is clicked (position: (x,), (y, x) or (depth, y, x) in the layer's output).
    `show_field(mask)` tints a receptive field on the input image; `set_class_labels(labels)`
    names the classes of the network's vector outputs.
    Public state tests read: `result`, `layer_index`, `map_item.image`, `message.text()`,
    `channel` (the enlarged channel, or None while the input is shown), `input_item.image`,
    `input_preview`, `depth`, `top_table`, `visible_labels()` and `title.displayed_text()`.
    `input_name` is the caption given to the input (a file name, or "sample").
    """
    layerChosen = Signal(int)
    drawn = Signal()
    fitChosen = Signal(str)
    pixelClicked = Signal(int, int, object)

    def __init__(self, parent: QWidget | None = None, previews: PreviewCache | None = None) -> None:
        """previews: the cache the compute worker fills (None: one of the view's own)."""
        super().__init__(parent)
        self.previews = previews if previews is not None else PreviewCache()
        # Below its toolbar's width the view clips rather than forcing the window wider.
        self.setMinimumWidth(MIN_WIDTH)
        self.result: RunResult | None = None
        self.layer_index: int | None = None
        self.channel: int | None = None  # the tile enlarged in the input's place
        self.mosaic: Mosaic | None = None
        self.input_preview: InputPreview | None = None
        self.class_labels: tuple[str, ...] = ()
        self._maps: np.ndarray | None = None  # (C, H, W) values behind the mosaic, for hover
        self._labels: list[pg.TextItem] = []
        self._depth_count: int | None = None  # depth of the 3D output the slider was set for
        self._lut = self._lookup_table(COLORMAPS[0])
        # onnxruntime's layer outputs for one (stack, input), from Run > Run with onnxruntime.
        self._ort: tuple[Stack, np.ndarray, list[np.ndarray], str] | None = None

        self.input_name = "sample"
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._build_header())
        layout.addLayout(self._build_body(), 1)
        layout.addWidget(self._build_depth_row())
        self.stats = QLabel("")
        self.stats.setWordWrap(True)
        self.stats.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # One line, whatever the width: wrapped, it made a narrow window taller than asked for.
        self.hover = mute(ElidedLabel(HOVER_HINT))
        self.strip = ThumbnailStrip(self.previews)
        layout.addWidget(self.stats)
        layout.addWidget(self.hover)
        layout.addWidget(self.strip)

        self.colormap.currentIndexChanged.connect(self._colormap_changed)
        self.per_channel.toggled.connect(lambda _on: self._draw_layer(keep_range=True))
        self.show_ort.toggled.connect(lambda _on: self._draw_layer(keep_range=True))
        self.depth.valueChanged.connect(lambda _v: self._depth_changed())
        self.strip.chosen.connect(self.layerChosen)
        self.fit.currentIndexChanged.connect(lambda _i: self.fitChosen.emit(self.fit.currentData()))
        self.reset_zoom.clicked.connect(self._show_whole_map)

    def _build_header(self) -> QBoxLayout:
        """The title, and the controls beside it, or below it when the two do not fit one row
        (see _arrange_header): the title always has the room for its whole text it can get."""
        self.title = ElidedLabel("No layer selected")
        self.title.setStyleSheet("font-weight: bold;")
        self.colormap = QComboBox()
        for name in COLORMAPS:
            self.colormap.addItem(COLORMAP_LABELS[name], name)
        self.colormap.setToolTip("Colour map of the feature maps and thumbnails")
        self.fit = QComboBox()
        self.fit.addItem("Fit: resize", "resize")
        self.fit.addItem("Fit: crop", "crop")
        self.fit.setToolTip("How an image or signal meets the stack's input size: stretched "
                            "(resize) or kept at scale with the centre cut out (crop)")
        self.per_channel = QCheckBox("Per-channel")
        # On by default: signed conv outputs share one range badly (most tiles go flat).
        self.per_channel.setChecked(True)
        self.per_channel.setToolTip("Per-channel contrast: stretch each channel to its own range "
                                    "instead of one range shared by the whole layer")
        self.show_ort = QCheckBox("Show onnxruntime's outputs")
        self.show_ort.setToolTip("Draw the layers as onnxruntime computed them (Run > Run with "
                                 "onnxruntime) instead of the NumPy engine; a stack edit turns "
                                 "this off, as those outputs are then out of date")
        self.show_ort.hide()  # until an onnxruntime run for the shown stack arrives
        self.reset_zoom = QToolButton()
        self.reset_zoom.setText("All")
        self.reset_zoom.setToolTip("Show the whole map again (scroll on the maps to zoom in, "
                                   "drag to pan)")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # indeterminate: a moving bar while the engine works
        self.busy.setMaximumWidth(70)
        self.busy.setMaximumHeight(10)
        self.busy.setTextVisible(False)
        self.busy.setToolTip("Computing the feature maps")
        self.busy.hide()
        self.controls = QWidget()
        row = QHBoxLayout(self.controls)
        row.setContentsMargins(0, 0, 0, 0)
        for widget in (self.busy, self.reset_zoom, self.fit, self.colormap, self.per_channel,
                       self.show_ort):
            row.addWidget(widget)
        self.header = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        self.header.addWidget(self.title, 1)
        self.header.addWidget(self.controls, 0, Qt.AlignmentFlag.AlignLeft)
        return self.header

    def _build_body(self) -> QHBoxLayout:
        # The input, small, beside the maps, as tall as its picture (see _fit_input_height).
        self.input_widget = pg.GraphicsLayoutWidget()
        # Up to INPUT_WIDTH, but it gives way first when the window is narrow.
        self.input_widget.setMinimumWidth(60)
        self.input_widget.setMaximumWidth(INPUT_WIDTH)
        self.input_widget.ci.setContentsMargins(0, 0, 0, 0)
        self.input_box = self.input_widget.addViewBox(lockAspect=True, invertY=True,
                                                      enableMouse=False)
        self.input_item = pg.ImageItem(axisOrder="row-major")
        self.input_box.addItem(self.input_item)
        self.field_item = pg.ImageItem(axisOrder="row-major")  # the receptive field's tint
        self.input_box.addItem(self.field_item)
        self._field: np.ndarray | None = None
        self.input_caption = mute(QLabel("Input"))
        self.input_caption.setWordWrap(True)
        input_column = QVBoxLayout()
        input_column.addWidget(self.input_caption)
        # Grows up to the picture's height (its maximum), the space below goes to the stretch.
        self.input_widget.setMinimumHeight(24)
        input_column.addWidget(self.input_widget, 100)
        input_column.addStretch(1)

        self.maps_widget = pg.GraphicsLayoutWidget()
        self.maps_widget.ci.setContentsMargins(0, 0, 0, 0)
        # A plot, for the axes a signal's heat map gets; a mosaic of maps hides them.
        self.map_plot = self.maps_widget.addPlot()
        self.map_plot.hideButtons()
        self.map_plot.setLabel("left", "channel")
        self.map_plot.setLabel("bottom", "position")
        self.map_box = self.map_plot.getViewBox()
        self.map_box.setAspectLocked(True)
        self.map_box.invertY(True)
        self.map_item = pg.ImageItem(axisOrder="row-major")
        self.map_item.setLookupTable(self._lut)
        self.map_box.addItem(self.map_item)
        # The hovered tile's outline, in the mosaic's pixels.
        self.hover_box = QGraphicsRectItem(self.map_item)
        pen = QPen(QColor(colors().accent), 2)
        pen.setCosmetic(True)
        self.hover_box.setPen(pen)
        self.hover_box.hide()
        self.map_box.sigRangeChanged.connect(lambda *_: self._update_labels())
        self.maps_widget.scene().sigMouseMoved.connect(self._hover)
        self.maps_widget.scene().sigMouseClicked.connect(self._clicked)

        self.bars = pg.PlotWidget()
        self.bars.setLabel("bottom", "unit")
        self.bars.setLabel("left", "value")
        self.bar_item = pg.BarGraphItem(x=[], height=[], width=0.8, brush=colors().accent)
        self.bars.addItem(self.bar_item)
        self.top_table = QTableWidget(0, 2)
        self.top_table.setHorizontalHeaderLabels(["class", "score"])
        self.top_table.verticalHeader().hide()
        self.top_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.top_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.top_table.horizontalHeader().setSectionResizeMode(
            1, QHeaderView.ResizeMode.ResizeToContents)
        self.top_table.setMinimumHeight(24)
        self.top_caption = QLabel(f"Top {TOP_CLASSES}")
        self.top_caption.setStyleSheet("font-weight: bold;")
        top_column = QVBoxLayout()
        top_column.setContentsMargins(0, 0, 0, 0)
        top_column.addWidget(self.top_caption)
        top_column.addWidget(self.top_table)
        self.top_panel = QWidget()
        self.top_panel.setLayout(top_column)
        self.top_panel.hide()  # until a network output's vector is shown
        # Small minimums: the page must not make a short window taller than the maps need.
        self.bars.setMinimumHeight(40)
        self.vector_page = QWidget()
        vector_column = QVBoxLayout(self.vector_page)
        vector_column.setContentsMargins(0, 0, 0, 0)
        vector_column.addWidget(self.bars, 1)
        vector_column.addWidget(self.top_panel)

        self.message = QLabel("Computing the feature maps…")
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.pages = QStackedWidget()
        for page in (self.maps_widget, self.vector_page, self.message):
            self.pages.addWidget(page)
        self.pages.setCurrentWidget(self.message)
        body = QHBoxLayout()
        body.addLayout(input_column)
        body.addWidget(self.pages, 1)
        return body

    def _build_depth_row(self) -> QWidget:
        self.depth = QSlider(Qt.Orientation.Horizontal)
        self.depth.setToolTip("Depth slice of a 3D output; the input shows the same slice")
        self.depth_label = QLabel("Depth 0")
        depth_row = QHBoxLayout()
        depth_row.addWidget(self.depth_label)
        depth_row.addWidget(self.depth, 1)
        depth_row.setContentsMargins(0, 0, 0, 0)
        self.depth_row = QWidget()
        self.depth_row.setLayout(depth_row)
        self.depth_row.hide()
        return self.depth_row

    # ---- what the window calls ------------------------------------------------------------------
    def show_result(self, result: RunResult) -> None:
        """Draw a fresh result: the input, the thumbnails and the selected layer's maps."""
        self.result = result
        if self._ort is not None and not self._ort_matches(result):
            self._drop_ort_outputs()
        self.strip.show_layers(result, self._lut)
        self.strip.mark(self.layer_index)
        self._draw_layer(keep_range=True)
        self._draw_input()
        self.drawn.emit()

    def show_failure(self, message: str) -> None:
        """The input could not be run at all (it does not fit the stack): say so, draw nothing."""
        self.result = None
        self._show_message(message, error=True)
        self.stats.setText("")
        self.drawn.emit()

    def show_ort_outputs(self, stack: Stack, x: np.ndarray, outputs: list[np.ndarray],
                         provider: str) -> None:
        """Offer onnxruntime's layer outputs (one per layer of stack, run on x) behind the
        "Show onnxruntime's outputs" toggle, while the shown result is for the same stack and
        input; a result for anything else drops them and draws the engine's maps again."""
        self._ort = (stack, x, outputs, provider)
        if self.result is not None and not self._ort_matches(self.result):
            # A newer edit is being computed: its result will find these outputs stale.
            return
        self.show_ort.show()
        self._arrange_header()
        self._draw_layer(keep_range=True)

    def showing_ort(self) -> bool:
        """Whether the drawn maps are onnxruntime's rather than the engine's."""
        return self._ort is not None and self.show_ort.isChecked()

    def set_class_labels(self, labels: Sequence[str]) -> None:
        """Names of the classes of the network's vector outputs, by index ("class 281" for an
        index without one); the top classes shown follow at once."""
        self.class_labels = tuple(labels)
        self._draw_layer(keep_range=True)

    def _ort_matches(self, result: RunResult) -> bool:
        assert self._ort is not None
        stack, x = self._ort[0], self._ort[1]
        return (stack.layers == result.stack.layers and x.shape == result.input.shape
                and (x is result.input or np.array_equal(x, result.input)))

    def _drop_ort_outputs(self) -> None:
        self._ort = None
        self.show_ort.blockSignals(True)  # the caller redraws with the engine's maps
        self.show_ort.setChecked(False)
        self.show_ort.blockSignals(False)
        self.show_ort.hide()
        self._arrange_header()

    def select_layer(self, index: int | None) -> None:
        """Show layer `index` (or nothing) from the result already held; never recomputes.
        Another layer brings the input back in place of an enlarged channel."""
        if index != self.layer_index:
            self._back_to_input()
        self.layer_index = index
        self.strip.mark(index)
        self._draw_layer(keep_range=False)
        self._follow_slice()

    def choose_channel_at(self, scene_pos: QPointF) -> int | None:
        """Enlarge the channel whose tile is under scene_pos (a point of the maps' scene) in the
        input's place, or bring the input back when that channel is already enlarged; a gap or a
        point outside the mosaic changes nothing. Returns the channel now enlarged, or None."""
        if self.mosaic is None:
            return self.channel
        point = self.map_item.mapFromScene(scene_pos)
        hit = self.mosaic.grid.locate(math.floor(point.y()), math.floor(point.x()))
        if hit is not None:
            self.channel = None if hit[0] == self.channel else hit[0]
            self._draw_input()
        return self.channel

    def set_busy(self, busy: bool) -> None:
        self.busy.setVisible(busy)

    def follow_theme(self) -> None:
        """Take the theme now applied: plot backgrounds, axis colours, gap colour, thumbnails."""
        background = pg.getConfigOption("background")
        for widget in (self.input_widget, self.maps_widget, self.bars):
            widget.setBackground(background)
        for plot in (self.bars.getPlotItem(), self.map_plot):
            for axis in ("left", "bottom"):
                plot.getAxis(axis).setPen(pg.getConfigOption("foreground"))
                plot.getAxis(axis).setTextPen(pg.getConfigOption("foreground"))
        pen = self.hover_box.pen()
        pen.setColor(QColor(colors().accent))
        self.hover_box.setPen(pen)
        self._colormap_changed()

    # ---- layout ---------------------------------------------------------------------------------
    def _set_title(self, text: str) -> None:
        self.title.setText(text)
        self._arrange_header()

    def _arrange_header(self) -> None:
        """The controls beside the title when both fit the view's width, else below it."""
        needed = (self.title.fontMetrics().horizontalAdvance(self.title.text())
                  + self.header.spacing() + self.controls.sizeHint().width() + 8)
        direction = (QBoxLayout.Direction.LeftToRight if needed <= self.width()
                     else QBoxLayout.Direction.TopToBottom)
        if self.header.direction() != direction:
            self.header.setDirection(direction)

    def _fit_input_height(self) -> None:
        """The input's box as tall as its picture at the box's width (a signal's strip between a
        quarter and twice the width), so the picture sits under its caption, not mid-air."""
        image = self.input_item.image
        if image is None:
            return
        height, width = image.shape[:2]
        ratio = height / width
        if not self.input_box.state["aspectLocked"]:
            ratio = min(max(ratio, 0.25), 2.0)
        self.input_widget.setMaximumHeight(max(24, round(self.input_widget.width() * ratio)))
        self.input_box.autoRange(padding=0)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._arrange_header()
        self._fit_input_height()
        # The best grid depends on the panel's shape: re-tile (cheap, no recompute).
        if self.mosaic is not None:
            self._draw_layer(keep_range=False)

    # ---- drawing --------------------------------------------------------------------------------
    def _input_depth(self) -> int | None:
        """The input slice matching the shown slice of the selected layer's 3D output (scaled
        by the two depths), or None (the preview's middle slice)."""
        result, index = self.result, self.layer_index
        if (result is None or result.input.ndim != 5 or index is None
                or index >= len(result.outputs) or result.outputs[index] is None
                or result.outputs[index].ndim != 5):
            return None
        count, inputs = result.outputs[index].shape[2], result.input.shape[2]
        return clamp_depth(clamp_depth(self.depth.value(), count) * inputs // count, inputs)

    def _draw_input(self) -> None:
        """The input, or in its place the enlarged channel while one is chosen."""
        assert self.result is not None
        enlarged = self._enlarged_tile()
        if enlarged is not None:
            self._draw_channel(enlarged)
            return
        sample = self.result.input[0]
        preview = self.previews.input_preview(self.result.input, self._input_depth())
        self.input_preview = preview
        if preview.rgb:
            # A colour image is shown in its colours (levels fixed to the data's own range).
            self.input_item.setLookupTable(None)
            self.input_item.setImage(preview.image, levels=(0, 1), autoLevels=False)
        else:
            self.input_item.setLookupTable(self._lut)
            self.input_item.setImage(preview.image, levels=LEVELS, autoLevels=False)
        self.input_box.setAspectLocked(sample.ndim != 2)  # a signal's C x L strip: its own box
        if sample.ndim == 2:
            shape = f"{sample.shape[0]} channels × {sample.shape[1]} positions"
        else:
            shape = "×".join(map(str, sample.shape))
        if preview.depth is not None:
            shape += f" · depth {preview.depth}"
        self.input_caption.setText(f"Input: {self.input_name}\n{shape}")
        self._fit_input_height()
        self._draw_field()

    def show_field(self, mask: np.ndarray | None) -> None:
        """Tint the receptive field `mask` (bool, the input's spatial shape) on the input image,
        or remove the tint (None). Hidden while a channel is enlarged in the input's place."""
        self._field = mask
        self._draw_field()

    def _draw_field(self) -> None:
        preview, mask = self.input_preview, self._field
        pooled = None
        if mask is not None and preview is not None and self.channel is None:
            pooled = pool_mask(mask, preview)
        if pooled is None:
            self.field_item.hide()
            return
        self.field_item.setImage(field_overlay(pooled))
        self.field_item.show()

    def _enlarged_tile(self) -> np.ndarray | None:
        """The chosen channel's tile cut from the drawn mosaic (so it has the tile's contrast),
        or None; a channel the mosaic no longer has (the layer changed) is forgotten."""
        if self.channel is None:
            return None
        if self.mosaic is None or self.channel >= self.mosaic.grid.channels:
            self.channel = None
            return None
        grid = self.mosaic.grid
        y, x = grid.origin(self.channel)
        return self.mosaic.image[y:y + grid.tile_h, x:x + grid.tile_w]

    def _draw_channel(self, image: np.ndarray) -> None:
        self.field_item.hide()
        self.input_item.setLookupTable(self._lut)
        self.input_item.setImage(np.ascontiguousarray(image), levels=LEVELS, autoLevels=False)
        self.input_box.setAspectLocked(image.shape[0] > 1)  # a signal's 1 x L row fills the box
        shape = "×".join(map(str, image.shape))
        self.input_caption.setText(f"channel {self.channel} (click it again for the input)\n"
                                   f"{shape}")
        self._fit_input_height()

    def _back_to_input(self) -> None:
        if self.channel is not None:
            self.channel = None
            if self.result is not None:
                self._draw_input()

    def _depth_changed(self) -> None:
        self._draw_layer(keep_range=True)
        self._follow_slice()

    def _follow_slice(self) -> None:
        """Redraw a volume input at the slice matching the layer's (see _input_depth)."""
        if (self.result is not None and self.result.input.ndim == 5 and self.channel is None
                and self.input_preview is not None
                and self.input_preview.depth != self._input_depth_or_middle()):
            self._draw_input()

    def _input_depth_or_middle(self) -> int:
        assert self.result is not None
        depth = self._input_depth()
        return self.result.input.shape[2] // 2 if depth is None else depth

    def _sync_depth(self, count: int) -> None:
        """Give the slider a 3D output's `count` slices: the middle one for the first volume
        shown, and the same relative depth when a layer of another depth is selected."""
        if self._depth_count == count:
            return
        value = (count // 2 if self._depth_count is None
                 else self.depth.value() * count // self._depth_count)
        self._depth_count = count
        self.depth.blockSignals(True)
        self.depth.setRange(0, count - 1)
        self.depth.setValue(clamp_depth(value, count))
        self.depth.blockSignals(False)

    def _draw_layer(self, keep_range: bool) -> None:
        result, index = self.result, self.layer_index
        if result is None:
            return
        if index is None or index >= len(result.outputs):
            self.previews.expect(None)
            self._show_message("Select a layer to see its feature maps.")
            self.stats.setText("")
            return
        layer = result.stack.layers[index]
        ort = self._ort if self.showing_ort() else None
        output = ort[2][index] if ort is not None else result.outputs[index]
        if output is not None and output.ndim == 5:
            self._sync_depth(output.shape[2])
        request = MosaicRequest(index, not self.per_channel.isChecked(), self.depth.value(),
                                self.map_aspect())
        if ort is None:
            self.previews.expect(request)  # the worker prepares this for the next result
        if output is None:
            error = result.error
            if error is not None and (error.layer_index is None or error.layer_index <= index):
                text = f"{layer.name} cannot compute:\n{error}"
            else:
                text = f"{layer.name} was not computed: an earlier layer failed."
            self._show_message(text, error=True)
            self._set_title(layer.name)
            self.stats.setText("Earlier layers' maps stay available in the strip below.")
            return
        sample = output[0]
        self._set_title(f"{layer.name} · {layer.spec.type_name} · "
                        f"{'×'.join(map(str, sample.shape))}")
        if ort is not None:
            timing = f"onnxruntime ({ort[3]})"
        else:
            timing = ("reused from the previous run" if index < result.reused
                      else f"{result.seconds[index] * 1e3:.1f} ms")
        self.stats.setText(f"{self.previews.stats(output).text()} · {timing}")
        vector = vector_values(sample) is not None
        self.depth_row.setVisible(sample.ndim == 4 and not vector)
        if vector:
            self._draw_vector(output, index in result.stack.output_indices)
            return
        if sample.ndim == 4:
            self.depth_label.setText(f"Depth {self.depth.value()} / {sample.shape[1] - 1}")
        self._draw_mosaic(request, output, keep_range)

    def _draw_mosaic(self, request: MosaicRequest, output: np.ndarray, keep_range: bool) -> None:
        mosaic = self.previews.mosaic(output, request.shared, request.depth, request.aspect)
        assert mosaic is not None
        sample = output[0]
        resized = self.mosaic is None or self.mosaic.image.shape != mosaic.image.shape
        self.mosaic = mosaic
        self._maps = layer_maps(sample, self.depth.value())
        grid = mosaic.grid
        # Indices, not values: the same pixels, without pyqtgraph's pass over the image here.
        self.map_item.setImage(mosaic.indices, levels=(0, LUT_SIZE - 1), autoLevels=False)
        signal = sample.ndim == 2
        if signal:
            # Channel and position axes, in the output's own units however it was averaged.
            self.map_item.setRect(QRectF(0, 0, grid.tile_w * grid.step[1], grid.rows))
        else:
            self.map_item.resetTransform()
        for axis in ("left", "bottom"):
            self.map_plot.showAxis(axis, signal)
        # Heat maps of signals are far wider than tall: let them fill the panel.
        self.map_box.setAspectLocked(not signal)
        self.hover_box.hide()
        self.pages.setCurrentWidget(self.maps_widget)
        self._note_reduction(sample, grid)
        if self.channel is not None:
            self._draw_input()  # the enlarged channel follows the new values, depth and contrast
        if resized or not keep_range:
            self._show_whole_map()
        self._update_labels()

    def _note_reduction(self, sample: np.ndarray, grid: TileGrid) -> None:
        """Say in the stats line when the mosaic is averaged or shows fewer channels."""
        notes = []
        if grid.step != (1, 1):
            notes.append(f"drawn as means of {grid.step[0]}×{grid.step[1]} blocks"
                         if sample.ndim != 2 else f"drawn as means of {grid.step[1]} positions")
        if grid.channels < sample.shape[0]:
            notes.append(f"first {grid.channels:,} of {sample.shape[0]:,} channels")
        if notes:
            self.stats.setText(f"{self.stats.text()} · {', '.join(notes)}")

    def _show_whole_map(self) -> None:
        if self.pages.currentWidget() is self.vector_page:
            self.bars.autoRange()
        else:
            self.map_box.autoRange(padding=0.01)

    def map_aspect(self) -> float:
        """Width / height of the area the mosaic is drawn in (1.0 before it is laid out)."""
        size = self.pages.size()
        return size.width() / size.height() if size.height() > 50 and size.width() > 50 else 1.0

    def visible_labels(self) -> dict[int, pg.TextItem]:
        """The channel badges now shown, by channel."""
        return {int(label.textItem.toPlainText()): label for label in self._labels
                if label.isVisible()}

    def _update_labels(self) -> None:
        """Channel badges on the tiles in sight that are drawn at least LABEL_MIN_TILE screen
        pixels a side (on smaller ones a badge would hide much of the map: hover names them).
        Badge k always reads "k", so the badges are made once, then only moved and shown."""
        shown: list[int] = []
        grid = self.mosaic.grid if self.mosaic is not None else None
        if (grid is not None and grid.gap > 0 and self.pages.currentWidget() is self.maps_widget
                and self.map_box.width() > 0):
            pixel_w, pixel_h = self.map_box.viewPixelSize()
            if min(grid.tile_w / pixel_w, grid.tile_h / pixel_h) >= LABEL_MIN_TILE:
                shown = self._tiles_in_sight(grid)
        font = QFont()
        font.setPointSize(7)
        while len(self._labels) < len(shown):
            label = pg.TextItem("", color=(255, 255, 255), fill=(0, 0, 0, 120), anchor=(0, 0))
            label.setFont(font)
            self.map_box.addItem(label, ignoreBounds=True)
            self._labels.append(label)
        for label, channel in zip(self._labels, shown):
            if label.textItem.toPlainText() != str(channel):
                label.setText(str(channel))
            y, x = grid.origin(channel)  # type: ignore[union-attr]
            label.setPos(x, y)
            label.show()
        for label in self._labels[len(shown):]:
            label.hide()

    def _tiles_in_sight(self, grid: TileGrid) -> list[int]:
        """The channels whose tiles the view shows, or none past MAX_LABELS of them."""
        (left, right), (top, bottom) = self.map_box.viewRange()
        size_y, size_x = grid.tile_h + grid.gap, grid.tile_w + grid.gap
        rows = range(max(0, int(top // size_y)), min(grid.rows, int(bottom // size_y) + 1))
        cols = range(max(0, int(left // size_x)), min(grid.cols, int(right // size_x) + 1))
        if len(rows) * len(cols) > MAX_LABELS:
            return []
        return [r * grid.cols + c for r in rows for c in cols if r * grid.cols + c < grid.channels]

    def _draw_vector(self, output: np.ndarray, is_output: bool) -> None:
        """Bars of a vector (binned when long), and its top classes when it is a network
        output: the scores a classifier ends in."""
        self.mosaic = None
        self._maps = None
        self._back_to_input()
        heights, width = self.previews.bars(output)
        starts = np.arange(heights.shape[0]) * width
        self.bar_item.setOpts(x=starts + (width - 1) / 2, height=heights, width=0.8 * width)
        self.bars.setLabel("bottom", "class" if is_output else "unit")
        # A few bars get a tick each (no "0.5 class"); more get pyqtgraph's own spacing.
        few = heights.shape[0] <= 20 and width == 1
        self.bars.getAxis("bottom").setTicks(
            [[(i, str(i)) for i in range(heights.shape[0])]] if few else None)
        self.top_panel.setVisible(is_output)
        if is_output:
            self._fill_top_table(self.previews.classes(output))
        self.pages.setCurrentWidget(self.vector_page)
        self.bars.autoRange()

    def _fill_top_table(self, classes: list[tuple[int, float]]) -> None:
        self.top_caption.setText(f"Top {len(classes)}")
        self.top_table.setRowCount(len(classes))
        for row, (index, score) in enumerate(classes):
            name = (self.class_labels[index] if index < len(self.class_labels)
                    else f"class {index}")
            for col, text in enumerate((name, f"{score:.4g}")):
                item = QTableWidgetItem(text)
                if col:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.top_table.setItem(row, col, item)
        self.top_table.resizeRowsToContents()
        rows = sum(self.top_table.rowHeight(row) for row in range(len(classes)))
        # As tall as its rows, but it gives way (and scrolls) in a short window.
        self.top_table.setMaximumHeight(rows + self.top_table.horizontalHeader().sizeHint().height()
                                        + 2 * self.top_table.frameWidth())

    def _show_message(self, text: str, error: bool = False) -> None:
        self._back_to_input()
        self.message.setText(text)
        self.message.setStyleSheet(f"color: {colors().error};" if error else "")
        self.pages.setCurrentWidget(self.message)
        self.depth_row.hide()

    @staticmethod
    def _lookup_table(name: str) -> np.ndarray:
        return lookup_table(name, pg.mkColor(pg.getConfigOption("background")))

    def _colormap_changed(self) -> None:
        self._lut = self._lookup_table(self.colormap.currentData())
        self.map_item.setLookupTable(self._lut)
        if self.result is not None:
            self._draw_input()
            self.strip.show_layers(self.result, self._lut)
            self.strip.mark(self.layer_index)

    def _clicked(self, event: object) -> None:
        if event.button() == Qt.MouseButton.LeftButton:  # type: ignore[attr-defined]
            pixel = self.pixel_at(event.scenePos())  # type: ignore[attr-defined]
            self.choose_channel_at(event.scenePos())  # type: ignore[attr-defined]
            if pixel is not None:
                self.pixelClicked.emit(self.layer_index, *pixel)

    def pixel_at(self, scene_pos: QPointF) -> tuple[int, tuple[int, ...]] | None:
        """(channel, position in the layer's output) of the map pixel under scene_pos, or None
        on a gap or outside the mosaic."""
        if self.mosaic is None or self.result is None or self.layer_index is None:
            return None
        point = self.map_item.mapFromScene(scene_pos)
        hit = self.mosaic.grid.locate(math.floor(point.y()), math.floor(point.x()))
        output = self.result.outputs[self.layer_index]
        if hit is None or output is None:
            return None
        channel, y, x = hit
        if output.ndim == 5:  # the slice shown, clamped as gui.mosaic.layer_maps clamps it
            return channel, (clamp_depth(self.depth.value(), output.shape[2]), y, x)
        return channel, ((x,) if output.ndim == 3 else (y, x))

    def _hover(self, scene_pos: QPointF) -> None:
        if self.mosaic is None or self._maps is None:
            return
        point = self.map_item.mapFromScene(scene_pos)
        hit = self.mosaic.grid.locate(math.floor(point.y()), math.floor(point.x()))
        if hit is None:
            self.hover.setText(HOVER_HINT)
            self.hover_box.hide()
            return
        channel, y, x = hit
        value = float(self._maps[channel, y, x])
        where = f"x {x}" if self._maps.shape[1] == 1 else f"y {y}, x {x}"
        self.hover.setText(f"channel {channel} · {where} · value {value:.4g}")
        grid = self.mosaic.grid
        top, left = grid.origin(channel)
        self.hover_box.setRect(QRectF(left, top, grid.tile_w, grid.tile_h))
        self.hover_box.show()
