"""Reading tables in batches: files larger than memory, one batch of rows at a time.

:func:`open_stream` takes a file, a list of files, a directory (its ``.csv``, ``.tsv``,
``.csv.gz``, ``.tsv.gz``, ``.parquet`` and ``.pq`` files, sorted by name) or a glob pattern, and
checks the schema once, up front, from each file's header or Parquet footer: every file must
have the same columns in the same order. Then :meth:`BatchStream.batches` reads the columns
asked for, batch by batch (CSV: the file cut into chunks at line ends, read ahead by a thread,
each parsed by ``pyarrow.csv.read_csv`` with its threads; Parquet: row groups, consecutive
small ones together, decoded one batch ahead of the caller by a thread), each batch going
through the same checks as :func:`gradfit.data.select` with rows counted in its file, so that
a bad cell three million rows down is named exactly as in a small file:
``data.csv: column 'temp', row 3000001: 'abc' is not a number; fix or remove that row``.

Order: files in the order given (a directory or glob: sorted by name), rows in file order.
:meth:`BatchStream.units` lists the pieces that can be read independently, in that order: one
per Parquet row group, one per CSV file (a CSV file is read from its start, so a single CSV file
is one unit). Reading ``units`` in another order, or a rank's share of them
(:meth:`BatchStream.shard`), is how training shuffles and shards without holding the data.

Memory: a few batches at a time (the caller's, the one read ahead, the chunk being parsed);
every call of :meth:`batches` opens the files anew (an epoch), and closes them even when the
caller stops early. With ``stack=False`` the numeric columns are pyarrow's own float64 buffers
where they can be (no copy; row groups read together: one copy), for a caller that takes
columns, such as the statistics pass.
"""

from __future__ import annotations

import contextlib
import glob as globbing
import gzip
import itertools
import zlib
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.parquet as pq

from gradfit import storage
from gradfit.data.ahead import read_ahead as _read_ahead
from gradfit.data.formats import (
    CSV_SUFFIXES,
    PARQUET_SUFFIXES,
    arrow_file,
    carriage_returns_only,
    check_column_names,
    corrupt_file_error,
    field_count_message,
    first_invalid_row,
    flat,
    is_parquet,
    long_row_message,
    no_data_rows_error,
    not_text_error,
    open_head,
    sniff_csv,
    unreadable_parquet_error,
)
from gradfit.data.parquet_stream import (  # the Parquet reading, moved there
    _DISTINCT,
    _PAGE_BUFFER,
    _parquet,
    _run_bytes,
    _runs,
)
from gradfit.data.parquet_stream import _share as _share  # (tests)
from gradfit.data.tables import (
    Table,
    check_known,
    float_matrix,
    is_numeric,
    is_text,
    left_out_columns,
    listing,
    numbers_to_numpy,
    select,
    to_table,
)
from gradfit.errors import DataError, GradfitError, ValidationError
from gradfit.settings import DEFAULT_BATCH_ROWS
from gradfit.storage import RemotePath, as_path

__all__ = ["Batch", "BatchStream", "Unit", "expand_source", "open_stream"]


_DATA_SUFFIXES = (*CSV_SUFFIXES, *PARQUET_SUFFIXES)
_INFER_ROWS = 1 << 16  # rows of the first file read to tell numeric columns from the others
_HEAD_TEXT = 1 << 22  # bytes of a CSV file's start read for the same
_MAX_ROW = 1 << 28  # the longest CSV line read (256 MiB, as by the whole-file reader)


@dataclass(frozen=True)
class Unit:
    """A piece of the data that can be read on its own: a Parquet row group, or a CSV file."""

    file: Path
    row_group: int | None = None  # None: the whole (CSV) file


