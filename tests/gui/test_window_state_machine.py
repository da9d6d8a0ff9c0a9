"""A person's session with the real main window, as a hypothesis state machine.

One MainWindow, offscreen, is driven through the same widgets and actions a person uses: the
palette (layers and blocks), the stack view's delete, duplicate and drop, its context menu (start
a branch, merge the selected nodes, reconnect an input), folding and deleting group cards, the
property editor's boxes (values drawn from the fields' metadata, invalid combinations included),
the input row, undo and redo, the kernel presets, inputs opened from files and presets.

Each graph edit checks its own outcome (who reads what afterwards, or a refusal that changes
nothing and says why in the status bar), its undo step's name, and that undo and redo give back
exactly the networks before and after it. After every step no exception may have been raised
inside a Qt slot; the network analyses with every error a ConfigError placed on its node; every
node has its card, inside the cards of its groups, and the cards a person can see are those the
folds leave open; the engine runs a network the analysis accepts; and the undo history holds
every network seen. When the compute worker settles, the feature maps are for the current
network. At the end, undoing one step at a time gives back each earlier network (the very same
layer objects) down to the first, and redoing each later one up to the last (a preset starts a
new history).

The session starts on a small network (16x16 pixels, five layers and a residual block) so the
engine keeps up with every step. CONVSCOPE_HYPOTHESIS_SCALE multiplies the runs and their steps (see
tests.stack_strategies.scaled).
"""
from __future__ import annotations

import sys
import tempfile
import traceback
from collections import Counter
from pathlib import Path
from types import TracebackType

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, invariant, precondition, rule,
                                 run_state_machine_as_test)
from PySide6.QtCore import QMimeData, QPoint, QSettings, Qt
from PySide6.QtGui import QAction, QDropEvent, QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (QApplication, QMenu, QMessageBox, QTreeWidgetItem,
                               QTreeWidgetItemIterator)

from engine.executor import RunResult, run
from gui.autosave import DATA_FOLDER_KEY
from gui.card_delegate import CARD_ROLE, INDENT, Card, CardDelegate, short_name
from gui.main_window import MainWindow
from gui.palette import ENTRIES, GROUPS, MERGES
from gui.property_editor import (AxesEditor, BoolEditor, ChoiceEditor, FieldEditor, FloatEditor,
                                 IntEditor, ListEditor)
from gui.sample_inputs import sample_files
from gui.stack_view import LAYER_MIME, StackView
from gui.theme import apply_theme
from models.analysis import analyse
from models.errors import ConfigError
from models.layers import Conv, MaxPool, ReLU
from models.presets import PRESETS
from models.stack import INPUT, InputSpec, Layer, Stack
from models.templates import TEMPLATES, insert_template
from tests.stack_strategies import field_values, scaled

# Values and inputs stay small so the engine keeps up with every step on a shared machine; the
# extremes themselves are covered, without a window, by tests/reliability/test_random_edits.py.
VALUE_CAP = 12
MAX_INPUT_SIZE = 32
MAX_VOLUME_SIZE = 12  # the input row makes a 3D input by copying the last size
CHEAP_PRESETS = sorted(name for name, preset in PRESETS.items()
                       if analyse(preset.build()).total_macs <= 5e7)
SMALL_INPUTS = ("digit.png", "signal.npy")
SETTLE_MS = 60_000
# A small network with a block in it, so that groups are there to fold and delete from the start.
FIRST_STACK = insert_template(Stack(InputSpec(3, (16, 16)), (
    Layer("conv1", Conv(rank=2, out_channels=4)), Layer("relu1", ReLU()),
    Layer("pool1", MaxPool(rank=2)), Layer("conv2", Conv(rank=2, out_channels=8)),
    Layer("relu2", ReLU()))), "Residual (identity)", 1)
GROUP_OF_ENTRY = {entry.label: group for group, entries in GROUPS.items() for entry in entries}

STEPS: Counter[str] = Counter()
Reads = list[tuple[str, tuple[str, ...]]]


def stack_difference(a: Stack, b: Stack) -> str | None:
    """Where two stacks differ (input, seed, outputs, layer names, specs, weight keys or values,
    the names each layer reads), or None."""
    if a.input != b.input or a.seed != b.seed:
        return f"input or seed: {a.input}/{a.seed} != {b.input}/{b.seed}"
    if a.outputs != b.outputs:
        return f"outputs {a.outputs} != {b.outputs}"
    if [layer.name for layer in a.layers] != [layer.name for layer in b.layers]:
        return f"layers {[x.name for x in a.layers]} != {[y.name for y in b.layers]}"
    if reads(a) != reads(b):
        return f"reads {reads(a)} != {reads(b)}"
    for x, y in zip(a.layers, b.layers):
        if x.spec != y.spec or x.group != y.group:
            return f"{x.name}: {x.spec}/{x.group!r} != {y.spec}/{y.group!r}"
        if set(x.weights) != set(y.weights):
            return f"{x.name}: weights {sorted(x.weights)} != {sorted(y.weights)}"
        for key in x.weights:
            if not np.array_equal(x.weights[key], y.weights[key]):
                return f"{x.name}.{key} differs"
    return None


