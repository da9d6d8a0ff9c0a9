"""engine.ops._scratch: per-thread buffers reused by key, bounded in bytes."""

from __future__ import annotations

import importlib
import threading

import numpy as np

scratch_module = importlib.import_module("engine.ops._scratch")
scratch = scratch_module.scratch


def test_same_key_same_buffers_made_once():
    made = []

    def make():
        made.append(1)
        return (np.zeros(4, np.float32),)

    first = scratch(("test-same", 1), make)
    first[0][0] = 7.0
    again = scratch(("test-same", 1), make)
    assert again[0] is first[0] and again[0][0] == 7.0 and len(made) == 1
    assert scratch(("test-same", 2), make)[0] is not first[0]


def test_least_recent_dropped_beyond_limit(monkeypatch):
    monkeypatch.setattr(scratch_module, "_MAX_BYTES", 3 * 400)
    bufs = {k: scratch(("test-lru", k), lambda: (np.zeros(100, np.float32),))[0]
            for k in range(3)}
    scratch(("test-lru", 0), lambda: (np.zeros(100, np.float32),))  # 0 is now most recent
    scratch(("test-lru", 3), lambda: (np.zeros(100, np.float32),))  # drops 1, the oldest
    assert scratch(("test-lru", 0), lambda: (np.ones(100, np.float32),))[0] is bufs[0]
    assert scratch(("test-lru", 2), lambda: (np.ones(100, np.float32),))[0] is bufs[2]
    assert scratch(("test-lru", 1), lambda: (np.ones(100, np.float32),))[0] is not bufs[1]


def test_threads_get_their_own_buffers():
    key = ("test-threads",)
    mine = scratch(key, lambda: (np.zeros(2, np.float32),))[0]
    theirs = []
    thread = threading.Thread(
        target=lambda: theirs.append(scratch(key, lambda: (np.zeros(2, np.float32),))[0]))
    thread.start()
    thread.join()
    assert theirs[0] is not mine
