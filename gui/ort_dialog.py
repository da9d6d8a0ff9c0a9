"""Run > Run with onnxruntime...: the current stack on the current input, onnxruntime beside the
NumPy engine.

On a pool thread the job runs the engine and onnxruntime (engine.onnx.runner.OrtRunner, every
layer's output) on the very input the feature maps show, each RUNS times after one warm-up
run (so session creation and first-touch costs are not timed), and reports the provider that
actually ran and the median time per run of both. The layer outputs go to the feature-map view,
whose "Show onnxruntime's outputs" toggle then flips between the two. Asking for CUDA where
onnxruntime has none shows the ConfigError's sentence.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np
from PySide6.QtWidgets import (QComboBox, QDialog, QHBoxLayout, QLabel, QProgressBar, QPushButton,
                               QVBoxLayout, QWidget)

from engine import executor
from gui.background import BackgroundJob, Progress
from gui.document import Document
from gui.feature_map_view import FeatureMapView
from gui.theme import colors
from models.stack import Stack

RUNS = 3
PROVIDERS = {"Auto (CUDA when available)": "auto", "CUDA": "cuda", "CPU": "cpu"}


@dataclass(frozen=True)
class Comparison:
    """One onnxruntime run of a stack on an input: every layer's output, the provider that ran,
    and the median seconds per run of onnxruntime and of the NumPy engine."""
    stack: Stack
    input: np.ndarray
    outputs: list[np.ndarray]
    provider: str
    ort_seconds: float
    engine_seconds: float


def run_both(stack: Stack, x: np.ndarray, provider: str, progress: Progress) -> Comparison:
    """Time the engine and onnxruntime on x (float32, the stack's input shape).

    Raises ConfigError when the stack cannot run or the provider is unavailable."""
    from engine.onnx.runner import OrtRunner  # onnxruntime is slow to import: only when asked

    runner = OrtRunner()
    progress(0, 2, "Preparing onnxruntime…")
    ort_run = runner.run(stack, x, provider, layer_outputs=True)  # warm-up: builds the session
    ort_times = []
    for _ in range(RUNS):
        ort_run = runner.run(stack, x, provider, layer_outputs=True)
        ort_times.append(ort_run.seconds)
    progress(1, 2, "Timing the NumPy engine…")
    engine_times = []
    for _ in range(RUNS + 1):
        start = time.perf_counter()
        result = executor.run(stack, x)
        engine_times.append(time.perf_counter() - start)
        if result.error is not None:
            raise result.error
    progress(2, 2, "Done")
    return Comparison(stack, x, ort_run.outputs, ort_run.provider,
                      statistics.median(ort_times), statistics.median(engine_times[1:]))


class OrtDialog(QDialog):
    """Runs the document's current stack on the input the feature view shows.

    Public state tests read and drive: `provider` (combo box), `run_button`, `result_label`,
    `error`, `job`, `comparison` (the last Comparison, or None).
    """

    def __init__(self, document: Document, view: FeatureMapView,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.view = view
        self.comparison: Comparison | None = None
        self.setWindowTitle("Run with onnxruntime")
        self.provider = QComboBox()
        for label, name in PROVIDERS.items():
            self.provider.addItem(label, name)
        self.run_button = QPushButton("Run")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.run)
        self.progress = QProgressBar()
        self.progress.setRange(0, 2)
        self.progress.setFormat("Ready")
        self.progress.setValue(0)
        self.result_label = QLabel("Runs the stack on the input shown in the feature maps, with "
                                   "onnxruntime and with the NumPy engine.")
        self.result_label.setWordWrap(True)
        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color: {colors().error};")
        self.error.hide()
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        row = QHBoxLayout()
        row.addWidget(QLabel("Provider:"))
        row.addWidget(self.provider, 1)
        row.addWidget(self.run_button)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.progress)
        layout.addWidget(self.result_label)
        layout.addWidget(self.error)
        layout.addLayout(buttons)
        self.resize(460, 200)

        self.job = BackgroundJob(self)
        self.job.progress.connect(self._progress)
        self.job.succeeded.connect(self._show_comparison)
        self.job.failed.connect(self._show_error)

    def run(self) -> None:
        """Start a run of the current stack on the view's input; results arrive later."""
        if self.job.running:
            return
        self.error.hide()
        result = self.view.result
        if result is None:
            self._show_error("there is no input to run yet: wait until the feature maps are "
                             "drawn, or open an input that fits the stack")
            return
        stack, x, provider = self.document.stack, result.input, self.provider.currentData()
        self.run_button.setEnabled(False)
        self.result_label.setText("Running…")
        self.job.start(lambda progress: run_both(stack, x, provider, progress))

    def _progress(self, step: int, total: int, text: str) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(step)
        self.progress.setFormat(text)

    def _show_comparison(self, comparison: Comparison) -> None:
        self.run_button.setEnabled(True)
        self.comparison = comparison
        ratio = comparison.engine_seconds / comparison.ort_seconds if comparison.ort_seconds else 0
        self.result_label.setText(
            f"onnxruntime ran on {comparison.provider}: "
            f"{comparison.ort_seconds * 1e3:.2f} ms per run\n"
            f"NumPy engine, same input: {comparison.engine_seconds * 1e3:.2f} ms per run "
            f"({ratio:.1f}× onnxruntime's time; median of {RUNS} runs each)\n"
            f"Tick \"Show onnxruntime's outputs\" in the feature maps to compare the layers.")
        self.view.show_ort_outputs(comparison.stack, comparison.input, comparison.outputs,
                                   comparison.provider)

    def _show_error(self, message: str) -> None:
        self.run_button.setEnabled(True)
        self.progress.setValue(0)
        self.progress.setFormat("Failed")
        self.result_label.setText("")
        self.error.setText(message[:1].upper() + message[1:])
        self.error.show()

    def closeEvent(self, event: object) -> None:
        self.job.wait()  # the job's result would arrive for a dialog being torn down
        super().closeEvent(event)  # type: ignore[arg-type]
