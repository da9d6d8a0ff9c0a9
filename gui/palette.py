"""The layer palette, grouped as the field thinks of layers, and the blocks (templates that insert
a grouped subgraph: residual, Inception, squeeze-excitation...); add by double-click, Enter or drag.

New layers take the spatial rank of the stack's input, so a 1D signal gets Conv1D and MaxPool1D;
blocks are sized for the shape where they go.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QTreeWidget, QTreeWidgetItem, QWidget

from models.layers import (ELU, GELU, LRN, Add, AvgPool, BatchNorm, Clip, Concat, Conv,
                           ConvTranspose, Dense, DepthToSpace, DepthwiseConv, Flatten,
                           GlobalAvgPool, GlobalMaxPool, HardSwish, InstanceNorm, LayerSpec,
                           LeakyReLU, MaxPool, Mul, Pad, PointwiseConv, PReLU, ReLU, Resize,
                           SeparableConv, Sigmoid, SiLU, Softmax, SpaceToDepth, Tanh)
from models.templates import TEMPLATES

PALETTE_MIME = "application/x-convscope-palette-entry"


@dataclass(frozen=True)
class PaletteEntry:
    """One thing a person can add: its label and how to make its spec for a spatial rank."""
    label: str
    make: Callable[[int], LayerSpec]
    fixed_rank: int | None = None  # Conv1D/2D/3D name their rank; the rest follow the input

    def spec(self, rank: int) -> LayerSpec:
        # A flat input has no spatial rank to follow: windowed layers then take 2D and their
        # card says they need spatial axes.
        return self.make(self.fixed_rank or rank or 2)


GROUPS: dict[str, tuple[PaletteEntry, ...]] = {
    "Convolution": (
        PaletteEntry("Conv1D", lambda r: Conv(rank=r), 1),
        PaletteEntry("Conv2D", lambda r: Conv(rank=r), 2),
        PaletteEntry("Conv3D", lambda r: Conv(rank=r), 3),
        PaletteEntry("Transposed conv", lambda r: ConvTranspose(rank=r)),
    ),
    "Efficient": (
        PaletteEntry("Group conv", lambda r: Conv(rank=r, groups=2)),
        PaletteEntry("Depthwise", lambda r: DepthwiseConv(rank=r)),
        PaletteEntry("Pointwise", lambda r: PointwiseConv(rank=r)),
        PaletteEntry("Depthwise-separable", lambda r: SeparableConv(rank=r)),
    ),
    "Pooling": (
        PaletteEntry("Max pool", lambda r: MaxPool(rank=r)),
        PaletteEntry("Average pool", lambda r: AvgPool(rank=r)),
        PaletteEntry("Global max pool", lambda r: GlobalMaxPool()),
        PaletteEntry("Global average pool", lambda r: GlobalAvgPool()),
    ),
    "Activation": (
        PaletteEntry("ReLU", lambda r: ReLU()),
        PaletteEntry("LeakyReLU", lambda r: LeakyReLU()),
        PaletteEntry("Sigmoid", lambda r: Sigmoid()),
        PaletteEntry("Tanh", lambda r: Tanh()),
        PaletteEntry("ReLU6", lambda r: Clip()),
        PaletteEntry("PReLU", lambda r: PReLU()),
        PaletteEntry("ELU", lambda r: ELU()),
        PaletteEntry("SiLU (Swish)", lambda r: SiLU()),
        PaletteEntry("HardSwish", lambda r: HardSwish()),
        PaletteEntry("GELU", lambda r: GELU()),
        PaletteEntry("Softmax", lambda r: Softmax()),
    ),
    "Resampling": (
        PaletteEntry("Upsample x2", lambda r: Resize(scales=(2.0,) * r)),
        PaletteEntry("Pad", lambda r: Pad(pads=(0,) + (1,) * r + (0,) + (1,) * r)),
        PaletteEntry("Depth to space", lambda r: DepthToSpace()),
        PaletteEntry("Space to depth", lambda r: SpaceToDepth()),
    ),
    "Structure": (
        PaletteEntry("Flatten", lambda r: Flatten()),
        PaletteEntry("Dense", lambda r: Dense()),
    ),
    "Normalisation": (
        PaletteEntry("BatchNorm", lambda r: BatchNorm()),
        PaletteEntry("InstanceNorm", lambda r: InstanceNorm()),
        PaletteEntry("LRN", lambda r: LRN()),
    ),
}
ENTRIES: dict[str, PaletteEntry] = {e.label: e for group in GROUPS.values() for e in group}
BLOCKS = "Blocks"
"""The palette group of the templates (models.templates.TEMPLATES), listed by their names."""
MERGES: dict[str, type[LayerSpec]] = {"Add": Add, "Concat": Concat, "Mul": Mul}
"""What selected nodes can be merged with, by the label the window shows."""

_ENTRY_ROLE = Qt.ItemDataRole.UserRole


class Palette(QTreeWidget):
    """The grouped list of blocks and layers. Emits `addRequested(entry label)` on double-click or Enter;
    dragging an entry carries its label under PALETTE_MIME for the stack view to drop."""
    addRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setRootIsDecorated(False)
        self.setIndentation(12)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        bold = self.font()
        bold.setBold(True)
        tips = {BLOCKS: [(t.name, t.description) for t in TEMPLATES.values()]}
        tips.update({group: [(e.label, e.spec(2).description) for e in entries]
                     for group, entries in GROUPS.items()})
        for group, labels in tips.items():
            header = QTreeWidgetItem(self, [group])
            header.setFont(0, bold)
            header.setFlags(Qt.ItemFlag.ItemIsEnabled)
            for label, tip in labels:
                item = QTreeWidgetItem(header, [label])
                item.setData(0, _ENTRY_ROLE, label)
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                              | Qt.ItemFlag.ItemIsDragEnabled)
                item.setToolTip(0, tip)
        self.expandAll()
        self.itemActivated.connect(self._activated)

    def item_for(self, label: str) -> QTreeWidgetItem:
        """The tree item of the entry called `label`."""
        for item in self.findItems(label, Qt.MatchFlag.MatchExactly | Qt.MatchFlag.MatchRecursive):
            if item.data(0, _ENTRY_ROLE) == label:
                return item
        raise KeyError(label)

    def _activated(self, item: QTreeWidgetItem, _column: int) -> None:
        label = item.data(0, _ENTRY_ROLE)
        if label:  # group headers have none
            self.addRequested.emit(label)

    def mimeTypes(self) -> list[str]:
        return [PALETTE_MIME]

    def mimeData(self, items: list[QTreeWidgetItem]) -> QMimeData:
        data = QMimeData()
        labels = [item.data(0, _ENTRY_ROLE) for item in items if item.data(0, _ENTRY_ROLE)]
        if labels:
            data.setData(PALETTE_MIME, labels[0].encode("utf-8"))
        return data
