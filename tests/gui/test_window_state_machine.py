"""A person's session with the real main window, as a hypothesis state machine.

One MainWindow, offscreen, is driven through the same widgets and actions a person uses: the
palette, the stack view's delete, duplicate and drop, the property editor's boxes (values drawn
from the fields' metadata, invalid combinations included), the input row, undo and redo, the
kernel presets, inputs opened from files and presets. After every step no exception may have
been raised inside a Qt slot and the widgets must agree with the document; when the compute
worker settles, the feature maps are for the current stack. At the end, undoing everything
restores the first stack exactly and redoing everything the last (a preset starts a new history).

CONVSCOPE_HYPOTHESIS_SCALE multiplies the runs and their steps (see tests.stack_strategies.scaled).
"""
from __future__ import annotations

import sys
import tempfile
import traceback
from collections import Counter
from pathlib import Path
from types import TracebackType

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, invariant, precondition, rule,
                                 run_state_machine_as_test)
from PySide6.QtCore import QMimeData, QPoint, QSettings, Qt
from PySide6.QtGui import QAction, QDropEvent, QKeySequence
from PySide6.QtWidgets import QApplication, QMessageBox

from gui.main_window import MainWindow
from gui.palette import ENTRIES
from gui.property_editor import (AxesEditor, BoolEditor, ChoiceEditor, FieldEditor, FloatEditor,
                                 IntEditor)
from gui.sample_inputs import sample_files
from gui.stack_view import LAYER_MIME
from gui.theme import apply_theme
from models.analysis import analyse
from models.presets import PRESETS
from models.stack import Stack
from tests.stack_strategies import field_values, scaled

# Values and inputs stay small so the engine keeps up with every step on a shared machine; the
# extremes themselves are covered, without a window, by tests/reliability/test_random_edits.py.
VALUE_CAP = 12
MAX_INPUT_SIZE = 32
MAX_VOLUME_SIZE = 12  # the input row makes a 3D input by copying the last size
CHEAP_PRESETS = sorted(name for name, preset in PRESETS.items()
                       if analyse(preset.build()).total_macs <= 5e7)
SMALL_INPUTS = ("digit.png", "signal.npy")
SETTLE_MS = 60_000

STEPS: Counter[str] = Counter()


def stack_difference(a: Stack, b: Stack) -> str | None:
    """Where two stacks differ (input, seed, layer names, specs, weight keys or values), or None."""
    if a.input != b.input or a.seed != b.seed:
        return f"input or seed: {a.input}/{a.seed} != {b.input}/{b.seed}"
    if [layer.name for layer in a.layers] != [layer.name for layer in b.layers]:
        return f"layers {[x.name for x in a.layers]} != {[y.name for y in b.layers]}"
    for x, y in zip(a.layers, b.layers):
        if x.spec != y.spec:
            return f"{x.name}: {x.spec} != {y.spec}"
        if set(x.weights) != set(y.weights):
            return f"{x.name}: weights {sorted(x.weights)} != {sorted(y.weights)}"
        for key in x.weights:
            if not np.array_equal(x.weights[key], y.weights[key]):
                return f"{x.name}.{key} differs"
    return None


def set_editor_value(editor: FieldEditor, value: object) -> None:
    """Set a property-editor widget as a person would, so it emits its own edit."""
    if isinstance(editor, AxesEditor):  # also SidesEditor: one spin box per value
        for box, v in zip(editor.boxes, value):  # type: ignore[call-overload]
            box.setValue(v)
    elif isinstance(editor, (IntEditor, FloatEditor)):
        editor.box.setValue(value)
    elif isinstance(editor, BoolEditor):
        editor.box.setChecked(value)
    elif isinstance(editor, ChoiceEditor):
        editor.box.setCurrentText(value)
    else:
        raise TypeError(f"no way to set a {type(editor).__name__}; teach set_editor_value")


def find_action(window: MainWindow, key: QKeySequence.StandardKey) -> QAction:
    """The window's action bound to a standard key (the Edit menu's undo and redo)."""
    wanted = QKeySequence(key)
    return next(a for a in window.findChildren(QAction) if a.shortcut() == wanted)


