"""The training engine: full-batch gradient descent (``gd``) and mini-batch SGD (``sgd``).

Both minimise the objective of :class:`~gradfit.solvers.config.SolverConfig` over parameters of
the *internal* features ``Z = (X - mean) / scale`` (the identity map when ``standardize=False``),
and report coefficients in the original units.

Update rule (per step, ``g`` the gradient of the smooth part, as ``torch.optim.SGD``)::

    v <- momentum * v + g                        (v = g when momentum = 0)
    W <- W - lr * (g + momentum * v if nesterov else v)
    W <- sign(W) * max(|W| - lr * 2 alpha l1_ratio / k, 0)     (proximal step for the L1 part)

``gd`` takes one step per epoch from sufficient statistics (means, centred second moments),
computed once in float64: the iterates are those of plain full-batch gradient descent at
O(d² k) per step. ``sgd`` draws a permutation of the rows per epoch from its generator and
steps on consecutive slices of it.

Divergence is never hidden: a non-finite loss, or one ``divergence_factor`` times above the
starting loss, stops training, restores the last good weights and raises
:class:`~gradfit.errors.DivergenceError` with the stable step bound computed from the data.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from gradfit.errors import DivergenceError, ValidationError
from gradfit.scaling import Standardizer
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.stats import SufficientStats, batch_lipschitz, hessian_lipschitz

__all__ = [
    "LOSS_FLOOR",
    "EpochInfo",
    "FitResult",
    "PlateauRule",
    "TrainState",
    "feature_scaler",
    "init_state",
    "run_epochs",
    "targets_scale",
    "train",
]

LOSS_FLOOR = 1e-3  # the tol rule's resolution, as a fraction of the targets' variance
_MAX_GD_FEATURES = 4096  # above this, d x d statistics cost more than a pass over the data


@dataclass(frozen=True)
class EpochInfo:
    """What a progress callback receives after each epoch (epoch counted from 1)."""

    epoch: int
    max_epochs: int
    loss: float
    learning_rate: float
    validation_score: float | None = None


Callback = Callable[[EpochInfo], None]


@dataclass
class TrainState:
    """Everything needed to continue training (warm start, ``partial_fit``)."""

    config: SolverConfig
    scaler: Standardizer
    weight: torch.Tensor  # (k, d) on the internal (scaled) features
    bias: torch.Tensor  # (k,)
    learning_rate: float  # initial step (before the schedule)
    stable_lr: float  # the largest stable step for this solver and data
    lipschitz: float
    generator: torch.Generator
    epoch: int = 0
    velocity_w: torch.Tensor | None = None
    velocity_b: torch.Tensor | None = None
    loss_curve: list[float] = field(default_factory=list)
    validation_scores: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class FitResult:
    """Outcome of :func:`train`: coefficients in the original units of X."""

    weight: torch.Tensor  # (k, d)
    bias: torch.Tensor  # (k,)
    loss_curve: tuple[float, ...]  # training objective per epoch
    n_iter: int  # epochs run
    converged: bool  # stopped by tol / early stopping rather than max_epochs
    learning_rate: float
    stable_lr: float
    validation_scores: tuple[float, ...] | None
    state: TrainState


# ----------------------------------------------------------------------------- pieces


def feature_scaler(stats: SufficientStats, config: SolverConfig) -> Standardizer:
    """The standardization ``config`` asks for, from the statistics of X (identity when off)."""
    if not config.standardize:
        return Standardizer.identity(stats.zbar.shape[0], device=stats.zbar.device)
    return Standardizer.from_moments(stats.zbar, stats.Szz.diagonal(), center=config.fit_intercept)


def _internal_stats(stats: SufficientStats, scaler: Standardizer) -> SufficientStats:
    """Statistics of Z = (X - mean) / scale from those of X, exactly (no second pass)."""
    s = scaler.scale
    return SufficientStats(
        n=stats.n,
        zbar=(stats.zbar - scaler.mean) / s,
        ybar=stats.ybar,
        Szz=stats.Szz / torch.outer(s, s),
        Szy=stats.Szy / s[:, None],
        syy=stats.syy,
    )


def _per_target_mse(st: SufficientStats, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """MSE of each target (k,) from sufficient statistics, for parameters on the internal Z."""
    W64, b64 = W.double(), b.double()
    c = W64 @ st.zbar + b64 - st.ybar  # (k,) error of the means
    quad = ((W64 @ st.Szz) * W64).sum(1)  # diag(W Szz W^T)
    cross = (W64 * st.Szy.T).sum(1)  # diag(W Szy)
    return (quad - 2 * cross + st.syy + c * c).clamp_min(0.0)


def _penalty(W: torch.Tensor, config: SolverConfig, k: int) -> float:
    if config.alpha == 0:
        return 0.0
    W64 = W.double()
    l1 = float(W64.abs().sum())
    l2 = float((W64 * W64).sum())
    return 2 * config.alpha / k * (config.l1_ratio * l1 + (1 - config.l1_ratio) / 2 * l2)


def _r2_from_stats(st: SufficientStats, W: torch.Tensor, b: torch.Tensor) -> float:
    mse = _per_target_mse(st, W, b)
    var = st.syy
    r2 = torch.where(
        var > 0, 1 - mse / torch.where(var > 0, var, torch.ones_like(var)), (mse == 0).double()
    )
    return float(r2.mean())


def _scheduled_lr(lr0: float, epoch: int, config: SolverConfig) -> float:
    if config.schedule == "invscaling":
        return lr0 / float((1.0 + epoch) ** config.power_t)
    if config.schedule == "step":
        return lr0 * config.decay_rate ** (epoch // config.decay_every)
    return lr0


def _apply_update(
    state: TrainState, gW: torch.Tensor, gb: torch.Tensor | None, lr: float, k: int
) -> None:
    """One (momentum, Nesterov, proximal) step, in place, on state.weight and state.bias."""
    cfg = state.config
    if cfg.alpha and cfg.l1_ratio < 1:
        gW = gW + (2 * cfg.alpha * (1 - cfg.l1_ratio) / k) * state.weight
    if cfg.momentum:
        if state.velocity_w is None:
            state.velocity_w = gW.clone()
            state.velocity_b = None if gb is None else gb.clone()
        else:
            state.velocity_w.mul_(cfg.momentum).add_(gW)
            if gb is not None and state.velocity_b is not None:
                state.velocity_b.mul_(cfg.momentum).add_(gb)
        if cfg.nesterov:
            gW = gW + cfg.momentum * state.velocity_w
            if gb is not None and state.velocity_b is not None:
                gb = gb + cfg.momentum * state.velocity_b
        else:
            gW = state.velocity_w
            gb = state.velocity_b if gb is not None else None
    state.weight.sub_(lr * gW)
    if gb is not None and cfg.fit_intercept:
        state.bias.sub_(lr * gb)
    if cfg.alpha and cfg.l1_ratio > 0:
        threshold = lr * 2 * cfg.alpha * cfg.l1_ratio / k
        state.weight.copy_(state.weight.sign() * (state.weight.abs() - threshold).clamp_min(0.0))


# ----------------------------------------------------------------------------- epochs


def _stats_gradient(
    state: TrainState, st: SufficientStats, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of the smooth part of the objective (MSE + ridge) from statistics."""
    W, b = state.weight, state.bias
    c = W @ st.zbar + b - st.ybar  # (k,)
    # dJ/dW = (2/k) (W Szz - Szy^T + c zbar^T);  dJ/db = (2/k) c
    gW = (2.0 / k) * (W @ st.Szz - st.Szy.T + torch.outer(c, st.zbar))
    gb = (2.0 / k) * c
    return gW, gb


