"""`gradfit anova`: R's anova tables from a data file, in text and JSON (the references of
tests/test_anova.py, R 4, 17 significant digits; tolerance 1e-8 relative, p-values 1e-6, as
there); the nested F test whichever formula comes first; refusals."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import gradfit_cli, ok, one_error_line
from test_anova import _read

import gradfit

R_DATA = Path(__file__).parent / "data" / "r"
MTCARS = R_DATA / "mtcars.csv"
RTOL, PTOL = 1e-8, 1e-6


def _column(document: dict, target: str, column: str) -> list[float]:
    table = document["targets"][target]
    return [math.nan if row[column] is None else row[column] for row in table.values()]


def test_sequential_table_of_warpbreaks_as_r(capsys: pytest.CaptureFixture[str]) -> None:
    data = R_DATA / "warpbreaks.csv"
    run = ok(capsys, "anova", data, "--formula", "breaks ~ wool * tension")
    assert run.out.startswith("Analysis of Variance Table\n\nResponse: breaks\n")
    assert "wool:tension  2 1002.8" in run.out and "Residuals    48 5745.1" in run.out
    assert "0.0006926 ***" in run.out
    document = json.loads(
        ok(capsys, "anova", data, "--formula", "breaks ~ wool * tension", "--json").out
    )
    assert document["rows"] == ["wool", "tension", "wool:tension", "Residuals"]
    assert document["formulas"] == ["breaks ~ wool * tension"] and document["n"] == 54
    np.testing.assert_allclose(
        _column(document, "breaks", "Sum Sq"),
        [450.66666666666691, 2034.2592592592625, 1002.77777777778, 5745.1111111111095],
        rtol=RTOL,
    )
    np.testing.assert_allclose(
        _column(document, "breaks", "Pr(>F)")[:3],
        [0.058212975959559703, 0.00069262093671343579, 0.021044190727862837],
        rtol=PTOL,
    )


def test_weighted_table_with_a_factor_as_r(capsys: pytest.CaptureFixture[str]) -> None:
    # anova(lm(mpg ~ wt + hp + factor(cyl), m, weights = cyl))
    argv = ["anova", MTCARS, "--formula", "mpg ~ wt + hp + C(cyl)", "--weights", "cyl"]
    document = json.loads(ok(capsys, *argv, "--json").out)
    assert document["rows"] == ["wt", "hp", "C(cyl)", "Residuals"]
    np.testing.assert_allclose(_column(document, "mpg", "Df"), [1, 1, 2, 27])
    np.testing.assert_allclose(
        _column(document, "mpg", "Sum Sq"),
        [4229.4084059041706, 524.61342813006161, 253.81015478934694, 850.61892026732971],
        rtol=RTOL,
    )
    np.testing.assert_allclose(
        _column(document, "mpg", "F value")[:3],
        [134.24816241275715, 16.652066186183671, 4.0281693811599375],
        rtol=RTOL,
    )
    text = ok(capsys, *argv).out  # the library's text (tests/test_anova.py checks it)
    columns = _read("mtcars.csv")
    fit = gradfit.ols("mpg ~ wt + hp + C(cyl)", data=columns, weights=columns["cyl"])
    assert text == str(gradfit.anova(fit)) + "\n"


@pytest.mark.parametrize("order", [("mpg ~ wt", "mpg ~ wt + hp + qsec"), ("big", "small")])
def test_nested_models_as_r_whichever_comes_first(
    capsys: pytest.CaptureFixture[str], order: tuple[str, str]
) -> None:
    # anova(lm(mpg ~ wt, m), lm(mpg ~ wt + hp + qsec, m))
    small, big = "mpg ~ wt", "mpg ~ wt + hp + qsec"
    first, second = (small, big) if order[0] == small else (big, small)
    argv = ["anova", MTCARS, "--formula", first, "--formula", second]
    document = json.loads(ok(capsys, *argv, "--json").out)
    assert document["formulas"] == [small, big]
    assert document["heading"] == ["Model 1: mpg ~ wt", "Model 2: mpg ~ wt + hp + qsec"]
    assert document["columns"] == ["Res.Df", "RSS", "Df", "Sum of Sq", "F", "Pr(>F)"]
    second_row = document["targets"]["mpg"]["2"]
    np.testing.assert_allclose(
        [second_row[c] for c in ("Res.Df", "RSS", "Df", "Sum of Sq", "F")],
        [28, 186.05929721548026, 2, 92.262640327863295, 6.9422865931507864],
        rtol=RTOL,
    )
    assert second_row["Pr(>F)"] == pytest.approx(0.0035600419821586612, rel=PTOL)
    assert document["targets"]["mpg"]["1"]["F"] is None
    text = ok(capsys, *argv).out
    assert "Model 1: mpg ~ wt\nModel 2: mpg ~ wt + hp + qsec\n" in text
    assert "2     28 186.06  2    92.263 6.9423" in text


def test_table_through_the_origin_as_r(capsys: pytest.CaptureFixture[str]) -> None:
    document = json.loads(
        ok(capsys, "anova", MTCARS, "--formula", "mpg ~ 0 + wt + hp", "--json").out
    )
    np.testing.assert_allclose(
        _column(document, "mpg", "Sum Sq"),
        [10105.693942962931, 95.004391172317156, 3841.6116658647538],
        rtol=RTOL,
    )


def test_anova_refusals(capsys: pytest.CaptureFixture[str]) -> None:
    three = ["--formula", "mpg ~ wt"] * 3
    line = one_error_line(gradfit_cli(capsys, "anova", MTCARS, *three))
    assert "one --formula" in line and "got 3" in line
    # Over --memory-limit the data are streamed (tests/test_anova_stream.py), not refused; a
    # limit below the statistics themselves is refused.
    small = ok(capsys, "anova", MTCARS, "--formula", "mpg ~ wt", "--memory-limit", "100")
    assert small.out == ok(capsys, "anova", MTCARS, "--formula", "mpg ~ wt").out
    line = one_error_line(
        gradfit_cli(capsys, "anova", MTCARS, "--formula", "mpg ~ wt + hp", "--memory-limit", "50")
    )
    assert "memory limit" in line
    line = one_error_line(gradfit_cli(capsys, "anova", MTCARS, "--formula", "mpg ~ nope"))
    assert "nope" in line
    line = one_error_line(
        gradfit_cli(capsys, "anova", MTCARS, "--formula", "mpg ~ wt", "--weights", "nope")
    )
    assert "--weights column 'nope' not found" in line


@pytest.mark.parametrize("streamed", [(), ("--stream",)])
def test_the_memory_refusal_names_what_anova_can_do(
    capsys: pytest.CaptureFixture[str], streamed: tuple[str, ...]
) -> None:
    # anova has no --features (its columns are the formula's): the refusal says to write the
    # formula with fewer columns, or to raise the limit, and names sizes below 1 MiB in bytes.
    line = one_error_line(
        gradfit_cli(
            capsys, "anova", MTCARS, "--formula", "mpg ~ wt + hp", "--memory-limit", "50", *streamed
        )
    )
    assert line == (
        f"gradfit: error: {MTCARS}: 2 feature columns need about 72 bytes in memory for the "
        "3 x 3 statistics of a fit, above the memory limit of 50 bytes; write the formula "
        "'mpg ~ wt + hp' with fewer columns (fewer terms or interactions; C(x) makes about a "
        "column per level), or raise --memory-limit"
    )
    assert "--features" not in line
