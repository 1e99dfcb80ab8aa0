"""Predict, evaluate and info with a model that keeps its design (a formula, categorical
columns: gradfit.design): new data encoded by the levels of the training data, in memory, from
a CSV file read whole or streamed, and from Parquet, equal to R's ``predict(lm(...), newdata)``;
a level not seen in training; rows with a missing value (error, drop, keep) for models with and
without a design.

The reference numbers come from R 4 (``Rscript``) on tests/data/r/warpbreaks.csv and
tests/data/r/mtcars.csv as ``read.csv`` reads them (text columns as factors with their levels
sorted, as gradfit sorts them), e.g. for warpbreaks::

    w <- read.csv("warpbreaks.csv", stringsAsFactors = TRUE)
    f <- lm(breaks ~ wool * tension, data = w)
    nd <- data.frame(wool = c("A","B","B","A","B","A"), tension = c("L","M","H","H","L","M"))
    predict(f, nd, interval = "confidence")

Tolerance 1e-10 relative: the coefficients come from a least-squares solve in float64 (R's QR,
gradfit's lstsq) of well-conditioned designs, whose predictions agree to ~1e-13.
"""

from __future__ import annotations

import json
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
import torch
from cli_helpers import gradfit_cli, ok, one_error_line

import gradfit
from gradfit.design import Design
from gradfit.errors import DataError, ValidationError
from gradfit.persistence import SavedModel, load_model, save_model
from gradfit.settings import ApplySettings

R_DATA = Path(__file__).parent / "data" / "r"
RTOL = 1e-10

WOOL = ["A", "B", "B", "A", "B", "A"]
TENSION = ["L", "M", "H", "H", "L", "M"]
# R: predict(f, nd), with interval = "confidence" and interval = "prediction", level = 0.9.
WARP_FIT = [
    44.555555555555586,
    28.777777777777779,
    18.777777777777789,
    24.555555555555550,
    28.222222222222229,
    24.000000000000007,
]
WARP_CONF = (
    [37.223250441057445, 21.445472663279645, 11.445472663279649, 17.223250441057424,
     20.889917107724091, 16.667694885501874],
    [51.887860670053726, 36.110082892275912, 26.110082892275930, 31.887860670053676,
     35.554527336720369, 31.332305114498141],
)  # fmt: skip
WARP_PRED_90 = (
    [25.21368547374126834, 9.43590769596346135, -0.56409230403652799, 5.21368547374123281,
     8.88035214040791132, 4.65812991818568989],
    [63.897425637369906, 48.119647859592092, 38.119647859592106, 43.897425637369864,
     47.564092304036549, 43.341870081814321],
)  # fmt: skip

# R: g <- lm(mpg ~ wt + hp + factor(cyl) + wt:hp, data = m); rows 1, 5, 10, 20, 31 of mtcars.
MTCARS_ROWS = [0, 4, 9, 19, 30]
MTCARS_FIT = [
    22.471964703952619,
    17.084865786415079,
    18.368960779472538,
    30.070456001267711,
    13.827876125989462,
]
MTCARS_CONF = (
    [20.502505959157123, 15.417312331973330, 16.585939810508091, 28.115662690549183,
     10.717658573552374],
    [24.441423448748115, 18.752419240856831, 20.151981748436985, 32.025249311986236,
     16.938093678426551],
)  # fmt: skip
MTCARS_PRED = (
    [17.5343595025510623, 12.2597324306541342, 13.5027157020824564, 25.1386820541888127,
     8.3347321627436379],
    [27.409569905354175, 21.909999142176027, 23.235205856862621, 35.002229948346610,
     19.321020089235287],
)  # fmt: skip


def formula_model(formula: str, data: pd.DataFrame, missing: str = "error") -> SavedModel:
    """A least-squares model of ``formula`` keeping its design and interval data, as
    ``gradfit fit --formula`` writes one."""
    fit = gradfit.ols(formula, data=data, missing=missing)
    design = Design.from_formula(formula, data, missing=missing)
    inference = {"predictor": fit.to_dict(), "summary": fit.as_dict(0.95), "text": fit.summary()}
    return SavedModel(
        fit.weight,
        fit.bias,
        design.columns,
        design.targets,
        solver="lstsq",
        inference=inference,
        design=design.to_dict(),
        rows_dropped=fit.n_dropped,
    )


