"""In the window, every bad file gets one error box and leaves the open project and the input as
they were; a huge image is offered a downscale; NaN and infinite values are named in the status
bar."""
from __future__ import annotations

import numpy as np
import pytest

from models import project
from models.layers import ReLU
from models.presets import lenet5
from tests.gui.test_feature_maps import wait_drawn
from tests.reliability.bad_files import LENET_INPUT, write_bad_files


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    return write_bad_files(tmp_path_factory.mktemp("bad"))


@pytest.fixture
def lenet_window(qtbot, window, tmp_path):
    """The window on LeNet-5 (the bad inputs are meant for it), with one unsaved edit."""
    path = tmp_path / "lenet.convscope"
    project.save(lenet5(), path)
    assert window.open_path(path)
    window.document.add_layer(ReLU())
    wait_drawn(qtbot, window)
    return window


def test_a_bad_project_or_model_changes_nothing(lenet_window, bad_files):
    window = lenet_window
    document = window.document
    stack, undo, result = document.stack, document.undo_stack.count(), window.feature_view.result
    path = document.path
    failures = []
    for bad in (b for b in bad_files if b.kind in ("project", "onnx")):
        before = len(window.errors)
        opened = window.open_path(bad.path)
        errors = window.errors[before:]
        if opened or len(errors) != 1 or bad.path.name not in errors[0]:
            failures.append(f"{bad.id}: opened={opened}, errors={errors}")
        if (document.stack is not stack or document.undo_stack.count() != undo
                or not document.modified or document.path != path):
            failures.append(f"{bad.id}: the open project changed")
            break
    assert not failures, "\n".join(failures)
    assert window.feature_view.result is result


def test_a_bad_input_changes_nothing(qtbot, lenet_window, bad_files):
    window = lenet_window
    window.ask_downscale = lambda message: False  # the huge image: refused, no error box
    stack, result = window.document.stack, window.feature_view.result
    failures = []
    for bad in (b for b in bad_files if b.kind == "input"):
        before = len(window.errors)
        opened = window.open_input(bad.path)
        errors = window.errors[before:]
        expected = 0 if bad.path.name == "huge.png" else 1
        if opened or len(errors) != expected or errors and bad.path.name not in errors[0]:
            failures.append(f"{bad.id}: opened={opened}, errors={errors}")
    qtbot.wait(50)  # a wrongly posted recompute would have had time to start
    assert not failures, "\n".join(failures)
    assert window.document.stack is stack and window.feature_view.result is result


def test_a_huge_image_is_offered_a_downscale(qtbot, lenet_window, bad_files):
    window = lenet_window
    huge = next(b for b in bad_files if b.path.name == "huge.png").path
    asked = []
    window.ask_downscale = lambda message: asked.append(message) or True
    old = window.feature_view.result
    assert window.open_input(huge)
    assert window.errors == [] and len(asked) == 1
    assert "huge.png is 20000x20000 pixels" in asked[0]
    qtbot.waitUntil(lambda: window.feature_view.result is not old, timeout=20000)
    x = window.feature_view.result.input[0, 0]
    assert x.shape == LENET_INPUT[1:]
    assert x[:, :14].min() > 0.99 and x[:, 18:].max() < 0.01  # white left half, black right


def test_nan_in_the_input_is_named_in_the_status_bar(qtbot, lenet_window, tmp_path):
    window = lenet_window
    x = np.ones(LENET_INPUT, np.float32)
    x[0, :3, 0] = np.nan
    np.save(tmp_path / "holes.npy", x)
    old = window.feature_view.result
    assert window.open_input(tmp_path / "holes.npy")
    qtbot.waitUntil(lambda: window.feature_view.result is not old, timeout=10000)
    assert window.statusBar().currentMessage() == (
        "The input holds 3 NaN values (layer 1 (conv1) is the first whose output holds any)")
    np.save(tmp_path / "whole.npy", np.ones(LENET_INPUT, np.float32))
    old = window.feature_view.result
    assert window.open_input(tmp_path / "whole.npy")
    qtbot.waitUntil(lambda: window.feature_view.result is not old, timeout=10000)
    assert window.statusBar().currentMessage() == ""


def test_overflowing_weights_name_their_layer_in_the_status_bar(qtbot, lenet_window):
    window = lenet_window
    weight = window.document.stack.layers[3].weights["W"]
    window.document.set_weights(3, {"W": np.sign(weight) * np.float32(3e38)}, "huge")
    wait_drawn(qtbot, window)
    assert window.statusBar().currentMessage().startswith(
        "Layer 4 (conv2) is the first whose output holds NaN or infinite values")
