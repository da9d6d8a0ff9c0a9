"""Shared thread pool for the NumPy kernels.

The kernels split their work into independent blocks (for example a few
output rows of a convolution). Each block is a copy plus a single-threaded
BLAS call, so running blocks on one thread per core with BLAS limited to one
thread keeps every block's working set in its own core's cache, instead of
letting BLAS split one small GEMM across cores.

Measured on the 2-core dev VM: GEMM blocks scale to both cores, but pure
NumPy elementwise passes and copies barely do (they are bound by bandwidth
shared between the cores), and a pool thread cannot start a task while
another thread holds the GIL, up to the 5 ms switch interval. Hence the
calling thread works through the tasks itself alongside the pool threads.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, TypeVar

from threadpoolctl import ThreadpoolController

__all__ = ["num_workers", "run_chunked", "run_tasks", "set_num_workers", "single_threaded_blas"]

_T = TypeVar("_T")

# Chunks per worker in run_chunked: enough for load balance when a core is
# busy with something else, few enough that task hand-off (~20-50 us) is noise.
_CHUNKS_PER_WORKER = 4

_init_lock = threading.Lock()
# Serialises parallel regions: two concurrent callers would otherwise restore
# the process-wide BLAS thread count under each other's feet.
_region_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_controller: ThreadpoolController | None = None
_worker_state = threading.local()


# os.cpu_count() costs ~10 us a call, and kernels ask several times per layer.
_CPU_COUNT = os.cpu_count() or 1
_workers = _CPU_COUNT


def num_workers() -> int:
    """Number of threads a parallel region uses: one per logical CPU unless
    ``set_num_workers`` said otherwise."""
    return _workers


def set_num_workers(count: int | None) -> None:
    """Use ``count`` threads (at least 1) in later parallel regions; None means
    one per logical CPU. For comparing with a peer held to the same thread count."""
    global _workers
    _workers = _CPU_COUNT if count is None else max(1, int(count))


def _mark_worker() -> None:
    _worker_state.in_pool = True


def _get_executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        with _init_lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(
                    max_workers=max(_CPU_COUNT, num_workers()),
                    thread_name_prefix="convscope-ops",
                    initializer=_mark_worker,
                )
    return _executor


def _get_controller() -> ThreadpoolController:
    # threadpool_limits() rescans the loaded libraries on every call (~0.1 ms);
    # a controller created once makes entering the limit ~15x cheaper.
    global _controller
    if _controller is None:
        with _init_lock:
            if _controller is None:
                _controller = ThreadpoolController()
    return _controller


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Hold BLAS at one thread (process-wide) for the block, then restore it.

    The engine's parallelism comes from its own pool; a BLAS call left to
    thread itself wakes OpenBLAS's helper threads, which then spin for about
    0.1 s after the call and take cores from the pool's next tasks (measured:
    the VGG block's last convolution 146 ms instead of 95). Inside a parallel
    region (where BLAS already runs single-threaded) this does nothing.
    """
    if getattr(_worker_state, "in_pool", False):
        yield
        return
    with _region_lock, _get_controller().limit(limits=1, user_api="blas"):
        _worker_state.in_pool = True  # nested regions run serially
        try:
            yield
        finally:
            _worker_state.in_pool = False


def run_tasks(tasks: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run independent zero-argument callables, in parallel where it helps.

    Returns their results in the order of ``tasks``. Inside a parallel region
    (nested use) or with one worker, the tasks run serially in the calling
    thread with BLAS left as it is; a single task runs in the calling thread
    under ``single_threaded_blas`` (the planners only leave small jobs whole).
    Otherwise the calling thread and up to ``num_workers() - 1`` pool threads
    take tasks from a shared counter until none are left (so the caller
    starts at once instead of waiting for a pool thread to wake, and at most
    one thread per core is busy), under ``single_threaded_blas``: the limit
    is taken in the calling thread (the BLAS thread count is process-wide)
    and restored once every task has finished. If tasks raise, all tasks are
    still run and the first exception (in task order) is re-raised.
    """
    n_tasks = len(tasks)
    workers = num_workers()
    if workers <= 1 or getattr(_worker_state, "in_pool", False):
        return [task() for task in tasks]
    if n_tasks <= 1:
        with single_threaded_blas():
            return [task() for task in tasks]
    results: list[Any] = [None] * n_tasks
    errors: list[BaseException | None] = [None] * n_tasks
    counter = itertools.count()  # next() is atomic under the GIL

    def drain() -> None:
        for i in iter(counter.__next__, None):
            if i >= n_tasks:
                return
            try:
                results[i] = tasks[i]()
            except BaseException as exc:  # re-raised in the caller
                errors[i] = exc

    executor = _get_executor()
    with single_threaded_blas():
        helpers = [executor.submit(drain) for _ in range(min(workers, n_tasks) - 1)]
        try:
            drain()
        finally:
            wait(helpers)
    for exc in errors:
        if exc is not None:
            raise exc
    return results


def run_chunked(items: Sequence[_T], fn: Callable[[_T], Any]) -> None:
    """Call ``fn(item)`` for every item, in parallel chunks of consecutive items.

    Items are split into at most ``4 * num_workers()`` contiguous runs, each
    one task for ``run_tasks`` (neighbouring items usually share input data,
    so they run on the same core one after the other). Results are
    discarded; exceptions propagate as in ``run_tasks``.
    """
    n_items = len(items)
    if n_items == 0:
        return
    n_chunks = min(n_items, _CHUNKS_PER_WORKER * num_workers())
    bounds = [n_items * i // n_chunks for i in range(n_chunks + 1)]

    def make_task(lo: int, hi: int) -> Callable[[], None]:
        def task() -> None:
            for item in items[lo:hi]:
                fn(item)

        return task

    run_tasks([make_task(bounds[i], bounds[i + 1]) for i in range(n_chunks)])
