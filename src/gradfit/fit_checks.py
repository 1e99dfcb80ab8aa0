"""What a fit is refused for before it trains, with one message for the fit in memory and the
streamed fit: statistics too wide for the memory limit (:func:`check_width`), a hold-out that
leaves too few rows (:func:`holdout_problem`), a covariance type that does not apply
(:func:`inference_problem`, :func:`clusters_problem`), a missing group label
(:func:`group_labels`), a value beyond the training dtype (:func:`as_training_tensor`); and
the math's refusal of a column too small or too large for float64, renamed in the column's
and the data's names (:func:`columns_named`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch

from gradfit.column_choice import expand_names
from gradfit.errors import ColumnScaleError, DataError
from gradfit.inference import ALL_COV_TYPES, CLUSTER
from gradfit.solvers.config import SolverConfig

__all__ = [
    "STATS_COPIES",
    "as_training_tensor",
    "check_width",
    "clusters_problem",
    "columns_named",
    "group_labels",
    "holdout_problem",
    "inference_problem",
    "statistics_bytes",
]


# The width check weighs one float64 (d + 1) x (d + 1) matrix, the statistics themselves,
# against --memory-limit, as the data read whole are weighed by their own size: the limit says
# how large the data may be, not the process's peak. A fit from the statistics keeps several
# such matrices alive at its peak (Szz, its scaled and symmetrized copies, the eigenvectors and
# LAPACK's workspace: measured at d = 3,000, 8.6 for gd, 9 for lstsq, 10 for sgd streamed), so
# 2,000 columns (32 MB of statistics, about 300 MB at the peak) fit under the default limit,
# while 100,000 (80 GB of statistics) are refused before the file is parsed.
STATS_COPIES = 1


@contextmanager
def columns_named(source: str, features: Sequence[str], targets: Sequence[str]) -> Iterator[None]:
    """The :class:`~gradfit.errors.ColumnScaleError` of the math within (a column by its
    index in X or Y) renamed: ``column 'x2' of data.csv``. ``features``, ``targets``: the
    columns of X and Y in order; ``source``: the data's name (a file's, or ``X``/``y``)."""
    try:
        yield
    except ColumnScaleError as error:
        names = features if error.block == "X" else targets
        if error.column is None or not 0 <= error.column < len(names):
            raise
        raise error.named(str(names[error.column]), source) from error


def statistics_bytes(d: int) -> int:
    """The bytes of the sufficient statistics of ``d`` features, weighed against the memory
    limit: :data:`STATS_COPIES` float64 matrix of (d + 1) × (d + 1) (see there)."""
    return STATS_COPIES * (d + 1) ** 2 * 8


def check_width(
    source: str,
    d: int,
    memory_limit: int | None,
    *,
    columns: Sequence[str] | None = None,
    targets: Sequence[str] = (),
    formula: str | None = None,
) -> None:
    """A DataError, before anything of the statistics' size is allocated, when ``d`` features
    need more memory for them (:func:`statistics_bytes`) than ``memory_limit`` (None: no
    limit): they grow as d², and 100,000 columns would need 800 GB.

    With ``columns`` (the file's header), ``d`` is the width of the default feature choice
    before the rows are read: every column but the ``targets``, at most (the text columns,
    unknown yet, would be left out), so that a file too wide is refused before it is parsed.

    ``formula``: the columns are a formula's design (``fit --formula``, ``anova``, which have
    no --features), and the message says to write it with fewer columns instead."""
    if memory_limit is None:
        return
    if columns is not None:
        d = len(columns) - len(set(expand_names(targets, columns)) & set(columns))
    if statistics_bytes(d) <= memory_limit:
        return
    what = (
        f"{d:,} feature columns"
        if columns is None
        else f"{len(columns):,} columns, {d:,} of them features by default,"
    )
    fewer = (
        "choose fewer columns with --features"
        if formula is None
        else f"write the formula {formula!r} with fewer columns (fewer terms or "
        "interactions; C(x) makes about a column per level)"
    )
    raise DataError(
        f"{source}: {what} need about {_mib(statistics_bytes(d))} in memory for the "
        f"{d + 1:,} x {d + 1:,} statistics of a fit, above the memory limit of "
        f"{_mib(memory_limit)}; {fewer}, or raise --memory-limit"
    )


def _mib(n: int) -> str:
    """``n`` bytes in MiB, or in bytes below 1 MiB (not "0 MiB ... above 0 MiB")."""
    return f"{n / 2**20:,.0f} MiB" if n >= 2**20 else f"{n:,} bytes"


def holdout_problem(source: str, n: int, held: int, fraction: float) -> str | None:
    """Why early stopping cannot train when it holds out ``held`` of the ``n`` rows of
    ``source`` (``fraction`` asked), or None: fewer than 2 rows would be left to train on, or
    none held out. One message for the fit in memory and the streamed fit."""
    train = n - held
    if train >= 2 and held >= 1:
        return None
    if held < 1:
        return (
            f"{source}: early stopping held out no row of {n} (--validation-fraction "
            f"{fraction:g}); raise --validation-fraction, or add rows"
        )
    return (
        f"{source}: early stopping holds out {held} of {n} rows (--validation-fraction "
        f"{fraction:g}), leaving {train} to train on, and at least 2 are needed; lower "
        "--validation-fraction, or add rows"
    )


def inference_problem(
    config: SolverConfig, cov_type: str | None, *, processes: int = 1, asked: bool = False
) -> str | None:
    """Why the coefficient table with covariance ``cov_type`` cannot be given for a fit with
    ``config`` on ``processes`` processes (checked before fitting, so that nobody waits for a
    refusal), or None. ``asked``: the user asked for the table (``--cov``), so that a penalized
    fit is refused whatever the covariance; otherwise it simply gets no table."""
    if cov_type is None:
        return None
    if cov_type not in ALL_COV_TYPES:
        return f"--cov must be one of {', '.join(ALL_COV_TYPES)}, got {cov_type!r}"
    if config.alpha > 0 and (asked or cov_type != "nonrobust"):
        return (
            f"--cov {cov_type}: standard errors do not apply to a penalized fit "
            f"(--alpha {config.alpha:g}): its coefficients are biased; leave out --cov, or fit "
            "with --alpha 0"
        )
    return None


def clusters_problem(cov_type: str | None, groups: str | None) -> str | None:
    """Why ``--cov cov_type`` and ``--groups groups`` do not go together, or None: clustered
    standard errors need the column of groups, and the column serves nothing else."""
    if cov_type == CLUSTER and groups is None:
        return (
            "--cov cluster needs --groups COLUMN: the column of each row's group (cluster), "
            "e.g. --groups firm"
        )
    if groups is not None and cov_type != CLUSTER:
        return (
            f"--groups {groups} goes with --cov cluster (clustered standard errors); add "
            "--cov cluster, or leave out --groups"
        )
    return None


def _missing_labels(values: np.ndarray) -> np.ndarray:
    """The mask of missing group labels (None, NaN) of a column as read."""
    if values.dtype.kind == "f":
        nan: np.ndarray = np.isnan(values)
        return nan
    if values.dtype == object:
        return np.fromiter(
            (v is None or (isinstance(v, float) and v != v) for v in values.tolist()),
            bool,
            values.shape[0],
        )
    return np.zeros(values.shape[0], bool)


def group_labels(
    values: np.ndarray, source: str, column: str, first_row: int, missing: str
) -> tuple[np.ndarray, np.ndarray]:
    """A column of group labels as read (text, numbers, booleans) and the mask of its missing
    cells; with ``missing="error"`` a missing one is a DataError naming its data row
    (``first_row`` is that of ``values[0]``, counted from 1)."""
    absent = _missing_labels(values)
    if missing == "error" and bool(absent.any()):
        row = int(np.argmax(absent))
        raise DataError(
            f"{source}: column {column!r}, row {first_row + row}: missing group label "
            "(--groups); fill it in, or leave out such rows with --missing drop"
        )
    return values, absent


def as_training_tensor(
    array: np.ndarray,
    names: Sequence[str],
    dtype: torch.dtype,
    device: torch.device | str,
    source: str,
    first_row: int = 1,
) -> torch.Tensor:
    """The data (n, m) float64 in the training dtype; a value beyond that dtype's range is
    named (column, row counted from ``first_row``, the limit) rather than left to overflow into
    inf somewhere in training."""
    limit = torch.finfo(dtype).max
    if dtype != torch.float64:
        rows, cols = np.nonzero(np.abs(array) > limit)
        if rows.size:
            i = int(np.argmin(rows * array.shape[1] + cols))
            row, col = int(rows[i]), int(cols[i])
            raise DataError(
                f"{source}: column {names[col]!r}, row {row + first_row}: {array[row, col]:g} is "
                f"beyond the range of {str(dtype).removeprefix('torch.')} (about {limit:.3g}); use "
                "--dtype float64 (or dtype='float64'), or rescale the column"
            )
    return torch.from_numpy(array).to(device=device, dtype=dtype)
