"""Reading a project or an .onnx file on a worker thread while the window stays live.

`FileOpener.read(path)` starts the read (load, then the default weights of layers that have
none) on a thread of its own and runs a local event loop until it is done, so the caller gets
its answer in order while the window keeps painting, computing maps and answering the person.
When the read takes longer than `progress_delay_ms`, a window-modal progress dialog with a busy
bar and Cancel appears (the readers report no progress to show). Cancel returns at once; the
read runs on to its end in the background and its result is dropped. What a bad file causes
becomes one line (gui.file_refusal); any other exception is raised again on the UI thread,
with its traceback, for the crash reporter.

The thread is a daemon: a dropped read never holds up quitting, and it writes nothing.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QEventLoop, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QProgressDialog, QWidget

from gui.file_refusal import refusal
from models import project
from models.errors import FileFormatError
from models.stack import Stack
from models.weights import materialise

PROGRESS_DELAY_MS = 300
"""A read quicker than this shows no dialog: a flash of one would be noise."""


def is_onnx_file(path: str | Path) -> bool:
    """Whether `path` is read as an ONNX model (by its suffix) rather than as a project."""
    return Path(path).suffix.lower() == ".onnx"


def load_stack(path: str | Path) -> Stack:
    """A project file's stack, or an .onnx model's through the importer.

    Raises FileFormatError (with the file's name) for what the readers check; a bad file can
    still raise other errors (see gui.file_refusal)."""
    if is_onnx_file(path):
        try:
            # Imported here: onnx is slow to import and the app must start without it
            # (gui.onnx_warmup imports it earlier where it can, as the import freezes the UI).
            from engine.onnx.importer import import_model
        except ImportError as err:
            raise FileFormatError(f"cannot open {Path(path).name}: ONNX import is not available "
                                  f"({err})") from None
        return import_model(path)
    return project.load(path)


def read_model(path: Path) -> Stack:
    """The file's stack with every valid layer's weights present, as the Document holds it (the
    default weights of a large model take a while to draw: they are drawn here, off the UI)."""
    return materialise(load_stack(path))


@dataclass(frozen=True)
class Opened:
    """A finished read: the stack, or the one line why the file cannot be opened."""
    stack: Stack | None = None
    refusal: str | None = None


class _Relay(QObject):
    """Carries a read's end from its thread to the UI thread (a queued connection). Kept
    without a Qt parent, so a dropped read still emits on a live object."""
    done = Signal(object, object)  # (job token, Opened | the unexpected exception)


class FileOpener(QObject):
    """Reads files for `parent` (the window the progress dialog belongs to), one at a time.

    read_file: the reader run on the thread (read_model by default). `dialog` is the progress
    dialog while it is shown, else None; `busy` is true while a read is awaited.
    """

    def __init__(self, parent: QWidget, read_file: Callable[[Path], Stack] = read_model) -> None:
        super().__init__(parent)
        self._window = parent
        self.read_file = read_file
        self.progress_delay_ms = PROGRESS_DELAY_MS
        self.dialog: QProgressDialog | None = None
        self._relay = _Relay()
        self._relay.done.connect(self._finished)
        self._loop: QEventLoop | None = None
        self._job: object | None = None
        self._result: Opened | BaseException | None = None
        self._threads: list[threading.Thread] = []

    @property
    def busy(self) -> bool:
        return self._loop is not None

    def read(self, path: str | Path) -> Opened | None:
        """Read the file at `path`; None when cancelled. Raises RuntimeError when a read is
        already awaited, and re-raises whatever unexpected exception the reader raised."""
        if self._loop is not None:
            raise RuntimeError("a file is already being opened")
        path = Path(path)
        job = object()  # identifies this read's result; a cancelled one's arrives unclaimed
        self._job, self._result = job, None
        thread = threading.Thread(target=_work, args=(self.read_file, path, self._relay, job),
                                  name=f"open {path.name}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        show = QTimer(self, singleShot=True, interval=self.progress_delay_ms,
                      timeout=lambda: self._show_progress(path))
        self._loop = loop = QEventLoop(self)
        thread.start()
        show.start()
        try:
            loop.exec()
        finally:
            show.stop()
            show.deleteLater()
            self._close_progress()
            self._loop, self._job = None, None
            loop.deleteLater()
        result, self._result = self._result, None
        if isinstance(result, BaseException):
            raise result
        return result

    def cancel(self) -> None:
        """Stop waiting for the read under way (if any): read() returns None."""
        self._job = None
        if self._loop is not None:
            self._loop.quit()

    def wait(self, timeout_s: float = 30.0) -> bool:
        """Block until every read started, cancelled ones included, has ended (tests, shutdown);
        whether they all did within timeout_s."""
        end = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    # ---- UI thread ------------------------------------------------------------------------------
    def _finished(self, job: object, result: Opened | BaseException) -> None:
        if job is not self._job or self._loop is None:
            return  # a cancelled read: its stack or its error concerns no one now
        self._result = result
        self._loop.quit()

    def _show_progress(self, path: Path) -> None:
        dialog = QProgressDialog(f"Opening {path.name}…", "Cancel", 0, 0, self._window)
        dialog.setWindowTitle("Opening")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setAutoReset(False)
        dialog.setAutoClose(False)
        dialog.setMinimumDuration(0)
        dialog.canceled.connect(self.cancel)
        dialog.show()
        self.dialog = dialog

    def _close_progress(self) -> None:
        dialog, self.dialog = self.dialog, None
        if dialog is None:
            return
        dialog.canceled.disconnect(self.cancel)  # closing emits canceled: not a person's Cancel
        dialog.hide()
        dialog.deleteLater()


def _work(read_file: Callable[[Path], Stack], path: Path, relay: _Relay, job: object) -> None:
    """The thread: read, and send the stack, the refusal, or the unexpected exception."""
    result: Opened | BaseException
    try:
        result = Opened(stack=read_file(path))
    except Exception as err:  # noqa: BLE001 - sorted here, raised again on the UI thread if a bug
        line = refusal(path, err)
        result = Opened(refusal=line) if line is not None else err
    try:
        relay.done.emit(job, result)
    except RuntimeError:
        pass  # the relay is deleted only at interpreter shutdown: nobody is left to tell
