"""Answers that must agree with R: a rank-deficient least-squares fit follows R's convention
(the later of collinear features aliased: coefficient 0, NA errors) in the table, the JSON,
the model file and `predict`, which warns as R's `predict.lm` does about rows that break the
training features' collinearity; `fit --level`; R's integer NA refused; one name as a string.

The R numbers below were computed once with R 4.2.2 (`lm`, `predict.lm`, `confint`) on the
data of this file and pasted here; the R code is given next to them."""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import gradfit_cli, ok, one_error_line, rewrite_document, write_csv
from scipy import stats as sps

import gradfit
from gradfit.errors import ModelFileError, RankDeficiencyWarning, ValidationError
from gradfit.inference import ESTIMABLE_TOL, Estimability, estimability, ols, ols_from_stats
from gradfit.persistence import load_model
from gradfit.solvers.stats import SufficientStats

# 20 rows, x2 = 2 * x1 exactly (written to the CSV as such), y = 3 + 1.5 x1 - 2 x3 + noise.
X1 = [8.45, 1.61, 5.58, 3.68, 2.15, 3.86, 4.28, 6.11, 7.36, 0.15]
X1 += [2.54, 6.04, 0.84, 9.98, 8.32, 0.37, 5.68, 6.09, 0.07, 1.79]
X3 = [-3.35, -0.38, 0.67, -0.48, 4.2, 3.15, -0.99, -2.97, -1.42, 3.62]
X3 += [-1.51, 4.91, 0.66, -2.63, 1.59, 1.6, 0.15, -2.21, 1.3, -0.21]
Y = [22.813, 6.568, 7.595, 9.37, -2.012, 3.051, 10.584, 16.777, 15.929, -3.467]
Y += [8.978, 1.476, 4.084, 22.444, 11.401, 0.264, 11.419, 17.593, -0.374, 4.537]
NEW = [[4.0, 8.0, 1.0], [4.0, 5.0, 1.0]]  # the second row breaks x2 = 2 x1

# R 4.2.2:
#   d <- read.csv("coll.csv")                     # the columns x1, x2 = 2 * x1, x3, y above
#   fit <- lm(y ~ x1 + x2 + x3, data = d)
#   coef(fit)                                     # x2: NA
#   new <- data.frame(x1 = c(4, 4), x2 = c(8, 5), x3 = c(1, 1))
#   predict(fit, new, interval = "prediction")    # warns: "prediction from a rank-deficient
#   predict(fit, new, interval = "confidence")    #   fit may be misleading"
#   confint(fit, level = 0.9)
R_COEF = {"(Intercept)": 2.9472874323087157, "x1": 1.4296137350006168, "x3": -1.9932342867503166}
R_FIT = 6.6725080855608656  # both rows: x2's coefficient is 0
R_PREDICTION = (4.6167410194078906, 8.7282751517138415)
R_CONFIDENCE = (6.2035505875082455, 7.1414655836134857)
R_CONFINT_90 = {
    "(Intercept)": (2.2245617781689369, 3.6700130864484941),
    "x1": (1.2890281257281726, 1.5701993442730611),
    "x3": (-2.1705337330863452, -1.8159348404142879),
}
RTOL = 1e-10


def design() -> tuple[np.ndarray, np.ndarray]:
    x1, x3 = np.array(X1), np.array(X3)
    return np.column_stack([x1, 2 * x1, x3]), np.array(Y)


@pytest.fixture
def collinear_csv(tmp_path: Path) -> Path:
    X, y = design()
    return write_csv(tmp_path / "coll.csv", {"x1": X[:, 0], "x2": X[:, 1], "x3": X[:, 2], "y": y})


@pytest.fixture
def new_csv(tmp_path: Path) -> Path:
    rows = np.array(NEW)
    return write_csv(
        tmp_path / "new.csv", {n: rows[:, j] for j, n in enumerate(("x1", "x2", "x3"))}
    )


def floats(csv_text: str) -> np.ndarray:
    lines = csv_text.strip().splitlines()
    return np.array([[float(v) for v in line.split(",")] for line in lines[1:]])


# ----------------------------------------------------------------------------- item 1: CLI