def same_network(a: Stack, b: Stack) -> bool:
    """Whether b is a given back: the very same layer objects (Layer equality is identity), the
    same outputs, input and seed."""
    return len(a.layers) == len(b.layers) and all(x is y for x, y in zip(a.layers, b.layers)) \
        and a.outputs == b.outputs and a.input == b.input and a.seed == b.seed


def assert_same_network(actual: Stack, expected: Stack, what: str) -> None:
    if not same_network(actual, expected):
        difference = stack_difference(actual, expected) or "equal values, other layer objects"
        raise AssertionError(f"{what}: {difference}")


def reads(stack: Stack) -> Reads:
    """Each layer's name with the names it reads, explicit or not."""
    return [(layer.name, stack.input_names(i)) for i, layer in enumerate(stack.layers)]


def renamed(names: tuple[str, ...], old: str, new: str) -> tuple[str, ...]:
    return tuple(new if name == old else name for name in names)


def within(path: str, group: str) -> bool:
    """Whether the group path `path` is `group` or a group inside it."""
    return path == group or path.startswith(group + "/")


def in_group(layer: Layer, group: str) -> bool:
    return within(layer.group, group)


def run_around(stack: Stack, index: int, group: str) -> range:
    """The indices of the nodes of `group` that follow one another around node `index`."""
    low = high = index
    while low > 0 and in_group(stack.layers[low - 1], group):
        low -= 1
    while high + 1 < len(stack) and in_group(stack.layers[high + 1], group):
        high += 1
    return range(low, high + 1)


def list_texts(current: tuple) -> st.SearchStrategy[str]:
    """What a person types in a list box (a Pad's pads, a Resize's scales or sizes): numbers of
    the field's kind, as many as it holds or one fewer or more, or text that is no list."""
    floats = any(isinstance(v, float) for v in current)
    number = st.sampled_from([0.5, 1.0, 2.0, 3.0]) if floats else st.integers(-2, VALUE_CAP)
    lists = st.lists(number, min_size=max(0, len(current) - 1), max_size=len(current) + 1)
    return st.one_of(lists.map(lambda values: ", ".join(map(str, values))),
                     st.sampled_from(["", "a, b", "1,,2", "2;2"]))


def set_editor_value(editor: FieldEditor, value: object) -> None:
    """Set a property-editor widget as a person would, so it emits its own edit (a list box
    takes the text typed, applied when the box is left)."""
    if isinstance(editor, ListEditor):
        editor.box.setText(value)  # type: ignore[arg-type]
        editor.box.editingFinished.emit()
    elif isinstance(editor, AxesEditor):  # also SidesEditor: one spin box per value
        for box, v in zip(editor.boxes, value):  # type: ignore[call-overload]
            box.setValue(v)
    elif isinstance(editor, (IntEditor, FloatEditor)):
        editor.box.setValue(value)
    elif isinstance(editor, BoolEditor):
        editor.box.setChecked(value)
    elif isinstance(editor, ChoiceEditor):
        editor.box.setCurrentText(value)
    else:
        raise TypeError(f"no way to set a {type(editor).__name__}; teach set_editor_value")


def find_action(window: MainWindow, key: QKeySequence.StandardKey) -> QAction:
    """The window's action bound to a standard key (the Edit menu's undo and redo)."""
    wanted = QKeySequence(key)
    return next(a for a in window.findChildren(QAction) if a.shortcut() == wanted)


def menu_action(menu: QMenu, *titles: str) -> QAction:
    """The action reached through submenus titled titles[:-1] and called titles[-1] (mnemonic
    ampersands aside); AssertionError naming what the menu offers when there is none."""
    for depth, title in enumerate(titles):
        offered = [action.text().replace("&", "") for action in menu.actions()]
        found = [action for action, text in zip(menu.actions(), offered) if text == title]
        assert found, f"no {title!r} in the menu {titles[:depth]}; it offers {offered}"
        if depth == len(titles) - 1:
            return found[0]
        sub = found[0].menu()
        assert isinstance(sub, QMenu), f"{title!r} is no submenu"
        menu = sub
    raise AssertionError("no titles")


def all_items(view: StackView) -> list[QTreeWidgetItem]:
    """Every card of the tree, those inside folded cards included."""
    items, iterator = [], QTreeWidgetItemIterator(view)
    while iterator.value() is not None:
        items.append(iterator.value())
        iterator += 1
    return items


