"""Every bad file gets one clear error (ConfigError or FileFormatError, one sentence naming the
file and what is wrong) from the function that opens it, and nothing in a file is ever executed.
"""
from __future__ import annotations

import ast
import os
from pathlib import Path

import numpy as np
import pytest

from engine.input_files import load_input
from engine.onnx.importer import import_model
from models import project
from models.analysis import analyse
from models.errors import ConfigError
from models.stack import InputSpec
from tests.reliability.bad_files import BadFile, LENET_INPUT, lenet_document, _set, _with

ROOT = Path(__file__).resolve().parents[2]
LENET = InputSpec(LENET_INPUT[0], LENET_INPUT[1:])


def open_file(bad: BadFile) -> object:
    """Open the file the way its kind is opened; returns what was read (it should raise)."""
    if bad.kind == "project":
        return project.load(bad.path)
    if bad.kind == "onnx":
        return import_model(bad.path)
    return load_input(bad.path, LENET)


def message_problems(bad: BadFile, message: str) -> list[str]:
    """What is wrong with an error message about a bad file: [] when it is one clear line that
    names the file and says what is wrong in the expected words."""
    problems = []
    if bad.path.name not in message:
        problems.append("does not name the file")
    missing = [word for word in bad.words if word.lower() not in message.lower()]
    if missing:
        problems.append(f"lacks {missing}")
    if "\n" in message or "Traceback" in message:
        problems.append("is not one line")
    return problems


def test_there_are_bad_files_of_every_kind(bad_files):
    kinds = {bad.kind for bad in bad_files}
    assert kinds == {"project", "onnx", "input"}
    assert len({bad.path for bad in bad_files}) == len(bad_files) >= 170


def test_every_bad_file_raises_one_clear_error(bad_files):
    failures = []
    for bad in bad_files:
        try:
            open_file(bad)
        except ConfigError as err:
            problems = message_problems(bad, str(err))
            if problems:
                failures.append(f"{bad.id}: the message {' and '.join(problems)}: {err}")
        except Exception as err:  # noqa: BLE001 - any other type is the failure being looked for
            failures.append(f"{bad.id}: {type(err).__name__}: {err}")
        else:
            failures.append(f"{bad.id}: opened without an error")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("field,value,words", [
    ("out_channels", -1, "out_channels must be at least 1"),
    ("out_channels", 0, "out_channels must be at least 1"),
    ("kernel_size", -3, "kernel_size must be at least 1"),
    ("stride", 0, "stride must be at least 1"),
    ("dilation", -2, "dilation must be at least 1"),
    ("groups", 4, "divisible by groups"),
    ("out_channels", 10**15, "more than the 1 GiB"),
    ("kernel_size", 10**15, "kernel 1000000000000000 is larger"),
    ("dilation", 10**17, "dilation 100000000000000000"),
    ("pads", [-1, 0, 0, 0], "pads must be at least 0"),
])
def test_settings_that_cannot_work_open_with_the_layer_marked(tmp_path, field, value, words):
    """A project may be saved while a layer's settings cannot work (the person was mid-edit), so
    such files open; the layer carries the error, as it did before saving."""
    doc = lenet_document()
    doc["layers"][0]["spec"]["padding"] = "explicit" if field == "pads" else "valid"
    path = tmp_path / "mid-edit.convscope"
    path.write_bytes(_with(doc, _set(("layers", 0, "spec", field), value)))
    error = analyse(project.load(path)).first_error
    assert error is not None and error.layer_index == 0 and words in str(error)


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.int64, np.float16, np.float64])
def test_arrays_of_other_real_types_are_converted_to_float32(tmp_path, dtype):
    values = (np.arange(np.prod(LENET_INPUT)) % 100).reshape(LENET_INPUT).astype(dtype)
    np.save(tmp_path / "x.npy", values)
    x = load_input(tmp_path / "x.npy", LENET)
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x[0], values.astype(np.float32))


class _MakesAFolder:
    """Unpickling this runs os.mkdir: a stand-in for any code a pickle can carry."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return os.mkdir, (str(self.target),)


def test_an_array_that_needs_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "payload.npy"
    np.save(path, np.array([_MakesAFolder(marker)], dtype=object), allow_pickle=True)
    np.load(path, allow_pickle=True)  # the file really runs code when unpickled...
    assert marker.is_dir()
    marker.rmdir()
    with pytest.raises(ConfigError, match="payload.npy holds object values"):
        load_input(path, LENET)  # ...and ConvScope does not unpickle it
    assert not marker.exists()


def _np_load_calls(path: Path) -> list[ast.Call]:
    tree = ast.parse(path.read_text(), str(path))
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute) and node.func.attr == "load"
            and isinstance(node.func.value, ast.Name) and node.func.value.id in ("np", "numpy")]


def test_every_np_load_in_the_app_refuses_pickles():
    sources = [ROOT / "main.py", *[p for folder in ("models", "engine", "gui")
                                   for p in (ROOT / folder).rglob("*.py")]]
    calls = [(path, call) for path in sources for call in _np_load_calls(path)]
    assert calls, "np.load is used somewhere; the search must find it"
    careless = [f"{path.relative_to(ROOT)}:{call.lineno}" for path, call in calls
                if not any(k.arg == "allow_pickle" and isinstance(k.value, ast.Constant)
                           and k.value.value is False for k in call.keywords)]
    assert not careless, f"np.load without allow_pickle=False at {', '.join(careless)}"
