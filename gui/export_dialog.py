"""File > Export ONNX...: write the stack as an .onnx file, check it, compare it with the engine.

The export (engine.onnx.export.save_model, atomic: nothing half-written stays on failure), the
onnx checker's full check of the written file and the layer-by-layer comparison with onnxruntime
(engine.onnx.verify, CPU provider, the chosen opset) all run on a pool thread; the dialog shows the
stage on a progress bar, then one table row per layer and a summary line, or the error's one
sentence. onnx and onnxruntime are imported only when the dialog needs them (the app starts
without them).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QFileDialog, QHBoxLayout, QHeaderView,
                               QLabel, QLineEdit, QProgressBar, QPushButton, QSpinBox,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from gui.background import BackgroundJob, Progress
from gui.theme import colors
from models.stack import Stack

STAGES = 3  # export, check, compare


@dataclass(frozen=True)
class ExportOutcome:
    """What a finished export hands the dialog: the file, its opset and the comparison."""
    path: Path
    opset: int
    report: object  # engine.onnx.verify.VerifyReport (engine.onnx.verify is imported lazily)


def export_and_verify(stack: Stack, path: Path, opset: int, progress: Progress) -> ExportOutcome:
    """Save stack to path atomically, run onnx's full check on the file, compare every layer
    with onnxruntime on CPU. Raises ConfigError (the stack, the opset) or OSError (the path)."""
    import onnx  # slow imports, and only this job needs them

    from engine.onnx.export import save_model
    from engine.onnx.runner import OrtRunner
    from engine.onnx.verify import verify

    progress(0, STAGES, "Exporting…")
    try:
        save_model(stack, path, opset)
    except OSError as err:
        # The error names the temporary file beside path; the person knows only path.
        raise OSError(err.errno, err.strerror, str(path)) from None
    progress(1, STAGES, "Checking with onnx.checker…")
    onnx.checker.check_model(str(path), full_check=True)
    progress(2, STAGES, "Comparing every layer with onnxruntime…")
    # The same opset as the file, so the comparison is of the graph that was written.
    report = verify(stack, provider="cpu", runner=OrtRunner(opset=opset))
    progress(3, STAGES, "Done")
    return ExportOutcome(path, opset, report)


class ExportDialog(QDialog):
    """Export the stack `stack` (captured when the dialog opens: stacks are immutable values).

    Public state tests read and drive: `path_edit`, `opset`, `export_button`, `progress`,
    `table` (columns: layer, max abs diff, max rel diff, result), `summary`, `error`, `job`.
    """

    def __init__(self, stack: Stack, name: str, folder: str | Path,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from engine.onnx.export import DEFAULT_OPSET, MIN_OPSET, max_opset

        self.stack = stack
        self.setWindowTitle("Export ONNX")
        self.path_edit = QLineEdit(str(Path(folder) / f"{name}.onnx"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.opset = QSpinBox()
        self.opset.setRange(MIN_OPSET, max_opset())
        self.opset.setValue(DEFAULT_OPSET)
        self.opset.setToolTip("ONNX operator set version written into the file")
        self.export_button = QPushButton("Export")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.export)
        self.progress = QProgressBar()
        self.progress.setRange(0, STAGES)
        self.progress.setValue(0)
        self.progress.setFormat("Ready")
        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color: {colors().error};")
        self.error.hide()
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Layer", "Max abs diff", "Max rel diff", "Result"])
        self.table.verticalHeader().hide()
        # Compact rows: a typical stack's dozen layers fit without scrolling.
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.summary = QLabel("The file is checked by onnx and every layer is compared with "
                              "onnxruntime (CPU) on a random input.")
        self.summary.setWordWrap(True)
        close = QPushButton("Close")
        close.clicked.connect(self.close)

        path_row = QHBoxLayout()
        path_row.addWidget(QLabel("File:"))
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse)
        options_row = QHBoxLayout()
        options_row.addWidget(QLabel("Opset:"))
        options_row.addWidget(self.opset)
        options_row.addStretch(1)
        options_row.addWidget(self.export_button)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addLayout(path_row)
        layout.addLayout(options_row)
        layout.addWidget(self.progress)
        layout.addWidget(self.error)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.summary)
        layout.addLayout(buttons)
        self.resize(640, 520)

        self.job = BackgroundJob(self)
        self.job.progress.connect(self._progress)
        self.job.succeeded.connect(self._show_outcome)
        self.job.failed.connect(self._show_error)

    def _browse(self) -> None:
        path = QFileDialog.getSaveFileName(self, "Export ONNX", self.path_edit.text(),
                                           "ONNX models (*.onnx)")[0]
        if path:
            self.path_edit.setText(path if path.endswith(".onnx") else path + ".onnx")

    def export(self) -> None:
        """Start the export of self.stack to the path and opset shown; results arrive later."""
        if self.job.running:
            return
        path = Path(self.path_edit.text().strip()).expanduser()
        opset, stack = self.opset.value(), self.stack
        self.error.hide()
        self.table.setRowCount(0)
        self.summary.setText(f"Exporting {path.name}…")
        self.export_button.setEnabled(False)
        self.job.start(lambda progress: export_and_verify(stack, path, opset, progress))

    def _progress(self, step: int, total: int, text: str) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(step)
        self.progress.setFormat(text)

    def _show_outcome(self, outcome: ExportOutcome) -> None:
        self.export_button.setEnabled(True)
        report = outcome.report
        good, bad = QColor(colors().accent), QColor(colors().error)
        self.table.setRowCount(len(report.layers))  # type: ignore[attr-defined]
        for row, layer in enumerate(report.layers):  # type: ignore[attr-defined]
            cells = [f"{layer.name} ({layer.type_name})", f"{layer.max_abs:.2e}",
                     f"{layer.max_rel:.2e}", "pass" if layer.ok else "FAIL"]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if column == 3:
                    item.setForeground(good if layer.ok else bad)
                self.table.setItem(row, column, item)
        matching = sum(layer.ok for layer in report.layers)  # type: ignore[attr-defined]
        total = len(report.layers)  # type: ignore[attr-defined]
        from engine.onnx.verify import TOLERANCE
        self.summary.setText(f"Saved {outcome.path.name} (opset {outcome.opset}), checked; "
                             f"{matching}/{total} layers match onnxruntime "
                             f"(relative tolerance {TOLERANCE:g})")
        self.summary.setStyleSheet("" if matching == total else f"color: {colors().error};")

    def _show_error(self, message: str) -> None:
        self.export_button.setEnabled(True)
        self.progress.setValue(0)
        self.progress.setFormat("Failed")
        self.summary.setText("Nothing was exported.")
        self.error.setText(message[:1].upper() + message[1:])
        self.error.show()

    def closeEvent(self, event: object) -> None:
        # A job still running holds the stack only; let it finish so it does not race teardown.
        self.job.wait()
        super().closeEvent(event)  # type: ignore[arg-type]
