"""A real crash: a child process edits a project, waits for its recovery copy and is killed; the
next start offers that work back (only once its owner is gone) and restores it exactly."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gui.recovery import crashed_sessions, offer_recovery
from models import project
from models.presets import PRESETS

ROOT = Path(__file__).resolve().parents[2]
KILL = getattr(signal, "SIGKILL", signal.SIGTERM)

# argv: settings file, project to open, input image, where to save what was on screen.
# Edits the first layer's filters and kernels, waits for the recovery copy, saves the stack it
# shows for comparison, says so, and waits to be killed.
EDIT_AND_WAIT = """
import sys
import numpy as np
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
app = QApplication([])
from gui.main_window import MainWindow
from models import project
window = MainWindow(settings=QSettings(sys.argv[1], QSettings.Format.IniFormat), restore=False)
assert window.open_path(sys.argv[2]) and window.open_input(sys.argv[3])
window.autosave.debounce.setInterval(100)
window.document.set_field((0, None), "out_channels", 5)
shape = window.document.stack.layers[0].weights["W"].shape
kernels = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
window.document.set_weights(0, {"W": kernels}, "hand-made kernels")

def written(_path):
    project.save(window.document.stack, sys.argv[4])
    print("written", flush=True)

window.autosave.written.connect(written)
app.exec()
"""


def crash_after_an_edit(tmp_path: Path, settings) -> tuple[Path, Path, subprocess.Popen]:
    """Start the child; returns (the project it opened, the stack it showed, the live child)."""
    settings.sync()  # the child reads the app data folder from the file
    opened = tmp_path / "net.convscope"
    project.save(PRESETS["LeNet-5"].build(), opened)
    image = tmp_path / "digit.png"
    Image.new("L", (40, 30), 200).save(image)
    shown = tmp_path / "shown.convscope"
    child = subprocess.Popen([sys.executable, "-c", EDIT_AND_WAIT, settings.fileName(), str(opened),
                              str(image), str(shown)], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    line = child.stdout.readline()
    if line != "written\n":
        child.kill()
        pytest.fail(f"the child did not write its recovery copy: {child.communicate()[1]}")
    return opened, shown, child


def kill(child: subprocess.Popen) -> None:
    child.send_signal(KILL)
    child.communicate()


def test_a_killed_session_is_offered_once_its_owner_is_gone_and_restored_exactly(
        qtbot, window, settings, tmp_path, monkeypatch):
    folder = window.autosave.files.folder
    opened, shown, child = crash_after_an_edit(tmp_path, settings)
    try:
        assert crashed_sessions(folder) == []  # its owner still runs: not a crash
    finally:
        kill(child)
    offered = []
    monkeypatch.setattr(window, "ask_recover", lambda session: offered.append(session) or True)
    monkeypatch.setattr(window, "choose_save_path", lambda: pytest.fail("Save asked where"))

    assert offer_recovery(window)
    assert len(offered) == 1
    session = offered[0]
    assert (session.title, session.path, session.input_path.name) == ("net", opened, "digit.png")
    assert "net" in session.question() and str(opened) in session.question()
    expected = project.load(shown)
    restored = window.document.stack
    assert project.to_json(restored) == project.to_json(expected)
    for a, b in zip(restored.layers, expected.layers):
        assert all(np.array_equal(a.weights[k], b.weights[k]) for k in b.weights)
    assert window.document.modified and window.windowTitle() == "net[*] — ConvScope"
    assert window.isWindowModified()
    assert window.feature_view.input_name.startswith("digit.png")
    # The old session is gone; this window's own session holds the work now.
    assert [s.files for s in crashed_sessions(folder)] == []
    assert window.autosave.recovery_path is not None
    assert project.to_json(project.load(window.autosave.recovery_path)) == project.to_json(expected)

    assert window.save()  # to where the person was working, without asking
    assert project.to_json(project.load(opened)) == project.to_json(expected)
    assert sorted(p.name for p in folder.iterdir()) == []


def test_declining_deletes_the_copy_and_keeps_the_window_as_it_was(qtbot, window, settings,
                                                                   tmp_path, monkeypatch):
    folder = window.autosave.files.folder
    _opened, _shown, child = crash_after_an_edit(tmp_path, settings)
    kill(child)
    before = window.document.stack
    offered = []
    monkeypatch.setattr(window, "ask_recover", lambda session: offered.append(session) or False)
    assert not offer_recovery(window)
    assert len(offered) == 1
    assert window.document.stack is before and not window.document.modified
    assert sorted(p.name for p in folder.iterdir()) == []
    assert not offer_recovery(window) and len(offered) == 1  # asked once only


RUN_APP = """
import json, sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
app = QApplication([])
from gui.app import run_app
from gui.crash_report import CrashReporter
from gui.main_window import MainWindow
from models import project
MainWindow.ask_recover = lambda self, session: print("offered", session.title, flush=True) or True
CrashReporter.show_report = lambda self, text: print(json.dumps(text), flush=True)

def fail():
    raise RuntimeError("a bug in a slot")

def report():
    window = next(w for w in app.topLevelWidgets() if isinstance(w, MainWindow))
    project.save(window.document.stack, sys.argv[1])
    print(json.dumps({"title": window.windowTitle(), "modified": window.document.modified,
                      "path": str(window.document.path)}), flush=True)
    app.exit(0)

QTimer.singleShot(0, fail)
QTimer.singleShot(500, report)
sys.exit(run_app())
"""


def test_run_app_offers_the_work_of_a_killed_app_and_reports_errors(tmp_path):
    """Both ends through run_app, with the per-user folders of a fresh account in tmp_path: the
    second start recovers the first one's work, then a slot fails and is reported."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path / "home"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data")}
    crash = """
import os, signal, sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
app = QApplication([])
from gui.app import run_app
from gui.main_window import MainWindow
from models import project

def edit():
    window = next(w for w in app.topLevelWidgets() if isinstance(w, MainWindow))
    window.autosave.debounce.setInterval(100)
    window.document.set_field((0, None), "out_channels", 6)
    window.autosave.written.connect(lambda _path: (project.save(window.document.stack, sys.argv[1]),
                                                   os.kill(os.getpid(), %d)))

QTimer.singleShot(0, edit)
run_app()
""" % KILL
    shown = tmp_path / "shown.convscope"
    first = subprocess.run([sys.executable, "-c", crash, str(shown)], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120)
    assert first.returncode == -KILL, first.stderr
    data = tmp_path / "data" / "ConvScope" / "ConvScope"
    assert len(list((data / "recovery").glob("session-*.convscope"))) == 1

    restored = tmp_path / "restored.convscope"
    second = subprocess.run([sys.executable, "-c", RUN_APP, str(restored)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert second.stderr.count("Traceback") == 1  # the slot's, echoed; the app went on
    lines = second.stdout.splitlines()
    assert lines[0] == "offered demo"
    box, state = json.loads(lines[1]), json.loads(lines[2])
    assert state == {"title": "demo[*] — ConvScope", "modified": True, "path": "None"}
    assert project.to_json(project.load(restored)) == project.to_json(project.load(shown))

    log = data / "crash.log"
    assert "RuntimeError: a bug in a slot" in log.read_text()
    assert "RuntimeError: a bug in a slot" in box and str(log) in box
    [copy] = (data / "recovery").glob("session-*.convscope")  # the recovered work, kept again
    assert str(copy) in box
    assert project.to_json(project.load(copy)) == project.to_json(project.load(shown))
