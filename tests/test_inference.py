"""Classical OLS inference (gradfit.inference) against NIST's certified values, textbook
formulas, a direct float64 sandwich, simulation and its own other routes.

Oracles: NIST StRD certified standard deviations, residual standard deviation and R²; the
closed forms of simple regression; ``σ² (X̃ᵀX̃)⁻¹`` and ``(X̃ᵀX̃)⁻¹ X̃ᵀ diag(ω e²) X̃ (X̃ᵀX̃)⁻¹``
computed directly with NumPy on well-conditioned data; coverage by simulation; each target fitted
alone; the sufficient-statistics route against the in-memory one.
"""

from __future__ import annotations

import json
import math
import re
import sys
import threading
import warnings
from typing import Any

import numpy as np
import pytest
import torch
from nist import NIST_NAMES, load, lre
from scipy import stats

import gradfit
from gradfit.errors import ModelFileError, RankDeficiencyWarning, ValidationError
from gradfit.inference import OLSPredictor, PredictionInterval, ols, ols_from_stats
from gradfit.solvers.stats import SufficientStats

pytestmark = pytest.mark.usefixtures("one_thread")


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _interval(value: Any) -> PredictionInterval:
    assert isinstance(value, PredictionInterval)
    return value


# ----------------------------------------------------------------------------- NIST StRD

# Digits (LRE, see nist.py) kept on the certified standard deviations of the estimates, the
# residual standard deviation and R². Measured on x86-64 Linux (NumPy 2, OpenBLAS, torch 2.13
# CPU); each floor is about half a digit below (a digit on Filip) for other BLAS builds:
#
#   file       SDs    sigma   R²     | statsmodels-style pinv (measured, see below)
#   Norris     13.78  13.85   15     | 13.81  13.88  15
#   Pontius    14.21  14.25   15     |  9.24  11.79  15
#   NoInt1     15     15      15     | 15     15     15
#   NoInt2     15     15      15     | 14.88  15     15
#   Filip       7.63   8.56   10.98  |  0.01   0.80   2.94
#   Longley    14.87  15      15     | 12.58  13.04  15
#   Wampler3-5 13.29  14.54+  14.60+ | 10.41  14.80  13.73+
#
# statsmodels is not installed here; the right-hand columns reproduce its default OLS method
# (``pinv`` of the design with a column of ones, rcond 1e-15; ``bse = sqrt(scale *
# diag(pinv pinvᵀ))``) in NumPy, so the floors are at least as many digits as it gets on
# every file. Filip's centred, equilibrated design has condition number 3.8e9, so about
# 16 - 9.6 ≈ 6.4 digits is what the QR route can promise; 7.6 are measured.
SD_FLOOR = {
    "Norris": (13.2, 13.2, 14.5),
    "Pontius": (13.6, 13.6, 14.5),
    "NoInt1": (14.5, 14.5, 14.5),
    "NoInt2": (14.5, 14.5, 14.5),
    "Filip": (6.6, 7.5, 10.0),
    "Longley": (14.2, 14.4, 14.5),
    "Wampler3": (12.7, 13.9, 14.5),
    "Wampler4": (12.7, 14.2, 14.5),
    "Wampler5": (12.7, 14.2, 14.0),
}


def _certified_order(result: gradfit.OLSResult, values: str) -> np.ndarray:
    """B0 (the intercept) first, then the slopes, as in the NIST files."""
    weight = _np(getattr(result, f"weight{values}"))[0]
    if not result.fit_intercept:
        return weight
    return np.concatenate([_np(getattr(result, f"bias{values}")), weight])


def test_floors_cover_every_nist_file() -> None:
    assert set(SD_FLOOR) | {"Wampler1", "Wampler2"} == set(NIST_NAMES)


@pytest.mark.parametrize("name", sorted(SD_FLOOR))
def test_nist_certified_standard_deviations(name: str) -> None:
    problem = load(name)
    result = ols(problem.X, problem.y, fit_intercept=problem.fit_intercept)
    sd_floor, sigma_floor, r2_floor = SD_FLOOR[name]
    assert result.df_resid == len(problem.y) - len(problem.certified)
    assert lre(_certified_order(result, ""), problem.certified) >= 6.0  # least_squares' own job
    assert lre(_certified_order(result, "_se"), problem.certified_sd) >= sd_floor
    assert lre(_np(result.sigma), np.array(problem.residual_sd)) >= sigma_floor
    assert lre(_np(result.r2), np.array(problem.r_squared)) >= r2_floor


@pytest.mark.parametrize("name", ["Wampler1", "Wampler2"])
def test_nist_exact_fits(name: str) -> None:
    """Wampler1 and Wampler2 are exact polynomials: the certified residual standard deviation
    and every standard deviation are 0, so relative digits are undefined. The residuals come
    out at the rounding level of y (measured: sigma / max|y| = 3e-17 on both) and the
    standard errors, sigma times sqrt(diag G), at 1.1e-10 (Wampler1, coefficients 1) and 2e-15
    (Wampler2, coefficients down to 1e-5)."""
    problem = load(name)
    assert problem.residual_sd == 0 and not problem.certified_sd.any()
    result = ols(problem.X, problem.y, fit_intercept=problem.fit_intercept)
    assert float(result.sigma[0]) <= 1e-15 * np.abs(problem.y).max()
    se = _certified_order(result, "_se")
    assert np.all(se <= 1e-3 * np.abs(problem.certified).min())
    assert lre(_np(result.r2), np.array(problem.r_squared)) >= 14.5
    assert lre(_certified_order(result, ""), problem.certified) >= 9.0


