"""Sums and residuals in extended precision on float64 BLAS, for the closed form.

The exact path (:mod:`gradfit.solvers.lstsq`, and :mod:`gradfit.inference` through it) needs
column means and residuals ``B - A Z`` more accurate than float64's own arithmetic gives:
the means centre the data, the residuals drive iterative refinement and are reused for RSS.
Both are done here by an error-free splitting in Ozaki's manner (:func:`residual_split`,
:func:`_mean_split`): operands rounded to power-of-two grids whose products and sums float64
holds exactly, so that BLAS's products stay exact whatever their summation order; NumPy's
80-bit ``longdouble`` is the fallback where a grid would leave float64's exponent range, and
for weighted means up to :data:`_EXACT_MEAN` elements. Pure arithmetic on arrays: no
factorization, no files.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["column_norms", "mean_ext", "residual_split", "split_design"]

_CHUNK = 1 << 16
_EXACT_MEAN = 1 << 22  # elements of X up to which the means are summed in longdouble


def mean_ext(M: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Column means (float64) accumulated in extended precision, a chunk of rows at a time
    (bounded memory); weighted by ``w`` (n,) (``Σ w_i m_i / Σ w_i``) when given.

    Unweighted, by an error-free splitting (:func:`_mean_split`: float64 sums, several times
    faster than ``longdouble`` arithmetic and more accurate). Weighted, in ``longdouble`` up to
    :data:`_EXACT_MEAN` elements and above it by a corrected two-pass mean in float64 (the
    mean, then the mean of the deviations from it added), which is as accurate where it
    matters most (a large common offset: the deviations are small and their sum loses
    nothing). The data are centred on these values and the bias is recovered from the same
    ones; their rounding shows in the bias (NIST's Filip and Wampler1 keep 0.4 to 0.9 digit
    more with the extended-precision means than with the two-pass ones)."""
    if w is None:
        split = _mean_split(M)
        if split is not None:
            return split
    if M.size > _EXACT_MEAN:
        return _mean_two_pass(M, w)
    total = np.zeros(M.shape[1], dtype=np.longdouble)
    for start in range(0, M.shape[0], _CHUNK):
        chunk = M[start : start + _CHUNK].astype(np.longdouble)
        if w is not None:
            chunk *= w[start : start + _CHUNK, None].astype(np.longdouble)
        total += chunk.sum(axis=0)
    count = max(M.shape[0], 1) if w is None else np.sum(w.astype(np.longdouble))
    mean: np.ndarray = (total / count).astype(np.float64)
    return mean


def _mean_split(M: np.ndarray) -> np.ndarray | None:
    """Column means of M (n, d) by an error-free splitting, or None where it does not apply
    (no rows, a zero column, or a column whose norm is beyond 2^900 or below 2^-450: its sum
    of squares would leave float64's range).

    Each column l is split as ``hi + lo`` with ``hi`` rounded to a multiple of ``2^(γ_l - s)``,
    where ``|M[:, l]| <= ||M[:, l]|| < 2^γ_l`` and ``s = min(51, 53 - ceil(log2 n))`` (see
    :func:`split_design`): ``Σ hi`` is a sum of n integers of at most s bits times the grid,
    at most 53 bits however it is summed, so BLAS's product with a vector of ones gives it
    exactly; ``Σ lo`` (each ``|lo| <= 2^(γ_l - s - 1)``) is in error by at most
    ``n · eps · n · 2^(γ_l - s - 1)``, about ``n^3 · 2^(γ_l - 107)``: for the mean, below
    ``2^-54 · sqrt(n) / n`` of the column's largest entry (``2^γ_l`` exceeds it by up to
    ``sqrt(n)``), where ``longdouble``'s running sums allow ``n · 2^-64`` of it. The two sums
    are added and divided by n in ``longdouble`` and rounded once to float64."""
    n, d = M.shape
    if not (n and d):
        return None
    norms = np.sqrt(np.einsum("ij,ij->j", M, M))
    if not bool(np.all((norms > 0) & (norms < 2.0**900) & (norms > 2.0**-450))):
        return None
    gamma = np.frexp(norms * (1.0 + 2.0**-20))[1].astype(np.int64)  # margin: the norm's rounding
    s = min(51, 53 - (n - 1).bit_length())
    total_high, total_low = np.zeros(d), np.zeros(d)
    for _, _, high, low in _split_slices(M, np.ldexp(1.5, gamma - s + 52)):
        ones = np.ones(high.shape[0])
        total_high += ones @ high  # exact
        total_low += ones @ low
    mean: np.ndarray = (
        (total_high.astype(np.longdouble) + total_low.astype(np.longdouble)) / n
    ).astype(np.float64)
    return mean


