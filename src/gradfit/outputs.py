"""Outputs never overwrite inputs: the paths a command will write, checked before any work.

A command that reads a data file (or a directory or glob of them) and a model file, and writes a
model, a checkpoint, a plot or predictions, must not write over what it reads: ``fit data.csv
--out data.csv`` would replace the data with the model. :func:`check_outputs` compares every
output with every input, and the outputs with one another, by what they *are*, not by how they
are spelt: an existing file by its device and inode (so a symbolic link, a hard link, a relative
path or ``dir/../x`` to the same file is the same file), a file yet to be written by its real
path, an object in a store by its URI (``s3://b//x`` is ``s3://b/x``). Character devices
(``/dev/null``, a terminal) never clash: writing to one destroys nothing.

The math and training layers never import this module; the command line calls it first thing.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from gradfit.errors import DataError
from gradfit.file_kinds import kind_of
from gradfit.storage import as_path, is_remote, same_object

__all__ = ["check_checkpoint_target", "check_outputs", "data_files"]

_Key = tuple[object, ...]


def data_files(source: str) -> list[Path]:
    """The files a data source reads: the file itself, every data file of a directory, every
    match of a glob (as the readers expand them); none for a built-in data set. A source the
    readers would refuse (an empty directory, a glob matching nothing) gives none here: the
    reader's own message comes later."""
    from gradfit.data.stream import expand_source  # pyarrow: not for a command without data
    from gradfit.datasets import BUILTIN_DATASETS  # torch (as above)

    if source in BUILTIN_DATASETS and not os.path.lexists(source):
        return []
    try:
        files, _ = expand_source(source)
    except (DataError, OSError):
        return []
    return files


def check_outputs(
    outputs: Sequence[tuple[str, str | None]],
    *,
    data: str | None = None,
    reads: Sequence[tuple[str, str]] = (),
    stdout: object = None,
) -> None:
    """Refuse, before any work, outputs that would overwrite an input or one another.

    Parameters
    ----------
    outputs : sequence of (option, path or None)
        The files to be written, e.g. ``[("--out", "model.safetensors"), ("--plot", None)]``;
        None: that output is not asked for. An empty path is refused.
    data : str, optional
        The data source read (a file, a directory, a glob or a built-in name); every file it
        expands to is an input.
    reads : sequence of (what, path)
        Other files read, e.g. ``[("the model file", "model.safetensors")]``.
    stdout : file or file descriptor, optional
        Standard output, when the command writes to it: a regular file there
        (``>> data.csv``) must not be an input either.

    Raises
    ------
    DataError
        One line naming the output, the input it would overwrite, and what to do.
    """
    for option, path in outputs:
        if path is not None and not path.strip():
            raise DataError(f"{option}: an empty path; give a file name")
    wanted = [(option, path) for option, path in outputs if path is not None]
    inputs: dict[_Key, str] = {}
    for what, path in reads:
        key = _existing_key(path)
        if key is not None:
            inputs.setdefault(key, f"{what} {path}")
    if data is not None:
        files = data_files(data)
        for file in files:
            key = _existing_key(file)
            if key is not None:
                whose = f"one of the data files of {data}" if str(file) != data else ""
                label = f"the data file {file}" + (f" ({whose})" if whose else "")
                inputs.setdefault(key, label)
    seen: dict[_Key, str] = {}
    for option, path in wanted:
        key = _key(path)
        if key is None:
            continue
        if key in inputs:
            raise DataError(
                f"{option} {path}: is {inputs[key]}, which this command reads; writing there "
                "would destroy it: choose another path"
            )
        if key in seen:
            raise DataError(
                f"{option} {path}: is the same file as {seen[key]}; one would overwrite the "
                "other: give each its own path"
            )
        seen[key] = f"{option} {path}"
    if stdout is not None:
        key = _descriptor_key(stdout)
        if key is not None and key in inputs:
            raise DataError(
                f"standard output is {inputs[key]}, which this command reads; writing there "
                "would destroy it: redirect the output to another file"
            )


def _key(path: str | Path) -> _Key | None:
    """What identifies a file to be written: its device and inode when it exists, else its
    real path; None for a character device (nothing to destroy). An object in a store: its
    URI."""
    remote = same_object(path)
    if remote is not None:
        return remote
    path = as_path(path)  # a file:// URI is its local path
    try:
        info = os.stat(path)
    except OSError:
        return ("path", os.path.normcase(os.path.realpath(path)))
    if stat.S_ISCHR(info.st_mode):
        return None
    return ("inode", info.st_dev, info.st_ino)


def _existing_key(path: str | Path) -> _Key | None:
    """The device and inode of an existing file that is not a character device, else None."""
    key = _key(path)
    return key if key is not None and key[0] in ("inode", "uri") else None


def _descriptor_key(file: object) -> _Key | None:
    """The device and inode of the regular file open as ``file`` (a file object or a
    descriptor), else None (a terminal, a pipe, a stream without a descriptor)."""
    try:
        descriptor = file if isinstance(file, int) else file.fileno()  # type: ignore[attr-defined]
        info = os.fstat(descriptor)
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return ("inode", info.st_dev, info.st_ino)


def check_checkpoint_target(option: str, path: str, *, resume: bool) -> None:
    """Refuse a checkpoint path whose existing file must not be replaced by a checkpoint: one
    that is not a regular file, and (unless resuming, where the whole file is checked as it is
    read) a non-empty file that is not a gradfit checkpoint, such as a data file or a model.

    Raises
    ------
    DataError
        One line naming the path and what to do.
    """
    try:
        file = as_path(path)  # a file:// URI is its local path
        info = file.stat() if is_remote(file) else os.stat(file)
    except OSError:
        return  # nothing there yet (or unreadable: the write will say so)
    if not stat.S_ISREG(info.st_mode):
        raise DataError(
            f"{option} {path}: is {kind_of(info.st_mode)}, not a regular file; give the path of "
            "a file for the checkpoint"
        )
    from gradfit.checkpoint import looks_like_checkpoint  # torch: not for gradfit info

    if not resume and info.st_size > 0 and not looks_like_checkpoint(path):
        raise DataError(
            f"{option} {path}: the file there is not a gradfit checkpoint and would be "
            "replaced; choose another path, or remove the file first"
        )
