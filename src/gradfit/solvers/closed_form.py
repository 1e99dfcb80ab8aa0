"""``lstsq``: the closed form in float64 (the registry's entry for it).

Without a penalty, :func:`gradfit.least_squares` (the Cholesky factor of the Gram matrix or
Householder QR, by the design's condition; rank and condition reported; refined in extended
precision); a rank-deficient design gets R's solution (the later of collinear columns aliased:
coefficient 0), in memory here and, for a stream (TSQR gives the minimum-norm one), from the
coefficient table (:func:`gradfit.fitting.attach_inference`).

With ``alpha > 0`` (ridge only: the registry refuses an L1 part), the augmented system
``[Zc; sqrt(n alpha) I] W^T = [Yc; 0]`` on the (standardized, centred) features,
solved the same way: Tikhonov's formulation, as accurate as the unpenalized solve.

With row weights (``sample_weight``): rows of weight 0 are left out, the centring is on the
weighted means and each row is scaled by ``sqrt(w)``, and the ridge rows by ``sqrt(W alpha)``
(``W = Σ w``): the optimum of the weighted objective, that of the rows repeated by integer
weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch

from gradfit.errors import ValidationError
from gradfit.losses import mse, penalty
from gradfit.model import predict
from gradfit.scaling import Standardizer
from gradfit.solvers.collective import LOCAL, Communicator
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.engine import EpochInfo, StreamPasses, feature_scaler
from gradfit.solvers.interfaces import weighted_passes
from gradfit.solvers.lstsq import least_squares
from gradfit.solvers.result import FitResult
from gradfit.solvers.state import TrainState
from gradfit.solvers.stats import SufficientStats
from gradfit.solvers.tsqr import RFactor, least_squares_stream

__all__ = ["fit_lstsq", "fit_lstsq_stream"]


def fit_lstsq(
    X: torch.Tensor,
    Y: torch.Tensor,
    config: SolverConfig,
    *,
    random_state: int | None = None,
    start: tuple[torch.Tensor, torch.Tensor] | None = None,
    callback: Callable[[EpochInfo], None] | None = None,
    state: TrainState | None = None,
    sample_weight: torch.Tensor | None = None,
) -> FitResult:
    """The closed form; ``random_state``, ``start`` and ``callback`` do not apply (no epochs).
    ``sample_weight`` (n,): the rows' weights (weighted least squares)."""
    del random_state, start, callback  # part of the solvers' common signature
    if state is not None:
        raise ValueError("lstsq has no training state to continue")
    X64, Y64 = X.double(), Y.double()
    sw = None
    if sample_weight is not None:
        sw = sample_weight.double()
        if not bool((sw > 0).all()):  # rows of weight 0 are left out
            keep = sw > 0
            X64, Y64, sw = X64[keep], Y64[keep], sw[keep]
    d = X64.shape[1]
    stats = None
    if config.alpha == 0:
        # R's convention for a rank-deficient design (aliased coefficients 0), as the
        # coefficient table and model files follow.
        r = least_squares(
            X64,
            Y64,
            fit_intercept=config.fit_intercept,
            rank_deficient="aliased",
            sample_weight=sw,
        )
        w, b = r.weight.to(X.device), r.bias.to(X.device)
        scaler = Standardizer.identity(d, device=X.device)
        loss = _weighted_mse(predict(X64, w, b), Y64, sw)
    else:
        stats = SufficientStats.compute(X64, Y64, weights=sw)
        scaler = feature_scaler(stats, config)
        Z = scaler.transform(X64)  # (n, d); identity map when standardize=False
        total = stats.total  # n, or the total weight
        if config.fit_intercept:
            zbar = Z.mean(0) if sw is None else (sw @ Z) / total
            ybar = Y64.mean(0) if sw is None else (sw @ Y64) / total
        else:
            zbar, ybar = torch.zeros_like(Z[0]), torch.zeros_like(Y64[0])
        ridge = math.sqrt(total * config.alpha) * torch.eye(d, dtype=torch.float64, device=X.device)
        Zc, Yc = Z - zbar, Y64 - ybar
        if sw is not None:
            root = sw.sqrt()[:, None]
            Zc, Yc = Zc * root, Yc * root
        A = torch.cat([Zc, ridge])  # (n + d, d)
        B = torch.cat([Yc, torch.zeros(d, Y.shape[1], dtype=torch.float64, device=X.device)])
        wz = least_squares(A, B, fit_intercept=False).weight.to(X.device)
        bz = ybar - wz @ zbar
        loss = _weighted_mse(predict(Z, wz, bz), Y64, sw) + penalty(
            wz, config.alpha, config.l1_ratio, Y.shape[1]
        )
        w, b = scaler.unscale(wz, bz)
    return FitResult(w, b, (loss,), 1, True, None, None, scaler, stats=stats)


