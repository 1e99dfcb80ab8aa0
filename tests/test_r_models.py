"""gradfit's statistics against R's on fits the other R tests do not cover: weighted fits of a
formula with a factor and its interaction with a slope, weights with zeros, no intercept with
a full set of dummies (R's uncentred R² and F), a rank-deficient weighted factorial design
(npk: N:P:K aliased with block, R's NA); for each: ``summary.lm`` (estimates, errors, t, p,
σ, R², adjusted R², F, the residual quantiles R prints), ``logLik``/``AIC``/``BIC``,
``confint(level = 0.9)``, ``sandwich::vcovHC`` HC0-HC3 and ``vcovCL(cluster = ~gear)`` (its
defaults: type "HC1", cadjust), ``anova``, ``hatvalues``, ``rstandard``, ``rstudent``,
``cooks.distance``, ``dffits``, ``covratio``, ``fitted``, ``residuals`` and
``predict(interval = "confidence" / "prediction")`` of new rows.

The references are R 4.2.2's (sandwich 3.0.2) written by tests/data/r/export_models.R into
tests/data/r/fit-*.csv (17 significant digits); the tests never run R.

Where gradfit differs from R by design (documented in gradfit.inference.regression and
.cluster): sandwich's HC and clustered covariances of a fit with rows of weight 0 count those
rows in n (and their groups in G); gradfit's equal sandwich's on the fit of the rows of positive
weight alone (``mtcars-wls0-kept``), which R's lm fit equals. R's influence measures leave the
rows of weight 0 out; gradfit keeps their place (leverage 0, NaN measures): compared on R's rows.

Tolerance: R's lm and gradfit both solve by Householder QR in float64; these designs have
condition numbers below 1e4, so both are within ~1e-12 relative of the exact answers; 1e-9
relative leaves room for the t and F tail probabilities (different algorithms), and an
absolute 1e-12 times the quantity's scale for values that are 0 up to rounding.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_helpers import gradfit_cli, ok, one_error_line, write_csv
from r_models import CASES, DATA, answers, coefficient_names, frame, read_r, read_r_table

import gradfit
from gradfit.errors import RankDeficiencyWarning

RTOL = 1e-9


@pytest.mark.parametrize("name", sorted(CASES))
def test_fit_matches_r(name: str) -> None:
    r = read_r(name)
    got = answers(name)
    missing = sorted(set(r) - set(got))
    assert not missing, f"gradfit gives no {missing[:5]}"
    quantities = sorted({q for q, _ in r})
    failures = []
    for quantity in quantities:
        keys = [key for key in r if key[0] == quantity]
        want = np.array([r[key] for key in keys])
        have = np.array([got[key] for key in keys])
        scale = np.nanmax(np.abs(want)) if np.isfinite(want).any() else 1.0
        same_na = np.array_equal(np.isnan(want), np.isnan(have))
        finite = ~np.isnan(want)
        close = np.allclose(have[finite], want[finite], rtol=RTOL, atol=1e-12 * scale)
        if not (same_na and close):
            worst = int(np.nanargmax(np.abs(have - want) / np.maximum(np.abs(want), 1e-300)))
            failures.append(
                f"{quantity}[{keys[worst][1]}]: gradfit {have[worst]!r}, R {want[worst]!r}"
            )
    assert not failures, "\n".join(failures)


def test_the_zero_weight_fit_is_the_fit_of_the_other_rows() -> None:
    """R: the fit with rows of weight 0 is the fit without them (coefficients, errors, σ, R²,
    F, anova, the influence of the kept rows); only the residual quantiles (R lists the
    rows of weight 0 with residual 0) and the rows' numbering differ."""
    zero, kept = read_r("mtcars-wls0"), read_r("mtcars-wls0-kept")
    for key, value in zero.items():
        if key[0] in ("residual_quantiles", "fitted", "residuals") or key[0].endswith(
            ("_fit", "_lower", "_upper")
        ):
            continue
        same = math.isnan(value) and math.isnan(kept[key])
        assert same or math.isclose(value, kept[key], rel_tol=1e-12, abs_tol=1e-14), key


# ----------------------------------------------------------------------------- the intercept alone