@pytest.fixture(scope="module")
def warp() -> SavedModel:
    return formula_model("breaks ~ wool * tension", pd.read_csv(R_DATA / "warpbreaks.csv"))


@pytest.fixture(scope="module")
def cars() -> SavedModel:
    return formula_model("mpg ~ wt + hp + C(cyl) + wt:hp", pd.read_csv(R_DATA / "mtcars.csv"))


def new_warp() -> pd.DataFrame:
    return pd.DataFrame({"id": [f"r{i}" for i in range(6)], "wool": WOOL, "tension": TENSION})


def sources(frame: pd.DataFrame, tmp_path: Path) -> dict[str, dict[str, Any]]:
    """The same rows in memory, as CSV (read whole and streamed in batches of 3 rows) and as
    Parquet (whole and streamed): the keyword arguments of gradfit.predict for each."""
    csv, parquet = tmp_path / "new.csv", tmp_path / "new.parquet"
    frame.to_csv(csv, index=False)
    frame.to_parquet(parquet, index=False)
    return {
        "memory": {"source": frame},
        "csv": {"source": csv, "stream": False},
        "csv streamed": {"source": csv, "stream": True, "batch_rows": 3},
        "parquet": {"source": parquet, "stream": False},
        "parquet streamed": {"source": parquet, "stream": True, "batch_rows": 3},
    }


# ----------------------------------------------------------------------------- against R


def test_warpbreaks_predictions_and_intervals_equal_r_from_every_source(
    warp: SavedModel, tmp_path: Path
) -> None:
    for name, kw in sources(new_warp(), tmp_path).items():
        source = kw.pop("source")
        got = gradfit.predict(warp, source, keep=["id"], **kw)
        assert list(got) == ["id", "breaks"], name
        assert list(got["id"]) == [f"r{i}" for i in range(6)], name
        np.testing.assert_allclose(got["breaks"], WARP_FIT, rtol=RTOL, err_msg=name)
        conf = gradfit.predict(warp, source, interval="confidence", **kw)
        np.testing.assert_allclose(conf["breaks"], WARP_FIT, rtol=RTOL, err_msg=name)
        np.testing.assert_allclose(conf["breaks_lower"], WARP_CONF[0], rtol=RTOL, err_msg=name)
        np.testing.assert_allclose(conf["breaks_upper"], WARP_CONF[1], rtol=RTOL, err_msg=name)
        pred = gradfit.predict(warp, source, interval="prediction", level=0.9, **kw)
        np.testing.assert_allclose(pred["breaks_lower"], WARP_PRED_90[0], rtol=RTOL, err_msg=name)
        np.testing.assert_allclose(pred["breaks_upper"], WARP_PRED_90[1], rtol=RTOL, err_msg=name)


def test_mtcars_formula_with_c_and_interaction_equals_r(cars: SavedModel, tmp_path: Path) -> None:
    """Numeric columns (wt, hp), a numeric column under C() and an interaction; the mtcars
    file's own rows, with its name column and the unused columns."""
    rows = pd.read_csv(R_DATA / "mtcars.csv").iloc[MTCARS_ROWS].reset_index(drop=True)
    assert cars.feature_names == ("wt", "hp", "C(cyl)6", "C(cyl)8", "wt:hp")
    for name, kw in sources(rows, tmp_path).items():
        source = kw.pop("source")
        conf = gradfit.predict(cars, source, interval="confidence", keep=["model", "wt"], **kw)
        assert list(conf["model"]) == list(rows["model"]), name
        np.testing.assert_allclose(conf["mpg"], MTCARS_FIT, rtol=RTOL, err_msg=name)
        np.testing.assert_allclose(conf["mpg_lower"], MTCARS_CONF[0], rtol=RTOL, err_msg=name)
        np.testing.assert_allclose(conf["mpg_upper"], MTCARS_CONF[1], rtol=RTOL, err_msg=name)
        pred = gradfit.predict(cars, source, interval="prediction", **kw)
        np.testing.assert_allclose(pred["mpg_lower"], MTCARS_PRED[0], rtol=RTOL, err_msg=name)
        np.testing.assert_allclose(pred["mpg_upper"], MTCARS_PRED[1], rtol=RTOL, err_msg=name)


