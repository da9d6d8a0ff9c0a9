"""The executor analyses a network once: runs of the same Stack value share its report, an
edited network (a new value) gets its own, and a network missing weights still has them filled
on every run, with the same outputs each time."""
from __future__ import annotations

import gc
import weakref

import numpy as np

from engine.executor import run
from models.analysis import analyse
from models.presets import demo


def _input(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, 3, 128, 128), dtype=np.float32)


def test_runs_of_one_network_share_its_report():
    stack = run(demo(), _input()).stack
    first, second = run(stack, _input(1)), run(stack, _input(2))
    assert second.report is first.report
    assert second.report == analyse(stack)


def test_an_edited_network_gets_its_own_report():
    stack = run(demo(), _input()).stack
    before = run(stack, _input())
    edited = stack.with_spec(3, stack.layers[3].spec.replace(out_channels=24))
    after = run(edited, _input())
    assert after.report is not before.report
    assert after.report.layers[3].output_shape[1] == 24
    assert after.outputs[3].shape[1] == 24


def test_a_network_without_weights_has_them_filled_on_every_run():
    stack = run(demo(), _input()).stack
    # Widening layer 3 leaves its weights of the old shape: each run fills the new ones.
    edited = stack.with_spec(3, stack.layers[3].spec.replace(out_channels=24))
    first, second = run(edited, _input()), run(edited, _input())
    for result in (first, second):
        assert result.stack is not edited
        assert result.stack.layers[3].weights["W"].shape[0] == 24
    for a, b in zip(first.outputs, second.outputs):
        np.testing.assert_array_equal(a, b)


def test_a_network_let_go_is_forgotten():
    stack = run(demo(), _input()).stack
    ref = weakref.ref(stack)
    del stack
    gc.collect()
    assert ref() is None
