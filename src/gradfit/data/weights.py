"""Row weights from a column of the data (``--weights COLUMN``, ``weights=`` of
:func:`gradfit.fit`): read, checked and kept apart from the features and targets, the same way
for a table read whole and for a stream's batches.

A weight is a finite number >= 0 (0 leaves the row out, as R's ``lm(weights = w)`` does); a
missing, infinite or negative one is one line naming the source, the column and the data row
(counted from 1, as every message about a cell counts it), and weights all 0 are refused
once every row has been seen.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from gradfit.data.tables import Table, check_known, float_matrix
from gradfit.errors import DataError

__all__ = [
    "check_weight_values",
    "refuse_all_zero",
    "refuse_weight_role",
    "table_weights",
    "without_column",
]


def check_weight_values(
    values: npt.NDArray[np.float64], source: str, column: str, first_row: int
) -> npt.NDArray[np.float64]:
    """``values`` (float64) unless one is missing (NaN: a raw batch of a design keeps an empty
    cell so; the other readers refuse it first), infinite or negative: then a DataError naming
    its data row (``first_row`` is that of ``values[0]``)."""
    bad = np.flatnonzero(~(values >= 0) | np.isinf(values))
    if bad.size:
        row = int(bad[0])
        value = values[row]
        if np.isnan(value):
            what = "missing value (an empty cell, NA or NaN) as weight"
        elif np.isinf(value):
            what = f"infinite value ({value:g}) as weight"
        else:
            what = f"negative weight ({value:g})"
        raise DataError(
            f"{source}: column {column!r}, row {row + first_row}: {what}; weights must be "
            "finite and >= 0 (0 leaves the row out): fix that row, or choose another --weights "
            "column"
        )
    return values


def refuse_all_zero(source: str, column: str) -> DataError:
    """The error for weights that are 0 in every row."""
    return DataError(
        f"{source}: column {column!r}: every weight is 0, and at least one row needs a positive "
        "weight; check the --weights column"
    )


def table_weights(table: Table, column: str) -> npt.NDArray[np.float64]:
    """The weight column of a table read whole, checked (see the module doc)."""
    check_known(table, [column], "weights")
    values = float_matrix(table, [column])[:, 0]
    check_weight_values(values, table.source, column, 1 + table.row_offset)
    if not bool((values > 0).any()):
        raise refuse_all_zero(table.source, column)
    return values


def refuse_weight_role(
    source: str,
    column: str | None,
    targets: Sequence[str],
    features: Sequence[str] | None,
    in_formula: str | None = None,
) -> None:
    """A DataError when the weights column is also named as a target or a feature, or by the
    formula ``in_formula`` (given when the formula reads it)."""
    if column is None:
        return
    if in_formula is not None:
        raise DataError(
            f"{source}: column {column!r} is the weights column (--weights) and cannot also be "
            f"in the formula {in_formula!r}; leave it out of the formula, or weigh by another "
            "column"
        )
    for kind, names in (("target", targets), ("feature", features or ())):
        if column in names:
            raise DataError(
                f"{source}: column {column!r} is the weights column (--weights) and cannot also "
                f"be a {kind}; leave it out of --{'target' if kind == 'target' else 'features'}, "
                "or weigh by another column"
            )


def without_column(table: Table, column: str | None) -> Table:
    """``table`` without ``column`` (the default features leave the weights out)."""
    if column is None or column not in table.columns:
        return table
    columns = {name: values for name, values in table.columns.items() if name != column}
    types = {name: kind for name, kind in table.types.items() if name != column}
    return Table(
        columns=columns,
        source=table.source,
        types=types,
        duplicates=table.duplicates,
        file_format=table.file_format,
        row_offset=table.row_offset,
    )
