"""A data source read batch by batch, as predict, evaluate and diagnose read it.

A file (or a built-in data set, or a table in memory) read whole is a source of one batch
(:class:`_Whole`), files streamed a source of many (:class:`_Streamed`); which of the two,
:func:`gradfit.streaming.use_streaming` decides (:func:`_open`). Either gives each batch's
numeric columns as a float64 matrix and its text columns as kept (:class:`_Batch`), with the
same checks and messages: only how the numbers are read differs, from a
:class:`gradfit.data.Table` read whole (:func:`gradfit.data.feature_matrix`) or from a
:class:`gradfit.data.BatchStream`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

import gradfit.data
from gradfit.data import BatchStream, Table, open_stream
from gradfit.data.memory import TableInMemory
from gradfit.data.tables import float_matrix
from gradfit.sources import read_source, source_kind
from gradfit.storage import as_path
from gradfit.stream_data import Progress
from gradfit.stream_decision import use_streaming

__all__ = ["Source"]

# A file, a directory or glob of files, a built-in data set's name, or a table in memory (a
# pandas DataFrame, a pyarrow Table or RecordBatch, or a mapping of column name to 1-D array).
Source = str | Path | TableInMemory


class _Batch(NamedTuple):
    """One batch as read: the numeric columns asked for as a float64 (m, len(numeric)) matrix,
    and a :class:`gradfit.data.Table` holding the text columns asked for, whose ``source`` and
    ``row_offset`` name the batch's file and rows in messages."""

    X: npt.NDArray[np.float64]
    table: Table


class _Batches(Protocol):
    """A source as predict and evaluate read it: its name (the prefix of every message), its
    columns, and its rows batch by batch."""

    name: str
    columns: tuple[str, ...]

    def read(self, numeric: Sequence[str], text: Sequence[str]) -> Iterator[_Batch]:
        """Batch by batch: the ``numeric`` columns as a finite float64 (m, len(numeric))
        matrix (a bad cell is a DataError naming file, row and column), and the ``text``
        columns as :func:`gradfit.data.read_table` keeps them. A name may be in both."""
        ...


class _Whole:
    """A file (or built-in data set, or table in memory) read whole: a source of one batch."""

    def __init__(self, source: Source, text: Sequence[str], progress: Progress | None) -> None:
        self.table: Table = read_source(source, text_columns=list(dict.fromkeys(text)))
        self.name = self.table.source
        self.columns = tuple(self.table.columns)
        self.progress = progress
        path = as_path(source) if source_kind(source) == "file" else None
        self.size = path.stat().st_size if path is not None and path.is_file() else 0

    def read(self, numeric: Sequence[str], text: Sequence[str]) -> Iterator[_Batch]:
        X = gradfit.data.feature_matrix(self.table, numeric)
        if self.progress is not None:
            self.progress(self.size, self.size, self.table.n_rows)
        yield _Batch(X, self.table)


class _Streamed:
    """Files read in batches of about ``batch_rows`` rows (:func:`gradfit.data.open_stream`)."""

    def __init__(
        self,
        source: str | Path | Sequence[str | Path],
        batch_rows: int,
        progress: Progress | None,
    ) -> None:
        self.stream: BatchStream = open_stream(source, batch_rows=batch_rows)
        self.name = self.stream.source
        self.columns = self.stream.columns
        self.progress = progress

    def read(self, numeric: Sequence[str], text: Sequence[str]) -> Iterator[_Batch]:
        # A column wanted both as a number and as text is read as text (kept exactly), then
        # converted here with the reader's checks.
        text = list(dict.fromkeys(text))
        numbers = [name for name in numeric if name not in text]
        rows = 0
        for batch in self.stream.batches(numbers, text=text):
            if not numeric:
                X = np.empty((batch.n_rows, 0))
            elif batch.matrix is not None and len(numbers) == len(numeric):
                # The stacked numeric columns, in the order asked, laid out by rows as a
                # matrix read whole is: the same products, to the bit.
                X = np.ascontiguousarray(batch.matrix)
            else:
                X = np.column_stack([_as_float(batch.columns[n], n, batch) for n in numeric])
            rows += batch.n_rows
            if self.progress is not None:
                self.progress(batch.bytes_done, batch.total_bytes, rows)
            kept = Table(
                {name: batch.columns[name] for name in text},
                source=str(batch.file),
                row_offset=batch.file_row - 1,
            )
            yield _Batch(X, kept)


def _as_float(values: npt.NDArray[Any], name: str, batch: Any) -> npt.NDArray[np.float64]:
    """A feature that is also a kept column arrives as read (text, int64): as float64."""
    if values.dtype == np.float64:
        return values
    table = Table({name: values}, source=str(batch.file), row_offset=batch.file_row - 1)
    stacked: npt.NDArray[np.float64] = float_matrix(table, [name])[:, 0]
    return stacked


def _open(
    source: Source,
    *,
    stream: bool | None,
    memory_limit: int | None,
    batch_rows: int,
    progress: Progress | None,
    text: Sequence[str] = (),
) -> _Batches:
    """``source`` read whole (with the columns ``text`` kept as written) or streamed, as
    :func:`gradfit.streaming.use_streaming` decides."""
    if use_streaming(source, memory_limit=memory_limit, stream=stream):
        return _Streamed(str(source), batch_rows, progress)
    return _Whole(source, text, progress)


def _check_features(source: _Batches, names: Sequence[str]) -> None:
    """The message of :func:`gradfit.data.feature_matrix` for a column the source lacks."""
    header = Table({name: np.zeros(0) for name in source.columns}, source=source.name)
    gradfit.data.feature_matrix(header, names)


def _number_column(batch: _Batch, name: str) -> npt.NDArray[np.float64]:
    """A column of ``batch`` read as kept (text from a CSV file) as finite float64, with the
    reader's checks and messages (file, column, row)."""
    one = replace(batch.table, columns={name: batch.table.columns[name]})
    return float_matrix(one, [name])[:, 0]