@dataclass(frozen=True)
class Batch:
    """Consecutive rows of one file."""

    columns: dict[str, npt.NDArray[Any]]  # numeric: float64 (n,) views of matrix; text: as read
    file: Path
    file_row: int  # the batch's first data row in its file, counted from 1
    n_rows: int
    bytes_done: int  # bytes of input read so far in this pass (approximate inside a file)
    total_bytes: int
    matrix: npt.NDArray[np.float64] | None = None  # (n, len(numeric)): the numeric columns

    def split_matrix(self, d: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """The stacked numeric columns as (X (n, d), Y (n, rest)): views of :attr:`matrix`."""
        if self.matrix is None:
            raise ValidationError("a batch read with stack=False has no numeric matrix")
        return self.matrix[:, :d], self.matrix[:, d:]


@dataclass(frozen=True)
class _File:
    path: Path
    parquet: bool
    gzipped: bool
    delimiter: str
    head: bytes  # the start of the (decompressed) text, for CSV
    columns: tuple[str, ...]
    size: int
    row_groups: tuple[int, ...]  # rows per row group (Parquet)
    group_bytes: tuple[int, ...] = ()  # uncompressed bytes per row group (Parquet)
    mtime: float | None = None  # when it was last modified, as it was inspected


class BatchStream:
    """Files with the same columns, read in batches. Use :func:`open_stream`."""

    def __init__(self, files: Sequence[Path], source: str, batch_rows: int) -> None:
        if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
            raise ValidationError(f"batch_rows must be a positive integer, got {batch_rows!r}")
        self.source = source
        self.batch_rows = batch_rows
        self._files = tuple(_inspect(path) for path in files)
        first = self._files[0]
        for other in self._files[1:]:
            if other.columns != first.columns:
                missing = [c for c in first.columns if c not in other.columns]
                extra = [c for c in other.columns if c not in first.columns]
                what = (
                    (f"lacks {listing(missing)}" if missing else "")
                    + ("; " if missing and extra else "")
                    + (f"has extra {listing(extra)}" if extra else "")
                ) or "has the same columns in another order"
                raise DataError(
                    f"{other.path}: its columns differ from those of {first.path} (it {what}); "
                    "every file of a data set must have the same columns"
                )
        self.columns: tuple[str, ...] = first.columns
        self.files: tuple[Path, ...] = tuple(f.path for f in self._files)
        self.total_bytes = sum(f.size for f in self._files)
        self._head: Table | None = None

    # ------------------------------------------------------------------------- pieces

    def units(self) -> list[Unit]:
        """Every independently readable piece, in reading order (see the module doc)."""
        out: list[Unit] = []
        for f in self._files:
            if f.parquet:
                out.extend(Unit(f.path, g) for g in range(len(f.row_groups)))
            else:
                out.append(Unit(f.path))
        return out

    def layout(self) -> list[str]:
        """Every unit of :meth:`units`, in order, as one line with its size (a Parquet row
        group's rows and bytes, a CSV file's bytes): what a process sees of the data, to
        compare with its peers' (:func:`gradfit.solvers.collective.agree`)."""
        out: list[str] = []
        for f in self._files:
            if f.parquet:
                out.extend(
                    f"{f.path} row group {g}: {rows:,} rows, {size:,} bytes"
                    for g, (rows, size) in enumerate(
                        itertools.zip_longest(f.row_groups, f.group_bytes, fillvalue=0)
                    )
                )
            else:
                out.append(f"{f.path}: {f.size:,} bytes")
        return out

    def shard(self, rank: int, world: int) -> list[Unit]:
        """The units of process ``rank`` of ``world``: every ``world``-th unit from ``rank``
        (whole files of a directory; a Parquet file's row groups; a CSV file is one unit, read
        by one rank)."""
        if not (isinstance(rank, int) and isinstance(world, int) and 0 <= rank < world):
            raise ValidationError(f"need 0 <= rank < world, got rank={rank!r}, world={world!r}")
        return self.units()[rank::world]

    def column_kinds(self, targets: Sequence[str]) -> tuple[tuple[str, ...], dict[str, str]]:
        """The default features (every numeric column but the targets, as
        :func:`gradfit.data.select` chooses them, with its checks) and the columns it leaves
        out with why, from the first rows of the first file."""
        table = self.head_table()
        _, _, features, _ = select(table, targets, None)
        return features, left_out_columns(table, targets)

    def check_columns(self, names: Sequence[str], kind: str) -> None:
        """A DataError naming the first of ``names`` that is not a column (with a suggestion)."""
        check_known(Table({c: np.zeros(0) for c in self.columns}, source=self.source), names, kind)

    # ------------------------------------------------------------------------- reading

    def batches(
        self,
        numeric: Sequence[str],
        text: Sequence[str] = (),
        *,
        units: Sequence[Unit] | None = None,
        stack: bool = True,
        raw: bool | str = False,
    ) -> Iterator[Batch]:
        """The rows of ``units`` (default: all, in order), batch by batch: ``numeric`` columns
        as finite float64 (a bad cell is a DataError naming file, row and column), ``text``
        columns as :func:`gradfit.data.read_table` keeps them. ``stack``: also stack the
        numeric columns into one matrix (:attr:`Batch.matrix`); without it the columns are
        pyarrow's own buffers where they can be (float64 without missing values), no copy.
        ``raw``: every column as :func:`gradfit.data.read_table` keeps it, missing cells
        included (NaN, None), for :mod:`gradfit.design` to encode; a CSV file's ``numeric``
        columns are parsed as numbers (a cell that is not one is named), the others as text;
        no matrix."""
        wanted = list(dict.fromkeys([*numeric, *text]))
        self.check_columns(wanted, "requested")
        by_path = {f.path: f for f in self._files}
        done_before = 0
        if raw:
            stack = False
        for f, groups in _runs(by_path, units if units is not None else self.units()):
            _check_unchanged(f)
            if f.parquet:
                yield from _parquet(self, f, groups, numeric, text, done_before, stack, raw)
            else:
                yield from self._csv(f, numeric, text, done_before, stack, raw)
            done_before += _run_bytes(f, groups)

    def distinct_values(
        self,
        numeric: Sequence[str],
        text: Sequence[str] = (),
        *,
        units: Sequence[Unit] | None = None,
    ) -> Iterator[dict[str, npt.NDArray[Any]]]:
        """Per batch of ``units`` (default: all), each column's distinct values as
        :meth:`batches` with ``raw=True`` would give them (missing cells included, as NaN or
        None), in no particular order: only these columns are read (a CSV file's other columns
        are parsed but not converted), and each batch's values are made distinct by pyarrow
        before any Python object is made (the levels pass of :mod:`gradfit.design`)."""
        wanted = list(dict.fromkeys([*numeric, *text]))
        self.check_columns(wanted, "requested")
        by_path = {f.path: f for f in self._files}
        done_before = 0
        for f, groups in _runs(by_path, units if units is not None else self.units()):
            _check_unchanged(f)
            if f.parquet:
                found = _parquet(self, f, groups, numeric, text, done_before, False, _DISTINCT)
            else:
                found = self._csv(f, numeric, text, done_before, False, _DISTINCT)
            for batch in found:
                yield batch.columns
            done_before += _run_bytes(f, groups)

    def matrix_batches(
        self,
        features: Sequence[str],
        targets: Sequence[str],
        *,
        units: Sequence[Unit] | None = None,
    ) -> Iterator[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], Batch]]:
        """Batches as (X (m, d), Y (m, k)) float64 matrices (views of one (m, d + k) array),
        and the batch."""
        for batch in self.batches([*features, *targets], units=units):
            yield (*batch.split_matrix(len(features)), batch)

    # ------------------------------------------------------------------------- formats

    def _batch(
        self,
        f: _File,
        arrow: pa.Table,
        numeric: Sequence[str],
        text: Sequence[str],
        rows_before: int,
        bytes_done: int,
        stack: bool = True,
        raw: bool | str = False,
    ) -> Batch:
        if raw == _DISTINCT:
            kind = "parquet" if f.parquet else "csv"
            distinct = {
                # The column's distinct values (missing included), as read_table keeps them.
                name: to_table(
                    pa.table({name: _distinct(arrow.column(name))}), str(f.path), kind
                ).columns[name]
                for name in dict.fromkeys([*numeric, *text])
            }
            return Batch(
                distinct,
                f.path,
                rows_before + 1,
                arrow.num_rows,
                bytes_done,
                self.total_bytes,
                None,
            )
        if raw:
            kind = "parquet" if f.parquet else "csv"
            whole = to_table(arrow, str(f.path), kind, rows_before)
            return Batch(
                whole.columns,
                f.path,
                rows_before + 1,
                arrow.num_rows,
                bytes_done,
                self.total_bytes,
                None,
            )
        plain = _plain_columns(arrow, numeric)
        table: Table | None = None
        values = None
        if plain is None:  # not all plain finite numbers: the checks and messages of select()
            table = to_table(
                _in_file_order(arrow, f),
                str(f.path),
                "parquet" if f.parquet else "csv",
                rows_before,
            )
            values = float_matrix(table, list(numeric))
            plain = list(values.T)
        elif stack:
            values = np.empty((arrow.num_rows, len(numeric)), order="F")  # columns contiguous
            for j, column in enumerate(plain):
                values[:, j] = column
            plain = list(values.T)
        columns: dict[str, npt.NDArray[Any]] = dict(zip(numeric, plain, strict=True))
        if text:
            if table is None:
                table = to_table(arrow, str(f.path), "parquet" if f.parquet else "csv")
            columns.update({n: table.columns[n] for n in text if n not in columns})
        return Batch(
            columns, f.path, rows_before + 1, arrow.num_rows, bytes_done, self.total_bytes, values
        )

    def _csv(
        self,
        f: _File,
        numeric: Sequence[str],
        text: Sequence[str],
        done_before: int,
        stack: bool = True,
        raw: bool | str = False,
    ) -> Iterator[Batch]:
        """The file in chunks of about ``batch_rows`` rows, cut at line ends, each parsed by
        ``pyarrow.csv.read_csv`` with its threads while the previous one is being used (a
        thread reads ahead one chunk). As fast as reading the whole file, in bounded memory;
        unlike a whole-file read, a quoted value may not contain a line break."""
        source = str(f.path)
        wanted = list(dict.fromkeys([*numeric, *text]))
        types = {n: pa.float64() for n in numeric if n not in text}
        types.update({n: pa.string() for n in text})
        read_options = pv.ReadOptions(column_names=list(f.columns), use_threads=True)
        parse_options = pv.ParseOptions(delimiter=f.delimiter)
        convert_options = pv.ConvertOptions(
            include_columns=wanted, column_types=types, strings_can_be_null=True
        )

        def parse(chunk: bytes | memoryview) -> pa.Table:
            return _parse_chunk(chunk, read_options, parse_options, convert_options)

        rows = 0
        counted = 0  # rows parsed so far, counted by the worker (tasks run one at a time, in order)

        def parse_batch(chunk: bytes | memoryview, position: int) -> Batch:
            nonlocal counted
            try:
                arrow = parse(chunk)
            except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
                # Named from this chunk alone: its rows, counted, are data rows counted + 1...
                raise _chunk_error(f, chunk, exc, numeric, text, counted) from None
            before, counted = counted, counted + arrow.num_rows
            return self._batch(f, arrow, numeric, text, before, done_before + position, stack, raw)

        # The file is read in a thread of its own, ahead of the parse.
        chunks = _read_ahead(_line_chunks(f, self._block_size(f)))
        with ThreadPoolExecutor(max_workers=1) as pool:
            try:
                pending: Future[Batch] | None = None
                for chunk, position in chunks:
                    ahead = pool.submit(parse_batch, chunk, position)
                    if pending is not None:
                        batch = pending.result()
                        yield batch
                        rows += batch.n_rows
                    pending = ahead
                if pending is not None:
                    batch = pending.result()
                    yield batch
                    rows += batch.n_rows
            except (OSError, EOFError, zlib.error, pa.ArrowException) as exc:
                what = "gzip data" if f.gzipped else "file"
                raise DataError(
                    f"{source}: cannot read the {what} after row {rows} ({flat(exc)}); it may "
                    "be corrupt or truncated"
                ) from None
            finally:
                chunks.close()
        if rows == 0:
            raise no_data_rows_error(source)

    def _block_size(self, f: _File) -> int:
        """Bytes per CSV block for about ``batch_rows`` rows (from the head's line length)."""
        lines = max(f.head.count(b"\n") - 1, 1)
        per_row = max(len(f.head) / (lines + 1), 8.0)
        return int(min(max(per_row * self.batch_rows, 1 << 12), 1 << 28))

    def head_table(self) -> Table:
        """The first rows (up to 65,536) of the first file, typed as a file read whole is: what
        the default features, and a formula's columns, are chosen from (read once)."""
        if self._head is None:
            self._head = self._head_table()
        return self._head

    def _head_table(self) -> Table:
        """The first rows of the first file, read whole-file style (types inferred)."""
        f = self._files[0]
        source = str(f.path)
        try:
            if f.parquet:
                with (
                    arrow_file(f.path) as fh,
                    pq.ParquetFile(fh, buffer_size=_PAGE_BUFFER, pre_buffer=False) as pf,
                ):
                    # The first _INFER_ROWS rows, across row groups: with a dictionary
                    # column pyarrow's batches end at each row group's end (a file of
                    # one-row groups: one row each).
                    records: list[pa.RecordBatch] = []
                    rows = 0
                    for record in pf.iter_batches(batch_size=_INFER_ROWS):
                        records.append(record.slice(0, _INFER_ROWS - rows))
                        rows += records[-1].num_rows
                        if rows >= _INFER_ROWS:
                            break
                arrow = pa.Table.from_batches(records, schema=pf.schema_arrow) if records else None
            else:
                head = _csv_head(f)

                def parse(handler: Any = None) -> pa.Table:
                    return pv.read_csv(
                        pa.py_buffer(head),
                        # One block: the head may hold a row of any length (a 30 MB cell).
                        read_options=pv.ReadOptions(use_threads=False, block_size=len(head) + 1),
                        parse_options=pv.ParseOptions(
                            delimiter=f.delimiter, invalid_row_handler=handler
                        ),
                        convert_options=pv.ConvertOptions(strings_can_be_null=True),
                    )

                try:
                    arrow = parse()
                except pa.ArrowInvalid as exc:
                    row = first_invalid_row(parse)
                    if row is None or row.number is None:
                        raise
                    # The header is row 1 of the head.
                    message = field_count_message(source, f.delimiter, row.number - 1, row)
                    raise DataError(message) from exc
        except (OSError, EOFError, zlib.error, pa.ArrowException, UnicodeDecodeError) as exc:
            raise corrupt_file_error(source, exc) from None
        if arrow is None or arrow.num_rows == 0:
            raise no_data_rows_error(source)
        if not f.parquet:
            # A CSV file's booleans, dates and times count as text, as in read_table; a type
            # with no text form (a list, a struct) is kept, to be named as not numeric as
            # read_table names it. A Parquet file's columns keep their stored types, as
            # read_table keeps them (a date or binary column is not text there).
            keep = [
                c
                if is_numeric(c.type) or is_text(c.type) or pa.types.is_null(c.type)
                else _as_text(c)
                for c in arrow.columns
            ]
            arrow = pa.Table.from_arrays(keep, names=arrow.column_names)
        return to_table(arrow, source, "parquet" if f.parquet else "csv")


