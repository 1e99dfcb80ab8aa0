"""Numerics of the inference: extended-precision means and residuals, column norms, and the
inverse of a triangular factor.

Everything is float64 NumPy; sums that lose digits to cancellation (the column means, the
residuals of a nearly exact fit) are computed in extended precision by the solver's routines
(:func:`gradfit.solvers.lstsq.mean_ext`, :func:`gradfit.solvers.lstsq.residual_split`), a chunk
of rows at a time.
"""

from __future__ import annotations

import numpy as np
import torch

# the solver's: one extended-precision mean and residual
from gradfit.solvers.lstsq import mean_ext, residual_split

__all__ = [
    "EPS",
    "column_norms",
    "mean_ext",
    "residuals",
    "solve_upper_identity",
    "sum_squares",
]

EPS = float(np.finfo(np.float64).eps)
_EXTENDED_RESIDUALS = 1 << 22  # elements of X below which residuals are always extended


def column_norms(M: np.ndarray) -> np.ndarray:
    """Euclidean column norms, scaled by each column's largest entry (no overflow)."""
    big = np.abs(M).max(axis=0) if M.shape[0] else np.zeros(M.shape[1])
    safe = np.where(big > 0, big, 1.0)
    norms: np.ndarray = big * np.sqrt(((M / safe) ** 2).sum(axis=0))
    return norms


def sum_squares(M: np.ndarray) -> np.ndarray:
    """The sums of squares of the columns of M (n, k), each summed pairwise along a contiguous
    copy of the column (NumPy sums an axis-0 reduction of a C-ordered array row after row,
    with an error growing as n rather than log n, and several times slower for k > 1)."""
    by_column = np.ascontiguousarray(M.T)
    sums: np.ndarray = np.square(by_column).sum(axis=1)
    return sums


def solve_upper_identity(R: np.ndarray) -> np.ndarray:
    """R⁻¹ of an upper-triangular R, by a triangular solve against the identity."""
    eye = torch.eye(R.shape[0], dtype=torch.float64)
    inverse: np.ndarray = torch.linalg.solve_triangular(
        torch.from_numpy(np.ascontiguousarray(R)), eye, upper=True
    ).numpy()
    return inverse


def residuals(A: np.ndarray, B: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``B - A @ W.T`` (n, k). In extended precision (:func:`residual_split`, rounded to
    float64) on small problems and whenever the fit is nearly exact, where the float64
    rounding of the products would be a large part of the residuals."""
    E: np.ndarray = B - A @ W.T
    ss_res = sum_squares(E)
    ss_tot = sum_squares(B)
    if A.size > _EXTENDED_RESIDUALS and bool(np.all(ss_res > 1e-4 * ss_tot)):
        return E
    return residual_split(A, B, np.ascontiguousarray(W.T))
