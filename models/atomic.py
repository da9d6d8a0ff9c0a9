"""Atomic file writes: a crash mid-save leaves the old file whole.

A write goes to a hidden temporary file beside the target, named
`.<target name>.<pid>.<random>.tmp`, which is flushed to disk and then renamed over the target.
A process killed mid-write leaves that temporary file behind; the next write to the same target
removes the ones whose writer is gone, so they never pile up.
"""
from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write data to path so that path always holds either its old or its new content, whole.

    The data is flushed to disk before the rename and the folder after it (where the system
    allows), and an existing target keeps its permissions. Raises OSError when the
    folder cannot be written; the target is then untouched and no temporary file is left.
    """
    target = Path(path)
    folder = target.parent
    remove_stale_temps(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=TEMP_SUFFIX,
                               dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if target.exists():
            # mkstemp creates the file private to its owner; a save must not change that.
            os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_folder(folder)


def stale_temps(path: str | os.PathLike[str]) -> list[Path]:
    """The temporary files that writes to path left behind and whose writing process is gone."""
    target = Path(path)
    if not target.parent.is_dir():
        return []
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.[^.]+{re.escape(TEMP_SUFFIX)}")
    found = []
    for entry in target.parent.iterdir():
        match = pattern.fullmatch(entry.name)
        if match and not _process_runs(int(match.group(1))):
            found.append(entry)
    return found


def remove_stale_temps(path: str | os.PathLike[str]) -> None:
    """Delete what stale_temps(path) finds, skipping any that cannot be deleted."""
    for entry in stale_temps(path):
        try:
            entry.unlink()
        except OSError:
            pass  # held open by a live writer on Windows, or already gone: either way not ours


def _process_runs(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of this process may be writing the same target right now
    if os.name != "posix":
        # os.kill would terminate the process on Windows; there, a file open by a live writer
        # cannot be deleted, so remove_stale_temps' unlink itself tells live from dead.
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it runs, as another user
    return True


def _sync_folder(folder: Path) -> None:
    """Flush the folder's entry list, so the rename itself survives a power cut."""
    if os.name != "posix":
        return  # Windows cannot open a folder for fsync; NTFS journals the rename itself
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse to sync a folder; the file's own data is already synced
    finally:
        os.close(fd)
