"""Project files round-trip exactly, and bad files give one clear message."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models import project
from models.errors import FileFormatError
from models.presets import PRESETS
from models.weights import materialise


@pytest.mark.parametrize("name", list(PRESETS))
def test_round_trip_keeps_stack_and_weights(name: str, tmp_path: Path) -> None:
    stack = PRESETS[name].build()
    path = tmp_path / "net.convscope"
    project.save(stack, path)
    again = project.load(path)
    assert again.input == stack.input and again.seed == stack.seed
    assert [(l.name, l.spec) for l in again.layers] == [(l.name, l.spec) for l in stack.layers]
    for old, new in zip(stack.layers, again.layers):
        assert old.weights.keys() == new.weights.keys()
        assert all(np.array_equal(old.weights[k], new.weights[k]) for k in old.weights)


def good_document() -> dict:
    return json.loads(project.to_json(PRESETS["LeNet-5"].build()))


@pytest.mark.parametrize("mutate,words", [
    (lambda d: "", "empty"),
    (lambda d: json.dumps(d)[:200], "truncated"),
    (lambda d: "\x00\x01binary", "not valid JSON"),
    (lambda d: json.dumps({**d, "version": 99}), "newer ConvScope"),
    (lambda d: json.dumps({**d, "format": "other"}), "not a ConvScope project"),
    (lambda d: json.dumps({**d, "layers": {"a": 1}}), "layers must be an array"),
    (lambda d: json.dumps({**d, "input": {"channels": "three", "spatial": [4, 4]}}), "input channels"),
    (lambda d: json.dumps({**d, "layers": [{"name": "x", "spec": {"type": "Warp"}}]}), "unknown layer type"),
    (lambda d: json.dumps({**d, "layers": [{"name": "x", "spec": {"type": "Conv", "kernel_size": "3"}}]}),
     "kernel_size must be"),
])
def test_bad_files_give_one_clear_message(mutate, words: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.convscope"
    path.write_text(mutate(good_document()))
    with pytest.raises(FileFormatError) as caught:
        project.load(path)
    assert words in str(caught.value) and str(caught.value).startswith("bad.convscope")


def test_weight_with_wrong_size_is_refused_and_nan_kept(tmp_path: Path) -> None:
    doc = good_document()
    doc["weights"]["conv1"]["W"]["shape"] = [6, 1, 5, 4]
    path = tmp_path / "w.convscope"
    path.write_text(json.dumps(doc))
    with pytest.raises(FileFormatError, match="holds 150 values"):
        project.load(path)
    doc = good_document()
    doc["weights"]["conv1"]["B"]["data"] = "AADAfw" + doc["weights"]["conv1"]["B"]["data"][6:]
    path.write_text(json.dumps(doc))
    # What a stack can hold, a project keeps bit for bit: a NaN bias opens as that NaN.
    bias = project.load(path).layers[0].weights["B"]
    assert bias[:1].view(np.uint32)[0] == 0x7FC00000 and np.isnan(bias[0])


def test_missing_weights_are_filled_from_the_seed(tmp_path: Path) -> None:
    doc = good_document()
    del doc["weights"]
    path = tmp_path / "w.convscope"
    path.write_text(json.dumps(doc))
    loaded = materialise(project.load(path))
    assert np.array_equal(loaded.layers[0].weights["W"], PRESETS["LeNet-5"].build().layers[0].weights["W"])


def test_save_is_atomic_when_writing_fails(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "keep.convscope"
    project.save(PRESETS["LeNet-5"].build(), path)
    before = path.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", disk_full)
    with pytest.raises(OSError):
        project.save(PRESETS["VGG block"].build(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.convscope"]


def test_a_scalar_operand_keeps_its_shape_through_a_project(tmp_path: Path) -> None:
    from models.layers import Mul
    from models.stack import InputSpec, Layer, Stack
    stack = Stack(InputSpec(2, (4, 4))).with_layers([Layer("half", Mul(constant_shape=()),
                                                          {"C": np.array(0.5, np.float32)})])
    assert stack.layers[0].weights["C"].shape == ()
    project.save(stack, tmp_path / "s.convscope")
    again = project.load(tmp_path / "s.convscope").layers[0].weights["C"]
    assert again.shape == () and again == 0.5
