"""Regularization paths and cross-validation statistics (gradfit.solvers.path) against
scikit-learn's ``enet_path`` / ``lasso_path`` / ``ElasticNet``, closed-form ridge and direct
computations on the rows.

Tolerances:

* paths against scikit-learn, both solved to a duality gap of ``1e-13 * var(y)`` (scikit-learn's
  own stopping rule, with its ``tol`` set that low): the two minimise the same strictly convex
  objective (or, for the lasso on full-rank data, one with a unique minimiser), so they agree far
  below ``PATH_RTOL = 1e-6`` relative to the largest coefficient at each alpha, the issue's
  figure; a wrong factor in the penalty, the grid or the centring moves them by O(1);
* ridge against its closed form on the rows: one eigendecomposition against one solve, both
  backward stable on these well-conditioned problems, ``1e-10``;
* cross-validation statistics against the rows: the same quantities through centred moments,
  ``1e-12``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes
from sklearn.linear_model import ElasticNet, Ridge, enet_path, lasso_path

import gradfit
from gradfit.errors import ValidationError
from gradfit.estimator import GradientDescentRegressor
from gradfit.solvers import path as paths
from gradfit.solvers.stats import SufficientStats

pytestmark = pytest.mark.usefixtures("one_thread")

PATH_RTOL = 1e-6
RIDGE_RTOL = 1e-10
STATS_RTOL = 1e-12
TIGHT = {"tol": 1e-13, "max_iter": 200_000}


def _diabetes() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_diabetes(return_X_y=True)
    return X, y


def _correlated(seed: int = 0, n: int = 150, d: int = 8, rho: float = 0.95) -> tuple:
    """Features with correlation ``rho^|i-j|`` (AR(1)), a sparse truth and noise."""
    rng = np.random.default_rng(seed)
    C = rho ** np.abs(np.subtract.outer(np.arange(d), np.arange(d)))
    X = rng.normal(size=(n, d)) @ np.linalg.cholesky(C).T * 3.0 + 5.0
    beta = np.zeros(d)
    beta[[0, 3, 5]] = [2.0, -1.5, 1.0]
    return X, X @ beta + 1.0 + rng.normal(size=n)


def _many_targets(seed: int = 1, n: int = 80, d: int = 4, k: int = 9) -> tuple:
    """More targets than features."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * [1.0, 2.0, 0.5, 3.0]
    W = rng.normal(size=(k, d)) * (rng.uniform(size=(k, d)) > 0.4)
    return X, X @ W.T + rng.normal(size=k) + 0.5 * rng.normal(size=(n, k))


