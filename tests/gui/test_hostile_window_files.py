"""The window's own files under a hostile tester, through the real widgets: the crash log and the
recovery files are private (0600 in 0700 folders, whatever the umask); what a session killed at
any moment leaves is offered or removed at the next start, never left; and a project nested past
the limits is refused with one line."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer

from gui.autosave import app_data_folder
from gui.crash_report import CrashReporter
from gui.recovery import crashed_sessions, offer_recovery
from models import project
from models.presets import PRESETS
from models.stack import MAX_NESTING_DEPTH

ROOT = Path(__file__).resolve().parents[2]
KILL = getattr(signal, "SIGKILL", signal.SIGTERM)
posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():
    """The most common umask, under which a file made without care is readable by everyone."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@posix_only
def test_the_crash_log_is_private(qtbot, window, settings, open_umask):
    data = app_data_folder(settings)
    data.mkdir(parents=True)
    data.chmod(0o755)  # as an earlier version left it
    log = data / "crash.log"
    log.write_text("=== an older entry\n")
    log.chmod(0o644)
    reporter = CrashReporter(window, log)
    boxes: list[str] = []
    reporter.show_report = boxes.append
    reporter.install()
    try:
        QTimer.singleShot(0, lambda: 1 / 0)
        qtbot.waitUntil(lambda: bool(boxes), timeout=3000)
    finally:
        reporter.uninstall()
    assert "ZeroDivisionError" in log.read_text() and "an older entry" in log.read_text()
    assert (mode(log), mode(data)) == (0o600, 0o700)

    fresh = CrashReporter(window, data / "new" / "crash.log")  # one the reporter creates
    fresh._log("an entry")
    assert (mode(data / "new" / "crash.log"), mode(data / "new")) == (0o600, 0o700)


@posix_only
def test_recovery_files_and_their_lock_are_private(qtbot, window, settings, open_umask):
    saver = window.autosave
    saver.debounce.setInterval(50)
    written: list[Path] = []
    saver.written.connect(written.append)
    window.stack_view.select(0)
    window.property_editor.editors["out_channels"].box.setValue(5)
    qtbot.waitUntil(lambda: bool(written), timeout=5000)
    folder = saver.files.folder
    files = sorted(folder.iterdir())
    assert [p.suffix for p in files] == [".convscope", ".json", ".lock"]
    assert {p.name: oct(mode(p)) for p in files} == {p.name: oct(0o600) for p in files}
    assert (mode(folder), mode(app_data_folder(settings))) == (0o700, 0o700)


# The first half of an autosave (its stack written, not yet its description), by a process that
# holds its session's lock and is then killed; or (argv[3] == "lock") only the lock.
KILLED_SESSION = """
import os, sys, time
from pathlib import Path
from gui.autosave import SessionFiles, open_lock
from models import project
from models.presets import PRESETS
files = SessionFiles(Path(sys.argv[1]), f"{os.getpid()}-0123abcd")
lock = open_lock(files.lock)
assert lock.tryLock(0)
if sys.argv[3] == "stack":
    files.folder.mkdir(parents=True, exist_ok=True)
    project.save(PRESETS[sys.argv[2]].build(), files.project)
print("ready", flush=True)
time.sleep(600)
"""


