"""Live view: from a hyperparameter edit in the real window to its feature maps on screen.

Run from the repository root (unset the OpenBLAS overrides for benchmarks only):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE QT_QPA_PLATFORM=offscreen \\
        .venv/bin/python bench/bench_live.py

Builds the real MainWindow offscreen on the demo model and its sample input (settings in a
temporary folder, saved layout not restored) and waits for the first maps. Then:

0. Incremental engine runs (no window): a full run of the demo, a run after an edit to its last
   layer (its softmax becomes a sigmoid and back; executor.run with the previous result) and that
   one layer alone (engine.forward.layer_forward on the kept input); median of 200 each.
1. Latency: `--edits` hyperparameter edits, one at a time, each made through the property
   editor's own spin box on the selected layer (filters, kernel height, stride, dense units of
   different layers, always valid values). Each is timed from the edit to (a) the view's `drawn`
   signal for a result computed for exactly the edited stack (the same Stack object, so an older
   version's maps never count) and (b) the end of the next paint of the maps (the mosaic image,
   or the bar chart of a flat output) after that. Median, p95
   and max.
2. UI blocking: a 5 ms precise timer records every event-loop tick while 20 edits arrive on one
   spin box, one per tick of a 30 ms timer (a fast hand's key repeat) and back-to-back (each
   edit posted as soon as the previous one returned to the event loop). Longest and p99 gap
   between ticks, the slots that ran inside the longest gap, the UI thread's CPU time per edit
   (slots and Qt's own layout and painting), and the gaps of an idle window as the floor.
3. Where the UI thread's time goes: wall time inside the window's slots (stack cards, summary
   table, property editor, kernel view, analysis, feature-map drawing) summed over both phases,
   per edit. Nested slots are listed under their caller and included in its time.
4. A big imported model (onnx's light DenseNet-121, 668 nodes; --big FILE for another).
   First File > Open's real dialog is up for 1.5 s and cancelled, as a person choosing a file:
   onnx imports meanwhile (gui.onnx_warmup), and the share of the dialog's event-loop turns
   that ran shows whether it stayed live. Then the model is opened twice through the window's
   open path: the time to read it on the worker, the UI thread's work after it
   (cards, summary, property panel, analysis), the first paint of its cards and its first
   maps, and the UI-thread gaps while it is read and after. Then the UI-thread gaps while the
   cards scroll top to bottom in 40 steps (one per 20 ms) and while 20 nodes spread through it
   are selected one by one (each shows its maps), and edit -> maps for an edit of its first
   and of its last BatchNorm (epsilon), median of 5 each. Then the network is shown again
   with its groups (the light file's are read from its weight names, conv2_1/x1/bn...) and the
   cards scroll folded and open, every group folds and opens 6 times, and 20 groups open and
   fold one at a time.
   `--profile` prints where the UI thread's time goes in the first open after the read
   (cProfile). The time to start the app (importing it) is measured apart, in a fresh
   interpreter: no open time includes it.
5. A big model's result: the VGG block at 1x3x224x224 (64-channel 224x224 maps), conv2 shown.
   The UI thread's time in FeatureMapView.show_result and in the paint after it, with the
   previews made beforehand as the compute worker makes them (PreviewCache.prepare, timed too)
   and without (the view makes them itself); median of 5 fresh engine results each.

Prints figures only; nothing is asserted.
"""
from __future__ import annotations

import argparse
import cProfile
import functools
import importlib.util
import io
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
from PySide6.QtCore import QAbstractEventDispatcher, QEventLoop, QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QFileDialog, QSpinBox  # noqa: E402

import gui.document  # noqa: E402
from gui import onnx_warmup  # noqa: E402
from gui.app import freeze_startup_heap  # noqa: E402
from gui.card_delegate import CardDelegate  # noqa: E402
from gui.feature_map_view import FeatureMapView  # noqa: E402
from gui.kernel_view import KernelView  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402
from gui.property_editor import InputEditor, PropertyEditor  # noqa: E402
from gui.stack_view import StackView  # noqa: E402
from gui.summary_table import SummaryTable  # noqa: E402
from gui.theme import apply_theme  # noqa: E402
from gui.thumbnail_strip import ThumbnailStrip  # noqa: E402
from engine.executor import run  # noqa: E402
from engine.forward import layer_forward  # noqa: E402
from gui.sample_inputs import load_sample  # noqa: E402
from models.layers import Sigmoid  # noqa: E402
from models.presets import demo, vgg_block  # noqa: E402
from models.stack import Stack  # noqa: E402

