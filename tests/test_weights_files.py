"""Row weights from a column of the data (``--weights COLUMN``, ``gradfit.fit(weights=)``) on
every road: read whole, streamed (CSV, and Parquet with several row groups), under torchrun,
and through the command line (``fit --weights``, ``predict --pred-weights``).

References:

* R 4.2.2: ``lm(mpg ~ wt + hp, mtcars, weights = cyl)``, its ``summary``, ``sandwich::vcovHC``
  and ``predict.lm(..., interval = "prediction", weights = c(2, 0.5))`` (and without weights:
  weight 1) at the new rows ``wt = c(2.5, 4), hp = c(100, 250)``; the values are those of
  tests/test_weights.py (printed with 17 digits by R; the script is at the end of that file),
  checked again with Rscript for this file. Tolerance 1e-8 relative (the issue's criterion;
  measured ~1e-13), p-values 1e-6.
* The in-memory fit for the streamed and torchrun fits: 1e-10 relative for gd and lstsq (the
  issue's criterion; the statistics merged batch by batch, or the R factors, differ from the
  whole in the last bits).
* Integer weights equal the rows repeated that many times (the same least-squares problem):
  1e-10 relative on the coefficients.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq
import pytest
import torch
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

import gradfit
from gradfit.errors import DataError, ValidationError
from gradfit.persistence import load_model
from gradfit.solvers.config import SolverConfig

MTCARS = Path(__file__).parent / "data" / "r" / "mtcars.csv"
R_RTOL = 1e-8
R_P_RTOL = 1e-6
ROAD_RTOL = 1e-10
TIMEOUT = 120

# lm(mpg ~ wt + hp, mtcars, weights = cyl): slopes (wt, hp) then the intercept.
R_FIT = {
    "estimate": [-3.6040095890346748, -0.030213923997970418, 35.935291612419974],
    "se": [0.58353355146746577, 0.0081406174732745785, 1.6615439557371066],
    "p": [9.8341152289462906e-07, 0.00087033404698050418, 1.949397208844742e-19],
    "sigma": 6.1712041943895288,
    "r2": 0.81148103957944451,
    "r2_adj": 0.79847973196423383,
    "f": 62.415340333157076,
    "df_resid": 29,
    "HC3": [
        [0.61827727708152858, -0.0037610691609849534, -1.4500627999023492],
        [-0.0037610691609849512, 9.1680202873220803e-05, -0.0019014952337029279],
        [-1.450062799902351, -0.0019014952337029316, 5.2928944074710627],
    ],
    # predict.lm(fit, new, interval = "prediction", weights = c(2, 0.5)): fit, lwr, upr
    "prediction": [
        [23.903875240036246, 14.882637055659366, 32.925113424413126],
        [13.96577225678867, -3.9450425389972761, 31.876587052574614],
    ],
    # ... without weights: R's default, weight 1
    "prediction_w1": [
        [23.903875240036246, 11.213948331496448, 36.593802148576046],
        [13.96577225678867, 1.2577325370168229, 26.673811976560515],
    ],
}
NEW_ROWS = "wt,hp,pw\n2.5,100,2\n4.0,250,0.5\n"


def _gd() -> SolverConfig:
    return SolverConfig(solver="gd", max_epochs=5000, tol=1e-12)


def _config(solver: str) -> SolverConfig:
    return _gd() if solver == "gd" else SolverConfig(solver=solver)


def _rel(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _coefficients(report: Any) -> np.ndarray:
    return np.r_[report.model.weight[0].double().numpy(), report.model.bias.double().numpy()]


def _standard_errors(report: Any) -> np.ndarray:
    fit = report.inference
    assert fit is not None, report.inference_note
    return np.r_[fit.weight_se[0].numpy(), fit.bias_se.numpy()]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """mtcars as CSV, as Parquet in row groups of 5 rows (7 units), and as a directory of
    CSV files (several units for a group of processes)."""
    root = tmp_path_factory.mktemp("weights")
    table = pv.read_csv(MTCARS)
    pq.write_table(table, root / "mtcars.parquet", row_group_size=5)
    parts = root / "parts"
    parts.mkdir()
    for i, start in enumerate(range(0, table.num_rows, 9)):
        pv.write_csv(table.slice(start, 9), parts / f"part{i}.csv")
    return {"csv": MTCARS, "parquet": root / "mtcars.parquet", "dir": parts}


# ----------------------------------------------------------------------------- R


def test_a_weighted_fit_of_a_file_is_rs_lm_with_weights() -> None:
    report = gradfit.fit(MTCARS, ["mpg"], ["wt", "hp"], SolverConfig(solver="lstsq"), weights="cyl")
    fit = report.inference
    assert fit is not None
    np.testing.assert_allclose(_coefficients(report), R_FIT["estimate"], rtol=R_RTOL)
    np.testing.assert_allclose(_standard_errors(report), R_FIT["se"], rtol=R_RTOL)
    p = np.r_[fit.weight_p[0].numpy(), fit.bias_p.numpy()]
    np.testing.assert_allclose(p, R_FIT["p"], rtol=R_P_RTOL)
    for key, value in [
        ("sigma", fit.sigma),
        ("r2", fit.r2),
        ("r2_adj", fit.r2_adj),
        ("f", fit.f_statistic),
    ]:
        np.testing.assert_allclose(value.numpy(), [R_FIT[key]], rtol=R_RTOL, err_msg=key)
    assert fit.df_resid == R_FIT["df_resid"]
    # The report's R² is the weighted one (scikit-learn's r2_score with sample_weight), R's.
    np.testing.assert_allclose(report.metrics.r2, [R_FIT["r2"]], rtol=R_RTOL)
    assert report.model.hyperparameters["weights"] == "cyl"
    assert "Weighted Residuals:" in fit.summary()


def test_the_weights_column_is_never_a_default_feature() -> None:
    report = gradfit.fit(MTCARS, ["mpg"], None, SolverConfig(solver="lstsq"), weights="cyl")
    assert "cyl" not in report.model.feature_names
    assert "wt" in report.model.feature_names
    streamed = gradfit.fit(
        MTCARS, ["mpg"], None, SolverConfig(solver="lstsq"), weights="cyl", stream=True
    )
    assert streamed.model.feature_names == report.model.feature_names


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("features", "targets"), [(["wt", "cyl"], ["mpg"]), (["wt"], ["cyl"])])
def test_naming_the_weights_as_a_feature_or_target_is_one_error(
    stream: bool, features: list[str], targets: list[str]
) -> None:
    with pytest.raises(DataError, match=r"'cyl' is the weights column \(--weights\)") as info:
        gradfit.fit(MTCARS, targets, features, SolverConfig(solver="lstsq"), weights="cyl",
                    stream=stream)  # fmt: skip
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("formula", ["mpg ~ wt + cyl", "cyl ~ wt", "mpg ~ wt + np.log(cyl)"])
def test_the_weights_in_a_formula_are_one_error_naming_them(stream: bool, formula: str) -> None:
    """A formula naming the weights column said "no column 'cyl', which the model uses" (the
    weights are left out of the columns a fit's design sees); ``.`` still leaves them out."""
    with pytest.raises(DataError) as info:
        gradfit.fit(MTCARS, config=SolverConfig(solver="lstsq"), formula=formula, weights="cyl",
                    stream=stream)  # fmt: skip
    text = str(info.value)
    assert "'cyl' is the weights column (--weights)" in text and repr(formula) in text, text
    assert "\n" not in text
    report = gradfit.fit(MTCARS, config=SolverConfig(solver="lstsq"), formula="mpg ~ . - model",
                         weights="cyl", stream=stream)  # fmt: skip
    assert "cyl" not in report.model.feature_names and "wt" in report.model.feature_names


@pytest.mark.parametrize("stream", [False, True])
def test_an_unknown_weights_column_is_named(stream: bool) -> None:
    with pytest.raises(DataError, match="'cly'"):
        gradfit.fit(MTCARS, ["mpg"], ["wt"], weights="cly", stream=stream)


# ----------------------------------------------------------------------------- roads


@pytest.mark.parametrize("kind", ["csv", "parquet", "dir"])
@pytest.mark.parametrize("solver", ["gd", "lstsq"])
def test_streamed_weighted_fits_equal_the_fit_in_memory(
    files: dict[str, Path], kind: str, solver: str
) -> None:
    whole = gradfit.fit(MTCARS, ["mpg"], ["wt", "hp"], _config(solver), weights="cyl")
    streamed = gradfit.fit(
        files[kind], ["mpg"], ["wt", "hp"], _config(solver), weights="cyl", stream=True,
        batch_rows=5,
    )  # fmt: skip
    assert _rel(_coefficients(streamed), _coefficients(whole)) <= ROAD_RTOL
    assert _rel(_standard_errors(streamed), _standard_errors(whole)) <= ROAD_RTOL
    np.testing.assert_allclose(streamed.metrics.r2, whole.metrics.r2, rtol=ROAD_RTOL)
    np.testing.assert_allclose(streamed.metrics.mse, whole.metrics.mse, rtol=ROAD_RTOL)
    assert streamed.n_samples == whole.n_samples == 32
    assert streamed.model.hyperparameters["weights"] == "cyl"
    # And R's (the gd fit stopped at the optimum to its tolerance).
    np.testing.assert_allclose(_coefficients(streamed), R_FIT["estimate"], rtol=R_RTOL)


@pytest.mark.parametrize("stream", [False, True])
def test_weighted_robust_errors_are_sandwichs_on_every_road(
    files: dict[str, Path], stream: bool
) -> None:
    report = gradfit.fit(
        files["parquet"], ["mpg"], ["wt", "hp"], SolverConfig(solver="lstsq"), weights="cyl",
        stream=stream, batch_rows=5, inference="HC3",
    )  # fmt: skip
    assert report.inference is not None
    np.testing.assert_allclose(report.inference.covariance[0].numpy(), R_FIT["HC3"], rtol=R_RTOL)


def test_rows_of_weight_zero_are_left_out_on_both_roads(tmp_path: Path) -> None:
    table = pv.read_csv(MTCARS)
    cyl = table.column("cyl").to_numpy().astype(np.float64)
    cyl[[2, 6]] = 0.0  # R's rows 3 and 7 (tests/test_weights.py: "mtcars_zero")
    zero = table.set_column(table.column_names.index("cyl"), "cyl", pa.array(cyl))
    source = tmp_path / "zero.csv"
    pv.write_csv(zero, source)
    kept = tmp_path / "kept.csv"
    pv.write_csv(zero.filter(pa.array(cyl > 0)), kept)
    reference = gradfit.fit(kept, ["mpg"], ["wt", "hp"], SolverConfig(solver="lstsq"),
                            weights="cyl")  # fmt: skip
    for stream in (False, True):
        report = gradfit.fit(
            source, ["mpg"], ["wt", "hp"], SolverConfig(solver="lstsq"), weights="cyl",
            stream=stream, batch_rows=5,
        )  # fmt: skip
        assert report.n_samples == 30
        assert report.inference is not None and report.inference.df_resid == 27
        assert _rel(_coefficients(report), _coefficients(reference)) <= ROAD_RTOL
        assert _rel(_standard_errors(report), _standard_errors(reference)) <= ROAD_RTOL


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("solver", ["gd", "lstsq"])
def test_integer_weights_equal_repeated_rows_through_the_file_road(
    tmp_path: Path, stream: bool, solver: str
) -> None:
    table = pv.read_csv(MTCARS)
    repeat = np.repeat(np.arange(table.num_rows), table.column("cyl").to_numpy())
    repeated = tmp_path / "repeated.csv"
    pv.write_csv(table.take(pa.array(repeat)), repeated)
    weighted = gradfit.fit(MTCARS, ["mpg"], ["wt", "hp"], _config(solver), weights="cyl",
                           stream=stream, batch_rows=5)  # fmt: skip
    rows = gradfit.fit(repeated, ["mpg"], ["wt", "hp"], _config(solver), stream=stream,
                       batch_rows=5)  # fmt: skip
    assert _rel(_coefficients(weighted), _coefficients(rows)) <= ROAD_RTOL
    np.testing.assert_allclose(weighted.metrics.mse, rows.metrics.mse, rtol=ROAD_RTOL)
    np.testing.assert_allclose(weighted.metrics.r2, rows.metrics.r2, rtol=ROAD_RTOL)


def test_a_table_in_memory_takes_a_weights_column() -> None:
    table = pv.read_csv(MTCARS)
    frame = {name: table.column(name).to_numpy() for name in ("mpg", "wt", "hp", "cyl")}
    report = gradfit.fit(frame, ["mpg"], None, SolverConfig(solver="lstsq"), weights="cyl")
    assert report.model.feature_names == ("wt", "hp")
    np.testing.assert_allclose(_coefficients(report), R_FIT["estimate"], rtol=R_RTOL)


def test_early_stopping_holds_out_the_same_weighted_rows_streamed(files: dict[str, Path]) -> None:
    config = SolverConfig(
        solver="gd", max_epochs=400, tol=1e-12, early_stopping=True, validation_fraction=0.25,
        n_iter_no_change=1000,
    )  # fmt: skip
    whole = gradfit.fit(MTCARS, ["mpg"], ["wt", "hp"], config, weights="cyl", seed=5)
    streamed = gradfit.fit(files["csv"], ["mpg"], ["wt", "hp"], config, weights="cyl", seed=5,
                           stream=True, batch_rows=5)  # fmt: skip
    assert whole.n_samples == streamed.n_samples < 32
    assert _rel(_coefficients(streamed), _coefficients(whole)) <= ROAD_RTOL
    np.testing.assert_allclose(
        streamed.result.validation_scores, whole.result.validation_scores, rtol=1e-9
    )


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_streamed_weighted_sgd_steps_as_in_memory(files: dict[str, Path], kind: str) -> None:
    """One unit (a CSV file) and a shuffle buffer above the rows: the epoch is the in-memory
    one, each row's weight scaled to mean 1 as in memory, so the same iterates (1e-12; they
    are measured equal). Several units (row groups) visit the rows in another order: the same
    optimum (R's coefficients to 2 %, sgd's noise at this step)."""
    config = SolverConfig(solver="sgd", max_epochs=200, tol=None, batch_size=4)
    whole = gradfit.fit(MTCARS, ["mpg"], ["wt", "hp"], config, weights="cyl", seed=1)
    streamed = gradfit.fit(files[kind], ["mpg"], ["wt", "hp"], config, weights="cyl", seed=1,
                           stream=True, batch_rows=5)  # fmt: skip
    assert streamed.model.hyperparameters["weights"] == "cyl"
    assert streamed.result.learning_rate == pytest.approx(whole.result.learning_rate, rel=1e-12)
    if kind == "csv":
        assert _rel(_coefficients(streamed), _coefficients(whole)) <= 1e-12
    assert _rel(_coefficients(streamed), R_FIT["estimate"]) < 2e-2
    assert _rel(_coefficients(whole), R_FIT["estimate"]) < 2e-2


# ----------------------------------------------------------------------------- bad weights


def _with_weight(tmp_path: Path, row: int, cell: str, suffix: str = ".csv") -> Path:
    lines = MTCARS.read_text().splitlines()
    header = lines[0].split(",")
    j = header.index('"cyl"')
    if row == 0:  # every row
        for i in range(1, len(lines)):
            cells = lines[i].split(",")
            cells[j] = cell
            lines[i] = ",".join(cells)
    else:
        cells = lines[row].split(",")
        cells[j] = cell
        lines[row] = ",".join(cells)
    path = tmp_path / f"bad{suffix}"
    path.write_text("\n".join(lines) + "\n")
    if suffix == ".parquet":
        csv = tmp_path / "bad.csv"
        path.rename(csv)
        pq.write_table(pv.read_csv(csv), path, row_group_size=5)
    return path


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("-2", "row 17: negative weight"),
        ("NaN", "row 17: missing value"),
        ("", "row 17: missing value"),
        ("inf", "row 17: infinite value"),
    ],
)
def test_a_bad_weight_is_one_line_naming_the_file_row(
    tmp_path: Path, stream: bool, cell: str, message: str
) -> None:
    source = _with_weight(tmp_path, 17, cell)
    with pytest.raises(DataError) as info:
        gradfit.fit(source, ["mpg"], ["wt", "hp"], SolverConfig(solver="lstsq"), weights="cyl",
                    stream=stream, batch_rows=5)  # fmt: skip
    text = str(info.value)
    assert message in text and "'cyl'" in text and "bad.csv" in text, text
    assert "\n" not in text


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("cell", "message"),
    [("NaN", "row 17: missing value"), ("", "row 17: missing value"), ("inf", "row 17: infinite")],
)
def test_a_bad_weight_through_a_design_is_one_line_naming_the_file_row(
    tmp_path: Path, stream: bool, cell: str, message: str
) -> None:
    """Through a design (``missing="drop"``, a formula, a categorical column) a stream reads the
    weights raw, an empty cell as NaN: a missing weight once left its row out silently (a fit
    of one row fewer, exit 0), an infinite one ended in "X^T X overflows"; read whole, both
    were refused. A missing weight is refused with ``missing="drop"`` too."""
    source = _with_weight(tmp_path, 17, cell)
    for options in ({"missing": "drop"}, {"formula": "mpg ~ wt + hp"}):
        with pytest.raises(DataError) as info:
            gradfit.fit(source, None if "formula" in options else ["mpg"],
                        None if "formula" in options else ["wt", "hp"],
                        SolverConfig(solver="lstsq"), weights="cyl", stream=stream,
                        batch_rows=5, **options)  # fmt: skip
        text = str(info.value)
        assert message in text and "'cyl'" in text and "bad.csv" in text, text
        assert "\n" not in text


