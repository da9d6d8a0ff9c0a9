"""Importing the ONNX reader before the first .onnx file is read, at moments when that freezes
nothing the person sees.

`import onnx` imports ml_dtypes, whose extension registers its NumPy ufunc loops in one C call
that holds the GIL for about 0.6 s (`python -X importtime -c "import onnx"`: 0.69 s of onnx's
0.82 s is ml_dtypes._ml_dtypes_ext; a profile puts it in NumPy's PyUFunc_AddLoop comparing loop
signatures). No Python runs on the UI thread meanwhile: imported on the reading thread, it froze
the window and the open's progress dialog for 0.56 s on the first open of a session. Imported
while the app starts, it would make every start about 0.5 s slower (a thread does not help: it
holds the same GIL). So it is imported:

- before the window is built, when the app starts on an .onnx file, whose read would pay for it
  anyway (`warm`);
- on a thread while the Open dialog is up (`while_dialog_is_up`): a modal dialog's event loop
  is Qt's own C++ and runs with the GIL released, so the dialog stays live while the import
  holds the GIL, and a person takes longer than that to pick a file. The import starts once the dialog is
  shown, as showing it sends events to the window that Python handles.

A read that starts before the import is over waits for it on Python's import lock, without the
GIL. A file dropped on the window still pays for the import while it is read.
"""
from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import Iterator

from PySide6.QtCore import QTimer

READER = "engine.onnx.importer"
DIALOG_SETTLE_MS = 300
"""How long after a dialog's exec the import starts: the dialog is shown and painted by then."""

_started = threading.Event()


def is_warm() -> bool:
    """Whether the ONNX reader (and with it onnx) is imported."""
    return READER in sys.modules


def warm() -> None:
    """Import the ONNX reader on this thread, if it is not already. An onnx that cannot be
    imported is left for the read to report (gui.open_worker.load_stack)."""
    _started.set()
    try:
        __import__(READER)
    except ImportError:
        pass


@contextmanager
def while_dialog_is_up(delay_ms: int = DIALOG_SETTLE_MS) -> Iterator[None]:
    """Around a modal dialog's exec: import the ONNX reader on a thread of its own once the
    dialog has been up for delay_ms (not at all when it closes sooner, or when the reader is
    imported or under way)."""
    timer = None
    if not is_warm() and not _started.is_set():
        timer = QTimer(singleShot=True, interval=delay_ms, timeout=_start_thread)
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.stop()


def _start_thread() -> None:
    if not is_warm() and not _started.is_set():
        _started.set()
        threading.Thread(target=warm, name="import onnx", daemon=True).start()
