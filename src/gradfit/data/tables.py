"""Tables in memory: the :class:`Table` type, pyarrow tables converted to it, and the choice of
features and targets with every check on columns and cells.

Integer columns without missing cells become int64 arrays (uint64 for unsigned 64-bit Parquet
columns), so that an identifier such as 9007199254740993 is kept exactly; other numeric columns
become float64 arrays; every other column is kept as a numpy object array (the text as written
in a CSV file) so that identifier columns can be copied through to a predictions file. Features
and targets are always converted to float64 by :func:`select` and :func:`feature_matrix`.

Rows in messages are data rows counted from 1 below the header (blank lines are not counted),
plus the table's ``row_offset`` (a batch of a stream), so ``row 7`` is line 8 of a CSV file
without blank lines. Every problem is a :class:`~gradfit.errors.DataError` with a one-line
message that names the file, the column and the row, and says what to do.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import re
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from gradfit.data.formats import flat, printable
from gradfit.errors import DataError, ValidationError

__all__ = [
    "FloatArray",
    "MissingValueError",
    "Table",
    "check_known",
    "feature_matrix",
    "float_matrix",
    "is_numeric",
    "is_text",
    "left_out_columns",
    "listing",
    "name_list",
    "pandas_free",
    "plain_integers_as_int64",
    "refuse_numeric_looking_text",
    "select",
    "text_array",
    "to_table",
]

# What pyarrow's float parser accepts, as a regular expression (RE2 syntax, case-insensitive).
_NUMBER_RE = r"(?i)^\s*[+-]?(?:\d+\.?\d*(?:e[+-]?\d+)?|\.\d+(?:e[+-]?\d+)?|inf|infinity|nan)\s*$"
_DECIMAL_COMMA_RE = re.compile(r"^\s*[+-]?\d+,\d+\s*$")
_MAX_LISTED = 20

FloatArray = npt.NDArray[np.float64]

# Cells of a text column up to which it is converted without pyarrow's own conversions while
# pandas is not imported (:func:`pandas_free`).
PANDAS_FREE_CELLS = 1 << 21


def pandas_free(cells: int) -> bool:
    """Whether a text column of ``cells`` values is converted (Arrow to NumPy, NumPy to Arrow)
    without ``to_numpy`` and ``pa.array``: those import pandas on first use when it is
    installed (pyarrow's pandas shim, 0.2-0.4 s), which a command that reads or writes a text
    column (``predict --keep id``) does not otherwise need (issue 23, tests/test_startup.py).
    The ways round them are slower per cell (reading: 0.15 s a million cells against 0.08;
    writing: 0.17 against 0.07), so a column of more than :data:`PANDAS_FREE_CELLS` cells,
    whose conversion pays for the import, and any column once pandas is imported anyway,
    take pyarrow's."""
    return cells <= PANDAS_FREE_CELLS and "pandas" not in sys.modules


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
        ``"csv"``, ``"parquet"``, ``"arrow"`` for a table in memory read as a file is
        (:mod:`gradfit.data.memory`: typed as a Parquet file, its text checked as a CSV file's),
        or ``"memory"`` for a table built in code.
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
# conversion from pyarrow


def plain_integers_as_int64(arrow: pa.Table, names: Sequence[str]) -> pa.Table:
    """Each text column in ``names`` whose cells are all integers written in their plain form
    (``cast(cast(text, int64), string) == text``) becomes int64; any other stays text."""
    for index, name in enumerate(arrow.column_names):
        column = arrow.column(index)
        if name not in names or not is_text(column.type) or column.null_count:
            continue
        try:
            numbers = pc.cast(column, pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        if pc.all(pc.equal(pc.cast(numbers, pa.string()), column)).as_py():
            arrow = arrow.set_column(index, arrow.field(index).with_type(pa.int64()), numbers)
    return arrow


_R_INTEGER_NA = -(2**31)  # R's NA_integer_, as reticulate hands an integer column over


def check_r_integer_na(values: Any, column: str, source: str) -> None:
    """A column (1-D NumPy array or pandas Series) of int32 holding -2**31 is an R
    data.frame's integer column whose NA reticulate turned into that number: one DataError
    naming the column and the data row (counted from 1), instead of a fit on -2.1e9 (as
    :func:`gradfit.validation.as_matrix` refuses it in a matrix)."""
    if str(getattr(values, "dtype", "")) != "int32":
        return
    hits = np.flatnonzero(np.asarray(values) == _R_INTEGER_NA)
    if hits.size:
        raise DataError(
            f"{source}: column {column!r} holds -2147483648 at row {int(hits[0]) + 1}, an int32 "
            "column: that is R's NA_integer_ as reticulate passes it on, not a number; make the "
            "column double in R first (as.double(), or data.frame(lapply(df, as.double)) for "
            "every column), which keeps NA as a missing value"
        )


def too_many_levels(source: str, name: str, count: int, max_levels: int) -> DataError:
    """The refusal of a categorical column with more than ``max_levels`` levels (the levels
    pass and the default features' identifier check both say it)."""
    return DataError(
        f"{source}: column {name!r} has more than {max_levels} distinct values ({count} so far) "
        "to be a categorical column (an identifier?); leave it out of the features or the "
        f"formula, or raise --max-levels (max_levels=) above {count}"
    )


def is_numeric(arrow_type: Any) -> bool:
    return bool(
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_decimal(arrow_type)
    )


def is_text(arrow_type: Any) -> bool:
    return bool(pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type))


def to_table(arrow: pa.Table, source: str, file_format: str, row_offset: int = 0) -> Table:
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


def text_array(array: npt.NDArray[Any], from_pandas: bool = True) -> pa.Array | None:
    """A column of text (NumPy ``str``, or objects each a ``str``, None or NaN: a null, as
    ``pa.array(..., from_pandas=True)`` has them; NaN left to ``pa.array`` unless
    ``from_pandas``) as an Arrow string array without ``pa.array`` (which imports pandas:
    :func:`pandas_free`), built from its buffers: the data the cells joined and encoded as
    UTF-8 once, the offsets the running sum of the cells' lengths (in characters when the text
    is ASCII, one byte a character; else of each cell's encoding), the validity bitmap from
    the nulls (0.05 s a million cells of ASCII, 0.2 s with nulls; ``pa.array`` 0.07-0.18 s
    once pandas is imported). None, for ``pa.array`` to convert, where it would not give a
    string array (no rows, no text at all, another kind of object), a cell cannot be encoded
    as UTF-8 (a lone surrogate), or the text passes a string array's 2 GiB of offsets."""
    values = array.tolist()
    n = len(values)
    if n == 0:
        return None
    valid = None
    try:
        joined = "".join(values)
    except TypeError:  # a null or another kind of object among the text
        valid = np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=n)
        nulls = (v for v, ok in zip(values, valid.tolist(), strict=True) if not ok)
        if not valid.any() or not all(_is_null(v, from_pandas) for v in nulls):
            return None
        values = [v if isinstance(v, str) else "" for v in values]
        joined = "".join(values)
    try:
        data = joined.encode("utf-8")
    except UnicodeEncodeError:
        return None
    if len(data) >= 1 << 31:  # beyond a string array's 32-bit offsets
        return None
    lengths: Iterator[int]
    if len(data) == len(joined):  # ASCII: a character is a byte
        lengths = map(len, values)
    else:
        lengths = (len(v.encode("utf-8")) for v in values)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.fromiter(lengths, dtype=np.int32, count=n), out=offsets[1:])
    bitmap = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(
        pa.string(), n, [bitmap, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _is_null(value: Any, from_pandas: bool) -> bool:
    """None, or with ``from_pandas`` a float NaN: a null cell, as ``pa.array`` reads it."""
    return value is None or (from_pandas and isinstance(value, float) and math.isnan(value))


def _bits(buffer: pa.Buffer, offset: int, n: int) -> npt.NDArray[np.bool_]:
    """Bits ``offset`` to ``offset + n`` of an Arrow bitmap (a validity or boolean buffer) as
    NumPy booleans (``to_numpy`` imports pandas: :func:`pandas_free`)."""
    bits = np.unpackbits(np.frombuffer(buffer, dtype=np.uint8), bitorder="little")
    return bits[offset : offset + n].astype(bool)


def _bools(array: pa.Array) -> npt.NDArray[np.bool_]:
    """A boolean Arrow array as NumPy, False for a null (``fill_null(False)``, whose scalar
    imports pandas too), from its bit-packed buffers."""
    values = _bits(array.buffers()[1], array.offset, len(array))
    if array.null_count:
        values &= _bits(array.buffers()[0], array.offset, len(array))
    return values


# pyarrow's numeric types whose arrays numbers_to_numpy reads from their buffers.
_BUFFER_DTYPES = {pa.float64(): np.float64, pa.int64(): np.int64, pa.uint64(): np.uint64}


def numbers_to_numpy(column: Any, to: Any, *, safe: bool = True) -> npt.NDArray[Any]:
    """``column`` (a pyarrow array or chunked array of numbers) cast to ``to`` (float64, int64
    or uint64), as NumPy: read from the buffers when there is no missing value (one chunk: the
    buffer itself, not a copy). pyarrow's ``to_numpy`` imports pandas (0.5-1 s) on its first
    call when pandas is installed; a fit of numeric CSV columns does not (issue 23,
    tests/test_startup.py). With missing values: ``to_numpy`` (NaN for floats). A column
    already of type ``to`` is not cast (the cast's call cost 10 ms a pass of 2,100,000 x 12
    read in 65,536-row batches). Floats with missing values while pandas is not imported
    (:func:`pandas_free`): the buffers copied, NaN where a value is missing."""
    cast = column if column.type == to else pc.cast(column, to, safe=safe)
    nan_for_null = to == pa.float64() and pandas_free(len(cast))
    if cast.null_count and not nan_for_null:
        values: npt.NDArray[Any] = cast.to_numpy(zero_copy_only=False)
        return values
    dtype = _BUFFER_DTYPES[to]
    chunks = cast.chunks if isinstance(cast, pa.ChunkedArray) else [cast]
    parts = [
        np.frombuffer(
            chunk.buffers()[1], dtype=dtype, count=len(chunk), offset=chunk.offset * to.byte_width
        )
        for chunk in chunks
        if len(chunk)
    ]
    if cast.null_count:
        parts = [part.copy() for part in parts]
        for part, chunk in zip(parts, (chunk for chunk in chunks if len(chunk)), strict=True):
            if chunk.null_count:
                part[~_bits(chunk.buffers()[0], chunk.offset, len(chunk))] = np.nan
    if not parts:
        return np.empty(0, dtype=dtype)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _column_to_numpy(column: Any) -> npt.NDArray[Any]:
    if pa.types.is_integer(column.type) and column.null_count == 0:
        # Exact: float64 would round integers beyond 2**53 (identifiers).
        wide = pa.uint64() if column.type == pa.uint64() else pa.int64()
        integers: npt.NDArray[Any] = numbers_to_numpy(column, wide)
        return integers if integers.flags.writeable else integers.copy()
    if is_numeric(column.type):
        numbers: FloatArray = numbers_to_numpy(column, pa.float64(), safe=False)
        return numbers if numbers.flags.writeable else numbers.copy()
    if pa.types.is_temporal(column.type):
        column = pc.cast(column, pa.string())
    flat = is_text(column.type) or pa.types.is_boolean(column.type) or pa.types.is_null(column.type)
    if flat and pandas_free(len(column)):
        # the same Python objects as to_numpy's (str, bool, None), without pandas
        objects: npt.NDArray[Any] = np.empty(len(column), dtype=object)
        objects[:] = column.to_pylist()
        return objects
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
    target_names = name_list(targets, "target")
    if not target_names:
        raise DataError(f"{source}: no target column given; name at least one target column")
    check_known(table, target_names, "target")
    target_set = set(target_names)
    if features is None:
        feature_names = tuple(name for name in table.numeric_columns if name not in target_set)
        # First: a text column that is a numeric column with a typo names its bad cell.
        _refuse_numeric_looking_text(table, target_set)
        if not feature_names:
            raise DataError(f"{source}: no feature columns left: {_no_features_reason(table)}")
    else:
        feature_names = name_list(features, "feature")
        if not feature_names:
            raise DataError(f"{source}: no feature column given; name at least one feature")
        check_known(table, feature_names, "feature")
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
        what = "the table" if table.file_format == "arrow" else "the file"
        raise DataError(
            f"{source}: {what} has {rows}, at least {min_rows} are needed to fit a model; "
            "add more rows"
        )
    # The first bad cell of targets and features together named, as a streamed batch names it.
    Y, bad_y = _matrix(table, target_names, False)
    X, bad_x = _matrix(table, feature_names, False)
    bad = min((b for b in (bad_y, bad_x) if b is not None), key=lambda b: b[0], default=None)
    if bad is not None:
        raise bad[1]
    return X, Y, feature_names, target_names


def feature_matrix(
    table: Table, feature_names: Sequence[str], *, missing_ok: bool = False
) -> FloatArray:
    """The (n, d) float64 feature matrix for prediction, columns in ``feature_names`` order.

    Columns are matched by name in any order; extra columns are ignored. ``missing_ok``: a
    missing cell is NaN (:func:`float_matrix`).

    >>> t = Table({"y": np.array([0.0]), "b": np.array([2.0]), "a": np.array([1.0])})
    >>> feature_matrix(t, ["a", "b"])
    array([[1., 2.]])
    """
    names = name_list(feature_names, "feature")
    missing = [name for name in names if name not in table.columns]
    if missing:
        listed = ", ".join(repr(name) for name in missing)
        raise DataError(
            f"{table.source}: missing feature column(s) {listed} that the model needs; "
            f"available columns: {listing(table.columns)}"
        )
    _check_duplicates(table, names)
    return float_matrix(table, names, missing_ok=missing_ok)


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
    skip = set(name_list(targets, "target")) | set(table.numeric_columns)
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
    return f"not numeric (type {printable(type_name)})"


def name_list(names: Sequence[str], kind: str) -> tuple[str, ...]:
    out = (names,) if isinstance(names, str) else tuple(names)
    for name in out:
        if not isinstance(name, str):
            raise ValidationError(f"{kind} names must be strings, got {name!r}")
    repeated = [name for name, count in Counter(out).items() if count > 1]
    if repeated:
        raise DataError(f"{kind} column {repeated[0]!r} is given more than once; give it once")
    return out


def check_known(table: Table, names: Sequence[str], kind: str) -> None:
    for name in names:
        if name not in table.columns:
            close = difflib.get_close_matches(name, list(table.columns), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DataError(
                f"{table.source}: no {kind} column {name!r}{hint}; "
                f"available columns: {listing(table.columns)}"
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
        f"{name!r} ({printable(table.types.get(name, 'text'))})" for name in others[:5]
    )
    return (
        f"the other columns are not numeric ({described}); add numeric feature columns or "
        "fix the values that are not numbers"
    )


def listing(names: Mapping[str, Any] | Sequence[str]) -> str:
    names = list(names)
    shown = ", ".join(repr(name) for name in names[:_MAX_LISTED])
    return shown + (f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")


def float_matrix(table: Table, names: Sequence[str], *, missing_ok: bool = False) -> FloatArray:
    """The (n, len(names)) float64 matrix of the named columns, each checked as
    :func:`select` checks features and targets (the first bad cell named by column and row).
    ``missing_ok``: a missing cell (empty, NA or NaN) is NaN, not an error (for the caller to
    drop or keep its row)."""
    out, first = _matrix(table, names, missing_ok)
    if first is not None:
        raise first[1]
    return out


def _matrix(
    table: Table, names: Sequence[str], missing_ok: bool
) -> tuple[FloatArray, tuple[tuple[int, int], DataError] | None]:
    """:func:`float_matrix`, its error returned with its place (row, the column's position in
    the file) rather than raised. The first bad cell in the file's reading order is named: the
    earliest row's, of that row the column that comes first in the file; so the cell named is
    the same whether the rows come whole or in batches, whatever order the columns were asked
    in. An error of a whole column (its type) has no row: it comes first."""
    out = np.empty((table.n_rows, len(names)), dtype=np.float64)
    first: tuple[tuple[int, int], DataError] | None = None
    position = {name: i for i, name in enumerate(table.columns)}
    for j, name in enumerate(names):  # one step per column
        try:
            out[:, j] = _numeric_column(table, name, missing_ok)
        except DataError as exc:
            row = getattr(exc, "row", 0)
            key = (row, position.get(name, len(position)))
            if first is None or key < first[0]:
                first = (key, exc)
            if row == 0:
                break
    return out, first


def _numeric_column(table: Table, name: str, missing_ok: bool = False) -> FloatArray:
    """The column as finite float64 numbers (NaN for a missing cell with ``missing_ok``), or a
    DataError naming the first bad row."""
    source, column = table.source, table.columns[name]
    where = f"{source}: column {name!r}"
    if column.dtype == object and table.file_format == "memory":
        # A table built in code may hold Python numbers in an object array.
        with contextlib.suppress(TypeError, ValueError):
            column = np.asarray(column, dtype=np.float64)
    if column.dtype == object:
        column = _parse_text_column(table, name, column, missing_ok)
    elif not np.issubdtype(column.dtype, np.number) or np.issubdtype(
        column.dtype, np.complexfloating
    ):
        raise DataError(f"{where} has type {column.dtype}, not numbers; use a numeric column")
    values = np.asarray(column, dtype=np.float64)
    bad = ~np.isfinite(values)
    if missing_ok:
        bad &= ~np.isnan(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        if np.isnan(values[row]):
            raise _missing_value_error(where, row + 1 + table.row_offset)
        raise _at_row(
            DataError(
                f"{where}, row {row + 1 + table.row_offset}: infinite value ({values[row]}); "
                "replace it or remove that row"
            ),
            row + 1 + table.row_offset,
        )
    return values


class MissingValueError(DataError):
    """A missing cell's error (:func:`_missing_value_error`): its message offers
    ``--missing drop``, which :meth:`without_drop` leaves out (for a command that has no such
    option)."""

    said = ""  # the message without the offer

    def without_drop(self) -> DataError:
        """The same error without the offer of ``--missing drop``."""
        return DataError(self.said or str(self))


def _missing_value_error(where: str, row: int) -> DataError:
    """A missing cell (empty, NA or NaN) at data row ``row`` of the column ``where`` names."""
    said = (
        f"{where}, row {row}: missing value (an empty cell, NA or NaN); fill it in or remove "
        "that row"
    )
    error = MissingValueError(
        f"{said}, or leave out the rows with a missing value with --missing drop (missing='drop')"
    )
    error.said = said
    return _at_row(error, row)


def _at_row(error: DataError, row: int) -> DataError:
    """``error``, marked with the data row (from 1) of the cell it names (:func:`float_matrix`
    names the earliest)."""
    error.row = row  # type: ignore[attr-defined]
    return error


def refuse_numeric_looking_text(table: Table, skip: Sequence[str]) -> None:
    """The check of :func:`select`'s default features on the text columns (but those in
    ``skip``): one whose values are mostly numbers (a numeric column with a typo, not a
    categorical one) names its first bad cell."""
    _refuse_numeric_looking_text(table, set(skip))


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
            text = _as_text(column)
        except (pa.ArrowException, TypeError, ValueError):
            continue
        present = len(text) - text.null_count
        if present == 0:
            continue
        numbers = int(pc.sum(pc.match_substring_regex(text, pattern=_NUMBER_RE)).as_py() or 0)
        if numbers * 2 > present:  # mostly numbers: parsing names the first offending cell
            _parse_text_column(table, name, column)


def _parse_text_column(
    table: Table, name: str, column: npt.NDArray[Any], missing_ok: bool = False
) -> FloatArray:
    where = f"{table.source}: column {name!r}"
    file_type = table.types.get(name, "")
    if table.file_format == "parquet" or not (file_type == "" or "string" in file_type):
        shown = printable(file_type) or "text"
        raise DataError(
            f"{where} has type {shown}, not numbers; features and targets must be numeric columns"
        )
    try:
        text = _as_text(column)
    except (pa.ArrowException, TypeError, ValueError):
        raise DataError(
            f"{where} holds values that are not text or numbers; features and targets must be "
            "numeric columns"
        ) from None
    numeric = pc.match_substring_regex(text, pattern=_NUMBER_RE)
    not_number = _bools(pc.invert(numeric))
    missing = _bools(text.is_null())
    first_bad = int(np.argmax(not_number)) if not_number.any() else None
    first_missing = int(np.argmax(missing)) if missing.any() and not missing_ok else None
    if first_missing is not None and (first_bad is None or first_missing < first_bad):
        raise _missing_value_error(where, first_missing + 1 + table.row_offset)
    if first_bad is not None:
        value = str(column[first_bad])
        shown = repr(value if len(value) <= 40 else value[:37] + "...")
        hint = " (use '.' as the decimal point)" if _DECIMAL_COMMA_RE.match(value) else ""
        raise _at_row(
            DataError(
                f"{where}, row {first_bad + 1 + table.row_offset}: {shown} is not a number"
                f"{hint}; fix or remove that row"
            ),
            first_bad + 1 + table.row_offset,
        )
    try:
        parsed = pc.cast(pc.utf8_trim_whitespace(text), pa.float64())
    except pa.ArrowInvalid as exc:  # pragma: no cover - the pattern mirrors pyarrow's parser
        raise DataError(f"{where} holds a value that is not a number ({flat(exc)})") from None
    return numbers_to_numpy(parsed, pa.float64())


def _as_text(column: npt.NDArray[Any]) -> pa.Array:
    """``pa.array(column, type=pa.string())``, without pa.array while pandas is not imported
    (:func:`pandas_free`)."""
    text = text_array(column, from_pandas=False) if pandas_free(len(column)) else None
    return pa.array(column, type=pa.string()) if text is None else text
