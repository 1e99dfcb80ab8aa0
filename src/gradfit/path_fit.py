"""Coefficients along a regularization path over a data source (``gradfit path``,
``gradfit.fit_path``): one pass for the statistics of all rows, read whole or streamed
(:mod:`gradfit.fold_pass`, as :func:`gradfit.cv_fit.fit_cv` reads), then the path's solvers
on them (:mod:`gradfit.solvers.path`); the coefficients in a :class:`PathRecord`.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gradfit.data.memory import TableInMemory
from gradfit.data.weights import refuse_all_zero
from gradfit.errors import ConvergenceWarning, DataError
from gradfit.fold_pass import _fold_statistics, without_drop_offer
from gradfit.settings import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_MEMORY_LIMIT,
    CVSettings,
    ReadSettings,
)
from gradfit.solvers import path as paths
from gradfit.solvers.collective import LOCAL
from gradfit.sources import source_kind
from gradfit.streaming import Progress, use_streaming

__all__ = ["PathRecord", "fit_path"]


@dataclass(frozen=True)
class PathRecord:
    """Coefficients along a regularization path fitted to a data source
    (:func:`fit_path`): ``alphas`` (A,) decreasing, ``coefs`` (k, d, A) and ``intercepts``
    (k, A) in the data's units (``enet_path``'s layout, per target), at ``l1_ratio``."""

    alphas: np.ndarray
    coefs: np.ndarray
    intercepts: np.ndarray
    l1_ratio: float
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    n_samples: int
    source: str
    standardize: bool
    fit_intercept: bool
    weights: str | None
    not_converged: int
    left_out: dict[str, str]

    @property
    def n_nonzero(self) -> np.ndarray:
        """(k, A): the coefficients not 0 of each target at each alpha (glmnet's ``df``)."""
        out: np.ndarray = np.count_nonzero(self.coefs != 0, axis=1)
        return out

    def as_dict(self) -> dict[str, Any]:
        """JSON-able: the settings, and per target the intercepts, the number of non-zero
        coefficients and each feature's coefficients along the alphas."""
        nonzero = self.n_nonzero
        return {
            "source": self.source,
            "n_samples": self.n_samples,
            "l1_ratio": self.l1_ratio,
            "standardize": self.standardize,
            "fit_intercept": self.fit_intercept,
            "weights": self.weights,
            "alphas": self.alphas.tolist(),
            "targets": {
                name: {
                    "intercept": self.intercepts[t].tolist(),
                    "n_nonzero": nonzero[t].tolist(),
                    "coef": {
                        feature: self.coefs[t, j].tolist()
                        for j, feature in enumerate(self.feature_names)
                    },
                }
                for t, name in enumerate(self.target_names)
            },
        }


def fit_path(
    source: str | Path | TableInMemory,
    targets: Sequence[str],
    features: Sequence[str] | None = None,
    *,
    alphas: int | Sequence[float] = 100,
    l1_ratio: float = 1.0,
    eps: float | None = None,
    fit_intercept: bool = True,
    standardize: bool = True,
    weights: str | None = None,
    tol: float = 1e-4,
    max_iter: int = 1000,
    stream: bool | None = None,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Progress | None = None,
) -> PathRecord:
    """Coefficients along a regularization path over a data source (``gradfit path``): one
    pass for the statistics of all rows (read whole or streamed, as :func:`fit_cv`), then
    :func:`gradfit.solvers.path.path`'s solvers on them (ridge in closed form, anything with
    an L1 part by coordinate descent down the path, warm-started).

    ``alphas``: a count (the grid from ``alpha_max`` down to ``eps * alpha_max``, ``eps``
    None: 1e-3 with an L1 part, 1e-4 for ridge), from all targets' statistics, as
    ``enet_path``) or the penalties; ``l1_ratio``: one mix;
    ``standardize``: penalize the standardized coefficients (``GradientDescentRegressor``'s
    default; False: the raw ones, as ``enet_path``); ``weights``: a column of row weights
    (weighted statistics, as ``sample_weight``). The numbers of
    ``gradfit.path(X, Y, alphas, l1_ratio, standardize=..., sample_weight=...)`` on the
    same rows."""
    paths.check_path_settings(l1_ratio, tol, max_iter)
    eps = paths.check_eps(eps)
    automatic = isinstance(alphas, numbers.Integral) and not isinstance(alphas, bool)
    grid_setting = CVSettings(
        alphas=int(alphas) if automatic else tuple(alphas)  # type: ignore[arg-type]
    ).alphas
    reading = ReadSettings(stream=stream, memory_limit=memory_limit, batch_rows=batch_rows)
    data = source if source_kind(source) == "memory" else str(source)
    streamed = use_streaming(data, None, reading)
    with without_drop_offer():
        read = _fold_statistics(
            data, targets, features, weights, 1, 0, streamed, LOCAL, reading, progress
        )
    name, fold_stats, fnames, tnames, left_out, _, _ = read
    total = fold_stats[0]
    if weights is not None and total.n == 0:
        raise refuse_all_zero(name, weights)
    if total.n < 1:
        raise DataError(f"{name}: no data rows; the path needs at least one row")
    problem = paths.Quadratic.from_stats(
        total, fit_intercept=fit_intercept, standardize=standardize
    )
    if isinstance(grid_setting, int):
        grid = paths.alpha_grid(problem, float(l1_ratio), grid_setting, eps)
    else:
        grid = np.sort(paths.check_alphas(grid_setting))[::-1].copy()
    result = paths.problem_path(
        problem, grid, float(l1_ratio), tol=float(tol), max_iter=int(max_iter)
    )
    not_converged = int((~result.converged).sum())
    if not_converged:
        warnings.warn(
            f"coordinate descent did not reach its duality gap tolerance (tol={tol}) within "
            f"max_iter={max_iter} sweeps for {not_converged} of the path's solutions; "
            "increase max_iter or tol",
            ConvergenceWarning,
            stacklevel=2,
        )
    coef, intercept = problem.original_units(result.coefs)  # (A, k, d), (A, k)
    if not fit_intercept:
        intercept = np.zeros_like(intercept)
    return PathRecord(
        alphas=grid,
        coefs=np.ascontiguousarray(np.transpose(coef, (1, 2, 0))),
        intercepts=np.ascontiguousarray(intercept.T),
        l1_ratio=float(l1_ratio),
        feature_names=tuple(fnames),
        target_names=tuple(tnames),
        n_samples=int(total.n),
        source=name,
        standardize=bool(standardize),
        fit_intercept=bool(fit_intercept),
        weights=weights,
        not_converged=not_converged,
        left_out=dict(left_out),
    )
