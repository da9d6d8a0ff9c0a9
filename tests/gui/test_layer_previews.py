"""gui.layer_previews: previews are made once per output array, forgotten with it, and after an
edit the window's view finds them made on the worker's thread, not its own."""
from __future__ import annotations

import gc
import threading

import numpy as np
import pytest

import gui.layer_previews
from engine.executor import run
from gui.layer_previews import MosaicRequest, PreviewCache
from gui.mosaic import layer_mosaic, layer_stats, thumbnail
from gui.sample_inputs import load_sample
from models.presets import demo
from tests.gui.test_feature_maps import CONV2, wait_drawn


@pytest.fixture(scope="module")
def result():
    stack = demo()
    return run(stack, load_sample(stack.input))


def test_previews_equal_what_gui_mosaic_makes_and_are_made_once(result):
    cache = PreviewCache()
    output = result.outputs[CONV2]
    np.testing.assert_array_equal(cache.thumbnail(output), thumbnail(output[0], cache.thumbnail_side))
    assert cache.stats(output) == layer_stats(output[0])
    mosaic = cache.mosaic(output, shared=False, depth=0, aspect=1.5)
    expected = layer_mosaic(output[0], shared=False, depth=0, aspect=1.5)
    np.testing.assert_array_equal(mosaic.image, expected.image)
    assert mosaic.grid == expected.grid
    assert cache.thumbnail(output) is cache.thumbnail(output)
    assert cache.mosaic(output, shared=False, depth=0, aspect=1.5) is mosaic
    # Other settings make another mosaic.
    assert cache.mosaic(output, shared=True, depth=0, aspect=1.5) is not mosaic


def test_an_entry_goes_with_its_array_and_a_new_array_gets_fresh_previews():
    cache = PreviewCache()
    rng = np.random.default_rng(0)
    first = rng.standard_normal((1, 4, 8, 8)).astype(np.float32)
    cache.stats(first)
    assert len(cache) == 1
    del first
    gc.collect()
    assert len(cache) == 0
    for _ in range(20):  # new arrays, some at a dead one's id: never its previews
        values = rng.standard_normal((1, 4, 8, 8)).astype(np.float32)
        assert cache.stats(values) == layer_stats(values[0])


def test_prepare_makes_thumbnails_for_every_layer_and_the_expected_mosaic(result, monkeypatch):
    made = []
    for name in ("thumbnail", "layer_stats", "layer_mosaic"):
        original = getattr(gui.layer_previews, name)
        monkeypatch.setattr(gui.layer_previews, name,
                            lambda *a, _f=original, _n=name, **k: made.append(_n) or _f(*a, **k))
    cache = PreviewCache()
    cache.prepare(result)
    assert made == ["thumbnail"] * len(result.outputs)  # no view has said what it shows yet
    cache.expect(MosaicRequest(CONV2, shared=False, depth=0, aspect=1.2))
    cache.prepare(result)
    assert made[len(result.outputs):] == ["layer_stats", "layer_mosaic"]
    output = result.outputs[CONV2]
    cache.stats(output)
    cache.mosaic(output, shared=False, depth=0, aspect=1.2)
    assert len(made) == len(result.outputs) + 2  # the view's requests were all made already


def test_after_an_edit_the_view_draws_previews_the_worker_made(qtbot, window, monkeypatch):
    wait_drawn(qtbot, window)
    window.stack_view.select(CONV2)
    threads = []
    for name in ("thumbnail", "layer_stats", "layer_mosaic"):
        original = getattr(gui.layer_previews, name)
        monkeypatch.setattr(gui.layer_previews, name,
                            lambda *a, _f=original, **k: threads.append(threading.get_ident())
                            or _f(*a, **k))
    window.document.set_field((0, None), "out_channels", 6)
    wait_drawn(qtbot, window)
    view = window.feature_view
    assert threads and threading.get_ident() not in threads
    # What it drew is the new output's mosaic.
    output = view.result.outputs[CONV2]
    expected = layer_mosaic(output[0], shared=not view.per_channel.isChecked(),
                            aspect=view.map_aspect())
    np.testing.assert_array_equal(view.map_item.image, view.mosaic.indices)
    np.testing.assert_array_equal(view.mosaic.image, expected.image)


def test_for_a_vector_the_worker_prepares_bars_and_top_classes_not_a_mosaic(result, monkeypatch):
    made = []
    for name in ("binned_extremes", "top_classes", "layer_mosaic"):
        original = getattr(gui.layer_previews, name)
        monkeypatch.setattr(gui.layer_previews, name,
                            lambda *a, _f=original, _n=name, **k: made.append(_n) or _f(*a, **k))
    last = len(result.outputs) - 1  # the demo's softmax over 10 classes
    cache = PreviewCache()
    cache.expect(MosaicRequest(last, shared=False, depth=0, aspect=1.0))
    cache.prepare(result)
    assert made == ["binned_extremes", "top_classes"]
    scores = result.outputs[last][0]
    heights, width = cache.bars(result.outputs[last])
    assert width == 1
    np.testing.assert_array_equal(heights, scores)
    order = np.argsort(-scores, kind="stable")[:5]
    assert cache.classes(result.outputs[last]) == [(int(i), float(scores[i])) for i in order]
    assert len(made) == 2  # the view's requests were made already
