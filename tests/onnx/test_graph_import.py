"""Graph import of whole CNNs: the standard architectures of architectures.py (written as
PyTorch exports them) and onnx's light backend-test models open with no opaque node, their
shapes equal onnx's shape inference node by node, and the NumPy engine equals onnxruntime on
every node's output; old-style files (weights as graph inputs, in Constant nodes) import the
same; names and groups follow the ONNX name scopes."""
from __future__ import annotations

import copy
import functools
import time

import numpy as np
import onnx
import pytest
from graph_checks import every_tensor, inferred_shapes, tensor_of
from helpers import assert_close

from architectures import (ARCHITECTURES, SMALL_INPUTS, densenet_block, light_models, resnet18,
                           with_constant_weights, with_initializers_as_inputs)
from engine.executor import run
from engine.onnx.importer import import_model
from models.analysis import analyse
from models.layers.opaque import Opaque
from models.stack import INPUT, Stack

LIGHT = {m.path.stem: m for m in light_models()}
LIGHT_RUN = ["light_squeezenet", "light_shufflenet", "light_bvlc_alexnet"]


@functools.lru_cache(maxsize=None)
def _model(name: str) -> onnx.ModelProto:
    return ARCHITECTURES[name](input_shape=SMALL_INPUTS[name])


def _opaque(stack: Stack) -> list[str]:
    return [layer.name for layer in stack.layers if isinstance(layer.spec, Opaque)]


def _check_shapes(model: onnx.ModelProto, stack: Stack) -> None:
    report = analyse(stack)
    assert report.ok, report.first_error
    shapes = inferred_shapes(model)
    for layer, layer_report in zip(stack.layers, report.layers):
        want = shapes[tensor_of(model, layer)]
        assert layer_report.output_shape == want, layer.name


def _check_values(model: onnx.ModelProto, stack: Stack, seed: int = 0) -> None:
    x = np.random.default_rng(seed).standard_normal(stack.input.shape).astype(np.float32)
    theirs = every_tensor(model, x)
    result = run(stack, x)
    assert result.error is None, result.error
    for layer, ours in zip(stack.layers, result.outputs):
        assert_close(ours, theirs[tensor_of(model, layer)])


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_architecture_imports_as_a_graph_equal_to_onnxruntime(name):
    model = _model(name)
    stack = import_model(model)
    assert _opaque(stack) == []
    assert stack.input.shape == SMALL_INPUTS[name]
    _check_shapes(model, stack)
    _check_values(model, stack)


@pytest.mark.parametrize("variant", [with_initializers_as_inputs, with_constant_weights])
def test_old_style_weights_import_the_same(variant):
    model = _model("resnet18")
    plain, old = import_model(model), import_model(variant(model))
    assert [(l.name, l.spec, l.inputs, l.group) for l in old.layers] == \
        [(l.name, l.spec, l.inputs, l.group) for l in plain.layers]
    for a, b in zip(plain.layers, old.layers):
        assert a.weights.keys() == b.weights.keys()
        for key in a.weights:
            np.testing.assert_array_equal(a.weights[key], b.weights[key])


def test_residual_blocks_are_convs_and_an_add_reading_both_branches():
    stack = import_model(_model("resnet18"))
    add = stack.layers[stack.index_of("/layer1/layer1.0/Add")]
    assert add.spec.type_name == "Add" and add.spec.constant_shape is None
    assert add.inputs == ("/layer1/layer1.0/conv2/Conv", "/maxpool/MaxPool")
    assert stack.outputs == ("/fc/Gemm",)
    assert stack.layers[stack.index_of("/fc/Gemm")].spec.type_name == "Dense"


def test_groups_follow_the_name_scopes():
    stack = import_model(_model("resnet18"))
    groups = {layer.name: layer.group for layer in stack.layers}
    assert groups["/conv1/Conv"] == ""  # a module of one op: no group of its own
    assert groups["/layer1/layer1.0/conv1/Conv"] == "layer1/0"
    assert groups["/layer1/layer1.0/Add"] == "layer1/0"
    assert groups["/layer2/layer2.0/downsample/downsample.0/Conv"] == "layer2/0/downsample"
    assert groups["/fc/Gemm"] == ""


