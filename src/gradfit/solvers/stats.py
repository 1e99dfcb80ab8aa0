"""Sufficient statistics of a least-squares problem, and the step sizes they imply.

For a linear model the squared loss depends on the data only through the means, the centred
second moments and the target variances. Computed once (one pass, float64), they make each
full-batch gradient step cost O(d² k) instead of O(n d k).

With row weights ``w_i >= 0`` the same statistics are the weighted ones: means
``Σ w_i z_i / Σ w_i`` and centred moments ``Σ w_i (z_i - z̄)(z_i - z̄)ᵀ / Σ w_i``, so that the
objective they give is the weighted mean squared error ``Σ w_i r_i² / Σ w_i`` (integer weights:
the statistics, hence every fit from them, of the rows repeated that many times, as
scikit-learn's ``sample_weight``). They also count the rows of positive weight (R's residual
degrees of freedom leave out rows of weight 0) and sum ``log w_i`` over them (R's ``logLik``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch

from gradfit.errors import ColumnScaleError, ValidationError
from gradfit.losses import penalty
from gradfit.metrics import r2_from_errors

__all__ = [
    "CONSTANT_TARGET_SCALE",
    "SufficientStats",
    "batch_lipschitz",
    "check_moments",
    "check_small",
    "hessian_lipschitz",
]

# A constant target's scale for the stopping rule (SufficientStats.loss_scale), as a fraction
# of its mean square: far above the rounding noise of its loss (~1e-31), far below any loss that
# leaves the intercept wrong by more than ~1e-9 relative, so a fit that converged to the
# constant before stops at about the same digits.
CONSTANT_TARGET_SCALE = 1e-13

_CHUNK_ROWS = 1 << 16
# float64 buffer of one chunk: 4 MiB, which stays in cache while it is converted, shifted and
# multiplied (with 32 MiB chunks each of those steps went to memory: 5-10x slower; with 1 MiB
# the rank-k updates were too small: 200,000 x 23 took 15-17 ms against 13-14 ms).
_CHUNK_ELEMENTS = 1 << 19
_DEVICE_CHUNK_ELEMENTS = 1 << 22  # on a GPU: 32 MiB, fewer launches (no cache to stay in)
_NUMPY_DTYPES = (torch.float64, torch.float32)

# A block of rows: an (m, d) tensor, or (on the CPU) its d columns as float64 arrays of m values
# (a batch read from a file, used as read without stacking it into a matrix).
Block = torch.Tensor | Sequence[npt.NDArray[np.float64]]
# Row weights of a block: (m,) float64, a tensor or an array (None: every row weight 1).
Weights = torch.Tensor | npt.NDArray[np.float64] | None


@dataclass(frozen=True)
class SufficientStats:
    """Statistics of features Z (n, d) and targets Y (n, k), all float64.

    ``zbar`` (d,), ``ybar`` (k,), ``Szz = Zc.T @ Zc / n`` (d, d), ``Szy = Zc.T @ Yc / n`` (d, k),
    ``syy = (Yc**2).sum(0) / n`` (k,), where Zc and Yc are the column-centred data.

    Weighted (``weight_sum`` not None): the means and moments are weighted, ``n`` replaced by
    the total weight ``Σ w`` (:attr:`total`) and the centring by the weighted means;
    ``n`` still counts every row seen, ``positive`` those of weight > 0 and
    ``log_weight_sum`` is ``Σ log w_i`` over them.
    """

    n: int
    zbar: torch.Tensor
    ybar: torch.Tensor
    Szz: torch.Tensor
    Szy: torch.Tensor
    syy: torch.Tensor
    weight_sum: float | None = None  # Σ w; None: unweighted (every row weight 1)
    positive: int | None = None  # rows of weight > 0; None: all n
    log_weight_sum: float = 0.0  # Σ log w over the rows of weight > 0

    @property
    def weighted(self) -> bool:
        return self.weight_sum is not None

    @property
    def total(self) -> float:
        """The total weight Σ w (the number of rows when unweighted): the divisor of the
        means and moments."""
        return float(self.n) if self.weight_sum is None else self.weight_sum

    @property
    def n_positive(self) -> int:
        """The rows of positive weight (all rows when unweighted): what R counts in the
        degrees of freedom, ``nobs`` and ``logLik``."""
        return self.n if self.positive is None else self.positive

    @classmethod
    def compute(
        cls,
        Z: Block,
        Y: Block,
        shift: tuple[torch.Tensor, torch.Tensor] | None = None,
        *,
        shifted: bool = False,
        weights: Weights = None,
        whole: bool = True,
    ) -> SufficientStats:
        """One pass over (Z, Y) in chunks, accumulated in float64, shifted by ``shift`` (means
        near those of the data: (d,), (k,) float64; default: the first chunk's means) so that
        the centred moments do not suffer cancellation. ``shifted``: return the statistics of
        the shifted data ``(Z - shift, Y - shift)`` (their means near 0), for merging. Z and Y
        are (n, d) and (n, k) tensors, or (on the CPU) their columns as float64 arrays.
        ``weights``: (n,) float64 row weights, finite and >= 0 (checked by the caller:
        :func:`gradfit.validation.check_weights`); the statistics are then the weighted ones.
        ``whole``: these rows are all the data, so a column varying by less than about 1e-154
        is refused (:func:`check_small`); False for a part (a batch, a fold), where a column
        may vary that little and the data still be fine (:meth:`from_batches` checks the
        whole)."""
        n, d, k = _rows(Y), _width(Z), _width(Y)
        if shift is None:
            z0, y0 = _head_mean(Z, n), _head_mean(Y, n)
        else:
            z0, y0 = shift
        # One product per chunk gives every sum: with A = [Z - z0, Y - y0, 1] (c, d + k + 1),
        # A^T A holds Mzz, Mzy, the targets' sums of squares and, in its last row, the column
        # sums. The shift and the conversion to float64 are one pass into a reused buffer.
        # With weights each row of A is scaled by sqrt(w): A^T A holds the weighted sums.
        w64 = None if weights is None else _as_weights(weights)
        G = _shifted_gram(Z, Y, z0, y0, None if w64 is None else np.sqrt(w64))
        Mzz, Mzy = G[:d, :d], G[:d, d : d + k]
        myy = G[d : d + k, d : d + k].diagonal()
        sz, sy = G[-1, :d], G[-1, d : d + k]
        total: float | int = n
        extra: dict[str, Any] = {}
        if w64 is not None:
            weight_sum = float(np.sum(w64))  # NumPy's pairwise sum: exact for integer weights
            keep = w64 > 0
            total = weight_sum if weight_sum > 0 else 1.0  # no weight: the sums are 0
            extra = {
                "weight_sum": weight_sum,
                "positive": int(np.count_nonzero(keep)),
                "log_weight_sum": float(np.sum(np.log(w64[keep]))),
            }
        mz, my = sz / total, sy / total  # means of the shifted data
        Szz = Mzz / total - torch.outer(mz, mz)
        Szz = (Szz + Szz.T) / 2  # exact symmetry for eigvalsh
        check_moments(Mzz, Mzy, myy)
        if whole:
            check_small(Z, Mzz.diagonal() / total, "X", w64)
            check_small(Y, myy / total, "Y", w64)
        return cls(
            n=n,
            zbar=mz if shifted else z0 + mz,
            ybar=my if shifted else y0 + my,
            Szz=Szz,
            Szy=Mzy / total - torch.outer(mz, my),
            syy=(myy / total - my * my).clamp_min(0.0),
            **extra,
        )

    def merge(self, other: SufficientStats) -> SufficientStats:
        """The statistics of both parts' rows together (Chan, Golub & LeVeque's pairwise
        update): with ``δ = mean_b - mean_a`` and ``w = n_a n_b / n²``,

            mean = mean_a + δ n_b / n
            S    = (n_a S_a + n_b S_b) / n + w δ δᵀ      (centred moments / n, each block)

        No shift is shared between the parts, so batches or processes merge in any order and a
        large common offset does not cancel. A part with no rows leaves the other unchanged.
        Weighted statistics merge by the same update with the total weights in place of the
        row counts (a part with rows of weight 0 only adds its rows to the count); unweighted
        ones merged with weighted ones count as rows of weight 1."""
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        if self.zbar.shape != other.zbar.shape or self.ybar.shape != other.ybar.shape:
            raise ValidationError(
                f"cannot merge statistics of {self.zbar.shape[0]} features and "
                f"{self.ybar.shape[0]} targets with {other.zbar.shape[0]} and "
                f"{other.ybar.shape[0]}"
            )
        n = self.n + other.n
        extra: dict[str, Any] = {}
        if self.weighted or other.weighted:
            ta, tb = self.total, other.total
            extra = {
                "weight_sum": ta + tb,
                "positive": self.n_positive + other.n_positive,
                "log_weight_sum": self.log_weight_sum + other.log_weight_sum,
            }
            if tb == 0:  # rows of weight 0 only: counted, nothing else
                return replace(self, n=n, **extra)
            if ta == 0:
                return replace(other, n=n, **extra)
            fa, fb = ta / (ta + tb), tb / (ta + tb)
        else:
            fa, fb = self.n / n, other.n / n
        dz = other.zbar - self.zbar
        dy = other.ybar - self.ybar
        w = fa * fb
        Szz = fa * self.Szz + fb * other.Szz + w * torch.outer(dz, dz)
        return SufficientStats(
            n=n,
            zbar=self.zbar + fb * dz,
            ybar=self.ybar + fb * dy,
            Szz=(Szz + Szz.T) / 2,
            Szy=fa * self.Szy + fb * other.Szy + w * torch.outer(dz, dy),
            syy=fa * self.syy + fb * other.syy + w * dy * dy,
            **extra,
        )

    @classmethod
    def from_batches(
        cls, batches: Iterable[tuple[Block, Block] | tuple[Block, Block, Weights]]
    ) -> SufficientStats:
        """The statistics of a stream of (Z (m, d), Y (m, k)) batches, or (Z, Y, w) with the
        rows' weights w (m,), one pass: each batch by :meth:`compute`, merged into the running
        total by :meth:`merge`. The batches are first shifted by the first batch's means (and
        the means shifted back at the end), so that the merges' differences of means are
        differences of small numbers: with a large common offset the result matches
        :meth:`compute` of all rows to ~1e-15 relative rather than ~1e-11."""
        total: SufficientStats | None = None
        shift = None
        ranges = (_SmallRanges("X"), _SmallRanges("Y"))
        for batch in batches:
            Z, Y = batch[0], batch[1]
            weights = batch[2] if len(batch) > 2 else None
            m = _rows(Y)
            if m == 0:
                continue
            if shift is None:
                shift = (_head_mean(Z, m), _head_mean(Y, m))
            part = cls.compute(Z, Y, shift, shifted=True, weights=weights, whole=False)
            ranges[0].add(Z, part.Szz.diagonal() + part.zbar**2, weights)
            ranges[1].add(Y, part.syy + part.ybar**2, weights)
            total = part if total is None else total.merge(part)
        if total is None or shift is None:
            raise ValidationError("no data rows: the statistics need at least one row")
        # Checked on the whole, not batch by batch: a batch may vary by less than 1e-154 (the
        # start of a column sorted by size) while the column does not.
        ranges[0].check(total.Szz.diagonal() + total.zbar**2)
        ranges[1].check(total.syy + total.ybar**2)
        if total.weighted and total.total == 0:
            raise ValidationError("the weights are all zero: at least one row needs weight > 0")
        return replace(total, zbar=total.zbar + shift[0], ybar=total.ybar + shift[1])

    def standardized(self, mean: torch.Tensor, scale: torch.Tensor) -> SufficientStats:
        """Statistics of ``Z = (X - mean) / scale`` from those of X, exactly (no second pass)."""
        return replace(
            self,
            zbar=(self.zbar - mean) / scale,
            Szz=self.Szz / torch.outer(scale, scale),
            Szy=self.Szy / scale[:, None],
        )

    # ------------------------------------------------------------------------- the objective

    def per_target_mse(self, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """MSE of each target (k,) of the model ``Z @ weight.T + bias``, at O(d² k)::

        mse_j = w_j Szz w_j^T - 2 w_j Szy_j + syy_j + (w_j zbar + b_j - ybar_j)^2
        """
        W64, b64 = weight.double(), bias.double()
        c = W64 @ self.zbar + b64 - self.ybar  # (k,) error of the means
        quad = ((W64 @ self.Szz) * W64).sum(1)  # diag(W Szz W^T)
        cross = (W64 * self.Szy.T).sum(1)  # diag(W Szy)
        return (quad - 2 * cross + self.syy + c * c).clamp_min(0.0)

    def objective(
        self, weight: torch.Tensor, bias: torch.Tensor, alpha: float = 0.0, l1_ratio: float = 0.0
    ) -> float:
        """The :class:`~gradfit.solvers.config.SolverConfig` objective: the MSE over all n·k
        entries plus the elastic-net :func:`~gradfit.losses.penalty` of ``weight``."""
        k = weight.shape[0]
        return float(self.per_target_mse(weight, bias).mean()) + penalty(weight, alpha, l1_ratio, k)

    def gradient(
        self, weight: torch.Tensor, bias: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradient of the MSE over all n·k entries, from the statistics (in the dtype of
        ``weight``)::

            dJ/dW = (2/k) (W Szz - Szy^T + c zbar^T),  dJ/db = (2/k) c,  c = W zbar + b - ybar
        """
        k = weight.shape[0]
        c = weight @ self.zbar + bias - self.ybar  # (k,)
        gW = (2.0 / k) * (weight @ self.Szz - self.Szy.T + torch.outer(c, self.zbar))
        return gW, (2.0 / k) * c

    def r2(self, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """R² of each target (k,), with :func:`gradfit.metrics.r2_score`'s conventions."""
        return r2_from_errors(self.per_target_mse(weight, bias), self.syy)

    def target_scale(self, fit_intercept: bool) -> float:
        """MSE of the best constant model (the targets' variance, or their mean square without
        an intercept), averaged over targets."""
        syy = self.syy if fit_intercept else self.syy + self.ybar**2
        return float(syy.mean())

    def loss_scale(self, fit_intercept: bool) -> float:
        """The scale of the stopping rule's floor: :meth:`target_scale`, or, where that is 0
        (every target constant, fitted with an intercept: solved exactly, coefficients 0 and
        the intercept the constant), :data:`CONSTANT_TARGET_SCALE` times their mean square.
        With a floor of 0 the rule was relative only: a loss falling to rounding noise
        (about eps² times the mean square) never counted as stalled, and the fit warned that
        it did not converge with the constant found to 1e-15."""
        scale = self.target_scale(fit_intercept)
        return scale if scale > 0 else CONSTANT_TARGET_SCALE * self.target_scale(False)

    def optimum(self, fit_intercept: bool = True, ridge: float = 0.0) -> torch.Tensor:
        """The smallest MSE of each target (k,) over all linear models, with an L2 penalty
        ``ridge * ||w||²`` on the coefficients (0: ordinary least squares)::

            J*_j = syy_j - Szy_j^T (Szz + ridge I)^+ Szy_j

        (centred moments with an intercept, uncentred without). Computed on the correlation
        scale (``Szz`` divided by its diagonal) through a symmetric eigendecomposition whose
        pseudo-inverse keeps it exact for rank-deficient designs. With ``ridge > 0`` the value
        is the MSE part of the penalized optimum plus its penalty, i.e. the optimal objective.
        """
        if fit_intercept:
            S, C, syy = self.Szz, self.Szy, self.syy
        else:
            S = self.Szz + torch.outer(self.zbar, self.zbar)
            C = self.Szy + torch.outer(self.zbar, self.ybar)
            syy = self.syy + self.ybar**2
        S, C, syy = S.cpu(), C.cpu(), syy.cpu()
        d = S.shape[0]
        if d == 0:
            return syy.clone()
        diag = S.diagonal()
        s = torch.where(diag > 0, diag, torch.ones_like(diag)).sqrt()  # (d,)
        A = S / torch.outer(s, s) + ridge * torch.diag(1.0 / (s * s))
        lam, U = torch.linalg.eigh((A + A.T) / 2)
        keep = lam > lam[-1].clamp_min(0) * d * torch.finfo(lam.dtype).eps
        proj = U[:, keep].T @ (C / s[:, None])  # (r, k)
        explained = (proj * proj / lam[keep, None]).sum(0)  # (k,)
        optimum: torch.Tensor = (syy - explained).clamp_min(0.0)
        return optimum

    def second_moment(self, fit_intercept: bool) -> torch.Tensor:
        """Uncentred second moment of [Z, 1] (or of Z alone without an intercept)."""
        G = self.Szz + torch.outer(self.zbar, self.zbar)
        if not fit_intercept:
            return G
        d = G.shape[0]
        M = torch.empty(d + 1, d + 1, dtype=G.dtype, device=G.device)
        M[:d, :d] = G
        M[:d, d] = M[d, :d] = self.zbar
        M[d, d] = 1.0
        return M


def check_moments(zz: torch.Tensor, zy: torch.Tensor, yy: torch.Tensor) -> None:
    """Refuse second moments (``XᵀX``, ``XᵀY``, ``YᵀY``, or any multiple of them) that
    overflowed float64, naming the first column whose square overflowed (a product of two
    columns is at most the larger square, Cauchy-Schwarz), when one did."""
    for name, value in (("X^T X", zz), ("X^T Y", zy), ("Y^T Y", yy)):
        if not bool(torch.isfinite(value).all()):
            raise too_large(zz.diagonal(), yy, name)


def too_large(x2: torch.Tensor, y2: torch.Tensor, moments: str) -> ColumnScaleError:
    """The overflow's error: the first column of X, else of Y, whose second moment (``x2``,
    ``y2``) is not finite; no column when the moments ``moments`` overflowed with every
    square finite."""
    for block, squares in (("X", x2), ("Y", y2)):
        bad = (~torch.isfinite(squares.cpu())).nonzero().flatten().tolist()
        if bad:
            return ColumnScaleError("large", block, int(bad[0]))
    return ColumnScaleError("large", "Y" if moments == "Y^T Y" else "X", None, moments=moments)


# Below this mean square of a column's deviations (values varying by less than about 1e-154)
# their squares leave float64's normal range: the second moments lose digits, then become 0,
# and every fit from them is wrong (a column counted constant, coefficients 0). The mirror of
# check_moments' "beyond about 1e150".
_SMALLEST_MEAN_SQUARE = float(torch.finfo(torch.float64).tiny)
_CONSTANT_ULPS = 64.0  # a spread within this many ulps of the column's level is rounding


def check_small(
    block: Block, mean_square: torch.Tensor, name: str, weights: Weights = None
) -> None:
    """Refuse columns whose values vary by less than about 1e-154 (their squares underflow
    float64), unless they are constant up to rounding (all-zero columns among them).
    ``mean_square`` (m,): that of each column of ``block`` minus a shift; ``weights``: the
    rows' weights (those of weight 0 do not count), None for all. Only the rare columns of a
    mean square below the normal range are read again (their range: the squares can no longer
    tell a constant column from a varying one)."""
    ranges = _SmallRanges(name)
    ranges.add(block, mean_square, weights)
    ranges.check(mean_square)


class _SmallRanges:
    """:func:`check_small` over a stream of batches shifted alike (one batch: the check of
    those rows): a column is refused when the mean square of all its rows is below the normal
    range and it is not constant up to rounding; the batches' ranges are kept only for the
    columns whose mean square in a batch is that small (rare), any other batch marks its
    columns as varying."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.low: dict[int, float] = {}
        self.high: dict[int, float] = {}
        self.varies: set[int] = set()

    def add(self, block: Block, mean_square: torch.Tensor, weights: Weights = None) -> None:
        small = (mean_square.cpu() < _SMALLEST_MEAN_SQUARE).tolist()
        rows = None  # the rows of positive weight, found only for a column that small
        for column, tiny in enumerate(small):
            if not tiny:
                self.varies.add(column)
                continue
            if weights is not None and rows is None:
                rows = _as_weights(weights) > 0
            values = _values(block, column, rows)
            if values.size:
                low, high = float(values.min()), float(values.max())
                self.low[column] = min(self.low.get(column, low), low)
                self.high[column] = max(self.high.get(column, high), high)

    def check(self, mean_square: torch.Tensor) -> None:
        eps = torch.finfo(torch.float64).eps
        for column in (mean_square.cpu() < _SMALLEST_MEAN_SQUARE).nonzero().flatten().tolist():
            low, high = self.low.get(column, 0.0), self.high.get(column, 0.0)
            level = max(abs(low), abs(high))
            if column in self.varies or high - low > _CONSTANT_ULPS * eps * level:
                raise _too_small(column, self.name)


def _too_small(column: int, name: str) -> ColumnScaleError:
    return ColumnScaleError("small", name, column)


def _values(
    block: Block, column: int, rows: npt.NDArray[np.bool_] | None
) -> npt.NDArray[np.float64]:
    """``block[rows, column]`` in float64 (every row for ``rows`` None)."""
    if isinstance(block, torch.Tensor):
        array = block[:, column].detach().double().cpu().numpy()
    else:
        array = np.asarray(block[column], dtype=np.float64)
    return array if rows is None else array[rows]


def _rows(block: Block) -> int:
    if isinstance(block, torch.Tensor):
        return int(block.shape[0])
    return len(block[0]) if len(block) else 0


def _width(block: Block) -> int:
    return int(block.shape[1]) if isinstance(block, torch.Tensor) else len(block)


def _head_mean(block: Block, n: int) -> torch.Tensor:
    """The mean of the first rows of a block (up to a chunk), in float64: a shift near the
    data's means (summed in float64 without a float64 copy of the head)."""
    head = min(n, _CHUNK_ROWS)
    if isinstance(block, torch.Tensor):
        return block[:head].sum(0, dtype=torch.float64) / max(head, 1)
    sums = [float(np.sum(c[:head], dtype=np.float64)) for c in block]
    return torch.tensor(sums, dtype=torch.float64) / max(head, 1)


def _as_weights(weights: torch.Tensor | npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    if isinstance(weights, torch.Tensor):
        weights = weights.detach().cpu().numpy()
    return np.ascontiguousarray(weights, dtype=np.float64)


def _shifted_gram(
    Z: Block,
    Y: Block,
    z0: torch.Tensor,
    y0: torch.Tensor,
    root_w: npt.NDArray[np.float64] | None = None,
) -> torch.Tensor:
    """``AᵀA`` (w, w) float64 for ``A = [Z - z0, Y - y0, 1]``, each row scaled by ``root_w``
    (the square roots of the row weights) when given, in chunks that stay in cache: by NumPy
    for columns and CPU float32/float64 tensors, by torch otherwise (a GPU, half precision)."""
    if isinstance(Z, torch.Tensor) and isinstance(Y, torch.Tensor):
        on_cpu = Z.device.type == "cpu" and Y.device.type == "cpu"
        if not (on_cpu and Z.dtype in _NUMPY_DTYPES and Y.dtype in _NUMPY_DTYPES):
            root = None if root_w is None else torch.from_numpy(root_w).to(Z.device)
            return _shifted_gram_torch(Z, Y, z0, y0, root)
    shift = np.concatenate([z0.cpu().numpy(), y0.cpu().numpy()])
    return torch.from_numpy(_shifted_gram_numpy(Z, Y, shift, root_w))


def _shifted_gram_torch(
    Z: torch.Tensor,
    Y: torch.Tensor,
    z0: torch.Tensor,
    y0: torch.Tensor,
    root_w: torch.Tensor | None = None,
) -> torch.Tensor:
    n, d, k = Z.shape[0], Z.shape[1], Y.shape[1]
    w = d + k + 1
    dev = Z.device
    elements = _CHUNK_ELEMENTS if dev.type == "cpu" else _DEVICE_CHUNK_ELEMENTS
    rows = max(1, min(_CHUNK_ROWS, elements // w))
    buf = torch.empty(min(n, rows), w, dtype=torch.float64, device=dev)
    buf[:, -1] = 1.0
    G = torch.zeros(w, w, dtype=torch.float64, device=dev)
    for start in range(0, n, rows):
        A = buf[: min(rows, n - start)]
        # Convert, then shift in float64 (the same numbers as a mixed-dtype sub, which
        # takes a slow path: ten times slower than these two passes).
        A[:, :d].copy_(Z[start : start + rows]).sub_(z0)
        A[:, d : d + k].copy_(Y[start : start + rows]).sub_(y0)
        if root_w is not None:
            A[:, -1] = 1.0  # the buffer's last column, scaled by the last chunk's weights
            A.mul_(root_w[start : start + rows, None])
        G.addmm_(A.T, A)  # (w, c) @ (c, w)
    return G


def _columns(block: Block) -> list[npt.NDArray[Any]]:
    if isinstance(block, torch.Tensor):
        return list(block.detach().cpu().numpy().T)
    return list(block)


# On the CPU the chunks are shifted by NumPy's loops into a buffer, then multiplied by
# ``A.T @ A``, which NumPy hands to BLAS ``dsyrk``, the symmetric rank-k update (half the
# products of a general product; 4,000,000 x 13 in 0.14 s, as fast as SciPy's ``dsyrk`` and
# without importing SciPy, 0.4 s). NumPy's loops, not torch's thread pool: while pyarrow's
# threads parse a file, torch's pool made the shift 5-8 times slower (measured on
# 4,000,000 x 12: 1.1 s of copy and subtract against 0.15 s).


def _shifted_gram_numpy(
    Z: Block,
    Y: Block,
    shift: npt.NDArray[np.float64],
    root_w: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.float64]:
    """:func:`_shifted_gram` with NumPy, the buffer laid out as the data are: row-major arrays
    are shifted whole rows at a time into a row-major buffer; columns (a batch read from a
    file, never stacked into a matrix first) and column-major arrays column by column into a
    column-major one, so that no chunk is copied across its layout."""
    if isinstance(Z, torch.Tensor) and isinstance(Y, torch.Tensor):
        Zn, Yn = Z.detach().numpy(), Y.detach().numpy()
        d = Zn.shape[1]
        if not (Zn.strides[0] == Zn.itemsize and Yn.strides[0] == Yn.itemsize):  # row-major

            def fill_rows(A: npt.NDArray[np.float64], start: int, m: int) -> None:
                np.subtract(Zn[start : start + m], shift[:d], out=A[:, :d])
                np.subtract(Yn[start : start + m], shift[d:], out=A[:, d:])

            return _chunked_gram(Yn.shape[0], d + Yn.shape[1], "C", fill_rows, root_w)
        columns = [*Zn.T, *Yn.T]
    else:
        columns = [*_columns(Z), *_columns(Y)]

    def fill_columns(A: npt.NDArray[np.float64], start: int, m: int) -> None:
        for j, column in enumerate(columns):
            np.subtract(column[start : start + m], shift[j], out=A[:, j])

    return _chunked_gram(_rows(Y), len(columns), "F", fill_columns, root_w)


def _chunked_gram(
    n: int,
    p: int,
    order: Literal["C", "F"],
    fill: Callable[[npt.NDArray[np.float64], int, int], None],
    root_w: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.float64]:
    """``AᵀA`` (p + 1, p + 1) of ``A = [data, 1]`` for n rows of p shifted columns, chunk by
    chunk: ``fill(view, start, m)`` writes rows ``start .. start + m`` into the (m, p) view of
    a buffer that is contiguous in ``order``, so BLAS takes it without a copy. ``root_w``
    (n,): scale each row of A by it (weighted sums)."""
    w = p + 1
    rows = max(1, min(_CHUNK_ROWS, _CHUNK_ELEMENTS // w))
    storage = np.empty(min(n, rows) * w)
    G = np.zeros((w, w))
    for start in range(0, n, rows):
        m = min(rows, n - start)
        A = storage[: m * w].reshape((m, w), order=order)
        fill(A[:, :p], start, m)
        A[:, -1] = 1.0
        with np.errstate(over="ignore", invalid="ignore"):  # overflow: checked by the caller
            if root_w is not None:
                A *= root_w[start : start + m, None]
            G += A.T @ A
    return G


def hessian_lipschitz(stats: SufficientStats, fit_intercept: bool, n_targets: int) -> float:
    """Largest eigenvalue L of the Hessian of the MSE (averaged over n·k entries)::

        H = (2 / k) * M ⊗ I_k,  M = [Z, 1].T @ [Z, 1] / n   =>   L = (2 / k) λmax(M)

    Full-batch gradient descent is stable exactly for lr < 2 / L.
    """
    M = stats.second_moment(fit_intercept)
    return 2.0 / n_targets * float(torch.linalg.eigvalsh(M.cpu())[-1])


def batch_lipschitz(
    L: float, max_row_norm2: float, n: int, batch_size: int, n_targets: int
) -> float:
    """Expected smoothness of a mini-batch of ``batch_size`` rows drawn without replacement
    (Gower et al., 2019): interpolates between the full-batch L and the worst single row's
    ``(2/k) max_i ||[z_i, 1]||²``."""
    l_max = 2.0 / n_targets * max_row_norm2
    b = min(batch_size, n)
    if n <= 1:
        return max(L, l_max)
    return n * (b - 1) / (b * (n - 1)) * L + (n - b) / (b * (n - 1)) * l_max