def _distinct(column: pa.ChunkedArray) -> pa.Array:
    """The column's distinct values (a missing one included), in no particular order; a
    dictionary column's as its value type (each chunk's own dictionary decoded)."""
    if pa.types.is_dictionary(column.type):
        value_type = column.type.value_type
        column = pa.chunked_array(
            [pc.cast(pc.unique(chunk), value_type) for chunk in column.chunks], type=value_type
        )
    return pc.unique(column)


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column as text where pyarrow can write it so, else unchanged."""
    try:
        return column.cast(pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return column


def _parse_chunk(
    chunk: bytes | memoryview,
    read_options: pv.ReadOptions,
    parse_options: pv.ParseOptions,
    convert_options: pv.ConvertOptions,
) -> pa.Table:
    """A chunk of whole CSV lines (no header) parsed by pyarrow with its threads; a chunk
    holding a row longer than pyarrow's block (a 30 MB cell) again as one block."""
    try:
        return pv.read_csv(
            pa.py_buffer(chunk),
            read_options=read_options,
            parse_options=parse_options,
            convert_options=convert_options,
        )
    except pa.ArrowInvalid as exc:
        if "straddling" not in str(exc):
            raise
    one_block = pv.ReadOptions(
        column_names=read_options.column_names, use_threads=False, block_size=len(chunk) + 1
    )
    return pv.read_csv(
        pa.py_buffer(chunk),
        read_options=one_block,
        parse_options=parse_options,
        convert_options=convert_options,
    )


