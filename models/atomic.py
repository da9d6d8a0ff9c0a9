"""Atomic file writes: a crash mid-save leaves the old file whole.

A write goes to a hidden temporary file beside the target, named
`.<target name>.convscope-<pid>-<random>.tmp` (the target's name cut so the whole fits a file
name), which is flushed to disk and then renamed over the target. A target that is a symbolic
link is written through: the file it points to is replaced, the link stays, as editors do.

A process killed mid-write leaves its temporary file behind. Every write first removes, from its
folder, the temporary files whose writing process is gone, whatever target they were for; so they
never outlive the next write to that folder. (Files named `.<target>.<pid>.<random>.tmp`, as
earlier versions named them, are removed on the next write to that same target.)

A new file gets the permissions the user's umask gives (as any program's new file does), an
existing one keeps its own, and a private one (`private=True`: recovery copies, logs) is
readable by its owner only. An OSError names the target as the caller gave it, never a
temporary file.
"""
from __future__ import annotations

import errno
import os
import re
import secrets
import stat
import sys
from pathlib import Path

TEMP_SUFFIX = ".tmp"
TEMP_MARK = ".convscope-"
_TEMP = re.compile(rf"\..*{re.escape(TEMP_MARK)}(\d+)-[0-9a-f]+{re.escape(TEMP_SUFFIX)}", re.DOTALL)
_MAX_NAME_BYTES = 255  # the longest file name most filesystems take
_PRIVATE_MODE = 0o600
_NEW_MODE = 0o666  # before the umask, as open() creates files


def write_atomic(path: str | os.PathLike[str], data: bytes, *,
                 private: bool = False) -> os.stat_result:
    """Write data to path so that path always holds either its old or its new content, whole.

    The data is flushed to disk before the rename and the folder after it (where the system
    allows). Returns the written file's status (its inode, size and modification time: what
    identifies this version of it). Raises OSError naming path when it cannot be written; the
    target is then untouched and no temporary file is left.
    """
    try:
        target = _real_target(path)
        remove_stale_temps(target)
        fd, tmp = _create_temp(target, private)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
                written = os.fstat(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as err:
        raise _naming(err, path) from err
    _sync_folder(target.parent)
    return written


class AtomicBatch:
    """Many files written atomically each, with one flush to disk for them all.

    `write(path, data)` puts each file's data in its temporary file; leaving the `with` block
    flushes them all to disk at once, then renames each over its target and syncs each folder
    once. So a target holds its old content or its new one, whole, as with write_atomic, and
    writing ten thousand small files costs one flush instead of ten thousand. Stale temporary
    files are removed once per folder. If the block raises, nothing is renamed and the
    temporary files are removed. OSErrors name the target as the caller gave it.
    """

    def __init__(self, *, private: bool = False) -> None:
        self.private = private
        self._pending: list[tuple[str | os.PathLike[str], Path, Path]] = []  # given, real, temp
        self._folders: dict[Path, None] = {}

    def __enter__(self) -> AtomicBatch:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self._discard()

    def write(self, path: str | os.PathLike[str], data: bytes) -> None:
        try:
            target = _real_target(path)
            if target.parent not in self._folders:
                remove_stale_temps(target)
                self._folders[target.parent] = None
            fd, tmp = _create_temp(target, self.private)
            self._pending.append((path, target, tmp))
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        except OSError as err:
            self._discard()
            raise _naming(err, path) from err
        except BaseException:
            self._discard()
            raise

    def commit(self) -> None:
        """Flush every file to disk, then rename each over its target (done on leaving `with`)."""
        pending, self._pending = self._pending, []
        try:
            _flush_files([tmp for _, _, tmp in pending], list(self._folders))
        except OSError as err:
            self._pending = pending
            self._discard()
            raise _naming(err, pending[0][0]) from err
        for index, (given, target, tmp) in enumerate(pending):
            try:
                os.replace(tmp, target)
            except OSError as err:
                self._pending = pending[index:]
                self._discard()
                raise _naming(err, given) from err
        for folder in self._folders:
            _sync_folder(folder)

    def _discard(self) -> None:
        for _, _, tmp in self._pending:
            tmp.unlink(missing_ok=True)
        self._pending.clear()


def stale_temps(path: str | os.PathLike[str]) -> list[Path]:
    """The temporary files whose writing process is gone in the folder of path (a target file),
    or in path itself when it is a folder."""
    where = Path(path)
    folder, name = (where, None) if where.is_dir() else (where.parent, where.name)
    legacy = re.compile(rf"\.{re.escape(name)}\.(\d+)\.[^.]+{re.escape(TEMP_SUFFIX)}",
                        re.DOTALL) if name else None
    found = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                match = _TEMP.fullmatch(entry.name) or (legacy and legacy.fullmatch(entry.name))
                if match and not _process_runs(int(match.group(1))):
                    found.append(folder / entry.name)
    except OSError:
        pass  # a missing or unlistable folder: nothing to clean there, and the write says why
    return found


def remove_stale_temps(path: str | os.PathLike[str]) -> None:
    """Delete what stale_temps(path) finds, skipping any that cannot be deleted."""
    for entry in stale_temps(path):
        try:
            entry.unlink()
        except OSError:
            pass  # held open by a live writer on Windows, or already gone: either way not ours


def _real_target(path: str | os.PathLike[str]) -> Path:
    """path, or the file a symbolic link at path points to (even through several links)."""
    target = Path(path)
    if not target.is_symlink():
        return target
    real = Path(os.path.realpath(target))
    if real.is_symlink():  # realpath stops at a loop
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), os.fspath(path))
    return real


