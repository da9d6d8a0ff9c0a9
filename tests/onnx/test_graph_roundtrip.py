"""Import -> export -> import gives the same network, node for node, for every real architecture:
the standard architectures of architectures.py (written as PyTorch exports them) and onnx's light
backend-test models. Same input, nodes (names, kinds, specs), edges, groups and outputs; weights
identical bit for bit; and the engine gives identical outputs on both imports. ConvScope's own
networks (the presets) keep their groups, which no name scope tells, through export and import.

Each model is imported, exported and imported again once (one test per model). The light models
are large: VGG-19 holds 548 MB of weights, imported twice and exported once through onnx's full
check (which serialises the whole model), and takes 9 s on 2 cores (21 s while other work
loads them); the others take under 5 s each.
"""
from __future__ import annotations

import numpy as np
import pytest

from architectures import ARCHITECTURES, SMALL_INPUTS, light_models
from engine.executor import run
from engine.onnx.export import export_model
from engine.onnx.importer import import_model
from models import presets
from models.errors import FileFormatError
from models.stack import MAX_NESTING_DEPTH, Stack

SOURCES: dict[str, object] = {
    **{name: (lambda name=name: ARCHITECTURES[name](input_shape=SMALL_INPUTS[name], seed=0))
       for name in ARCHITECTURES},
    **{m.path.stem: (lambda path=m.path: path) for m in light_models()},
}
# onnx's light models name no node, so they have no name scopes to group by.
GROUPLESS = {m.path.stem for m in light_models()}


def _assert_same_network(first: Stack, again: Stack) -> None:
    assert again.input == first.input
    assert [layer.name for layer in again.layers] == [layer.name for layer in first.layers]
    for index, (a, b) in enumerate(zip(first.layers, again.layers)):
        assert type(b.spec) is type(a.spec) and b.spec == a.spec, a.name
        assert again.input_names(index) == first.input_names(index), a.name
        assert b.group == a.group, a.name
        assert b.weights.keys() == a.weights.keys(), a.name
        for key, value in a.weights.items():
            other = b.weights[key]
            assert (other.dtype, other.shape) == (value.dtype, value.shape), (a.name, key)
            assert other.tobytes() == value.tobytes(), (a.name, key)
    assert again.output_indices == first.output_indices


@pytest.mark.parametrize("name", list(SOURCES))
def test_import_export_import_gives_the_same_network(name):
    first = import_model(SOURCES[name]())
    exported = export_model(first)  # checked by onnx's full checker on the way
    again = import_model(exported.SerializeToString())
    _assert_same_network(first, again)
    # The export is no copy of the file: it holds one node per layer, named after it.
    names = {node.name for node in exported.graph.node}
    assert {layer.name for layer in first.layers} <= names
    assert any(layer.group for layer in first.layers) or name in GROUPLESS

    x = np.random.default_rng(0).standard_normal(first.input.shape).astype(np.float32)
    ours, theirs = run(first, x), run(again, x)
    assert ours.error is None and theirs.error is None, ours.error or theirs.error
    assert len(ours.outputs) == len(theirs.outputs) == len(first.layers)
    for layer, a, b in zip(first.layers, ours.outputs, theirs.outputs):
        np.testing.assert_array_equal(b, a, err_msg=layer.name)


def test_every_light_model_is_covered():
    assert {name for name in SOURCES if name.startswith("light_")} >= {
        "light_bvlc_alexnet", "light_densenet121", "light_inception_v1", "light_inception_v2",
        "light_resnet50", "light_shufflenet", "light_squeezenet", "light_vgg19",
        "light_zfnet512"}


@pytest.mark.parametrize("name", sorted(presets.PRESETS))
def test_a_network_convscope_exported_keeps_its_groups_and_round_trips(name):
    """ConvScope's own networks are not named by scopes: their groups travel as node metadata.
    Export -> import keeps every layer's name and group (its specs come back in the file's
    terms: explicit pads for "same"); import -> export -> import is identical."""
    preset = presets.PRESETS[name].build()
    first = import_model(export_model(preset).SerializeToString())
    assert [(layer.name, layer.group) for layer in first.layers] == \
        [(layer.name, layer.group) for layer in preset.layers]
    again = import_model(export_model(first).SerializeToString())
    _assert_same_network(first, again)


def test_some_preset_has_groups():
    assert any(layer.group for preset in presets.PRESETS.values()
               for layer in preset.build().layers)


def test_a_group_past_the_network_limits_is_refused_naming_the_file():
    model = export_model(presets.PRESETS["Text CNN with GLU"].build())
    tagged = [node for node in model.graph.node if node.metadata_props]
    assert tagged
    tagged[0].metadata_props[0].value = "/".join(["g"] * (MAX_NESTING_DEPTH + 1))
    with pytest.raises(FileFormatError) as caught:
        import_model(model)
    message = str(caught.value)
    assert message.startswith("the ONNX model: ")
    assert f"{MAX_NESTING_DEPTH + 1} groups deep" in message
    assert "\n" not in message
