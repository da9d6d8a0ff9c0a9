"""Unexpected exceptions: logged, the open work saved for recovery, the person told, app kept alive.

`CrashReporter.install()` takes over sys.excepthook (which PySide6 calls for an exception escaping
a slot, on any thread) and threading.excepthook. On whatever thread it happens, the traceback is
appended at once to a size-capped log file; the report itself is queued to the UI thread, where
the window's unsaved changes are written to their recovery file (gui.autosave) and one box says
what happened, where the log is and what was saved. While that box is open, and for a quiet
period after it closes, further errors are logged and counted in the status bar instead of
opening a storm of boxes.

The log holds paths, the process id and the machine's details: it is readable by its owner only
(0600), in a folder only the owner can enter (gui.autosave.private_folder), whatever the umask.
"""
from __future__ import annotations

import datetime
import os
import platform
import stat
import sys
import threading
import time
import traceback
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Callable

from PySide6 import __version__ as PYSIDE_VERSION
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMessageBox

from gui.autosave import private_folder

if TYPE_CHECKING:
    from gui.main_window import MainWindow

MAX_LOG_BYTES = 1_000_000  # then the log moves to crash.log.1 (one older log is kept)
QUIET_S = 30.0  # after a box closes, errors only go to the log and the status bar for this long


class CrashReporter(QObject):
    """Reports unexpected exceptions for `window`, logging them to `log_path`.

    `show_report(text)` shows the box (tests replace it). `reported` counts the boxes shown,
    `unshown` the errors logged without one since the last box, and `log_failure` says why the
    last entry could not be written to the log (None when it was).
    """
    _caught = Signal(str)  # one line naming the exception; queued to the UI thread

    def __init__(self, window: MainWindow, log_path: Path, quiet_s: float = QUIET_S) -> None:
        super().__init__(window)
        self.window = window
        self.log_path = Path(log_path)
        self.quiet_s = quiet_s
        self.reported = 0
        self.unshown = 0
        self.log_failure: str | None = None
        self._log_lock = threading.Lock()
        self._showing = False
        self._quiet_until = 0.0
        self._previous: tuple[Callable[..., object], Callable[..., object]] | None = None
        # Queued even on the UI thread: the box opens from the event loop, not inside the slot
        # that failed (which may be half way through painting or an edit).
        self._caught.connect(self._report, Qt.ConnectionType.QueuedConnection)

    def install(self) -> None:
        """Become sys.excepthook and threading.excepthook (uninstall() puts the old ones back)."""
        self._previous = (sys.excepthook, threading.excepthook)
        sys.excepthook = self.handle
        threading.excepthook = self._handle_thread

    def uninstall(self) -> None:
        if self._previous is not None:
            sys.excepthook, threading.excepthook = self._previous
            self._previous = None

    def handle(self, exc_type: type[BaseException], exc: BaseException | None,
               tb: TracebackType | None) -> None:
        """The exception hook: any thread. Never raises."""
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        try:
            text = "".join(traceback.format_exception(exc_type, exc, tb))
            print(text, end="", file=sys.__stderr__)  # a terminal still shows it
            try:
                self._log(text)
                self.log_failure = None
            except OSError as err:
                self.log_failure = err.strerror or str(err)
            self._caught.emit(traceback.format_exception_only(exc_type, exc)[-1].strip())
        except Exception:  # noqa: BLE001 - a failing hook must not hide the first error
            sys.__excepthook__(exc_type, exc, tb)

    def show_report(self, text: str) -> None:
        """Show the report in a modal box (tests replace this)."""
        box = QMessageBox(QMessageBox.Icon.Critical, "Unexpected error", text,
                          QMessageBox.StandardButton.Ok, self.window)
        box.exec()

    # ---- any thread -----------------------------------------------------------------------------
    def _handle_thread(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return  # a thread's normal way out, silent by default too
        self.handle(args.exc_type, args.exc_value, args.exc_traceback)

    def _log(self, text: str) -> None:
        stamp = datetime.datetime.now().isoformat(sep=" ", timespec="seconds")
        entry = (f"=== {stamp}  pid {os.getpid()}  Python {platform.python_version()}  "
                 f"PySide6 {PYSIDE_VERSION}  {platform.platform()}\n{text}\n")
        with self._log_lock:
            private_folder(self.log_path.parent)
            if self.log_path.exists() and self.log_path.stat().st_size > MAX_LOG_BYTES:
                os.replace(self.log_path, self.log_path.with_name(self.log_path.name + ".1"))
            fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with open(fd, "a", encoding="utf-8") as log:
                if os.name == "posix" and stat.S_IMODE(os.fstat(fd).st_mode) != 0o600:
                    os.fchmod(fd, 0o600)  # a log an earlier version wrote
                log.write(entry)

    def _log_quietly(self, text: str) -> None:
        try:
            self._log(text)
        except OSError:
            pass  # already reported as log_failure, or the box says the log's place anyway

    # ---- UI thread ------------------------------------------------------------------------------
    def _report(self, what: str) -> None:
        if self._showing or time.monotonic() < self._quiet_until:
            self.unshown += 1
            self._count_in_status_bar()
            return
        text = self._report_text(what)
        self.unshown = 0
        self._showing = True
        try:
            self.show_report(text)
        except Exception:  # noqa: BLE001 - the box failing must not raise a new report
            self._log_quietly("the error report could not be shown:\n" + traceback.format_exc())
        finally:
            self._showing = False
            self._quiet_until = time.monotonic() + self.quiet_s
        self.reported += 1

    def _report_text(self, what: str) -> str:
        if self.log_failure is None:
            details = f"The details are in {self.log_path}."
        else:
            details = (f"The details could not be written to {self.log_path} "
                       f"({self.log_failure}); they were printed on the console.")
        return "\n\n".join([f"Something went wrong inside ConvScope ({what}). It is still running.",
                            details, self._recovery_save()])

    def _recovery_save(self) -> str:
        """Write the unsaved work to its recovery file now, and say what became of it."""
        try:
            saved = self.window.autosave.save_now()
        except Exception as err:  # noqa: BLE001 - the state may be broken; say so, keep going
            self._log_quietly("the recovery save failed:\n" + traceback.format_exc())
            return (f"Your unsaved changes could not be saved for recovery ({err}); use "
                    f"File > Save as to keep them.")
        if saved is None:
            return "There were no unsaved changes."
        return (f"Your unsaved changes were saved to {saved}; if ConvScope has to close, the "
                f"next start offers them back.")

    def _count_in_status_bar(self) -> None:
        self.window.statusBar().showMessage(
            f"{self.unshown} more unexpected error{'s' if self.unshown > 1 else ''} logged in "
            f"{self.log_path}")
