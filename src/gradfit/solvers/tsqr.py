"""Closed-form least squares over a stream of row blocks, by TSQR: the accuracy of QR with
the memory of one block plus a (d + k) x (d + k) triangle.

Method (float64), the in-memory :func:`gradfit.least_squares` made to stream:

1. **pass 1** (with an intercept): the column means of X and Y, summed in extended precision
   block by block, and the number of rows;
2. **pass 2**: the R factor of the centred ``[A | B] = [X - x̄ | Y - ȳ]`` by tall-skinny QR:
   ``R ← R-factor of [R; block]`` (LAPACK ``geqrf``) for each block. Never ``XᵀX``: the R of
   ``[A | B]`` holds ``R11`` (the R of A) and ``R12 = (QᵀB)[:d]``, so ``R11 W = R12`` is the QR
   solution exactly as in memory. Rank and condition number come from the column-equilibrated
   ``R11`` (the same rule as :mod:`gradfit.solvers.lstsq`);
3. **passes 3...** (``refine=True``): iterative refinement without Q, by the corrected
   semi-normal equations (Björck): ``r = B - A W`` in extended precision and ``g = Aᵀ r``,
   accumulated block by block, then ``R11ᵀ R11 δ = g`` by two triangular solves, ``W += δ``;
   repeated (one pass each, at most :data:`MAX_REFINEMENTS`) while the correction shrinks.

Ridge (``alpha > 0``): the penalty is on the coefficients of ``Z = (X - x̄) / scale``; the R of
``[Zc; sqrt(n alpha) I]`` is the R-factor of ``[R11 diag(1/scale); sqrt(n alpha) I]``, one more
small QR (Tikhonov's augmented system, as :func:`gradfit.solvers.closed_form.fit_lstsq` solves
it in memory). :func:`merge_r` combines the R factors of two sets of rows (processes).

**One pass** (:class:`RFactor`, given as ``r_factor``): passes 1 and 2 together, in the pass
that reads the statistics. The means are not known yet, so the rows are shifted by the first
block's means (as :class:`~gradfit.solvers.stats.SufficientStats` shifts them) and a column of
ones goes first: the R of ``[1 | A - a0 | B - b0]``. Its first Householder reflection is the
ones column's, which takes the column means out of the rest: the trailing block of that R is
the R of the centred ``[A | B]`` (in exact arithmetic; in floating point Householder QR is
backward stable column by column, and the shifted columns' norms are those of the centred ones
up to the small offset of the first block's means from the whole's). The same R gives the
pass's :class:`~gradfit.solvers.stats.SufficientStats` (:meth:`RFactor.statistics`: ``RᵀR``
is the Gram matrix of ``[1 | A - a0 | B - b0]``), so that the one pass computes nothing else
from the rows. Each block is factored in slices of :data:`_QR_ROWS` rows stacked under the
running R in a reused column-major buffer that stays in cache, by ``torch.geqrf`` (MKL) with
torch held to one thread for the call: threads waiting for cores busy with pyarrow's made the
factorizations 100 times slower (measured with NumPy's BLAS on 2 busy cores: 30-50 s for
2,000,000 rows against 1.3 s single-threaded). ``numpy.linalg.qr`` took 25% more CPU on
4,096-row slices (it copies each slice three times) and, beside a thread decoding Parquet,
2-3 times its CPU time in wall time; slices of 16,384 rows (1.7 MiB, in the L3 cache) took
0.116 s of CPU for 2,100,000 x 13, 8,192 rows 0.124 s, 4,096 rows 0.150 s (fewer calls).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

from gradfit.errors import ValidationError
from gradfit.solvers.collective import LOCAL, Communicator, guarded, merge_r_factors
from gradfit.solvers.lstsq import (
    _ALWAYS_REFINE,
    LeastSquaresResult,
    _min_norm_solution,
    _refined,
    _result,
    _solve_normal,
    _solve_upper,
    _spectrum,
)
from gradfit.solvers.stats import SufficientStats, check_moments

__all__ = ["MAX_REFINEMENTS", "RFactor", "least_squares_stream", "merge_r"]

MAX_REFINEMENTS = 3
# A pass: (X (m, d), Y (m, k)) blocks, or (X, Y, w) with the rows' weights w (m,) > 0.
Passes = Callable[[], Iterable[tuple[torch.Tensor, ...]]]


_REFINE_ROWS = 4096  # rows per slice of the refinement's extended-precision products
_QR_ROWS = 16384  # rows per QR of [R; slice] in RFactor: 16,384 x 13 float64 (1.7 MiB) in cache
# Elements of X above which a given one-pass R is used (below: always refined, pass 2 is cheap)
_ONE_PASS_ELEMENTS = _ALWAYS_REFINE
_HEAD_ROWS = 1 << 16  # rows of the first block whose means shift the data (as the statistics)


class RFactor:
    """The R factor of a stream of row blocks, one pass (see the module doc): ``add`` each
    block's columns (float64 arrays of m values: the features' then the targets'), then
    :meth:`centred` is the (p, p) R of the centred rows (``fit_intercept``) or of the rows
    as they are, and (with ``fit_intercept``) :meth:`statistics` the rows' statistics. Blocks
    must be finite (as a stream's batches are)."""

    def __init__(self, fit_intercept: bool = True) -> None:
        self.fit_intercept = fit_intercept
        self.rows = 0
        self._shift: np.ndarray | None = None
        self._buffer: np.ndarray | None = None  # (q + _QR_ROWS, q) column-major: [R; slice]
        self._out: torch.Tensor | None = None  # geqrf's output, the same shape and layout
        self._R: np.ndarray | None = None
        self._sums: np.ndarray | None = None  # the shifted columns' sums (with an intercept)

    def add(self, columns: Sequence[np.ndarray]) -> None:
        m = len(columns[0]) if columns else 0
        if m == 0:
            return
        lead = 1 if self.fit_intercept else 0
        q = lead + len(columns)
        if self._shift is None:
            head = min(m, _HEAD_ROWS)
            self._shift = (
                np.array([np.sum(c[:head], dtype=np.float64) / head for c in columns])
                if self.fit_intercept
                else np.zeros(len(columns))
            )
            self._buffer = np.zeros((q + _QR_ROWS, q), order="F")
            self._out = torch.empty(q, q + _QR_ROWS, dtype=torch.float64).T
            self._R = np.zeros((q, q))
            self._sums = np.zeros(len(columns), dtype=np.longdouble)
        buffer, out, R, shift, sums = self._buffer, self._out, self._R, self._shift, self._sums
        if buffer is None or out is None or R is None or sums is None or buffer.shape[1] != q:
            raise ValidationError(f"blocks of {len(columns)} columns after {q - lead}")
        stacked = torch.from_numpy(buffer)
        tau = torch.empty(q, dtype=torch.float64)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for start in range(0, m, _QR_ROWS):
                rows = min(_QR_ROWS, m - start)
                A = buffer[: q + rows]
                A[:q] = R
                if lead:
                    A[q:, 0] = 1.0
                for j, column in enumerate(columns):
                    np.subtract(column[start : start + rows], shift[j], out=A[q:, lead + j])
                if lead:  # pairwise sums of the slice's columns, added in extended precision
                    sums += A[q:, lead:].sum(axis=0)
                # geqrf writes into a column-major output; a short slice gets one of its own.
                if rows == _QR_ROWS:
                    factored, _ = torch.geqrf(stacked, out=(out, tau))
                else:
                    factored, _ = torch.geqrf(stacked[: q + rows])
                R = np.triu(factored[:q].numpy())
        finally:
            torch.set_num_threads(threads)
        self._R = R
        self.rows += m

    def centred(self) -> torch.Tensor | None:
        """The R factor of the centred rows (of the rows as they are without an intercept),
        upper triangular (p, p); None before any row."""
        if self._R is None or self.rows == 0:
            return None
        lead = 1 if self.fit_intercept else 0
        return torch.from_numpy(np.triu(self._R[lead:, lead:]).copy())

    def uncentred(self) -> torch.Tensor | None:
        """The R factor (p, p) of the rows as they are, from that of the shifted rows with
        their ones column (``fit_intercept``): the rows are ``A = C + 1 a0ᵀ = [1 | C] M`` with
        ``M = [a0ᵀ; I]``, so their R is that of the (p + 1, p) matrix ``R M``, one small QR
        (backward stable as the factorization: each column of ``R M`` is that of A up to
        rounding of the size of its norm). None before any row."""
        if not self.fit_intercept:
            return self.centred()
        if self._R is None or self._shift is None or self.rows == 0:
            return None
        M = np.vstack([self._shift, np.eye(len(self._shift))])
        return merge_r(None, torch.from_numpy(np.triu(self._R) @ M))

    def statistics(self, d: int) -> SufficientStats:
        """The :class:`~gradfit.solvers.stats.SufficientStats` of the rows added (their first
        ``d`` columns the features, the others the targets), from the R factor alone (with
        ``fit_intercept``): ``[1 | C] = Q R`` for the shifted rows ``C``, so ``RᵀR`` is their
        Gram matrix, and the centred moments times n are ``R_cᵀ R_c``, ``R_c`` its trailing
        block (the R of the centred rows): as accurate as sums of products of the rows
        (Householder QR is backward stable column by column). The means are the shift plus
        the shifted columns' sums over n, summed as :meth:`add` fills its slices (pairwise in
        float64 within a slice, in extended precision across slices): those of ``R[0, 1:] /
        R[0, 0]`` (``R[0, 0]² = n``, ``R[0, 0] R[0, 1:]`` the sums) are less accurate, and the
        means centre the rows of the passes that follow (NIST's Pontius, one-pass R in blocks
        of 7 rows: 12.3 digits against 13.4)."""
        R, shift, sums = self._R, self._shift, self._sums
        if not self.fit_intercept or R is None or shift is None or sums is None or not self.rows:
            raise ValidationError("the statistics of an R factor need an intercept and rows")
        means = torch.from_numpy(shift + (sums / self.rows).astype(np.float64))
        Rc = torch.from_numpy(np.triu(R[1:, 1:]) / math.sqrt(self.rows))  # no overflow first
        M = Rc.T @ Rc  # the centred moments (divided by n)
        Szz, Szy, syy = M[:d, :d], M[:d, d:], M[d:, d:].diagonal()
        check_moments(Szz, Szy, syy)
        return SufficientStats(
            n=self.rows,
            zbar=means[:d].clone(),
            ybar=means[d:].clone(),
            Szz=(Szz + Szz.T) / 2,
            Szy=Szy.clone(),
            syy=syy.clone(),
        )


def merge_r(R_a: torch.Tensor | None, block: torch.Tensor) -> torch.Tensor:
    """The R factor (upper triangular, (p, p)) of the rows of ``R_a`` and ``block`` together:
    ``R`` of ``[R_a; block]``. ``R_a`` None: the R of ``block`` alone (padded with zero rows
    when it has fewer than p rows)."""
    stacked = block if R_a is None else torch.cat([R_a, block])
    p = stacked.shape[1]
    if stacked.shape[0] < p:
        stacked = torch.cat([stacked, stacked.new_zeros(p - stacked.shape[0], p)])
    a, _ = torch.geqrf(stacked)
    return torch.triu(a[:p])


def _root_weights(block: tuple[torch.Tensor, ...]) -> np.ndarray | None:
    """sqrt(w) (m, 1) of a weighted block, None for an unweighted one."""
    if len(block) < 3:
        return None
    root: np.ndarray = np.sqrt(block[2].double().cpu().numpy())[:, None]
    return root


def _means(passes: Passes, d: int | None) -> tuple[int, np.ndarray, np.ndarray]:
    n = 0
    total = np.longdouble(0)
    sx: np.ndarray | None = None
    sy: np.ndarray | None = None
    for block in passes():
        X, Y = block[0], block[1]
        Xn = X.cpu().numpy().astype(np.longdouble)
        Yn = Y.cpu().numpy().astype(np.longdouble)
        if len(block) > 2:  # weighted means
            w = block[2].double().cpu().numpy().astype(np.longdouble)[:, None]
            Xn, Yn = Xn * w, Yn * w
            total += w.sum()
        else:
            total += X.shape[0]
        xs, ys = Xn.sum(axis=0), Yn.sum(axis=0)
        sx = xs if sx is None else sx + xs
        sy = ys if sy is None else sy + ys
        n += X.shape[0]
    if n == 0 or sx is None or sy is None:
        raise ValidationError("no data rows: least squares needs at least one row")
    return n, (sx / total).astype(np.float64), (sy / total).astype(np.float64)


def least_squares_stream(
    passes: Passes,
    *,
    fit_intercept: bool = True,
    alpha: float = 0.0,
    scale: torch.Tensor | None = None,
    refine: bool = True,
    means: tuple[int, torch.Tensor, torch.Tensor] | None = None,
    comm: Communicator = LOCAL,
    shape: tuple[int, int] | None = None,
    total: float | None = None,
    r_factor: RFactor | None = None,
) -> LeastSquaresResult:
    """Least squares (or ridge) over row blocks, one pass per step of the module doc.

    Parameters
    ----------
    passes : callable returning a fresh iterable of (X (m, d), Y (m, k)) float64 blocks, or
        (X, Y, w) with the rows' positive weights w (m,): weighted least squares, the centred
        rows scaled by sqrt(w) (the means must then be the weighted ones); called once per
        pass over the data
    fit_intercept : centre on the means (pass 1) and return a bias
    alpha : ridge strength; the penalty ``n alpha ||w_z||²`` on the coefficients of
        ``Z = (X - x̄) / scale`` (``scale`` None: ones), as the in-memory closed form
    refine : run refinement passes where they pay (not with ``alpha > 0``: the augmented
        system's residual involves the penalty rows, and ridge is well conditioned by
        construction): as in memory, always on small problems, and on large ones only when the
        condition number exceeds 1e4 (the forward error of QR, ~condition x eps, is otherwise
        already near full precision)
    means : (n, x̄ (d,), ȳ (k,)) when already known (a stream's statistics pass): pass 1 is
        skipped and the data are centred on these float64 values (the reparametrisation stays
        exact: the bias uses the same values)
    comm : a group of processes, each passing over its own shard of the rows: the R factors
        of the shards are combined by one more QR (TSQR's last level; ``means`` must then be
        the whole group's), the refinement's sums ``Aᵀr`` are added over the group in extended
        precision (each sent as a float64 pair, high and low parts), and every process returns
        the same solution
    shape : (d, k), needed with a group (a process whose shard is empty sees no block)
    total : the total weight Σ w of weighted rows, for the ridge rows ``sqrt(Σw alpha)`` (as
        in memory); default: the number of rows
    r_factor : the R factor of every row, already accumulated in one pass (:class:`RFactor`,
        with the same ``fit_intercept``, or with one when the fit has none: the R of the rows
        as they are is then :meth:`RFactor.uncentred`; one process only): pass 2 is skipped
        where the problem is large enough (X of more than :data:`_ONE_PASS_ELEMENTS`) for a
        pass to matter; a small one, always refined, takes pass 2 on the rows centred exactly, as
        before (NIST's polynomials refined from the one-pass R ended up to 1 digit lower:
        Wampler1 9.8-10.1 digits against 10.4; Pontius 12.7 against 13.4)

    Returns
    -------
    LeastSquaresResult
        as :func:`gradfit.least_squares` (for ridge: rank and condition of the augmented R).
    """
    if fit_intercept and means is not None:
        n = means[0]
        x_mean, y_mean = means[1].double().cpu().numpy(), means[2].double().cpu().numpy()
    elif fit_intercept:
        n, x_mean, y_mean = _means(passes, None)
    else:
        n, x_mean, y_mean = -1, np.zeros(0), np.zeros(0)
    d, k = shape if shape is not None else (0, 0)

    def local_r() -> tuple[torch.Tensor | None, int, int, int]:
        factor = RFactor(fit_intercept=False)  # the rows centred here
        d_, k_ = d, k
        for block in passes():
            X, Y = block[0], block[1]
            d_, k_ = X.shape[1], Y.shape[1]
            A = X.double().cpu().numpy()
            B = Y.double().cpu().numpy()
            if fit_intercept:
                A, B = A - x_mean, B - y_mean
            root = _root_weights(block)
            if root is not None:
                A, B = A * root, B * root
            factor.add([*A.T, *B.T])
        return factor.centred(), factor.rows, d_, k_

    if r_factor is not None and shape is not None and r_factor.rows * d <= _ONE_PASS_ELEMENTS:
        r_factor = None  # small: the two-pass road, the rows centred exactly
    if r_factor is not None:
        if comm.world > 1 or (fit_intercept and not r_factor.fit_intercept) or shape is None:
            raise ValidationError(
                "a one-pass R factor needs one process, an intercept if the fit has one, and "
                "shape=(d, k)"
            )
        R = r_factor.centred() if fit_intercept else r_factor.uncentred()
        rows = r_factor.rows
    else:
        R, rows, d, k = guarded(comm, local_r)
    if comm.world > 1:
        if shape is None:
            raise ValidationError("least squares over a group of processes needs shape=(d, k)")
        R = merge_r_factors(comm, R, d + k, merge_r)
        rows = int(comm.sum(torch.tensor([rows], dtype=torch.int64))[0])
    if R is None or rows == 0:
        raise ValidationError("no data rows: least squares needs at least one row")
    if not fit_intercept:
        n, x_mean, y_mean = rows, np.zeros(d), np.zeros(k)
    Rn = R.numpy()
    R11, R12 = Rn[:d, :d], Rn[:d, d:]
    scales = np.ones(d) if scale is None else scale.double().cpu().numpy()
    if alpha > 0:
        augmented = np.zeros((2 * d, d + k))
        augmented[:d, :d] = R11 / scales
        augmented[:d, d:] = R12
        augmented[d:, :d] = math.sqrt((n if total is None else total) * alpha) * np.eye(d)
        Ra = merge_r(None, torch.from_numpy(augmented)).numpy()
        R11, R12 = Ra[:d, :d], Ra[:d, d:]
    _, s, rank, _, condition = _spectrum(R11, n, d)
    if rank == d:
        Z = _solve_upper(R11, R12)  # (d, k)
        if refine and alpha == 0 and (rows * d <= _ALWAYS_REFINE or condition > 1e4):
            Z = _refine(passes, Z, R11, x_mean, y_mean, fit_intercept, comm)
    else:
        # A = Q R11, so the SVD of R11 gives A's singular values and right vectors.
        Z = _min_norm_solution(R11, R12, rank, d, condition)
    if alpha > 0:
        Z = Z / scales[:, None]  # coefficients of Z back to those of X
    return _result(Z, x_mean, y_mean, fit_intercept, rank, condition, s)


def _refine(
    passes: Passes,
    Z: np.ndarray,
    R11: np.ndarray,
    x_mean: np.ndarray,
    y_mean: np.ndarray,
    fit_intercept: bool,
    comm: Communicator = LOCAL,
) -> np.ndarray:
    """Corrected semi-normal equations, one pass per step, while the correction shrinks."""

    def correction(Z: np.ndarray) -> np.ndarray:
        Z_ext = Z.astype(np.longdouble)

        def local_g(Z_ext: np.ndarray = Z_ext) -> np.ndarray:
            g = np.zeros(Z_ext.shape, dtype=np.longdouble)
            for block in passes():
                Xn, Yn = block[0].double().cpu().numpy(), block[1].double().cpu().numpy()
                root = _root_weights(block)
                # In slices: the extended-precision copies of a whole batch would take 16
                # bytes a value, several times over (measured: +70 MiB resident at 65,536 rows).
                for start in range(0, Xn.shape[0], _REFINE_ROWS):
                    A = Xn[start : start + _REFINE_ROWS].astype(np.longdouble)
                    B = Yn[start : start + _REFINE_ROWS].astype(np.longdouble)
                    if fit_intercept:
                        A, B = A - x_mean, B - y_mean
                    if root is not None:  # Aᵀ W r = (sqrt(w) A)ᵀ (sqrt(w) r)
                        s = root[start : start + _REFINE_ROWS].astype(np.longdouble)
                        A, B = A * s, B * s
                    g += A.T @ (B - A @ Z_ext)  # Aᵀ r with r in extended precision
            return g

        g = guarded(comm, local_g)
        if comm.world > 1:
            g = _sum_extended(comm, g)
        return _solve_normal(R11, g.astype(np.float64))

    return _refined(Z, correction, MAX_REFINEMENTS)


def _sum_extended(comm: Communicator, g: np.ndarray) -> np.ndarray:
    """The sum over the group of extended-precision arrays, in rank order: each is sent as
    float64 high and low parts (``hi = fl(g)``, ``lo = fl(g - hi)``: ~106 bits, more than the
    64 of x86's long double) and added back in extended precision."""
    hi = g.astype(np.float64)
    lo = (g - hi.astype(np.longdouble)).astype(np.float64)
    total = np.zeros(g.shape, dtype=np.longdouble)
    for part in comm.gather(torch.from_numpy(np.stack([hi, lo]))):
        pair = part.numpy()
        total += pair[0].astype(np.longdouble) + pair[1].astype(np.longdouble)
    return total