def _gd_epoch(state: TrainState, st: SufficientStats, lr: float) -> float:
    """One full-batch step from statistics; returns the objective after the step."""
    k = state.weight.shape[0]
    gW, gb = _stats_gradient(state, st, k)
    _apply_update(state, gW, gb, lr, k)
    return float(_per_target_mse(st, state.weight, state.bias).mean()) + _penalty(
        state.weight, state.config, k
    )


def _sgd_epoch(
    state: TrainState, X: torch.Tensor, Y: torch.Tensor, lr: float, batch_size: int, shuffle: bool
) -> float:
    """One pass of mini-batch steps over a permutation of the rows; returns the mean batch
    objective.

    Batch ``i`` is rows ``perm[i*B : (i+1)*B]``, gathered into a reused buffer and standardized
    there: gathering batch by batch is several times faster than permuting the whole matrix
    once per epoch (no fresh n x d allocation to fault in), and X itself is never modified.
    """
    n, d = X.shape
    k = Y.shape[1]
    scaler = state.scaler
    B = min(batch_size, n)
    perm = torch.randperm(n, generator=state.generator).to(X.device) if shuffle else None
    zbuf = torch.empty(B, d, dtype=X.dtype, device=X.device)
    ybuf = torch.empty(B, k, dtype=Y.dtype, device=Y.device)
    standardize = state.config.standardize
    mean, scale = scaler.mean.to(X.dtype), scaler.scale.to(X.dtype)
    W, b = state.weight, state.bias
    total = torch.zeros((), dtype=torch.float64, device=X.device)
    for start in range(0, n, B):
        m = min(B, n - start)
        zb, yb = zbuf[:m], ybuf[:m]
        if perm is not None:
            rows = perm[start : start + m]
            torch.index_select(X, 0, rows, out=zb)
            torch.index_select(Y, 0, rows, out=yb)
        else:
            zb.copy_(X[start : start + m])
            yb.copy_(Y[start : start + m])
        if standardize:
            zb.sub_(mean).div_(scale)
        err = torch.addmm(b, zb, W.T) - yb  # (m, d) @ (d, k) + (k,) -> (m, k)
        step = 2.0 / err.numel()
        gW = step * (err.T @ zb)  # (k, m) @ (m, d) -> (k, d)
        gb = step * err.sum(0)
        total += (err * err).sum().double()
        _apply_update(state, gW, gb, lr, k)
    return float(total) / (n * k) + _penalty(W, state.config, k)


