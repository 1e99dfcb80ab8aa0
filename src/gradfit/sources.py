"""What a data source is, for every road (fit, predict, evaluate; read whole or streamed), and a
source read whole.

:func:`source_kind` says what a source is (a table in memory, a built-in data set's name, a
file, a directory or glob of files), :func:`source_name` how messages and reports name it, and
:func:`read_source` reads a file, a built-in data set or a table in memory whole, as a
:class:`gradfit.data.Table`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

from gradfit.data import Table, read_table
from gradfit.data.memory import TableInMemory, memory_table_name, read_memory_table
from gradfit.datasets import BUILTIN_DATASETS, load_dataset
from gradfit.errors import ValidationError
from gradfit.storage import as_path

__all__ = ["SourceKind", "read_source", "source_kind", "source_name"]


def read_source(source: str | TableInMemory, text_columns: Sequence[str] = ()) -> Any:
    """The :class:`gradfit.data.Table` of a file, of a built-in data set by name, or of a table
    in memory (:func:`gradfit.data.memory.read_memory_table`; ``text_columns`` apply to a CSV
    file only: the columns of a table in memory keep their types)."""
    kind = source_kind(source)
    if kind == "memory":
        return read_memory_table(source)
    if kind == "builtin":
        data = load_dataset(source)
        columns = {
            **{n: data.data[:, j].double().numpy() for j, n in enumerate(data.feature_names)},
            **{n: data.target[:, j].double().numpy() for j, n in enumerate(data.target_names)},
        }
        return Table(columns=columns, source=source)
    return read_table(source, text_columns=text_columns)


SourceKind = Literal["memory", "builtin", "files", "file"]


def source_kind(source: object) -> SourceKind:
    """What a data source is: the one place that says it, for every road (fit, predict,
    evaluate; read whole or streamed).

    ``"memory"``: a table in memory (a pandas DataFrame, a pyarrow Table or RecordBatch, or a
    mapping of column name to 1-D array: :func:`gradfit.data.memory.memory_table_name`), read
    whole, never streamed. Otherwise a path (str or path-like): ``"builtin"``, the name of a
    built-in data set when no file of that name exists; ``"files"``, a directory, or a glob
    (a path that does not exist holding ``*``, ``?`` or ``[``); ``"file"``, anything else (a
    missing or unreadable file gets the reader's message). Anything else is a ValidationError.

    >>> source_kind("crops"), source_kind({"x": [1.0]}), source_kind("data/*.csv")
    ('builtin', 'memory', 'files')
    """
    if memory_table_name(source) is not None:
        return "memory"
    if not isinstance(source, (str, os.PathLike)):
        raise ValidationError(
            "a data source is a data file, a directory or glob of files, a built-in data set's "
            f"name ({', '.join(BUILTIN_DATASETS)}), or a table in memory (a pandas DataFrame, "
            "a pyarrow Table or RecordBatch, or a dict of column name to 1-D array); got "
            f"{type(source).__name__}"
        )
    text = str(source)
    path = as_path(text)
    if path.exists():
        return "files" if path.is_dir() else "file"
    if text in BUILTIN_DATASETS:
        return "builtin"
    return "files" if any(c in text for c in "*?[") else "file"


def source_name(source: object) -> str:
    """``source`` as messages and reports name it: the path as given, a built-in data set's
    name, or what a table in memory is (``"DataFrame"``, ``"table in memory"``...)."""
    return memory_table_name(source) or str(source)
