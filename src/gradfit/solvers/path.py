"""Regularization paths and exact K-fold cross-validation from sufficient statistics.

The objective, per target ``t`` (that of :class:`~gradfit.GradientDescentRegressor` with
``alpha`` and ``l1_ratio``, which is scikit-learn's ``ElasticNet`` per target, up to the
factor ``2/k`` that does not move the minimiser)::

    (1/(2n)) ||y_t - X b - c||² + alpha * l1_ratio * ||b||_1 + alpha * (1 - l1_ratio)/2 * ||b||²

(weighted rows: ``Σ w_i r_i² / (2 Σ w_i)``, as scikit-learn's ``sample_weight``). It depends on
the rows only through :class:`~gradfit.solvers.stats.SufficientStats`: with an intercept the
best ``c`` is ``ybar - b'zbar`` and what is left is the quadratic ``1/2 b'Szz b - Szy'b +
syy/2`` plus the penalty (without one, the same in the uncentred moments). So

* **ridge** (``l1_ratio = 0``) for every alpha comes from one symmetric eigendecomposition
  ``Szz = U diag(λ) U'``: ``b(α) = U diag(1 / (λ + α)) U' Szy`` (:func:`ridge_path`);
* **lasso and elastic net** by coordinate descent on the Gram matrix, warm-started down the
  path and stopped on scikit-learn's duality gap (:mod:`gradfit.solvers.path_kernels`);
* **K-fold cross-validation** needs one pass: the statistics of each fold. A training set's
  statistics are those of the other folds merged (:meth:`SufficientStats.merge`, Chan's update:
  no subtraction, so no cancellation however small the fold is against the total), and the
  validation error of any model on a fold is a quadratic form in that fold's statistics
  (:meth:`SufficientStats.per_target_mse`), exact, with no pass over its rows. The work after
  the pass grows with K, the alphas and d², never with the rows; the same fold statistics can
  come from memory, a stream or ranks merged under torchrun.

``standardize=True`` (as the estimators' default) solves each problem on features scaled by the
standard deviations of its own rows (the training fold's, in cross-validation, as glmnet and a
:class:`~gradfit.GradientDescentRegressor` fitted on the fold do): the penalty applies to the
standardized coefficients; coefficients are returned in the original units.

The pieces: :mod:`gradfit.solvers.penalized` (the problem from the statistics, the alpha grid
of scikit-learn and glmnet, the solutions along it), :mod:`gradfit.solvers.fold_stats` (each
fold's statistics in one pass, and its training statistics) and
:mod:`gradfit.solvers.cross_validation` (the folds' errors, the rules "min" and "1se" that
choose, the refit); their names are imported here, where their callers find them. This module
holds :func:`path`, the path of arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gradfit.errors import ValidationError
from gradfit.solvers.cross_validation import (
    CrossValidation,
    CVChoice,
    choose,
    cross_validate,
    cv_errors,
    cv_mse_path,
    select_targets,
)
from gradfit.solvers.cross_validation import validation_mse as validation_mse
from gradfit.solvers.fold_stats import (
    fold_pairs,
    fold_statistics,
    fold_statistics_from_batches,
    fold_statistics_from_columns,
    training_statistics,
)
from gradfit.solvers.penalized import RIDGE_GRID_L1_RATIO as RIDGE_GRID_L1_RATIO
from gradfit.solvers.penalized import (
    Array,
    PathResult,
    Quadratic,
    alpha_grid,
    problem_path,
    ridge_path,
)
from gradfit.solvers.penalized import alpha_max as alpha_max
from gradfit.solvers.penalized import check_alphas as check_alphas
from gradfit.solvers.penalized import check_eps as check_eps
from gradfit.solvers.penalized import check_path_settings as check_path_settings
from gradfit.solvers.stats import SufficientStats
from gradfit.validation import check_weights

__all__ = [
    "CVChoice",
    "CrossValidation",
    "PathResult",
    "Quadratic",
    "alpha_grid",
    "choose",
    "cross_validate",
    "cv_errors",
    "cv_mse_path",
    "fold_pairs",
    "fold_statistics",
    "fold_statistics_from_batches",
    "fold_statistics_from_columns",
    "path",
    "problem_path",
    "ridge_path",
    "select_targets",
    "training_statistics",
]


def path(
    X: Any,
    Y: Any,
    alphas: Any = None,
    l1_ratio: float = 1.0,
    *,
    n_alphas: int = 100,
    eps: float | None = None,
    fit_intercept: bool = True,
    standardize: bool = False,
    sample_weight: Any = None,
    tol: float = 1e-4,
    max_iter: int = 1000,
) -> tuple[Array, Array, Array]:
    """Coefficients along a regularization path, as scikit-learn's ``enet_path`` /
    ``lasso_path`` and glmnet (one pass over the rows, then work in d² per alpha).

    Parameters
    ----------
    X : array-like (n, d); Y : array-like (n,) or (n, k)
    alphas : list of penalties, or None for the grid of ``n_alphas`` values from
        ``alpha_max`` down to ``eps * alpha_max`` (:func:`alpha_grid`; ``eps`` None: 1e-3
        with an L1 part, scikit-learn's, 1e-4 for ridge, glmnet's); solved in decreasing
        order and returned so.
    l1_ratio : float in [0, 1]; 1 is the lasso, 0 ridge (closed form)
    fit_intercept, standardize : as :class:`~gradfit.GradientDescentRegressor` (``standardize``
        defaults to False here, as ``enet_path``)
    sample_weight : (n,) row weights, or None
    tol, max_iter : coordinate descent's stopping rule (duality gap below ``tol * var(y)``)
        and its limit of sweeps per alpha

    Returns
    -------
    alphas : (A,) decreasing
    coefs : (k, d, A), or (d, A) when Y is 1-D (``enet_path``'s layout)
    intercepts : (k, A), or (A,) when Y is 1-D
    """
    check_path_settings(l1_ratio, tol, max_iter)
    X64 = np.asarray(X, dtype=np.float64)
    Y64 = np.asarray(Y, dtype=np.float64)
    one_d = Y64.ndim == 1
    Y2 = Y64.reshape(-1, 1) if one_d else Y64
    if X64.ndim != 2 or Y2.ndim != 2 or X64.shape[0] != Y2.shape[0]:
        raise ValidationError(
            f"X must be (n, d) and Y (n,) or (n, k) with the same rows, got {X64.shape} and "
            f"{Y64.shape}"
        )
    if X64.shape[0] == 0:
        raise ValidationError("no data rows: the path needs at least one row")
    if not (np.all(np.isfinite(X64)) and np.all(np.isfinite(Y2))):
        raise ValidationError("X and Y must be finite (no NaN or inf)")
    weights = None
    if sample_weight is not None:
        weights = check_weights(sample_weight, X64.shape[0]).numpy()
    stats = SufficientStats.compute(
        torch.from_numpy(np.ascontiguousarray(X64)),
        torch.from_numpy(np.ascontiguousarray(Y2)),
        weights=weights,
    )
    problem = Quadratic.from_stats(stats, fit_intercept=fit_intercept, standardize=standardize)
    if alphas is None:
        grid = alpha_grid(problem, l1_ratio, n_alphas, eps)
    else:
        grid = np.sort(check_alphas(alphas))[::-1].copy()
    result = problem_path(problem, grid, float(l1_ratio), tol=tol, max_iter=max_iter)
    coef, intercept = problem.original_units(result.coefs)  # (A, k, d), (A, k)
    if not fit_intercept:
        intercept = np.zeros_like(intercept)
    coefs_out = np.transpose(coef, (1, 2, 0))  # (k, d, A)
    intercepts_out = intercept.T  # (k, A)
    if one_d:
        return grid, coefs_out[0], intercepts_out[0]
    return grid, coefs_out, intercepts_out
