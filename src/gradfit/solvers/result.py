"""The one result type of every solver."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from gradfit.scaling import Standardizer

if TYPE_CHECKING:
    from gradfit.solvers.state import TrainState
    from gradfit.solvers.stats import SufficientStats

__all__ = ["FitResult"]


@dataclass(frozen=True)
class FitResult:
    """What every solver returns (and :class:`~gradfit.errors.DivergenceError` carries, for
    the last good epoch): coefficients in the original units of X, float64, and the history.

    ``state`` is the engine's :class:`~gradfit.solvers.state.TrainState` (gd, sgd), to continue
    training; ``stats`` the :class:`~gradfit.solvers.stats.SufficientStats` of all the rows
    trained on, in original units, when the solver computed them (so that a report of the
    optimum or of R² needs no second pass over the data)."""

    weight: torch.Tensor  # (k, d) float64
    bias: torch.Tensor  # (k,) float64
    loss_curve: tuple[float, ...]  # training objective per epoch (lstsq: its one value)
    n_iter: int  # epochs run (lstsq: 1)
    converged: bool  # stopped by its rule (tutorial loops: the same rule applied afterwards)
    learning_rate: float | None  # the initial step actually used (None for lstsq)
    stable_lr: float | None  # largest stable step for this solver and data (None for lstsq)
    scaler: Standardizer  # the standardization used in training (identity when none)
    validation_scores: tuple[float, ...] | None = None  # early stopping (gd, sgd)
    state: TrainState | None = None
    stats: SufficientStats | None = None
    # The algorithm in words, where a solver runs more than one (gd: "conjugate gradient" by
    # default, "gradient descent" with an explicit step, momentum or schedule; "" otherwise).
    method: str = ""
