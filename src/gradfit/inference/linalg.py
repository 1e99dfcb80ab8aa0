"""Numerics of the inference: extended-precision means and residuals, column norms, sums of
squares, the residuals' quartiles and the inverse of a triangular factor.

Everything is float64 NumPy; sums that lose digits to cancellation (the column means, the
residuals of a nearly exact fit) are computed in extended precision by the solver's routines
(:func:`gradfit.solvers.extended.mean_ext`, :func:`gradfit.solvers.extended.residual_split`),
a chunk of rows at a time.
"""

from __future__ import annotations

import math

import numpy as np
import torch

# the solver's: one extended-precision mean and residual, one column norm
from gradfit.solvers.extended import column_norms, mean_ext, residual_split

__all__ = [
    "EPS",
    "column_norms",
    "mean_ext",
    "residual_quantiles",
    "residuals",
    "solve_upper_identity",
    "sum_squares",
]

EPS = float(np.finfo(np.float64).eps)
_SQUARES_ROWS = 2048  # rows per einsum of sum_squares
_EXTENDED_RESIDUALS = 1 << 22  # elements of X below which residuals are always extended


def sum_squares(M: np.ndarray) -> np.ndarray:
    """The sums of squares of the columns of M (n, k): one column summed pairwise (NumPy's
    sum of a contiguous array, error ~ log2(n) · eps), several by ``einsum`` over chunks of
    :data:`_SQUARES_ROWS` rows added up (error at most ``(2048 + n / 2048) · eps``, where an
    axis-0 ``sum`` of a C-ordered array runs row after row, error up to ``n · eps``, and
    several times slower)."""
    if M.shape[1] == 1:
        return np.array([float(np.square(M[:, 0]).sum())])
    sums = np.zeros(M.shape[1])
    for start in range(0, M.shape[0], _SQUARES_ROWS):
        chunk = M[start : start + _SQUARES_ROWS]
        sums += np.einsum("ij,ij->j", chunk, chunk)
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


_QUANTILES = np.array([0.0, 0.25, 0.5, 0.75, 1.0])


def residual_quantiles(E: np.ndarray) -> np.ndarray:
    """The quartiles (min, 25%, median, 75%, max) of each column of E (n, k), (k, 5):
    ``np.quantile(E, [0, .25, .5, .75, 1], axis=0).T`` to the last bit (R's type 7, and
    NumPy's interpolation, :func:`_lerp`), from the sorted columns: NumPy's vectorized sort
    of a contiguous row is about twice as fast as the partition at the nine ranks that
    ``np.quantile`` asks for (measured at 200,000 values)."""
    n, k = E.shape
    if n == 0:
        return np.full((k, 5), math.nan)
    virtual = (n - 1) * _QUANTILES  # exact: n - 1 < 2^53 times 0, 1/4, 1/2, 3/4, 1
    previous = np.floor(virtual)
    below_top = virtual < n - 1
    low = np.where(below_top, previous, n - 1).astype(np.intp)
    high = np.where(below_top, previous + 1, n - 1).astype(np.intp)
    # NumPy takes index -1 at the top: there γ = (n - 1) - (-1)
    gamma = np.where(below_top, virtual - previous, float(n))
    ordered = np.sort(E.T, axis=1)  # (k, n)
    return _lerp(ordered[:, low], ordered[:, high], gamma)


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """NumPy's linear interpolation of its quantiles (``numpy.lib._function_base_impl._lerp``),
    operation for operation: ``a + (b - a) t``, or ``b - (b - a) (1 - t)`` where t >= 1/2."""
    diff = b - a
    result: np.ndarray = a + diff * t
    np.subtract(b, diff * (1 - t), out=result, where=np.broadcast_to(t >= 0.5, result.shape))
    return result