@pytest.mark.parametrize("stream", ["--no-stream", "--stream"])
def test_rank_deficient_lstsq_follows_r_everywhere(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    collinear_csv: Path,
    new_csv: Path,
    stream: str,
) -> None:
    model_path = tmp_path / "m.safetensors"
    run = ok(
        capsys, "fit", collinear_csv, "--target", "y", "--solver", "lstsq", "--out", model_path,
        stream, "--json",
    )  # fmt: skip
    # One message for the fit, naming the aliased feature (not also "minimum-norm").
    warned = [line for line in run.err.splitlines() if "rank deficient" in line]
    assert len(warned) == 1 and "x2" in warned[0], run.err
    assert "minimum-norm" not in run.err
    summary = json.loads(run.out)["inference"]["targets"]["y"]["coefficients"]
    assert summary["x2"]["aliased"] and summary["x2"]["estimate"] == 0.0
    assert summary["x2"]["std_error"] is None  # NaN in JSON: R's NA
    for name, value in R_COEF.items():
        assert summary[name]["estimate"] == pytest.approx(value, rel=1e-9)

    # The model file: the aliased weight is exactly 0, the others R's.
    model = load_model(model_path)
    assert model.weight[0, 1].item() == 0.0
    np.testing.assert_allclose(model.weight[0, [0, 2]].numpy(), [R_COEF["x1"], R_COEF["x3"]], RTOL)
    assert model.bias.item() == pytest.approx(R_COEF["(Intercept)"], rel=RTOL)

    # predict: R's numbers and the library's, with one warning line for the row off the span.
    X, y = design()
    with pytest.warns(RankDeficiencyWarning, match="not estimable.*: x2"):
        library = ols(X, y, feature_names=("x1", "x2", "x3"))
    with pytest.warns(RankDeficiencyWarning, match="misleading"):
        expected = library.predict(np.array(NEW), interval="prediction")
    for extra in ([], ["--stream"]):
        run = ok(capsys, "predict", model_path, new_csv, "--interval", "prediction", *extra)
        got = floats(run.out)
        np.testing.assert_allclose(got[:, 0], [R_FIT, R_FIT], rtol=RTOL)
        np.testing.assert_allclose(got[1, 1:], R_PREDICTION, rtol=1e-9)
        np.testing.assert_allclose(got[:, 0], expected.mean[:, 0].numpy(), rtol=RTOL)
        np.testing.assert_allclose(got[:, 2], expected.upper[:, 0].numpy(), rtol=RTOL)
        lines = run.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("gradfit: warning: prediction from a ")
        assert "x2" in lines[0]
    run = ok(capsys, "predict", model_path, new_csv, "--interval", "confidence")
    np.testing.assert_allclose(floats(run.out)[1, 1:], R_CONFIDENCE, rtol=1e-9)

    # The minimum-norm weights would predict something else on the second row.
    with pytest.warns(RankDeficiencyWarning, match="minimum-norm"):
        minimum_norm = gradfit.least_squares(X, y)
    off = float(np.array(NEW[1]) @ minimum_norm.weight[0].numpy() + minimum_norm.bias.item())
    assert abs(off - R_FIT) > 1.0


def test_rows_on_the_span_predict_without_a_warning(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, collinear_csv: Path
) -> None:
    model_path = tmp_path / "m.safetensors"
    ok(capsys, "fit", collinear_csv, "--target", "y", "--solver", "lstsq", "--out", model_path)
    on_span = write_csv(tmp_path / "on.csv", {"x1": [4.0, 0.5], "x2": [8.0, 1.0], "x3": [1, 2]})
    run = ok(capsys, "predict", model_path, on_span)
    assert run.err == ""


def test_converged_gd_gets_r_weights_in_its_model_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, collinear_csv: Path, new_csv: Path
) -> None:
    """A gradient-descent fit of a rank-deficient design reaches some optimum; its table and its
    model file follow R's convention (the same predictions on the training rows)."""
    model_path = tmp_path / "gd.safetensors"
    run = ok(
        capsys, "fit", collinear_csv, "--target", "y", "--solver", "gd", "--tol", "1e-14",
        "--epochs", "5000", "--out", model_path,
    )  # fmt: skip
    assert "x2" in run.out and "NA" in run.out
    model = load_model(model_path)
    assert model.weight[0, 1].item() == 0.0
    np.testing.assert_allclose(model.weight[0, [0, 2]].numpy(), [R_COEF["x1"], R_COEF["x3"]], 1e-6)
    run = ok(capsys, "predict", model_path, new_csv)
    np.testing.assert_allclose(floats(run.out)[:, 0], [R_FIT, R_FIT], rtol=1e-6)
    assert "misleading" in run.err


