"""What a new user tripped on in the feature-map view, checked in the real window: the title has
its room, a volume opens on its middle slice with the input on the same slice, the input sits
under its caption, the mosaic zooms and pans with badges that leave the maps visible, signals
have axes, thumbnails have one size, and a class vector shows its top classes."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from engine.executor import run
from gui.mosaic import THUMBNAIL_SIDE, input_preview, tile
from gui.sample_inputs import load_sample
from gui.thumbnail_strip import THUMB_BUTTON_WIDTH, THUMB_SIZE
from models.presets import PRESETS
from tests.gui.test_feature_maps import strip_data, strip_icon, wait_drawn

VOLUME = "3D volume block"
TEXT = "Text CNN with GLU"


def open_preset(qtbot, window, name: str):
    window.new_from_preset(name)
    wait_drawn(qtbot, window)
    qtbot.wait(20)  # the layout settles after the first result
    return window.feature_view


@pytest.mark.parametrize("preset", list(PRESETS))
def test_the_title_shows_its_whole_text_at_the_default_window_size(qtbot, window, preset):
    view = open_preset(qtbot, window, preset)
    assert window.size().width() == 1440  # the size the window opens at
    for index in range(len(window.document.stack)):
        window.stack_view.select(index)
        title = view.title
        assert "·" in title.text()
        assert title.displayed_text() == title.text(), (preset, index)


def test_a_narrow_view_puts_the_controls_under_the_title_and_a_wide_one_beside_it(qtbot,
                                                                                  window):
    view = open_preset(qtbot, window, VOLUME)
    total = sum(window.splitter.sizes())
    window.splitter.setSizes([total - 330, 330])
    qtbot.waitUntil(lambda: view.width() < 340)
    assert view.controls.geometry().top() >= view.title.geometry().bottom()
    assert view.title.displayed_text() == view.title.text()
    window.resize(2200, 900)  # room for the title and the controls on one row
    qtbot.waitUntil(lambda: sum(window.splitter.sizes()) > total + 500)
    window.splitter.setSizes([sum(window.splitter.sizes()) - 700, 700])
    qtbot.waitUntil(lambda: view.width() > 600)
    assert view.controls.geometry().top() < view.title.geometry().bottom()
    assert view.title.displayed_text() == view.title.text()


def test_a_volume_opens_on_its_middle_slice_and_the_input_shows_the_same_slice(qtbot, window):
    view = open_preset(qtbot, window, VOLUME)
    window.stack_view.select(0)  # conv1: 16 slices, as many as the input
    sample = view.result.input[0]
    output = view.result.outputs[0][0]
    assert view.depth.value() == 8 == output.shape[1] // 2
    assert view.input_preview.depth == 8
    np.testing.assert_allclose(view.input_item.image, input_preview(sample, 8).image)
    assert "depth 8" in view.input_caption.text()
    shared = not view.per_channel.isChecked()
    np.testing.assert_allclose(view.mosaic.image,
                               tile(output[:, 8], shared, grid=view.mosaic.grid).image, atol=1e-6)
    view.depth.setValue(3)
    assert view.input_preview.depth == 3
    np.testing.assert_allclose(view.input_item.image, input_preview(sample, 3).image)
    pooled = 5  # maxpool2: 8 slices, each over two input slices
    window.stack_view.select(pooled)
    assert view.depth.maximum() == 7 and view.depth.value() == 3 * 8 // 16  # the same place
    assert view.input_preview.depth == view.depth.value() * 16 // 8


def test_the_input_sits_under_its_caption_at_its_own_aspect(qtbot, window):
    for preset in ("VGG block", VOLUME, TEXT):
        view = open_preset(qtbot, window, preset)
        image = view.input_item.image
        widget = view.input_widget
        gap = widget.geometry().top() - view.input_caption.geometry().bottom()
        assert 0 <= gap <= 12, preset  # right under the caption, not centred in the column
        ratio = image.shape[0] / image.shape[1]
        if preset == TEXT:
            ratio = min(max(ratio, 0.25), 2.0)  # a signal's strip
        assert abs(widget.height() - widget.width() * ratio) <= 2, preset


def wheel(view, steps: int) -> None:
    """A real mouse wheel turn over the middle of the maps."""
    viewport = view.maps_widget.viewport()
    centre = QPointF(viewport.width() / 2, viewport.height() / 2)
    event = QWheelEvent(centre, viewport.mapToGlobal(centre), QPoint(0, 0),
                        QPoint(0, 120 * steps), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(viewport, event)


def badge_shares(view) -> list[float]:
    """For each channel badge shown, the share of its tile's area on screen it covers (a badge
    is drawn at its own size in screen pixels, whatever the zoom)."""
    grid = view.mosaic.grid
    pixel_w, pixel_h = view.map_box.viewPixelSize()
    tile_area = (grid.tile_w / pixel_w) * (grid.tile_h / pixel_h)
    return [label.boundingRect().width() * label.boundingRect().height() / tile_area
            for label in view.visible_labels().values()]


def test_the_mosaic_zooms_and_pans_and_badges_never_hide_much_of_a_map(qtbot, window):
    view = open_preset(qtbot, window, "VGG block")
    window.stack_view.select(0)  # 64 channels of 224 x 224
    assert view.mosaic.grid.channels == 64
    height, width = view.mosaic.image.shape
    (left, right), (top, bottom) = view.map_box.viewRange()
    assert left <= 0 and right >= width and top <= 0 and bottom >= height  # all of it
    assert all(share <= 0.1 for share in badge_shares(view))
    wheel(view, 6)  # zoom in
    qtbot.waitUntil(lambda: view.map_box.viewRange()[0][1] - view.map_box.viewRange()[0][0]
                    < (right - left) / 2, timeout=2000)
    shares = badge_shares(view)
    assert shares and all(share <= 0.1 for share in shares)  # close up, tiles are named
    (zoomed_left, _), _ = view.map_box.viewRange()
    view.map_box.translateBy(x=200)  # pan, as a drag does
    assert view.map_box.viewRange()[0][0] == pytest.approx(zoomed_left + 200, abs=1e-3)
    view.per_channel.toggle()  # a redraw keeps the zoom
    assert view.map_box.viewRange()[0][0] == pytest.approx(zoomed_left + 200, abs=1e-3)
    view.reset_zoom.click()
    (left2, right2), (top2, bottom2) = view.map_box.viewRange()
    assert left2 <= 0 and right2 >= width and top2 <= 0 and bottom2 >= height


def test_hovering_a_tile_outlines_it_and_names_its_channel(qtbot, window):
    view = open_preset(qtbot, window, "VGG block")
    window.stack_view.select(0)
    grid = view.mosaic.grid
    y, x = grid.origin(37)
    view.maps_widget.scene().sigMouseMoved.emit(view.map_item.mapToScene(QPointF(x + 3, y + 5)))
    assert view.hover.text().startswith("channel 37 · y 5, x 3")
    assert view.hover_box.isVisible()
    assert view.hover_box.rect() == QRectF(x, y, grid.tile_w, grid.tile_h)


def test_signals_have_channel_and_position_axes_and_maps_have_none(qtbot, window):
    view = open_preset(qtbot, window, TEXT)
    window.stack_view.select(0)
    left, bottom = view.map_plot.getAxis("left"), view.map_plot.getAxis("bottom")
    assert left.isVisible() and bottom.isVisible()
    assert (left.labelText, bottom.labelText) == ("channel", "position")
    output = view.result.outputs[0][0]
    assert view.map_box.childrenBounds()[0] == pytest.approx((0, output.shape[1]), abs=1e-6)
    assert "64 channels × 128 positions" in view.input_caption.text()
    window.new_from_preset("VGG block")
    wait_drawn(qtbot, window)
    window.stack_view.select(0)
    assert not left.isVisible() and not bottom.isVisible()


def test_every_thumbnail_has_one_size_whatever_the_output(qtbot, window):
    view = open_preset(qtbot, window, TEXT)  # signals, a pooled (128, 1) vector, flat vectors
    kinds = {output.ndim for output in view.result.outputs}
    assert kinds == {2, 3}
    for output in view.result.outputs:
        assert view.previews.thumbnail(output).shape == (THUMBNAIL_SIDE, THUMBNAIL_SIDE)
    strip = view.strip
    for row in range(strip.thumbnails.rowCount()):
        assert strip.visualRect(strip.thumbnails.index(row)).width() == THUMB_BUTTON_WIDTH
        assert strip_icon(strip, row).availableSizes() == [QSize(THUMB_SIZE, THUMB_SIZE)]


def test_a_long_name_is_elided_in_the_strip_and_whole_in_its_tooltip(qtbot, window):
    view = open_preset(qtbot, window, TEXT)
    name = "encoder_block_with_a_rather_long_imported_name_conv"
    window.document.rename_layer(0, name)
    wait_drawn(qtbot, window)
    strip = view.strip
    text = strip_data(strip, 0, Qt.ItemDataRole.DisplayRole)
    assert text != name and "…" in text
    assert strip.fontMetrics().horizontalAdvance(text) < THUMB_BUTTON_WIDTH
    assert strip_data(strip, 0, Qt.ItemDataRole.ToolTipRole).startswith(name)
    assert strip.visualRect(strip.thumbnails.index(0)).width() == THUMB_BUTTON_WIDTH


def top_rows(view) -> list[tuple[str, str]]:
    table = view.top_table
    return [(table.item(row, 0).text(), table.item(row, 1).text())
            for row in range(table.rowCount())]


def test_a_class_vector_shows_its_top_five_classes(qtbot, window):
    view = open_preset(qtbot, window, "Demo: edges to classes")
    last = len(window.document.stack) - 1  # the softmax over 10 classes: the network's output
    window.stack_view.select(last)
    stack = window.document.stack
    scores = run(stack, load_sample(stack.input)).outputs[last][0]  # an independent run
    order = np.argsort(-scores, kind="stable")[:5]
    assert view.top_panel.isVisibleTo(view)
    assert top_rows(view) == [(f"class {i}", f"{scores[i]:.4g}") for i in order]
    view.set_class_labels([f"label {i}" for i in range(10)])
    assert [name for name, _ in top_rows(view)] == [f"label {i}" for i in order]
    assert view.bars.getPlotItem().getAxis("bottom").labelText == "class"


def test_a_two_class_output_ranks_both(qtbot, window):
    view = open_preset(qtbot, window, TEXT)
    last = len(window.document.stack) - 1
    window.stack_view.select(last)
    scores = view.result.outputs[last][0]
    assert [name for name, _ in top_rows(view)] == \
        [f"class {i}" for i in np.argsort(-scores, kind="stable")]
    assert view.top_caption.text() == "Top 2"