# ----------------------------------------------------------------------------- driver


def _resolve_seed(random_state: int | None) -> int:
    return secrets.randbits(63) if random_state is None else int(random_state)


def init_state(
    X: torch.Tensor,
    Y: torch.Tensor,
    config: SolverConfig,
    *,
    random_state: int | None = None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    stats: SufficientStats | None = None,
) -> TrainState:
    """Scaling, step size and starting point (zeros, or ``weight``/``bias`` in original units)."""
    if config.solver not in ("gd", "sgd"):
        raise ValidationError(f"the engine trains 'gd' and 'sgd', not {config.solver!r}")
    n, d = X.shape
    k = Y.shape[1]
    stats = stats if stats is not None else SufficientStats.compute(X, Y)
    scaler = feature_scaler(stats, config)
    zst = _internal_stats(stats, scaler)
    L = hessian_lipschitz(zst, config.fit_intercept, k)
    L += 2 * config.alpha * (1 - config.l1_ratio) / k  # the ridge part is smooth too
    L = max(L, 1e-300)
    if config.solver == "gd":
        stable = 2.0 / L
        auto = 1.0 / L
    else:
        max_row = _max_row_norm2(X, scaler, config)
        LB = max(batch_lipschitz(L, max_row, n, config.batch_size, k), L)
        stable = 2.0 / LB
        auto = 0.5 / LB
    if config.momentum:
        auto *= 1 - config.momentum
    lr0 = auto if config.learning_rate == "auto" else float(config.learning_rate)
    wdtype = torch.float64 if config.solver == "gd" else X.dtype
    if weight is not None and bias is not None:
        w0, b0 = scaler.rescale(weight.to(X.device).double(), bias.to(X.device).double())
        if not config.fit_intercept:
            b0 = torch.zeros_like(b0)
    else:
        w0 = torch.zeros(k, d, dtype=torch.float64, device=X.device)
        b0 = torch.zeros(k, dtype=torch.float64, device=X.device)
    generator = torch.Generator().manual_seed(_resolve_seed(random_state))
    return TrainState(
        config=config,
        scaler=scaler,
        weight=w0.to(wdtype).contiguous(),
        bias=b0.to(wdtype).contiguous(),
        learning_rate=lr0,
        stable_lr=stable,
        lipschitz=L,
        generator=generator,
    )


