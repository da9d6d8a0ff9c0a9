"""Export: every preset becomes a checked ONNX model that onnxruntime runs to the engine's
numbers, layer by layer; opsets and invalid stacks are handled."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import assert_close, ort_run

from engine.executor import forward, run
from engine.onnx.export import export_model, save_model
from engine.onnx.importer import import_model
from models.errors import ConfigError
from models.layers import Conv, ReLU
from models.presets import PRESETS
from models.stack import InputSpec, Stack

PRESET_NAMES = list(PRESETS)


def _input(stack: Stack, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(stack.input.shape, dtype=np.float32)


@pytest.fixture(scope="module", params=PRESET_NAMES)
def preset(request) -> tuple[Stack, onnx.ModelProto]:
    stack = PRESETS[request.param].build()
    return stack, export_model(stack, layer_outputs=True)


def test_preset_model_is_valid_and_described(preset):
    stack, model = preset
    onnx.checker.check_model(model, full_check=True)
    assert model.producer_name == "ConvScope" and model.producer_version
    assert model.opset_import[0].version == 17
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param == "N"
    described = {v.name for v in model.graph.value_info} | {o.name for o in model.graph.output}
    produced = {name for node in model.graph.node for name in node.output}
    assert produced <= described
    for value in list(model.graph.value_info) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        assert dims[0].dim_param == "N" and all(d.dim_value > 0 for d in dims[1:])
    assert [o.name for o in model.graph.output] == [layer.name for layer in stack.layers]
    assert all(not any(a.name == "auto_pad" for a in n.attribute) for n in model.graph.node)


def test_preset_layers_match_onnxruntime(preset):
    stack, model = preset
    x = _input(stack)
    result = run(stack, x)
    for layer, ours, theirs in zip(stack.layers, result.outputs, ort_run(model, x)):
        assert ours.shape == theirs.shape, layer.name
        assert_close(theirs, ours)


def test_final_output_only_by_default():
    stack = PRESETS["LeNet-5"].build()
    model = export_model(stack)
    assert [o.name for o in model.graph.output] == [stack.layers[-1].name]
    x = _input(stack, 1)
    assert_close(ort_run(model, x)[0], forward(stack, x))


@pytest.mark.parametrize("opset", [13, 15, 19])
def test_other_opsets(opset):
    stack = PRESETS["Text CNN with GLU"].build()
    model = export_model(stack, opset=opset)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == opset
    x = _input(stack, 2)
    assert_close(ort_run(model, x)[0], forward(stack, x))


@pytest.mark.parametrize("opset", [12, 99, "17"])
def test_unknown_opset_is_a_config_error(opset):
    with pytest.raises(ConfigError, match="opset"):
        export_model(PRESETS["LeNet-5"].build(), opset=opset)


def test_invalid_stack_raises_its_first_error():
    stack = Stack(InputSpec(3, (8, 8))).appended(ReLU()).appended(
        Conv(out_channels=4, kernel_size=11, padding="valid"))
    with pytest.raises(ConfigError, match=r"layer 2 \(conv1, Conv2D\): kernel 11"):
        export_model(stack)


def test_weights_are_filled_and_exported():
    stack = Stack(InputSpec(2, (6,))).appended(Conv(rank=1, out_channels=3))
    model = export_model(stack)
    names = {t.name: t for t in model.graph.initializer}
    assert set(names) == {"conv1.W", "conv1.B"}
    x = np.ones((1, 2, 6), np.float32)
    assert_close(ort_run(model, x)[0], forward(stack, x))


def test_a_layer_named_input_keeps_the_graph_valid():
    stack = Stack(InputSpec(1, (4, 4))).appended(ReLU(), name="input")
    model = export_model(stack)
    assert model.graph.input[0].name != "input"
    onnx.checker.check_model(model, full_check=True)


def test_save_model_writes_atomically(tmp_path):
    stack = PRESETS["MobileNet block"].build()
    path = tmp_path / "mobile.onnx"
    save_model(stack, path, opset=13)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mobile.onnx"]
    loaded = onnx.load(str(path))
    assert loaded.opset_import[0].version == 13
    assert [layer.name for layer in import_model(path).layers] == \
        [layer.name for layer in stack.layers]
