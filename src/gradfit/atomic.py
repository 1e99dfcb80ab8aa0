"""Atomic file writing: a file is written all at once or not at all.

gradfit writes every file through :func:`atomic_write` (data tables, model files, plots), so a
failure (a full disk, an exception while serialising, Ctrl-C, SIGTERM) never leaves a truncated
file or clobbers the one that was there.

The temporary file is ``.{name}.{pid}-{12 hex digits}.tmp`` beside the file, ``pid`` the
writer's process id. Only ``kill -9`` (or a power cut) can leave one behind; the next write of
the same file removes those whose writer is gone (:func:`remove_stale_temporaries`). A writer is
judged gone when no process with its id exists on this machine: a concurrent writer of the same
file is never robbed of its temporary, and one left by a killed process goes at the next write,
however recent. (Two machines writing the same file in a shared directory at the same moment
could mistake each other's temporaries; such writes race for the file anyway.)

A path that is an object-storage URI (``s3://bucket/key``, ...) is written by
:func:`gradfit.storage.write_whole`, whole or not at all too (a local temporary file, then one
PutObject, or a temporary object moved into place); a ``file://`` URI is its local path.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from gradfit.errors import DataError, GradfitError
from gradfit.storage import as_path, is_remote, write_whole

__all__ = ["atomic_write", "remove_stale_temporaries", "temporary_path"]

# An unknown writer's temporary (another OS, where process ids cannot be probed) is only taken
# for stale after this long without a change.
_UNKNOWN_WRITER_AGE = 3600.0


def temporary_path(target: Path) -> Path:
    """A fresh name for a temporary file beside ``target`` (see the module doc): hidden, with
    this process's id, so that :func:`remove_stale_temporaries` can tell a live writer's
    temporary from one left by a killed process."""
    if is_remote(target):  # staged locally, then uploaded whole by atomic_write
        return (
            Path(tempfile.gettempdir()) / f".{target.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp"
        )
    return target.parent / f".{target.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp"


def atomic_write(
    path: str | Path,
    write: Callable[[IO[bytes]], object],
    *,
    error: type[GradfitError] = DataError,
) -> None:
    """Write a file all at once or not at all.

    ``write`` receives a binary file open on a temporary file in the same directory; after it
    returns, the data are flushed to disk and the temporary file is renamed over ``path``
    (:func:`os.replace`, atomic on POSIX and Windows). On any failure the temporary file is
    removed and ``path`` is left as it was.

    A symbolic link is written through: the file it points to is replaced and the link is kept.
    An existing path that is not a regular file (a named pipe, ``/dev/stdout``) is written to
    directly, since it cannot be replaced (not atomically).

    Parameters
    ----------
    path : str or Path
        The file to write; its directory must exist.
    write : callable
        Called once with the open binary file; writes the whole content.
    error : type of GradfitError, default DataError
        The exception raised, with a one-line message naming the path, for a missing directory
        or an OS error.

    Raises
    ------
    GradfitError
        ``error``, as above. Any other exception raised by ``write`` propagates unchanged (the
        temporary file removed).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> atomic_write(f, lambda fh: fh.write(b"all or nothing"))
    >>> f.read_bytes()
    b'all or nothing'
    """
    if is_remote(path):  # an object in a store: uploaded whole, then moved into place
        write_whole(path, write, error)
        return
    given = as_path(path)  # a file:// URI is its local path
    if not given.parent.exists():
        raise error(
            f"{path}: cannot write: directory '{given.parent}' does not exist; create it first"
        )
    if not given.parent.is_dir():
        raise error(f"{path}: cannot write: '{given.parent}' is not a directory")
    if given.is_dir():
        raise error(f"{path}: is a directory; give a file name to write to")
    if given.exists() and not given.is_file():  # follows links, /dev/stdout's included
        _write_in_place(path, given, write, error)
        return
    # Through symbolic links: the file they point to is replaced and the links survive.
    target = Path(os.path.realpath(given))
    parent = target.parent
    if not parent.is_dir():
        raise error(f"{path}: cannot write: directory '{parent}' does not exist; create it first")
    remove_stale_temporaries(target)  # what a writer of this file killed by kill -9 left
    temp = temporary_path(target)
    try:
        # os.open with mode 0o666 lets the umask set the permissions, as for any new file.
        descriptor = os.open(
            temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666
        )
    except OSError as exc:
        raise error(f"{path}: cannot write ({exc.strerror or exc})") from None
    try:
        with os.fdopen(descriptor, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError) and not isinstance(exc, GradfitError):
            raise error(f"{path}: cannot write ({exc.strerror or exc})") from None
        raise
    _fsync_directory(parent)


def remove_stale_temporaries(path: str | Path) -> int:
    """Remove the temporary files that :func:`atomic_write` left for ``path`` when its process
    was killed outright (``kill -9``) mid-write: ``.{name}.{pid}-{12 hex digits}.tmp`` beside
    the file whose writer ``pid`` no longer runs (see the module doc), and the names of earlier
    gradfit versions (``.{name}.{12 hex digits}.tmp``, no writer named: always stale).
    :func:`atomic_write` calls it before each write; a run that resumes (``--resume``) too.
    Returns how many were removed (none in an object store: its writers cannot be probed)."""
    if is_remote(path):
        return 0
    target = Path(os.path.realpath(as_path(path)))
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(?:([0-9]+)-)?[0-9a-f]{{12}}\.tmp")
    removed = 0
    with contextlib.suppress(OSError), os.scandir(target.parent) as entries:
        for entry in entries:
            match = pattern.fullmatch(entry.name)
            if match is None or not entry.is_file(follow_symlinks=False):
                continue
            if match[1] is not None and _writer_alive(int(match[1]), entry):
                continue
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed += 1
    return removed


def _writer_alive(pid: int, entry: os.DirEntry[str]) -> bool:
    """Whether the process that named a temporary file ``pid`` may still be writing it."""
    if os.name != "posix":  # pragma: no cover - os.kill(pid, 0) would signal on Windows
        with contextlib.suppress(OSError):
            return time.time() - entry.stat(follow_symlinks=False).st_mtime < _UNKNOWN_WRITER_AGE
        return True
    if pid == os.getpid():
        return True  # this process: another write of the same file, in another thread
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent, only whether the process exists
    except ProcessLookupError:
        return False
    except (OverflowError, OSError):
        return True  # it exists (another user's), or the id cannot be probed: keep its file
    return True


def _write_in_place(
    path: str | Path,
    target: Path,
    write: Callable[[IO[bytes]], object],
    error: type[GradfitError],
) -> None:
    """Write straight into a FIFO, device or other special file (not atomic, no fsync)."""
    try:
        with target.open("wb") as fh:
            write(fh)
            fh.flush()
    except OSError as exc:
        raise error(f"{path}: cannot write ({exc.strerror or exc})") from None


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX only; best effort)."""
    if os.name != "posix":  # pragma: no cover
        return
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
