"""Reading a data file whole: :func:`read_table` and :func:`column_names`.

The file's type is told and the file opened by :mod:`gradfit.data.formats` (CSV, TSV, their
gzip forms, Parquet; regular files only); the columns become a :class:`Table`
(:mod:`gradfit.data.tables`). Files are parsed by pyarrow (multi-threaded, no Python loop over
rows). Files larger than memory are read in batches by :mod:`gradfit.data.stream`; tables are
written by :mod:`gradfit.data.writers`.

This module also re-exports, for its importers, the names that used to live here: the table
and its selection (:mod:`gradfit.data.tables`), the writers, and the file checks and messages
(:mod:`gradfit.data.formats`).
"""

from __future__ import annotations

import contextlib
import csv
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq

from gradfit.data.formats import (
    arrow_file,
    check_column_names,
    check_regular_file,
    corrupt_file_error,
    field_count_message,
    first_invalid_row,
    first_undecodable_line,
    flat,
    is_parquet,
    long_row_message,
    no_data_rows_error,
    not_text_error,
    open_head,
    sniff_csv,
    unreadable_parquet_error,
)
from gradfit.data.tables import (
    Table,
    feature_matrix,
    is_numeric,
    is_text,
    left_out_columns,
    name_list,
    plain_integers_as_int64,
    select,
    to_table,
)
from gradfit.data.writers import table_to_csv_text, write_table, write_table_batches
from gradfit.errors import DataError
from gradfit.storage import as_path

__all__ = [
    "Table",
    "arrow_file",
    "check_column_names",
    "check_regular_file",
    "column_names",
    "feature_matrix",
    "field_count_message",
    "first_invalid_row",
    "left_out_columns",
    "long_row_message",
    "read_table",
    "select",
    "table_to_csv_text",
    "write_table",
    "write_table_batches",
]

_BLOCK = 1 << 20  # bytes pyarrow parses as one block (its default)
_MAX_BLOCK = 1 << 28  # the longest row (or cell) read: 256 MiB

# ---------------------------------------------------------------------------------------------
# reading


def read_table(path: str | Path, *, text_columns: Sequence[str] = ()) -> Table:
    """Read a CSV, TSV (optionally gzip-compressed) or Parquet file.

    Parameters
    ----------
    path : str or Path
        The file; its extension chooses the format (``.csv``, ``.tsv``, ``.csv.gz``,
        ``.tsv.gz``, ``.parquet``, ``.pq``).
    text_columns : sequence of str, optional
        CSV only: columns to keep exactly as written (``00123``, ``1.50``), e.g. identifiers to
        copy through. Such a column whose every cell is an integer written in its plain form
        (no leading zero or sign) is kept as int64. Parquet columns always keep their stored
        types; names not in the file are ignored.

    Returns
    -------
    Table
        Columns in file order, integer ones as int64 and other numeric ones as float64 arrays
        of shape (n,).

    Raises
    ------
    DataError
        Missing, empty, unreadable or corrupt file; a file that is not UTF-8 text (binary data,
        another encoding); a header without data rows; a row with the wrong number of fields.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "d.csv"
    >>> _ = f.write_text("id;temp;yield\\nr1;73;56\\nr2;91;81\\n")
    >>> t = read_table(f)
    >>> t.n_rows, t.numeric_columns, t.columns["yield"]
    (2, ('temp', 'yield'), array([56, 81]))
    """
    source = str(path)
    file = as_path(path)
    head = open_head(file, source)
    if is_parquet(file, head):
        arrow = _read_parquet(file, source)
        check_column_names(source, arrow.column_names)
        file_format = "parquet"
    else:
        # The header first: a nameless column is refused before the rows are parsed.
        layout = sniff_csv(file, source, head)
        as_text = name_list(text_columns, "text")
        arrow = _read_csv(file, source, layout.gzipped, layout.text, layout.delimiter, as_text)
        arrow = plain_integers_as_int64(arrow, as_text)
        file_format = "csv"
    if arrow.num_columns == 0:
        raise DataError(f"{source}: the file has no columns; check that it is a data table")
    if arrow.num_rows == 0:
        raise no_data_rows_error(source)
    return to_table(arrow, source, file_format)


def column_names(path: str | Path) -> tuple[str, ...]:
    """The column names of a data file, in file order, from its header line (CSV; a header
    line of any length up to 64 MiB) or its footer (Parquet), without reading its rows; with
    the checks of :func:`read_table` (a regular file, text, every column named).

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "d.csv"
    >>> _ = f.write_text("id;temp;yield\\nr1;73;56\\n")
    >>> column_names(f)
    ('id', 'temp', 'yield')
    """
    source = str(path)
    file = as_path(path)
    head = open_head(file, source)
    if is_parquet(file, head):
        try:
            with arrow_file(file) as fh:
                names = tuple(pq.read_schema(fh).names)
        except (OSError, pa.ArrowException) as exc:
            raise unreadable_parquet_error(source, exc) from None
        check_column_names(source, names)
        return names
    return sniff_csv(file, source, head).names


