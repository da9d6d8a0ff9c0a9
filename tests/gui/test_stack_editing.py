"""Building a stack as a person would: palette, drag and drop, property editor, undo."""
from __future__ import annotations

from PySide6.QtCore import QMimeData, QPoint, Qt
from PySide6.QtGui import QDropEvent

from gui.palette import PALETTE_MIME
from gui.stack_view import LAYER_MIME
from models.project import to_json


def names(window) -> list[str]:
    return [layer.name for layer in window.document.stack.layers]


def double_click(qtbot, view, item) -> None:
    rect = view.visualItemRect(item)
    # Qt's double-click handling needs the press that precedes it, as a real mouse sends.
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def drop(view, mime_type: str, payload: str, pos: QPoint) -> None:
    mime = QMimeData()
    mime.setData(mime_type, payload.encode())
    event = QDropEvent(pos, Qt.DropAction.CopyAction | Qt.DropAction.MoveAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    view.dropEvent(event)


def test_palette_double_click_adds_after_selection(qtbot, window):
    window.stack_view.select(1)
    double_click(qtbot, window.layer_palette, window.layer_palette.item_for("Conv2D"))
    layer = window.document.stack.layers[2]
    assert layer.spec.type_name == "Conv2D" and layer.name == "conv4"
    assert window.stack_view.current_path() == (2, None)
    assert window.stack_view.card(2).shape_text == "(1, 16, 128, 128)"
    assert window.document.undo_stack.undoText() == "Add Conv2D"


def test_palette_enter_adds_with_the_input_rank(qtbot, window):
    window.input_editor.axes.setCurrentIndex(1)  # a 1D signal
    assert window.document.stack.input.spatial == (128,)
    window.stack_view.select(len(window.document.stack) - 1)
    window.layer_palette.setCurrentItem(window.layer_palette.item_for("Max pool"))
    window.layer_palette.setFocus()
    qtbot.keyClick(window.layer_palette, Qt.Key.Key_Return)
    assert window.document.stack.layers[-1].spec.type_name == "MaxPool1D"


def test_flat_input_feeds_dense_layers_and_convs_say_why_not(qtbot, window):
    window.input_editor.axes.setCurrentIndex(0)  # a flat feature vector
    stack = window.document.stack
    assert stack.input.spatial == () and len(window.input_editor.sizes) == 0
    report = window.document.report
    assert report.layers[0].error is not None and "flat vector" in report.layers[0].error.reason
    window.document.undo_stack.undo()
    assert window.document.stack.input.spatial == (128, 128)
    assert window.input_editor.axes.currentIndex() == 2


def test_drop_from_palette_inserts_at_drop_position(window):
    view = window.stack_view
    top_of_first = view.visualItemRect(view.topLevelItem(0)).topLeft() + QPoint(40, 4)
    drop(view, PALETTE_MIME, "BatchNorm", top_of_first)
    assert names(window)[0] == "bn1"
    assert view.card(0).shape_text == "(1, 3, 128, 128)"


def test_drag_a_card_to_reorder(window):
    view = window.stack_view
    before = names(window)
    last = view.topLevelItem(view.topLevelItemCount() - 1)
    bottom = view.visualItemRect(last).bottomLeft() + QPoint(40, -3)
    drop(view, LAYER_MIME, "1", bottom)  # relu1 to the end
    assert names(window) == before[:1] + before[2:] + ["relu1"]
    assert window.document.undo_stack.undoText() == "Move relu1"
    assert view.card(len(before) - 1).name == "relu1"


def test_undoing_a_move_keeps_the_selected_layer_selected(window):
    view = window.stack_view
    before = names(window)
    last = view.topLevelItem(view.topLevelItemCount() - 1)
    drop(view, LAYER_MIME, "1", view.visualItemRect(last).bottomLeft() + QPoint(40, -3))
    view.select(1)  # maxpool1, moved up by the move
    assert view.card(1).name == before[2]
    window.document.undo_stack.undo()
    assert names(window) == before
    assert view.current_path() == (2, None) and view.card(2).name == before[2]
    assert window.property_editor.title.text().startswith(before[2])


def test_field_edit_replaces_only_the_cards_that_changed(window):
    view = window.stack_view
    items = [view.topLevelItem(i) for i in range(view.topLevelItemCount())]
    cards = [view.card(i) for i in range(len(items))]
    view.select(3)  # conv2: its filters change its own card and the next three layers' shapes
    window.property_editor.editors["out_channels"].box.setValue(20)
    assert [view.topLevelItem(i) for i in range(len(items))] == items  # updated, not rebuilt
    changed = [i for i in range(len(items)) if view.card(i) != cards[i]]
    assert changed == [3, 4, 5, 6]
    assert view.card(6).params_text == f"{32 * 20 * 9 + 32:,} params"


def test_field_edit_updates_cards_and_merges_into_one_undo_step(window):
    window.stack_view.select(0)
    filters = window.property_editor.editors["out_channels"].box
    for value in (9, 10, 12):  # a spin-box drag
        filters.setValue(value)
    assert window.stack_view.card(0).shape_text == "(1, 12, 128, 128)"
    assert window.stack_view.card(3).params_text == f"{16 * 12 * 9 + 16:,} params"
    assert window.document.undo_stack.count() == 1
    assert window.document.undo_stack.undoText() == "Change filters of conv1"


def test_values_past_a_fields_usual_range_are_shown_as_they_are(window):
    # A file or a matched input can hold more than the boxes' usual range: they must show it,
    # not a clamped value the layer does not have.
    from models.stack import InputSpec
    window.stack_view.select(0)
    window.document.set_field((0, None), "dilation", (40, 1))
    assert window.property_editor.editors["dilation"].value() == (40, 1)
    window.document.set_input(InputSpec(1, (16000,)))  # a 1 s recording at 16 kHz
    assert [box.value() for box in window.input_editor.sizes] == [16000]
    window.document.undo_stack.undo()
    assert [box.value() for box in window.input_editor.sizes] == [128, 128]


def test_pads_are_editable_only_with_explicit_padding(window):
    window.stack_view.select(0)  # conv1, same padding
    editors = window.property_editor.editors
    assert not editors["pads"].isEnabled()
    editors["padding"].box.setCurrentText("explicit")
    assert window.document.stack.layers[0].spec.padding == "explicit"
    assert window.property_editor.editors["pads"].isEnabled()


def test_invalid_kernel_shows_its_message_and_later_layers_wait(window):
    initial = window.document.stack
    view, editor = window.stack_view, window.property_editor
    view.select(6)  # conv3 sees 32x32
    editor.editors["padding"].box.setCurrentText("valid")
    editor.editors["dilation"].set_value((1, 1))
    editor.editors["dilation"].edited.emit((1, 1))
    editor.editors["kernel_size"].boxes[0].setValue(40)

    card = view.card(6)
    assert card.state == "error"
    assert "kernel 40 is larger than the padded input along the height" in card.status
    kernel_error = editor.field_errors["kernel_size"]
    assert not kernel_error.isHidden() and "kernel 40" in kernel_error.text()
    assert editor.field_errors["stride"].isHidden()
    assert not editor.banner.isHidden() and "kernel 40" in editor.banner.text()
    assert view.card(7).state == "waiting" and view.card(7).status == "waiting on layer 7"
    assert view.card(7).shape_text == "—"
    assert window.summary.cell_text(8, "Output shape") == "waiting on layer 7"

    # Undo everything: the very stack we started from, then redo it all.
    undo = window.document.undo_stack
    edited = window.document.stack
    while undo.canUndo():
        undo.undo()
    assert window.document.stack is initial
    assert to_json(window.document.stack) == to_json(initial)
    assert view.card(7).state == "ok" and editor.field_errors["kernel_size"].isHidden()
    while undo.canRedo():
        undo.redo()
    assert window.document.stack is edited and view.card(6).state == "error"


def test_delete_duplicate_and_rename(qtbot, window):
    view = window.stack_view
    view.select(1)
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert names(window)[:3] == ["conv1", "relu1", "relu4"]
    assert view.current_path() == (2, None)
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert names(window)[:3] == ["conv1", "relu1", "maxpool1"]

    view.select(0)
    name_edit = window.property_editor.name_edit
    name_edit.setText("edges")
    name_edit.editingFinished.emit()
    assert names(window)[0] == "edges" and view.card(0).name == "edges"
    assert window.document.undo_stack.undoText() == "Rename conv1 to edges"
    # A taken name is refused and the field shows the real name again.
    name_edit.setText("relu1")
    name_edit.editingFinished.emit()
    assert names(window)[0] == "edges" and name_edit.text() == "edges"
    # The weights travel with the renamed layer.
    assert window.document.stack.layers[0].weights["W"][0, 0, 0, 0] != 0


def test_an_old_residual_block_opens_as_a_group_whose_layers_are_edited_as_nodes(qtbot, window):
    """Residual layers of version-1 projects open as groups of ordinary nodes: each is selected,
    edited and shows its own error like any other."""
    from pathlib import Path

    from gui.card_delegate import CARD_ROLE
    from models.layers import Add, BatchNorm, Conv
    path = Path(__file__).parents[1] / "models" / "fixtures" / "v1" / "blocks.convscope"
    assert window.open_path(path)
    view, stack = window.stack_view, window.document.stack
    members = [i for i, layer in enumerate(stack.layers) if layer.group == "res2"]
    assert [type(stack.layers[i].spec) for i in members] == [Conv, BatchNorm, Conv, Add]
    assert view.group_item("res2").data(0, CARD_ROLE).state == "ok"
    first = members[0]
    view.select(first)
    assert view.group_item("res2").isExpanded() and view.current_path() == (first, None)
    window.property_editor.editors["out_channels"].box.setValue(6)
    assert window.document.stack.layers[first].spec.out_channels == 6
    name = window.document.stack.layers[first].name
    assert window.document.undo_stack.undoText() == f"Change filters of {name}"
    # The body no longer matches the shortcut: the error is on the group's Add, and on its card.
    add = members[-1]
    assert view.card(add).state == "error" and "8" in view.card(add).status
    window.property_editor.editors["groups"].box.setValue(4)
    assert view.card(first).state == "error"
    assert not window.property_editor.field_errors["groups"].isHidden()


def test_f2_renames_in_place(qtbot, window):
    from PySide6.QtWidgets import QLineEdit
    view = window.stack_view
    view.select(0)
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_F2)
    editor = view.viewport().findChild(QLineEdit)
    assert editor is not None and editor.text() == "conv1"
    editor.setText("edges")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: names(window)[0] == "edges")  # Qt commits the editor queued
    assert window.property_editor.name_edit.text() == "edges"


