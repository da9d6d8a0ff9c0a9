"""Building branches in the window: blocks from the palette, branch, merge, reconnect, fold a
group, delete with reconnect; the export has the branches and equals the engine on every node
(onnxruntime, through the export dialog); undoing every step gives back the first network."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from PySide6.QtCore import Qt

from engine.executor import run
from gui.card_delegate import Card
from gui.stack_view import COLLAPSE_ABOVE
from models.layers import Add, Concat
from tests.gui.test_export_run import export_to
from tests.gui.test_stack_editing import double_click
from tests.onnx.graph_checks import every_tensor

RELU2 = 4  # demo: conv1 relu1 maxpool1 conv2 [relu2] maxpool2 conv3 relu3 gap flatten dense softmax


def add_from_palette(qtbot, window, label: str) -> None:
    """Double-click the palette entry, as a person adds one."""
    palette = window.layer_palette
    item = palette.item_for(label)
    palette.scrollToItem(item)
    double_click(qtbot, palette, item)


def exported_graph(qtbot, window, tmp_path) -> onnx.ModelProto:
    dialog = export_to(qtbot, window, tmp_path / "net.onnx")
    assert dialog.error.isHidden(), dialog.error.text()
    rows = dialog.table.rowCount()
    assert rows == len(window.document.stack)
    assert all(dialog.table.item(r, 3).text() == "pass" for r in range(rows))
    return onnx.load(str(tmp_path / "net.onnx"))


def readers(model: onnx.ModelProto) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for node in model.graph.node:
        for name in node.input:
            out.setdefault(name, []).append(node.op_type)
    return out


def same_layers(a, b) -> bool:
    return len(a.layers) == len(b.layers) and all(x is y for x, y in zip(a.layers, b.layers)) \
        and a.outputs == b.outputs and a.input == b.input


@pytest.mark.parametrize("block, merge, branches", [("U-Net level", "Concat", 2),
                                                    ("Inception", "Concat", 4)])
def test_a_block_from_the_palette_exports_its_branches_and_undoes(qtbot, window, tmp_path,
                                                                  block, merge, branches):
    first = window.document.stack
    window.stack_view.select(RELU2)
    add_from_palette(qtbot, window, block)
    stack = window.document.stack
    added = [layer for layer in stack.layers if layer.group]
    assert added and len({layer.group for layer in added}) == 1
    assert window.document.undo_stack.undoText() == f"Add {block} block"
    # The block's output is selected; the layer after the anchor now reads the block.
    out = window.stack_view.current_path()[0]
    assert stack.layers[out] is added[-1]
    assert stack.input_names(out + 1) == (added[-1].name,)
    model = exported_graph(qtbot, window, tmp_path)
    concats = [n for n in model.graph.node if n.op_type == merge]
    assert len(concats) == 1 and len(concats[0].input) == branches
    # A tensor read by several nodes is where the branches start.
    assert any(len(ops) >= branches for ops in readers(model).values())
    # Every tensor the file computes equals the engine's output for its node.
    x = np.random.default_rng(0).standard_normal(stack.input.shape).astype(np.float32)
    theirs = every_tensor(model, x)
    ours = run(stack, x).outputs
    for layer, value in zip(stack.layers, ours):
        np.testing.assert_allclose(value, theirs[layer.name], rtol=1e-4, atol=1e-4)
    while window.document.undo_stack.canUndo():
        window.document.undo_stack.undo()
    assert same_layers(window.document.stack, first)


def test_branch_merge_reconnect_fold_and_delete_in_the_window(qtbot, window, tmp_path):
    view, document = window.stack_view, window.document
    first = document.stack
    # A branch beside conv2, from maxpool1, then a merge of the two paths.
    view.select(2)
    view.branch_from_current("Pointwise")
    stack = document.stack
    branch = stack.layers[3]
    assert stack.input_names(3) == ("maxpool1",) and document.undo_stack.undoText() == \
        "Branch PointwiseConv2D from maxpool1"
    document.set_field((3, None), "out_channels", 16)
    view.select(document.stack.index_of("relu2"))
    item = view.item_at((3, None))
    item.setSelected(True)
    view.merge_selected("Add")
    stack = document.stack
    merge = stack.layers[view.current_path()[0]]
    assert isinstance(merge.spec, Add) and stack.input_names(stack.index_of(merge.name)) == (
        "relu2", branch.name)
    assert stack.input_names(stack.index_of("maxpool2")) == (merge.name,)
    assert view.lane_columns >= 2  # the branch has its own lane beside the main one
    row = view.lanes_at(view.indexFromItem(view.item_at((stack.index_of(merge.name), None))))
    assert len(row.ends) == 2  # both paths end at the merge's dot
    # Reconnect the merge's second input to conv2 instead of the branch.
    view.select(stack.index_of(merge.name))
    view.reconnect_current(1, "conv2")
    assert document.stack.input_names(document.stack.index_of(merge.name)) == ("relu2", "conv2")
    assert document.undo_stack.undoText() == f"Reconnect input 2 of {merge.name} to conv2"
    document.undo_stack.undo()
    # Delete conv2: relu2 reads maxpool1 instead, as conv2 did.
    view.select(document.stack.index_of("conv2"))
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    stack = document.stack
    assert "conv2" not in [layer.name for layer in stack.layers]
    assert stack.input_names(stack.index_of("relu2")) == ("maxpool1",)
    assert document.undo_stack.undoText() == "Delete conv2"
    # Deleting the merge others read says who and changes nothing.
    view.select(stack.index_of(merge.name))
    view.delete_current()
    assert document.stack is stack
    assert "would disconnect 'maxpool2'" in window.statusBar().currentMessage()
    while document.undo_stack.canUndo():
        document.undo_stack.undo()
    assert same_layers(document.stack, first)


def test_a_group_folds_to_one_card_with_its_totals_and_deletes_as_one(qtbot, window):
    view, document = window.stack_view, window.document
    view.select(RELU2)
    add_from_palette(qtbot, window, "Residual (identity)")
    stack = document.stack
    group = next(layer.group for layer in stack.layers if layer.group)
    members = [r for r in document.report.layers if r.group == group]
    item = view.group_item(group)
    card: Card = item.data(0, Qt.ItemDataRole.UserRole)
    assert card.params_text == f"{sum(r.params for r in members):,} params"
    assert card.shape_text == view.card(stack.index_of(members[-1].name)).shape_text
    assert item.isExpanded()  # a block just added shows its layers
    shown = len(view.visible_items())
    item.setExpanded(False)
    assert len(view.visible_items()) == shown - len(members)
    # Folded, the group's row stands for its nodes: the lane from relu2 ends at its square.
    row = view.lanes_at(view.indexFromItem(item))
    assert row is not None and row.node is not None
    view.setCurrentItem(item)
    assert view.current_path() == (stack.index_of(members[-1].name), None)
    view.delete_current()
    assert [layer.name for layer in document.stack.layers] == \
        [layer.name for layer in stack.layers if layer.group != group]
    assert document.undo_stack.undoText() == f"Delete group {group}"


def test_a_big_imported_model_opens_folded_and_finds_nodes_inside_groups(qtbot, window, tmp_path):
    from tests.onnx.architectures import resnet18
    onnx.save(resnet18(), tmp_path / "resnet18.onnx")
    assert window.open_path(tmp_path / "resnet18.onnx")
    view, stack = window.stack_view, window.document.stack
    groups = [item for key, item in view._items.items() if key.startswith("g:")]
    assert groups and len(stack) > COLLAPSE_ABOVE
    assert not any(item.isExpanded() for item in groups)
    assert len(view.visible_items()) < len(stack) / 3
    last_add = max(i for i, layer in enumerate(stack.layers) if layer.spec.type_name == "Add")
    view.select(last_add)  # inside layer4/1: its groups open
    assert view.current_path() == (last_add, None)
    assert view.item_at((last_add, None)) in view.visible_items()
    merge = view.card(last_add)
    assert merge.summary.startswith("← ")


def test_a_chain_draws_no_lanes(qtbot, window):
    view = window.stack_view
    assert window.document.stack.is_chain
    assert view.lane_area == 0 and view.lanes_at(view.indexFromItem(view.item_at((0, None)))) is None
    assert not view.card(0).summary.startswith("← ")


def test_two_branches_merge_with_concat_in_selection_order(qtbot, window):
    view, document = window.stack_view, window.document
    view.select(2)
    view.branch_from_current("Max pool")
    pooled = document.stack.layers[3].name
    view.select(2)
    view.branch_from_current("Average pool")
    averaged = document.stack.layers[3].name
    view.clearSelection()
    for name in (pooled, averaged):
        view.item_at((document.stack.index_of(name), None)).setSelected(True)
    assert view.selected_indices() == [document.stack.index_of(n) for n in (pooled, averaged)]
    view.merge_selected("Concat")
    stack = document.stack
    at = view.current_path()[0]
    assert isinstance(stack.layers[at].spec, Concat)
    assert stack.input_names(at) == (pooled, averaged)
    assert document.report.layers[at].output_shape == (1, 16, 32, 32)
