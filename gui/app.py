"""Starting the desktop app: the QApplication, the theme, the main window, crash handling and
recovery of a crashed session's work, and screenshots."""
from __future__ import annotations

import gc
import sys

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from gui.autosave import app_data_folder
from gui.crash_report import CrashReporter
from gui.main_window import APP_NAME, ORGANISATION, MainWindow
from gui.onnx_warmup import warm
from gui.open_worker import is_onnx_file
from gui.recovery import offer_recovery
from gui.theme import THEMES, apply_theme

SCREENSHOT_DELAY_MS = 300  # lets the window finish its layout and paint once the maps are drawn
SCREENSHOT_TIMEOUT_MS = 20_000  # grab anyway if the first feature maps never arrive
USER_ERROR = 2  # the command line's status for a mistake the person can fix (DESIGN.md)
FAILED = 1  # the screenshot could not be written, or opening the file met a bug


def run_app(path: str | None = None, screenshot: str | None = None) -> int:
    """Run ConvScope on the demo model, or on `path` (a project or an .onnx file).

    Unsaved work left by a session that crashed is offered back first; an unexpected exception
    from then on is logged and reported while the app keeps running (gui.crash_report).
    With `screenshot`, save the laid-out window to that PNG and exit instead of waiting for the
    person (saved window layout is not applied and nothing is offered, so screenshots are
    reproducible); a `path` that cannot be opened then prints its one line on stderr instead of
    showing a box, as there is no person to close it. Returns the exit status: 0; USER_ERROR (2)
    when the file cannot be opened; 1 when the screenshot cannot be written or opening the file
    met a bug (logged in the crash log).
    """
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APP_NAME)
    settings = QSettings(ORGANISATION, APP_NAME)
    theme = settings.value("theme", "dark")
    apply_theme(theme if theme in THEMES and not screenshot else "dark")
    if path and is_onnx_file(path):
        warm()  # now, while no window shows, not on the read's thread (see gui.onnx_warmup)
    window = MainWindow(settings=settings, restore=screenshot is None)
    freeze_startup_heap()
    reporter = CrashReporter(window, app_data_folder(settings) / "crash.log")
    reporter.install()
    try:
        return _run_window(app, window, reporter, path, screenshot)
    finally:
        reporter.uninstall()


def freeze_startup_heap() -> None:
    """Keep what exists once the window is built (modules, Qt's wrappers, the window: alive as
    long as the app) out of the cycle collector's full passes, which otherwise took 25 ms
    (90,000 objects with onnx imported) of whichever thread set one off, the UI thread's too."""
    gc.freeze()


def _run_window(app: QApplication, window: MainWindow, reporter: CrashReporter,
                path: str | None, screenshot: str | None) -> int:
    if screenshot is None:
        offer_recovery(window)
    window.show()
    window.stack_view.setFocus()  # Del, Ctrl+D and F2 act on the cards from the start
    if screenshot is None:
        if path:
            # From the event loop, as File > Open runs it: a bug while opening reaches the crash
            # reporter the way an exception in any slot does, and the window is already up.
            QTimer.singleShot(0, lambda: window.open_path(path))
        return app.exec()
    window.unattended = True
    if path:
        try:
            opened = window.open_path(path)
        except Exception:  # noqa: BLE001 - a bug: logged to the crash log, no box to wait on
            reporter.handle(*sys.exc_info())
            return FAILED
        if not opened:
            return USER_ERROR
    grabbed: list[bool] = []  # the drawn maps and the timeout fallback may both call grab()

    def grab() -> None:
        if grabbed:
            return
        grabbed.append(True)
        saved = window.grab().save(screenshot)
        if not saved:
            print(f"error: cannot write the screenshot {screenshot}", file=sys.stderr)
        # exit(), not quit(): quit() closes the window first, which would save its layout.
        app.exit(0 if saved else FAILED)

    # Wait for the first drawn feature maps (computed on a worker), not a fixed delay.
    drawn = QTimer(singleShot=True, interval=SCREENSHOT_DELAY_MS, timeout=grab)
    window.feature_view.drawn.connect(drawn.start)
    fallback = QTimer(singleShot=True, interval=SCREENSHOT_TIMEOUT_MS, timeout=grab)
    fallback.start()
    return app.exec()
