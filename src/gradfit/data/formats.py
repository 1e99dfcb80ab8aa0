"""Data file formats: telling a file's type, opening it, and the messages about files.

Formats, chosen by extension and confirmed by the file's first bytes:

* ``.csv``, ``.tsv`` and their gzip forms ``.csv.gz``, ``.tsv.gz`` (a gzip file is recognised
  by its magic bytes whatever its name). The delimiter is sniffed from the header line among
  ``,``, ``;``, tab and ``|``: the extension's own delimiter wins when the header contains it.
  A UTF-8 byte-order mark is ignored.
* ``.parquet``, ``.pq``.

Only regular files are opened (a named pipe would block, a device never end); a file that is
not UTF-8 text, or that is another known format (ZIP, bzip2, xz, zstd, old Excel), is refused
before pyarrow sees it. Every message about a file, for files read whole and in batches alike,
is written here once.
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import os
import re
import stat
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pv

from gradfit.errors import DataError
from gradfit.file_kinds import kind_of
from gradfit.storage import RemotePath, missing_object, open_input

__all__ = [
    "CSV_SUFFIXES",
    "GZIP_MAGIC",
    "PARQUET_MAGIC",
    "PARQUET_SUFFIXES",
    "CsvLayout",
    "arrow_file",
    "carriage_returns_only",
    "check_column_names",
    "check_regular_file",
    "corrupt_file_error",
    "field_count_message",
    "first_invalid_row",
    "first_undecodable_line",
    "flat",
    "is_parquet",
    "long_row_message",
    "no_data_rows_error",
    "not_text_error",
    "open_decompressed",
    "open_head",
    "printable",
    "sniff_csv",
    "unreadable_parquet_error",
]

CSV_SUFFIXES = {".csv": ",", ".csv.gz": ",", ".tsv": "\t", ".tsv.gz": "\t"}
PARQUET_SUFFIXES = (".parquet", ".pq")
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
_SNIFF_DELIMITERS = (",", ";", "\t", "|")
_HEAD_BYTES = 1 << 16
_MAX_HEADER = 64 << 20  # the longest header line read (bytes): 100,000 columns take about 1 MB
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_NOT_TEXT_HINT = "is it a CSV? Save it as UTF-8 text, or use Parquet"
_FOREIGN_MAGIC = (
    (b"PK\x03\x04", "a ZIP archive or an Excel workbook; export the sheet as CSV or unzip it"),
    (b"BZh", "bzip2-compressed; decompress it or compress it with gzip instead"),
    (b"\xfd7zXZ\x00", "xz-compressed; decompress it or compress it with gzip instead"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed; decompress it or compress it with gzip instead"),
    (b"\xd0\xcf\x11\xe0", "an old-style Excel (.xls) workbook; export the sheet as CSV"),
)


# ---------------------------------------------------------------------------------------------
# the file's type


def is_parquet(file: Path, head: bytes) -> bool:
    """Whether ``file`` (whose first bytes are ``head``) is read as Parquet: by its magic
    bytes, or by its extension (a truncated Parquet file is then named as such)."""
    return head.startswith(PARQUET_MAGIC) or file.name.lower().endswith(PARQUET_SUFFIXES)


@dataclass(frozen=True)
class CsvLayout:
    """What a CSV file's start tells: gzip-compressed or not, the start of its (decompressed)
    text, its delimiter and its column names (from its header line)."""

    gzipped: bool
    text: bytes
    delimiter: str
    names: tuple[str, ...]


def carriage_returns_only(text: bytes) -> bool:
    """Whether the first line of ``text`` (a CSV file's start) ends in a CR not followed by a
    LF (outside quotes): pyarrow reads such a file whole, the batches of
    :mod:`gradfit.data.stream` cut at LF only."""
    quoted = False
    for found in _QUOTE_OR_LINE_END.finditer(text):
        if found.group() == b'"':
            quoted = not quoted
        elif not quoted:
            return found.group() == b"\r" and text[found.end() : found.end() + 1] != b"\n"
    return False


_QUOTE_OR_LINE_END = re.compile(rb'["\r\n]')


def sniff_csv(file: Path, source: str, head: bytes) -> CsvLayout:
    """The layout of a CSV file whose first bytes (from :func:`open_head`) are ``head``, with
    every check on its start: UTF-8 text, a known extension, a header line whose every column
    is named (refused before any row is parsed)."""
    gzipped = head.startswith(GZIP_MAGIC)
    text = _decompressed_head(file, source, head)
    _check_text_head(source, text)
    delimiter = _delimiter_for(file, source, text)
    names = _csv_header(file, source, gzipped, text, delimiter)
    return CsvLayout(gzipped, text, delimiter, names)


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
            with open_decompressed(file, gzipped) as fh:
                text = fh.read(_MAX_HEADER + 1).removeprefix(b"\xef\xbb\xbf")
        except (OSError, EOFError, zlib.error) as exc:
            raise _header_error(source, exc) from None
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
        raise not_text_error(source, "undecodable bytes", 1) from None
    except pa.ArrowException as exc:
        raise _header_error(source, exc) from None
    check_column_names(source, names)
    return names


def _header_error(source: str, exc: BaseException) -> DataError:
    """The header line could not be read (an I/O or parse error)."""
    return DataError(f"{source}: cannot read the header line ({flat(exc)})")


def _header_end(text: bytes) -> int | None:
    """The end (after its line break) of the header line at the start of ``text``: the first
    line break outside quotes (a quoted name may hold one); None when ``text`` holds none."""
    end = text.find(b"\n")
    while end >= 0:
        if text.count(b'"', 0, end) % 2 == 0:
            return end + 1
        end = text.find(b"\n", end + 1)
    return None


# ---------------------------------------------------------------------------------------------
# opening


def arrow_file(file: Path) -> pa.NativeFile:
    """``file`` opened for pyarrow's readers. pyarrow takes a path as UTF-8 text, which a name
    of bytes that are not UTF-8 (kept by Python as surrogate escapes) cannot be; the file is
    opened from its name's own bytes instead. Raises ``OSError`` as ``open`` does. An object in
    a store (:class:`gradfit.storage.RemotePath`) is opened by its store's filesystem."""
    if isinstance(file, RemotePath):
        return open_input(file)
    return pa.OSFile(os.fsencode(file))


@contextlib.contextmanager
def open_decompressed(file: Path, gzipped: bool) -> Iterator[IO[bytes]]:
    """The (decompressed) bytes of a file, local or in a store, open for reading."""
    with file.open("rb") as raw:
        if not gzipped:
            yield raw
            return
        with gzip.GzipFile(fileobj=raw, mode="rb") as fh:
            yield fh  # type: ignore[misc]  # a GzipFile reads as IO[bytes] does


def open_head(file: Path, source: str) -> bytes:
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
        if isinstance(file, RemotePath):
            raise missing_object(file) from None
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
    default = next((d for suffix, d in CSV_SUFFIXES.items() if name.endswith(suffix)), None)
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
    if not head.startswith(GZIP_MAGIC):
        return head
    try:
        with open_decompressed(file, True) as fh:
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
        raise not_text_error(source, "undecodable bytes", _line_at(head, exc.start)) from None
    nul = head.find(b"\x00")
    if nul >= 0:  # valid UTF-8, but no text file holds NUL characters (UTF-16 text, binary data)
        raise not_text_error(source, "NUL bytes", _line_at(head, nul))


def not_text_error(source: str, what: str, line: int | None, column: str = "") -> DataError:
    where = f" near line {line}" if line is not None else ""
    where += f", {column}" if column else ""
    return DataError(f"{source}: not a UTF-8 text file ({what}{where}); {_NOT_TEXT_HINT}")


def _line_at(data: bytes, offset: int) -> int:
    """The line (from 1) of the byte at ``offset``."""
    return data.count(b"\n", 0, max(offset, 0)) + 1


def first_undecodable_line(file: Path, gzipped: bool) -> int | None:
    """The line (from 1) of the first bytes that are not UTF-8, reading the whole (decompressed)
    file in blocks; None when it all decodes (or cannot be read)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    try:
        with open_decompressed(file, gzipped) as fh:
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


# ---------------------------------------------------------------------------------------------
# messages


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


def no_data_rows_error(source: str) -> DataError:
    """A file with a header line but no data rows below it."""
    return DataError(f"{source}: the file has a header but no data rows; add rows below the header")


def unreadable_parquet_error(source: str, exc: BaseException) -> DataError:
    """A Parquet file (by its magic bytes or its extension) that pyarrow cannot read."""
    return DataError(
        f"{source}: not a readable Parquet file ({flat(exc)}); it may be corrupt, truncated or in "
        "another format"
    )


def corrupt_file_error(source: str, exc: BaseException) -> DataError:
    """A file that cannot be read to its end (an I/O error, corrupt or truncated data)."""
    return DataError(
        f"{source}: cannot read the file ({flat(exc)}); it may be corrupt or truncated"
    )


def flat(exc: BaseException) -> str:
    """An exception's message on one line, at most 200 characters, control characters escaped
    (pyarrow quotes the file's text, e.g. the offending row, in its messages)."""
    text = printable(" ".join(str(exc).split()))
    return text if len(text) <= 200 else text[:197] + "..."


def printable(text: str) -> str:
    """``text`` with each character that is not printable (control characters, escape sequences,
    undecodable bytes decoded as surrogates) written as its escape, as :func:`repr` does."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)
