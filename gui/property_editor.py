"""The property editor, generated from spec field metadata, and the input editor.

One map (EDITORS) turns a field's kind into its widget: int -> spin box, float -> number box,
bool -> check box, choices -> combo box, per-axis -> a spin box per axis, per-side -> begin and
end rows. A new hyperparameter therefore needs no GUI code. Every edit goes to the Document.
"""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QFrame,
                               QGridLayout, QHBoxLayout, QLabel, QLineEdit, QScrollArea, QSpinBox,
                               QVBoxLayout, QWidget)

from gui.document import Document, LayerPath
from gui.theme import colors, mute
from models.analysis import LayerReport, StackReport
from models.errors import ConfigError
from models.fields import FieldInfo, editable_fields
from models.layers import LayerSpec
from models.layers.base import AXIS_NAMES
from models.stack import InputSpec, Stack

INT_LIMIT = 1_000_000


def _bounds(info: FieldInfo, low: float, high: float) -> tuple[float, float]:
    return (low if info.minimum is None else info.minimum,
            high if info.maximum is None else info.maximum)


def _spin_box(info: FieldInfo) -> QSpinBox:
    box = QSpinBox()
    low, high = _bounds(info, 0, INT_LIMIT)
    box.setRange(int(low), int(high))
    box.setSingleStep(int(info.step or 1))
    box.setToolTip(info.tooltip)
    box.setAccelerated(True)
    return box


def _set_quietly(widget: QWidget, setter: str, value: Any, getter: str) -> None:
    """Set a widget's value without emitting its change signal (and leave it alone if equal,
    so the box a person is typing in keeps its cursor)."""
    if getattr(widget, getter)() == value:
        return
    widget.blockSignals(True)
    getattr(widget, setter)(value)
    widget.blockSignals(False)


def _set_number_quietly(box: QSpinBox | QDoubleSpinBox, value: float) -> None:
    """``_set_quietly`` for a number box, first widening its range to take a value that a file
    or the API set past the field's usual range: a clamped box would show another value than
    the layer has."""
    if value > box.maximum():
        box.setMaximum(value)
    if value < box.minimum():
        box.setMinimum(value)
    _set_quietly(box, "setValue", value, "value")


class FieldEditor(QWidget):
    """A widget for one spec field. Emits `edited(value)` when the person changes it."""
    edited = Signal(object)

    def __init__(self, info: FieldInfo, value: Any) -> None:
        super().__init__()
        self.info = info
        self.setToolTip(info.tooltip)
        self.layout_ = QHBoxLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.layout_.setSpacing(4)

    def set_value(self, value: Any) -> None:
        raise NotImplementedError


class IntEditor(FieldEditor):
    def __init__(self, info: FieldInfo, value: int) -> None:
        super().__init__(info, value)
        self.box = _spin_box(info)
        self.box.setValue(value)
        if info.unit:
            self.box.setSuffix(f" {info.unit}")
        self.box.valueChanged.connect(self.edited.emit)
        self.layout_.addWidget(self.box)

    def set_value(self, value: int) -> None:
        _set_number_quietly(self.box, value)


class NumberBox(QDoubleSpinBox):
    """A QDoubleSpinBox that shows values as %g, so 1e-05 and 0.25 both read naturally."""

    def __init__(self) -> None:
        super().__init__()
        self.setDecimals(15)  # the display is %g; this only stops Qt rounding the value

    def textFromValue(self, value: float) -> str:
        return f"{value:g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.removesuffix(self.suffix()).strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> object:
        body = text.removesuffix(self.suffix()).strip()
        try:
            value = float(body)
        except ValueError:
            return QValidator.State.Intermediate, text, pos
        ok = self.minimum() <= value <= self.maximum()
        return (QValidator.State.Acceptable if ok else QValidator.State.Intermediate), text, pos


class FloatEditor(FieldEditor):
    def __init__(self, info: FieldInfo, value: float) -> None:
        super().__init__(info, value)
        self.box = NumberBox()
        low, high = _bounds(info, -1e9, 1e9)
        self.box.setRange(low, high)
        self.box.setSingleStep(info.step or 0.1)
        self.box.setValue(value)
        self.box.setToolTip(info.tooltip)
        self.box.valueChanged.connect(self.edited.emit)
        self.layout_.addWidget(self.box)

    def set_value(self, value: float) -> None:
        _set_number_quietly(self.box, value)


