"""Opening a file runs on a worker: the window keeps processing events during a long import, a
progress dialog offers Cancel, Cancel keeps the document, and a bug while reading still reaches
the crash reporter (raised on the UI thread), never a half-opened window."""
from __future__ import annotations

import gc
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QPushButton

from gui.app import freeze_startup_heap
from gui.open_worker import FileOpener
from models import project
from models.presets import PRESETS
from tests.gui.test_feature_maps import wait_drawn

CONVS = 1500  # a long chain: its import keeps a worker busy for a good part of a second
CHANNELS = 32
# The longest the UI thread may go without running its timer. Not 0: the reading thread and the
# UI share Python's GIL, and each Python slot or paint of the UI waits for it (models.pacing),
# so the progress dialog's appearance, which repaints the cards and thumbnails, took 60-165 ms
# on a 2-core machine. A freeze, which this catches, is a read on the UI thread or a GIL held
# throughout (onnx's first import held it 0.56 s).
MAX_GAP_S = 0.25


def write_chain(path: Path, convs: int = CONVS, channels: int = CHANNELS) -> None:
    """An ONNX chain of `convs` 3x3 convolutions (55 MB of weights), grouped in stages."""
    rng = np.random.default_rng(0)
    nodes, weights, previous = [], [], "x"
    for i in range(convs):
        w = rng.standard_normal((channels, channels, 3, 3), dtype=np.float32) * 0.05
        weights.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("Conv", [previous, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1],
                                      name=f"/stage{i // 50}/conv{i}/Conv"))
        previous = f"c{i}"
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, channels, 4, 4])], [helper.make_tensor_value_info(
            previous, TensorProto.FLOAT, None)], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


@pytest.fixture(scope="module")
def chain_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("big") / "chain.onnx"
    write_chain(path)
    return path


class Ticks:
    """A timer ticking every 10 ms that records when it ran and whether a read was under way."""

    def __init__(self, opener: FileOpener) -> None:
        self.times: list[tuple[float, bool]] = []
        self.timer = QTimer(interval=10, timeout=lambda: self.times.append(
            (time.perf_counter(), opener.busy)))
        self.timer.start()

    def during_read(self) -> tuple[float, float, int]:
        """(longest gap between ticks from the last tick before the read to the last during
        it, how long the read was seen busy, ticks while busy). The tick after the read is left
        out: the window then builds its views of the new model, which is not the read."""
        busy = [i for i, (_t, b) in enumerate(self.times) if b]
        assert busy, "no tick ran while the file was read"
        span = [t for t, _b in self.times[max(busy[0] - 1, 0):busy[-1] + 1]]
        return max(np.diff(span)), span[-1] - span[0], len(busy)


def test_the_window_keeps_running_while_a_large_model_opens(qtbot, window, chain_file):
    wait_drawn(qtbot, window)  # the demo's maps: drawing them is not the read's doing
    freeze_startup_heap()  # as the app does once its window is built
    try:
        ticks = Ticks(window.opener)
        qtbot.wait(30)  # a tick before the read
        assert window.open_path(chain_file)
        qtbot.wait(30)  # one more tick after the read
        ticks.timer.stop()
    finally:
        gc.unfreeze()
    gap, busy_s, count = ticks.during_read()
    assert busy_s > MAX_GAP_S, f"the read took {busy_s:.3f} s: too short to show a freeze"
    assert gap < MAX_GAP_S, f"the UI thread stalled {gap * 1e3:.0f} ms during the read"
    assert count >= 5
    assert len(window.document.stack) == CONVS
    assert window.windowTitle().startswith("chain")


def click_cancel_when_shown(qtbot, opener: FileOpener) -> list[bool]:
    """Press the progress dialog's Cancel button as soon as the dialog shows."""
    clicked: list[bool] = []

    def poll() -> None:
        dialog = opener.dialog
        if dialog is None or not dialog.isVisible():
            return
        timer.stop()
        button = dialog.findChild(QPushButton)
        assert button is not None and button.text() == "Cancel"
        button.click()
        clicked.append(True)
    timer = QTimer(interval=5, timeout=poll)
    timer.start()
    return clicked


def test_cancel_keeps_the_document_and_drops_the_late_result(qtbot, window, chain_file, tmp_path):
    path = tmp_path / "lenet.convscope"
    project.save(PRESETS["LeNet-5"].build(), path)
    assert window.open_path(path)
    window.document.set_field((0, None), "out_channels", 5)
    document = window.document
    before = (document.stack, document.path, document.undo_stack.count(), document.modified,
              window.windowTitle(), window.recent_files())
    window.opener.progress_delay_ms = 0  # show the dialog at once, to press its Cancel
    clicked = click_cancel_when_shown(qtbot, window.opener)
    started = time.perf_counter()
    assert not window.open_path(chain_file)
    assert clicked == [True]
    assert time.perf_counter() - started < 5  # returned on Cancel, not when the read ended
    assert window.opener.dialog is None and not window.opener.busy
    assert window.opener.wait(60)  # the dropped read runs to its end...
    qtbot.wait(50)  # ...and its queued result is delivered, to no one
    assert (document.stack, document.path, document.undo_stack.count(), document.modified,
            window.windowTitle(), window.recent_files()) == before
    assert window.errors == []
    assert window.open_path(chain_file)  # the next open works as usual
    assert len(document.stack) == CONVS


def test_a_quick_open_shows_no_dialog(qtbot, window, tmp_path):
    path = tmp_path / "lenet.convscope"
    project.save(PRESETS["LeNet-5"].build(), path)
    shown = []
    window.opener.progress_delay_ms = 10_000
    timer = QTimer(interval=1, timeout=lambda: shown.append(window.opener.dialog is not None))
    timer.start()
    assert window.open_path(path)
    timer.stop()
    assert not any(shown)


def test_a_second_open_while_one_runs_is_refused_with_a_message(qtbot, window, chain_file,
                                                                tmp_path):
    other = tmp_path / "lenet.convscope"
    project.save(PRESETS["LeNet-5"].build(), other)
    answers = []
    QTimer.singleShot(0, lambda: answers.append(window.open_path(other)))
    assert window.open_path(chain_file)
    assert answers == [False]
    assert len(window.document.stack) == CONVS


def test_a_bug_while_reading_is_raised_on_the_ui_thread(qtbot, window, tmp_path):
    """Not a file's fault: the reader's exception comes back, with its traceback, to the UI
    thread, where an exception escaping a slot reaches the crash reporter."""
    def buggy_reader(path: Path):
        raise KeyError("a lookup ConvScope got wrong")
    opener = FileOpener(window, buggy_reader)
    with pytest.raises(KeyError, match="ConvScope got wrong"):
        opener.read(tmp_path / "any.convscope")
    assert not opener.busy and opener.wait(5)
    stack = window.document.stack
    window.opener.read_file = buggy_reader
    with pytest.raises(KeyError):
        window.open_path(tmp_path / "any.convscope")
    assert window.document.stack is stack and window.errors == []
