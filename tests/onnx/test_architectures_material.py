"""Checks of the test material in architectures.py (not of ConvScope's importer): every builder
writes a valid opset-17 model that onnx's shape inference sizes completely and onnxruntime runs to
finite outputs of the architecture's shape, with torch-style names; the two old-file variants
compute the same outputs; light_models() lists onnx's light backend-test models."""
from __future__ import annotations

import functools

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from architectures import (ARCHITECTURES, SMALL_INPUTS, light_models, se_nearest_block,
                           shufflenet_v2_unit, with_constant_weights,
                           with_initializers_as_inputs)

# Output shapes worked out by hand from the architectures' definitions.
SMALL_OUTPUTS = {
    "resnet18": (1, 1000),
    "mobilenet_v2": (1, 1000),
    "mobilenet_v3_block": (1, 16, 8, 8),
    "squeezenet1_1": (1, 1000),
    "unet": (1, 2, 32, 32),
    "inception_block": (1, 256, 8, 8),
    "densenet_block": (1, 72, 4, 4),  # (16 + 4 * 32) / 2 channels, 8 / 2 pixels
    "shufflenet_v2_unit": (1, 116, 8, 8),
    "fpn_dbnet": (1, 1, 64, 64),
    "dilated_tcn": (1, 32, 64),
    "se_nearest_block": (1, 32, 16, 16),
}
DEFAULT_OUTPUTS = {
    "resnet18": (1, 1000),
    "mobilenet_v2": (1, 1000),
    "mobilenet_v3_block": (1, 112, 14, 14),
    "squeezenet1_1": (1, 1000),
    "unet": (1, 2, 128, 128),
    "inception_block": (1, 256, 28, 28),
    "densenet_block": (1, 96, 28, 28),
    "shufflenet_v2_unit": (1, 116, 28, 28),
    "fpn_dbnet": (1, 1, 256, 256),
    "dilated_tcn": (1, 32, 256),
    "se_nearest_block": (1, 64, 64, 64),
}
# Ops each builder must contain (what the brief asks each graph to exercise).
REQUIRED_OPS = {
    "resnet18": {"Conv", "Relu", "MaxPool", "Add", "GlobalAveragePool", "Flatten", "Gemm"},
    "mobilenet_v2": {"Conv", "Clip", "Constant", "Add", "GlobalAveragePool", "Gemm"},
    "mobilenet_v3_block": {"Conv", "HardSwish", "ReduceMean", "Relu", "HardSigmoid", "Mul",
                           "Add"},
    "squeezenet1_1": {"Conv", "Relu", "MaxPool", "Concat", "Dropout", "GlobalAveragePool",
                      "Flatten"},
    "unet": {"Conv", "BatchNormalization", "Relu", "MaxPool", "ConvTranspose", "Resize",
             "Concat"},
    "inception_block": {"Conv", "BatchNormalization", "Relu", "MaxPool", "Concat"},
    "densenet_block": {"Concat", "BatchNormalization", "Relu", "Conv", "AveragePool"},
    "shufflenet_v2_unit": {"Conv", "Relu", "Concat", "Split", "Shape", "Gather", "Div",
                           "Unsqueeze", "Constant", "Reshape", "Transpose"},
    "fpn_dbnet": {"Conv", "Relu", "Resize", "Add", "Concat", "BatchNormalization",
                  "ConvTranspose", "Sigmoid"},
    "dilated_tcn": {"Pad", "Conv", "Relu", "Add"},
    "se_nearest_block": {"GlobalAveragePool", "Flatten", "Gemm", "Relu", "Sigmoid", "Reshape",
                         "Mul", "Resize"},
}
NAMES = sorted(ARCHITECTURES)


@functools.lru_cache(maxsize=None)
def small_model(name: str) -> onnx.ModelProto:
    """The builder's model at its small input (cached: tests only read it)."""
    return ARCHITECTURES[name](input_shape=SMALL_INPUTS[name], seed=0)


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(["output"], {"input": x})[0]


def random_input(name: str) -> np.ndarray:
    return np.random.default_rng(1).standard_normal(SMALL_INPUTS[name]).astype(np.float32)


def declared_output_shape(model: onnx.ModelProto) -> tuple[int, ...]:
    return tuple(d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim)


def test_every_architecture_has_a_small_input() -> None:
    assert set(ARCHITECTURES) == set(SMALL_INPUTS) == set(SMALL_OUTPUTS) == {
        "resnet18", "mobilenet_v2", "mobilenet_v3_block", "squeezenet1_1", "unet",
        "inception_block", "densenet_block", "shufflenet_v2_unit", "fpn_dbnet", "dilated_tcn",
        "se_nearest_block"}


