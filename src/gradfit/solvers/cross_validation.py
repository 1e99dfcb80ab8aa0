"""K-fold cross-validation of a regularization path from the folds' statistics: each fold's
validation error along the path, a quadratic form in its statistics (:func:`cv_mse_path`), the
choice of alpha and l1 ratio (:func:`choose`), and the whole of it with the refit on all rows
(:func:`cross_validate`). The statistics: :mod:`gradfit.solvers.fold_stats`; the method:
:mod:`gradfit.solvers.path`.

Cross-validation's error of an alpha is the mean over folds of each fold's mean squared error
(scikit-learn's ``mse_path_.mean``; glmnet weights folds by their size, the same when the folds
are equal), its standard error ``sd / sqrt(K)`` over folds (glmnet's ``cvsd``). Rule ``"min"``
takes the smallest error (the largest alpha among ties, and among l1 ratios the first, as
``ElasticNetCV``); ``"1se"`` (glmnet's ``lambda.1se``) the largest alpha, for the l1 ratio of
the minimum, whose error is within one standard error of the minimum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch

from gradfit.errors import ValidationError
from gradfit.solvers.penalized import Array, Quadratic, alpha_grid, check_alphas, problem_path
from gradfit.solvers.stats import SufficientStats

__all__ = [
    "CVChoice",
    "CrossValidation",
    "choose",
    "cross_validate",
    "cv_errors",
    "cv_mse_path",
    "select_targets",
    "validation_mse",
]


def select_targets(stats: SufficientStats, targets: Sequence[int]) -> SufficientStats:
    """The statistics of some of the targets (the features' moments shared)."""
    index = torch.as_tensor(list(targets), dtype=torch.long, device=stats.ybar.device)
    return replace(stats, ybar=stats.ybar[index], Szy=stats.Szy[:, index], syy=stats.syy[index])


def validation_mse(stats: SufficientStats, coef: Array, intercept: Array) -> Array:
    """Each target's (weighted) mean squared error on ``stats``' rows (..., k) of the models
    ``coef`` (..., k, d), ``intercept`` (..., k): the quadratic form of
    :meth:`SufficientStats.per_target_mse`, for many models at once."""
    zbar = stats.zbar.double().cpu().numpy()
    ybar = stats.ybar.double().cpu().numpy()
    Szz = stats.Szz.double().cpu().numpy()
    Szy = stats.Szy.double().cpu().numpy()
    syy = stats.syy.double().cpu().numpy()
    c = coef @ zbar + intercept - ybar
    quad = np.einsum("...kd,de,...ke->...k", coef, Szz, coef)
    cross = np.einsum("...kd,dk->...k", coef, Szy)
    mse: Array = np.maximum(quad - 2 * cross + syy + c * c, 0.0)
    return mse


def cv_mse_path(
    train: Sequence[SufficientStats],
    test: Sequence[SufficientStats],
    alphas: Array,
    l1_ratios: Sequence[float],
    *,
    fit_intercept: bool = True,
    standardize: bool = False,
    tol: float = 1e-4,
    max_iter: int = 1000,
) -> tuple[Array, int]:
    """The validation error (K, A, L, k) of every fold, alpha (``alphas`` (L, A), one grid per
    l1 ratio, each decreasing), l1 ratio and target: each fold's path solved on its training
    statistics, its error a quadratic form in its validation statistics. Also returns the
    number of (fold, l1 ratio, alpha, target) solutions that did not converge."""
    K, L, (_, A) = len(train), len(l1_ratios), alphas.shape
    k = int(test[0].ybar.shape[0]) if K else 0
    mse = np.zeros((K, A, L, k))
    not_converged = 0
    for f in range(K):
        problem = Quadratic.from_stats(
            train[f], fit_intercept=fit_intercept, standardize=standardize
        )
        for r, ratio in enumerate(l1_ratios):
            result = problem_path(problem, alphas[r], float(ratio), tol=tol, max_iter=max_iter)
            not_converged += int((~result.converged).sum())
            coef, intercept = problem.original_units(result.coefs)
            if not fit_intercept:
                intercept = np.zeros_like(intercept)
            mse[f, :, r, :] = validation_mse(test[f], coef, intercept)
    return mse, not_converged


def cv_errors(mse_path: Array) -> tuple[Array, Array]:
    """The mean over folds (A, L, k) of the folds' errors (K, A, L, k), and its standard error
    ``sd / sqrt(K)`` (glmnet's ``cvsd``; 0 with one fold)."""
    K = mse_path.shape[0]
    mean: Array = mse_path.mean(axis=0)
    if K < 2:
        return mean, np.zeros_like(mean)
    # The errors are squares of the targets' units: beyond about 1e154 their squares overflow
    # (targets beyond 1e77: inf standard errors, and "1se" chose the largest alpha). Each cell
    # is scaled by a power of 2 near its largest error first: exact, the same numbers below.
    _, exponent = np.frexp(np.abs(mse_path).max(axis=0))
    scale = np.ldexp(1.0, exponent)
    se: Array = (mse_path / scale).std(axis=0, ddof=1) * scale / math.sqrt(K)
    return mean, se


@dataclass(frozen=True)
class CVChoice:
    """The chosen (alpha index, l1 ratio index) per target (k,) or shared (1,)."""

    alpha_index: npt.NDArray[np.int64]
    l1_index: npt.NDArray[np.int64]


def choose(
    mse_path: Array, *, per_target: bool, selection: Literal["min", "1se"] = "min"
) -> CVChoice:
    """The chosen alpha and l1 ratio from the folds' errors (K, A, L, k), alphas decreasing:
    per target (``per_target``), or one for all targets on the errors averaged over targets.
    ``"min"``: the smallest mean error, ties to the larger alpha and the earlier l1 ratio
    (``ElasticNetCV``'s order); ``"1se"``: for that l1 ratio, the largest alpha whose mean is
    at most the minimum plus its standard error (glmnet's ``lambda.1se``)."""
    if selection not in ("min", "1se"):
        raise ValidationError(f"selection must be 'min' or '1se', got {selection!r}")
    paths = mse_path if per_target else mse_path.mean(axis=3, keepdims=True)
    mean, se = cv_errors(paths)  # (A, L, m)
    _, L, m = mean.shape
    alpha_index = np.zeros(m, dtype=np.int64)
    l1_index = np.zeros(m, dtype=np.int64)
    for t in range(m):
        best_a, best_r, best = 0, 0, np.inf
        for r in range(L):
            a = int(np.argmin(mean[:, r, t]))  # first minimum: the largest alpha among ties
            if mean[a, r, t] < best:
                best_a, best_r, best = a, r, float(mean[a, r, t])
        if selection == "1se":
            bound = best + float(se[best_a, best_r, t])
            within = np.nonzero(mean[:, best_r, t] <= bound)[0]
            best_a = int(within[0])  # alphas decrease: the first is the largest
        alpha_index[t], l1_index[t] = best_a, best_r
    return CVChoice(alpha_index=alpha_index, l1_index=l1_index)


@dataclass(frozen=True)
class CrossValidation:
    """Cross-validation of a path from the folds' statistics, and the refit on all rows.

    ``grids`` (G, L, A): the alphas, decreasing, one grid per l1 ratio (G = 1), or per target
    and l1 ratio (G = k, ``alpha_per_target`` with grids generated from each target's own
    ``alpha_max``); ``mse_path`` (K, A, L, k) each fold's validation error, ``mean`` and
    ``se`` (A, L, k) their mean and standard error; ``choice`` (the ``selection`` asked) and
    ``choice_min`` / ``choice_1se`` (both rules, for plots); ``alpha`` and ``l1_ratio`` (k,)
    the penalty of each target's refit (the same for all without ``alpha_per_target``);
    ``coef`` (k, d) and ``intercept`` (k,) the refit on the statistics of all rows (``total``)
    in the data's units."""

    grids: Array
    l1_ratios: Array
    mse_path: Array
    mean: Array
    se: Array
    choice: CVChoice
    choice_min: CVChoice
    choice_1se: CVChoice
    alpha: Array
    l1_ratio: Array
    coef: Array
    intercept: Array
    n_iter: int
    not_converged: int
    n_folds: int
    total: SufficientStats
    per_target: bool
    selection: str


def _targets_of(problem: Quadratic, targets: list[int]) -> Quadratic:
    return Quadratic(
        S=problem.S,
        q=np.ascontiguousarray(problem.q[:, targets]),
        syy=problem.syy[targets],
        xbar=problem.xbar,
        ybar=problem.ybar[targets],
        scale=problem.scale,
    )


def cross_validate(
    pairs: Sequence[tuple[SufficientStats, SufficientStats]],
    total: SufficientStats,
    alphas: int | Any,
    l1_ratios: Sequence[float],
    *,
    per_target: bool = False,
    selection: str = "min",
    eps: float | None = None,
    tol: float = 1e-4,
    max_iter: int = 1000,
    fit_intercept: bool = True,
    standardize: bool = False,
) -> CrossValidation:
    """The whole of K-fold cross-validation from statistics: ``pairs`` (training, validation)
    statistics of each fold (at least 2), ``total`` those of all rows (the grid's
    ``alpha_max`` and the refit). ``alphas``: a count (the grid of :func:`alpha_grid` per l1
    ratio; with ``per_target`` and several targets, per target from its own ``alpha_max``) or
    the penalties. The same numbers whether the statistics came from memory, a stream or
    processes merged: :class:`~gradfit.GradientDescentRegressorCV` and ``gradfit.fit_cv`` both
    call this."""
    if selection not in ("min", "1se"):
        raise ValidationError(f"selection must be 'min' or '1se', got {selection!r}")
    if len(pairs) < 2:
        raise ValidationError("cross-validation needs at least 2 folds")
    ratios = [float(r) for r in l1_ratios]
    train_stats, test_stats = [t for t, _ in pairs], [v for _, v in pairs]
    problem = Quadratic.from_stats(total, fit_intercept=fit_intercept, standardize=standardize)
    k = int(total.ybar.shape[0])
    d = int(total.zbar.shape[0])
    automatic = isinstance(alphas, (int, np.integer)) and not isinstance(alphas, bool)

    def grids_of(prob: Quadratic) -> Array:
        if automatic:
            return np.stack([alpha_grid(prob, r, int(alphas), eps) for r in ratios])
        values = np.sort(check_alphas(alphas))[::-1]
        return np.stack([values.copy() for _ in ratios])

    settings: dict[str, Any] = {
        "fit_intercept": fit_intercept,
        "standardize": standardize,
        "tol": float(tol),
        "max_iter": int(max_iter),
    }
    if per_target and automatic and k > 1:
        # Each target its own grid (from its own alpha_max): its path and choice are those of
        # the target fitted alone.
        grids = np.stack([grids_of(_targets_of(problem, [t])) for t in range(k)])
        parts = [
            cv_mse_path(
                [select_targets(s, [t]) for s in train_stats],
                [select_targets(s, [t]) for s in test_stats],
                grids[t],
                ratios,
                **settings,
            )
            for t in range(k)
        ]
        mse_path = np.concatenate([m for m, _ in parts], axis=3)
        not_converged = sum(c for _, c in parts)
    else:
        grids = grids_of(problem)[None]
        mse_path, not_converged = cv_mse_path(train_stats, test_stats, grids[0], ratios, **settings)
    rule: Literal["min", "1se"] = "1se" if selection == "1se" else "min"
    choice_min = choose(mse_path, per_target=per_target, selection="min")
    choice_1se = choose(mse_path, per_target=per_target, selection="1se")
    choice = choice_1se if rule == "1se" else choice_min
    a_idx = np.broadcast_to(choice.alpha_index, (k,))
    r_idx = np.broadcast_to(choice.l1_index, (k,))
    g_idx = np.arange(k) if grids.shape[0] > 1 else np.zeros(k, dtype=np.int64)
    alpha = grids[g_idx, r_idx, a_idx]
    ratio = np.asarray(ratios)[r_idx]
    coef = np.zeros((k, d))
    intercept = np.zeros(k)
    n_iter = 0
    for t in range(k):  # each target at its penalty (one solve when shared)
        if t and not per_target:
            break
        targets = list(range(k)) if not per_target else [t]
        sub = _targets_of(problem, targets)
        # The refit: down the grid to the chosen alpha (warm starts), as the path does.
        steps = grids[g_idx[t], r_idx[t], : a_idx[t] + 1]
        result = problem_path(sub, steps, float(ratio[t]), tol=float(tol), max_iter=int(max_iter))
        not_converged += int((~result.converged[-1]).sum())
        n_iter = max(n_iter, int(result.n_iter[-1].max()))
        c, b = sub.original_units(result.coefs[-1])
        coef[targets] = c
        intercept[targets] = b if fit_intercept else 0.0
    mean, se = cv_errors(mse_path)
    return CrossValidation(
        grids=grids,
        l1_ratios=np.asarray(ratios, dtype=np.float64),
        mse_path=mse_path,
        mean=mean,
        se=se,
        choice=choice,
        choice_min=choice_min,
        choice_1se=choice_1se,
        alpha=np.asarray(alpha, dtype=np.float64),
        l1_ratio=np.asarray(ratio, dtype=np.float64),
        coef=coef,
        intercept=intercept,
        n_iter=n_iter,
        not_converged=not_converged,
        n_folds=len(pairs),
        total=total,
        per_target=per_target,
        selection=rule,
    )