def _read_csv(
    file: Path,
    source: str,
    gzipped: bool,
    head: bytes,
    delimiter: str,
    text_columns: Sequence[str] = (),
) -> pa.Table:
    """Parse with pyarrow; ``head`` is the start of the (decompressed) text, for messages;
    ``text_columns`` are read as strings, exactly as written."""
    compression = "gzip" if gzipped else None
    as_text = {name: pa.string() for name in text_columns}

    block = _BLOCK

    def read(
        column_types: Mapping[str, Any] | None = None,
        handler: Callable[[Any], str] | None = None,
    ) -> pa.Table:
        nonlocal block
        while True:
            try:
                with (
                    arrow_file(file) as raw,
                    pa.input_stream(raw, compression=compression) as stream,
                ):
                    return pv.read_csv(
                        stream,
                        read_options=pv.ReadOptions(use_threads=handler is None, block_size=block),
                        parse_options=pv.ParseOptions(
                            delimiter=delimiter, invalid_row_handler=handler
                        ),
                        convert_options=pv.ConvertOptions(
                            strings_can_be_null=True,
                            column_types={**as_text, **(column_types or {})},
                        ),
                    )
            except pa.ArrowInvalid as exc:
                # A row longer than a block: read again with blocks 8 times larger.
                if "straddling" not in str(exc):
                    raise
                if block >= _MAX_BLOCK:
                    raise DataError(long_row_message(source, _MAX_BLOCK, None)) from None
                block = min(block * 8, _MAX_BLOCK)

    try:
        table = read()
        # Booleans, dates and times are kept as the text written in the file (pyarrow would
        # turn "TRUE" into "true" and "2020-01-02T10:00" into "2020-01-02 10:00:00").
        retype = {
            f.name: pa.string()
            for f in table.schema
            if not (is_numeric(f.type) or is_text(f.type) or pa.types.is_null(f.type))
        }
        return read(retype) if retype else table
    except UnicodeDecodeError:  # pyarrow decoding the column names, beyond the checked head
        raise not_text_error(
            source, "undecodable bytes", first_undecodable_line(file, gzipped)
        ) from None
    except pa.ArrowInvalid as exc:
        message = flat(exc)
        if "Expected" in message and "columns, got" in message:
            # Past the checked head, undecodable bytes split rows anywhere; and pyarrow cannot
            # hand such a row to the handler below (it reports a UnicodeDecodeError unraisable).
            line = first_undecodable_line(file, gzipped)
            if line is not None:
                raise not_text_error(source, "undecodable bytes", line) from None
            raise DataError(_field_count_message(source, delimiter, read, message)) from None
        if "invalid UTF8" in message:
            raise not_text_error(
                source,
                "undecodable bytes",
                first_undecodable_line(file, gzipped),
                f"in {_column_from_message(message, head, delimiter)}",
            ) from None
        if "Empty CSV" in message:  # a header line without a line end, and nothing else
            raise no_data_rows_error(source) from None
        raise DataError(f"{source}: cannot parse the file as CSV ({message})") from None
    except (OSError, pa.ArrowException) as exc:
        raise corrupt_file_error(source, exc) from None


def _field_count_message(
    source: str, delimiter: str, read: Callable[..., pa.Table], message: str
) -> str:
    """Re-read single-threaded to learn which row has the wrong number of fields."""
    row = first_invalid_row(lambda handler: read(handler=handler))
    if row is None or row.number is None:
        return f"{source}: a row has the wrong number of fields ({message}); fix that row"
    return field_count_message(source, delimiter, row.number - 1, row)  # the header is row 1


def _column_from_message(message: str, head: bytes, delimiter: str) -> str:
    """'column 'name'' for pyarrow's "In CSV column #3: ..." (the name taken from the header)."""
    match = re.search(r"column #(\d+)", message)
    if match is None:
        return "a column"
    index = int(match.group(1))
    with contextlib.suppress(UnicodeDecodeError, csv.Error):
        first = head.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].decode("utf-8")
        names = next(csv.reader([first.rstrip("\r")], delimiter=delimiter), [])
        if index < len(names):
            return f"column {names[index]!r}"
    return f"column {index + 1}"


def _read_parquet(file: Path, source: str) -> pa.Table:
    try:
        with arrow_file(file) as fh:
            # ParquetFile, not pq.read_table: the same table as fast, without pyarrow.dataset,
            # which imports pandas (0.36 s measured; issue 23).
            return pq.ParquetFile(fh).read()
    except (OSError, pa.ArrowException, UnicodeDecodeError) as exc:
        raise unreadable_parquet_error(source, exc) from None