def _weighted_mse(pred: torch.Tensor, target: torch.Tensor, w: torch.Tensor | None) -> float:
    """:func:`gradfit.losses.mse`, or with row weights ``Σ w_i ||e_i||² / (k Σ w_i)``."""
    if w is None:
        return float(mse(pred, target))
    e = pred - target
    return float((w @ (e * e)).sum() / (w.sum() * e.shape[1]))


def _one_pass_r(data: object, stats: SufficientStats, comm: Communicator) -> RFactor | None:
    """The R factor the statistics pass accumulated (a stream of one process, its rows
    unweighted and as read), else None."""
    factor = getattr(data, "r_factor", None)
    if isinstance(factor, RFactor) and comm.world == 1 and factor.rows == stats.n:
        return factor
    return None


def fit_lstsq_stream(
    data: StreamPasses,
    stats: SufficientStats,
    config: SolverConfig,
    *,
    random_state: int | None = None,
    callback: Callable[[EpochInfo], None] | None = None,
    comm: Communicator = LOCAL,
    checkpoint: object | None = None,
) -> FitResult:
    """The closed form over a stream (the registry's streaming entry): TSQR, never XᵀX
    (:func:`gradfit.solvers.tsqr.least_squares_stream`; its passes are the stream's). With a
    group of processes (``comm``), ``data`` is this process's shard and ``stats`` the group's;
    the shards' R factors are combined and every process gets the same solution."""
    del random_state, callback  # no epochs, nothing random
    if checkpoint is not None:
        raise ValidationError(
            "solver='lstsq' has no epochs to checkpoint (it makes two or three passes); "
            "leave out --checkpoint, or use gd or sgd"
        )

    def passes() -> Iterator[tuple[torch.Tensor, ...]]:
        if stats.weighted:  # (X, Y, w) blocks: TSQR of the rows scaled by sqrt(w)
            return (
                (X.double(), Y.double(), *(() if w is None else (w.double(),)))
                for X, Y, w in weighted_passes(data)
            )
        return ((X.double(), Y.double()) for X, Y in data.tensors())

    d = stats.zbar.shape[0]
    ridge = config.alpha > 0
    scaler = (
        feature_scaler(stats, config)
        if ridge
        else Standardizer.identity(d, device=stats.zbar.device)
    )
    r = least_squares_stream(
        passes,
        fit_intercept=config.fit_intercept,
        alpha=config.alpha,
        scale=scaler.scale if ridge and config.standardize else None,
        means=(stats.n, stats.zbar, stats.ybar),  # the statistics pass has them
        total=stats.total,  # Σ w for the ridge rows, as in memory
        comm=comm,
        shape=(d, stats.ybar.shape[0]),
        r_factor=_one_pass_r(data, stats, comm),
    )
    w, b = r.weight.double(), r.bias.double()
    wz, bz = scaler.rescale(w, b)
    loss = stats.standardized(scaler.mean, scaler.scale).objective(wz, bz, config.alpha, 0.0)
    return FitResult(w, b, (loss,), 1, True, None, None, scaler, stats=stats)
