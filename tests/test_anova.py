"""gradfit.anova against R's anova: the sequential (type I) table by formula term, and the F
test between nested fits; from the statistics of a streamed fit as from the rows; several
targets; an aliased term; the table's data and text; refusals.

References: R 4 on tests/data/r (17 significant digits, ``sprintf("%.17g", ...)``), the code
beside each. Tolerance 1e-8 relative (p-values 1e-6): sums of squares from a QR (or Cholesky)
factor agree to about 1e-13 with R's; the F tail of SciPy and R's pf to about 1e-14.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import gradfit
from gradfit.design import Design
from gradfit.errors import RankDeficiencyWarning, ValidationError
from gradfit.inference import AnovaTable, anova, ols, ols_from_stats
from gradfit.solvers.stats import SufficientStats

R_DATA = Path(__file__).parent / "data" / "r"
RTOL, PTOL = 1e-8, 1e-6
NA = math.nan


def _read(name: str) -> dict[str, list[Any]]:
    with (R_DATA / name).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    out: dict[str, list[Any]] = {}
    for key in rows[0]:
        values = [row[key] for row in rows]
        try:
            out[key] = [float(v) for v in values]
        except ValueError:
            out[key] = values
    return out


@pytest.fixture(scope="module")
def mtcars() -> dict[str, list[Any]]:
    return _read("mtcars.csv")


def _close(ours: torch.Tensor, reference: list[float], rtol: float = RTOL) -> None:
    np.testing.assert_allclose(ours.numpy(), np.array(reference), rtol=rtol, atol=0)


def test_sequential_table_of_warpbreaks_as_r() -> None:
    # w <- read.csv("tests/data/r/warpbreaks.csv"); a <- anova(lm(breaks ~ wool * tension, w))
    # (the levels' order, hence the reference level, does not change the table)
    table = gradfit.anova(gradfit.ols("breaks ~ wool * tension", data=_read("warpbreaks.csv")))
    assert isinstance(table, AnovaTable)
    assert table.rows == ("wool", "tension", "wool:tension", "Residuals")
    assert table.columns == ("Df", "Sum Sq", "Mean Sq", "F value", "Pr(>F)")
    _close(table.column("Df")[0], [1, 2, 2, 48])
    _close(
        table.column("Sum Sq")[0],
        [450.66666666666691, 2034.2592592592625, 1002.77777777778, 5745.1111111111095],
    )
    _close(
        table.column("Mean Sq")[0],
        [450.66666666666691, 1017.1296296296313, 501.38888888888999, 119.68981481481478],
    )
    f = table.column("F value")[0]
    _close(f[:3], [3.7652883611186354, 8.4980466483580397, 4.1890689668510532])
    p = table.column("Pr(>F)")[0]
    _close(p[:3], [0.058212975959559703, 0.00069262093671343579, 0.021044190727862837], PTOL)
    assert math.isnan(f[3]) and math.isnan(p[3])  # R's NA
    text = str(table)
    assert text.startswith("Analysis of Variance Table\n\nResponse: breaks\n")
    assert "wool:tension  2 1002.8" in text and "Residuals    48 5745.1" in text
    assert "0.0006926 ***" in text
    plain = table.as_dict()
    assert plain["targets"]["breaks"]["Residuals"]["F value"] is None
    assert plain["targets"]["breaks"]["wool"]["Df"] == 1.0


def test_nested_models_of_mtcars_as_r(mtcars: dict[str, list[Any]]) -> None:
    # m <- read.csv("tests/data/r/mtcars.csv")
    # anova(lm(mpg ~ wt, m), lm(mpg ~ wt + hp + qsec, m))
    small = ols("mpg ~ wt", data=mtcars)
    big = ols("mpg ~ wt + hp + qsec", data=mtcars)
    table = anova(small, big)
    assert table.rows == ("1", "2")
    assert table.columns == ("Res.Df", "RSS", "Df", "Sum of Sq", "F", "Pr(>F)")
    assert table.heading == ("Model 1: mpg ~ wt", "Model 2: mpg ~ wt + hp + qsec")
    values = table.values[0]
    _close(values[:, 0], [30, 28])
    _close(values[:, 1], [278.32193754334355, 186.05929721548026])
    assert bool(torch.isnan(values[0, 2:]).all())
    _close(values[1, 2:5], [2, 92.262640327863295, 6.9422865931507864])
    _close(values[1, 5:], [0.0035600419821586612], PTOL)
    # R's order of the arguments kept: big then small gives Df -2 and the same F and p
    reverse = anova(big, small).values[0]
    _close(reverse[1, 2:5], [-2, -92.262640327863295, 6.9422865931507864])
    assert "Model 2: mpg ~ wt + hp + qsec" in str(table)


def test_weighted_table_with_a_factor_as_r(mtcars: dict[str, list[Any]]) -> None:
    # anova(lm(mpg ~ wt + hp + factor(cyl), m, weights = cyl))
    fit = ols("mpg ~ wt + hp + C(cyl)", data=mtcars, weights=mtcars["cyl"])
    table = anova(fit)
    assert table.rows == ("wt", "hp", "C(cyl)", "Residuals")
    _close(table.column("Df")[0], [1, 1, 2, 27])
    _close(
        table.column("Sum Sq")[0],
        [4229.4084059041706, 524.61342813006161, 253.81015478934694, 850.61892026732971],
    )
    _close(
        table.column("F value")[0, :3],
        [134.24816241275715, 16.652066186183671, 4.0281693811599375],
    )
    _close(
        table.column("Pr(>F)")[0, :3],
        [5.5118491909737843e-12, 0.00035738019878659805, 0.029448440231505911],
        PTOL,
    )


def test_table_through_the_origin_as_r(mtcars: dict[str, list[Any]]) -> None:
    # anova(lm(mpg ~ 0 + wt + hp, m)): uncentred sums of squares
    table = anova(ols("mpg ~ 0 + wt + hp", data=mtcars))
    assert table.rows == ("wt", "hp", "Residuals")
    _close(table.column("Sum Sq")[0], [10105.693942962931, 95.004391172317156, 3841.6116658647538])
    _close(table.column("F value")[0, :2], [78.917611840561619, 0.74191042277771324])
    _close(table.column("Pr(>F)")[0, :2], [6.6841564317938105e-10, 0.39588207261503594], PTOL)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_from_statistics_equals_from_rows(
    mtcars: dict[str, list[Any]], fit_intercept: bool, weighted: bool
) -> None:
    X = np.column_stack([mtcars["wt"], mtcars["hp"], mtcars["qsec"]])
    Y = np.column_stack([mtcars["mpg"], mtcars["disp"]])
    w = np.array(mtcars["cyl"]) if weighted else None
    rows = ols(X, Y, fit_intercept=fit_intercept, weights=w)
    stats = SufficientStats.compute(
        torch.from_numpy(X), torch.from_numpy(Y), weights=None if w is None else torch.from_numpy(w)
    )
    streamed = ols_from_stats(stats, rows.weight, rows.bias, fit_intercept=fit_intercept)
    a, b = anova(rows), anova(streamed)
    assert a.rows == b.rows == ("x0", "x1", "x2", "Residuals")
    # the Gram matrix's Cholesky factor: about half the digits of the QR on an ill-conditioned
    # design; mtcars' is well conditioned (1e-10 seen)
    np.testing.assert_allclose(b.values.numpy(), a.values.numpy(), rtol=1e-8, atol=0)
    # one table per target: each that of the target alone
    for j in range(2):
        alone = anova(ols(X, Y[:, j], fit_intercept=fit_intercept, weights=w))
        np.testing.assert_allclose(a.values[j].numpy(), alone.values[0].numpy(), rtol=1e-10)
    # the sequential sums of squares add up to the model's: MSS = Σ ss
    ss = a.column("Sum Sq")
    mss = rows.r2 / (1 - rows.r2) * rows.rss
    np.testing.assert_allclose(ss[:, :-1].sum(dim=1).numpy(), mss.numpy(), rtol=1e-10)


def test_an_aliased_term_is_left_out(mtcars: dict[str, list[Any]]) -> None:
    # R: anova(lm(mpg ~ wt + I(2 * wt) + hp, m)) shows wt, hp, Residuals
    with pytest.warns(RankDeficiencyWarning):
        fit = ols("mpg ~ wt + I(2 * wt) + hp", data=mtcars)
    table = anova(fit)
    assert table.rows == ("wt", "hp", "Residuals")
    plain = anova(ols("mpg ~ wt + hp", data=mtcars))
    np.testing.assert_allclose(table.values.numpy(), plain.values.numpy(), rtol=1e-10)


def test_anova_refusals(mtcars: dict[str, list[Any]]) -> None:
    fit = ols("mpg ~ wt", data=mtcars)
    fewer = ols(np.array(mtcars["wt"])[:20, None], np.array(mtcars["mpg"])[:20])
    with pytest.raises(ValidationError, match="not all fitted to the same size of dataset"):
        anova(fit, fewer)
    weighted = ols("mpg ~ wt + hp", data=mtcars, weights=mtcars["cyl"])
    with pytest.raises(ValidationError, match="not fitted with the same row weights"):
        anova(fit, weighted)
    with pytest.raises(ValidationError, match="argument 2 is a str"):
        anova(fit, "mpg ~ wt + hp")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="no column 'F'"):
        anova(fit).column("F")


def test_the_design_names_the_columns_of_each_term() -> None:
    data = _read("warpbreaks.csv")
    design = Design.from_formula("breaks ~ wool * tension", data)
    expected = (("wool", (0,)), ("tension", (1, 2)), ("wool:tension", (3, 4)))
    assert design.term_columns() == expected
    again = Design.from_json(design.to_json())  # kept in the design's document
    assert again.term_columns() == expected
    older = {k: v for k, v in design.to_dict().items() if k != "column_terms"}
    with pytest.raises(ValidationError, match="does not say which term made each column"):
        Design.from_json(older).term_columns()
    with pytest.raises(ValidationError, match="'column_terms' must give a term"):
        Design.from_json({**design.to_dict(), "column_terms": [0, 1, 2, 3, 9]})
    no_intercept = Design.from_formula("breaks ~ 0 + wool + tension", data)
    assert no_intercept.term_columns() == (("wool", (0, 1)), ("tension", (2, 3)))


def test_a_term_explaining_nothing_prints_zeros_as_r() -> None:
    """printCoefmat compares its zapsmall-ed sums of squares with their cells, and leaves the
    rounded F values alone: a term's sum of squares of 7e-9 beside 51 is 0.000 and its F of
    8e-9 is 0.000 in R. gradfit gave 6.968e-09 and 8.037e-09, widening the columns. R 4.2.2:

        x <- data.frame(Df = c(1, 1, 27), "Sum Sq" = c(51.27531, 6.968e-09, 23.40912),
                        "Mean Sq" = c(51.27531, 6.968e-09, 23.40912/27),
                        "F value" = c(59.1412, 8.037e-09, NA),
                        "Pr(>F)" = c(2.854e-08, 0.99993, NA),
                        check.names = FALSE, row.names = c("x1", "x2", "Residuals"))
        class(x) <- c("anova", "data.frame"); print(x)
    """
    from gradfit.inference.anova import _table_lines

    values = np.array(
        [
            [1, 51.27531, 51.27531, 59.1412, 2.854e-08],
            [1, 6.968e-09, 6.968e-09, 8.037e-09, 0.99993],
            [27, 23.40912, 23.40912 / 27, NA, NA],
        ]
    )
    columns = ["Df", "Sum Sq", "Mean Sq", "F value", "Pr(>F)"]
    lines = _table_lines(columns, ["x1", "x2", "Residuals"], values)
    assert lines[:4] == [
        "          Df Sum Sq Mean Sq F value    Pr(>F)",
        "x1         1 51.275  51.275  59.141 2.854e-08 ***",
        "x2         1  0.000   0.000   0.000    0.9999",
        "Residuals 27 23.409   0.867",
    ]