def _create_temp(target: Path, private: bool) -> tuple[int, Path]:
    """A new temporary file beside target, open for writing, with its final permissions.

    A new target's are the umask's, applied by the system as for any new file: asking for them
    at creation needs no read of the umask (which only a racy set-and-restore can do)."""
    existing = None if private else _mode_of(target)
    mode = _PRIVATE_MODE if private or existing is not None else _NEW_MODE
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | \
        getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = target.parent / _temp_name(target.name)
        try:
            fd = os.open(tmp, flags, mode)
        except FileExistsError:
            continue
        try:
            if existing is not None:
                os.chmod(tmp, existing)  # created private, then given the target's permissions
            elif private:
                os.chmod(tmp, _PRIVATE_MODE)  # whatever the umask
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        return fd, tmp
    raise FileExistsError(errno.EEXIST, "no free temporary file name", os.fspath(target))


def _temp_name(name: str) -> str:
    """`.<name>.convscope-<pid>-<random>.tmp`, name cut so that the whole fits a file name: a
    target whose name is near the limit must not fail for its temporary file's longer one."""
    tail = f"{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}"
    room = _MAX_NAME_BYTES - 1 - len(tail)
    name = name[:room]
    while len(os.fsencode(name)) > room:
        name = name[:-1]
    return f".{name}{tail}"


def _mode_of(path: Path) -> int | None:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None


def _naming(err: OSError, path: str | os.PathLike[str]) -> OSError:
    """err, naming path (the file the caller chose) instead of a temporary file or nothing.
    OSError() picks the subclass from the errno (PermissionError, ...), so handlers still match."""
    return OSError(err.errno, err.strerror or str(err), os.fspath(path))


def _flush_files(files: list[Path], folders: list[Path]) -> None:
    """Flush the data of files to disk: one sync of each filesystem where the system has
    syncfs (Linux), else one fsync per file."""
    if sys.platform.startswith("linux") and _syncfs(folders):
        return
    for path in files:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _syncfs(folders: list[Path]) -> bool:
    """syncfs(2) on each distinct filesystem of folders; False where it is not available."""
    import ctypes  # only here: the one system call the os module lacks
    try:
        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return False
    devices: set[int] = set()
    for folder in folders:
        fd = os.open(folder, os.O_RDONLY)
        try:
            device = os.fstat(fd).st_dev
            if device not in devices:
                devices.add(device)
                if syncfs(fd) != 0:
                    code = ctypes.get_errno()
                    raise OSError(code, os.strerror(code))
        finally:
            os.close(fd)
    return True


def _process_runs(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of this process may be writing the same target right now
    if os.name != "posix":
        return _windows_process_runs(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it runs, as another user
    return True


def _windows_process_runs(pid: int) -> bool:
    """Whether pid runs, from its exit code (os.kill would end it on Windows). When that cannot
    be told, it counts as running: its file is kept, never a live writer's deleted."""
    try:
        import ctypes
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.get_last_error() == 5  # ERROR_ACCESS_DENIED: it runs, as another user
        try:
            code = ctypes.c_ulong()
            still_active = 259
            return not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)) or \
                code.value == still_active
        finally:
            kernel32.CloseHandle(handle)
    except (OSError, AttributeError):
        return True


def _sync_folder(folder: Path) -> None:
    """Flush the folder's entry list, so the rename itself survives a power cut. Best effort:
    the file is already written when this runs, so a folder that refuses is not an error."""
    if os.name != "posix":
        return  # Windows cannot open a folder for fsync; NTFS journals the rename itself
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse to sync a folder; the file's own data is already synced
    finally:
        os.close(fd)
