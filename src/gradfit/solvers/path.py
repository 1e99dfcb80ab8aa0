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

The alpha grid (:func:`alpha_grid`) is scikit-learn's and glmnet's: ``alpha_max`` is the
smallest penalty at which every coefficient of every target is 0, ``max_j |Szy_jt| /
l1_ratio``, down to ``eps * alpha_max`` in ``n_alphas`` log-spaced steps. The lasso's formula
has no finite value for ridge (``l1_ratio = 0``; scikit-learn refuses to make a grid for it);
as glmnet does, ridge's grid is the one of ``l1_ratio = 0.001``.

Cross-validation's error of an alpha is the mean over folds of each fold's mean squared error
(scikit-learn's ``mse_path_.mean``; glmnet weights folds by their size, the same when the folds
are equal), its standard error ``sd / sqrt(K)`` over folds (glmnet's ``cvsd``). Rule ``"min"``
takes the smallest error (the largest alpha among ties, and among l1 ratios the first, as
``ElasticNetCV``); ``"1se"`` (glmnet's ``lambda.1se``) the largest alpha, for the l1 ratio of
the minimum, whose error is within one standard error of the minimum.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch

from gradfit.errors import ValidationError
from gradfit.scaling import Standardizer
from gradfit.solvers.path_kernels import enet_gram_path, fold_positions, scatter_column
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

Array = npt.NDArray[np.float64]
RIDGE_GRID_L1_RATIO = 1e-3  # glmnet's alpha_max for ridge: that of l1_ratio = 0.001


@dataclass(frozen=True)
class Quadratic:
    """One set of rows' penalized least-squares problem, per target, in the solver's units:
    minimise ``1/2 b'S b - q_t'b + syy_t/2 + penalty(b)`` over b on features ``(x - mean) /
    scale``. ``S`` (d, d), ``q`` (d, k), ``syy`` (k,) are the centred (without an intercept:
    uncentred) moments of the scaled features and the targets; ``xbar`` (d,), ``ybar`` (k,) the
    raw means (0 without an intercept); ``scale`` (d,) the features' scales (ones when not
    standardizing)."""

    S: Array
    q: Array
    syy: Array
    xbar: Array
    ybar: Array
    scale: Array

    @classmethod
    def from_stats(
        cls, stats: SufficientStats, *, fit_intercept: bool = True, standardize: bool = False
    ) -> Quadratic:
        zbar, ybar = stats.zbar.double().cpu(), stats.ybar.double().cpu()
        Szz, Szy, syy = stats.Szz.double().cpu(), stats.Szy.double().cpu(), stats.syy.double().cpu()
        if not fit_intercept:
            Szz = Szz + torch.outer(zbar, zbar)
            Szy = Szy + torch.outer(zbar, ybar)
            syy = syy + ybar * ybar
            zbar, ybar = torch.zeros_like(zbar), torch.zeros_like(ybar)
        if standardize:
            # The engine's scaling (gradfit.solvers.engine.feature_scaler): the standard
            # deviations, or without an intercept the root mean squares; constant columns 1.
            scaler = Standardizer.from_moments(
                stats.zbar.double().cpu(), stats.Szz.double().cpu().diagonal(), center=fit_intercept
            )
            scale = scaler.scale
        else:
            scale = torch.ones_like(zbar)
        S = Szz / torch.outer(scale, scale)
        S = (S + S.T) / 2
        return cls(
            S=S.numpy().copy(),
            q=(Szy / scale[:, None]).numpy().copy(),
            syy=syy.clamp_min(0.0).numpy().copy(),
            xbar=zbar.numpy().copy(),
            ybar=ybar.numpy().copy(),
            scale=scale.numpy().copy(),
        )

    def original_units(self, coefs: Array) -> tuple[Array, Array]:
        """Coefficients (..., k, d) in the solver's units -> (coef (..., k, d), intercept
        (..., k)) in the data's."""
        coef = coefs / self.scale
        intercept = self.ybar - coef @ self.xbar
        return coef, intercept


@dataclass(frozen=True)
class PathResult:
    """Solutions along a path: ``coefs`` (A, k, d) in the solver's units, and, for coordinate
    descent, the duality ``gaps`` (A, k), ``n_iter`` (A, k) and whether each converged."""

    coefs: Array
    gaps: Array
    n_iter: npt.NDArray[np.int64]
    converged: npt.NDArray[np.bool_]


# ----------------------------------------------------------------------------- the grid


def alpha_max(problem: Quadratic, l1_ratio: float) -> float:
    """The smallest alpha at which every coefficient of every target is 0 (for the lasso
    part; ridge's is that of ``l1_ratio = 0.001``, as glmnet's)."""
    ratio = max(float(l1_ratio), RIDGE_GRID_L1_RATIO)
    if problem.q.size == 0:
        return 0.0
    return float(np.abs(problem.q).max()) / ratio


def alpha_grid(
    problem: Quadratic, l1_ratio: float = 1.0, n_alphas: int = 100, eps: float = 1e-3
) -> Array:
    """scikit-learn's and glmnet's grid: ``n_alphas`` values log-spaced from ``alpha_max`` down
    to ``eps * alpha_max`` (decreasing). A problem with nothing to explain (``alpha_max`` 0)
    gets scikit-learn's grid of ``eps`` repeated."""
    if n_alphas < 1:
        raise ValidationError(f"the number of alphas must be at least 1, got {n_alphas}")
    if not 0 < eps < 1:
        raise ValidationError(f"eps must be in (0, 1), got {eps}")
    top = alpha_max(problem, l1_ratio)
    if top <= np.finfo(np.float64).resolution:
        return np.full(n_alphas, eps)
    grid: Array = np.geomspace(top, top * eps, num=n_alphas)
    return grid


def check_alphas(alphas: Any) -> Array:
    """A list of penalties as a float64 (A,) array, each finite and >= 0."""
    values = np.asarray(alphas, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise ValidationError("alphas must hold at least one value")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValidationError(f"alphas must be finite and >= 0, got {values.tolist()}")
    return values


# ----------------------------------------------------------------------------- solvers


def ridge_path(problem: Quadratic, alphas: Array) -> Array:
    """Ridge solutions (A, k, d) in the solver's units for every alpha, from one
    eigendecomposition: ``(S + αI) b = q``. A singular S at α = 0: the minimum-norm solution
    (eigenvalues below ``d · eps · λmax`` left out)."""
    lam, U = np.linalg.eigh(problem.S)
    proj = U.T @ problem.q  # (d, k)
    cut = max(float(lam[-1]) if lam.size else 0.0, 0.0) * max(lam.size, 1) * np.finfo(float).eps
    denom = lam[None, :] + alphas[:, None]  # (A, d)
    keep = (lam[None, :] > cut) | (alphas[:, None] > 0)
    inv = np.where(keep & (denom > 0), 1.0 / np.where(denom > 0, denom, 1.0), 0.0)
    coefs: Array = np.einsum("de,ae,ek->akd", U, inv, proj)
    return coefs


def problem_path(
    problem: Quadratic,
    alphas: Array,
    l1_ratio: float,
    *,
    tol: float = 1e-4,
    max_iter: int = 1000,
) -> PathResult:
    """The solutions of one problem along ``alphas`` (in the order given; decreasing is the
    fast order for coordinate descent's warm starts): ridge in closed form, anything with an
    L1 part by coordinate descent."""
    A, (d, k) = alphas.shape[0], problem.q.shape
    if l1_ratio == 0:
        coefs = ridge_path(problem, alphas)
        return PathResult(
            coefs=coefs,
            gaps=np.zeros((A, k)),
            n_iter=np.ones((A, k), dtype=np.int64),
            converged=np.ones((A, k), dtype=bool),
        )
    coefs = np.zeros((A, k, d))
    gaps = np.zeros((A, k))
    iters = np.zeros((A, k), dtype=np.int64)
    enet_gram_path(
        np.ascontiguousarray(problem.S),
        np.ascontiguousarray(problem.q),
        np.ascontiguousarray(problem.syy),
        np.ascontiguousarray(alphas, dtype=np.float64),
        float(l1_ratio),
        float(tol),
        int(max_iter),
        coefs,
        gaps,
        iters,
    )
    converged = gaps <= tol * problem.syy[None, :]
    return PathResult(coefs=coefs, gaps=gaps, n_iter=iters, converged=converged)


def check_path_settings(l1_ratio: float, tol: float, max_iter: int) -> None:
    if not (isinstance(l1_ratio, (int, float)) and 0 <= float(l1_ratio) <= 1):
        raise ValidationError(f"l1_ratio must be in [0, 1], got {l1_ratio!r}")
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol >= 0):
        raise ValidationError(f"tol must be a finite number >= 0, got {tol!r}")
    if not (isinstance(max_iter, (int, np.integer)) and not isinstance(max_iter, bool)):
        raise ValidationError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    if max_iter < 1:
        raise ValidationError(f"max_iter must be an integer >= 1, got {max_iter!r}")


def path(
    X: Any,
    Y: Any,
    alphas: Any = None,
    l1_ratio: float = 1.0,
    *,
    n_alphas: int = 100,
    eps: float = 1e-3,
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
        ``alpha_max`` down to ``eps * alpha_max`` (:func:`alpha_grid`); solved in decreasing
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


# ----------------------------------------------------------------------------- cross-validation


def fold_statistics(
    X: torch.Tensor,
    Y: torch.Tensor,
    tests: Sequence[npt.NDArray[np.int64]],
    weights: torch.Tensor | None = None,
) -> list[SufficientStats]:
    """The statistics of each fold's rows (``tests``: each fold's row indices), each from one
    pass over its rows (in a stream: one pass over all rows, each to its fold's statistics)."""
    out = []
    for idx in tests:
        index = torch.from_numpy(np.asarray(idx, dtype=np.int64))
        w = None if weights is None else weights[index]
        out.append(SufficientStats.compute(X[index], Y[index], weights=w))
    return out


def fold_statistics_from_batches(
    batches: Iterable[tuple[Any, ...]], n_folds: int
) -> list[SufficientStats]:
    """The statistics of each of ``n_folds`` folds from one pass over a stream of batches
    ``(Z (m, d), Y (m, k), folds (m,))`` or ``(Z, Y, folds, weights (m,))``, each row to its
    fold's statistics (fold ids ``0 .. n_folds - 1``, e.g. from
    :func:`gradfit.solvers.rows.fold_ids` of the rows' addresses). As
    :meth:`SufficientStats.from_batches`, every part is shifted by the first batch's means and
    merged; a fold that no row reaches has ``n == 0`` (and zero moments)."""
    shift: tuple[torch.Tensor, torch.Tensor] | None = None
    parts: list[SufficientStats | None] = [None] * n_folds
    width: tuple[int, int] | None = None
    for batch in batches:
        Z, Y, ids = batch[0], batch[1], np.asarray(batch[2])
        weights = batch[3] if len(batch) > 3 else None
        m = int(Y.shape[0])
        width = (int(Z.shape[1]), int(Y.shape[1]))
        if m == 0:
            continue
        if ids.shape != (m,) or (ids.size and (ids.min() < 0 or ids.max() >= n_folds)):
            raise ValidationError(
                f"fold ids must be one per row, in 0 .. {n_folds - 1}; got shape {ids.shape}"
            )
        if shift is None:
            head = min(m, 1 << 16)
            shift = (Z[:head].double().mean(0).cpu(), Y[:head].double().mean(0).cpu())
        # One gather puts each fold's rows together (a stable sort by fold: file order
        # within a fold); each fold's statistics then come from a contiguous slice, a view.
        # Rows already sorted by fold (the caller gathered them) are taken as they are.
        ends = np.cumsum(np.bincount(ids, minlength=n_folds)).tolist()
        if m > 1 and bool(np.any(ids[1:] < ids[:-1])):
            small = ids.astype(np.uint8 if n_folds <= 256 else np.uint16)  # radix sort
            order = torch.from_numpy(np.argsort(small, kind="stable"))
            Zs, Ys = Z[order.to(Z.device)], Y[order.to(Y.device)]
            ws = None if weights is None else weights[order.to(weights.device)]
        else:
            Zs, Ys, ws = Z, Y, weights
        begin = 0
        for f, end in enumerate(ends):
            if end > begin:
                w = None if ws is None else ws[begin:end]
                part = SufficientStats.compute(
                    Zs[begin:end], Ys[begin:end], shift, shifted=True, weights=w
                )
                current = parts[f]
                parts[f] = part if current is None else current.merge(part)
            begin = end
    if width is None:
        raise ValidationError("no batches: the fold statistics need at least one")
    d, k = width
    out = []
    for acc in parts:
        if acc is None or shift is None:
            out.append(_empty_stats(d, k))
        else:
            out.append(replace(acc, zbar=acc.zbar + shift[0], ybar=acc.ybar + shift[1]))
    return out


def fold_statistics_from_columns(
    batches: Iterable[tuple[Sequence[Any], Any, Any]], n_folds: int, n_features: int
) -> list[SufficientStats]:
    """:func:`fold_statistics_from_batches` for a stream read as columns (a file's batches,
    never stacked into a matrix): each batch is ``(columns, folds, weights)``, its p columns
    as (m,) float64 arrays (the ``n_features`` features, then the targets), each row's fold id
    (m,) and its weights (m,) or None. Rows of weight 0 are left out (counted nowhere, as a
    streamed weighted fit leaves them out).

    Per batch, one pass over the columns: a counting sort of the fold ids
    (:func:`~gradfit.solvers.path_kernels.fold_positions`) and each column scattered, shifted
    (and scaled by the square roots of the weights) in the same loop
    (:func:`~gradfit.solvers.path_kernels.scatter_column`) into one column-major buffer
    ``[Z - z0, Y - y0, 1]`` where each fold's rows are contiguous; then one product per fold,
    ``AᵀA`` of its rows (BLAS takes the slice as it is): the same products as one fit's
    statistics of the batch, split by fold. Each fold's part is merged into its statistics
    as :func:`fold_statistics_from_batches` merges (the shift: the first batch's head
    means); the numbers agree with it to rounding."""
    shift: npt.NDArray[np.float64] | None = None
    parts: list[SufficientStats | None] = [None] * n_folds
    width: int | None = None
    buffer = np.empty((0, 0), order="F")
    for columns, folds, weights in batches:
        ids = np.ascontiguousarray(folds, dtype=np.int64)
        m = int(ids.shape[0])
        p = len(columns)
        width = p
        if m == 0:
            continue
        if ids.min() < 0 or ids.max() >= n_folds:
            raise ValidationError(f"fold ids must be in 0 .. {n_folds - 1}")
        w = None if weights is None else np.ascontiguousarray(weights, dtype=np.float64)
        if w is not None:
            if not bool((w > 0).any()):
                continue
            ids = np.where(w > 0, ids, n_folds)  # weight 0: a last bucket, never used
        if shift is None:
            head = slice(0, min(m, 1 << 16)) if w is None else np.flatnonzero(w > 0)[: 1 << 16]
            shift = np.array([float(np.mean(c[head], dtype=np.float64)) for c in columns])
        pos = np.empty(m, dtype=np.int64)
        counts = np.empty(n_folds + 1, dtype=np.int64)
        fold_positions(ids, n_folds + 1, pos, counts)
        if buffer.shape[0] < m or buffer.shape[1] != p + 1:
            buffer = np.empty((m, p + 1), order="F")
        A = buffer[:m]
        root = np.sqrt(w) if w is not None else np.empty(0)
        with np.errstate(over="ignore", invalid="ignore"):  # overflow: checked below
            for j, column in enumerate(columns):
                scatter_column(column, pos, shift[j], root, w is not None, A[:, j])
            if w is None:
                A[:, p] = 1.0
            else:
                scatter_column(root, pos, 0.0, root, False, A[:, p])
                ordered = np.empty(m)
                scatter_column(w, pos, 0.0, root, False, ordered)
            begin = 0
            for f in range(n_folds):
                end = begin + int(counts[f])
                if end > begin:
                    rows = A[begin:end]
                    G = rows.T @ rows
                    part = _stats_of_gram(
                        G, n_features, end - begin, None if w is None else ordered[begin:end]
                    )
                    current = parts[f]
                    parts[f] = part if current is None else current.merge(part)
                begin = end
    if width is None:
        raise ValidationError("no batches: the fold statistics need at least one")
    d, k = n_features, width - n_features
    out = []
    for acc in parts:
        if acc is None or shift is None:
            out.append(_empty_stats(d, k))
        else:
            z0, y0 = torch.from_numpy(shift[:d].copy()), torch.from_numpy(shift[d:].copy())
            out.append(replace(acc, zbar=acc.zbar + z0, ybar=acc.ybar + y0))
    return out


def _stats_of_gram(
    G: npt.NDArray[np.float64], d: int, m: int, weights: npt.NDArray[np.float64] | None
) -> SufficientStats:
    """The (shifted) statistics of m rows from ``AᵀA`` of ``[Z - z0, Y - y0, 1]`` (weighted by
    ``weights``, all > 0), as :meth:`SufficientStats.compute` with ``shifted=True`` forms
    them."""
    if not bool(np.isfinite(G).all()):
        raise ValidationError(
            "the data are too large to train on: X^T X overflows float64 (values beyond about "
            "1e150); rescale the columns (e.g. change their units)"
        )
    p = G.shape[0] - 1
    Mzz, Mzy = G[:d, :d], G[:d, d:p]
    myy = G[d:p, d:p].diagonal()
    sz, sy = G[p, :d], G[p, d:p]
    extra: dict[str, Any] = {}
    total = float(m)
    if weights is not None:
        total = float(np.sum(weights))
        extra = {
            "weight_sum": total,
            "positive": m,
            "log_weight_sum": float(np.sum(np.log(weights))),
        }
    mz, my = sz / total, sy / total
    Szz = Mzz / total - np.outer(mz, mz)
    Szz = (Szz + Szz.T) / 2
    return SufficientStats(
        n=m,
        zbar=torch.from_numpy(mz.copy()),
        ybar=torch.from_numpy(my.copy()),
        Szz=torch.from_numpy(Szz),
        Szy=torch.from_numpy(Mzy / total - np.outer(mz, my)),
        syy=torch.from_numpy(np.maximum(myy / total - my * my, 0.0)),
        **extra,
    )


def _empty_stats(d: int, k: int) -> SufficientStats:
    zeros = torch.zeros
    f64 = torch.float64
    return SufficientStats(
        n=0,
        zbar=zeros(d, dtype=f64),
        ybar=zeros(k, dtype=f64),
        Szz=zeros(d, d, dtype=f64),
        Szy=zeros(d, k, dtype=f64),
        syy=zeros(k, dtype=f64),
    )


def select_targets(stats: SufficientStats, targets: Sequence[int]) -> SufficientStats:
    """The statistics of some of the targets (the features' moments shared)."""
    index = torch.as_tensor(list(targets), dtype=torch.long, device=stats.ybar.device)
    return replace(stats, ybar=stats.ybar[index], Szy=stats.Szy[:, index], syy=stats.syy[index])


def training_statistics(folds: Sequence[SufficientStats]) -> list[SufficientStats]:
    """Each fold's training statistics: the other folds' merged (exact: Chan's pairwise
    update adds moments and corrects the means, so nothing is subtracted and a small fold's
    complement loses no digits to cancellation, as "total minus fold" would)."""
    out = []
    for f in range(len(folds)):
        merged: SufficientStats | None = None
        for g, part in enumerate(folds):
            if g != f:
                merged = part if merged is None else merged.merge(part)
        if merged is None:
            raise ValidationError("cross-validation needs at least 2 folds")
        out.append(merged)
    return out


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
    se: Array = mse_path.std(axis=0, ddof=1) / math.sqrt(K)
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


# ----------------------------------------------------------------------------- the whole CV


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
    eps: float = 1e-3,
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
            return np.stack([alpha_grid(prob, r, int(alphas), float(eps)) for r in ratios])
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


def fold_pairs(
    folds: Sequence[SufficientStats],
) -> tuple[list[tuple[SufficientStats, SufficientStats]], SufficientStats | None]:
    """From each fold's statistics (a partition of the rows): the (training, validation)
    pairs of the folds that can be used (a fold with rows and weight, whose training set has
    weight too) and the statistics of all rows (None when no fold has rows)."""
    nonempty = [s for s in folds if s.n > 0]
    if not nonempty:
        return [], None
    total = nonempty[0]
    for part in nonempty[1:]:
        total = total.merge(part)
    if len(nonempty) < 2:
        return [], total
    pairs = list(zip(training_statistics(nonempty), nonempty, strict=True))
    pairs = [(tr, te) for tr, te in pairs if te.n > 0 and te.total > 0 and tr.total > 0]
    return pairs, total