class BoolEditor(FieldEditor):
    def __init__(self, info: FieldInfo, value: bool) -> None:
        super().__init__(info, value)
        self.box = QCheckBox()
        self.box.setChecked(value)
        self.box.setToolTip(info.tooltip)
        self.box.toggled.connect(self.edited.emit)
        self.layout_.addWidget(self.box)

    def set_value(self, value: bool) -> None:
        _set_quietly(self.box, "setChecked", value, "isChecked")


class ChoiceEditor(FieldEditor):
    def __init__(self, info: FieldInfo, value: str) -> None:
        super().__init__(info, value)
        self.box = QComboBox()
        self.box.addItems(list(info.choices))
        self.box.setCurrentText(value)
        self.box.setToolTip(info.tooltip)
        self.box.currentTextChanged.connect(self.edited.emit)
        self.layout_.addWidget(self.box)

    def set_value(self, value: str) -> None:
        _set_quietly(self.box, "setCurrentText", value, "currentText")


class AxesEditor(FieldEditor):
    """One spin box per spatial axis, each labelled with its axis (H, W, ...)."""

    def __init__(self, info: FieldInfo, value: tuple[int, ...]) -> None:
        super().__init__(info, value)
        self.boxes = self._row(self.layout_, len(value))
        self.set_value(value)

    def _row(self, layout: QHBoxLayout, rank: int) -> list[QSpinBox]:
        boxes = []
        for axis in AXIS_NAMES.get(rank, ()):
            if rank > 1:
                label = QLabel(axis[0].upper())
                label.setToolTip(axis)
                layout.addWidget(label)
            box = _spin_box(self.info)
            box.setToolTip(f"{self.info.tooltip} ({axis})")
            box.valueChanged.connect(lambda _v: self.edited.emit(self.value()))
            layout.addWidget(box, 1)
            boxes.append(box)
        return boxes

    def value(self) -> tuple[int, ...]:
        return tuple(box.value() for box in self.boxes)

    def set_value(self, value: tuple[int, ...]) -> None:
        for box, v in zip(self.boxes, value):
            _set_number_quietly(box, v)


class SidesEditor(AxesEditor):
    """Two rows of per-axis spin boxes: the pads at the beginning, then at the end."""

    def __init__(self, info: FieldInfo, value: tuple[int, ...]) -> None:
        FieldEditor.__init__(self, info, value)
        rank = len(value) // 2
        rows = QVBoxLayout()
        rows.setSpacing(2)
        self.boxes = []
        for side in ("begin", "end"):
            row = QHBoxLayout()
            label = QLabel(side)
            label.setMinimumWidth(34)
            row.addWidget(label)
            self.boxes += self._row(row, rank)
            rows.addLayout(row)
        self.layout_.addLayout(rows)
        self.set_value(value)


class ListEditor(FieldEditor):
    """A list of numbers whose length the layer does not fix (a Reshape's target, a Transpose's
    permutation, Resize's scales), typed as "2, 2": applied on Enter or leaving the box; text
    that is not a list of numbers is reverted."""

    def __init__(self, info: FieldInfo, value: tuple) -> None:
        super().__init__(info, value)
        self.box = QLineEdit()
        self.box.setToolTip(info.tooltip)
        self.box.editingFinished.connect(self._finished)
        self.layout_.addWidget(self.box)
        self.set_value(value)

    @staticmethod
    def _text(value: tuple) -> str:
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)

    def _finished(self) -> None:
        try:
            parts = [p.strip() for p in self.box.text().split(",") if p.strip()]
            value = tuple(float(p) if any(c in p for c in ".eE") else int(p) for p in parts)
        except ValueError:
            self.box.setText(self._text(self._value))
            return
        if value != self._value:
            self._value = value
            self.edited.emit(value)

    def set_value(self, value: tuple) -> None:
        self._value = tuple(value)
        _set_quietly(self.box, "setText", self._text(self._value), "text")


EDITORS: dict[object, type[FieldEditor]] = {
    int: IntEditor, float: FloatEditor, bool: BoolEditor, tuple: ListEditor,
    "choices": ChoiceEditor, "per_axis": AxesEditor, "per_side": SidesEditor,
}
"""The one map from a field's kind to its widget."""


def field_kind(info: FieldInfo, value: Any) -> object:
    """The key of EDITORS for a field: its metadata's shape first, then its Python type."""
    if info.per_side:
        return "per_side"
    if info.per_axis:
        return "per_axis"
    if info.choices:
        return "choices"
    return type(value)


def editor_for(info: FieldInfo, value: Any) -> FieldEditor:
    return EDITORS[field_kind(info, value)](info, value)


