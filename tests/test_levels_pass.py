"""The streamed levels pass made distinct by pyarrow (BatchStream.distinct_values, fed to
LevelGatherer.update_values) gives exactly the levels of the row-by-row pass it replaced
(every batch converted to Python objects and given to LevelGatherer.update): the same values,
of the same types (text as str, numbers under C() as int or float, booleans as "FALSE"/"TRUE"),
in the same order, missing cells ignored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq
import pytest

from gradfit.data import Table
from gradfit.data.stream import open_stream
from gradfit.design import LevelGatherer
from gradfit.errors import ValidationError


def _table(rows: int = 997) -> pa.Table:
    rng = np.random.default_rng(19)
    text = np.array(["b", "a", "B", "é", "level 10", "level 2", ""], dtype=object)[
        rng.integers(0, 7, rows)
    ]
    text[rng.random(rows) < 0.05] = None
    whole = rng.integers(0, 5, rows).astype(float) * 2  # integral numbers: C(cyl)4
    whole[rng.random(rows) < 0.05] = np.nan
    halves = rng.integers(-3, 3, rows) / 2  # -1.5 .. 1.0: ints and floats mixed
    ints = rng.integers(-2, 3, rows)  # an integer column with no missing cell
    flags = rng.random(rows) < 0.3
    flag_mask = rng.random(rows) < 0.05
    return pa.table(
        {
            "g": pa.array(text.tolist(), pa.string()),
            "cyl": pa.array(whole, pa.float64(), from_pandas=True),
            "half": pa.array(halves, pa.float64()),
            "k": pa.array(ints, pa.int64()),
            "ok": pa.array(flags.tolist(), pa.bool_(), mask=flag_mask),
            "y": pa.array(rng.normal(size=rows)),
        }
    )


def _old(path: Path, numbers: list[str], texts: list[str]) -> dict[str, tuple[Any, ...]]:
    stream = open_stream(path, batch_rows=100)
    gatherer = LevelGatherer([*numbers, *texts], source=stream.source)
    for batch in stream.batches(numbers, texts, raw=True):
        gatherer.update(Table(dict(batch.columns), source=str(batch.file)))
    return gatherer.levels()


def _new(path: Path, numbers: list[str], texts: list[str]) -> dict[str, tuple[Any, ...]]:
    stream = open_stream(path, batch_rows=100)
    gatherer = LevelGatherer([*numbers, *texts], source=stream.source)
    for distinct in stream.distinct_values(numbers, texts):
        for name, values in distinct.items():
            gatherer.update_values(name, values)
    return gatherer.levels()


def _same(old: dict[str, tuple[Any, ...]], new: dict[str, tuple[Any, ...]]) -> None:
    assert old == new
    for name in old:  # the types too: 4 == 4.0, but C(cyl)4 is not C(cyl)4.0
        assert [type(v) for v in old[name]] == [type(v) for v in new[name]], name


@pytest.mark.parametrize("kind", ["parquet", "parquet-dictionary", "parquet-pages", "csv"])
def test_distinct_pass_gives_the_levels_of_the_row_pass(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = _table()
    path = tmp_path / f"data.{kind.split('-')[0]}"
    if kind == "parquet-dictionary":  # g stored as an arrow dictionary column
        at = table.schema.get_field_index("g")
        table = table.set_column(at, "g", table.column("g").dictionary_encode())
    if kind == "parquet-pages":  # row groups read batch by batch (iter_batches)
        monkeypatch.setattr("gradfit.data.parquet_stream._WHOLE_GROUP_BYTES", 0)
    if kind == "csv":
        pv.write_csv(table, path)
    else:
        pq.write_table(table, path, row_group_size=250)
    kind = kind.split("-")[0]
    numbers, texts = ["cyl", "half", "k"], ["g", "ok"]
    old, new = _old(path, numbers, texts), _new(path, numbers, texts)
    _same(old, new)
    assert new["cyl"] == (0, 2, 4, 6, 8) and type(new["cyl"][0]) is int
    assert new["half"] == (-1.5, -1, -0.5, 0, 0.5, 1)
    assert new["k"] == (-2, -1, 0, 1, 2)
    assert "" not in new["g"] or kind == "parquet"  # CSV: an empty cell is missing
    assert set(new["g"]) - {""} == {"B", "a", "b", "level 10", "level 2", "é"}
    if kind == "parquet":
        assert new["ok"] == ("FALSE", "TRUE")
    else:  # CSV: read as text, as read_table keeps a text column
        assert new["ok"] == ("false", "true")


def test_distinct_values_reads_only_the_asked_columns(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    pq.write_table(_table(), path, row_group_size=250)
    batches = list(open_stream(path, batch_rows=100).distinct_values([], ["g"]))
    assert len(batches) == 12  # 4 row groups of 250 rows (the last 247) in batches of 100
    assert all(list(b) == ["g"] for b in batches)
    assert all(len(b["g"]) <= 8 for b in batches)  # 7 texts and a missing cell at most


def test_update_values_refuses_an_unknown_column() -> None:
    with pytest.raises(ValidationError, match="'h' is not one of the columns"):
        LevelGatherer(["g"]).update_values("h", np.array(["a"], dtype=object))
