"""The main window: the stack in the middle, palette, properties and summary in docks.

The central splitter holds the layer cards and, beside them, the slot where the live feature
maps will be drawn. File handling (New, Open, Save, recent files) and the unsaved-changes prompt
live here; the prompt, the file dialogs and error boxes are methods so tests can answer them.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import (QAction, QActionGroup, QCloseEvent, QDragEnterEvent, QDropEvent,
                           QKeySequence)
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QFrame, QLabel, QMainWindow, QMessageBox,
                               QSplitter, QVBoxLayout, QWidget)

from engine.executor import RunResult
from engine.input_files import SUFFIXES as INPUT_SUFFIXES, ImageTooLarge, native_shape
from gui import onnx_warmup
from gui.autosave import Autosaver, app_data_folder
from gui.compute_worker import ComputeWorker
from gui.document import Document
from gui.export_dialog import ExportDialog
from gui.explain_dock import ExplainView
from gui.feature_map_view import FeatureMapView
from gui.file_refusal import one_line
from gui.find_node import FindBar
from gui.kernel_view import KernelView
from gui.model_properties import ModelPropertiesDialog
from gui.open_worker import FileOpener, is_onnx_file
from gui.ort_dialog import OrtDialog
from gui.palette import Palette
from gui.property_editor import InputEditor, PropertyEditor
from gui.recovery import CrashedSession
from gui.sample_inputs import (input_caption, load_sample, load_user_input, sample_files,
                               sample_path)
from gui.stack_view import StackView
from gui.summary_table import SummaryTable, human_count, shape_text
from gui.theme import THEMES, apply_theme, current_theme, mute
from models import project
from models.analysis import StackReport
from models.errors import ConfigError, FileChangedError
from models.presets import PRESETS
from models.stack import InputSpec, Stack

APP_NAME = "ConvScope"
ORGANISATION = "ConvScope"
MAX_RECENT = 8
DEFAULT_PRESET = "Demo: edges to classes"

FILE_FILTER = f"ConvScope projects (*{project.SUFFIX});;ONNX models (*.onnx);;All files (*)"
PROJECT_SUFFIXES = (project.SUFFIX, ".onnx")
INPUT_FILTER = ("Inputs (*.png *.jpg *.jpeg *.bmp *.npy *.csv *.wav);;Images (*.png *.jpg *.jpeg "
                "*.bmp);;NumPy arrays (*.npy);;Signals (*.csv *.wav);;All files (*)")


def dropped_file(event: QDragEnterEvent | QDropEvent) -> Path | None:
    """The one local file a drag carries when its suffix is an input's or a project's, else None
    (several files, remote URLs and other suffixes are refused: there is no single right action)."""
    urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
    if len(urls) != 1 or not urls[0].isLocalFile():
        return None
    path = Path(urls[0].toLocalFile())
    return path if path.suffix.lower() in (*INPUT_SUFFIXES, *PROJECT_SUFFIXES) else None


class FeatureMapPanel(QFrame):
    """The slot beside the stack where the live feature-map view will go.

    Until then it says so; `set_view(widget)` puts the real view in its place.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("FeatureMapPanel")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.layout_ = QVBoxLayout(self)
        title = QLabel("Feature maps")
        title.setStyleSheet("font-weight: bold; font-size: 120%;")
        self.placeholder = QLabel("Feature maps arrive with the live view: every layer's output "
                                  "on a sample input, updated as you edit the stack.")
        self.placeholder.setWordWrap(True)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        mute(self.placeholder)
        self.layout_.addWidget(title)
        self.layout_.addWidget(self.placeholder, 1)

    def set_view(self, view: QWidget) -> None:
        self.layout_.replaceWidget(self.placeholder, view)
        # Out of the layout but still a visible child until deleted: hidden now, or its text
        # shows through the view's empty margins until the event loop next runs.
        self.placeholder.hide()
        self.placeholder.deleteLater()


