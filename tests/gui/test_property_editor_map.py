"""The property editor is generated from field metadata through one map, for every layer."""
from __future__ import annotations

import pytest
from PySide6.QtWidgets import QCheckBox, QComboBox, QSpinBox

from gui.palette import ENTRIES
from gui.property_editor import EDITORS, AxesEditor, FloatEditor, SidesEditor, field_kind
from models.fields import editable_fields


@pytest.mark.parametrize("label", sorted(ENTRIES))
def test_every_palette_layer_gets_an_editor_for_every_field(window, label):
    window.new_document()
    window.stack_view.add_from_palette(label)
    spec = window.document.stack.layers[0].spec
    editors = window.property_editor.editors
    fields = editable_fields(type(spec))
    assert list(editors) == [name for name, _ in fields]
    for name, info in fields:
        editor = editors[name]
        value = getattr(spec, name)
        assert type(editor) is EDITORS[field_kind(info, value)]
        assert editor.toolTip() == info.tooltip
        if isinstance(editor, SidesEditor):
            assert len(editor.boxes) == 2 * spec.rank
        elif isinstance(editor, AxesEditor):
            assert len(editor.boxes) == spec.rank and editor.value() == value
        elif isinstance(editor, FloatEditor):
            assert editor.box.value() == pytest.approx(value)
        elif isinstance(getattr(editor, "box", None), QSpinBox):
            assert editor.box.value() == value
            assert editor.box.minimum() == info.minimum and editor.box.maximum() == info.maximum
        elif isinstance(getattr(editor, "box", None), QComboBox):
            assert editor.box.currentText() == value
        elif isinstance(getattr(editor, "box", None), QCheckBox):
            assert editor.box.isChecked() == value


def test_float_field_edits_like_a_person_types(window):
    window.new_document()
    window.stack_view.add_from_palette("BatchNorm")
    box = window.property_editor.editors["epsilon"].box
    box.lineEdit().selectAll()
    box.lineEdit().insert("0.001")
    box.interpretText()
    assert window.document.stack.layers[0].spec.epsilon == pytest.approx(0.001)
    assert box.text() == "0.001"


def test_input_editor_changes_shapes_at_once(window):
    window.input_editor.sizes[0].setValue(64)
    assert window.stack_view.card(0).shape_text == "(1, 8, 64, 128)"
    window.input_editor.batch.setValue(4)
    assert window.stack_view.card(0).shape_text == "(4, 8, 64, 128)"
    window.document.undo_stack.undo()
    assert window.input_editor.batch.value() == 1


def test_list_field_edits_as_typed_and_reverts_what_is_not_a_list(qtbot, window):
    window.new_document()
    window.stack_view.add_from_palette("Upsample x2")
    editor = window.property_editor.editors["scales"]
    editor.box.setText("3, 1.5")
    editor.box.editingFinished.emit()
    spec = window.document.stack.layers[0].spec
    assert tuple(spec.scales) == (3.0, 1.5)
    assert window.document.report.layers[0].output_shape[2:] == (
        window.document.stack.input.spatial[0] * 3, int(window.document.stack.input.spatial[1] * 1.5))
    editor.box.setText("two, three")
    editor.box.editingFinished.emit()
    assert editor.box.text() == "3, 1.5" and window.document.stack.layers[0].spec == spec
