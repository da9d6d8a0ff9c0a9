"""One-off jobs for dialogs (export, onnxruntime runs) on a pool thread, results as signals.

`BackgroundJob.start(fn)` runs `fn(progress)` on QThreadPool; `progress(step, total, text)` may be
called from the job. On the UI thread the job then emits `progress(step, total, text)`, and
finally either `succeeded(value)` or `failed(message)`: a ConfigError or OSError (mistakes a
person can fix) becomes its one sentence, anything else one line naming the exception. The
job never lets an exception escape into the pool.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QObject, QThreadPool, Signal, SignalInstance

from models.errors import ConfigError

Progress = Callable[[int, int, str], None]


def error_sentence(err: BaseException) -> str:
    """One line for the person: the ConfigError's own sentence, an OSError's reason and file."""
    if isinstance(err, ConfigError):
        return str(err)
    if isinstance(err, OSError):
        name = f"{err.filename}: " if err.filename else ""
        return f"cannot write {name}{err.strerror or err}".rstrip()
    return f"unexpected failure: {type(err).__name__}: {err}"


class _Relay(QObject):
    """Signals emitted from the pool thread, delivered queued on the UI thread. Kept without a Qt
    parent so a job still running when its dialog closes emits on a live object."""
    progress = Signal(int, int, str)
    succeeded = Signal(object)
    failed = Signal(str)


class BackgroundJob(QObject):
    """A single job at a time; `running` is true from start until succeeded/failed is emitted."""
    progress = Signal(int, int, str)
    succeeded = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None, pool: QThreadPool | None = None) -> None:
        super().__init__(parent)
        self._pool = pool or QThreadPool.globalInstance()
        self._relay = _Relay()
        self._relay.progress.connect(self.progress)
        self._relay.succeeded.connect(self._finish_ok)
        self._relay.failed.connect(self._finish_failed)
        self.running = False

    def start(self, fn: Callable[[Progress], object]) -> None:
        """Run fn(progress) on the pool. Raises RuntimeError if a job is still running."""
        if self.running:
            raise RuntimeError("a job is already running")
        self.running = True
        relay = self._relay

        def work() -> None:
            try:
                value = fn(lambda step, total, text: _emit(relay.progress, step, total, text))
            except Exception as err:  # noqa: BLE001 - the pool must never see an exception
                _emit(relay.failed, error_sentence(err))
                return
            _emit(relay.succeeded, value)

        self._pool.start(work)

    def wait(self, msecs: int = 10000) -> bool:
        """Block until the pool has no task running (for closing and tests)."""
        return self._pool.waitForDone(msecs)

    def _finish_ok(self, value: object) -> None:
        self.running = False
        self.succeeded.emit(value)

    def _finish_failed(self, message: str) -> None:
        self.running = False
        self.failed.emit(message)


def _emit(signal: SignalInstance, *args: object) -> None:
    try:
        signal.emit(*args)
    except RuntimeError:
        pass  # the relay is deleted only at interpreter shutdown: nobody is left to tell
