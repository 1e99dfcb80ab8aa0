"""Covariances of the least-squares coefficients: classical (homoskedastic) and the
heteroskedasticity-consistent HC0-HC3, from rows in memory or from batches of rows.

Both are computed in the centred coordinates of the package's docstring: the slopes ``w`` and
the mean response at the centre ``c = b + w·x̄`` (intercept last), and, for the public
covariance, the slopes and the bias ``b``. ``(AᵀA)⁻¹`` is held as a :class:`Factor`. The
sandwich of the HC types has one routine, :func:`sandwich_sums`, for a block of rows: all the
rows of an in-memory fit at once, or each batch of a stream (its sums add up over batches and
processes).

Weighted least squares works on the rows scaled by ``sqrt(w)`` (design and residuals), as R's
``lm`` and ``sandwich::vcovHC`` do: the intercept's column is then ``sqrt(w)`` rather than 1,
so ``1/n`` becomes ``1/W`` (``W = Σ w``) in the variance of the mean response, and the
intercept's part of a row's influence and leverage is ``sqrt(w_i)/W`` and ``w_i/W``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gradfit.errors import ValidationError

__all__ = [
    "ALL_COV_TYPES",
    "CLUSTER",
    "COV_TYPES",
    "Factor",
    "check_cov_type",
    "design_rows",
    "embed",
    "hat_values",
    "nonrobust_covariances",
    "robust_covariances",
    "robust_over_batches",
    "sandwich_sums",
]

COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3")
# With groups of rows (gradfit.ols(..., groups=)): cluster-robust CR1 (gradfit.inference.cluster).
CLUSTER = "cluster"
ALL_COV_TYPES = (*COV_TYPES, CLUSTER)
_LEVERAGE_ONE = 1e-10  # HC2/HC3 divide by 1 - h: refuse when h is this close to 1
_ROWS = 1 << 14  # at most this many rows in a block of robust_covariances
_BLOCK_FLOATS = 1 << 18  # about this many floats (2 MiB) in a block's scaled rows


def _block_rows(width: int, k: int) -> int:
    """Rows of a block of :func:`robust_covariances`: its scaled rows (k, rows, width) about
    :data:`_BLOCK_FLOATS` floats (in the core's cache between the scaling and the product),
    at least 256 rows (fewer would spend more on the calls than on the sums), at most
    :data:`_ROWS`."""
    return min(_ROWS, max(256, _BLOCK_FLOATS // max(1, width * k)))


def check_cov_type(cov_type: Any) -> str:
    """``cov_type`` if it is one of :data:`ALL_COV_TYPES`, else a :class:`ValidationError`."""
    if cov_type not in ALL_COV_TYPES:
        raise ValidationError(
            f"cov_type must be one of {', '.join(ALL_COV_TYPES)}; got {cov_type!r}"
        )
    return str(cov_type)


@dataclass(frozen=True)
class Factor:
    """``(AᵀA)⁻¹ = D⁻¹ R_e⁻¹ R_e⁻ᵀ D⁻¹``: the inverse of an equilibrated triangular factor
    ``R_e`` (r, r) of the Gram matrix and the column norms ``D`` (r,)."""

    r_inv: np.ndarray  # (r, r) upper triangular
    scale: np.ndarray  # (r,)

    @property
    def left(self) -> np.ndarray:
        """``D⁻¹ R_e⁻¹`` (r, r), so that ``G = left @ left.T``."""
        left: np.ndarray = self.r_inv / self.scale[:, None]
        return left

    def gram_inverse(self) -> np.ndarray:
        left = self.left
        with np.errstate(over="ignore"):  # beyond float64: refused by the result's assembly
            G: np.ndarray = left @ left.T
        symmetric: np.ndarray = (G + G.T) / 2
        return symmetric

    def half(self, x: np.ndarray) -> np.ndarray:
        """``R_e⁻ᵀ D⁻¹ x`` (r,), so that ``xᵀ G x = ||half(x)||²`` (a sum of squares)."""
        v: np.ndarray = self.r_inv.T @ (x / self.scale)
        return v


def nonrobust_covariances(
    factor: Factor, sigma2: np.ndarray, center: np.ndarray, n: float, fit_intercept: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Homoskedastic covariances (k, p, p) of (w, b) and of (w, c), ``c = b + w·x̄``; ``n``:
    the number of rows, or their total weight ``Σ w`` for a weighted fit."""
    G = factor.gram_inverse()  # (r, r)
    r = G.shape[0]
    p = r + int(fit_intercept)
    k = sigma2.shape[0]
    wc = np.zeros((k, p, p))
    wc[:, :r, :r] = sigma2[:, None, None] * G
    if not fit_intercept:
        return wc.copy(), wc
    wc[:, r, r] = sigma2 / n
    wb = wc.copy()
    v = factor.half(center)  # (r,)
    g_center = factor.left @ v  # G x̄ (r,)
    wb[:, r, r] = sigma2 * (1.0 / n + v @ v)
    wb[:, :r, r] = wb[:, r, :r] = -sigma2[:, None] * g_center
    return wb, wc


def design_rows(
    X: np.ndarray,
    kept: np.ndarray,
    center: np.ndarray,
    left: np.ndarray,
    root_w: np.ndarray | None = None,
) -> np.ndarray:
    """The rows (m, r) of the thin Q factor of the whole (centred, kept, weighted) design that
    a block of m rows ``X`` (m, d) makes: ``Q = A_c D⁻¹ R_e⁻¹`` with ``A_c`` the block's kept
    columns less ``center`` (the kept columns' x̄, or 0 without an intercept), each row scaled
    by ``root_w`` (sqrt of the rows' weights) for a weighted fit, and ``left`` the
    :attr:`Factor.left` of the whole design."""
    A = (X if bool(kept.all()) else X[:, kept]) - center
    if root_w is not None:
        A *= root_w[:, None]
    Q: np.ndarray = A @ left
    return Q


def hat_values(
    Q: np.ndarray, fit_intercept: bool, total: float, root_w: np.ndarray | None = None
) -> np.ndarray:
    """The leverages (hat values) (m,) of a block's rows from their rows ``Q`` of the thin Q
    factor of the centred design (:func:`design_rows`): ``h_i = ||Q_i||²`` plus, with an
    intercept, ``1/n`` (``total`` = n), or ``w_i / W`` for a weighted fit (``total`` = W = Σ w,
    ``root_w`` the rows' sqrt(w)). The one routine of the HC2/HC3 sandwich and the
    influence measures."""
    h: np.ndarray = np.einsum("ij,ij->i", Q, Q)
    if fit_intercept:
        h = h + (1.0 / total if root_w is None else root_w * root_w / total)
    return h


def _sandwich(U: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``Σ_i weights[i, j] u_i u_iᵀ`` for each target j: (n, p), (n, k) -> (k, p, p)."""
    out = np.empty((weights.shape[1], U.shape[1], U.shape[1]))
    for j in range(weights.shape[1]):
        M = (U * weights[:, j : j + 1]).T @ U  # (p, n) @ (n, p)
        out[j] = (M + M.T) / 2
    return out


def _hc_omega(
    leverage: np.ndarray, cov_type: str, n: int, df_resid: int, first_row: int = 0
) -> np.ndarray:
    """The sandwich's weight of each row's squared residual: 1 (HC0), n / df_resid (HC1),
    1 / (1 - h) (HC2) or 1 / (1 - h)² (HC3), for rows ``first_row, first_row + 1, ...``
    (counted from 0) of leverages ``h``. A row of leverage 1 is refused under HC2/HC3."""
    m = leverage.shape[0]
    if cov_type == "HC0":
        return np.ones(m)
    if cov_type == "HC1":
        return np.full(m, n / df_resid)
    worst = int(np.argmax(leverage)) if m else 0
    if m and leverage[worst] > 1.0 - _LEVERAGE_ONE:
        raise ValidationError(
            f"row {first_row + worst} has leverage 1 (the fit passes through it whatever its "
            f"target), and {cov_type} divides by 1 - leverage: use cov_type='HC0' or 'HC1', or "
            "remove the features that single out that row"
        )
    omega: np.ndarray = 1.0 / (1.0 - leverage) ** (1 if cov_type == "HC2" else 2)
    return omega


def sandwich_sums(
    Q: np.ndarray,
    U_w: np.ndarray,
    E: np.ndarray,
    center: np.ndarray,
    cov_type: str,
    n: int,
    df_resid: int,
    fit_intercept: bool,
    first_row: int = 0,
    root_w: np.ndarray | None = None,
    total: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The HC sandwich sums (k, p, p) of (w, b) and of (w, c) over a block of m rows: the
    rows ``first_row, ...`` of a design of ``n`` rows.

    Weighted (``root_w`` (m,), the square roots of the rows' weights, and ``total``, the
    weights' sum): ``Q``, ``U_w`` and ``E`` are those of the scaled rows, and the intercept's
    influence is ``sqrt(w_i)/W``, its leverage ``w_i/W``.

    ``Q`` (m, r): the block's rows of the thin Q factor of the centred (kept) design, so that
    the leverage is ``h_i = ||Q_i||²`` (+ 1/n with an intercept); ``U_w`` (m, r): the slopes'
    influence rows ``a_i (AᵀA)⁻¹``; ``E`` (m, k): the residuals; ``center`` (r,): x̄ of the
    kept columns. With an intercept the influence row of ``c`` is ``1/n`` and that of ``b``
    is ``1/n - x̄ᵀ u_w``."""
    scale = float(n if root_w is None or total is None else total)
    ones = (np.full(Q.shape[0], 1.0) if root_w is None else root_w)[:, None] / scale
    leverage = hat_values(Q, fit_intercept, scale, root_w)  # (m,)
    weights = _hc_omega(leverage, cov_type, n, df_resid, first_row)[:, None] * E * E  # (m, k)
    if not fit_intercept:
        wc = _sandwich(U_w, weights)
        return wc.copy(), wc
    wc = _sandwich(np.hstack([U_w, ones]), weights)
    wb = _sandwich(np.hstack([U_w, ones - (U_w @ center)[:, None]]), weights)
    return wb, wc


def robust_covariances(
    A: np.ndarray,
    factor: Factor,
    E: np.ndarray,
    cov_type: str,
    center: np.ndarray,
    df_resid: int,
    fit_intercept: bool,
    root_w: np.ndarray | None = None,
    total: float | None = None,
    Q: np.ndarray | None = None,
    gram: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """HC0-HC3 covariances (k, p, p) of (w, b) and of (w, c) of a fit in memory, from the
    centred (kept) design ``A`` (n, r) of all the rows, its factor and the residuals ``E``
    (n, k) (weighted: of the scaled rows, with ``root_w`` and ``total`` as
    :func:`sandwich_sums` takes them).

    The rows of the thin Q factor are ``q_i = a_i D⁻¹ R_e⁻¹`` (:func:`design_rows`), computed a
    block of rows at a time (:func:`_block_rows`: the block's scaled rows of all the targets in
    about 2 MiB, so that they are still in the cache when multiplied) and never stored whole, or
    taken from ``Q`` (n, r), an explicit Q (for an ill-conditioned design, where ``A R⁻¹`` loses
    digits). The sandwich is summed in Q's coordinates, one symmetric product (BLAS's ``syrk``;
    one batched call for all the targets) per target and block: ``M_j = Σ_i c_ij x_i x_iᵀ`` with
    ``c_ij = ω_i e_ij²`` and ``x_i = (q_i, o_i, t_i)`` (with an intercept), where ``o_i`` is the
    intercept's influence for c, ``s_i / n`` (``s_i`` = 1, or sqrt(w_i), and ``n`` the total
    weight), and ``t_i`` that for b, ``s_i / n - x̄ᵀ G a_i`` (per row, as :func:`sandwich_sums`
    has it: formed after the sums, that difference would lose digits to cancellation on an
    offset, ill-conditioned design); the covariance of (w, c) is ``T M_j Tᵀ`` over the rows and
    columns of q and o, that of (w, b) over those of q and t, with ``T = diag(D⁻¹ R_e⁻¹, 1)``
    (the influence rows are ``u_i = T x_i``). The same sums as :func:`sandwich_sums` of the rows
    ``U_w = Q R_e⁻ᵀ D⁻¹``, without those (n, r) rows.

    ``gram``: the design is well-conditioned (condition <= 4, the solver's one-Cholesky route):
    HC0 and HC1, which need no leverages, are summed in A's coordinates instead, ``x_i =
    (a_i, o_i, t_i)`` with ``T = diag(G, 1)`` (``G = (AᵀA)⁻¹``; a product with ``D⁻¹ R_e⁻¹``
    a row less).
    """
    n, r = A.shape
    k = E.shape[1]
    scale = float(n if root_w is None or total is None else total)
    left = factor.left  # (r, r)
    v = left.T @ center  # x̄ᵀ G a_i = v · q_i
    p = r + int(fit_intercept)
    # with an intercept, x_i = (q_i, o_i, t_i): the influence of c (o = s/n) and of b
    # (t = o - v·q) after q's; one symmetric product per target gives all the sums
    width = r + 2 * int(fit_intercept)
    sums = np.zeros((k, width, width))
    # HC0/HC1 on a well-conditioned design (gram): the rows a_i themselves rather than q_i
    # (no leverage needed; the covariance is G M_j G, whose rounding, about condition² · eps,
    # is then a few eps), x̄ᵀ G a_i = (G x̄)·a_i
    gram = gram and Q is None and cov_type in ("HC0", "HC1")
    if gram:
        left = factor.gram_inverse()
        v = left @ center
    rows = max(1, min(_block_rows(width, k), n))
    x = np.empty((rows, width))  # x_i: (q_i, o_i, t_i)
    # the scaled rows sqrt(c_ij) x_i of every target (k, m, width), for one batched product
    # (BLAS's syrk for each target) per block; one target scales x itself
    scaled = np.empty((k, rows, width)) if k > 1 else None
    hc1 = math.sqrt(n / df_resid) if cov_type == "HC1" else 1.0
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        m = stop - start
        xm = x[:m]
        q = xm[:, :r]
        if gram:
            q[...] = A[start:stop]
        elif Q is None:
            np.matmul(A[start:stop], left, out=q)
        else:
            q[...] = Q[start:stop]
        own = None if root_w is None else root_w[start:stop]
        f = np.abs(E[start:stop].T)  # (k, m): sqrt(ω e²), a target's in a row
        if cov_type in ("HC2", "HC3"):  # HC0/HC1 need no leverage
            leverage = hat_values(q, fit_intercept, scale, own)
            f *= np.sqrt(_hc_omega(leverage, cov_type, n, df_resid, start))
        elif hc1 != 1.0:
            f *= hc1
        if fit_intercept:
            xm[:, r] = 1.0 / scale if own is None else own / scale
            np.subtract(xm[:, r], q @ v, out=xm[:, r + 1])
        if scaled is None:  # one target: x scaled in place
            xm *= f.T
            sums[0] += xm.T @ xm  # symmetric: BLAS's syrk
        else:
            S = scaled[:, :m]
            np.multiply(xm, f[:, :, None], out=S)
            sums += S.transpose(0, 2, 1) @ S  # BLAS's syrk for each target
    T = np.eye(p)
    T[:r, :r] = left  # G with gram

    def covariance(column: int) -> np.ndarray:
        index = [*range(r), column] if fit_intercept else list(range(r))
        meat = sums[:, index][:, :, index]
        with np.errstate(over="ignore", invalid="ignore"):  # refused by the result's assembly
            V: np.ndarray = T @ meat @ T.T
        symmetric: np.ndarray = (V + V.transpose(0, 2, 1)) / 2
        return symmetric

    wc = covariance(r)
    if not fit_intercept:
        return wc.copy(), wc
    return covariance(r + 1), wc


def _as_float64(block: Any) -> np.ndarray:
    array: np.ndarray = np.asarray(
        block.cpu().numpy() if isinstance(block, torch.Tensor) else block, dtype=np.float64
    )
    return array


def robust_over_batches(
    batches: Callable[[], Iterable[tuple[Any, ...]]],
    collect: Callable[[Callable[[], np.ndarray]], np.ndarray] | None,
    factor: Factor,
    kept: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray,
    center: np.ndarray,
    cov_type: str,
    n: int,
    df_resid: int,
    fit_intercept: bool,
    *,
    total: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """HC covariances (k, p, p) of (w, b) and of (w, c) of a fit known by its statistics:
    :func:`sandwich_sums` over a fresh pass of ``batches``, added over the processes by
    ``collect`` (see :func:`gradfit.inference.ols_from_stats`), after a check that the pass
    saw the ``n`` rows of the statistics.

    No Q factor is needed: for the centred kept columns ``A_c`` of a block,
    ``Q = A_c D⁻¹ R_e⁻¹`` (the rows of the thin Q of the whole design) and
    ``U_w = Q R_e⁻ᵀ D⁻¹ = A_c (AᵀA)⁻¹``; the sandwich sums are sums over rows, so blocks (and
    processes) add up. ``weight`` (k, d), ``bias`` (k,) are the kept-column fit; ``n`` the
    rows of the whole design.

    Weighted statistics (``total``, their total weight, not None): the batches are
    ``(X, Y, w)``, each row scaled by ``sqrt(w)``; ``n`` counts the rows of positive weight,
    and so does the check of the pass (rows of weight 0 add nothing, whether the statistics
    counted them or not)."""
    weighted = total is not None
    k, p = weight.shape[0], int(kept.sum()) + int(fit_intercept)
    left = factor.left  # (r, r)
    c = center[kept]

    def local() -> np.ndarray:
        """This process's sums (k, p, p) for (w, b) and (w, c), and its rows, in one array."""
        wb = np.zeros((k, p, p))
        wc = np.zeros((k, p, p))
        seen = position = 0  # rows counted (of positive weight), and rows passed
        for batch in batches():
            Xb, Yb = _as_float64(batch[0]), _as_float64(batch[1])
            m = Xb.shape[0]
            if m == 0:
                continue
            block_w = batch[2] if len(batch) > 2 else None
            if weighted != (block_w is not None):
                raise ValidationError(
                    "the second pass must give (X, Y, weights) batches for weighted "
                    "statistics, and (X, Y) batches for unweighted ones"
                )
            E = Yb - Xb @ weight.T - bias  # (m, k)
            root = None
            if weighted:
                root = np.sqrt(_as_float64(block_w))
                E = E * root[:, None]
            Q = design_rows(Xb, kept, c, left, root)  # (m, r)
            U_w = Q @ left.T  # A_c (AᵀA)⁻¹ (m, r)
            block_wb, block_wc = sandwich_sums(
                Q,
                U_w,
                E,
                c,
                cov_type,
                n,
                df_resid,
                fit_intercept,
                first_row=position,
                root_w=root,
                total=total,
            )
            wc += block_wc
            if fit_intercept:
                wb += block_wb
            seen += m if root is None else int(np.count_nonzero(root))
            position += m
        if not fit_intercept:
            wb = wc.copy()
        return np.concatenate([wb.ravel(), wc.ravel(), [float(seen)]])

    summed = local() if collect is None else collect(local)
    seen = round(float(summed[-1]))
    if seen != n:
        what = "rows of positive weight" if weighted else "rows"
        raise ValidationError(
            f"the second pass over the data gave {seen} {what} where the statistics counted "
            f"{n}; the data changed while being read"
        )
    size = k * p * p
    return summed[:size].reshape(k, p, p), summed[size : 2 * size].reshape(k, p, p)


def embed(small: np.ndarray, kept: np.ndarray, fit_intercept: bool, fill: float) -> np.ndarray:
    """(k, r', r') over the kept coefficients -> (k, p, p) over all, ``fill`` elsewhere."""
    index = np.flatnonzero(np.append(kept, True) if fit_intercept else kept)
    p = kept.shape[0] + int(fit_intercept)
    out = np.full((small.shape[0], p, p), fill)
    out[:, index[:, None], index[None, :]] = small
    return out
