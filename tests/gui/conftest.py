"""Fixtures for driving the real main window offscreen, with settings kept in tmp_path."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from gui.main_window import MainWindow
from gui.theme import apply_theme


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


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
