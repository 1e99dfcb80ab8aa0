"""Guards: small objects that each watch one thing about a run of epochs.

* :class:`DivergenceGuard`: has the loss exploded? The one divergence rule of gradfit, used by
  the engine, by the tutorial loops (:mod:`gradfit.solvers.tutorial_loops`) and by the demo.
* :class:`PlateauRule`: has the training loss stopped improving (the ``tol`` rule)?
* :class:`EarlyStopping`: has the validation score stopped improving?

Each holds only numbers, so that a :class:`~gradfit.solvers.state.TrainState` can save and
restore them (:meth:`state_dict`) and a resumed run stops exactly where an uninterrupted one
would.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["LOSS_RESOLUTION", "DivergenceGuard", "EarlyStopping", "PlateauRule"]

# The finest relative change of a float64 loss that is not rounding noise: a loss computed from
# sufficient statistics (a sum of terms larger than itself) wobbles by a few ulps of those terms
# from one epoch to the next, even at the optimum. A tol below this acts as this.
LOSS_RESOLUTION = 1e-13


@dataclass
class DivergenceGuard:
    """A loss diverged when it is not finite, or above ``factor`` times the ``reference`` (the
    first loss seen, or given), or, for ``monotone`` full-batch descent without momentum run
    above its stable step ``stable_lr``, when it rises at all: such a run can only grow from
    there, and the tol rule would otherwise take its slow growth for a plateau."""

    factor: float
    stable_lr: float | None = None
    monotone: bool = False
    reference: float | None = None
    previous: float | None = None

    def diverged(self, loss: float, lr: float | None = None, finite: bool = True) -> bool:
        """Check one loss (and whether the parameters are ``finite``); remember it when good."""
        if self.reference is None and math.isfinite(loss):
            self.reference = loss
        rising = (
            self.monotone
            and self.previous is not None
            and lr is not None
            and self.stable_lr is not None
            and lr > self.stable_lr
            and loss > self.previous
        )
        reference = max(self.reference if self.reference is not None else loss, 1e-300)
        bad = rising or not finite or not math.isfinite(loss) or loss > self.factor * reference
        if not bad:
            self.previous = loss
        return bad

    def reason(self, epoch: int, loss: float, lr: float, what: str) -> str:
        """What happened, without advice (front ends add advice in their own terms)."""
        value = "non-finite (inf or NaN)" if not math.isfinite(loss) else f"{loss:.3g}"
        start = "" if self.reference is None else f" (it started at {self.reference:.3g})"
        text = (
            f"training diverged at epoch {epoch}: the loss became {value}{start} with learning "
            f"rate {lr:.3g}"
        )
        if self.stable_lr is not None:
            text += (
                f"; the largest stable learning rate for {what} on this data is about "
                f"{self.stable_lr:.3g}"
            )
        return text

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PlateauRule:
    """The tol rule on a sequence of losses: ``update(loss)`` is True once ``patience`` losses
    in a row have not improved on the best by more than ``tol * max(best, floor)`` (relative to
    the best, but never finer than ``tol * floor``: on an exactly solvable problem the loss
    falls to zero geometrically and a purely relative rule would never stop; and ``tol`` never
    finer than :data:`LOSS_RESOLUTION`, below which changes are rounding noise). With
    ``deterministic`` (full batch), a loss above the best by more than that also counts as
    still moving."""

    tol: float
    patience: int
    floor: float
    deterministic: bool = False
    best: float = math.inf
    stalled: int = 0

    def update(self, loss: float) -> bool:
        step = max(self.tol, LOSS_RESOLUTION) * max(self.best, self.floor)
        improving = loss < self.best - step or not math.isfinite(self.best)
        overshooting = self.deterministic and loss > self.best + step
        self.stalled = 0 if improving or overshooting else self.stalled + 1
        self.best = min(self.best, loss)
        return self.stalled >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EarlyStopping:
    """``update(score)`` is True once ``patience`` validation scores in a row have not beaten
    the best by more than ``tol``; ``best_epoch`` is the epoch of the best score seen (the
    weights to keep, however training ends)."""

    tol: float
    patience: int
    best: float = -math.inf  # the best score seen
    best_epoch: int = 0
    improving_best: float = -math.inf  # the best score that counted as an improvement
    stalled: int = 0

    def update(self, score: float, epoch: int) -> bool:
        if score > self.best:
            self.best, self.best_epoch = score, epoch
        if score > self.improving_best + self.tol:
            self.improving_best, self.stalled = score, 0
        else:
            self.stalled += 1
        return self.stalled >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)
