"""The Kernels dock: the selected convolution's weights as one mosaic, per-filter statistics, a
histogram, and the weight edits (kernel presets, re-initialise, load .npy) as undoable commands.

The view reads weights from the document's current stack and redraws on `stackChanged`; it never
runs the engine (the window recomputes the feature maps on the same signal). Edits that cannot
apply go to `report_error(title, message)` and change nothing.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QHeaderView,
                               QLabel, QSpinBox, QSplitter, QStackedWidget, QTableWidget,
                               QTableWidgetItem, QToolBar, QVBoxLayout, QWidget)

from gui.document import Document
from gui.feature_map_view import COLORMAP_LABELS, COLORMAPS, lookup_table
from gui.kernel_tiles import filter_stats, histogram, kernel_keys, kernel_mosaic, kernel_planes
from gui.mosaic import LEVELS, Mosaic
from gui.theme import colors, mute
from models.errors import ConfigError
from models.kernel_edits import GABOR_BANK, load_weight, with_preset
from models.kernel_presets import PRESETS
from models.layers.conv import ConvTranspose
from models.weights import INITIALISERS, reinitialised

DEFAULT_COLORMAP = "CET-D1"  # diverging: weights are signed, 0 sits in the middle
INIT_LABELS = {"he_normal": "He normal", "he_uniform": "He uniform",
               "glorot_normal": "Glorot normal", "glorot_uniform": "Glorot uniform"}
ErrorSink = Callable[[str, str], None]


class KernelView(QWidget):
    """Kernels of the layer chosen with `select_layer(index)` in `document`'s stack.

    Public state tests read: `layer_index`, `tensor` (combo of kernel keys), `mosaic`,
    `map_item.image`, `summed`, `per_filter`, `message.text()`, `stats_table`, `filter_spin`,
    `preset`, `initialiser`, `seed`; actions `apply_filter_action`, `apply_all_action`,
    `reinit_action`, `load_action`.
    `choose_npy_path()` asks for a file ("" when cancelled; tests replace it).
    """

    def __init__(self, document: Document, report_error: ErrorSink,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.report_error = report_error
        self.layer_index: int | None = None
        self.mosaic: Mosaic | None = None
        self._shown = True
        self._stale = False  # a drawing skipped while hidden

        self.title = QLabel("No layer selected")
        self.title.setStyleSheet("font-weight: bold;")
        self.tensor = QComboBox()
        self.tensor.setToolTip("Which kernel tensor of the layer to show and edit")
        self.summed = QCheckBox("Sum over inputs")
        self.summed.setToolTip("One tile per filter: the sum of its kernels over input channels")
        self.per_filter = QCheckBox("Per-filter contrast")
        # On by default: one large kernel (a Laplacian's -4) would wash out every other filter.
        self.per_filter.setChecked(True)
        self.per_filter.setToolTip("Scale each filter to its own range, symmetric around 0, "
                                   "instead of one range for the whole layer")
        self.colormap = QComboBox()
        for name in COLORMAPS:
            self.colormap.addItem(COLORMAP_LABELS[name], name)
        self.colormap.setCurrentIndex(COLORMAPS.index(DEFAULT_COLORMAP))
        self.colormap.setToolTip("Colour map; weights use one range symmetric around 0")
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.tensor)
        top.addWidget(self.summed)
        top.addWidget(self.per_filter)
        top.addWidget(self.colormap)

        self.toolbar = self._build_toolbar()

        self.maps_widget = pg.GraphicsLayoutWidget()
        self.map_box = self.maps_widget.addViewBox(lockAspect=True, invertY=True)
        self.map_item = pg.ImageItem(axisOrder="row-major")
        self.map_box.addItem(self.map_item)
        self.stats_table = QTableWidget(0, 5)
        self.stats_table.setHorizontalHeaderLabels(["filter", "min", "max", "mean", "std"])
        self.stats_table.verticalHeader().hide()
        self.stats_table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.stats_table.setMinimumWidth(250)
        self.stats_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.stats_table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.hist = pg.PlotWidget()
        self.hist.setLabel("bottom", "weight")
        self.hist.setLabel("left", "count")
        self.hist_item = pg.PlotDataItem(stepMode="center", fillLevel=0,
                                         brush=colors().accent, pen=colors().accent)
        self.hist.addItem(self.hist_item)
        # Side by side: the dock shares the bottom edge with the summary and must stay low.
        body = QSplitter(Qt.Orientation.Horizontal)
        for widget, stretch in ((self.maps_widget, 3), (self.stats_table, 2), (self.hist, 2)):
            widget.setMinimumHeight(40)
            body.addWidget(widget)
            body.setStretchFactor(body.count() - 1, stretch)
        self.message = mute(QLabel("Select a convolution to see its kernels."))
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.pages = QStackedWidget()
        self.pages.addWidget(body)
        self.pages.addWidget(self.message)
        self.pages.setCurrentWidget(self.message)
        self.body = body

        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(top)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.pages, 1)

        self._colormap_changed()
        self.tensor.currentIndexChanged.connect(lambda _i: self.redraw())
        self.summed.toggled.connect(lambda _on: self.redraw())
        self.per_filter.toggled.connect(lambda _on: self.redraw())
        self.colormap.currentIndexChanged.connect(self._colormap_changed)
        self.stats_table.currentCellChanged.connect(
            lambda row, *_: self.filter_spin.setValue(row) if row >= 0 else None)
        document.stackChanged.connect(lambda _stack, _report: self.redraw())

    def _build_toolbar(self) -> QToolBar:
        bar = QToolBar()
        self.preset = QComboBox()
        self.preset.addItems([*PRESETS, GABOR_BANK])
        self.preset.setToolTip("Hand-made kernel: copied to every input channel of the filter, "
                               "divided by the channel count; the gabor bank gives filter i "
                               "angle i")
        self.filter_spin = QSpinBox()
        self.filter_spin.setPrefix("filter ")
        self.filter_spin.setToolTip("The filter (output channel) a preset goes to")
        self.apply_filter_action = QAction("Apply to filter", self)
        self.apply_filter_action.triggered.connect(lambda: self.apply_preset(all_filters=False))
        self.apply_all_action = QAction("Apply to all", self)
        self.apply_all_action.triggered.connect(lambda: self.apply_preset(all_filters=True))
        self.initialiser = QComboBox()
        for method in INITIALISERS:
            self.initialiser.addItem(INIT_LABELS[method], method)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setPrefix("seed ")
        self.reinit_action = QAction("Re-initialise", self)
        self.reinit_action.setToolTip("Draw all of the layer's weights afresh (biases to 0)")
        self.reinit_action.triggered.connect(self.reinitialise)
        self.load_action = QAction("Load .npy…", self)
        self.load_action.setToolTip("Replace the shown tensor by an array of the same shape")
        self.load_action.triggered.connect(self.load_npy)
        for widget_or_action in (self.preset, self.filter_spin, self.apply_filter_action,
                                 self.apply_all_action, None, self.initialiser, self.seed,
                                 self.reinit_action, None, self.load_action):
            if widget_or_action is None:
                bar.addSeparator()
            elif isinstance(widget_or_action, QAction):
                bar.addAction(widget_or_action)
            else:
                bar.addWidget(widget_or_action)
        return bar

    def menu_actions(self) -> list[QAction]:
        """The weight edits, for the window's Weights menu (they act on the toolbar's choices)."""
        return [self.apply_filter_action, self.apply_all_action, self.reinit_action,
                self.load_action]

    # ---- showing ------------------------------------------------------------------------------
    def select_layer(self, index: int | None) -> None:
        """Show layer `index`'s kernels (or a message for none / a layer without kernels)."""
        if index != self.layer_index:
            self.layer_index = index
            self.tensor.blockSignals(True)
            self.tensor.clear()
            self.tensor.blockSignals(False)
        self.redraw()

    def _layer_weight(self) -> tuple[str, np.ndarray] | None:
        """The shown tensor's key and array, or None when the layer has no kernels."""
        key = self.tensor.currentText()
        index = self.layer_index
        if index is None or index >= len(self.document.stack) or not key:
            return None
        weights = self.document.stack.layers[index].weights
        return (key, weights[key]) if key in weights else None

    def _transposed(self) -> bool:
        assert self.layer_index is not None
        return isinstance(self.document.stack.layers[self.layer_index].spec, ConvTranspose)

    def redraw(self) -> None:
        """Draw the current tensor of the selected layer from the document's stack."""
        index, stack = self.layer_index, self.document.stack
        self._set_actions_enabled(False)
        if index is None or index >= len(stack):
            self.title.setText("No layer selected")
            self._show_message("Select a convolution to see its kernels.")
            return
        layer = stack.layers[index]
        keys = kernel_keys(layer.weights)
        if [self.tensor.itemText(i) for i in range(self.tensor.count())] != keys:
            self.tensor.blockSignals(True)
            self.tensor.clear()
            self.tensor.addItems(keys)
            self.tensor.blockSignals(False)
        self.tensor.setVisible(len(keys) > 1)
        self.title.setText(f"{layer.name} · {layer.spec.type_name}")
        if not keys:
            count = sum(w.size for w in layer.weights.values())
            what = f"has {count:,} weights" if count else "has no weights"
            if not layer.weights and index < len(self.document.report.layers) \
                    and not self.document.report.layers[index].ok:
                what = "cannot compute, so it has no weights yet"
            self._show_message(f"{layer.spec.type_name} {what}; kernels are shown for "
                               f"convolutions.")
            return
        key, weight = self._layer_weight()  # type: ignore[misc]
        transposed = self._transposed()
        filters = np.swapaxes(weight, 0, 1) if transposed else weight
        self.filter_spin.setRange(0, filters.shape[0] - 1)
        shape = "×".join(map(str, weight.shape))
        self.title.setText(f"{layer.name} · {layer.spec.type_name} · {key} {shape} · "
                           f"|W| ≤ {float(np.abs(weight).max()):.3g}")
        self.pages.setCurrentWidget(self.body)
        self._set_actions_enabled(True)
        # The drawing is most of the cost of an edit: while nobody sees it, it waits.
        self._stale = not self._shown
        if self._stale:
            return
        planes = kernel_planes(weight, transposed)
        self.mosaic = kernel_mosaic(planes, self.summed.isChecked(), self.per_filter.isChecked(),
                                    self._aspect())
        self.map_item.setImage(self.mosaic.image, levels=LEVELS, autoLevels=False)
        grid = self.mosaic.grid
        shown = grid.channels if self.summed.isChecked() else grid.rows * grid.cols
        wanted = planes.shape[0] * (1 if self.summed.isChecked() else planes.shape[1])
        if grid.step != (1, 1) or shown < wanted:  # a tensor past the preview budget
            self.title.setText(f"{self.title.text()} · drawn as means of "
                               f"{grid.step[0]}×{grid.step[1]} blocks, {shown:,} of "
                               f"{wanted:,} kernels")
        self.map_box.autoRange(padding=0.02)
        self._fill_stats(filters)
        edges, counts = histogram(weight.ravel())
        self.hist_item.setData(edges, counts)

    def set_shown(self, shown: bool) -> None:
        """Whether a person can see the view (a dock tabbed behind another cannot); a drawing
        skipped while hidden is made on showing."""
        self._shown = shown
        if shown and self._stale:
            self.redraw()

    def _aspect(self) -> float:
        size = self.maps_widget.size()
        return size.width() / size.height() if min(size.width(), size.height()) > 50 else 1.0

    def _fill_stats(self, filters: np.ndarray) -> None:
        stats = filter_stats(filters)
        # ResizeToContents re-measures every column on each setItem (up to hundreds of ms for
        # 32 filters): fill with fixed columns, then let them fit the contents once.
        header = self.stats_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.stats_table.setRowCount(len(stats.mean))
        for row in range(len(stats.mean)):
            values = (str(row), *(f"{v[row]:.3f}" for v in (stats.minimum, stats.maximum,
                                                           stats.mean, stats.std)))
            for col, text in enumerate(values):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.stats_table.setItem(row, col, item)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.stats_table.resizeRowsToContents()

    def _show_message(self, text: str) -> None:
        self.mosaic = None
        self.message.setText(text)
        self.pages.setCurrentWidget(self.message)

    def _set_actions_enabled(self, enabled: bool) -> None:
        for action in self.menu_actions():
            action.setEnabled(enabled)

    def _colormap_changed(self) -> None:
        lut = lookup_table(self.colormap.currentData(),
                           pg.mkColor(pg.getConfigOption("background")))
        self.map_item.setLookupTable(lut)

    # ---- editing ------------------------------------------------------------------------------
    def apply_preset(self, all_filters: bool) -> None:
        """Put the chosen preset in the chosen filter (or every filter), as one undo step."""
        current = self._layer_weight()
        if current is None:
            return
        key, weight = current
        name = self.preset.currentText()
        target = None if all_filters else self.filter_spin.value()
        try:
            new = with_preset(weight, name, target, self._transposed())
        except ConfigError as err:
            self.report_error("Cannot apply the kernel", str(err))
            return
        where = "all filters" if target is None else f"filter {target}"
        self._commit({key: new}, f"Apply {name} to {where} of {{layer}}")

    def reinitialise(self) -> None:
        """Draw all the layer's weights afresh with the chosen initialiser and seed."""
        index = self.layer_index
        if index is None or self._layer_weight() is None:
            return
        info = self.document.report.layers[index].info
        if info is None:
            return
        method = self.initialiser.currentData()
        layer = self.document.stack.layers[index]
        weights = reinitialised(layer.name, info.weight_shapes, method, self.seed.value())
        self._commit(weights, f"Re-initialise {{layer}} ({INIT_LABELS[method]}, "
                              f"seed {self.seed.value()})")

    def choose_npy_path(self) -> str:
        """The .npy file to load, or "" when cancelled (tests replace this)."""
        return QFileDialog.getOpenFileName(self, "Load weights", "",
                                           "NumPy arrays (*.npy);;All files (*)")[0]

    def load_npy(self) -> None:
        """Replace the shown tensor by a .npy array of the same shape; a misfit changes nothing."""
        current = self._layer_weight()
        if current is None:
            return
        path = self.choose_npy_path()
        if not path:
            return
        key, weight = current
        try:
            new = load_weight(path, weight.shape)
        except ConfigError as err:
            self.report_error("Cannot load weights", f"{key}: {err}")
            return
        self._commit({key: new}, f"Load {key} of {{layer}} from file")

    def _commit(self, weights: dict[str, np.ndarray], text: str) -> None:
        """One undo step; `text` names the edit with "{layer}" where the layer's name goes."""
        assert self.layer_index is not None
        layer = self.document.stack.layers[self.layer_index]
        if all(key in layer.weights and np.array_equal(layer.weights[key], value)
               for key, value in weights.items()):
            return  # nothing changes: no empty undo step
        name = layer.name
        self.document.set_weights(self.layer_index, weights, text.format(layer=name))
