"""onnx is imported where its 0.6 s of held GIL freezes nothing the person sees (gui.onnx_warmup):
while the Open dialog is up, on a thread, with the dialog's event loop running on; and before
the window is built when the app starts on an .onnx file.

Each runs in a fresh interpreter, the only place where onnx is not imported yet.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from engine.onnx.export import save_model
from models.presets import PRESETS

ROOT = Path(__file__).resolve().parents[2]

DIALOG = r"""
import sys, time
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QSpinBox
app = QApplication([])
from gui.main_window import MainWindow
from gui.onnx_warmup import is_warm
window = MainWindow(settings=QSettings(sys.argv[1], QSettings.Format.IniFormat), restore=False)
window.show()
app.processEvents()
assert "onnx" not in sys.modules
UP_MS, TICK_MS = 1500, 5
counter = QSpinBox()
counter.setRange(0, 10**6)
# C++ to C++ connections: the ticks count the dialog's event loop turns without any Python.
ticker = QTimer(interval=TICK_MS)
ticker.timeout.connect(counter.stepUp)


def choose_open_path():
    dialog = QFileDialog(window, "Open", sys.argv[2])
    dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
    closer = QTimer(dialog, singleShot=True, interval=UP_MS)
    closer.timeout.connect(dialog.reject)  # a person who looked, then cancelled
    closer.start()
    ticker.start()
    dialog.exec()
    ticker.stop()
    return ""


window.choose_open_path = choose_open_path
start = time.perf_counter()
window.open_dialog()
expected = (time.perf_counter() - start) * 1e3 / TICK_MS
end = time.monotonic() + 20
while not is_warm() and time.monotonic() < end:
    time.sleep(0.05)
print(is_warm(), counter.value() / expected)
"""

START = r"""
import sys
import gui.app
from gui.onnx_warmup import is_warm
warm_when_built = []


class Window(gui.app.MainWindow):
    def __init__(self, *args, **kwargs):
        warm_when_built.append(is_warm())
        super().__init__(*args, **kwargs)


gui.app.MainWindow = Window
status = gui.app.run_app(path=sys.argv[1], screenshot=sys.argv[2])
print(status, warm_when_built)
"""


def run(tmp_path: Path, code: str, *args: str) -> str:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_onnx_imports_while_the_open_dialog_is_up_and_the_dialog_runs_on(tmp_path):
    warm, ticks = run(tmp_path, DIALOG, str(tmp_path / "settings.ini"), str(tmp_path)).split()
    assert warm == "True"
    # Imported on the UI thread (or with a window slot waiting on the GIL), the dialog's loop
    # would stop for the import's 0.6 s or more, a third or more of its 1.5 s.
    assert float(ticks) > 0.8


def test_starting_on_an_onnx_file_imports_onnx_before_the_window_is_built(tmp_path):
    model = tmp_path / "lenet.onnx"
    save_model(PRESETS["LeNet-5"].build(), model)
    assert run(tmp_path, START, str(model), str(tmp_path / "shot.png")) == "0 [True]"
    assert run(tmp_path, START, "", str(tmp_path / "shot.png")) == "0 [False]"