def _chunk_error(
    f: _File,
    chunk: bytes | memoryview,
    exc: BaseException,
    numeric: Sequence[str],
    text: Sequence[str],
    before: int,
) -> DataError:
    """The message for a chunk (data rows ``before + 1`` on) that pyarrow could not parse or
    convert, found in that chunk alone (bounded memory, no second pass over the file), in the
    words of the whole-file reader: the row with the wrong number of fields, or the first bad
    cell as :func:`gradfit.data.select` names it."""
    source = str(f.path)
    message = flat(exc)
    try:
        bytes(chunk).decode("utf-8")
    except UnicodeDecodeError:
        # pyarrow cannot hand such a row to a handler; the line is that of the chunk's start.
        return not_text_error(source, "undecodable bytes", None)
    wanted = list(dict.fromkeys([*numeric, *text]))

    def parse(**options: Any) -> pa.Table:
        return _parse_chunk(
            chunk,
            pv.ReadOptions(column_names=list(f.columns), use_threads=False),
            pv.ParseOptions(delimiter=f.delimiter, **options),
            pv.ConvertOptions(
                include_columns=wanted,
                column_types={n: pa.string() for n in wanted},
                strings_can_be_null=True,
            ),
        )

    if "Expected" in message and "columns, got" in message:
        row = first_invalid_row(lambda handler: parse(invalid_row_handler=handler))
        if row is not None and row.number is not None:  # the chunk holds no header
            return DataError(field_count_message(source, f.delimiter, before + row.number, row))
        return DataError(
            f"{source}: a row after data row {before} has the wrong number of fields "
            f"({message}); fix that row"
        )
    if "CSV conversion error" in message:
        try:
            float_matrix(to_table(_in_file_order(parse(), f), source, "csv", before), list(numeric))
        except DataError as found:
            return found
        except pa.ArrowException:
            pass
        return DataError(
            f"{source}: a value after data row {before} is not a number ({message}); fix it"
        )
    return DataError(f"{source}: cannot parse the file as CSV after data row {before} ({message})")


