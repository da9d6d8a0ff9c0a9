"""The Explain dock in the main window: a click on a feature map explains that pixel, with the
receptive field, the formulas and the im2col product showing the run's own numbers."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt

from tests.gui.test_feature_maps import CONV2, wait_drawn

DILATED = "Dilated 1-2-4 context"


def click_pixel(qtbot, view, channel: int, y: int, x: int) -> None:
    """A real left click on pixel (y, x) of the channel's tile in the drawn mosaic."""
    view.resize(900, 700)  # laid out, so the scene maps to the widget
    qtbot.wait(50)
    view.map_box.updateMatrix()  # the view's transform follows its last resize before we map
    top, left = view.mosaic.grid.origin(channel)
    scene = view.map_item.mapToScene(QPointF(left + x + 0.5, top + y + 0.5))
    qtbot.mouseClick(view.maps_widget.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.maps_widget.mapFromScene(scene))


def show_explain(qtbot, window) -> None:
    """Wait for the maps and bring the Explain dock forward (hidden, it does not refresh)."""
    wait_drawn(qtbot, window)
    window.explain_dock.raise_()
    qtbot.waitUntil(lambda: not window.explain.visibleRegion().isEmpty())


def test_clicking_a_pixel_explains_it_with_the_runs_numbers(qtbot, window):
    show_explain(qtbot, window)
    window.stack_view.select(CONV2)
    explain = window.explain
    assert explain.position == (32, 32)  # nothing clicked yet: the centre of 64x64
    click_pixel(qtbot, window.feature_view, 5, 10, 20)
    assert (explain.layer_index, explain.channel, explain.position) == (CONV2, 5, (10, 20))
    engine_value = float(window.feature_view.result.outputs[CONV2][0, 5, 10, 20])
    assert explain.im2col.shown_value == engine_value
    assert abs(explain.im2col.explained.value - engine_value) <= 1e-4 * max(1, abs(engine_value))
    assert "✓ the same" in explain.im2col.html
    # conv2 3x3 reads pool rows 9..11, cols 19..21; the 2x2 pool reads conv1 rows 18..23, cols
    # 38..43; conv1 3x3 reads input rows 17..24, cols 37..44.
    expected = np.zeros((128, 128), bool)
    expected[17:25, 37:45] = True
    np.testing.assert_array_equal(explain.masks[0], expected)
    assert explain.receptive.titles[0] == "input: 8×8"
    # The click also enlarged channel 5 in the input's place: no tint there until the input is
    # back, and then the tint covers exactly the field.
    view = window.feature_view
    assert view.channel == 5 and not view.field_item.isVisible()
    top, left = view.mosaic.grid.origin(5)
    view.choose_channel_at(view.map_item.mapToScene(QPointF(left + 32, top + 32)))
    assert view.channel is None and view.field_item.isVisible()
    np.testing.assert_array_equal(view.field_item.image[..., 3] > 0, expected)


def test_formulas_show_the_first_layers_numbers(qtbot, window):
    show_explain(qtbot, window)
    window.stack_view.select(0)  # demo conv1: 3 -> 8 channels, 3x3, same, on 128x128
    html = window.explain.formulas.html
    assert "(3·3·3/1 + 1)·8" in html and ">224<" in html
    assert "(128 − 1·(3 − 1) − 1 + 2·1) / 1 + 1 = ⌊128⌋ = " in html
    assert "⌊2/2⌋ + (2 − 1) = " in html
    window.stack_view.select(1)  # ReLU: no convolution to explain
    assert "not a convolution" in window.explain.im2col.html
    assert window.explain.im2col.explained is None


def test_the_dilated_stack_shows_its_15_pixel_field_with_holes(qtbot, window):
    window.new_from_preset(DILATED)
    show_explain(qtbot, window)
    window.stack_view.select(4)  # the third conv, dilation 4
    explain = window.explain
    qtbot.waitUntil(lambda: explain.masks is not None and len(explain.masks) == 6)
    titles = explain.receptive.titles
    # input, conv1, conv2, conv3 (ReLUs left out): 15x15 on the input, lattices above it.
    assert titles == ["input: 15×15", "conv1: 13×13", "conv2: 9×9", "conv3: clicked pixel"]
    assert explain.masks[0].sum() == 225 and explain.masks[4].sum() == 9
    engine_value = float(explain.result.outputs[4][0, 0, 32, 32])
    assert abs(explain.im2col.explained.value - engine_value) <= 1e-4 * max(1, abs(engine_value))


def test_a_hidden_explain_dock_waits_and_catches_up_when_shown(qtbot, window):
    wait_drawn(qtbot, window)
    window.summary_dock.raise_()  # Explain is a tab behind Summary
    qtbot.waitUntil(lambda: window.explain.visibleRegion().isEmpty())
    window.stack_view.select(CONV2)
    assert window.explain.masks is None  # nothing computed for a dock nobody sees
    window.explain_dock.raise_()
    qtbot.waitUntil(lambda: window.explain.masks is not None)
    assert window.explain.layer_index == CONV2 and window.explain.position == (32, 32)


def test_the_animation_and_cross_correlation_tabs_follow_the_selected_layer(qtbot, window):
    show_explain(qtbot, window)
    window.stack_view.select(CONV2)
    explain = window.explain
    spec = window.document.stack.layers[CONV2].spec
    assert explain.animation.layer_animation.spec is spec
    kernel = window.document.stack.layers[CONV2].weights["W"][0, 0]
    np.testing.assert_array_equal(explain.cross_correlation.example.kernel, kernel)
