"""Fixtures for driving the real main window offscreen, with settings kept in tmp_path."""
from __future__ import annotations

import gc

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from gui.autosave import DATA_FOLDER_KEY
from gui.main_window import MainWindow
from gui.theme import apply_theme


@pytest.fixture(autouse=True)
def collect_closed_windows():
    """Delete each test's closed windows between tests. Left to Python's cycle collector (their
    slots hold them in cycles), a window can be deleted in the middle of a later Qt call that
    holds Qt's connection lock, which the window's destructor then waits on forever."""
    yield
    gc.collect()


@pytest.fixture
def settings(tmp_path) -> QSettings:
    """Settings in tmp_path, with the app data (recovery files, crash log) there too."""
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue(DATA_FOLDER_KEY, str(tmp_path / "app-data"))
    return settings


@pytest.fixture
def window(qtbot, settings, monkeypatch) -> MainWindow:
    """The main window on the demo model. Prompts answer Discard; error boxes are recorded in
    `window.errors` instead of blocking."""
    apply_theme("dark")
    win = MainWindow(settings=settings, restore=False)
    win.errors = []
    monkeypatch.setattr(win, "ask_save_changes", lambda: QMessageBox.StandardButton.Discard)
    monkeypatch.setattr(win, "show_error", lambda title, message: win.errors.append(message))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    return win