def _in_file_order(arrow: pa.Table, f: _File) -> pa.Table:
    """The batch's columns in the file's order (as read, they come in the order asked for), so
    that :func:`gradfit.data.tables.float_matrix` names, of a row with two bad cells, the one
    first in the file, as for the file read whole."""
    read = set(arrow.column_names)
    order = [name for name in f.columns if name in read]
    return arrow if order == arrow.column_names else arrow.select(order)


def _csv_head(f: _File) -> bytes:
    """The first whole lines of a CSV file (header included), about :data:`_HEAD_TEXT` bytes
    of (decompressed) text: the rows the column types are inferred from. A bounded read:
    pyarrow's streaming reader read ahead far more (measured: 0.4 s and 136 MiB)."""
    with _text(f) as (_, fh):
        text: bytes = fh.read(_HEAD_TEXT)
        while text.count(b"\n") < 2:  # the header and a first row, however long
            if len(text) > _MAX_ROW:
                raise DataError(long_row_message(str(f.path), _MAX_ROW, 2))
            more = fh.read(_HEAD_TEXT)
            if not more:
                break
            text += more
        if fh.read(1):  # more follows: keep whole lines only
            text = text[: text.rfind(b"\n") + 1]
    return text


@contextlib.contextmanager
def _text(f: _File) -> Iterator[tuple[IO[bytes], Any]]:
    """A CSV file open for reading: (the file on disk, its decompressed text), both closed at
    the end."""
    with f.path.open("rb") as raw:
        if not f.gzipped:
            yield raw, raw
            return
        with gzip.GzipFile(fileobj=raw, mode="rb") as fh:
            yield raw, fh


