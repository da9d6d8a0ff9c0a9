"""The Summary dock: one row per node with its inputs, group rows with their totals that fold, a
Total row that stays visible without scrolling, the Saves column only where it applies, long
names shortened, opaque nodes marked, a click selects the node, and a 668-node network refreshes
in place within a frame's budget after an edit that changes one row."""
from __future__ import annotations

import gc
import statistics
import time

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from engine.onnx.importer import import_model
from gui.document import Document
from gui.summary_table import COLUMNS, SummaryTable, human_bytes, human_count
from gui.theme import colors
from models.analysis import analyse
from models.layers import Add, Conv, Dense, Flatten, MaxPool, ReLU
from models.presets import PRESETS
from models.stack import INPUT, InputSpec, Layer, Stack
from tests.onnx.architectures import light_models

Orientation = Qt.Orientation


def grouped_stack() -> Stack:
    """A chain with nested groups: stem (2 nodes), stage1 (4) holding stage1/0 and stage1/1
    (2 each), then three nodes in no group."""
    return Stack(InputSpec(3, (32, 32))).with_layers([
        Layer("conv_a", Conv(out_channels=8), group="stem"),
        Layer("relu_a", ReLU(), group="stem"),
        Layer("conv_b", Conv(out_channels=8), group="stage1/0"),
        Layer("relu_b", ReLU(), group="stage1/0"),
        Layer("conv_c", Conv(out_channels=16, stride=2, padding="valid"), group="stage1/1"),
        Layer("relu_c", ReLU(), group="stage1/1"),
        Layer("pool", MaxPool()),
        Layer("flat", Flatten()),
        Layer("fc", Dense(units=10)),
    ])


def branched_stack() -> Stack:
    """conv_a feeds two convolutions whose outputs an Add merges."""
    return Stack(InputSpec(3, (16, 16))).with_layers([
        Layer("conv_a", Conv(out_channels=8)),
        Layer("conv_b", Conv(out_channels=8), inputs=("conv_a",)),
        Layer("conv_c", Conv(out_channels=8, kernel_size=1), inputs=("conv_a",)),
        Layer("sum", Add(), inputs=("conv_b", "conv_c")),
        Layer("relu", ReLU()),
    ])


def group_paths(stack: Stack) -> set[str]:
    """Every group path and its ancestors, from the layers' groups."""
    paths = set()
    for layer in stack.layers:
        parts = layer.group.split("/") if layer.group else []
        paths.update("/".join(parts[:d]) for d in range(1, len(parts) + 1))
    return paths


def members(report, group: str):
    return [r for r in report.layers if r.group == group or r.group.startswith(group + "/")]


@pytest.fixture
def table(qtbot):
    """A summary over grouped_stack(), shown at 1000 x 360."""
    def make(stack: Stack | None = None) -> SummaryTable:
        widget = SummaryTable(Document(stack or grouped_stack()))
        qtbot.addWidget(widget)
        widget.resize(1000, 360)
        widget.show()
        qtbot.waitExposed(widget)
        return widget
    return make