# ----------------------------------------------------------------------------- textbook

X_SIMPLE = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
Y_SIMPLE = np.array([2.1, 3.9, 6.2, 7.8, 10.3, 11.9, 14.2, 15.8])


def test_simple_regression_textbook_formulas() -> None:
    x, y = X_SIMPLE, Y_SIMPLE
    n = len(x)
    xbar, ybar = x.mean(), y.mean()
    sxx, syy = ((x - xbar) ** 2).sum(), ((y - ybar) ** 2).sum()
    sxy = ((x - xbar) * (y - ybar)).sum()
    slope = sxy / sxx
    intercept = ybar - slope * xbar
    rss = ((y - intercept - slope * x) ** 2).sum()
    sigma = math.sqrt(rss / (n - 2))
    se_slope = sigma / math.sqrt(sxx)
    se_intercept = sigma * math.sqrt(1 / n + xbar**2 / sxx)
    t_slope = slope / se_slope
    r2 = sxy**2 / (sxx * syy)
    loglik = -n / 2 * (math.log(2 * math.pi) + math.log(rss / n) + 1)

    fit = ols(x[:, None], y)
    close = {"rtol": 1e-12, "atol": 0}
    np.testing.assert_allclose(_np(fit.weight), [[slope]], **close)
    np.testing.assert_allclose(_np(fit.bias), [intercept], **close)
    np.testing.assert_allclose(_np(fit.sigma), [sigma], **close)
    np.testing.assert_allclose(_np(fit.weight_se), [[se_slope]], **close)
    np.testing.assert_allclose(_np(fit.bias_se), [se_intercept], **close)
    cov = _np(fit.covariance)[0]  # features first, intercept last
    np.testing.assert_allclose(cov[0, 1], -xbar * sigma**2 / sxx, **close)
    np.testing.assert_allclose(cov[1, 0], cov[0, 1], **close)
    np.testing.assert_allclose(_np(fit.weight_t), [[t_slope]], **close)
    np.testing.assert_allclose(_np(fit.bias_t), [intercept / se_intercept], **close)
    p_slope = 2 * stats.t.sf(abs(t_slope), n - 2)
    np.testing.assert_allclose(_np(fit.weight_p), [[p_slope]], **close)
    np.testing.assert_allclose(
        _np(fit.bias_p), [2 * stats.t.sf(abs(intercept / se_intercept), n - 2)], **close
    )
    np.testing.assert_allclose(_np(fit.r2), [r2], **close)
    np.testing.assert_allclose(_np(fit.r2_adj), [1 - (1 - r2) * (n - 1) / (n - 2)], **close)
    np.testing.assert_allclose(_np(fit.f_statistic), [t_slope**2], **close)  # F = t² for d = 1
    np.testing.assert_allclose(_np(fit.f_pvalue), [p_slope], rtol=1e-9)
    np.testing.assert_allclose(_np(fit.log_likelihood), [loglik], **close)
    np.testing.assert_allclose(_np(fit.aic), [-2 * loglik + 2 * 3], **close)  # a, b and σ
    np.testing.assert_allclose(_np(fit.bic), [-2 * loglik + math.log(n) * 3], **close)
    assert (fit.n, fit.df_model, fit.df_resid) == (n, 1, n - 2)

    q = stats.t.ppf(0.975, n - 2)
    ci = _np(fit.conf_int())
    assert ci.shape == (1, 2, 2)
    np.testing.assert_allclose(ci[0, 0], [slope - q * se_slope, slope + q * se_slope], **close)
    np.testing.assert_allclose(
        ci[0, 1], [intercept - q * se_intercept, intercept + q * se_intercept], **close
    )
    q90 = stats.t.ppf(0.95, n - 2)
    np.testing.assert_allclose(_np(fit.conf_int(0.9))[0, 0, 1], slope + q90 * se_slope, **close)

    x0 = np.array([[0.0], [4.5], [12.0]])
    mean = intercept + slope * x0[:, 0]
    leverage = 1 / n + (x0[:, 0] - xbar) ** 2 / sxx
    conf = _interval(fit.predict(x0, interval="confidence"))
    pred = _interval(fit.predict(x0, interval="prediction"))
    np.testing.assert_allclose(_np(fit.predict(x0))[:, 0], mean, **close)  # type: ignore[arg-type]
    np.testing.assert_allclose(_np(conf.mean)[:, 0], mean, **close)
    np.testing.assert_allclose(_np(conf.upper)[:, 0], mean + q * sigma * np.sqrt(leverage), **close)
    np.testing.assert_allclose(
        _np(pred.lower)[:, 0], mean - q * sigma * np.sqrt(1 + leverage), **close
    )