TICK_MS = 5
BURST = 20
HAND_SPACING_MS = 30
TIMEOUT_S = 20.0
BIG_TIMEOUT_S = 120.0
PICK_MS = 1500  # how long a person's File > Open dialog is up
# Found without importing onnx, so the first open pays for that import as the app's does.
LIGHT_DENSENET = Path(importlib.util.find_spec("onnx").origin).parent / \
    "backend/test/data/light/light_densenet121.onnx"

# The demo model: conv1 (0), conv2 (3), conv3 (6, dilation 2), dense (10).
# (layer, field, axis of a per-axis field or None, first value, second value): edits alternate.
EDITS = [
    (3, "out_channels", None, 24, 16),
    (0, "out_channels", None, 12, 8),
    (6, "kernel_size", 0, 5, 3),
    (3, "stride", 0, 2, 1),
    (10, "units", None, 20, 10),
    (6, "out_channels", None, 48, 32),
    (3, "kernel_size", 1, 5, 3),
]

# UI-thread slots timed, as (label, owner, attribute name, parent label or None).
SLOTS = [
    ("Document: analyse the stack", gui.document, "analyse", None),
    ("Document: materialise weights", gui.document, "materialise", None),
    ("stack cards (StackView.show_stack)", StackView, "show_stack", None),
    ("summary table (SummaryTable.show_report)", SummaryTable, "show_report", None),
    ("property editor (PropertyEditor.refresh)", PropertyEditor, "refresh", None),
    ("input editor (InputEditor.show_input)", InputEditor, "show_input", None),
    ("kernel view (KernelView.redraw)", KernelView, "redraw", None),
    ("post to worker (MainWindow.compute_maps)", MainWindow, "compute_maps", None),
    ("status totals (MainWindow._show_totals)", MainWindow, "_show_totals", None),
    ("feature maps (FeatureMapView.show_result)", FeatureMapView, "show_result", None),
    ("thumbnail strip (ThumbnailStrip.show_layers)", ThumbnailStrip, "show_layers",
     "feature maps (FeatureMapView.show_result)"),
    ("input image (FeatureMapView._draw_input)", FeatureMapView, "_draw_input",
     "feature maps (FeatureMapView.show_result)"),
    ("layer mosaic (FeatureMapView._draw_mosaic)", FeatureMapView, "_draw_mosaic",
     "feature maps (FeatureMapView.show_result)"),
    ("image painting (pyqtgraph ImageItem.paint)", pg.ImageItem, "paint", None),
    ("bar chart painting (pyqtgraph BarGraphItem.paint)", pg.BarGraphItem, "paint", None),
    ("card painting (CardDelegate.paint)", CardDelegate, "paint", None),
]


