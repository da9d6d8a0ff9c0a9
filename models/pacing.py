"""Keeping the UI thread live while a worker thread runs a long loop of Python.

CPython makes a thread that holds the GIL hand it over only when another thread has waited a
whole switch interval (5 ms) without the GIL changing hands. A reader that walks thousands of
nodes keeps handing the GIL over for a few microseconds (a NumPy call on a small weight, a file
read) and taking it straight back, before a waiting thread has even woken up, so the interval
starts again each time: opening a 1,500-node ONNX file kept the window from running any Python
for 60-280 ms at a time. A real pause now and then gives the waiting thread its chance.
"""
from __future__ import annotations

import threading
import time

WORK_S = 0.01
"""How long a loop runs between pauses."""
PAUSE_S = 0.0005
"""How long it pauses: enough for a waiting thread to wake and take the GIL (tens of us)."""

_state = threading.local()


def pace() -> None:
    """Call once per step of a long loop: on a thread other than the main one, sleeps PAUSE_S
    once WORK_S has passed since the last pause (about 5% of the loop's time). On the main thread
    (the command line, or the UI thread itself) it does nothing."""
    if threading.current_thread() is threading.main_thread():
        return
    now = time.perf_counter()
    last = getattr(_state, "last", None)
    if last is None:
        _state.last = now
    elif now - last >= WORK_S:
        time.sleep(PAUSE_S)
        _state.last = time.perf_counter()