@pytest.mark.parametrize("name", NAMES)
def test_model_is_valid_and_every_tensor_has_a_static_shape(name: str) -> None:
    model = small_model(name)
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain == ""] == [17]
    assert {n.op_type for n in model.graph.node} >= REQUIRED_OPS[name]
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    known = {v.name: v.type.tensor_type for v in
             [*inferred.graph.value_info, *inferred.graph.output]}
    for node in model.graph.node:
        for out in node.output:
            assert out in known and known[out].HasField("shape"), f"{out} has no shape"
            dims = known[out].shape.dim
            assert all(d.HasField("dim_value") for d in dims), f"{out} is not static: {dims}"
    assert declared_output_shape(model) == SMALL_OUTPUTS[name]


@pytest.mark.parametrize("name", NAMES)
def test_onnxruntime_gives_finite_outputs_of_the_expected_shape(name: str) -> None:
    y = run(small_model(name), random_input(name))
    assert y.shape == SMALL_OUTPUTS[name]
    assert np.isfinite(y).all()
    # Realistic weight scale: activations stay O(1), neither vanishing nor exploding.
    assert 1e-2 < float(y.std()) < 10.0 and float(np.abs(y).max()) < 100.0


@pytest.mark.parametrize("name", NAMES)
def test_old_file_variants_compute_the_same_outputs(name: str) -> None:
    model = small_model(name)
    x = random_input(name)
    expected = run(model, x)
    as_inputs = with_initializers_as_inputs(model)
    constants = with_constant_weights(model)
    # onnxruntime fuses differently when weights may be overridden (graph inputs), so the sums
    # are rounded in another order: float32 tolerance, scaled by the outputs' magnitude.
    atol = 1e-5 * max(1.0, float(np.abs(expected).max()))
    for variant in (as_inputs, constants):
        onnx.checker.check_model(variant, full_check=True)
        np.testing.assert_allclose(run(variant, x), expected, rtol=1e-4, atol=atol)
    assert [i.name for i in as_inputs.graph.input] == (
        ["input"] + [t.name for t in model.graph.initializer])
    assert not constants.graph.initializer
    assert [i.name for i in constants.graph.input] == ["input"]
    constant_outputs = {n.output[0] for n in constants.graph.node if n.op_type == "Constant"}
    assert {t.name for t in model.graph.initializer} <= constant_outputs
    assert len(model.graph.initializer) > 0 and len(model.graph.node) > 0  # the original kept


def _module_path(node_name: str) -> str:
    """"/features/features.1/conv/conv.0/conv.0.0/Conv" -> "features.1.conv.0.0": the inverse
    of torch's scope naming, as an importer would derive groups."""
    segments: list[str] = []
    for part in node_name.split("/")[1:-1]:
        if segments and part.startswith(segments[-1] + "."):
            segments[-1] = part
        else:
            segments.append(part)
    return ".".join(segments)


@pytest.mark.parametrize("name", NAMES)
def test_names_follow_torch_export(name: str) -> None:
    model = small_model(name)
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["output"]
    names = [n.name for n in model.graph.node]
    assert len(set(names)) == len(names)
    for node in model.graph.node:
        assert node.name.startswith("/")
        base = node.name.rsplit("/", 1)[1]
        assert base == node.op_type or base.startswith(node.op_type + "_")
        assert all(o == "output" or o == f"{node.name}_output_{i}"
                   for i, o in enumerate(node.output))
        if node.op_type in ("Conv", "ConvTranspose", "Gemm", "BatchNormalization"):
            assert node.input[1] == f"{_module_path(node.name)}.weight"
    assert "/layer1/layer1.0/conv1/Conv" in names or name != "resnet18"


@pytest.mark.parametrize("name", NAMES)
def test_default_input_shapes(name: str) -> None:
    model = ARCHITECTURES[name]()
    onnx.checker.check_model(model)
    assert declared_output_shape(model) == DEFAULT_OUTPUTS[name]


def test_seed_decides_the_weights() -> None:
    first, again, other = (onnx.numpy_helper.to_array(se_nearest_block(seed=s).graph.initializer[0])
                           for s in (3, 3, 4))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_unannotated_shufflenet_runs_the_same() -> None:
    """annotate=False drops only the value_info that sizes the shuffle's 5-D Reshape."""
    shape = SMALL_INPUTS["shufflenet_v2_unit"]
    plain = shufflenet_v2_unit(input_shape=shape, annotate=False)
    assert not plain.graph.value_info
    onnx.checker.check_model(plain, full_check=True)
    x = random_input("shufflenet_v2_unit")
    np.testing.assert_array_equal(run(plain, x), run(small_model("shufflenet_v2_unit"), x))


def test_light_models_are_listed_with_their_inputs() -> None:
    found = light_models()
    assert {m.path.name for m in found} >= {"light_resnet50.onnx", "light_squeezenet.onnx",
                                            "light_densenet121.onnx", "light_shufflenet.onnx"}
    for entry in found:
        assert entry.path.is_file()
        model = onnx.load(str(entry.path))
        graph_inputs = {i.name for i in model.graph.input}
        assert entry.input_name in graph_inputs
        assert entry.input_shape == (1, 3, 224, 224)
