"""Reading Parquet files in batches, for :class:`gradfit.data.stream.BatchStream`: a run of one
file's row groups through one open file and one thread decoding ahead, consecutive small row
groups read together, large ones page by page; the runs of a list of units, and the bytes of a
file attributed to its row groups (progress). Moved out of :mod:`gradfit.data.stream`
unchanged (its methods ``_parquet``, ``_parquet_batches`` and ``_row_group`` are functions
here, of the stream); that module imports these names back."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from gradfit.data.ahead import read_ahead as _read_ahead
from gradfit.data.formats import arrow_file, unreadable_parquet_error

if TYPE_CHECKING:  # the stream imports this module
    from gradfit.data.stream import Batch, BatchStream, Unit, _File

_WHOLE_GROUP_BYTES = 48 << 20  # Parquet row groups up to this size are decoded in one go
_PAGE_BUFFER = 1 << 20  # read buffer for larger row groups (pages streamed through it)
_PARQUET_AHEAD = 1  # batches decoded ahead of the caller (more: slower, out of cache)
_DISTINCT = "distinct"  # batches' raw mode of distinct_values


def _parquet(
    stream: BatchStream,
    f: _File,
    groups: Sequence[int] | None,
    numeric: Sequence[str],
    text: Sequence[str],
    done_before: int,
    stack: bool = True,
    raw: bool | str = False,
) -> Iterator[Batch]:
    """Row groups of one file (None: all), in the order given, through one open file and
    one thread decoding ahead: consecutive row groups of a file are one run, with no pause
    between them while a new thread starts and the file is opened again; within it, row
    groups consecutive in the file and smaller than a batch are read as one batch
    (:func:`_pieces`)."""
    source = str(f.path)
    groups = range(len(f.row_groups)) if groups is None else groups
    try:
        # Row groups too large to decode whole are read page by page through a small
        # buffer: pyarrow otherwise holds whole column chunks (measured on 96 MB row
        # groups: 531 MB peak resident without the buffer, 197 MB with it, and faster).
        large = any(f.group_bytes[g] > _WHOLE_GROUP_BYTES for g in groups)
        options: dict[str, Any] = (
            {"buffer_size": _PAGE_BUFFER, "pre_buffer": False} if large else {}
        )
        if raw == _DISTINCT:
            # Text columns kept as Parquet's dictionaries (no string per row); pyarrow
            # leaves the other types as they are.
            options["read_dictionary"] = list(dict.fromkeys([*numeric, *text]))
        batches = _parquet_batches(
            stream, f, groups, numeric, text, done_before, options, stack, raw
        )
        yield from _read_ahead(batches, _PARQUET_AHEAD)
    except (OSError, EOFError, pa.ArrowException, UnicodeDecodeError) as exc:
        raise unreadable_parquet_error(source, exc) from None


def _parquet_batches(
    stream: BatchStream,
    f: _File,
    groups: Sequence[int],
    numeric: Sequence[str],
    text: Sequence[str],
    done_before: int,
    options: dict[str, Any],
    stack: bool,
    raw: bool | str = False,
) -> Iterator[Batch]:
    wanted = list(dict.fromkeys([*numeric, *text]))
    starts = list(itertools.accumulate(f.row_groups, initial=0))  # first row of each group
    with arrow_file(f.path) as fh, pq.ParquetFile(fh, **options) as pf:
        for piece in _pieces(f, groups, stream.batch_rows):
            if len(piece) > 1:  # small row groups, consecutive in the file: one batch
                arrow = pf.read_row_groups(piece, columns=wanted, use_threads=True)
                done_before += sum(_share(f, g) for g in piece)
                rows = starts[piece[0]]
                yield stream._batch(f, arrow, numeric, text, rows, done_before, stack, raw)
                continue
            g = piece[0]
            rows = starts[g]
            total = max(f.row_groups[g], 1)
            for arrow in _row_group(stream, pf, f, g, wanted):
                part = rows - starts[g] + arrow.num_rows
                done = done_before + int(_share(f, g) * min(part / total, 1.0))
                yield stream._batch(f, arrow, numeric, text, rows, done, stack, raw)
                rows += arrow.num_rows
            done_before += _share(f, g)


def _row_group(
    stream: BatchStream, pf: pq.ParquetFile, f: _File, g: int, wanted: list[str]
) -> Iterator[pa.Table]:
    """A row group in slices of ``batch_rows``: decoded whole with pyarrow's threads when
    it is small enough (up to :data:`_WHOLE_GROUP_BYTES` uncompressed), else batch by
    batch."""
    if f.group_bytes[g] <= _WHOLE_GROUP_BYTES:
        table = pf.read_row_group(g, columns=wanted, use_threads=True)
        for start in range(0, table.num_rows, stream.batch_rows):
            yield table.slice(start, stream.batch_rows)
        return
    for record in pf.iter_batches(
        # One thread: the caller's statistics use the other core (measured on 4,000,000 x
        # 12: 0.65-0.75 s with it against 0.69-0.77 s with pyarrow's threads, less CPU).
        batch_size=stream.batch_rows,
        row_groups=[g],
        columns=wanted,
        use_threads=False,
    ):
        yield pa.Table.from_batches([record])


def _runs(
    by_path: dict[Path, _File], units: Sequence[Unit]
) -> Iterator[tuple[_File, list[int] | None]]:
    """``units`` as runs, in order: consecutive row groups of one Parquet file together (their
    numbers), any other unit alone (None: the whole file)."""
    f: _File | None = None
    groups: list[int] = []
    for unit in units:
        if f is not None and unit.file == f.path and unit.row_group is not None and groups:
            groups.append(unit.row_group)
            continue
        if f is not None:
            yield f, groups or None
        f = by_path[unit.file]
        groups = [] if unit.row_group is None or not f.parquet else [unit.row_group]
    if f is not None:
        yield f, groups or None


def _pieces(f: _File, groups: Sequence[int], batch_rows: int) -> Iterator[list[int]]:
    """``groups`` (a run of one Parquet file's row groups) in pieces read as one: consecutive
    row groups of the file (g, g + 1, ...) each of fewer than ``batch_rows`` rows, together up
    to ``batch_rows`` rows and :data:`_WHOLE_GROUP_BYTES`, as one batch (a file written in
    small row groups costs one batch's stacking, solve and hand-off per ``batch_rows`` rows,
    not per row group); any other row group alone (sliced, or read page by page)."""
    piece: list[int] = []
    rows = size = 0
    for g in groups:
        small = f.row_groups[g] < batch_rows and f.group_bytes[g] <= _WHOLE_GROUP_BYTES
        if (
            small
            and piece
            and g == piece[-1] + 1
            and rows + f.row_groups[g] <= batch_rows
            and size + f.group_bytes[g] <= _WHOLE_GROUP_BYTES
        ):
            piece.append(g)
            rows += f.row_groups[g]
            size += f.group_bytes[g]
            continue
        if piece:
            yield piece
        if small:
            piece, rows, size = [g], f.row_groups[g], f.group_bytes[g]
        else:
            piece, rows, size = [], 0, 0
            yield [g]
    if piece:
        yield piece


def _run_bytes(f: _File, groups: Sequence[int] | None) -> int:
    """Bytes of a file attributed to a run of its row groups (None: the whole file)."""
    return f.size if groups is None else sum(_share(f, g) for g in groups)


def _share(f: _File, group: int) -> int:
    """Bytes of a Parquet file attributed to one row group (by its share of the rows)."""
    total = sum(f.row_groups)
    return f.size if total == 0 else int(f.size * f.row_groups[group] / total)
