"""NaN and infinite values are computed through, and reported where they start: the input, or
the first layer whose output holds them (in the run's sentence, and on the command line)."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

import main
from engine.executor import run
from engine.nonfinite import counts_text, nonfinite_warning
from models import project
from models.presets import lenet5
from tests.reliability.bad_files import LENET_INPUT


def names(stack) -> list[str]:
    return [layer.name for layer in stack.layers]


def overflowing_lenet(path: Path) -> Path:
    """LeNet-5 whose second convolution's weights are finite but so large that its output
    overflows float32 (a project file can hold them: every value is a valid float32)."""
    doc = json.loads(project.to_json(lenet5()))
    kernel = doc["weights"]["conv2"]["W"]
    values = np.frombuffer(base64.b64decode(kernel["data"]), "<f4") * np.float32(3e38)
    kernel["data"] = base64.b64encode(np.sign(values).astype("<f4") * np.float32(3e38)).decode()
    path.write_text(json.dumps(doc))
    return path


def test_counts_read_as_english():
    assert counts_text(1, 0) == "1 NaN value"
    assert counts_text(0, 2) == "2 infinite values"
    assert counts_text(1_200, 1) == "1,200 NaN and 1 infinite values"


def test_a_nan_in_the_input_is_reported_and_the_run_goes_on():
    stack = lenet5()
    x = np.ones((1, *LENET_INPUT), np.float32)
    x[0, 0, 5, 5] = np.nan
    with np.errstate(invalid="ignore"):
        result = run(stack, x)
    assert all(output is not None for output in result.outputs)  # it still ran every layer
    assert nonfinite_warning(result.input, result.outputs, names(stack)) == (
        "the input holds 1 NaN value (layer 1 (conv1) is the first whose output holds any)")


def test_overflowing_weights_name_the_first_layer(tmp_path):
    stack = project.load(overflowing_lenet(tmp_path / "hot.convscope"))
    with np.errstate(all="ignore"):
        result = run(stack, np.ones((1, *LENET_INPUT), np.float32))
    warning = nonfinite_warning(result.input, result.outputs, names(stack))
    assert warning.startswith("layer 4 (conv2) is the first whose output holds NaN or infinite "
                              "values (")
    assert nonfinite_warning(result.input, result.outputs[:3], names(stack)[:3]) is None


@pytest.mark.parametrize("engine", ["numpy", "onnxruntime"])
def test_infer_warns_on_one_stderr_line(tmp_path, capsys, engine):
    x = np.zeros((1, *LENET_INPUT), np.float32)
    x[0, 0, :2, :2] = np.inf
    np.save(tmp_path / "x.npy", x)
    lenet = tmp_path / "lenet.convscope"
    project.save(lenet5(), lenet)
    status = main.main(["infer", str(lenet), "--input", str(tmp_path / "x.npy"),
                        "--output", str(tmp_path / "y.npy"), "--engine", engine])
    err = capsys.readouterr().err
    assert status == 0 and (tmp_path / "y.npy").exists()
    assert err.splitlines() == ["convscope: warning: the input holds 4 infinite values (layer 1 "
                                "(conv1) is the first whose output holds any)"]


@pytest.mark.parametrize("engine", ["numpy", "onnxruntime"])
def test_infer_names_the_layer_that_overflows(tmp_path, capsys, engine):
    np.save(tmp_path / "x.npy", np.ones(LENET_INPUT, np.float32))
    status = main.main(["infer", str(overflowing_lenet(tmp_path / "hot.convscope")), "--input",
                        str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"),
                        "--engine", engine])
    lines = capsys.readouterr().err.splitlines()
    assert status == 0 and len(lines) == 1
    assert lines[0].startswith("convscope: warning: layer 4 (conv2) is the first whose output "
                               "holds NaN or infinite values")


def test_a_finite_run_says_nothing(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.ones(LENET_INPUT, np.float32))
    lenet = tmp_path / "lenet.convscope"
    project.save(lenet5(), lenet)
    assert main.main(["infer", str(lenet), "--input", str(tmp_path / "x.npy"), "--output",
                      str(tmp_path / "y.npy")]) == 0
    assert capsys.readouterr().err == ""
