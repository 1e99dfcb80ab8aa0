"""The one road, differentially: the same request on a file read whole, streamed in batches
of 7, 64 and the default, Parquet (small row groups) and CSV of the same table, and the table in
memory, gives the same features, rows dropped, coefficients (1e-10 relative; gd 1e-6) and
standard errors, and refuses alike. The fixed cases first, then a few seeded random tables
(slow): numeric columns of varied scales, text with few levels (one first seen late),
booleans, missing cells, a weights column with zeros, an identifier column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet as pq
import pytest

import gradfit
from gradfit.solvers.config import SolverConfig

LSTSQ = SolverConfig(solver="lstsq")


# -- a streamed batch whose every row is dropped ---------------------------------------------


def _gappy(tmp_path: Path) -> tuple[Path, Any]:
    """12 rows in row groups of 3: x missing in the whole second group, the third group's
    weights all 0 (a streamed batch of 3 rows keeps no row, or only rows of weight 0); and
    the weighted model fitted to them."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=12)
    y = 1.0 + 2.0 * x + rng.normal(scale=0.3, size=12)
    x[3:6] = np.nan
    w = rng.uniform(0.5, 2.0, size=12)
    w[6:9] = 0.0
    path = tmp_path / "gappy.parquet"
    pq.write_table(pa.table({"y": y, "x": x, "w": w}), path, row_group_size=3)
    report = gradfit.fit(path, ["y"], ["x"], config=LSTSQ, missing="drop", weights="w")
    assert report.rows_dropped == 3
    return path, report.model


def _predictions(model: Any, path: Path, **options: Any) -> dict[str, np.ndarray]:
    columns: dict[str, list[np.ndarray]] = {}
    for part in gradfit.predict_batches(model, path, interval="prediction", **options):
        for name, values in part.items():
            columns.setdefault(name, []).append(np.asarray(values, dtype=np.float64))
    return {name: np.concatenate(parts) for name, parts in columns.items()}


@pytest.mark.parametrize("missing", ["drop", "keep"])
def test_predict_over_a_batch_with_every_row_dropped(tmp_path: Path, missing: str) -> None:
    path, model = _gappy(tmp_path)
    whole = _predictions(model, path, stream=False, missing=missing)
    streamed = _predictions(model, path, stream=True, batch_rows=3, missing=missing)
    assert whole.keys() == streamed.keys()
    for name in whole:
        np.testing.assert_allclose(streamed[name], whole[name], rtol=1e-12)


def test_evaluate_over_a_batch_with_every_row_dropped(tmp_path: Path) -> None:
    path, model = _gappy(tmp_path)
    whole = gradfit.evaluate(model, path, stream=False, missing="drop")
    streamed = gradfit.evaluate(model, path, stream=True, batch_rows=3, missing="drop")
    assert streamed.n_samples == whole.n_samples == 9
    assert streamed.n_dropped == whole.n_dropped == 3
    assert streamed.as_dict()["y"] == pytest.approx(whole.as_dict()["y"], rel=1e-10)


def _diagnosed(model: Any, path: Path, **options: Any) -> dict[str, np.ndarray]:
    columns: dict[str, list[np.ndarray]] = {}
    for part in gradfit.diagnose(model, path, missing="drop", **options):
        for name, values in part.items():
            columns.setdefault(name, []).append(np.asarray(values, dtype=np.float64))
    return {name: np.concatenate(parts) for name, parts in columns.items()}


def test_diagnose_over_batches_with_every_row_dropped_or_of_weight_0(tmp_path: Path) -> None:
    path, model = _gappy(tmp_path)
    whole = _diagnosed(model, path, stream=False)
    streamed = _diagnosed(model, path, stream=True, batch_rows=3)
    assert whole.keys() == streamed.keys()
    np.testing.assert_array_equal(streamed["row"], whole["row"])
    for name in whole:
        np.testing.assert_allclose(streamed[name], whole[name], rtol=1e-10, equal_nan=True)


# -- the robust Wald F of a clustered covariance of less than full rank -----------------------


def test_a_clustered_f_statistic_with_fewer_clusters_than_slopes_is_undefined_on_both_roads(
    tmp_path: Path,
) -> None:
    """3 clusters, 4 slopes: the clustered covariance has rank <= 2, so the Wald F of all
    slopes is undefined (NaN), never a huge number from rounding that differs by road."""
    rng = np.random.default_rng(23)
    n = 40
    columns = {f"x{i}": rng.normal(size=n) * 10.0**i for i in range(4)}
    columns["y"] = columns["x0"] + rng.normal(size=n)
    columns["cl"] = np.array([f"c{i % 3}" for i in range(n)])
    path = tmp_path / "few.parquet"
    pq.write_table(pa.table(columns), path, row_group_size=7)
    features = ["x0", "x1", "x2", "x3"]
    figures = []
    for options in ({"stream": False}, {"stream": True, "batch_rows": 7}):
        report = gradfit.fit(
            path, ["y"], features, config=LSTSQ, inference="cluster", groups="cl", **options
        )
        figures.append(report.inference.as_dict()["targets"]["y"])
    for fig in figures:
        assert fig["f_statistic"] is None or np.isnan(fig["f_statistic"])
    np.testing.assert_allclose(
        [figures[1]["sigma"], figures[1]["r2"]], [figures[0]["sigma"], figures[0]["r2"]], rtol=1e-10
    )


# -- the bad cell named: the earliest row's, whatever the road ---------------------------------


@pytest.mark.parametrize("fit", ["fit", "fit_cv"])
def test_the_missing_cell_named_is_the_earliest_rows_on_every_road(
    tmp_path: Path, fit: str
) -> None:
    """A target missing in row 2, a feature in row 5: every road names ``y``, row 2 (read
    whole it was the first target column's first missing cell; streamed, the features' were
    checked first over a whole batch: ``x``, row 5)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=20), rng.normal(size=20)
    y[1], x[4] = np.nan, np.nan
    table = pa.table({"y": y, "x": x})
    csv, parquet = tmp_path / "t.csv", tmp_path / "t.parquet"
    pa.csv.write_csv(table, csv)
    pq.write_table(table, parquet, row_group_size=3)
    run = getattr(gradfit, fit)
    for path in (csv, parquet):
        for options in ({"stream": False}, {"stream": True, "batch_rows": 7}, {"stream": True}):
            with pytest.raises(gradfit.DataError, match=r"column 'y', row 2: missing value"):
                run(path, ["y"], ["x"], **options)
    with pytest.raises(gradfit.DataError, match=r"column 'y', row 2: missing value"):
        run({"y": y, "x": x}, ["y"], ["x"])


def test_of_one_row_the_column_first_in_the_file_is_named_on_every_road(tmp_path: Path) -> None:
    """x (first in the file) and the target y both missing in row 3: ``x`` is named, whether
    read whole (targets were checked first: ``y``) or streamed (features first: ``x``)."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=20), rng.normal(size=20)
    x[2], y[2] = np.nan, np.nan
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"x": x, "y": y}), path, row_group_size=4)
    for options in ({"stream": False}, {"stream": True, "batch_rows": 7}):
        with pytest.raises(gradfit.DataError, match=r"column 'x', row 3: missing value"):
            gradfit.fit(path, ["y"], ["x"], **options)
