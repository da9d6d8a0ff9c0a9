"""Ctrl+F finds a node by name or type and selects it; File > Model properties... shows what an
imported ONNX file says of itself (opsets, producer, inputs and outputs with their dims,
metadata, each node's raw attributes, opaque nodes marked) and a project's input and counts."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence

from gui.find_node import find_nodes
from gui.model_properties import ModelPropertiesDialog
from models import project
from models.analysis import analyse
from models.presets import PRESETS


def lenet_report(renames: dict[int, str] | None = None):
    stack = PRESETS["LeNet-5"].build()
    for index, name in (renames or {}).items():
        stack = stack.replaced(index, stack.layers[index].replace(name=name))
    return analyse(stack)


def test_find_ranks_exact_name_then_prefix_then_substring_then_type():
    # LeNet-5: conv1 tanh1 avgpool1 conv2 tanh2 avgpool2 conv3 tanh3 flatten1 dense1 tanh4
    # dense2 softmax1; tanh4 and softmax1 renamed.
    report = lenet_report({10: "myconv", 12: "conv"})
    assert find_nodes(report, "conv") == [12, 0, 3, 6, 10]
    assert find_nodes(report, "  CONV1 ") == [0]
    assert find_nodes(report, "2d") == [0, 2, 3, 5, 6]  # only the types Conv2D and AvgPool2D
    assert find_nodes(report, "dense") == [9, 11]
    assert find_nodes(report, "") == [] and find_nodes(report, "lstm") == []


@pytest.fixture
def lenet_window(window, tmp_path):
    path = tmp_path / "lenet.convscope"
    project.save(PRESETS["LeNet-5"].build(), path)
    assert window.open_path(path)
    return window


def test_ctrl_f_finds_by_type_cycles_and_escape_closes(qtbot, lenet_window):
    window = lenet_window
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    bar = window.find_bar
    assert not bar.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert bar.isVisible()
    qtbot.waitUntil(bar.field.hasFocus)
    qtbot.keyClicks(bar.field, "2d")
    assert bar.completer.popup().isVisible()  # typing lists the completions...
    chosen = []  # ...and Enter, with none highlighted, finds
    for _ in range(6):
        qtbot.keyClick(bar.field, Qt.Key.Key_Return)
        chosen.append(window.stack_view.current_path())
    assert chosen == [(0, None), (2, None), (3, None), (5, None), (6, None), (0, None)]
    assert bar.count.text() == "1 of 5"
    assert window.property_editor.path == (0, None)  # the selection drives the other views
    bar.field.setText("")
    qtbot.keyClicks(bar.field, "lstm")
    qtbot.keyClick(bar.field, Qt.Key.Key_Return)
    assert bar.count.text() == "no match" and window.stack_view.current_path() == (0, None)
    qtbot.keyClick(bar.field, Qt.Key.Key_Escape)
    assert not bar.isVisible()


def test_choosing_a_completion_selects_that_node(qtbot, lenet_window):
    window = lenet_window
    bar = window.find_bar
    bar.start()
    qtbot.keyClicks(bar.field, "dense")
    popup = bar.completer.popup()
    qtbot.waitUntil(popup.isVisible)
    model = popup.model()
    entries = [model.index(row, 0).data() for row in range(model.rowCount())]
    assert entries == ["dense1 · Dense", "dense2 · Dense"]
    selected = []
    window.stack_view.pathSelected.connect(selected.append)
    popup.setCurrentIndex(model.index(1, 0))
    qtbot.keyClick(popup, Qt.Key.Key_Return)
    assert window.stack_view.current_path() == (11, None)
    assert selected == [(11, None)]  # straight to it, no other node on the way
    assert bar.field.text() == "dense2 · Dense" and not popup.isVisible()
    qtbot.keyClick(bar.field, Qt.Key.Key_Return)  # Enter again: still that node, not stuck
    assert window.stack_view.current_path() == (11, None) and bar.count.text() == "1 of 1"


def test_find_follows_edits(qtbot, lenet_window):
    window = lenet_window
    bar = window.find_bar
    bar.start()
    window.document.rename_layer(12, "classes")
    qtbot.keyClicks(bar.field, "classes")
    assert bar.find_next() == 12 and window.stack_view.current_path() == (12, None)


# ---- model properties -------------------------------------------------------------------------

def write_described_model(path: Path) -> None:
    """A Conv and a Hardmax (no ConvScope layer for it: opaque), with what exporters write about
    a model: producer, version, domain, description, metadata, a symbolic batch."""
    w = numpy_helper.from_array(np.full((4, 3, 3, 3), 0.1, np.float32), "conv.weight")
    nodes = [helper.make_node("Conv", ["x", "conv.weight"], ["c"], name="/features/conv/Conv",
                              kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
             helper.make_node("Hardmax", ["c"], ["y"], name="/head/hardmax/Hardmax", axis=1)]
    graph = helper.make_graph(
        nodes, "described", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                           ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, 8, 8])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="unit-test-exporter", producer_version="4.2",
                              domain="org.example", model_version=7,
                              doc_string="A convolution and a hard max.")
    model.ir_version = 8
    helper.set_model_props(model, {"licence": "MIT", "classes": "cat,dog"})
    onnx.checker.check_model(model)
    onnx.save(model, path)


def open_properties(qtbot, window):
    """Trigger File > Model properties... and wait until the dialog holds every row."""
    file_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&File")
    next(a for a in file_menu.actions() if a.text() == "Model &properties...").trigger()
    dialog = window.findChildren(ModelPropertiesDialog)[-1]
    qtbot.waitUntil(lambda: not dialog.job.running, timeout=20000)
    qtbot.wait(10)  # the finished job's rows arrive queued
    return dialog


def test_properties_of_an_imported_model_show_the_file_and_mark_opaque_nodes(
        qtbot, window, tmp_path):
    path = tmp_path / "described.onnx"
    write_described_model(path)
    assert window.open_path(path)
    dialog = open_properties(qtbot, window)
    rows = dialog.rows()
    for row in [("Format", "ONNX v8"), ("Producer", "unit-test-exporter 4.2"),
                ("Domain", "org.example"), ("Model version", "7"), ("Opsets", "ai.onnx v17"),
                ("Description", "A convolution and a hard max."), ("licence", "MIT"),
                ("classes", "cat,dog"), ("x", "float32[batch,3,8,8]"),
                ("y", "float32[batch,4,8,8]"), ("/features/conv/Conv", "Conv"),
                ("kernel_shape", "[3, 3]"), ("pads", "[1, 1, 1, 1]"),
                ("/head/hardmax/Hardmax", "Hardmax · computed by onnxruntime"),
                ("axis", "1"), ("Input", "(1, 3, 8, 8)"),
                ("Nodes", "2"), ("Parameters", "108"),
                ("Opaque nodes", "1 (computed by onnxruntime)"), ("File", str(path))]:
        assert row in rows, row
    assert ("conv.weight", "float32[4,3,3,3]") not in rows  # a weight, not a graph input
    opaque = [key for key, value in rows if value == "Hardmax"]
    assert opaque == ["/head/hardmax/Hardmax"]  # listed with why, under "Opaque nodes"
    dialog.close()


def test_properties_of_a_project_show_its_input_and_counts(qtbot, window, tmp_path):
    path = tmp_path / "lenet.convscope"
    lenet = PRESETS["LeNet-5"].build()
    project.save(lenet, path)
    assert window.open_path(path)
    dialog = open_properties(qtbot, window)
    rows = dialog.rows()
    for row in [("File", str(path)), ("Input", "(1, 1, 32, 32)"), ("Outputs", "softmax1"),
                ("Nodes", f"{len(lenet.layers)}"), ("Groups", "0"), ("Parameters", "61,706"),
                ("Opaque nodes", "none")]:
        assert row in rows, row
    assert not any(key in ("Model", "Metadata") for key, _value in rows)  # no ONNX file behind it
    dialog.close()


def test_properties_of_an_onnx_file_gone_since_say_so_in_one_line(qtbot, window, tmp_path):
    path = tmp_path / "described.onnx"
    write_described_model(path)
    assert window.open_path(path)
    path.unlink()
    dialog = open_properties(qtbot, window)
    [line] = [value for key, value in dialog.rows() if key == "ONNX file"]
    assert "described.onnx" in line and "No such file" in line
    assert ("Nodes", "2") in dialog.rows()  # the network's part is still there
    dialog.close()


def test_model_properties_is_in_the_file_menu_and_ctrl_f_in_edit(window):
    texts = {a.text(): a for a in window.findChildren(QAction)}
    assert "Model &properties..." in texts
    assert texts["&Find node..."].shortcut() == QKeySequence(QKeySequence.StandardKey.Find)
