"""Writing tables: columns to a CSV, TSV (optionally gzip-compressed) or Parquet file,
atomically (a whole file or none), or to CSV text.

Numbers are written in their shortest exact form; text values are quoted only when one needs
it. Every problem is a :class:`~gradfit.errors.DataError` naming the file.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.parquet as pq

from gradfit.atomic import atomic_write
from gradfit.data.ahead import read_ahead
from gradfit.data.formats import CSV_SUFFIXES, PARQUET_SUFFIXES, flat
from gradfit.data.tables import is_text, pandas_free, text_array
from gradfit.errors import DataError, GradfitError, ValidationError

__all__ = ["table_to_csv_text", "write_table", "write_table_batches"]


class _Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


def write_table(path: str | Path, columns: Mapping[str, npt.ArrayLike]) -> None:
    """Write columns to a ``.csv``, ``.tsv`` (optionally ``.gz``) or ``.parquet`` file, atomically.

    Parameters
    ----------
    path : str or Path
        The output file; its directory must exist.
    columns : mapping of str to (n,) array-like
        Written in the mapping's order; numbers are written in their shortest exact form.

    Raises
    ------
    DataError
        Unsupported extension, missing directory, or a write failure (no partial file is left).
    """
    write_table_batches(path, [columns])


def write_table_batches(path: str | Path, batches: Iterable[Mapping[str, npt.ArrayLike]]) -> int:
    """Write batches of columns (the same names in each) to one file, as :func:`write_table`
    does, one batch in memory at a time; atomically: the file appears, whole, only once the
    last batch is written, and a failure (in writing, or raised by ``batches`` itself) leaves
    no file behind. Returns the number of rows written."""
    source = str(path)
    name = Path(path).name.lower()
    parquet = name.endswith(PARQUET_SUFFIXES)
    delimiter = next((d for suffix, d in CSV_SUFFIXES.items() if name.endswith(suffix)), None)
    if not parquet and delimiter is None:
        raise DataError(
            f"{source}: unsupported output file type; use .csv, .tsv, .csv.gz, .tsv.gz, "
            ".parquet or .pq"
        )
    rows = 0

    def write(fh: IO[bytes]) -> None:
        nonlocal rows
        schema: pa.Schema | None = None
        writer: pq.ParquetWriter | None = None
        with contextlib.ExitStack() as stack:
            out: Any = fh
            if not parquet and name.endswith(".gz"):
                out = stack.enter_context(gzip.GzipFile(fileobj=fh, mode="wb"))
            # The next batch is made (read, predicted, ...) in a thread while this one is
            # written: formatting numbers as text is as slow as parsing them.
            for columns in read_ahead(iter(batches)):
                arrow = _to_arrow(columns)
                if schema is None:
                    schema = arrow.schema
                elif arrow.schema != schema:
                    arrow = arrow.cast(schema)
                if parquet:
                    if writer is None:
                        writer = stack.enter_context(
                            pq.ParquetWriter(fh, schema, use_dictionary=_dictionary(schema))
                        )
                    writer.write_table(arrow)
                else:
                    _write_csv(arrow, out, delimiter or ",", header=rows == 0)
                rows += arrow.num_rows

    try:
        atomic_write(path, write)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        if isinstance(exc, GradfitError):
            raise
        raise DataError(f"{source}: cannot write these columns ({flat(exc)})") from None
    return rows


def table_to_csv_text(
    columns: Mapping[str, npt.ArrayLike], delimiter: str = ",", *, header: bool = True
) -> str:
    """The columns as CSV text (header line first, unless ``header=False``: the rows of a
    batch after the first), e.g. to write to standard output.

    >>> print(table_to_csv_text({"id": np.array(["r1", "r,2"], dtype=object), "y": [0.5, 2.0]}))
    id,y
    "r1",0.5
    "r,2",2
    <BLANKLINE>
    """
    buffer = io.BytesIO()
    try:
        _write_csv(_to_arrow(columns), buffer, delimiter, header=header)
    except pa.ArrowException as exc:
        raise DataError(f"cannot write these columns as CSV ({flat(exc)})") from None
    return buffer.getvalue().decode("utf-8")


def _dictionary(schema: pa.Schema) -> list[str]:
    """The columns worth Parquet's dictionary encoding: all but the floating-point ones. A
    column of measured or computed floats has nearly as many values as rows: a row group of
    65,536 of them stays under the dictionary page limit (1 MB), so the writer hashes every
    value into a dictionary that saves nothing (measured: a 1,000,000 x 16 float64 output in
    row groups of 65,536 is written 7x faster, and 20% smaller, without it)."""
    return [f.name for f in schema if not pa.types.is_floating(f.type)]


def _to_arrow(columns: Mapping[str, npt.ArrayLike]) -> pa.Table:
    if not columns:
        raise ValidationError("columns must hold at least one column")
    arrays: dict[str, Any] = {}
    for name, values in columns.items():
        array = np.asarray(values)
        if array.ndim != 1:
            raise ValidationError(f"column {name!r} must be 1-D, got shape {array.shape}")
        if isinstance(values, np.ma.MaskedArray):  # a masked cell is a null (an empty cell)
            mask = np.ma.getmaskarray(values)
            numeric = array.dtype.kind in "iuf"
            arrays[name] = _numeric_array(array, ~mask) if numeric else pa.array(array, mask=mask)
            continue
        if array.dtype.kind in "iuf":
            arrays[name] = _numeric_array(array)
            continue
        text = text_array(array) if array.dtype.kind in "OU" and pandas_free(len(array)) else None
        if text is not None:
            arrays[name] = text
            continue
        try:
            arrays[name] = pa.array(array, from_pandas=array.dtype == object)
        except (pa.ArrowException, TypeError, ValueError):
            # A column of mixed Python objects: write each value's text.
            arrays[name] = pa.array(
                [None if value is None else str(value) for value in array], type=pa.string()
            )
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValidationError(f"columns must have the same length, got {lengths}")
    return pa.table(arrays)


def _numeric_array(array: npt.NDArray[Any], valid: npt.NDArray[np.bool_] | None = None) -> pa.Array:
    """A column of integers or floats as an Arrow array over its buffer (no copy when it is
    contiguous), NaN kept as a value, as ``pa.array`` gives it, and a null where ``valid`` is
    False (a masked cell): ``pa.array`` imports pandas when it is installed (pyarrow's pandas
    shim, on any call: 0.2-0.4 s measured), which a command that writes predictions does not
    otherwise need (issue 23)."""
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    array = np.ascontiguousarray(array)
    kind = pa.from_numpy_dtype(array.dtype)
    bitmap = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(kind, len(array), [bitmap, pa.py_buffer(array)])


def _write_csv(arrow: pa.Table, fh: _Writable, delimiter: str, *, header: bool = True) -> None:
    """CSV with a minimally quoted header; text values are quoted only when one needs it.
    A column of lists, structs or maps has no CSV form: refused naming it."""
    for name, column in zip(arrow.column_names, arrow.columns, strict=True):
        if pa.types.is_nested(column.type):
            raise DataError(
                f"column {name!r} holds {column.type}, which CSV cannot hold; leave it out of "
                "the columns written, or write Parquet (a .parquet file name)"
            )
    if header:
        names = delimiter.join(_quote_field(name, delimiter) for name in arrow.column_names)
        fh.write((names + "\n").encode("utf-8"))
    structural = f'["\\r\\n{re.escape(delimiter)}]'
    needs_quotes = any(
        pc.any(pc.match_substring_regex(column, pattern=structural)).as_py()
        for column in arrow.columns
        if is_text(column.type)
    )
    options = pv.WriteOptions(
        include_header=False,
        delimiter=delimiter,
        quoting_style="needed" if needs_quotes else "none",
    )
    pv.write_csv(arrow, fh, write_options=options)


def _quote_field(text: str, delimiter: str) -> str:
    if any(char in text for char in (delimiter, '"', "\n", "\r")) or text != text.strip():
        return '"' + text.replace('"', '""') + '"'
    return text