def test_a_negative_weight_in_a_parquet_row_group_names_its_file_row(tmp_path: Path) -> None:
    source = _with_weight(tmp_path, 23, "-1", ".parquet")
    with pytest.raises(DataError, match=r"bad\.parquet: column 'cyl', row 23: negative weight"):
        gradfit.fit(source, ["mpg"], ["wt", "hp"], weights="cyl", stream=True, batch_rows=4)


@pytest.mark.parametrize("stream", [False, True])
def test_weights_all_zero_are_refused(tmp_path: Path, stream: bool) -> None:
    source = _with_weight(tmp_path, 0, "0")
    with pytest.raises(DataError, match="every weight is 0") as info:
        gradfit.fit(source, ["mpg"], ["wt", "hp"], SolverConfig(solver="lstsq"), weights="cyl",
                    stream=stream, batch_rows=5)  # fmt: skip
    assert "\n" not in str(info.value)


def test_weights_settings_are_checked() -> None:
    with pytest.raises(ValidationError, match="weights must be the name of a column"):
        gradfit.fit(MTCARS, ["mpg"], ["wt"], weights="  ")


# ----------------------------------------------------------------------------- predict


def test_prediction_intervals_take_the_new_rows_weights(tmp_path: Path) -> None:
    report = gradfit.fit(MTCARS, ["mpg"], ["wt", "hp"], SolverConfig(solver="lstsq"),
                         weights="cyl")  # fmt: skip
    new = tmp_path / "new.csv"
    new.write_text(NEW_ROWS)
    for pred_weights, key in [("pw", "prediction"), (None, "prediction_w1")]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            columns = gradfit.predict(report.model, new, interval="prediction",
                                      pred_weights=pred_weights)  # fmt: skip
        # Without the new rows' weights, R's warning (and only then).
        assert [type(w.message) for w in caught] == (
            [] if pred_weights else [gradfit.ConstantVarianceWarning]
        )
        got = np.c_[columns["mpg"], columns["mpg_lower"], columns["mpg_upper"]]
        np.testing.assert_allclose(got, R_FIT[key], rtol=R_RTOL)
    with pytest.raises(ValidationError, match="applies only to --interval prediction"):
        gradfit.predict(report.model, new, interval="confidence", pred_weights="pw")
    bad = tmp_path / "bad.csv"
    bad.write_text(NEW_ROWS.replace("0.5\n", "0\n"))
    with pytest.raises(DataError, match=r"column 'pw' \(--pred-weights\), data row 2"):
        gradfit.predict(report.model, bad, interval="prediction", pred_weights="pw")


