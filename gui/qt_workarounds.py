"""Work-arounds for bugs in the Qt bindings that would crash the app.

PySide6 6.12.0 drops references to True/False it does not own: every SignalInstance.emit() from
Python, and calls into some Python overrides of virtual methods that return a bool, lower the
bool's reference count by one. pyqtgraph emits and overrides on every redraw, range change and
mouse move, so after some thousands of those CPython frees True and aborts ("bool_dealloc:
deallocating True or False") in the middle of a session or at exit. Python 3.12 made the bools
immortal, which makes the lost references harmless; `keep_bools_alive` gives them the same
protection on older Pythons by adding a large reserve to their counts, so no plausible session
can count them down to zero. It does nothing where the leak is absent or the bools are immortal.
"""
from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal

RESERVE = 1 << 40  # references; the leak loses one per emit, so this outlasts any session
PROBES = 16
_applied = False


class _Probe(QObject):
    ping = Signal()


def emit_leaks_bools() -> bool:
    """Whether SignalInstance.emit() from Python loses a reference to True (and repay it)."""
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(PROBES):
        probe.ping.emit()
    leaked = before - sys.getrefcount(True)
    for _ in range(max(leaked, 0)):
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(True))
    return leaked >= PROBES


def keep_bools_alive() -> bool:
    """Protect True and False from the bindings' lost references; returns whether it did.

    Safe to call more than once (it acts once)."""
    global _applied
    if _applied or sys.version_info >= (3, 12) or not emit_leaks_bools():
        return _applied
    for value in (True, False):
        # ob_refcnt is a PyObject's first field; id() is its address in CPython.
        ctypes.c_ssize_t.from_address(id(value)).value += RESERVE
    _applied = True
    return True
