"""Data in and out: reading tables from files, choosing features and targets, writing results."""

from gradfit.data.readers import (
    Table,
    atomic_write,
    feature_matrix,
    read_table,
    select,
    table_to_csv_text,
    write_table,
)

__all__ = [
    "Table",
    "atomic_write",
    "feature_matrix",
    "read_table",
    "select",
    "table_to_csv_text",
    "write_table",
]
