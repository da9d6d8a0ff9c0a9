"""Running the engine off the UI thread, always on the newest request only.

The UI posts (version, stack, input) with `post`; a thread-pool task computes the newest pending
request, passing the previous RunResult so unchanged leading layers are reused, and stops between
layers as soon as a newer request is pending (engine.executor.Cancelled). Results come back on
the UI thread as `finished(version, RunResult)`; one older than the newest posted version is
dropped here, so receivers never see a stale stack's maps. An input that does not fit (a
ConfigError) or an unexpected engine failure becomes `failed(version, message)`: the worker never
dies. `busy(bool)` is true from the first post until no request is left. A stack whose outputs
would not fit the memory budget is refused before it runs, as a `failed` with the estimate. A
result's scan for NaN and infinite values (RunResult.nonfinite, a pass over every output) and the
previews the feature-map view will draw of it (`previews`, a gui.layer_previews.PreviewCache) are
made on the pool thread before it is sent.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, Signal, SignalInstance

from engine import executor
from engine.executor import Cancelled, RunResult
from gui.layer_previews import PreviewCache
from models.errors import ConfigError
from models.stack import Stack


@dataclass(frozen=True)
class Request:
    version: int
    stack: Stack
    input: np.ndarray


class _Relay(QObject):
    """Carries results from the pool thread to the UI thread (queued connections).

    Kept apart from ComputeWorker and without a Qt parent, so a task still running when the
    window goes emits on a live object, and Qt simply has no receiver left to deliver to."""
    done = Signal(int, object)
    error = Signal(int, str)
    idle = Signal()


class ComputeWorker(QObject):
    """Computes the newest posted request on a pool thread; see the module docstring."""
    finished = Signal(int, object)  # (version, RunResult)
    failed = Signal(int, str)       # (version, message)
    busy = Signal(bool)

    def __init__(self, parent: QObject | None = None, pool: QThreadPool | None = None,
                 memory_budget: int | None = None, previews: PreviewCache | None = None) -> None:
        """memory_budget: bytes a run's kept outputs may take (None: the engine's default,
        engine.memory_budget.default_budget()); previews: where to put what the view will draw
        of each result (None: a cache of the worker's own)."""
        super().__init__(parent)
        self.previews = previews if previews is not None else PreviewCache()
        self._pool = pool or QThreadPool.globalInstance()
        self._memory_budget = memory_budget
        self._lock = threading.Lock()
        self._pending: Request | None = None
        self._running = False
        self._latest = -1
        self._previous: RunResult | None = None  # touched by the pool task only
        self._relay = _Relay()
        self._relay.done.connect(self._deliver)
        self._relay.error.connect(self._report_error)
        self._relay.idle.connect(self._went_idle)

    @property
    def latest_version(self) -> int:
        """The newest version posted (-1 before the first post)."""
        return self._latest

    def post(self, version: int, stack: Stack, x: np.ndarray) -> None:
        """Ask for `stack` run on `x`; supersedes any request not finished yet.

        Versions must increase: results for anything older than the newest are dropped."""
        with self._lock:
            self._pending = Request(version, stack, x)
            self._latest = version
            start = not self._running
            self._running = True
        if start:
            self.busy.emit(True)
            self._pool.start(self._work)

    def wait(self, msecs: int = 5000) -> bool:
        """Block until the pool has no task running (for shutdown and tests)."""
        return self._pool.waitForDone(msecs)

    # ---- pool thread ----------------------------------------------------------------------------
    def _superseded(self) -> bool:
        return self._pending is not None

    def _work(self) -> None:
        while True:
            with self._lock:
                request, self._pending = self._pending, None
                if request is None:
                    self._running = False
                    break
            try:
                result = executor.run(request.stack, request.input, self._previous,
                                      should_stop=self._superseded,
                                      memory_budget=self._memory_budget)
            except Cancelled:
                continue
            except ConfigError as err:
                self._send(self._relay.error, request.version, str(err))
                continue
            except Exception as err:  # noqa: BLE001 - a bug in one kernel must not end the worker
                self._send(self._relay.error, request.version,
                           f"the engine failed: {type(err).__name__}: {err}")
                continue
            self._previous = result
            if self._superseded():
                continue  # the UI would drop this result: a newer one is on its way
            _ = result.nonfinite  # the NaN/Inf scan: made here, not on the UI thread
            try:
                self.previews.prepare(result)
            except Exception as err:  # noqa: BLE001 - the worker must outlive a bug here too
                self._send(self._relay.error, request.version,
                           f"preparing the maps failed: {type(err).__name__}: {err}")
                continue
            self._send(self._relay.done, request.version, result)
        self._send(self._relay.idle)

    @staticmethod
    def _send(signal: SignalInstance, *args: object) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:
            pass  # the relay is deleted only at interpreter shutdown: nobody is left to tell

    # ---- UI thread ------------------------------------------------------------------------------
    def _deliver(self, version: int, result: RunResult) -> None:
        if version >= self._latest:
            self.finished.emit(version, result)

    def _report_error(self, version: int, message: str) -> None:
        if version >= self._latest:
            self.failed.emit(version, message)

    def _went_idle(self) -> None:
        # A post may have started a new task after this one finished; stay busy for that one.
        with self._lock:
            running = self._running
        if not running:
            self.busy.emit(False)
