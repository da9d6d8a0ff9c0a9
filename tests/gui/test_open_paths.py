"""Every way a file comes into the window reaches the same clean refusal: File > Open, Open
recent, drag and drop, the start-up argument (`convscope open FILE`, with and without
--screenshot), and Load W. A bad file gives one "Cannot open file" line naming it, no crash box,
no crash log, and the open project stays as it was, whichever reader or library refused it
(a ConfigError, or a RecursionError, an OSError, a MemoryError or onnx's own errors)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from gui.file_refusal import refusal
from models import project
from models.presets import PRESETS

ROOT = Path(__file__).resolve().parents[2]
NESTING = 300  # residual blocks inside each other: deeper than Python's recursion allows


def _onnx(path: Path, nodes: list, initializers: list, shape: list[int]) -> None:
    graph = helper.make_graph(nodes, "bad", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, shape)], [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                                          None)], initializers)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def write_bad_files(folder: Path) -> list[Path]:
    """Files that cannot open, each refused by a different part: the project reader's JSON check,
    Python's recursion limit, protobuf's decoder, and the importer's rules."""
    broken = folder / "broken.convscope"
    broken.write_text('{"format": "convscope-project", "version": 2, "layers": ')
    spec: dict = {"type": "ReLU"}
    for _ in range(NESTING):
        spec = {"type": "Residual", "body": [spec], "shortcut": "identity"}
    deep = folder / "deep.convscope"
    deep.write_text(json.dumps({"format": "convscope-project", "version": 2,
                                "input": {"channels": 1, "spatial": [8, 8], "batch": 1},
                                "layers": [{"name": "deep", "spec": spec}], "weights": {}}))
    garbage = folder / "garbage.onnx"
    garbage.write_bytes(b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01not a protobuf")
    scalar_w = folder / "scalar_w.onnx"
    _onnx(scalar_w, [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")],
          [helper.make_tensor("w", TensorProto.FLOAT, [], [1.0])], [1, 1, 8, 8])
    no_kernel = folder / "pool_no_kernel.onnx"
    _onnx(no_kernel, [helper.make_node("MaxPool", ["x"], ["y"], name="pool")], [], [1, 1, 8, 8])
    return [broken, deep, garbage, scalar_w, no_kernel]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> list[Path]:
    return write_bad_files(tmp_path_factory.mktemp("bad"))


@pytest.fixture
def lenet_window(window, tmp_path):
    """The window on a saved LeNet-5 with an unsaved edit; error boxes recorded with their
    titles in `window.boxes`."""
    path = tmp_path / "lenet.convscope"
    project.save(PRESETS["LeNet-5"].build(), path)
    assert window.open_path(path)
    window.document.set_field((0, None), "out_channels", 5)
    window.boxes = []
    window.show_error = lambda title, message: window.boxes.append((title, message))
    return window


def assert_refused_cleanly(window, bad: Path, before: tuple) -> None:
    """One "Cannot open file" box naming the file on one line, and nothing else changed."""
    assert len(window.boxes) == 1, window.boxes
    title, message = window.boxes.pop()
    assert title == "Cannot open file"
    assert bad.name in message and "\n" not in message and "Traceback" not in message
    assert (window.document.stack, window.document.path, window.document.modified,
            window.document.undo_stack.count()) == before


def state(window) -> tuple:
    document = window.document
    return document.stack, document.path, document.modified, document.undo_stack.count()


def test_file_open_refuses_each_bad_file_cleanly(lenet_window, bad_files, monkeypatch):
    window = lenet_window
    before = state(window)
    for bad in bad_files:
        monkeypatch.setattr(window, "choose_open_path", lambda b=bad: str(b))
        window.open_dialog()
        assert_refused_cleanly(window, bad, before)


def test_open_recent_refuses_each_bad_file_cleanly(lenet_window, bad_files):
    window = lenet_window
    before = state(window)
    for bad in bad_files:
        window._add_recent(bad)
        window._fill_recent_menu()
        action = next(a for a in window.recent_menu.actions() if a.text() == bad.name)
        action.trigger()
        assert_refused_cleanly(window, bad, before)


def drop(window, path: Path) -> bool:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    if not enter.isAccepted():
        return False
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, event)
    return event.isAccepted()


def test_a_dropped_bad_file_is_refused_cleanly(lenet_window, bad_files):
    window = lenet_window
    before = state(window)
    for bad in bad_files:
        assert drop(window, bad)
        assert_refused_cleanly(window, bad, before)


def test_load_w_of_a_damaged_npy_shows_one_clean_line(qtbot, window, tmp_path, monkeypatch):
    """Load W reports through the window's error sink like the other ways in."""
    boxes = []
    monkeypatch.setattr(window, "show_error", lambda title, message: boxes.append((title, message)))
    window.kernels_dock.raise_()
    window.stack_view.select(0)
    truncated = tmp_path / "truncated.npy"
    good = np.ones((8, 3, 3, 3), np.float32)
    np.save(truncated, good)
    truncated.write_bytes(truncated.read_bytes()[:-40])
    text = tmp_path / "text.npy"
    text.write_text("these are not weights")
    before = window.document.stack
    for bad in (truncated, text):
        monkeypatch.setattr(window.kernel_view, "choose_npy_path", lambda b=bad: str(b))
        window.kernel_view.load_action.trigger()
        assert len(boxes) == 1, boxes
        title, message = boxes.pop()
        assert title == "Cannot load weights" and bad.name in message and "\n" not in message
        assert window.document.stack is before


# ---- the start-up argument, in a real process ------------------------------------------------

def app_env(tmp_path: Path) -> dict[str, str]:
    """A fresh account's folders in tmp_path, so settings and the crash log stay there."""
    return {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path / "home"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data")}


def crash_log(tmp_path: Path) -> Path:
    return tmp_path / "data" / "ConvScope" / "ConvScope" / "crash.log"


# run_app as `convscope open FILE` runs it, with the error box printed instead of waiting for a
# person to close it; the app then quits.
START_UP = """
import json, sys
from PySide6.QtWidgets import QApplication
app = QApplication([])
from gui.app import run_app
from gui.main_window import MainWindow

def box(self, title, message):
    print(json.dumps([title, message, self.document.display_name]), flush=True)
    app.exit(0)

MainWindow.show_error = box
sys.exit(run_app(sys.argv[1]))
"""


def test_the_start_up_argument_refuses_a_bad_file_with_the_same_box(tmp_path, bad_files):
    for bad in (bad_files[1], bad_files[2]):  # a RecursionError and a protobuf DecodeError
        result = subprocess.run([sys.executable, "-c", START_UP, str(bad)], cwd=ROOT,
                                env=app_env(tmp_path), capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        [line] = result.stdout.splitlines()
        title, message, shown = json.loads(line)
        assert title == "Cannot open file" and bad.name in message
        assert shown == "demo"  # the window stays on what it had
        assert not crash_log(tmp_path).exists()


def test_screenshot_of_a_bad_file_prints_one_line_and_exits_2(tmp_path, bad_files):
    """No person is there to close a box: the line goes to stderr and the status is the CLI's
    for a user's mistake, without waiting (the timeout would fail the test)."""
    for bad in bad_files:
        shot = tmp_path / f"{bad.stem}.png"
        result = subprocess.run([sys.executable, "main.py", "open", str(bad), "--screenshot",
                                 str(shot)], cwd=ROOT, env=app_env(tmp_path), capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 2, (bad.name, result.stderr)
        errors = [line for line in result.stderr.splitlines()
                  if line.startswith("convscope: error:")]
        assert len(errors) == 1 and bad.name in errors[0], result.stderr
        assert "Traceback" not in result.stderr
        assert not shot.exists()
        assert not crash_log(tmp_path).exists()


# The same start-up, with a bug planted in the project reader (a KeyError no file excuses).
START_UP_WITH_A_BUG = """
import json, sys
import models.project
from PySide6.QtWidgets import QApplication
app = QApplication([])
from gui.app import run_app
from gui.crash_report import CrashReporter
from gui.main_window import MainWindow

def buggy_load(path):
    return {}["a key the reader forgot"]

def report(self, text):
    print(json.dumps([text, self.window.document.display_name]), flush=True)
    app.exit(0)

models.project.load = buggy_load
MainWindow.show_error = lambda self, title, message: print("box", title, message, flush=True)
CrashReporter.show_report = report
sys.exit(run_app(*sys.argv[1:]))
"""


def test_a_bug_while_opening_at_start_up_reaches_the_crash_reporter(tmp_path):
    path = tmp_path / "lenet.convscope"
    project.save(PRESETS["LeNet-5"].build(), path)
    result = subprocess.run([sys.executable, "-c", START_UP_WITH_A_BUG, str(path)], cwd=ROOT,
                            env=app_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    text, shown = json.loads(line)
    assert "Something went wrong inside ConvScope" in text and "KeyError" in text
    assert shown == "demo"
    assert "a key the reader forgot" in crash_log(tmp_path).read_text()


def test_a_bug_while_opening_for_a_screenshot_is_logged_and_exits_1(tmp_path):
    path = tmp_path / "lenet.convscope"
    project.save(PRESETS["LeNet-5"].build(), path)
    shot = tmp_path / "shot.png"
    result = subprocess.run([sys.executable, "-c", START_UP_WITH_A_BUG, str(path), str(shot)],
                            cwd=ROOT, env=app_env(tmp_path), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""  # neither a refusal nor a box waiting for a person
    assert "a key the reader forgot" in crash_log(tmp_path).read_text()
    assert not shot.exists()


# ---- the one rule: which errors are the file's ---------------------------------------------------

def test_refusal_names_the_file_for_what_a_bad_file_causes_and_not_for_bugs(tmp_path):
    """Real exceptions of each class, raised where they would be: by Python, by protobuf, by
    the onnx checker, by the operating system, by NumPy, by a library's parser."""
    path = tmp_path / "model\u202eeno.onnx"  # a right-to-left override in the name

    def recurse(depth: int) -> int:
        return recurse(depth + 1) + 1
    raised: list[BaseException] = []
    for attempt in (lambda: recurse(0),
                    lambda: onnx.load_from_string(b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
                    lambda: onnx.checker.check_model(helper.make_model(helper.make_graph(
                        [helper.make_node("Conv", ["x"], ["y"])], "g", [], []))),
                    lambda: open(tmp_path / "missing.onnx", "rb"),
                    lambda: np.empty(2**47, np.float32),  # 512 TiB: more than any address space
                    lambda: json.loads('{"layers": ')):
        with pytest.raises(Exception) as caught:
            attempt()
        raised.append(caught.value)
    for err in raised:
        line = refusal(path, err)
        assert line is not None, repr(err)
        assert "\u202e" not in line and "\\u202e" in line and "\n" not in line
        assert "model" in line and "eno.onnx" in line
    assert "missing.onnx" in refusal(path, raised[3])
    assert len(refusal(tmp_path / ("n" * 5000 + ".onnx"), MemoryError())) <= 400


def test_refusal_leaves_bugs_to_the_crash_reporter(tmp_path):
    """Exceptions no file content excuses stay bugs: None, so the caller raises them again."""
    path = tmp_path / "model.onnx"
    for attempt in (lambda: None + 1, lambda: {}["layers"], lambda: [].pop(),
                    lambda: object().missing):
        with pytest.raises(Exception) as caught:
            attempt()
        assert refusal(path, caught.value) is None, repr(caught.value)
    assert refusal(path, RuntimeError("a bug")) is None