def click(summary: SummaryTable, item, arrow: bool = False) -> None:
    """A real click on the row of `item`, or on its fold arrow (left of the row's text)."""
    summary.tree.scrollToItem(item)
    rect = summary.tree.visualItemRect(item)
    pos = QPoint(rect.left() - summary.tree.indentation() // 2, rect.center().y()) if arrow \
        else rect.center()
    QTest.mouseClick(summary.tree.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def test_formatting_helpers():
    assert human_count(148_560_000) == "148.56M" and human_count(999) == "999"
    assert human_bytes(1536) == "1.5 KiB" and human_bytes(100) == "100 B"


def test_rows_are_the_nodes_and_the_groups_with_their_members_totals(table):
    stack = grouped_stack()
    summary = table(stack)
    report = analyse(stack)
    paths = group_paths(stack)
    assert paths == {"stem", "stage1", "stage1/0", "stage1/1"}
    assert len(summary.all_items()) == len(stack) + len(paths)
    assert summary.node_count() == len(stack)
    # Topological order: nodes come in the network's order, each after its groups' rows.
    order = [item.text(0) for item in summary.all_items()]
    assert order == ["stem", "conv_a", "relu_a", "stage1", "0", "conv_b", "relu_b", "1",
                     "conv_c", "relu_c", "pool", "flat", "fc"]
    for path in paths:
        inside = members(report, path)
        row = summary.group_item(path)
        assert row.text(COLUMNS.index("Params")) == f"{sum(r.params for r in inside):,}"
        assert row.text(COLUMNS.index("MACs")) == human_count(sum(r.macs for r in inside))
        assert row.text(COLUMNS.index("Activations")) == human_bytes(
            sum(r.activation_bytes for r in inside))
        shape = inside[-1].output_shape
        assert row.text(COLUMNS.index("Output shape")) == "(" + ", ".join(map(str, shape)) + ")"
        assert row.text(COLUMNS.index("Type")) == f"group · {len(inside)} nodes"
    # conv_b (32x32, 3x3, 8 -> 8 channels, bias) sits in 0, which sits in stage1.
    conv_b = summary.node_item(2)
    assert conv_b.parent() is summary.group_item("stage1/0")
    assert conv_b.parent().parent() is summary.group_item("stage1")
    assert summary.cell_text(2, "Params") == f"{8 * 8 * 3 * 3 + 8:,}"
    assert summary.cell_text(2, "Receptive field") == "5x5"
    assert summary.cell_text(-1, "Params") == f"{report.total_params:,}"


def test_groups_fold_and_unfold_and_keep_their_folds_across_edits(qtbot, table):
    summary = table()
    stem, stage1 = summary.group_item("stem"), summary.group_item("stage1")
    assert stem.isExpanded() and stage1.isExpanded()  # a small network opens unfolded
    conv_a = summary.node_item(0)
    assert summary.tree.visualItemRect(conv_a).isValid()
    click(summary, stem, arrow=True)
    assert not stem.isExpanded()
    assert not summary.tree.visualItemRect(conv_a).isValid()  # hidden under its group
    click(summary, stem, arrow=True)
    assert stem.isExpanded() and summary.tree.visualItemRect(conv_a).isValid()

    summary.tree.collapseItem(stage1)
    document = summary.document
    document.set_field((0, None), "out_channels", 4)  # same rows: updated in place
    assert summary.group_item("stage1") is stage1 and not stage1.isExpanded()
    assert summary.cell_text(0, "Params") == f"{4 * 3 * 3 * 3 + 4:,}"
    document.add_layer(ReLU(), len(document.stack))  # one more row: rebuilt
    assert len(summary.all_items()) == len(document.stack) + 4
    assert not summary.group_item("stage1").isExpanded() and summary.group_item("stem").isExpanded()


def test_a_folded_group_shows_the_error_inside_it(table):
    summary = table()
    summary.tree.collapseItem(summary.group_item("stage1"))
    summary.document.set_field((4, None), "kernel_size", (40, 40))  # larger than 32x32
    report = summary.document.report
    assert report.layers[4].error is not None
    error = colors().error
    layer = COLUMNS.index("Layer")
    assert summary.group_item("stage1").foreground(layer).color().name() == error
    assert summary.group_item("stem").foreground(layer).color().name() != error
    assert summary.node_item(4).text(COLUMNS.index("Output shape")) == "error"
    assert "kernel 40" in summary.node_item(4).toolTip(layer)
    assert summary.cell_text(5, "Output shape") == "waiting on layer 5"


def test_the_total_row_stays_visible_and_aligned_at_a_small_height(qtbot, table, window):
    window.new_from_preset("LeNet-5")
    window.resize(1000, 520)
    window.summary_dock.raise_()
    window.resizeDocks([window.summary_dock], [100], Orientation.Vertical)
    qtbot.wait(50)
    summary = window.summary
    report = analyse(PRESETS["LeNet-5"].build())
    bar = summary.tree.verticalScrollBar()
    assert bar.maximum() > 0, "the rows must not all fit, or this proves nothing"
    for value in (bar.maximum(), 0):
        bar.setValue(value)
        qtbot.wait(10)
        assert summary.footer.isVisible()
        assert summary.footer.visibleRegion().boundingRect() == summary.footer.rect()
    rows = sum(int(summary.cell_text(i, "Params").replace(",", ""))
               for i in range(len(report.layers)))
    assert summary.cell_text(-1, "Params") == f"{report.total_params:,}" == f"{rows:,}" == "61,706"
    assert summary.cell_text(-1, "MACs") == human_count(report.total_macs)
    assert summary.cell_text(-1, "Output shape") == "(1, 10)"

    # Narrow enough to scroll sideways: the footer's cells stay under their headers.
    narrow = table(PRESETS["MobileNet block"].build())
    narrow.resize(420, 200)
    qtbot.wait(10)
    scroll = narrow.tree.horizontalScrollBar()
    assert scroll.maximum() > 0
    for value in (0, scroll.maximum() // 2, scroll.maximum()):
        scroll.setValue(value)
        for column in range(len(COLUMNS)):
            if not narrow.tree.isColumnHidden(column):
                assert (narrow.footer.header().sectionViewportPosition(column)
                        == narrow.tree.header().sectionViewportPosition(column)), (value, column)
                assert narrow.footer.columnWidth(column) == narrow.tree.columnWidth(column)


def test_the_saves_column_shows_only_where_a_node_saves(window):
    window.new_from_preset("LeNet-5")
    assert not window.summary.column_shown("Saves")
    assert window.summary.footer.isColumnHidden(COLUMNS.index("Saves"))
    window.new_from_preset("MobileNet block")
    assert window.summary.column_shown("Saves")
    assert not window.summary.footer.isColumnHidden(COLUMNS.index("Saves"))
    depthwise, plain = 32 * 3 * 3, 32 * 32 * 3 * 3  # one 3x3 kernel per channel vs all pairs
    assert window.summary.cell_text(0, "Saves") == f"{depthwise:,} vs {plain:,} (32.0x)"
    window.new_from_preset("VGG block")
    assert not window.summary.column_shown("Saves")


def test_the_inputs_column_names_what_each_node_reads_when_the_network_branches(table):
    summary = table(grouped_stack())
    assert not summary.column_shown("Inputs")  # a chain: each row reads the one above
    summary.document.apply(branched_stack(), "Branch")
    assert summary.column_shown("Inputs")
    assert [summary.cell_text(i, "Inputs") for i in range(5)] == [
        INPUT, "conv_a", "conv_a", "conv_b, conv_c", "sum"]
    summary.document.undo_stack.undo()
    assert not summary.column_shown("Inputs")


def long_named_model():
    """A Conv under a long scope, a Conv with a long name and no scope, and a Hardmax (no
    ConvScope layer for it: computed by onnxruntime)."""
    scoped = "/backbone/stage_with_a_rather_long_descriptive_name/block_one/conv/Conv"
    flat = "unscoped_node_" + "x" * 30 + "_distinctive_end"
    weights = [numpy_helper.from_array(np.full((4, 3, 3, 3), 0.1, np.float32), "w1"),
               numpy_helper.from_array(np.full((4, 4, 1, 1), 0.1, np.float32), "w2")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], name=scoped, kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["c1", "w2"], ["c2"], name=flat, kernel_shape=[1, 1]),
             helper.make_node("Hardmax", ["c2"], ["y"], name="/head/hardmax/Hardmax", axis=1)]
    graph = helper.make_graph(
        nodes, "long_names", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model, scoped, flat


def test_long_names_keep_their_end_and_opaque_nodes_are_marked(table):
    model, scoped, flat = long_named_model()
    stack = import_model(model)
    summary = table(stack)
    names = [layer.name for layer in stack.layers]
    layer, kind = COLUMNS.index("Layer"), COLUMNS.index("Type")
    row = summary.node_item(names.index(scoped))
    assert row.text(layer) == "…/conv/Conv" and row.toolTip(layer) == scoped
    row = summary.node_item(names.index(flat))
    assert row.text(layer).startswith("…") and row.text(layer).endswith("x_distinctive_end")
    assert len(row.text(layer)) <= 40 and row.toolTip(layer) == flat
    hardmax = summary.node_item(names.index("/head/hardmax/Hardmax"))
    assert hardmax.text(kind) == "Hardmax · onnxruntime"
    assert "onnxruntime" in hardmax.toolTip(kind)
    assert summary.node_item(names.index(scoped)).text(kind) == "Conv2D"


def test_clicking_a_node_row_chooses_it_and_a_group_row_does_not(qtbot, table):
    summary = table()
    with qtbot.waitSignal(summary.layerChosen) as chosen:
        click(summary, summary.node_item(4))
    assert chosen.args == [4]
    with qtbot.assertNotEmitted(summary.layerChosen):
        click(summary, summary.group_item("stage1"))
    summary.select_layer(2)  # following the window emits nothing
    assert summary.tree.currentItem() is summary.node_item(2)


def test_clicking_a_summary_row_selects_the_node_in_the_window(qtbot, window):
    summary = window.summary
    window.summary_dock.raise_()
    click(summary, summary.node_item(3))
    assert window.stack_view.current_path() == (3, None)
    assert window.property_editor.path == (3, None)
    window.stack_view.select(5)  # and the summary follows the cards
    assert summary.tree.currentItem() is summary.node_item(5)


@pytest.fixture(scope="module")
def densenet() -> Stack:
    """onnx's light DenseNet-121 as imported (668 nodes, branched), its nodes put in blocks of
    40 and those in units of 8 (this test sets its own groups, not the importer's)."""
    light = {m.path.stem: m for m in light_models()}["light_densenet121"]
    stack = import_model(light.path)
    return stack.with_layers([layer.replace(group=f"block{i // 40}/unit{(i // 8) % 5}")
                              for i, layer in enumerate(stack.layers)])


def test_a_668_node_network_opens_folded_and_refreshes_one_row_in_place_quickly(table, densenet):
    summary = table(densenet)
    document = summary.document
    assert len(densenet) == 668 and summary.node_count() == 668
    groups = [item for item in summary.all_items() if item.childCount()]
    assert len(groups) == len(group_paths(densenet))
    assert not any(item.isExpanded() for item in groups)  # a big network reads as its blocks
    report = document.report
    for path in group_paths(densenet):
        assert summary.group_item(path).text(COLUMNS.index("Params")) == \
            f"{sum(r.params for r in members(report, path)):,}", path
    assert summary.column_shown("Inputs")

    conv = next(i for i, layer in enumerate(document.stack.layers)
                if layer.spec.type_name == "Conv2D" and not layer.spec.bias)
    items = summary.all_items()
    before = document.report
    document.set_field((conv, None), "bias", True)
    after = document.report
    assert after.layers[conv].params == before.layers[conv].params + \
        document.stack.layers[conv].spec.out_channels
    assert summary.cell_text(conv, "Params") == f"{after.layers[conv].params:,}"
    assert summary.cell_text(-1, "Params") == f"{after.total_params:,}"
    unchanged = summary.all_items()
    assert len(unchanged) == len(items) and all(a is b for a, b in zip(items, unchanged))

    seconds = []
    # The collector paused: a full collection of this test process's heap (up to 160 ms after
    # a few hundred tests) may fall in any timing, and is not the refresh's work.
    gc.collect()
    gc.disable()
    try:
        for k in range(12):  # the report with and without the bias, in turn: one row changes
            report = before if k % 2 else after
            start = time.perf_counter()
            summary.show_report(document.stack, report)
            seconds.append(time.perf_counter() - start)
    finally:
        gc.enable()
    print(f"\nrefresh after a one-row edit, {len(densenet)} nodes: median "
          f"{statistics.median(seconds) * 1000:.1f} ms, max {max(seconds) * 1000:.1f} ms")
    assert statistics.median(seconds) < 0.05 and max(seconds) < 0.1, seconds