def _line_chunks(f: _File, size: int) -> Generator[tuple[bytes | memoryview, int], None, None]:
    """The (decompressed) data lines of a CSV file after its header, in chunks of about
    ``size`` bytes cut after a line end, each with the position reached in the file on disk."""
    with _text(f) as (raw, fh):
        header = fh.readline()
        if header.startswith(b"\xef\xbb\xbf"):
            header = header[3:]
        rest = b""
        line = 2  # of the file, at the start of the next chunk
        while True:
            if len(rest) > _MAX_ROW:  # no line end in 256 MiB: not rows of a CSV file
                raise DataError(long_row_message(str(f.path), _MAX_ROW, line))
            # A fresh buffer per chunk (pyarrow may still be parsing the previous one); the
            # carried partial line goes first, the block is read in after it.
            data = bytearray(len(rest) + size)
            data[: len(rest)] = rest
            got = fh.readinto(memoryview(data)[len(rest) :])
            if not got:
                break
            end = len(rest) + got
            cut = data.rfind(b"\n", 0, end) + 1
            if cut == 0:  # a line longer than the block: read on
                rest = bytes(data[:end])
                continue
            rest = bytes(data[cut:end])
            line += data.count(b"\n", 0, cut)
            yield memoryview(data)[:cut], raw.tell()
        if rest.strip():
            yield rest + b"\n", raw.tell()


