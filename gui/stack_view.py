"""The network as a column of cards in topological order, with lanes beside them for its edges.

Groups ("layer1/0", a template's block, an imported model's name scopes) are cards that fold to
one card with their totals and open in place. A person reorders by drag and drop, deletes (reconnecting around a node with one input), duplicates
and renames, starts a branch from any node, merges selected nodes, reconnects an input, and adds
templates from the palette. The view never edits the network itself: every change goes through
the Document, so each is one named undo step.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QMimeData, QModelIndex, QPoint, QRect, Qt, Signal
from PySide6.QtGui import QAction, QContextMenuEvent, QDropEvent, QKeySequence, QMouseEvent, \
    QPainter, QPalette
from PySide6.QtWidgets import (QAbstractItemView, QInputDialog, QMenu, QTreeWidget,
                               QTreeWidgetItem, QWidget)

from gui.card_delegate import CARD_ROLE, KEY_ROLE, Card, CardDelegate, lanes_width, shape_text, short_name
from gui.document import Document, LayerPath
from gui.graph_lanes import INPUT_ROW, RowLanes, assign_lanes
from gui.group_tree import TreeEntry, group_tree, walk
from gui.palette import ENTRIES, GROUPS, MERGES, PALETTE_MIME
from models.analysis import LayerReport, StackReport
from models.errors import ConfigError
from models.layers import LayerSpec
from models.stack import INPUT, Stack
from models.summary_table import GroupTotals, group_totals
from models.templates import TEMPLATES

LAYER_MIME = "application/x-convscope-layer-index"
COLLAPSE_ABOVE = 40
"""A network opened with more nodes than this shows its groups folded."""
MAX_RECONNECT_CHOICES = 25


def layer_card(index: int, stack: Stack, report: LayerReport, depth: int = 0) -> Card:
    layer = stack.layers[index]
    state = "error" if report.error else "waiting" if report.waiting_on is not None else "ok"
    params = (f"{report.params:,} params" if report.params else "no weights") if report.ok else ""
    summary = layer.spec.summary()
    reads = stack.input_names(index)
    before = stack.layers[index - 1].name if index else INPUT
    if layer.inputs is not None and reads != (before,):
        summary = "← " + ", ".join(short_name(n) for n in reads) + (f" · {summary}" if summary else "")
    return Card((index, None), str(index + 1), layer.name, layer.spec.type_name, summary,
                shape_text(report.output_shape), params, report.status, state,
                layer.spec.category, depth)


def group_card(totals: GroupTotals, label: str, depth: int, failing: LayerReport | None = None,
               waiting: LayerReport | None = None) -> Card:
    """A group's card headed `label`: its totals, and the first error (`failing`, a member
    whose analysis failed) or wait inside it, so that folding hides none."""
    state = "error" if failing else "waiting" if waiting else "ok"
    status = (f"{failing.name} inside: {failing.error.reason}" if failing and failing.error
              else "")
    macs = f" · {_short_count(totals.macs)} MACs" if totals.macs else ""
    return Card(None, "", label, f"group · {totals.layers} nodes",
                f"{totals.name}{macs}", shape_text(totals.output_shape),
                f"{totals.params:,} params" if totals.params else "no weights", status, state,
                "Group", depth, totals.name)


def _first_problems(report: StackReport) -> dict[str, list[LayerReport | None]]:
    """Per group path: its first member with an error and its first waiting one, members of
    the groups inside it included; one pass, where a scan per group card cost 30 ms a show on
    a 668-node network in 300 groups."""
    found: dict[str, list[LayerReport | None]] = {}
    for r in report.layers:
        if r.group and (r.error or r.waiting_on is not None):
            parts = r.group.split("/")
            for depth in range(1, len(parts) + 1):
                first = found.setdefault("/".join(parts[:depth]), [None, None])
                if r.error and first[0] is None:
                    first[0] = r
                if r.waiting_on is not None and first[1] is None:
                    first[1] = r
    return found


def _short_count(count: int) -> str:
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= factor:
            return f"{count / factor:.1f}{suffix}"
    return str(count)


@dataclass
class _Entry:
    """One card of the tree to show, with its tooltip and the cards folded under it."""
    key: str
    card: Card
    tip: str
    children: list[_Entry] = field(default_factory=list)


def card_tree(stack: Stack, report: StackReport) -> list[_Entry]:
    """The cards to show: nodes in topological order, each inside the cards of its groups, as
    gui.group_tree nests them (a group that other nodes interrupt shows again where it resumes;
    a group of one node shows as the node, a group holding one group as one card for both)."""
    totals = {t.name: t for t in group_totals(report)}
    problems = _first_problems(report)

    def entry(node: TreeEntry) -> _Entry:
        if node.index is None:
            card = group_card(totals[node.group], node.label, node.depth,
                              *problems.get(node.group, ()))
            return _Entry(node.key, card, node.group, [entry(child) for child in node.children])
        i, layer = node.index, stack.layers[node.index]
        card = layer_card(i, stack, report.layers[i], node.depth)
        return _Entry(f"n:{layer.name}", card, _tooltip(layer.name, card, layer.spec))

    return [entry(node) for node in group_tree([layer.group for layer in stack.layers])]


def _tooltip(name: str, card: Card, spec: LayerSpec) -> str:
    return f"{name}\n{card.status or spec.description}"


def _signature(entries: list[_Entry]) -> tuple:
    return tuple((e.key, _signature(e.children)) for e in entries)


class StackView(QTreeWidget):
    """Cards of the document's network, with lanes for its edges.

    Emits `pathSelected(LayerPath | None)` when the selection moves to another layer (a group's
    card selects its output node) and `message(str)` for a refused edit, for the status bar.
    """
    pathSelected = Signal(object)
    message = Signal(str)

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.setHeaderHidden(True)
        self.setIndentation(0)  # the cards indent themselves, so lanes line up across depths
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(False)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.setDropIndicatorShown(True)
        self.setEditTriggers(QAbstractItemView.EditTrigger.EditKeyPressed)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setItemDelegate(CardDelegate(self))
        self.setFrameShape(QTreeWidget.Shape.NoFrame)
        # Cards show the selection with their border; the style's highlight would also paint
        # each selected row as a coloured strip.
        palette = self.palette()
        palette.setColor(QPalette.ColorRole.Highlight, Qt.GlobalColor.transparent)
        self.setPalette(palette)
        self.lane_columns = 1
        self.lane_area = 0
        self._lanes: dict[int, RowLanes] = {}
        self._items: dict[str, QTreeWidgetItem] = {}
        self._signature: tuple = ()
        self._expanded: set[str] = set()
        self._selected_key: str | None = None
        self._selected_path: LayerPath | None = None

        self.delete_action = self._action("&Delete", QKeySequence.StandardKey.Delete, self.delete_current)
        self.duplicate_action = self._action("D&uplicate", QKeySequence("Ctrl+D"), self.duplicate_current)
        self.rename_action = self._action("&Rename", QKeySequence("F2"), self.rename_current)
        self.merge_action = self._action("&Merge selected with Add", QKeySequence("Ctrl+M"),
                                         lambda: self.merge_selected("Add"))

        self.currentItemChanged.connect(self._current_changed)
        self.itemExpanded.connect(lambda item: self._folded(item, True))
        self.itemCollapsed.connect(lambda item: self._folded(item, False))
        document.stackChanged.connect(self.show_stack)
        self.show_stack(document.stack, document.report)

    def _action(self, text: str, keys: QKeySequence | QKeySequence.StandardKey,
                slot: object) -> QAction:
        action = QAction(text, self)
        action.setShortcut(keys)
        # Only while the cards have focus: Del in a spin box must not delete a layer.
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    # ---- showing ------------------------------------------------------------------------------
    def show_stack(self, stack: Stack, report: StackReport) -> None:
        """Show the network's cards, keeping the selected card (by name) and the open groups.

        When the cards are the same ones as shown, only those that changed are replaced: a
        rebuild re-measures and repaints every card (bench/bench_live.py measures both).
        """
        previous = self._selected_path
        entries = card_tree(stack, report)
        signature = _signature(entries)
        self.blockSignals(True)
        if signature == self._signature:
            self._update(entries)
        else:
            self._rebuild(entries, len(stack))
            self._signature = signature
        self._layout_lanes(stack)
        key = self._key_after(stack, previous)
        current = self._items.get(key) if key else None
        if current is not self.currentItem():
            self.setCurrentItem(current)
        self.blockSignals(False)
        self._set_selected(current)
        if self._selected_path != previous:
            self.pathSelected.emit(self._selected_path)

    def _update(self, entries: list[_Entry]) -> None:
        for entry in entries:
            item = self._items[entry.key]
            if item.data(0, CARD_ROLE) != entry.card:
                item.setData(0, CARD_ROLE, entry.card)
                item.setToolTip(0, entry.tip)
            self._update(entry.children)

    def _rebuild(self, entries: list[_Entry], nodes: int) -> None:
        keys = {entry.key for entry, _depth in walk(entries)}
        group_keys = {k for k in keys if k.startswith("g:")}
        if group_keys and not group_keys & set(self._items):
            # Another network: fold its groups when it is big, so it reads as its blocks.
            self._expanded -= {k for k in self._expanded if k.startswith("g:")}
            if nodes <= COLLAPSE_ABOVE:
                self._expanded |= group_keys
        else:  # groups that an edit added open, so the new nodes can be seen
            self._expanded |= group_keys - set(self._items)
        self._expanded &= keys
        self.clear()
        self._items = {}
        self._add_items(self.invisibleRootItem(), entries)

    def _add_items(self, parent: QTreeWidgetItem, entries: list[_Entry]) -> None:
        for entry in entries:
            item = QTreeWidgetItem(parent)
            item.setData(0, CARD_ROLE, entry.card)
            item.setData(0, KEY_ROLE, entry.key)
            item.setToolTip(0, entry.tip)
            flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
            if entry.key.startswith("n:"):
                flags |= Qt.ItemFlag.ItemIsDragEnabled | Qt.ItemFlag.ItemIsEditable
            item.setFlags(flags)
            self._items[entry.key] = item
            self._add_items(item, entry.children)
            if entry.children:
                item.setExpanded(entry.key in self._expanded)

    def _folded(self, item: QTreeWidgetItem, expanded: bool) -> None:
        key = self._key(item)
        (self._expanded.add if expanded else self._expanded.discard)(key)
        self._layout_lanes(self.document.stack)

    @staticmethod
    def _key(item: QTreeWidgetItem) -> str:
        return item.data(0, KEY_ROLE)

    def visible_items(self) -> list[QTreeWidgetItem]:
        """The cards a person can see by scrolling (those inside folded cards are not)."""
        rows: list[QTreeWidgetItem] = []
        todo = [self.topLevelItem(i) for i in reversed(range(self.topLevelItemCount()))]
        while todo:
            item = todo.pop()
            rows.append(item)
            if item.isExpanded():
                todo.extend(item.child(i) for i in reversed(range(item.childCount())))
        return rows

    def _layout_lanes(self, stack: Stack) -> None:
        """Lanes for the visible cards: a folded group stands for every node inside it."""
        rows = self.visible_items()
        row_of: dict[int, int] = {}
        members: list[list[int]] = []
        for r, item in enumerate(rows):
            card: Card = item.data(0, CARD_ROLE)
            inside: list[int] = []
            if card.path is not None:
                inside = [card.path[0]]
            elif card.path is None and not item.isExpanded():
                todo = [item]
                while todo:
                    child = todo.pop()
                    c: Card = child.data(0, CARD_ROLE)
                    if c.path is not None:
                        inside.append(c.path[0])
                    todo.extend(child.child(i) for i in range(child.childCount()))
            members.append(inside)
            for node in inside:
                row_of[node] = r
        reads = [tuple(dict.fromkeys(INPUT_ROW if s < 0 else row_of[s]
                                     for node in inside for s in stack.sources[node]
                                     if s < 0 or row_of[s] != r))
                 for r, inside in enumerate(members)]
        lanes, width = assign_lanes(reads)
        self._lanes = {id(item): lane for item, lane in zip(rows, lanes)}
        area = lanes_width(width) if not stack.is_chain else 0
        if (width, area) != (self.lane_columns, self.lane_area):
            self.lane_columns, self.lane_area = width, area
            self.scheduleDelayedItemsLayout()
        self.viewport().update()

    def lanes_at(self, index: QModelIndex) -> RowLanes | None:
        """The lanes to draw beside the card at `index` (none in a chain: one line says nothing)."""
        if not self.lane_area:
            return None
        return self._lanes.get(id(self.itemFromIndex(index)))

    def _key_after(self, stack: Stack, previous: LayerPath | None) -> str | None:
        """The card to select after a change: the same node or group, else the same place."""
        if self._selected_key in self._items:
            return self._selected_key
        if previous is None or not stack.layers:
            return None
        return f"n:{stack.layers[min(previous[0], len(stack) - 1)].name}"

    def item_at(self, path: LayerPath) -> QTreeWidgetItem:
        return self._items[f"n:{self.document.stack.layers[path[0]].name}"]

    def group_item(self, group: str) -> QTreeWidgetItem:
        """The (first) card of the group `group`."""
        return self._items[f"g:{group}#1"]

    def card(self, path: LayerPath | int) -> Card:
        """The card shown for a layer (an index or a path)."""
        path = (path, None) if isinstance(path, int) else path
        return self.item_at(path).data(0, CARD_ROLE)

    def current_path(self) -> LayerPath | None:
        return self._selected_path

    def current_group(self) -> str | None:
        """The group whose card is selected, if a group's card is."""
        item = self.currentItem()
        card: Card | None = item.data(0, CARD_ROLE) if item is not None else None
        return card.group if card is not None and card.path is None else None

    def selected_indices(self) -> list[int]:
        """The selected nodes' indices, in the order they were selected (a group: its output)."""
        out = []
        for item in self.selectedItems():
            path = self._path_of(item)
            if path is not None and path[0] not in out:
                out.append(path[0])
        return out

    def select(self, path: LayerPath | int | None) -> None:
        path = (path, None) if isinstance(path, int) else path
        if path is None:
            self.setCurrentItem(None)
            return
        item = self.item_at(path)
        closed = []  # the folded groups around it
        parent = item.parent()
        while parent is not None:
            if not parent.isExpanded():
                closed.append(parent)
            parent = parent.parent()
        if closed:
            self._set_folded(closed, True)
        self.setCurrentItem(item)
        self.scrollToItem(item)

    def _path_of(self, item: QTreeWidgetItem) -> LayerPath | None:
        card: Card = item.data(0, CARD_ROLE)
        if card.path is not None:
            return card.path
        last = item  # a group stands for its output: its last node
        while last.childCount():
            last = last.child(last.childCount() - 1)
        card = last.data(0, CARD_ROLE)
        return (card.path[0], None) if card.path is not None else None

    def _set_selected(self, item: QTreeWidgetItem | None) -> None:
        self._selected_key = self._key(item) if item is not None else None
        self._selected_path = self._path_of(item) if item is not None else None

    def _current_changed(self, item: QTreeWidgetItem | None, _previous: object) -> None:
        self._set_selected(item)
        self.pathSelected.emit(self._selected_path)

    def drawBranches(self, painter: QPainter, rect: QRect, index: QModelIndex) -> None:
        """Nothing: the cards draw their own fold arrows, and the style's branch area would
        paint the selection colour as a strip beside every selected card."""

    def mousePressEvent(self, event: QMouseEvent) -> None:
        # A click on a foldable card's arrow strip opens or closes it.
        item = self.itemAt(event.position().toPoint())
        if item is not None and item.childCount():
            card: Card = item.data(0, CARD_ROLE)
            left = self.lane_area + card.depth * 16 + 6
            if left <= event.position().x() <= left + CardDelegate.GUTTER:
                item.setExpanded(not item.isExpanded())
                return
        super().mousePressEvent(event)

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)
        # Card heights depend on the width (wrapped error messages): lay them out again.
        self.scheduleDelayedItemsLayout()

    # ---- editing ------------------------------------------------------------------------------
    def _insert_index(self) -> int:
        """Where an added layer goes: after the selected node (or group), else at the end."""
        return self._selected_path[0] + 1 if self._selected_path else len(self.document.stack)

    def _edit(self, edit: object, *args: object) -> object:
        """Run a document edit; a refused one changes nothing and says why in the status bar."""
        try:
            return edit(*args)  # type: ignore[operator]
        except ConfigError as err:
            self.message.emit(err.reason)
            return None

    def add_from_palette(self, label: str, index: int | None = None) -> None:
        """Add the palette entry `label` (a layer or a template's block) at `index` (default:
        after the selected node, else at the end), spliced in after the node before it, with the
        input's spatial rank; select it (a block: its output)."""
        index = self._insert_index() if index is None else index
        if label in TEMPLATES:
            added = self._edit(self.document.add_template, label, index - 1 if index else None)
        else:
            spec = ENTRIES[label].spec(len(self.document.stack.input.spatial))
            added = self._edit(self.document.add_layer, spec, index)
        if added is not None:
            self.select(added)  # type: ignore[arg-type]

    def branch_from_current(self, label: str) -> None:
        """Start a branch from the selected node with the palette layer `label`."""
        if self._selected_path is None:
            return
        spec = ENTRIES[label].spec(len(self.document.stack.input.spatial))
        added = self._edit(self.document.branch_from, self._selected_path[0], spec)
        if added is not None:
            self.select(added)  # type: ignore[arg-type]

    def merge_selected(self, kind: str) -> None:
        """Merge the selected nodes with the merge `kind` (Add, Concat, Mul)."""
        added = self._edit(self.document.merge_layers, self.selected_indices(), MERGES[kind]())
        if added is not None:
            self.select(added)  # type: ignore[arg-type]

    def reconnect_current(self, slot: int, source: str) -> None:
        if self._selected_path is not None:
            self._edit(self.document.reconnect_input, self._selected_path[0], slot, source)

    def delete_current(self) -> None:
        group = self.current_group()
        if group is not None:
            self._edit(self.document.remove_group, group)
        elif self._selected_path is not None:
            self._edit(self.document.remove_layer, self._selected_path[0])

    def duplicate_current(self) -> None:
        if self._selected_path is not None and self.current_group() is None:
            self.select(self.document.duplicate_layer(self._selected_path[0]))

    def rename_current(self) -> None:
        if self._selected_path is not None and self.current_group() is None:
            self.editItem(self.item_at((self._selected_path[0], None)))

    def rename(self, index: int, name: str) -> None:
        self._edit(self.document.rename_layer, index, name)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        item = self.itemAt(event.pos())
        if item is not None and not item.isSelected():
            self.setCurrentItem(item)
        self.context_menu().exec(event.globalPos())

    def context_menu(self) -> QMenu:
        """The edits that apply to the selection: branch, merge, reconnect, delete..."""
        menu = QMenu(self)
        path, group = self._selected_path, self.current_group()
        if path is not None and group is None:
            branch = menu.addMenu("Start a &branch here with")
            for name, entries in GROUPS.items():
                sub = branch.addMenu(name)
                for entry in entries:
                    sub.addAction(entry.label, lambda e=entry.label: self.branch_from_current(e))
            self._reconnect_menu(menu.addMenu("Re&connect input"), path[0])
        merge = menu.addMenu("&Merge selected with")
        merge.setEnabled(len(self.selected_indices()) >= 2)
        for kind in MERGES:
            merge.addAction(kind, lambda k=kind: self.merge_selected(k))
        menu.addSeparator()
        if group is not None:
            menu.addAction(f"Delete group {group}", self.delete_current)
        else:
            menu.addActions([self.delete_action, self.duplicate_action, self.rename_action])
        menu.addSeparator()
        menu.addAction("Open all groups", lambda: self._fold_all(True))
        menu.addAction("Fold all groups", lambda: self._fold_all(False))
        return menu

    def _reconnect_menu(self, menu: QMenu, index: int) -> None:
        stack = self.document.stack
        reads = stack.input_names(index)
        earlier = [INPUT, *(layer.name for layer in stack.layers[:index])]
        nearest = earlier[-MAX_RECONNECT_CHOICES:][::-1]
        for slot, current in enumerate(reads):
            sub = menu.addMenu(f"Input {slot + 1} (now {short_name(current)})")
            for name in nearest:
                action = sub.addAction(short_name(name),
                                       lambda s=slot, n=name: self.reconnect_current(s, n))
                action.setEnabled(name != current)
            if len(earlier) > len(nearest):
                sub.addAction("Other…", lambda s=slot: self._reconnect_other(s, earlier))

    def _reconnect_other(self, slot: int, names: list[str]) -> None:
        name, ok = QInputDialog.getItem(self, "Reconnect input", f"Input {slot + 1} reads:",
                                        names, len(names) - 1, False)
        if ok:
            self.reconnect_current(slot, name)

    def _fold_all(self, expanded: bool) -> None:
        self._set_folded([item for key, item in self._items.items() if key.startswith("g:")],
                         expanded)

    def _set_folded(self, groups: list[QTreeWidgetItem], expanded: bool) -> None:
        """Open or fold these group cards, then lay the lanes out once (not once per card, as
        `_folded` does for a person's click: 6 ms a layout on DenseNet-121)."""
        self.blockSignals(True)
        for item in groups:
            item.setExpanded(expanded)
            (self._expanded.add if expanded else self._expanded.discard)(self._key(item))
        self.blockSignals(False)
        self._layout_lanes(self.document.stack)

    # ---- drag and drop ------------------------------------------------------------------------
    def mimeTypes(self) -> list[str]:
        return [LAYER_MIME, PALETTE_MIME]

    def mimeData(self, items: list[QTreeWidgetItem]) -> QMimeData:
        data = QMimeData()
        paths = [item.data(0, CARD_ROLE).path for item in items]
        if paths and paths[0] is not None and paths[0][1] is None:
            data.setData(LAYER_MIME, str(paths[0][0]).encode())
        return data

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction | Qt.DropAction.CopyAction

    def drop_row(self, pos: QPoint) -> int:
        """The node index a drop at `pos` (viewport coordinates) inserts before."""
        item = self.itemAt(pos)
        if item is None:
            return len(self.document.stack)
        first = item
        while first.data(0, CARD_ROLE).path is None and first.childCount():
            first = first.child(0)
        path = self._path_of(item)
        start = first.data(0, CARD_ROLE).path
        if path is None or start is None:
            return len(self.document.stack)
        below = pos.y() > self.visualItemRect(item).center().y()
        return path[0] + 1 if below else start[0]

    def dropEvent(self, event: QDropEvent) -> None:
        mime = event.mimeData()
        target = self.drop_row(event.position().toPoint())
        if mime.hasFormat(PALETTE_MIME):
            self.add_from_palette(bytes(mime.data(PALETTE_MIME)).decode(), target)
        elif mime.hasFormat(LAYER_MIME):
            source = int(bytes(mime.data(LAYER_MIME)).decode())
            destination = target - 1 if target > source else target
            try:
                self.document.move_layer(source, destination)
            except ConfigError as err:  # a node would come before what it reads
                self.message.emit(err.reason)
                event.ignore()
                return
            self.select(destination)
        else:
            event.ignore()
            return
        # Copy, not Move: the document has already moved the layer, and a Move would make Qt
        # remove the dragged row from the (rebuilt) tree.
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()