def _mtcars_csv(tmp_path: Path, constant: bool = False) -> Path:
    case = CASES["mtcars-mean"]
    data, w = frame(case)
    columns = {"mpg": data["mpg"].to_numpy(), "wt": data["wt"].to_numpy(), "w": w}
    if constant:
        columns["c"] = np.full(len(w), 4.0)
    columns["gear"] = data["gear"].to_numpy()
    return write_csv(tmp_path / "mtcars.csv", columns)


@pytest.mark.parametrize("stream", ["--no-stream", "--stream"])
def test_a_constant_feature_alone_gets_sandwich_errors_of_the_mean(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, stream: str
) -> None:
    """A feature aliased with the intercept leaves the intercept alone: its HC and clustered
    errors are R's of lm(mpg ~ 1, weights = w) on both roads (in memory HC0-HC3 raised an
    UnboundLocalError; streamed they were the classical error under the HC label)."""
    r = read_r("mtcars-mean")
    path = _mtcars_csv(tmp_path, constant=True)
    for cov_type in ("HC0", "HC1", "HC2", "HC3", "cluster"):
        groups = ["--groups", "gear"] if cov_type == "cluster" else []
        out = tmp_path / f"{cov_type}{stream}.safetensors"
        run = ok(
            capsys, "fit", path, "--target", "mpg", "--features", "c", "--weights", "w",
            "--solver", "lstsq", "--cov", cov_type, *groups, stream, "--json", "--out", out,
        )  # fmt: skip
        got = json.loads(run.out)["inference"]["targets"]["mpg"]["coefficients"]["(Intercept)"]
        want = r[(f"se_{cov_type}", "(Intercept)")]
        assert got["std_error"] == pytest.approx(want, rel=RTOL), cov_type
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankDeficiencyWarning)
        data, w = frame(CASES["mtcars-mean"])
        X, y = np.full((len(w), 1), 4.0), data["mpg"].to_numpy(copy=True)
        for cov_type in ("HC0", "HC1", "HC2", "HC3"):
            fit = gradfit.ols(X, y, weights=w, cov_type=cov_type)
            want = r[(f"se_{cov_type}", "(Intercept)")]
            assert float(fit.bias_se[0]) == pytest.approx(want, rel=RTOL), cov_type


@pytest.mark.parametrize("stream", ["--no-stream", "--stream"])
def test_anova_of_a_slope_against_the_intercept_alone(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, stream: str
) -> None:
    """R: anova(lm(mpg ~ 1, w), lm(mpg ~ wt, w)); streamed it was an internal IndexError."""
    path = _mtcars_csv(tmp_path)
    run = ok(
        capsys, "anova", path, "--formula", "mpg ~ 1", "--formula", "mpg ~ wt",
        "--weights", "w", stream, "--json",
    )  # fmt: skip
    table = json.loads(run.out)["targets"]["mpg"]
    r = read_r_table("anova-mtcars-null")
    for (column, row), value in r.items():
        got = table[row][column]
        assert (got is None) if math.isnan(value) else got == pytest.approx(value, rel=RTOL)
    run = ok(capsys, "anova", path, "--formula", "mpg ~ 1", "--weights", "w", stream, "--json")
    residuals = json.loads(run.out)["targets"]["mpg"]["Residuals"]
    assert residuals["Sum Sq"] == pytest.approx(r[("RSS", "1")], rel=RTOL)
    assert residuals["F value"] is None


def test_the_intercept_alone_prints_no_r_squared_or_f_line() -> None:
    """R's print.summary.lm of lm(y ~ 1): no R² line and no F line (summary.lm has no
    fstatistic), and the same for a fit whose only feature is aliased."""
    data, w = frame(CASES["mtcars-mean"])
    text = gradfit.ols("mpg ~ 1", data=data, weights=w).summary()
    assert text.rstrip().endswith("Residual standard error: 6.50465 on 31 degrees of freedom")
    assert "R-squared" not in text and "F-statistic" not in text
    with pytest.warns(RankDeficiencyWarning):
        y = data["mpg"].to_numpy(copy=True)
        aliased = gradfit.ols(np.full((len(w), 1), 4.0), y, weights=w)
    assert "R-squared" not in aliased.summary() and "F-statistic" not in aliased.summary()
    assert "R-squared" in gradfit.ols("mpg ~ wt", data=data, weights=w).summary()


