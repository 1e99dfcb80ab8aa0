"""The library's faces over sources (gradfit.jobs): ``gradfit.fit``, ``gradfit.predict``,
``gradfit.predict_batches`` and ``gradfit.evaluate`` on the same file read whole and streamed
give the same numbers and the same messages."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

import gradfit
from gradfit.errors import DataError, ValidationError
from gradfit.metrics import regression_metrics
from gradfit.persistence import SavedModel, save_model
from gradfit.solvers.config import SolverConfig

pytestmark = pytest.mark.usefixtures("one_thread")

N = 300
BATCH = 37  # rows per streamed batch: several batches, the last one short
TARGETS = ["y", "z"]
FEATURES = ["a", "b", "c"]  # not "id": its digits would make it a numeric column


def _columns(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, 3)) * [1.0, 2.0, 3.0] + [5.0, -2.0, 100.0]
    Y = X @ np.array([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]]).T + rng.normal(size=(N, 2))
    return {"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": Y[:, 0], "z": Y[:, 1]}


IDS = [f"{i:05d}" for i in range(N)]  # leading zeros: kept as written, not as numbers


def _write(folder: Path, columns: dict[str, np.ndarray], name: str = "data") -> dict[str, Path]:
    names = list(columns)
    lines = [",".join(["id", *names])]
    lines += [",".join([IDS[i], *(repr(float(columns[c][i])) for c in names)]) for i in range(N)]
    csv = folder / f"{name}.csv"
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    parquet = folder / f"{name}.parquet"
    pq.write_table(pa.table({"id": IDS, **columns}), parquet, row_group_size=41)
    return {"csv": csv, "parquet": parquet}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return _write(tmp_path, _columns())


@pytest.fixture
def model(files: dict[str, Path]) -> SavedModel:
    """An unpenalized least-squares fit (it holds interval data)."""
    report = gradfit.fit(files["csv"], TARGETS, FEATURES, config=SolverConfig(solver="lstsq"))
    return report.model


def _roads(**options: object) -> list[dict[str, object]]:
    return [{"stream": False, **options}, {"stream": True, "batch_rows": BATCH, **options}]


# ----------------------------------------------------------------------------- predict


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_predict_read_whole_equals_streamed(
    files: dict[str, Path], model: SavedModel, kind: str
) -> None:
    whole, streamed = (
        gradfit.predict(model, files[kind], keep=["id"], **road) for road in _roads()
    )
    assert list(whole) == list(streamed) == ["id", "y", "z"]
    for name in TARGETS:
        assert whole[name].dtype == np.float64
        np.testing.assert_array_equal(streamed[name], whole[name])  # bitwise
    # The kept column is copied exactly: the text written, leading zeros and all.
    assert whole["id"].tolist() == streamed["id"].tolist() == IDS
    # The predictions are the model's, row by row.
    table = _columns()
    X = torch.from_numpy(np.column_stack([table[n] for n in "abc"]))
    expected = gradfit.predict(X, model.weight, model.bias).numpy()
    np.testing.assert_allclose(whole["y"], expected[:, 0], rtol=1e-12)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_predict_batches_one_batch_read_whole_several_streamed(
    files: dict[str, Path], model: SavedModel, kind: str
) -> None:
    seen: list[tuple[int, int, int]] = []
    whole = list(gradfit.predict_batches(model, files[kind], stream=False))
    parts = list(
        gradfit.predict_batches(
            model,
            files[kind],
            stream=True,
            batch_rows=BATCH,
            progress=lambda done, total, rows: seen.append((done, total, rows)),
        )
    )
    assert len(whole) == 1 and len(parts) > 1
    assert sum(len(part["y"]) for part in parts) == N
    joined = np.concatenate([part["z"] for part in parts])
    np.testing.assert_array_equal(joined, whole[0]["z"])
    assert len(seen) == len(parts) and seen[-1][2] == N  # rows read so far, after each batch


@pytest.mark.parametrize("interval", ["confidence", "prediction"])
def test_predict_intervals_read_whole_equals_streamed(
    files: dict[str, Path], model: SavedModel, interval: str
) -> None:
    whole, streamed = (
        gradfit.predict(model, files["parquet"], interval=interval, level=0.9, **road)
        for road in _roads()
    )
    assert list(whole) == ["y", "y_lower", "y_upper", "z", "z_lower", "z_upper"]
    assert list(streamed) == list(whole)
    for name in whole:
        np.testing.assert_allclose(streamed[name], whole[name], rtol=1e-12, atol=0)
    assert (whole["y_lower"] < whole["y"]).all() and (whole["y"] < whole["y_upper"]).all()
    # The same bounds as the model's own predictor on the same rows.
    table = _columns()
    X = torch.from_numpy(np.column_stack([table[n] for n in "abc"]))
    bounds = model.interval_predictor().predict(X, interval=interval, level=0.9)
    np.testing.assert_allclose(whole["z_upper"], bounds.upper[:, 1].numpy(), rtol=1e-12)


def test_predict_interval_refused_for_a_penalized_model_before_reading(
    files: dict[str, Path], tmp_path: Path
) -> None:
    ridge = gradfit.fit(
        files["csv"], TARGETS, FEATURES, config=SolverConfig(solver="lstsq", alpha=0.5)
    )
    missing = tmp_path / "not-there.csv"  # never read: the model is refused first
    with pytest.raises(ValidationError, match="holds no interval data"):
        gradfit.predict(ridge.model, missing, interval="prediction")


def test_model_as_a_path_or_a_saved_model(
    files: dict[str, Path], model: SavedModel, tmp_path: Path
) -> None:
    path = tmp_path / "m.safetensors"
    save_model(path, model)
    for given in (path, str(path)):
        a = gradfit.predict(given, files["csv"])
        np.testing.assert_array_equal(a["y"], gradfit.predict(model, files["csv"])["y"])
        assert gradfit.evaluate(given, files["csv"]) == gradfit.evaluate(model, files["csv"])


# ----------------------------------------------------------------------------- evaluate


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_evaluate_read_whole_equals_streamed(
    files: dict[str, Path], model: SavedModel, kind: str
) -> None:
    whole, streamed = (gradfit.evaluate(model, files[kind], **road) for road in _roads())
    assert isinstance(whole, gradfit.EvaluationReport)
    assert whole.n_samples == streamed.n_samples == N
    assert whole.target_names == streamed.target_names == ("y", "z")
    for key in ("mse", "rmse", "mae", "r2"):
        a, b = getattr(whole.metrics, key), getattr(streamed.metrics, key)
        for x, y in zip(a, b, strict=True):
            assert y == pytest.approx(x, rel=1e-12, abs=0)
    # Against the metrics of the whole arrays, computed directly.
    table = _columns()
    X = torch.from_numpy(np.column_stack([table[n] for n in "abc"]))
    Y = torch.from_numpy(np.column_stack([table[n] for n in TARGETS]))
    oracle = regression_metrics(Y, gradfit.predict(X, model.weight, model.bias))
    for x, y in zip(oracle.mae, whole.metrics.mae, strict=True):
        assert y == pytest.approx(x, rel=1e-12)
    assert whole.as_dict()["z"]["r2"] == whole.metrics.r2[1]


def test_evaluate_a_built_in_data_set() -> None:
    crops = gradfit.fit("crops", ["apples", "oranges"], config=SolverConfig(solver="lstsq"))
    report = gradfit.evaluate(crops.model, "crops")
    assert report.n_samples == 15 and report.source == "crops"
    for x, y in zip(report.metrics.mse, crops.metrics.mse, strict=True):
        assert y == pytest.approx(x, rel=1e-12)


# ----------------------------------------------------------------------------- messages


def _said(face: Callable[..., object], *args: object, **options: object) -> set[str]:
    """The DataError messages of ``face(*args, **options)`` read whole and streamed."""
    said = set()
    for road in _roads(**options):
        with pytest.raises(DataError) as exc:
            face(*args, **road)
        said.add(str(exc.value))
    return said


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_missing_columns_have_one_message_on_both_roads(
    tmp_path: Path, model: SavedModel, kind: str
) -> None:
    columns = _columns()
    del columns["z"]
    no_target = _write(tmp_path, columns, "no_target")[kind]
    columns = _columns()
    del columns["b"]
    no_feature = _write(tmp_path, columns, "no_feature")[kind]

    said = _said(gradfit.evaluate, model, no_target)
    assert len(said) == 1
    (line,) = said
    assert line.startswith(f"{no_target}: missing target column(s) 'z' that evaluate compares")
    assert "available columns: 'id', 'a', 'b', 'c', 'y'" in line and "feature" not in line

    for face in (gradfit.evaluate, gradfit.predict):
        assert _said(face, model, no_feature) == {
            f"{no_feature}: missing feature column(s) 'b' that the model needs; "
            "available columns: 'id', 'a', 'c', 'y', 'z'"
        }


def test_keep_messages_are_the_same_on_both_roads(
    files: dict[str, Path], model: SavedModel
) -> None:
    path = files["csv"]
    assert _said(gradfit.predict, model, path, keep=["region"]) == {
        f"{path}: --keep column 'region' not found; available: id, a, b, c, y, z"
    }
    assert _said(gradfit.predict, model, path, keep=["id,z"]) == {
        "--keep column 'z' has the name of a predicted column; rename it or leave it out"
    }


def test_a_kept_feature_is_kept_exactly_and_used_as_a_number(
    files: dict[str, Path], model: SavedModel
) -> None:
    # "a" is both a feature (parsed as a number) and a kept column (copied as written).
    whole, streamed = (
        gradfit.predict(model, files["csv"], keep=["a,id"], **road) for road in _roads()
    )
    assert list(whole) == list(streamed) == ["a", "id", "y", "z"]
    assert whole["a"].tolist() == streamed["a"].tolist()
    assert whole["a"][0] == repr(float(_columns()["a"][0]))  # the text of the file
    np.testing.assert_array_equal(streamed["y"], whole["y"])
    np.testing.assert_array_equal(whole["y"], gradfit.predict(model, files["csv"])["y"])


# ----------------------------------------------------------------------------- fit


def test_fit_chooses_the_road_by_the_memory_limit(files: dict[str, Path]) -> None:
    lstsq = SolverConfig(solver="lstsq")
    in_memory = gradfit.fit(files["csv"], TARGETS, FEATURES, config=lstsq)
    streamed = gradfit.fit(
        files["csv"], TARGETS, FEATURES, config=lstsq, memory_limit=1000, batch_rows=BATCH
    )
    forced = gradfit.fit(
        files["csv"], TARGETS, FEATURES, config=lstsq, memory_limit=1000, stream=False
    )
    assert isinstance(in_memory, gradfit.FitReport)
    # Read whole, the report keeps every row's target and prediction (for plots) and the MAE;
    # streamed, neither (MAE needs one more pass: evaluate gives it).
    assert in_memory.targets.shape == forced.targets.shape == (N, 2)
    assert streamed.targets.shape == (0, 2) and math.isnan(streamed.metrics.mae[0])
    assert not math.isnan(in_memory.metrics.mae[0])
    torch.testing.assert_close(streamed.model.weight, in_memory.model.weight, rtol=1e-10, atol=0)


def test_fit_refuses_a_solver_that_cannot_stream_a_large_file(files: dict[str, Path]) -> None:
    with pytest.raises(ValidationError, match="trains on data in memory"):
        gradfit.fit(
            files["csv"], TARGETS, FEATURES, config=SolverConfig(solver="scratch"), memory_limit=10
        )


def test_fit_with_a_checkpoint_streams(files: dict[str, Path], tmp_path: Path) -> None:
    gd = SolverConfig(solver="gd", max_epochs=3)
    checkpoint = tmp_path / "state.ckpt"
    report = gradfit.fit(files["csv"], TARGETS, FEATURES, config=gd, checkpoint=checkpoint)
    assert checkpoint.is_file() and report.targets.shape == (0, 2)
    with pytest.raises(
        ValidationError, match="a checkpointed fit streams the data; leave out stream=False"
    ):
        gradfit.fit(files["csv"], TARGETS, FEATURES, config=gd, checkpoint=checkpoint, stream=False)


# ----------------------------------------------------------------------------- names


def test_predict_of_tensors_is_unchanged() -> None:
    X = torch.tensor([[1.0, 2.0]])
    weight, bias = torch.tensor([[3.0, 4.0]]), torch.tensor([0.5])
    expected = gradfit.model.predict(X, weight, bias)
    torch.testing.assert_close(gradfit.predict(X, weight, bias), expected)
    torch.testing.assert_close(gradfit.predict(X=X, weight=weight, bias=bias), expected)
    with pytest.raises(ValidationError, match="X has 2 features, but the model expects 3"):
        gradfit.predict(X, torch.ones(1, 3), bias)


def test_the_streamed_names_remain_in_gradfit_streaming(
    files: dict[str, Path], model: SavedModel
) -> None:
    from gradfit.streaming import evaluate_stream, predict_batches, prediction_columns

    n, metrics = evaluate_stream(model, files["parquet"], batch_rows=BATCH)
    assert (n, metrics) == (
        N,
        gradfit.evaluate(model, files["parquet"], stream=True, batch_rows=BATCH).metrics,
    )
    parts = list(
        predict_batches(model, [files["csv"], files["csv"]], keep=["id"], batch_rows=BATCH)
    )
    assert sum(len(p["id"]) for p in parts) == 2 * N
    X = torch.zeros(2, 3, dtype=torch.float64)
    np.testing.assert_array_equal(prediction_columns(model, X)["y"], model.predict(X)[:, 0].numpy())