class SlotTimes:
    """Wall time spent in each timed slot, from wrappers installed on the classes (before the
    window is built, so signal connections bind the wrappers)."""

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.longest: dict[str, float] = defaultdict(float)
        self.spans: list[tuple[float, float, str]] | None = None  # (start, end, label) when on
        self.paint_hook: Callable[[object], None] | None = None

    def install(self) -> None:
        for label, owner, name, _parent in SLOTS:
            setattr(owner, name, self._timed(label, getattr(owner, name)))

    def _timed(self, label: str, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.perf_counter() - start
                self.total[label] += spent
                self.calls[label] += 1
                self.longest[label] = max(self.longest[label], spent)
                if self.spans is not None:
                    self.spans.append((start, start + spent, label))
                if fn.__name__ == "paint" and self.paint_hook is not None:
                    self.paint_hook(args[0])
        return wrapper

    def reset(self) -> None:
        self.total.clear()
        self.calls.clear()
        self.longest.clear()


@dataclass
class Edit:
    """One edit through the property editor: the spin box to set and the value to give it."""
    layer: int
    field: str
    axis: int | None
    value: int


def edit_box(window: MainWindow, edit: Edit) -> QSpinBox:
    """The property editor's spin box for the edit's field (and axis) of the selected layer."""
    editor = window.property_editor.editors[edit.field]
    if edit.axis is not None:
        return editor.boxes[edit.axis]  # type: ignore[attr-defined]
    return editor.box  # type: ignore[attr-defined]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


class LiveBench:
    """Drives one window: makes edits and waits, in the event loop, for their maps."""

    def __init__(self, window: MainWindow, slots: SlotTimes) -> None:
        self.window = window
        self.view = window.feature_view
        self.slots = slots
        self.target: Stack | None = None
        self.drawn_at: float | None = None
        self.painted_at: float | None = None
        self.ticks: list[float] = []
        self.edits_made = 0  # edits alternate between two values: continue where the last ended
        self._loop: QEventLoop | None = None
        self._done: Callable[[], bool] = lambda: True
        self.view.drawn.connect(self._on_drawn)
        slots.paint_hook = self._on_paint
        self.ticker = QTimer()
        self.ticker.setTimerType(Qt.TimerType.PreciseTimer)
        self.ticker.setInterval(TICK_MS)
        self.ticker.timeout.connect(lambda: self.ticks.append(time.perf_counter()))
        self.cards_painted_at: float | None = None

    # ---- waiting without spinning (a busy wait would steal the worker's core and GIL) ----------
    def _on_drawn(self) -> None:
        result = self.view.result
        if self.target is not None and result is not None and result.stack is self.target \
                and self.drawn_at is None:
            self.drawn_at = time.perf_counter()
        self._check()

    def _on_paint(self, item: object) -> None:
        # The layer's maps: a mosaic image, or bars for a flat (dense) output.
        maps = (self.view.map_item, self.view.bar_item)
        if item in maps and self.drawn_at is not None and self.painted_at is None:
            self.painted_at = time.perf_counter()
        if isinstance(item, CardDelegate) and self.cards_painted_at is None:
            self.cards_painted_at = time.perf_counter()
        self._check()

    def _check(self) -> None:
        if self._loop is not None and self._done():
            self._loop.quit()

    def wait(self, done: Callable[[], bool], what: str, timeout_s: float = TIMEOUT_S) -> None:
        """Run the event loop until done() holds. It is checked whenever the loop is about to
        sleep, after every step, as well as on each draw and paint: a condition that was already
        true, or became true with no paint (a timer's last step), is seen at once. After
        timeout_s the bench stops with a line naming `what`: it never hangs."""
        if done():
            return
        self._done = done
        self._loop = loop = QEventLoop()
        expired = QTimer(singleShot=True, interval=int(timeout_s * 1000), timeout=loop.quit)
        dispatcher = QAbstractEventDispatcher.instance()
        dispatcher.aboutToBlock.connect(self._check)
        expired.start()
        try:
            loop.exec()
        finally:
            expired.stop()
            dispatcher.aboutToBlock.disconnect(self._check)
            self._loop, self._done = None, lambda: True
        if not done():
            raise SystemExit(f"bench_live: timed out after {timeout_s:g} s waiting for {what}")

    def settle(self, ms: int) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def expect(self, stack: Stack) -> None:
        self.target, self.drawn_at, self.painted_at = stack, None, None

    # ---- phases ---------------------------------------------------------------------------------
    def first_maps(self) -> float:
        start = time.perf_counter()
        self.expect(self.window.document.stack)
        self.wait(lambda: self.drawn_at is not None and self.painted_at is not None,
                  "the first maps")
        return self.painted_at - start  # type: ignore[operator]

    def latency(self, count: int) -> tuple[list[float], list[float]]:
        """Seconds from each edit to its maps drawn, and to them painted."""
        to_drawn, to_painted = [], []
        for _ in range(count):
            k, self.edits_made = self.edits_made, self.edits_made + 1
            layer, field, axis, first, second = EDITS[k % len(EDITS)]
            value = first if (k // len(EDITS)) % 2 == 0 else second
            edit = Edit(layer, field, axis, value)
            self.window.stack_view.select(edit.layer)
            self.settle(60)  # selection redraws and worker idle before the timed edit
            box = edit_box(self.window, edit)
            start = time.perf_counter()
            box.setValue(edit.value)
            self.expect(self.window.document.stack)
            self.wait(lambda: self.drawn_at is not None and self.painted_at is not None,
                      f"the maps after an edit of {field}")
            to_drawn.append(self.drawn_at - start)  # type: ignore[operator]
            to_painted.append(self.painted_at - start)  # type: ignore[operator]
        return to_drawn, to_painted

    def burst(self, spacing_ms: int | None) -> tuple[list[float], float, int, str, float]:
        """20 edits of conv2's filters: one per tick of a `spacing_ms` timer, as key repeat
        sends them (a late tick is not made up with several edits at once), or back-to-back
        (None). Returns the tick gaps (s), the time from the last edit to its maps drawn, the
        draws seen, the slots that ran inside the longest gap, and the UI thread's CPU time
        per edit (s; Qt's own layout and painting included, which no slot timer sees)."""
        self.window.stack_view.select(3)
        self.settle(100)
        box = edit_box(self.window, Edit(3, "out_channels", None, 0))
        base = box.value()
        draws = [0]
        count_draw = lambda: draws.__setitem__(0, draws[0] + 1)  # noqa: E731
        self.view.drawn.connect(count_draw)
        last_edit = [0.0]
        self.target = None

        made = [0]
        repeat = QTimer()
        repeat.setTimerType(Qt.TimerType.PreciseTimer)
        repeat.setInterval(spacing_ms or 0)

        def step() -> None:
            k = made[0]
            made[0] += 1
            last_edit[0] = time.perf_counter()
            box.setValue(base + 1 + k)
            if k == BURST - 1:
                repeat.stop()
                self.expect(self.window.document.stack)
            elif spacing_ms is None:
                QTimer.singleShot(0, step)

        self.ticks = []
        self.slots.spans = []
        self.ticker.start()
        self.settle(50)
        cpu_start = time.thread_time()
        if spacing_ms is None:
            step()
        else:
            repeat.timeout.connect(step)
            repeat.start()
        self.wait(lambda: self.target is not None and self.drawn_at is not None
                  and self.painted_at is not None, "the maps after a burst's last edit")
        last = self.drawn_at - last_edit[0]  # type: ignore[operator]
        cpu_per_edit = (time.thread_time() - cpu_start) / BURST
        self.settle(50)
        self.ticker.stop()
        spans, self.slots.spans = self.slots.spans, None
        self.view.drawn.disconnect(count_draw)
        box.setValue(base)  # back to the demo's value, untimed
        self.expect(self.window.document.stack)
        self.wait(lambda: self.drawn_at is not None, "the maps after the burst was undone")
        gaps = np.diff(self.ticks)
        worst = int(np.argmax(gaps))
        worst_slots = inside(spans, self.ticks[worst], self.ticks[worst + 1])
        return gaps.tolist(), last, draws[0], worst_slots, cpu_per_edit

    def _gaps_while(self, steps: list[Callable[[], None]], spacing_ms: int,
                    what: str) -> list[float]:
        """Tick gaps (s) while `steps` run, one per tick of a `spacing_ms` timer."""
        todo = list(steps)
        repeat = QTimer()
        repeat.setTimerType(Qt.TimerType.PreciseTimer)
        repeat.setInterval(spacing_ms)
        repeat.timeout.connect(lambda: todo.pop(0)() if todo else repeat.stop())
        self.ticks = []
        self.ticker.start()
        self.settle(30)
        repeat.start()
        self.wait(lambda: not repeat.isActive(), what, BIG_TIMEOUT_S)
        self.settle(60)
        self.ticker.stop()
        return np.diff(self.ticks).tolist()

    def _scroll_gaps(self, what: str) -> list[float]:
        bar = self.window.stack_view.verticalScrollBar()
        bar.setValue(0)
        return self._gaps_while(
            [lambda k=k: bar.setValue(bar.maximum() * k // 40) for k in range(41)], 20,
            f"the cards to scroll {what}")

    def _edit_latencies(self, index: int, repeats: int) -> list[float]:
        """Seconds from an edit of node `index`'s epsilon to its maps drawn, `repeats` times."""
        latencies = []
        for k in range(repeats):
            start = time.perf_counter()
            self.window.document.set_field((index, None), "epsilon", 2e-5 if k % 2 == 0 else 1e-5)
            self.expect(self.window.document.stack)
            self.wait(lambda: self.drawn_at is not None,
                      f"the maps after an edit of node {index}", BIG_TIMEOUT_S)
            latencies.append(self.drawn_at - start)  # type: ignore[operator]
        return latencies

    def _timed_open(self, path: Path, profiler: cProfile.Profile | None) -> dict[str, object]:
        """One open of `path` through open_path: the read on the worker, the UI thread's work
        after it (profiled when `profiler` is given), the first paint of the cards and the
        first maps, with the tick gaps while reading and after."""
        window = self.window
        read_end = [0.0]
        plain_read = window.opener.read

        def timed_read(file: Path) -> object:
            try:
                return plain_read(file)
            finally:
                read_end[0] = time.perf_counter()
                if profiler is not None:
                    profiler.enable()  # the UI thread's own work from here on

        window.opener.read = timed_read  # type: ignore[method-assign]
        # Nobody answers here: the earlier edits count as saved, so the open asks nothing, and
        # a file that cannot open prints its line instead of showing a box.
        window.document.undo_stack.setClean()
        window.unattended = True
        self.slots.reset()
        self.slots.spans = []
        self.ticks = []
        self.ticker.start()
        self.cards_painted_at = 0.0  # cards painted while the file is read do not count
        start = time.perf_counter()
        try:
            if not window.open_path(path):
                raise SystemExit(f"bench_live: cannot open {path}")
        finally:
            if profiler is not None:
                profiler.disable()
            del window.opener.read
        returned = time.perf_counter()
        self.cards_painted_at = None
        self.expect(window.document.stack)
        self.wait(lambda: self.cards_painted_at is not None, f"the cards of {path.name}",
                  BIG_TIMEOUT_S)
        self.wait(lambda: self.drawn_at is not None and self.painted_at is not None,
                  f"the first maps of {path.name}", BIG_TIMEOUT_S)
        self.ticker.stop()
        spans, self.slots.spans = self.slots.spans, None
        ticks = np.asarray(self.ticks)
        gaps = np.diff(ticks)
        reading = ticks[1:] <= read_end[0]
        after = np.flatnonzero(~reading)
        longest = after[np.argmax(gaps[after])] if after.size else None
        return {"read": read_end[0] - start, "ui": returned - read_end[0],
                "longest after": "" if longest is None else
                inside(spans, ticks[longest], ticks[longest + 1]),
                "cards shown": self.cards_painted_at - start,  # type: ignore[operator]
                "first maps": self.painted_at - start,  # type: ignore[operator]
                "read gaps": gaps[reading].tolist(), "after gaps": gaps[~reading].tolist(),
                "slots": {label: self.slots.total[label] for label, *_ in SLOTS
                          if self.slots.total.get(label)}}

    def open_dialog(self, folder: Path) -> float:
        """File > Open's real dialog, up for PICK_MS and then cancelled (a person choosing): the
        share of its event loop's TICK_MS turns that ran, counted by a C++ timer into a spin box.
        The Python tick timer stays off meanwhile: a Python slot waits for the GIL that onnx's
        import holds, and the whole loop with it (see gui.onnx_warmup)."""
        window = self.window
        counter = QSpinBox()
        counter.setRange(0, 10**9)
        turns = QTimer(interval=TICK_MS, timerType=Qt.TimerType.PreciseTimer)
        turns.timeout.connect(counter.stepUp)  # C++ to C++: counts without the GIL

        def choose() -> str:
            dialog = QFileDialog(window, "Open", str(folder))
            dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
            closer = QTimer(dialog, singleShot=True, interval=PICK_MS)
            closer.timeout.connect(dialog.reject)
            closer.start()
            turns.start()
            dialog.exec()
            turns.stop()
            return ""

        window.choose_open_path = choose  # type: ignore[method-assign]
        start = time.perf_counter()
        try:
            window.open_dialog()
        finally:
            del window.choose_open_path
        expected = (time.perf_counter() - start) * 1e3 / TICK_MS
        self.ticker.start()  # its wakeups let the wait see the import end
        self.wait(onnx_warmup.is_warm, "onnx's import", BIG_TIMEOUT_S)
        self.ticker.stop()
        return counter.value() / expected

    def big_open(self, path: Path, profile: bool) -> dict[str, object]:
        """Phase 4's opens (the first in this process, after File > Open's dialog, then again),
        scrolling, selecting and edits (see the module docstring)."""
        window, cards = self.window, self.window.stack_view
        profiler = cProfile.Profile() if profile else None
        figures: dict[str, object] = {"dialog": self.open_dialog(path.parent)}
        figures |= {"first open": self._timed_open(path, profiler),
                    "open again": self._timed_open(path, None)}
        stack = window.document.stack
        figures["nodes"] = len(stack)
        figures["grouped"] = any(layer.group for layer in stack.layers)
        if profiler is not None:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
            figures["profile"] = out.getvalue()
        figures["scroll gaps"] = self._scroll_gaps("top to bottom")
        picks = [round(k * (len(stack) - 1) / 19) for k in range(20)]
        figures["select gaps"] = self._gaps_while(
            [functools.partial(cards.select, i) for i in picks], 50, "20 selections")
        norms = [i for i, layer in enumerate(stack.layers) if layer.spec.type_name == "BatchNorm"]
        if norms:
            figures["edit first"] = self._edit_latencies(norms[0], 5)
            figures["edit last"] = self._edit_latencies(norms[-1], 5)
        return figures

    def big_groups(self, stack: Stack, title: str) -> dict[str, object]:
        """Phase 4 on `stack` with groups: shown as an open shows a network, then scrolled
        folded and open, every group folded and opened, and groups opened one at a time."""
        window, cards = self.window, self.window.stack_view
        self.slots.reset()
        start = time.perf_counter()
        window.document.reset(stack, None, title)
        window._select_first()
        figures: dict[str, object] = {"ui": time.perf_counter() - start}
        self.expect(window.document.stack)
        self.wait(lambda: self.drawn_at is not None, f"the maps of {title} with groups",
                  BIG_TIMEOUT_S)
        keys = [key for key in cards._items if key.startswith("g:")]
        tops = [key for key in keys if cards._items[key].parent() is None]
        figures["groups"], figures["top groups"] = len(keys), len(tops)
        figures["scroll folded gaps"] = self._scroll_gaps("folded")
        figures["fold gaps"] = self._gaps_while(
            [functools.partial(cards._fold_all, k % 2 == 0) for k in range(12)], 20,
            "every group to fold and open")
        chosen = tops[::max(1, len(tops) // 20)][:20]
        figures["one fold gaps"] = self._gaps_while(
            [functools.partial(cards._items[key].setExpanded, opened)
             for opened in (True, False) for key in chosen], 20, "groups to open one by one")
        cards._fold_all(True)
        figures["scroll open gaps"] = self._scroll_gaps("with every group open")
        return figures

    def idle_gaps(self, ms: int) -> list[float]:
        self.ticks = []
        self.ticker.start()
        self.settle(ms)
        self.ticker.stop()
        return np.diff(self.ticks).tolist()


def app_import_seconds() -> float:
    """Seconds a fresh interpreter takes to import the window (the app's start before any
    window is built), as the median of 3."""
    code = ("import time; start = time.perf_counter(); import gui.main_window; "
            "print(time.perf_counter() - start)")
    root = Path(__file__).resolve().parents[1]
    runs = [float(subprocess.run([sys.executable, "-c", code], cwd=root, check=True,
                                 capture_output=True, text=True).stdout) for _ in range(3)]
    return statistics.median(runs)


def incremental(repeats: int = 200) -> tuple[float, float, float, int]:
    """Median seconds of a full demo run, of a run after a last-layer edit, and of that layer
    alone; and how many layers the edited run reused."""
    stacks = [demo()]
    last = len(stacks[0].layers) - 1
    stacks.append(stacks[0].with_spec(last, Sigmoid()))
    x = load_sample(stacks[0].input)
    previous = run(stacks[0], x)
    full, edited, alone = [], [], []
    for k in range(repeats):
        start = time.perf_counter()
        run(stacks[k % 2], x)
        full.append(time.perf_counter() - start)
        start = time.perf_counter()
        previous = run(stacks[(k + 1) % 2], x, previous)
        edited.append(time.perf_counter() - start)
        layer, info = previous.stack.layers[last], previous.report.layers[last].info
        start = time.perf_counter()
        layer_forward(layer.spec, info, layer.weights, previous.outputs[last - 1])
        alone.append(time.perf_counter() - start)
    return (statistics.median(full), statistics.median(edited), statistics.median(alone),
            previous.reused)


def inside(spans: list[tuple[float, float, str]], start: float, end: float) -> str:
    """The outermost timed slots that ran between start and end, with their milliseconds."""
    spent: dict[str, float] = defaultdict(float)
    outer_end = start
    for span_start, span_end, label in sorted(spans):
        if span_start >= start and span_end <= end and span_start >= outer_end:
            spent[label.split(" (")[0]] += span_end - span_start
            outer_end = span_end
    return ", ".join(f"{label} {ms * 1e3:.0f}" for label, ms in
                     sorted(spent.items(), key=lambda item: -item[1]))


def summary(values: list[float]) -> str:
    ms = [v * 1e3 for v in values]
    return (f"median {statistics.median(ms):7.1f} ms   p95 {percentile(ms, 95):7.1f} ms   "
            f"max {max(ms):7.1f} ms   (n={len(ms)})")


def gaps_summary(gaps: list[float]) -> str:
    ms = [g * 1e3 for g in gaps]
    if not ms:  # over before the tick timer fired twice
        return "no ticks"
    return f"longest gap {max(ms):6.1f} ms   p99 gap {percentile(ms, 99):6.1f} ms   ticks {len(ms)}"


def report_big_open(path: Path, big: dict[str, object]) -> None:
    print(f"\n{path.name}: {big['nodes']} nodes, opened through File > Open")
    print(f"  the Open dialog, up {PICK_MS / 1e3:g} s while onnx imports on a thread: its event "
          f"loop ran {big['dialog']:.0%} of its {TICK_MS} ms turns")
    for which in ("first open", "open again"):
        opened: dict = big[which]  # type: ignore[assignment]
        print(f"  {which}: read on the worker {opened['read']:.2f} s, then the UI thread "
              f"{opened['ui']:.2f} s; cards painted after {opened['cards shown']:.2f} s, first "
              f"maps after {opened['first maps']:.2f} s")
        print("    the UI thread's slots (ms): " + ", ".join(
            f"{label.split(' (')[0]} {ms * 1e3:.0f}" for label, ms in opened["slots"].items()))
        print(f"    UI gaps while reading    {gaps_summary(opened['read gaps'])}")
        print(f"    UI gaps after the read   {gaps_summary(opened['after gaps'])}")
        print(f"      in the longest gap (ms): {opened['longest after']}")
    for label in ("scroll", "select"):
        gaps: list[float] = big[label + " gaps"]  # type: ignore[assignment]
        print(f"  UI gaps while {label:<8} {gaps_summary(gaps)}")
    for which in ("first", "last"):
        if f"edit {which}" in big:
            print(f"  edit -> maps drawn, epsilon of the {which} BatchNorm "
                  f"{summary(big[f'edit {which}'])}")  # type: ignore[arg-type]
    if "profile" in big:
        print("  the UI thread's work in the first open, after the read (cProfile):")
        print(big["profile"])


def report_big_groups(big: dict[str, object]) -> None:
    print(f"\nthe network with its groups: {big['groups']} group cards, "
          f"{big['top groups']} at the top; shown again in {big['ui']:.2f} s (UI thread)")
    for label, key in (("scrolling folded", "scroll folded"), ("folding all", "fold"),
                       ("one group at a time", "one fold"), ("scrolling open", "scroll open")):
        gaps: list[float] = big[key + " gaps"]  # type: ignore[assignment]
        print(f"  UI gaps while {label:<20} {gaps_summary(gaps)}")


def big_result_drawing() -> list[tuple[bool, float, float, float]]:
    """Phase 5: per mode (previews prepared first or not), the medians of the preparation,
    show_result and paint times (s) of the VGG block's result, conv2 selected."""
    stack = vgg_block()
    x = np.random.default_rng(0).standard_normal((1, *stack.input.sample_shape)).astype(np.float32)
    view = FeatureMapView()
    view.resize(900, 600)
    view.show()
    view.select_layer(2)
    view.show_result(run(stack, x))  # the view's expectation and widgets, untimed
    QApplication.processEvents()
    rows = []
    for prepared in (False, True):
        times = []
        for _ in range(5):
            result = run(stack, x)
            start = time.perf_counter()
            if prepared:
                view.previews.prepare(result)
            shown = time.perf_counter()
            view.show_result(result)
            drawn = time.perf_counter()
            view.grab()  # paints the whole view, as the next frame would
            times.append((shown - start, drawn - shown, time.perf_counter() - drawn))
            del result
        rows.append((prepared, *(statistics.median(t[i] for t in times) for i in range(3))))
    view.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=40)
    parser.add_argument("--big", type=Path, default=LIGHT_DENSENET,
                        help="the big model of phase 4 (default: onnx's light DenseNet-121)")
    parser.add_argument("--profile", action="store_true",
                        help="profile the UI thread's work in phase 4's open")
    args = parser.parse_args()

    print(f"{os.cpu_count()} logical CPUs, load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    full, edited, alone, reused = incremental()
    print("engine alone, demo on its sample input (median of 200)")
    print(f"  full run                        {full * 1e3:7.3f} ms")
    print(f"  run after a last-layer edit     {edited * 1e3:7.3f} ms   ({reused} layers reused, "
          f"{edited / full:.3f} of a full run)")
    print(f"  the last layer alone            {alone * 1e3:7.3f} ms   (edited run - layer alone: "
          f"{(edited - alone) * 1e3:.3f} ms of bookkeeping)")

    slots = SlotTimes()
    slots.install()
    app = QApplication.instance() or QApplication(sys.argv[:1])  # alive for the whole run
    apply_theme("dark")
    with tempfile.TemporaryDirectory() as folder:
        settings = QSettings(str(Path(folder) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings=settings, restore=False)
        freeze_startup_heap()  # as the app does
        window.show()
        bench = LiveBench(window, slots)
        first = bench.first_maps()
        print(f"\nwindow on the demo model {window.document.stack.input.shape}")
        print(f"first maps on screen after {first * 1e3:.0f} ms (window built before)")
        bench.latency(len(EDITS))  # warm-up: every edit's kernels and widgets once
        slots.reset()

        drawn, painted = bench.latency(args.edits)
        print("\nedit -> maps (one edit at a time, through the property editor)")
        print(f"  to drawn signal   {summary(drawn)}")
        print(f"  to maps painted   {summary(painted)}")
        edits_done = args.edits

        print(f"\nUI thread during {BURST} edits on one spin box (tick timer {TICK_MS} ms)")
        print(f"  idle window       {gaps_summary(bench.idle_gaps(600))}")
        for label, spacing in ((f"every {HAND_SPACING_MS} ms", HAND_SPACING_MS),
                               ("back-to-back", None)):
            gaps, last, draws, worst, cpu = bench.burst(spacing)
            edits_done += BURST + 1
            print(f"  {label:<17} {gaps_summary(gaps)}   "
                  f"last edit -> drawn {last * 1e3:.0f} ms, {draws} draws")
            print(f"  {'':<17} UI thread CPU time per edit {cpu * 1e3:.1f} ms")
            print(f"  {'':<17} in the longest gap (ms): {worst}")

        print(f"\nUI-thread time per edit over {edits_done} edits (wall time inside the slot)")
        print(f"  {'slot':<50} {'ms/edit':>8} {'calls':>6} {'longest':>8}")
        for label, _owner, _name, parent in SLOTS:
            if label not in slots.total:
                continue
            indent = "    " if parent else "  "
            per_edit = slots.total[label] * 1e3 / edits_done
            print(f"{indent}{label:<{52 - len(indent)}} {per_edit:8.2f} {slots.calls[label]:6d} "
                  f"{slots.longest[label] * 1e3:7.1f}ms")
        if args.big.exists():
            print(f"\napp import in a fresh interpreter (not in the open times below): "
                  f"{app_import_seconds():.2f} s")
            big = bench.big_open(args.big, args.profile)
            report_big_open(args.big, big)
            if big["grouped"]:
                report_big_groups(bench.big_groups(window.document.stack, args.big.stem))
            else:
                print(f"\n{args.big.name} imports with no groups: no folding phase")
        else:
            print(f"\n{args.big} not found: no big-model phase")
        window.compute.wait()
        window.document.undo_stack.setClean()
        window.close()

    print("\nVGG block result at 1x3x224x224, conv2 (64 x 224 x 224) shown (median of 5)")
    for prepared, prepare, show, paint in big_result_drawing():
        where = "made by the worker first" if prepared else "made by the view         "
        print(f"  previews {where}  worker {prepare * 1e3:5.1f} ms   UI thread: show_result "
              f"{show * 1e3:5.1f} ms, paint {paint * 1e3:5.1f} ms")


if __name__ == "__main__":
    main()
