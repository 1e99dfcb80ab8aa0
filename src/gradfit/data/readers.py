"""Reading and writing tables: the only code in gradfit that opens data files.

Formats, chosen by extension and confirmed by the file's first bytes:

* ``.csv``, ``.tsv`` and their gzip forms ``.csv.gz``, ``.tsv.gz`` (a gzip file is recognised
  by its magic bytes whatever its name). The delimiter is sniffed from the header line among
  ``,``, ``;``, tab and ``|``: the extension's own delimiter wins when the header contains it.
  A UTF-8 byte-order mark is ignored.
* ``.parquet``, ``.pq``.

Files are parsed by pyarrow (multi-threaded, no Python loop over rows). Integer columns without
missing cells become int64 arrays (uint64 for unsigned 64-bit Parquet columns), so that an
identifier such as 9007199254740993 is kept exactly; other numeric columns become float64 arrays;
every other column is kept as a numpy object array (the text as written in a CSV file) so that
identifier columns can be copied through to a predictions file. Features and targets are always
converted to float64 by :func:`select` and :func:`feature_matrix`.

Rows in messages are data rows counted from 1 below the header (blank lines are not counted), so
``row 7`` is line 8 of a CSV file without blank lines. Every problem is a
:class:`~gradfit.errors.DataError` with a one-line message that names the file, the column and the
row, and says what to do.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import difflib
import gzip
import io
import os
import re
import stat
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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
from gradfit.errors import DataError, GradfitError, ValidationError
from gradfit.file_kinds import kind_of

__all__ = [
    "Table",
    "check_column_names",
    "column_names",
    "feature_matrix",
    "left_out_columns",
    "read_table",
    "select",
    "table_to_csv_text",
    "write_table",
    "write_table_batches",
]

_CSV_SUFFIXES = {".csv": ",", ".csv.gz": ",", ".tsv": "\t", ".tsv.gz": "\t"}
_PARQUET_SUFFIXES = (".parquet", ".pq")
_SNIFF_DELIMITERS = (",", ";", "\t", "|")
_HEAD_BYTES = 1 << 16
_BLOCK = 1 << 20  # bytes pyarrow parses as one block (its default)
_MAX_BLOCK = 1 << 28  # the longest row (or cell) read: 256 MiB
_MAX_HEADER = 64 << 20  # the longest header line read (bytes): 100,000 columns take about 1 MB
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_NOT_TEXT_HINT = "is it a CSV? Save it as UTF-8 text, or use Parquet"
_FOREIGN_MAGIC = (
    (b"PK\x03\x04", "a ZIP archive or an Excel workbook; export the sheet as CSV or unzip it"),
    (b"BZh", "bzip2-compressed; decompress it or compress it with gzip instead"),
    (b"\xfd7zXZ\x00", "xz-compressed; decompress it or compress it with gzip instead"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed; decompress it or compress it with gzip instead"),
    (b"\xd0\xcf\x11\xe0", "an old-style Excel (.xls) workbook; export the sheet as CSV"),
)
# What pyarrow's float parser accepts, as a regular expression (RE2 syntax, case-insensitive).
_NUMBER_RE = r"(?i)^\s*[+-]?(?:\d+\.?\d*(?:e[+-]?\d+)?|\.\d+(?:e[+-]?\d+)?|inf|infinity|nan)\s*$"
_DECIMAL_COMMA_RE = re.compile(r"^\s*[+-]?\d+,\d+\s*$")
_MAX_LISTED = 20

FloatArray = npt.NDArray[np.float64]


class _Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


@dataclass(frozen=True)
class Table:
    """Columns read from one file, in file order.

    Attributes
    ----------
    columns : dict of str to (n,) array
        Integer columns without missing cells as int64 (uint64 for an unsigned 64-bit Parquet
        column), other numeric columns as float64 (missing cells are NaN); all others as object
        arrays (text as written, ``None`` for an empty cell).
    source : str
        The path as given, used to prefix every message.
    types : dict of str to str
        Each column's type in the file as pyarrow names it (``"int64"``, ``"double"``,
        ``"string"``, ``"list<element: int64>"``...); informational, and used in messages.
    duplicates : tuple of str
        Column names that appear more than once in the file (``columns`` keeps the first); using
        one of them is an error.
    file_format : str
        ``"csv"``, ``"parquet"`` or ``"memory"`` for a table built in code.
    row_offset : int
        Data rows of the file before this table's first row (a batch of a stream): messages
        count rows from ``row_offset + 1``.
    """

    columns: dict[str, npt.NDArray[Any]]
    source: str = "<table>"
    types: dict[str, str] = field(default_factory=dict)
    duplicates: tuple[str, ...] = ()
    file_format: str = "memory"
    row_offset: int = 0

    def __post_init__(self) -> None:
        lengths = {name: np.shape(col) for name, col in self.columns.items()}
        if any(len(shape) != 1 for shape in lengths.values()):
            raise ValidationError(f"table columns must be 1-D arrays, got shapes {lengths}")
        if len({shape[0] for shape in lengths.values()}) > 1:
            raise ValidationError(f"table columns must have the same length, got {lengths}")

    @property
    def n_rows(self) -> int:
        """Number of data rows (the header is not a row)."""
        return next((len(col) for col in self.columns.values()), 0)

    @property
    def numeric_columns(self) -> tuple[str, ...]:
        """Names of the numeric columns, in file order."""
        return tuple(
            name
            for name, col in self.columns.items()
            if np.issubdtype(col.dtype, np.number)
            and not np.issubdtype(col.dtype, np.complexfloating)
        )


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
    file = Path(path)
    head = _open_head(file, source)
    if head.startswith(_PARQUET_MAGIC) or file.name.lower().endswith(_PARQUET_SUFFIXES):
        arrow = _read_parquet(file, source)
        check_column_names(source, arrow.column_names)
        file_format = "parquet"
    else:
        text = _decompressed_head(file, source, head)
        _check_text_head(source, text)
        delimiter = _delimiter_for(file, source, text)
        # The header first: a nameless column is refused before the rows are parsed.
        _csv_header(file, source, head.startswith(_GZIP_MAGIC), text, delimiter)
        as_text = _names(text_columns, "text")
        arrow = _read_csv(file, source, head.startswith(_GZIP_MAGIC), text, delimiter, as_text)
        arrow = _plain_integers_as_int64(arrow, as_text)
        file_format = "csv"
    if arrow.num_columns == 0:
        raise DataError(f"{source}: the file has no columns; check that it is a data table")
    if arrow.num_rows == 0:
        raise DataError(
            f"{source}: the file has a header but no data rows; add rows below the header"
        )
    return _to_table(arrow, source, file_format)


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
    file = Path(path)
    head = _open_head(file, source)
    if head.startswith(_PARQUET_MAGIC) or file.name.lower().endswith(_PARQUET_SUFFIXES):
        try:
            with arrow_file(file) as fh:
                names = tuple(pq.read_schema(fh).names)
        except (OSError, pa.ArrowException) as exc:
            raise DataError(
                f"{source}: not a readable Parquet file ({_flat(exc)}); it may be corrupt, "
                "truncated or in another format"
            ) from None
        check_column_names(source, names)
        return names
    text = _decompressed_head(file, source, head)
    _check_text_head(source, text)
    delimiter = _delimiter_for(file, source, text)
    return _csv_header(file, source, head.startswith(_GZIP_MAGIC), text, delimiter)


def check_column_names(source: str, names: Sequence[str]) -> None:
    """A DataError naming the first column without a name (empty, or only spaces), by its
    position counted from 1: such a column cannot be chosen, and its name would be printed as
    nothing."""
    for position, name in enumerate(names, start=1):
        if not name.strip():
            raise DataError(
                f"{source}: column {position} has no name in the header; give it a name in the "
                "header (or remove the column)"
            )


def _csv_header(
    file: Path, source: str, gzipped: bool, text: bytes, delimiter: str
) -> tuple[str, ...]:
    """The column names of a CSV file's header line: from ``text`` (the start of the
    decompressed file) when the line ends there, else read on, up to :data:`_MAX_HEADER`."""
    text = text.removeprefix(b"\xef\xbb\xbf")
    end = _header_end(text)
    if end is None:
        try:
            with gzip.open(file, "rb") if gzipped else file.open("rb") as fh:
                text = fh.read(_MAX_HEADER + 1).removeprefix(b"\xef\xbb\xbf")
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{source}: cannot read the header line ({_flat(exc)})") from None
        end = _header_end(text)
        if end is None and len(text) > _MAX_HEADER:
            raise DataError(
                f"{source}: the header line is longer than {_MAX_HEADER >> 20} MiB; is the file a "
                "CSV file with one header line?"
            )
        _check_text_head(source, text[: end or len(text)])
    line = text[: end or len(text)].rstrip(b"\r\n") + b"\n"
    try:
        names = tuple(
            pv.read_csv(
                pa.BufferReader(line),
                parse_options=pv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
                read_options=pv.ReadOptions(use_threads=False, block_size=len(line) + 1),
            ).column_names
        )
    except UnicodeDecodeError:
        raise _not_text_error(source, "undecodable bytes", 1) from None
    except pa.ArrowException as exc:
        raise DataError(f"{source}: cannot read the header line ({_flat(exc)})") from None
    check_column_names(source, names)
    return names


def _header_end(text: bytes) -> int | None:
    """The end (after its line break) of the header line at the start of ``text``: the first
    line break outside quotes (a quoted name may hold one); None when ``text`` holds none."""
    end = text.find(b"\n")
    while end >= 0:
        if text.count(b'"', 0, end) % 2 == 0:
            return end + 1
        end = text.find(b"\n", end + 1)
    return None


def arrow_file(file: Path) -> pa.NativeFile:
    """``file`` opened for pyarrow's readers. pyarrow takes a path as UTF-8 text, which a name
    of bytes that are not UTF-8 (kept by Python as surrogate escapes) cannot be; the file is
    opened from its name's own bytes instead. Raises ``OSError`` as ``open`` does."""
    return pa.OSFile(os.fsencode(file))


