"""Tables in memory as data sources: a pandas DataFrame, a pyarrow Table or RecordBatch, or a
mapping of column name to 1-D array-like (NumPy arrays, lists, tuples, torch tensors, pyarrow
arrays, pandas Series).

Such a table is a source of one batch, read as a file is read whole: it becomes a pyarrow table,
then a :class:`~gradfit.data.tables.Table` by :func:`~gradfit.data.tables.to_table`, so that the
columns keep their types as a Parquet file's do (integers exact, missing cells NaN, dates as
text), and the choice of features and targets, the checks on cells and the messages are those
of a file (a missing value names its column and row, counted from 1 in the table's order; a
text column is left out of the default features as ``"text"``). A text column is checked as a
CSV file's: a column of numbers written as text is read as numbers, and one bad cell in it is
named. Neither pandas nor torch is imported here: a DataFrame or a tensor can only exist once
its library is loaded, so that is where they are looked for.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa

from gradfit.data.formats import flat
from gradfit.data.tables import Table, check_r_integer_na, to_table
from gradfit.errors import DataError, ValidationError

__all__ = ["TableInMemory", "memory_table_name", "read_memory_table"]

# A pandas DataFrame, a pyarrow Table or RecordBatch, or a mapping of column name to 1-D
# array-like. Typed loosely: pandas is not imported for its type.
TableInMemory: TypeAlias = Any

# A value of a column of mixed Python values that arrow cannot type (1.5 and "x"): read as its
# text, as the same cells in a CSV file would be, so that the bad cell is named by its row.
_SCALARS = (str, int, float, np.number, np.bool_)


def memory_table_name(source: object) -> str | None:
    """What ``source`` is, for messages (``"DataFrame"``, ``"pyarrow Table"``, ``"pyarrow
    RecordBatch"``, ``"table in memory"`` for a mapping of columns), or None when it is no
    table in memory."""
    if isinstance(source, pa.Table):
        return "pyarrow Table"
    if isinstance(source, pa.RecordBatch):
        return "pyarrow RecordBatch"
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(source, pandas.DataFrame):
        return "DataFrame"
    if isinstance(source, Mapping):
        return "table in memory"
    return None


def read_memory_table(source: TableInMemory) -> Table:
    """The :class:`~gradfit.data.tables.Table` of a table in memory (see the module doc).

    A DataFrame's index is not a column and is ignored (rows are counted by position), and its
    column labels become their ``str``, as :meth:`pyarrow.Table.from_pandas` names them; a
    mapping's keys must be strings.

    Raises
    ------
    ValidationError
        ``source`` is no table in memory; a column is not a 1-D array-like (a 2-D array, a
        single value), or the columns differ in length; a name is not a string.
    DataError
        a column arrow cannot read; a table without columns or rows.
    """
    name = memory_table_name(source)
    if name is None:
        raise ValidationError(
            f"a table in memory must be a pandas DataFrame, a pyarrow Table or RecordBatch, or a "
            f"mapping of column name to 1-D array; got {type(source).__name__}"
        )
    if isinstance(source, pa.Table):
        arrow = source
    elif isinstance(source, pa.RecordBatch):
        arrow = pa.Table.from_batches([source])
    elif name == "DataFrame":
        arrow = _arrow_table(name, [str(label) for label in source.columns], _frame_columns(source))
    else:
        for key in source:
            if not isinstance(key, str):
                raise ValidationError(
                    f"{name}: column names must be strings, got {key!r} "
                    f"({type(key).__name__}); name each column with a string"
                )
        arrow = _arrow_table(name, list(source), list(source.values()))
    for position, column in enumerate(arrow.column_names, start=1):
        if not column.strip():
            raise DataError(f"{name}: column {position} has an empty name; give it a name")
    if arrow.num_columns == 0:
        raise DataError(f"{name}: the table has no columns; give it feature and target columns")
    if arrow.num_rows == 0:
        raise DataError(f"{name}: the table has no rows; give it at least one row")
    return to_table(arrow, name, "arrow")


def _frame_columns(frame: Any) -> list[Any]:
    return [frame.iloc[:, j] for j in range(frame.shape[1])]


def _arrow_table(source: str, names: list[str], values: Sequence[Any]) -> pa.Table:
    """Columns one by one (so that a message names the column; duplicate names are kept, as a
    file's header may repeat one), then checked for equal lengths."""
    arrays = [_arrow_column(source, name, value) for name, value in zip(names, values, strict=True)]
    lengths = [len(array) for array in arrays]
    for j, length in enumerate(lengths):
        if length != lengths[0]:
            raise ValidationError(
                f"{source}: column {names[j]!r} has {length} values and column {names[0]!r} "
                f"{lengths[0]}; give every column one value per row"
            )
    return pa.Table.from_arrays(arrays, names=names)


def _arrow_column(source: str, name: str, value: Any) -> pa.Array | pa.ChunkedArray:
    """One column as arrow reads it, NaN and None as missing cells."""
    if isinstance(value, (pa.Array, pa.ChunkedArray)):
        return value
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        value = (value.float() if value.dtype == torch.bfloat16 else value).numpy()
    pandas = sys.modules.get("pandas")
    if not (pandas is not None and isinstance(value, pandas.Series)):
        if isinstance(value, np.ndarray) or hasattr(value, "__array__"):
            value = np.asarray(value)
            if value.ndim != 1:
                raise ValidationError(
                    f"{source}: column {name!r} is a {value.ndim}-D array of shape "
                    f"{value.shape}; give each column as a 1-D array, one value per row"
                )
        elif isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise ValidationError(
                f"{source}: column {name!r} is a {type(value).__name__}, not a 1-D array-like; "
                "give each column as a NumPy array, a list or a tensor, one value per row"
            )
    check_r_integer_na(value, name, source)
    try:
        return pa.array(value, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        cells = list(value)
        if all(_missing(cell) or isinstance(cell, _SCALARS) for cell in cells):
            return pa.array([None if _missing(cell) else str(cell) for cell in cells], pa.string())
        raise DataError(
            f"{source}: column {name!r} cannot be read as a column ({flat(exc)}); give numbers "
            "or text, one value per row"
        ) from None


def _missing(cell: Any) -> bool:
    return cell is None or (isinstance(cell, (float, np.floating)) and bool(np.isnan(cell)))
