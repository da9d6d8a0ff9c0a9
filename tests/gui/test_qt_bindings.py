"""The Qt bindings must not lose references to True/False: pyqtgraph emits signals on every
redraw and mouse move, and a binding that drops one reference per emit makes CPython abort
mid-session (PySide6 6.12.0 did; pyproject.toml excludes it)."""
from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Probe(QObject):
    ping = Signal()
    value = Signal(bool)


def test_emitting_signals_keeps_the_bools_alive() -> None:
    probe = _Probe()
    received: list[bool] = []
    probe.value.connect(received.append)
    before_true, before_false = sys.getrefcount(True), sys.getrefcount(False)
    for _ in range(1000):
        probe.ping.emit()
        probe.value.emit(False)
    assert len(received) == 1000
    # A few references may come and go with the list above; a leak loses one per emit.
    assert sys.getrefcount(True) >= before_true - 10
    assert sys.getrefcount(False) >= before_false - 10