def _open_head(file: Path, source: str) -> bytes:
    """The file's first bytes, after the checks that give the clearest messages. Only a
    regular file is opened: a named pipe would block until a writer comes, a device such as
    ``/dev/zero`` never ends (see :func:`check_regular_file`)."""
    try:
        if file.is_dir():
            raise DataError(
                f"{source}: is a directory, not a data file; give the path of a CSV or Parquet file"
            )
        size = check_regular_file(file, source)
        with file.open("rb") as fh:
            head = fh.read(_HEAD_BYTES)
    except FileNotFoundError:
        raise DataError(f"{source}: no such file; check the path") from None
    except PermissionError:
        raise DataError(f"{source}: permission denied; check the file's permissions") from None
    except OSError as exc:
        raise DataError(f"{source}: cannot open the file ({exc.strerror or exc})") from None
    if size == 0:
        raise DataError(f"{source}: the file is empty (0 bytes); expected a header and data rows")
    for magic, what in _FOREIGN_MAGIC:
        if head.startswith(magic):
            raise DataError(f"{source}: not a CSV or Parquet file: it looks like {what}")
    return head


def check_regular_file(file: Path, source: str) -> int:
    """The size of ``file``, a regular file (a symbolic link to one is followed); a DataError
    naming it otherwise, decided by ``os.stat`` without opening it (opening a named pipe blocks
    until a writer comes; a device such as ``/dev/zero`` is read until memory runs out).
    ``FileNotFoundError`` and ``PermissionError`` pass through, for the caller's messages."""
    info = file.stat()
    if stat.S_ISREG(info.st_mode):
        return info.st_size
    what = kind_of(info.st_mode)
    raise DataError(
        f"{source}: is {what}, not a regular file; gradfit reads data from regular files only: "
        "save the data to a file and give its path"
    )