def test_weights_and_groups_named_as_columns_of_the_data_are_rs() -> None:
    """R's lm(y ~ x, data, weights = w) takes the weights by name: ols(formula, data=frame,
    weights="w") equals passing the column (it said "weights must hold numbers, got an array
    of dtype <U1"); a name that is not a column is one DataError listing them."""
    data, w = frame(CASES["mtcars-mean"])
    data = data.assign(w=w)
    by_name = gradfit.ols("mpg ~ wt + hp", data=data, weights="w", cov_type="HC1")
    given = gradfit.ols("mpg ~ wt + hp", data=data, weights=w, cov_type="HC1")
    for field in ("weight", "weight_se", "bias", "bias_se", "covariance"):
        np.testing.assert_array_equal(getattr(by_name, field), getattr(given, field))
    by_name = gradfit.ols("mpg ~ wt", data=data, cov_type="cluster", groups="cyl")
    given = gradfit.ols("mpg ~ wt", data=data, cov_type="cluster", groups=data["cyl"].to_numpy())
    np.testing.assert_array_equal(by_name.weight_se, given.weight_se)
    assert by_name.n_groups == given.n_groups == 3
    with pytest.raises(gradfit.DataError, match=r"weights='ww' is not a column of data"):
        gradfit.ols("mpg ~ wt", data=data, weights="ww")


@pytest.mark.parametrize("stream", ["--no-stream", "--stream"])
def test_fit_of_the_intercept_alone_is_refused_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, stream: str
) -> None:
    path = _mtcars_csv(tmp_path)
    out = tmp_path / "m.safetensors"
    run = gradfit_cli(
        capsys, "fit", path, "--formula", "mpg ~ 1", "--solver", "lstsq", stream, "--out", out
    )
    line = one_error_line(run)
    assert str(path) in line and "'mpg ~ 1' gives no feature column" in line
    assert "gradfit anova" in line
    assert not out.exists()


@pytest.mark.parametrize("stream", ["--no-stream", "--stream"])
def test_cli_diagnose_of_a_fit_with_zero_weights_is_r(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, stream: str
) -> None:
    """gradfit fit --weights then gradfit diagnose (the model file's road): R's influence
    measures of lm(mpg ~ wt * cyl + hp, weights = w) with 8 rows of weight 0, which R leaves
    out and gradfit lists with leverage 0 and empty measures."""
    case = CASES["mtcars-wls0"]
    data, w = frame(case)
    columns = {name: data[name].to_numpy() for name in ("mpg", "wt", "hp")}
    path = write_csv(tmp_path / "m.csv", {**columns, "cyl": data["cyl"].to_numpy(), "w": w})
    model, out = tmp_path / "m.safetensors", tmp_path / "diag.csv"
    formula = "mpg ~ wt * C(cyl) + hp"  # cyl: numbers in the file, a factor as in R's fit
    ok(
        capsys, "fit", path, "--formula", formula, "--weights", "w", "--solver", "lstsq",
        stream, "--out", model,
    )  # fmt: skip
    ok(capsys, "diagnose", model, path, "--out", out, "--top", "0", stream)
    table = pd.read_csv(out).set_index("row")
    r = read_r("mtcars-wls0")
    columns = {"hat": "hat", "rstandard": "rstandard", "rstudent": "rstudent"}
    columns |= {"cooks": "cooks_distance", "dffits": "dffits", "covratio": "covratio"}
    columns |= {"fitted": "fitted", "residuals": "residual"}
    for (quantity, row), value in r.items():
        if quantity in columns:
            got = float(table.loc[int(row), columns[quantity]])
            assert got == pytest.approx(value, rel=RTOL, abs=1e-12), (quantity, row)
    zero = table.loc[np.flatnonzero(w == 0) + 1]
    assert (zero["hat"] == 0).all() and zero["cooks_distance"].isna().all()


# ----------------------------------------------------------------------------- printed anova


def _r_prints() -> dict[str, list[str]]:
    """anova-print.txt: R's printed tables (LC_ALL=C), each after a line "== NAME"."""
    blocks: dict[str, list[str]] = {}
    for line in (DATA / "anova-print.txt").read_text().splitlines():
        if line.startswith("== "):
            name = line[3:]
            blocks[name] = []
        else:
            blocks[name].append(line.rstrip())
    return blocks


