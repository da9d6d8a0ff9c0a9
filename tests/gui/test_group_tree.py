"""The one walk that nests nodes in their groups for both the cards and the summary: groups in
node order, interrupted groups resumed as later pieces, one-node groups shown as the node, a
group holding one group shown as one entry for both, depths as shown; and the two views built
from it agree on every entry."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from gui.group_tree import TreeEntry, group_tree, walk
from gui.stack_view import card_tree
from gui.summary_table import summary_rows
from models.analysis import analyse
from models.layers import Conv, ReLU
from models.stack import InputSpec, Layer, Stack


def shape(entries: list[TreeEntry]) -> list:
    """The tree as nested tuples: a node as its index, a group as (key, label, depth, [...])."""
    return [entry.index if entry.index is not None else
            (entry.key, entry.label, entry.depth, shape(entry.children)) for entry in entries]


def test_nodes_without_groups_are_a_flat_list():
    assert shape(group_tree(["", "", ""])) == [0, 1, 2]
    assert group_tree([]) == []


def test_nested_groups_hold_their_nodes_in_order():
    tree = group_tree(["stem", "stem", "stage1/0", "stage1/0", "stage1/1", "stage1/1", ""])
    assert shape(tree) == [
        ("g:stem#1", "stem", 0, [0, 1]),
        ("g:stage1#1", "stage1", 0, [("g:stage1/0#1", "0", 1, [2, 3]),
                                     ("g:stage1/1#1", "1", 1, [4, 5])]),
        6]
    depths = {entry.index: depth for entry, depth in walk(tree) if entry.index is not None}
    assert depths == {0: 1, 1: 1, 2: 2, 3: 2, 4: 2, 5: 2, 6: 0}
    assert all(entry.depth == depth for entry, depth in walk(tree))


def test_an_interrupted_group_resumes_as_its_next_piece():
    tree = group_tree(["a", "a", "", "a", "a"])
    assert shape(tree) == [("g:a#1", "a", 0, [0, 1]), 2, ("g:a#2", "a", 0, [3, 4])]


def test_a_one_node_group_shows_as_the_node_at_the_groups_depth():
    # ResNet's shared ReLU: "relu" resumes between the other nodes as one-node pieces.
    tree = group_tree(["layer1", "layer1/relu", "layer1", "layer1/relu", "solo"])
    assert shape(tree) == [("g:layer1#1", "layer1", 0, [0, 1, 2, 3]), 4]
    assert [(e.index, e.depth) for e in tree[0].children] == [(0, 1), (1, 1), (2, 1), (3, 1)]
    assert tree[1].depth == 0


def test_a_group_holding_one_group_is_one_entry_named_for_both():
    tree = group_tree(["inc/double_conv", "inc/double_conv", "down1/conv", "down1/conv"])
    assert shape(tree) == [("g:inc/double_conv#1", "inc/double_conv", 0, [0, 1]),
                           ("g:down1/conv#1", "down1/conv", 0, [2, 3])]
    # three levels, each holding only the next, read as one path
    assert shape(group_tree(["a/b/c", "a/b/c"])) == [("g:a/b/c#1", "a/b/c", 0, [0, 1])]
    # a level holding a group and a node stays
    assert shape(group_tree(["a/b", "a/b", "a"])) == [
        ("g:a#1", "a", 0, [("g:a/b#1", "b", 1, [0, 1]), 2])]


def test_walk_takes_any_nested_entries_in_display_order():
    tree = group_tree(["g", "g", ""])
    order = [(entry.index if entry.index is not None else entry.key, depth)
             for entry, depth in walk(tree)]
    assert order == [("g:g#1", 0), (0, 1), (1, 1), (2, 0)]


GROUP_PATHS = st.sampled_from(["", "a", "a/b", "a/b/c", "a/c", "b", "b/x", "c/d/e"])


@settings(max_examples=200, deadline=None)
@given(st.lists(GROUP_PATHS, max_size=30))
def test_every_node_shows_once_in_order_inside_its_own_groups(groups):
    tree = group_tree(groups)
    entries = list(walk(tree))
    assert [e.index for e, _depth in entries if e.index is not None] == list(range(len(groups)))
    keys = [e.key for e, _depth in entries if e.index is None]
    assert len(keys) == len(set(keys))
    for entry, depth in entries:
        assert entry.depth == depth
        if entry.index is None:
            assert len(entry.children) >= 2  # one child would say nothing new
            assert entry.label.endswith(entry.group.rsplit("/", 1)[-1])
            for child, _ in walk(entry.children):  # everything inside is in the group
                inside = child.group if child.index is None else groups[child.index]
                assert inside == entry.group or inside.startswith(entry.group + "/")
        else:
            assert entry.children == []


@settings(max_examples=60, deadline=None)
@given(st.lists(GROUP_PATHS, min_size=1, max_size=16))
def test_cards_and_summary_rows_nest_alike(groups):
    stack = Stack(InputSpec(3, (8, 8))).with_layers(
        [Layer(f"n{i}", Conv(out_channels=4) if i % 3 == 0 else ReLU(), group=g)
         for i, g in enumerate(groups)])
    report = analyse(stack)
    cards = [(entry.key, entry.card.name, entry.card.depth)
             for entry, _ in walk(card_tree(stack, report))]
    rows = [(row.key, row.texts[0], depth) for row, depth in walk(summary_rows(report))]
    assert len(cards) == len(rows)
    for (card_key, card_name, card_depth), (row_key, row_name, row_depth) in zip(cards, rows):
        assert card_depth == row_depth
        if card_key.startswith("g:"):
            assert (card_key, card_name) == (row_key, row_name)
        else:  # cards are keyed by node name, rows by index
            assert card_key == f"n:{stack.layers[int(row_key[2:])].name}"