def _delimiter_for(file: Path, source: str, text: bytes) -> str:
    name = file.name.lower()
    default = next((d for suffix, d in _CSV_SUFFIXES.items() if name.endswith(suffix)), None)
    if default is None:
        raise DataError(
            f"{source}: unsupported file type; use one of .csv, .tsv, .csv.gz, .tsv.gz, "
            ".parquet or .pq (rename the file if it is one of these)"
        )
    if not text.strip():
        raise DataError(f"{source}: the file holds no data (only blank lines)")
    header = text.split(b"\n", 1)[0].removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace")
    counts = _count_outside_quotes(header)
    if counts[default] or not any(counts.values()):
        return default
    return max(_SNIFF_DELIMITERS, key=lambda d: counts[d])


def _decompressed_head(file: Path, source: str, head: bytes) -> bytes:
    if not head.startswith(_GZIP_MAGIC):
        return head
    try:
        with gzip.open(file, "rb") as fh:
            return fh.read(_HEAD_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"{source}: corrupt or truncated gzip data ({exc}); compress the file again"
        ) from None


def _check_text_head(source: str, head: bytes) -> None:
    """Refuse a file whose first bytes are not UTF-8 text (binary data, UTF-16, Latin-1), before
    pyarrow sees it: its messages would quote raw bytes of the file."""
    if head.startswith(_UTF16_BOMS):
        raise DataError(
            f"{source}: not a UTF-8 text file (it starts with a UTF-16 byte-order mark); "
            "save it as UTF-8 text, or use Parquet"
        )
    try:
        # Not final: the head may end inside a character that the rest of the file completes.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise _not_text_error(source, "undecodable bytes", _line_at(head, exc.start)) from None
    nul = head.find(b"\x00")
    if nul >= 0:  # valid UTF-8, but no text file holds NUL characters (UTF-16 text, binary data)
        raise _not_text_error(source, "NUL bytes", _line_at(head, nul))


