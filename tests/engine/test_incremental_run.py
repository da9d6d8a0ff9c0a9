"""A run after an edit reuses the previous run's outputs up to the first changed layer: an edit to
the last layer recomputes that layer only."""
from __future__ import annotations

import numpy as np

from engine.executor import run
from models.layers import Sigmoid, Softmax
from models.presets import demo


def test_an_edit_to_the_last_layer_reuses_every_earlier_output():
    stack = demo()
    x = np.random.default_rng(0).standard_normal((1, 3, 128, 128), dtype=np.float32)
    first = run(stack, x)
    assert first.reused == 0
    last = len(stack.layers) - 1
    assert isinstance(stack.layers[last].spec, Softmax)
    edited = stack.with_spec(last, Sigmoid())
    again = run(edited, x, previous=first)
    assert again.reused == last
    assert all(again.outputs[i] is first.outputs[i] for i in range(last))
    assert again.outputs[last] is not first.outputs[last]
    assert again.seconds[:last] == [0.0] * last and again.seconds[last] > 0
    np.testing.assert_allclose(again.outputs[last], run(edited, x).outputs[last], rtol=1e-6)


def test_an_edit_to_a_middle_layer_recomputes_from_there():
    stack = demo()
    x = np.random.default_rng(1).standard_normal((1, 3, 128, 128), dtype=np.float32)
    first = run(stack, x)
    edited = stack.with_spec(3, stack.layers[3].spec.replace(out_channels=24))
    again = run(edited, x, previous=first)
    assert again.reused == 3
    assert all(again.outputs[i] is first.outputs[i] for i in range(3))
    assert again.outputs[3].shape[1] == 24


def test_a_different_input_reuses_nothing():
    stack = demo()
    rng = np.random.default_rng(2)
    first = run(stack, rng.standard_normal((1, 3, 128, 128), dtype=np.float32))
    again = run(stack, rng.standard_normal((1, 3, 128, 128), dtype=np.float32), previous=first)
    assert again.reused == 0