def _mean_two_pass(M: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Column means (weighted by ``w``) in float64: ``m = mean(M)``, then ``m + mean(M - m)``
    (a chunk of rows at a time; bounded memory)."""
    count = float(max(M.shape[0], 1)) if w is None else float(np.sum(w))
    first: np.ndarray = (M.sum(axis=0) if w is None else w @ M) / count
    correction = np.zeros(M.shape[1])
    for start in range(0, M.shape[0], _CHUNK):
        deviation = M[start : start + _CHUNK] - first
        if w is None:
            correction += deviation.sum(axis=0)
        else:
            correction += w[start : start + _CHUNK] @ deviation
    mean: np.ndarray = first + correction / count
    return mean


def column_norms(M: np.ndarray) -> np.ndarray:
    """Euclidean column norms of M (n, d) without overflow or underflow: each column scaled by
    its largest entry (1 for an all-zero column, whose norm is 0) before it is squared.

    The one helper of the solvers (:func:`residual_split`'s bound on the entries,
    :mod:`gradfit.solvers.lstsq`'s equilibration) and the inference
    (:mod:`gradfit.inference.linalg` re-exports it). The squares are added by NumPy's
    ``sum(axis=0)``: row after row across a C-ordered M of several columns, where it gives
    the bits of ``einsum('ij,ij->j')`` (the solvers' former sum: the same on every call the
    tests make), and pairwise down a contiguous column (a Fortran-ordered M, a single
    column), where it is the more accurate of the two (about ``log2(n) · eps`` against
    ``n · eps``); it is not slower on either."""
    big = np.abs(M).max(axis=0) if M.shape[0] else np.zeros(M.shape[1])
    safe = np.where(big > 0, big, 1.0)
    norms: np.ndarray = big * np.sqrt(((M / safe) ** 2).sum(axis=0))
    return norms


def _residual_ext(A: np.ndarray, B: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """``B - A @ Z`` computed in extended precision, rounded to float64 (chunked)."""
    Z_ext = Z.astype(np.longdouble)
    out = np.empty(B.shape, dtype=np.float64)
    for start in range(0, A.shape[0], _CHUNK):
        stop = start + _CHUNK
        # np.dot: 1.0-1.5x faster than matmul's loop for longdouble (no BLAS for either)
        out[start:stop] = B[start:stop] - np.dot(A[start:stop].astype(np.longdouble), Z_ext)
    return out


_SPLIT_ELEMENTS = 1 << 16  # elements of A per slice of the split residual (in cache)
_SPLIT_RANGE = 960  # |exponent| of a split's grid beyond which longdouble is used instead


def _split_bits(d: int, waste: int = 0) -> tuple[int, int]:
    """The bits ``(s, t)`` of the exact parts of A and Z in :func:`residual_split` for d
    columns: ``s + t = 53 - ceil(log2 d)``, shared evenly but for ``waste`` more bits to
    ``s`` (those that a loose bound on ``|A|`` leaves unused)."""
    bits = 53 - max(d - 1, 0).bit_length()
    t = (bits - min(max(waste, 0), bits // 2 - 8)) // 2
    return bits - t, t


def _split_grids(
    big: np.ndarray, Z: np.ndarray, s: int, t: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """For a slice of rows of A with ``|A[:, l]| <= big[l]`` and ``Z`` (d, k): the shift
    ``σ_A`` (d,) that splits A (see :func:`residual_split`), ``Z1`` and ``Z2 = Z - Z1``
    (d, k); None where a grid would leave float64's exponent range (beyond
    ±:data:`_SPLIT_RANGE`)."""
    gamma = np.frexp(big)[1].astype(np.int64)  # |A[:, l]| <= big < 2^γ_l (0 for a zero column)
    nonzero = Z != 0
    e = np.frexp(Z)[1].astype(np.int64)  # |Z| < 2^e
    K = np.where(nonzero, gamma[:, None] + e, -(1 << 40)).max(axis=0)  # (k,)
    K = np.where(nonzero.any(axis=0), K, 0)  # a target whose Z is all 0
    grid_z = K[None, :] - gamma[:, None] - t  # (d, k): the exponents of Z1's grids
    worst = max(
        int(np.abs(gamma).max()) + s,
        int(np.abs(grid_z).max()) + 53,
        int(np.abs(K).max()) + s + t,
    )
    if worst > _SPLIT_RANGE:
        return None
    sigma_z = np.ldexp(1.5, grid_z + 52)
    Z1 = (Z + sigma_z) - sigma_z
    return np.ldexp(1.5, gamma - s + 52), Z1, Z - Z1


def split_design(A: np.ndarray, sigma: np.ndarray, high: np.ndarray, low: np.ndarray) -> None:
    """``A`` (m, d) split into ``high = A1``, A rounded to the grid of the last bit of ``σ``
    exactly (``fl(fl(A + σ) - σ)``), and ``low = A2 = A - A1`` (exact). ``σ``: (m, d) (the
    same row repeated: contiguous operands make NumPy's loops several times faster than a
    broadcast row of d values) or (d,)."""
    np.add(A, sigma, out=high)
    np.subtract(high, sigma, out=high)
    np.subtract(A, high, out=low)


def _split_slices(
    M: np.ndarray, sigma_row: np.ndarray
) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """``M`` (n, d) split by :func:`split_design` on the grids of ``σ`` (d,), a slice of about
    :data:`_SPLIT_ELEMENTS` elements at a time (in cache): ``(start, stop, A1, A2)`` of rows
    ``start:stop``, A1 and A2 in two buffers reused from one slice to the next."""
    n, d = M.shape
    rows = max(1, _SPLIT_ELEMENTS // d)
    sigma = np.tile(sigma_row, (min(rows, n), 1))
    high, low = np.empty_like(sigma), np.empty_like(sigma)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        m = stop - start
        split_design(M[start:stop], sigma[:m], high[:m], low[:m])
        yield start, stop, high[:m], low[:m]


def residual_split(
    A: np.ndarray, B: np.ndarray, Z: np.ndarray, norms: np.ndarray | None = None
) -> np.ndarray:
    """``B - A @ Z`` (n, k) to about ``2d · 2^-(53 + t)`` of ``max_l |A[:, l]| |Z[l]|``
    before its rounding to float64 (t below; 200,000 × 20: 2^-73), with float64 BLAS
    products only: an error-free splitting in Ozaki's manner, a slice of rows at a time.
    ``norms`` (d,): A's column norms (a bound on its entries), computed when None.

    With ``s + t = 53 - ceil(log2 d)`` bits, each column l of A is split as ``A1 + A2``,
    ``A1`` rounded to a multiple of ``2^(γ_l - s)`` where ``|A[:, l]| <= norms[l] < 2^γ_l``
    (so ``|A1| <= 2^γ_l``, ``|A2| <= 2^(γ_l - s - 1)``), and each target's column of Z as
    ``Z1 + Z2``, ``Z1[l]`` rounded to a multiple of ``2^(K - γ_l - t)``,
    ``K = max_l(γ_l + e_l)`` with ``|Z[l]| < 2^e_l`` (so ``|Z1[l]| <= 2^(K - γ_l)``). Each
    product ``A1[i, l] Z1[l]`` is then an integer of at most ``s + t`` bits times
    ``2^(K - s - t)``, and every partial sum of d of them one of at most 53 bits:
    ``A1 @ Z1`` is exact, whatever the order of BLAS's sums or its use of FMA. The rest,
    ``A1 Z2 + A2 Z``, is below ``d · (2^(K - t) + 2^(K - s))``; it is two float64 products,
    in error by at most ``2d · eps`` of that, and ``(B - A1 Z1) - (A1 Z2 + A2 Z)`` adds
    ``eps`` of the result and of that rest. The error before the final rounding is thus
    about ``2d · 2^-53 · (2^-t + 2^-s) · 2^K``, where ``longdouble`` (64-bit significand)
    gives ``d · 2^-64 · Σ_l |A[i, l]| |Z[l]|`` row by row. The norm exceeds a column's
    largest entry by up to ``sqrt(n)`` (``2^K`` by as much over ``max_l |A[:, l]| |Z[l]|``),
    which costs A's part those bits: ``s`` gets ``log2(n)/2 - 2`` more than ``t`` (200,000
    × 20: s = 28, t = 20: about ``2^-73 · 2d`` of ``2^K``; where the norm is the largest
    entry, ``2^K`` is within 4 of ``max_l |A[:, l]| |Z[l]|``). Row by row, ``longdouble``'s
    bound is tighter only for rows far smaller than the columns' largest entries. With more
    columns the bits shrink slowly (d = 1000: s + t = 43).

    The splits ``fl(fl(x + σ) - σ)`` with ``σ = 1.5 · 2^(g + 52)`` round x to the grid ``2^g``
    exactly where ``|x| < 2^(g + 51)`` (``x + σ`` stays in σ's binade, whose last bit is
    ``2^g``, and the subtraction is exact by Sterbenz), which ``|x| < 2^γ`` grants for s, t
    <= 51; ``x - fl(fl(x + σ) - σ)`` is then exact too, zeros included. Where the
    grids would leave float64's exponent range (beyond ±:data:`_SPLIT_RANGE`: entries near
    2^±1000), it is computed in ``longdouble`` (:func:`_residual_ext`) instead."""
    n, d = A.shape
    k = Z.shape[1]
    if not (n and d and k):
        empty: np.ndarray = B - A @ Z
        return empty
    if norms is None:
        norms = column_norms(A)
    s, t = _split_bits(d, n.bit_length() // 2 - 2)
    # the norms may round below the largest entry (one entry in a column): a margin of 2^-20
    grids = _split_grids(norms * (1.0 + 2.0**-20), Z, s, t)
    if grids is None:
        return _residual_ext(A, B, Z)
    sigma_row, Z1, Z2 = grids
    out = np.empty((n, k))
    for start, stop, high, low in _split_slices(A, sigma_row):
        rest = high @ Z2
        rest += low @ Z
        np.subtract(B[start:stop], high @ Z1, out=out[start:stop])  # A1 Z1: exact
        out[start:stop] -= rest
    return out