def _max_row_norm2(X: torch.Tensor, scaler: Standardizer, config: SolverConfig) -> float:
    best = 0.0
    mean, scale = scaler.mean.to(X.dtype), scaler.scale.to(X.dtype)
    for chunk in torch.split(X, 1 << 16):
        z = (chunk - mean) / scale
        best = max(best, float((z.double() ** 2).sum(1).max()))
    return best + (1.0 if config.fit_intercept else 0.0)


def run_epochs(
    state: TrainState,
    X: torch.Tensor,
    Y: torch.Tensor,
    n_epochs: int,
    *,
    stop_early: bool = True,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    callback: Callback | None = None,
    stats: SufficientStats | None = None,
) -> bool:
    """Run up to ``n_epochs`` epochs from ``state`` (updated in place). Returns ``converged``:
    True when the stopping rule ended training before ``n_epochs``: ``n_iter_no_change``
    epochs in a row without a new best training loss lower than the best by more than
    ``tol * max(best, 1e-3 * var(Y))`` (relative, down to 0.1% of the targets' variance); for
    ``gd`` also not above the best by more than that (momentum overshoot is not a plateau).
    With early stopping: without a validation R² above the best by more than ``tol``.

    ``stats`` (optional) are the :class:`SufficientStats` of (X, Y), when the caller already has
    them (``gd`` then makes no pass over the data at all).

    Full-batch ``gd`` without momentum decreases the loss at every step whenever the step is
    below the stable bound; a loss that rises while the step is above it is divergence, raised
    at once rather than mistaken for a plateau by the tol rule."""
    cfg = state.config
    k = Y.shape[1]
    use_stats = cfg.solver == "gd" and X.shape[1] <= _MAX_GD_FEATURES
    # Statistics, when there (gd, or given): the objective at O(d² k), no pass over the data.
    zst = None
    if use_stats or stats is not None:
        zst = _internal_stats(
            stats if stats is not None else SufficientStats.compute(X, Y), state.scaler
        )
    val_st = None
    if validation is not None:
        val_st = _internal_stats(SufficientStats.compute(*validation), state.scaler)

    def objective() -> float:
        if zst is not None:
            return float(_per_target_mse(zst, state.weight, state.bias).mean()) + _penalty(
                state.weight, cfg, k
            )
        Z = state.scaler.transform(X) if cfg.standardize else X
        err = torch.addmm(state.bias.to(Z.dtype), Z, state.weight.to(Z.dtype).T) - Y
        return float((err.double() ** 2).mean()) + _penalty(state.weight, cfg, k)

    target_scale = targets_scale(zst, Y, cfg.fit_intercept)
    reference = state.loss_curve[-1] if state.loss_curve else objective()
    reference = max(reference, 1e-300)
    good = (state.weight.clone(), state.bias.clone())
    plateau = PlateauRule(
        tol=cfg.tol if cfg.tol is not None else 0.0,
        patience=cfg.n_iter_no_change,
        floor=LOSS_FLOOR * target_scale,
        # Full-batch iterates do not fluctuate: a loss above the best is momentum
        # overshooting (still moving), not a plateau.
        deterministic=cfg.solver == "gd",
        best=min(state.loss_curve) if state.loss_curve else math.inf,
    )
    best_score = max(state.validation_scores) if state.validation_scores else -math.inf
    best_params = good
    best_improving = best_score
    no_change = 0
    # gd's plateau must also be certified close to the optimum (not just slow).
    certify = (
        _certificate(state, zst, k, LOSS_FLOOR * target_scale)
        if use_stats and (zst is not None)
        else None
    )
    previous = state.loss_curve[-1] if state.loss_curve else reference
    monotone = cfg.solver == "gd" and not cfg.momentum
    for _ in range(n_epochs):
        lr = _scheduled_lr(state.learning_rate, state.epoch, cfg)
        if use_stats and zst is not None:
            loss = _gd_epoch(state, zst, lr)
        else:
            batch = X.shape[0] if cfg.solver == "gd" else cfg.batch_size
            loss = _sgd_epoch(state, X, Y, lr, batch, shuffle=cfg.solver == "sgd")
        state.epoch += 1
        rising = monotone and lr > state.stable_lr and loss > previous
        if (
            rising
            or not math.isfinite(loss)
            or loss > cfg.divergence_factor * reference
            or not bool(torch.isfinite(state.weight).all())
        ):
            reason = _divergence_reason(state, loss, reference, lr)
            message = (
                f"{reason}. Use a smaller learning rate, learning_rate='auto', or standardize "
                "the features; the last good weights were kept"
            )
            bad_epoch = state.epoch
            # Back to the last good epoch: weights, and the epoch count that goes with them.
            state.weight.copy_(good[0])
            state.bias.copy_(good[1])
            state.velocity_w = state.velocity_b = None
            state.epoch -= 1
            raise DivergenceError(
                message, stable_lr=state.stable_lr, epoch=bad_epoch, reason=reason
            )
        good = (state.weight.clone(), state.bias.clone())
        previous = loss
        state.loss_curve.append(loss)
        score = None
        if val_st is not None:
            score = _r2_from_stats(val_st, state.weight, state.bias)
            state.validation_scores.append(score)
            if score > best_score:  # the weights kept in the end, however training stops
                best_score, best_params = score, good
        if callback is not None:
            callback(EpochInfo(state.epoch, n_epochs, loss, lr, score))
        if not stop_early or cfg.tol is None:
            continue
        if score is not None:  # early stopping: the validation R² must improve by tol
            if score > best_improving + cfg.tol:
                best_improving, no_change = score, 0
            else:
                no_change += 1
            if no_change >= cfg.n_iter_no_change:
                _restore(state, best_params)
                return True
        elif plateau.update(loss):
            if certify is None or certify(loss):
                return True
            plateau.stalled = 0  # a slow crawl, not the optimum: keep going
    if val_st is not None:  # early stopping keeps the weights of the best validation score
        _restore(state, best_params)
    return False


