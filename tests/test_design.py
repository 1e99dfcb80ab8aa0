"""The design layer (gradfit.design) against R: formulas and categorical columns give R's
model.matrix columns, names and numbers; levels are frozen, so one batch or many give the same
matrix; the design is plain JSON; missing values and unknown levels are one line naming the
column and row; gradfit.ols of a formula gives R's summary(lm(...)).

R's data sets and model matrices are in tests/data/r/ (written by tests/data/r/export.R with
R 4.2.2; the tests never run R). The lm numbers below were printed by R 4.2.2 with
options(digits = 17) and pasted here, the R code next to them."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import gradfit
from gradfit.data import read_table
from gradfit.design import Design, DesignDocument, LevelGatherer, sort_levels
from gradfit.errors import DataError, ValidationError

R_DATA = Path(__file__).parent / "data" / "r"


def r_model_matrix(name: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """R's model.matrix (tests/data/r/mm-NAME.csv): column names, the 1-based data rows, and
    the columns (the intercept included)."""
    with open(R_DATA / f"mm-{name}.csv", newline="") as f:
        rows = list(csv.reader(f))
    values = np.array([[float(x) for x in row] for row in rows[1:]])
    return rows[0][1:], values[:, 0].astype(int), values[:, 1:]


# (data set, gradfit's formula, R's model matrix, R's names as gradfit writes the formula)
CASES = [
    ("warpbreaks", "breaks ~ wool * tension", "warpbreaks", {}),
    # R: mpg ~ wt + hp + factor(cyl) + wt:hp
    ("mtcars", "mpg ~ wt + hp + C(cyl) + wt:hp", "mtcars", {"factor(cyl)": "C(cyl)"}),
    ("airquality", "Ozone ~ .", "airquality", {}),
    ("ToothGrowth", "len ~ supp + poly(dose, 2)", "ToothGrowth", {}),
    ("iris", "Sepal.Length ~ 0 + Species + Petal.Length", "iris", {}),
    # R: mpg ~ log(disp) + I(wt^2)
    # R: mpg ~ wt:factor(cyl) (full coding: no main effect of cyl)
    ("mtcars", "mpg ~ wt:C(cyl)", "mtcars-slopes", {"factor(cyl)": "C(cyl)"}),
    # R: yield ~ factor(block) + factor(N) * factor(P) * factor(K)
    (
        "npk",
        "yield ~ C(block) + C(N) * C(P) * C(K)",
        "npk",
        {
            "factor(block)": "C(block)",
            "factor(N)": "C(N)",
            "factor(P)": "C(P)",
            "factor(K)": "C(K)",
        },
    ),
    (
        "mtcars",
        "mpg ~ np.log(disp) + I(wt**2)",
        "mtcars-log",
        {"log(disp)": "np.log(disp)", "I(wt^2)": "I(wt ** 2)"},
    ),
]


def renamed(names: list[str], renames: dict[str, str]) -> list[str]:
    out = []
    for name in names:
        for old, new in renames.items():
            name = name.replace(old, new)
        out.append(name)
    return out


@pytest.mark.parametrize(("data", "formula", "reference", "renames"), CASES)
def test_model_matrix_is_rs(data: str, formula: str, reference: str, renames: Any) -> None:
    table = read_table(str(R_DATA / f"{data}.csv"))
    design = Design.from_formula(formula, table, missing="drop")
    got = design.matrices(table, missing="drop")
    names, rows, matrix = r_model_matrix(reference)
    names = renamed(names, renames)
    if names[0] == "(Intercept)":  # gradfit fits the intercept apart: no column for it
        assert design.fit_intercept
        names, matrix = names[1:], matrix[:, 1:]
    else:
        assert not design.fit_intercept
    assert list(design.columns) == names
    np.testing.assert_array_equal(np.flatnonzero(got.kept) + 1, rows)
    assert got.n_dropped == table.n_rows - len(rows)
    # Exact but for poly(), whose orthogonal columns R and formulaic compute by the same
    # three-term recurrence in a different order: within 1e-15 of numbers below 1.
    np.testing.assert_allclose(got.X, matrix, rtol=1e-12, atol=1e-14)
    Y = np.asarray(table.columns[design.targets[0]], dtype=float)[got.kept]
    assert got.Y is not None
    np.testing.assert_array_equal(got.Y[:, 0], Y)


def test_airquality_na_omit_keeps_111_rows() -> None:
    table = read_table(str(R_DATA / "airquality.csv"))
    got = Design.from_formula("Ozone ~ .", table, missing="drop").matrices(table, missing="drop")
    assert (got.X.shape, got.n_dropped) == ((111, 5), 42)


def test_a_pandas_categorical_keeps_its_level_order() -> None:
    # R's own warpbreaks: tension is a factor with levels L, M, H (model.matrix in
    # mm-warpbreaks-lmh.csv); from the CSV file they are sorted: H, L, M.
    frame = pd.read_csv(R_DATA / "warpbreaks.csv")
    frame["tension"] = pd.Categorical(frame["tension"], categories=["L", "M", "H"])
    design = Design.from_formula("breaks ~ wool * tension", frame)
    names, _, matrix = r_model_matrix("warpbreaks-lmh")
    assert list(design.columns) == names[1:]
    assert design.levels == {"wool": ("A", "B"), "tension": ("L", "M", "H")}
    np.testing.assert_array_equal(design.matrices(frame).X, matrix[:, 1:])


def test_one_batch_or_many_give_the_same_matrix() -> None:
    table = read_table(str(R_DATA / "ToothGrowth.csv"))
    design = Design.from_formula("len ~ supp * poly(dose, 2) + C(dose)", table)
    whole = design.matrices(table)
    frame = pd.read_csv(R_DATA / "ToothGrowth.csv")
    parts = [
        design.matrices(frame.iloc[start : start + 7], first_row=start + 1)
        for start in range(0, 60, 7)
    ]
    # Some batches hold one level of supp only (rows 1-30 are VC): the columns stay.
    assert {p.X.shape[1] for p in parts} == {len(design.columns)}
    np.testing.assert_array_equal(np.concatenate([p.X for p in parts]), whole.X)
    assert whole.Y is not None
    np.testing.assert_array_equal(np.concatenate([p.Y for p in parts if p.Y is not None]), whole.Y)


def test_a_levels_pass_then_a_first_batch_gives_the_whole_datas_design() -> None:
    # As a stream will: the categorical columns' levels over every batch (two "ranks"
    # merged), then the design from the first batch, which holds wool A and tension H only.
    frame = pd.read_csv(R_DATA / "warpbreaks.csv").sort_values(["wool", "tension"])
    formula = "breaks ~ wool * tension"
    names = Design.categorical_columns(formula, frame.iloc[:5])
    assert names == ("wool", "tension")
    rank0 = LevelGatherer(names).update(frame.iloc[:20])
    rank1 = LevelGatherer(names).update(frame.iloc[20:])
    levels = rank0.merge(rank1).levels()
    design = Design.from_formula(formula, frame.iloc[:5], levels=levels)
    assert design == Design.from_formula(formula, frame)
    assert Design.categorical_columns(None, frame, "breaks") == ("wool", "tension")


def test_the_design_is_plain_json_and_round_trips() -> None:
    table = read_table(str(R_DATA / "ToothGrowth.csv"))
    design = Design.from_formula("len ~ supp + poly(dose, 2) + C(dose)", table)
    text = design.to_json()
    document = json.loads(text)
    assert document["levels"] == {"supp": ["OJ", "VC"], "dose": [0.5, 1, 2]}
    assert document["encoders"]["C(dose)"] == [0.5, 1, 2]
    assert "poly(dose, 2)" in document["transform_state"]
    again = Design.from_json(text)
    assert again == design
    # A fresh design (no cached formulaic spec) on other rows: poly's state is the training one.
    np.testing.assert_array_equal(again.matrices(table).X, design.matrices(table).X)
    last = {"len": [1.0], "supp": ["OJ"], "dose": [2.0]}  # as the last row: poly of 1 row
    np.testing.assert_array_equal(again.matrices(last).X, design.matrices(table).X[-1:])


BAD_DOCUMENTS = [
    (lambda d: "not json", "not JSON"),
    (lambda d: [d], "'format' must be 'gradfit-design'"),
    (lambda d: {**d, "format": "other"}, "'format' must be 'gradfit-design'"),
    (lambda d: {**d, "version": 99}, "version 99"),
    (lambda d: {k: v for k, v in d.items() if k != "columns"}, "missing field 'columns'"),
    (lambda d: {k: v for k, v in d.items() if k != "transform_state"}, "missing field"),
    (lambda d: {**d, "formula": 3}, "'formula' must be a string or null"),
    (lambda d: {**d, "targets": "len"}, "'targets' must be a list of strings"),
    (lambda d: {**d, "columns": ["a", 1]}, "'columns' must be a list of strings"),
    (lambda d: {**d, "levels": {"supp": []}}, "levels of 'supp'"),
    (lambda d: {**d, "levels": {"supp": ["OJ", "OJ"]}}, "must be distinct"),
    (lambda d: {**d, "levels": {"supp": [True]}}, "levels of 'supp' must be a list"),
    (lambda d: {**d, "levels": []}, "'levels' must be an object"),
    (lambda d: {**d, "encoders": {"supp": "OJ"}}, "'encoders': the levels of 'supp'"),
    (lambda d: {**d, "terms": [[["x", "eval"]]]}, "bad factor"),
    (lambda d: {**d, "terms": {}}, "'terms' must be a list"),
    (lambda d: {**d, "target_terms": [[["len", "lookup"]], [["x", "lookup"]]]}, "differ"),
    (lambda d: {**d, "fit_intercept": 1}, "'fit_intercept' must be true or false"),
    (lambda d: {**d, "contrasts": "sum"}, "'contrasts' must be 'treatment'"),
    (lambda d: {**d, "transform_state": []}, "'transform_state' must be an object"),
    (lambda d: {**d, "transform_state": {"p": {"__array__": [1], "dtype": "c8"}}}, "dtype"),
    (lambda d: {**d, "column_terms": [True, 1]}, "'column_terms' must be a list of indices"),
    (lambda d: {**d, "column_terms": [1, 9]}, "must give a term of 'terms' for each column"),
]


@pytest.mark.parametrize(("change", "message"), BAD_DOCUMENTS)
@pytest.mark.parametrize("reader", [Design, DesignDocument])
def test_a_bad_design_document_is_one_clear_error(
    reader: type[DesignDocument], change: Any, message: str
) -> None:
    """The one checker (gradfit.design.document): a Design and the document alone (gradfit
    info, without formulaic) refuse the same documents with the same one-line message."""
    table = read_table(str(R_DATA / "ToothGrowth.csv"))
    document = Design.from_formula("len ~ supp + dose", table).to_dict()
    bad = change(document)
    with pytest.raises(ValidationError, match="gradfit design") as info:
        reader.from_json(bad if isinstance(bad, str) else json.dumps(bad))
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(ValidationError) as other:
        (Design if reader is DesignDocument else DesignDocument).from_json(
            bad if isinstance(bad, str) else json.dumps(bad)
        )
    assert str(other.value) == str(info.value)


def test_the_document_alone_reads_what_the_design_reads() -> None:
    """Every field, the text of gradfit info and the JSON, of a design with categorical
    columns, an interaction and stateful transforms (poly, splines)."""
    frame = pd.read_csv(R_DATA / "warpbreaks.csv").assign(z=lambda f: np.arange(len(f)) ** 0.5)
    design = Design.from_formula(
        "np.log(breaks) ~ wool * tension + poly(z, 2) + bs(z, df=4)", frame
    )
    assert design.levels and design.transform_state
    text = design.to_json()
    document = DesignDocument.from_json(text)
    assert type(document) is DesignDocument and type(Design.from_json(text)) is Design
    for name in DesignDocument.__dataclass_fields__:
        assert getattr(document, name) == getattr(design, name), name
    assert document.describe() == design.describe()
    assert document.to_json() == text == Design.from_json(text).to_json()


# ------------------------------------------------------------------------------ levels


def test_levels_merge_exactly_across_gatherers() -> None:
    frame = pd.read_csv(R_DATA / "npk.csv").astype({"block": str})
    whole = LevelGatherer(["block", "N"]).update(frame).levels()
    a = LevelGatherer(["block", "N"]).update(frame.iloc[:5])
    b = LevelGatherer(["block", "N"]).update(frame.iloc[5:11])
    c = LevelGatherer(["block", "N"]).update(frame.iloc[11:])
    # through JSON, as another process would send it
    b = LevelGatherer.from_state(json.loads(json.dumps(b.to_state())))
    assert a.merge(b).merge(c).levels() == whole
    assert whole == {"block": ("1", "2", "3", "4", "5", "6"), "N": (0, 1)}


def test_level_order_is_code_point_for_text_and_numeric_for_numbers() -> None:
    # R in the C locale: sort(c("b", "B", "a", "A")) is "A" "B" "a" "b" (en_US: a A b B).
    assert sort_levels(["b", "B", "a", "A"]) == ("A", "B", "a", "b")
    assert sort_levels([10, 9, 2.5]) == (2.5, 9, 10)
    levels = LevelGatherer(["x"]).update({"x": np.array([True, False, True])}).levels()
    assert levels == {"x": ("FALSE", "TRUE")}


def test_a_batch_of_text_that_looked_numeric_keeps_the_text_levels() -> None:
    # A CSV stream infers types per batch: a text column may come as int64 in one batch.
    gatherer = LevelGatherer(["b"]).update({"b": np.array([1, 2])})
    gatherer.update({"b": np.array(["x", None], dtype=object)})
    assert gatherer.levels() == {"b": ("1", "2", "x")}
    design = Design.from_formula(
        "y ~ b", {"y": [1.0, 2.0, 3.0], "b": ["1", "2", "x"]}, levels=gatherer.levels()
    )
    assert design.columns == ("b2", "bx")
    got = design.matrices({"y": [1.0, 2.0], "b": np.array([2, 1])})
    np.testing.assert_array_equal(got.X, [[1, 0], [0, 0]])


def test_a_pandas_frame_with_missing_cells_nullable_and_boolean_columns() -> None:
    frame = pd.DataFrame(
        {
            "y": [1.0, 2.0, 4.0, 3.0, 5.0],
            "n": pd.array([1, None, 3, 4, 5], dtype="Int64"),
            "flag": pd.array([True, False, None, True, False], dtype="boolean"),
            "g": pd.Categorical(["u", "v", "u", None, "v"], categories=["v", "u"]),
        }
    )
    design = Design.from_formula("y ~ n + flag + g", frame, missing="drop")
    assert design.columns == ("n", "flagTRUE", "gu")
    assert design.levels == {"flag": ("FALSE", "TRUE"), "g": ("v", "u")}
    got = design.matrices(frame, missing="drop")
    assert (got.n_dropped, got.kept.tolist()) == (3, [True, False, False, False, True])
    np.testing.assert_array_equal(got.X, [[1, 1, 1], [5, 0, 0]])
    with pytest.raises(DataError, match="column 'n', row 2: missing value"):
        design.matrices(frame)
    with pytest.raises(DataError, match="no rows left"):
        Design.from_formula("y ~ n", {"y": [1.0, np.nan], "n": [np.nan, 2.0]}, missing="drop")


def test_too_many_levels_is_one_line_naming_the_column() -> None:
    ids = {"id": [f"r{i}" for i in range(30)], "y": np.arange(30.0)}
    with pytest.raises(DataError) as info:
        LevelGatherer(["id"], max_levels=10, source="train.csv").update(ids)
    text = str(info.value)
    assert text.startswith("train.csv: column 'id' has more than 10 distinct values (30 so far)")
    assert "--max-levels" in text and "leave it out" in text and "\n" not in text
    with pytest.raises(DataError, match="column 'id' has more than 10"):
        Design.default(ids, "y", max_levels=10)


# ------------------------------------------------------------------------------ plain columns


def test_the_default_design_encodes_text_and_boolean_columns_as_r_does() -> None:
    # R: model.matrix(breaks ~ ., read.csv("warpbreaks.csv", stringsAsFactors = TRUE))
    table = read_table(str(R_DATA / "warpbreaks.csv"))
    design = Design.default(table, "breaks")
    assert design.columns == ("woolB", "tensionL", "tensionM")
    assert design.formula is None and design.fit_intercept
    names, _, matrix = r_model_matrix("warpbreaks")
    assert design.columns == tuple(names[1:4])
    np.testing.assert_array_equal(design.matrices(table).X, matrix[:, 1:4])
    # R: a logical column x gives xTRUE
    flags = {"y": [1.0, 2.0, 4.0], "x": [True, False, True], "z": [0.5, 0.25, 1.0]}
    design = Design.default(flags, "y")
    assert design.columns == ("xTRUE", "z")
    np.testing.assert_array_equal(design.matrices(flags).X, [[1, 0.5], [0, 0.25], [1, 1]])


def test_describe_names_the_formula_targets_columns_and_levels() -> None:
    table = read_table(str(R_DATA / "warpbreaks.csv"))
    assert Design.from_formula("breaks ~ wool + tension", table).describe() == (
        "formula: breaks ~ wool + tension\n"
        "targets: breaks\n"
        "intercept: yes\n"
        "columns: woolB, tensionL, tensionM\n"
        "levels of wool: 'A', 'B' (reference 'A')\n"
        "levels of tension: 'H', 'L', 'M' (reference 'H')"
    )


def test_several_targets_and_no_intercept() -> None:
    table = read_table(str(R_DATA / "mtcars.csv"))
    design = Design.from_formula("mpg + qsec ~ wt + hp - 1", table)
    assert (design.targets, design.columns, design.fit_intercept) == (
        ("mpg", "qsec"),
        ("wt", "hp"),
        False,
    )
    got = design.matrices(table)
    assert got.Y is not None
    np.testing.assert_array_equal(got.Y[:, 1], table.columns["qsec"])
    # Prediction: the targets need not be there.
    new = {"wt": [3.0], "hp": [100.0]}
    assert design.matrices(new, with_targets=False).Y is None


# ------------------------------------------------------------------------------ bad cells


def test_a_missing_value_is_one_line_naming_column_and_row() -> None:
    table = read_table(str(R_DATA / "airquality.csv"))
    design = Design.from_formula("Ozone ~ .", table, missing="drop")
    with pytest.raises(DataError) as info:
        design.matrices(table)
    text = str(info.value)
    # R's row 5 has Ozone and Solar.R missing: the first used column is named.
    assert text.startswith(f"{R_DATA / 'airquality.csv'}: column 'Ozone', row 5: missing value")
    assert "--missing drop" in text and "\n" not in text
    with pytest.raises(DataError, match="row 5: missing value"):
        Design.from_formula("Ozone ~ .", table)
    # A batch counts rows from its first_row
    with pytest.raises(DataError, match="<data>: column 'Ozone', row 102: missing"):
        design.matrices(pd.read_csv(R_DATA / "airquality.csv").iloc[100:], first_row=101)


def test_an_unknown_level_is_an_error_or_the_reference() -> None:
    table = read_table(str(R_DATA / "warpbreaks.csv"))
    design = Design.from_formula("breaks ~ wool + tension", table)
    new = {"breaks": [1.0, 2.0, 3.0], "wool": ["A", "B", "C"], "tension": ["L", "M", "H"]}
    with pytest.raises(DataError) as info:
        design.matrices(new, source="new.csv", first_row=1)
    text = str(info.value)
    assert text.startswith("new.csv: column 'wool', row 3: level 'C' was not seen in training")
    assert "--unknown-level zero" in text and "\n" not in text
    got = design.matrices(new, unknown_level="zero")
    assert got.n_unknown == 1
    np.testing.assert_array_equal(got.X, [[0, 1, 0], [1, 0, 1], [0, 0, 0]])


# ------------------------------------------------------------------------------ gradfit.ols


def test_ols_of_a_formula_is_rs_summary_lm() -> None:
    # R 4.2.2, options(digits = 17):
    #   w <- read.csv("warpbreaks.csv", stringsAsFactors = TRUE)
    #   s <- summary(lm(breaks ~ wool * tension, w)); s$coefficients; s$sigma; s$r.squared;
    #   s$adj.r.squared; s$fstatistic
    names = ["(Intercept)", "woolB", "tensionL", "tensionM", "woolB:tensionL", "woolB:tensionM"]
    estimate = [24.55555555555555003, -5.77777777777775992, 20.00000000000003553]
    estimate += [-0.55555555555554192, -10.55555555555559977, 10.55555555555553404]
    se = [3.6467613457364014, 5.1572993538783853, 5.1572993538783818]
    se += [5.1572993538783827, 7.2935226914728108, 7.2935226914728091]
    t = [6.73352414033470925, -1.12031072492093431, 3.87799866318787112]
    t += [-0.10772218508854912, -1.44725066364660515, 1.44725066364659649]
    p = [1.8845306915663060e-08, 2.6815563736828962e-01, 3.1992822569261610e-04]
    p += [9.1466508923285406e-01, 1.5432658047014547e-01, 1.5432658047014786e-01]
    frame = pd.read_csv(R_DATA / "warpbreaks.csv")
    fit = gradfit.ols("breaks ~ wool * tension", data=frame)
    summary = fit.as_dict()
    coefficients = summary["targets"]["breaks"]["coefficients"]
    assert set(coefficients) == set(names)
    for i, name in enumerate(names):
        c = coefficients[name]
        np.testing.assert_allclose(
            [c["estimate"], c["std_error"], c["t"]], [estimate[i], se[i], t[i]], rtol=1e-8
        )
        np.testing.assert_allclose(c["p"], p[i], rtol=1e-6)
    target = summary["targets"]["breaks"]
    np.testing.assert_allclose(
        [target["sigma"], target["r2"], target["r2_adj"], target["f_statistic"]],
        [10.94028403720921538, 0.37775085644600986, 0.31293323732580258, 5.82790391830735555],
        rtol=1e-8,
    )
    assert (fit.df_model, fit.df_resid, fit.n_dropped) == (5, 48, 0)
    assert "deleted due to missingness" not in fit.summary()


def test_ols_of_a_rank_deficient_formula_aliases_as_r_does() -> None:
    # R 4.2.2: n <- read.csv("npk.csv")
    #   s <- summary(lm(yield ~ factor(block) + factor(N) * factor(P) * factor(K), n))
    #   s$coefficients; s$aliased; s$sigma; s$r.squared; s$fstatistic
    # (N:P:K is confounded with the blocks: NA in R)
    estimate = [51.82499999999998153, 3.42499999999999893, 6.75000000000000622]
    estimate += [-3.89999999999999858, -3.50000000000000000, 2.32499999999999796]
    estimate += [9.85000000000000142, 0.41666666666667335, -1.91666666666666119]
    estimate += [-3.76666666666667016, -4.70000000000000462, 0.56666666666666554]
    se = [2.7785387846452299, 2.7785387846452299, 2.7785387846452307, 2.7785387846452281]
    se += [2.7785387846452290, 2.7785387846452285, 2.7785387846452285, 2.7785387846452294]
    se += [2.7785387846452281, 3.2083802305374758, 3.2083802305374758, 3.2083802305374776]
    table = read_table(str(R_DATA / "npk.csv"))
    with pytest.warns(gradfit.RankDeficiencyWarning, match="C\\(N\\)1:C\\(P\\)1:C\\(K\\)1"):
        fit = gradfit.ols("yield ~ C(block) + C(N) * C(P) * C(K)", data=table)
    assert fit.feature_names[-1] == "C(N)1:C(P)1:C(K)1"
    assert fit.aliased.tolist() == [False] * 11 + [True]
    got = [float(fit.bias[0]), *fit.weight[0, :11].tolist()]
    got_se = [float(fit.bias_se[0]), *fit.weight_se[0, :11].tolist()]
    np.testing.assert_allclose(got, estimate, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(got_se, se, rtol=1e-8)
    np.testing.assert_allclose(
        [float(fit.sigma[0]), float(fit.r2[0]), float(fit.f_statistic[0])],
        [3.92944723282493902, 0.78857363465374941, 4.06884990661480561],
        rtol=1e-8,
    )
    assert (fit.df_model, fit.df_resid) == (11, 12)


def test_ols_drops_rows_with_missing_values_as_r_does() -> None:
    # R 4.2.2: s <- summary(lm(Ozone ~ ., read.csv("airquality.csv"))); length(s$na.action)
    estimate = [-64.116321103342642118, 0.050274318783168501, -3.318443861677258688]
    estimate += [1.895786416986920742, -3.039956640773838092, 0.273877521151532854]
    se = [23.482488689771749080, 0.023418603559208447, 0.644509543141260188]
    se += [0.273886881576857366, 1.513456808290353672, 0.229670798175270419]
    table = read_table(str(R_DATA / "airquality.csv"))
    with pytest.raises(DataError, match="--missing drop"):
        gradfit.ols("Ozone ~ .", data=table)
    fit = gradfit.ols("Ozone ~ .", data=table, missing="drop")
    assert (fit.n, fit.df_resid, fit.n_dropped) == (111, 105, 42)
    assert fit.feature_names == ("Solar.R", "Wind", "Temp", "Month", "Day")
    got = [float(fit.bias[0]), *fit.weight[0].tolist()]
    got_se = [float(fit.bias_se[0]), *fit.weight_se[0].tolist()]
    np.testing.assert_allclose(got, estimate, rtol=1e-8)
    np.testing.assert_allclose(got_se, se, rtol=1e-8)
    np.testing.assert_allclose(float(fit.sigma[0]), 20.85846338999887806, rtol=1e-8)
    np.testing.assert_allclose(float(fit.f_statistic[0]), 34.99116075805233095, rtol=1e-8)
    text = fit.summary()
    assert "Residual standard error: 20.8585 on 105 degrees of freedom\n" in text
    assert "\n  (42 observations deleted due to missingness)\n" in text
    assert fit.as_dict()["n_dropped"] == 42


def test_ols_of_a_formula_refuses_what_the_formula_gives() -> None:
    frame = pd.read_csv(R_DATA / "warpbreaks.csv")
    with pytest.raises(ValidationError, match="fit_intercept= is given by the formula"):
        gradfit.ols("breaks ~ wool", data=frame, fit_intercept=False)
    with pytest.raises(ValidationError, match="a formula needs the data"):
        gradfit.ols("breaks ~ wool")
    with pytest.raises(ValidationError, match="data= goes with a formula"):
        gradfit.ols(np.ones((3, 1)), np.ones(3), data=frame)
    with pytest.raises(ValidationError, match="names no target"):
        gradfit.ols("~ wool", data=frame)
    fit = gradfit.ols("breaks ~ 0 + wool", data=frame, cov_type="HC1")
    assert (fit.fit_intercept, fit.feature_names, fit.cov_type) == (
        False,
        ("woolA", "woolB"),
        "HC1",
    )


@pytest.mark.slow
def test_import_gradfit_does_not_import_formulaic() -> None:
    code = (
        "import sys, gradfit, gradfit.cli, gradfit.inference; "
        "print(sorted(m for m in ('formulaic', 'pandas', 'gradfit.design.design') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_the_design_document_is_read_without_formulaic(tmp_path: Path) -> None:
    """gradfit.design's document half (gradfit info's) imports neither formulaic nor pandas;
    its Design, imported on first use of the name, does."""
    frame = pd.read_csv(R_DATA / "warpbreaks.csv")
    design = Design.from_formula("breaks ~ wool * tension", frame)
    (tmp_path / "d.json").write_text(design.to_json())
    code = (
        "import sys, pathlib\n"
        "from gradfit.design import DesignDocument\n"
        "d = DesignDocument.from_json(pathlib.Path('d.json').read_text())\n"
        "print(d.columns, [m for m in ('formulaic', 'pandas') if m in sys.modules])\n"
        "from gradfit.design import Design\n"
        "print(Design.from_json(d.to_json()).columns == d.columns, 'formulaic' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{design.columns} []",
        "True True",
    ]