def test_multiple_regression_against_the_inverse_of_the_normal_equations(
    rng: np.random.Generator,
) -> None:
    """On a well-conditioned design the textbook ``σ² (X̃ᵀX̃)⁻¹`` (explicit inverse, float64)
    is accurate to ~1e-14, so it is an oracle for the QR route to 1e-11."""
    n, d, k = 40, 3, 2
    X = rng.normal(size=(n, d)) * [1.0, 10.0, 0.1] + [5.0, -3.0, 0.0]
    Y = X @ rng.normal(size=(d, k)) + rng.normal(size=(n, k)) + [1.0, -2.0]
    fit = ols(X, Y)
    Xd = np.column_stack([X, np.ones(n)])  # intercept last, as in fit.covariance
    inv = np.linalg.inv(Xd.T @ Xd)
    beta = inv @ Xd.T @ Y  # (d + 1, k)
    E = Y - Xd @ beta
    s2 = (E * E).sum(0) / (n - d - 1)
    np.testing.assert_allclose(_np(fit.covariance), s2[:, None, None] * inv, rtol=1e-11)
    np.testing.assert_allclose(_np(fit.weight), beta[:d].T, rtol=1e-11)
    se = np.sqrt(s2[:, None] * np.diag(inv))
    np.testing.assert_allclose(_np(fit.weight_se), se[:, :d], rtol=1e-11)
    # F of all slopes from the sums of squares, the textbook way.
    tss = ((Y - Y.mean(0)) ** 2).sum(0)
    rss = (E * E).sum(0)
    f = ((tss - rss) / d) / (rss / (n - d - 1))
    np.testing.assert_allclose(_np(fit.f_statistic), f, rtol=1e-11)
    np.testing.assert_allclose(_np(fit.f_pvalue), stats.f.sf(f, d, n - d - 1), rtol=1e-9)


# ----------------------------------------------------------------------------- HC0-HC3


def _direct_sandwich(
    X: np.ndarray, Y: np.ndarray, cov_type: str, fit_intercept: bool
) -> np.ndarray:
    """``(XᵀX)⁻¹ Xᵀ diag(e² ω) X (XᵀX)⁻¹`` per target, with the explicit inverse."""
    n = X.shape[0]
    Xd = np.column_stack([X, np.ones(n)]) if fit_intercept else X
    p = Xd.shape[1]
    inv = np.linalg.inv(Xd.T @ Xd)
    E = Y - Xd @ (inv @ Xd.T @ Y)
    h = np.einsum("ij,jk,ik->i", Xd, inv, Xd)
    omega = {
        "HC0": np.ones(n),
        "HC1": np.full(n, n / (n - p)),
        "HC2": 1 / (1 - h),
        "HC3": 1 / (1 - h) ** 2,
    }[cov_type]
    return np.stack([inv @ (Xd.T * (E[:, j] ** 2 * omega)) @ Xd @ inv for j in range(Y.shape[1])])


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("cov_type", ["HC0", "HC1", "HC2", "HC3"])
def test_hc_covariance_matches_a_direct_sandwich(
    rng: np.random.Generator, cov_type: str, fit_intercept: bool
) -> None:
    n, d, k = 30, 3, 2
    X = rng.normal(size=(n, d)) + np.array([2.0, 0.0, -1.0])
    X[0] *= 4  # a high-leverage row, so that HC2/HC3 differ visibly from HC0
    noise = rng.normal(size=(n, k)) * (0.2 + np.abs(X[:, :1]))  # heteroskedastic
    Y = X @ rng.normal(size=(d, k)) + noise + (1.5 if fit_intercept else 0.0)
    expected = _direct_sandwich(X, Y, cov_type, fit_intercept)
    fit = ols(X, Y, fit_intercept=fit_intercept, cov_type=cov_type)
    assert fit.cov_type == cov_type
    np.testing.assert_allclose(_np(fit.covariance), expected, rtol=1e-10, atol=0)
    # The F statistic is then the robust Wald test of all slopes.
    for j in range(k):
        beta = _np(fit.weight)[j]
        wald = beta @ np.linalg.solve(expected[j][:d, :d], beta) / d
        np.testing.assert_allclose(float(fit.f_statistic[j]), wald, rtol=1e-9)
    # and the HC estimators differ from each other and from the classical one on this data
    nonrobust = ols(X, Y, fit_intercept=fit_intercept)
    assert not np.allclose(_np(fit.weight_se), _np(nonrobust.weight_se), rtol=1e-3)


def test_hc2_hc3_refuse_a_row_of_leverage_one(rng: np.random.Generator) -> None:
    """A dummy that is 1 on a single row fits that row exactly (h = 1): HC2/HC3 divide by
    1 - h, so they are refused with a message; HC0/HC1 are defined."""
    n = 12
    X = np.column_stack([rng.normal(size=n), np.eye(n)[0]])
    y = rng.normal(size=n)
    with pytest.raises(ValidationError, match=r"row 0 has leverage 1.*HC0"):
        ols(X, y, cov_type="HC3")
    with pytest.raises(ValidationError, match="leverage 1"):
        ols(X, y, cov_type="HC2")
    assert np.isfinite(_np(ols(X, y, cov_type="HC1").weight_se)).all()


