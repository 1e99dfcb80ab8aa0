"""Parquet files written in small row groups: consecutive row groups smaller than a batch are
read together, so that batches have about ``batch_rows`` rows whatever the file's layout (issue
23: 2,000-row groups made streamed fits 4-6x pyarrow's read). The batches, the fit, the
progress and the messages are those of the same rows written as one row group."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from gradfit.data import stream as stream_module
from gradfit.data.stream import Batch, open_stream
from gradfit.errors import DataError
from gradfit.fitting import fit_data
from gradfit.solvers.config import SolverConfig
from gradfit.streaming import fit_stream

N = 500
GROUP = 10  # rows per row group of the tiny file: 50 groups
BATCH = 40  # four tiny groups per batch


def _table(n: int = N) -> pa.Table:
    rng = np.random.default_rng(7)
    a = rng.normal(size=n)
    return pa.table(
        {
            "a": a,
            "k": np.arange(n, dtype=np.int64) % 17,  # integers: converted to float64
            "t": [f"s{i % 5}" for i in range(n)],  # text
            "y": 2.0 * a - 0.5 * (np.arange(n) % 17) + rng.normal(size=n),
        }
    )


def _write(table: pa.Table, tmp_path: Path) -> tuple[Path, Path]:
    tiny, one = tmp_path / "tiny.parquet", tmp_path / "one.parquet"
    pq.write_table(table, tiny, row_group_size=GROUP)
    pq.write_table(table, one)  # one row group
    assert pq.read_metadata(tiny).num_row_groups == N // GROUP
    assert pq.read_metadata(one).num_row_groups == 1
    return tiny, one


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return _write(_table(), tmp_path)


def _rows(batches: list[Batch]) -> list[tuple[int, int]]:
    return [(b.file_row, b.n_rows) for b in batches]


def test_small_row_groups_make_batches_of_batch_rows(files: tuple[Path, Path]) -> None:
    tiny, one = files
    s = open_stream(tiny, batch_rows=BATCH)
    assert len(s.units()) == N // GROUP  # the units (what ranks share) are still the groups
    read = list(s.batches(["a", "k", "y"]))
    # 12 batches of 4 whole groups, then the last 2 groups (not one batch per 10-row group).
    assert _rows(read) == [(1 + BATCH * i, BATCH) for i in range(12)] + [(481, 20)]
    same = list(open_stream(one, batch_rows=BATCH).batches(["a", "k", "y"]))
    assert _rows(same) == _rows(read)
    for got, want in zip(read, same, strict=True):
        assert got.matrix is not None and want.matrix is not None
        np.testing.assert_array_equal(got.matrix, want.matrix)
    # Progress: each batch reports the bytes of the row groups read through its last one.
    f = s._files[0]
    shares = np.cumsum([stream_module._share(f, g) for g in range(N // GROUP)])
    last = [min((i + 1) * BATCH // GROUP, N // GROUP) - 1 for i in range(len(read))]
    assert [b.bytes_done for b in read] == [int(shares[g]) for g in last]
    assert all(b.total_bytes == tiny.stat().st_size for b in read)


def test_columns_as_read_text_and_raw_rows_equal_one_row_group(files: tuple[Path, Path]) -> None:
    tiny, one = files
    small, whole = open_stream(tiny, batch_rows=BATCH), open_stream(one, batch_rows=BATCH)
    for options in ({"stack": False}, {"raw": True}):
        got = list(small.batches(["a", "k"], ["t"], **options))  # type: ignore[arg-type]
        want = list(whole.batches(["a", "k"], ["t"], **options))  # type: ignore[arg-type]
        assert _rows(got) == _rows(want) and len(got) == 13
        for name in ("a", "k", "t"):
            np.testing.assert_array_equal(
                np.concatenate([b.columns[name] for b in got]),
                np.concatenate([b.columns[name] for b in want]),
            )
    levels = [sorted(set(d["t"])) for d in small.distinct_values([], ["t"])]
    assert len(levels) == 13 and all(v == [f"s{i}" for i in range(5)] for v in levels)


def test_only_consecutive_small_groups_of_the_units_given_are_merged(
    files: tuple[Path, Path],
) -> None:
    tiny, _ = files
    s = open_stream(tiny, batch_rows=BATCH)
    units = s.units()
    # A rank's share (every other group): no two consecutive in the file, one batch each.
    assert _rows(list(s.batches(["a"], units=s.shard(1, 2)))) == [
        (1 + GROUP * g, GROUP) for g in range(1, N // GROUP, 2)
    ]
    # Runs of the units given, in their order: groups 0-4 then 10-14, then 3 after 20.
    order = [*units[0:5], *units[10:15], units[20], units[3]]
    assert _rows(list(s.batches(["a"], units=order))) == [
        (1, 40), (41, 10), (101, 40), (141, 10), (201, 10), (31, 10)
    ]  # fmt: skip


def test_a_group_of_batch_rows_or_more_is_read_alone(tmp_path: Path) -> None:
    table = _table(130)
    path = tmp_path / "mixed.parquet"
    with pq.ParquetWriter(path, table.schema) as out:
        for lo, hi in ((0, 10), (10, 20), (20, 70), (70, 80), (80, 90), (90, 100), (100, 110),
                       (110, 130)):  # fmt: skip
            out.write_table(table.slice(lo, hi - lo))
    s = open_stream(path, batch_rows=BATCH)
    assert len(s.units()) == 8
    assert _rows(list(s.batches(["a"]))) == [
        (1, 20), (21, 40), (61, 10), (71, 40), (111, 20)
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("row", "column", "cell"), [(137, "a", None), (293, "k", None), (458, "a", float("inf"))]
)
def test_a_bad_cell_in_a_later_merged_group_is_named_as_in_one_group(
    tmp_path: Path, row: int, column: str, cell: float | None
) -> None:
    table = _table()
    values = table.column(column).to_pylist()
    values[row - 1] = cell
    table = table.set_column(
        table.schema.get_field_index(column),
        column,
        pa.array(values, table.schema.field(column).type),
    )
    tiny, one = _write(table, tmp_path)
    messages = []
    for path in (tiny, one):
        for stack in (True, False):
            with pytest.raises(DataError) as caught:
                list(open_stream(path, batch_rows=BATCH).batches(["a", "k", "y"], stack=stack))
            messages.append(str(caught.value).replace(path.name, "FILE"))
        with pytest.raises(DataError) as caught:
            fit_stream(path, ["y"], ["a", "k"], config=SolverConfig("lstsq"), batch_rows=BATCH)
        messages.append(str(caught.value).replace(path.name, "FILE"))
    assert f"column '{column}', row {row}" in messages[0]
    assert messages[:3] == messages[3:]


@pytest.mark.parametrize("solver", ["lstsq", "gd"])
def test_the_fit_equals_that_of_one_row_group(files: tuple[Path, Path], solver: str) -> None:
    tiny, one = files
    config = SolverConfig(solver)
    got = fit_stream(tiny, ["y"], ["a", "k"], config=config, batch_rows=BATCH)
    want = fit_stream(one, ["y"], ["a", "k"], config=config, batch_rows=BATCH)
    # The same batches in the same order: the same numbers.
    assert torch.equal(got.model.weight, want.model.weight)
    assert torch.equal(got.model.bias, want.model.bias)
    if solver == "lstsq":  # and the in-memory least squares, to the streaming tests' tolerance
        memory = fit_data(str(one), ["y"], ["a", "k"], config=config)
        scale = float(memory.model.weight.abs().max())
        assert float((got.model.weight - memory.model.weight).abs().max()) <= 1e-10 * scale