def test_the_targets_need_not_be_there_to_predict(warp: SavedModel) -> None:
    frame = new_warp()
    assert "breaks" not in frame
    got = gradfit.predict(warp, frame)
    np.testing.assert_allclose(got["breaks"], WARP_FIT, rtol=RTOL)


def test_a_model_file_keeps_the_design(warp: SavedModel, tmp_path: Path) -> None:
    path = tmp_path / "warp.safetensors"
    save_model(path, warp)
    got = gradfit.predict(path, new_warp())
    np.testing.assert_allclose(got["breaks"], WARP_FIT, rtol=RTOL)


def test_a_missing_column_is_named_before_reading(warp: SavedModel) -> None:
    with pytest.raises(DataError, match=r"missing feature column\(s\) 'tension' that the model"):
        gradfit.predict_batches(warp, new_warp().drop(columns="tension"))


# ----------------------------------------------------------------------------- unknown levels


def test_an_unknown_level_is_one_line_naming_column_row_and_level(
    warp: SavedModel, tmp_path: Path
) -> None:
    frame = new_warp()
    frame.loc[4, "tension"] = "X"
    for name, kw in sources(frame, tmp_path).items():
        source = kw.pop("source")
        with pytest.raises(DataError) as caught:
            gradfit.predict(warp, source, **kw)
        message = str(caught.value)
        assert "\n" not in message
        assert "column 'tension', row 5: level 'X' was not seen in training" in message, name
        assert "--unknown-level zero" in message


def test_zero_encodes_an_unknown_level_as_the_reference(warp: SavedModel, tmp_path: Path) -> None:
    frame = new_warp()
    frame.loc[4, "tension"] = "X"  # wool B: predicted as B with tension H, the reference
    frame.loc[5, "wool"] = "C"  # tension M: as A (the reference) with M
    reference = gradfit.predict(warp, pd.DataFrame({"wool": ["B", "A"], "tension": ["H", "M"]}))[
        "breaks"
    ]
    for name, kw in sources(frame, tmp_path).items():
        source = kw.pop("source")
        notes: list[str] = []
        got = gradfit.predict(warp, source, unknown_level="zero", notes=notes, **kw)["breaks"]
        np.testing.assert_allclose(got[:4], WARP_FIT[:4], rtol=RTOL, err_msg=name)
        assert got[4] == reference[0] and got[5] == reference[1], name
        assert notes == [
            "predict: 2 rows had a level not seen in training (encoded as the reference level)"
        ], name


# ----------------------------------------------------------------------------- missing values


def test_missing_values_error_drop_keep_with_a_design(warp: SavedModel, tmp_path: Path) -> None:
    frame = new_warp()
    frame.loc[1, "wool"] = None
    frame.loc[3, "tension"] = None
    for name, kw in sources(frame, tmp_path).items():
        source = kw.pop("source")
        with pytest.raises(DataError, match=r"column 'wool', row 2: missing value .*--missing"):
            gradfit.predict(warp, source, **kw)
        notes: list[str] = []
        dropped = gradfit.predict(warp, source, keep=["id"], missing="drop", notes=notes, **kw)
        assert list(dropped["id"]) == ["r0", "r2", "r4", "r5"], name
        np.testing.assert_allclose(dropped["breaks"], np.take(WARP_FIT, [0, 2, 4, 5]), rtol=RTOL)
        assert notes == ["predict: 2 rows dropped for missing values"], name
        notes.clear()
        kept = gradfit.predict(
            warp, source, keep=["id"], missing="keep", interval="confidence", notes=notes, **kw
        )
        assert list(kept["id"]) == [f"r{i}" for i in range(6)], name
        for column, expected in (
            ("breaks", WARP_FIT),
            ("breaks_lower", WARP_CONF[0]),
            ("breaks_upper", WARP_CONF[1]),
        ):
            values = kept[column]
            assert np.isnan(values[[1, 3]]).all(), (name, column)
            rows = [0, 2, 4, 5]
            np.testing.assert_allclose(values[rows], np.take(expected, rows), rtol=RTOL)
        assert notes == ["predict: 2 rows with missing values left without a prediction"]


