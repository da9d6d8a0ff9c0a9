"""Recovery at start: offer back the unsaved work of sessions whose process died (gui.autosave).

A session is offered only when its lock can be taken: its owner process is gone (or closed
without cleaning, which leaves no lock), never while another running window owns it. The
newest is offered first; "recover" opens it in the window as an unsaved document with its
original title and path, so Save writes where the person expects; "discard" deletes it.

What a process killed at any moment leaves is either offered or removed, never left to pile up:
a stack whose description was never written (killed between the two writes of its first copy)
is offered as an untitled document; a lock alone (killed before any copy) and the temporary
files of killed writes are removed.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QLockFile

from gui.autosave import SessionFiles, open_lock, private_folder, take_lock
from models import project
from models.atomic import remove_stale_temps
from models.errors import FileFormatError
from models.stack import Stack

if TYPE_CHECKING:
    from gui.main_window import MainWindow


@dataclass(eq=False)
class CrashedSession:
    """A dead session's files, locked by this process until discard() or release()."""
    files: SessionFiles
    lock: QLockFile
    title: str
    path: Path | None
    input_path: Path | None
    saved: datetime

    def question(self) -> str:
        """The sentence that offers it back to the person."""
        where = f" ({self.path})" if self.path else ""
        return (f"ConvScope did not close properly last time. Recover the unsaved changes to "
                f"{self.title}{where} from {self.saved:%Y-%m-%d %H:%M}?")

    def load(self) -> Stack:
        """The recovered stack. Raises FileFormatError naming the file when it cannot be read."""
        return project.load(self.files.project)

    def discard(self) -> None:
        """Delete its files and lock for good."""
        self.files.remove()
        self.lock.unlock()

    def release(self) -> None:
        """Leave its files for a later start."""
        self.lock.unlock()


def crashed_sessions(folder: Path) -> list[CrashedSession]:
    """The sessions in folder nobody owns any more, newest first, each locked by this process.

    Sessions with no stack, or an unreadable description, are deleted with their lock: nothing
    in them can be recovered. So are the temporary files of writes whose process is gone.
    """
    if not folder.is_dir():
        return []
    private_folder(folder)  # it may predate private folders
    remove_stale_temps(folder)
    found = []
    for files in SessionFiles.all_in(folder):
        lock = open_lock(files.lock)
        if not take_lock(lock, files.lock):
            continue  # its process runs: that window's work, not a crash
        try:
            description = files.read_description() if files.description.exists() else {}
            found.append(_session(files, lock, description))
        except (OSError, ValueError, TypeError, KeyError):
            files.remove()
            lock.unlock()  # deletes the lock file
    return sorted(found, key=lambda session: session.saved, reverse=True)


def offer_recovery(window: MainWindow) -> bool:
    """Offer each crashed session in the window's recovery folder until one is recovered.

    Asks through `window.ask_recover(session)`. Declined sessions are deleted; sessions after
    the recovered one stay for the next start. Returns whether a session was recovered.
    """
    sessions = crashed_sessions(window.autosave.files.folder)
    for index, session in enumerate(sessions):
        if not window.ask_recover(session):
            session.discard()
            continue
        for later in sessions[index + 1:]:
            later.release()
        return _restore(window, session)
    return False


def _restore(window: MainWindow, session: CrashedSession) -> bool:
    try:
        stack = session.load()
    except FileFormatError as err:
        session.release()
        window.show_error("Cannot recover", f"{err}; the file stays at {session.files.project}")
        return False
    document = window.document
    document.reset(stack, session.path, session.title)
    document.undo_stack.resetClean()  # unsaved until the person saves it: the title shows "*"
    if len(stack):
        window.stack_view.select(0)
    if session.input_path is not None and session.input_path.exists():
        window.open_input(session.input_path)
    try:
        window.autosave.save_now()
    except OSError:
        session.release()  # this window cannot keep a copy: the old one stays for the next start
        return True
    session.discard()  # this window's own session holds the work now
    return True


def _session(files: SessionFiles, lock: QLockFile, description: dict[str, Any]) -> CrashedSession:
    """The session its files describe; an empty description (none was written) gives an
    untitled one, saved when its stack was."""
    if not files.project.is_file():
        raise ValueError(f"{files.project.name} is missing")
    path, input_path = description.get("path"), description.get("input")
    saved = description["saved"] if description else files.project.stat().st_mtime
    return CrashedSession(files, lock, str(description.get("title") or "untitled"),
                          Path(path) if path else None, Path(input_path) if input_path else None,
                          datetime.fromtimestamp(float(saved)))
