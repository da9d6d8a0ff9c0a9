"""Lanes beside the cards, as `git log --graph` draws history: each visible row (a node, or a
collapsed group standing for its nodes) gets a dot, and each output that later rows read runs
down in its own lane until its last reader. A chain is one straight lane; a branch opens a lane
beside it and a merge closes it.

Pure Python over row indices, so the view only paints what `assign_lanes` says, and tests check
the layout without a display. Lanes are reused once freed and never shift sideways, so a lane is
a straight line from its producer to its last reader.
"""
from __future__ import annotations

from dataclasses import dataclass

INPUT_ROW = -1
"""The producer id of the network's input, which enters from above the first row."""


@dataclass(frozen=True)
class RowLanes:
    """What to draw beside one row; lanes are columns.

    node: the dot's column (None for a row that is neither read nor reads, such as an open
    group's header); through: lanes passing by; ends: lanes that stop at the dot (their last
    reader); taps: lanes that feed the dot and go on to later readers; out: the lane the row's
    output starts down in (None when nothing below reads it).
    """
    node: int | None
    through: tuple[int, ...]
    ends: tuple[int, ...]
    taps: tuple[int, ...]
    out: int | None


def assign_lanes(reads: list[tuple[int, ...]]) -> tuple[list[RowLanes], int]:
    """Lanes for rows in order, where reads[r] lists the earlier rows (or INPUT_ROW) row r reads.
    Returns one RowLanes per row and the number of columns needed."""
    last_reader: dict[int, int] = {}
    for row, sources in enumerate(reads):
        for source in sources:
            last_reader[source] = row
    slots: list[int | None] = [INPUT_ROW] if INPUT_ROW in last_reader else []
    width = len(slots)
    out_rows: list[RowLanes] = []
    for row, sources in enumerate(reads):
        wanted = set(sources)
        feeding = [c for c, p in enumerate(slots) if p is not None and p in wanted]
        ends = tuple(c for c in feeding if last_reader[slots[c]] == row)  # type: ignore[index]
        taps = tuple(c for c in feeding if last_reader[slots[c]] > row)  # type: ignore[index]
        through = tuple(c for c, p in enumerate(slots) if p is not None and c not in feeding)
        for c in ends:
            slots[c] = None
        out = None
        if row in last_reader:
            # Continue straight down the first lane that ended here, so a chain stays one line.
            out = ends[0] if ends else _free(slots)
            slots[out] = row
        node = out if out is not None else ends[0] if ends else taps[0] if taps else None
        while slots and slots[-1] is None:
            slots.pop()
        width = max(width, len(slots), (node or 0) + 1)
        out_rows.append(RowLanes(node, through, ends, taps, out))
    return out_rows, width


def _free(slots: list[int | None]) -> int:
    """The leftmost free column, growing the list when none is free."""
    for c, p in enumerate(slots):
        if p is None:
            return c
    slots.append(None)
    return len(slots) - 1
