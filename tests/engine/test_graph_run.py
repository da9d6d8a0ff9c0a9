"""The executor on graphs: merges compute what NumPy says they do, an edit to one branch
recomputes only what lies downstream of it (by identity), and the exact receptive window through
branches holds against perturbing the input."""
from __future__ import annotations

import numpy as np

from engine.executor import run
from models.analysis import analyse
from models.layers import Add, Concat, Conv, GlobalAvgPool, Mul, ReLU, Sigmoid
from models.receptive_window import receptive_masks
from models.stack import INPUT, InputSpec, Layer, Stack


def _net() -> Stack:
    layers = [Layer("stem", Conv(out_channels=6)),
              Layer("left", Conv(out_channels=6, kernel_size=1), inputs=("stem",)),
              Layer("right", Conv(out_channels=6, kernel_size=5, dilation=2), inputs=("stem",)),
              Layer("sum", Add(), inputs=("left", "right")),
              Layer("pool", GlobalAvgPool(), inputs=("stem",)),
              Layer("gate", Sigmoid()),
              Layer("scaled", Mul(), inputs=("sum", "gate")),
              Layer("cat", Concat(), inputs=("scaled", INPUT)),
              Layer("relu", ReLU())]
    return run(Stack(InputSpec(3, (24, 24))).with_layers(layers),
               np.zeros((1, 3, 24, 24), np.float32)).stack  # weights filled


def test_merges_compute_their_numpy_meaning():
    stack = _net()
    x = np.random.default_rng(0).standard_normal((2, 3, 24, 24), dtype=np.float32)
    out = run(stack, x).outputs
    np.testing.assert_allclose(out[3], out[1] + out[2], rtol=1e-6)
    np.testing.assert_allclose(out[6], out[3] * out[5], rtol=1e-6)
    np.testing.assert_array_equal(out[7], np.concatenate([out[6], x], axis=1))
    assert out[5].shape == (2, 6, 1, 1)


def test_an_edit_to_one_branch_recomputes_only_its_downstream():
    stack = _net()
    x = np.random.default_rng(1).standard_normal((1, 3, 24, 24), dtype=np.float32)
    first = run(stack, x)
    edited = stack.with_spec(1, Conv(out_channels=6, kernel_size=3))
    again = run(edited, x, previous=first)
    same = [i for i, (a, b) in enumerate(zip(first.outputs, again.outputs)) if a is b]
    assert same == [0, 2, 4, 5]  # stem, the other branch and the gate path
    assert again.reused == 4
    fresh = run(edited, x)
    for a, b in zip(again.outputs, fresh.outputs):
        np.testing.assert_array_equal(a, b)


def test_receptive_window_through_branches_is_exact():
    stack = _net()
    report = analyse(stack)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 3, 24, 24), dtype=np.float32)
    base = run(stack, x).outputs
    target = 3  # "sum": the union of a 1x1 and a dilated 5x5 branch after a 3x3 stem
    masks = receptive_masks(stack, report, target, (12, 12))
    assert len(masks) == target + 2
    inside = np.argwhere(masks[0])
    rows, cols = inside[:, 0], inside[:, 1]
    assert rows.max() - rows.min() + 1 == 1 + 2 + 8  # stem 3 + dilated span 9 - 1
    for r, c in [(0, 0), (12, 3), (3, 12), (23, 23), (12, 12), (8, 8), (17, 7), (18, 12)]:
        moved = x.copy()
        moved[0, :, r, c] += 5.0
        changed = not np.array_equal(run(stack, moved).outputs[target][0, :, 12, 12],
                                     base[target][0, :, 12, 12])
        assert changed == bool(masks[0][r, c]), (r, c)
