"""Saves are atomic: a process killed at any moment of a save leaves the old file or the new one,
whole, and the temporary files kills leave behind are recognisable and cleaned by the next save.
"""
from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from models import project
from models.atomic import stale_temps, write_atomic
from models.layers import Conv
from models.stack import InputSpec, Stack
from models.weights import materialise

ROOT = Path(__file__).resolve().parents[2]
KILLS = 40
MAX_DELAY_S = 0.5  # about four saves of the project below

# Saves the two projects given over the target, alternately and forever, so every save changes it.
SAVE_LOOP = """
import sys
from models import project
versions = [project.load(sys.argv[2]), project.load(sys.argv[1])]
print("ready", flush=True)
while True:
    for stack in versions:
        project.save(stack, sys.argv[3])
"""


def big_stack(seed: int) -> Stack:
    """About 9.4 MB of float32 weights (12.6 MB of project file)."""
    stack = Stack(InputSpec(3, (8, 8)), seed=seed)
    for channels in (256, 512, 256):
        stack = stack.appended(Conv(out_channels=channels))
    return materialise(stack)


def start_saving(old: Path, new: Path, target: Path) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", SAVE_LOOP, str(old), str(new), str(target)],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = process.stdout.readline()
    assert ready == "ready\n", process.stderr.read()
    return process


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_killing_saves_at_random_moments_never_leaves_a_partial_file(tmp_path):
    old, new = tmp_path / "old.convscope", tmp_path / "new.convscope"
    project.save(big_stack(1), old)
    project.save(big_stack(2), new)
    contents = {old.read_bytes(): "old", new.read_bytes(): "new"}
    assert len(contents) == 2
    target = tmp_path / "net.convscope"
    target.write_bytes(old.read_bytes())

    rng = random.Random(7)
    seen = {"old": 0, "new": 0}
    mid_write = 0  # kills that caught a save between creating its temporary file and the rename
    for _ in range(KILLS):
        process = start_saving(old, new, target)
        time.sleep(rng.uniform(0.0, MAX_DELAY_S))
        process.send_signal(signal.SIGKILL)
        process.communicate()
        assert process.returncode == -signal.SIGKILL

        data = target.read_bytes()
        assert data in contents, f"partial file: {len(data)} bytes"
        seen[contents[data]] += 1
        project.load(target)  # and it opens
        strays = sorted(set(os.listdir(tmp_path)) - {old.name, new.name, target.name})
        # A kill leaves at most one temporary file: each save first removes its dead writers' ones.
        assert len(strays) <= 1, strays
        for name in strays:
            assert name.startswith(f".{target.name}.") and name.endswith(".tmp")
        assert [p.name for p in stale_temps(target)] == strays
        mid_write += len(strays)

    print(f"{KILLS} kills: {seen['old']} left the old file, {seen['new']} the new one, "
          f"{mid_write} caught a write in progress")
    assert seen["old"] and seen["new"] and mid_write
    project.save(big_stack(3), target)
    assert sorted(os.listdir(tmp_path)) == sorted([old.name, new.name, target.name])


def test_a_live_writers_temporary_file_is_kept_and_a_dead_ones_removed(tmp_path):
    target = tmp_path / "net.convscope"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead_temp = tmp_path / f".{target.name}.{int(dead.stdout)}.abc123.tmp"
        live_temp = tmp_path / f".{target.name}.{live.pid}.def456.tmp"
        other = tmp_path / f".other.convscope.{int(dead.stdout)}.abc123.tmp"
        for path in (dead_temp, live_temp, other):
            path.write_bytes(b"partial")
        write_atomic(target, b"whole")
        assert target.read_bytes() == b"whole"
        assert not dead_temp.exists()
        assert live_temp.exists() and other.exists()
    finally:
        live.kill()
        live.wait()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "net.convscope"
    target.write_bytes(b"old")

    with pytest.raises(TypeError):  # fails in write(), after the temporary file exists
        write_atomic(target, "text, not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == [target.name]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_saving_over_a_file_keeps_its_permissions(tmp_path):
    target = tmp_path / "net.convscope"
    target.write_bytes(b"old")
    target.chmod(0o640)
    write_atomic(target, b"new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
