"""Residual and Gated layers of older projects open as the grouped subgraphs templates build, and
compute what the code that wrote them computed, bit for bit.

The fixtures in fixtures/v2 were saved, and their outputs computed, by the release before these
blocks became templates (fixtures/v2/HOW_MADE.md holds the script): every expected number here
comes from that code, never from the code under test. Each case opens the file, runs the stored
input, and compares each old layer's stored output with the node that now holds it (the last node
of the group named after it) byte for byte; then saves in the current version and does it again.
"""
from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from engine.executor import run
from models import project
from models.analysis import analyse
from models.errors import FileFormatError
from models.layers import Add, Conv, Mul, Sigmoid, Slice
from models.presets import PRESETS
from models.stack import Stack
from models.templates import insert_template

FIXTURES = Path(__file__).parent / "fixtures" / "v2"
CASES = ["graph-blocks", "gated-1d", "volume-residual", "batch-gated", "partly-stored",
         "invalid-residual"]
# Where an old block's group had to take another name: graph-blocks holds a template group
# "res1" and a Residual layer "res1"; blocks in a group keep it above theirs.
GROUPS = {"graph-blocks": {"res1": "res1_2", "res2": "stage2/res2", "glu1": "stage2/glu1",
                           "res3": "head/res3"}}


def _file(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.convscope").read_text())


def _stored(name: str, layer: str, key: str) -> np.ndarray:
    """A weight as the file stores it, decoded here (not by the loader under test)."""
    entry = _file(name)["weights"][layer][key]
    return np.frombuffer(base64.b64decode(entry["data"]), "<f4").reshape(entry["shape"])


def _holder(stack: Stack, case: str, old: str) -> str:
    """The node whose output is the old layer's: itself, or its group's last node."""
    names = {layer.name for layer in stack.layers}
    if old in names:
        return old
    group = GROUPS.get(case, {}).get(old, old)
    return [layer.name for layer in stack.layers if layer.group == group][-1]


def _check_outputs(case: str, stack: Stack) -> None:
    stored = np.load(FIXTURES / f"{case}.outputs.npz")
    result = run(stack, stored["input"])
    outputs = {layer.name: out for layer, out in zip(stack.layers, result.outputs)}
    old_layers = [entry["name"] for entry in _file(case)["layers"]]
    compared = 0
    for old in old_layers:
        key = f"output:{old}"
        out = outputs[_holder(stack, case, old)]
        if key not in stored:
            assert out is None, f"{old} computed, but the old code could not compute it"
            continue
        assert out is not None and out.dtype == np.float32 and out.shape == stored[key].shape, old
        assert out.tobytes() == stored[key].tobytes(), f"{old}: not the old code's bytes"
        compared += 1
    assert compared == len(stored.files) - 1


@pytest.mark.parametrize("case", CASES)
def test_old_blocks_open_compute_the_same_bytes_and_save_in_the_current_version(case, tmp_path):
    doc = _file(case)
    assert doc["version"] == 2
    assert {"Residual", "Gated"} & {entry["spec"]["type"] for entry in doc["layers"]}
    stack = project.load(FIXTURES / f"{case}.convscope")
    assert not {"Residual", "Gated"} & {type(layer.spec).__name__ for layer in stack.layers}
    _check_outputs(case, stack)

    path = tmp_path / "again.convscope"
    project.save(stack, path)
    text = path.read_text()
    assert json.loads(text)["version"] == project.VERSION == 3
    assert '"Residual"' not in text and '"Gated"' not in text
    again = project.load(path)
    assert project.to_json(again) == text
    _check_outputs(case, again)


def test_a_residual_block_becomes_its_body_a_projection_and_an_add_in_its_group():
    stack = project.load(FIXTURES / "graph-blocks.convscope")
    group = [layer for layer in stack.layers if layer.group.startswith("stage2/res2")]
    inner = [layer for layer in group if layer.group != "stage2/res2"]
    # body: a strided conv, a residual block (its own group, nested), a batch norm
    assert [type(layer.spec).__name__ for layer in group] == \
        ["Conv", "Conv", "ReLU", "Add", "BatchNorm", "Conv", "Add"]
    assert {layer.group for layer in inner} == {"stage2/res2/res4"}  # res1..res3 are old names
    first, projection, add = group[0], group[5], group[6]
    source = stack.layers[stack.index_of(first.name) - 1].name  # what the block read: res1's add
    assert first.inputs == (source,) and projection.inputs == (source,)
    assert projection.spec == Conv(out_channels=16, kernel_size=1, stride=2, padding="valid",
                                   bias=False)
    assert add.inputs == (group[4].name, projection.name)
    # every weight the file stored, by its old key, is on the node that took that part
    np.testing.assert_array_equal(first.weights["W"], _stored("graph-blocks", "res2", "body.0.W"))
    np.testing.assert_array_equal(inner[0].weights["W"],
                                  _stored("graph-blocks", "res2", "body.1.body.0.W"))
    np.testing.assert_array_equal(group[4].weights["var"],
                                  _stored("graph-blocks", "res2", "body.2.var"))
    np.testing.assert_array_equal(projection.weights["W"],
                                  _stored("graph-blocks", "res2", "shortcut.W"))
    # readers of the old layer read the group's output, network outputs name it
    assert stack.layers[stack.index_of("concat1")].inputs[1] == add.name
    assert stack.outputs[2] == add.name
    assert stack.layers[stack.index_of("side")].inputs == \
        ([layer.name for layer in stack.layers if layer.group == "res1_2"][-1],)


def test_a_gated_layer_becomes_one_stacked_conv_halves_a_gate_and_a_product():
    stack = project.load(FIXTURES / "graph-blocks.convscope")
    group = [layer for layer in stack.layers if layer.group == "glu2"]
    conv, value, logits, gate, mul, add = group
    assert conv.spec == Conv(out_channels=32, dilation=2)
    assert value.spec == Slice(starts=(0,), ends=(16,), axes=(1,)) and value.inputs == (conv.name,)
    assert logits.spec == Slice(starts=(16,), ends=(32,), axes=(1,))
    assert isinstance(gate.spec, Sigmoid) and gate.inputs == (logits.name,)
    assert isinstance(mul.spec, Mul) and mul.inputs == (value.name, gate.name)
    source = stack.layers[stack.index_of(conv.name) - 1].name
    assert isinstance(add.spec, Add) and add.inputs == (mul.name, source)
    np.testing.assert_array_equal(conv.weights["W"], np.concatenate(
        [_stored("graph-blocks", "glu2", "a.W"), _stored("graph-blocks", "glu2", "b.W")]))
    np.testing.assert_array_equal(conv.weights["B"], np.concatenate(
        [_stored("graph-blocks", "glu2", "a.B"), _stored("graph-blocks", "glu2", "b.B")]))
    # its params and MACs are the old layer's: the stacked kernel is the two kernels
    report = analyse(stack)
    assert sum(r.params for r in report.layers if r.group == "glu2") == 2 * (16 * 16 * 9 + 16)


def test_the_gated_template_builds_what_an_old_gated_layer_opens_as():
    opened = project.load(FIXTURES / "gated-1d.convscope")
    glu2 = [layer for layer in opened.layers if layer.group == "glu2"]
    before = opened.layers[:opened.index_of(glu2[0].name)]
    built = insert_template(opened.with_layers(list(before)), "Gated (GLU)", len(before) - 1,
                            group="glu2", out_channels=12, kernel_size=5, dilation=3,
                            padding="explicit", pads=6, residual=True)
    assert [(a.spec, a.group) for a in built.layers[len(before):]] == \
        [(a.spec, a.group) for a in glu2]


def test_the_text_cnn_preset_is_built_from_the_gated_template():
    stack = PRESETS["Text CNN with GLU"].build()
    assert [layer.group for layer in stack.layers if layer.group] == ["glu1"] * 6 + ["glu2"] * 6
    assert {type(layer.spec).__name__ for layer in stack.layers} == {
        "Conv", "Slice", "Sigmoid", "Mul", "Add", "GlobalMaxPool", "Flatten", "Dense", "Softmax"}


def test_every_preset_computes_the_bytes_it_computed_before_blocks_became_templates():
    expected = json.loads((FIXTURES / "presets.sha256.json").read_text())
    assert set(expected) == set(PRESETS)
    for name, preset in PRESETS.items():
        stack = preset.build()
        x = np.random.default_rng(7).standard_normal(stack.input.shape).astype(np.float32)
        result = run(stack, x)
        assert result.error is None
        outputs = {layer.name: out for layer, out in zip(stack.layers, result.outputs)}
        for old, digest in expected[name].items():
            out = outputs[_holder(stack, name, old)]
            assert hashlib.sha256(out.tobytes()).hexdigest() == digest, (name, old)


def test_an_old_block_that_cannot_work_opens_with_the_error_on_its_merge():
    stack = project.load(FIXTURES / "invalid-residual.convscope")
    report = analyse(stack)
    add = next(r for r in report.layers if r.group == "res1" and r.type_name == "Add")
    assert add.error is not None and "6 vs 4" in add.error.reason
    assert report.layers[-1].waiting_on == add.index


def _old_project(spec: dict, weights: dict | None = None) -> str:
    return json.dumps({"format": "convscope-project", "version": 2,
                       "input": {"channels": 4, "spatial": [8, 8]},
                       "layers": [{"name": "conv1", "spec": {"type": "Conv", "out_channels": 4}},
                                  {"name": "blk", "spec": spec}],
                       "weights": weights or {}})


def _array(shape: tuple[int, ...]) -> dict:
    data = np.zeros(shape, "<f4").tobytes()
    return {"shape": list(shape), "data": base64.b64encode(data).decode()}


@pytest.mark.parametrize("spec, weights, message", [
    ({"type": "Residual", "body": []}, None,
     "layer 2 \\(blk, Residual\\): a residual block needs a body of at least one layer"),
    ({"type": "Residual", "shortcut": "dense"}, None,
     "shortcut must be one of identity, projection; got 'dense'"),
    ({"type": "Gated", "gate": "tanh"}, None, "Gated has no setting 'gate'"),
    ({"type": "Gated", "kernel_size": "wide"}, None,
     "kernel_size must be one whole number or 2 whole numbers, got 'wide'"),
    ({"type": "Residual", "body": [{"type": "Conv", "out_channels": 4}, {"type": "Warp"}]}, None,
     "unknown layer type 'Warp'"),
    ({"type": "Gated", "out_channels": 4}, {"blk": {"a.W": _array((4, 4, 3, 3)),
                                                    "b.W": _array((4, 4, 1, 1))}},
     "a.W \\(4, 4, 3, 3\\) and b.W \\(4, 4, 1, 1\\) differ in shape"),
    ({"type": "Residual", "body": [{"type": "ReLU"}]}, {"blk": {"body.3.W": _array((1,))}},
     "holds a weight body.3.W that no part of this Residual has"),
])
def test_an_old_block_that_cannot_be_read_is_refused_in_one_line(spec, weights, message, tmp_path):
    path = tmp_path / "old.convscope"
    path.write_text(_old_project(spec, weights))
    with pytest.raises(FileFormatError, match=f"^old.convscope: .*{message}") as err:
        project.load(path)
    assert "\n" not in str(err.value)


def test_old_blocks_with_defaults_open_as_their_subgraphs():
    """A block entry may leave settings out, as to_dict never did but a hand-written file may:
    the old kinds' defaults apply (Residual: conv 16 - ReLU - conv 16, identity)."""
    stack = project.from_json(_old_project({"type": "Residual", "body": [
        {"type": "Conv", "out_channels": 4}, {"type": "Gated", "out_channels": 4}]}))
    assert [(type(a.spec).__name__, a.group) for a in stack.layers] == [
        ("Conv", ""), ("Conv", "blk"), ("Conv", "blk/glu1"), ("Slice", "blk/glu1"),
        ("Slice", "blk/glu1"), ("Sigmoid", "blk/glu1"), ("Mul", "blk/glu1"), ("Add", "blk")]
    assert analyse(stack).ok
