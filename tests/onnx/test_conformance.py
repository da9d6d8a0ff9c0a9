"""The ONNX backend node tests whose operators ConvScope has import rules for, imported as
networks and run through the engine (onnxruntime computes the nodes a rule leaves opaque).

A case is selected when every operator has a rule (engine.onnx.registry.IMPORTERS, or Split), its
first input and its outputs are float32, and it is not a training-mode case. Its other inputs
with data are bound as initializers (they are the weights), the model is imported as a network,
and the engine's outputs must match the expected ones. Cases that cannot be a network by
construction must be refused with a FileFormatError (never imported wrongly): a first input
with fewer than two axes or an empty axis (a network's input is (N, C, ...)), and the cases in
NO_BATCH, whose result does not keep the input's batch axis first. ORT_DIFFERS lists cases whose
expected output onnxruntime itself does not give (ConvScope follows onnxruntime).

Since the graph import, Add/Mul/Sub/Div of two tensors, softmax over any axis, flatten at an
axis, reshapes, batched MatMul and Gemm's matrix bias import (as layers, or as opaque nodes)
instead of being refused as they were for a chain.
"""
from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from onnx.backend.test.loader import load_model_tests

import engine.onnx.importer  # noqa: F401  (registers every import rule)
from engine.executor import run
from engine.onnx.importer import import_model
from engine.onnx.registry import IMPORTERS
from models.errors import FileFormatError


RULED_OPS = frozenset(IMPORTERS) | {"Split"}
NO_BATCH_REASON = "its result does not keep the input's batch axis first"
NO_BATCH = {
    "test_concat_2d_axis_0", "test_concat_2d_axis_negative_2", "test_concat_3d_axis_0",
    "test_concat_3d_axis_negative_3", "test_flatten_axis0", "test_flatten_axis2",
    "test_flatten_axis3", "test_flatten_negative_axis4", "test_flatten_negative_axis2",
    "test_flatten_negative_axis1", "test_gemm_transposeA", "test_gemm_all_attributes",
    "test_reduce_log_sum_asc_axes_expanded", "test_reduce_log_sum_default_expanded",
    "test_reduce_l1_default_axes_keepdims_example_expanded",
    "test_reduce_l1_default_axes_keepdims_random_expanded",
    "test_reduce_max_default_axes_keepdim_example",
    "test_reduce_max_default_axes_keepdims_random",
    "test_reduce_mean_default_axes_keepdims_example",
    "test_reduce_mean_default_axes_keepdims_random",
    "test_reduce_min_default_axes_keepdims_example",
    "test_reduce_min_default_axes_keepdims_random",
    "test_reduce_sum_default_axes_keepdims_example",
    "test_reduce_sum_default_axes_keepdims_random",
    "test_reduce_sum_square_default_axes_keepdims_example_expanded",
    "test_reduce_sum_square_default_axes_keepdims_random_expanded",
    "test_reshape_reordered_all_dims", "test_reshape_one_dim",
    "test_reshape_negative_extended_dims", "test_reshape_allowzero_reordered", "test_slice",
    "test_slice_neg_steps", "test_squeeze", "test_transpose_default",
    "test_transpose_all_permutations_2", "test_transpose_all_permutations_3",
    "test_transpose_all_permutations_4", "test_transpose_all_permutations_5",
    "test_unsqueeze_axis_0",
}
ORT_DIFFERS = {
    "test_resize_downsample_scales_linear_align_corners":
        "onnxruntime's align_corners downsampling differs from the expected output by 0.86",
    "test_resize_downsample_scales_cubic_align_corners":
        "onnxruntime's align_corners downsampling differs from the expected output by 1.05",
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
        if {n.op_type for n in graph.node} <= RULED_OPS and graph.input and \
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


def _refusal(case, x: np.ndarray) -> str | None:
    """Why no network can be this case, from the case's own data, else None."""
    if x.ndim < 2:
        return "its input has fewer than 2 axes; a network's input is (N, C, ...)"
    if 0 in x.shape[1:]:
        return "its input has an empty axis"
    if case.name in NO_BATCH:
        return NO_BATCH_REASON
    return None


def test_lists_name_only_selected_cases():
    names = {case.name for case in CASES}
    assert NO_BATCH | set(ORT_DIFFERS) <= names


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_node_case_runs_in_the_engine(case):
    if case.name in ORT_DIFFERS:
        pytest.skip(ORT_DIFFERS[case.name])
    for inputs, expected in case.data_sets:
        data = _with_weights(case.model, list(inputs)).SerializeToString()
        refusal = _refusal(case, np.asarray(inputs[0]))
        if refusal is not None:
            with pytest.raises(FileFormatError):
                import_model(data)
            pytest.skip(refusal)
        stack = import_model(data)
        result = run(stack, inputs[0])
        assert result.error is None, result.error
        outputs = [result.outputs[i] for i in stack.output_indices]
        assert len(outputs) == len(expected)
        for actual, want in zip(outputs, expected):
            np.testing.assert_allclose(actual, want, rtol=1e-3, atol=1e-4)
