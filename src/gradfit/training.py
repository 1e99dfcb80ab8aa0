"""One entry point over every solver: ``fit_linear(X, Y, config)``.

It dispatches to the closed form (``lstsq``), the engine (``gd``, ``sgd``) or the tutorial's
own loops (``scratch``, ``builtin``), and returns one :class:`TrainingOutcome` in original
units. The command line uses it; tensors in, tensors out, nothing printed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from gradfit.errors import DivergenceError, ValidationError
from gradfit.losses import mse
from gradfit.model import predict
from gradfit.scaling import Standardizer
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.engine import EpochInfo, init_state, train
from gradfit.solvers.lstsq import least_squares
from gradfit.tutorial import train_builtin, train_from_scratch

__all__ = ["TrainingOutcome", "fit_linear"]


@dataclass(frozen=True)
class TrainingOutcome:
    weight: torch.Tensor  # (k, d), original units
    bias: torch.Tensor  # (k,)
    loss_curve: tuple[float, ...]  # training loss per epoch (empty for lstsq)
    n_iter: int
    converged: bool
    learning_rate: float | None  # the initial step actually used
    stable_lr: float | None  # largest stable step for this solver and data
    scaler: Standardizer


def fit_linear(
    X: torch.Tensor,
    Y: torch.Tensor,
    config: SolverConfig,
    *,
    random_state: int | None = 0,
    callback: Callable[[EpochInfo], None] | None = None,
) -> TrainingOutcome:
    """Fit ``Y ≈ X @ weight.T + bias`` (X (n, d), Y (n, k), finite, same dtype and device)."""
    if config.solver == "lstsq":
        if config.alpha:
            raise ValidationError("solver 'lstsq' fits plain least squares: use alpha=0")
        exact = least_squares(X, Y, fit_intercept=config.fit_intercept)
        identity = Standardizer.identity(X.shape[1])
        return TrainingOutcome(exact.weight, exact.bias, (), 1, True, None, None, identity)
    if config.solver in ("gd", "sgd"):
        result = train(X, Y, config, random_state=random_state, callback=callback)
        return TrainingOutcome(
            result.weight,
            result.bias,
            result.loss_curve,
            result.n_iter,
            result.converged,
            result.learning_rate,
            result.stable_lr,
            result.state.scaler,
        )
    return _fit_tutorial(X, Y, config, random_state=random_state, callback=callback)


def _fit_tutorial(
    X: torch.Tensor,
    Y: torch.Tensor,
    config: SolverConfig,
    *,
    random_state: int | None,
    callback: Callable[[EpochInfo], None] | None,
) -> TrainingOutcome:
    """The tutorial's loops on (optionally standardized) features, as they are."""
    if config.alpha or config.momentum or config.schedule != "constant":
        raise ValidationError(
            f"solver {config.solver!r} is the tutorial's plain loop: it takes no alpha, "
            "momentum or schedule; use 'gd' or 'sgd' for those"
        )
    if not config.fit_intercept:
        raise ValidationError(f"solver {config.solver!r} always fits a bias (fit_intercept=True)")
    # The step: the given one, or the engine's automatic one for the equivalent solver.
    engine_solver: Literal["gd", "sgd"] = "gd" if config.solver == "scratch" else "sgd"
    probe = init_state(
        X,
        Y,
        SolverConfig(
            solver=engine_solver,
            batch_size=config.batch_size,
            standardize=config.standardize,
            learning_rate=config.learning_rate,
        ),
    )
    lr = probe.learning_rate
    scaler = probe.scaler
    Z = scaler.transform(X) if config.standardize else X
    seed = 0 if random_state is None else int(random_state)
    epochs = config.max_epochs
    if config.solver == "scratch":

        def on_scratch(epoch: int, total: int, loss: float) -> None:
            if callback is not None:
                callback(EpochInfo(epoch, total, loss, lr))

        part1 = train_from_scratch(Z, Y, epochs=epochs, lr=lr, seed=seed, callback=on_scratch)
        weight, bias, curve = part1.weight, part1.bias, part1.losses
    else:

        def on_builtin(epoch: int, total: int, last: float, mean: float) -> None:
            if callback is not None:
                callback(EpochInfo(epoch, total, mean, lr))

        part2 = train_builtin(
            Z, Y, epochs=epochs, lr=lr, batch_size=config.batch_size, seed=seed, callback=on_builtin
        )
        weight, bias, curve = part2.weight, part2.bias, tuple(part2.history.mean_loss)
    final = float(mse(predict(Z, weight, bias), Y))
    start = curve[0] if curve else final
    exploded = not math.isfinite(start) or final > config.divergence_factor * max(start, 1e-300)
    if exploded or not math.isfinite(final) or not bool(torch.isfinite(weight).all()):
        what = f"{final:.3g}" if math.isfinite(final) else "non-finite (inf or NaN)"
        reason = (
            f"training diverged: the loss became {what} (it started at {start:.3g}) with "
            f"learning rate {lr:.3g}; the largest stable learning rate for this solver on this "
            f"data is about {probe.stable_lr:.3g}"
        )
        raise DivergenceError(
            f"{reason}. Use a smaller learning rate or standardize the features",
            stable_lr=probe.stable_lr,
            reason=reason,
        )
    w, b = scaler.unscale(weight.double(), bias.double())
    return TrainingOutcome(w, b, tuple(curve), epochs, False, lr, probe.stable_lr, scaler)
