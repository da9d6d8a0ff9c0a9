"""Hygiene of what the command line prints and writes, through the real process: names that hold
terminal escapes, newlines, bidirectional overrides or lone surrogates are shown escaped and cut;
every failed write names the file the user chose; new files get the permissions the umask gives."""
from __future__ import annotations

import json
import os
import resource
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

import main
from models.errors import DISPLAY_LIMIT, ConfigError, display_name
from tests.reliability.bad_files import LENET_INPUT

ROOT = Path(__file__).resolve().parents[2]

HOSTILE_NAMES = {
    "x\x1b[31mred": "x\\x1b[31mred",  # colours the terminal
    "clear\x1b[2J": "clear\\x1b[2J",  # clears it
    "two\nlines": "two\\nlines",  # forges a row of the table
    "\u202eevil.onnx": "\\u202eevil.onnx",  # right-to-left override: shows "xnno.live"
    "bell\x07": "bell\\x07",
    "zero\u200bwidth": "zero\\u200bwidth",
}
RAW = (b"\x1b", b"\x07", "\u202e".encode(), "\u200b".encode())


def cli(*argv: str, **options) -> subprocess.CompletedProcess[bytes]:
    """`python main.py ARGV` printing UTF-8 strictly, as to a UTF-8 terminal (under the C locale
    Python would print undecodable text as raw bytes instead of failing)."""
    return subprocess.run([sys.executable, "main.py", *argv], cwd=ROOT, capture_output=True,
                          timeout=300, env={**os.environ, "PYTHONIOENCODING": "utf-8"}, **options)


def chain_of(names: list[str], channels: int = 3) -> dict:
    return {"format": "convscope-project", "version": 2,
            "input": {"channels": channels, "spatial": [8, 8], "batch": 1}, "seed": 0,
            "layers": [{"name": name, "spec": {"type": "ReLU"}} for name in names]}


# ---- names ------------------------------------------------------------------------------------

def test_summary_shows_hostile_names_escaped_and_json_keeps_them_exact(tmp_path):
    path = tmp_path / "hostile.convscope"
    path.write_text(json.dumps(chain_of(list(HOSTILE_NAMES))))
    run = cli("summary", str(path))
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    assert not any(raw in run.stdout for raw in RAW)
    table = run.stdout.decode()
    for shown in HOSTILE_NAMES.values():
        assert sum(shown in line for line in table.splitlines()) == 1
    assert not any(line.startswith("lines") for line in table.splitlines())  # no forged row

    run = cli("summary", str(path), "--json")
    assert run.returncode == 0
    assert run.stdout.isascii()  # every escape and override is a \\u escape of JSON
    assert [layer["name"] for layer in json.loads(run.stdout)["layers"]] == list(HOSTILE_NAMES)


def test_an_error_about_a_hostile_name_is_one_escaped_line(tmp_path):
    path = tmp_path / "bad.convscope"
    doc = chain_of(["ok"])
    doc["layers"].append({"name": "\x1b[2J\u202egone\nrm -rf", "spec": {
        "type": "Conv", "kernel_size": [9, 9], "padding": "valid"}})
    path.write_text(json.dumps(doc))
    run = cli("summary", str(path))
    assert run.returncode == main.USER_ERROR
    assert not any(raw in run.stdout + run.stderr for raw in RAW)
    lines = run.stderr.decode().splitlines()
    assert len(lines) == 1 and "layer 2 (\\x1b[2J\\u202egone\\nrm -rf, Conv2D)" in lines[0]


def test_a_name_with_a_lone_surrogate_is_refused_in_one_line(tmp_path):
    path = tmp_path / "surrogate.convscope"
    # As json.dumps writes "a\udc80": the escape is valid JSON; the text it stands for is not
    # text any file format (UTF-8, ONNX, a file name) can hold.
    path.write_text(json.dumps(chain_of(["ok", "a\udc80"])))
    for argv in (["summary", str(path)], ["summary", str(path), "--json"],
                 ["export", str(path), "-o", str(tmp_path / "m.onnx")]):
        run = cli(*argv)
        assert run.returncode == main.USER_ERROR and b"Traceback" not in run.stderr
        lines = run.stderr.decode().splitlines()
        assert len(lines) == 1 and "surrogate.convscope" in lines[0]
        assert "layer 2 (a\\udc80)" in lines[0] and "lone surrogate" in lines[0]
    assert not (tmp_path / "m.onnx").exists()


