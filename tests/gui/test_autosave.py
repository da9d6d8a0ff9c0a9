"""Autosave in one process: when the recovery copy is written, what it holds, when it goes, and
what closing with unsaved changes does to it."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QMessageBox

from gui.autosave import Autosaver, SessionFiles, Snapshot
from gui.document import Document
from gui.main_window import DEFAULT_PRESET, MainWindow
from gui.recovery import crashed_sessions
from models import project
from models.layers import Conv
from models.presets import PRESETS
from models.stack import InputSpec, Stack
from models.weights import materialise

Button = QMessageBox.StandardButton


def assert_same_stack(a: Stack, b: Stack) -> None:
    assert project.to_json(a) == project.to_json(b)  # input, seed, layer names and specs, weights
    for x, y in zip(a.layers, b.layers):
        assert x.weights.keys() == y.weights.keys()
        assert all(np.array_equal(x.weights[k], y.weights[k]) for k in x.weights)


def edit_out_channels(window: MainWindow, value: int) -> None:
    window.stack_view.select(0)
    window.property_editor.editors["out_channels"].box.setValue(value)


def session_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("session-*")) if folder.is_dir() else []


def test_an_edit_burst_is_written_once_2_s_after_its_last_edit(qtbot, window, tmp_path):
    saver = window.autosave
    assert saver.files.folder == tmp_path / "app-data" / "recovery"
    written: list[float] = []
    saver.written.connect(lambda _path: written.append(time.monotonic()))
    for value in (5, 6, 7, 8):  # a burst: each edit well within the debounce of the one before
        qtbot.wait(300)
        last_edit = time.monotonic()  # just before: the debounce restarts during the edit
        edit_out_channels(window, value)
    assert saver.recovery_path is None and not written
    qtbot.waitUntil(lambda: bool(written), timeout=5000)
    assert written[0] - last_edit >= 1.9  # 2 s, less the 5 % a coarse timer may fire early
    qtbot.wait(500)
    assert len(written) == 1

    assert_same_stack(project.load(saver.recovery_path), window.document.stack)
    description = json.loads(saver.files.description.read_text())
    assert description["title"] == "demo" and description["path"] is None
    assert description["input"] is None  # the built-in sample


def test_the_copy_records_path_title_and_input_and_goes_on_save(qtbot, window, tmp_path):
    path = tmp_path / "net.convscope"
    project.save(PRESETS["LeNet-5"].build(), path)
    image = tmp_path / "digit.png"
    Image.new("L", (40, 30), 128).save(image)
    assert window.open_path(path) and window.open_input(image)
    edit_out_channels(window, 7)
    with qtbot.waitSignal(window.autosave.written, timeout=5000):
        pass
    description = json.loads(window.autosave.files.description.read_text())
    assert (description["title"], description["path"], description["input"]) == \
        ("net", str(path), str(image))
    assert window.save()
    assert window.autosave.recovery_path is None
    assert session_files(window.autosave.files.folder) == []


@pytest.mark.parametrize("how", ["undo to the saved state", "discard and start a new one"])
def test_the_copy_goes_when_nothing_unsaved_is_left(qtbot, window, how):
    edit_out_channels(window, 5)
    with qtbot.waitSignal(window.autosave.written, timeout=5000):
        pass
    assert session_files(window.autosave.files.folder)
    if how == "undo to the saved state":
        window.document.undo_stack.undo()
    else:
        window.new_document()  # the fixture answers Discard
    assert not window.document.modified
    assert session_files(window.autosave.files.folder) == []


def test_a_tick_writes_unsaved_changes_again_only_when_they_changed(qtbot, tmp_path):
    document = Document(PRESETS[DEFAULT_PRESET].build())
    saver = Autosaver(document, tmp_path / "recovery", lambda: None, debounce_ms=3_600_000,
                      interval_ms=200)
    written: list[Path] = []
    saver.written.connect(written.append)
    assert saver.ticker.isActive()
    qtbot.wait(500)
    assert not written  # nothing unsaved: nothing to write
    document.set_field((0, None), "out_channels", 5)
    qtbot.waitUntil(lambda: len(written) == 1, timeout=3000)
    qtbot.wait(600)
    assert len(written) == 1  # unchanged since: not written again
    document.set_field((0, None), "out_channels", 6)
    qtbot.waitUntil(lambda: len(written) == 2, timeout=3000)
    assert_same_stack(project.load(written[-1]), document.stack)
    saver.close()
    assert session_files(tmp_path / "recovery") == []


def test_default_cadence_is_every_minute_and_2_s_after_edits(window):
    assert window.autosave.ticker.interval() == 60_000 and window.autosave.ticker.isActive()
    assert window.autosave.debounce.interval() == 2_000


def test_two_windows_keep_separate_copies_and_neither_is_offered_while_open(qtbot, window,
                                                                            settings):
    other = MainWindow(settings=settings, restore=False)
    other.ask_save_changes = lambda: Button.Discard
    qtbot.addWidget(other)
    edit_out_channels(window, 5)
    edit_out_channels(other, 9)
    for each in (window, other):
        if each.autosave.recovery_path is None:
            with qtbot.waitSignal(each.autosave.written, timeout=5000):
                pass
    mine, theirs = window.autosave.recovery_path, other.autosave.recovery_path
    assert mine != theirs
    assert_same_stack(project.load(mine), window.document.stack)
    assert_same_stack(project.load(theirs), other.document.stack)
    assert crashed_sessions(window.autosave.files.folder) == []  # both owners are alive
    assert other.close()
    assert not theirs.exists() and mine.exists()


def test_closing_with_unsaved_changes_asks_and_cancel_keeps_everything(qtbot, window, monkeypatch):
    edit_out_channels(window, 5)
    with qtbot.waitSignal(window.autosave.written, timeout=5000):
        pass
    asked: list[bool] = []
    monkeypatch.setattr(window, "ask_save_changes", lambda: asked.append(True) or Button.Cancel)
    assert not window.close()
    assert asked == [True] and window.isVisible() and window.document.modified
    assert window.autosave.recovery_path.exists()  # still unsaved, still protected


def test_closing_and_discarding_removes_the_copy(qtbot, window, monkeypatch):
    edit_out_channels(window, 5)
    with qtbot.waitSignal(window.autosave.written, timeout=5000):
        pass
    asked: list[bool] = []
    monkeypatch.setattr(window, "ask_save_changes", lambda: asked.append(True) or Button.Discard)
    assert window.close()
    assert asked == [True] and not window.isVisible()
    assert session_files(window.autosave.files.folder) == []


def test_closing_and_saving_writes_the_project_and_removes_the_copy(qtbot, window, monkeypatch,
                                                                    tmp_path):
    edit_out_channels(window, 5)
    target = tmp_path / "kept.convscope"
    monkeypatch.setattr(window, "ask_save_changes", lambda: Button.Save)
    monkeypatch.setattr(window, "choose_save_path", lambda: str(target))
    stack = window.document.stack
    assert window.close()
    assert_same_stack(project.load(target), stack)
    assert session_files(window.autosave.files.folder) == []


def test_closing_unmodified_does_not_ask(qtbot, window, monkeypatch):
    monkeypatch.setattr(window, "ask_save_changes", lambda: pytest.fail("asked"))
    assert window.close()


def test_a_50_mb_project_is_written_while_the_ui_keeps_running(qtbot, tmp_path):
    stack = Stack(InputSpec(3, (4, 4)))
    for channels in (512, 1024, 1024):
        stack = stack.appended(Conv(out_channels=channels))
    stack = materialise(stack)
    assert stack.weight_bytes >= 50e6
    document = Document(stack)
    saver = Autosaver(document, tmp_path / "recovery", lambda: None, debounce_ms=0)
    beats: list[float] = []
    heartbeat = QTimer(interval=5, timeout=lambda: beats.append(time.perf_counter()))
    heartbeat.start()
    first = document.stack.layers[0].weights["W"]
    document.set_weights(0, {"W": np.full_like(first, 0.5)}, "test")
    start = time.perf_counter()
    with qtbot.waitSignal(saver.written, timeout=60_000):
        pass
    wall = time.perf_counter() - start
    heartbeat.stop()
    during = [b for b in beats if b >= start]
    gaps = np.diff([start, *during]) if during else np.array([wall])
    print(f"50 MB autosave: {wall:.2f} s on the pool, {len(during)} UI heartbeats meanwhile, "
          f"longest UI pause {gaps.max() * 1000:.0f} ms")
    assert len(during) >= 5  # the UI kept running its event loop while the copy was written
    assert_same_stack(project.load(saver.recovery_path), document.stack)
    saver.close()


def test_removing_a_session_also_removes_what_a_killed_write_left(tmp_path):
    files = SessionFiles(tmp_path, "123-abc")
    assert SessionFiles.all_in(tmp_path / "missing") == []
    files.remove()  # nothing there yet: nothing to do
    files.write(Snapshot(PRESETS[DEFAULT_PRESET].build(), "demo", None, None))
    assert SessionFiles.all_in(tmp_path) == [files]
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    (tmp_path / f".{files.project.name}.{int(gone.stdout)}.x1y2z3.tmp").write_bytes(b"{")
    files.remove()
    assert SessionFiles.all_in(tmp_path) == [] and list(tmp_path.iterdir()) == []
