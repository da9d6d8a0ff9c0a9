"""Files, the unsaved-changes prompt, the title, presets and the summary table."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QMessageBox

from gui.main_window import MainWindow
from models.presets import PRESETS
from models.project import to_json

Button = QMessageBox.StandardButton


def edit_something(window) -> None:
    window.stack_view.select(0)
    window.property_editor.editors["out_channels"].box.setValue(5)


def test_title_shows_name_and_star_when_modified(window):
    assert window.windowTitle() == "demo[*] — ConvScope"
    assert not window.isWindowModified()
    edit_something(window)
    assert window.isWindowModified()
    window.document.undo_stack.undo()
    assert not window.isWindowModified()


def test_save_and_reopen_gives_the_same_stack_and_weights(qtbot, window, settings, tmp_path,
                                                          monkeypatch):
    edit_something(window)
    target = tmp_path / "edges"
    monkeypatch.setattr(window, "choose_save_path", lambda: str(target))
    assert window.save()
    saved = tmp_path / "edges.convscope"
    assert saved.exists()
    assert window.windowTitle() == "edges[*] — ConvScope" and not window.isWindowModified()
    assert window.recent_files() == [str(saved.resolve())]

    other = MainWindow(settings=settings, restore=False)
    qtbot.addWidget(other)
    assert other.open_path(saved)
    before, after = window.document.stack, other.document.stack
    assert to_json(after) == to_json(before)
    for a, b in zip(before.layers, after.layers):
        assert a.weights.keys() == b.weights.keys()
        assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert other.stack_view.card(0).shape_text == "(1, 5, 128, 128)"
    assert not other.isWindowModified()


def test_open_failure_shows_one_message_and_keeps_the_project(window, tmp_path):
    broken = tmp_path / "broken.convscope"
    broken.write_text("{\"format\": \"convscope-project\", \"version\": 1, \"layers\": ")
    edit_something(window)
    stack = window.document.stack
    assert not window.open_path(broken)
    assert len(window.errors) == 1 and "broken.convscope" in window.errors[0]
    assert "Traceback" not in window.errors[0]
    assert window.document.stack is stack and window.isWindowModified()


def test_onnx_open_goes_through_the_importer_and_reports_its_error(window, tmp_path):
    missing = tmp_path / "model.onnx"
    missing.write_bytes(b"not a protobuf")
    stack = window.document.stack
    if not window.open_path(missing):
        assert len(window.errors) == 1 and "model.onnx" in window.errors[0]
        assert window.document.stack is stack


def test_unsaved_changes_prompt_cancel_keeps_discard_drops(window, monkeypatch):
    edit_something(window)
    stack = window.document.stack
    monkeypatch.setattr(window, "ask_save_changes", lambda: Button.Cancel)
    window.new_from_preset("LeNet-5")
    assert window.document.stack is stack
    monkeypatch.setattr(window, "ask_save_changes", lambda: Button.Discard)
    window.new_document()
    assert len(window.document.stack) == 0 and not window.isWindowModified()
    assert window.windowTitle() == "untitled[*] — ConvScope"


def test_prompt_save_writes_before_moving_on(window, monkeypatch, tmp_path):
    edit_something(window)
    monkeypatch.setattr(window, "ask_save_changes", lambda: Button.Save)
    monkeypatch.setattr(window, "choose_save_path", lambda: str(tmp_path / "kept.convscope"))
    window.new_from_preset("VGG block")
    assert (tmp_path / "kept.convscope").exists()
    assert window.document.display_name == "VGG block"


def test_lenet5_totals_in_the_summary(window):
    window.new_from_preset("LeNet-5")
    # By hand, from the classic sizes: weights + biases of each learned layer.
    conv1 = 6 * 1 * 5 * 5 + 6
    conv2 = 16 * 6 * 5 * 5 + 16
    conv3 = 120 * 16 * 5 * 5 + 120
    dense1 = 84 * 120 + 84
    dense2 = 10 * 84 + 10
    expected = conv1 + conv2 + conv3 + dense1 + dense2
    assert expected == 61_706
    assert window.summary.cell_text(-1, "Params") == f"{expected:,}"
    assert window.summary.cell_text(-1, "Output shape") == "(1, 10)"
    assert window.summary.cell_text(0, "Params") == f"{conv1:,}"
    assert window.summary.cell_text(0, "Receptive field") == "5x5"


def test_mobilenet_saves_column_shows_depthwise_savings(window):
    window.new_from_preset("MobileNet block")
    depthwise = 32 * 3 * 3  # one 3x3 kernel per channel, no bias
    plain = 32 * 32 * 3 * 3  # a plain 3x3 convolution between the same channels
    assert window.summary.cell_text(0, "Saves") == f"{depthwise:,} vs {plain:,} (32.0x)"
    assert window.summary.cell_text(3, "Saves") == ""  # the pointwise layer is already plain


def test_every_preset_loads_without_errors(window):
    for name, preset in PRESETS.items():
        window.new_from_preset(name)
        report = window.document.report
        assert report.ok, name
        assert window.summary.cell_text(-1, "Params") == f"{report.total_params:,}"
        # one card per node outside groups, one per top-level group (the text CNN's two GLUs)
        stack = preset.build()
        tops = {layer.group.split("/")[0] or f"node {i}" for i, layer in enumerate(stack.layers)}
        assert window.stack_view.topLevelItemCount() == len(tops)


def test_geometry_and_recent_files_are_remembered(qtbot, window, settings, tmp_path):
    window.resize(780, 560)  # within the offscreen screen
    window._add_recent(tmp_path / "a.convscope")
    window.close()
    settings.sync()
    again = MainWindow(settings=QSettings(settings.fileName(), QSettings.Format.IniFormat))
    qtbot.addWidget(again)
    assert (again.width(), again.height()) == (780, 560)
    assert again.recent_files() == [str((tmp_path / "a.convscope").resolve())]


def test_theme_switch(qtbot, window, settings):
    window.set_theme("light")
    assert settings.value("theme") == "light"
    qtbot.waitUntil(lambda: window.palette_dock.palette().window().color().lightness() > 128)
    assert window.theme_actions["light"].isChecked()
    from gui.theme import LIGHT
    assert LIGHT.muted in window.feature_view.hover.styleSheet()
    window.set_theme("dark")
    qtbot.waitUntil(lambda: window.palette_dock.palette().window().color().lightness() < 128)


def test_summary_rows_follow_edits_and_the_theme(window):
    from gui.summary_table import COLUMNS
    from gui.theme import DARK, LIGHT
    window.set_theme("dark")
    window.stack_view.select(0)
    window.property_editor.editors["padding"].box.setCurrentText("valid")
    window.document.set_field((0, None), "dilation", (100, 1))  # spans 201 rows of 128
    assert window.document.report.layers[0].error is not None
    layer = COLUMNS.index("Layer")
    assert window.summary.node_item(0).foreground(layer).color().name() == DARK.error
    window.set_theme("light")
    assert window.summary.node_item(0).foreground(layer).color().name() == LIGHT.error
    window.document.undo_stack.undo()
    window.document.undo_stack.undo()
    assert window.summary.cell_text(0, "Output shape") == "(1, 8, 128, 128)"
    assert window.summary.node_item(0).foreground(layer).color().name() != LIGHT.error


def test_open_recent_menu_lists_and_opens_files(window, tmp_path):
    from models import project
    path = tmp_path / "lenet.convscope"
    project.save(PRESETS["LeNet-5"].build(), path)
    window._add_recent(path)
    window._fill_recent_menu()
    actions = window.recent_menu.actions()
    assert [a.text() for a in actions] == ["lenet.convscope"]
    actions[0].trigger()
    assert window.windowTitle() == "lenet[*] — ConvScope"
    assert window.summary.cell_text(-1, "Params") == "61,706"


def test_after_a_preset_loads_the_keys_act_on_the_cards(qtbot, window):
    window.input_editor.setFocus()
    window.new_from_preset("VGG block")
    qtbot.waitUntil(lambda: window.stack_view.hasFocus())
    count = len(window.document.stack)
    qtbot.keyClick(window.stack_view, Qt.Key.Key_Delete)
    assert len(window.document.stack) == count - 1
