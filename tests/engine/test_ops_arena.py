"""engine.ops._arena: output buffers reused only once nothing refers to them."""

from __future__ import annotations

import gc
import importlib
import threading

import numpy as np
import pytest

from engine.executor import run
from models import presets
from models.stack import InputSpec

arena = importlib.import_module("engine.ops._arena")

LARGE = (4, 64, 32, 32)  # 1 MiB of float32: large enough to be pooled


def address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


@pytest.fixture(autouse=True)
def empty_arena():
    gc.collect()
    arena.release_idle()
    yield
    arena.release_idle()


def test_a_held_array_is_never_handed_out_again():
    first = arena.empty(LARGE)
    first.fill(7.0)
    second = arena.empty(LARGE)
    second.fill(-1.0)
    assert not np.shares_memory(first, second)
    assert (first == 7.0).all()


def test_a_dropped_array_is_reused():
    first = arena.empty(LARGE)
    where = address(first)
    del first
    assert address(arena.empty(LARGE)) == where


def test_a_view_keeps_its_buffer_in_use():
    first = arena.empty(LARGE)
    where = address(first)
    row = first[1].reshape(-1)  # any view refers to the same buffer
    del first
    again = arena.empty(LARGE)
    assert address(again) != where and not np.shares_memory(again, row)


def test_small_arrays_are_not_pooled():
    small = arena.empty((8, 8))
    assert small.base is None and arena.held_bytes() == (0, 0)


def test_idle_buffers_are_bounded(monkeypatch):
    monkeypatch.setattr(arena, "MAX_IDLE_BYTES", 2 * (1 << 20))
    held = [arena.empty(LARGE) for _ in range(5)]
    assert arena.held_bytes() == (5 << 20, 0)
    del held
    fresh = arena.empty((1, 1 << 18))  # any pooled allocation trims the idle ones
    in_use, idle = arena.held_bytes()
    assert in_use == fresh.nbytes and idle <= 2 << 20


def test_release_idle_keeps_buffers_in_use():
    kept = arena.empty(LARGE)
    dropped = arena.empty(LARGE)
    del dropped
    arena.release_idle()
    assert arena.held_bytes() == (1 << 20, 0)
    kept.fill(1.0)


def test_threads_get_distinct_buffers():
    results: list[np.ndarray] = []
    lock = threading.Lock()

    def take() -> None:
        mine = [arena.empty(LARGE) for _ in range(10)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({address(a) for a in results}) == 40


def test_runs_reuse_memory_without_touching_held_results():
    """The live view keeps the previous result while the next run computes: reuse must never
    write into it, and a run into reused memory gives the same outputs as a fresh one."""
    base = presets.vgg_block()
    stack = base.with_input(InputSpec(base.input.channels, (64, 64), 2))
    rng = np.random.default_rng(0)
    x, y = (rng.standard_normal((2, 3, 64, 64), dtype=np.float32) for _ in range(2))
    first = run(stack, x)
    stack = first.stack  # weights materialised: both runs compute the same layers
    snapshot = [o.copy() for o in first.outputs]
    second = run(stack, y)
    for a, b, kept in zip(first.outputs, second.outputs, snapshot):
        assert not np.shares_memory(a, b)
        np.testing.assert_array_equal(a, kept)
    first_addresses = {address(o) for o in first.outputs if o.nbytes >= arena.MIN_BYTES}
    del first, a, b
    gc.collect()
    third = run(stack, x)
    assert first_addresses & {address(o) for o in third.outputs}, "nothing was reused"
    for got, want in zip(third.outputs, snapshot):
        np.testing.assert_array_equal(got, want)
