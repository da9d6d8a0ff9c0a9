"""The input side of the live view: files dropped on the window, resize or crop, the digit sample
and a channel enlarged beside the input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from engine.input_files import load_input
from gui.mosaic import normalise
from gui.sample_inputs import SAMPLES
from models import project
from models.presets import PRESETS
from models.stack import InputSpec

from tests.gui.test_feature_maps import CONV2, wait_drawn


def stripes_png(path: Path) -> Path:
    pixels = np.zeros((40, 60, 3), np.uint8)
    pixels[:, ::4] = 255
    Image.fromarray(pixels).save(path)
    return path


def drop(window, *paths: Path | str) -> bool:
    """Drag paths (files or URLs) onto the window; whether the drag was accepted."""
    mime = QMimeData()
    mime.setUrls([QUrl(p) if isinstance(p, str) else QUrl.fromLocalFile(str(p)) for p in paths])
    where = QPoint(10, 10)
    enter = QDragEnterEvent(where, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    if not enter.isAccepted():
        return False
    event = QDropEvent(QPointF(where), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, event)
    return event.isAccepted()


def test_a_dropped_image_becomes_the_input(qtbot, window, tmp_path):
    wait_drawn(qtbot, window)
    old = window.feature_view.result
    image = stripes_png(tmp_path / "stripes.png")
    assert drop(window, image)
    qtbot.waitUntil(lambda: window.feature_view.result is not old, timeout=10000)
    np.testing.assert_array_equal(window.feature_view.result.input,
                                  load_input(image, window.document.stack.input))
    assert "stripes.png" in window.feature_view.input_caption.text()


def test_a_dropped_project_opens_and_other_drops_are_refused(qtbot, window, tmp_path):
    path = tmp_path / f"lenet{project.SUFFIX}"
    lenet = PRESETS["LeNet-5"].build()
    project.save(lenet, path)
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    assert not drop(window, other)
    assert not drop(window, "https://example.com/pattern.png")
    assert not drop(window, path, other)  # several files: no single right action
    assert window.document.path is None
    assert drop(window, path)
    assert window.document.path == path
    assert window.document.stack.input == lenet.input
    assert [layer.name for layer in window.document.stack.layers] == [
        layer.name for layer in lenet.layers]


def test_crop_cuts_the_centre_and_resize_stretches_with_the_choice_shown(qtbot, window, tmp_path):
    window.document.set_input(InputSpec(3, (20, 20)))
    wait_drawn(qtbot, window)
    view = window.feature_view
    pixels = np.random.default_rng(1).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    image = tmp_path / "noise.png"
    Image.fromarray(pixels).save(image)
    view.fit.setCurrentIndex(view.fit.findData("crop"))
    assert window.fit_mode == "crop"
    old = view.result
    assert window.open_input(image)
    qtbot.waitUntil(lambda: view.result is not old, timeout=10000)
    centre = np.moveaxis(pixels[10:30, 20:40], -1, 0).astype(np.float32) / 255.0
    np.testing.assert_allclose(view.result.input[0], centre, atol=1e-6)
    assert "noise.png, cropped" in view.input_caption.text()
    old = view.result
    view.fit.setCurrentIndex(view.fit.findData("resize"))
    qtbot.waitUntil(lambda: view.result is not old, timeout=10000)
    np.testing.assert_array_equal(view.result.input,
                                  load_input(image, window.document.stack.input, "resize"))
    assert "noise.png, resized" in view.input_caption.text()


def test_lenet_shows_the_digit_sample(qtbot, window):
    window.new_from_preset("LeNet-5")
    wait_drawn(qtbot, window)
    view = window.feature_view
    assert "digit.png (sample)" in view.input_caption.text()
    np.testing.assert_allclose(view.result.input,
                               load_input(SAMPLES / "digit.png", InputSpec(1, (32, 32))))


def tile_centre(view, channel: int) -> QPointF:
    """The scene point at the centre of the channel's tile in the drawn mosaic."""
    grid = view.mosaic.grid
    y, x = grid.origin(channel)
    return view.map_item.mapToScene(QPointF(x + grid.tile_w / 2, y + grid.tile_h / 2))


def test_clicking_a_tile_enlarges_that_channel_in_place_of_the_input(qtbot, window):
    wait_drawn(qtbot, window)
    view = window.feature_view
    window.stack_view.select(CONV2)
    view.resize(900, 700)  # laid out, so the scene maps to the widget
    qtbot.wait(50)
    output = view.result.outputs[CONV2][0]
    # A real click on the maps' view, at tile 5's centre.
    where = view.maps_widget.mapFromScene(tile_centre(view, 5))
    qtbot.mouseClick(view.maps_widget.viewport(), Qt.MouseButton.LeftButton, pos=where)
    assert view.channel == 5
    np.testing.assert_allclose(view.input_item.image, normalise(output[5:6], shared=True)[0],
                               atol=1e-6)  # per-channel contrast: the channel's own range
    assert "channel 5" in view.input_caption.text()
    view.per_channel.setChecked(False)  # the enlarged channel follows the layer-wide contrast
    np.testing.assert_allclose(view.input_item.image, normalise(output, shared=True)[5],
                               atol=1e-6)
    assert view.choose_channel_at(tile_centre(view, 5)) is None  # clicked again: the input
    assert "Input:" in view.input_caption.text()
    assert view.choose_channel_at(tile_centre(view, 2)) == 2
    window.stack_view.select(CONV2 + 1)  # another layer: the input again
    assert view.channel is None and "Input:" in view.input_caption.text()
    np.testing.assert_array_equal(view.input_item.image.shape[:2], view.result.input.shape[2:])


def test_the_demo_starts_on_the_photo_and_every_sample_opens_from_the_menu(qtbot, window):
    wait_drawn(qtbot, window)
    assert "photo.jpg (sample)" in window.feature_view.input_caption.text()
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&File")
    samples = next(a.menu() for a in menu.actions() if a.text() == "Open &sample input")
    names = [a.text() for a in samples.actions()]
    assert {"photo.jpg", "pattern.png", "digit.png"} <= set(names)
    old = window.feature_view.result
    next(a for a in samples.actions() if a.text() == "pattern.png").trigger()
    qtbot.waitUntil(lambda: window.feature_view.result is not old, timeout=10000)
    expected = load_input(SAMPLES / "pattern.png", window.document.stack.input)
    np.testing.assert_array_equal(window.feature_view.result.input, expected)
    assert "pattern.png" in window.feature_view.input_caption.text()
