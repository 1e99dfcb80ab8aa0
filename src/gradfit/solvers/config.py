"""Explicit, typed, frozen configuration of every solver.

Each field carries, in its ``metadata``, the command-line flag that sets it and its help text:
the command line derives its options from these fields (:mod:`gradfit.cli.config_options`), so
that the two cannot drift apart. Which solver honours which setting is asked of the solver
registry (:mod:`gradfit.solvers.registry`), not written here.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Literal

from gradfit.errors import ValidationError
from gradfit.settings import MAX_COUNT
from gradfit.settings import check_integer as _integer
from gradfit.settings import check_number as _number
from gradfit.settings import cli as _cli
from gradfit.solvers import registry
from gradfit.solvers.registry import Capability

__all__ = [
    "MAX_ALPHA",
    "MAX_COUNT",
    "MAX_LEARNING_RATE",
    "MAX_POWER_T",
    "SCHEDULES",
    "SOLVERS",
    "SolverConfig",
]

SOLVERS = registry.names()
SCHEDULES = ("constant", "invscaling", "step")

Schedule = Literal["constant", "invscaling", "step"]

# The largest penalty accepted. Far beyond it every coefficient is 0 to working precision all
# the same (standardized features have unit scale; 1e30 outweighs features up to ~1e15 left
# unscaled), while the arithmetic of the penalty overflows near it: gd's step bound squares
# alpha (inf above ~1e154), float32 mini-batches hold 2·alpha (inf above ~1.7e38), and
# lstsq's penalty rows sqrt(alpha·n) (inf above ~1e307 / n).
MAX_ALPHA = 1e30
# The largest learning rate: float32 tensors (the tutorial's, --dtype float32) cannot hold a
# step above ~3.4e38 (torch refuses the conversion); no data scaled to be fitted needs one.
MAX_LEARNING_RATE = 1e38
# The largest invscaling exponent: lr / (1 + epoch) ** power_t overflows a float (an error in
# Python) within the first thousand epochs above ~100, and the step is ~0 after a few epochs
# long before that.
MAX_POWER_T = 10.0


@dataclass(frozen=True)
class SolverConfig:
    """Settings of every solver (:func:`gradfit.training.fit_linear`). Validated on construction.

    Objective (for each of the k targets, summed and scaled by 2/k so that ``alpha=0`` gives
    exactly the tutorial's MSE averaged over all n·k entries)::

        J(W, b) = ||X W^T + b - Y||^2 / (n k)
                  + (2 alpha / k) * (l1_ratio * ||W||_1 + (1 - l1_ratio) / 2 * ||W||_F^2)

    Its minimiser is scikit-learn's ``ElasticNet(alpha, l1_ratio)`` fitted to each target, and
    ``Ridge(alpha * n)`` when ``l1_ratio=0``. With ``standardize=True`` the penalty applies to the
    coefficients of the standardized features (as in a ``StandardScaler`` pipeline).
    """

    solver: str = field(default="gd", metadata=_cli("solver", "solver"))
    learning_rate: float | Literal["auto"] = field(
        default="auto",
        metadata=_cli(
            f"learning rate up to {MAX_LEARNING_RATE:g}, or 'auto' (computed from the data)",
            "lr",
            flag="--lr",
        ),
    )
    schedule: Schedule = field(
        default="constant",
        metadata=_cli("step schedule: constant, invscaling or step", "schedule"),
    )
    power_t: float = field(
        default=0.5,
        metadata=_cli(
            f"invscaling: lr / (1 + epoch) ** power_t, from 0 to {MAX_POWER_T:g}", "exponent"
        ),
    )
    decay_every: int = field(
        default=10, metadata=_cli("step: multiply lr by decay_rate every N epochs", "positive_int")
    )
    decay_rate: float = field(
        default=0.5, metadata=_cli("step: the factor, in (0, 1]", "decay_rate")
    )
    momentum: float = field(
        default=0.0, metadata=_cli("heavy-ball momentum in [0, 1)", "unit_fraction")
    )
    nesterov: bool = field(default=False, metadata=_cli("Nesterov momentum", "bool"))
    alpha: float = field(
        default=0.0,
        metadata=_cli(f"regularization strength, from 0 to {MAX_ALPHA:g}", "penalty"),
    )
    l1_ratio: float = field(
        default=0.0,
        metadata=_cli(
            "elastic-net mix in [0, 1] (0: ridge); with --alpha cv, a comma-separated list to try",
            "l1_ratios",
        ),
    )
    batch_size: int = field(
        default=32, metadata=_cli("mini-batch size for sgd and builtin", "positive_int")
    )
    max_epochs: int = field(
        default=1000, metadata=_cli("maximum epochs", "positive_int", flag="--epochs")
    )
    tol: float | None = field(
        default=1e-6,
        metadata=_cli(
            "stop when the loss improves by less than this fraction; 'none': run every epoch",
            "tol",
        ),
    )
    n_iter_no_change: int = field(
        default=5, metadata=_cli("epochs without improvement before stopping", "positive_int")
    )
    early_stopping: bool = field(
        default=False,
        metadata=_cli("hold out --validation-fraction of the rows and stop on their R²", "bool"),
    )
    validation_fraction: float = field(
        default=0.1, metadata=_cli("fraction held out for early stopping, in (0, 1)", "fraction")
    )
    standardize: bool = field(
        default=True, metadata=_cli("centre and scale features inside training", "bool")
    )
    fit_intercept: bool = field(default=True, metadata=_cli("fit an intercept", "bool"))
    divergence_factor: float = field(
        default=1e6,
        metadata=_cli("a loss this many times the starting one is divergence (> 1)", "above_one"),
    )

    def __post_init__(self) -> None:
        spec = registry.get(self.solver)
        lr = self.learning_rate
        if isinstance(lr, str):
            if lr != "auto":
                raise ValidationError(
                    f"learning_rate must be 'auto' or a positive number, got {lr!r}"
                )
        elif (
            isinstance(lr, bool)
            or not isinstance(lr, numbers.Real)
            or not (math.isfinite(lr) and 0 < lr <= MAX_LEARNING_RATE)
        ):
            raise ValidationError(
                f"learning_rate must be 'auto' or a positive number up to "
                f"{MAX_LEARNING_RATE:g}, got {lr!r}"
            )
        if self.schedule not in SCHEDULES:
            raise ValidationError(
                f"schedule must be one of {', '.join(SCHEDULES)}; got {self.schedule!r}"
            )
        _number(self.power_t, "power_t", low=0.0, high=MAX_POWER_T)
        _integer(self.decay_every, "decay_every")
        _number(self.decay_rate, "decay_rate", low=0.0, high=1.0, low_open=True)
        _number(self.momentum, "momentum", low=0.0, high=1.0, high_open=True)
        for name in ("nesterov", "early_stopping", "standardize", "fit_intercept"):
            if not isinstance(getattr(self, name), bool):
                raise ValidationError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.nesterov and self.momentum == 0:
            raise ValidationError("nesterov=True needs momentum > 0")
        _number(self.alpha, "alpha", low=0.0)
        if self.alpha > MAX_ALPHA:
            raise ValidationError(
                f"alpha must be from 0 to {MAX_ALPHA:g}, got {self.alpha!r}: a larger penalty "
                "sets every coefficient to 0 all the same, and overflows the arithmetic"
            )
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
        spec.check(self.demands())

    def demands(self) -> dict[Capability, str]:
        """The capabilities these settings need from a solver, each with the setting that
        needs it (defaults need nothing)."""
        wanted: dict[Capability, str] = {}
        if self.alpha > 0:
            wanted["ridge" if self.l1_ratio == 0 else "l1"] = (
                f"alpha={self.alpha!r}" if self.l1_ratio == 0 else f"l1_ratio={self.l1_ratio!r}"
            )
        if self.learning_rate != "auto":
            wanted["learning_rate"] = f"learning_rate={self.learning_rate!r}"
        if self.momentum:
            wanted["momentum"] = f"momentum={self.momentum!r}"
        if self.schedule != "constant":
            wanted["schedule"] = f"schedule={self.schedule!r}"
        if self.early_stopping:
            wanted["early_stopping"] = "early_stopping=True"
        if not self.fit_intercept:
            wanted["no_intercept"] = "fit_intercept=False"
        return wanted

    def as_dict(self) -> dict[str, Any]:
        """The settings as JSON-able values (for model files, checkpoints, state dicts)."""
        return {f: getattr(self, f) for f in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SolverConfig:
        """Inverse of :meth:`as_dict`; unknown keys are refused (a foreign or newer file)."""
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValidationError(f"unknown solver settings: {', '.join(unknown)}")
        return cls(**values)