def _not_text_error(source: str, what: str, line: int | None, column: str = "") -> DataError:
    where = f" near line {line}" if line is not None else ""
    where += f", {column}" if column else ""
    return DataError(f"{source}: not a UTF-8 text file ({what}{where}); {_NOT_TEXT_HINT}")


def _line_at(data: bytes, offset: int) -> int:
    """The line (from 1) of the byte at ``offset``."""
    return data.count(b"\n", 0, max(offset, 0)) + 1


def _first_undecodable_line(file: Path, gzipped: bool) -> int | None:
    """The line (from 1) of the first bytes that are not UTF-8, reading the whole (decompressed)
    file in blocks; None when it all decodes (or cannot be read)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    try:
        with gzip.open(file, "rb") if gzipped else file.open("rb") as fh:
            while block := fh.read(1 << 20):
                pending = decoder.getstate()[0]  # the start of a character cut by the block end
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as exc:
                    return line + (pending + block).count(b"\n", 0, max(exc.start, 0))
                line += block.count(b"\n")
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return line
    except (OSError, EOFError, zlib.error):
        return None
    return None


def _count_outside_quotes(header: str) -> dict[str, int]:
    counts = dict.fromkeys(_SNIFF_DELIMITERS, 0)
    quoted = False
    for char in header:  # the header line only
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    return counts


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
            if not (_is_numeric(f.type) or _is_text(f.type) or pa.types.is_null(f.type))
        }
        return read(retype) if retype else table
    except UnicodeDecodeError:  # pyarrow decoding the column names, beyond the checked head
        raise _not_text_error(
            source, "undecodable bytes", _first_undecodable_line(file, gzipped)
        ) from None
    except pa.ArrowInvalid as exc:
        message = _flat(exc)
        if "Expected" in message and "columns, got" in message:
            # Past the checked head, undecodable bytes split rows anywhere; and pyarrow cannot
            # hand such a row to the handler below (it reports a UnicodeDecodeError unraisable).
            line = _first_undecodable_line(file, gzipped)
            if line is not None:
                raise _not_text_error(source, "undecodable bytes", line) from None
            raise DataError(_field_count_message(source, delimiter, read, message)) from None
        if "invalid UTF8" in message:
            raise _not_text_error(
                source,
                "undecodable bytes",
                _first_undecodable_line(file, gzipped),
                f"in {_column_from_message(message, head, delimiter)}",
            ) from None
        if "Empty CSV" in message:  # a header line without a line end, and nothing else
            raise DataError(
                f"{source}: the file has a header but no data rows; add rows below the header"
            ) from None
        raise DataError(f"{source}: cannot parse the file as CSV ({message})") from None
    except (OSError, pa.ArrowException) as exc:
        raise DataError(
            f"{source}: cannot read the file ({_flat(exc)}); it may be corrupt or truncated"
        ) from None


def _field_count_message(
    source: str, delimiter: str, read: Callable[..., pa.Table], message: str
) -> str:
    """Re-read single-threaded to learn which row has the wrong number of fields."""
    row = first_invalid_row(lambda handler: read(handler=handler))
    if row is None or row.number is None:
        return f"{source}: a row has the wrong number of fields ({message}); fix that row"
    return field_count_message(source, delimiter, row.number - 1, row)  # the header is row 1


def first_invalid_row(parse: Callable[[Callable[[Any], str]], Any]) -> Any | None:
    """The first row that pyarrow finds with the wrong number of fields (its
    ``InvalidRow``: ``number`` counted from 1 over the non-blank rows parsed, the header
    included when it is parsed; ``actual_columns``, ``expected_columns``, ``text``) when
    ``parse(handler)`` parses again with that invalid-row handler, single-threaded; None when
    it finds none."""
    found: list[Any] = []

    def handler(row: Any) -> str:
        found.append(row)
        return "error"

    with contextlib.suppress(pa.ArrowException, OSError):
        parse(handler)
    return found[0] if found else None


def field_count_message(source: str, delimiter: str, data_row: int, row: Any) -> str:
    """The message for data row ``data_row`` (counted from 1 below the header) that has the
    wrong number of fields (``row``: pyarrow's ``InvalidRow``), in memory and streamed alike. A
    row with an odd number of quotes ends inside a quoted value: a line break in a quoted cell
    where the reader cut its blocks, or a quote never closed."""
    if (row.text or "").count('"') % 2:
        return (
            f"{source}: row {data_row} ends inside a quoted value (a line break in a quoted "
            "cell, or a quote never closed); remove line breaks from quoted cells, or close "
            "the quote"
        )
    shown = {"\t": "tab"}.get(delimiter, repr(delimiter))
    return (
        f"{source}: row {data_row} has {row.actual_columns} fields but the header has "
        f"{row.expected_columns} (delimiter {shown}); fix that row, e.g. quote a value that "
        "contains the delimiter"
    )


def long_row_message(source: str, limit: int, line: int | None) -> str:
    """The message for a row (or cell) longer than ``limit`` bytes, near ``line`` when known."""
    where = f" at line {line}" if line is not None else ""
    return (
        f"{source}: a row longer than {limit >> 20} MiB{where}; is the file a CSV file with "
        "one row per line (a quote never closed makes the rest of the file one cell)?"
    )


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
            return pq.read_table(fh)
    except (OSError, pa.ArrowException, UnicodeDecodeError) as exc:
        raise DataError(
            f"{source}: not a readable Parquet file ({_flat(exc)}); it may be corrupt, truncated "
            "or in another format"
        ) from None


def _plain_integers_as_int64(arrow: pa.Table, names: Sequence[str]) -> pa.Table:
    """Each text column in ``names`` whose cells are all integers written in their plain form
    (``cast(cast(text, int64), string) == text``) becomes int64; any other stays text."""
    for index, name in enumerate(arrow.column_names):
        column = arrow.column(index)
        if name not in names or not _is_text(column.type) or column.null_count:
            continue
        try:
            numbers = pc.cast(column, pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        if pc.all(pc.equal(pc.cast(numbers, pa.string()), column)).as_py():
            arrow = arrow.set_column(index, arrow.field(index).with_type(pa.int64()), numbers)
    return arrow


def _is_numeric(arrow_type: Any) -> bool:
    return bool(
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_decimal(arrow_type)
    )


def _is_text(arrow_type: Any) -> bool:
    return bool(pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type))


def _to_table(arrow: pa.Table, source: str, file_format: str, row_offset: int = 0) -> Table:
    names = list(arrow.column_names)
    counts = Counter(names)
    columns: dict[str, npt.NDArray[Any]] = {}
    types: dict[str, str] = {}
    for index, name in enumerate(names):  # one step per column, not per row
        if name in columns:
            continue
        column = arrow.column(index)
        if pa.types.is_dictionary(column.type):
            column = pc.cast(column, column.type.value_type)
        types[name] = str(column.type)
        columns[name] = _column_to_numpy(column)
    return Table(
        columns=columns,
        source=source,
        types=types,
        duplicates=tuple(name for name, count in counts.items() if count > 1),
        file_format=file_format,
        row_offset=row_offset,
    )


def _column_to_numpy(column: Any) -> npt.NDArray[Any]:
    if pa.types.is_integer(column.type) and column.null_count == 0:
        # Exact: float64 would round integers beyond 2**53 (identifiers).
        wide = pa.uint64() if column.type == pa.uint64() else pa.int64()
        integers: npt.NDArray[Any] = pc.cast(column, wide).to_numpy()
        return integers if integers.flags.writeable else integers.copy()
    if _is_numeric(column.type):
        numbers: FloatArray = pc.cast(column, pa.float64(), safe=False).to_numpy()
        return numbers if numbers.flags.writeable else numbers.copy()
    if pa.types.is_temporal(column.type):
        column = pc.cast(column, pa.string())
    values: npt.NDArray[Any] = column.to_numpy(zero_copy_only=False)
    return values if values.dtype == object else values.astype(object)


# ---------------------------------------------------------------------------------------------
# selecting features and targets


def select(
    table: Table,
    targets: Sequence[str],
    features: Sequence[str] | None = None,
    *,
    min_rows: int = 1,
) -> tuple[FloatArray, FloatArray, tuple[str, ...], tuple[str, ...]]:
    """Split a table into a feature matrix and a target matrix.

    Parameters
    ----------
    table : Table
    targets : sequence of str
        Target column names (a single string is one target).
    features : sequence of str, optional
        Feature column names; by default every numeric column that is not a target.
    min_rows : int, default 1
        The fewest data rows accepted (2 to fit a model).

    Returns
    -------
    X : (n, d) float64 array
    Y : (n, k) float64 array
    feature_names : tuple of d str
    target_names : tuple of k str

    Raises
    ------
    DataError
        An unknown or duplicated column, a column that is both target and feature, no features
        left, too few rows, or a cell that is not a finite number (the message names its column,
        row and value).

    Examples
    --------
    >>> t = Table({"a": np.array([1.0, 2.0]), "b": np.array([3.0, 5.0]), "y": np.array([0.0, 1.0])})
    >>> X, Y, names, target_names = select(t, ["y"])
    >>> X.shape, Y.shape, names, target_names
    ((2, 2), (2, 1), ('a', 'b'), ('y',))
    """
    source = table.source
    target_names = _names(targets, "target")
    if not target_names:
        raise DataError(f"{source}: no target column given; name at least one target column")
    _check_known(table, target_names, "target")
    target_set = set(target_names)
    if features is None:
        feature_names = tuple(name for name in table.numeric_columns if name not in target_set)
        # First: a text column that is a numeric column with a typo names its bad cell.
        _refuse_numeric_looking_text(table, target_set)
        if not feature_names:
            raise DataError(f"{source}: no feature columns left: {_no_features_reason(table)}")
    else:
        feature_names = _names(features, "feature")
        if not feature_names:
            raise DataError(f"{source}: no feature column given; name at least one feature")
        _check_known(table, feature_names, "feature")
        both = [name for name in feature_names if name in target_set]
        if both:
            raise DataError(
                f"{source}: column {both[0]!r} is given both as a target and as a feature; "
                "a column can only be one of them"
            )
    _check_duplicates(table, target_names + feature_names)
    if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 1:
        raise ValidationError(f"min_rows must be a positive integer, got {min_rows!r}")
    if table.n_rows < min_rows:
        rows = "1 data row" if table.n_rows == 1 else f"{table.n_rows} data rows"
        raise DataError(
            f"{source}: the file has {rows}, at least {min_rows} are needed to fit a model; "
            "add more rows"
        )
    Y = _stack(table, target_names)
    X = _stack(table, feature_names)
    return X, Y, feature_names, target_names


def feature_matrix(table: Table, feature_names: Sequence[str]) -> FloatArray:
    """The (n, d) float64 feature matrix for prediction, columns in ``feature_names`` order.

    Columns are matched by name in any order; extra columns are ignored.

    >>> t = Table({"y": np.array([0.0]), "b": np.array([2.0]), "a": np.array([1.0])})
    >>> feature_matrix(t, ["a", "b"])
    array([[1., 2.]])
    """
    names = _names(feature_names, "feature")
    missing = [name for name in names if name not in table.columns]
    if missing:
        listed = ", ".join(repr(name) for name in missing)
        raise DataError(
            f"{table.source}: missing feature column(s) {listed} that the model needs; "
            f"available columns: {_listing(table.columns)}"
        )
    _check_duplicates(table, names)
    return _stack(table, names)


def left_out_columns(table: Table, targets: Sequence[str]) -> dict[str, str]:
    """The columns that the default feature choice of :func:`select` leaves out, and why.

    With ``features=None``, :func:`select` uses every numeric column that is not a target; this
    names the others, e.g. to tell the user that a text column was not used.

    Parameters
    ----------
    table : Table
    targets : sequence of str
        Target column names (a single string is one target); they are not listed.

    Returns
    -------
    dict of str to str
        In column order, each left-out column with a short reason: ``"text"``, ``"empty (no
        values)"``, ``"not numeric (type bool)"``, ``"not numeric (type timestamp[s])"``...
        Empty when every non-target column is a feature.

    Examples
    --------
    >>> t = Table({"id": np.array(["r1", "r2"], dtype=object), "x": np.array([1.0, 2.0]),
    ...            "y": np.array([0.0, 1.0])})
    >>> left_out_columns(t, ["y"])
    {'id': 'text'}
    """
    skip = set(_names(targets, "target")) | set(table.numeric_columns)
    return {
        name: _left_out_reason(table, name, column)
        for name, column in table.columns.items()
        if name not in skip
    }


def _left_out_reason(table: Table, name: str, column: npt.NDArray[Any]) -> str:
    type_name = table.types.get(name)
    if type_name is None:  # a table built in code: describe what the array holds
        if column.dtype != object:
            return f"not numeric (dtype {column.dtype})"
        try:
            type_name = str(pa.array(column, from_pandas=True).type)
        except (pa.ArrowException, TypeError, ValueError):
            return "not numeric (mixed values)"
        if type_name in ("int64", "double", "uint64"):
            return "numbers stored as Python objects (dtype object)"
    if type_name in ("string", "large_string"):
        return "text"
    if type_name == "null":
        return "empty (no values)"
    return f"not numeric (type {_printable(type_name)})"


def _names(names: Sequence[str], kind: str) -> tuple[str, ...]:
    out = (names,) if isinstance(names, str) else tuple(names)
    for name in out:
        if not isinstance(name, str):
            raise ValidationError(f"{kind} names must be strings, got {name!r}")
    repeated = [name for name, count in Counter(out).items() if count > 1]
    if repeated:
        raise DataError(f"{kind} column {repeated[0]!r} is given more than once; give it once")
    return out


def _check_known(table: Table, names: Sequence[str], kind: str) -> None:
    for name in names:
        if name not in table.columns:
            close = difflib.get_close_matches(name, list(table.columns), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DataError(
                f"{table.source}: no {kind} column {name!r}{hint}; "
                f"available columns: {_listing(table.columns)}"
            )


def _check_duplicates(table: Table, used: Sequence[str]) -> None:
    duplicates = set(table.duplicates)
    for name in used:
        if name in duplicates:
            raise DataError(
                f"{table.source}: column name {name!r} appears more than once in the header; "
                "rename the columns so that each name is unique"
            )


def _no_features_reason(table: Table) -> str:
    numeric = set(table.numeric_columns)  # once: it looks at every column
    others = [name for name in table.columns if name not in numeric]
    if not others:
        return "every numeric column is a target; add feature columns"
    described = ", ".join(
        f"{name!r} ({_printable(table.types.get(name, 'text'))})" for name in others[:5]
    )
    return (
        f"the other columns are not numeric ({described}); add numeric feature columns or "
        "fix the values that are not numbers"
    )


def _listing(names: Mapping[str, Any] | Sequence[str]) -> str:
    names = list(names)
    shown = ", ".join(repr(name) for name in names[:_MAX_LISTED])
    return shown + (f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")


def _stack(table: Table, names: Sequence[str]) -> FloatArray:
    out = np.empty((table.n_rows, len(names)), dtype=np.float64)
    for j, name in enumerate(names):  # one step per column
        out[:, j] = _numeric_column(table, name)
    return out


def _numeric_column(table: Table, name: str) -> FloatArray:
    """The column as finite float64 numbers, or a DataError naming the first bad row."""
    source, column = table.source, table.columns[name]
    where = f"{source}: column {name!r}"
    if column.dtype == object and table.file_format == "memory":
        # A table built in code may hold Python numbers in an object array.
        with contextlib.suppress(TypeError, ValueError):
            column = np.asarray(column, dtype=np.float64)
    if column.dtype == object:
        column = _parse_text_column(table, name, column)
    elif not np.issubdtype(column.dtype, np.number) or np.issubdtype(
        column.dtype, np.complexfloating
    ):
        raise DataError(f"{where} has type {column.dtype}, not numbers; use a numeric column")
    values = np.asarray(column, dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        if np.isnan(values[row]):
            raise DataError(
                f"{where}, row {row + 1 + table.row_offset}: missing value (an empty cell, NA or "
                "NaN); "
                "fill it in or remove that row"
            )
        raise DataError(
            f"{where}, row {row + 1 + table.row_offset}: infinite value ({values[row]}); replace "
            "it or remove that row"
        )
    return values


def _refuse_numeric_looking_text(table: Table, skip: set[str]) -> None:
    """With default features, a text column whose values are mostly numbers is a numeric column
    with a typo, not an identifier: name the bad cell instead of silently dropping the column."""
    skip = skip | set(table.numeric_columns)  # once, not once per column (2,000 columns: 45 s)
    for name, column in table.columns.items():
        if name in skip or column.dtype != object:
            continue
        if table.file_format == "parquet" or "string" not in table.types.get(name, "string"):
            continue
        try:
            text = pa.array(column, type=pa.string())
        except (pa.ArrowException, TypeError, ValueError):
            continue
        present = len(text) - text.null_count
        if present == 0:
            continue
        numbers = int(pc.sum(pc.match_substring_regex(text, pattern=_NUMBER_RE)).as_py() or 0)
        if numbers * 2 > present:  # mostly numbers: parsing names the first offending cell
            _parse_text_column(table, name, column)


def _parse_text_column(table: Table, name: str, column: npt.NDArray[Any]) -> FloatArray:
    where = f"{table.source}: column {name!r}"
    file_type = table.types.get(name, "")
    if table.file_format == "parquet" or not (file_type == "" or "string" in file_type):
        shown = _printable(file_type) or "text"
        raise DataError(
            f"{where} has type {shown}, not numbers; features and targets must be numeric columns"
        )
    try:
        text = pa.array(column, type=pa.string())
    except (pa.ArrowException, TypeError, ValueError):
        raise DataError(
            f"{where} holds values that are not text or numbers; features and targets must be "
            "numeric columns"
        ) from None
    numeric = pc.match_substring_regex(text, pattern=_NUMBER_RE)
    not_number = np.asarray(pc.fill_null(pc.invert(numeric), False).to_numpy(zero_copy_only=False))
    missing = np.asarray(text.is_null().to_numpy(zero_copy_only=False))
    first_bad = int(np.argmax(not_number)) if not_number.any() else None
    first_missing = int(np.argmax(missing)) if missing.any() else None
    if first_missing is not None and (first_bad is None or first_missing < first_bad):
        raise DataError(
            f"{where}, row {first_missing + 1 + table.row_offset}: missing value (an empty cell, "
            "NA or NaN); "
            "fill it in or remove that row"
        )
    if first_bad is not None:
        value = str(column[first_bad])
        shown = repr(value if len(value) <= 40 else value[:37] + "...")
        hint = " (use '.' as the decimal point)" if _DECIMAL_COMMA_RE.match(value) else ""
        raise DataError(
            f"{where}, row {first_bad + 1 + table.row_offset}: {shown} is not a number{hint}; "
            "fix or remove that row"
        )
    try:
        parsed = pc.cast(pc.utf8_trim_whitespace(text), pa.float64())
    except pa.ArrowInvalid as exc:  # pragma: no cover - the pattern mirrors pyarrow's parser
        raise DataError(f"{where} holds a value that is not a number ({_flat(exc)})") from None
    return np.asarray(parsed.to_numpy(zero_copy_only=False), dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# writing


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
    parquet = name.endswith(_PARQUET_SUFFIXES)
    delimiter = next((d for suffix, d in _CSV_SUFFIXES.items() if name.endswith(suffix)), None)
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
                        writer = stack.enter_context(pq.ParquetWriter(fh, schema))
                    writer.write_table(arrow)
                else:
                    _write_csv(arrow, out, delimiter or ",", header=rows == 0)
                rows += arrow.num_rows

    try:
        atomic_write(path, write)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        if isinstance(exc, GradfitError):
            raise
        raise DataError(f"{source}: cannot write these columns ({_flat(exc)})") from None
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
        raise DataError(f"cannot write these columns as CSV ({_flat(exc)})") from None
    return buffer.getvalue().decode("utf-8")


def _to_arrow(columns: Mapping[str, npt.ArrayLike]) -> pa.Table:
    if not columns:
        raise ValidationError("columns must hold at least one column")
    arrays: dict[str, Any] = {}
    for name, values in columns.items():
        array = np.asarray(values)
        if array.ndim != 1:
            raise ValidationError(f"column {name!r} must be 1-D, got shape {array.shape}")
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


def _write_csv(arrow: pa.Table, fh: _Writable, delimiter: str, *, header: bool = True) -> None:
    """CSV with a minimally quoted header; text values are quoted only when one needs it."""
    if header:
        names = delimiter.join(_quote_field(name, delimiter) for name in arrow.column_names)
        fh.write((names + "\n").encode("utf-8"))
    structural = f'["\\r\\n{re.escape(delimiter)}]'
    needs_quotes = any(
        pc.any(pc.match_substring_regex(column, pattern=structural)).as_py()
        for column in arrow.columns
        if _is_text(column.type)
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


def _flat(exc: BaseException) -> str:
    """An exception's message on one line, at most 200 characters, control characters escaped
    (pyarrow quotes the file's text, e.g. the offending row, in its messages)."""
    text = _printable(" ".join(str(exc).split()))
    return text if len(text) <= 200 else text[:197] + "..."


def _printable(text: str) -> str:
    """``text`` with each character that is not printable (control characters, escape sequences,
    undecodable bytes decoded as surrogates) written as its escape, as :func:`repr` does."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)
