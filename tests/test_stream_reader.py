"""The batch reader of gradfit.data.stream: the columns as read against the stacked matrix, the
bounded head read that infers column kinds, and the read-ahead thread's ordering, errors and
clean-up. (Streaming fits against in-memory ones are in test_streaming.py.)"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gradfit.data import parquet_stream
from gradfit.data import stream as stream_module
from gradfit.data.ahead import read_ahead as _read_ahead
from gradfit.data.stream import open_stream
from gradfit.errors import DataError, ValidationError


def _table(n: int = 250) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "a": rng.normal(size=n),
        "k": np.arange(n, dtype=np.int64) * 3,  # an integer column: converted to float64
        "b": rng.normal(size=n) * 1e3,
        "y": rng.normal(size=n),
    }


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    cols = _table()
    table = pa.table(cols)
    pq.write_table(table, tmp_path / "d.parquet", row_group_size=60)
    header = ",".join(cols)
    rows = [",".join(repr(float(cols[c][i])) if c != "k" else str(cols[c][i]) for c in cols)
            for i in range(250)]  # fmt: skip
    text = "\n".join([header, *rows]) + "\n"
    (tmp_path / "d.csv").write_text(text)
    with gzip.open(tmp_path / "d.csv.gz", "wt") as fh:
        fh.write(text)
    return {
        "parquet": tmp_path / "d.parquet",
        "csv": tmp_path / "d.csv",
        "gzip": tmp_path / "d.csv.gz",
    }


@pytest.mark.parametrize("kind", ["parquet", "csv", "gzip"])
def test_columns_as_read_equal_the_stacked_matrix(files: dict[str, Path], kind: str) -> None:
    cols = _table()
    names = ["a", "k", "b", "y"]
    s = open_stream(files[kind], batch_rows=40)
    stacked = list(s.batches(names))
    loose = list(s.batches(names, stack=False))
    assert [b.n_rows for b in stacked] == [b.n_rows for b in loose]
    assert all(b.matrix is None for b in loose)
    for name in names:
        whole = np.concatenate([b.columns[name] for b in loose])
        assert whole.dtype == np.float64
        # Exactly the values written (CSV: repr round-trips a float64).
        np.testing.assert_array_equal(whole, cols[name].astype(np.float64))
        np.testing.assert_array_equal(np.concatenate([b.columns[name] for b in stacked]), whole)
    M = np.concatenate([b.matrix for b in stacked if b.matrix is not None])
    np.testing.assert_array_equal(M, np.column_stack([cols[n] for n in names]))
    X, Y = stacked[0].split_matrix(3)
    np.testing.assert_array_equal(X, stacked[0].matrix[:, :3])  # type: ignore[index]
    np.testing.assert_array_equal(Y[:, 0], stacked[0].columns["y"])
    with pytest.raises(ValidationError, match="stack=False"):
        loose[0].split_matrix(3)


def test_columns_as_read_still_name_a_bad_cell(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("a,y\n1,2\n3,4\n5,oops\n7,8\n")
    s = open_stream(path, batch_rows=2)
    with pytest.raises(DataError, match=r"bad\.csv: column 'y', row 3: 'oops' is not a number"):
        list(s.batches(["a", "y"], stack=False))


def test_a_non_finite_value_is_named_without_stacking(tmp_path: Path) -> None:
    path = tmp_path / "inf.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0, np.inf], "y": [1.0, 2.0, 3.0]}), path)
    with pytest.raises(DataError, match=r"column 'a', row 3"):
        list(open_stream(path).batches(["a", "y"], stack=False))


@pytest.mark.parametrize("head_bytes", [8, 64, 1 << 22])
def test_column_kinds_come_from_a_bounded_head(
    monkeypatch: pytest.MonkeyPatch, files: dict[str, Path], tmp_path: Path, head_bytes: int
) -> None:
    # However small the head read (8 bytes: shorter than the header line itself), it holds the
    # header and at least one whole row, so the kinds are right; a text column is left out.
    monkeypatch.setattr(stream_module, "_HEAD_TEXT", head_bytes)
    for kind in ("csv", "gzip"):
        features, left_out = open_stream(files[kind]).column_kinds(["y"])
        assert features == ("a", "k", "b")
        assert left_out == {}
    path = tmp_path / "text.csv"
    path.write_text("a,name,y\n1,x,2\n3,z,4\n")
    features, left_out = open_stream(path).column_kinds(["y"])
    assert features == ("a",)
    assert set(left_out) == {"name"}


def test_the_head_read_stops_at_its_limit(
    monkeypatch: pytest.MonkeyPatch, files: dict[str, Path]
) -> None:
    # Only whole lines of the first _HEAD_TEXT bytes are parsed (not the whole file).
    monkeypatch.setattr(stream_module, "_HEAD_TEXT", 200)
    s = open_stream(files["csv"])
    head = stream_module._csv_head(s._files[0])
    assert len(head) <= 200
    assert head.endswith(b"\n")
    assert head.count(b"\n") >= 2
    assert files["csv"].read_bytes().startswith(head)


def test_a_header_without_rows_is_named(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("a,y\n")
    with pytest.raises(DataError, match="header but no data rows"):
        open_stream(path).column_kinds(["y"])


# ----------------------------------------------------------------------------- read-ahead


def _source(log: list[str], fail_at: int | None = None, n: int = 6) -> Iterator[int]:
    try:
        for i in range(n):
            if i == fail_at:
                raise ValueError(f"item {i} is bad")
            log.append(f"made {i} in {threading.current_thread().name}")
            yield i
    finally:
        log.append("closed")


@pytest.mark.parametrize("depth", [1, 3])
def test_read_ahead_keeps_the_order_and_closes_the_source(depth: int) -> None:
    log: list[str] = []
    assert list(_read_ahead(_source(log), depth)) == list(range(6))
    assert log[-1] == "closed"
    # The items were made in the worker thread, not the caller's.
    assert all(threading.current_thread().name not in entry for entry in log[:-1])


@pytest.mark.parametrize("depth", [1, 3])
def test_read_ahead_closes_the_source_when_the_caller_stops_early(depth: int) -> None:
    log: list[str] = []
    items = _read_ahead(_source(log), depth)
    assert next(items) == 0
    items.close()
    assert log[-1] == "closed"
    made = [entry for entry in log if entry.startswith("made")]
    assert len(made) <= 1 + depth + 1  # what was asked for and at most what was read ahead


def test_read_ahead_raises_a_failure_in_its_place() -> None:
    log: list[str] = []
    got: list[int] = []
    with pytest.raises(ValueError, match="item 2 is bad"):
        for item in _read_ahead(_source(log, fail_at=2), 2):
            got.append(item)
    assert got == [0, 1]
    assert "closed" in log


def test_consecutive_row_groups_are_read_as_one_run(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Consecutive row groups of a file go through one open file and one read-ahead thread;
    # the batches, their rows and the progress are those of the row groups read one at a time.
    other = tmp_path / "e.parquet"
    other.write_bytes(files["parquet"].read_bytes())
    s = open_stream([files["parquet"], files["csv"], other], batch_rows=40)
    units = s.units()  # 5 row groups, the CSV file, 5 row groups
    assert len(units) == 11
    shuffled = [units[i] for i in (2, 3, 0, 5, 4, 1, 6, 7, 8, 10, 9)]
    threads = []
    real = stream_module._read_ahead

    def counted(items: Iterator[object], depth: int = 1) -> Iterator[object]:
        threads.append(depth)
        return real(items, depth)

    monkeypatch.setattr(stream_module, "_read_ahead", counted)
    monkeypatch.setattr(parquet_stream, "_read_ahead", counted)
    size = {f.path: f for f in s._files}
    # In order: a run per file; shuffled: d.parquet's groups 2, 3, 0, the CSV file, its
    # groups 4, 1, then e.parquet's five.
    for order, runs in ((units, 3), (shuffled, 4)):
        threads.clear()
        together = list(s.batches(["a", "k"], units=order))
        assert len(threads) == runs
        done = 0
        alone = []
        for unit in order:
            part = list(s.batches(["a", "k"], units=[unit]))
            alone += [(b.file, b.file_row, b.n_rows, b.bytes_done + done) for b in part]
            f = size[unit.file]
            done += f.size if unit.row_group is None else stream_module._share(f, unit.row_group)
        assert [(b.file, b.file_row, b.n_rows, b.bytes_done) for b in together] == alone
        each = [b.matrix for u in order for b in s.batches(["a", "k"], units=[u])]
        np.testing.assert_array_equal(
            np.concatenate([b.matrix for b in together if b.matrix is not None]),
            np.concatenate([m for m in each if m is not None]),
        )


def test_a_file_rewritten_between_passes_is_refused(tmp_path: Path) -> None:
    """A file rewritten with as many rows between two passes (the statistics, then an epoch):
    before, the fit read the new values in its epochs and the old ones in its statistics and
    returned one model of both, exit 0."""
    from gradfit.solvers.config import SolverConfig
    from gradfit.streaming import fit_stream

    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        x = rng.normal(size=200)
        pq.write_table(pa.table({"x": x, "y": 2 * x + 1}), data / f"p{i}.parquet")
    stream = open_stream(data, batch_rows=64)
    assert sum(b.n_rows for b in stream.batches(["x", "y"])) == 400
    x = rng.normal(size=200)
    pq.write_table(pa.table({"x": x, "y": -3 * x}), data / "p1.parquet")  # as many rows
    with pytest.raises(DataError, match=r"p1\.parquet: changed while it was being read"):
        list(stream.batches(["x", "y"]))

    def rewrite(info: object) -> None:  # after the first epoch: the second pass sees it
        x = rng.normal(size=200)
        pq.write_table(pa.table({"x": x, "y": 5 * x}), data / "p0.parquet")

    config = SolverConfig(solver="sgd", max_epochs=3, tol=None, batch_size=32)
    with pytest.raises(DataError, match=r"p0\.parquet: changed while it was being read"):
        fit_stream(data, ["y"], None, config, seed=0, callback=rewrite)
