"""models.pacing: a long loop on a worker thread pauses now and then; on the main thread never."""
from __future__ import annotations

import threading
import time

import pytest

from models import pacing


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The durations pace() sleeps for, recorded (and slept) as they happen."""
    recorded: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        recorded.append(seconds)
        real_sleep(seconds)
    monkeypatch.setattr(pacing.time, "sleep", sleep)
    return recorded


def _loop(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pacing.pace()


def test_a_worker_loop_pauses_once_per_work_period(sleeps):
    worker = threading.Thread(target=_loop, args=(10.5 * pacing.WORK_S,))
    worker.start()
    worker.join()
    assert sleeps and set(sleeps) == {pacing.PAUSE_S}
    # One pause per WORK_S of looping: 10 here (the clock starts at the first call).
    assert 8 <= len(sleeps) <= 11


def test_the_main_thread_never_pauses(sleeps):
    _loop(5 * pacing.WORK_S)
    assert sleeps == []


def test_a_short_loop_does_not_pause(sleeps):
    worker = threading.Thread(target=_loop, args=(0.5 * pacing.WORK_S,))
    worker.start()
    worker.join()
    assert sleeps == []
