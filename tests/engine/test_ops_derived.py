"""engine.ops._derived: arrays derived from weights are made once per unchanging weight array,
never for arrays that can change, and let go with their weights; the kernels that use them
(Winograd, im2col with a bias, through engine.ops.conv) still match onnxruntime when the same
weights run again and when a writeable weight changes between calls."""

from __future__ import annotations

import gc
import importlib

import numpy as np
import pytest

from engine.ops import conv
from tests.engine.onnx_single_op import run_onnxruntime

derived_module = importlib.import_module("engine.ops._derived")
derived = derived_module.derived


def _frozen(array: np.ndarray) -> np.ndarray:
    array = array.copy()
    array.flags.writeable = False
    return array


class _Counting:
    """A make() that counts its calls."""

    def __init__(self, source: np.ndarray) -> None:
        self.source, self.calls = source, 0

    def __call__(self) -> np.ndarray:
        self.calls += 1
        return self.source * 2


def test_made_once_for_a_read_only_array():
    w = _frozen(np.arange(6, dtype=np.float32))
    make = _Counting(w)
    first = derived("test", (w,), make)
    second = derived("test", (w,), make)
    assert make.calls == 1 and second is first
    np.testing.assert_array_equal(first, w * 2)
    assert not first.flags.writeable


def test_tag_and_absent_sources_are_part_of_the_key():
    w = _frozen(np.ones(4, dtype=np.float32))
    make = _Counting(w)
    derived("a", (w, None), make)
    derived("b", (w, None), make)
    derived("a", (w,), make)
    assert make.calls == 3


@pytest.mark.parametrize("how", ["writeable", "read-only view of a writeable array"])
def test_arrays_that_can_change_are_derived_every_time(how):
    base = np.arange(6, dtype=np.float32)
    w = base if how == "writeable" else base.view()
    if how != "writeable":
        w.flags.writeable = False
    make = _Counting(w)
    derived("test", (w,), make)
    base[0] = 100.0
    assert derived("test", (w,), make)[0] == 200.0
    assert make.calls == 2


def test_entry_goes_with_its_source():
    gc.collect()
    before = derived_module.held_bytes()
    w = _frozen(np.ones(1000, dtype=np.float32))
    derived("test", (w,), _Counting(w))
    assert derived_module.held_bytes() == before + w.nbytes
    del w
    gc.collect()
    assert derived_module.held_bytes() == before


def test_least_recently_used_dropped_beyond_the_cap(monkeypatch):
    monkeypatch.setattr(derived_module, "MAX_BYTES", derived_module.held_bytes() + 9000)
    arrays = [_frozen(np.full(1000, i, dtype=np.float32)) for i in range(3)]  # 4000 bytes each: two fit
    makes = [_Counting(a) for a in arrays]
    for a, make in zip(arrays, makes):
        derived("test", (a,), make)
    assert derived_module.held_bytes() <= derived_module.MAX_BYTES
    derived("test", (arrays[0],), makes[0])  # the oldest was dropped: made again
    derived("test", (arrays[2],), makes[2])  # still held (just made): not made again
    assert [m.calls for m in makes] == [2, 1, 1]


def _expected(x, w, b, attrs):
    return run_onnxruntime("Conv", {"x": x, "w": w, "b": b}, **attrs)


def _assert_close(got, expected):
    scale = float(np.abs(expected).max(initial=1.0))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("shape,strides", [((40, 36, 3, 3), [1, 1]),  # Winograd
                                           ((24, 10, 3, 3), [2, 2])],  # im2col with a bias
                         ids=["winograd", "im2col"])
def test_conv_with_cached_weights_matches_onnxruntime(shape, strides):
    rng = np.random.default_rng(5)
    w = _frozen(rng.standard_normal(shape, dtype=np.float32))
    b = _frozen(rng.standard_normal(shape[0], dtype=np.float32))
    attrs = {"strides": strides, "pads": [1, 1, 1, 1], "dilations": [1, 1], "group": 1}
    for seed in (0, 1):  # the second run uses the kept transform
        x = np.random.default_rng(seed).standard_normal((1, shape[1], 15, 12), dtype=np.float32)
        _assert_close(conv(x, w, b, **attrs), _expected(x, w, b, attrs))


@pytest.mark.parametrize("shape,strides", [((40, 36, 3, 3), [1, 1]), ((24, 10, 3, 3), [2, 2])],
                         ids=["winograd", "im2col"])
def test_conv_sees_a_writeable_weight_change(shape, strides):
    rng = np.random.default_rng(6)
    w = rng.standard_normal(shape, dtype=np.float32)
    b = rng.standard_normal(shape[0], dtype=np.float32)
    x = rng.standard_normal((1, shape[1], 15, 12), dtype=np.float32)
    attrs = {"strides": strides, "pads": [1, 1, 1, 1], "dilations": [1, 1], "group": 1}
    conv(x, w, b, **attrs)
    w *= -0.5
    b += 1.0
    _assert_close(conv(x, w, b, **attrs), _expected(x, w, b, attrs))
