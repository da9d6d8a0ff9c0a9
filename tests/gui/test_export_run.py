"""File > Export ONNX... and Run > Run with onnxruntime...: the work runs off the UI thread, the
results (a checked file, a per-layer comparison, timings, onnxruntime's maps) or one clear
sentence come back to the dialogs and the feature-map view."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from engine.onnx.runner import available_providers
from gui.ort_dialog import PROVIDERS
from models.stack import InputSpec
from tests.gui.test_feature_maps import CONV2, drawn, expected_image, wait_drawn


def finish(qtbot, job) -> None:
    qtbot.waitUntil(lambda: not job.running, timeout=15000)


def export_to(qtbot, window, path):
    dialog = window.export_onnx_dialog()
    dialog.path_edit.setText(str(path))
    dialog.export_button.click()
    finish(qtbot, dialog.job)
    return dialog


def test_export_writes_a_checked_file_whose_layers_all_match(qtbot, window, tmp_path):
    dialog = export_to(qtbot, window, tmp_path / "net.onnx")
    assert dialog.error.isHidden(), dialog.error.text()
    onnx.checker.check_model(str(tmp_path / "net.onnx"), full_check=True)
    layers = len(window.document.stack.layers)
    assert dialog.table.rowCount() == layers
    assert all(dialog.table.item(row, 3).text() == "pass" for row in range(layers))
    assert dialog.summary.text().startswith(
        f"Saved net.onnx (opset 17), checked; {layers}/{layers} layers match onnxruntime")
    dialog.grab().save("/tmp/export.png")


def test_an_invalid_stack_shows_its_error_and_writes_nothing(qtbot, window, tmp_path):
    window.document.set_input(InputSpec(3, (2, 2)))  # too small for the demo's pooling
    dialog = export_to(qtbot, window, tmp_path / "bad.onnx")
    assert dialog.error.isVisible() and "Layer 6 (maxpool2" in dialog.error.text()
    assert "Traceback" not in dialog.error.text()
    assert not any(p.suffix in (".onnx", ".tmp") for p in tmp_path.iterdir())
    assert dialog.table.rowCount() == 0


def test_an_unwritable_path_is_one_message(qtbot, window, tmp_path):
    dialog = export_to(qtbot, window, tmp_path / "missing" / "net.onnx")
    message = dialog.error.text()
    assert dialog.error.isVisible() and "\n" not in message
    assert message == f"Cannot write {tmp_path / 'missing' / 'net.onnx'}: No such file or directory"
    assert not (tmp_path / "missing").exists()


def run_ort(qtbot, window, provider: str):
    wait_drawn(qtbot, window)
    dialog = window.ort_dialog()
    dialog.provider.setCurrentIndex(list(PROVIDERS.values()).index(provider))
    dialog.run_button.click()
    finish(qtbot, dialog.job)
    return dialog


def test_cpu_run_reports_the_provider_and_times_then_the_view_flips(qtbot, window):
    window.stack_view.select(CONV2)
    dialog = run_ort(qtbot, window, "cpu")
    assert dialog.error.isHidden(), dialog.error.text()
    text = dialog.result_label.text()
    assert "CPUExecutionProvider" in text and "ms per run" in text and "NumPy engine" in text

    view = window.feature_view
    assert view.show_ort.isVisible() and not view.showing_ort()
    engine_image = drawn(view).copy()
    view.show_ort.setChecked(True)
    assert view.showing_ort() and "onnxruntime" in view.stats.text()
    np.testing.assert_allclose(drawn(view), expected_image(window, CONV2), atol=1e-4)
    np.testing.assert_allclose(drawn(view), engine_image, atol=1e-4)

    # An edit makes onnxruntime's outputs stale: the view goes back to the live engine maps.
    window.document.rename_layer(0, "edges")
    wait_drawn(qtbot, window)
    assert not view.showing_ort() and view.show_ort.isHidden()
    assert "onnxruntime" not in view.stats.text()


@pytest.mark.skipif("CUDAExecutionProvider" in available_providers(),
                    reason="CUDA is available here; the missing-CUDA message cannot appear")
def test_asking_for_cuda_without_it_shows_the_clear_error(qtbot, window):
    dialog = run_ort(qtbot, window, "cuda")
    assert dialog.error.isVisible()
    assert "CUDA is not available" in dialog.error.text()
    assert dialog.comparison is None and window.feature_view.show_ort.isHidden()