def _rank_deficient(seed: int = 2, n: int = 30, d: int = 40) -> tuple:
    """Fewer rows than features, and one feature an exact copy of another."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X[:, 7] = X[:, 3]
    return X, X[:, :5] @ np.array([1.0, -2.0, 0.5, 1.5, 1.0]) + 0.1 * rng.normal(size=n)


DATA = {
    "diabetes": _diabetes,
    "correlated": _correlated,
    "many_targets": _many_targets,
    "rank_deficient": _rank_deficient,
}


def _assert_path_close(ours: np.ndarray, theirs: np.ndarray) -> None:
    """(d, A) coefficients, relative to the largest at each alpha (at least 1e-8 of the largest
    on the path: at alpha_max both are 0 up to rounding)."""
    scale = np.maximum(np.abs(theirs).max(axis=0), 1e-8 * np.abs(theirs).max())
    np.testing.assert_array_less(np.abs(ours - theirs).max(axis=0) / scale, PATH_RTOL)


# ---------------------------------------------------------------------------------------------
# paths against scikit-learn


@pytest.mark.parametrize("name", sorted(DATA))
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5, 0.1])
def test_path_equals_sklearns_enet_path(name: str, l1_ratio: float) -> None:
    """The same alphas (our grid, which is scikit-learn's: checked below), the intercept by
    centring as scikit-learn does; each target against its own ``enet_path``. The lasso on the
    rank-deficient data has no unique minimiser, so it runs on the elastic nets only there."""
    if name == "rank_deficient" and l1_ratio == 1.0:
        pytest.skip("the lasso's minimiser is not unique with a duplicated feature")
    X, Y = DATA[name]()
    alphas, coefs, intercepts = gradfit.path(X, Y, l1_ratio=l1_ratio, n_alphas=30, **TIGHT)
    Y2 = Y.reshape(len(Y), -1)
    coefs2 = coefs.reshape(Y2.shape[1], X.shape[1], -1)
    Xc = X - X.mean(0)
    for t in range(Y2.shape[1]):
        yc = Y2[:, t] - Y2[:, t].mean()
        _, theirs, _ = enet_path(Xc, yc, l1_ratio=l1_ratio, alphas=alphas, **TIGHT)
        _assert_path_close(coefs2[t], theirs)
        np.testing.assert_allclose(
            intercepts.reshape(Y2.shape[1], -1)[t],
            Y2[:, t].mean() - X.mean(0) @ theirs,
            rtol=PATH_RTOL,
            atol=PATH_RTOL * np.abs(Y2[:, t]).max(),
        )


@pytest.mark.parametrize("name", ["diabetes", "correlated"])
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # max_iter=1
def test_grid_equals_sklearns(name: str) -> None:
    """alpha_max = max |<x_j, y>| / (n l1_ratio) on centred data, down to eps alpha_max (one
    sweep per alpha: only the grid is compared)."""
    X, y = DATA[name]()
    Xc, yc = X - X.mean(0), y - y.mean()
    for l1_ratio in (1.0, 0.3):
        ours, _, _ = gradfit.path(X, y, l1_ratio=l1_ratio, n_alphas=25, eps=1e-2, max_iter=1)
        theirs, _, _ = enet_path(Xc, yc, l1_ratio=l1_ratio, alphas=25, eps=1e-2, max_iter=1)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    lasso, _, _ = lasso_path(Xc, yc, alphas=5)
    np.testing.assert_allclose(gradfit.path(X, y, n_alphas=5, max_iter=1)[0], lasso, rtol=1e-12)


def test_ridge_grid_is_glmnets_l1_ratio_of_one_thousandth() -> None:
    """glmnet's ridge grid: from that of l1_ratio = 0.001 for y scaled to unit variance
    (glmnet standardizes y before making its grid) down 10,000-fold (glmnet's
    lambda.min.ratio for n >= p). Ridge's optimal penalty does not depend on y's units, nor
    does the grid: on the diabetes data (sd(y) = 77) the grid in y's units ran from 2148 down
    to 2.1, every penalty far above the optimum (about 0.01); 1,000-fold from the top it ended
    at 0.028, about the largest |correlation| of a feature with y."""
    X, y = _diabetes()
    ridge, _, _ = gradfit.path(X, y, l1_ratio=0.0, n_alphas=5)
    unit = y / y.std()  # the population sd (1/n), as glmnet's
    enet, _, _ = gradfit.path(X, unit, l1_ratio=1e-3, n_alphas=5, eps=1e-4, max_iter=1)
    np.testing.assert_allclose(ridge, enet, rtol=1e-13)
    np.testing.assert_allclose(ridge[-1] / ridge[0], 1e-4, rtol=1e-13)
    lasso, _, _ = gradfit.path(X, y, n_alphas=5, max_iter=1)  # scikit-learn's 1e-3
    np.testing.assert_allclose(lasso[-1] / lasso[0], 1e-3, rtol=1e-13)
    given, _, _ = gradfit.path(X, y, l1_ratio=0.0, n_alphas=5, eps=1e-3)
    np.testing.assert_allclose(given[-1] / given[0], 1e-3, rtol=1e-13)
    for scale in (1e-3, 1e4):
        scaled, _, _ = gradfit.path(X, y * scale, l1_ratio=0.0, n_alphas=5)
        np.testing.assert_allclose(scaled, ridge, rtol=1e-13)


def test_a_grid_of_an_l1_ratio_below_one_thousandth_is_that_of_one_thousandth() -> None:
    """glmnet's clamp: alpha_max of 0 < l1_ratio < 0.001 is that of 0.001 (the lasso formula
    over a vanishing ratio ran to 10 and 100 times that: l1_ratio 1e-4 from 21480 on the
    diabetes data, where 1e-3 starts at 2148)."""
    X, y = _diabetes()
    at_clamp, _, _ = gradfit.path(X, y, l1_ratio=1e-3, n_alphas=3, max_iter=1)
    for l1_ratio in (1e-4, 1e-6):
        below, _, _ = gradfit.path(X, y, l1_ratio=l1_ratio, n_alphas=3, max_iter=1)
        np.testing.assert_allclose(below, at_clamp, rtol=1e-13)


def test_lasso_path_without_intercept_equals_sklearns() -> None:
    X, y = _correlated(3)
    alphas, coefs, intercepts = gradfit.path(X, y, fit_intercept=False, n_alphas=20, **TIGHT)
    _, theirs, _ = lasso_path(X, y, alphas=alphas, **TIGHT)
    _assert_path_close(coefs, theirs)
    assert np.all(intercepts == 0)
    # the grid is that of the uncentred data
    np.testing.assert_allclose(alphas[0], np.abs(X.T @ y).max() / len(y), rtol=1e-12)


def test_weighted_path_equals_sklearns_elastic_net_with_sample_weight() -> None:
    X, y = _correlated(4)
    w = np.random.default_rng(4).integers(0, 4, size=len(y)).astype(float)
    alphas, coefs, intercepts = gradfit.path(
        X, y, l1_ratio=0.5, n_alphas=6, sample_weight=w, **TIGHT
    )
    for a in range(len(alphas)):
        sk = ElasticNet(alpha=alphas[a], l1_ratio=0.5, **TIGHT).fit(X, y, sample_weight=w)
        np.testing.assert_allclose(coefs[:, a], sk.coef_, rtol=0, atol=PATH_RTOL * 3)
        np.testing.assert_allclose(intercepts[a], sk.intercept_, rtol=PATH_RTOL)
    # integer weights: the path of the repeated rows
    rep_alphas, rep_coefs, _ = gradfit.path(
        np.repeat(X, w.astype(int), 0),
        np.repeat(y, w.astype(int)),
        l1_ratio=0.5,
        n_alphas=6,
        **TIGHT,
    )
    np.testing.assert_allclose(rep_alphas, alphas, rtol=1e-12)
    np.testing.assert_allclose(rep_coefs, coefs, rtol=1e-9, atol=1e-10)


def test_standardized_path_is_the_path_of_standardized_features() -> None:
    """``standardize=True``: the penalty on the coefficients of ``(x - mean) / sd`` (population
    sd, as GradientDescentRegressor), reported in the original units."""
    X, y = _correlated(5)
    mean, sd = X.mean(0), X.std(0)
    alphas, coefs, intercepts = gradfit.path(
        X, y, l1_ratio=0.7, n_alphas=15, standardize=True, **TIGHT
    )
    Z = (X - mean) / sd
    grid, theirs, _ = enet_path(Z, y - y.mean(), l1_ratio=0.7, alphas=15, **TIGHT)
    np.testing.assert_allclose(alphas, grid, rtol=1e-12)
    _assert_path_close(coefs * sd[:, None], theirs)
    np.testing.assert_allclose(intercepts, y.mean() - mean @ coefs, rtol=1e-12)


@pytest.mark.parametrize("l1_ratio", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("standardize", [True, False])
def test_path_equals_gradient_descent_regressor_at_each_alpha(
    l1_ratio: float, standardize: bool
) -> None:
    """The same objective as ``GradientDescentRegressor(alpha, l1_ratio)``: its fit, run to
    convergence, reaches the path's coefficients (to 1e-5: the proximal gradient steps of an
    L1 part converge linearly and stop on the loss's relative change, well before 1e-8)."""
    X, Y = _many_targets(6, k=3)
    alphas, coefs, intercepts = gradfit.path(
        X, Y, l1_ratio=l1_ratio, n_alphas=10, standardize=standardize, **TIGHT
    )
    for a in (2, 6):
        reg = GradientDescentRegressor(
            alpha=float(alphas[a]),
            l1_ratio=l1_ratio,
            standardize=standardize,
            tol=1e-13,
            max_epochs=200_000,
        ).fit(X, Y)
        np.testing.assert_allclose(reg.coef_, coefs[:, :, a], rtol=0, atol=1e-5)
        np.testing.assert_allclose(reg.intercept_, intercepts[:, a], rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# ridge in closed form


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_ridge_path_equals_the_closed_form_at_every_alpha(fit_intercept: bool) -> None:
    X, Y = _many_targets(7)
    alphas = np.geomspace(10.0, 1e-4, 12)
    got, coefs, intercepts = gradfit.path(
        X, Y, alphas=alphas[::-1], l1_ratio=0.0, fit_intercept=fit_intercept
    )
    np.testing.assert_array_equal(got, alphas)  # returned decreasing
    n, d = X.shape
    Xc = X - X.mean(0) if fit_intercept else X
    Yc = Y - Y.mean(0) if fit_intercept else Y
    for a, alpha in enumerate(alphas):
        closed = np.linalg.solve(Xc.T @ Xc / n + alpha * np.eye(d), Xc.T @ Yc / n)  # (d, k)
        np.testing.assert_allclose(coefs[:, :, a], closed.T, rtol=RIDGE_RTOL, atol=0)
        sk = Ridge(alpha=alpha * n, fit_intercept=fit_intercept).fit(X, Y)
        np.testing.assert_allclose(coefs[:, :, a], sk.coef_, rtol=1e-9)
        expected = Y.mean(0) - X.mean(0) @ closed if fit_intercept else np.zeros(Y.shape[1])
        np.testing.assert_allclose(intercepts[:, a], expected, rtol=RIDGE_RTOL, atol=1e-12)


def test_ridge_at_zero_is_the_minimum_norm_least_squares_solution() -> None:
    X, y = _rank_deficient()
    _, coefs, _ = gradfit.path(X, y, alphas=[0.0], l1_ratio=0.0)
    Xc, yc = X - X.mean(0), y - y.mean()
    np.testing.assert_allclose(coefs[:, 0], np.linalg.pinv(Xc) @ yc, rtol=1e-8, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# cross-validation statistics


def _folds(n: int, K: int, seed: int = 0) -> list[np.ndarray]:
    ids = np.random.default_rng(seed).integers(0, K, size=n)
    return [np.nonzero(ids == f)[0] for f in range(K)]


@pytest.mark.parametrize("weighted", [False, True])
def test_training_statistics_equal_those_of_the_training_rows(weighted: bool) -> None:
    """The other folds merged = the statistics of the training rows computed directly."""
    X, Y = _many_targets(8, n=300)
    X = X + 1e4  # a large common offset: merging must not lose digits to it
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    w = torch.from_numpy(np.random.default_rng(8).uniform(0, 3, size=len(X))) if weighted else None
    tests = _folds(len(X), 5)
    train = paths.training_statistics(paths.fold_statistics(Xt, Yt, tests, w))
    for f, test in enumerate(tests):
        rows = torch.from_numpy(np.setdiff1d(np.arange(len(X)), test))
        direct = SufficientStats.compute(Xt[rows], Yt[rows], weights=None if w is None else w[rows])
        assert train[f].n == direct.n
        assert train[f].total == pytest.approx(direct.total, rel=STATS_RTOL)
        for name in ("zbar", "ybar", "Szz", "Szy", "syy"):
            torch.testing.assert_close(
                getattr(train[f], name), getattr(direct, name), rtol=STATS_RTOL, atol=1e-9
            )


@pytest.mark.parametrize("weighted", [False, True])
def test_fold_statistics_from_batches_equal_those_of_each_folds_rows(weighted: bool) -> None:
    """One pass over a stream of batches (as a file is read), each row to its fold: the same
    statistics as each fold's rows in memory; a fold no row reaches is empty."""
    X, Y = _many_targets(15, n=500)
    X = X + 1e4
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    rng = np.random.default_rng(15)
    ids = rng.integers(0, 4, size=len(X))  # fold 4 of 5 is empty
    w = torch.from_numpy(rng.uniform(0, 2, size=len(X))) if weighted else None
    edges = [0, 1, 130, 131, 377, 500]
    batches = [
        (Xt[a:b], Yt[a:b], ids[a:b]) + (() if w is None else (w[a:b],))
        for a, b in itertools.pairwise(edges)
    ]
    streamed = paths.fold_statistics_from_batches(batches, 5)
    direct = paths.fold_statistics(Xt, Yt, [np.nonzero(ids == f)[0] for f in range(4)], w)
    assert streamed[4].n == 0
    for f in range(4):
        assert streamed[f].n == direct[f].n
        assert streamed[f].total == pytest.approx(direct[f].total, rel=STATS_RTOL)
        for name in ("zbar", "ybar", "Szz", "Szy", "syy"):
            torch.testing.assert_close(
                getattr(streamed[f], name), getattr(direct[f], name), rtol=STATS_RTOL, atol=1e-9
            )
    with pytest.raises(ValidationError, match=r"fold ids must be one per row, in 0 \.\. 2"):
        paths.fold_statistics_from_batches([(Xt, Yt, ids)], 3)


@pytest.mark.parametrize("weighted", [False, True])
def test_fold_statistics_from_columns_equal_those_of_each_folds_rows(weighted: bool) -> None:
    """A stream read as columns (a file's batches): each fold's rows gathered into the Gram's
    chunks give each fold's statistics in memory; rows of weight 0 count nowhere (not even in
    ``n``); a fold no row reaches is empty. Chunks of 2**19 / (p + 1) rows: a batch of 70,000
    rows and 8 columns crosses a chunk boundary."""
    rng = np.random.default_rng(16)
    n, d = 70_500, 5
    X = rng.normal(size=(n, d)) * [1.0, 10.0, 0.1, 3.0, 1.0] + 1e4
    Y = X[:, :3] @ rng.normal(size=(3, 3)) + rng.normal(size=(n, 3))
    ids = rng.integers(0, 4, size=n)  # fold 4 of 5 is empty
    w = rng.uniform(0, 2, size=n) if weighted else None
    if w is not None:
        w[::7] = 0.0
    edges = [0, 1, 300, 301, 70_301, n]
    batches = [
        (
            [np.ascontiguousarray(c) for c in np.hstack([X[a:b], Y[a:b]]).T],
            ids[a:b],
            None if w is None else w[a:b],
        )
        for a, b in itertools.pairwise(edges)
    ]
    streamed = paths.fold_statistics_from_columns(batches, 5, d)
    keep = np.ones(n, dtype=bool) if w is None else w > 0
    Xt, Yt = torch.from_numpy(X[keep]), torch.from_numpy(Y[keep])
    wt = None if w is None else torch.from_numpy(w[keep])
    direct = paths.fold_statistics(Xt, Yt, [np.nonzero(ids[keep] == f)[0] for f in range(4)], wt)
    assert streamed[4].n == 0
    for f in range(4):
        assert streamed[f].n == direct[f].n == streamed[f].n_positive
        assert streamed[f].total == pytest.approx(direct[f].total, rel=STATS_RTOL)
        if weighted:
            assert streamed[f].log_weight_sum == pytest.approx(direct[f].log_weight_sum)
        for name in ("zbar", "ybar", "Szz", "Szy", "syy"):
            torch.testing.assert_close(
                getattr(streamed[f], name), getattr(direct[f], name), rtol=STATS_RTOL, atol=1e-9
            )
    with pytest.raises(ValidationError, match=r"fold ids must be in 0 \.\. 2"):
        paths.fold_statistics_from_columns([batches[3]], 3, d)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("l1_ratio", [0.0, 0.5])
def test_cv_mse_path_equals_direct_errors_on_the_rows(fit_intercept: bool, l1_ratio: float) -> None:
    """Each fold's error from its statistics = the mean squared residual of the fold's rows
    under the model fitted to the other rows (fitted here from the training rows directly)."""
    X, Y = _many_targets(9, n=200, k=3)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    tests = _folds(len(X), 4, seed=9)
    test_stats = paths.fold_statistics(Xt, Yt, tests)
    train_stats = paths.training_statistics(test_stats)
    grid = np.geomspace(1.0, 1e-3, 7)[None, :]
    mse, not_converged = paths.cv_mse_path(
        train_stats, test_stats, grid, [l1_ratio], fit_intercept=fit_intercept, **TIGHT
    )
    assert mse.shape == (4, 7, 1, 3) and not_converged == 0
    for f, test in enumerate(tests):
        train = np.setdiff1d(np.arange(len(X)), test)
        _, coefs, intercepts = gradfit.path(
            X[train],
            Y[train],
            alphas=grid[0],
            l1_ratio=l1_ratio,
            fit_intercept=fit_intercept,
            **TIGHT,
        )
        for a in range(7):
            pred = X[test] @ coefs[:, :, a].T + intercepts[:, a]
            direct = ((pred - Y[test]) ** 2).mean(0)
            np.testing.assert_allclose(mse[f, a, 0], direct, rtol=STATS_RTOL)


def test_validation_mse_is_weighted_by_the_fold_weights() -> None:
    X, Y = _many_targets(10, n=60, k=2)
    w = np.random.default_rng(10).uniform(0.1, 2.0, size=60)
    stats = SufficientStats.compute(torch.from_numpy(X), torch.from_numpy(Y), weights=w)
    coef = np.random.default_rng(11).normal(size=(3, 2, X.shape[1]))
    intercept = np.random.default_rng(12).normal(size=(3, 2))
    got = paths.validation_mse(stats, coef, intercept)
    for m in range(3):
        r = X @ coef[m].T + intercept[m] - Y
        np.testing.assert_allclose(got[m], (w[:, None] * r * r).sum(0) / w.sum(), rtol=STATS_RTOL)


# ---------------------------------------------------------------------------------------------
# the choice


def test_choose_min_and_1se_on_a_hand_checked_case() -> None:
    """Four folds, five alphas (decreasing), one l1 ratio, one target. Fold errors by alpha::

        alpha 0: 10 12 11 11  mean 11.00
        alpha 1:  6  8  7  7  mean  7.00, sd 0.8165, se 0.4082
        alpha 2:  5  7  6  6  mean  6.00, sd 0.8165, se 0.4082  <- minimum
        alpha 3:  6  8  6  6  mean  6.50  (<= 6.4082? no)
        alpha 4:  7  9  7  7  mean  7.50

    min: alpha 2. 1se: the largest alpha with mean <= 6 + 0.4082 = 6.408: alpha 2 itself
    (alpha 1's 7.0 is above). With alpha 1's folds at 5.5 7.5 6 6 (mean 6.25) it is alpha 1."""
    folds = np.array(
        [[10, 12, 11, 11], [6, 8, 7, 7], [5, 7, 6, 6], [6, 8, 6, 6], [7, 9, 7, 7]], dtype=float
    ).T[:, :, None, None]  # (K, A, L, k)
    assert paths.choose(folds, per_target=True, selection="min").alpha_index.tolist() == [2]
    assert paths.choose(folds, per_target=True, selection="1se").alpha_index.tolist() == [2]
    folds[:, 1, 0, 0] = [5.5, 7.5, 6.0, 6.0]
    assert paths.choose(folds, per_target=True, selection="min").alpha_index.tolist() == [2]
    assert paths.choose(folds, per_target=True, selection="1se").alpha_index.tolist() == [1]
    mean, se = paths.cv_errors(folds)
    assert mean[2, 0, 0] == 6.0
    assert se[2, 0, 0] == pytest.approx(np.sqrt(2 / 3) / 2, rel=1e-15)


def test_choose_shared_alpha_uses_the_error_averaged_over_targets() -> None:
    rng = np.random.default_rng(13)
    mse = rng.uniform(1, 2, size=(5, 8, 2, 3))
    shared = paths.choose(mse, per_target=False)
    own = paths.choose(mse, per_target=True)
    mean = mse.mean(axis=(0, 3))  # (A, L)
    a, r = np.unravel_index(np.argmin(mean.T), mean.T.shape)[::-1]
    assert (shared.alpha_index.tolist(), shared.l1_index.tolist()) == ([a], [r])
    for t in range(3):
        m = mse[..., t].mean(0)
        best = np.unravel_index(np.argmin(m.T), m.T.shape)
        assert (own.l1_index[t], own.alpha_index[t]) == best


def test_bad_settings_are_refused_in_one_line() -> None:
    X, y = _diabetes()
    for kwargs, words in (
        ({"l1_ratio": 1.5}, "l1_ratio must be in [0, 1]"),
        ({"n_alphas": 0}, "at least 1"),
        ({"alphas": [1.0, -1.0]}, "finite and >= 0"),
        ({"eps": 2.0}, "eps must be in (0, 1)"),
        ({"max_iter": 0}, "max_iter"),
        ({"sample_weight": -np.ones(len(y))}, "sample_weight at row 0 (counted from 0) is neg"),
    ):
        with pytest.raises(ValidationError) as info:
            gradfit.path(X, y, **kwargs)
        assert words in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ValidationError, match="must be finite"):
        gradfit.path(np.full((3, 2), np.nan), np.zeros(3))


def test_path_without_intercept_standardized_equals_gradient_descent_regressor() -> None:
    """No intercept and standardize: the features scaled by their root mean squares (the
    engine's rule), uncentred moments."""
    X, Y = _many_targets(14, k=2)
    X = X + 2.0
    alphas, coefs, intercepts = gradfit.path(
        X, Y, l1_ratio=0.5, n_alphas=8, fit_intercept=False, standardize=True, **TIGHT
    )
    assert np.all(intercepts == 0)
    reg = GradientDescentRegressor(
        alpha=float(alphas[4]),
        l1_ratio=0.5,
        fit_intercept=False,
        standardize=True,
        tol=1e-13,
        max_epochs=200_000,
    ).fit(X, Y)
    np.testing.assert_allclose(reg.coef_, coefs[:, :, 4], rtol=0, atol=1e-5)
    rms = np.sqrt((X**2).mean(0))
    _, theirs, _ = enet_path(X / rms, Y[:, 0], l1_ratio=0.5, alphas=alphas, **TIGHT)
    _assert_path_close(coefs[0] * rms[:, None], theirs)
