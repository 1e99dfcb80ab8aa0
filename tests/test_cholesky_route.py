"""The Cholesky route of the closed form (issue 23): a design of condition up to
:data:`gradfit.solvers.lstsq._SNE_CONDITION` is factored by the Cholesky factor of its Gram
matrix, refined by a second Cholesky beyond :data:`~gradfit.solvers.lstsq._ONE_CHOLESKY`
(CholeskyQR2 without Q), and solved by the corrected semi-normal equations; every other design
by Householder's QR. Both are measured against exact references: the least-squares solution,
residual sum of squares and standard errors of the solver's float64 data worked out in
rationals (Python integers and ``fractions.Fraction``), then rounded once.

And the effects ``Qᵀy`` have the signs of a positive diagonal of R whatever the route: the
same on both routes and from sufficient statistics.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

import gradfit
import gradfit.solvers.lstsq as lstsq
from gradfit.inference import ols_from_stats
from gradfit.solvers.stats import SufficientStats

EPS = 2.0**-52


def _integers(M: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """M (n, c) as Python integers (object array) times ``2^g`` per column, exactly."""
    exponents = []
    out = np.empty(M.shape, dtype=object)
    for c, column in enumerate(M.T):
        nonzero = column[column != 0]
        g = int(np.frexp(np.abs(nonzero))[1].min()) - 53 if nonzero.size else 0
        exponents.append(g)
        out[:, c] = [int(v) for v in np.ldexp(column, -g)]
    return out, exponents


def _exact(A: np.ndarray, B: np.ndarray, df: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The least-squares solution Z (d, k), the residual sums of squares (k,) and the
    standard errors (k, d) ``sqrt(RSS / df · ((AᵀA)⁻¹)_jj)`` of the float64 data, exact."""
    d, k = A.shape[1], B.shape[1]
    a, ga = _integers(A)
    b, gb = _integers(B)
    gram, cross = a.T.dot(a), a.T.dot(b)
    squares = [sum(v * v for v in b[:, j]) for j in range(k)]

    def scaled(value: int, exponent: int) -> Fraction:
        return Fraction(value) * Fraction(2) ** exponent

    rows = [
        [scaled(gram[p, q], ga[p] + ga[q]) for q in range(d)]
        + [scaled(cross[p, j], ga[p] + gb[j]) for j in range(k)]
        + [Fraction(int(p == q)) for q in range(d)]
        for p in range(d)
    ]
    for c in range(d):  # Gauss-Jordan on [AᵀA | AᵀB | I] (positive definite: no pivoting)
        for r in range(d):
            if r != c and rows[r][c] != 0:
                f = rows[r][c] / rows[c][c]
                rows[r] = [x - f * y for x, y in zip(rows[r], rows[c], strict=True)]
    Z = [[rows[i][d + j] / rows[i][i] for j in range(k)] for i in range(d)]
    rss = [
        scaled(squares[j], 2 * gb[j])
        - sum(scaled(cross[p, j], ga[p] + gb[j]) * Z[p][j] for p in range(d))
        for j in range(k)
    ]
    se = [
        [math.sqrt(rss[j] / df * rows[p][d + k + p] / rows[p][p]) for p in range(d)]
        for j in range(k)
    ]
    return (
        np.array([[float(z) for z in row] for row in Z]),
        np.array([float(r) for r in rss]),
        np.array(se),
    )


