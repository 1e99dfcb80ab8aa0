"""The numba code of :mod:`gradfit.solvers.path` (:mod:`~gradfit.solvers.penalized`,
:mod:`~gradfit.solvers.fold_stats`): elastic-net coordinate descent on a Gram matrix, down a
path of penalties (imported with those modules only, never with gradfit).

Per target ``t`` and penalty ``alpha`` it minimises (scikit-learn's ``ElasticNet`` divided by
nothing: every term is already per row)::

    P(b) = 1/2 (b' S b - 2 q_t' b + syy_t) + a1 ||b||_1 + a2 / 2 ||b||²,
    a1 = alpha * l1_ratio,  a2 = alpha * (1 - l1_ratio)

with glmnet's covariance updates: the gradient ``g = q_t - S b`` is kept up to date, so that a
coordinate's update costs one column of S (O(d)), never a pass over rows::

    b_j <- soft(g_j + S_jj b_j, a1) / (S_jj + a2),   g <- g - S[:, j] (b_j_new - b_j_old)

Each alpha starts from the previous one's solution (warm start). A sweep over the coordinates
whose largest change is below ``tol`` times the largest coefficient (or that changes nothing)
triggers the duality-gap test of scikit-learn's ``cd_fast`` (the same dual point, in per-row
units); the path goes on to the next alpha once the gap is below ``tol * syy_t`` (scikit-learn:
``tol * ||y||²`` in sums over rows, the same rule).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

__all__ = ["enet_gram_path", "fold_positions", "scatter_column"]


@numba.njit(cache=True)
def _gap(S: Any, q: Any, syy: float, b: Any, g: Any, a1: float, a2: float) -> float:
    """The duality gap of scikit-learn's ``enet_coordinate_descent_gram`` per row, from the
    statistics: ``||r||²/n = syy - b'q - b'g`` (as ``b'Sb = b'q - b'g``), ``r'y/n = syy - b'q``,
    ``X'r/n - a2 b = g - a2 b``."""
    d = b.shape[0]
    bq = 0.0
    bg = 0.0
    l1 = 0.0
    l2 = 0.0
    dual = 0.0
    for j in range(d):
        bq += b[j] * q[j]
        bg += b[j] * g[j]
        l1 += abs(b[j])
        l2 += b[j] * b[j]
        xta = abs(g[j] - a2 * b[j])
        if xta > dual:
            dual = xta
    r2 = syy - bq - bg
    ry = syy - bq
    if dual > a1:
        const = a1 / dual
        gap = 0.5 * r2 * (1.0 + const * const)
    else:
        const = 1.0
        gap = r2
    return gap + a1 * l1 - const * ry + 0.5 * a2 * (1.0 + const * const) * l2


@numba.njit(cache=True)
def enet_gram_path(
    S: Any,
    q: Any,
    syy: Any,
    alphas: Any,
    l1_ratio: float,
    tol: float,
    max_iter: int,
    coefs: Any,
    gaps: Any,
    iters: Any,
) -> None:
    """Fill ``coefs`` (A, k, d), ``gaps`` (A, k) and ``iters`` (A, k) with the path's solutions
    for S (d, d), q (d, k), syy (k,) and the penalties ``alphas`` (A,), in the given order
    (decreasing, for warm starts). ``iters[a, t] == max_iter`` with ``gaps[a, t]`` above the
    tolerance: not converged."""
    d = S.shape[0]
    k = q.shape[1]
    b = np.zeros(d)
    g = np.zeros(d)
    for t in range(k):
        for j in range(d):
            b[j] = 0.0
            g[j] = q[j, t]
        target_tol = tol * syy[t]
        for a in range(alphas.shape[0]):
            a1 = alphas[a] * l1_ratio
            a2 = alphas[a] * (1.0 - l1_ratio)
            gap = np.inf
            n_iter = 0
            for it in range(max_iter):
                n_iter = it + 1
                w_max = 0.0
                d_max = 0.0
                for j in range(d):
                    sjj = S[j, j]
                    if sjj <= 0.0:
                        continue
                    old = b[j]
                    z = g[j] + sjj * old
                    mag = abs(z) - a1
                    new = 0.0
                    if mag > 0.0:
                        new = (mag if z > 0.0 else -mag) / (sjj + a2)
                    if new != old:
                        delta = new - old
                        for i in range(d):
                            g[i] -= S[i, j] * delta
                        b[j] = new
                        if abs(delta) > d_max:
                            d_max = abs(delta)
                    if abs(new) > w_max:
                        w_max = abs(new)
                if w_max == 0.0 or d_max <= tol * w_max or it == max_iter - 1:
                    gap = _gap(S, q[:, t], syy[t], b, g, a1, a2)
                    if gap <= target_tol:
                        break
            for j in range(d):
                coefs[a, t, j] = b[j]
            gaps[a, t] = gap
            iters[a, t] = n_iter


# ----------------------------------------------------------------------------- fold statistics
# One pass over a batch's columns puts each fold's rows together (a counting sort by fold):
# where NumPy's ``take`` of 53 columns by a fold order cost 15-19 ms per 65,536 rows, these
# loops cost 3 ms (a sequential read and K sequential write streams per column).


@numba.njit(cache=True)
def fold_positions(ids: Any, n_buckets: int, pos: Any, counts: Any) -> None:
    """A stable counting sort of ``ids`` (m,) in ``0 .. n_buckets - 1``: ``pos[i]`` the place
    of row i once the rows are ordered by bucket (file order within one), ``counts`` (n_buckets,)
    the rows of each."""
    for b in range(n_buckets):
        counts[b] = 0
    for i in range(ids.shape[0]):
        counts[ids[i]] += 1
    start = np.zeros(n_buckets, dtype=np.int64)
    total = 0
    for b in range(n_buckets):
        start[b] = total
        total += counts[b]
    for i in range(ids.shape[0]):
        b = ids[i]
        pos[i] = start[b]
        start[b] += 1


@numba.njit(cache=True)
def scatter_column(
    column: Any, pos: Any, shift: float, root_w: Any, weighted: bool, out: Any
) -> None:
    """``out[pos[i]] = (column[i] - shift) * root_w[i]`` (without ``weighted``: no factor)."""
    if weighted:
        for i in range(column.shape[0]):
            out[pos[i]] = (column[i] - shift) * root_w[i]
    else:
        for i in range(column.shape[0]):
            out[pos[i]] = column[i] - shift
