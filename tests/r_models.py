"""gradfit's answers to the fits of tests/data/r/export_models.R, in the shape of its
fit-NAME.csv files: {(quantity, name): value}, NaN for R's NA. Shared by test_r_models.py."""

from __future__ import annotations

import csv
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import gradfit
from gradfit.errors import RankDeficiencyWarning

DATA = Path(__file__).parent / "data" / "r"


@dataclass(frozen=True)
class Case:
    data: str
    formula: str
    weights: tuple[float, ...]
    text: tuple[str, ...]
    new: bool = False
    cluster: str | None = None
    hc: bool = True
    keep_positive: bool = False  # the rows of positive weight only (R's m[keep, ])


CASES = {
    "mtcars-wls": Case("mtcars", "mpg ~ wt * cyl + hp", (1, 2, 0.5), ("cyl",), True, "gear"),
    "mtcars-wls0": Case("mtcars", "mpg ~ wt * cyl + hp", (1, 2, 0, 0.5), ("cyl",), True, hc=False),
    "mtcars-wls0-kept": Case(
        "mtcars",
        "mpg ~ wt * cyl + hp",
        (1, 2, 0, 0.5),
        ("cyl",),
        cluster="gear",
        keep_positive=True,
    ),
    "mtcars-noint": Case("mtcars", "mpg ~ 0 + cyl + wt", (1, 2, 0.5), ("cyl",), True, "gear"),
    "mtcars-mean": Case("mtcars", "mpg ~ 1", (1, 2, 0.5), ("cyl",), True, "gear"),
    "npk-wls": Case("npk", "yield ~ block + N * P * K", (1, 2, 0.5), ("block", "N", "P", "K")),
}
NEW_CARS = pd.DataFrame(
    {"wt": [2.5, 3.2, 4.1], "hp": [100.0, 150.0, 210.0], "cyl": ["4", "6", "8"]}
)


