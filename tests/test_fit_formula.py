"""Fitting with a formula, categorical columns and missing values (issue 19, the fit side):
``gradfit.fit(..., formula=, missing=, max_levels=)`` and ``gradfit fit --formula``, the same
model in memory, streamed in batches (CSV, Parquet of several row groups) and under torchrun.

References: R 4.2 ``lm`` on R's own data sets (tests/data/r/*.csv, written by
tests/data/r/export.R), to 1e-8 relative (the closed form in float64 agrees with R to about
1e-13 here); gd, which stops at a loss tolerance, to 1e-6 of lstsq; the streamed and torchrun
fits to 1e-10 of the fit in memory (the same rows, accumulated in another order).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq
import pytest
from cli_helpers import ok, user_error

import gradfit
from gradfit.errors import DataError, ValidationError
from gradfit.fitting import CONSTANT, IDENTIFIER
from gradfit.persistence import load_model, save_model
from gradfit.solvers.config import SolverConfig

R_DATA = Path(__file__).parent / "data" / "r"
LSTSQ = SolverConfig(solver="lstsq")
GD = SolverConfig(solver="gd", max_epochs=5000, tol=1e-14)

# R 4.2.2: options(digits = 17); coef(lm(FORMULA, read.csv(FILE, stringsAsFactors = TRUE)))
R_COEF: dict[str, tuple[str, str, dict[str, float]]] = {
    "warpbreaks": (
        "warpbreaks.csv",
        "breaks ~ wool * tension",
        {
            "(Intercept)": 24.55555555555555003,
            "woolB": -5.77777777777775992,
            "tensionL": 20.00000000000003553,
            "tensionM": -0.55555555555554192,
            "woolB:tensionL": -10.55555555555559977,
            "woolB:tensionM": 10.55555555555553404,
        },
    ),
    # lm(Ozone ~ ., airquality): 42 rows deleted due to missingness, 111 kept.
    "airquality": (
        "airquality.csv",
        "Ozone ~ .",
        {
            "(Intercept)": -64.116321103342642118,
            "Solar.R": 0.050274318783168501,
            "Wind": -3.318443861677258688,
            "Temp": 1.895786416986920742,
            "Month": -3.039956640773838092,
            "Day": 0.273877521151532854,
        },
    ),
    # lm(mpg ~ wt + hp + factor(cyl) + wt:hp, mtcars)
    "mtcars": (
        "mtcars.csv",
        "mpg ~ wt + hp + C(cyl) + wt:hp",
        {
            "(Intercept)": 47.337328934818138748,
            "wt": -7.306336529624935849,
            "hp": -0.103331168366646881,
            "C(cyl)6": -1.259072650963309226,
            "C(cyl)8": -1.454339287853528617,
            "wt:hp": 0.023951209743394437,
        },
    ),
    # lm(mpg ~ 0 + wt + factor(cyl), mtcars): no intercept, every level of cyl a column.
    "mtcars-0": (
        "mtcars.csv",
        "mpg ~ 0 + wt + C(cyl)",
        {
            "wt": -3.2056132561928647,
            "C(cyl)4": 33.9907940091324789,
            "C(cyl)6": 29.7352116071611903,
            "C(cyl)8": 27.9199343286415953,
        },
    ),
}


def _coefficients(report: Any) -> dict[str, float]:
    model = report.model
    out = dict(zip(model.feature_names, model.weight[0].double().tolist(), strict=True))
    if model.design["fit_intercept"]:
        out["(Intercept)"] = float(model.bias[0])
    return out


def _rel(a: dict[str, float], b: dict[str, float]) -> float:
    assert set(a) == set(b)
    scale = max(abs(v) for v in b.values())
    return max(abs(a[k] - b[k]) for k in b) / scale


@pytest.mark.parametrize("case", list(R_COEF))
def test_lstsq_and_gd_give_r_lm_coefficients(case: str) -> None:
    file, formula, expected = R_COEF[case]
    path = R_DATA / file
    report = gradfit.fit(path, formula=formula, missing="drop", config=LSTSQ)
    assert _rel(_coefficients(report), expected) <= 1e-8
    gd = gradfit.fit(path, formula=formula, missing="drop", config=GD)
    assert _rel(_coefficients(gd), _coefficients(report)) <= 1e-6
    # Coefficients named as the formula names them, in the table too.
    assert report.inference is not None
    assert tuple(report.inference.feature_names) == report.model.feature_names
    assert report.model.design["formula"] == formula
    assert report.model.design["fit_intercept"] is ("(Intercept)" in expected)


def test_a_pandas_categorical_keeps_its_levels_order() -> None:
    """R's own warpbreaks has tension as a factor L, M, H (H is not the reference): a
    DataFrame's Categorical says so, as R's factor does."""
    frame = pd.read_csv(R_DATA / "warpbreaks.csv")
    frame["tension"] = pd.Categorical(frame["tension"], categories=["L", "M", "H"])
    report = gradfit.fit(frame, formula="breaks ~ wool * tension", config=LSTSQ)
    # R 4.2.2: w$tension <- factor(w$tension, levels = c("L", "M", "H"));
    # coef(lm(breaks ~ wool * tension, w))
    expected = {
        "(Intercept)": 44.555555555555543,
        "woolB": -16.333333333333325,
        "tensionM": -20.555555555555546,
        "tensionH": -19.999999999999982,
        "woolB:tensionM": 21.111111111111097,
        "woolB:tensionH": 10.555555555555536,
    }
    assert _rel(_coefficients(report), expected) <= 1e-8
    assert report.model.design["levels"]["tension"] == ["L", "M", "H"]


def test_airquality_drops_42_rows_and_counts_them_everywhere(tmp_path: Path) -> None:
    report = gradfit.fit(
        R_DATA / "airquality.csv", formula="Ozone ~ .", missing="drop", config=LSTSQ
    )
    assert (report.rows_dropped, report.n_samples) == (42, 111)
    assert report.model.rows_dropped == 42
    assert report.model.hyperparameters["n_samples"] == 111
    # Degrees of freedom from the rows kept: R's 105 (111 - 6 coefficients).
    assert report.inference is not None
    assert "on 105 degrees of freedom" in report.inference.summary()
    assert "(42 observations deleted due to missingness)" in report.inference.summary()
    assert report.inference.n_dropped == 42
    assert report.model.inference is not None
    assert report.model.inference["summary"]["n_dropped"] == 42
    path = tmp_path / "m.safetensors"
    save_model(path, report.model)
    loaded = load_model(path)
    assert loaded.rows_dropped == 42 and loaded.design == report.model.design
    encoding = loaded.encoding()
    assert encoding is not None and encoding.columns == report.model.feature_names


def test_missing_error_suggests_drop() -> None:
    with pytest.raises(DataError) as error:
        gradfit.fit(R_DATA / "airquality.csv", formula="Ozone ~ .", config=LSTSQ)
    message = str(error.value)
    assert "column 'Ozone', row 5: missing value" in message
    assert "--missing drop (missing='drop')" in message and "\n" not in message
    with pytest.raises(DataError, match=r"row 5: missing value.*missing='drop'"):
        gradfit.fit(R_DATA / "airquality.csv", ["Ozone"], config=LSTSQ)


def test_missing_drop_on_plain_numeric_columns_equals_dropping_by_hand() -> None:
    frame = pd.read_csv(R_DATA / "airquality.csv")
    report = gradfit.fit(frame, ["Ozone"], missing="drop", config=LSTSQ)
    by_hand = gradfit.fit(frame.dropna(), ["Ozone"], config=LSTSQ)
    assert report.rows_dropped == 42 and by_hand.rows_dropped == 0
    assert report.model.feature_names == by_hand.model.feature_names
    np.testing.assert_allclose(report.model.weight, by_hand.model.weight, rtol=1e-12)


def test_formula_with_targets_or_features_is_refused() -> None:
    frame = pd.read_csv(R_DATA / "warpbreaks.csv")
    for extra in ({"targets": ["breaks"]}, {"features": ["wool"]}):
        with pytest.raises(ValidationError, match="names the targets and features itself"):
            gradfit.fit(frame, formula="breaks ~ wool", **extra)
    with pytest.raises(ValidationError, match="name at least one target column"):
        gradfit.fit(frame)
    with pytest.raises(ValidationError, match="missing must be 'error' or 'drop'"):
        gradfit.fit(frame, ["breaks"], missing="omit")


def test_intercept_comes_from_the_formula() -> None:
    frame = pd.read_csv(R_DATA / "mtcars.csv")
    report = gradfit.fit(frame, formula="mpg ~ wt - 1", config=LSTSQ)
    assert report.config.fit_intercept is False and float(report.model.bias[0]) == 0.0
    # R 4.2.2: coef(lm(mpg ~ wt - 1, mtcars))
    assert abs(float(report.model.weight[0, 0]) / 5.2916241007542588 - 1) < 1e-12
    with pytest.raises(ValidationError, match=r"has an intercept.*'0 \+' or '- 1'"):
        gradfit.fit(
            frame, formula="mpg ~ wt", config=SolverConfig(solver="lstsq", fit_intercept=False)
        )


def _regions(n: int = 240, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    region = np.array(["A", "B", "C"])[rng.integers(0, 3, size=n)].astype(object)
    region[-40:] = np.where(rng.random(40) < 0.5, "D", region[-40:])  # D only at the end
    x = rng.normal(size=n)
    effect = {"A": 0.0, "B": 2.0, "C": -1.0, "D": 5.0}
    y = 1.0 + 3.0 * x + np.array([effect[r] for r in region]) + rng.normal(size=n) * 0.1
    x[rng.random(n) < 0.05] = np.nan  # missing cells, in a feature and in the target
    y[rng.random(n) < 0.05] = np.nan
    region[rng.random(n) < 0.03] = None
    return pd.DataFrame({"region": region, "x": x, "y": y, "id": [f"r{i}" for i in range(n)]})


def test_default_features_take_a_text_column_as_categorical() -> None:
    frame = _regions()
    report = gradfit.fit(frame, ["y"], missing="drop", config=LSTSQ)
    assert report.model.feature_names == ("regionB", "regionC", "regionD", "x")
    assert report.left_out == {"id": IDENTIFIER}  # a different value in every row
    same = gradfit.fit(frame, formula="y ~ region + x", missing="drop", config=LSTSQ)
    np.testing.assert_array_equal(report.model.weight, same.model.weight)
    kept = frame[["region", "x", "y"]].dropna()
    assert report.rows_dropped == len(frame) - len(kept) > 0
    # The numbers: least squares on R's treatment coding, by NumPy.
    X = np.column_stack(
        [np.ones(len(kept)), *[(kept.region == g).to_numpy(float) for g in "BCD"], kept.x]
    )
    beta = np.linalg.lstsq(X, kept.y.to_numpy(), rcond=None)[0]
    np.testing.assert_allclose(report.model.weight[0].numpy(), beta[1:], rtol=1e-10)
    np.testing.assert_allclose(float(report.model.bias[0]), beta[0], rtol=1e-10)


def test_a_text_column_of_one_value_is_left_out_by_default() -> None:
    frame = _regions().assign(site="north")
    report = gradfit.fit(frame, ["y"], missing="drop", config=LSTSQ)
    assert report.left_out == {"id": IDENTIFIER, "site": CONSTANT}
    assert report.model.feature_names == ("regionB", "regionC", "regionD", "x")


def test_too_many_levels_is_refused_in_one_line() -> None:
    frame = _regions()
    with pytest.raises(DataError) as error:
        gradfit.fit(frame, ["y"], ["x", "region"], missing="drop", max_levels=3)
    message = str(error.value)
    assert "column 'region' has more than 3 distinct values (4 so far)" in message
    assert "--max-levels" in message and "leave it out" in message and "\n" not in message


@pytest.mark.slow
def test_the_plain_numeric_road_does_not_import_the_design_layer() -> None:
    code = (
        "import sys, numpy as np, gradfit\n"
        "from gradfit.solvers.config import SolverConfig\n"
        "x = np.arange(20.0); gradfit.fit({'x': x, 'y': 2 * x + 1}, ['y'],"
        " config=SolverConfig(solver='lstsq'))\n"
        "print('gradfit.design.design' in sys.modules, 'formulaic' in sys.modules)\n"
    )
    pytest.importorskip("formulaic")
    done = _python(code)
    assert done.stdout.split() == ["False", "False"], done.stderr


# ----------------------------------------------------------------------------- streamed


@pytest.fixture(scope="module")
def region_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("regions")
    table = pa.Table.from_pandas(_regions(), preserve_index=False)
    pv.write_csv(table, root / "data.csv")
    pq.write_table(table, root / "data.parquet", row_group_size=30)  # 8 row groups
    parts = root / "parts"
    parts.mkdir()
    for i, start in enumerate((0, 70, 150)):
        pv.write_csv(table.slice(start, (70, 80, 90)[i]), parts / f"part{i}.csv")
    return {"csv": root / "data.csv", "parquet": root / "data.parquet", "dir": parts}


FORMULA = "y ~ region * x"


@pytest.mark.parametrize("kind", ["csv", "parquet", "dir"])
@pytest.mark.parametrize("solver", ["lstsq", "gd"])
def test_streamed_fit_equals_the_fit_in_memory(
    region_files: dict[str, Path], kind: str, solver: str
) -> None:
    config = LSTSQ if solver == "lstsq" else GD
    whole = gradfit.fit(_regions(), formula=FORMULA, missing="drop", config=config)
    streamed = gradfit.fit(
        region_files[kind], formula=FORMULA, missing="drop", config=config, stream=True,
        batch_rows=25,
    )  # fmt: skip
    assert streamed.model.feature_names == whole.model.feature_names
    assert "regionD" in streamed.model.feature_names  # a level first seen in a late batch
    assert streamed.rows_dropped == whole.rows_dropped > 0
    assert streamed.n_samples == whole.n_samples
    assert streamed.model.design == whole.model.design
    np.testing.assert_allclose(streamed.model.weight, whole.model.weight, rtol=1e-10, atol=0)
    np.testing.assert_allclose(streamed.model.bias, whole.model.bias, rtol=1e-10, atol=0)


def test_streamed_default_features_equal_the_fit_in_memory(region_files: dict[str, Path]) -> None:
    whole = gradfit.fit(region_files["csv"], ["y"], missing="drop", config=LSTSQ)
    streamed = gradfit.fit(
        region_files["parquet"], ["y"], missing="drop", config=LSTSQ, stream=True, batch_rows=25
    )
    assert whole.model.feature_names == streamed.model.feature_names
    assert whole.left_out == streamed.left_out == {"id": IDENTIFIER}
    np.testing.assert_allclose(streamed.model.weight, whole.model.weight, rtol=1e-10, atol=0)


def test_early_stopping_holds_out_the_same_file_rows(region_files: dict[str, Path]) -> None:
    """The hold-out rule numbers the file's rows, the dropped ones included, on both roads."""
    config = SolverConfig(early_stopping=True, validation_fraction=0.25, max_epochs=50)
    whole = gradfit.fit(region_files["csv"], formula=FORMULA, missing="drop", config=config)
    streamed = gradfit.fit(
        region_files["csv"], formula=FORMULA, missing="drop", config=config, stream=True,
        batch_rows=25,
    )  # fmt: skip
    assert whole.n_samples == streamed.n_samples
    np.testing.assert_allclose(streamed.model.weight, whole.model.weight, rtol=1e-10, atol=0)
    assert whole.result.validation_scores is not None
    np.testing.assert_allclose(
        streamed.result.validation_scores, whole.result.validation_scores, rtol=1e-10
    )


