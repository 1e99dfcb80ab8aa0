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
    # The model is weighted and the new rows' weights are not given: R's warning, each road.
    with pytest.warns(gradfit.ConstantVarianceWarning):
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


# -- seeded random tables (slow) ---------------------------------------------------------------


def _random_table(seed: int) -> dict[str, Any]:
    """Columns of a random table: numbers of a random scale, a big offset, small integers,
    text of 2-4 levels (the first 5 rows one level), booleans, weights (some 0), cluster
    labels, an identifier; missing cells in x1, y, k and g (for some seeds)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(12, 90))
    scale = 10.0 ** rng.uniform(-3, 4)
    levels = ["east", "north", "south", "west"][: int(rng.integers(2, 5))]
    g = np.array([levels[i] for i in rng.integers(0, len(levels), size=n)], dtype=object)
    g[:5] = levels[0]
    b = rng.random(n) < 0.5
    x1, x2 = rng.normal(size=n) * scale, 1e4 + rng.normal(size=n)
    k = rng.integers(0, 5, size=n).astype(float)
    y = 0.5 * x1 / scale + 0.3 * (x2 - 1e4) + 0.2 * k + rng.normal(size=n) + 1.1 * b
    y += np.array([levels.index(v) for v in g]) * 0.7
    w = rng.uniform(0.2, 3, size=n)
    w[rng.random(n) < 0.1] = 0.0
    p = rng.uniform(0, 0.12)
    if p > 0.03:
        for column in (x1, y, k):
            column[rng.random(n) < p] = np.nan
        g[rng.random(n) < p] = None
    return {
        "y": y,
        "x1": x1,
        "x2": x2,
        "k": k,
        "g": g,
        "b": b,
        "w": w,
        "cl": np.array([f"c{i}" for i in rng.integers(0, 6, size=n)], dtype=object),
        "id": np.array([f"r{i:04d}" for i in range(n)], dtype=object),
        "_row_group": int(rng.integers(3, 11)),
    }


def _files(columns: dict[str, Any], folder: Path) -> tuple[Path, Path, dict[str, Any]]:
    """The table as CSV (booleans written TRUE/FALSE, as R writes them: a CSV's booleans are
    kept as the text written, so pandas' True/False would be levels ``bTrue``, not R's
    ``bTRUE``), as Parquet in small row groups, and in memory."""
    columns = dict(columns)
    row_group = columns.pop("_row_group")
    table = pa.table(columns)
    csv, parquet = folder / "t.csv", folder / "t.parquet"
    text = table.set_column(
        table.schema.get_field_index("b"),
        "b",
        pa.array(np.where(columns["b"], "TRUE", "FALSE")),
    )
    pa.csv.write_csv(text, csv)
    pq.write_table(table, parquet, row_group_size=row_group)
    return csv, parquet, columns


_REQUESTS: dict[str, dict[str, Any]] = {
    "lstsq, weights": {"targets": ["y"], "missing": "drop", "weights": "w"},
    "lstsq, HC3": {"targets": ["y"], "missing": "drop", "inference": "HC3"},
    "lstsq, cluster": {
        "targets": ["y"],
        "features": ["x1", "x2", "g"],
        "missing": "drop",
        "inference": "cluster",
        "groups": "cl",
    },
    "formula, weights": {
        "formula": "y ~ x1 + g * b + np.log(x2)",
        "missing": "drop",
        "weights": "w",
    },
    "no drop": {"targets": ["y"], "features": ["x2", "b", "k"]},
}


def _outcome(source: Any, targets: Any, features: Any, **options: Any) -> tuple[str, Any]:
    try:
        report = gradfit.fit(source, targets, features, config=LSTSQ, **options)
    except gradfit.DataError as exc:
        return "refused", str(exc)
    table = report.inference.as_dict()["targets"]["y"]["coefficients"]
    return "fitted", {
        "features": report.model.feature_names,
        "dropped": report.rows_dropped,
        "left_out": report.left_out,
        "coef": np.concatenate([report.model.weight.numpy().ravel(), report.model.bias.numpy()]),
        "se": np.array([table[name]["std_error"] for name in sorted(table)]),
    }


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_random_tables_fit_alike_on_every_road(tmp_path: Path, seed: int) -> None:
    csv, parquet, memory = _files(_random_table(seed), tmp_path)
    roads: list[tuple[Any, dict[str, Any]]] = [
        (csv, {"stream": False}),
        (csv, {"stream": True, "batch_rows": 7}),
        (csv, {"stream": True, "batch_rows": 64}),
        (parquet, {"stream": False}),
        (parquet, {"stream": True, "batch_rows": 7}),
        (parquet, {"stream": True}),
        (memory, {}),
    ]
    for name, request in _REQUESTS.items():
        options = dict(request)
        targets, features = options.pop("targets", None), options.pop("features", None)
        outcomes = [
            _outcome(source, targets, features, **options, **road) for source, road in roads
        ]
        first = outcomes[0]
        for (source, road), outcome in zip(roads[1:], outcomes[1:], strict=True):
            where = f"{name}, {type(source).__name__} {road}"
            assert outcome[0] == first[0], (where, outcome, first)
            if first[0] == "refused":  # the same message, the source's name aside
                assert outcome[1].split(": ", 1)[1] == first[1].split(": ", 1)[1], where
                continue
            a, b = first[1], outcome[1]
            assert (a["features"], a["dropped"], a["left_out"]) == (
                b["features"],
                b["dropped"],
                b["left_out"],
            ), where
            np.testing.assert_allclose(b["coef"], a["coef"], rtol=1e-10, atol=1e-12, err_msg=where)
            np.testing.assert_allclose(
                b["se"], a["se"], rtol=1e-10, atol=1e-12, equal_nan=True, err_msg=where
            )


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_of_one_row_the_target_first_in_the_file_is_named_when_streamed(
    tmp_path: Path, suffix: str
) -> None:
    """y (first in the file) missing and x not a number in row 1: ``y`` is named, read whole
    or streamed (a batch's columns came in the order asked: features first, ``x``)."""
    path = tmp_path / f"t.{suffix}"
    rows = "y,x\n,oops\n" + "".join(f"{i},{i * 0.5 + (i % 3)}\n" for i in range(1, 20))
    if suffix == "csv":
        path.write_text(rows)
    else:
        (tmp_path / "t.csv").write_text(rows.replace("oops", ""))
        pq.write_table(pa.csv.read_csv(tmp_path / "t.csv"), path, row_group_size=4)
    said = {}
    for fit in (gradfit.fit, gradfit.fit_cv):
        for stream in (False, True):
            with pytest.raises(gradfit.DataError) as caught:
                fit(path, ["y"], ["x"], stream=stream, batch_rows=7)
            said[fit.__name__, stream] = str(caught.value)
    # fit takes a text column as categorical, refusing first one of mostly numbers (CSV):
    # the same refusal on both roads.
    assert said["fit", False] == said["fit", True]
    assert said["fit_cv", False] == said["fit_cv", True]
    assert "column 'y', row 1: missing value" in said["fit_cv", True]
