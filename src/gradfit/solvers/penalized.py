"""Penalized least squares from sufficient statistics: the problem (:class:`Quadratic`), its
grid of alphas (:func:`alpha_grid`) and its solutions along them (:func:`problem_path`: ridge
from one eigendecomposition, the lasso and elastic net by coordinate descent on the Gram
matrix). The objective and the method: :mod:`gradfit.solvers.path`.

The alpha grid (:func:`alpha_grid`) is scikit-learn's and glmnet's: ``alpha_max`` is the
smallest penalty at which every coefficient of every target is 0, ``max_j |Szy_jt| /
l1_ratio``, down to ``eps * alpha_max`` in ``n_alphas`` log-spaced steps. The lasso's formula
has no finite value for ridge (``l1_ratio = 0``; scikit-learn refuses to make a grid for it);
as glmnet does, ridge's grid is the one of ``l1_ratio = 0.001`` on the targets scaled to unit
variance (``max_j |Szy_jt| / (0.001 sd_t)``): ridge's penalty is in the units of the
standardized features alone, so a grid in those of y (times sd_t) put every penalty of a target
in thousands far above its optimum (and a unit-variance target's 0.001-1 range there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from gradfit.errors import ValidationError
from gradfit.scaling import Standardizer
from gradfit.solvers.path_kernels import enet_gram_path
from gradfit.solvers.stats import SufficientStats

__all__ = [
    "PathResult",
    "Quadratic",
    "alpha_grid",
    "alpha_max",
    "check_alphas",
    "check_path_settings",
    "problem_path",
    "ridge_path",
]

Array = npt.NDArray[np.float64]
RIDGE_GRID_L1_RATIO = 1e-3  # glmnet's alpha_max for ridge: that of l1_ratio = 0.001
GRID_EPS = 1e-3  # the default depth of a grid with an L1 part: scikit-learn's eps
# The default depth of ridge's grid: glmnet's lambda.min.ratio (n >= p). Its top (that of
# l1_ratio 0.001 on unit-variance y) makes 1e-3 end at about the largest |correlation| of a
# feature with y, a strong shrinkage of a well-predicted target.
RIDGE_GRID_EPS = 1e-4


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


def alpha_max(problem: Quadratic, l1_ratio: float) -> float:
    """The smallest alpha at which every coefficient of every target is 0 (for the lasso
    part). Ridge's (``l1_ratio = 0``) is glmnet's: that of ``l1_ratio = 0.001`` for the
    targets scaled to unit variance (glmnet standardizes y before making its grid), so that
    the grid, like ridge's optimal penalty, does not depend on the targets' units."""
    if problem.q.size == 0:
        return 0.0
    if float(l1_ratio) > 0:  # below 0.001, that of 0.001 (glmnet's clamp): no jump near 0
        return float(np.abs(problem.q).max()) / max(float(l1_ratio), RIDGE_GRID_L1_RATIO)
    sd = np.sqrt(problem.syy)  # (k,)
    spread = np.abs(problem.q).max(axis=0)  # (k,)
    live = sd > 0  # a constant target (nothing to explain) has q = 0 too
    if not bool(live.any()):
        return 0.0
    return float((spread[live] / sd[live]).max()) / RIDGE_GRID_L1_RATIO


def check_eps(eps: float | None) -> float | None:
    """A grid's depth as given: None (the default of each grid, :func:`grid_eps`) or a number
    in (0, 1)."""
    if eps is None:
        return None
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer)):
        raise ValidationError(f"eps must be a number in (0, 1) or None, got {eps!r}")
    if not 0 < float(eps) < 1:
        raise ValidationError(f"eps must be in (0, 1), got {eps!r}")
    return float(eps)


def grid_eps(l1_ratio: float, eps: float | None = None) -> float:
    """The depth of the grid of ``l1_ratio``: ``eps`` when given, else scikit-learn's 1e-3 with
    an L1 part and glmnet's 1e-4 for ridge (:data:`RIDGE_GRID_EPS`)."""
    given = check_eps(eps)
    if given is not None:
        return given
    return GRID_EPS if float(l1_ratio) > 0 else RIDGE_GRID_EPS


def alpha_grid(
    problem: Quadratic, l1_ratio: float = 1.0, n_alphas: int = 100, eps: float | None = None
) -> Array:
    """scikit-learn's and glmnet's grid: ``n_alphas`` values log-spaced from ``alpha_max`` down
    to ``eps * alpha_max`` (decreasing; ``eps`` None: :func:`grid_eps`'s default, 1e-3 with an
    L1 part, 1e-4 for ridge). A problem with nothing to explain (``alpha_max`` 0) gets
    scikit-learn's grid of ``eps`` repeated."""
    if n_alphas < 1:
        raise ValidationError(f"the number of alphas must be at least 1, got {n_alphas}")
    eps = grid_eps(l1_ratio, eps)
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
