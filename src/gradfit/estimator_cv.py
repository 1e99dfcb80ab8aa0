"""Choosing the penalty by K-fold cross-validation from one pass over the rows.

:class:`GradientDescentRegressorCV` is to :class:`~gradfit.GradientDescentRegressor` what
scikit-learn's ``ElasticNetCV`` is to ``ElasticNet``: it fits the whole regularization path on
each training fold, chooses ``alpha`` (and ``l1_ratio``) on the validation error, and refits on
all rows. It does so from sufficient statistics (:mod:`gradfit.solvers.path`): each fold's
statistics are gathered once, every training set is the other folds merged, and every
validation error is a quadratic form in its fold's statistics, so the work after the one pass
does not grow with the rows. The refit at the chosen penalty is coordinate descent on the
statistics of all rows: ``GradientDescentRegressor(alpha=alpha_, l1_ratio=l1_ratio_)`` fitted to
convergence reaches the same coefficients.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import check_cv
from sklearn.utils.validation import check_is_fitted, validate_data

from gradfit.errors import ValidationError
from gradfit.estimator import ConvergenceWarning, row_weights
from gradfit.solvers import path as paths
from gradfit.solvers.rows import fold_ids, holdout_seed
from gradfit.solvers.stats import SufficientStats
from gradfit.validation import check_weights

__all__ = ["GradientDescentRegressorCV"]


class GradientDescentRegressorCV(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Linear regression with the penalty chosen by K-fold cross-validation, exactly, from the
    folds' sufficient statistics (one pass over the rows).

    The objective is :class:`~gradfit.GradientDescentRegressor`'s (scikit-learn's
    ``ElasticNet`` per target; on the standardized features when ``standardize=True``)::

        (1/(2n)) ||y_t - X b - c||² + alpha * l1_ratio * ||b||_1 + alpha * (1-l1_ratio)/2 ||b||²

    Parameters
    ----------
    alphas : int or array-like, default=100
        A count: that many values log-spaced from ``alpha_max`` (the smallest penalty that
        zeroes every coefficient of every target, on all rows) down to ``eps * alpha_max``, one
        grid per l1 ratio (ridge: the grid of ``l1_ratio=0.001``, as glmnet); with
        ``alpha_per_target`` and several targets, one grid per target from its own
        ``alpha_max`` (each target's path is then that of the target fitted alone). Or the
        penalties themselves (sorted decreasing).
    l1_ratio : float or array-like of floats in [0, 1], default=0.0
        The elastic-net mix(es) to try: 0 ridge (closed form per alpha), 1 the lasso.
    cv : int, array-like of fold ids, scikit-learn splitter or iterable of (train, test), default=5
        An int K (None: 5): each row's fold from the seeded row hash of
        :func:`gradfit.solvers.rows.fold_ids` (the rule a stream or torchrun uses; folds of
        about n/K rows, not contiguous blocks as scikit-learn's ``KFold``). An array of n fold
        ids: those folds. A splitter or a list of splits: each split's test rows; when the test
        sets partition the rows and each training set is the rest, the training statistics are
        the other folds merged, otherwise computed from the training rows. Folds whose test
        rows (or their weights) are empty are left out.
    alpha_per_target : bool, default=False
        False: one alpha (and l1 ratio) for all targets, chosen on the error averaged over the
        targets. True: each target its own, as ``RidgeCV(alpha_per_target=True)``.
    selection : {"min", "1se"}, default="min"
        "min": the smallest mean CV error; "1se": glmnet's ``lambda.1se``, the largest alpha
        whose mean error is within one standard error of the minimum.
    eps : float in (0, 1) or None, default=None
        The grid's depth (``alphas`` a count): the smallest alpha is ``eps * alpha_max``.
        None: scikit-learn's 1e-3 for an l1 ratio above 0, glmnet's 1e-4 for ridge (whose
        ``alpha_max``, that of l1 ratio 0.001 on unit-variance y, would end a 1e-3 grid at
        about the largest |correlation| of a feature with y: a strong shrinkage).
    tol : float >= 0, default=1e-4
        Coordinate descent stops when the duality gap is below ``tol * var(y)``
        (scikit-learn's rule).
    max_iter : int >= 1, default=1000
        Sweeps over the coordinates per alpha.
    fit_intercept : bool, default=True
    standardize : bool, default=True
        Penalize the coefficients of standardized features (each training fold's own
        standard deviations), as ``GradientDescentRegressor``; False: of the raw features, as
        scikit-learn's ``ElasticNetCV``.
    random_state : int or None, default=None
        Seed of the row hash that makes the folds when ``cv`` is an int (None: fresh).

    Attributes
    ----------
    alpha_ : float, or ndarray (n_targets,) with ``alpha_per_target``
    l1_ratio_ : float, or ndarray (n_targets,) with ``alpha_per_target``
    alphas_ : ndarray (n_l1_ratios, n_alphas), decreasing
        (n_targets, n_l1_ratios, n_alphas) with per-target grids (see ``alphas``).
    l1_ratios_ : ndarray (n_l1_ratios,)
    mse_path_ : ndarray (n_folds, n_alphas, n_l1_ratios, n_targets)
        Each fold's validation mean squared error (weighted, with ``sample_weight``).
    cv_mean_, cv_se_ : ndarray (n_alphas, n_l1_ratios, n_targets)
        The mean over folds and its standard error.
    coef_ : ndarray (n_targets, n_features), or (n_features,) when y is 1-D
    intercept_ : ndarray (n_targets,), or float when y is 1-D
    n_iter_ : int
        Sweeps of the refit (1 for ridge).
    n_features_in_ : int
    feature_names_in_ : ndarray of str, when X has string column names
    """

    # Learned attributes (set by fit; annotations only, no class attributes).
    alpha_: Any  # float, or ndarray (n_targets,) with alpha_per_target
    l1_ratio_: Any
    coef_: np.ndarray
    intercept_: Any  # ndarray (n_targets,), or float when y is 1-D

    def __init__(
        self,
        *,
        alphas: int | Iterable[float] = 100,
        l1_ratio: float | Iterable[float] = 0.0,
        cv: Any = 5,
        alpha_per_target: bool = False,
        selection: str = "min",
        eps: float | None = None,
        tol: float = 1e-4,
        max_iter: int = 1000,
        fit_intercept: bool = True,
        standardize: bool = True,
        random_state: int | None = None,
    ) -> None:
        self.alphas = alphas
        self.l1_ratio = l1_ratio
        self.cv = cv
        self.alpha_per_target = alpha_per_target
        self.selection = selection
        self.eps = eps
        self.tol = tol
        self.max_iter = max_iter
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.random_state = random_state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    # ------------------------------------------------------------------------- parameters

    def _l1_ratios(self) -> list[float]:
        values = np.atleast_1d(np.asarray(self.l1_ratio, dtype=np.float64))
        if values.ndim != 1 or values.size == 0:
            raise ValidationError(f"l1_ratio must be a number or a list, got {self.l1_ratio!r}")
        for v in values:
            paths.check_path_settings(float(v), self.tol, self.max_iter)
        return [float(v) for v in values]

    def _check(self) -> None:
        for name in ("fit_intercept", "standardize", "alpha_per_target"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValidationError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.selection not in ("min", "1se"):
            raise ValidationError(f"selection must be 'min' or '1se', got {self.selection!r}")
        paths.check_eps(self.eps)

    # ------------------------------------------------------------------------- folds

    def _folds(
        self, X: np.ndarray, y: np.ndarray, n: int
    ) -> tuple[np.ndarray | list[np.ndarray], list[np.ndarray] | None]:
        """Each row's fold (0 .. K-1), or each split's test rows and (when the test sets do not
        partition the rows with the rest as training) its training rows."""
        cv = 5 if self.cv is None else self.cv
        if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
            if int(cv) < 2:
                raise ValidationError(f"cv must be at least 2 folds, got {cv}")
            rs = self.random_state
            if rs is not None and not (
                isinstance(rs, numbers.Integral) and not isinstance(rs, bool) and int(rs) >= 0
            ):
                raise ValidationError(
                    f"random_state must be None or a non-negative int (the seed of the folds' "
                    f"row hash), got {rs!r}"
                )
            seed = holdout_seed(None if rs is None else int(rs))
            ids = fold_ids(0, 1, n, int(cv), seed)
            return ids, None
        if not hasattr(cv, "split") and not isinstance(cv, (str, bytes)):
            as_array = np.asarray(cv) if not isinstance(cv, Iterable) or _flat(cv) else None
            if as_array is not None and as_array.ndim == 1:
                if as_array.shape[0] != n or not np.issubdtype(as_array.dtype, np.integer):
                    raise ValidationError(
                        f"cv as fold ids must be {n} integers (one per row), got "
                        f"{as_array.shape[0]} values of type {as_array.dtype}"
                    )
                _, inverse = np.unique(as_array, return_inverse=True)
                return inverse.astype(np.int64), None
        splitter = check_cv(cv)
        tests, trains = [], []
        for train, test in splitter.split(X, y):
            tests.append(np.asarray(test, dtype=np.int64))
            trains.append(np.asarray(train, dtype=np.int64))
        if not tests:
            raise ValidationError("cv gave no splits")
        covered = np.concatenate(tests)
        partition = covered.shape[0] == n and np.unique(covered).shape[0] == n
        if partition:
            for train, test in zip(trains, tests, strict=True):
                if train.shape[0] + test.shape[0] != n or np.intersect1d(train, test).size:
                    partition = False
                    break
        return tests, None if partition else trains

    # ------------------------------------------------------------------------- fit

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> GradientDescentRegressorCV:
        """Cross-validate the path and refit on all rows at the chosen penalty.

        Parameters
        ----------
        X : array-like (n_samples, n_features)
        y : array-like (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like (n_samples,) or float, optional
            Row weights (scikit-learn's meaning): weighted statistics, weighted fold errors; a
            number weighs every row alike.
        """
        self._check()
        ratios = self._l1_ratios()
        X, y = validate_data(
            self, X, y, dtype=np.float64, order="C", y_numeric=True, multi_output=True
        )
        y = np.asarray(y, dtype=np.float64)
        one_d = y.ndim == 1
        Y = y.reshape(-1, 1) if one_d else y
        n = X.shape[0]
        if n < 2:
            raise ValidationError(
                f"cross-validation needs at least 2 samples, got n_samples = {n} (1 sample)"
            )
        Xt, Yt = _tensor(X), _tensor(Y)
        weights = None
        if sample_weight is not None:
            weights = check_weights(row_weights(sample_weight, n), n)
        tests, trains = self._folds(X, Y, n)
        if isinstance(tests, np.ndarray):  # fold ids: one pass, each row to its fold
            batch = (Xt, Yt, tests) if weights is None else (Xt, Yt, tests, weights)
            test_stats = paths.fold_statistics_from_batches([batch], int(tests.max()) + 1)
        else:
            test_stats = paths.fold_statistics(Xt, Yt, tests, weights)
        if trains is None:  # the folds partition the rows: train on the others, merged
            pairs, merged = paths.fold_pairs(test_stats)
            total = (
                merged if merged is not None else SufficientStats.compute(Xt, Yt, weights=weights)
            )
        else:
            total = SufficientStats.compute(Xt, Yt, weights=weights)
            fold_train = paths.fold_statistics(Xt, Yt, trains, weights)
            pairs = [(tr, te) for tr, te in zip(fold_train, test_stats, strict=True) if tr.n]
            pairs = [(tr, te) for tr, te in pairs if te.n > 0 and te.total > 0 and tr.total > 0]
        if len(pairs) < 2:
            raise ValidationError(
                f"cross-validation needs at least 2 folds with rows to train and validate on; "
                f"the {n} rows (n_samples = {n}) gave {len(pairs)}: give more rows or fewer folds"
            )
        automatic = isinstance(self.alphas, numbers.Integral) and not isinstance(self.alphas, bool)
        cv = paths.cross_validate(
            pairs,
            total,
            int(self.alphas) if automatic else self.alphas,  # type: ignore[arg-type]
            ratios,
            per_target=bool(self.alpha_per_target),
            selection=self.selection,
            eps=paths.check_eps(self.eps),
            tol=float(self.tol),
            max_iter=int(self.max_iter),
            fit_intercept=bool(self.fit_intercept),
            standardize=bool(self.standardize),
        )
        grids, mse_path, not_converged = cv.grids, cv.mse_path, cv.not_converged
        per_target, n_iter = bool(self.alpha_per_target), cv.n_iter
        alpha, ratio, coef, intercept = cv.alpha, cv.l1_ratio, cv.coef, cv.intercept
        if not_converged:
            warnings.warn(
                f"coordinate descent did not reach its duality gap tolerance (tol={self.tol}) "
                f"within max_iter={self.max_iter} sweeps for {not_converged} of the path's "
                "solutions; increase max_iter or tol",
                ConvergenceWarning,
                stacklevel=2,
            )
        self.alphas_ = grids if grids.shape[0] > 1 else grids[0]
        self.l1_ratios_ = np.asarray(ratios)
        self.mse_path_ = mse_path
        self.cv_mean_, self.cv_se_ = paths.cv_errors(mse_path)
        self.n_iter_ = n_iter
        if per_target and not one_d:
            self.alpha_ = alpha.astype(np.float64)
            self.l1_ratio_ = ratio.astype(np.float64)
        else:
            self.alpha_ = float(alpha[0])
            self.l1_ratio_ = float(ratio[0])
        if one_d:
            self.coef_ = coef[0]
            self.intercept_ = float(intercept[0])
        else:
            self.coef_ = coef
            self.intercept_ = intercept
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions ``X @ coef_.T + intercept_``: (n_samples,) when fitted on a 1-D y, else
        (n_samples, n_targets); float64."""
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return np.asarray(X @ np.asarray(self.coef_).T + self.intercept_, dtype=np.float64)


def _tensor(a: np.ndarray) -> torch.Tensor:
    # torch.from_numpy shares memory; a read-only array (memmap) is copied, never written.
    a = np.ascontiguousarray(a)
    return torch.from_numpy(a if a.flags.writeable else a.copy())


def _flat(value: Any) -> bool:
    """Whether an iterable is a flat sequence of numbers (fold ids), not of (train, test)."""
    try:
        array = np.asarray(value)
    except ValueError:  # ragged: a list of splits
        return False
    return array.ndim == 1 and array.dtype != object
