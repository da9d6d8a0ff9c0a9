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
4. A big model's result: the VGG block at 1x3x224x224 (64-channel 224x224 maps), conv2 shown.
   The UI thread's time in FeatureMapView.show_result and in the paint after it, with the
   previews made beforehand as the compute worker makes them (PreviewCache.prepare, timed too)
   and without (the view makes them itself); median of 5 fresh engine results each.

Prints figures only; nothing is asserted.
"""
from __future__ import annotations

import argparse
import functools
import os
import statistics
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
from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QSpinBox  # noqa: E402

import gui.document  # noqa: E402
from gui.feature_map_view import FeatureMapView, ThumbnailStrip  # noqa: E402
from gui.kernel_view import KernelView  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402
from gui.property_editor import InputEditor, PropertyEditor  # noqa: E402
from gui.stack_view import StackView  # noqa: E402
from gui.summary_table import SummaryTable  # noqa: E402
from gui.theme import apply_theme  # noqa: E402
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
        self._check()

    def _check(self) -> None:
        if self._loop is not None and self._done():
            self._loop.quit()

    def wait(self, done: Callable[[], bool], timeout_s: float = TIMEOUT_S) -> None:
        if done():
            return
        self._done = done
        self._loop = QEventLoop()
        QTimer.singleShot(int(timeout_s * 1000), self._loop.quit)
        self._loop.exec()
        self._loop = None
        if not done():
            raise SystemExit(f"timed out after {timeout_s} s waiting for the feature maps")

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
        self.wait(lambda: self.drawn_at is not None and self.painted_at is not None)
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
            self.wait(lambda: self.drawn_at is not None and self.painted_at is not None)
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
                  and self.painted_at is not None)
        last = self.drawn_at - last_edit[0]  # type: ignore[operator]
        cpu_per_edit = (time.thread_time() - cpu_start) / BURST
        self.settle(50)
        self.ticker.stop()
        spans, self.slots.spans = self.slots.spans, None
        self.view.drawn.disconnect(count_draw)
        box.setValue(base)  # back to the demo's value, untimed
        self.expect(self.window.document.stack)
        self.wait(lambda: self.drawn_at is not None)
        gaps = np.diff(self.ticks)
        worst = int(np.argmax(gaps))
        worst_slots = inside(spans, self.ticks[worst], self.ticks[worst + 1])
        return gaps.tolist(), last, draws[0], worst_slots, cpu_per_edit

    def idle_gaps(self, ms: int) -> list[float]:
        self.ticks = []
        self.ticker.start()
        self.settle(ms)
        self.ticker.stop()
        return np.diff(self.ticks).tolist()


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
    return f"longest gap {max(ms):6.1f} ms   p99 gap {percentile(ms, 99):6.1f} ms   ticks {len(ms)}"


def big_result_drawing() -> list[tuple[bool, float, float, float]]:
    """Phase 4: per mode (previews prepared first or not), the medians of the preparation,
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