class WindowSession(RuleBasedStateMachine):
    """The rules are what a person does; the invariants what must hold after each of them."""

    def __init__(self) -> None:
        super().__init__()
        self.app = QApplication.instance()
        self.folder = tempfile.TemporaryDirectory()
        self.exceptions: list[str] = []
        self._old_hook = sys.excepthook
        sys.excepthook = self._record_exception  # PySide6 reports exceptions in slots here
        apply_theme("dark")
        settings = QSettings(str(Path(self.folder.name) / "settings.ini"),
                             QSettings.Format.IniFormat)
        self.window = window = MainWindow(settings=settings, restore=False)
        # Prompts answer Discard and error boxes are recorded, as in tests/gui/conftest.py.
        window.errors = []
        window.ask_save_changes = lambda: QMessageBox.StandardButton.Discard
        window.show_error = lambda _title, message: window.errors.append(message)
        self.npy_path = Path(self.folder.name) / "weights.npy"
        window.kernel_view.choose_npy_path = lambda: str(self.npy_path)
        self.undo_action = find_action(window, QKeySequence.StandardKey.Undo)
        self.redo_action = find_action(window, QKeySequence.StandardKey.Redo)
        window.show()
        self.app.processEvents()
        self.first = self.last = window.document.stack
        STEPS["runs"] += 1

    def _record_exception(self, kind: type[BaseException], error: BaseException,
                          trace: TracebackType | None) -> None:
        self.exceptions.append("".join(traceback.format_exception(kind, error, trace)))

    @property
    def stack(self) -> Stack:
        return self.window.document.stack

    def _step(self, name: str) -> None:
        self.app.processEvents()
        undo_stack = self.window.document.undo_stack
        if undo_stack.index() == undo_stack.count():
            self.last = self.stack  # the newest state the history holds, for redo to reach
        STEPS["steps"] += 1
        STEPS[name] += 1

    # ---- building the stack ---------------------------------------------------------------------
    @rule(label=st.sampled_from(sorted(ENTRIES)))
    def add_from_palette(self, label: str) -> None:
        self.window.layer_palette.addRequested.emit(label)
        self._step("add")

    @precondition(lambda self: len(self.stack) > 0)
    @rule(data=st.data())
    def select(self, data: st.DataObject) -> None:
        view = self.window.stack_view
        paths = [(i, None) for i in range(view.topLevelItemCount())]
        paths += [(i, j) for i in range(view.topLevelItemCount())
                  for j in range(view.topLevelItem(i).childCount())]
        view.select(data.draw(st.sampled_from(paths), label="path"))
        self._step("select")

    @precondition(lambda self: len(self.stack) > 0)
    @rule(action=st.sampled_from(["delete", "duplicate"]))
    def delete_or_duplicate(self, action: str) -> None:
        view = self.window.stack_view
        (view.delete_action if action == "delete" else view.duplicate_action).trigger()
        self._step(action)

    @precondition(lambda self: len(self.stack) > 1)
    @rule(data=st.data())
    def drag_card(self, data: st.DataObject) -> None:
        """Drop a card above another card, or below the last one."""
        view = self.window.stack_view
        count = view.topLevelItemCount()
        source = data.draw(st.integers(0, count - 1), label="source")
        target = data.draw(st.integers(0, count), label="drop before")
        item = view.topLevelItem(min(target, count - 1))
        view.scrollToItem(item)
        rect = view.visualItemRect(item)
        pos = (rect.topLeft() + QPoint(40, 3) if target < count
               else rect.bottomLeft() + QPoint(40, -3))
        mime = QMimeData()
        mime.setData(LAYER_MIME, str(source).encode())
        view.dropEvent(QDropEvent(pos, Qt.DropAction.MoveAction, mime, Qt.MouseButton.LeftButton,
                                  Qt.KeyboardModifier.NoModifier))
        self._step("move")

    @precondition(lambda self: self.window.property_editor.name_edit is not None)
    @rule(data=st.data())
    def rename(self, data: st.DataObject) -> None:
        """Type a name in the property editor: a new one, a taken one, or blanks."""
        names = [layer.name for layer in self.stack.layers]
        name = data.draw(st.one_of(st.sampled_from(names), st.sampled_from(["", "  ", " x "]),
                                   st.text("abc_ 1", min_size=1, max_size=6)), label="name")
        edit = self.window.property_editor.name_edit
        edit.setText(name)
        edit.editingFinished.emit()
        self._step("rename")

    # ---- editing settings -----------------------------------------------------------------------
    @precondition(lambda self: any(editor.isEnabled()
                                   for editor in self.window.property_editor.editors.values()))
    @rule(data=st.data())
    def edit_field(self, data: st.DataObject) -> None:
        """Set one enabled field of the selected layer through its widget."""
        editor_panel = self.window.property_editor
        name = data.draw(st.sampled_from(sorted(n for n, e in editor_panel.editors.items()
                                                if e.isEnabled())), label="field")
        current = getattr(self.window.document.spec_at(editor_panel.path), name)
        editor = editor_panel.editors[name]
        value = data.draw(field_values(editor.info, current, cap=VALUE_CAP), label=name)
        set_editor_value(editor, value)
        self._step("edit field")

    @rule(data=st.data())
    def edit_input(self, data: st.DataObject) -> None:
        """Change the input row: channels, a size, the batch, or the number of axes."""
        row = self.window.input_editor
        spatial = self.stack.input.spatial
        what = data.draw(st.sampled_from(["channels", "batch", "axes"] + ["size"] * bool(spatial)),
                         label="input")
        if what == "channels":
            row.channels.setValue(data.draw(st.sampled_from([1, 2, 3, 4, 16]), label="channels"))
        elif what == "size":
            box = data.draw(st.sampled_from(row.sizes), label="axis")
            box.setValue(data.draw(st.sampled_from([1, 2, 3, 7, 16, MAX_INPUT_SIZE]), label="size"))
        elif what == "batch":
            row.batch.setValue(data.draw(st.integers(1, 2), label="batch"))
        elif max(spatial, default=0) <= MAX_VOLUME_SIZE:
            row.axes.setCurrentIndex(data.draw(st.integers(0, 3), label="axes"))
        else:
            row.axes.setCurrentIndex(data.draw(st.integers(0, min(len(spatial), 2)), label="axes"))
        self._step("edit input")

    # ---- undo and redo --------------------------------------------------------------------------
    @rule(times=st.integers(1, 4))
    def undo(self, times: int) -> None:
        for _ in range(times):
            self.undo_action.trigger()
        self._step("undo")

    @rule(times=st.integers(1, 4))
    def redo(self, times: int) -> None:
        for _ in range(times):
            self.redo_action.trigger()
        self._step("redo")

    # ---- weights --------------------------------------------------------------------------------
    @precondition(lambda self: self.window.kernel_view.apply_filter_action.isEnabled())
    @rule(data=st.data())
    def apply_kernel_preset(self, data: st.DataObject) -> None:
        kernels = self.window.kernel_view
        kernels.preset.setCurrentIndex(data.draw(st.integers(0, kernels.preset.count() - 1),
                                                 label="preset"))
        kernels.filter_spin.setValue(data.draw(st.integers(0, VALUE_CAP), label="filter"))
        every = data.draw(st.booleans(), label="all filters")
        (kernels.apply_all_action if every else kernels.apply_filter_action).trigger()
        self._step("kernel preset")

    @precondition(lambda self: self.window.kernel_view.reinit_action.isEnabled())
    @rule(initialiser=st.integers(0, 3), seed=st.integers(0, 3))
    def reinitialise(self, initialiser: int, seed: int) -> None:
        kernels = self.window.kernel_view
        kernels.initialiser.setCurrentIndex(initialiser)
        kernels.seed.setValue(seed)
        kernels.reinit_action.trigger()
        self._step("re-initialise")

    @precondition(lambda self: self.window.kernel_view.load_action.isEnabled())
    @rule(fits=st.booleans(), seed=st.integers(0, 3))
    def load_weights(self, fits: bool, seed: int) -> None:
        """Load the shown tensor from a .npy file of its own shape, or of a wrong one."""
        kernels = self.window.kernel_view
        shape = self.stack.layers[kernels.layer_index].weights[kernels.tensor.currentText()].shape
        shape = shape if fits else (*shape[:-1], shape[-1] + 1)
        np.save(self.npy_path, np.random.default_rng(seed).normal(size=shape).astype(np.float32))
        kernels.load_action.trigger()
        self._step("load weights")

    # ---- inputs and presets ---------------------------------------------------------------------
    @rule(data=st.data())
    def open_input(self, data: st.DataObject) -> None:
        """Choose how inputs fit, then open a sample or a .npy array shaped as the input or
        otherwise."""
        self.window.feature_view.fit.setCurrentIndex(data.draw(st.integers(0, 1), label="fit"))
        choices = [p.name for p in sample_files()] + ["fitting.npy", "misfit.npy"]
        name = data.draw(st.sampled_from(choices), label="file")
        path = next((p for p in sample_files() if p.name == name), None)
        if path is None:
            shape = self.stack.input.shape if name == "fitting.npy" else (2, 5)
            path = Path(self.folder.name) / name
            np.save(path, np.random.default_rng(0).normal(size=shape).astype(np.float32))
        self.window.open_input(path)
        self._step("open input")

    @rule(name=st.sampled_from(SMALL_INPUTS))
    def match_input_to_file(self, name: str) -> None:
        # Only a file that opened: matching the file opened before could make the input large.
        if self.window.open_input(next(p for p in sample_files() if p.name == name)):
            self.window.match_input_action.trigger()
        self._step("match input")

    @rule(name=st.sampled_from(CHEAP_PRESETS))
    def new_from_preset(self, name: str) -> None:
        self.window.new_from_preset(name)
        self.app.processEvents()
        self.first = self.stack  # the undo history starts again here
        self._step("preset")

    @rule()
    def settle(self) -> None:
        self.check_settled()
        self._step("settle")

    # ---- what must hold -------------------------------------------------------------------------
    @invariant()
    def no_exception_in_slots(self) -> None:
        assert not self.exceptions, "an exception escaped a Qt slot:\n" + "\n".join(self.exceptions)

    @invariant()
    def views_agree_with_the_document(self) -> None:
        document = self.window.document
        report = analyse(document.stack)  # raises nothing but for a bug
        assert len(report.layers) == len(document.report.layers) == len(document.stack)
        assert self.window.summary.rowCount() == len(document.stack) + 1  # and the totals row
        assert self.window.stack_view.topLevelItemCount() == len(document.stack)
        assert self.window.input_editor.current() == document.stack.input
        path = self.window.property_editor.path
        assert path is None or path[0] < len(document.stack)

    def check_settled(self) -> None:
        """Wait for the worker; the feature maps must then show the current stack's result."""
        assert self.window.compute.wait(SETTLE_MS), "the engine did not finish"
        self.app.processEvents()
        view = self.window.feature_view
        assert view.result is not None, f"no feature maps: {view.message.text()}"
        assert view.result.stack.layers == self.stack.layers, "the maps are for another stack"
        assert view.result.stack.input == self.stack.input
        # Samples and files give one sample whatever the batch is.
        assert view.result.input.shape[1:] == self.stack.input.sample_shape

    def teardown(self) -> None:
        try:
            if not self.exceptions:
                self.check_settled()
                while self.window.document.undo_stack.canUndo():
                    self.undo_action.trigger()
                    self.app.processEvents()
                self.no_exception_in_slots()
                difference = stack_difference(self.stack, self.first)
                assert difference is None, f"undoing everything: {difference}"
                self.views_agree_with_the_document()
                while self.window.document.undo_stack.canRedo():
                    self.redo_action.trigger()
                    self.app.processEvents()
                self.no_exception_in_slots()
                difference = stack_difference(self.stack, self.last)
                assert difference is None, f"redoing everything: {difference}"
                self.views_agree_with_the_document()
                self.check_settled()
        finally:
            self.window.close()
            self.window.deleteLater()
            self.app.processEvents()
            sys.excepthook = self._old_hook
            self.folder.cleanup()


def test_a_long_session_keeps_the_window_consistent() -> None:
    # pytest-qt's qapp fixture cannot reach a state machine: the machines share this application.
    app = QApplication.instance() or QApplication([])  # noqa: F841 - kept alive for the test
    STEPS.clear()
    run_state_machine_as_test(WindowSession, settings=settings(
        max_examples=scaled(6), stateful_step_count=scaled(25), deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]))
    print("window state machine:", dict(STEPS))
