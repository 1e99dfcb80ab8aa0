"""The columns of a batch as the design reads them, whatever the batch is: a gradfit
:class:`~gradfit.data.Table`, a pyarrow table, a pandas DataFrame or a dict of arrays.

Every column becomes a 1-D NumPy array: numbers as float64 or int64 (NaN for a missing cell),
text as an object array (None for a missing cell), booleans as the text ``"FALSE"``/``"TRUE"``
(R's names for a logical column's levels: ``xTRUE``). A pandas ``Categorical`` keeps its
categories in their order (R's factor levels), given in :attr:`Columns.declared`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from gradfit.data.tables import Table, check_r_integer_na, to_table
from gradfit.errors import DataError, ValidationError

__all__ = ["Columns", "as_columns", "missing_mask"]


@dataclass(frozen=True)
class Columns:
    """A batch's columns, its source (for messages) and the data row of its first row."""

    columns: dict[str, npt.NDArray[Any]]
    source: str = "<table>"
    first_row: int = 1
    declared: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return next((len(col) for col in self.columns.values()), 0)

    def column(self, name: str) -> npt.NDArray[Any]:
        try:
            return self.columns[name]
        except KeyError:
            listed = ", ".join(repr(c) for c in list(self.columns)[:20])
            raise DataError(
                f"{self.source}: no column {name!r}, which the model uses; available columns: "
                f"{listed}"
            ) from None


def _pandas_columns(
    frame: Any, source: str
) -> tuple[dict[str, npt.NDArray[Any]], dict[str, tuple[Any, ...]]]:
    columns: dict[str, npt.NDArray[Any]] = {}
    declared: dict[str, tuple[Any, ...]] = {}
    for name in frame.columns:
        if not isinstance(name, str):
            raise ValidationError(f"data column names must be strings, got {name!r}")
        series = frame[name]
        dtype = series.dtype
        if str(dtype) == "category":
            categories = series.cat.categories
            declared[name] = tuple(_plain(v) for v in categories)
            codes = series.cat.codes.to_numpy()
            table = np.array([*declared[name], None], dtype=object)
            columns[name] = table[codes]  # code -1 (missing): the last entry, None
            continue
        if dtype.kind in "iu" or dtype.kind == "f":
            check_r_integer_na(series, name, source)
            columns[name] = series.to_numpy()
        elif dtype.kind == "b" or str(dtype) == "boolean":
            columns[name] = _bool_text(series.to_numpy(dtype=object))
        else:
            try:  # nullable numbers (Int64, Float64) and numbers held as objects
                columns[name] = series.to_numpy(dtype=np.float64, na_value=np.nan)
                if dtype.kind == "O" and not _all_numbers(series.to_numpy(dtype=object)):
                    raise TypeError
            except (TypeError, ValueError):
                columns[name] = _none_for_missing(series.to_numpy(dtype=object))
                if _all_bools(columns[name]):
                    columns[name] = _bool_text(columns[name])
    return columns, declared


def _all_numbers(values: npt.NDArray[Any]) -> bool:
    kind = pd.api.types.infer_dtype(values, skipna=True)
    return kind in ("integer", "floating", "mixed-integer-float", "decimal", "empty")


def _all_bools(values: npt.NDArray[Any]) -> bool:
    if values.dtype != object:
        return False
    return bool(pd.api.types.infer_dtype(values, skipna=True) == "boolean")


def _none_for_missing(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """An object array with None for each missing cell (None, NaN, pandas' NA)."""
    out = np.asarray(values, dtype=object)
    mask = pd.isna(out)
    if mask.any():
        out = out.copy()
        out[mask] = None
    return out


def _bool_text(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    missing = np.asarray(pd.isna(values), dtype=bool)
    truth = np.where(missing, False, values).astype(bool)
    out = np.where(truth, "TRUE", "FALSE").astype(object)
    out[missing] = None
    return out


def _is_missing_scalar(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (float, np.floating)):
        return bool(np.isnan(value))
    return type(value).__name__ in ("NAType", "NaTType")


def _plain(value: Any) -> Any:
    """A level as a plain JSON value: str, int (an integral number) or float."""
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        number = float(value)
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    return str(value)


def as_columns(batch: Any, source: str | None = None, first_row: int | None = None) -> Columns:
    """The batch's columns (see the module's docstring). ``first_row``: the data row of the
    batch's first row, 1-based (default: a Table's ``row_offset + 1``, else 1)."""
    declared: dict[str, tuple[Any, ...]] = {}
    if isinstance(batch, Columns):
        return batch
    if isinstance(batch, pa.RecordBatch):
        batch = pa.Table.from_batches([batch])
    if isinstance(batch, pa.Table):
        batch = to_table(batch, source or "<table>", "memory")
    if isinstance(batch, Table):
        columns = {
            name: _bool_text(col) if col.dtype == np.bool_ or _all_bools(col) else col
            for name, col in batch.columns.items()
        }
        return Columns(
            columns,
            source or batch.source,
            batch.row_offset + 1 if first_row is None else first_row,
        )
    if type(batch).__name__ == "DataFrame" and hasattr(batch, "columns"):
        columns, declared = _pandas_columns(batch, source or "DataFrame")
    elif isinstance(batch, Mapping):
        columns = {}
        for name, values in batch.items():
            if not isinstance(name, str):
                raise ValidationError(f"data column names must be strings, got {name!r}")
            array = np.asarray(values)
            check_r_integer_na(array, name, source or "table in memory")
            if array.ndim != 1:
                raise ValidationError(f"data column {name!r} must be 1-D, got {array.shape}")
            if array.dtype == np.bool_ or (array.dtype == object and _all_bools(array)):
                array = _bool_text(array)
            elif array.dtype.kind in "US":
                array = array.astype(object)
            elif array.dtype == object:
                array = _none_for_missing(array)
                if _all_numbers(array):
                    array = np.where(pd.isna(array), np.nan, array).astype(np.float64)
            columns[name] = array
        lengths = {len(col) for col in columns.values()}
        if len(lengths) > 1:
            raise ValidationError("data columns must have the same length")
    else:
        raise ValidationError(
            "data must be a pandas DataFrame, a pyarrow Table, a gradfit Table or a dict of "
            f"columns, got {type(batch).__name__}"
        )
    return Columns(columns, source or "<data>", 1 if first_row is None else first_row, declared)


def missing_mask(column: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """True where a cell is missing: NaN in a float column, None (or NaN) in an object one."""
    if column.dtype == object:
        missing: npt.NDArray[np.bool_] = np.asarray(pd.isna(column), dtype=bool)
        return missing
    if column.dtype.kind == "f":
        nan: npt.NDArray[np.bool_] = np.isnan(column)
        return nan
    return np.zeros(len(column), dtype=bool)
