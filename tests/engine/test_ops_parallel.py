"""engine.ops._parallel: ordering, errors, nesting and the BLAS limit."""

from __future__ import annotations

import threading

import pytest
from threadpoolctl import threadpool_info

from engine.ops import _parallel


def _blas_threads():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


@pytest.fixture
def two_workers(monkeypatch):
    # Exercise the pool even on a single-core machine.
    monkeypatch.setattr(_parallel, "num_workers", lambda: 2)


def test_results_in_task_order(two_workers):
    tasks = [lambda i=i: i * i for i in range(20)]
    assert _parallel.run_tasks(tasks) == [i * i for i in range(20)]


def test_tasks_run_concurrently_with_blas_limited(two_workers):
    before = _blas_threads()
    barrier = threading.Barrier(2, timeout=30)  # breaks unless 2 threads meet
    seen = []

    def task():
        barrier.wait()
        seen.append((threading.current_thread().name, _blas_threads()))

    _parallel.run_tasks([task, task])
    names = {name for name, _ in seen}
    assert len(names) == 2 and any(n.startswith("convscope-ops") for n in names)
    assert all(all(n == 1 for n in counts) for _, counts in seen)
    assert _blas_threads() == before  # restored afterwards


def test_single_task_runs_inline():
    caller = threading.current_thread().name
    assert _parallel.run_tasks([lambda: threading.current_thread().name]) == [caller]


def test_nested_use_runs_serially(two_workers):
    def outer():
        inner = _parallel.run_tasks([lambda: threading.current_thread().name] * 3)
        return threading.current_thread().name, inner

    for name, inner in _parallel.run_tasks([outer, outer]):
        assert inner == [name] * 3


def test_first_exception_reraised_after_all_tasks_finish(two_workers):
    done = []

    def ok():
        done.append(1)

    def bad(msg):
        raise RuntimeError(msg)

    with pytest.raises(RuntimeError, match="first"):
        _parallel.run_tasks([ok, lambda: bad("first"), ok, lambda: bad("second"), ok])
    assert len(done) == 3


def test_run_chunked_calls_every_item_once(two_workers):
    seen = []
    lock = threading.Lock()

    def fn(item):
        with lock:
            seen.append(item)

    _parallel.run_chunked(list(range(37)), fn)
    assert sorted(seen) == list(range(37))


def test_set_num_workers_one_runs_serially_in_caller():
    names = []
    _parallel.set_num_workers(1)
    try:
        assert _parallel.num_workers() == 1
        _parallel.run_tasks([lambda: names.append(threading.current_thread().name)] * 4)
    finally:
        _parallel.set_num_workers(None)
    assert names == [threading.current_thread().name] * 4
    assert _parallel.num_workers() >= 1
