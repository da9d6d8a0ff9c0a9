"""Lane layout beside the cards: a chain is one lane, a branch opens a lane that runs beside the
main one until its last reader, freed lanes are reused, and no lane moves sideways."""
from __future__ import annotations

from gui.graph_lanes import INPUT_ROW, assign_lanes


def test_a_chain_is_one_straight_lane():
    rows, width = assign_lanes([(INPUT_ROW,), (0,), (1,), (2,)])
    assert width == 1
    assert [(r.node, r.ends, r.out) for r in rows] == [(0, (0,), 0)] * 3 + [(0, (0,), None)]


def test_a_shortcut_runs_beside_the_body_and_ends_at_the_merge():
    # 0 stem; 1, 2 the body; 3 adds the body to the stem.
    rows, width = assign_lanes([(INPUT_ROW,), (0,), (1,), (2, 0)])
    assert width == 2
    assert rows[1].taps == (0,) and rows[1].out == 1  # the stem feeds the body and goes on
    assert rows[2].through == (0,)  # the shortcut passes the body's second layer
    assert rows[3].ends == (0, 1) and rows[3].out is None  # both paths end at the merge


def test_freed_lanes_are_reused_so_width_follows_the_widest_row():
    # Two residual blocks in a row need two lanes, not three.
    reads = [(INPUT_ROW,), (0,), (1, 0), (2,), (3, 2)]
    rows, width = assign_lanes(reads)
    assert width == 2
    assert rows[3].taps == (0,) and rows[3].out == 1


def test_every_lane_is_one_column_from_producer_to_last_reader():
    reads = [(INPUT_ROW,), (0,), (0,), (0,), (1, 2, 3), (4,), (0, 5)]
    rows, _ = assign_lanes(reads)
    column = {}
    for r, row in enumerate(rows):
        if row.out is not None:
            column[r] = row.out
    for r, sources in enumerate(reads):
        fed = set(rows[r].ends + rows[r].taps)
        assert {column[s] for s in sources if s != INPUT_ROW} <= fed
