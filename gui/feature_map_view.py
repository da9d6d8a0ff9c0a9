"""The live feature-map view: the selected layer's output drawn from the newest RunResult.

One pyqtgraph ImageItem shows the whole layer as a tiled mosaic (gui.mosaic), on its fastest
path: the mosaic's uint8 lookup-table indices (gui.mosaic.lut_indices, made by the compute worker)
and a 256-entry uint8 table whose first entry is the background colour, so the mosaic's gaps
(below 0) vanish into the background while values 0..1 take the other 255 colours. Flat outputs
are a bar chart, 3D outputs one depth slice chosen with a slider. Beside the maps sits the input,
below them a strip of per-layer thumbnails that select a layer when clicked. Clicking a tile shows
that channel enlarged in the input's place; clicking it again or choosing another layer brings the
input back. The view never
computes a layer: it only draws what `show_result` hands it (the engine runs in gui.compute_worker),
so changing the selection, colour map or contrast is instant. Thumbnails, stats and mosaics come
from a gui.layer_previews.PreviewCache, which the worker fills for each result with what the view
last asked for: after an edit the view only looks them up.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QImage, QPixmap, QResizeEvent
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QHBoxLayout, QLabel,
                               QProgressBar, QScrollArea, QSizePolicy, QSlider, QStackedWidget,
                               QToolButton, QVBoxLayout, QWidget)

from engine.executor import RunResult
from models.stack import Stack
from gui.elided_label import ElidedLabel
from gui.explain_receptive_panel import field_overlay
from gui.layer_previews import THUMBNAIL_SIDE, MosaicRequest, PreviewCache
from gui.mosaic import LEVELS, LUT_SIZE, Mosaic, TileGrid, layer_maps, normalise, thumbnail
from gui.theme import colors, mute


COLORMAPS = ("viridis", "inferno", "CET-L1", "CET-D1")  # CET-L1: grey; CET-D1: diverging
COLORMAP_LABELS = {"viridis": "Viridis", "inferno": "Inferno", "CET-L1": "Grey",
                   "CET-D1": "Blue-red"}
MAX_LABELS = 64  # one TextItem per tile stays cheap up to here; beyond, labels would crowd tiles
THUMB_SIZE = THUMBNAIL_SIDE // 2  # the strip's icons, drawn from previews twice as large
INPUT_WIDTH = 150
MIN_WIDTH = 100


def lookup_table(name: str, background: QColor) -> np.ndarray:
    """(256, 3) uint8: the background colour, then the colour map in 255 steps (see LEVELS)."""
    colours = pg.colormap.get(name).getLookupTable(nPts=LUT_SIZE - 1, alpha=False)
    first = np.array([[background.red(), background.green(), background.blue()]], np.uint8)
    return np.ascontiguousarray(np.concatenate([first, colours]))


def colour_image(image: np.ndarray, lut: np.ndarray) -> QImage:
    """A [0, 1] float image (H, W) coloured through lut's colour-map entries (1..255), as an RGB
    QImage that owns its pixels."""
    indices = 1 + np.round(np.clip(image, 0, 1) * (LUT_SIZE - 2)).astype(np.uint8)
    rgb = np.ascontiguousarray(lut[indices])
    height, width = image.shape
    return QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


class ThumbnailStrip(QWidget):
    """One small button per layer showing its thumbnail; `chosen(index)` when one is clicked."""
    chosen = Signal(int)

    def __init__(self, previews: PreviewCache, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._previews = previews
        self.layout_ = QHBoxLayout(self)
        self.layout_.setContentsMargins(2, 2, 2, 2)
        self.layout_.setSpacing(3)
        self.layout_.addStretch(1)
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.group.idClicked.connect(self.chosen)
        self.buttons: list[QToolButton] = []
        # (output, lookup table) each button's thumbnail was drawn from.
        self._drawn: list[tuple[np.ndarray | None, np.ndarray | None]] = []

    def show_layers(self, result: RunResult, lut: np.ndarray) -> None:
        """A button for every layer of result: a thumbnail, or none past a failure.

        The buttons are rebuilt only when the number of layers changes, and a thumbnail is
        redrawn only when its output or the colour map is new: after an edit the outputs the
        engine reused are the same arrays, so most of the strip stays as it is."""
        layers = list(zip(result.stack.layers, result.outputs))
        if len(self.buttons) != len(layers):
            self._rebuild(len(layers))
        for button, drawn, (layer, output) in zip(self.buttons, self._drawn, layers):
            button.setText(layer.name)
            if output is not None and drawn[0] is output and drawn[1] is lut:
                continue
            if output is not None:
                pixmap = QPixmap.fromImage(colour_image(self._previews.thumbnail(output), lut))
                button.setIcon(QIcon(pixmap.scaled(
                    THUMB_SIZE, THUMB_SIZE, Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.FastTransformation)))
                button.setToolTip(f"{layer.name}: output {tuple(output.shape[1:])}")
            else:
                button.setIcon(QIcon())
                button.setToolTip(f"{layer.name}: not computed")
        self._drawn = [(output, lut) for _layer, output in layers]

    def _rebuild(self, count: int) -> None:
        for button in self.buttons:
            self.group.removeButton(button)
            button.deleteLater()
        self.buttons = []
        for index in range(count):
            button = QToolButton()
            button.setCheckable(True)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
            button.setAutoRaise(True)
            self.group.addButton(button, index)
            self.layout_.insertWidget(index, button)
            self.buttons.append(button)
        self._drawn = [(None, None)] * count

    def mark(self, index: int | None) -> None:
        if index is not None and 0 <= index < len(self.buttons):
            self.buttons[index].setChecked(True)


class FeatureMapView(QWidget):
    """The feature maps of the selected layer for the newest result (see the module docstring).

    Signals: `layerChosen(index)` when a thumbnail is clicked; `drawn()` after a result (or a
    failure to compute one) is shown; `fitChosen(mode)` when "Fit: resize / crop" changes (the
    window refits the input: the view only draws); `pixelClicked(layer, channel, position)` when
    a pixel of a map is clicked (position: (x,), (y, x) or (depth, y, x) in the layer's output).
    `show_field(mask)` tints a receptive field on the input image.
    Public state tests read: `result`, `layer_index`, `map_item.image`, `message.text()`,
    `channel` (the enlarged channel, or None while the input is shown) and `input_item.image`.
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
        self._maps: np.ndarray | None = None  # (C, H, W) values behind the mosaic, for hover
        self._labels: list[pg.TextItem] = []
        self._labelled: TileGrid | None = None
        self._lut = self._lookup_table(COLORMAPS[0])
        # onnxruntime's layer outputs for one (stack, input), from Run > Run with onnxruntime.
        self._ort: tuple[Stack, np.ndarray, list[np.ndarray], str] | None = None

        self.input_name = "sample"
        # Long layer names must not widen the window: the title gives way and ends in "…".
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
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # indeterminate: a moving bar while the engine works
        self.busy.setMaximumWidth(70)
        self.busy.setMaximumHeight(10)
        self.busy.setTextVisible(False)
        self.busy.setToolTip("Computing the feature maps")
        self.busy.hide()
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.busy)
        top.addWidget(self.fit)
        top.addWidget(self.colormap)
        top.addWidget(self.per_channel)
        top.addWidget(self.show_ort)

        # The input, small, beside the maps.
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
        input_column.addWidget(self.input_widget, 1)

        self.maps_widget = pg.GraphicsLayoutWidget()
        self.maps_widget.ci.setContentsMargins(0, 0, 0, 0)
        self.map_box = self.maps_widget.addViewBox(lockAspect=True, invertY=True)
        self.map_item = pg.ImageItem(axisOrder="row-major")
        self.map_item.setLookupTable(self._lut)
        self.map_box.addItem(self.map_item)
        self.maps_widget.scene().sigMouseMoved.connect(self._hover)
        self.maps_widget.scene().sigMouseClicked.connect(self._clicked)
        self.bars = pg.PlotWidget()
        self.bars.setLabel("bottom", "unit")
        self.bar_item = pg.BarGraphItem(x=[], height=[], width=0.8, brush=colors().accent)
        self.bars.addItem(self.bar_item)
        self.message = QLabel("Computing the feature maps…")
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.pages = QStackedWidget()
        for page in (self.maps_widget, self.bars, self.message):
            self.pages.addWidget(page)
        self.pages.setCurrentWidget(self.message)
        body = QHBoxLayout()
        body.addLayout(input_column)
        body.addWidget(self.pages, 1)

        self.depth = QSlider(Qt.Orientation.Horizontal)
        self.depth.setToolTip("Depth slice of a 3D output")
        self.depth_label = QLabel("Depth 0")
        depth_row = QHBoxLayout()
        depth_row.addWidget(self.depth_label)
        depth_row.addWidget(self.depth, 1)
        self.depth_row = QWidget()
        self.depth_row.setLayout(depth_row)
        depth_row.setContentsMargins(0, 0, 0, 0)
        self.depth_row.hide()

        self.stats = QLabel("")
        self.stats.setWordWrap(True)
        self.stats.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hover = mute(QLabel("Hover over a map to read a value."))
        self.hover.setWordWrap(True)
        self.strip = ThumbnailStrip(self.previews)
        scroll = QScrollArea()
        scroll.setWidget(self.strip)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFixedHeight(THUMB_SIZE + 48)
        scroll.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(body, 1)
        layout.addWidget(self.depth_row)
        layout.addWidget(self.stats)
        layout.addWidget(self.hover)
        layout.addWidget(scroll)

        self.colormap.currentIndexChanged.connect(self._colormap_changed)
        self.per_channel.toggled.connect(lambda _on: self._draw_layer(keep_range=True))
        self.show_ort.toggled.connect(lambda _on: self._draw_layer(keep_range=True))
        self.depth.valueChanged.connect(lambda _v: self._draw_layer(keep_range=True))
        self.strip.chosen.connect(self.layerChosen)
        self.fit.currentIndexChanged.connect(lambda _i: self.fitChosen.emit(self.fit.currentData()))

    # ---- what the window calls ------------------------------------------------------------------
    def show_result(self, result: RunResult) -> None:
        """Draw a fresh result: the input, the thumbnails and the selected layer's maps."""
        self.result = result
        if self._ort is not None and not self._ort_matches(result):
            self._drop_ort_outputs()
        self._draw_input()
        self.strip.show_layers(result, self._lut)
        self.strip.mark(self.layer_index)
        self._draw_layer(keep_range=True)
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
        self._draw_layer(keep_range=True)

    def showing_ort(self) -> bool:
        """Whether the drawn maps are onnxruntime's rather than the engine's."""
        return self._ort is not None and self.show_ort.isChecked()

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

    def select_layer(self, index: int | None) -> None:
        """Show layer `index` (or nothing) from the result already held; never recomputes.
        Another layer brings the input back in place of an enlarged channel."""
        if index != self.layer_index:
            self._back_to_input()
        self.layer_index = index
        self.strip.mark(index)
        self._draw_layer(keep_range=False)

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
        for axis in ("left", "bottom"):
            self.bars.getAxis(axis).setPen(pg.getConfigOption("foreground"))
            self.bars.getAxis(axis).setTextPen(pg.getConfigOption("foreground"))
        self._colormap_changed()

    # ---- drawing --------------------------------------------------------------------------------
    def _draw_input(self) -> None:
        """The input, or in its place the enlarged channel while one is chosen."""
        assert self.result is not None
        enlarged = self._enlarged_tile()
        if enlarged is not None:
            self._draw_channel(enlarged)
            return
        sample = self.result.input[0]
        if sample.ndim == 3 and sample.shape[0] == 3:
            # A colour image is shown in its colours (levels fixed to the data's own range).
            rgb = np.ascontiguousarray(np.moveaxis(normalise(sample, shared=True), 0, -1))
            self.input_item.setLookupTable(None)
            self.input_item.setImage(rgb, levels=(0, 1), autoLevels=False)
        else:
            self.input_item.setLookupTable(self._lut)
            self.input_item.setImage(np.ascontiguousarray(thumbnail(sample)), levels=LEVELS,
                                     autoLevels=False)
        self.input_box.setAspectLocked(sample.ndim != 2)  # a signal's C x L strip fills the box
        self.input_box.autoRange(padding=0)
        shape = "×".join(map(str, sample.shape))
        self.input_caption.setText(f"Input: {self.input_name}\n{shape}")
        self._draw_field()

    def show_field(self, mask: np.ndarray | None) -> None:
        """Tint the receptive field `mask` (bool, the input's spatial shape) on the input image,
        or remove the tint (None). Hidden while a channel is enlarged in the input's place."""
        self._field = mask
        self._draw_field()

    def _draw_field(self) -> None:
        image, mask = self.input_item.image, self._field
        if mask is not None and mask.ndim == 1 and image is not None:
            mask = np.repeat(mask[np.newaxis], image.shape[0], axis=0)  # the signal's strip
        elif mask is not None and mask.ndim == 3:
            mask = mask[mask.shape[0] // 2]  # the middle slice, as the thumbnail shows
        if (mask is None or self.channel is not None or image is None
                or mask.shape != image.shape[:2]):
            self.field_item.hide()
            return
        self.field_item.setImage(field_overlay(mask))
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
        self.input_box.autoRange(padding=0)
        shape = "×".join(map(str, image.shape))
        self.input_caption.setText(f"channel {self.channel} (click it again for the input)\n"
                                   f"{shape}")

    def _back_to_input(self) -> None:
        if self.channel is not None:
            self.channel = None
            if self.result is not None:
                self._draw_input()

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
        request = MosaicRequest(index, not self.per_channel.isChecked(), self.depth.value(),
                                self.map_aspect())
        if ort is None:
            self.previews.expect(request)  # the worker prepares this for the next result
        output = ort[2][index] if ort is not None else result.outputs[index]
        if output is None:
            error = result.error
            if error is not None and (error.layer_index is None or error.layer_index <= index):
                text = f"{layer.name} cannot compute:\n{error}"
            else:
                text = f"{layer.name} was not computed: an earlier layer failed."
            self._show_message(text, error=True)
            self.title.setText(layer.name)
            self.stats.setText("Earlier layers' maps stay available in the strip below.")
            return
        sample = output[0]
        self.title.setText(f"{layer.name} · {layer.spec.type_name} · "
                           f"{'×'.join(map(str, sample.shape))}")
        if ort is not None:
            timing = f"onnxruntime ({ort[3]})"
        else:
            timing = ("reused from the previous run" if index < result.reused
                      else f"{result.seconds[index] * 1e3:.1f} ms")
        self.stats.setText(f"{self.previews.stats(output).text()} · {timing}")
        self.depth_row.setVisible(sample.ndim == 4)
        if sample.ndim == 1:
            self._draw_bars(sample)
            return
        if sample.ndim == 4:
            self.depth.blockSignals(True)
            self.depth.setRange(0, sample.shape[1] - 1)
            self.depth.blockSignals(False)
            self.depth_label.setText(f"Depth {self.depth.value()} / {sample.shape[1] - 1}")
        self._draw_mosaic(request, output, keep_range)

    def _draw_mosaic(self, request: MosaicRequest, output: np.ndarray, keep_range: bool) -> None:
        mosaic = self.previews.mosaic(output, request.shared, request.depth, request.aspect)
        assert mosaic is not None
        sample = output[0]
        resized = self.mosaic is None or self.mosaic.image.shape != mosaic.image.shape
        self.mosaic = mosaic
        self._maps = layer_maps(sample, self.depth.value())
        # Indices, not values: the same pixels, without pyqtgraph's pass over the image here.
        self.map_item.setImage(mosaic.indices, levels=(0, LUT_SIZE - 1), autoLevels=False)
        # Heat maps of signals are far wider than tall: let them fill the panel.
        self.map_box.setAspectLocked(sample.ndim != 2)
        self._label_tiles(mosaic.grid)
        self.pages.setCurrentWidget(self.maps_widget)
        if self.channel is not None:
            self._draw_input()  # the enlarged channel follows the new values, depth and contrast
        if resized or not keep_range:
            self.map_box.autoRange(padding=0.01)

    def map_aspect(self) -> float:
        """Width / height of the area the mosaic is drawn in (1.0 before it is laid out)."""
        size = self.pages.size()
        return size.width() / size.height() if size.height() > 50 and size.width() > 50 else 1.0

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        # The best grid depends on the panel's shape: re-tile (cheap, no recompute).
        if self.mosaic is not None:
            self._draw_layer(keep_range=False)

    def _label_tiles(self, grid: TileGrid) -> None:
        """Channel numbers on the tiles. Label k always reads "k", so the labels made once are
        kept and only moved, the ones past the channel count hidden: making and removing text
        items is most of a redraw's cost when an edit changes the channel count."""
        if grid == self._labelled:
            return
        self._labelled = grid
        shown = 0 if grid.tile_h == 1 or grid.channels > MAX_LABELS else grid.channels
        font = QFont()
        font.setPointSize(7)
        for k in range(len(self._labels), shown):
            label = pg.TextItem(str(k), color=(255, 255, 255), fill=(0, 0, 0, 150),
                                anchor=(0, 0))
            label.setFont(font)
            self.map_box.addItem(label)
            self._labels.append(label)
        for k, label in enumerate(self._labels):
            label.setVisible(k < shown)
            if k < shown:
                y, x = grid.origin(k)
                label.setPos(x, y)

    def _draw_bars(self, values: np.ndarray) -> None:
        self.mosaic = None
        self._maps = None
        self._back_to_input()
        self.bar_item.setOpts(x=np.arange(values.size), height=values, width=0.8)
        self.bars.autoRange()
        self.pages.setCurrentWidget(self.bars)

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
            return channel, (min(max(self.depth.value(), 0), output.shape[2] - 1), y, x)
        return channel, ((x,) if output.ndim == 3 else (y, x))

    def _hover(self, scene_pos: QPointF) -> None:
        if self.mosaic is None or self._maps is None:
            return
        point = self.map_item.mapFromScene(scene_pos)
        hit = self.mosaic.grid.locate(math.floor(point.y()), math.floor(point.x()))
        if hit is None:
            self.hover.setText("Hover over a map to read a value.")
            return
        channel, y, x = hit
        value = float(self._maps[channel, y, x])
        where = f"x {x}" if self._maps.shape[1] == 1 else f"y {y}, x {x}"
        self.hover.setText(f"channel {channel} · {where} · value {value:.4g}")