def read_r(name: str) -> dict[tuple[str, str], float]:
    """fit-NAME.csv: R's answers, NaN for NA (an empty cell)."""
    out: dict[tuple[str, str], float] = {}
    with open(DATA / f"fit-{name}.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            value = float(row["value"]) if row["value"] else math.nan
            key = (row["quantity"], row["name"])
            # unnamed vectors (predictions, sandwich errors): numbered in order
            if row["name"] == "":
                i = sum(1 for q, _ in out if q == row["quantity"])
                key = (row["quantity"], str(i))
            out[key] = value
    return out


def read_r_table(name: str) -> dict[tuple[str, str], float]:
    """NAME.csv of export_models.R: {(column, row): value} of an R table, NaN for NA."""
    with open(DATA / f"{name}.csv", newline="") as handle:
        return {
            (row["quantity"], row["name"]): float(row["value"]) if row["value"] else math.nan
            for row in csv.DictReader(handle)
        }


def frame(case: Case) -> tuple[pd.DataFrame, np.ndarray]:
    data = pd.read_csv(DATA / f"{case.data}.csv")
    for column in case.text:
        data[column] = data[column].astype(str)
    w = np.resize(np.array(case.weights, dtype=float), len(data))
    if case.keep_positive:
        data, w = data[w > 0].reset_index(drop=True), w[w > 0]
    return data, w


def coefficient_names(fit: Any) -> list[str]:
    names = list(fit.feature_names)
    return ["(Intercept)", *names] if fit.fit_intercept else names


def answers(name: str) -> dict[tuple[str, str], float]:
    case = CASES[name]
    data, w = frame(case)
    out: dict[tuple[str, str], float] = {}

    def put(quantity: str, values: Any, names: Any = None) -> None:
        values = np.asarray(values, dtype=float).reshape(-1)
        names = [str(i) for i in range(len(values))] if names is None else list(names)
        for key, value in zip(names, values.tolist(), strict=True):
            out[(quantity, str(key))] = value

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankDeficiencyWarning)
        fit = gradfit.ols(case.formula, data=data, weights=w)
    names = coefficient_names(fit)

    def r_order(slopes: Any, intercept: Any) -> np.ndarray:
        """Slopes and intercept in R's order (the intercept first)."""
        slopes = np.asarray(slopes, dtype=float).reshape(-1)
        return np.r_[float(intercept), slopes] if fit.fit_intercept else slopes

    aliased = r_order(fit.aliased.numpy(), False).astype(bool)
    live = [n for n, a in zip(names, aliased, strict=True) if not a]
    put("coef", np.where(aliased, np.nan, r_order(fit.weight[0], fit.bias[0])), names)
    put("se", r_order(fit.weight_se[0], fit.bias_se[0])[~aliased], live)
    put("t", r_order(fit.weight_t[0], fit.bias_t[0])[~aliased], live)
    put("p", r_order(fit.weight_p[0], fit.bias_p[0])[~aliased], live)
    put("sigma", fit.sigma[0])
    put("r2", fit.r2[0])
    put("adj_r2", fit.r2_adj[0])
    f_test = [float(fit.f_statistic[0]), fit.df_model, fit.df_resid]
    put("fstatistic", f_test, ["value", "numdf", "dendf"])
    put("df", [int((~aliased).sum()), fit.df_resid], ["rank", "resid"])
    put("nobs", fit.n)
    put("loglik", fit.log_likelihood[0])
    put("aic", fit.aic[0])
    put("bic", fit.bic[0])
    put("residual_quantiles", fit.residual_quantiles[0], ["Min", "1Q", "Median", "3Q", "Max"])
    ci = fit.conf_int(0.9)[0].numpy()  # slopes, then the intercept
    put("confint_lower", r_order(ci[: len(aliased) - fit.fit_intercept, 0], ci[-1, 0]), names)
    put("confint_upper", r_order(ci[: len(aliased) - fit.fit_intercept, 1], ci[-1, 1]), names)

    def robust_se(cov_type: str, groups: Any = None) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RankDeficiencyWarning)
            other = gradfit.ols(
                case.formula, data=data, weights=w, cov_type=cov_type, groups=groups
            )
        return r_order(other.weight_se[0], other.bias_se[0])[~aliased]

    if case.hc:
        for cov_type in ("HC0", "HC1", "HC2", "HC3"):
            put(f"se_{cov_type}", robust_se(cov_type), live)
    if case.cluster is not None:
        put("se_cluster", robust_se("cluster", data[case.cluster].to_numpy()), live)
    table = gradfit.anova(fit)
    for column in table.columns:
        put(f"anova_{column}", table.column(column)[0], table.rows)
    measures = fit.influence(data, weights=w)
    rows = np.arange(1, len(data) + 1)
    if case.keep_positive:  # R's row names: those of the whole data
        rows = np.flatnonzero(np.resize(np.array(case.weights), 32) > 0) + 1
    positive = w > 0
    put("hat", measures.hat[positive], rows[positive])
    for quantity, values in (
        ("rstandard", measures.rstandard),
        ("rstudent", measures.rstudent),
        ("cooks", measures.cooks_distance),
        ("dffits", measures.dffits),
        ("covratio", measures.covratio),
    ):
        put(quantity, values[:, 0][positive], rows[positive])
    put("fitted", measures.fitted[:, 0], rows)
    put("residuals", measures.residuals[:, 0], rows)
    if case.new:
        X = fit.design.matrices(NEW_CARS, with_targets=False).X
        for interval in ("confidence", "prediction"):
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always", gradfit.ConstantVarianceWarning)
                got = fit.predict(X, interval=interval)
            # R's predict.lm warns for a weighted fit's prediction interval without weights
            # ("Assuming constant prediction variance"), and so does gradfit.
            warned = any(issubclass(w.category, gradfit.ConstantVarianceWarning) for w in seen)
            if warned != (interval == "prediction" and fit.weighted):
                raise AssertionError(f"{name}: {interval} interval warned: {warned}")
            put(f"{interval}_fit", got.mean[:, 0])
            put(f"{interval}_lower", got.lower[:, 0])
            put(f"{interval}_upper", got.upper[:, 0])
    return out
