"""One entry point over every solver: ``fit_linear(X, Y, config)``.

It dispatches to the closed form (``lstsq``; closed-form ridge when ``alpha > 0``), the engine
(``gd``, ``sgd``) or the tutorial's own loops, called unchanged (``scratch``, ``builtin``), and
returns one :class:`TrainingOutcome` in original units. Both front ends use it: the command line
and :class:`gradfit.estimator.GradientDescentRegressor`. Tensors in, tensors out, nothing printed.

Divergence is never hidden: :class:`~gradfit.errors.DivergenceError` is raised with
``stable_lr``, ``reason`` and ``outcome``, the :class:`TrainingOutcome` of the last good epoch.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from gradfit.errors import DivergenceError
from gradfit.scaling import Standardizer
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.engine import (
    LOSS_FLOOR,
    EpochInfo,
    PlateauRule,
    TrainState,
    feature_scaler,
    init_state,
    result_of,
    targets_scale,
    train,
)
from gradfit.solvers.lstsq import least_squares
from gradfit.solvers.stats import SufficientStats
from gradfit.tutorial import train_builtin, train_from_scratch
from gradfit.tutorial.builtin import make_linear

__all__ = ["TrainingOutcome", "fit_linear", "outcome_of"]

Start = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class TrainingOutcome:
    """What every solver hands back, coefficients in the original units of X (float64)."""

    weight: torch.Tensor  # (k, d)
    bias: torch.Tensor  # (k,)
    loss_curve: tuple[float, ...]  # training objective per epoch (lstsq: its one value)
    n_iter: int  # epochs run (lstsq: 1)
    converged: bool  # stopped by its rule (tutorial loops: the same rule applied afterwards)
    learning_rate: float | None  # the initial step actually used (None for lstsq)
    stable_lr: float | None  # largest stable step for this solver and data (None for lstsq)
    scaler: Standardizer  # the standardization used in training (identity when none)
    validation_scores: tuple[float, ...] | None = None  # early stopping (gd, sgd)
    state: TrainState | None = None  # the engine's state, to continue training (gd, sgd)


def fit_linear(
    X: torch.Tensor,
    Y: torch.Tensor,
    config: SolverConfig,
    *,
    random_state: int | None = 0,
    start: Start | None = None,
    callback: Callable[[EpochInfo], None] | None = None,
) -> TrainingOutcome:
    """Fit ``Y ≈ X @ weight.T + bias`` (X (n, d), Y (n, k), finite, same dtype and device).

    Parameters
    ----------
    random_state : seed of shuffling, the validation split and the tutorial loops' initial
        weights (None: fresh entropy)
    start : optional (weight (k, d), bias (k,)) in original units to start from (iterative
        solvers; ignored by lstsq)
    callback : called with an :class:`EpochInfo` after every epoch of every iterative solver

    Raises
    ------
    DivergenceError
        with ``stable_lr``, ``reason`` and ``outcome`` (the last good epoch's outcome).
    ValidationError
        a setting the solver cannot honour.
    """
    if config.solver == "lstsq":
        return _fit_lstsq(X, Y, config)
    if config.solver in ("gd", "sgd"):
        return _fit_engine(X, Y, config, random_state, start, callback)
    return _fit_tutorial(X, Y, config, random_state, start, callback)


def outcome_of(state: TrainState, converged: bool) -> TrainingOutcome:
    """The outcome of an engine ``state`` (after :func:`~gradfit.solvers.engine.run_epochs`)."""
    result = result_of(state, converged)
    return TrainingOutcome(
        weight=result.weight.double(),
        bias=result.bias.double(),
        loss_curve=result.loss_curve,
        n_iter=result.n_iter,
        converged=result.converged,
        learning_rate=result.learning_rate,
        stable_lr=result.stable_lr,
        scaler=state.scaler,
        validation_scores=result.validation_scores,
        state=state,
    )


# ----------------------------------------------------------------------------- engine


def _fit_engine(
    X: torch.Tensor,
    Y: torch.Tensor,
    config: SolverConfig,
    random_state: int | None,
    start: Start | None,
    callback: Callable[[EpochInfo], None] | None,
) -> TrainingOutcome:
    weight, bias = start if start is not None else (None, None)
    try:
        result = train(
            X, Y, config, random_state=random_state, weight=weight, bias=bias, callback=callback
        )
    except DivergenceError as exc:
        state: TrainState = exc.state  # type: ignore[attr-defined]
        exc.outcome = outcome_of(state, False)
        raise
    return outcome_of(result.state, result.converged)


# ----------------------------------------------------------------------------- closed form


def _objective(
    X: torch.Tensor, Y: torch.Tensor, W: torch.Tensor, b: torch.Tensor, config: SolverConfig
) -> float:
    """The :class:`SolverConfig` objective in float64 (penalty on internal coefficients ``W``)."""
    k = Y.shape[1]
    err = torch.addmm(b.double(), X.double(), W.double().T) - Y.double()
    l1, l2 = float(W.abs().sum()), float((W.double() ** 2).sum())
    penalty = 2 * config.alpha / k * (config.l1_ratio * l1 + (1 - config.l1_ratio) / 2 * l2)
    return float((err * err).mean()) + penalty


def _fit_lstsq(X: torch.Tensor, Y: torch.Tensor, config: SolverConfig) -> TrainingOutcome:
    """Closed form in float64: ``least_squares``, or ridge through the augmented system
    ``[Zc; sqrt(n alpha) I] W^T = [Yc; 0]`` on the (standardized, centred) features."""
    X64, Y64 = X.double(), Y.double()
    n, d = X64.shape
    if config.alpha == 0:
        r = least_squares(X64, Y64, fit_intercept=config.fit_intercept)
        w, b = r.weight.to(X.device), r.bias.to(X.device)
        loss = _objective(X64, Y64, w, b, config)
        scaler = Standardizer.identity(d, device=X.device)
    else:
        scaler = feature_scaler(SufficientStats.compute(X64, Y64), config)
        Z = scaler.transform(X64)  # (n, d); identity map when standardize=False
        zbar = Z.mean(0) if config.fit_intercept else torch.zeros_like(Z[0])
        ybar = Y64.mean(0) if config.fit_intercept else torch.zeros_like(Y64[0])
        ridge = math.sqrt(n * config.alpha) * torch.eye(d, dtype=torch.float64, device=X.device)
        A = torch.cat([Z - zbar, ridge])  # (n + d, d)
        B = torch.cat(
            [Y64 - ybar, torch.zeros(d, Y.shape[1], dtype=torch.float64, device=X.device)]
        )
        r = least_squares(A, B, fit_intercept=False)
        wz = r.weight.to(X.device)
        bz = ybar - wz @ zbar
        loss = _objective(Z, Y64, wz, bz, config)
        w, b = scaler.unscale(wz, bz)
    return TrainingOutcome(w, b, (loss,), 1, True, None, None, scaler)


# ----------------------------------------------------------------------------- tutorial


class _TutorialDiverged(Exception):
    def __init__(self, epoch: int, loss: float) -> None:
        super().__init__(epoch, loss)
        self.epoch, self.loss = epoch, loss


def _plateaued(
    losses: tuple[float, ...], tol: float | None, n_iter_no_change: int, target_scale: float
) -> bool:
    """The engine's stopping rule (:class:`~gradfit.solvers.engine.PlateauRule`), applied after
    the fact to a loss history."""
    if tol is None:
        return False
    rule = PlateauRule(tol=tol, patience=n_iter_no_change, floor=LOSS_FLOOR * target_scale)
    return any(rule.update(loss) for loss in losses)


def _fit_tutorial(
    X: torch.Tensor,
    Y: torch.Tensor,
    config: SolverConfig,
    random_state: int | None,
    start: Start | None,
    callback: Callable[[EpochInfo], None] | None,
) -> TrainingOutcome:
    """Run the tutorial's loop (unchanged) on X, or on standardized X and unscale."""
    # (SolverConfig refuses alpha, momentum, schedules and fit_intercept=False for these.)
    scaler = Standardizer.fit(X) if config.standardize else None
    Z = scaler.transform(X) if scaler is not None else X
    used = scaler if scaler is not None else Standardizer.identity(X.shape[1], device=X.device)
    # The step sizes of the equivalent engine solver: scratch is full-batch gradient
    # descent, builtin is mini-batch SGD without momentum, on the same MSE.
    probe = init_state(
        Z,
        Y,
        replace(
            config,
            solver="gd" if config.solver == "scratch" else "sgd",
            standardize=False,
            learning_rate="auto",
        ),
        random_state=0,
    )
    lr = probe.learning_rate if config.learning_rate == "auto" else float(config.learning_rate)
    seed = secrets.randbits(63) if random_state is None else random_state
    w0 = b0 = None
    if start is not None:
        w0, b0 = start if scaler is None else scaler.rescale(*start)
        w0, b0 = w0.to(Z), b0.to(Z)
    seen: list[float] = []
    # Full-batch descent above the stable step: a rising loss is divergence (as in gd).
    monotone = config.solver == "scratch" and lr > probe.stable_lr

    def watch(epoch: int, total: int, loss: float) -> None:
        rising = monotone and bool(seen) and loss > seen[-1]
        if (
            rising
            or not math.isfinite(loss)
            or (seen and loss > config.divergence_factor * max(seen[0], 1e-300))
        ):
            raise _TutorialDiverged(epoch, loss)
        seen.append(loss)
        if callback is not None:
            callback(EpochInfo(epoch, total, loss, lr))

    def run(epochs: int, cb: bool) -> tuple[torch.Tensor, torch.Tensor, tuple[float, ...], float]:
        if config.solver == "scratch":
            r = train_from_scratch(
                Z,
                Y,
                epochs=epochs,
                lr=lr,
                seed=seed,
                weight=w0,
                bias=b0,
                callback=watch if cb else None,
            )
            return r.weight, r.bias, r.losses, r.final_loss
        rb = train_builtin(
            Z,
            Y,
            epochs=epochs,
            lr=lr,
            batch_size=config.batch_size,
            seed=seed,
            weight=w0,
            bias=b0,
            callback=(lambda e, n, _last, mean: watch(e, n, mean)) if cb else None,
        )
        return rb.weight, rb.bias, tuple(rb.history.mean_loss), rb.final_loss

    def initial() -> tuple[torch.Tensor, torch.Tensor]:
        if w0 is not None and b0 is not None:
            return w0, b0
        if config.solver == "scratch":  # as train_from_scratch draws them
            g = torch.Generator().manual_seed(seed)
            w = torch.randn(Y.shape[1], X.shape[1], generator=g)
            b = torch.randn(Y.shape[1], generator=g)
            return w.to(Z.dtype), b.to(Z.dtype)
        layer = make_linear(
            X.shape[1], Y.shape[1], torch.Generator().manual_seed(seed), dtype=Z.dtype
        )
        return layer.weight.detach(), layer.bias.detach()

    def finish(w: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w, b = w.double(), b.double()
        return scaler.unscale(w, b) if scaler is not None else (w, b)

    bad_epoch = None
    try:
        w, b, losses, final = run(config.max_epochs, cb=True)
        if not (math.isfinite(final) and bool(torch.isfinite(w).all())):
            bad_epoch, good_epochs, bad_loss = config.max_epochs, config.max_epochs - 1, final
    except _TutorialDiverged as exc:
        # scratch records the loss *before* an epoch's update; builtin the mean during it.
        back = 2 if config.solver == "scratch" else 1
        bad_epoch, good_epochs, bad_loss = exc.epoch, max(exc.epoch - back, 0), exc.loss
    if bad_epoch is None:
        ww, bb = finish(w, b)
        converged = _plateaued(
            losses, config.tol, config.n_iter_no_change, targets_scale(None, Y, True)
        )
        return TrainingOutcome(
            ww, bb, losses, config.max_epochs, converged, lr, probe.stable_lr, used
        )
    # Replay the (deterministic) run up to the last good epoch: its weights, exactly.
    if good_epochs > 0:
        w, b, losses, _ = run(good_epochs, cb=False)
    else:
        (w, b), losses = initial(), ()
    ww, bb = finish(w, b)
    last_good = TrainingOutcome(ww, bb, losses, good_epochs, False, lr, probe.stable_lr, used)
    what = "non-finite" if not math.isfinite(bad_loss) else f"{bad_loss:.3g}"
    reason = (
        f"training diverged at epoch {bad_epoch} (solver={config.solver!r}): the loss became "
        f"{what} with learning rate {lr:.3g}; the largest stable learning rate for this solver on "
        f"this data is about {probe.stable_lr:.3g}"
    )
    raise DivergenceError(
        f"{reason}. Use a smaller learning rate, learning_rate='auto', or "
        f"standardize=True; the weights of epoch {good_epochs} were kept",
        stable_lr=probe.stable_lr,
        epoch=bad_epoch,
        reason=reason,
        outcome=last_good,
    )