def test_a_stream_refuses_stateful_transforms(region_files: dict[str, Path]) -> None:
    with pytest.raises(ValidationError, match=r"'poly\(x, 2\)'.*--no-stream"):
        gradfit.fit(
            region_files["csv"], formula="y ~ poly(x, 2)", missing="drop", stream=True,
            batch_rows=25,
        )  # fmt: skip
    # In memory the state comes from all the rows: fine.
    gradfit.fit(region_files["csv"], formula="y ~ poly(x, 2)", missing="drop", config=LSTSQ)


def test_a_stream_names_the_file_row_of_a_missing_value(region_files: dict[str, Path]) -> None:
    frame = _regions()
    first = int(np.flatnonzero(frame[["region", "x", "y"]].isna().any(axis=1).to_numpy())[0])
    with pytest.raises(DataError, match=rf"row {first + 1}: missing value.*--missing drop"):
        gradfit.fit(region_files["csv"], formula=FORMULA, stream=True, batch_rows=25)


# ----------------------------------------------------------------------------- command line


def test_cli_fit_with_a_formula_writes_the_design(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    model = tmp_path / "m.safetensors"
    data = R_DATA / "airquality.csv"
    argv = ["fit", data, "--formula", "Ozone ~ .", "--missing", "drop", "--solver", "lstsq"]
    run = ok(capsys, *argv, "--out", model)
    assert "(42 observations deleted due to missingness)" in run.out
    assert "Residual standard error: 20.8585 on 105 degrees of freedom" in run.out
    assert "rows dropped (missing values)" in run.out and "fit (lstsq, 111 rows)" in run.out
    saved = load_model(model)
    assert saved.rows_dropped == 42 and saved.design is not None
    assert saved.design["formula"] == "Ozone ~ ." and saved.feature_names[0] == "Solar.R"
    summary = json.loads(ok(capsys, *argv, "--out", model, "--json").out)
    assert summary["rows_dropped"] == 42
    warp = ok(
        capsys, "fit", R_DATA / "warpbreaks.csv", "--target", "breaks", "--solver", "lstsq",
        "--out", model,
    )  # fmt: skip
    assert "woolB" in warp.out and "tensionL" in warp.out  # text columns as categorical
    assert load_model(model).feature_names == ("woolB", "tensionL", "tensionM")


def test_cli_refusals(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    model = out / "m.safetensors"
    air = R_DATA / "airquality.csv"
    user_error(
        capsys, out, "fit", air, "--formula", "Ozone ~ .", "--target", "Ozone", "--out", model,
        says=("--formula names the targets and features itself", "--target"),
    )  # fmt: skip
    user_error(
        capsys, out, "fit", air, "--target", "Ozone", "--out", model,
        says=("column 'Ozone', row 5: missing value", "--missing drop"),
    )  # fmt: skip
    user_error(
        capsys, out, "fit", R_DATA / "warpbreaks.csv", "--target", "breaks", "--max-levels",
        "2", "--out", model,
        says=("column 'tension' has more than 2 distinct values", "--max-levels"),
    )  # fmt: skip
    user_error(capsys, out, "fit", air, "--out", model, says=("--target", "--formula"))


@pytest.mark.parametrize("stream", ["--no-stream", "--stream"])
@pytest.mark.parametrize(
    ("formula", "commands", "says"),
    [
        # The intercept alone is a design (anova and gradfit.ols take it, as R's lm(y ~ 1)),
        # not a model file: fit refuses it and says where the mean alone is found.
        ("y ~ 1", ("fit",), ("'y ~ 1' gives no feature column", "anova --formula")),
        ("y ~ C(region, levels=['zz'])", ("fit",), ("gives no feature column",)),
        ("y ~ 0", ("fit", "anova"), ("'y ~ 0' gives no column, neither an intercept",)),
        ("y ~ x | region", ("fit", "anova"), ("parts separated by '|'", "'+' between the terms")),
        (
            "y ~ x +",
            ("fit", "anova"),
            ("cannot read the formula 'y ~ x +'", "misplaced. y ~ x ⧛+⧚"),
        ),
    ],
)
def test_cli_a_formula_of_no_features_or_of_parts_is_one_line(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    region_files: dict[str, Path],
    formula: str,
    commands: tuple[str, ...],
    says: tuple[str, ...],
    stream: str,
) -> None:
    """A formula that gives no feature column (an intercept alone, ``0``, a ``C()`` of one
    level) was "X must have at least 1 column" read whole and an internal error streamed; one
    with ``|`` an internal error; formulaic's colours were in the line as escapes
    (``\\x1b[1;31m``)."""
    out = tmp_path / "out"
    out.mkdir()
    model = out / "m.sf"
    argvs = {
        "fit": ("fit", region_files["csv"], "--formula", formula, "--out", model),
        "anova": ("anova", region_files["csv"], "--formula", formula),
    }
    for command in commands:
        line = user_error(capsys, out, *argvs[command], "--missing", "drop", stream, says=says)
        assert "\\x1b" not in line


# ----------------------------------------------------------------------------- processes


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    env["OMP_NUM_THREADS"] = "1"
    return env


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
@pytest.mark.parametrize("solver", ["lstsq", "gd"])
def test_torchrun_fit_equals_the_fit_in_memory(
    tmp_path: Path, region_files: dict[str, Path], solver: str
) -> None:
    """Two processes, each reading half the row groups: the levels merged over the ranks
    (regionD only in rank 1's shard), the dropped rows counted over both."""
    model = tmp_path / "m.safetensors"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "gradfit", "fit", str(region_files["parquet"]), "--formula", FORMULA,
        "--missing", "drop", "--solver", solver, "--batch-rows", "25", "--out", str(model),
        "--epochs", "5000", "--tol", "1e-14",
    ]  # fmt: skip
    run = subprocess.run(
        command, env=_env(), capture_output=True, text=True, timeout=240, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr[-3000:]
    whole = gradfit.fit(
        _regions(), formula=FORMULA, missing="drop", config=LSTSQ if solver == "lstsq" else GD
    )
    saved = load_model(model)
    assert saved.feature_names == whole.model.feature_names
    assert saved.rows_dropped == whole.rows_dropped > 0
    assert saved.design == whole.model.design
    np.testing.assert_allclose(saved.weight, whole.model.weight, rtol=1e-10, atol=0)
    np.testing.assert_allclose(saved.bias, whole.model.bias, rtol=1e-10, atol=0)
