"""The Explain dock: how the selected layer computes the clicked pixel, in tabs.

"Receptive field", "Formulas" and "im2col" follow the selected layer, the newest RunResult and
the pixel last clicked on a feature map (the centre pixel of the layer's output until one is
clicked); "Animation" plays the layer's settings on a small grid and "Cross-correlation" shows
its kernel flipped and not. Nothing here runs the engine: the field is arithmetic on the stack,
and the im2col row is gathered from the RunResult's outputs, both cheap enough for the UI
thread. While the tabs are hidden (`set_shown(False)`), refreshing waits until they are shown,
so the live view does not pay for them.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QScrollArea, QTabWidget, QWidget

from engine.executor import RunResult
from engine.explain_im2col import EXPLAINED, explain_im2col
from gui.explain_animation import AnimationPanel
from gui.explain_cross_correlation import CrossCorrelationPanel
from gui.explain_formula_panel import FormulaPanel
from gui.explain_im2col_panel import Im2colPanel
from gui.explain_receptive_panel import ReceptivePanel
from models.explain_formulas import layer_formulas
from models.receptive_window import receptive_masks


def scrolled(panel: QWidget) -> QScrollArea:
    """The panel in a scroll area, so a short dock scrolls it instead of its drawing setting the
    window's least height."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(panel)
    return area


class ExplainView(QTabWidget):
    """The tabs of the Explain dock.

    Inputs: `show_result(result)`, `select_layer(index)`, `select_pixel(layer, channel,
    position)`. Signals: `selectionChanged(layer, channel, position)` whenever the explained
    pixel changes (position is a tuple, () for flat outputs); `fieldChanged(mask)` with the
    input's receptive-field mask (bool, the input's spatial shape) or None when there is none.
    Public state tests read: `result`, `layer_index`, `channel`, `position`, `masks` and the
    panels `receptive`, `formulas`, `im2col`, `animation`, `cross_correlation`.
    """
    selectionChanged = Signal(int, int, object)
    fieldChanged = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: RunResult | None = None
        self.layer_index: int | None = None
        self.channel = 0
        self.position: tuple[int, ...] | None = None  # None: the centre, once there is an output
        self.masks: list[np.ndarray] | None = None
        self.receptive = ReceptivePanel()
        self.formulas = FormulaPanel()
        self.im2col = Im2colPanel()
        self.animation = AnimationPanel()
        self.cross_correlation = CrossCorrelationPanel()
        self._shown = True
        self._stale = False  # a refresh missed while hidden
        self._animated: tuple[object, object] | None = None  # what the animation plays
        self.addTab(self.receptive, "Receptive field")
        self.addTab(self.formulas, "Formulas")
        self.addTab(self.im2col, "im2col")
        self.addTab(scrolled(self.animation), "Animation")
        self.addTab(scrolled(self.cross_correlation), "Cross-correlation")

    def show_result(self, result: RunResult) -> None:
        self.result = result
        self._refresh()

    def select_layer(self, index: int | None) -> None:
        """Explain layer `index` at its centre pixel (a pixel clicked on it comes next)."""
        if index != self.layer_index:
            self.layer_index, self.channel, self.position = index, 0, None
        self._refresh()

    def select_pixel(self, layer_index: int, channel: int, position: tuple[int, ...]) -> None:
        """Explain output (channel, *position) of layer `layer_index` (sample 0)."""
        self.layer_index, self.channel, self.position = layer_index, channel, tuple(position)
        self._refresh()

    def follow_theme(self) -> None:
        """Redraw the rich text and the drawings in the colours of the theme now applied."""
        self.animation.follow_theme()
        self.cross_correlation.follow_theme()
        self._refresh()

    def set_shown(self, shown: bool) -> None:
        """Whether a person can see the tabs (a dock tabbed behind another cannot); a refresh
        missed while hidden happens on showing."""
        self._shown = shown
        if shown and self._stale:
            self._refresh()

    def _refresh(self) -> None:
        self._stale = not self._shown
        if self._stale:
            return
        self.masks = None
        output = self._output()
        if output is None:
            text = ("Select a layer whose feature maps are computed to see how it works."
                    if self.result is not None else "Waiting for the feature maps…")
            for panel in (self.receptive, self.formulas, self.im2col):
                panel.clear(text)
            self._animated = None
            self.animation.set_layer(None, None)
            self.cross_correlation.set_layer(None, None, None)
            self.fieldChanged.emit(None)
            return
        assert self.result is not None and self.layer_index is not None
        spatial = output.shape[2:]
        if self.position is None or len(self.position) != len(spatial) or not all(
                0 <= p < s for p, s in zip(self.position, spatial)):
            self.position = tuple(s // 2 for s in spatial)
        self.channel = min(max(self.channel, 0), output.shape[1] - 1)
        result, index, position = self.result, self.layer_index, self.position
        self.masks = receptive_masks(result.stack, result.report, index, position)
        self.receptive.show(result, index, self.masks)
        layer = result.stack.layers[index]
        report = result.report.layers[index]
        assert report.info is not None and report.input_shape is not None
        title = f"{layer.name} · {layer.spec.type_name}"
        self.formulas.show(title, layer_formulas(layer.spec, report.info, report.input_shape[1:],
                                                 report.input_shape[0]))
        self._show_im2col(title)
        layer_input = result.input if index == 0 else result.outputs[index - 1]
        animated = (layer.spec, report.input_shape[1:])
        if animated != self._animated:  # unrelated edits leave a playing animation alone
            self._animated = animated
            self.animation.set_layer(*animated)
        self.cross_correlation.set_layer(layer.spec, layer.weights, layer_input)
        self.fieldChanged.emit(self.masks[0] if self.masks[0].ndim else None)
        self.selectionChanged.emit(index, self.channel, position)

    def _output(self) -> np.ndarray | None:
        if self.result is None or self.layer_index is None \
                or self.layer_index >= len(self.result.outputs):
            return None
        return self.result.outputs[self.layer_index]

    def _show_im2col(self, title: str) -> None:
        assert self.result is not None and self.layer_index is not None
        result, index, position = self.result, self.layer_index, self.position
        layer = result.stack.layers[index]
        if not isinstance(layer.spec, EXPLAINED):
            self.im2col.clear(f"{layer.spec.type_name} is not a convolution: im2col explains "
                              f"Conv, DepthwiseConv and PointwiseConv layers.")
            return
        x = result.input if index == 0 else result.outputs[index - 1]
        output = result.outputs[index]
        assert x is not None and output is not None and position is not None
        explained = explain_im2col(layer.spec, result.report.layers[index].info, layer.weights,
                                   x, 0, self.channel, position)
        self.im2col.show(f"{title} · filter {self.channel}", explained, position,
                         float(output[(0, self.channel, *position)]))
