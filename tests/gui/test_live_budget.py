"""The live view under the memory budget: a run over it is refused by the worker, and the feature
view shows the estimate instead of maps until the stack fits again."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QThreadPool

from engine.memory_budget import BUDGET_VARIABLE, estimate, size_text
from gui.compute_worker import ComputeWorker
from models.analysis import analyse
from models.presets import demo


def test_a_stack_over_the_budget_shows_the_estimate_in_the_feature_view(qtbot, window,
                                                                         monkeypatch):
    view = window.feature_view
    qtbot.waitUntil(lambda: view.result is not None, timeout=10000)
    monkeypatch.setenv(BUDGET_VARIABLE, "1M")  # the demo on its sample needs 3.8 MB
    with qtbot.waitSignal(view.drawn, timeout=10000):
        window.document.set_field((3, None), "out_channels", 24)
    assert view.result is None
    assert view.pages.currentWidget() is view.message
    needed = estimate(window.document.report, 1).total
    assert f"at batch 1 need about {size_text(needed)}, over the 1 MB budget" \
        in view.message.text()
    # Under the budget again, the next edit's maps return.
    monkeypatch.delenv(BUDGET_VARIABLE)
    with qtbot.waitSignal(view.drawn, timeout=10000):
        window.document.undo_stack.undo()
    assert view.result is not None and view.result.stack is window.document.stack


def test_the_worker_takes_its_budget_and_reports_a_refusal_as_failed(qtbot):
    stack = demo()
    x = np.zeros((1, 3, 128, 128), np.float32)
    needed = estimate(analyse(stack)).total
    worker = ComputeWorker(pool=QThreadPool(), memory_budget=needed - 1)
    with qtbot.waitSignal(worker.failed, timeout=10000) as failed:
        worker.post(1, stack, x)
    assert failed.args[0] == 1 and "budget" in failed.args[1]
    worker = ComputeWorker(pool=QThreadPool(), memory_budget=needed)
    with qtbot.waitSignal(worker.finished, timeout=10000) as finished:
        worker.post(1, stack, x)
    assert finished.args[1].outputs[-1].shape == (1, 10)
    worker.wait()