# ----------------------------------------------------------------------------- targets


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC3"])
def test_several_targets_equal_each_target_alone(rng: np.random.Generator, cov_type: str) -> None:
    n, d, k = 25, 2, 3
    X = rng.normal(size=(n, d))
    Y = X @ rng.normal(size=(d, k)) + rng.normal(size=(n, k)) * [0.1, 1.0, 10.0]
    together = ols(X, Y, cov_type=cov_type, target_names=["a", "b", "c"])
    for j in range(k):
        alone = ols(X, Y[:, j], cov_type=cov_type, target_names=[together.target_names[j]])
        for field in ("weight", "weight_se", "bias_se", "weight_p", "covariance", "sigma"):
            np.testing.assert_allclose(
                _np(getattr(together, field))[j],
                _np(getattr(alone, field))[0],
                rtol=1e-12,
                err_msg=field,
            )
        for field in ("r2", "r2_adj", "f_statistic", "f_pvalue", "log_likelihood", "aic", "bic"):
            np.testing.assert_allclose(
                float(getattr(together, field)[j]), float(getattr(alone, field)[0]), rtol=1e-12
            )
        np.testing.assert_allclose(
            _np(together.conf_int(0.8))[j], _np(alone.conf_int(0.8))[0], rtol=1e-12
        )
        assert alone.summary().split("\n", 1)[1] in together.summary()


# ----------------------------------------------------------------------------- coverage

REPLICATIONS = 4000  # targets fitted at once: each column of Y is one replication


@pytest.mark.parametrize("level", [0.95, 0.8])
def test_interval_coverage_by_simulation(level: float) -> None:
    """Gaussian errors, a fixed small design (n = 10, so t and normal quantiles differ by
    ~10%): coverage of the coefficients' confidence intervals, of the mean response's
    confidence interval and of a new observation's prediction interval must be within 4
    binomial standard errors of ``level`` (a z interval instead of t, or n instead of n - p
    in σ², would miss it by 6-12 standard errors: computed from the t distribution)."""
    rng = np.random.default_rng(7)
    n, d = 10, 2
    X = rng.uniform(-2, 3, size=(n, d))
    beta, intercept, sigma = np.array([1.5, -0.7]), 3.0, 2.0
    Y = X @ beta[:, None] + intercept + sigma * rng.normal(size=(n, REPLICATIONS))
    fit = ols(X, Y)
    tolerance = 4 * math.sqrt(level * (1 - level) / REPLICATIONS)

    ci = _np(fit.conf_int(level))  # (reps, d + 1, 2)
    truth = np.append(beta, intercept)
    covered = (ci[:, :, 0] <= truth) & (truth <= ci[:, :, 1])
    assert np.all(np.abs(covered.mean(axis=0) - level) < tolerance), covered.mean(axis=0)

    x0 = np.array([[4.0, -1.0]])  # outside the data: large leverage
    mu0 = float((x0 @ beta)[0]) + intercept
    conf = _interval(fit.predict(x0, interval="confidence", level=level))
    inside = (_np(conf.lower) <= mu0) & (mu0 <= _np(conf.upper))
    assert abs(inside.mean() - level) < tolerance
    y0 = mu0 + sigma * rng.normal(size=(1, REPLICATIONS))
    pred = _interval(fit.predict(x0, interval="prediction", level=level))
    inside = (_np(pred.lower) <= y0) & (y0 <= _np(pred.upper))
    assert abs(inside.mean() - level) < tolerance


# ----------------------------------------------------------------------------- no intercept


def test_no_intercept_uses_r_conventions(rng: np.random.Generator) -> None:
    """Through the origin R uses the uncentred total sum of squares and df_model = d."""
    n, d = 20, 2
    X = rng.normal(size=(n, d)) + 3.0
    y = X @ np.array([0.5, 2.0]) + rng.normal(size=n)
    fit = ols(X, y, fit_intercept=False)
    w = np.linalg.lstsq(X, y, rcond=None)[0]
    rss = ((y - X @ w) ** 2).sum()
    r2 = 1 - rss / (y**2).sum()  # uncentred
    f = ((X @ w) ** 2).sum() / d / (rss / (n - d))
    assert (fit.df_model, fit.df_resid) == (d, n - d)
    np.testing.assert_allclose(float(fit.r2[0]), r2, rtol=1e-12)
    np.testing.assert_allclose(float(fit.r2_adj[0]), 1 - (1 - r2) * n / (n - d), rtol=1e-12)
    np.testing.assert_allclose(float(fit.f_statistic[0]), f, rtol=1e-11)
    np.testing.assert_allclose(float(fit.f_pvalue[0]), stats.f.sf(f, d, n - d), rtol=1e-9)
    assert r2 > 0.9 > 1 - rss / ((y - y.mean()) ** 2).sum()  # the centred one is lower here
    inv = np.linalg.inv(X.T @ X)
    np.testing.assert_allclose(_np(fit.covariance)[0], rss / (n - d) * inv, rtol=1e-11)
    assert fit.covariance.shape == (1, d, d) and fit.conf_int().shape == (1, d, 2)
    assert float(fit.bias[0]) == 0 and math.isnan(float(fit.bias_se[0]))
    assert "(Intercept)" not in fit.summary() and "uncentred" in fit.summary()


# ----------------------------------------------------------------------------- rank deficiency