def _shape_signature(spec: LayerSpec) -> tuple:
    """What decides the form's widgets: the class and the length of every tuple field."""
    return (type(spec),) + tuple(len(getattr(spec, name)) if isinstance(getattr(spec, name), tuple)
                                 else None for name, _ in editable_fields(type(spec)))


class PropertyEditor(QScrollArea):
    """The settings of the selected layer, its name, and its error: as a banner, and in red
    under the field the error names."""

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.path: LayerPath | None = None
        self.editors: dict[str, FieldEditor] = {}
        self.field_errors: dict[str, QLabel] = {}
        self._signature: tuple | None = None
        self._build_empty()
        document.stackChanged.connect(self.refresh)

    # ---- public -------------------------------------------------------------------------------
    def show_path(self, path: LayerPath | None) -> None:
        """Edit the layer at `path` (None: nothing selected)."""
        self.path = path
        self._signature = None
        self.refresh(self.document.stack, self.document.report)

    def refresh(self, stack: Stack, report: StackReport) -> None:
        """Follow the stack: update the values in place when the form still fits, else rebuild."""
        if self.path is not None and self.path[0] >= len(stack):
            self.path = None
        if self.path is None:
            if self._signature != ():
                self._build_empty()
            return
        spec = self.document.spec_at(self.path)
        signature = (self.path, _shape_signature(spec))
        if signature != self._signature:
            self._build(spec)
            self._signature = signature
        self._update(stack, report, spec)

    # ---- building -----------------------------------------------------------------------------
    def _reset_form(self) -> QVBoxLayout:
        self.editors, self.field_errors = {}, {}
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(10, 10, 10, 10)
        layout.setSpacing(8)
        self.setWidget(page)
        return layout

    def _build_empty(self) -> None:
        layout = self._reset_form()
        hint = QLabel("Select a layer in the stack to edit its settings.")
        hint.setWordWrap(True)
        layout.addWidget(mute(hint))
        layout.addStretch(1)
        self.banner = self.title = self.name_edit = None
        self._signature = ()

    def _build(self, spec: LayerSpec) -> None:
        layout = self._reset_form()
        self.title = QLabel()
        self.title.setStyleSheet("font-weight: bold; font-size: 115%;")
        layout.addWidget(self.title)
        description = QLabel(spec.description)
        description.setWordWrap(True)
        layout.addWidget(mute(description))
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.banner)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.name_edit = QLineEdit()
        self.name_edit.setToolTip("The layer's name, unique in the stack.")
        self.name_edit.editingFinished.connect(self._rename)
        form.addRow("Name", self.name_edit)
        for name, info in editable_fields(type(spec)):
            editor = editor_for(info, getattr(spec, name))
            editor.edited.connect(lambda value, name=name: self._edit(name, value))
            error = QLabel()
            error.setWordWrap(True)
            error.setStyleSheet(f"color: {colors().error};")
            error.hide()
            cell = QWidget()
            cell_layout = QVBoxLayout(cell)
            cell_layout.setContentsMargins(0, 0, 0, 0)
            cell_layout.setSpacing(2)
            cell_layout.addWidget(editor)
            cell_layout.addWidget(error)
            label = QLabel(info.label + (f" ({info.unit})" if info.unit and not info.per_axis
                                         and not info.per_side else ""))
            label.setToolTip(info.tooltip)
            form.addRow(label, cell)
            self.editors[name] = editor
            self.field_errors[name] = error
        layout.addLayout(form)
        layout.addStretch(1)

    # ---- updating -----------------------------------------------------------------------------
    def _update(self, stack: Stack, report: StackReport, spec: LayerSpec) -> None:
        index = self.path[0]  # type: ignore[index]
        layer = stack.layers[index]
        layer_report: LayerReport = report.layers[index]
        self.title.setText(f"{layer.name}  ·  {spec.type_name}")
        if self.name_edit is not None and not self.name_edit.hasFocus():
            self.name_edit.setText(layer.name)
        for name, editor in self.editors.items():
            editor.set_value(getattr(spec, name))
            used_when = editor.info.used_when
            editor.setEnabled(used_when is None or getattr(spec, used_when[0]) == used_when[1])
        error = layer_report.error
        field = error.field if error is not None else None
        for name, label in self.field_errors.items():
            label.setVisible(name == field)
            if name == field:
                label.setText(layer_report.error.reason)  # type: ignore[union-attr]
        self._show_banner(layer_report)

    def _show_banner(self, report: LayerReport) -> None:
        theme = colors()
        if report.error is not None:
            self.banner.setText(report.error.reason)
            self.banner.setStyleSheet(f"background: {theme.error_fill}; color: {theme.error}; "
                                      f"border: 1px solid {theme.error}; border-radius: 4px; "
                                      f"padding: 6px;")
        elif report.waiting_on is not None:
            self.banner.setText(f"Waiting on layer {report.waiting_on + 1}: its settings do not "
                                f"work yet, so this layer's input is unknown.")
            self.banner.setStyleSheet(f"color: {theme.waiting}; border: 1px solid {theme.waiting}; "
                                      f"border-radius: 4px; padding: 6px;")
        self.banner.setVisible(report.error is not None or report.waiting_on is not None)

    def _edit(self, name: str, value: Any) -> None:
        try:
            self.document.set_field(self.path, name, value)  # type: ignore[arg-type]
        except ConfigError as err:
            self.banner.setText(err.reason)
            self.banner.show()

    def _rename(self) -> None:
        if self.path is None or self.name_edit is None:
            return
        try:
            self.document.rename_layer(self.path[0], self.name_edit.text())
        except ConfigError as err:
            self.name_edit.setText(self.document.stack.layers[self.path[0]].name)
            self.banner.setText(err.reason)
            self.banner.show()