@dataclass
class PlateauRule:
    """The tol rule on a sequence of losses: ``update(loss)`` is True once ``patience`` losses
    in a row have not improved on the best by more than ``tol * max(best, floor)`` (relative to
    the best, but never finer than ``tol * floor``: on an exactly solvable problem the loss
    falls to zero geometrically and a purely relative rule would never stop). With
    ``deterministic`` (full batch), a loss above the best by more than that also counts as
    still moving."""

    tol: float
    patience: int
    floor: float
    deterministic: bool = False
    best: float = math.inf
    stalled: int = 0

    def update(self, loss: float) -> bool:
        step = self.tol * max(self.best, self.floor)
        improving = loss < self.best - step or not math.isfinite(self.best)
        overshooting = self.deterministic and loss > self.best + step
        self.stalled = 0 if improving or overshooting else self.stalled + 1
        self.best = min(self.best, loss)
        return self.stalled >= self.patience


def _restore(state: TrainState, params: tuple[torch.Tensor, torch.Tensor]) -> None:
    state.weight.copy_(params[0])
    state.bias.copy_(params[1])


def _certificate(
    state: TrainState, st: SufficientStats, k: int, floor: float
) -> Callable[[float], bool] | None:
    """For full-batch gd on a smooth objective (MSE + ridge): the optimum J* from the
    statistics (a d x d eigenproblem), so that a plateau of the tol rule counts as convergence
    only when ``J - J* <= tol * max(J, floor)``: a slow crawl on an ill-conditioned problem is
    not mistaken for the optimum. None with an L1 penalty (the tol rule alone decides)::

        J* = (1/k) sum_j ( syy_j - Szy_j^T (Szz + alpha (1 - l1_ratio) I)^+ Szy_j )

    (centred moments with an intercept, uncentred without; the pseudo-inverse keeps it exact
    for rank-deficient designs)."""
    cfg = state.config
    if cfg.tol is None or (cfg.alpha and cfg.l1_ratio > 0):
        return None
    if cfg.fit_intercept:
        S, C, syy = st.Szz, st.Szy, st.syy
    else:
        S = st.Szz + torch.outer(st.zbar, st.zbar)
        C = st.Szy + torch.outer(st.zbar, st.ybar)
        syy = st.syy + st.ybar**2
    A = S + cfg.alpha * (1 - cfg.l1_ratio) * torch.eye(S.shape[0], dtype=S.dtype, device=S.device)
    lam, U = torch.linalg.eigh(A.cpu())
    keep = lam > lam[-1].clamp_min(0) * S.shape[0] * torch.finfo(lam.dtype).eps
    proj = U[:, keep].T @ C.cpu()  # (r, k)
    explained = (proj * proj / lam[keep, None]).sum(0)  # (k,)
    optimum = float((syy.cpu() - explained).clamp_min(0.0).mean())
    tol = cfg.tol

    def certify(loss: float) -> bool:
        return loss - optimum <= tol * max(loss, floor)

    return certify


