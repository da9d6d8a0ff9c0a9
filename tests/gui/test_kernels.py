"""The Kernels dock: the selected convolution's weights as a mosaic, and weight edits that go
through the document (undoable) and recompute the feature maps."""
from __future__ import annotations

import numpy as np
import pytest

from models.kernel_presets import preset_kernel

CONV1, DENSE1 = 0, 10  # in the demo model
FILTER = 4  # conv1's first Gabor kernel (filter 0 already holds Sobel x in the demo)


def wait_drawn(qtbot, window) -> None:
    """Until the feature view shows a result computed for the document's current stack."""
    view = window.feature_view
    qtbot.waitUntil(lambda: view.result is not None and view.result.stack.layers
                    == window.document.stack.layers and not view.busy.isVisible(), timeout=10000)


@pytest.fixture(autouse=True)
def kernels_shown(qtbot, window) -> None:
    """Bring the Kernels dock forward: tabbed behind Summary it does not draw."""
    window.kernels_dock.raise_()
    qtbot.waitUntil(lambda: not window.kernel_view.visibleRegion().isEmpty())


def weight(window, index: int = CONV1) -> np.ndarray:
    return window.document.stack.layers[index].weights["W"]


def test_conv_mosaic_tiles_are_the_layer_weights(qtbot, window):
    window.stack_view.select(CONV1)
    kv = window.kernel_view
    kv.per_filter.setChecked(False)  # one range for the layer
    w = weight(window)  # (8, 3, 3, 3)
    grid = kv.mosaic.grid
    assert (grid.rows, grid.cols, grid.tile_h, grid.tile_w) == (8, 3, 3, 3)
    m = np.abs(w).max()
    for f in range(8):
        for c in range(3):
            y, x = grid.origin(f * 3 + c)
            shown = kv.map_item.image[y:y + 3, x:x + 3]
            np.testing.assert_allclose(shown * 2 - 1, w[f, c] / m, atol=1e-6)
    assert kv.stats_table.rowCount() == 8
    assert float(kv.stats_table.item(2, 4).text()) == float(f"{w[2].std():.3f}")
    kv.per_filter.setChecked(True)  # each filter its own range
    y, x = kv.mosaic.grid.origin(6 * 3 + 1)
    np.testing.assert_allclose(kv.map_item.image[y:y + 3, x:x + 3] * 2 - 1,
                               w[6, 1] / np.abs(w[6]).max(), atol=1e-6)
    kv.per_filter.setChecked(False)
    kv.summed.setChecked(True)
    assert kv.mosaic.grid.channels == 8
    summed = w.sum(axis=1)
    y, x = kv.mosaic.grid.origin(5)
    np.testing.assert_allclose(kv.map_item.image[y:y + 3, x:x + 3] * 2 - 1,
                               summed[5] / np.abs(summed).max(), atol=1e-6)


def test_sobel_on_one_filter_recomputes_and_undoes(qtbot, window):
    wait_drawn(qtbot, window)
    window.stack_view.select(CONV1)
    kv = window.kernel_view
    old = weight(window).copy()
    maps_before = window.feature_view.map_item.image.copy()
    kv.preset.setCurrentText("sobel x")
    kv.filter_spin.setValue(FILTER)
    kv.apply_filter_action.trigger()
    new = weight(window)
    sobel = preset_kernel("sobel x", 3) / 3
    for c in range(3):
        np.testing.assert_allclose(new[FILTER, c], sobel, atol=1e-7)
    others = [f for f in range(8) if f != FILTER]
    np.testing.assert_array_equal(new[others], old[others])
    assert window.document.undo_stack.undoText() == f"Apply sobel x to filter {FILTER} of conv1"
    wait_drawn(qtbot, window)
    assert not np.array_equal(window.feature_view.map_item.image, maps_before)
    assert window.feature_view.layer_index == CONV1
    window.document.undo_stack.undo()
    np.testing.assert_array_equal(weight(window), old)
    assert not window.errors


def test_gabor_bank_gives_every_filter_its_angle(qtbot, window):
    window.stack_view.select(CONV1)
    kv = window.kernel_view
    kv.preset.setCurrentText("gabor bank")
    kv.apply_all_action.trigger()
    w = weight(window)
    assert not any(np.array_equal(w[0], w[f]) for f in range(1, 8))


def test_preset_of_the_wrong_size_shows_the_reason(qtbot, window):
    window.stack_view.select(CONV1)
    kv = window.kernel_view
    before = window.document.stack
    kv.preset.setCurrentText("laplacian")
    window.document.set_field((CONV1, None), "kernel_size", (5, 5))
    kv.apply_all_action.trigger()
    assert len(window.errors) == 1 and "3x3" in window.errors[0]
    window.document.undo_stack.undo()
    assert window.document.stack.layers == before.layers


