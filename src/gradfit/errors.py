"""The exceptions and warnings gradfit raises.

One base class, :class:`GradfitError`, so that the command line can turn every user error into
a one-line message and exit code 2. Each subclass also derives from the built-in exception a
Python user would expect (``ValueError``...), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ColumnScaleError",
    "ConstantVarianceWarning",
    "ConvergenceWarning",
    "DataError",
    "DivergenceError",
    "GradfitError",
    "ModelFileError",
    "NoRowsLeftError",
    "RankDeficiencyWarning",
    "ValidationError",
]


class GradfitError(Exception):
    """Base class of every error gradfit raises on purpose (a user's mistake, not a bug)."""


class ValidationError(GradfitError, ValueError):
    """An argument has the wrong value, type or shape; the message names it and what was
    expected."""


class DataError(GradfitError, ValueError):
    """A data file or table cannot be used; the message names the file, column or row."""


class NoRowsLeftError(DataError):
    """Every row of a table has a missing value in a column the model uses (``missing="drop"``
    left none): nothing to make a design from. A stream's first batch may be so, and a later
    one not."""


class ColumnScaleError(ValidationError):
    """A column's values are too small (varying by less than about 1e-154: their squares
    underflow float64) or too large (beyond about 1e150: their squares overflow) for the
    second moments. ``too``: ``"small"`` or ``"large"``; ``block``: ``"X"`` or ``"Y"``;
    ``column``: its index there (counted from 0), None when unknown. The math raises it by
    index; a layer that knows the columns' names and the data's name renames it
    (:meth:`named`), so that a file's user reads ``column 'x2' of data.csv``."""

    def __init__(
        self,
        too: str,
        block: str,
        column: int | None,
        *,
        label: str | None = None,
        moments: str | None = None,
    ) -> None:
        self.too, self.block, self.column, self.moments = too, block, column, moments
        if label is None:
            label = (
                "the columns" if column is None else f"column {column} (counted from 0) of {block}"
            )
        if too == "small":
            what = f"{label} varies by less than about 1e-154, whose squares underflow float64; "
        else:
            if moments is None:
                moments = "X^T X" if block == "X" else "Y^T Y"
            what = (
                f"{moments} overflows float64 (values beyond about 1e150); "
                if column is None
                else f"{label} overflows float64 in {moments} (values beyond about 1e150); "
            )
        one = column is not None
        super().__init__(
            f"the data are too {too} to train on: {what}rescale "
            + (
                "the column (e.g. change its units)"
                if one
                else "the columns (e.g. change their units)"
            )
        )

    def named(self, name: str, source: str) -> ColumnScaleError:
        """The same error, the column called ``name`` in ``source`` (a file's name, or
        ``X``/``y``)."""
        return ColumnScaleError(
            self.too,
            self.block,
            self.column,
            label=f"column {name!r} of {source}",
            moments=self.moments,
        )


class ModelFileError(GradfitError, ValueError):
    """A model file is missing, truncated, corrupted, foreign or from a future format version."""


class DivergenceError(GradfitError, ArithmeticError):
    """Training diverged: the loss became non-finite or exploded.

    ``stable_lr`` is the largest step that is stable for this data (2/L for full-batch gradient
    descent, L the largest eigenvalue of the Hessian of the loss), when it could be computed.
    ``result`` is the :class:`gradfit.solvers.result.FitResult` of the last good epoch (its
    weights in original units, its history and, for the engine's solvers, its state), when a
    solver raised it; typed ``Any``, since the errors, at the bottom of the layers, name no
    solver's type.
    """

    def __init__(
        self,
        message: str,
        *,
        stable_lr: float | None = None,
        epoch: int | None = None,
        reason: str | None = None,
        result: Any = None,
    ):
        super().__init__(message)
        self.stable_lr = stable_lr
        self.epoch = epoch
        # What happened, without advice: front ends (the CLI) add advice in their own terms.
        self.reason = reason if reason is not None else message
        self.result = result


class ConvergenceWarning(UserWarning):
    """Training stopped at its epoch limit before its stopping criterion was met."""


class ConstantVarianceWarning(UserWarning):
    """A prediction interval of a weighted fit without the new rows' weights: each is taken to
    weigh 1 (a constant prediction variance, sigma²), as R's ``predict.lm`` assumes, and warns
    ("Assuming constant prediction variance even though model fit is weighted")."""


class RankDeficiencyWarning(UserWarning):
    """The design matrix is rank deficient: the least-squares solution is not unique."""
