"""`gradfit anova` on streamed data (files over --memory-limit, or --stream): the tables from
each formula's sufficient statistics in one pass (:mod:`gradfit.stream_anova`), against R's
anova and the in-memory tables.

References: R 4, 17 significant digits, computed once (the warpbreaks, mtcars ones are those of
tests/test_anova.py, whose R code is written there):

    a <- read.csv("tests/data/r/airquality.csv")          # na.omit: 111 rows
    anova(lm(Ozone ~ Solar.R + Wind + Temp + factor(Month), a))
    n <- read.csv("tests/data/r/npk.csv"); n$block <- factor(n$block)
    anova(lm(yield ~ block + N * P * K, n))                # N:P:K aliased with block
    m <- read.csv("tests/data/r/mtcars.csv"); anova(lm(disp ~ wt + hp, m))

Tolerances: 1e-8 relative against R (the Gram matrix's Cholesky factor of these well
conditioned designs: 1e-11 seen), p-values 1e-6 (as tests/test_anova.py); streamed against in
memory 1e-9 (Cholesky of AᵀA against Householder QR of A: both within about eps · cond(A)² of
each other; 1e-12 seen).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from cli_helpers import gradfit_cli, ok, one_error_line

import gradfit
from gradfit import stream_anova
from gradfit.settings import ReadSettings
from gradfit.stream_anova import anova_fits

R_DATA = Path(__file__).parent / "data" / "r"
RTOL, PTOL, ROADS = 1e-8, 1e-6, 1e-9
STREAMED = ("--stream", "--batch-rows", "5")
# Streamed because over the limit (each file's estimate is above 2,000 bytes; the statistics,
# at most 13 x 13 float64, are below).
SMALL = ("--memory-limit", "2000", "--batch-rows", "7")

# (file, formulas, weights, target, column, reference)
CASES = {
    "warpbreaks": (
        "warpbreaks.csv",
        ["breaks ~ wool * tension"],
        None,
        "breaks",
        {
            "Sum Sq": [
                450.66666666666691,
                2034.2592592592625,
                1002.77777777778,
                5745.1111111111095,
            ],
            "Pr(>F)": [0.058212975959559703, 0.00069262093671343579, 0.021044190727862837, None],
        },
    ),
    "airquality": (
        "airquality.csv",
        ["Ozone ~ Solar.R + Wind + Temp + C(Month)"],
        None,
        "Ozone",
        {
            "Df": [1, 1, 1, 4, 103],
            "Sum Sq": [
                14779.679444621988,
                39969.498917688608,
                19049.941122596992,
                3771.8087078332196,
                44230.981717169168,
            ],
            "Pr(>F)": [
                5.4385730764783614e-08,
                4.4979433129563902e-16,
                1.3658228858614981e-09,
                0.074592278268077905,
                None,
            ],
        },
    ),
    "npk": (
        "npk.csv",
        ["yield ~ C(block) + N * P * K"],
        None,
        "yield",
        {
            "Df": [5, 1, 1, 1, 1, 1, 1, 12],
            "Sum Sq": [
                343.29500000000013,
                189.2816666666665,
                8.4016666666666069,
                95.201666666666512,
                21.281666666666734,
                33.135000000000083,
                0.48166666666666469,
                185.28666666666686,
            ],
            "Pr(>F)": [
                0.015938790208193932,
                0.0043718118257993861,
                0.47490409267443645,
                0.028795053500232769,
                0.26316528287716734,
                0.16864787850049232,
                0.86275208568540784,
                None,
            ],
        },
    ),
    "weighted": (
        "mtcars.csv",
        ["mpg ~ wt + hp + C(cyl)"],
        "cyl",
        "mpg",
        {
            "Sum Sq": [
                4229.4084059041706,
                524.61342813006161,
                253.81015478934694,
                850.61892026732971,
            ],
            "Pr(>F)": [5.5118491909737843e-12, 0.00035738019878659805, 0.029448440231505911, None],
        },
    ),
    "origin": (
        "mtcars.csv",
        ["mpg ~ 0 + wt + hp"],
        None,
        "mpg",
        {"Sum Sq": [10105.693942962931, 95.004391172317156, 3841.6116658647538]},
    ),
    "nested": (
        "mtcars.csv",
        ["mpg ~ wt + hp + qsec", "mpg ~ wt"],  # the big one first: the CLI orders them
        None,
        "mpg",
        {
            "Res.Df": [30, 28],
            "RSS": [278.32193754334355, 186.05929721548026],
            "Sum of Sq": [None, 92.262640327863295],
            "F": [None, 6.9422865931507864],
            "Pr(>F)": [None, 0.0035600419821586612],
        },
    ),
    "targets": (
        "mtcars.csv",
        ["mpg + disp ~ wt + hp"],
        None,
        "disp",
        {
            "Sum Sq": [375475.6829343547, 35696.663162746037, 65012.448590399552],
            "Pr(>F)": [1.4147593800979349e-13, 0.00041064703222704741, None],
        },
    ),
}


def _column(document: dict, target: str, column: str) -> list[float]:
    table = document["targets"][target]
    return [math.nan if row[column] is None else row[column] for row in table.values()]


def _argv(name: str) -> list[str | Path]:
    file, formulas, weights, _, _ = CASES[name]
    argv: list[str | Path] = ["anova", R_DATA / file, "--json", "--missing", "drop"]
    for formula in formulas:
        argv += ["--formula", formula]
    return [*argv, *(["--weights", weights] if weights else [])]


@pytest.mark.parametrize("name", list(CASES))
def test_streamed_tables_as_r_and_as_in_memory(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    _, _, _, target, reference = CASES[name]
    calls: list[object] = []

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(args[0])
        return anova_fits(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(stream_anova, "anova_fits", spy)  # the command imports it when it runs
    whole = json.loads(ok(capsys, *_argv(name), "--no-stream").out)
    assert not calls
    for count, reading in enumerate((STREAMED, SMALL), start=1):
        streamed = json.loads(ok(capsys, *_argv(name), *reading).out)
        assert len(calls) == count  # the streamed road
        assert streamed["rows"] == whole["rows"] and streamed["n"] == whole["n"]
        assert streamed["heading"] == whole["heading"]
        for column, values in reference.items():
            expected = [math.nan if v is None else v for v in values]
            tolerance = PTOL if column == "Pr(>F)" else RTOL
            np.testing.assert_allclose(
                _column(streamed, target, column), expected, rtol=tolerance, atol=0
            )
        for t in streamed["targets"]:
            for column in streamed["columns"]:
                np.testing.assert_allclose(
                    _column(streamed, t, column), _column(whole, t, column), rtol=ROADS, atol=0
                )


def test_several_targets_one_table_each(capsys: pytest.CaptureFixture[str]) -> None:
    streamed = json.loads(ok(capsys, *_argv("targets"), *STREAMED).out)
    assert list(streamed["targets"]) == ["mpg", "disp"]
    text = ok(capsys, *[a for a in _argv("targets") if a != "--json"], *STREAMED).out
    assert "Response: mpg" in text and "Response: disp" in text


def test_from_parquet_row_groups_and_a_directory(tmp_path: Path) -> None:
    # The library function: several units (row groups; files), one pass; the same tables.
    table = pcsv.read_csv(R_DATA / "airquality.csv")
    pq.write_table(table, tmp_path / "aq.parquet", row_group_size=20)
    parts = tmp_path / "parts"
    parts.mkdir()
    for i, start in enumerate(range(0, table.num_rows, 50)):
        pcsv.write_csv(table.slice(start, 50), parts / f"part{i}.csv")
    formulas = ["Ozone ~ Solar.R + Wind + Temp + C(Month)", "Ozone ~ Wind"]
    frame = pd.read_csv(R_DATA / "airquality.csv")
    whole = gradfit.ols(formulas[0], data=frame, missing="drop")
    expected = gradfit.anova(whole)
    for source in (tmp_path / "aq.parquet", parts):
        fits = anova_fits(source, formulas, missing="drop", reading=ReadSettings(batch_rows=9))
        assert [f.n for f in fits] == [111, 116]  # each formula drops its own rows, as lm
        got = gradfit.anova(fits[0])
        assert got.rows == expected.rows
        np.testing.assert_allclose(got.values.numpy(), expected.values.numpy(), rtol=ROADS)


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--formula", "Ozone ~ Wnd"], "Wnd"),
        (["--formula", "Ozone ~ Wind", "--weights", "Wieght"], "no weights column 'Wieght'"),
        (["--formula", "Ozone ~ Wind", "--missing", "error"], "row 5: missing value"),
    ],
)
def test_streamed_refusals_in_one_line(
    capsys: pytest.CaptureFixture[str], extra: list[str], says: str
) -> None:
    line = one_error_line(gradfit_cli(capsys, "anova", R_DATA / "airquality.csv", *extra, *SMALL))
    assert says in line, line


def test_a_missing_weight_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    # airquality's Ozone as weights: its row 5 is NA
    argv = ["anova", R_DATA / "airquality.csv", "--formula", "Wind ~ Temp", "--weights", "Ozone"]
    line = one_error_line(gradfit_cli(capsys, *argv, *SMALL))
    assert "column 'Ozone', row 5: missing or infinite weight" in line, line