def _anova_tables() -> dict[str, gradfit.inference.AnovaTable]:
    mtcars, w = frame(CASES["mtcars-wls"])
    npk, w_npk = frame(CASES["npk-wls"])
    warpbreaks = pd.read_csv(DATA / "warpbreaks.csv")
    airquality = pd.read_csv(DATA / "airquality.csv")

    def fit(formula: str, data: pd.DataFrame, **options: object) -> gradfit.OLSResult:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RankDeficiencyWarning)
            return gradfit.ols(formula, data=data, **options)

    return {
        "mtcars-wls": gradfit.anova(fit("mpg ~ wt * cyl + hp", mtcars, weights=w)),
        "mtcars-null": gradfit.anova(
            fit("mpg ~ 1", mtcars), fit("mpg ~ wt", mtcars), fit("mpg ~ wt + hp", mtcars)
        ),
        "mtcars-dummies": gradfit.anova(fit("mpg ~ 0 + cyl", mtcars, weights=w)),
        "mtcars-nested": gradfit.anova(
            fit("mpg ~ wt", mtcars), fit("mpg ~ wt + hp + qsec", mtcars)
        ),
        "warpbreaks": gradfit.anova(fit("breaks ~ wool * tension", warpbreaks)),
        "npk-wls": gradfit.anova(fit("yield ~ block + N * P * K", npk, weights=w_npk)),
        "airquality": gradfit.anova(
            fit("Ozone ~ Solar.R + Wind + Temp", airquality, missing="drop")
        ),
    }


def test_anova_prints_as_r_prints_it() -> None:
    """R's print.anova, character for character but the trailing blanks: printCoefmat's
    zapsmall of the sums of squares, format() of each column (as many decimals as the cell
    needing most for 5 significant digits), F rounded to 4 decimals, format.pval (4 digits,
    the p-values from 1e-4 up fixed, "< 2.2e-16"). Before, every column had 5 significant
    digits for its largest cell only (R's 278.32 was 278.3, 0.0001353 was 1.353e-04)."""
    prints, tables = _r_prints(), _anova_tables()
    assert set(prints) == set(tables)
    for name, table in tables.items():
        assert str(table).splitlines() == prints[name], name


# ----------------------------------------------------------------------------- R's coding


def _mtcars_factors() -> pd.DataFrame:
    data = pd.read_csv(DATA / "mtcars.csv")
    for column in ("cyl", "am", "gear"):
        data[column] = data[column].astype(str)
    return data


def test_interactions_without_their_margins_are_coded_as_r_codes_them() -> None:
    """R's model.matrix codes a factor of a term by indicators of all its levels unless the
    term without it comes before (TermCode): lm(mpg ~ cyl:am) has the columns cyl4:am0 ...
    cyl8:am1, the last aliased (NA). gradfit had formulaic's full-rank coding instead (am1,
    cyl6:am0, ...: other coefficients and names, the same fitted values)."""
    r = read_r_table("coef-interactions")
    data = _mtcars_factors()
    for formula in dict.fromkeys(q for q, _ in r):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RankDeficiencyWarning)
            fit = gradfit.ols(formula, data=data)
        want = {name: value for (q, name), value in r.items() if q == formula}
        names = coefficient_names(fit)
        assert names == list(want), formula
        got = dict(zip(fit.feature_names, fit.weight[0].tolist(), strict=True))
        aliased = dict(zip(fit.feature_names, fit.aliased.tolist(), strict=True))
        if fit.fit_intercept:
            got["(Intercept)"], aliased["(Intercept)"] = float(fit.bias[0]), False
        for name, value in want.items():
            assert aliased[name] == math.isnan(value), (formula, name)
            if not aliased[name]:
                assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12), (formula, name)


def test_a_design_saved_with_formulaic_coding_still_encodes() -> None:
    """A model file's design saved before R's coding (y ~ a:b with formulaic's columns) keeps
    encoding its batches as it was saved."""
    data = _mtcars_factors()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankDeficiencyWarning)
        design = gradfit.ols("mpg ~ cyl:am", data=data).design
    document = design.to_dict()
    document["columns"] = ["am1", "cyl6:am0", "cyl8:am0", "cyl6:am1", "cyl8:am1"]
    document["column_terms"] = [1] * 5
    old = type(design).from_json(document)
    X = old.matrices(data).X
    assert X.shape == (32, 5)
    cyl, am = data["cyl"].to_numpy(), data["am"].to_numpy()
    np.testing.assert_array_equal(X[:, 0], am == "1")
    np.testing.assert_array_equal(X[:, 4], (cyl == "8") & (am == "1"))
    np.testing.assert_array_equal(old.matrices(data.iloc[:5]).X, X[:5])
