"""Every mistake on the command line is one line on stderr and exit status 2, never a traceback:
every bad file (as FILE, or as the input of `infer`), and bad arguments."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import main
from tests.reliability.bad_files import BadFile, LENET_INPUT

ROOT = Path(__file__).resolve().parents[2]


def command_for(bad: BadFile, lenet_file: Path, out: Path) -> list[str]:
    if bad.kind == "input":
        return ["infer", str(lenet_file), "--input", str(bad.path), "--output", str(out)]
    return ["summary", str(bad.path)]


def one_error_line(status: int, stderr: str) -> list[str]:
    """What is wrong with a run that should have failed with one error line: [] when nothing."""
    problems = []
    if status != main.USER_ERROR:
        problems.append(f"exit status {status}")
    lines = stderr.splitlines()
    if len(lines) != 1 or not lines[0].startswith("convscope: error: "):
        problems.append(f"stderr is {stderr!r}")
    if "Traceback" in stderr:
        problems.append("a traceback")
    return problems


def test_every_bad_file_fails_with_one_line(bad_files, lenet_file, tmp_path, capsys):
    out = tmp_path / "y.npy"
    failures = []
    for bad in bad_files:
        status = main.main(command_for(bad, lenet_file, out))
        stderr = capsys.readouterr().err
        problems = one_error_line(status, stderr)
        if bad.path.name not in stderr:
            problems.append("the file is not named")
        if out.exists():
            problems.append("an output was written")
        if problems:
            failures.append(f"{bad.id}: {'; '.join(problems)}")
    assert not failures, "\n".join(failures)


def run_process(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "main.py", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def bad_arguments(lenet: str, folder: Path) -> list[list[str]]:
    x = folder / "x.npy"
    np.save(x, np.zeros(LENET_INPUT, np.float32))
    (folder / "dir.npy").mkdir()
    infer = ["infer", lenet, "--input", str(x)]
    return [
        ["summary", lenet, "--input-shape", "garbage"],
        ["summary", lenet, "--input-shape", "1,,32,32"],
        ["summary", lenet, "--input-shape", "1"],
        ["summary", lenet, "--input-shape", "0,1,32,32"],
        ["summary", lenet, "--input-shape", "1,1,32,32,32,32"],
        ["summary", str(folder / "missing.convscope")],
        ["summary", str(folder)],
        ["summary"],
        ["summary", lenet, "--colour"],
        ["frobnicate", lenet],
        ["export", lenet, "-o", str(folder / "m.onnx"), "--opset", "3"],
        ["export", lenet, "-o", str(folder / "m.onnx"), "--opset", "99"],
        ["export", lenet, "-o", str(folder / "m.onnx"), "--opset", "seventeen"],
        ["export", lenet, "-o", str(folder / "no" / "such" / "m.onnx")],
        ["export", lenet, "-o", str(folder)],
        ["export", lenet],
        [*infer, "--output", str(folder / "no" / "y.npy")],
        [*infer, "--output", str(folder)],
        [*infer, "--output", str(folder / "y.npy"), "--layers", lenet],
        [*infer, "--output", str(folder / "y.npy"), "--engine", "torch"],
        [*infer, "--output", str(folder / "y.npy"), "--provider", "cpu"],
        ["infer", lenet, "--input", str(folder / "gone.npy"), "--output", str(folder / "y.npy")],
        ["infer", lenet, "--input", str(folder / "dir.npy"), "--output", str(folder / "y.npy")],
        ["infer", lenet, "--output", str(folder / "y.npy")],
        ["bench", lenet, "--input-shape", "1,1,4,4"],
        ["open", str(folder / "missing.convscope")],
    ]


def test_bad_arguments_fail_with_one_line(lenet_file, tmp_path):
    failures = []
    for argv in bad_arguments(str(lenet_file), tmp_path):
        done = run_process(*argv)
        problems = one_error_line(done.returncode, done.stderr)
        if problems:
            failures.append(f"{' '.join(argv)}: {'; '.join(problems)}")
    assert not failures, "\n".join(failures)
    assert not (tmp_path / "y.npy").exists() and not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("name", ["future.convscope", "unknown-op.onnx", "huge.png", "objects.npy",
                                  "external-parent.onnx", "cut-at-100.convscope"])
def test_a_bad_file_in_a_real_process(bad_files, lenet_file, tmp_path, name):
    """The same as in-process, as a person runs it (interpreter start, imports, exit)."""
    bad = next(b for b in bad_files if b.path.name == name)
    done = run_process(*command_for(bad, lenet_file, tmp_path / "y.npy"))
    assert not one_error_line(done.returncode, done.stderr), done.stderr
    assert name in done.stderr