def targets_scale(st: SufficientStats | None, Y: torch.Tensor, fit_intercept: bool) -> float:
    """MSE of the best constant model: the targets' variance (or mean square without an
    intercept), averaged over targets."""
    if st is not None:
        syy = st.syy if fit_intercept else st.syy + st.ybar**2
        return float(syy.mean())
    Y64 = Y.double()
    if fit_intercept:
        return float(Y64.var(0, correction=0).mean())
    return float((Y64 * Y64).mean())


def _divergence_reason(state: TrainState, loss: float, reference: float, lr: float) -> str:
    """What happened, without advice (:attr:`DivergenceError.reason`)."""
    what = "non-finite (inf or NaN)" if not math.isfinite(loss) else f"{loss:.3g}"
    kind = (
        "full-batch gradient descent"
        if state.config.solver == "gd"
        else (f"mini-batch SGD at batch size {state.config.batch_size}")
    )
    return (
        f"training diverged at epoch {state.epoch}: the loss became {what} "
        f"(it started at {reference:.3g}) with learning rate {lr:.3g}; the largest stable "
        f"learning rate for {kind} on this data is about {state.stable_lr:.3g}"
    )


def train(
    X: torch.Tensor,
    Y: torch.Tensor,
    config: SolverConfig,
    *,
    random_state: int | None = None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    callback: Callback | None = None,
) -> FitResult:
    """Fit ``Y ≈ X @ weight.T + bias`` with ``config.solver`` ('gd' or 'sgd').

    Parameters
    ----------
    X : (n, d) floating tensor, finite (validated by the caller)
    Y : (n, k) tensor of the same dtype and device
    config : SolverConfig
    random_state : seed of the shuffling and validation split (None: fresh entropy)
    weight, bias : optional start (warm start), in original units
    callback : called with an :class:`EpochInfo` after every epoch

    Raises
    ------
    DivergenceError
        with ``stable_lr``; the exception's ``state`` holds the last good weights.
    """
    validation = None
    X_train, Y_train = X, Y
    if config.early_stopping:
        n = X.shape[0]
        n_val = max(1, round(config.validation_fraction * n))
        if n - n_val < 1:
            raise ValidationError(
                f"early_stopping with validation_fraction={config.validation_fraction} leaves "
                f"no training rows out of {n}"
            )
        g = torch.Generator().manual_seed(_resolve_seed(random_state) ^ 0x5EED)
        perm = torch.randperm(n, generator=g).to(X.device)
        validation = (X[perm[:n_val]], Y[perm[:n_val]])
        X_train, Y_train = X[perm[n_val:]], Y[perm[n_val:]]
    stats = SufficientStats.compute(X_train, Y_train)  # one pass, shared by both calls below
    state = init_state(
        X_train, Y_train, config, random_state=random_state, weight=weight, bias=bias, stats=stats
    )
    try:
        converged = run_epochs(
            state,
            X_train,
            Y_train,
            config.max_epochs,
            validation=validation,
            callback=callback,
            stats=stats,
        )
    except DivergenceError as exc:
        exc.state = state  # type: ignore[attr-defined]
        raise
    return result_of(state, converged)


def result_of(state: TrainState, converged: bool) -> FitResult:
    """Coefficients of ``state`` in original units, with its history."""
    w, b = state.scaler.unscale(state.weight.double(), state.bias.double())
    dtype = state.weight.dtype if state.config.solver == "sgd" else torch.float64
    return FitResult(
        weight=w.to(dtype),
        bias=b.to(dtype),
        loss_curve=tuple(state.loss_curve),
        n_iter=state.epoch,
        converged=converged,
        learning_rate=state.learning_rate,
        stable_lr=state.stable_lr,
        validation_scores=tuple(state.validation_scores) if state.validation_scores else None,
        state=state,
    )