def test_names_are_unique_and_never_the_input():
    model = copy.deepcopy(_model("se_nearest_block"))
    renamed = {"Relu": INPUT, "Sigmoid": "/se/Flatten", "Mul": ""}  # Flatten's name is taken
    for node in model.graph.node:
        node.name = renamed.get(node.op_type, node.name)
    stack = import_model(model)
    names = [layer.name for layer in stack.layers]
    assert len(set(names)) == len(names) and INPUT not in names
    by_type = {layer.spec.type_name: layer.name for layer in stack.layers}
    assert (by_type["ReLU"], by_type["Sigmoid"], by_type["Mul"]) == \
        ("input_2", "/se/Flatten_2", "mul1")
    reshape = next(layer for layer in stack.layers if layer.spec.type_name == "Reshape")
    assert reshape.inputs == ("/se/Flatten_2",)


@pytest.mark.parametrize("name", sorted(LIGHT))
def test_light_model_opens_with_no_opaque_node(name):
    light = LIGHT[name]
    stack = import_model(light.path)
    assert _opaque(stack) == []
    assert stack.input.shape == light.input_shape
    model = onnx.load(str(light.path))
    report = analyse(stack)
    assert report.ok, report.first_error
    assert report.layers[stack.output_indices[0]].output_shape == \
        tuple(d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim)


@pytest.mark.parametrize("name", LIGHT_RUN)
def test_light_model_runs_as_onnxruntime(name):
    light = LIGHT[name]
    stack = import_model(light.path)
    x = np.random.default_rng(0).standard_normal(stack.input.shape).astype(np.float32)
    theirs = every_tensor(onnx.load(str(light.path)), x)
    result = run(stack, x)
    assert result.error is None, result.error
    expected = theirs[onnx.load(str(light.path)).graph.output[0].name]
    assert_close(result.output, expected)


def _densenet121_sized() -> onnx.ModelProto:
    """onnx's light DenseNet-121 folded once and saved with plain initializers, as a PyTorch
    export would be: about 670 nodes."""
    from engine.onnx.fold import fold
    from engine.onnx.load import load

    folded = fold(load(LIGHT["light_densenet121"].path))
    model = folded.model
    used = {name for node in model.graph.node for name in node.input}
    inputs = [i for i in model.graph.input if i.name not in folded.constants]
    del model.graph.input[:], model.graph.initializer[:], model.graph.value_info[:]
    model.graph.input.extend(inputs)
    model.graph.initializer.extend(onnx.numpy_helper.from_array(value, name)
                                   for name, value in folded.constants.items() if name in used)
    return model


def test_a_densenet121_sized_graph_imports_and_analyses_in_under_a_second():
    data = _densenet121_sized().SerializeToString()
    import_model(data)  # warm: module imports
    start = time.perf_counter()
    stack = import_model(data)
    report = analyse(stack)
    seconds = time.perf_counter() - start
    assert report.ok and len(stack.layers) > 500
    assert seconds < 1.0, f"{seconds:.2f} s"


def test_densenet_block_concatenates_every_earlier_output():
    model = densenet_block(input_shape=SMALL_INPUTS["densenet_block"])
    stack = import_model(model)
    concats = [layer for layer in stack.layers if layer.spec.type_name == "Concat"]
    # torchvision concatenates the block's input alone first (torch.cat of a one-tensor list)
    assert [len(layer.inputs) for layer in concats] == list(range(1, len(concats) + 1))
    assert all(layer.inputs[0] == INPUT for layer in concats)


def test_a_fixed_batch_is_kept():
    model = resnet18(input_shape=(2, 3, 32, 32))
    stack = import_model(model)
    assert stack.input.shape == (2, 3, 32, 32)
    _check_shapes(model, stack)
