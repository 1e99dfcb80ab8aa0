"""Data in and out: reading tables from files (whole, or in batches), choosing features and
targets, writing results."""

from gradfit.atomic import atomic_write
from gradfit.data.readers import (
    Table,
    column_names,
    feature_matrix,
    left_out_columns,
    read_table,
    select,
    table_to_csv_text,
    write_table,
    write_table_batches,
)
from gradfit.data.stream import Batch, BatchStream, Unit, open_stream

__all__ = [
    "Batch",
    "BatchStream",
    "Table",
    "Unit",
    "atomic_write",
    "column_names",
    "feature_matrix",
    "left_out_columns",
    "open_stream",
    "read_table",
    "select",
    "table_to_csv_text",
    "write_table",
    "write_table_batches",
]
