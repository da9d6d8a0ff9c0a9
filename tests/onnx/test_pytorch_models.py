"""The small PyTorch-made models that ship with the onnx package (backend test data
`pytorch-converted/` and `pytorch-operator/`: old files, IR 3 and opset 6 mostly, each with one
stored input and its expected outputs): every one that can be a network opens, and the engine
gives the stored outputs within 1e-4 relative; every other one is refused in one line naming
what no network can be.

A model whose operators all have import rules opens with no opaque node, except those listed in
OPAQUE with the reason; opaque nodes of operators outside the vocabulary (Selu, Tile) are
computed by onnxruntime, and the outputs still match. REFUSED lists the models refused and the
reason their message gives. A model moving between the lists fails the test, so each list says
exactly what ConvScope does with these files.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import assert_close
from onnx import numpy_helper

from engine.executor import run
from engine.onnx.importer import import_model
from engine.onnx.registry import IMPORTERS
from models.errors import FileFormatError
from models.layers.opaque import Opaque

DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
MODELS = sorted([*(DATA / "pytorch-converted").iterdir(), *(DATA / "pytorch-operator").iterdir()])
VOCABULARY = frozenset(IMPORTERS) | {"Split", "Constant"}
REPO = Path(__file__).resolve().parents[2]

SEVERAL_INPUTS = "a ConvScope network has one input"
NOT_FLOAT32 = "must be a float32 tensor"
REFUSED = {
    "test_Embedding": NOT_FLOAT32,  # token indices (int64) into an embedding table
    "test_Embedding_sparse": NOT_FLOAT32,
    "test_operator_addconstant": NOT_FLOAT32,  # float64
    "test_operator_non_float_params": NOT_FLOAT32,  # int64
    "test_operator_add_broadcast": SEVERAL_INPUTS,
    "test_operator_add_size1_broadcast": SEVERAL_INPUTS,
    "test_operator_add_size1_right_broadcast": SEVERAL_INPUTS,
    "test_operator_add_size1_singleton_broadcast": SEVERAL_INPUTS,
    "test_operator_addmm": SEVERAL_INPUTS,
    "test_operator_basic": SEVERAL_INPUTS,
    "test_operator_concat2": SEVERAL_INPUTS,
    "test_operator_max": SEVERAL_INPUTS,
    "test_operator_min": SEVERAL_INPUTS,
    "test_operator_mm": SEVERAL_INPUTS,
    "test_operator_pow": SEVERAL_INPUTS,
    "test_operator_symbolic_override_nested": SEVERAL_INPUTS,
    "test_operator_chunk": "has 1 axis; a network's input is (N, C, spatial...)",
    "test_operator_view": "has 1 axis; a network's input is (N, C, spatial...)",
    "test_operator_permute2": "has 6 axes; a network's input is (N, C, spatial...)",
}
# Models whose operators all have rules, but a node no layer can hold: onnxruntime computes it.
OPAQUE = {
    "test_PoissonNLLLLoss_no_reduce": ("Mul", "would repeat the batch"),  # a (10, 10) constant
    "test_operator_params": ("Add", "would repeat the batch"),  # a (2, 2) constant
    "test_operator_index": ("Squeeze", "removes the batch axis"),
}


def _tensor(path: Path) -> np.ndarray:
    tensor = onnx.TensorProto()
    tensor.ParseFromString(path.read_bytes())
    return numpy_helper.to_array(tensor)


def _data(folder: Path, kind: str) -> list[np.ndarray]:
    return [_tensor(p) for p in sorted((folder / "test_data_set_0").glob(f"{kind}_*.pb"))]


def test_the_models_are_there():
    assert len(MODELS) >= 100
    assert set(REFUSED) | set(OPAQUE) <= {folder.name for folder in MODELS}


@pytest.mark.parametrize("folder", MODELS, ids=[folder.name for folder in MODELS])
def test_model_opens_and_gives_its_stored_outputs_or_is_refused_in_one_line(folder):
    path = folder / "model.onnx"
    try:
        stack = import_model(path)
    except FileFormatError as err:
        message = str(err)
        assert folder.name in REFUSED, message
        assert REFUSED[folder.name] in message and message.startswith("model.onnx: ")
        assert "\n" not in message and "Traceback" not in message
        return
    assert folder.name not in REFUSED
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    opaque = [layer.spec for layer in stack.layers if isinstance(layer.spec, Opaque)]
    if ops <= VOCABULARY:
        op, why = OPAQUE.get(folder.name, (None, ""))
        assert [spec.op_type for spec in opaque] == ([op] if op else [])
        assert all(why in spec.reason for spec in opaque)
    else:
        assert {spec.op_type for spec in opaque} == ops - VOCABULARY
    (x,) = _data(folder, "input")
    expected_outputs = _data(folder, "output")
    result = run(stack, x)
    assert result.error is None, result.error
    assert len(stack.output_indices) == len(expected_outputs)
    for index, want in zip(stack.output_indices, expected_outputs):
        assert_close(result.outputs[index], want.astype(np.float32))


@pytest.mark.parametrize("name", ["test_Embedding", "test_operator_add_broadcast",
                                  "test_operator_view"])
def test_command_line_refuses_in_one_line(name):
    done = subprocess.run([sys.executable, "main.py", "summary", str(DATA / "pytorch-operator"
                           if "operator" in name else DATA / "pytorch-converted") + f"/{name}"
                           "/model.onnx"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and REFUSED[name] in lines[0], done.stderr