def plain_model() -> SavedModel:
    """A model of plain numeric columns (no design): y = 1 + 2a - b."""
    return SavedModel(
        weight=torch.tensor([[2.0, -1.0]], dtype=torch.float64),
        bias=torch.tensor([1.0], dtype=torch.float64),
        feature_names=("a", "b"),
        target_names=("y",),
    )


def test_missing_values_error_drop_keep_without_a_design(tmp_path: Path) -> None:
    model = plain_model()
    frame = pd.DataFrame(
        {
            "id": ["00001", "00002", "00003", "00004", "00005"],
            "a": [1.0, np.nan, 3.0, 4.0, 5.0],
            "b": [0.5, 1.0, 2.0, np.nan, 1.0],
        }
    )
    expected = 1 + 2 * frame["a"].to_numpy() - frame["b"].to_numpy()
    for name, kw in sources(frame, tmp_path).items():
        source = kw.pop("source")
        with pytest.raises(DataError, match=r"column 'a', row 2: missing value"):
            gradfit.predict(model, source, **kw)
        notes: list[str] = []
        dropped = gradfit.predict(model, source, keep=["id"], missing="drop", notes=notes, **kw)
        assert list(dropped["id"]) == ["00001", "00003", "00005"], name
        np.testing.assert_allclose(dropped["y"], expected[[0, 2, 4]], rtol=1e-15)
        assert notes == ["predict: 2 rows dropped for missing values"], name
        kept = gradfit.predict(model, source, keep=["id", "a"], missing="keep", **kw)
        assert len(kept["y"]) == 5 and len(kept["id"]) == 5, name
        np.testing.assert_array_equal(kept["y"], expected)  # NaN where a value is missing
        assert str(kept["a"][1]) in ("nan", "None", ""), name  # the kept column as read


def test_a_bad_cell_is_still_named_with_missing_drop(tmp_path: Path) -> None:
    """Rows left out for a missing value do not shift the row named for another bad cell."""
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n,3\n4,x\n")
    with pytest.raises(DataError, match=r"column 'b', row 3: 'x' is not a number"):
        gradfit.predict(plain_model(), path, missing="drop")


def test_the_settings_are_checked() -> None:
    with pytest.raises(ValidationError, match=r"missing must be one of 'error', 'drop', 'keep'"):
        ApplySettings(missing="omit")
    with pytest.raises(ValidationError, match=r"unknown_level must be one of 'error', 'zero'"):
        ApplySettings(unknown_level="ignore")
    with pytest.raises(ValidationError, match="missing must be one of"):
        gradfit.predict(plain_model(), {"a": [1.0], "b": [2.0]}, missing=None)
    with pytest.raises(ValidationError, match="evaluate: missing must be 'error' or 'drop'"):
        gradfit.evaluate(plain_model(), {"a": [1.0], "b": [2.0], "y": [1.0]}, missing="keep")


# ----------------------------------------------------------------------------- evaluate


def by_hand(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    residual = y - pred
    mse = float(np.mean(residual**2))
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(np.mean(np.abs(residual))),
        "r2": float(1 - np.sum(residual**2) / np.sum((y - y.mean()) ** 2)),
    }


