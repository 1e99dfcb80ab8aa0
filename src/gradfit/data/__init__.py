"""Data in and out: reading tables from files (whole, or in batches), choosing features and
targets, writing results."""

from gradfit.atomic import atomic_write
from gradfit.data.readers import column_names, read_table
from gradfit.data.stream import Batch, BatchStream, Unit, open_stream
from gradfit.data.tables import Table, feature_matrix, left_out_columns, select
from gradfit.data.writers import table_to_csv_text, write_table, write_table_batches

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
