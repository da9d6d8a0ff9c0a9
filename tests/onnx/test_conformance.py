"""The ONNX backend node tests whose operators ConvScope imports, run through the NumPy engine.

A case is selected when all its operators are in SUPPORTED_OPS, its first input and its outputs
are float32, and it is not a training-mode case. Its other inputs with data are bound as
initializers (they are the weights), the model is imported as a stack, and the engine's output
must match the expected one. SKIPPED lists the selected cases that cannot be a single-input
stack by construction, each with its reason: the importer must refuse them with a
FileFormatError (never import them wrongly), and every other selected case must pass. Cases
with a second, non-float output (MaxPool indices, Dropout masks) are not selected.
"""
from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from onnx.backend.test.loader import load_model_tests

from engine.executor import forward
from engine.onnx_import import import_model
from models.errors import FileFormatError

SUPPORTED_OPS = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalMaxPool",
                 "GlobalAveragePool", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Softmax", "Flatten",
                 "Gemm", "MatMul", "Add", "BatchNormalization", "Mul", "Reshape", "Identity",
                 "Dropout"}

VECTOR_INPUT = "its input is 1-D; a stack's input is (N, C, spatial...)"
TWO_TENSORS = ("an element-wise {op} with a second tensor is no layer (Add and Mul appear only "
               "inside Dense, residual and gated blocks)")
SOFTMAX_AXIS = "softmax over a non-channel axis; ConvScope's Softmax normalises over channels"
FLATTEN_AXIS = "flatten at an axis other than 1 folds the batch axis; no layer does that"
NOT_FLATTEN = "a reshape that is not a flatten to (N, -1); no layer does that"
BATCHED_MATMUL = "a batched or vector MatMul, not a Dense layer on a flat input"
GEMM_TRANS_A = "Gemm with transA=1 multiplies across the batch; Dense works per sample"
GEMM_MATRIX_BIAS = "Gemm whose bias is a matrix adds a different bias per sample; Dense has one"

SKIPPED: dict[str, str] = {
    "test_gemm_transposeA": GEMM_TRANS_A,
    "test_gemm_all_attributes": GEMM_TRANS_A,
    "test_gemm_default_matrix_bias": GEMM_MATRIX_BIAS,
    "test_add": TWO_TENSORS.format(op="Add"),
    "test_add_bcast": TWO_TENSORS.format(op="Add"),
    "test_mul": TWO_TENSORS.format(op="Mul"),
    "test_mul_bcast": TWO_TENSORS.format(op="Mul"),
    "test_mul_example": VECTOR_INPUT,
    "test_clip_default_inbounds_expanded": VECTOR_INPUT,
    "test_dropout_default_old": VECTOR_INPUT,
    "test_leakyrelu_example": VECTOR_INPUT,
    "test_sigmoid_example": VECTOR_INPUT,
    "test_tanh_example": VECTOR_INPUT,
    "test_softmax_axis_0": SOFTMAX_AXIS,
    "test_softmax_axis_2": SOFTMAX_AXIS,
    "test_softmax_default_axis": SOFTMAX_AXIS,
    "test_softmax_negative_axis": SOFTMAX_AXIS,
    "test_flatten_axis0": FLATTEN_AXIS,
    "test_flatten_axis2": FLATTEN_AXIS,
    "test_flatten_axis3": FLATTEN_AXIS,
    "test_flatten_negative_axis1": FLATTEN_AXIS,
    "test_flatten_negative_axis2": FLATTEN_AXIS,
    "test_flatten_negative_axis4": FLATTEN_AXIS,
    "test_reshape_reordered_all_dims": NOT_FLATTEN,
    "test_reshape_reordered_last_dims": NOT_FLATTEN,
    "test_reshape_extended_dims": NOT_FLATTEN,
    "test_reshape_one_dim": NOT_FLATTEN,
    "test_reshape_negative_dim": NOT_FLATTEN,
    "test_reshape_negative_extended_dims": NOT_FLATTEN,
    "test_reshape_zero_dim": NOT_FLATTEN,
    "test_reshape_zero_and_negative_dim": NOT_FLATTEN,
    "test_reshape_allowzero_reordered": "its input has a zero-sized batch; " + NOT_FLATTEN,
    "test_matmul_3d": BATCHED_MATMUL,
    "test_matmul_4d": BATCHED_MATMUL,
    "test_matmul_bcast": BATCHED_MATMUL,
    "test_matmul_1d_3d": BATCHED_MATMUL,
    "test_matmul_4d_1d": BATCHED_MATMUL,
    "test_matmul_1d_1d": BATCHED_MATMUL,
}


def _is_float(value: onnx.ValueInfoProto) -> bool:
    return value.type.HasField("tensor_type") and \
        value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def _training(model: onnx.ModelProto, name: str) -> bool:
    flagged = any(a.name == "training_mode" and a.i for n in model.graph.node for a in n.attribute)
    return flagged or "training" in name


def _selected() -> list:
    cases = []
    with warnings.catch_warnings():  # generating other operators' cases warns about overflows
        warnings.simplefilter("ignore", RuntimeWarning)
        all_cases = load_model_tests(kind="node")
    for case in all_cases:
        model = case.model
        if model is None or not case.data_sets:
            continue
        graph = model.graph
        if {n.op_type for n in graph.node} <= SUPPORTED_OPS and graph.input and \
                _is_float(graph.input[0]) and all(_is_float(o) for o in graph.output) and \
                not _training(model, case.name):
            cases.append(case)
    return cases


CASES = _selected()


def _with_weights(model: onnx.ModelProto, inputs: list[np.ndarray]) -> onnx.ModelProto:
    """The model with its non-first inputs bound to their data as initializers."""
    bound = onnx.ModelProto()
    bound.CopyFrom(model)
    names = [i.name for i in model.graph.input]
    for name, value in zip(names[1:], inputs[1:]):
        bound.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
    keep = [i for i in bound.graph.input if i.name == names[0]]
    del bound.graph.input[:]
    bound.graph.input.extend(keep)
    return bound


def test_skip_list_names_only_selected_cases():
    assert set(SKIPPED) <= {case.name for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_node_case_runs_in_the_engine(case):
    for inputs, expected in case.data_sets:
        data = _with_weights(case.model, list(inputs)).SerializeToString()
        if case.name in SKIPPED:
            with pytest.raises(FileFormatError):
                import_model(data)
            pytest.skip(SKIPPED[case.name])
        stack = import_model(data)
        actual = forward(stack, inputs[0])
        np.testing.assert_allclose(actual, expected[0], rtol=1e-3, atol=1e-4)
