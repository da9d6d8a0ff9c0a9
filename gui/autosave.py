"""Autosave: while the document has unsaved changes, a recovery copy of it in the app data folder.

Each window's autosaver owns one *session* of three files in the recovery folder:
`session-<id>.convscope` (the stack, in the project format), `session-<id>.json` (the document's
title, its original path and the input file shown) and `session-<id>.lock` (a QLockFile naming this
process, held while the other two exist). They are written 2 s after a burst of edits ends and
every minute while changes stay unsaved, and removed once the document is clean again (saved,
undone to the saved state, or replaced after the person discarded it) and when the window closes.
So session files whose lock's owner is gone are the unsaved work of a process that died; the next
start offers them back (gui.recovery). It also offers the stack of a session killed before its
first description was written, and removes the lock of one killed before writing anything. Session
ids are unique, so windows and processes never write over each other's files.

These files hold a person's work, paths and host name: they are readable by their owner only
(0600), in folders only the owner can enter (0700), whatever the umask (`private_folder`).

The stack is an immutable value, so it is serialised on a pool thread: the UI thread only takes a
reference to it. All files are written atomically (models.atomic).
"""
from __future__ import annotations

import errno
import itertools
import json
import os
import stat
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import (QLockFile, QObject, QSettings, QStandardPaths, QThreadPool, QTimer,
                            Signal)

from gui.background import error_sentence
from gui.document import Document
from models import project
from models.atomic import remove_stale_temps, write_atomic
from models.stack import Stack

DATA_FOLDER_KEY = "app-data-folder"
RECOVERY_FORMAT = "convscope-recovery"
DEBOUNCE_MS = 2_000
INTERVAL_MS = 60_000
SESSION_SUFFIXES = (project.SUFFIX, ".json", ".lock")


def app_data_folder(settings: QSettings) -> Path:
    """Where recovery files and the crash log go: the settings' "app-data-folder" when set (tests
    set it, so they never touch the person's home), else the per-user application data folder."""
    folder = settings.value(DATA_FOLDER_KEY)
    if folder:
        return Path(str(folder))
    return Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation))


def private_folder(folder: Path) -> Path:
    """folder, created (with any missing parents) or tightened so that only its owner can list
    or enter it; returns it. Raises OSError when it cannot be created."""
    for path in reversed([p for p in (folder, *folder.parents) if not p.exists()]):
        path.mkdir(mode=0o700, exist_ok=True)  # the umask can only narrow this further
    status = folder.stat()
    if not stat.S_ISDIR(status.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))
    if os.name == "posix" and stat.S_IMODE(status.st_mode) & 0o077 and \
            status.st_uid == os.getuid():
        folder.chmod(0o700)  # made by an earlier version, or by hand
    return folder


@dataclass(frozen=True)
class Snapshot:
    """What a recovery save writes: the stack and how to reopen it as the person left it.

    Equal snapshots hold the same stack object (stacks compare by identity) and the same names."""
    stack: Stack
    title: str
    path: Path | None
    input_path: Path | None


@dataclass(frozen=True)
class SessionFiles:
    """The three files of one session in a recovery folder."""
    folder: Path
    session_id: str

    @staticmethod
    def all_in(folder: Path) -> list[SessionFiles]:
        """Every session with any of its files in folder, in the order of their ids (none when the
        folder is missing)."""
        if not folder.is_dir():
            return []
        ids = {entry.name.removeprefix("session-").removesuffix(entry.suffix)
               for entry in folder.glob("session-*") if entry.suffix in SESSION_SUFFIXES}
        return [SessionFiles(folder, session_id) for session_id in sorted(ids)]

    @property
    def project(self) -> Path:
        return self.folder / f"session-{self.session_id}{project.SUFFIX}"

    @property
    def description(self) -> Path:
        return self.folder / f"session-{self.session_id}.json"

    @property
    def lock(self) -> Path:
        return self.folder / f"session-{self.session_id}.lock"

    def write(self, snapshot: Snapshot) -> None:
        """Write the stack, then its description (so a description always has its stack).

        Raises OSError when the folder cannot be written."""
        private_folder(self.folder)
        project.save(snapshot.stack, self.project, private=True)
        description = {"format": RECOVERY_FORMAT, "version": 1, "pid": os.getpid(),
                       "saved": time.time(), "title": snapshot.title,
                       "path": _text(snapshot.path), "input": _text(snapshot.input_path)}
        write_atomic(self.description, (json.dumps(description, indent=1) + "\n").encode("utf-8"),
                     private=True)

    def read_description(self) -> dict[str, Any]:
        """The description file's fields. Raises OSError or ValueError when it is unreadable."""
        data = json.loads(self.description.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != RECOVERY_FORMAT:
            raise ValueError(f"{self.description.name} is not a recovery description")
        return data

    def remove(self) -> None:
        """Delete the stack, its description and what a killed write of them left (the lock is
        its holder's to release)."""
        self.description.unlink(missing_ok=True)  # first: a stack alone is never offered
        self.project.unlink(missing_ok=True)
        for path in (self.project, self.description):
            remove_stale_temps(path)


def open_lock(path: Path) -> QLockFile:
    """A lock on path that is stale only when its owner process is gone, never by age alone."""
    lock = QLockFile(str(path))
    lock.setStaleLockTime(0)
    return lock


def take_lock(lock: QLockFile, path: Path) -> bool:
    """Try once to take lock (on path) without waiting; once taken, its file (which names this
    process, its host and machine) is made readable by its owner only."""
    if not lock.tryLock(0):
        return False
    if os.name == "posix":
        try:
            path.chmod(0o600)
        except OSError:
            pass  # the folder is private anyway (private_folder)
    return True


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)