def ancestors(item: QTreeWidgetItem) -> list[QTreeWidgetItem]:
    out, parent = [], item.parent()
    while parent is not None:
        out.append(parent)
        parent = parent.parent()
    return out


def shown_below(item: QTreeWidgetItem) -> int:
    """How many cards under `item` show while it is open (its own open cards' included)."""
    return sum(1 + (shown_below(child) if child.isExpanded() else 0)
               for child in (item.child(i) for i in range(item.childCount())))


class WindowSession(RuleBasedStateMachine):
    """The rules are what a person does; the invariants what must hold after each of them."""

    def __init__(self) -> None:
        super().__init__()
        self.app = QApplication.instance()
        self.folder = tempfile.TemporaryDirectory()
        self.exceptions: list[str] = []
        self._old_hook = sys.excepthook
        sys.excepthook = self._record_exception  # PySide6 reports exceptions in slots here
        apply_theme("dark")
        settings = QSettings(str(Path(self.folder.name) / "settings.ini"),
                             QSettings.Format.IniFormat)
        settings.setValue(DATA_FOLDER_KEY, str(Path(self.folder.name) / "app-data"))
        self.window = window = MainWindow(FIRST_STACK, "session", settings=settings,
                                          restore=False)
        # Prompts answer Discard and error boxes are recorded, as in tests/gui/conftest.py.
        window.errors = []
        window.ask_save_changes = lambda: QMessageBox.StandardButton.Discard
        window.show_error = lambda _title, message: window.errors.append(message)
        self.npy_path = Path(self.folder.name) / "weights.npy"
        window.kernel_view.choose_npy_path = lambda: str(self.npy_path)
        self.undo_action = find_action(window, QKeySequence.StandardKey.Undo)
        self.redo_action = find_action(window, QKeySequence.StandardKey.Redo)
        window.show()
        self.app.processEvents()
        # history[k]: the network when the undo stack's index is k (redo's states included).
        self.history: list[Stack] = [window.document.stack]
        self.engine_run: RunResult | None = None  # the last run, so unchanged layers are reused
        STEPS["runs"] += 1

    def _record_exception(self, kind: type[BaseException], error: BaseException,
                          trace: TracebackType | None) -> None:
        self.exceptions.append("".join(traceback.format_exception(kind, error, trace)))

    @property
    def stack(self) -> Stack:
        return self.window.document.stack

    @property
    def view(self) -> StackView:
        return self.window.stack_view

    def _step(self, name: str, moves_in_history: bool = False) -> None:
        """Count the step and keep the history: an undo or redo must land on the network the
        history holds at its index; any other step that changed the network made it the newest
        state (a new undo step, or one merged into the last, as a spin box's drag is)."""
        self.app.processEvents()
        undo_stack = self.window.document.undo_stack
        index = undo_stack.index()
        if moves_in_history:
            assert index < len(self.history), f"undo index {index} past the history"
            assert_same_network(self.stack, self.history[index], f"{name} to step {index}")
        elif not (index < len(self.history) and self.stack is self.history[index]):
            self.history[index:] = [self.stack]
        assert len(self.history) == undo_stack.count() + 1, \
            f"{undo_stack.count()} undo steps for {len(self.history)} networks seen"
        STEPS["steps"] += 1
        STEPS[name] += 1

    def _status(self) -> str:
        return self.window.statusBar().currentMessage()

    def _check_edit(self, before: Stack, undo_text: str, exact: bool = True) -> None:
        """An edit that changed the network is one undo step named `undo_text` (its start when
        not exact), and undo and redo give back exactly the networks before and after it."""
        after, undo_stack = self.stack, self.window.document.undo_stack
        assert after is not before, "the edit changed nothing"
        text = undo_stack.undoText()
        assert text == undo_text if exact else text.startswith(undo_text), \
            f"the undo step is named {text!r}, not {undo_text!r}"
        self.undo_action.trigger()
        assert_same_network(self.stack, before, f"undoing {text!r}")
        self.redo_action.trigger()
        assert_same_network(self.stack, after, f"redoing {text!r}")

    def _check_refused(self, before: Stack, words: str) -> None:
        """A refused edit changes nothing and says why in the status bar."""
        assert self.stack is before, "a refused edit changed the network"
        assert words in self._status(), f"the status bar says {self._status()!r}, not {words!r}"

    def _group_cards(self) -> list[QTreeWidgetItem]:
        """The group cards a person can see."""
        return [item for item in self.view.visible_items()
                if item.data(0, CARD_ROLE).path is None]

    # ---- building the stack ---------------------------------------------------------------------
    @rule(label=st.sampled_from(sorted(ENTRIES)))
    def add_from_palette(self, label: str) -> None:
        self.window.layer_palette.addRequested.emit(label)
        self._step("add")

    @precondition(lambda self: len(self.stack) > 0)
    @rule(data=st.data(), template=st.sampled_from(sorted(TEMPLATES)))
    def add_block(self, data: st.DataObject, template: str) -> None:
        """Select a node and add a block from the palette: it reads the node, whatever read the
        node reads the block's output, and its layers form one new group; or it is refused."""
        before = self.stack
        index = data.draw(st.integers(0, len(before) - 1), label="after")
        anchor = before.layers[index].name
        self.view.select((index, None))
        self.window.statusBar().clearMessage()
        self.window.layer_palette.addRequested.emit(template)
        after = self.stack
        if after is before:
            self._check_refused(before, f"cannot insert {template} after")
            self._step("block refused")
            return
        added = len(after) - len(before)
        block = after.layers[index + 1:index + 1 + added]
        names = {layer.name for layer in block}
        output = block[-1].name
        assert added > 0 and not names & {layer.name for layer in before.layers}
        groups = {layer.group for layer in block}
        assert len(groups) == 1 and not groups & {layer.group for layer in before.layers}, groups
        assert all(x is y for x, y in zip(after.layers, before.layers[:index + 1]))
        assert after.input_names(index + 1) == (anchor,)
        assert all(set(after.input_names(index + 1 + k)) <= names | {anchor}
                   for k in range(added)), "the block reads outside itself"
        expected = [(name, renamed(sources, anchor, output))
                    for name, sources in reads(before)[index + 1:]]
        assert reads(after)[index + 1 + added:] == expected, "the anchor's readers did not move"
        assert after.outputs == renamed(before.outputs, anchor, output)
        assert self.view.current_path() == (index + added, None), "the block's output not selected"
        self._check_edit(before, f"Add {template} block")
        self._step("block")

    @precondition(lambda self: len(self.stack) > 0)
    @rule(data=st.data(), label=st.sampled_from(sorted(ENTRIES)))
    def branch(self, data: st.DataObject, label: str) -> None:
        """Start a branch from a node through the context menu: a new output reading it."""
        before = self.stack
        index = data.draw(st.integers(0, len(before) - 1), label="from")
        source = before.layers[index].name
        self.view.select((index, None))
        menu = self.view.context_menu()
        menu_action(menu, "Start a branch here with", GROUP_OF_ENTRY[label], label).trigger()
        menu.deleteLater()
        after = self.stack
        new = after.layers[index + 1]
        assert len(after) == len(before) + 1 and new.name not in {x.name for x in before.layers}
        assert new.spec == ENTRIES[label].spec(len(before.input.spatial))
        assert after.input_names(index + 1) == (source,)
        assert reads(after)[:index + 1] + reads(after)[index + 2:] == reads(before), \
            "the branch rewired other layers"
        assert index + 1 in after.output_indices, "a new branch is an output until merged"
        assert self.view.current_path() == (index + 1, None)
        self._check_edit(before, f"Branch {new.spec.type_name} from {source}")
        self._step("branch")

    @precondition(lambda self: len(self.stack) > 1)
    @rule(data=st.data(), kind=st.sampled_from(sorted(MERGES)))
    def merge(self, data: st.DataObject, kind: str) -> None:
        """Select 2 or 3 nodes and merge them through the context menu: the merge reads them,
        after the last of them, and what read the last reads the merge."""
        before = self.stack
        nodes = data.draw(st.lists(st.integers(0, len(before) - 1), min_size=2,
                                   max_size=min(3, len(before)), unique=True), label="nodes")
        self.view.select((nodes[0], None))
        for index in nodes[1:]:
            item = self.view.item_at((index, None))
            for parent in ancestors(item):  # a person opens a folded group to click inside
                parent.setExpanded(True)
            item.setSelected(True)
        chosen = self.view.selected_indices()
        assert sorted(chosen) == sorted(nodes), f"selected {chosen}, clicked {nodes}"
        menu = self.view.context_menu()
        assert menu_action(menu, "Merge selected with").isEnabled(), "merging is disabled"
        menu_action(menu, "Merge selected with", kind).trigger()
        menu.deleteLater()
        after = self.stack
        last = max(nodes)
        merged = tuple(before.layers[i].name for i in chosen)
        new = after.layers[last + 1]
        assert len(after) == len(before) + 1 and isinstance(new.spec, MERGES[kind])
        assert after.input_names(last + 1) == merged
        expected = reads(before)[:last + 1] + [
            (name, renamed(sources, merged[chosen.index(last)], new.name))
            for name, sources in reads(before)[last + 1:]]
        assert reads(after)[:last + 1] + reads(after)[last + 2:] == expected
        assert self.view.current_path() == (last + 1, None)
        self._check_edit(before, f"Merge {', '.join(merged)} with {new.spec.type_name}")
        self._step("merge")

    @precondition(lambda self: len(self.stack) > 0)
    @rule(data=st.data())
    def reconnect(self, data: st.DataObject) -> None:
        """Reconnect one input of a node to the input or a node above it, through the context
        menu (its 'Other…' dialog lists what the menu has no room for)."""
        before = self.stack
        index = data.draw(st.integers(0, len(before) - 1), label="node")
        now = before.input_names(index)
        slot = data.draw(st.integers(0, len(now) - 1), label="slot")
        source = data.draw(st.sampled_from([INPUT] + [x.name for x in before.layers[:index]]),
                           label="source")
        self.view.select((index, None))
        menu = self.view.context_menu()
        title = f"Input {slot + 1} (now {short_name(now[slot])})"
        offered = menu_action(menu, "Reconnect input", title).menu().actions()
        action = next((a for a in offered if a.text() == short_name(source)), None)
        if action is None:
            menu_action(menu, "Reconnect input", title, "Other…")  # the dialog's way in
            self.view.reconnect_current(slot, source)
        elif source == now[slot]:
            assert not action.isEnabled(), "reconnecting an input to what it reads is offered"
        else:
            action.trigger()
        menu.deleteLater()
        if source == now[slot]:
            assert self.stack is before
            self._step("reconnect to the same")
            return
        expected = reads(before)
        expected[index] = (expected[index][0], now[:slot] + (source,) + now[slot + 1:])
        assert reads(self.stack) == expected and self.stack.outputs == before.outputs
        self._check_edit(before, f"Reconnect input {slot + 1} of {before.layers[index].name} "
                                 f"to {source}")
        self._step("reconnect")

    @precondition(lambda self: len(self.stack) > 0)
    @rule(data=st.data())
    def delete_node(self, data: st.DataObject) -> None:
        """Delete a node: its readers read its one input instead, or, when it merges several
        and something reads it, nothing changes and the status bar says what would be
        disconnected."""
        before = self.stack
        index = data.draw(st.integers(0, len(before) - 1), label="node")
        name = before.layers[index].name
        sources = tuple(dict.fromkeys(before.input_names(index)))
        readers = [other for other, their in reads(before) if name in their]
        self.view.select((index, None))
        self.window.statusBar().clearMessage()
        self.view.delete_action.trigger()
        if len(sources) != 1 and (readers or name in before.outputs):
            self._check_refused(before, f"deleting {name!r} would disconnect")
            self._step("delete refused")
            return
        instead = sources[0] if len(sources) == 1 else None
        expected = [(other, tuple(instead if n == name else n for n in their))
                    for other, their in reads(before) if other != name]
        assert reads(self.stack) == expected, "the readers were not reconnected to its input"
        outputs = dict.fromkeys(instead if n == name else n for n in before.outputs)
        assert self.stack.outputs == tuple(n for n in outputs if n not in (None, INPUT))
        self._check_edit(before, f"Delete {name}")
        self._step("delete with reconnect" if readers else "delete")

    @precondition(lambda self: self._group_cards())
    @rule(data=st.data())
    def fold_or_open_group(self, data: st.DataObject) -> None:
        """Click a group card's arrow strip: it folds (its cards go) or opens (they come back)."""
        item = data.draw(st.sampled_from(self._group_cards()), label="group card")
        card: Card = item.data(0, CARD_ROLE)
        was_open, shown = item.isExpanded(), len(self.view.visible_items())
        below = shown_below(item)
        self.view.scrollToItem(item)
        rect = self.view.visualItemRect(item)
        x = self.view.lane_area + card.depth * INDENT + 6 + CardDelegate.GUTTER // 2
        QTest.mouseClick(self.view.viewport(), Qt.MouseButton.LeftButton,
                         Qt.KeyboardModifier.NoModifier, QPoint(x, rect.center().y()))
        assert item.isExpanded() != was_open, f"clicking the arrow of {card.group} did nothing"
        assert len(self.view.visible_items()) == shown + (below if not was_open else -below)
        self._step("fold" if was_open else "open")

    @precondition(lambda self: self._group_cards())
    @rule(data=st.data())
    def delete_group(self, data: st.DataObject) -> None:
        """Delete a group's card: every layer in it goes and what read them reads what the group
        read; or, when it reads several nodes, nothing changes and the status bar says why."""
        before = self.stack
        item = data.draw(st.sampled_from(self._group_cards()), label="group card")
        group = item.data(0, CARD_ROLE).group
        self.view.setCurrentItem(item)
        assert self.view.current_group() == group
        members = {x.name for x in before.layers if in_group(x, group)}
        assert members, f"the card of {group} holds no node"
        sources = list(dict.fromkeys(n for name, their in reads(before) if name in members
                                     for n in their if n not in members))
        self.window.statusBar().clearMessage()
        self.view.delete_action.trigger()
        if len(sources) != 1:
            self._check_refused(before, repr(group))
            self._step("delete group refused")
            return
        expected = [(name, tuple(sources[0] if n in members else n for n in their))
                    for name, their in reads(before) if name not in members]
        assert reads(self.stack) == expected
        self._check_edit(before, f"Delete group {group}")
        self._step("delete group")

    @precondition(lambda self: len(self.stack) > 0)
    @rule(data=st.data())
    def select(self, data: st.DataObject) -> None:
        """Select a node."""
        paths = [(i, None) for i in range(len(self.stack))]
        path = data.draw(st.sampled_from(paths), label="path")
        self.view.select(path)
        assert self.view.current_path() == path
        self._step("select")

    @precondition(lambda self: len(self.stack) > 0)
    @rule(action=st.sampled_from(["delete", "duplicate"]))
    def delete_or_duplicate(self, action: str) -> None:
        (self.view.delete_action if action == "delete" else self.view.duplicate_action).trigger()
        self._step(action)

    @precondition(lambda self: len(self.stack) > 1)
    @rule(data=st.data())
    def drag_card(self, data: st.DataObject) -> None:
        """Drop a node's card above a card a person can see, or below the last one."""
        view = self.view
        rows = view.visible_items()
        source = data.draw(st.integers(0, len(self.stack) - 1), label="source")
        target = data.draw(st.integers(0, len(rows)), label="drop before row")
        item = rows[min(target, len(rows) - 1)]
        view.scrollToItem(item)
        rect = view.visualItemRect(item)
        pos = (rect.topLeft() + QPoint(40, 3) if target < len(rows)
               else rect.bottomLeft() + QPoint(40, -3))
        mime = QMimeData()
        mime.setData(LAYER_MIME, str(source).encode())
        view.dropEvent(QDropEvent(pos, Qt.DropAction.MoveAction, mime, Qt.MouseButton.LeftButton,
                                  Qt.KeyboardModifier.NoModifier))
        self._step("move")

    @precondition(lambda self: self.window.property_editor.name_edit is not None)
    @rule(data=st.data())
    def rename(self, data: st.DataObject) -> None:
        """Type a name in the property editor: a new one, a taken one, or blanks."""
        names = [layer.name for layer in self.stack.layers]
        name = data.draw(st.one_of(st.sampled_from(names), st.sampled_from(["", "  ", " x "]),
                                   st.text("abc_ 1", min_size=1, max_size=6)), label="name")
        edit = self.window.property_editor.name_edit
        edit.setText(name)
        edit.editingFinished.emit()
        self._step("rename")

    # ---- editing settings -----------------------------------------------------------------------
    @precondition(lambda self: any(editor.isEnabled()
                                   for editor in self.window.property_editor.editors.values()))
    @rule(data=st.data())
    def edit_field(self, data: st.DataObject) -> None:
        """Set one enabled field of the selected layer through its widget."""
        editor_panel = self.window.property_editor
        name = data.draw(st.sampled_from(sorted(n for n, e in editor_panel.editors.items()
                                                if e.isEnabled())), label="field")
        current = getattr(self.window.document.spec_at(editor_panel.path), name)
        editor = editor_panel.editors[name]
        values = list_texts(current) if isinstance(editor, ListEditor) else \
            field_values(editor.info, current, cap=VALUE_CAP)
        value = data.draw(values, label=name)
        set_editor_value(editor, value)
        self._step("edit field")

    @rule(data=st.data())
    def edit_input(self, data: st.DataObject) -> None:
        """Change the input row: channels, a size, the batch, or the number of axes."""
        row = self.window.input_editor
        spatial = self.stack.input.spatial
        what = data.draw(st.sampled_from(["channels", "batch", "axes"] + ["size"] * bool(spatial)),
                         label="input")
        if what == "channels":
            row.channels.setValue(data.draw(st.sampled_from([1, 2, 3, 4, 16]), label="channels"))
        elif what == "size":
            box = data.draw(st.sampled_from(row.sizes), label="axis")
            box.setValue(data.draw(st.sampled_from([1, 2, 3, 7, 16, MAX_INPUT_SIZE]), label="size"))
        elif what == "batch":
            row.batch.setValue(data.draw(st.integers(1, 2), label="batch"))
        elif max(spatial, default=0) <= MAX_VOLUME_SIZE:
            row.axes.setCurrentIndex(data.draw(st.integers(0, 3), label="axes"))
        else:
            row.axes.setCurrentIndex(data.draw(st.integers(0, min(len(spatial), 2)), label="axes"))
        self._step("edit input")

    # ---- undo and redo --------------------------------------------------------------------------
    @rule(times=st.integers(1, 4))
    def undo(self, times: int) -> None:
        for _ in range(times):
            self.undo_action.trigger()
        self._step("undo", moves_in_history=True)

    @rule(times=st.integers(1, 4))
    def redo(self, times: int) -> None:
        for _ in range(times):
            self.redo_action.trigger()
        self._step("redo", moves_in_history=True)

    # ---- weights --------------------------------------------------------------------------------
    @precondition(lambda self: self.window.kernel_view.apply_filter_action.isEnabled())
    @rule(data=st.data())
    def apply_kernel_preset(self, data: st.DataObject) -> None:
        kernels = self.window.kernel_view
        kernels.preset.setCurrentIndex(data.draw(st.integers(0, kernels.preset.count() - 1),
                                                 label="preset"))
        kernels.filter_spin.setValue(data.draw(st.integers(0, VALUE_CAP), label="filter"))
        every = data.draw(st.booleans(), label="all filters")
        (kernels.apply_all_action if every else kernels.apply_filter_action).trigger()
        self._step("kernel preset")

    @precondition(lambda self: self.window.kernel_view.reinit_action.isEnabled())
    @rule(initialiser=st.integers(0, 3), seed=st.integers(0, 3))
    def reinitialise(self, initialiser: int, seed: int) -> None:
        kernels = self.window.kernel_view
        kernels.initialiser.setCurrentIndex(initialiser)
        kernels.seed.setValue(seed)
        kernels.reinit_action.trigger()
        self._step("re-initialise")

    @precondition(lambda self: self.window.kernel_view.load_action.isEnabled())
    @rule(fits=st.booleans(), seed=st.integers(0, 3))
    def load_weights(self, fits: bool, seed: int) -> None:
        """Load the shown tensor from a .npy file of its own shape, or of a wrong one."""
        kernels = self.window.kernel_view
        shape = self.stack.layers[kernels.layer_index].weights[kernels.tensor.currentText()].shape
        shape = shape if fits else (*shape[:-1], shape[-1] + 1)
        np.save(self.npy_path, np.random.default_rng(seed).normal(size=shape).astype(np.float32))
        kernels.load_action.trigger()
        self._step("load weights")

    # ---- inputs and presets ---------------------------------------------------------------------
    @rule(data=st.data())
    def open_input(self, data: st.DataObject) -> None:
        """Choose how inputs fit, then open a sample or a .npy array shaped as the input or
        otherwise."""
        self.window.feature_view.fit.setCurrentIndex(data.draw(st.integers(0, 1), label="fit"))
        choices = [p.name for p in sample_files()] + ["fitting.npy", "misfit.npy"]
        name = data.draw(st.sampled_from(choices), label="file")
        path = next((p for p in sample_files() if p.name == name), None)
        if path is None:
            shape = self.stack.input.shape if name == "fitting.npy" else (2, 5)
            path = Path(self.folder.name) / name
            np.save(path, np.random.default_rng(0).normal(size=shape).astype(np.float32))
        self.window.open_input(path)
        self._step("open input")

    @rule(name=st.sampled_from(SMALL_INPUTS))
    def match_input_to_file(self, name: str) -> None:
        # Only a file that opened: matching the file opened before could make the input large.
        if self.window.open_input(next(p for p in sample_files() if p.name == name)):
            self.window.match_input_action.trigger()
        self._step("match input")

    @rule(name=st.sampled_from(CHEAP_PRESETS))
    def new_from_preset(self, name: str) -> None:
        self.window.new_from_preset(name)
        assert self.window.document.undo_stack.count() == 0, "a preset keeps the old history"
        self._step("preset")  # the history starts again here

    @rule()
    def settle(self) -> None:
        self.check_settled()
        self._step("settle")

    # ---- what must hold -------------------------------------------------------------------------
    @invariant()
    def no_exception_in_slots(self) -> None:
        assert not self.exceptions, "an exception escaped a Qt slot:\n" + "\n".join(self.exceptions)

    @invariant()
    def errors_are_placed_on_their_nodes(self) -> None:
        """The network analyses (raising nothing), each error is a ConfigError on its own node
        and each wait names an earlier node that cannot run."""
        stack, report = self.stack, analyse(self.stack)
        assert len(report.layers) == len(self.window.document.report.layers) == len(stack)
        for i, (layer, layer_report) in enumerate(zip(stack.layers, report.layers)):
            error = layer_report.error
            if error is not None:
                assert isinstance(error, ConfigError) and error.reason
                assert (error.layer_index, error.layer_name) == (i, layer.name), str(error)
            elif layer_report.waiting_on is not None:
                assert 0 <= layer_report.waiting_on < i
                assert not report.layers[layer_report.waiting_on].ok
            else:
                assert layer_report.ok

    @invariant()
    def views_agree_with_the_document(self) -> None:
        stack, view = self.stack, self.view
        items = all_items(view)
        for i, layer in enumerate(stack.layers):
            card: Card = view.item_at((i, None)).data(0, CARD_ROLE)
            assert (card.path, card.name) == ((i, None), layer.name), f"card of node {i}: {card}"
        nodes = [item for item in items if (item.data(0, CARD_ROLE).path or (0, 0))[1] is None]
        assert len(nodes) == len(stack), f"{len(nodes)} node cards for {len(stack)} nodes"
        for item in nodes:
            index = item.data(0, CARD_ROLE).path[0]
            layer = stack.layers[index]
            around = [parent.data(0, CARD_ROLE) for parent in ancestors(item)]
            for card in around:
                assert card.path is None and in_group(layer, card.group), \
                    f"{layer.name} (group {layer.group!r}) shows inside the card {card.name}"
            # Nodes of a group that follow one another show inside its card (one node alone
            # shows as itself, and a group holding just a group shares its card).
            parts = layer.group.split("/") if layer.group else []
            for depth in range(1, len(parts) + 1):
                group = "/".join(parts[:depth])
                if len(run_around(stack, index, group)) > 1:
                    assert any(within(card.group, group) for card in around), \
                        f"{layer.name} shows outside the card of {group}"
        for item in items:
            card = item.data(0, CARD_ROLE)
            if card.path is None:
                assert any(in_group(layer, card.group) for layer in stack.layers), card.group
        # A card shows when every card around it is open; Qt lays out just those.
        shown = [item for item in items if all(p.isExpanded() for p in ancestors(item))]
        assert view.visible_items() == shown, "the visible cards are not those the folds leave"
        assert all(view.visualItemRect(item).isValid() == (item in shown) for item in items)
        summary = self.window.summary
        for i in range(len(stack)):
            summary.node_item(i)  # raises KeyError when a node has no row
        assert self.window.input_editor.current() == stack.input
        path = self.window.property_editor.path
        assert path is None or path[0] < len(stack)

    @invariant()
    def the_engine_runs_what_the_analysis_accepts(self) -> None:
        report = self.window.document.report
        if not report.ok:
            return
        stack = self.stack
        previous = self.engine_run
        if previous is not None and previous.input.shape == stack.input.shape:
            x = previous.input  # the same array: unchanged layers are reused, not recomputed
        else:
            x = np.random.default_rng(0).standard_normal(stack.input.shape).astype(np.float32)
            previous = None
        result = run(stack, x, previous)
        assert result.error is None, str(result.error)
        for layer_report, output in zip(report.layers, result.outputs):
            assert output is not None and output.shape == layer_report.output_shape, \
                f"{layer_report.name}: {None if output is None else output.shape} != " \
                f"{layer_report.output_shape}"
        self.engine_run = result

    def check_settled(self) -> None:
        """Wait for the worker; the feature maps must then show the current stack's result."""
        assert self.window.compute.wait(SETTLE_MS), "the engine did not finish"
        self.app.processEvents()
        view = self.window.feature_view
        assert view.result is not None, f"no feature maps: {view.message.text()}"
        assert view.result.stack.layers == self.stack.layers, "the maps are for another stack"
        assert view.result.stack.input == self.stack.input
        # Samples and files give one sample whatever the batch is.
        assert view.result.input.shape[1:] == self.stack.input.sample_shape

    def teardown(self) -> None:
        try:
            undo_stack = self.window.document.undo_stack
            # A rule that failed half-way left the history behind: its own error is the report.
            completed = len(self.history) == undo_stack.count() + 1 and \
                self.stack is self.history[undo_stack.index()]
            if completed and not self.exceptions:
                self.check_settled()
                while undo_stack.canUndo():
                    self.undo_action.trigger()
                    self._step("undo at the end", moves_in_history=True)
                assert undo_stack.index() == 0
                self.no_exception_in_slots()
                self.views_agree_with_the_document()
                while undo_stack.canRedo():
                    self.redo_action.trigger()
                    self._step("redo at the end", moves_in_history=True)
                assert undo_stack.index() == len(self.history) - 1
                self.no_exception_in_slots()
                self.views_agree_with_the_document()
                self.check_settled()
        finally:
            self.window.close()
            self.window.deleteLater()
            self.app.processEvents()
            sys.excepthook = self._old_hook
            self.folder.cleanup()


def test_a_long_session_keeps_the_window_consistent() -> None:
    # pytest-qt's qapp fixture cannot reach a state machine: the machines share this application.
    app = QApplication.instance() or QApplication([])  # noqa: F841 - kept alive for the test
    STEPS.clear()
    run_state_machine_as_test(WindowSession, settings=settings(
        max_examples=scaled(12), stateful_step_count=scaled(40), deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]))
    print("window state machine:", dict(STEPS))
