"""bench/bench_live.py never hangs: its wait sees a condition that becomes true with no paint
(its first version waited for a paint that never came, and hung), and one that never becomes
true stops the bench with a line naming what it waited for."""
from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_live.py"


@pytest.fixture(scope="module")
def bench_live():
    spec = importlib.util.spec_from_file_location("bench_live", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture
def bench(bench_live, window):
    return bench_live.LiveBench(window, bench_live.SlotTimes())


def test_a_condition_made_true_by_a_timer_without_a_paint_ends_the_wait_at_once(bench):
    done = []
    QTimer.singleShot(50, lambda: done.append(True))  # nothing is drawn or painted
    start = time.perf_counter()
    bench.wait(lambda: bool(done), "the timer", timeout_s=10)
    assert done and time.perf_counter() - start < 2


def test_a_condition_already_true_returns_without_running_the_loop(bench):
    start = time.perf_counter()
    bench.wait(lambda: True, "nothing", timeout_s=10)
    assert time.perf_counter() - start < 0.1


def test_a_condition_never_met_stops_the_bench_naming_what_it_waited_for(bench):
    start = time.perf_counter()
    with pytest.raises(SystemExit, match=r"^bench_live: timed out after 0\.3 s waiting for the "
                                         r"cards of model\.onnx$"):
        bench.wait(lambda: False, "the cards of model.onnx", timeout_s=0.3)
    assert 0.25 <= time.perf_counter() - start < 3  # Qt may fire a coarse timer 5% early