class _Relay(QObject):
    """Carries a pool write's outcome to the UI thread (queued). Kept without a Qt parent, so a
    write finishing as the window goes emits on a live object."""
    done = Signal(int, object, str)  # (write number, Snapshot, error sentence or "")


class Autosaver(QObject):
    """Keeps a recovery copy of `document` in `folder` while it has unsaved changes.

    input_path: called on the UI thread for the input file the feature maps show (None for the
    built-in sample), recorded so a recovered session shows the same input.
    `written(Path)` is emitted after each completed write, `failed(str)` with one sentence when a
    write fails (the next edit or tick tries again).
    """
    written = Signal(object)
    failed = Signal(str)

    def __init__(self, document: Document, folder: Path, input_path: Callable[[], Path | None],
                 parent: QObject | None = None, debounce_ms: int = DEBOUNCE_MS,
                 interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(parent)
        self.document = document
        self.files = SessionFiles(folder, f"{os.getpid()}-{uuid.uuid4().hex[:8]}")
        self._input_path = input_path
        self._lock = open_lock(self.files.lock)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)  # writes of one session run one after another
        self._relay = _Relay()
        self._relay.done.connect(self._write_done)
        self._numbers = itertools.count(1)
        self._on_disk: tuple[int, Snapshot] | None = None  # the newest write that completed
        self._busy = False  # a pool write is in flight
        self._again = False  # the stack changed while it was
        self._closed = False
        self.debounce = QTimer(self, singleShot=True, interval=debounce_ms, timeout=self._save_soon)
        self.ticker = QTimer(self, interval=interval_ms, timeout=self._save_soon)
        self.ticker.start()
        document.stackChanged.connect(self._edited)
        document.modifiedChanged.connect(self._modified_changed)

    @property
    def recovery_path(self) -> Path | None:
        """The recovery copy of the stack on disk, or None while there is none."""
        return self.files.project if self._on_disk is not None else None

    def save_now(self) -> Path | None:
        """Write the recovery copy at once, on this thread (after any pool write in flight).

        For emergencies: an unexpected error's report says where the work went. Returns the
        recovery stack's path, or None when there are no unsaved changes. Raises OSError.
        """
        self._pool.waitForDone()
        if not self.document.modified:
            return None
        snapshot = self._snapshot()
        self._take_lock()
        self.files.write(snapshot)
        self._on_disk = (next(self._numbers), snapshot)
        self.written.emit(self.files.project)
        return self.files.project

    def close(self) -> None:
        """The window closes cleanly: stop, wait for a write in flight and remove the files."""
        self._closed = True
        self.debounce.stop()
        self.ticker.stop()
        self._pool.waitForDone()
        self._remove()

    # ---- UI thread ------------------------------------------------------------------------------
    def _edited(self, *_args: object) -> None:
        if self.document.modified:
            self.debounce.start()  # restarted by every edit of a burst

    def _modified_changed(self, modified: bool) -> None:
        if modified:
            self.debounce.start()
        elif not self._busy:
            self.debounce.stop()
            self._remove()
        # while busy, _write_done removes the files once the write in flight is on disk

    def _snapshot(self) -> Snapshot:
        document = self.document
        return Snapshot(document.stack, document.display_name, document.path, self._input_path())

    def _save_soon(self) -> None:
        """Hand the current stack to the pool, unless it is clean or already on disk."""
        if self._closed or not self.document.modified:
            return
        if self._busy:
            self._again = True
            return
        snapshot = self._snapshot()
        if self._on_disk is not None and self._on_disk[1] == snapshot:
            return
        try:
            self._take_lock()
        except OSError as err:
            self.failed.emit(f"cannot keep a recovery copy: {error_sentence(err)}")
            return
        self._busy = True
        number, files, relay = next(self._numbers), self.files, self._relay

        def write() -> None:
            try:
                files.write(snapshot)
            except Exception as err:  # noqa: BLE001 - told as a sentence, never lost in the pool
                relay.done.emit(number, snapshot, error_sentence(err))
            else:
                relay.done.emit(number, snapshot, "")

        self._pool.start(write)

    def _write_done(self, number: int, snapshot: Snapshot, error: str) -> None:
        self._busy = False
        if self._closed:
            return  # close() waited for this write and removed its files
        if error:
            self.failed.emit(f"cannot keep a recovery copy: {error}")
        elif self._on_disk is None or number > self._on_disk[0]:
            self._on_disk = (number, snapshot)
            self.written.emit(self.files.project)
        if not self.document.modified:
            self._remove()
        elif self._again:
            self._again = False
            self._save_soon()

    def _take_lock(self) -> None:
        if self._lock.isLocked():
            return
        private_folder(self.files.folder)
        if not take_lock(self._lock, self.files.lock):
            reason = {QLockFile.LockError.LockFailedError: "held by another process",
                      QLockFile.LockError.PermissionError: "permission denied"}
            raise OSError(errno.EACCES, reason.get(self._lock.error(), "cannot be created"),
                          str(self.files.lock))

    def _remove(self) -> None:
        self.files.remove()
        self._on_disk = None
        if self._lock.isLocked():
            self._lock.unlock()  # deletes the lock file
