"""Closed-form least squares: the exact optimum every iterative solver is measured against.

Method (all in float64, whatever the input dtype):

1. with an intercept, centre the columns of X and Y on their means (accumulated in extended
   precision); the intercept is recovered as ``bias = mean(Y) - weight @ mean(X)``. Centring
   removes the large common offset that makes polynomial designs such as NIST's Filip and
   Wampler files ill-conditioned;
2. Householder QR of the centred design (LAPACK ``geqrf`` through ``torch.geqrf``; Q stays in
   factored form and is applied with ``ormqr``, so memory is that of X) and a triangular solve;
   but a design whose condition (below) is at most :data:`_SNE_CONDITION` (1e3) is factored
   by the Cholesky factor R of its Gram matrix ``AᵀA`` (BLAS's ``syrk``, a fraction of
   Householder's work, no copy of X), refined beyond a condition of 4 by a second Cholesky
   (:func:`_second_cholesky`: CholeskyQR2 without keeping Q, so that ``R⁻¹``, the standard
   errors, is as accurate as Householder's), solved by the semi-normal equations
   ``RᵀR Z = AᵀB`` and always refined (4.): the corrected semi-normal equations. R's effects
   ``(QᵀB)[:d]`` are then ``R Z``. The bound and its measurements: :data:`_SNE_CONDITION`;
3. the condition number is that of the column-equilibrated design, read from ``R·D`` (Householder
   QR commutes with column scaling: the QR of ``A·D`` is ``Q·(R·D)``; so does the Cholesky
   factor);
4. iterative refinement: the residual is recomputed in extended precision (an error-free
   splitting of the design and the coefficients in Ozaki's manner, so that float64 BLAS
   products give the residual to about 2^-72 of the products rather than eps:
   :func:`residual_split`, a slice of rows at a time) and the correction solved with the same
   factors (by the semi-normal equations ``RᵀR dZ = Aᵀr`` on the Cholesky route), until it
   stops shrinking, falls below float64's resolution of the solution, or is small enough
   (2^-30 of it) that the next one would be (the corrections contract by the relative error
   of a solve). On large problems factored by Householder and not ill-conditioned (condition
   <= 1e4: forward error already near full precision) it is skipped.

Rank is read from the singular values of ``R·D`` (those of the equilibrated design) against
the usual tolerance ``s_max · max(n, d) · eps``. A rank-deficient design is *reported* with a
:class:`~gradfit.errors.RankDeficiencyWarning`, and one of two solutions is returned
(``rank_deficient``):

* ``"min-norm"`` (the default of :func:`least_squares`): the minimum-norm solution in the
  original units (SVD of the centred design, truncated at that rank);
* ``"aliased"``, R's convention (``lm``), which the ``lstsq`` solver, :func:`gradfit.ols`, the
  command line and model files follow: columns are taken in order and a column is *aliased*
  when its distance from the span of the kept columns before it (equilibrated design) is within
  the rank tolerance; so of collinear columns the later ones are aliased. The model is refitted
  on the kept columns and an aliased column's coefficient is exactly 0 (``aliased`` marks them).

Both give the same predictions on rows in the span of the training rows, and differ elsewhere
(a new row that breaks the collinearity); see :class:`gradfit.inference.Estimability`.

Weighted least squares (``sample_weight``, R's ``lm(..., weights = w)``): rows of weight 0 are
left out, the means are the weighted ones and every row of the centred design and targets is
scaled by ``sqrt(w)``; the same QR then minimises ``Σ w_i r_i²``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gradfit.errors import RankDeficiencyWarning, ValidationError
from gradfit.solvers.extended import column_norms, mean_ext, residual_split
from gradfit.validation import as_matrix, as_targets, check_lengths, check_weights

__all__ = [
    "RANK_DEFICIENT",
    "Factored",
    "LeastSquaresResult",
    "least_squares",
    "mean_ext",
    "solve_arrays",
]

_MAX_REFINEMENTS = 5
# Refinement in memory stops after a correction below this fraction of each target's largest
# coefficient: the corrections contract by about the relative error of a solve (≈ condition ·
# eps by Q and R, condition² · eps by the semi-normal equations: at most the size of the first
# correction, which measures the error of the first solve), so the next one would be about
# (2^-30)² = 2^-60 of Z, below float64's resolution of Z (2^-52) with a margin of 2^8 for
# that estimate. A well-conditioned fit thus takes one extended residual rather than two.
_SETTLED = 2.0**-30
# Up to this condition number κ (of the equilibrated design) the design is factored by the
# Cholesky factor of AᵀA, and the solution and its corrections come from the semi-normal
# equations RᵀR dZ = Aᵀr (products with A rather than Householder's QR and passes of Q).
# The numerical analysis: the Gram matrix's rounding in float64 and its Cholesky perturb
# AᵀA by about c·eps·||A||², i.e. (AᵀA)⁻¹ by c·κ²·eps (c grows with n and d at worst, about
# n·d; measured far smaller). So
# * a correction solved by RᵀR contracts the error by about c·κ²·eps per step (measured at
#   200,000 × 20: the first correction 1e-10 of Z at κ = 93, 3e-9 at 930, 1e-8 at 9,500; the
#   next 1e-12 or less): with the residual in extended precision the refinement converges
#   while c·κ²·eps << 1, to a fixed point as far from the solution as the Householder
#   route's (both about κ²·eps·||r||/||A|| where the residual r is large: Aᵀr's rounding
#   through (AᵀA)⁻¹, Qᵀr's through R⁻¹ of a perturbed A);
# * R⁻¹ (standard errors) from one Cholesky is off by about c·κ²·eps, from Householder's R
#   by κ·eps; a second Cholesky (of the Gram matrix of A R₁⁻¹, whose condition is
#   1 + O(κ²·eps)) gives R with Householder's accuracy: (RᵀR)⁻¹ = X (R₂ᵀR₂)⁻¹ Xᵀ, X = R₁⁻¹,
#   whatever X's error. It runs for κ > _ONE_CHOLESKY (below, one Cholesky's c·κ²·eps is
#   at most 16·c·eps, measured within 1.2 times Householder's errors).
# The bound 1e3 keeps c·κ²·eps <= 2^-6 even with the worst-case c = n·d at 1,000,000 × 50
# (1.1e-2), so refinement contracts (at most 2 steps measured, _MAX_REFINEMENTS 5); the first
# correction at κ = 1e3 is below 2^-25 of Z, so the settle rule (_SETTLED) stops after the
# second. Measured against exact rationals (2000 × 6, 1 and 3 targets, with an intercept and
# without, weighted, noise 1e-6 to 1e3, 30 designs per κ): the worst error of the
# Cholesky route over the designs / the Householder route's (refined):
#     κ          4     8    25    84   250   840  2500  8400  84000
#     coef     0.4   1.9   3.8   0.8   2.9   0.9   0.3   0.8   1.0
#     per design: SE <= 1.4 times, RSS <= 2.4, coef <= 28 times (median 0.5-0.9)
# and at 200,000 × 20 (κ 28 to 2,500, exact references): coefficients within 2.1 times the
# refined Householder route's and better than the unrefined one's (which large designs get),
# standard errors 5e-16 to 2e-15 against Householder's 8e-15 to 3e-14. So within a factor of
# 4 in the worst coefficient error and better in the standard errors, up to 1e4 measured; the
# bound is 1e3 from the worst-case constant. Beyond it Householder's QR (polynomial designs).
_SNE_CONDITION = 1e3
_ONE_CHOLESKY = 4.0  # up to this condition one Cholesky, beyond it two (see above)
_GRAM_ELEMENTS = 1 << 20  # elements of A per slice of the second Cholesky's product
RANK_DEFICIENT = ("min-norm", "aliased")


@dataclass(frozen=True)
class LeastSquaresResult:
    """Solution of ``min ||X @ weight.T + bias - Y||²`` (float64)."""

    weight: torch.Tensor  # (k, d)
    bias: torch.Tensor  # (k,), zeros without an intercept
    rank: int
    condition_number: float  # 2-norm condition number of the centred, column-scaled design
    singular_values: torch.Tensor  # (min(n, d),) of the centred, column-scaled design
    # (d,) bool: the columns whose coefficient was set to 0 as aliased (rank_deficient="aliased");
    # all False for a full-rank design or a minimum-norm solution. None where not computed.
    aliased: torch.Tensor | None = None

    @property
    def full_rank(self) -> bool:
        return self.rank == self.weight.shape[1]


_ALWAYS_REFINE = 1 << 22  # elements of X below which refinement always runs


class _HouseholderQR:
    """Householder QR (LAPACK geqrf) kept in factored form: Q is never formed."""

    def __init__(self, A: np.ndarray):
        self.d = A.shape[1]
        self.a, self.tau = torch.geqrf(torch.from_numpy(A))
        self.R = torch.triu(self.a[: self.d]).numpy()  # (d, d)

    def qt(self, B: np.ndarray) -> np.ndarray:
        """``(Qᵀ B)[:d]`` (d, k)."""
        QtB = torch.ormqr(
            self.a, self.tau, torch.from_numpy(np.ascontiguousarray(B)), left=True, transpose=True
        )
        top: np.ndarray = QtB[: self.d].numpy()
        return top

    def solve(self, B: np.ndarray) -> np.ndarray:
        """argmin ||A Z - B||: R Z = (Q^T B)[:d]."""
        return _solve_upper(self.R, self.qt(B))


def _refined(
    Z: np.ndarray,
    correction: Callable[[np.ndarray], np.ndarray],
    steps: int,
    settled: float = 0.0,
) -> np.ndarray:
    """Iterative refinement: ``Z`` plus ``correction(Z)``, at most ``steps`` times, while the
    corrections shrink, and until one is below float64's resolution of ``Z``, or (``settled``
    > 0) below ``settled`` of each target's largest coefficient (see :data:`_SETTLED`). In
    memory and for a stream (:mod:`gradfit.solvers.tsqr`), which differ only in how a
    correction is computed."""
    previous = math.inf
    for _ in range(steps):
        dZ = correction(Z)
        size = float(np.max(np.abs(dZ))) if dZ.size else 0.0
        if not size < previous:  # no longer contracting: stop before making it worse
            break
        Z = Z + dZ
        previous = size
        if size <= np.finfo(np.float64).eps * max(float(np.max(np.abs(Z))), 1e-300):
            break
        if settled > 0 and bool(np.all(np.abs(dZ).max(axis=0) <= settled * np.abs(Z).max(axis=0))):
            break
    return Z


def _refine_keeping(
    A: np.ndarray,
    B: np.ndarray,
    Z: np.ndarray,
    R: np.ndarray,
    qr: _HouseholderQR | None,
    condition: float = math.inf,
) -> tuple[np.ndarray, np.ndarray]:
    """Iterative refinement (residuals in extended precision by :func:`residual_split`,
    corrections by the same factor: Q and ``R``, or on a design of condition <=
    :data:`_SNE_CONDITION` (or without ``qr``) the semi-normal equations ``RᵀR dZ = Aᵀr``;
    stopping once settled: :data:`_SETTLED`), and the residuals ``B - A Z`` at the refined
    ``Z``: the last extended residual ``r`` (at ``Z_last``) less ``A (Z - Z_last)`` (a change
    of at most :data:`_SETTLED` of Z, or of the order of eps·|Z|, whose product's float64
    rounding is below the extended residual's own error; ``Z - Z_last`` is exact, Sterbenz),
    so the caller needs no further extended-precision pass."""
    last: list[np.ndarray] = []
    norms = column_norms(R)  # those of A: a bound on its entries

    def correction(Z: np.ndarray) -> np.ndarray:
        r = residual_split(A, B, Z, norms)
        last[:] = [Z, r]
        if qr is None or condition <= _SNE_CONDITION:
            return _solve_normal(R, A.T @ r)
        return qr.solve(r)

    Z = _refined(Z, correction, _MAX_REFINEMENTS, _SETTLED)
    Z_last, residual = last
    step = Z - Z_last
    if bool(np.any(step != 0)):
        residual = residual - A @ step
    return Z, residual


def _gram_factor(A: np.ndarray) -> np.ndarray | None:
    """The upper-triangular ``R`` (d, d) of ``RᵀR = AᵀA`` (Cholesky of the Gram matrix, formed
    by BLAS's ``syrk``), or None where the Gram matrix is not numerically positive definite
    or leaves float64's range (entries beyond about 2^±500: Householder's QR takes those)."""
    with np.errstate(over="ignore", invalid="ignore"):
        G = A.T @ A
    diagonal = np.diagonal(G)
    # finite, and squared norms in float64's normal range (subnormal sums lose digits)
    if not (bool(np.isfinite(G).all()) and bool((diagonal > 2.0**-1000).all())):
        return None
    return _upper_cholesky(G)


def _second_cholesky(A: np.ndarray, R1: np.ndarray) -> np.ndarray | None:
    """The factor ``R = R2 R1`` of ``A`` (n, d) refined from a first Cholesky factor ``R1`` of
    its Gram matrix (CholeskyQR2 without keeping Q): ``R2`` is the Cholesky factor of the Gram
    matrix of ``A X``, ``X = R1⁻¹``, summed a slice of rows at a time (no copy of A). Then
    ``(RᵀR)⁻¹ = X (R2ᵀR2)⁻¹ Xᵀ`` whatever X's own error, and ``A X`` has condition about
    ``1 + condition² · eps``: its Gram matrix's rounding (eps) and that of the product ``A X``
    (about condition · eps of it) are all that reach ``(RᵀR)⁻¹``, as for Householder's R
    (about condition · eps of it), where R1 alone has condition² · eps. None where the second
    Cholesky fails."""
    d = R1.shape[0]
    X = torch.linalg.solve_triangular(
        torch.from_numpy(R1), torch.eye(d, dtype=torch.float64), upper=True
    ).numpy()
    M = np.zeros((d, d))
    rows = max(1, _GRAM_ELEMENTS // max(d, 1))
    for start in range(0, A.shape[0], rows):
        Q = A[start : start + rows] @ X
        M += Q.T @ Q
    R2 = _upper_cholesky(M)
    return None if R2 is None else R2 @ R1


def _upper_cholesky(G: np.ndarray) -> np.ndarray | None:
    """The upper-triangular ``R`` (d, d) with ``RᵀR = G``, or None where the Cholesky
    factorization fails (G not numerically positive definite) or is not finite."""
    L, info = torch.linalg.cholesky_ex(torch.from_numpy(np.ascontiguousarray(G)))
    if int(info) != 0 or not bool(torch.isfinite(L).all()):
        return None
    R: np.ndarray = L.T.contiguous().numpy()
    return R


def _solve_upper(R: np.ndarray, B: np.ndarray) -> np.ndarray:
    solution: np.ndarray = torch.linalg.solve_triangular(
        torch.from_numpy(R), torch.from_numpy(np.ascontiguousarray(B)), upper=True
    ).numpy()
    return solution


def _solve_normal(R: np.ndarray, AtB: np.ndarray) -> np.ndarray:
    """``Z`` of the (semi-)normal equations ``RᵀR Z = AᵀB``, given ``AᵀB``: two triangular
    solves."""
    lower = torch.linalg.solve_triangular(
        torch.from_numpy(np.ascontiguousarray(R.T)),
        torch.from_numpy(np.ascontiguousarray(AtB)),
        upper=False,
    ).numpy()
    return _solve_upper(R, lower)


def _spectrum(M: np.ndarray, n: int, d: int) -> tuple[np.ndarray, np.ndarray, int, float, float]:
    """For ``M`` (A itself, or a triangular factor R with ``RᵀR = AᵀA``) of a centred design of
    n rows and d columns: the column scale that equilibrates it (its column norms, 1 for an
    all-zero column, which stays zero), the singular values of the equilibrated ``M / scale``,
    and from them the rank, its tolerance and the condition number
    (:func:`_rank_and_condition`)."""
    norms = column_norms(M)
    scale = np.where(norms > 0, norms, 1.0)
    s = np.linalg.svd(M / scale, compute_uv=False)
    rank, tol, condition = _rank_and_condition(s, n, d)
    return scale, s, rank, tol, condition


def _rank_and_condition(s: np.ndarray, n: int, d: int) -> tuple[int, float, float]:
    """From the singular values ``s`` of a centred, column-scaled design of n rows and d
    columns: its numerical rank (the values above ``s_max · max(n, d) · eps``), that tolerance,
    and its 2-norm condition number (inf when fewer than d values or the smallest is 0)."""
    s_max = float(s[0]) if s.size else 0.0
    tol = s_max * max(n, d) * np.finfo(np.float64).eps
    rank = int(np.sum(s > tol))
    s_min = float(s[-1]) if s.size == d and d else 0.0
    condition = s_max / s_min if s_min > 0 else math.inf
    return rank, tol, condition


def _min_norm_solution(
    M: np.ndarray, rhs: np.ndarray, rank: int, d: int, condition: float, stacklevel: int = 3
) -> np.ndarray:
    """Warn that X is rank deficient, then the minimum-norm ``Z`` of ``M Z ≈ rhs`` from the SVD
    of ``M`` truncated to ``rank`` (M: the centred data in memory, or their R factor for a
    stream; the rank comes from the scaled design). The warning names the caller's caller,
    the user's call of :func:`least_squares` or of the streaming solve."""
    warnings.warn(
        f"X is rank deficient (rank {rank} < {d} features after centring and scaling; "
        f"condition number {condition:.3g}): the least-squares solution is not unique, "
        "returning the minimum-norm one. Remove collinear or constant features.",
        RankDeficiencyWarning,
        stacklevel=stacklevel,
    )
    U, S, Vt = np.linalg.svd(M, full_matrices=False)
    r = min(rank, int(np.sum(S > 0)))
    Z: np.ndarray = Vt[:r].T @ ((U[:, :r].T @ rhs) / S[:r, None])
    return Z


def _result(
    Z: np.ndarray,
    x_mean: np.ndarray,
    y_mean: np.ndarray,
    fit_intercept: bool,
    rank: int,
    condition: float,
    s: np.ndarray,
    aliased: torch.Tensor | None = None,
) -> LeastSquaresResult:
    """The result of coefficients ``Z`` (d, k) of the centred data: the bias from the means,
    in extended precision (the data were centred on these float64 values, so the
    reparametrisation is exact)."""
    weight = Z.T  # (k, d)
    bias = (
        y_mean.astype(np.longdouble) - weight.astype(np.longdouble) @ x_mean.astype(np.longdouble)
    ).astype(np.float64)
    return LeastSquaresResult(
        weight=torch.from_numpy(np.ascontiguousarray(weight)),
        bias=torch.from_numpy(np.ascontiguousarray(bias))
        if fit_intercept
        else torch.zeros(weight.shape[0], dtype=torch.float64),
        rank=rank,
        condition_number=condition,
        singular_values=torch.from_numpy(np.ascontiguousarray(s)),
        aliased=aliased,
    )


def least_squares(
    X: Any,
    Y: Any,
    *,
    fit_intercept: bool = True,
    rank_deficient: str = "min-norm",
    sample_weight: Any = None,
) -> LeastSquaresResult:
    """Exact least-squares fit of a (multi-output) linear model, in float64.

    Parameters
    ----------
    X : (n, d) tensor or array
    Y : (n,) or (n, k) tensor or array
    fit_intercept : bool
        Fit a bias per target (centre the data) or force the model through the origin.
    rank_deficient : {"min-norm", "aliased"}
        The solution returned when X is rank deficient (see the module's docstring): the
        minimum-norm one, or R's (later collinear columns aliased: coefficient 0).
    sample_weight : (n,) tensor or array, optional
        Row weights, finite and >= 0, not all 0: weighted least squares (minimises
        ``Σ w_i r_i²``; rows of weight 0 are left out, as in R's ``lm``).

    Returns
    -------
    LeastSquaresResult
        ``weight`` (k, d), ``bias`` (k,), ``rank``, ``condition_number``, ``singular_values``,
        ``aliased`` (d,).

    Warns
    -----
    RankDeficiencyWarning
        X is rank deficient; the message says which solution is returned.

    Examples
    --------
    >>> import torch
    >>> X = torch.tensor([[0.0], [1.0], [2.0]])
    >>> r = least_squares(X, 3 * X[:, 0] + 1)
    >>> round(r.weight.item(), 6), round(r.bias.item(), 6), r.rank
    (3.0, 1.0, 1)
    """
    if rank_deficient not in RANK_DEFICIENT:
        raise ValidationError(
            f"rank_deficient must be 'min-norm' or 'aliased', got {rank_deficient!r}"
        )
    Xt = as_matrix(X, "X", dtype=torch.float64)
    Yt = as_targets(Y, "Y", dtype=torch.float64)
    check_lengths(Xt, Yt)
    Xn = Xt.cpu().numpy()
    Yn = Yt.cpu().numpy()
    w: np.ndarray | None = None
    if sample_weight is not None:
        w = check_weights(sample_weight, Xn.shape[0]).numpy()
        if not bool((w > 0).all()):
            keep = w > 0
            Xn, Yn, w = Xn[keep], Yn[keep], w[keep]
    return solve_arrays(Xn, Yn, fit_intercept, rank_deficient, w)[0]


@dataclass(frozen=True)
class Factored:
    """The one factorization of a full-rank fit in memory, for :func:`gradfit.ols` to reuse
    (standard errors, effects, leverages) rather than factor the design again: the centred
    (and, weighted, sqrt(w)-scaled) design ``A`` (n, d) and targets ``B`` (n, k), their
    means, the Householder QR of ``A`` in LAPACK's compact form (``a``, ``tau``: Q is never
    formed; None where the design's condition is at most :data:`_SNE_CONDITION` and ``R`` is
    the Cholesky factor of ``AᵀA``), its ``R`` (d, d) with ``RᵀR = AᵀA``, ``qtb`` =
    ``(Qᵀ B)[:d]`` (R's effects; ``R Z`` at the solution on the Cholesky route) and, when the
    solution was refined, the residuals ``B - A Z`` at the solution (rounded from extended
    precision)."""

    A: np.ndarray
    B: np.ndarray
    x_mean: np.ndarray
    y_mean: np.ndarray
    a: torch.Tensor | None  # None where R is the Gram matrix's Cholesky factor
    tau: torch.Tensor | None
    R: np.ndarray
    qtb: np.ndarray
    residual: np.ndarray | None = None  # B - A Z (n, k) in extended precision, when refined


def solve_arrays(
    Xn: np.ndarray,
    Yn: np.ndarray,
    fit_intercept: bool,
    rank_deficient: str = "aliased",
    w: np.ndarray | None = None,
) -> tuple[LeastSquaresResult, Factored | None]:
    """:func:`least_squares` of checked float64 arrays ``Xn`` (n, d), ``Yn`` (n, k) and
    positive weights ``w`` (n,) or None, and, for a full-rank design with n >= d, its
    :class:`Factored` (None otherwise)."""
    n, d = Xn.shape
    k = Yn.shape[1]

    if fit_intercept:
        # Means in extended precision; the data are centred on their float64 roundings, and
        # the bias below uses the same values, so the reparametrisation is exact.
        x_mean = mean_ext(Xn, w)
        y_mean = mean_ext(Yn, w)
        A = Xn - x_mean
        B = Yn - y_mean
    else:
        x_mean, y_mean = np.zeros(d), np.zeros(k)
        A, B = Xn, Yn
    if w is not None:
        root = np.sqrt(w)[:, None]
        A, B = A * root, B * root

    A = np.ascontiguousarray(A)
    qr: _HouseholderQR | None = None
    R: np.ndarray | None = None
    if n >= d:
        # A well-conditioned design (condition <= _SNE_CONDITION) is factored by the Cholesky
        # factor of its Gram matrix (a fraction of Householder's work, and no copy of A), every
        # other by Householder.
        R = _gram_factor(A)
        if R is not None:
            scale, s, rank, tol, condition = _spectrum(R, n, d)
            if not (rank == d and condition <= _SNE_CONDITION):
                R = None
            elif condition > _ONE_CHOLESKY:
                R = _second_cholesky(A, R)
                if R is not None:  # the singular values of the refined factor
                    scale, s, rank, tol, condition = _spectrum(R, n, d)
        if R is None:
            # Householder QR is invariant under column scaling (QR of A·D is Q·(R·D)), so
            # factor the centred data as they are and equilibrate R: the column norms of A are
            # those of R.
            qr = _HouseholderQR(A)
            R = qr.R
            scale, s, rank, tol, condition = _spectrum(R, n, d)
    else:
        scale, s, rank, tol, condition = _spectrum(A, n, d)

    if rank == d and R is not None:
        residual = None
        if qr is None:
            # Corrected semi-normal equations: RᵀR Z = AᵀB, refined (always: their error is
            # about condition² · eps, that of a QR solve condition · eps), and R's effects
            # (QᵀB)[:d] = R Z at the least-squares solution (R's diagonal positive).
            Z = _solve_normal(R, A.T @ B)
            Z, residual = _refine_keeping(A, B, Z, R, None, condition)
            qtb = R @ Z
        else:
            # Refinement pays where rounding can cost digits; on large, well-conditioned
            # problems (forward error ~ condition * eps, already near full precision) it is
            # skipped.
            qtb = qr.qt(B)
            Z = _solve_upper(R, qtb)  # (d, k), original units
            if A.size <= _ALWAYS_REFINE or condition > 1e4:
                Z, residual = _refine_keeping(A, B, Z, R, qr, condition)
    elif rank_deficient == "aliased":
        F = R / scale if R is not None else _r_factor(A / scale)  # equilibrated R
        weight_a, bias_a, kept = _fit_kept(Xn, Yn, fit_intercept, F, tol, w)
        aliased = np.flatnonzero(~kept)
        warnings.warn(
            f"X is rank deficient (rank {rank} < {d} features after centring and scaling; "
            f"condition number {condition:.3g}): column(s) {', '.join(map(str, aliased))} "
            "(counted from 0) are combinations of the columns before them; as in R, their "
            "coefficients are set to 0 and the others are estimated without them. Remove "
            "collinear or constant features.",
            RankDeficiencyWarning,
            stacklevel=3,
        )
        aliased_result = LeastSquaresResult(
            weight=torch.from_numpy(np.ascontiguousarray(weight_a)),
            bias=torch.from_numpy(np.ascontiguousarray(bias_a)),
            rank=rank,
            condition_number=condition,
            singular_values=torch.from_numpy(np.ascontiguousarray(s)),
            aliased=torch.from_numpy(~kept),
        )
        return aliased_result, None
    else:
        # Minimum norm in the *original* units: the rank comes from the scaled design, the
        # solution from the SVD of the unscaled (centred) one, truncated to that rank.
        Z = _min_norm_solution(A, B, rank, d, condition, stacklevel=4)
    none = torch.zeros(d, dtype=torch.bool)  # no column aliased
    result = _result(Z, x_mean, y_mean, fit_intercept, rank, condition, s, none)
    if rank < d or R is None:
        return result, None
    a, tau = (None, None) if qr is None else (qr.a, qr.tau)
    return result, Factored(A, B, x_mean, y_mean, a, tau, R, qtb, residual)


def _r_factor(A: np.ndarray) -> np.ndarray:
    """The upper-triangular factor (min(n, d), d) of the Householder QR of A (n, d)."""
    a, _ = torch.geqrf(torch.from_numpy(np.ascontiguousarray(A)))
    R: np.ndarray = torch.triu(a[: min(A.shape)]).numpy()
    return R


def independent_columns(F: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Which columns of F (m, d), taken in order, are not (numerically) combinations of the
    columns kept before them: column j is kept when its distance from their span exceeds
    ``tol``. F is any matrix with the Gram matrix of the equilibrated design (its R factor,
    or a square root from the statistics). Returns the kept mask (d,) and the distances (d,).
    Classical Gram-Schmidt, applied twice per column, which keeps the basis orthonormal to
    working precision. This is R's rule (``lm``'s pivoting moves each such column to the end):
    of collinear columns, the later ones are aliased."""
    m, d = F.shape
    basis = np.zeros((m, d))
    count = 0
    kept = np.zeros(d, dtype=bool)
    distance = np.zeros(d)
    for j in range(d):
        v = F[:, j].copy()
        for _ in range(2):
            v -= basis[:, :count] @ (basis[:, :count].T @ v)
        rho = float(np.linalg.norm(v))
        distance[j] = rho
        if rho > tol:
            basis[:, count] = v / rho
            count += 1
            kept[j] = True
    return kept, distance


def drop_weakest(kept: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Alias one more column: the kept one closest to the span of those before it."""
    index = np.flatnonzero(kept)
    out: np.ndarray = kept.copy()
    out[index[np.argmin(distance[index])]] = False
    return out


def _fit_kept(
    Xn: np.ndarray,
    Yn: np.ndarray,
    fit_intercept: bool,
    F: np.ndarray,
    tol: float,
    w: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R's solution of a rank-deficient design: weight (k, d) with 0 for the aliased columns,
    bias (k,) and the kept mask (d,). ``F``: the R factor of the equilibrated (centred)
    design; ``tol``: the rank tolerance on its scale. The kept columns are refitted; where
    that fit still finds them deficient (a borderline column), one more is aliased. ``w``:
    the (positive) row weights of a weighted fit."""
    d, k = Xn.shape[1], Yn.shape[1]
    kept, distance = independent_columns(F, tol)
    while True:
        weight = np.zeros((k, d))
        if not kept.any():
            bias = mean_ext(Yn, w) if fit_intercept else np.zeros(k)
            return weight, bias, kept
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RankDeficiencyWarning)  # the caller warns once
            sub = least_squares(Xn[:, kept], Yn, fit_intercept=fit_intercept, sample_weight=w)
        if sub.rank == int(kept.sum()):
            weight[:, kept] = sub.weight.numpy()
            return weight, sub.bias.numpy(), kept
        kept = drop_weakest(kept, distance)
