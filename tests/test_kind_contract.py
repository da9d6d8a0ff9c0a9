"""One contract per layer kind: every registered kind has a NumPy kernel, an exact
receptive-window rule and an ONNX exporter, and its export computes what the engine computes
(onnxruntime, every node compared), at the first input shape its default settings accept."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.forward import FORWARD
from engine.onnx.export import EXPORTERS  # the module that registers every kind's exporter
from engine.onnx.verify import verify
from models.analysis import analyse
from models.layers import LAYER_TYPES, LayerSpec
from models.receptive_window import BACK, MERGE_KINDS, receptive_masks
from models.stack import INPUT, InputSpec, Layer, Stack

SHAPES = [(16, 12, 12), (8, 32), (8, 6, 6, 6), (16,)]
OPAQUE = {"Opaque"}  # computed by onnxruntime itself; covered by the import tests
KINDS = sorted(set(LAYER_TYPES) - OPAQUE)


def _network(kind: type[LayerSpec]) -> Stack | None:
    """The default spec after a stem that makes its input non-trivial, at the first input shape
    where it works; None when none does."""
    ranked = "rank" in {f.name for f in dataclasses.fields(kind)}
    for shape in SHAPES:
        if ranked and len(shape) == 1:
            continue
        spec = kind(rank=len(shape) - 1) if ranked else kind()
        inputs = (INPUT, INPUT) if kind.min_inputs > 1 or kind in MERGE_KINDS else None
        stack = Stack(InputSpec(shape[0], shape[1:])).with_layers([Layer("node", spec,
                                                                         inputs=inputs)])
        if analyse(stack).ok:
            return stack
    return None


@pytest.mark.parametrize("name", KINDS)
def test_every_kind_has_a_kernel_a_window_rule_and_an_exporter(name):
    kind = LAYER_TYPES[name]
    assert kind in FORWARD, f"{name} has no kernel in engine.forward.FORWARD"
    assert kind in BACK or kind in MERGE_KINDS, f"{name} has no receptive-window rule"
    assert kind in EXPORTERS, f"{name} has no ONNX exporter"


@pytest.mark.parametrize("name", KINDS)
def test_every_kind_exports_what_the_engine_computes(name):
    stack = _network(LAYER_TYPES[name])
    assert stack is not None, f"{name}'s defaults work on none of {SHAPES}"
    report = verify(stack, np.random.default_rng(0).standard_normal(stack.input.shape,
                                                                     dtype=np.float32))
    assert report.ok, report.worst
    layer = analyse(stack).layers[0]
    spatial = layer.info.output_shape[1:]
    masks = receptive_masks(stack, analyse(stack), 0, tuple(s // 2 for s in spatial))
    assert masks[0].shape == stack.input.spatial and masks[0].any()