def test_evaluate_with_a_design_equals_metrics_by_hand(tmp_path: Path) -> None:
    """A target through the formula (np.log(mpg)), a row dropped for a missing value and a
    level encoded as the reference: the metrics of the rows kept, computed by hand."""
    cars = pd.read_csv(R_DATA / "mtcars.csv")
    model = formula_model("np.log(mpg) ~ wt + C(cyl)", cars)
    test = cars.iloc[::2].reset_index(drop=True).copy()
    test["cyl"] = test["cyl"].astype(float)
    test.loc[2, "wt"] = np.nan
    test.loc[5, "cyl"] = 5.0  # not a level: the reference, 4
    w, b = model.weight[0].numpy(), float(model.bias[0])
    keep = np.ones(len(test), dtype=bool)
    keep[2] = False
    cyl = test["cyl"].where(test["cyl"] != 5.0, 4.0).to_numpy()
    X = np.column_stack([test["wt"], cyl == 6, cyl == 8]).astype(float)[keep]
    expected = by_hand(np.log(test["mpg"].to_numpy())[keep], X @ w + b)
    for name, kw in sources(test, tmp_path).items():
        source = kw.pop("source")
        with pytest.raises(DataError, match="column 'wt', row 3: missing value"):
            gradfit.evaluate(model, source, unknown_level="zero", **kw)
        notes: list[str] = []
        report = gradfit.evaluate(
            model, source, missing="drop", unknown_level="zero", notes=notes, **kw
        )
        assert report.n_samples == keep.sum() and report.n_dropped == 1, name
        assert report.n_unknown == 1, name
        for key, value in expected.items():
            assert report.as_dict()["np.log(mpg)"][key] == pytest.approx(value, rel=1e-12), name
        assert notes == [
            "evaluate: 1 row dropped for missing values",
            "evaluate: 1 row had a level not seen in training (encoded as the reference level)",
        ]


def test_evaluate_names_a_missing_target_column(warp: SavedModel) -> None:
    with pytest.raises(DataError, match=r"missing target column\(s\) 'breaks' that evaluate"):
        gradfit.evaluate(warp, new_warp())


# ----------------------------------------------------------------------------- command line


@pytest.fixture
def warp_file(warp: SavedModel, tmp_path: Path) -> Path:
    path = tmp_path / "warp.safetensors"
    save_model(path, warp)
    return path


def test_cli_predict_unknown_level_and_missing(
    capsys: pytest.CaptureFixture[str], warp_file: Path, tmp_path: Path
) -> None:
    frame = new_warp()
    frame.loc[2, "tension"] = "X"
    frame.loc[4, "wool"] = None
    data = tmp_path / "new.csv"
    frame.to_csv(data, index=False)
    run = gradfit_cli(capsys, "predict", warp_file, data, "--unknown-level", "zero")
    assert "column 'wool', row 5: missing value" in one_error_line(run)
    run = gradfit_cli(capsys, "predict", warp_file, data, "--missing", "keep")
    line = one_error_line(run)
    assert "column 'tension', row 3: level 'X' was not seen in training" in line
    assert "--unknown-level zero" in line

    run = ok(
        capsys, "predict", warp_file, data, "--unknown-level", "zero", "--missing", "keep",
        "--keep", "id", "--interval", "confidence",
    )  # fmt: skip
    table = pv.read_csv(pa.BufferReader(run.out.encode()))
    assert table.column_names == ["id", "breaks", "breaks_lower", "breaks_upper"]
    assert table.column("id").to_pylist() == [f"r{i}" for i in range(6)]
    lines = run.out.splitlines()
    assert lines[5] == "r4,,,"  # the row without a prediction: empty cells
    breaks = table.column("breaks").to_pylist()
    np.testing.assert_allclose([breaks[i] for i in (0, 1, 3, 5)], np.take(WARP_FIT, [0, 1, 3, 5]))
    assert run.err == (
        "predict: 1 row with missing values left without a prediction\n"
        "predict: 1 row had a level not seen in training (encoded as the reference level)\n"
    )

    out = tmp_path / "pred.parquet"
    run = ok(
        capsys, "predict", warp_file, data, "--unknown-level", "zero", "--missing", "drop",
        "--keep", "id", "--out", out, "--stream", "--batch-rows", "2",
    )  # fmt: skip
    assert run.err.startswith("predict: 1 row dropped for missing values\n")
    written = pq.read_table(out)
    assert written.column("id").to_pylist() == ["r0", "r1", "r2", "r3", "r5"]

    out = tmp_path / "kept.parquet"
    ok(capsys, "predict", warp_file, data, "--unknown-level", "zero", "--missing", "keep",
       "--out", out)  # fmt: skip
    assert pq.read_table(out).column("breaks").null_count == 1  # null, not NaN


