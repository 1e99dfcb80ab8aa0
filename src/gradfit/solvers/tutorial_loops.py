"""``scratch`` and ``builtin``: the tutorial's own loops as solvers (the registry's entries).

The loops of :mod:`gradfit.tutorial` run unchanged, on X or on standardized X (coefficients
unscaled afterwards), with the engine's step sizes (``learning_rate="auto"``), the one
divergence rule (:class:`~gradfit.solvers.guards.DivergenceGuard`) watching every epoch, and the
engine's stopping rule applied to their loss history to say whether they converged.
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
from gradfit.solvers.engine import LOSS_FLOOR, EpochInfo, init_state
from gradfit.solvers.guards import DivergenceGuard, PlateauRule
from gradfit.solvers.result import FitResult
from gradfit.solvers.state import TrainState
from gradfit.solvers.stats import SufficientStats
from gradfit.tutorial import train_builtin, train_from_scratch
from gradfit.tutorial.builtin import make_linear

__all__ = ["fit_builtin", "fit_scratch"]

Start = tuple[torch.Tensor, torch.Tensor]
Callback = Callable[[EpochInfo], None]
_Run = tuple[torch.Tensor, torch.Tensor, tuple[float, ...], float]


class _Diverged(Exception):
    def __init__(self, epoch: int, loss: float) -> None:
        super().__init__(epoch, loss)
        self.epoch, self.loss = epoch, loss


@dataclass(frozen=True)
class _Loop:
    """One tutorial loop: how to run it, how it draws its start, what it records."""

    run: Callable[[_RunArgs], _Run]
    initial: Callable[[int, int, int, torch.dtype], Start]
    engine_equivalent: str  # the engine solver with the same step bounds
    # scratch records the loss *before* an epoch's update, builtin the mean during it: the
    # last good weights after a bad epoch e are those of epoch e - back.
    back: int

    def __call__(
        self,
        X: torch.Tensor,
        Y: torch.Tensor,
        config: SolverConfig,
        *,
        random_state: int | None = 0,
        start: Start | None = None,
        callback: Callback | None = None,
        state: TrainState | None = None,
    ) -> FitResult:
        """The registry's fit function (:class:`~gradfit.solvers.registry.FitFunction`)."""
        return _fit_loop(self, X, Y, config, random_state, start, callback, state)


@dataclass(frozen=True)
class _RunArgs:
    """What a tutorial loop is run with (the loops' own arguments, from :func:`_fit_loop`)."""

    Z: torch.Tensor
    Y: torch.Tensor
    epochs: int
    lr: float
    seed: int
    w0: torch.Tensor | None
    b0: torch.Tensor | None
    batch_size: int  # builtin's mini-batches; scratch is full batch
    watch: Callable[[int, int, float], None] | None


def _run_scratch(a: _RunArgs) -> _Run:
    r = train_from_scratch(
        a.Z, a.Y, epochs=a.epochs, lr=a.lr, seed=a.seed, weight=a.w0, bias=a.b0, callback=a.watch
    )
    return r.weight, r.bias, r.losses, r.final_loss


def _run_builtin(a: _RunArgs) -> _Run:
    watch = a.watch
    rb = train_builtin(
        a.Z,
        a.Y,
        epochs=a.epochs,
        lr=a.lr,
        batch_size=a.batch_size,
        seed=a.seed,
        weight=a.w0,
        bias=a.b0,
        callback=None if watch is None else (lambda e, n, _last, mean: watch(e, n, mean)),
    )
    return rb.weight, rb.bias, tuple(rb.history.mean_loss), rb.final_loss


def _scratch_initial(seed: int, k: int, d: int, dtype: torch.dtype) -> Start:
    g = torch.Generator().manual_seed(seed)  # as train_from_scratch draws them
    w = torch.randn(k, d, generator=g)
    b = torch.randn(k, generator=g)
    return w.to(dtype), b.to(dtype)


def _builtin_initial(seed: int, k: int, d: int, dtype: torch.dtype) -> Start:
    layer = make_linear(d, k, torch.Generator().manual_seed(seed), dtype=dtype)
    return layer.weight.detach(), layer.bias.detach()