def _plain_columns(arrow: pa.Table, numeric: Sequence[str]) -> list[npt.NDArray[np.float64]] | None:
    """The numeric columns as float64 arrays when they are all numbers with no missing or
    non-finite value (the common case, without the per-cell checks; a float64 column in one
    piece is pyarrow's buffer itself, not a copy); None otherwise, for
    :func:`gradfit.data.tables.float_matrix` to name the problem."""
    out: list[npt.NDArray[np.float64]] = []
    for name in numeric:
        column = arrow.column(name)
        if column.null_count or not (
            pa.types.is_floating(column.type) or pa.types.is_integer(column.type)
        ):
            return None
        values = numbers_to_numpy(column, pa.float64(), safe=False)  # no pandas (issue 23)
        if not np.isfinite(values).all():
            return None
        out.append(values)
    return out


def _inspect(path: Path) -> _File:
    """A file's format and columns, from its first bytes (CSV) or its footer (Parquet)."""
    source = str(path)
    head = open_head(path, source)
    info = path.stat()
    size, mtime = info.st_size, info.st_mtime
    if is_parquet(path, head):
        try:
            with arrow_file(path) as fh:
                meta = pq.read_metadata(fh)
        except (OSError, pa.ArrowException) as exc:
            raise unreadable_parquet_error(source, exc) from None
        groups = tuple(meta.row_group(i).num_rows for i in range(meta.num_row_groups))
        sizes = tuple(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        names = tuple(meta.schema.to_arrow_schema().names)
        check_column_names(source, names)
        return _File(path, True, False, ",", b"", names, size, groups, sizes, mtime)
    layout = sniff_csv(path, source, head)
    if carriage_returns_only(layout.text):
        raise DataError(
            f"{source}: its lines end in a carriage return alone (classic Mac OS text), and a "
            "file is read in batches cut at line feeds; convert the line ends (e.g. tr '\\r' "
            "'\\n' < old.csv > new.csv), or read the file whole (--no-stream)"
        )
    return _File(
        path, False, layout.gzipped, layout.delimiter, layout.text, layout.names, size, (),
        mtime=mtime,
    )  # fmt: skip


def _check_unchanged(f: _File) -> None:
    """Refuse to read ``f`` again if it changed since it was inspected (its size or its
    modification time): a fit reads its files once per pass (the statistics, then every
    epoch), and a file rewritten in between with as many rows would mix two data sets in one
    model, silently. A file that is gone is left to the read to report."""
    try:
        info = f.path.stat()
    except (OSError, GradfitError):
        return
    if info.st_size != f.size or (f.mtime is not None and info.st_mtime != f.mtime):
        raise DataError(
            f"{f.path}: changed while it was being read (its size or modification time differs "
            "from when reading began); rerun once the data no longer change"
        )


def _is_member(path: Path) -> bool:
    """Whether a directory entry or glob match is read as a data file: anything but a directory
    (:func:`gradfit.data.formats.check_regular_file` then refuses what is not a regular file)."""
    return path.exists() and not path.is_dir()


def expand_source(source: str | Path | Sequence[str | Path]) -> tuple[list[Path], str]:
    if isinstance(source, (str, Path)):
        text = str(source)
        path = as_path(source)
        if isinstance(path, RemotePath) and any(c in text for c in "*?[") and not path.exists():
            matches: list[Path] = sorted(storage.glob(text))
            if not matches:
                raise DataError(f"{text}: no object matches this pattern; check the path")
            return matches, text
        if path.is_dir():
            # A member that is not a regular file (a named pipe called part.csv) is kept, to be
            # refused by name when it is inspected, not skipped in silence. A store lists its
            # objects only (no pipes, no sub-prefixes): no check per member.
            members: list[Path] = (
                list(storage.list_directory(path))
                if isinstance(path, RemotePath)
                else [p for p in path.iterdir() if _is_member(p)]
            )
            files: list[Path] = sorted(
                p for p in members if p.name.lower().endswith(_DATA_SUFFIXES)
            )
            if not files:
                raise DataError(
                    f"{text}: is a directory without data files (.csv, .tsv, .csv.gz, .tsv.gz, "
                    ".parquet, .pq); give a data file or a directory of them"
                )
            return files, text
        if not path.exists() and any(c in text for c in "*?["):
            files = sorted(Path(p) for p in globbing.glob(text) if _is_member(Path(p)))
            if not files:
                raise DataError(f"{text}: no file matches this pattern; check the path")
            return files, text
        return [path], text
    files = [as_path(p) for p in source]
    if not files:
        raise DataError("no data files given")
    return files, ", ".join(map(str, files)) if len(files) <= 3 else f"{files[0]} and others"


def open_stream(
    source: str | Path | Sequence[str | Path], *, batch_rows: int = DEFAULT_BATCH_ROWS
) -> BatchStream:
    """Open a file, a list of files, a directory or a glob for reading in batches of about
    ``batch_rows`` rows (see the module doc). The schema of every file is checked here.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.csv").write_text("x,y\\n1,2\\n3,4\\n")
    >>> _ = (d / "b.csv").write_text("x,y\\n5,6\\n")
    >>> s = open_stream(d, batch_rows=1)
    >>> s.columns, [(b.file.name, b.file_row, b.columns["y"].tolist()) for b in s.batches(["y"])]
    (('x', 'y'), [('a.csv', 1, [2.0, 4.0]), ('b.csv', 1, [6.0])])
    """
    files, shown = expand_source(source)
    return BatchStream(files, shown, batch_rows)