def killed_session(folder: Path, leaves: str) -> int:
    """Run KILLED_SESSION and SIGKILL it; returns its pid."""
    child = subprocess.Popen([sys.executable, "-c", KILLED_SESSION, str(folder), "LeNet-5", leaves],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = child.stdout.readline()
    if line != "ready\n":
        child.kill()
        pytest.fail(child.communicate()[1])
    child.send_signal(KILL)
    child.communicate()
    return child.pid


def test_what_killed_sessions_leave_is_offered_or_removed_at_the_next_start(qtbot, window,
                                                                         monkeypatch):
    folder = window.autosave.files.folder
    folder.mkdir(parents=True, exist_ok=True)
    with_stack = killed_session(folder, "stack")
    lock_only = killed_session(folder, "lock")
    stale = folder / f".session-{lock_only}-0123abcd.json.convscope-{lock_only}-00ff00ff.tmp"
    stale.write_bytes(b"{\"format\": \"convscope-rec")  # a description write killed midway
    assert sorted(p.name for p in folder.iterdir()) == sorted([
        f"session-{with_stack}-0123abcd.convscope", f"session-{with_stack}-0123abcd.lock",
        f"session-{lock_only}-0123abcd.lock", stale.name])

    offered = []
    monkeypatch.setattr(window, "ask_recover", lambda session: offered.append(session) or True)
    assert offer_recovery(window)
    assert [s.title for s in offered] == ["untitled"] and offered[0].path is None
    expected = PRESETS["LeNet-5"].build()
    assert project.to_json(window.document.stack) == project.to_json(expected)
    assert window.document.modified  # unsaved until the person saves it
    own = window.autosave.files
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [own.project.name, own.description.name, own.lock.name])
    assert crashed_sessions(folder) == []


def test_declining_a_stack_without_description_removes_it(qtbot, window, monkeypatch):
    folder = window.autosave.files.folder
    folder.mkdir(parents=True, exist_ok=True)
    killed_session(folder, "stack")
    monkeypatch.setattr(window, "ask_recover", lambda session: False)
    assert not offer_recovery(window)
    assert list(folder.iterdir()) == []


def test_a_project_nested_past_the_limit_is_refused_with_one_line(qtbot, window, tmp_path):
    spec: dict = {"type": "ReLU"}
    for _ in range(300):
        spec = {"type": "Residual", "body": [spec], "shortcut": "identity"}
    path = tmp_path / "deep.convscope"
    path.write_text(json.dumps({"format": "convscope-project", "version": 2,
                                "input": {"channels": 3, "spatial": [8, 8], "batch": 1},
                                "layers": [{"name": "res", "spec": spec}]}))
    before = window.document.stack
    assert not window.open_path(path)
    qtbot.waitUntil(lambda: bool(window.errors), timeout=10_000)
    [line] = window.errors
    assert "deep.convscope" in line and f"more than {MAX_NESTING_DEPTH} levels" in line
    assert "\n" not in line and window.document.stack is before


def _saved_demo(tmp_path: Path) -> Path:
    path = tmp_path / "net.convscope"
    project.save(PRESETS["LeNet-5"].build(), path)
    return path


@pytest.mark.parametrize("overwrite", [False, True])
def test_saving_over_a_file_another_program_changed_asks_first(qtbot, window, tmp_path,
                                                               monkeypatch, overwrite):
    path = _saved_demo(tmp_path)
    assert window.open_path(path)
    theirs = PRESETS["VGG block"].build()
    project.save(theirs, tmp_path / "theirs.convscope")
    os.replace(tmp_path / "theirs.convscope", path)  # another program saved over it
    their_bytes = path.read_bytes()
    asked = []
    monkeypatch.setattr(window, "ask_overwrite_changed",
                        lambda p: asked.append(p) or overwrite)
    window.document.rename_layer(0, "mine")
    assert window.save() is overwrite
    assert asked == [path]
    if overwrite:
        assert project.load(path).layers[0].name == "mine"
        window.document.rename_layer(0, "again")
        assert window.save() and asked == [path]  # its own save is not "another program"
    else:
        assert path.read_bytes() == their_bytes and window.document.modified


def test_saving_a_project_opened_through_a_link_writes_the_linked_file(qtbot, window, tmp_path):
    path = _saved_demo(tmp_path)
    link = tmp_path / "link.convscope"
    link.symlink_to(path)
    assert window.open_path(link)
    window.document.rename_layer(0, "through")
    assert window.save()
    assert link.is_symlink() and project.load(path).layers[0].name == "through"