class MainWindow(QMainWindow):
    """ConvScope's window on one Document.

    settings: where geometry, dock layout, theme and recent files are kept (tests pass a
    temporary one). restore: whether to apply the saved geometry and dock layout.
    """

    def __init__(self, stack: Stack | None = None, title: str = "demo",
                 settings: QSettings | None = None, restore: bool = True) -> None:
        super().__init__()
        self.settings = settings if settings is not None else QSettings(ORGANISATION, APP_NAME)
        if stack is None:
            stack = PRESETS[DEFAULT_PRESET].build()
        self.document = Document(stack, title=title, parent=self)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks
                            | QMainWindow.DockOption.AllowTabbedDocks)
        self.setAcceptDrops(True)  # a dropped input or project file opens (see dropEvent)

        self.input_editor = InputEditor(self.document)
        self.stack_view = StackView(self.document)
        self.find_bar = FindBar(self.document)  # Ctrl+F
        self.find_bar.nodeChosen.connect(self.stack_view.select)
        self.feature_maps = FeatureMapPanel()
        self.compute = ComputeWorker(self)
        self.feature_view = FeatureMapView(previews=self.compute.previews)
        self.feature_maps.set_view(self.feature_view)
        self._version = 0
        self._input_path: Path | None = None  # None: the built-in sample
        self._input: np.ndarray | None = None
        self._input_shape: tuple[int, ...] | None = None  # the sample shape _input was fitted to
        self.fit_mode = "resize"  # how images and signals meet the input size: resize or crop
        self._downscale_input = False  # whether the opened input is an image read downscaled
        self._nonfinite_message = ""  # the status message _report_nonfinite shows, if any
        self.opener = FileOpener(self)  # reads opened files off the UI thread (gui.open_worker)
        self.model_file: Path | None = None  # the file the document was opened from, if any
        # The project file's version on disk as last read or written: a save over a file that
        # another program has changed since asks first.
        self._disk_stamp: project.FileStamp | None = None
        # No person to answer (a --screenshot run): errors go to stderr, never a blocking box.
        self.unattended = False
        # Unsaved work is copied to a recovery file (gui.autosave); a later start offers it back.
        self.autosave = Autosaver(self.document, app_data_folder(self.settings) / "recovery",
                                  lambda: self._input_path, self)
        self.autosave.failed.connect(lambda text: self.statusBar().showMessage(text, 8000))
        stack_panel = QWidget()
        stack_layout = QVBoxLayout(stack_panel)
        stack_layout.setContentsMargins(0, 0, 0, 0)
        stack_layout.setSpacing(2)
        stack_layout.addWidget(self.input_editor)
        stack_layout.addWidget(self.find_bar)
        stack_layout.addWidget(self.stack_view, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(stack_panel)
        self.splitter.addWidget(self.feature_maps)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.setCentralWidget(self.splitter)

        self.layer_palette = Palette()
        self.property_editor = PropertyEditor(self.document)
        self.summary = SummaryTable(self.document)
        palette_panel = QWidget()
        palette_layout = QVBoxLayout(palette_panel)
        palette_layout.setContentsMargins(0, 0, 0, 4)
        palette_layout.addWidget(self.layer_palette, 1)
        hint = QLabel("Double-click, press Enter or drag onto the stack to add a layer.")
        hint.setWordWrap(True)
        hint.setContentsMargins(6, 0, 6, 0)
        palette_layout.addWidget(mute(hint))
        self.palette_dock = self._dock("Palette", palette_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.properties_dock = self._dock("Properties", self.property_editor,
                                          Qt.DockWidgetArea.RightDockWidgetArea)
        self.summary_dock = self._dock("Summary", self.summary, Qt.DockWidgetArea.BottomDockWidgetArea)

        self.layer_palette.addRequested.connect(lambda label: self.stack_view.add_from_palette(label))
        self.stack_view.pathSelected.connect(self.property_editor.show_path)
        # The summary's rows and the cards select together (the summary does not echo back).
        self.summary.layerChosen.connect(self.stack_view.select)
        self.stack_view.pathSelected.connect(
            lambda path: self.summary.select_layer(None if path is None else path[0]))
        self.stack_view.message.connect(lambda text: self.statusBar().showMessage(text, 6000))
        self.document.stackChanged.connect(self._show_totals)
        self.document.modifiedChanged.connect(self.setWindowModified)
        self.document.pathChanged.connect(lambda _path: self._update_title())
        self.document.stackChanged.connect(lambda _stack, _report: self.compute_maps())
        self.stack_view.pathSelected.connect(
            lambda path: self.feature_view.select_layer(None if path is None else path[0]))
        self.feature_view.layerChosen.connect(self.stack_view.select)
        self.compute.finished.connect(lambda _version, result: self.feature_view.show_result(result))
        self.compute.finished.connect(lambda _version, result: self._report_nonfinite(result))
        self.compute.failed.connect(lambda _version, message: self.feature_view.show_failure(message))
        self.compute.busy.connect(self.feature_view.set_busy)
        self.feature_view.fitChosen.connect(self.set_fit_mode)

        self._build_menus()
        # Kernels: the selected convolution's weights, with its edits mirrored in a Weights menu.
        # A lambda, not the bound method: tests replace show_error on the instance.
        self.kernel_view = KernelView(self.document,
                                      lambda title, text: self.show_error(title, text))
        self.kernels_dock = self._dock("Kernels", self.kernel_view,
                                       Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.summary_dock, self.kernels_dock)
        self.kernels_dock.visibilityChanged.connect(self.kernel_view.set_shown)
        self.summary_dock.raise_()
        self.stack_view.pathSelected.connect(
            lambda path: self.kernel_view.select_layer(None if path is None else path[0]))
        weights_menu = self.menuBar().addMenu("&Weights")
        weights_menu.addActions(self.kernel_view.menu_actions())
        weights_menu.addAction(self.kernels_dock.toggleViewAction())
        # Explain: the clicked pixel's receptive field, the layer's formulas and its im2col row.
        self.explain = ExplainView()
        self.explain_dock = self._dock("Explain", self.explain,
                                       Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.summary_dock, self.explain_dock)
        self.summary_dock.raise_()
        self.stack_view.pathSelected.connect(
            lambda path: self.explain.select_layer(None if path is None else path[0]))
        self.compute.finished.connect(lambda _version, result: self.explain.show_result(result))
        self.feature_view.pixelClicked.connect(self.explain_pixel)
        self.explain.fieldChanged.connect(self.feature_view.show_field)
        self.explain_dock.visibilityChanged.connect(self.explain.set_shown)
        self.view_menu.addAction(self.explain_dock.toggleViewAction())
        self._update_title()
        self._show_totals(self.document.stack, self.document.report)
        self.resize(1440, 900)
        self.resizeDocks([self.palette_dock, self.properties_dock], [190, 330],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([self.summary_dock], [230], Qt.Orientation.Vertical)
        if restore:
            self._restore_layout()
        self._select_first()
        self.compute_maps()

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{title}Dock")  # saveState() finds docks by object name
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    # ---- menus --------------------------------------------------------------------------------
    def _action(self, menu: object, text: str, slot: object,
                shortcut: QKeySequence | QKeySequence.StandardKey | None = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)  # type: ignore[attr-defined]
        return action

    def _build_menus(self) -> None:
        keys = QKeySequence.StandardKey
        file_menu = self.menuBar().addMenu("&File")
        self.new_action = self._action(file_menu, "&New", self.new_document, keys.New)
        presets = file_menu.addMenu("New from &preset")
        presets.setToolTipsVisible(True)
        for name, preset in PRESETS.items():
            action = self._action(presets, name, lambda _=False, n=name: self.new_from_preset(n))
            action.setToolTip(" ".join(preset.description.split()))
        file_menu.addSeparator()
        self._action(file_menu, "&Open...", self.open_dialog, keys.Open)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._action(file_menu, "Open &input...", self.open_input_dialog)
        samples = file_menu.addMenu("Open &sample input")
        for path in sample_files():
            self._action(samples, path.name, lambda _=False, p=path: self.open_input(p))
        self.match_input_action = self._action(file_menu, "&Match stack input to file",
                                               self.match_input_to_file)
        self.match_input_action.setToolTip("Set the stack's input channels and size to the "
                                           "opened input file's own, so it is not resized")
        file_menu.addSeparator()
        self._action(file_menu, "&Save", self.save, keys.Save)
        self._action(file_menu, "Save &as...", self.save_as, keys.SaveAs)
        file_menu.addSeparator()
        self._action(file_menu, "Model &properties...", self.model_properties)
        file_menu.addSeparator()
        quit_action = self._action(file_menu, "&Quit", self.close, keys.Quit)

        edit_menu = self.menuBar().addMenu("&Edit")
        undo = self.document.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcut(keys.Undo)
        redo = self.document.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcut(keys.Redo)
        edit_menu.addActions([undo, redo])
        edit_menu.addSeparator()
        edit_menu.addActions([self.stack_view.delete_action, self.stack_view.duplicate_action,
                              self.stack_view.rename_action])
        edit_menu.addSeparator()
        self._action(edit_menu, "&Find node...", self.find_bar.start, keys.Find)

        view_menu = self.view_menu = self.menuBar().addMenu("&View")
        themes = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        for name in THEMES:
            action = self._action(view_menu, f"{name.title()} theme",
                                  lambda _=False, n=name: self.set_theme(n))
            action.setCheckable(True)
            action.setChecked(name == current_theme())
            themes.addAction(action)
            self.theme_actions[name] = action
        view_menu.addSeparator()
        for dock in (self.palette_dock, self.properties_dock, self.summary_dock):
            view_menu.addAction(dock.toggleViewAction())

        # ONNX: File > Export ONNX... above Quit, and the Run menu (gui.export_dialog, gui.ort_dialog).
        export_action = QAction("&Export ONNX...", self)
        export_action.setShortcut(QKeySequence("Ctrl+E"))
        export_action.triggered.connect(self.export_onnx_dialog)
        file_menu.insertAction(quit_action, export_action)
        file_menu.insertSeparator(quit_action)
        run_menu = self.menuBar().addMenu("&Run")
        self._action(run_menu, "Run with &onnxruntime...", self.ort_dialog)

    def export_onnx_dialog(self) -> ExportDialog:
        """Open File > Export ONNX... on the current stack (window-modal, not blocking)."""
        dialog = ExportDialog(self.document.stack, self.document.display_name, self._last_folder(),
                              self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def model_properties(self) -> ModelPropertiesDialog:
        """Open File > Model properties... (modeless): the network's, and for an imported model
        what its ONNX file says (gui.model_properties)."""
        source = self.model_file
        onnx_file = source if source is not None and is_onnx_file(source) else None
        dialog = ModelPropertiesDialog(self.document.stack, self.document.report,
                                       self.document.path or source, onnx_file,
                                       self.document.display_name, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def ort_dialog(self) -> OrtDialog:
        """Open Run > Run with onnxruntime... (modeless: the feature maps stay usable)."""
        dialog = OrtDialog(self.document, self.feature_view, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def set_theme(self, name: str) -> None:
        apply_theme(name)
        self.settings.setValue("theme", name)
        self.theme_actions[name].setChecked(True)
        # The custom-painted and style-sheeted parts read the theme's colours when drawn.
        self.stack_view.viewport().update()
        self.property_editor.show_path(self.property_editor.path)
        self.summary.follow_theme()
        self.feature_view.follow_theme()
        self.explain.follow_theme()

    def explain_pixel(self, layer_index: int, channel: int, position: tuple[int, ...]) -> None:
        """Bring the Explain dock forward on the clicked feature-map pixel."""
        self.explain_dock.show()
        self.explain_dock.raise_()
        self.explain.select_pixel(layer_index, channel, position)

    # ---- title and status ---------------------------------------------------------------------
    def _update_title(self) -> None:
        self.setWindowTitle(f"{self.document.display_name}[*] — {APP_NAME}")
        self.setWindowModified(self.document.modified)

    def _show_totals(self, _stack: Stack, report: StackReport) -> None:
        if report.ok:
            text = (f"{report.total_params:,} parameters · {human_count(report.total_macs)} MACs"
                    f" · output {shape_text(report.output_shape)}")
        else:
            text = str(report.first_error)
        self.statusBar().showMessage(text)

    def _select_first(self) -> None:
        """After a new document: its first node selected, and the keys on the cards (Del, F2,
        arrows), not in whatever editor the rebuilt forms left focus in."""
        if len(self.document.stack):
            self.stack_view.select(0)
        else:
            self.property_editor.show_path(None)
        self.stack_view.setFocus()

    # ---- documents ----------------------------------------------------------------------------
    def ask_save_changes(self) -> QMessageBox.StandardButton:
        """Ask whether to save unsaved changes: Save, Discard or Cancel (tests replace this)."""
        buttons = (QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                   | QMessageBox.StandardButton.Cancel)
        return QMessageBox.question(self, APP_NAME, f"Save the changes to "
                                    f"{self.document.display_name}?", buttons,
                                    QMessageBox.StandardButton.Save)

    def ask_downscale(self, message: str) -> bool:
        """Whether to read an image too large to decode whole reduced instead (tests replace
        this); message says how large it is."""
        buttons = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
        answer = QMessageBox.question(self, APP_NAME, f"{message}.\n\nDownscale it while "
                                      f"reading it?", buttons)
        return answer == QMessageBox.StandardButton.Yes

    def ask_recover(self, session: CrashedSession) -> bool:
        """Whether to recover a crashed session's work; No deletes it (tests replace this)."""
        buttons = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
        answer = QMessageBox.question(self, APP_NAME, session.question(), buttons)
        return answer == QMessageBox.StandardButton.Yes

    def show_error(self, title: str, message: str) -> None:
        """Tell the person something failed, in one box (tests replace this); when unattended,
        as one line on stderr instead."""
        if self.unattended:
            print(f"{APP_NAME.lower()}: error: {one_line(message)}", file=sys.stderr)
            return
        QMessageBox.critical(self, title, message)

    def choose_open_path(self) -> str:
        """The file to open, or "" when cancelled (tests replace this)."""
        return QFileDialog.getOpenFileName(self, "Open", self._last_folder(), FILE_FILTER)[0]

    def choose_save_path(self) -> str:
        """Where to save, or "" when cancelled (tests replace this)."""
        start = str(Path(self._last_folder()) / (self.document.display_name + project.SUFFIX))
        return QFileDialog.getSaveFileName(self, "Save as", start,
                                           f"ConvScope projects (*{project.SUFFIX})")[0]

    def maybe_save(self) -> bool:
        """True when it is fine to drop the current stack (saved, discarded or unchanged)."""
        if not self.document.modified:
            return True
        answer = self.ask_save_changes()
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def new_document(self) -> None:
        if self.maybe_save():
            self.document.reset(Stack(InputSpec()), None, "untitled")
            self.model_file = None
            self._select_first()

    def new_from_preset(self, name: str) -> None:
        if self.maybe_save():
            self.document.reset(PRESETS[name].build(), None, name)
            self.model_file = None
            self._select_first()

    def open_dialog(self) -> None:
        with onnx_warmup.while_dialog_is_up():  # the person picks while onnx imports
            path = self.choose_open_path()
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> bool:
        """Open a project or .onnx file; every way in (File > Open, Open recent, a dropped file,
        the start-up argument) comes here. Returns whether it opened.

        The file is read on a worker while the window stays live, with a progress dialog and
        Cancel when that takes a while (gui.open_worker); Cancel keeps the current stack. A file
        that cannot open shows one "Cannot open file" line naming it (gui.file_refusal) and
        changes nothing; anything else raised while reading is a bug and is raised here, on the
        UI thread, for the crash reporter. The file is read before asking about unsaved changes,
        so a file that cannot open never costs the person a decision."""
        if self.opener.busy:
            self.statusBar().showMessage("Another file is still opening; wait, or cancel it", 6000)
            return False
        # Stamped before reading: a change made while it is read makes the next save ask.
        stamp = project.FileStamp.of(path)
        opened = self.opener.read(path)
        if opened is None:
            return False
        if opened.refusal is not None:
            self.show_error("Cannot open file", opened.refusal)
            return False
        if not self.maybe_save():
            return False
        is_project = not is_onnx_file(path)
        # An imported model saves as a new project, never over the .onnx file.
        self.document.reset(opened.stack, path if is_project else None, Path(path).stem)
        self.model_file = Path(path)
        self._disk_stamp = stamp if is_project else None
        self._add_recent(path)
        self._select_first()
        return True

    def save(self) -> bool:
        if self.document.path is None:
            return self.save_as()
        return self._write(self.document.path)

    def save_as(self) -> bool:
        path = self.choose_save_path()
        if not path:
            return False
        if not path.endswith(project.SUFFIX):
            path += project.SUFFIX
        return self._write(Path(path))

    def ask_overwrite_changed(self, path: Path) -> bool:
        """Whether to save over `path`, which another program changed since it was opened or
        saved here (tests replace this)."""
        answer = QMessageBox.warning(
            self, "File changed on disk",
            f"{path.name} was changed by another program since ConvScope opened or saved it. "
            f"Overwrite it with this network?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Save

    def _write(self, path: Path) -> bool:
        expect = self._disk_stamp if path == self.document.path else None
        try:
            try:
                self._disk_stamp = project.save(self.document.stack, path, expect=expect)
            except FileChangedError:
                if not self.ask_overwrite_changed(path):
                    return False
                self._disk_stamp = project.save(self.document.stack, path)
        except OSError as err:
            self.show_error("Cannot save", f"cannot write {path.name}: {err.strerror or err}")
            return False
        self.document.mark_saved(path)
        self._add_recent(path)
        self.statusBar().showMessage(f"Saved {path.name}", 4000)
        return True

    # ---- live feature maps --------------------------------------------------------------------
    def choose_input_path(self) -> str:
        """The input file to open, or "" when cancelled (tests replace this)."""
        return QFileDialog.getOpenFileName(self, "Open input", self._last_folder(), INPUT_FILTER)[0]

    def open_input_dialog(self) -> None:
        path = self.choose_input_path()
        if path:
            self.open_input(path)

    def open_input(self, path: str | Path) -> bool:
        """Feed the feature maps from a file; on failure show why and keep the current input."""
        input_spec = self.document.stack.input
        downscale = False
        try:
            try:
                x = load_user_input(path, input_spec, self.fit_mode)
            except ImageTooLarge as err:
                if not self.ask_downscale(str(err)):
                    return False
                downscale = True
                x = load_user_input(path, input_spec, self.fit_mode, downscale=True)
        except ConfigError as err:
            self.show_error("Cannot open input", str(err))
            return False
        self._downscale_input = downscale  # refits read the file the same way
        self._set_input(Path(path), x, input_spec.sample_shape)
        self.compute_maps()
        return True

    def set_fit_mode(self, mode: str) -> None:
        """Fit the input ("resize" or "crop") this way from now on, refitting the shown one."""
        self.fit_mode = mode
        self._input_shape = None  # forces _fitting_input to reload with the new mode
        self.compute_maps()

    def match_input_to_file(self) -> None:
        """Take the stack's input channels and spatial size from the opened input file (undoable)."""
        if self._input_path is None:
            self.show_error("No input file", "Open an input file first (File > Open input...).")
            return
        try:
            shape = native_shape(self._input_path, downscale=self._downscale_input)
            batch = self.document.stack.input.batch
            self.document.set_input(InputSpec(shape[0], shape[1:], batch), "input from file")
        except ConfigError as err:
            self.show_error("Cannot use the input's size", str(err))

    def compute_maps(self) -> None:
        """Post the current stack and input to the worker; the drawing follows when it is done.

        The input is refitted first when the stack's input shape changed: the opened file when it
        still fits, the built-in sample otherwise.
        """
        self._version += 1
        stack = self.document.stack
        try:
            x = self._fitting_input(stack)
        except ConfigError as err:
            self.feature_view.show_failure(str(err))
            return
        self.compute.post(self._version, stack, x)

    def _fitting_input(self, stack: Stack) -> np.ndarray:
        shape = stack.input.sample_shape
        if self._input is not None and self._input_shape == shape:
            return self._input
        if self._input_path is not None:
            try:
                self._set_input(self._input_path,
                                load_user_input(self._input_path, stack.input, self.fit_mode,
                                                self._downscale_input),
                                shape)
                return self._input
            except ConfigError as err:
                self.statusBar().showMessage(f"{err}; showing the built-in sample instead", 8000)
        self._set_input(None, load_sample(stack.input, self.fit_mode), shape)
        return self._input

    def _set_input(self, path: Path | None, x: np.ndarray, shape: tuple[int, ...]) -> None:
        self._input_path, self._input, self._input_shape = path, x, shape
        shown = path if path is not None else sample_path(self.document.stack.input)
        self.feature_view.input_name = input_caption(shown, path is None, self.fit_mode)

    def _report_nonfinite(self, result: RunResult) -> None:
        """Keep a status message naming where NaN or infinite values start while a result holds
        any; remove it with the first result that holds none."""
        warning = result.nonfinite  # already computed by the worker
        bar = self.statusBar()
        if warning is not None:
            self._nonfinite_message = warning[0].upper() + warning[1:]
            bar.showMessage(self._nonfinite_message)
        elif self._nonfinite_message and bar.currentMessage() == self._nonfinite_message:
            bar.clearMessage()

    # ---- settings -----------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        value = self.settings.value("recent", [])
        # INI settings hand back a single-item list as a plain string.
        return [value] if isinstance(value, str) else list(value or [])

    def _add_recent(self, path: str | Path) -> None:
        path = str(Path(path).resolve())
        recent = [path] + [p for p in self.recent_files() if p != path]
        self.settings.setValue("recent", recent[:MAX_RECENT])

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self.recent_files():
            action = self.recent_menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.triggered.connect(lambda _=False, p=path: self.open_path(p))
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("No recent files").setEnabled(False)

    def _last_folder(self) -> str:
        recent = self.recent_files()
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)

    # ---- drag and drop ------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dropped_file(event) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        """An input file (image, .npy, .csv, .wav) feeds the feature maps; a project or .onnx
        file opens as the project (asking first about unsaved changes)."""
        path = dropped_file(event)
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        if path.suffix.lower() in PROJECT_SUFFIXES:
            self.open_path(path)
        else:
            self.open_input(path)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.opener.cancel()  # a file still being read would open into a closing window
        if not self.maybe_save():
            event.ignore()
            return
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        # A run still going would outlive the window and race interpreter shutdown.
        self.compute.wait()
        self.autosave.close()  # saved or discarded: no recovery copy is left to offer
        event.accept()