def test_corrupt_estimability_data_is_refused_naming_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, collinear_csv: Path, new_csv: Path
) -> None:
    model_path = tmp_path / "m.safetensors"
    ok(capsys, "fit", collinear_csv, "--target", "y", "--solver", "lstsq", "--out", model_path)

    inference = load_model(model_path).inference
    assert inference is not None
    inference["estimability"]["basis"] = [[1.0, 2.0]]
    rewrite_document(model_path, inference=inference)
    run = gradfit_cli(capsys, "predict", model_path, new_csv)
    line = one_error_line(run)
    assert str(model_path) in line and "estimability" in line
    # The library loads the model with the same check: the file is named there too.
    with pytest.raises(ModelFileError, match=f"{re.escape(str(model_path))}: corrupt estimab"):
        load_model(model_path)


# ----------------------------------------------------------------------------- item 1: library


def test_least_squares_aliased_is_r_and_min_norm_stays_the_default() -> None:
    X, y = design()
    with pytest.warns(RankDeficiencyWarning, match=r"column\(s\) 1 \(counted from 0\)"):
        r = gradfit.least_squares(X, y, rank_deficient="aliased")
    assert r.aliased is not None and r.aliased.tolist() == [False, True, False]
    assert r.weight[0, 1].item() == 0.0
    np.testing.assert_allclose(r.weight[0, [0, 2]].numpy(), [R_COEF["x1"], R_COEF["x3"]], RTOL)
    with pytest.warns(RankDeficiencyWarning, match="minimum-norm"):
        m = gradfit.least_squares(X, y)
    assert m.aliased is not None and not bool(m.aliased.any())
    assert m.weight[0, 1].item() != 0.0
    with pytest.raises(ValidationError, match="rank_deficient must be 'min-norm' or 'aliased'"):
        gradfit.least_squares(X, y, rank_deficient="zero")
    full = gradfit.least_squares(X[:, [0, 2]], y, rank_deficient="aliased")
    assert full.aliased is not None and full.aliased.tolist() == [False, False]


def test_the_lstsq_solver_gives_r_weights_in_memory() -> None:
    X, y = design()
    with pytest.warns(RankDeficiencyWarning):
        est = gradfit.GradientDescentRegressor(solver="lstsq").fit(X, y)
    assert est.coef_[1] == 0.0
    assert est.intercept_ == pytest.approx(R_COEF["(Intercept)"], rel=RTOL)


