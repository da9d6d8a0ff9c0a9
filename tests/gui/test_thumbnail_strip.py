"""The thumbnail strip under the feature maps, as a real widget offscreen: it draws the
thumbnails in sight only, a click or a key chooses a layer, `mark` selects one (and scrolls to
it), and after an edit only the outputs the engine did not reuse are drawn again."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from engine.executor import run
from gui.feature_map_view import FeatureMapView
from gui.sample_inputs import load_sample
from models.layers import ReLU, Sigmoid, Tanh
from models.presets import demo
from models.stack import InputSpec, Stack
from tests.gui.test_feature_maps import click_thumbnail

LONG_CHAIN = 400
DEMO_RELU = 1  # the demo model's first activation
DEMO_SOFTMAX = 11  # and its last layer


def long_chain() -> Stack:
    stack = Stack(InputSpec(1, (6, 6)))
    for k in range(LONG_CHAIN):
        stack = stack.appended(ReLU() if k % 2 else Tanh())
    return stack


def shown(qtbot, stack: Stack, width: int, previous=None) -> FeatureMapView:
    view = FeatureMapView()
    qtbot.addWidget(view)
    view.resize(width, 600)
    view.show()
    qtbot.waitExposed(view)
    view.select_layer(0)
    view.show_result(run(stack, load_sample(stack.input), previous))
    view.grab()  # paints the strip as the next frame would
    return view


def rows_in_sight(strip) -> list[int]:
    visible = strip.viewport().rect()
    return [row for row in range(strip.thumbnails.rowCount())
            if strip.visualRect(strip.thumbnails.index(row)).intersects(visible)]


def drawn_rows(strip) -> list[int]:
    return [row for row in range(strip.thumbnails.rowCount()) if strip.thumbnails.is_drawn(row)]


def test_a_long_network_draws_only_the_thumbnails_in_sight(qtbot):
    view = shown(qtbot, long_chain(), 900)
    strip = view.strip
    assert strip.thumbnails.rowCount() == LONG_CHAIN
    first = rows_in_sight(strip)
    assert 5 <= len(first) <= 15
    assert drawn_rows(strip) == first
    assert strip.thumbnails.draws == len(first)
    strip.horizontalScrollBar().setValue(strip.horizontalScrollBar().maximum())
    view.grab()
    last = rows_in_sight(strip)
    assert last[-1] == LONG_CHAIN - 1
    assert drawn_rows(strip) == first + last
    assert strip.thumbnails.draws == len(first) + len(last)


def test_a_click_or_a_key_chooses_a_layer_and_mark_selects_one(qtbot):
    view = shown(qtbot, long_chain(), 900)
    strip = view.strip
    with qtbot.waitSignal(strip.chosen) as chosen:
        click_thumbnail(qtbot, strip, 3)
    assert chosen.args == [3]
    assert strip.marked() == 3
    with qtbot.waitSignal(view.layerChosen) as chosen:  # the view passes it on to the window
        click_thumbnail(qtbot, strip, 5)
    assert chosen.args == [5]
    strip.setFocus()
    with qtbot.waitSignal(strip.chosen) as chosen:
        qtbot.keyClick(strip, Qt.Key.Key_Right)
    assert chosen.args == [6]
    with qtbot.assertNotEmitted(strip.chosen):  # the window's own selection, no person's choice
        view.select_layer(LONG_CHAIN - 20)
        QApplication.processEvents()
    assert strip.marked() == LONG_CHAIN - 20
    assert LONG_CHAIN - 20 in rows_in_sight(strip)  # scrolled to it
    strip.mark(None)
    assert strip.marked() is None


@pytest.mark.parametrize("edited, spec", [(DEMO_SOFTMAX, Sigmoid()), (DEMO_RELU, Tanh())])
def test_after_an_edit_only_the_outputs_not_reused_are_drawn_again(qtbot, edited, spec):
    stack = demo()
    view = shown(qtbot, stack, 1400)  # every thumbnail of the demo in sight
    model = view.strip.thumbnails
    first = view.result
    assert drawn_rows(view.strip) == list(range(len(stack)))
    icons = [model.data(model.index(row), Qt.ItemDataRole.DecorationRole).cacheKey()
             for row in range(len(stack))]
    draws = model.draws
    result = run(stack.with_spec(edited, spec), load_sample(stack.input), first)
    assert [a is b for a, b in zip(result.outputs, first.outputs)] == \
        [row < edited for row in range(len(stack))]  # what the engine reused
    view.show_result(result)
    view.grab()
    assert model.draws - draws == len(stack) - edited
    again = [row for row in range(len(stack))
             if model.data(model.index(row), Qt.ItemDataRole.DecorationRole).cacheKey()
             != icons[row]]
    assert again == list(range(edited, len(stack)))