def test_rank_deficient_design_warns_and_gives_nan_for_the_aliased(
    rng: np.random.Generator,
) -> None:
    n = 30
    x0, x1, x3 = rng.normal(size=(3, n))
    X = np.column_stack([x0, x1, x0 - 2 * x1, x3])  # x2 = x0 - 2 x1
    Y = np.column_stack([1 + x0 + x1 + 0.5 * x3, 2 - x1]) + rng.normal(size=(n, 2))
    with pytest.warns(RankDeficiencyWarning, match=r"1 coefficient.*: x2\."):
        fit = ols(X, Y)
    reduced = ols(X[:, [0, 1, 3]], Y)
    assert fit.aliased.tolist() == [False, False, True, False]
    assert (fit.df_model, fit.df_resid) == (3, n - 4)
    np.testing.assert_array_equal(_np(fit.weight)[:, 2], 0.0)
    assert np.isnan(_np(fit.weight_se)[:, 2]).all() and np.isnan(_np(fit.weight_p)[:, 2]).all()
    assert np.isnan(_np(fit.covariance)[:, 2, :]).all()
    assert np.isnan(_np(fit.conf_int())[:, 2]).all()
    for field in ("weight", "weight_se", "weight_p"):
        np.testing.assert_allclose(
            _np(getattr(fit, field))[:, [0, 1, 3]], _np(getattr(reduced, field)), rtol=1e-10
        )
    for field in ("bias", "bias_se", "sigma", "r2", "r2_adj", "f_statistic", "aic"):
        np.testing.assert_allclose(
            _np(getattr(fit, field)), _np(getattr(reduced, field)), rtol=1e-10, err_msg=field
        )
    # predictions and intervals equal those of the reduced model (and any LS solution's mean)
    new = rng.normal(size=(5, 3))
    new4 = np.column_stack([new[:, 0], new[:, 1], new[:, 0] - 2 * new[:, 1], new[:, 2]])
    a = _interval(fit.predict(new4, interval="prediction"))
    b = _interval(reduced.predict(new, interval="prediction"))
    for got, want in zip(a, b, strict=True):
        np.testing.assert_allclose(_np(got), _np(want), rtol=1e-10)
    with pytest.warns(RankDeficiencyWarning):
        minimum_norm = gradfit.least_squares(X, Y)
    np.testing.assert_allclose(
        _np(a.mean), new4 @ _np(minimum_norm.weight).T + _np(minimum_norm.bias), rtol=1e-9
    )
    text = fit.summary()
    assert "(1 not defined because of singularities)" in text
    assert re.search(r"^x2\s+NA\s+NA\s+NA\s+NA$", text, re.MULTILINE)


def test_constant_feature_is_aliased_with_the_intercept(rng: np.random.Generator) -> None:
    n = 15
    x = rng.normal(size=n)
    y = 2 * x + 1 + rng.normal(size=n)
    X = np.column_stack([np.full(n, 4.0), x])
    with pytest.warns(RankDeficiencyWarning, match="x0"):
        fit = ols(X, y)
    alone = ols(x[:, None], y)
    assert fit.aliased.tolist() == [True, False]
    np.testing.assert_allclose(_np(fit.weight)[0], [0.0, float(alone.weight[0, 0])], rtol=1e-12)
    np.testing.assert_allclose(_np(fit.bias_se), _np(alone.bias_se), rtol=1e-12)
    # Only constant features: the intercept alone, its standard error s / sqrt(n).
    with pytest.warns(RankDeficiencyWarning):
        only = ols(np.full((n, 1), 4.0), y)
    assert (only.df_model, only.df_resid) == (0, n - 1)
    np.testing.assert_allclose(float(only.bias[0]), y.mean(), rtol=1e-14)
    np.testing.assert_allclose(float(only.bias_se[0]), y.std(ddof=1) / math.sqrt(n), rtol=1e-12)
    assert math.isnan(float(only.f_statistic[0])) and math.isnan(float(only.f_pvalue[0]))


# ----------------------------------------------------------------------------- summary


def _numbers(line: str) -> list[float]:
    return [float(v) for v in re.findall(r"[-+]?\d+\.?\d*(?:e[-+]?\d+)?", line)]


def test_names_come_from_a_dataframe_and_a_series(rng: np.random.Generator) -> None:
    """As statsmodels' OLS(y_series, X_frame): string column names name the coefficients and
    the response (they were x0, x1 and y0); explicit names win; numbered columns keep the
    defaults. The numbers are those of the arrays, bit for bit."""
    pd = pytest.importorskip("pandas")
    X, y = rng.normal(size=(30, 2)), rng.normal(size=30)
    frame = pd.DataFrame(X, columns=["temp", "rain"])
    fit = ols(frame, pd.Series(y, name="yield"))
    assert fit.feature_names == ("temp", "rain") and fit.target_names == ("yield",)
    assert fit.summary().splitlines()[0] == "Response yield:"
    np.testing.assert_array_equal(fit.weight_se.numpy(), ols(X, y).weight_se.numpy())
    two = ols(frame, pd.DataFrame({"u": y, "v": -y}), feature_names=["a", "b"])
    assert two.feature_names == ("a", "b") and two.target_names == ("u", "v")
    plain = ols(pd.DataFrame(X), pd.Series(y))
    assert plain.feature_names == ("x0", "x1") and plain.target_names == ("y0",)