def test_cli_predict_refuses_a_bad_choice(
    capsys: pytest.CaptureFixture[str], warp_file: Path, tmp_path: Path
) -> None:
    data = tmp_path / "new.csv"
    new_warp().to_csv(data, index=False)
    run = gradfit_cli(capsys, "predict", warp_file, data, "--missing", "omit")
    assert run.code == 2 and "invalid choice: 'omit'" in run.err


def test_cli_evaluate_missing_drop_and_keep_refused(
    capsys: pytest.CaptureFixture[str], warp_file: Path, tmp_path: Path
) -> None:
    frame = pd.read_csv(R_DATA / "warpbreaks.csv")
    frame.loc[0, "breaks"] = np.nan
    data = tmp_path / "warp.csv"
    frame.to_csv(data, index=False)
    run = gradfit_cli(capsys, "evaluate", warp_file, data, "--missing", "keep")
    assert "invalid choice: 'keep' (choose from 'error', 'drop')" in one_error_line(run)
    assert "column 'breaks', row 1: missing value" in one_error_line(
        gradfit_cli(capsys, "evaluate", warp_file, data)
    )
    run = ok(capsys, "evaluate", warp_file, data, "--missing", "drop", "--json")
    assert json.loads(run.out)["n_samples"] == 53
    assert run.err == "evaluate: 1 row dropped for missing values\n"


def test_cli_info_shows_the_formula_and_levels(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    airquality = pd.read_csv(R_DATA / "airquality.csv")
    model = formula_model("Ozone ~ Solar.R + Wind + C(Month)", airquality, missing="drop")
    path = tmp_path / "air.safetensors"
    save_model(path, model)
    assert load_model(path).rows_dropped == 42  # R: 42 observations deleted
    text = ok(capsys, "info", path).out
    assert "formula: Ozone ~ Solar.R + Wind + C(Month)\n" in text
    assert "intercept: yes\n" in text
    assert "levels of Month: 5, 6, 7, 8, 9 (reference 5)\n" in text
    assert "rows dropped for missing values in training: 42\n" in text
    info = json.loads(ok(capsys, "info", path, "--json").out)
    assert info["design"]["formula"] == "Ozone ~ Solar.R + Wind + C(Month)"
    assert info["design"]["levels"] == {"Month": [5, 6, 7, 8, 9]}
    assert info["rows_dropped"] == 42


def test_cli_info_of_a_plain_model_is_unchanged(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "plain.safetensors"
    save_model(path, plain_model())
    info = json.loads(ok(capsys, "info", path, "--json").out)
    assert "design" not in info and "rows_dropped" not in info
    assert "formula" not in ok(capsys, "info", path).out


@pytest.mark.slow
def test_a_plain_model_predicts_without_importing_formulaic(tmp_path: Path) -> None:
    """Models without a design keep today's road: the design layer (formulaic, pandas: 0.6 s)
    is never imported."""
    model, data = tmp_path / "plain.safetensors", tmp_path / "new.csv"
    save_model(model, plain_model())
    data.write_text("a,b\n1,2\n,3\n")
    code = (
        "import sys, gradfit\n"
        f"print(gradfit.predict({str(model)!r}, {str(data)!r}, missing='keep')['y'])\n"
        "assert 'formulaic' not in sys.modules and 'gradfit.design.design' not in sys.modules\n"
    )
    src = str(Path(gradfit.__file__).parent.parent)
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[ 1. nan]"