def _design(
    n: int, d: int, k: int, condition: float, seed: int, noise: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian rows mixed to singular values from 1 to 1/condition, columns over e^±3 in
    scale, an offset of 5; targets with an intercept and noise."""
    rng = np.random.default_rng(seed)
    V, _ = np.linalg.qr(rng.standard_normal((d, d)))
    singular = np.geomspace(1.0, 1.0 / condition, d)
    X = (rng.standard_normal((n, d)) * singular) @ V.T * np.exp(rng.uniform(-3, 3, d)) + 5.0
    Y = X @ rng.standard_normal((d, k)) + 2.0 + noise * rng.standard_normal((n, k))
    return X, Y


def _route(monkeypatch: pytest.MonkeyPatch, route: str) -> None:
    monkeypatch.setattr(lstsq, "_SNE_CONDITION", math.inf if route == "cholesky" else 0.0)


def _errors(
    fit: gradfit.OLSResult, Z: np.ndarray, rss: np.ndarray, se: np.ndarray
) -> tuple[float, float, float]:
    """The coefficients' error in units in the last place of each target's largest exact
    coefficient, the largest relative errors of the standard errors and of RSS."""
    W = fit.weight.numpy().T
    ulps = float((np.abs(W - Z) / np.spacing(np.abs(Z).max(axis=0))).max())
    se_error = float((np.abs(fit.weight_se.numpy() - se) / se).max())
    rss_error = float((np.abs(fit.rss.numpy() - rss) / rss).max())
    return ulps, se_error, rss_error


# (condition asked, seed, targets, intercept, weighted, noise): measured condition 590-850;
# errors measured (Cholesky / Householder): coefficients 232/329, 0.2/0.2, 8595/38457, 378/436,
# 558/2249 ulps; standard errors 0.8e-15/5.8e-15 ... 1.5e-15/5.3e-15; RSS 0 to 2.8e-15 both
NEAR_BOUND = [
    (1e3, 1, 1, True, False, 1.0),
    (1e3, 2, 3, True, False, 1e-6),
    (1e3, 3, 3, False, False, 1.0),
    (1e3, 4, 1, True, True, 1.0),
    (8e2, 5, 2, True, False, 1e2),
]


@pytest.mark.parametrize(("condition", "seed", "k", "intercept", "weighted", "noise"), NEAR_BOUND)
def test_near_the_bound_the_cholesky_route_is_as_accurate_as_householders(
    condition: float,
    seed: int,
    k: int,
    intercept: bool,
    weighted: bool,
    noise: float,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Errors against exact rationals, each route forced: the coefficients within 4 times the
    # Householder route's error (the fixed points of both refinements are about
    # condition² · eps · ||r|| / ||A|| from the solution, with other constants), the standard
    # errors within twice its error and below 1e-14 (one Cholesky alone: about
    # condition² · eps, 1e-12 to 1e-11 here), the RSS within 4 eps.
    n, d = 2000, 6
    X, Y = _design(n, d, k, condition, seed, noise)
    if not intercept:
        X = X - X.mean(axis=0)
    w = np.random.default_rng(seed).uniform(0.2, 3.0, n) if weighted else None
    result, factored = lstsq.solve_arrays(X, Y, intercept, "aliased", w)
    assert factored is not None and factored.a is None  # the default route: Cholesky
    assert lstsq._ONE_CHOLESKY < result.condition_number <= lstsq._SNE_CONDITION
    Z, rss, se = _exact(factored.A, factored.B, n - d - int(intercept))
    errors = {}
    for route in ("cholesky", "householder"):
        _route(monkeypatch, route)
        errors[route] = _errors(gradfit.ols(X, Y, fit_intercept=intercept, weights=w), Z, rss, se)
    (coef, se_error, rss_error), (coef_qr, se_qr, rss_qr) = errors.values()
    assert coef <= 4 * max(coef_qr, 4.0)
    assert se_error <= 2 * max(se_qr, 4 * EPS) and se_error <= 1e-14
    assert rss_error <= 2 * max(rss_qr, 4 * EPS)


def test_one_cholesky_alone_loses_the_standard_errors_near_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # why the second Cholesky: without it (the bound of one Cholesky raised), the standard
    # errors at condition ~900 are about condition² · eps off
    n, d = 2000, 6
    X, Y = _design(n, d, 1, 1e3, seed=1)
    _, factored = lstsq.solve_arrays(X, Y, True)
    assert factored is not None
    _, _, se = _exact(factored.A, factored.B, n - d - 1)
    monkeypatch.setattr(lstsq, "_ONE_CHOLESKY", math.inf)
    _, se_error, _ = _errors(gradfit.ols(X, Y), np.zeros((d, 1)) + 1, np.ones(1), se)
    assert se_error > 1e-13


@pytest.mark.parametrize(("condition", "cholesky"), [(3.0, True), (6e2, True), (3e3, False)])
def test_the_route_on_each_side_of_the_bounds(
    condition: float, cholesky: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # condition <= 4: one Cholesky; up to the bound: two; beyond it Householder's QR; and the
    # refinement on the Cholesky route settles within 2 extended residuals (contraction about
    # condition² · eps per step, measured 2^-20 or less up to the bound)
    X, Y = _design(3000, 5, 2, condition, seed=6)
    second = []
    real_second = lstsq._second_cholesky
    monkeypatch.setattr(lstsq, "_second_cholesky", lambda *a: second.append(1) or real_second(*a))
    calls = []
    real_residual = lstsq.residual_split
    monkeypatch.setattr(lstsq, "residual_split", lambda *a: calls.append(1) or real_residual(*a))
    result, factored = lstsq.solve_arrays(X, Y, True)
    assert factored is not None
    assert (factored.a is None) == cholesky
    assert (result.condition_number <= lstsq._SNE_CONDITION) == cholesky
    assert bool(second) == (cholesky and result.condition_number > lstsq._ONE_CHOLESKY)
    if cholesky:
        assert 1 <= len(calls) <= 2


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_effects_are_the_same_on_every_route(
    fit_intercept: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the signs of a positive diagonal of R: the Householder route's rows turned, the
    # Cholesky route's and the statistics' as they are; in memory equal to streamed
    n, d, k = 400, 4, 2
    X, Y = _design(n, d, k, 50.0, seed=9, noise=0.5)
    effects = {}
    for route in ("cholesky", "householder"):
        _route(monkeypatch, route)
        fit = gradfit.ols(X, Y, fit_intercept=fit_intercept)
        assert fit.effects is not None
        effects[route] = fit.effects.numpy()
    scale = np.abs(effects["householder"]).max()
    np.testing.assert_allclose(
        effects["cholesky"], effects["householder"], rtol=0, atol=1e-12 * scale
    )
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    batches = [(Xt[i : i + 97], Yt[i : i + 97]) for i in range(0, n, 97)]
    for statistics in (SufficientStats.compute(Xt, Yt), SufficientStats.from_batches(batches)):
        streamed = ols_from_stats(statistics, fit.weight, fit.bias, fit_intercept=fit_intercept)
        assert streamed.effects is not None
        np.testing.assert_allclose(
            streamed.effects.numpy(), effects["householder"], rtol=0, atol=1e-9 * scale
        )
    # Householder's own diagonal has negative entries here: the turn is tested
    a, _ = torch.geqrf(
        torch.from_numpy(np.ascontiguousarray(X - X.mean(0) if fit_intercept else X))
    )
    assert bool((torch.diagonal(a) < 0).any())


def test_effects_of_a_rank_deficient_fit_are_those_of_its_kept_columns() -> None:
    # the aliased design is factored by Householder (the QR of the kept columns), the kept
    # columns alone by Cholesky: the same effects, signs included
    X, Y = _design(500, 4, 2, 10.0, seed=12)
    X = np.column_stack([X[:, :2], X[:, 0] - 2.0 * X[:, 1], X[:, 2:]])
    with pytest.warns(gradfit.RankDeficiencyWarning):
        deficient = gradfit.ols(X, Y)
    kept = gradfit.ols(X[:, [0, 1, 3, 4]], Y)
    assert deficient.effects is not None and kept.effects is not None
    scale = np.abs(kept.effects.numpy()).max()
    np.testing.assert_allclose(
        deficient.effects.numpy()[:, [0, 1, 3, 4]], kept.effects.numpy(), rtol=0, atol=1e-12 * scale
    )
    assert bool((deficient.effects.numpy()[:, 2] == 0).all())