def test_reinitialise_is_deterministic_and_undoable(qtbot, window):
    window.stack_view.select(CONV1)
    kv = window.kernel_view
    old = weight(window).copy()
    kv.initialiser.setCurrentIndex(kv.initialiser.findData("glorot_uniform"))
    kv.seed.setValue(7)
    kv.reinit_action.trigger()
    first = weight(window).copy()
    assert not np.array_equal(first, old)
    window.document.undo_stack.undo()
    np.testing.assert_array_equal(weight(window), old)
    kv.reinit_action.trigger()
    np.testing.assert_array_equal(weight(window), first)
    limit = np.sqrt(6 / (3 * 9 + 8 * 9))
    assert np.abs(first).max() <= limit


def test_load_npy_replaces_w_and_a_wrong_shape_changes_nothing(qtbot, window, tmp_path,
                                                               monkeypatch):
    window.stack_view.select(CONV1)
    kv = window.kernel_view
    good = np.arange(8 * 3 * 3 * 3, dtype=np.float32).reshape(8, 3, 3, 3) / 100
    np.save(tmp_path / "good.npy", good)
    np.save(tmp_path / "bad.npy", np.zeros((8, 3, 5, 5), np.float32))
    np.save(tmp_path / "nan.npy", np.full((8, 3, 3, 3), np.nan, np.float32))
    before = window.document.stack
    for name in ("bad.npy", "nan.npy"):
        monkeypatch.setattr(kv, "choose_npy_path", lambda n=name: str(tmp_path / n))
        kv.load_action.trigger()
        assert window.document.stack is before
    assert len(window.errors) == 2
    assert "bad.npy" in window.errors[0] and "8×3×3×3" in window.errors[0]
    assert "NaN" in window.errors[1]
    monkeypatch.setattr(kv, "choose_npy_path", lambda: str(tmp_path / "good.npy"))
    kv.load_action.trigger()
    np.testing.assert_array_equal(weight(window), good)


def test_dense_layer_shows_a_message(qtbot, window):
    window.stack_view.select(DENSE1)
    kv = window.kernel_view
    assert kv.pages.currentWidget() is kv.message
    assert kv.message.text() == "Dense has 330 weights; kernels are shown for convolutions."
    assert not kv.apply_filter_action.isEnabled()


def test_1d_kernels_are_strips(qtbot, window):
    window.new_from_preset("Text CNN with GLU")
    stack = window.document.stack
    # the gated block glu1's convolution: value and gate filters stacked, 2 x 128 of them
    index = next(i for i, layer in enumerate(stack.layers) if layer.group == "glu1")
    window.stack_view.select(index)
    kv = window.kernel_view
    assert [kv.tensor.itemText(i) for i in range(kv.tensor.count())] == ["W"]
    kv.per_filter.setChecked(False)
    w = window.document.stack.layers[index].weights["W"]  # (F, C, k)
    assert w.shape == (256, 128, 3)
    grid = kv.mosaic.grid
    assert (grid.rows, grid.cols, grid.tile_h, grid.tile_w) == (w.shape[0], w.shape[1], 1,
                                                                w.shape[2])
    y, x = grid.origin(2 * w.shape[1] + 1)
    np.testing.assert_allclose(kv.map_item.image[y, x:x + w.shape[2]] * 2 - 1,
                               w[2, 1] / np.abs(w).max(), atol=1e-6)
    kv.apply_all_action.trigger()
    assert len(window.errors) == 1 and "2D" in window.errors[0]


def test_a_hidden_kernels_dock_draws_when_shown_and_its_edits_still_apply(qtbot, window):
    window.summary_dock.raise_()
    qtbot.waitUntil(lambda: window.kernel_view.visibleRegion().isEmpty())
    kv = window.kernel_view
    window.stack_view.select(CONV1)
    drawn_before = kv.mosaic
    window.stack_view.select(3)  # conv2: nobody sees the dock, so nothing is drawn
    assert kv.mosaic is drawn_before
    kv.seed.setValue(kv.seed.value() + 1)
    kv.reinit_action.trigger()  # the Weights menu acts on the selected layer all the same
    assert window.document.undo_stack.undoText().startswith("Re-initialise conv2")
    window.kernels_dock.raise_()
    qtbot.waitUntil(lambda: kv.mosaic is not drawn_before)
    assert kv.mosaic.grid.channels == weight(window, 3).shape[0] * weight(window, 3).shape[1]
