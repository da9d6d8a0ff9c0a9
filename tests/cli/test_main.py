"""The command line's contract (DESIGN.md): sub-commands, their output, exit codes, one-line errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import main
from models import presets
from models.analysis import analyse
from models.project import load, save

REPO = Path(__file__).resolve().parents[2]
SUMMARY_KEYS = {"name", "type", "output_shape", "params", "macs", "receptive_field", "inputs",
                "group", "engine"}


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status: int, err: str, *words: str) -> None:
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0]


# summary

def test_summary_json_matches_analysis_and_hand_counts(capsys, lenet_file):
    status, out, _ = run_cli(capsys, "summary", lenet_file, "--json")
    assert status == 0
    doc = json.loads(out)
    assert set(doc) == {"input_shape", "layers", "groups", "total_params", "total_macs"}
    assert all(set(layer) == SUMMARY_KEYS for layer in doc["layers"])
    # LeNet-5 by hand: conv 1->6 5x5, conv 6->16 5x5, conv 16->120 5x5, dense 120->84, 84->10.
    by_hand = (6 * 25 + 6) + (16 * 6 * 25 + 16) + (120 * 16 * 25 + 120) + (84 * 120 + 84) \
        + (10 * 84 + 10)
    assert by_hand == 61706 == doc["total_params"]
    assert doc["input_shape"] == [1, 1, 32, 32]
    convs = [layer for layer in doc["layers"] if layer["type"] == "Conv2D"]
    assert [c["output_shape"] for c in convs] == [[1, 6, 28, 28], [1, 16, 10, 10],
                                                   [1, 120, 1, 1]]
    assert convs[0]["macs"] == 28 * 28 * 6 * 25
    # 5, then pool (+1, jump 2), 5 (+4*2), pool (+1*2, jump 4), 5 (+4*4): the whole 32x32 digit.
    assert [c["receptive_field"] for c in convs] == [[5, 5], [14, 14], [32, 32]]
    assert doc["layers"][-1]["output_shape"] == [1, 10]

    report = analyse(load(lenet_file))
    assert doc["total_macs"] == report.total_macs
    for entry, layer in zip(doc["layers"], report.layers, strict=True):
        assert entry["name"] == layer.name and entry["type"] == layer.type_name
        assert entry["output_shape"] == list(layer.output_shape)
        assert (entry["params"], entry["macs"]) == (layer.params, layer.macs)
        assert entry["receptive_field"] == list(layer.receptive_field)


def test_summary_table_has_every_layer_and_the_totals(capsys, lenet_file):
    status, out, err = run_cli(capsys, "summary", lenet_file)
    assert status == 0 and err == ""
    report = analyse(load(lenet_file))
    for layer in report.layers:
        assert f"{layer.name} ({layer.type_name})" in out
    assert "Total params: 61,706" in out
    assert f"Total MACs: {report.total_macs:,}" in out


def test_dilated_receptive_fields_grow_3_7_15(capsys, tmp_path):
    path = tmp_path / "dilated.convscope"
    save(presets.dilated_context(), path)
    status, out, _ = run_cli(capsys, "summary", path, "--json")
    convs = [layer for layer in json.loads(out)["layers"] if layer["type"] == "Conv2D"]
    assert status == 0 and [c["receptive_field"] for c in convs] == [[3, 3], [7, 7], [15, 15]]


def test_input_shape_overrides_the_project(capsys, lenet_file):
    status, out, _ = run_cli(capsys, "summary", lenet_file, "--input-shape", "4,1,32,32", "--json")
    doc = json.loads(out)
    assert status == 0 and doc["input_shape"] == [4, 1, 32, 32]
    assert doc["layers"][0]["output_shape"] == [4, 6, 28, 28]
    assert doc["layers"][0]["macs"] == 4 * 28 * 28 * 6 * 25
    assert doc["total_params"] == 61706  # parameters do not depend on the batch


def test_summary_of_a_stack_that_cannot_compute_names_the_layer(capsys, lenet_file):
    status, out, err = run_cli(capsys, "summary", lenet_file, "--input-shape", "1,1,8,8")
    assert_one_line_error(status, err, "layer 4", "conv2")
    assert "waiting on layer 4" in out


def test_presets_by_name(capsys):
    status, out, _ = run_cli(capsys, "summary", "LeNet-5", "--json")
    assert status == 0 and json.loads(out)["total_params"] == 61706
    # VGG-16 at batch 32, the GPU benchmark's size; 138,357,544 parameters (Simonyan & Zisserman).
    status, out, _ = run_cli(capsys, "summary", "vgg-16", "--input-shape", "32,3,224,224", "--json")
    summary = json.loads(out)
    assert status == 0 and summary["total_params"] == 138_357_544
    assert summary["input_shape"] == [32, 3, 224, 224]
    assert summary["layers"][-1]["output_shape"] == [32, 1000]


# errors a user can make

def test_missing_file(capsys, tmp_path):
    status, _, err = run_cli(capsys, "summary", tmp_path / "nothing.convscope")
    assert_one_line_error(status, err, "nothing.convscope", "no such file")


def test_malformed_project(capsys, tmp_path):
    path = tmp_path / "broken.convscope"
    path.write_text('{"format": "convscope-project", "version": 1, "input": ')
    status, _, err = run_cli(capsys, "summary", path)
    assert_one_line_error(status, err, "broken.convscope")


def test_bad_input_shape_and_unknown_command(capsys, lenet_file):
    assert_one_line_error(*run_cli(capsys, "summary", lenet_file, "--input-shape", "a,b")[::2],
                          "--input-shape")
    assert_one_line_error(*run_cli(capsys, "fly", lenet_file)[::2], "fly")


def test_wrong_npy_shape(capsys, lenet_file, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 32, 32), np.float32))
    status, _, err = run_cli(capsys, "infer", lenet_file, "--input", tmp_path / "x.npy",
                             "--output", tmp_path / "y.npy")
    assert_one_line_error(status, err, "x.npy", "(1, 3, 32, 32)")
    assert not (tmp_path / "y.npy").exists()


def test_provider_needs_the_onnxruntime_engine(capsys, lenet_file, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 32, 32), np.float32))
    status, _, err = run_cli(capsys, "infer", lenet_file, "--input", tmp_path / "x.npy",
                             "--output", tmp_path / "y.npy", "--provider", "cpu")
    assert_one_line_error(status, err, "--engine onnxruntime")


def test_cuda_asked_for_without_a_gpu(capsys, lenet_file, tmp_path):
    import onnxruntime
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has CUDA")
    np.save(tmp_path / "x.npy", np.zeros((1, 32, 32), np.float32))
    status, _, err = run_cli(capsys, "infer", lenet_file, "--input", tmp_path / "x.npy",
                             "--output", tmp_path / "y.npy", "--engine", "onnxruntime",
                             "--provider", "cuda")
    assert_one_line_error(status, err, "onnxruntime-gpu")


def test_open_a_missing_file_fails_before_the_app(capsys, tmp_path):
    status, _, err = run_cli(capsys, "open", tmp_path / "gone.onnx")
    assert_one_line_error(status, err, "gone.onnx")


# infer

def test_infer_engines_agree_and_layers_are_written(capsys, demo_file, tmp_path):
    x = np.random.default_rng(1).random((2, 3, 128, 128), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    status, out, _ = run_cli(capsys, "infer", demo_file, "--input", tmp_path / "x.npy",
                             "--output", tmp_path / "numpy.npy", "--layers", tmp_path / "layers")
    assert status == 0 and "numpy.npy" in out
    status, _, _ = run_cli(capsys, "infer", demo_file, "--input", tmp_path / "x.npy",
                           "--output", tmp_path / "ort.npy", "--engine", "onnxruntime",
                           "--provider", "cpu", "--layers", tmp_path / "ort_layers")
    assert status == 0
    ours, theirs = np.load(tmp_path / "numpy.npy"), np.load(tmp_path / "ort.npy")
    assert ours.shape == (2, 10)
    np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-5)

    stack = load(demo_file)
    report = analyse(stack)
    files = sorted((tmp_path / "layers").glob("*.npy"))
    assert [f.name for f in files] == [f"{i + 1:02d}_{layer.name}.npy"
                                       for i, layer in enumerate(stack.layers)]
    for f, layer in zip(files, report.layers):
        engine_layer, ort_layer = np.load(f), np.load(tmp_path / "ort_layers" / f.name)
        assert engine_layer.shape == (2, *layer.output_shape[1:])
        np.testing.assert_allclose(ort_layer, engine_layer, rtol=1e-4, atol=1e-4)


def test_infer_on_an_image(capsys, demo_file, tmp_path):
    pixels = np.random.default_rng(2).integers(0, 256, (90, 160, 3), dtype=np.uint8)
    Image.fromarray(pixels, "RGB").save(tmp_path / "photo.png")
    status, _, _ = run_cli(capsys, "infer", demo_file, "--input", tmp_path / "photo.png",
                           "--output", tmp_path / "y.npy")
    probabilities = np.load(tmp_path / "y.npy")
    assert status == 0 and probabilities.shape == (1, 10)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)


# export and bench (need engine.onnx.export)

def test_export_is_valid_onnx_and_verifies(capsys, demo_file, tmp_path):
    import onnx
    out_path = tmp_path / "demo.onnx"
    status, out, err = run_cli(capsys, "export", demo_file, "-o", out_path, "--verify")
    assert status == 0, err
    onnx.checker.check_model(onnx.load(str(out_path)), full_check=True)
    for layer in load(demo_file).layers:
        assert layer.name in out
    assert "ok:" in out and "tolerance" in out


def test_bench_json(capsys, lenet_file):
    status, out, _ = run_cli(capsys, "bench", lenet_file, "--json")
    doc = json.loads(out)
    assert status == 0 and doc["input_shape"] == [1, 1, 32, 32]
    engines = [r["engine"] for r in doc["results"]]
    assert engines[:2] == ["numpy", "onnxruntime"]
    assert doc["results"][1]["provider"] == "CPUExecutionProvider"
    for result in doc["results"]:
        assert 0 < result["best_s"] <= result["median_s"] and result["runs"] >= 5
        assert result["engine_over_this"] == pytest.approx(doc["results"][0]["best_s"]
                                                           / result["best_s"])


# the real entry point

def test_entry_point_runs_summary_without_qt_or_onnx(lenet_file):
    code = ("import sys, main\n"
            f"status = main.main(['summary', {str(lenet_file)!r}])\n"
            "heavy = [m for m in ('PySide6', 'pyqtgraph', 'onnx', 'onnxruntime') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "sys.exit(status)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Total params: 61,706" in done.stdout


def test_entry_point_script_exit_codes(lenet_file, tmp_path):
    ok = subprocess.run([sys.executable, "main.py", "summary", str(lenet_file), "--json"],
                        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and json.loads(ok.stdout)["total_params"] == 61706
    missing = subprocess.run([sys.executable, "main.py", "summary", str(tmp_path / "no.onnx")],
                             cwd=REPO, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and missing.stdout == ""
    assert len(missing.stderr.strip().splitlines()) == 1 and "Traceback" not in missing.stderr


def test_infer_with_onnxruntime_respects_the_memory_budget(capsys, demo_file, tmp_path,
                                                           monkeypatch):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 128, 128), np.float32))
    monkeypatch.setenv("CONVSCOPE_MEMORY_BUDGET", "1M")
    status, _, err = run_cli(capsys, "infer", demo_file, "--input", tmp_path / "x.npy",
                             "--output", tmp_path / "y.npy", "--engine", "onnxruntime")
    assert_one_line_error(status, err, "budget", "CONVSCOPE_MEMORY_BUDGET")
    assert not (tmp_path / "y.npy").exists()