def test_summary_reports_the_numbers_with_names() -> None:
    problem = load("Longley")
    names = ["deflator", "gnp", "unemployed", "armed_forces", "population", "year"]
    fit = ols(problem.X, problem.y, feature_names=names, target_names=["employment"])
    text = fit.summary()
    lines = text.splitlines()
    assert lines[0] == "Response employment:"
    assert "Estimate  Std. Error  t value  Pr(>|t|)" in text
    rows = {line.split()[0]: line for line in lines if line.split() and line.split()[0] in names}
    assert list(rows) == names
    for i, name in enumerate(names):
        estimate, se, t, p = _numbers(rows[name].removeprefix(name))[:4]
        assert estimate == pytest.approx(float(fit.weight[0, i]), rel=1e-5)
        assert se == pytest.approx(float(fit.weight_se[0, i]), rel=1e-5)
        assert t == pytest.approx(float(fit.weight_t[0, i]), abs=1e-3)
        assert p == pytest.approx(float(fit.weight_p[0, i]), rel=1e-2)
    intercept = next(line for line in lines if line.startswith("(Intercept)"))
    assert _numbers(intercept)[0] == pytest.approx(problem.certified[0], rel=1e-5)
    # R's summary.lm of this fit reads: "Residual standard error: 304.9 on 9 degrees of
    # freedom", "Multiple R-squared: 0.9955, Adjusted R-squared: 0.9925", "F-statistic: 330.3
    # on 6 and 9 DF, p-value: 4.984e-10".
    se_line = next(line for line in lines if line.startswith("Residual standard error"))
    sigma, df = _numbers(se_line)
    assert sigma == pytest.approx(problem.residual_sd, rel=1e-5) and df == 9
    r2_line = next(line for line in lines if line.startswith("Multiple R-squared"))
    r2, r2_adj = _numbers(r2_line)
    assert r2 == pytest.approx(0.9955, abs=5e-5) and r2_adj == pytest.approx(0.9925, abs=5e-5)
    f_line = next(line for line in lines if line.startswith("F-statistic"))
    f, df1, df2, p = _numbers(f_line)
    assert f == pytest.approx(330.3, abs=0.05) and (df1, df2) == (6, 9)
    assert p == pytest.approx(4.984e-10, rel=1e-3)
    assert "Residuals:" in text and "Signif. codes" in text


def test_summary_of_several_targets_and_robust_errors(rng: np.random.Generator) -> None:
    X = rng.normal(size=(20, 2))
    Y = np.column_stack([X[:, 0] * 10, X[:, 1]]) + rng.normal(size=(20, 2))
    text = ols(X, Y, cov_type="HC1", target_names=["first", "second"]).summary()
    assert text.index("Response first:") < text.index("Response second:")
    assert text.count("Standard errors: heteroskedasticity-consistent (HC1)") == 2
    assert "Wald F (HC1):" in text
    assert "<2e-16 ***" in text  # R's notation for a p-value below the float64 epsilon


# ----------------------------------------------------------------------------- from statistics


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_from_stats_equals_the_in_memory_result(
    rng: np.random.Generator, fit_intercept: bool
) -> None:
    n, d, k = 200, 3, 2
    X = rng.normal(size=(n, d)) * [1.0, 5.0, 0.2] + [100.0, -40.0, 3.0]  # an offset to centre
    Y = X @ rng.normal(size=(d, k)) + rng.normal(size=(n, k)) + (7.0 if fit_intercept else 0)
    memory = ols(X, Y, fit_intercept=fit_intercept)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    batches = [(Xt[i : i + 37], Yt[i : i + 37]) for i in range(0, n, 37)]  # merged, streamed
    for statistics in (SufficientStats.compute(Xt, Yt), SufficientStats.from_batches(batches)):
        streamed = ols_from_stats(
            statistics, memory.weight, memory.bias, fit_intercept=fit_intercept
        )
        assert streamed.residual_quantiles is None and "Residuals:" not in streamed.summary()
        for field in ("weight", "bias", "covariance", "sigma", "weight_p", "r2", "r2_adj"):
            np.testing.assert_allclose(
                _np(getattr(streamed, field)),
                _np(getattr(memory, field)),
                rtol=1e-10,
                err_msg=field,
            )
        for field in ("f_statistic", "f_pvalue", "log_likelihood", "aic", "bic"):
            np.testing.assert_allclose(
                _np(getattr(streamed, field)), _np(getattr(memory, field)), rtol=1e-9
            )
        assert (streamed.n, streamed.df_model, streamed.df_resid) == (
            memory.n,
            memory.df_model,
            memory.df_resid,
        )
        new = rng.normal(size=(4, d)) + np.array([100.0, -40.0, 3.0])
        a = _interval(streamed.predict(new, interval="prediction"))
        b = _interval(memory.predict(new, interval="prediction"))
        np.testing.assert_allclose(_np(a.upper), _np(b.upper), rtol=1e-10)


def test_from_stats_of_a_rank_deficient_fit(rng: np.random.Generator) -> None:
    """A minimum-norm (or gradient-descent) solution is re-expressed on the estimable columns:
    the same predictions, and the in-memory result."""
    n = 50
    x0, x1 = rng.normal(size=(2, n))
    X = np.column_stack([x0, x1, 3 * x0 + 1])  # x2 = 3 x0 + 1: aliased with the intercept
    y = 2 * x0 - x1 + rng.normal(size=n)
    with pytest.warns(RankDeficiencyWarning):
        memory = ols(X, y)
    with pytest.warns(RankDeficiencyWarning):
        minimum_norm = gradfit.least_squares(X, y)
    statistics = SufficientStats.compute(torch.from_numpy(X), torch.from_numpy(y[:, None]))
    with pytest.warns(RankDeficiencyWarning, match="sufficient statistics.*x2"):
        streamed = ols_from_stats(statistics, minimum_norm.weight, minimum_norm.bias)
    assert streamed.aliased.tolist() == [False, False, True]
    for field in ("weight", "bias", "weight_se", "bias_se", "sigma", "r2"):
        np.testing.assert_allclose(
            _np(getattr(streamed, field)), _np(getattr(memory, field)), rtol=1e-8, err_msg=field
        )


