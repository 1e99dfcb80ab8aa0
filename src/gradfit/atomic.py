"""Atomic file writing: a file is written all at once or not at all.

gradfit writes every file through :func:`atomic_write` (data tables, model files, plots), so a
failure (a full disk, an exception while serialising, Ctrl-C) never leaves a truncated file or
clobbers the one that was there.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO

from gradfit.errors import DataError, GradfitError

__all__ = ["atomic_write", "remove_stale_temporaries"]


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
    given = Path(path)
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
    temp = parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
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
    was killed outright (``kill -9``) mid-write: ``.{name}.{12 hex digits}.tmp`` beside the
    file. For a run that continues a killed one (``--resume``); a write to ``path`` in progress
    elsewhere at the same moment would lose its temporary file. Returns how many were removed."""
    target = Path(os.path.realpath(Path(path)))
    pattern = re.compile(rf"\.{re.escape(target.name)}\.[0-9a-f]{{12}}\.tmp")
    removed = 0
    with contextlib.suppress(OSError):
        for entry in target.parent.iterdir():
            if pattern.fullmatch(entry.name) and entry.is_file():
                with contextlib.suppress(OSError):
                    entry.unlink()
                    removed += 1
    return removed


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
