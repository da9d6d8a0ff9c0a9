"""Finding a node by name or type: the bar Ctrl+F opens above the cards.

Typing completes from every node ("conv1 · Conv2D"); choosing a completion, or Enter, selects
the node (Enter again goes to the next match, wrapping). Matches ignore case and rank an exact
name first, then names that start with the text, then names that hold it, then nodes whose type
holds it (so "add" finds a node named add1 before every Add). The completion list follows edits
while the bar is open; closed, it waits until next opened, so edits to a 500-node model pay
nothing for it.
"""
from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QCompleter, QHBoxLayout, QLabel, QLineEdit, QToolButton, QWidget

from gui.document import Document
from gui.theme import mute
from models.analysis import StackReport

SEPARATOR = " · "
INDEX_ROLE = Qt.ItemDataRole.UserRole + 1  # a completion's node index


def find_nodes(report: StackReport, text: str) -> list[int]:
    """Indices of the nodes whose name or type holds `text` (ignoring case and surrounding
    spaces), best first as the module docstring ranks them, in network order within a rank.
    An empty text matches nothing."""
    wanted = text.strip().casefold()
    if not wanted:
        return []
    ranked: list[tuple[int, int]] = []
    for layer in report.layers:
        name, kind = layer.name.casefold(), layer.type_name.casefold()
        if name == wanted:
            rank = 0
        elif name.startswith(wanted):
            rank = 1
        elif wanted in name:
            rank = 2
        elif wanted in kind:
            rank = 3
        else:
            continue
        ranked.append((rank, layer.index))
    return [index for _rank, index in sorted(ranked)]


def entry_text(name: str, type_name: str) -> str:
    """A completion's text: the node's name and its type."""
    return f"{name}{SEPARATOR}{type_name}"


class FindBar(QWidget):
    """A find field with completion, a "2 of 5" count and a close button; hidden until
    `start()`. Emits nodeChosen(index) for the node to select."""
    nodeChosen = Signal(int)

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.field = QLineEdit()
        self.field.setPlaceholderText("Find a node by name or type")
        self.field.setClearButtonEnabled(True)
        self.count = mute(QLabel())
        close = QToolButton()
        close.setText("✕")
        close.setToolTip("Close (Esc)")
        close.setAutoRaise(True)
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addWidget(self.field, 1)
        layout.addWidget(self.count)
        layout.addWidget(close)
        self._entries = QStandardItemModel(self)
        self.completer = QCompleter(self._entries, self)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.completer.setMaxVisibleItems(12)
        self.field.setCompleter(self.completer)
        # The completion's node index, not its text: two nodes' entries could read alike.
        self.completer.activated[QModelIndex].connect(self._completion_chosen)
        self.field.returnPressed.connect(self.find_next)
        self.field.textEdited.connect(lambda _text: self._restart())
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.hide,
                  context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self._stale = True
        self._matches: list[int] = []
        self._at = -1
        self._matched_text: str | None = None
        document.stackChanged.connect(lambda _stack, _report: self._mark_stale())
        self.hide()

    def start(self) -> None:
        """Show the bar with its text selected, ready to type."""
        self._refresh()
        self.show()
        self.field.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.field.selectAll()

    def find_next(self) -> int | None:
        """Choose the next node matching the field's text (the first after a new text);
        returns its index, or None when nothing matches."""
        popup = self.completer.popup()
        if popup.isVisible():
            if popup.currentIndex().isValid():
                return None  # Enter on a highlighted completion: the completer chooses it next
            popup.hide()
        self._refresh()
        text = self.field.text()
        if text != self._matched_text:
            self._matches = find_nodes(self.document.report, text)
            self._matched_text, self._at = text, -1
        if not self._matches:
            self.count.setText("no match" if text.strip() else "")
            return None
        self._at = (self._at + 1) % len(self._matches)
        return self._choose(self._matches[self._at])

    # ---- internals ------------------------------------------------------------------------------
    def _choose(self, index: int) -> int:
        self.count.setText(f"{self._at + 1} of {len(self._matches)}")
        self.nodeChosen.emit(index)
        return index

    def _completion_chosen(self, proxy_index: QModelIndex) -> None:
        index = int(proxy_index.data(INDEX_ROLE))
        self._matches, self._at = [index], 0
        self._matched_text = self.field.text()
        self._choose(index)

    def _restart(self) -> None:
        self._matched_text = None
        self.count.setText("")

    def _mark_stale(self) -> None:
        self._stale = True
        self._matched_text = None  # indices may have moved
        if self.isVisible():  # hidden, the list waits until the bar is used
            self._refresh()

    def _refresh(self) -> None:
        if self._stale:
            self._entries.clear()
            for layer in self.document.report.layers:
                item = QStandardItem(entry_text(layer.name, layer.type_name))
                item.setData(layer.index, INDEX_ROLE)
                item.setEditable(False)
                self._entries.appendRow(item)
            self._stale = False