class InputEditor(QFrame):
    """The input's channels, 0-3 spatial sizes and batch, as the stack's first row."""

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.setObjectName("InputEditor")
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(10, 6, 10, 6)
        title = QLabel("Input")
        title.setStyleSheet("font-weight: bold;")
        self.grid.addWidget(title, 0, 0)
        self.channels = self._spin("Channels: 1 for grey, 3 for colour, or embedding features.")
        self.axes = QComboBox()
        self.axes.addItems(["Flat vector", "1D signal", "2D image", "3D volume"])
        self.axes.setToolTip("How many spatial axes the input has; new layers follow it.")
        self.batch = self._spin("Batch: samples per run; multiplies MACs and activation memory.")
        self.sizes_row = QHBoxLayout()
        self.sizes_row.setSpacing(4)
        self.sizes: list[QSpinBox] = []
        row = QHBoxLayout()
        row.setSpacing(6)
        for text, widget in (("C", self.channels), (None, self.axes)):
            if text:
                row.addWidget(QLabel(text))
            row.addWidget(widget)
        row.addLayout(self.sizes_row)
        row.addWidget(QLabel("batch"))
        row.addWidget(self.batch)
        row.addStretch(1)
        self.grid.addLayout(row, 0, 1)
        self.channels.valueChanged.connect(lambda _v: self._edit("input channels"))
        self.batch.valueChanged.connect(lambda _v: self._edit("batch size"))
        self.axes.currentIndexChanged.connect(self._axes_changed)
        document.stackChanged.connect(lambda stack, _report: self.show_input(stack.input))
        self.show_input(document.stack.input)

    def _spin(self, tooltip: str, maximum: int = 4096) -> QSpinBox:
        box = QSpinBox()
        box.setRange(1, maximum)
        box.setToolTip(tooltip)
        return box

    def show_input(self, spec: InputSpec) -> None:
        """Show `spec` (after an edit, undo or open) without emitting edits."""
        rank = len(spec.spatial)
        if len(self.sizes) != rank:
            self._make_sizes(rank)
        for box, value in zip([self.channels, self.batch, *self.sizes],
                              [spec.channels, spec.batch, *spec.spatial]):
            _set_number_quietly(box, value)
        _set_quietly(self.axes, "setCurrentIndex", rank, "currentIndex")

    def _make_sizes(self, rank: int) -> None:
        while self.sizes_row.count():
            widget = self.sizes_row.takeAt(0).widget()
            widget.deleteLater()
        self.sizes = []
        for axis in AXIS_NAMES.get(rank, ()):
            label = QLabel(axis[0].upper())
            self.sizes_row.addWidget(label)
            box = self._spin(f"Input {axis} in pixels.", 8192)
            box.valueChanged.connect(lambda _v: self._edit("input size"))
            self.sizes_row.addWidget(box)
            self.sizes.append(box)

    def current(self) -> InputSpec:
        return InputSpec(self.channels.value(), tuple(box.value() for box in self.sizes),
                         self.batch.value())

    def _edit(self, what: str) -> None:
        self.document.set_input(self.current(), what)

    def _axes_changed(self, position: int) -> None:
        old = self.document.stack.input
        rank = position
        spatial = (tuple(old.spatial) + (old.spatial[-1] if old.spatial else 32,) * 3)[:rank]
        self.document.set_input(InputSpec(old.channels, spatial, old.batch), "input axes")

