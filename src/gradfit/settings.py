"""Settings with a home: how a source is read, how a fit runs, and where it checkpoints.

Frozen dataclasses, validated on construction, each default written once (the constants
below):

* :class:`ReadSettings`: whether to stream, the memory limit, rows per batch, sgd's shuffle
  buffer;
* :class:`RunSettings`: seed, dtype, device, the covariance of the coefficient table and its
  level;
* :class:`CheckpointSettings`: the checkpoint file, how often, whether to resume;
* :class:`DesignSettings`: the formula, what a missing value does, the most levels of a
  categorical column;
* :class:`ApplySettings`: how predict and evaluate treat a row with a missing value or a level
  not seen in training.

As in :class:`~gradfit.solvers.config.SolverConfig`, each field carries in its ``metadata``
(:func:`cli`) the command-line flag that sets it, the kind of value it parses and its help
text; the command line generates its options from them (:mod:`gradfit.cli.config_options`),
with the default shown from the field, so that the two cannot drift apart.

Whether a source is streamed is decided from these by one function,
:func:`gradfit.streaming.use_streaming`; ``"auto"`` and ``"cuda"`` are resolved to a device by
one function, :func:`resolve_device`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from gradfit.errors import ValidationError

if TYPE_CHECKING:
    import torch

# Neither torch nor NumPy is imported here at the top: the command line builds its options from
# these classes, and `gradfit --help` must not wait for them (tests/test_startup.py). The few
# functions that need them import them.

__all__ = [
    "ALL_COV_TYPES",
    "APPLY_MISSING",
    "COV_TYPES",
    "CV_SELECTIONS",
    "DEFAULT_BATCH_ROWS",
    "DEFAULT_CHECKPOINT_EVERY",
    "DEFAULT_DEVICE",
    "DEFAULT_INFERENCE",
    "DEFAULT_LEVEL",
    "DEFAULT_MAX_GROUPS",
    "DEFAULT_MAX_LEVELS",
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_MISSING",
    "DEFAULT_SEED",
    "DEFAULT_SHUFFLE_BUFFER",
    "DEVICES",
    "DTYPES",
    "MAX_COUNT",
    "MAX_FOLDS",
    "MISSING_CHOICES",
    "SCORED_MISSING",
    "UNKNOWN_LEVELS",
    "ApplySettings",
    "CVSettings",
    "CheckpointSettings",
    "ClusterSettings",
    "DesignSettings",
    "ReadSettings",
    "RunSettings",
    "WeightSettings",
    "as_keywords",
    "check_integer",
    "check_level",
    "check_number",
    "cli",
    "format_size",
    "refuse_unknown",
    "resolve_device",
    "settings_from_options",
]

# The largest count (epochs, batch size, rows, a seed): torch, NumPy and Python's slicing hold
# counts as signed 64-bit integers.
MAX_COUNT = 2**63 - 1

DEFAULT_MEMORY_LIMIT = 256 * 2**20  # bytes: a file read whole, a fit's d x d statistics
DEFAULT_BATCH_ROWS = 1 << 16
DEFAULT_SHUFFLE_BUFFER = 100_000
DEFAULT_SEED = 0
DEFAULT_DEVICE = "cpu"  # the library's; the command line's is "auto" (see RunSettings.device)
DEFAULT_INFERENCE = "nonrobust"
COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3")  # gradfit.inference's (not imported: torch)
ALL_COV_TYPES = (*COV_TYPES, "cluster")  # the same, with CR1 clustered errors
DEFAULT_LEVEL = 0.95
DEFAULT_CHECKPOINT_EVERY = 1
DEFAULT_MISSING = "error"
DEFAULT_MAX_LEVELS = 1000  # gradfit.design.DEFAULT_MAX_LEVELS (not imported: formulaic)
DEFAULT_MAX_GROUPS = 100_000  # gradfit.inference.cluster.DEFAULT_MAX_GROUPS (a test checks)
MISSING_CHOICES = ("error", "drop")  # gradfit.design.MISSING

APPLY_MISSING = ("error", "drop", "keep")  # predict's; evaluate and diagnose: SCORED_MISSING
# evaluate's and diagnose's: a row without a prediction has no error or residual to keep
SCORED_MISSING = APPLY_MISSING[:2]
UNKNOWN_LEVELS = ("error", "zero")

DTYPES = ("float32", "float64")  # names of torch's dtypes: RunSettings converts them
DEVICES = ("auto", "cpu", "cuda")  # the command line's choices; the library takes any device


def cli(
    help: str,
    kind: str,
    flag: str | None = None,
    *,
    default: Any = None,
    unset: bool = False,
    show_default: bool = True,
    metavar: str | None = None,
) -> dict[str, Any]:
    """Field metadata: the command-line flag (default ``--field-name``), the kind of value it
    parses (see :mod:`gradfit.cli.config_options`) and its help text, in which ``{default}``
    stands for the default (else it is appended in parentheses, unless ``show_default`` is
    False). ``default``: the command line's default where it differs from the field's (None:
    the field's). ``unset``: the option's default is None, so that the command can tell
    whether it was given; the settings then take the field's default."""
    return {
        "cli": {
            "flag": flag,
            "kind": kind,
            "help": help,
            "default": default,
            "unset": unset,
            "show_default": show_default,
            "metavar": metavar,
        }
    }


# ----------------------------------------------------------------------------- checks


def check_number(
    value: object,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """A ValidationError unless ``value`` is a finite real number in the range given."""
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


def check_integer(value: object, name: str) -> None:
    """A ValidationError unless ``value`` is an integer from 1 to :data:`MAX_COUNT`."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or not 1 <= int(value) <= MAX_COUNT
    ):
        shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:20]}..."
        raise ValidationError(f"{name} must be a positive integer up to 2**63 - 1, got {shown}")


def check_level(level: Any) -> float:
    """``level`` as a float strictly between 0 and 1, or a :class:`ValidationError`."""
    import numpy as np

    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)):
        raise ValidationError(f"level must be a number strictly between 0 and 1, got {level!r}")
    value = float(level)
    if not 0.0 < value < 1.0:
        raise ValidationError(f"level must be strictly between 0 and 1 (e.g. 0.95), got {level!r}")
    return value


def format_size(n: int) -> str:
    """Bytes as the command line writes them: ``256M``, ``2G``, ``1536K``, ``1000``."""
    for suffix, unit in (("T", 2**40), ("G", 2**30), ("M", 2**20), ("K", 2**10)):
        if n >= unit and n % unit == 0:
            return f"{n // unit}{suffix}"
    return str(n)


# ----------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ReadSettings:
    """How a data source is read: whole, or streamed in batches (see
    :func:`gradfit.streaming.use_streaming`, which decides)."""

    stream: bool | None = field(
        default=None,
        metadata=cli(
            "read the data in batches (files larger than memory) or whole; default: stream a "
            "directory, a glob, or a file that would need more than --memory-limit in memory",
            "bool",
            show_default=False,
        ),
    )
    memory_limit: int | None = field(
        default=DEFAULT_MEMORY_LIMIT,
        metadata=cli(
            "largest estimated in-memory size of a file read whole, and of a fit's d x d "
            "statistics",
            "byte_size",
        ),
    )
    batch_rows: int = field(
        default=DEFAULT_BATCH_ROWS,
        metadata=cli("rows per batch when streaming", "positive_int"),
    )
    shuffle_buffer: int = field(
        default=DEFAULT_SHUFFLE_BUFFER,
        metadata=cli("rows of sgd's shuffle buffer when streaming", "positive_int"),
    )

    def __post_init__(self) -> None:
        if self.stream is not None and not isinstance(self.stream, bool):
            raise ValidationError(
                f"stream must be True, False or None (decided from the source), got {self.stream!r}"
            )
        limit = self.memory_limit
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit < 0
        ):
            raise ValidationError(
                f"memory_limit must be a number of bytes >= 0 (None: no limit), got {limit!r}"
            )
        check_integer(self.batch_rows, "batch_rows")
        check_integer(self.shuffle_buffer, "shuffle_buffer")


@dataclass(frozen=True)
class RunSettings:
    """How a fit runs: its seed, the dtype and device of the data, and the coefficient table
    (:func:`gradfit.inference.ols`) with the coverage of its intervals."""

    seed: int | None = field(
        default=DEFAULT_SEED,
        metadata=cli("random seed, 0 to 2**63 - 1", "seed"),
    )
    dtype: torch.dtype | str = field(
        default="float64",  # torch.float64 on construction (not imported here: torch)
        metadata=cli("precision of the data in training", "dtype"),
    )
    device: torch.device | str = field(
        default=DEFAULT_DEVICE,
        metadata=cli(
            "where to train: auto (cuda when available), cpu or cuda", "device", default="auto"
        ),
    )
    inference: str | None = field(
        default=DEFAULT_INFERENCE,
        metadata=cli(
            "covariance of the coefficient table and of intervals: classical (nonrobust, the "
            "default) or White/MacKinnon heteroskedasticity-consistent (HC0-HC3; when "
            "streaming, one more pass over the data); unpenalized fits only",
            "cov",
            flag="--cov",
            unset=True,
            show_default=False,
        ),
    )
    level: float = field(
        default=DEFAULT_LEVEL,
        metadata=cli(
            "coverage of the coefficients' confidence intervals, between 0 and 1: the bounds "
            "in --json ({default}) and, when given, R's confint() table after the summary",
            "level",
            unset=True,
        ),
    )

    def __post_init__(self) -> None:
        seed = self.seed
        if seed is not None and (
            isinstance(seed, bool)
            or not isinstance(seed, numbers.Integral)
            or not 0 <= int(seed) <= MAX_COUNT
        ):
            raise ValidationError(
                f"seed must be an integer from 0 to 2**63 - 1, or None (fresh entropy), "
                f"got {seed!r}"
            )
        import torch

        dtypes = {name: getattr(torch, name) for name in DTYPES}
        dtype = self.dtype
        if isinstance(dtype, str) and dtype in dtypes:
            object.__setattr__(self, "dtype", dtypes[dtype])
        elif dtype not in dtypes.values():
            raise ValidationError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        if not isinstance(self.device, (str, torch.device)):
            raise ValidationError(
                f"device must be 'auto', 'cpu', 'cuda' or a torch.device, got {self.device!r}"
            )
        if self.inference is not None and not isinstance(self.inference, str):
            raise ValidationError(
                f"inference must be a covariance type such as 'nonrobust', or None, "
                f"got {self.inference!r}"
            )
        check_level(self.level)

    @property
    def torch_dtype(self) -> torch.dtype:
        """The dtype (a string given is converted on construction)."""
        return cast("torch.dtype", self.dtype)

    def torch_device(self) -> torch.device:
        """The device to train on (:func:`resolve_device`)."""
        return resolve_device(self.device)


@dataclass(frozen=True)
class CheckpointSettings:
    """Where a streamed fit saves its training state (:mod:`gradfit.checkpoint`): the file
    (None: no checkpoint), every how many epochs, and whether to resume from it."""

    checkpoint: str | Path | None = field(
        default=None,
        metadata=cli(
            "save the whole training state to PATH (atomically) every --checkpoint-every "
            "epochs and at the end (gd, sgd; the data are streamed); an existing file is "
            "replaced unless --resume",
            "path",
            show_default=False,
            metavar="PATH",
        ),
    )
    checkpoint_every: int = field(
        default=DEFAULT_CHECKPOINT_EVERY,
        metadata=cli("epochs between checkpoints", "positive_int", unset=True, metavar="N"),
    )
    resume: bool = field(
        default=False,
        metadata=cli(
            "continue from --checkpoint when it exists (the same data and settings), to "
            "bitwise the model of an uninterrupted run; start afresh when it does not",
            "flag",
            show_default=False,
        ),
    )

    def __post_init__(self) -> None:
        if self.checkpoint is not None and not isinstance(self.checkpoint, (str, Path)):
            raise ValidationError(
                f"checkpoint must be a path or None, got {type(self.checkpoint).__name__}"
            )
        check_integer(self.checkpoint_every, "checkpoint_every")
        if not isinstance(self.resume, bool):
            raise ValidationError(f"resume must be True or False, got {self.resume!r}")


@dataclass(frozen=True)
class DesignSettings:
    """What a model's columns are made of (:mod:`gradfit.design`): a Wilkinson ``formula``
    (None: the named or default columns, text and boolean ones as categorical, R's
    ``y ~ .``), what a missing value in a column the model uses does (``"error"``, or
    ``"drop"`` its row, R's ``na.omit``), and the most levels a categorical column may have."""

    formula: str | None = field(
        default=None,
        metadata=cli(
            "a Wilkinson formula 'targets ~ terms' (e.g. 'mpg ~ wt + hp + C(cyl) + wt:hp', "
            "'y ~ .'), instead of --target and --features: categorical columns (text, "
            "boolean, C(x)) in treatment coding, interactions, I(...), np.log(x); '0 +' for "
            "no intercept",
            "formula",
            show_default=False,
            metavar="FORMULA",
        ),
    )
    missing: str = field(
        default=DEFAULT_MISSING,
        metadata=cli(
            "a missing value in a column the model uses: error, or drop its row (R's "
            "na.omit; counted in the summary and the model file)",
            "missing",
        ),
    )
    max_levels: int = field(
        default=DEFAULT_MAX_LEVELS,
        metadata=cli(
            "the most distinct values of a categorical column (more: refused, e.g. an "
            "identifier column)",
            "positive_int",
            metavar="N",
        ),
    )

    def __post_init__(self) -> None:
        formula = self.formula
        if formula is not None and (not isinstance(formula, str) or "~" not in formula):
            raise ValidationError(
                f"formula must be a string 'targets ~ terms' (e.g. 'y ~ x + C(g)'), got {formula!r}"
            )
        if not isinstance(self.missing, str) or self.missing not in MISSING_CHOICES:
            raise ValidationError(
                f"missing must be 'error' or 'drop' (leave out rows with a missing value), "
                f"got {self.missing!r}"
            )
        check_integer(self.max_levels, "max_levels")

    @property
    def uses_design(self) -> bool:
        """Whether the design layer is needed whatever the columns: a formula, or rows to
        drop."""
        return self.formula is not None or self.missing == "drop"


@dataclass(frozen=True)
class ApplySettings:
    """How a saved model is applied to new data (:func:`gradfit.jobs.predict`,
    :func:`gradfit.jobs.evaluate`): a row with a missing value in a column the model uses
    (``missing``), and a level of a categorical column not seen in training
    (``unknown_level``, a model with a design: :mod:`gradfit.design`)."""

    missing: str = field(
        default="error",
        metadata=cli(
            "a row with a missing value (an empty cell, NA or NaN) in a column the model uses: "
            "error (one line naming it), drop (left out of the output and counted, R's "
            "na.omit) or keep (an empty prediction, so that the output stays row-aligned with "
            "the input, R's na.exclude; predict only)",
            "apply_missing",
        ),
    )
    unknown_level: str = field(
        default="error",
        metadata=cli(
            "a level of a categorical column not seen in training: error (one line naming "
            "column, row and level) or zero (encoded as the reference level, all its "
            "columns 0, and counted)",
            "unknown_level",
        ),
    )

    def __post_init__(self) -> None:
        for name, choices in (("missing", APPLY_MISSING), ("unknown_level", UNKNOWN_LEVELS)):
            value = getattr(self, name)
            if not isinstance(value, str) or value not in choices:
                listed = ", ".join(repr(c) for c in choices)
                raise ValidationError(f"{name} must be one of {listed}, got {value!r}")


_Settings = TypeVar(
    "_Settings",
    ReadSettings,
    RunSettings,
    CheckpointSettings,
    DesignSettings,
    ApplySettings,
    "WeightSettings",
    "ClusterSettings",
)


def settings_from_options(
    kind: type[_Settings], given: _Settings | None, options: dict[str, Any]
) -> _Settings:
    """``given`` (default: ``kind()``) with the fields named in ``options`` replaced; the
    names taken are removed from ``options``, so that what is left over can be refused. The
    keyword arguments of the functions that kept their old signatures (``seed=``,
    ``batch_rows=``, ...) become settings objects here."""
    names = {f.name for f in fields(kind)}
    taken = {name: options.pop(name) for name in list(options) if name in names}
    base = given if given is not None else kind()
    return replace(base, **taken) if taken else base


def as_keywords(
    *settings: ReadSettings | RunSettings | CheckpointSettings | DesignSettings | ApplySettings,
) -> dict[str, Any]:
    """The fields of settings objects as keyword arguments, by name: those of
    :func:`gradfit.fit` (whose keywords are these fields)."""
    return {f.name: getattr(s, f.name) for s in settings for f in fields(s)}


def refuse_unknown(function: str, options: dict[str, Any]) -> None:
    """The TypeError of Python for keyword arguments ``function`` does not take."""
    if options:
        raise TypeError(f"{function}() got an unexpected keyword argument {next(iter(options))!r}")


# ----------------------------------------------------------------------------- device


def resolve_device(device: str | torch.device) -> torch.device:
    """The device to train on: ``"auto"`` is CUDA when a CUDA device is available, else the
    CPU; any other name or :class:`torch.device` is itself, and a CUDA device where there is
    none is one :class:`ValidationError` saying what to use instead."""
    import torch

    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValidationError(
            f"device must be 'auto', 'cpu', 'cuda' or a torch device such as 'cuda:0', "
            f"got {device!r}"
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValidationError(
            f"device {str(device)!r}: no CUDA device is available; use cpu or auto "
            "(--device cpu, or device='cpu' in Python)"
        )
    return resolved


# ----------------------------------------------------------------------------- weights


@dataclass(frozen=True)
class WeightSettings:
    """Row weights from a column of the data (R's ``lm(..., weights = w)``): the column's
    name, or None for every row weight 1. The column is never a feature or a target; its
    values must be finite and >= 0 (0 leaves a row out), not all 0."""

    weights: str | None = field(
        default=None,
        metadata=cli(
            "column of row weights (weighted least squares, as R's lm(weights = w)): finite, "
            ">= 0, not all 0; never a feature",
            "column",
            show_default=False,
            metavar="COLUMN",
        ),
    )

    def __post_init__(self) -> None:
        if self.weights is not None and (
            not isinstance(self.weights, str) or not self.weights.strip()
        ):
            raise ValidationError(
                f"weights must be the name of a column of the data, or None, got {self.weights!r}"
            )


# ----------------------------------------------------------------------------- clusters


@dataclass(frozen=True)
class ClusterSettings:
    """Clustered standard errors from a column of the data (``--cov cluster --groups COLUMN``,
    :mod:`gradfit.inference.cluster`): the column of group labels (text, integers or
    categorical; None: no clusters) and the most groups kept (each group keeps one sum per
    coefficient and target: memory bounded by this)."""

    groups: str | None = field(
        default=None,
        metadata=cli(
            "column of group labels for --cov cluster (clustered standard errors, CR1 as "
            "sandwich::vcovCL and statsmodels): text, integers or categorical; a row with a "
            "missing label follows --missing",
            "column",
            show_default=False,
            metavar="COLUMN",
        ),
    )
    max_groups: int = field(
        default=DEFAULT_MAX_GROUPS,
        metadata=cli(
            "the most groups --groups may have (each keeps a sum per coefficient and target)",
            "positive_int",
            metavar="N",
        ),
    )

    def __post_init__(self) -> None:
        if self.groups is not None and (
            not isinstance(self.groups, str) or not self.groups.strip()
        ):
            raise ValidationError(
                f"groups must be the name of a column of the data, or None, got {self.groups!r}"
            )
        check_integer(self.max_groups, "max_groups")


# ----------------------------------------------------------------------------- cross-validation

CV_SELECTIONS = ("min", "1se")
MAX_FOLDS = 1000  # more folds than this is leave-nearly-one-out: d² work per fold, no gain


@dataclass(frozen=True)
class CVSettings:
    """How ``gradfit.fit_cv`` (``gradfit fit --alpha cv``) chooses the penalty by K-fold
    cross-validation (:func:`gradfit.cv_fit.fit_cv`): the alphas tried (a count, for the grid
    from ``alpha_max`` down, or the values), the number of folds (each row's fold from the
    seeded row hash, :func:`gradfit.solvers.rows.fold_ids`), one alpha for all targets or one
    each, and the rule (glmnet's ``lambda.min`` or ``lambda.1se``). Every option is ``unset``
    on the command line, so that one given without ``--alpha cv`` can be refused."""

    alphas: int | tuple[float, ...] = field(
        default=100,
        metadata=cli(
            "--alpha cv: how many alphas, log-spaced from the smallest that zeroes every "
            "coefficient down 1000-fold (as glmnet and ElasticNetCV), or the alphas themselves "
            "comma-separated",
            "alphas",
            unset=True,
            metavar="N|A,B,..",
        ),
    )
    folds: int = field(
        default=5,
        metadata=cli(
            f"--alpha cv: the number of folds, 2 to {MAX_FOLDS} (rows by a seeded hash of file "
            "and row: the same folds in memory, streamed and under torchrun; --seed picks them)",
            "folds",
            unset=True,
            metavar="K",
        ),
    )
    alpha_per_target: bool = field(
        default=False,
        metadata=cli(
            "--alpha cv: each target its own alpha (default: one for all, on the CV error "
            "averaged over the targets)",
            "flag",
            unset=True,
            show_default=False,
        ),
    )
    selection: str = field(
        default="min",
        metadata=cli(
            "--alpha cv: min (the smallest mean CV error) or 1se (the largest alpha within one "
            "standard error of it, glmnet's lambda.1se)",
            "selection",
            flag="--select",
            unset=True,
        ),
    )

    def __post_init__(self) -> None:
        import numpy as np

        alphas = self.alphas
        if isinstance(alphas, bool):
            raise ValidationError(f"alphas must be a count or a list of alphas, got {alphas!r}")
        if isinstance(alphas, numbers.Integral):
            check_integer(alphas, "alphas")
        else:
            values = np.asarray(alphas, dtype=np.float64).reshape(-1) if _listlike(alphas) else None
            if values is None or values.size == 0:
                raise ValidationError(f"alphas must be a count or a list of alphas, got {alphas!r}")
            if not np.all(np.isfinite(values)) or np.any(values < 0):
                raise ValidationError(f"alphas must be finite and >= 0, got {values.tolist()}")
            object.__setattr__(self, "alphas", tuple(float(v) for v in values))
        check_integer(self.folds, "folds")
        if not 2 <= self.folds <= MAX_FOLDS:
            raise ValidationError(f"folds must be from 2 to {MAX_FOLDS}, got {self.folds}")
        if not isinstance(self.alpha_per_target, bool):
            raise ValidationError(
                f"alpha_per_target must be True or False, got {self.alpha_per_target!r}"
            )
        if self.selection not in CV_SELECTIONS:
            raise ValidationError(f"selection must be 'min' or '1se', got {self.selection!r}")


def _listlike(value: object) -> bool:
    import numpy as np

    try:
        np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, (str, bytes))