@given(st.text(max_size=200))
def test_display_name_is_printable_short_and_escapes_as_repr_does(name):
    # The oracle: Python's own repr() escape of each character it does not print.
    escaped = "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)
    shown = display_name(name)
    assert shown.isprintable()
    shown.encode("utf-8")  # never a lone surrogate
    if len(escaped) <= DISPLAY_LIMIT:
        assert shown == escaped
    else:
        cut = shown.removesuffix("…")
        assert shown.endswith("…") and escaped.startswith(cut)
        assert DISPLAY_LIMIT - len("\\U000e0001") < len(cut) <= DISPLAY_LIMIT  # whole escapes


def test_a_million_character_name_costs_as_much_as_sixty():
    shown = display_name("\x1b" * 1_000_000)
    assert shown == "\\x1b" * (DISPLAY_LIMIT // 4) + "…"
    error = ConfigError("bad", layer_index=0, layer_name="n" * 1_000_000, layer_type="ReLU")
    assert str(error) == f"layer 1 ({'n' * DISPLAY_LIMIT}…, ReLU): bad"


# ---- writes name the file the user chose ------------------------------------------------------

def _limit_file_size(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past it fails with EFBIG instead
    return apply


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE")
def test_a_write_that_fails_for_space_names_the_target_and_leaves_nothing(tmp_path, lenet_file):
    out = tmp_path / "out"
    out.mkdir()
    target = out / "lenet.onnx"
    run = cli("export", str(lenet_file), "-o", str(target), preexec_fn=_limit_file_size(4096))
    assert run.returncode == main.USER_ERROR
    lines = run.stderr.decode().splitlines()
    assert lines == [f"convscope: error: {target}: File too large"]
    assert os.listdir(out) == []

    x = tmp_path / "x.npy"
    np.save(x, np.zeros(LENET_INPUT, np.float32))
    run = cli("infer", str(lenet_file), "--input", str(x), "--output", str(out / "y.npy"),
              "--layers", str(out / "layers"), preexec_fn=_limit_file_size(600))
    assert run.returncode == main.USER_ERROR
    lines = run.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"convscope: error: {out / 'layers'}")
    assert lines[0].endswith(".npy: File too large") and ".tmp" not in lines[0]
    assert sorted(os.listdir(out)) == ["layers", "y.npy"] and os.listdir(out / "layers") == []


def test_a_target_name_near_the_limit_is_written(tmp_path, lenet_file):
    target = tmp_path / ("m" * 245 + ".onnx")  # 250 bytes: its temporary file's name is cut
    run = cli("export", str(lenet_file), "-o", str(target))
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    assert sorted(os.listdir(tmp_path)) == sorted([lenet_file.name, target.name])


# ---- permissions ------------------------------------------------------------------------------

@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_exports_and_outputs_get_the_permissions_of_the_umask(tmp_path, lenet_file, umask,
                                                                 mode):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros(LENET_INPUT, np.float32))
    set_umask = lambda: os.umask(umask)  # noqa: E731 - runs in the child before exec
    run = cli("export", str(lenet_file), "-o", str(tmp_path / "m.onnx"), preexec_fn=set_umask)
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    run = cli("infer", str(lenet_file), "--input", str(x), "--output", str(tmp_path / "y.npy"),
              "--layers", str(tmp_path / "layers"), preexec_fn=set_umask)
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    written = [tmp_path / "m.onnx", tmp_path / "y.npy", *(tmp_path / "layers").iterdir()]
    assert len(written) > 3
    assert {path.name: oct(stat.S_IMODE(path.stat().st_mode)) for path in written} == \
        {path.name: oct(mode) for path in written}
