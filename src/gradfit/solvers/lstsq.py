"""Closed-form least squares: the exact optimum every iterative solver is measured against.

Method (all in float64, whatever the input dtype):

1. with an intercept, centre the columns of X and Y (the intercept is then recovered exactly as
   ``bias = mean(Y) - weight @ mean(X)``); centring removes the large common offset that makes
   polynomial designs such as NIST's Filip and Wampler files ill-conditioned;
2. scale every column of X to unit Euclidean norm (equilibration; the condition number reported
   is that of this scaled matrix, the one that governs the accuracy of the solve);
3. Householder QR of the scaled matrix and a triangular solve;
4. iterative refinement: the residual is recomputed in extended precision (NumPy's
   ``longdouble``, 80-bit on x86) and the correction solved with the same factors, until the
   correction stops shrinking.

Rank is read from the singular values of ``R`` (those of the scaled design) against the usual
tolerance ``s_max · max(n, d) · eps``. A rank-deficient design is *reported* with a
:class:`~gradfit.errors.RankDeficiencyWarning`, and the minimum-norm solution in the original
units (SVD of the centred design, truncated at that rank) is returned.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gradfit.errors import RankDeficiencyWarning
from gradfit.validation import as_matrix, as_targets, check_lengths

__all__ = ["LeastSquaresResult", "least_squares"]

_MAX_REFINEMENTS = 5


@dataclass(frozen=True)
class LeastSquaresResult:
    """Solution of ``min ||X @ weight.T + bias - Y||²`` (float64)."""

    weight: torch.Tensor  # (k, d)
    bias: torch.Tensor  # (k,), zeros without an intercept
    rank: int
    condition_number: float  # 2-norm condition number of the centred, column-scaled design
    singular_values: torch.Tensor  # (min(n, d),) of the centred, column-scaled design

    @property
    def full_rank(self) -> bool:
        return self.rank == self.weight.shape[1]


def _refine(
    A: np.ndarray, B: np.ndarray, Z: np.ndarray, Q: np.ndarray, R: np.ndarray
) -> np.ndarray:
    """Correct ``Z`` with residuals computed in extended precision (A, B exact float64 data)."""
    A_ext = A.astype(np.longdouble)
    B_ext = B.astype(np.longdouble)
    previous = math.inf
    for _ in range(_MAX_REFINEMENTS):
        residual = B_ext - A_ext @ Z.astype(np.longdouble)  # (n, k), extended precision
        # Correction: least-squares solve of A dZ = residual with the same QR factors.
        rhs = Q.T @ residual.astype(np.float64)  # (d, n) @ (n, k) -> (d, k)
        dZ = _solve_upper(R, rhs)
        size = float(np.max(np.abs(dZ))) if dZ.size else 0.0
        if not size < previous:  # no longer contracting: stop before making it worse
            break
        Z = Z + dZ
        previous = size
        if size <= np.finfo(np.float64).eps * max(float(np.max(np.abs(Z))), 1e-300):
            break
    return Z


def _solve_upper(R: np.ndarray, B: np.ndarray) -> np.ndarray:
    solution: np.ndarray = torch.linalg.solve_triangular(
        torch.from_numpy(R), torch.from_numpy(np.ascontiguousarray(B)), upper=True
    ).numpy()
    return solution


def least_squares(X: Any, Y: Any, *, fit_intercept: bool = True) -> LeastSquaresResult:
    """Exact least-squares fit of a (multi-output) linear model, in float64.

    Parameters
    ----------
    X : (n, d) tensor or array
    Y : (n,) or (n, k) tensor or array
    fit_intercept : bool
        Fit a bias per target (centre the data) or force the model through the origin.

    Returns
    -------
    LeastSquaresResult
        ``weight`` (k, d), ``bias`` (k,), ``rank``, ``condition_number``, ``singular_values``.

    Examples
    --------
    >>> import torch
    >>> X = torch.tensor([[0.0], [1.0], [2.0]])
    >>> r = least_squares(X, 3 * X[:, 0] + 1)
    >>> round(r.weight.item(), 6), round(r.bias.item(), 6), r.rank
    (3.0, 1.0, 1)
    """
    Xt = as_matrix(X, "X", dtype=torch.float64)
    Yt = as_targets(Y, "Y", dtype=torch.float64)
    check_lengths(Xt, Yt)
    Xn = Xt.cpu().numpy()
    Yn = Yt.cpu().numpy()
    n, d = Xn.shape
    k = Yn.shape[1]

    if fit_intercept:
        # Means in extended precision, so centring itself loses nothing measurable.
        x_mean = Xn.astype(np.longdouble).mean(axis=0)
        y_mean = Yn.astype(np.longdouble).mean(axis=0)
        A = (Xn - x_mean).astype(np.float64)
        B = (Yn - y_mean).astype(np.float64)
    else:
        x_mean = np.zeros(d, dtype=np.longdouble)
        y_mean = np.zeros(k, dtype=np.longdouble)
        A, B = Xn, Yn

    norms = np.linalg.norm(A, axis=0)
    scale = np.where(norms > 0, norms, 1.0)  # an all-zero column stays zero (rank deficient)
    A = A / scale

    eps = np.finfo(np.float64).eps
    factors: tuple[np.ndarray, np.ndarray] | None = None
    if n >= d:
        factors = np.linalg.qr(A)  # Householder (LAPACK geqrf): Q (n, d), R (d, d)
        s = np.linalg.svd(factors[1], compute_uv=False)
    else:
        s = np.linalg.svd(A, compute_uv=False)
    s_max = float(s[0]) if s.size else 0.0
    tol = s_max * max(n, d) * eps
    rank = int(np.sum(s > tol))
    s_min = float(s[-1]) if s.size == d else 0.0
    condition = s_max / s_min if s_min > 0 else math.inf

    if rank == d and factors is not None:
        Q, R = factors
        Z = _solve_upper(R, Q.T @ B)  # (d, k) in scaled units
        Z = _refine(A, B, Z, Q, R)
    else:
        warnings.warn(
            f"X is rank deficient (rank {rank} < {d} features after centring and scaling; "
            f"condition number {condition:.3g}): the least-squares solution is not unique, "
            "returning the minimum-norm one. Remove collinear or constant features.",
            RankDeficiencyWarning,
            stacklevel=2,
        )
        # Minimum norm in the *original* units: the rank comes from the scaled design, the
        # solution from the SVD of the unscaled (centred) one, truncated to that rank.
        U, S, Vt = np.linalg.svd(A * scale, full_matrices=False)
        r = min(rank, int(np.sum(S > 0)))
        Z = (Vt[:r].T @ ((U[:, :r].T @ B) / S[:r, None])) * scale[:, None]

    weight = (Z / scale[:, None]).T  # (k, d) in original units
    bias = (y_mean - weight.astype(np.longdouble) @ x_mean).astype(np.float64)
    return LeastSquaresResult(
        weight=torch.from_numpy(np.ascontiguousarray(weight)),
        bias=torch.from_numpy(np.ascontiguousarray(bias))
        if fit_intercept
        else torch.zeros(k, dtype=torch.float64),
        rank=rank,
        condition_number=condition,
        singular_values=torch.from_numpy(np.ascontiguousarray(s)),
    )