# ----------------------------------------------------------------------------- processes


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    env["OMP_NUM_THREADS"] = "1"
    return env


def _gradfit(tmp_path: Path, *args: object, nproc: int = 0) -> subprocess.CompletedProcess[str]:
    launcher = (
        ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc)]
        if nproc
        else []
    )
    command = [sys.executable, *launcher, "-m", "gradfit", *map(str, args)]
    return subprocess.run(
        command, env=_env(), capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path
    )


@pytest.mark.slow
def test_cli_fit_weights_and_predict_pred_weights_are_rs(tmp_path: Path) -> None:
    model = tmp_path / "m.safetensors"
    run = _gradfit(tmp_path, "fit", MTCARS, "--target", "mpg", "--features", "wt,hp",
                   "--weights", "cyl", "--solver", "lstsq", "--out", model, "--json")  # fmt: skip
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary is not None
    saved = load_model(model)
    assert saved.hyperparameters["weights"] == "cyl"
    coef = np.r_[saved.weight[0].numpy(), saved.bias.numpy()]
    np.testing.assert_allclose(coef, R_FIT["estimate"], rtol=R_RTOL)
    new = tmp_path / "new.csv"
    new.write_text(NEW_ROWS)
    for extra, key in [(("--pred-weights", "pw"), "prediction"), ((), "prediction_w1")]:
        run = _gradfit(tmp_path, "predict", model, new, "--interval", "prediction", *extra)
        assert run.returncode == 0, run.stderr
        lines = run.stdout.splitlines()
        assert lines[0] == "mpg,mpg_lower,mpg_upper"
        got = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
        np.testing.assert_allclose(got, R_FIT[key], rtol=R_RTOL)
    info = _gradfit(tmp_path, "info", model)
    assert "weights=cyl" in info.stdout
    bad = _gradfit(tmp_path, "fit", MTCARS, "--target", "mpg", "--features", "wt,cyl",
                   "--weights", "cyl", "--out", tmp_path / "x.safetensors")  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "is the weights column" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.slow
