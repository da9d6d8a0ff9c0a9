"""The layer palette, grouped as the field thinks of layers; add by double-click, Enter or drag.

New layers take the spatial rank of the stack's input, so a 1D signal gets Conv1D and MaxPool1D.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QTreeWidget, QTreeWidgetItem, QWidget

from models.layers import (ELU, GELU, LRN, AvgPool, BatchNorm, Clip, Conv, ConvTranspose, Dense,
                           DepthToSpace, DepthwiseConv, Flatten, Gated, GlobalAvgPool,
                           GlobalMaxPool, HardSwish, InstanceNorm, LayerSpec, LeakyReLU, MaxPool,
                           Pad, PointwiseConv, PReLU, ReLU, Residual, Resize, SeparableConv,
                           Sigmoid, SiLU, Softmax, SpaceToDepth, Tanh)

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


def _residual(rank: int) -> Residual:
    # A projection shortcut works whatever channels the block lands on; the person can switch
    # to identity once the body keeps the input's shape.
    return Residual(body=(Conv(rank=rank, out_channels=16), ReLU(), Conv(rank=rank, out_channels=16)),
                    shortcut="projection")


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
        PaletteEntry("Residual block", _residual),
        PaletteEntry("Gated block", lambda r: Gated(rank=r)),
    ),
    "Normalisation": (
        PaletteEntry("BatchNorm", lambda r: BatchNorm()),
        PaletteEntry("InstanceNorm", lambda r: InstanceNorm()),
        PaletteEntry("LRN", lambda r: LRN()),
    ),
}
ENTRIES: dict[str, PaletteEntry] = {e.label: e for group in GROUPS.values() for e in group}

_ENTRY_ROLE = Qt.ItemDataRole.UserRole


class Palette(QTreeWidget):
    """The grouped list of layers. Emits `addRequested(entry label)` on double-click or Enter;
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
        for group, entries in GROUPS.items():
            header = QTreeWidgetItem(self, [group])
            header.setFont(0, bold)
            header.setFlags(Qt.ItemFlag.ItemIsEnabled)
            for entry in entries:
                item = QTreeWidgetItem(header, [entry.label])
                item.setData(0, _ENTRY_ROLE, entry.label)
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                              | Qt.ItemFlag.ItemIsDragEnabled)
                item.setToolTip(0, entry.spec(2).description)
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
