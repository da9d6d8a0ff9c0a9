"""Unexpected exceptions in the running app: logged with their traceback, the unsaved work saved
for recovery, one box saying so, and the window still working afterwards."""
from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, QTimer, Signal

from gui import crash_report
from gui.crash_report import CrashReporter
from models import project


class Trigger(QObject):
    fired = Signal()


@pytest.fixture
def reporter(window, tmp_path):
    """A reporter installed on the window, whose boxes are recorded in `reporter.boxes`."""
    reporter = CrashReporter(window, tmp_path / "logs" / "crash.log")
    reporter.boxes = []
    reporter.show_report = lambda text: reporter.boxes.append(
        (text, threading.current_thread() is threading.main_thread()))
    reporter.install()
    yield reporter
    reporter.uninstall()


def edit(window, value: int) -> None:
    window.stack_view.select(0)
    window.property_editor.editors["out_channels"].box.setValue(value)


def test_an_exception_in_a_slot_is_logged_saved_and_reported_and_the_app_goes_on(
        qtbot, window, reporter):
    edit(window, 5)
    QTimer.singleShot(0, lambda: 1 / 0)
    qtbot.waitUntil(lambda: bool(reporter.boxes), timeout=3000)

    log = reporter.log_path.read_text()
    assert "Traceback (most recent call last)" in log and "ZeroDivisionError" in log
    assert log.startswith("=== ") and "pid" in log
    text, on_ui_thread = reporter.boxes[0]
    assert on_ui_thread
    assert "ZeroDivisionError: division by zero" in text
    assert str(reporter.log_path) in text
    saved = window.autosave.recovery_path
    assert saved is not None and str(saved) in text
    assert project.to_json(project.load(saved)) == project.to_json(window.document.stack)

    assert window.isVisible()
    edit(window, 7)  # the window still edits and shows the result
    assert window.document.stack.layers[0].spec.out_channels == 7
    assert window.stack_view.card(0).shape_text.startswith("(1, 7,")


def test_with_nothing_unsaved_the_box_says_so(qtbot, window, reporter):
    trigger = Trigger()
    trigger.fired.connect(lambda: {}["missing"])
    trigger.fired.emit()
    qtbot.waitUntil(lambda: bool(reporter.boxes), timeout=3000)
    assert "KeyError" in reporter.boxes[0][0]
    assert "There were no unsaved changes." in reporter.boxes[0][0]
    assert window.autosave.recovery_path is None


def test_a_burst_of_errors_opens_one_box_and_counts_the_rest(qtbot, window, reporter):
    reporter.quiet_s = 0.5

    def slow_box(text: str) -> None:
        reporter.boxes.append((text, True))
        qtbot.wait(300)  # a modal box runs the event loop: the other errors arrive meanwhile

    reporter.show_report = slow_box
    for _ in range(5):
        QTimer.singleShot(0, lambda: [][1])
    qtbot.waitUntil(lambda: reporter.unshown == 4, timeout=3000)
    assert len(reporter.boxes) == 1
    assert window.statusBar().currentMessage() == f"4 more unexpected errors logged in " \
                                                  f"{reporter.log_path}"
    assert reporter.log_path.read_text().count("IndexError: list index out of range") == 5
    qtbot.wait(600)  # after the quiet period, the next error has its own box
    QTimer.singleShot(0, lambda: [][1])
    qtbot.waitUntil(lambda: len(reporter.boxes) == 2, timeout=3000)


def test_an_exception_on_another_thread_is_reported_on_the_ui_thread(qtbot, window, reporter):
    worker = threading.Thread(target=lambda: int("not a number"))
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: bool(reporter.boxes), timeout=3000)
    text, on_ui_thread = reporter.boxes[0]
    assert on_ui_thread and "ValueError" in text
    assert "ValueError" in reporter.log_path.read_text()


def test_a_failing_box_is_logged_and_does_not_raise(qtbot, window, reporter):
    def broken_box(text: str) -> None:
        raise RuntimeError("the box broke")

    reporter.show_report = broken_box
    QTimer.singleShot(0, lambda: 1 / 0)
    qtbot.waitUntil(lambda: reporter.reported == 1, timeout=3000)
    log = reporter.log_path.read_text()
    assert "the error report could not be shown" in log and "the box broke" in log
    assert window.isVisible()


def test_a_log_that_cannot_be_written_is_named_in_the_box(qtbot, window, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log's folder should be")
    reporter = CrashReporter(window, blocker / "crash.log")
    boxes: list[str] = []
    reporter.show_report = boxes.append
    reporter.install()
    try:
        QTimer.singleShot(0, lambda: 1 / 0)
        qtbot.waitUntil(lambda: bool(boxes), timeout=3000)
    finally:
        reporter.uninstall()
    assert "could not be written" in boxes[0] and "printed on the console" in boxes[0]


def test_the_log_is_capped(qtbot, window, reporter, monkeypatch):
    monkeypatch.setattr(crash_report, "MAX_LOG_BYTES", 1000)
    reporter.log_path.parent.mkdir(parents=True)
    reporter.log_path.write_text("old entry\n" * 200)
    QTimer.singleShot(0, lambda: 1 / 0)
    qtbot.waitUntil(lambda: bool(reporter.boxes), timeout=3000)
    older = Path(str(reporter.log_path) + ".1")
    assert older.read_text().startswith("old entry")
    assert "ZeroDivisionError" in reporter.log_path.read_text()
    assert "old entry" not in reporter.log_path.read_text()


def test_uninstall_puts_the_previous_hooks_back(window, tmp_path):
    before = (sys.excepthook, threading.excepthook)
    reporter = CrashReporter(window, tmp_path / "crash.log")
    reporter.install()
    assert sys.excepthook == reporter.handle
    reporter.uninstall()
    assert (sys.excepthook, threading.excepthook) == before