fit_scratch = _Loop(_run_scratch, _scratch_initial, engine_equivalent="gd", back=2)
"""The tutorial's from-scratch loop (full-batch gradient descent, autograd) as a solver."""
fit_builtin = _Loop(_run_builtin, _builtin_initial, engine_equivalent="sgd", back=1)
"""The tutorial's built-ins loop (nn.Linear, DataLoader, optim.SGD) as a solver."""


def _fit_loop(
    loop: _Loop,
    X: torch.Tensor,
    Y: torch.Tensor,
    config: SolverConfig,
    random_state: int | None,
    start: Start | None,
    callback: Callback | None,
    state: TrainState | None,
) -> FitResult:
    """Run the tutorial's loop (unchanged) on X, or on standardized X and unscale."""
    # (The registry refuses alpha, momentum, schedules and fit_intercept=False for these.)
    if state is not None:
        raise ValueError(f"solver {config.solver!r} has no training state to continue")
    stats = SufficientStats.compute(X, Y)
    scaler = Standardizer.fit(X) if config.standardize else None
    Z = scaler.transform(X) if scaler is not None else X
    used = scaler if scaler is not None else Standardizer.identity(X.shape[1], device=X.device)
    # The step sizes of the equivalent engine solver on the same MSE.
    probe = init_state(
        Z,
        Y,
        replace(
            config,
            solver=loop.engine_equivalent,
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
    # Full-batch descent (scratch) above the stable step: a rising loss is divergence.
    guard = DivergenceGuard(
        factor=config.divergence_factor,
        stable_lr=probe.stable_lr,
        monotone=probe.divergence.monotone,
    )

    def watch(epoch: int, total: int, loss: float) -> None:
        if guard.diverged(loss, lr):
            raise _Diverged(epoch, loss)
        if callback is not None:
            callback(EpochInfo(epoch, total, loss, lr))

    def run(epochs: int, cb: bool) -> _Run:
        return loop.run(
            _RunArgs(Z, Y, epochs, lr, seed, w0, b0, config.batch_size, watch if cb else None)
        )

    def finish(w: torch.Tensor, b: torch.Tensor) -> Start:
        w, b = w.double(), b.double()
        return scaler.unscale(w, b) if scaler is not None else (w, b)

    bad_epoch = None
    try:
        w, b, losses, final = run(config.max_epochs, cb=True)
        if not (math.isfinite(final) and bool(torch.isfinite(w).all())):
            bad_epoch, good_epochs, bad_loss = config.max_epochs, config.max_epochs - 1, final
    except _Diverged as exc:
        bad_epoch, good_epochs, bad_loss = exc.epoch, max(exc.epoch - loop.back, 0), exc.loss
    if bad_epoch is None:
        ww, bb = finish(w, b)
        converged = _plateaued(losses, config, stats.loss_scale(True))
        return FitResult(
            ww, bb, losses, config.max_epochs, converged, lr, probe.stable_lr, used, stats=stats
        )
    # Replay the (deterministic) run up to the last good epoch: its weights, exactly.
    if good_epochs > 0:
        w, b, losses, _ = run(good_epochs, cb=False)
    else:
        if w0 is not None and b0 is not None:
            w, b = w0, b0
        else:
            w, b = loop.initial(seed, Y.shape[1], X.shape[1], Z.dtype)
        losses = ()
    ww, bb = finish(w, b)
    last_good = FitResult(ww, bb, losses, good_epochs, False, lr, probe.stable_lr, used)
    reason = guard.reason(bad_epoch, bad_loss, lr, f"this solver (solver={config.solver!r})")
    raise DivergenceError(
        f"{reason}. Use a smaller learning rate, learning_rate='auto', or "
        f"standardize=True; the weights of epoch {good_epochs} were kept",
        stable_lr=probe.stable_lr,
        epoch=bad_epoch,
        reason=reason,
        result=last_good,
    )


def _plateaued(losses: tuple[float, ...], config: SolverConfig, target_scale: float) -> bool:
    """The engine's stopping rule (:class:`PlateauRule`), applied after the fact to a loss
    history."""
    if config.tol is None:
        return False
    rule = PlateauRule(
        tol=config.tol, patience=config.n_iter_no_change, floor=LOSS_FLOOR * target_scale
    )
    return any(rule.update(loss) for loss in losses)
