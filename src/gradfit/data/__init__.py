"""Data in and out: reading tables from files, choosing features and targets, writing results."""

from gradfit.atomic import atomic_write
from gradfit.data.readers import (
    Table,
    feature_matrix,
    left_out_columns,
    read_table,
    select,
    table_to_csv_text,
    write_table,
)

__all__ = [
    "Table",
    "atomic_write",
    "feature_matrix",
    "left_out_columns",
    "read_table",
    "select",
    "table_to_csv_text",
    "write_table",
]
