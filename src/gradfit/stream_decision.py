"""Whether a source is read whole or streamed (:func:`use_streaming`: the one place that
decides), and how much memory a file read whole would take (:func:`memory_estimate`).
"""

from __future__ import annotations

import contextlib
import gzip
import zlib
from pathlib import Path
from typing import Any

from gradfit.data.memory import TableInMemory
from gradfit.errors import DataError, ValidationError
from gradfit.settings import ReadSettings, refuse_unknown, settings_from_options
from gradfit.solvers import registry
from gradfit.solvers.config import SolverConfig
from gradfit.sources import source_kind, source_name
from gradfit.storage import as_path

__all__ = ["memory_estimate", "use_streaming"]

# Bytes in memory per byte of file when a file is read whole (measured: a CSV peaks at ~3.3x
# its size, a float Parquet file at ~6x).
_EXPANSION = ((".parquet", 8), (".pq", 8))
_DEFAULT_EXPANSION = 4
_INFLATE_BLOCK = 1 << 20  # bytes decompressed at a time when a gzip file is measured


def memory_estimate(source: str | Path, limit: int | None = None) -> int:
    """About how many bytes reading ``source`` whole would take: the size of its text times
    the expansion of its format. The text of a gzip file is measured by decompressing it (in
    blocks of 1 MiB, nothing kept): its compressed size says nothing (a 0.6 MB file can hold
    300 MB of text). With ``limit``, the measure stops once the estimate passes it (the
    result is then only known to exceed ``limit``)."""
    path = as_path(source)
    factor = next(
        (f for suffix, f in _EXPANSION if path.name.lower().endswith(suffix)), _DEFAULT_EXPANSION
    )
    with path.open("rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    if not gzipped:
        return path.stat().st_size * factor
    return _inflated_size(path, None if limit is None else limit // factor + 1) * factor


def _inflated_size(path: Path, cap: int | None) -> int:
    """Bytes of the decompressed text of the gzip file ``path``, counted up to just past
    ``cap`` (None: all); a corrupt file counts what decompressed before the fault (the
    reader names the fault)."""
    total = 0
    with (
        contextlib.suppress(OSError, EOFError, zlib.error),
        path.open("rb") as raw,
        gzip.GzipFile(fileobj=raw, mode="rb") as fh,
    ):
        while cap is None or total <= cap:
            block = fh.read(_INFLATE_BLOCK)
            if not block:
                break
            total += len(block)
    return total


def use_streaming(
    source: str | TableInMemory,
    config: SolverConfig | None = None,
    reading: ReadSettings | None = None,
    *,
    group: bool = False,
    checkpoint: bool = False,
    **options: Any,
) -> bool:
    """Whether to read ``source`` by streaming rather than whole: the one place that decides.

    What ``source`` is, :func:`gradfit.fitting.source_kind` says. A table in memory or a
    built-in data set is never streamed: ``stream=True``, a group or a checkpoint with one is
    refused. A group of
    processes (``group``) or a ``checkpoint`` always streams (they shard the data and resume by
    epochs); ``reading.stream`` False is then refused. Otherwise ``reading.stream`` True or
    False forces the choice, and None decides: the built-in data sets are read whole; a
    directory, a glob or a file whose :func:`memory_estimate` exceeds ``reading.memory_limit``
    (None: no limit) is streamed, so that the default never exhausts memory on a file larger
    than it; smaller files are read whole. A solver that cannot stream (the tutorial loops), or
    early stopping, on such a source is refused with what to do instead (``config`` None:
    predict and evaluate, which always can). ``options``: fields of
    :class:`~gradfit.settings.ReadSettings` (``stream=``, ``memory_limit=``) instead of
    ``reading``."""
    reading = settings_from_options(ReadSettings, reading, options)
    refuse_unknown("use_streaming", options)
    stream, memory_limit = reading.stream, reading.memory_limit
    kind = source_kind(source)
    if kind in ("memory", "builtin"):
        # Neither is a file to stream (a built-in name was looked for as a missing file).
        table = "a table in memory" if kind == "memory" else "the built-in data set"
        if group or checkpoint:
            what = "several processes stream" if group else "a checkpointed fit streams"
            option = (
                ("comm" if group else "checkpoint")
                if kind == "memory"
                else ("torchrun (comm)" if group else "--checkpoint (checkpoint)")
            )
            raise ValidationError(
                f"{source_name(source)}: {what} files, and {table} is read whole in "
                f"this process; leave out {option}, or write the table to a file and fit that"
            )
        if stream:
            option = "stream=True" if kind == "memory" else "--stream (stream=True)"
            raise ValidationError(
                f"{source_name(source)}: {table} is read whole, never streamed; leave "
                f"out {option} (or write the table to a file and stream that)"
            )
        if kind == "memory":
            return False
    if group or checkpoint:
        if stream is False:
            what = (
                "several processes stream their shards of"
                if group
                else "a checkpointed fit streams"
            )
            raise ValidationError(
                f"{source}: {what} the data; leave out stream=False (--no-stream)"
            )
        stream = True
    path = as_path(source)
    # Anything but a directory or a glob is one file; one that is missing or unreadable gets
    # the reader's message.
    single = kind != "files"
    if stream is False:
        if not single:
            raise DataError(
                f"{source}: not a single file; a directory or glob is read by streaming "
                "(leave out --no-stream)"
            )
        return False
    if stream is None:
        if kind == "builtin":
            return False
        if single and (
            memory_limit is None
            or not path.is_file()
            or memory_estimate(source, memory_limit) <= memory_limit
        ):
            return False
    if config is None:
        return True
    spec = registry.get(config.solver)
    why = (
        "is streamed"
        if stream
        else f"needs more than the memory limit of {_mb(memory_limit or 0)} in memory"
        if single
        else "is several files, read by streaming"
    )
    if spec.stream_entry is None:
        able = " or ".join(repr(s.name) for s in registry.REGISTRY.values() if s.stream_entry)
        raise ValidationError(
            f"{source} {why}, but solver={config.solver!r} trains on data in memory; use "
            f"solver={able}, or raise the memory limit"
        )
    return True


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"
