"""Explicit, typed, frozen configuration of the iterative solvers."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Literal

from gradfit.errors import ValidationError

__all__ = ["SCHEDULES", "SOLVERS", "SolverConfig"]

SOLVERS = ("gd", "sgd", "lstsq", "scratch", "builtin")
SCHEDULES = ("constant", "invscaling", "step")

Solver = Literal["gd", "sgd", "lstsq", "scratch", "builtin"]
Schedule = Literal["constant", "invscaling", "step"]


@dataclass(frozen=True)
class SolverConfig:
    """Settings of :func:`gradfit.solvers.engine.train`. Validated on construction.

    Objective (for each of the k targets, summed and scaled by 2/k so that ``alpha=0`` gives
    exactly the tutorial's MSE averaged over all n·k entries)::

        J(W, b) = ||X W^T + b - Y||^2 / (n k)
                  + (2 alpha / k) * (l1_ratio * ||W||_1 + (1 - l1_ratio) / 2 * ||W||_F^2)

    Its minimiser is scikit-learn's ``ElasticNet(alpha, l1_ratio)`` fitted to each target, and
    ``Ridge(alpha * n)`` when ``l1_ratio=0``. With ``standardize=True`` the penalty applies to the
    coefficients of the standardized features (as in a ``StandardScaler`` pipeline).
    """

    solver: Solver = "gd"
    learning_rate: float | Literal["auto"] = "auto"
    schedule: Schedule = "constant"
    power_t: float = 0.5  # invscaling: lr / (1 + epoch) ** power_t
    decay_every: int = 10  # step: lr * decay_rate ** (epoch // decay_every)
    decay_rate: float = 0.5
    momentum: float = 0.0
    nesterov: bool = False
    alpha: float = 0.0
    l1_ratio: float = 0.0
    batch_size: int = 32
    max_epochs: int = 1000
    tol: float | None = 1e-6
    n_iter_no_change: int = 5
    early_stopping: bool = False
    validation_fraction: float = 0.1
    standardize: bool = True
    fit_intercept: bool = True
    divergence_factor: float = 1e6

    def __post_init__(self) -> None:
        if self.solver not in SOLVERS:
            raise ValidationError(
                f"solver must be one of {', '.join(SOLVERS)}; got {self.solver!r}"
            )
        lr = self.learning_rate
        if isinstance(lr, str):
            if lr != "auto":
                raise ValidationError(
                    f"learning_rate must be 'auto' or a positive number, got {lr!r}"
                )
        elif (
            isinstance(lr, bool)
            or not isinstance(lr, numbers.Real)
            or not (math.isfinite(lr) and lr > 0)
        ):
            raise ValidationError(f"learning_rate must be 'auto' or a positive number, got {lr!r}")
        if self.schedule not in SCHEDULES:
            raise ValidationError(
                f"schedule must be one of {', '.join(SCHEDULES)}; got {self.schedule!r}"
            )
        _number(self.power_t, "power_t", low=0.0)
        _integer(self.decay_every, "decay_every")
        _number(self.decay_rate, "decay_rate", low=0.0, high=1.0, low_open=True)
        _number(self.momentum, "momentum", low=0.0, high=1.0, high_open=True)
        if self.nesterov and self.momentum == 0:
            raise ValidationError("nesterov=True needs momentum > 0")
        _number(self.alpha, "alpha", low=0.0)
        _number(self.l1_ratio, "l1_ratio", low=0.0, high=1.0)
        _integer(self.batch_size, "batch_size")
        _integer(self.max_epochs, "max_epochs")
        if self.tol is not None:
            _number(self.tol, "tol", low=0.0)
        _integer(self.n_iter_no_change, "n_iter_no_change")
        _number(
            self.validation_fraction,
            "validation_fraction",
            low=0.0,
            high=1.0,
            low_open=True,
            high_open=True,
        )
        _number(self.divergence_factor, "divergence_factor", low=1.0, low_open=True)
        self._check_combination()

    def _check_combination(self) -> None:
        """Settings a solver cannot honour are refused, never silently ignored."""
        solver = self.solver
        if solver == "lstsq" and self.alpha > 0 and self.l1_ratio > 0:
            raise ValidationError(
                f"solver='lstsq' has a closed form for the ridge penalty only (l1_ratio=0), got "
                f"l1_ratio={self.l1_ratio}; use solver='gd' for the elastic net"
            )
        if solver not in ("gd", "sgd") and self.early_stopping:
            raise ValidationError(
                f"early_stopping=True needs solver='gd' or 'sgd', got solver={solver!r}"
            )
        if solver in ("scratch", "builtin"):
            unsupported = {
                "alpha": self.alpha != 0,
                "momentum": self.momentum != 0,
                "schedule": self.schedule != "constant",
                "fit_intercept": not self.fit_intercept,
            }
            bad = [name for name, flag in unsupported.items() if flag]
            if bad:
                raise ValidationError(
                    f"solver={solver!r} runs the tutorial's plain SGD loop unchanged (constant "
                    "step, no penalty, no momentum, always an intercept); it cannot honour "
                    f"{', '.join(f'{b}={getattr(self, b)!r}' for b in bad)}. Use solver='gd' "
                    "or 'sgd'"
                )


def _number(
    value: object,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(float(value))
    ):
        raise ValidationError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low}"
        hi = "" if high is None else f"{'<' if high_open else '<='} {high}"
        raise ValidationError(
            f"{name} must be {' and '.join(p for p in (lo, hi) if p)}, got {value!r}"
        )


def _integer(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise ValidationError(f"{name} must be a positive integer, got {value!r}")