def test_ols_predict_warns_only_off_the_span() -> None:
    X, y = design()
    with pytest.warns(RankDeficiencyWarning):
        fit = ols(X, y)
    assert fit.estimable is not None and fit.estimable.aliased == ("x1",)
    on_span = np.array(
        [[4.0, 8.0, 1.0], [-3.0, -6.0, 100.0], [X[:, 0].mean(), 2 * X[:, 0].mean(), 0]]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit.predict(on_span)
        fit.predict(on_span, interval="confidence")
    # A break far below the tolerance (relative 1e-9) is rounding, not a new direction.
    nearly = np.array([[4.0, 8.0 * (1 + 1e-9), 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit.predict(nearly)
    assert ESTIMABLE_TOL == 1e-6
    with pytest.warns(RankDeficiencyWarning, match="coefficient\\(s\\) of x1 were set to 0"):
        fit.predict(np.array(NEW))
    assert fit.estimable.off_span(np.array(NEW)).tolist() == [False, True]
    # Full rank: nothing to check.
    full = ols(X[:, [0, 2]], y)
    assert full.estimable is None


def test_ols_names_the_aliased_feature_in_the_estimability_warning() -> None:
    X, y = design()
    with pytest.warns(RankDeficiencyWarning):
        fit = ols(X, y, feature_names=("a", "b", "c"))
    assert fit.estimable is not None and fit.estimable.aliased == ("b",)
    with pytest.warns(RankDeficiencyWarning, match="coefficient\\(s\\) of b were set to 0"):
        fit.predict(np.array(NEW))


def test_a_constant_feature_taking_another_value_is_off_the_span() -> None:
    X, y = design()
    Xc = np.column_stack([X[:, [0, 2]], np.full(len(y), 7.0)])
    with pytest.warns(RankDeficiencyWarning):
        fit = ols(Xc, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit.predict(np.array([[1.0, 2.0, 7.0]]))
    with pytest.warns(RankDeficiencyWarning, match="misleading"):
        fit.predict(np.array([[1.0, 2.0, 8.0]]))


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_estimability_from_statistics_equals_in_memory(fit_intercept: bool) -> None:
    X, y = design()
    with pytest.warns(RankDeficiencyWarning):
        memory = ols(X, y, fit_intercept=fit_intercept)
        minimum_norm = gradfit.least_squares(X, y, fit_intercept=fit_intercept)
    stats = SufficientStats.compute(torch.from_numpy(X), torch.from_numpy(y[:, None]))
    with pytest.warns(RankDeficiencyWarning):
        streamed = ols_from_stats(
            stats, minimum_norm.weight, minimum_norm.bias, fit_intercept=fit_intercept
        )
    assert memory.estimable is not None and streamed.estimable is not None
    rows = np.array([*NEW, [2.0, 4.0, -3.0], [2.0, 4.1, -3.0]])
    assert memory.estimable.off_span(rows).tolist() == [False, True, False, True]
    assert streamed.estimable.off_span(rows).tolist() == [False, True, False, True]
    # The basis spans the same direction (up to sign): x1 - x2 / 2 in standardized units.
    a, b = memory.estimable.basis[:, 0], streamed.estimable.basis[:, 0]
    assert abs(float(a @ b)) == pytest.approx(1.0, abs=1e-8)


# ----------------------------------------------------------------------------- item 3: R's NA


def test_r_integer_na_in_int32_input_is_refused() -> None:
    X = np.arange(12, dtype=np.int32).reshape(6, 2)
    y = np.arange(6, dtype=np.float64)
    X[3, 1] = np.iinfo(np.int32).min  # how reticulate hands over R's NA_integer_
    for value in (X, torch.from_numpy(X)):
        with pytest.raises(ValidationError) as info:
            ols(value, y)
        message = str(info.value)
        assert "-2147483648" in message and "NA_integer_" in message
        assert "gf_matrix()" in message and "row 3, column 1" in message
        assert "\n" not in message
    y32 = np.arange(6, dtype=np.int32)
    y32[0] = np.iinfo(np.int32).min
    with pytest.raises(ValidationError, match="Y holds -2147483648 at row 0"):
        ols(np.arange(6.0)[:, None], y32)
    with pytest.raises(ValidationError, match="NA_integer_"):
        gradfit.least_squares(X, y)
    # Other integer types, and int32 without the sentinel, are numbers as before.
    ok_fit = ols(np.arange(12, dtype=np.int32).reshape(6, 2)[:, :1], y)
    assert ok_fit.n == 6
    wide = np.arange(6, dtype=np.int64)[:, None]
    wide[0, 0] = np.iinfo(np.int32).min
    assert ols(wide, y).n == 6


# ----------------------------------------------------------------------------- item 5: one name


def test_one_name_may_be_a_string() -> None:
    X, y = design()
    fit = ols(X[:, :1], y, feature_names="x1", target_names="mpg")
    assert fit.feature_names == ("x1",) and fit.target_names == ("mpg",)
    assert "Response mpg:" in fit.summary()
    assert list(fit.as_dict()["targets"]) == ["mpg"]
    with pytest.raises(ValidationError, match="feature_names must name each of the 3"):
        ols(X, y, feature_names="x1")
    with pytest.raises(ValidationError, match="target_names must name each of the 2"):
        ols(X[:, :1], np.column_stack([y, y]), target_names="mpg")


# ----------------------------------------------------------------------------- item 6: --level


def test_fit_level_sets_the_json_bounds_and_prints_confint(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, collinear_csv: Path
) -> None:
    model_path = tmp_path / "m.safetensors"
    base = ("fit", collinear_csv, "--target", "y", "--solver", "lstsq", "--out", model_path)
    document = json.loads(ok(capsys, *base, "--json", "--level", "0.9").out)["inference"]
    assert document["level"] == 0.9
    coefficients = document["targets"]["y"]["coefficients"]
    q = sps.t.ppf(0.95, document["df_resid"])  # by hand: estimate ± t_{0.95, 17} se
    for name, (low, high) in R_CONFINT_90.items():
        c = coefficients[name]
        assert c["lower"] == pytest.approx(c["estimate"] - q * c["std_error"], rel=1e-12)
        assert c["upper"] == pytest.approx(c["estimate"] + q * c["std_error"], rel=1e-12)
        assert (c["lower"], c["upper"]) == pytest.approx((low, high), rel=1e-9)  # R's confint
    assert coefficients["x2"]["lower"] is None
    stored = load_model(model_path).inference
    assert stored is not None and stored["summary"]["level"] == 0.9
    # The default stays 95 %.
    default = json.loads(ok(capsys, *base, "--json").out)["inference"]
    q95 = sps.t.ppf(0.975, default["df_resid"])
    c = default["targets"]["y"]["coefficients"]["x1"]
    assert default["level"] == 0.95
    assert c["upper"] == pytest.approx(c["estimate"] + q95 * c["std_error"], rel=1e-12)
    # The text: R's confint() block after the summary, only when --level is given.
    text = ok(capsys, *base, "--level", "0.9").out
    assert "Confidence intervals (90 %) of y:" in text
    header = next(line for line in text.splitlines() if line.strip().startswith("5 %"))
    assert header.split() == ["5", "%", "95", "%"]
    block = text[text.index("Confidence intervals (90 %) of y:") :].splitlines()
    row = next(line for line in block if line.startswith("x3 "))
    low, high = (float(v) for v in row.split()[1:])
    assert (low, high) == pytest.approx(R_CONFINT_90["x3"], rel=1e-5)  # printed to 6 digits
    assert any(line.split() == ["x2", "NA", "NA"] for line in block)
    assert "Confidence intervals" not in ok(capsys, *base).out


@pytest.mark.parametrize("level", ["0", "1", "95", "abc"])
def test_fit_bad_level_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, collinear_csv: Path, level: str
) -> None:
    model_path = tmp_path / "m.safetensors"
    run = gradfit_cli(
        capsys, "fit", collinear_csv, "--target", "y", "--out", model_path, "--level", level
    )
    assert run.code == 2 and "--level" in run.err
    assert not model_path.exists()


def test_confint_text_matches_conf_int() -> None:
    X, y = design()
    fit = ols(X[:, [0, 2]], y, feature_names=("x1", "x3"), target_names="y")
    text = fit.confint_text(0.99)
    assert text.splitlines()[0] == "Confidence intervals (99 %) of y:"
    assert text.splitlines()[1].split() == ["0.5", "%", "99.5", "%"]
    bounds = fit.conf_int(0.99).numpy()
    first = text.splitlines()[2].split()
    assert first[0] == "(Intercept)"
    assert float(first[1]) == pytest.approx(bounds[0, 2, 0], rel=1e-5)
    assert not math.isnan(float(first[2]))
    with pytest.raises(ValidationError, match="level"):
        fit.confint_text(1.5)


@pytest.mark.parametrize(
    "change",
    [
        {"basis": [[1.0]]},
        {"scale": [1.0, 0.0, 1.0]},
        {"aliased": "x2"},
        {"center": "nan"},
    ],
)
def test_estimability_data_are_checked(change: dict) -> None:
    X, y = design()
    with pytest.warns(RankDeficiencyWarning):
        fit = ols(X, y)
    data = {**estimability_of(fit), **change}
    with pytest.raises(ModelFileError, match="estimability"):
        Estimability.from_dict(data, 3)
    with pytest.raises(ModelFileError, match="estimability data lack scale, basis, aliased"):
        Estimability.from_dict({"center": [0, 0, 0]}, 3)


def estimability_of(fit: gradfit.OLSResult) -> dict:
    data = estimability(fit)
    assert data is not None
    return data