def test_delete_key_in_a_spin_box_does_not_delete_the_layer(qtbot, window):
    window.stack_view.select(0)
    box = window.property_editor.editors["out_channels"].box
    box.setFocus()
    count = len(window.document.stack)
    qtbot.keyClick(box, Qt.Key.Key_Delete)
    assert len(window.document.stack) == count


def test_deleting_a_merge_others_read_says_who_and_changes_nothing(qtbot, window):
    from models.layers import Add, Conv, ReLU
    from models.stack import INPUT, InputSpec, Layer, Stack
    layers = [Layer("stem", Conv(out_channels=4)),
              Layer("left", Conv(out_channels=4), inputs=("stem",)),
              Layer("right", Conv(out_channels=4, kernel_size=1), inputs=("stem",)),
              Layer("sum", Add(), inputs=("left", "right", "stem")),
              Layer("relu", ReLU())]
    window.document.reset(Stack(InputSpec(3, (16, 16))).with_layers(layers))
    before = to_json(window.document.stack)
    window.stack_view.select(3)
    window.stack_view.delete_current()
    assert to_json(window.document.stack) == before
    assert "deleting 'sum' would disconnect 'relu'" in window.statusBar().currentMessage()
    # A node with one input is deleted with its readers reconnected to that input; undo restores.
    window.stack_view.select(0)
    window.stack_view.delete_current()
    stack = window.document.stack
    assert [stack.input_names(i) for i in range(3)] == [(INPUT,)] * 2 + [("left", "right", INPUT)]
    assert window.document.undo_stack.undoText() == "Delete stem"
    window.document.undo_stack.undo()
    assert to_json(window.document.stack) == before
