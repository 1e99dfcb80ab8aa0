"""Tables in memory as sources (issue 18, "one road"): a pandas DataFrame, a pyarrow Table or
RecordBatch, and a dict of NumPy arrays, lists or torch tensors are read as the same data in a
CSV file read whole: ``gradfit.fit``, ``gradfit.predict``, ``gradfit.predict_batches`` and
``gradfit.evaluate`` give the same numbers to the bit and the same messages, the file's path
replaced by what the table is ("DataFrame", "table in memory"...)."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch

import gradfit
from gradfit.errors import DataError, ValidationError
from gradfit.fitting import IDENTIFIER, source_kind
from gradfit.persistence import SavedModel
from gradfit.solvers.config import SolverConfig

pytestmark = pytest.mark.usefixtures("one_thread")

N = 60
TARGETS = ["y", "z"]
IDS = [f"r{i:03d}" for i in range(N)]  # text: left out of the default features


def _columns(seed: int = 0) -> dict[str, np.ndarray]:
    """Three float features and an integer one, two targets: as written to the CSV file."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, 3)) * [1.0, 2.0, 3.0] + [5.0, -2.0, 100.0]
    n = rng.integers(0, 50, size=N)
    Y = X @ np.array([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]]).T + 0.5 * n[:, None]
    Y = Y + rng.normal(size=(N, 2))
    return {"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "n": n, "y": Y[:, 0], "z": Y[:, 1]}


def _cell(value: Any) -> str:
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return "" if math.isnan(value) else repr(float(value))  # repr: the float, to the bit


def _csv(folder: Path, columns: dict[str, np.ndarray]) -> Path:
    """The table as a CSV file (``id`` first); a NaN is an empty cell."""
    names = list(columns)
    lines = [",".join(["id", *names])]
    lines += [",".join([IDS[i], *(_cell(columns[c][i]) for c in names)]) for i in range(N)]
    path = folder / "data.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _with_ids(columns: dict[str, np.ndarray]) -> dict[str, Any]:
    return {"id": np.array(IDS), **columns}


def _nan_to_none(values: list[Any]) -> list[Any]:
    return [None if isinstance(v, float) and math.isnan(v) else v for v in values]


# Each kind of table in memory, built from the same columns, and what messages call it.
KINDS: dict[str, tuple[Callable[[dict[str, Any]], Any], str]] = {
    "DataFrame": (lambda cols: pd.DataFrame(cols), "DataFrame"),
    "arrow Table": (lambda cols: pa.table(cols), "pyarrow Table"),
    "RecordBatch": (lambda cols: pa.RecordBatch.from_pydict(cols), "pyarrow RecordBatch"),
    "numpy": (lambda cols: dict(cols), "table in memory"),
    "lists": (
        lambda cols: {k: _nan_to_none(np.asarray(v).tolist()) for k, v in cols.items()},
        "table in memory",
    ),
    "tensors": (  # the text column is a list: a tensor holds numbers only
        lambda cols: {
            k: v.tolist() if k == "id" else torch.from_numpy(np.asarray(v)) for k, v in cols.items()
        },
        "table in memory",
    ),
}


@pytest.fixture(params=list(KINDS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _table(kind: str, columns: dict[str, np.ndarray]) -> Any:
    return KINDS[kind][0](_with_ids(columns))


def _name(kind: str) -> str:
    return KINDS[kind][1]


def _same_message(by_file: Exception, path: Path, in_memory: Exception, name: str) -> None:
    """The same one-line message, the path replaced by what the table is."""
    assert type(in_memory) is type(by_file)
    assert str(in_memory) == str(by_file).replace(str(path), name)
    assert str(in_memory).startswith(f"{name}: ")
    assert "\n" not in str(in_memory)


# ----------------------------------------------------------------------------- fit


CONFIGS = {
    "gd": SolverConfig(),
    "gd, early stopping": SolverConfig(early_stopping=True, validation_fraction=0.2),
    "lstsq": SolverConfig(solver="lstsq"),
    "sgd, early stopping": SolverConfig(
        solver="sgd", early_stopping=True, max_epochs=30, batch_size=8
    ),
}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_fit_gives_the_model_of_the_file(tmp_path: Path, kind: str, config: str) -> None:
    """The same rows in the same order, the same columns chosen (``id`` left out as text): the
    same model to the bit, whatever the solver, with early stopping's held-out rows too."""
    columns = _columns()
    path = _csv(tmp_path, columns)
    by_file = gradfit.fit(path, TARGETS, config=CONFIGS[config], seed=3)
    report = gradfit.fit(_table(kind, columns), TARGETS, config=CONFIGS[config], seed=3)
    assert torch.equal(report.model.weight, by_file.model.weight)
    assert torch.equal(report.model.bias, by_file.model.bias)
    assert report.model.feature_names == by_file.model.feature_names == ("a", "b", "c", "n")
    assert report.left_out == by_file.left_out == {"id": IDENTIFIER}
    assert report.n_samples == by_file.n_samples
    assert report.final_loss == by_file.final_loss
    assert report.metrics.as_dict(TARGETS) == by_file.metrics.as_dict(TARGETS)


def test_fit_with_features_named(tmp_path: Path, kind: str) -> None:
    columns = _columns(1)
    path = _csv(tmp_path, columns)
    by_file = gradfit.fit(path, ["y"], ["c", "a"], config=SolverConfig(solver="lstsq"))
    report = gradfit.fit(
        _table(kind, columns), ["y"], ["c", "a"], config=SolverConfig(solver="lstsq")
    )
    assert report.model.feature_names == ("c", "a")
    assert torch.equal(report.model.weight, by_file.model.weight)
    assert report.left_out == by_file.left_out == {}


def test_a_dataframe_index_is_ignored() -> None:
    """A DataFrame's index is no column: rows are taken (and named) by position."""
    columns = _columns()
    plain = gradfit.fit(pd.DataFrame(columns), TARGETS, config=SolverConfig(solver="lstsq"))
    frame = pd.DataFrame(columns, index=pd.Index(np.arange(N)[::-1] * 7, name="key"))
    report = gradfit.fit(frame, TARGETS, config=SolverConfig(solver="lstsq"))
    assert torch.equal(report.model.weight, plain.model.weight)
    assert report.model.feature_names == ("a", "b", "c", "n")
    columns["b"] = columns["b"].copy()
    columns["b"][4] = np.nan
    frame = pd.DataFrame(columns, index=np.arange(N)[::-1])
    with pytest.raises(DataError, match=r"^DataFrame: column 'b', row 5: missing value"):
        gradfit.fit(frame, TARGETS)


# ----------------------------------------------------------------------------- predict, evaluate


@pytest.fixture(scope="module")
def model() -> SavedModel:
    """An unpenalized least-squares fit (it holds interval data)."""
    frame = pd.DataFrame(_columns())
    return gradfit.fit(frame, TARGETS, config=SolverConfig(solver="lstsq")).model


@pytest.mark.parametrize("interval", [None, "prediction"])
def test_predict_equals_the_file(
    tmp_path: Path, kind: str, model: SavedModel, interval: str | None
) -> None:
    """The kept columns as the file keeps them (text as text, integers as int64) and the
    predictions to the bit; predict_batches gives one batch, as a file read whole."""
    columns = _columns(2)
    path = _csv(tmp_path, columns)
    table = _table(kind, columns)
    by_file = gradfit.predict(model, path, keep=["id", "n"], interval=interval)
    got = gradfit.predict(model, table, keep=["id", "n"], interval=interval)
    assert list(got) == list(by_file)
    assert list(got["id"]) == list(by_file["id"]) == IDS
    assert got["n"].dtype == by_file["n"].dtype == np.int64
    for name in by_file:
        assert np.array_equal(got[name], by_file[name]), name
    batches = list(gradfit.predict_batches(model, table, keep="id", interval=interval))
    assert len(batches) == 1
    assert np.array_equal(batches[0]["y"], by_file["y"])


def test_evaluate_equals_the_file(tmp_path: Path, kind: str, model: SavedModel) -> None:
    columns = _columns(2)
    path = _csv(tmp_path, columns)
    by_file = gradfit.evaluate(model, path)
    report = gradfit.evaluate(model, _table(kind, columns))
    assert report.source == _name(kind)
    assert report.n_samples == by_file.n_samples == N
    assert report.as_dict() == by_file.as_dict()


def test_progress_is_called_once(model: SavedModel) -> None:
    calls: list[tuple[int, int, int]] = []
    gradfit.evaluate(model, _table("numpy", _columns()), progress=lambda *a: calls.append(a))
    assert calls == [(0, 0, N)]


# ----------------------------------------------------------------------------- messages


def _missing_in_b(columns: dict[str, np.ndarray], row: int) -> dict[str, np.ndarray]:
    columns = {**columns, "b": columns["b"].copy()}
    columns["b"][row] = np.nan
    return columns


def test_a_missing_value_is_named_as_in_the_file(tmp_path: Path, kind: str) -> None:
    """NaN (None in a list) is a missing cell: the same message as the file's empty cell,
    naming the column and the row (counted from 1), in fit, predict and evaluate."""
    columns = _missing_in_b(_columns(), 11)
    path = _csv(tmp_path, columns)
    table = _table(kind, columns)
    model = gradfit.fit(_table(kind, _columns()), TARGETS).model
    calls: list[Callable[[Any], object]] = [
        lambda source: gradfit.fit(source, TARGETS),
        lambda source: gradfit.predict(model, source),
        lambda source: gradfit.evaluate(model, source),
    ]
    for call in calls:
        with pytest.raises(DataError) as by_file:
            call(path)
        with pytest.raises(DataError) as in_memory:
            call(table)
        _same_message(by_file.value, path, in_memory.value, _name(kind))
        assert "column 'b', row 12: missing value" in str(in_memory.value)


def test_a_text_column_named_as_a_feature(tmp_path: Path, kind: str) -> None:
    """A text column named as a feature is categorical (issue 19), its levels counted alike:
    the same refusal above max_levels."""
    columns = _columns()
    path = _csv(tmp_path, columns)
    with pytest.raises(DataError) as by_file:
        gradfit.fit(path, ["y"], ["a", "id"], max_levels=10)
    with pytest.raises(DataError) as in_memory:
        gradfit.fit(_table(kind, columns), ["y"], ["a", "id"], max_levels=10)
    _same_message(by_file.value, path, in_memory.value, _name(kind))
    assert "column 'id' has more than 10 distinct values (60 so far)" in str(in_memory.value)
    assert "--max-levels" in str(in_memory.value)


def test_unknown_columns_and_missing_features(tmp_path: Path, kind: str) -> None:
    columns = _columns()
    path = _csv(tmp_path, columns)
    table = _table(kind, columns)
    with pytest.raises(DataError) as by_file:
        gradfit.fit(path, ["yy"])
    with pytest.raises(DataError) as in_memory:
        gradfit.fit(table, ["yy"])
    _same_message(by_file.value, path, in_memory.value, _name(kind))
    model = gradfit.fit(table, ["y"], ["a", "b"]).model
    smaller = {k: v for k, v in columns.items() if k != "b"}
    for call in (gradfit.predict, gradfit.evaluate):
        with pytest.raises(DataError) as by_file:
            call(model, _csv(tmp_path, smaller))
        with pytest.raises(DataError) as in_memory:
            call(model, _table(kind, smaller))
        _same_message(by_file.value, path, in_memory.value, _name(kind))
    with pytest.raises(DataError, match=r"--keep column 'idd' not found"):
        gradfit.predict(model, table, keep=["idd"])


def test_a_cell_that_is_not_a_number_in_a_mixed_column(tmp_path: Path) -> None:
    """A column of numbers with one word (an object column) is read as its text, as the same
    cells of a CSV file: the word is named by its row."""
    columns = _columns()
    mixed: list[Any] = list(columns["b"])
    mixed[6] = "n/a"
    with pytest.raises(DataError) as in_memory:
        gradfit.fit(pd.DataFrame({**columns, "b": mixed}), TARGETS)
    assert str(in_memory.value) == (
        "DataFrame: column 'b', row 7: 'n/a' is not a number; fix or remove that row"
    )
    with pytest.raises(DataError, match=r"^table in memory: column 'b', row 7: 'n/a' is not"):
        gradfit.fit({**columns, "b": mixed}, TARGETS)


def test_a_duplicate_column_of_a_dataframe_is_refused_when_used() -> None:
    frame = pd.DataFrame(np.arange(12.0).reshape(4, 3) ** 1.5, columns=["x", "y", "x"])
    with pytest.raises(DataError, match=r"^DataFrame: column name 'x' appears more than once"):
        gradfit.fit(frame, ["y"], ["x"])


BAD_TABLES: dict[str, tuple[Any, type[Exception], str]] = {
    "columns of different lengths": (
        {"x": [1.0, 2.0, 3.0], "y": [1.0, 2.0]},
        ValidationError,
        r"^table in memory: column 'y' has 2 values and column 'x' 3; give every column",
    ),
    "a 2-D array column": (
        {"x": np.ones((3, 2)), "y": np.arange(3.0)},
        ValidationError,
        r"^table in memory: column 'x' is a 2-D array of shape \(3, 2\); give each column as a",
    ),
    "a 2-D tensor column": (
        {"x": torch.ones(3, 2), "y": torch.arange(3.0)},
        ValidationError,
        r"^table in memory: column 'x' is a 2-D array of shape \(3, 2\)",
    ),
    "a single value as a column": (
        {"x": 3.0, "y": [1.0]},
        ValidationError,
        r"^table in memory: column 'x' is a float, not a 1-D array-like",
    ),
    "a name that is not a string": (
        {0: [1.0, 2.0], "y": [1.0, 2.0]},
        ValidationError,
        r"^table in memory: column names must be strings, got 0 \(int\)",
    ),
    "a list, not a table": (
        [[1.0, 2.0], [3.0, 4.0]],
        ValidationError,
        r"^a data source is a data file, .* or a table in memory .*; got list$",
    ),
    "a 2-D array, not a table": (np.ones((3, 2)), ValidationError, r"; got ndarray$"),
    "a number, not a table": (42, ValidationError, r"; got int$"),
    "no columns": ({}, DataError, r"^table in memory: the table has no columns"),
    "no rows": (pd.DataFrame({"x": [], "y": []}), DataError, r"^DataFrame: the table has no rows"),
    "a column arrow cannot read": (
        {"x": [1.0, {"a": 1}], "y": [1.0, 2.0]},
        DataError,
        r"^table in memory: column 'x' cannot be read as a column \(",
    ),
}


@pytest.mark.parametrize("case", list(BAD_TABLES))
def test_a_bad_table_is_one_clear_error(case: str, model: SavedModel) -> None:
    table, error, pattern = BAD_TABLES[case]
    for call in (
        lambda: gradfit.fit(table, ["y"]),
        lambda: gradfit.predict(model, table),
        lambda: gradfit.evaluate(model, table),
    ):
        with pytest.raises(error, match=pattern) as caught:
            call()
        assert "\n" not in str(caught.value)


def test_too_few_rows_names_the_table() -> None:
    with pytest.raises(DataError, match=r"^DataFrame: the table has 1 data row, at least 2"):
        gradfit.fit(pd.DataFrame({"x": [1.0], "y": [2.0]}), ["y"])


# ----------------------------------------------------------------------------- never streamed


def test_a_table_in_memory_is_never_streamed(kind: str, model: SavedModel, tmp_path: Path) -> None:
    table = _table(kind, _columns())
    refused = rf"^{_name(kind)}: a table in memory is read whole, never streamed; leave out"
    for call in (
        lambda: gradfit.fit(table, TARGETS, stream=True),
        lambda: gradfit.predict(model, table, stream=True),
        lambda: gradfit.evaluate(model, table, stream=True),
        lambda: list(gradfit.predict_batches(model, table, stream=True)),
    ):
        with pytest.raises(ValidationError, match=refused):
            call()
    with pytest.raises(ValidationError, match=r"checkpointed fit streams files.*leave out checkp"):
        gradfit.fit(table, TARGETS, checkpoint=tmp_path / "fit.ckpt")
    with pytest.raises(ValidationError, match=r"several processes stream files.*leave out comm,"):
        gradfit.fit(table, TARGETS, comm=object())  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())
    # A memory limit far below the table's size changes nothing: it is in memory already.
    small = gradfit.fit(table, TARGETS, memory_limit=1 << 10, config=SolverConfig(solver="lstsq"))
    assert small.n_samples == N


def test_a_builtin_data_set_is_never_streamed(
    model: SavedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``crops`` streamed was looked for as a file: "crops: no such file; check the path"."""
    monkeypatch.chdir(tmp_path)  # no file named crops here: the name is the built-in data set
    refused = r"^crops: the built-in data set is read whole, never streamed; leave out"
    for call in (
        lambda: gradfit.fit("crops", ["apples"], stream=True),
        lambda: gradfit.predict(model, "crops", stream=True),
        lambda: gradfit.evaluate(model, "crops", stream=True),
    ):
        with pytest.raises(ValidationError, match=refused):
            call()
    with pytest.raises(ValidationError, match=r"^crops: a checkpointed fit streams files.*leave o"):
        gradfit.fit("crops", ["apples"], checkpoint=tmp_path / "fit.ckpt")
    with pytest.raises(ValidationError, match=r"^crops: several processes stream files.*leave o"):
        gradfit.fit("crops", ["apples"], comm=object())  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())
    assert gradfit.fit("crops", ["apples"], stream=False).n_samples == 15


def test_the_source_classifier(tmp_path: Path) -> None:
    """One function says what every source is."""
    (tmp_path / "parts").mkdir()
    file = _csv(tmp_path, _columns())
    assert source_kind(file) == source_kind(str(file)) == "file"
    assert source_kind(tmp_path / "missing.csv") == "file"  # the reader names it
    assert source_kind(tmp_path / "parts") == source_kind(f"{tmp_path}/*.csv") == "files"
    assert source_kind("crops") == "builtin"
    for kind in KINDS:
        assert source_kind(_table(kind, _columns())) == "memory"


# pandas not installed: every import of it fails, as it would (pyarrow looks for it too).
_WITHOUT_PANDAS = """
import sys
class NoPandas:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "pandas":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoPandas())
import numpy as np, pyarrow as pa, torch, gradfit
x = np.arange(10.0); y = 2 * x + 1 + np.sin(x)
models = [gradfit.fit(t, ["y"]).model for t in (
    {"x": x, "y": y}, {"x": torch.from_numpy(x), "y": y.tolist()}, pa.table({"x": x, "y": y}))]
assert all(torch.equal(m.weight, models[0].weight) for m in models)
print(gradfit.evaluate(models[0], {"x": x, "y": y}).n_samples, "pandas" in sys.modules)
"""


@pytest.mark.slow
def test_tables_in_memory_need_no_pandas() -> None:
    """pandas is no runtime requirement: without it, the other kinds of table are fitted
    and evaluated (a DataFrame is looked for only where pandas is loaded)."""
    out = subprocess.run(
        [sys.executable, "-c", _WITHOUT_PANDAS],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert out.stdout.split() == [str(10), "False"]


# R's NA_integer_: reticulate hands an R data.frame's integer column with NA to Python as int32
# holding -2**31 (checked from R in r/tests/test_gradfit.R); never fitted as a number.


def test_an_r_integer_na_in_an_int32_column_is_refused_naming_column_and_row() -> None:
    from gradfit.design import Design

    frame = pd.DataFrame(
        {
            "x": np.array([1, 2, -(2**31), 4, 5], dtype=np.int32),
            "y": [1.0, 2.0, 3.0, 4.5, 5.0],
        }
    )
    expected = "DataFrame: column 'x' holds -2147483648 at row 3, an int32 column: that is R's NA"
    with pytest.raises(DataError) as fit_error:
        gradfit.fit(frame, ["y"], config=SolverConfig(solver="lstsq"))
    assert str(fit_error.value).startswith(expected)
    with pytest.raises(DataError) as design_error:
        Design.from_formula("y ~ x", frame)
    assert str(design_error.value).startswith(expected)
    # The same number in an int64 column is a number (only R's int32 hand-over is suspect).
    frame["x"] = frame["x"].astype(np.int64)
    assert gradfit.fit(frame, ["y"], config=SolverConfig(solver="lstsq")).model.weight.shape == (
        1,
        1,
    )