@pytest.mark.parametrize(("solver", "cov"), [("gd", "nonrobust"), ("lstsq", "HC3")])
def test_torchrun_weighted_fit_equals_the_fit_in_memory(
    tmp_path: Path, files: dict[str, Path], solver: str, cov: str
) -> None:
    """Two processes (gloo, torchrun --standalone: a free port), each reading its Parquet row
    groups: the weighted statistics (gd) or R factors (lstsq), and the HC pass's sandwich sums,
    merged over the group."""
    model = tmp_path / "model.safetensors"
    settings: list[object] = ["--epochs", 5000, "--tol", 1e-12] if solver == "gd" else []
    settings += ["--cov", cov]
    run = _gradfit(
        tmp_path, "fit", files["parquet"], "--target", "mpg", "--features", "wt,hp",
        "--weights", "cyl", "--solver", solver, *settings, "--out", model, "--batch-rows", 5,
        "--device", "cpu", nproc=2,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("model written to") == 1
    whole = gradfit.fit(MTCARS, ["mpg"], ["wt", "hp"], _config(solver), weights="cyl",
                        inference=cov)  # fmt: skip
    saved = load_model(model)
    coef = np.r_[saved.weight[0].numpy(), saved.bias.numpy()]
    assert _rel(coef, _coefficients(whole)) <= ROAD_RTOL
    assert saved.hyperparameters["weights"] == "cyl"
    assert saved.inference is not None
    table = saved.inference["summary"]
    assert (table["n"], table["df_resid"]) == (32, R_FIT["df_resid"])
    rows = table["targets"]["mpg"]["coefficients"]
    se = [rows[name]["std_error"] for name in ("wt", "hp", "(Intercept)")]
    assert _rel(se, _standard_errors(whole)) <= ROAD_RTOL
    expected = R_FIT["se"] if cov == "nonrobust" else np.sqrt(np.diag(R_FIT["HC3"]))
    np.testing.assert_allclose(se, expected, rtol=R_RTOL)


@pytest.mark.slow
def test_torchrun_weighted_sgd_reaches_the_weighted_optimum(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    """sgd over two processes steps on the group's weighted mini-batches (each process's share
    weighted, the weights scaled to mean 1 over the group's rows): other steps than one
    process's, the same weighted optimum (R's coefficients to 2 %, as one process reaches)."""
    model = tmp_path / "model.safetensors"
    run = _gradfit(
        tmp_path, "fit", files["parquet"], "--target", "mpg", "--features", "wt,hp",
        "--weights", "cyl", "--solver", "sgd", "--batch-size", 4, "--epochs", 200,
        "--out", model, "--batch-rows", 5, "--device", "cpu", "--seed", 1, nproc=2,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    saved = load_model(model)
    coef = np.r_[saved.weight[0].numpy(), saved.bias.numpy()]
    assert _rel(coef, R_FIT["estimate"]) < 2e-2
    unweighted = gradfit.fit(MTCARS, ["mpg"], ["wt", "hp"], SolverConfig(solver="lstsq"))
    assert _rel(coef, _coefficients(unweighted)) > 2e-2  # the weights do weigh


# ----------------------------------------------------------------------------- evaluate


@pytest.mark.parametrize("stream", [False, True])
def test_evaluate_with_weights_gives_scikit_learns_weighted_metrics(stream: bool) -> None:
    report = gradfit.fit(MTCARS, ["mpg"], ["wt", "hp"], SolverConfig(solver="lstsq"))
    table = pv.read_csv(MTCARS)
    X = np.c_[table.column("wt").to_numpy(), table.column("hp").to_numpy()]
    y, w = table.column("mpg").to_numpy(), table.column("cyl").to_numpy().astype(np.float64)
    pred = report.model.predict(torch.from_numpy(X)).numpy()[:, 0]
    got = gradfit.evaluate(report.model, MTCARS, weights="cyl", stream=stream, batch_rows=5)
    metrics = got.as_dict()["mpg"]
    assert got.n_samples == 32
    # Metrics from sums accumulated batch by batch: 1e-12 relative.
    np.testing.assert_allclose(metrics["mse"], mean_squared_error(y, pred, sample_weight=w),
                               rtol=1e-12)  # fmt: skip
    np.testing.assert_allclose(metrics["mae"], mean_absolute_error(y, pred, sample_weight=w),
                               rtol=1e-12)  # fmt: skip
    np.testing.assert_allclose(metrics["r2"], r2_score(y, pred, sample_weight=w), rtol=1e-12)
    unweighted = gradfit.evaluate(report.model, MTCARS).as_dict()["mpg"]
    assert abs(unweighted["mse"] - metrics["mse"]) > 1e-3  # the weights do weigh


def test_evaluate_refuses_bad_weights_by_row(tmp_path: Path) -> None:
    report = gradfit.fit(MTCARS, ["mpg"], ["wt", "hp"], SolverConfig(solver="lstsq"))
    source = _with_weight(tmp_path, 9, "-3")
    with pytest.raises(DataError, match=r"column 'cyl', row 9: negative weight"):
        gradfit.evaluate(report.model, source, weights="cyl", stream=True, batch_rows=4)
    with pytest.raises(DataError, match="every weight is 0"):
        gradfit.evaluate(report.model, _with_weight(tmp_path, 0, "0"), weights="cyl")


def test_predict_warns_as_r_for_a_weighted_fit_without_the_new_rows_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """R's predict.lm: "Assuming constant prediction variance even though model fit is
    weighted" for a prediction interval without weights; the command line prints the API's
    warning once on stderr; not with --pred-weights, for a confidence interval, nor for an
    unweighted fit."""
    from gradfit.cli import main

    new = tmp_path / "new.csv"
    new.write_text(NEW_ROWS)
    models = {}
    for weights in ("cyl", None):
        models[weights] = tmp_path / f"m_{weights}.safetensors"
        extra = [] if weights is None else ["--weights", weights]
        argv = ["fit", MTCARS, "--target", "mpg", "--features", "wt,hp", "--solver", "lstsq"]
        assert main([str(a) for a in [*argv, *extra, "--out", models[weights], "--quiet"]]) == 0
    capsys.readouterr()
    cases = [
        ("cyl", ["--interval", "prediction"], True),
        ("cyl", ["--interval", "prediction", "--pred-weights", "pw"], False),
        ("cyl", ["--interval", "confidence"], False),
        (None, ["--interval", "prediction"], False),
    ]
    for weights, options, warned in cases:
        code = main(["predict", str(models[weights]), str(new), *options])
        out, err = capsys.readouterr()
        assert code == 0 and out.count("\n") == 3, (options, err)
        lines = err.splitlines()
        if warned:
            assert len(lines) == 1, err
            assert lines[0].startswith("gradfit: warning: Assuming constant prediction variance")
        else:
            assert lines == [], (options, err)