def test_from_stats_refusals(rng: np.random.Generator) -> None:
    X, y = rng.normal(size=(20, 2)), rng.normal(size=(20, 1))
    statistics = SufficientStats.compute(torch.from_numpy(X), torch.from_numpy(y))
    w, b = torch.zeros(1, 2, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    with pytest.raises(ValidationError, match=r"HC3.*needs the data rows.*gradfit.ols"):
        ols_from_stats(statistics, w, b, cov_type="HC3")
    with pytest.raises(ValidationError, match=r"alpha=0.1.*ridge and elastic-net.*alpha=0"):
        ols_from_stats(statistics, w, b, alpha=0.1)
    with pytest.raises(ValidationError, match=r"weight must be \(1, 2\)"):
        ols_from_stats(statistics, torch.zeros(1, 3), b)
    with pytest.raises(ValidationError, match="bias is not zero"):
        ols_from_stats(statistics, w, b + 1, fit_intercept=False)


# ----------------------------------------------------------------------------- to_dict


def test_to_dict_round_trip_through_json(rng: np.random.Generator) -> None:
    X = rng.normal(size=(30, 2)) + 50.0
    Y = X @ rng.normal(size=(2, 3)) + rng.normal(size=(30, 3))
    for fit in (ols(X, Y, cov_type="HC2"), ols(X, Y, fit_intercept=False)):
        data = json.loads(json.dumps(fit.to_dict()))  # plain lists, floats, ints
        rebuilt = OLSPredictor.from_dict(data, fit.weight.tolist(), fit.bias.numpy())
        new = rng.normal(size=(6, 2)) + 50.0
        for kind in ("confidence", "prediction"):
            for level in (0.5, 0.99):
                a = _interval(rebuilt.predict(new, interval=kind, level=level))
                b = _interval(fit.predict(new, interval=kind, level=level))
                for got, want in zip(a, b, strict=True):
                    torch.testing.assert_close(got, want, rtol=0, atol=0)


def _mutations() -> list[tuple[str, Any]]:
    return [
        ("format", "something-else"),
        ("version", 99),
        ("version", True),
        ("fit_intercept", 1),
        ("cov_type", "HC9"),
        ("df_resid", 0),
        ("df_resid", 2.5),
        ("sigma", [1.0, -1.0]),
        ("sigma", ["1.0", 2.0]),
        ("sigma", [1.0]),
        ("center", [1.0, float("nan")]),
        ("covariance", [[[1.0]]]),
        ("covariance", "not a list"),
    ]


@pytest.mark.parametrize(("key", "value"), _mutations())
def test_from_dict_rejects_malformed_data(rng: np.random.Generator, key: str, value: Any) -> None:
    X = rng.normal(size=(20, 2))
    fit = ols(X, X @ rng.normal(size=(2, 2)) + rng.normal(size=(20, 2)))
    data = fit.to_dict()
    OLSPredictor.from_dict(data, fit.weight, fit.bias)  # the unmodified data are fine
    data[key] = value
    with pytest.raises(ModelFileError):
        OLSPredictor.from_dict(data, fit.weight, fit.bias)


def test_from_dict_rejects_missing_keys_and_mismatched_weights(rng: np.random.Generator) -> None:
    X = rng.normal(size=(20, 2))
    fit = ols(X, X[:, 0] + rng.normal(size=20))
    data = fit.to_dict()
    with pytest.raises(ModelFileError, match="lack covariance"):
        OLSPredictor.from_dict({k: v for k, v in data.items() if k != "covariance"}, 0, 0)
    with pytest.raises(ModelFileError, match="must be a mapping"):
        OLSPredictor.from_dict([data], fit.weight, fit.bias)
    with pytest.raises(ModelFileError, match="do not match"):
        OLSPredictor.from_dict(data, torch.zeros(1, 3), fit.bias)
    with pytest.raises(ModelFileError, match="symmetric"):
        bad = json.loads(json.dumps(data))
        bad["covariance"][0][0][1] += 1.0
        OLSPredictor.from_dict(bad, fit.weight, fit.bias)


# ----------------------------------------------------------------------------- arguments


def test_argument_errors_name_the_argument(rng: np.random.Generator) -> None:
    X, y = rng.normal(size=(10, 2)), rng.normal(size=10)
    with pytest.raises(ValidationError, match="cov_type must be one of nonrobust, HC0"):
        ols(X, y, cov_type="HC4")
    with pytest.raises(ValidationError, match=r"3 row.*3 coefficient.*0 residual degrees"):
        ols(X[:3], y[:3])
    with pytest.raises(ValidationError, match="feature_names must name each of the 2"):
        ols(X, y, feature_names=["a"])
    with pytest.raises(ValidationError, match="target_names"):
        ols(X, y, target_names=["y", "z"])
    assert ols(X, y, target_names="y").target_names == ("y",)  # one name as a string
    with pytest.raises(ValidationError, match="same number of rows"):
        ols(X, y[:5])
    fit = ols(X, y)
    with pytest.raises(ValidationError, match="level must be strictly between 0 and 1"):
        fit.conf_int(95)
    with pytest.raises(ValidationError, match="interval must be None, 'confidence'"):
        fit.predict(X, interval="credible")
    with pytest.raises(ValidationError, match="X has 3 features, but the model expects 2"):
        fit.predict(np.ones((1, 3)))


def test_lazy_exports_and_no_stray_warnings(rng: np.random.Generator) -> None:
    assert gradfit.ols is ols and gradfit.OLSResult.__name__ == "OLSResult"
    X = rng.normal(size=(6, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an exact fit: zero residuals, infinite t and F
        fit = ols(X, 2 * X[:, 0] + 1)
        fit.summary()
        _ = (fit.weight_p, fit.bias_p, fit.conf_int(), fit.predict(X, interval="prediction"))
    assert float(fit.sigma[0]) < 1e-14


# ---------------------------------------------------------------------------------------------
# HC0-HC3 from statistics and a second pass over blocks of rows (the streamed route)


def _blocks(X: np.ndarray, Y: np.ndarray, size: int) -> Any:
    return lambda: ((X[i : i + size], Y[i : i + size]) for i in range(0, X.shape[0], size))


@pytest.mark.parametrize("cov_type", ["HC0", "HC1", "HC2", "HC3"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_hc_from_blocks_equals_in_memory(cov_type: str, fit_intercept: bool) -> None:
    rng = np.random.default_rng(5)
    n = 300
    X = rng.normal(size=(n, 3)) * np.array([1.0, 4.0, 0.3]) + np.array([3.0, -2.0, 10.0])
    noise = rng.normal(size=(n, 2)) * (0.3 + (X[:, :1] - 3.0) ** 2)
    Y = X @ np.array([[1.0, -0.5, 2.0], [0.2, 0.1, -1.0]]).T + 1.5 + noise
    ref = ols(X, Y, fit_intercept=fit_intercept, cov_type=cov_type)
    stats = SufficientStats.compute(torch.from_numpy(X), torch.from_numpy(Y))
    got = ols_from_stats(
        stats,
        ref.weight,
        ref.bias,
        fit_intercept=fit_intercept,
        cov_type=cov_type,
        batches=_blocks(X, Y, 7),  # 43 blocks, the last of 6 rows
    )
    # The factor comes from the Gram matrix (condition ~ 1e3 here, squared: ~1e6), so the
    # sandwich agrees with the QR route to about eps * 1e6, far inside 1e-8.
    np.testing.assert_allclose(got.covariance.numpy(), ref.covariance.numpy(), rtol=1e-8)
    np.testing.assert_allclose(got.weight_se.numpy(), ref.weight_se.numpy(), rtol=1e-8)
    np.testing.assert_allclose(
        got.f_statistic.numpy(), ref.f_statistic.numpy(), rtol=1e-7
    )  # the robust Wald test
    lo, hi = got.predict(X[:5], interval="confidence"), ref.predict(X[:5], interval="confidence")
    assert isinstance(lo, PredictionInterval) and isinstance(hi, PredictionInterval)
    np.testing.assert_allclose(lo.lower.numpy(), hi.lower.numpy(), rtol=1e-9)


def test_hc_from_blocks_needs_the_rows_and_all_of_them() -> None:
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(50, 2)), rng.normal(size=(50, 1))
    fit = ols(X, Y)
    stats = SufficientStats.compute(torch.from_numpy(X), torch.from_numpy(Y))
    with pytest.raises(ValidationError, match="needs the data rows"):
        ols_from_stats(stats, fit.weight, fit.bias, cov_type="HC1")
    with pytest.raises(ValidationError, match="gave 40 rows where the statistics counted 50"):
        ols_from_stats(
            stats, fit.weight, fit.bias, cov_type="HC1", batches=_blocks(X[:40], Y[:40], 8)
        )


def test_hc3_from_blocks_refuses_a_row_of_leverage_one() -> None:
    rng = np.random.default_rng(2)
    X = np.zeros((30, 2))
    X[:, 0] = rng.normal(size=30)
    X[17, 1] = 1.0  # a dummy that singles out row 17
    Y = rng.normal(size=(30, 1))
    fit = ols(X, Y)
    stats = SufficientStats.compute(torch.from_numpy(X), torch.from_numpy(Y))
    with pytest.raises(ValidationError, match="row 17 has leverage 1"):
        ols_from_stats(stats, fit.weight, fit.bias, cov_type="HC3", batches=_blocks(X, Y, 4))


def test_preload_distributions_imports_scipy_special_in_a_thread() -> None:
    import gradfit.inference as inference_module

    thread = inference_module.preload_distributions()
    assert thread is not threading.current_thread()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert "scipy.special" in sys.modules


def test_preload_distributions_leaves_a_failed_import_for_first_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No traceback from the thread (pytest turns an unhandled thread exception into an error
    # here): the import error is reported where the distributions are first used.
    import gradfit.inference as inference_module
    import gradfit.inference.distributions as distributions

    calls: list[str] = []

    def missing() -> None:
        calls.append("special")
        raise ImportError("No module named 'scipy'")

    monkeypatch.setattr(distributions, "special", missing)
    thread = inference_module.preload_distributions()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert calls == ["special"]  # the thread tried the import, and swallowed its failure
