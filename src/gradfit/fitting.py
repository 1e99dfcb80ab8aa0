"""Fit a model to a data source and report on it: the work of ``gradfit fit`` as a library call.

:func:`fit_data` reads a file (CSV, TSV, gzip, Parquet), a built-in data set or a table in
memory (what a source is, :func:`source_kind` says, for every road), selects the features and
targets, trains with any registered solver (:func:`gradfit.training.fit_linear`) and returns
a :class:`~gradfit.fit_report.FitReport` (built by :func:`gradfit.fit_report.build_fit_report`,
as a streamed fit's): the model to save, the training result, and the summary figures (final
loss, the optimum, R² and the other metrics) over the training rows. The command line only
renders the report and writes the files; nothing here prints. :class:`FitReport`,
:func:`attach_inference`, :func:`model_file_settings` and :func:`recorded_scaling` are
re-exported from :mod:`gradfit.fit_report` under their old names.
"""

from __future__ import annotations

import functools
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Literal

import numpy as np
import torch

from gradfit.data import Table, column_names, left_out_columns, read_table, select
from gradfit.data.memory import TableInMemory, memory_table_name, read_memory_table
from gradfit.data.tables import (
    check_known,
    float_matrix,
    name_list,
    refuse_numeric_looking_text,
    too_many_levels,
)
from gradfit.data.weights import refuse_weight_role, table_weights, without_column
from gradfit.datasets import BUILTIN_DATASETS, load_dataset
from gradfit.errors import DataError, RankDeficiencyWarning, ValidationError
from gradfit.fit_report import (
    FitReport,
    attach_inference,
    build_fit_report,
    model_file_settings,
    recorded_scaling,
)
from gradfit.inference import ALL_COV_TYPES, CLUSTER
from gradfit.settings import (
    ClusterSettings,
    DesignSettings,
    RunSettings,
    WeightSettings,
    refuse_unknown,
    settings_from_options,
)
from gradfit.solvers import registry
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.engine import EpochInfo
from gradfit.solvers.rows import holdout_mask, holdout_seed, resolve_seed
from gradfit.storage import as_path
from gradfit.training import fit_linear

__all__ = [
    "CONSTANT",
    "IDENTIFIER",
    "FitReport",
    "as_training_tensor",
    "attach_inference",
    "check_design_names",
    "check_names",
    "check_width",
    "clusters_problem",
    "design_columns",
    "design_features",
    "encode_table",
    "expand_names",
    "fit_data",
    "group_labels",
    "holdout_problem",
    "inference_problem",
    "intercept_of_design",
    "model_file_settings",
    "read_source",
    "recorded_scaling",
    "single_rank_warning",
    "source_kind",
    "source_name",
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


def single_rank_warning(function: Callable[..., FitReport]) -> Callable[..., FitReport]:
    """``function`` (a fit that reports), warning about a rank-deficient design once: the
    solver and the coefficient table each find it, and only the last
    :class:`~gradfit.errors.RankDeficiencyWarning` (the table's, which names the aliased
    features) is passed on; other warnings pass unchanged, in order."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> FitReport:
        caught: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as log:
                warnings.simplefilter("always")
                caught = log  # filled as the fit goes; passed on even when it raises
                return function(*args, **kwargs)
        finally:
            rank = [w for w in caught if issubclass(w.category, RankDeficiencyWarning)]
            for w in caught:
                if w not in rank[:-1]:
                    warnings.warn_explicit(
                        w.message, w.category, w.filename, w.lineno, source=w.source
                    )

    return wrapper


@single_rank_warning
def fit_data(
    source: str | TableInMemory,
    targets: Sequence[str] | None,
    features: Sequence[str] | None = None,
    config: SolverConfig | None = None,
    *,
    run: RunSettings | None = None,
    design: DesignSettings | None = None,
    callback: Callable[[EpochInfo], None] | None = None,
    memory_limit: int | None = None,
    weighting: WeightSettings | None = None,
    clustering: ClusterSettings | None = None,
    **options: Any,
) -> FitReport:
    """Fit ``config.solver`` to the columns of ``source`` and report.

    Parameters
    ----------
    source : a data file path, the name of a built-in data set (``"crops"``), or a table in
        memory (a pandas DataFrame, a pyarrow Table or RecordBatch, or a mapping of column name
        to 1-D array: :mod:`gradfit.data.memory`), read as a file is read whole
    targets : target column names, expanded by :func:`expand_names` (None with a formula)
    features : feature column names (same rule); None: every other numeric, text or boolean
        column (:func:`design_features`)
    config : the solver and its settings (default: ``SolverConfig()``, gd)
    run : the run's settings (:class:`~gradfit.settings.RunSettings`): ``seed``, of shuffling,
        the validation split and the tutorial loops' initial weights; ``dtype`` and ``device``
        (``"auto"``: :func:`gradfit.settings.resolve_device`), where and in which precision the
        data are trained on; ``inference``, the covariance type of the coefficient table and
        intervals (:func:`gradfit.inference.ols`; None: none): given for ``lstsq`` and for an
        iterative fit that reached the least-squares optimum, without a penalty (see
        :func:`attach_inference`); ``level``, the coverage of the coefficients' confidence
        intervals in the model's summary
    design : the formula, ``missing`` and ``max_levels``
        (:class:`~gradfit.settings.DesignSettings`): with a formula, or a categorical column
        (text, boolean) among the features (by default every column but the targets that is
        numeric, text or boolean, R's ``y ~ .``), or ``missing="drop"``, the matrices come
        from a :class:`gradfit.design.Design` of the table (:func:`encode_table`); otherwise
        the numeric columns are read as they are
    callback : called with an :class:`EpochInfo` after every epoch
    memory_limit : bytes; a fit that builds d × d statistics (every solver but ``lstsq``
        without a penalty, which works on the rows) is refused, before training, when they
        would need more (:func:`check_width`); None: no limit
    weighting : row weights from a column (:class:`~gradfit.settings.WeightSettings`;
        ``weights=`` among ``options``): weighted least squares, as R's ``lm(weights = w)``;
        the column is never a feature, rows of weight 0 are left out of the report's rows
    clustering : the column of group labels of ``inference="cluster"`` (clustered standard
        errors; :class:`~gradfit.settings.ClusterSettings`, ``groups=`` among ``options``),
        left out of the default features; a row with a missing label follows
        ``design.missing`` (an error, or the row dropped from the fit)
    options : the fields of :class:`~gradfit.settings.RunSettings` (and ``weights``) as keyword
        arguments (``seed=``, ``dtype=``, ...), each replacing the field of ``run`` (or of the
        default)

    Raises
    ------
    DataError, ValidationError
        a file, a column or a setting that cannot be used (the message says which).
    DivergenceError
        training diverged; nothing is returned (there is nothing worth saving).
    """
    run = settings_from_options(RunSettings, run, options)
    weights_column = settings_from_options(WeightSettings, weighting, options).weights
    design = settings_from_options(DesignSettings, design, options)
    clustering = settings_from_options(ClusterSettings, clustering, options)
    groups_column = clustering.groups
    refuse_unknown("fit_data", options)
    check_design_names(design, targets, features)
    seed, dtype, device = run.seed, run.torch_dtype, run.torch_device()
    config = config if config is not None else SolverConfig()
    problem = inference_problem(config, run.inference) or clusters_problem(
        run.inference, groups_column
    )
    if problem is not None:
        raise ValidationError(problem)
    statistics = not (registry.get(config.solver).exact and config.alpha == 0)
    name = source_name(source)
    if statistics and memory_limit is not None and source_kind(source) in ("file", "files"):
        # From the header, before the rows are parsed (100,000 columns: 20 s of parsing).
        header = column_names(source)
        if design.formula is not None:
            pass  # the formula's columns are known once it is read with the table
        elif features is None:
            check_width(name, 0, memory_limit, columns=header, targets=targets or ())
        else:
            check_width(name, len(set(expand_names(features, header))), memory_limit)
    table = read_source(source)
    target_names = [] if targets is None else expand_names(targets, table.columns)
    feature_names = None if features is None else expand_names(features, table.columns)
    refuse_weight_role(name, weights_column, target_names, feature_names)
    chosen = without_column(table, weights_column)  # the weights are never a feature
    if groups_column is not None:
        check_known(table, [groups_column], "groups")
        if feature_names is None and design.formula is None:  # nor, by default, the groups
            chosen = without_column(chosen, groups_column)
    encoded = encode_table(chosen, target_names, feature_names, design, name, frame=source)
    design_doc: dict[str, Any] | None = None
    rows_dropped = 0
    kept: np.ndarray | None = None
    labels = absent = None
    if groups_column is not None:  # a row without a group: an error, or dropped (--missing)
        labels, absent = group_labels(
            table.columns[groups_column], name, groups_column, 1 + table.row_offset, design.missing
        )
    if encoded is None:
        X64, Y64, fnames, tnames = select(chosen, target_names, feature_names, min_rows=2)
        left_out = (
            design_features(chosen, tnames, design.max_levels)[2] if feature_names is None else {}
        )
    else:
        X64, Y64, fnames, tnames, left_out, kept, rows_dropped, design_doc = encoded
        config = intercept_of_design(config, design_doc["fit_intercept"], design.formula)
        if absent is not None:  # a row without a group leaves the fit (--missing drop)
            index = np.flatnonzero(kept)
            gone = absent[index]
            if bool(gone.any()):
                X64, Y64 = X64[~gone], Y64[~gone]
                kept = kept.copy()
                kept[index[gone]] = False
                rows_dropped += int(gone.sum())
        if X64.shape[0] < 2:
            raise DataError(
                f"{name}: {X64.shape[0]} row(s) left after dropping {rows_dropped} with a "
                "missing value; at least 2 are needed to fit a model"
            )
    if statistics:
        check_width(name, len(fnames), memory_limit, formula=design.formula)
    if labels is not None and kept is not None:
        labels = labels[kept]
    w64 = None if weights_column is None else table_weights(table, weights_column)
    if w64 is not None and kept is not None:
        w64 = w64[kept]  # the weights of the rows kept
    run_seed, held = seed, None
    if config.early_stopping:
        # The engine's split, by the row rule of every road (gradfit.solvers.rows): the table
        # is file 0, its rows counted as in the file (dropped rows included, as streamed).
        # One seed (drawn here without one) for the split checked here and the engine's, so
        # that both are the same rows.
        run_seed = resolve_seed(seed)
        n = X64.shape[0]
        n_read = n if kept is None else len(kept)
        held = holdout_mask(0, 1, n_read, config.validation_fraction, holdout_seed(run_seed))
        if kept is not None:
            held = held[kept]
        problem = holdout_problem(name, n, int(held.sum()), config.validation_fraction)
        if problem is not None:
            raise ValidationError(problem)
    X = as_training_tensor(X64, fnames, dtype, device, name)
    Y = as_training_tensor(Y64, tnames, dtype, device, name)

    start = time.perf_counter()
    sample_weight = None if w64 is None else torch.from_numpy(w64)
    # Rows dropped: the engine holds out the rows of the file's numbering (held), not those of
    # the rows kept.
    result = fit_linear(
        X,
        Y,
        config,
        random_state=run_seed,
        callback=callback,
        sample_weight=sample_weight,
        held=held if kept is not None else None,
    )
    seconds = time.perf_counter() - start

    # The report is over the training rows, as streamed (gradfit.fit_report): the rows held out
    # for early stopping are left out, and so are rows of weight 0 (R counts them nowhere).
    # The statistics the solver computed are theirs.
    Xd, Yd = X.double().cpu(), Y.double().cpu()
    keep_rows = None if held is None else ~held
    if w64 is not None:
        keep_rows = (w64 > 0) if keep_rows is None else keep_rows & (w64 > 0)
    if keep_rows is not None:
        keep = torch.from_numpy(keep_rows)
        Xd, Yd = Xd[keep], Yd[keep]
        if sample_weight is not None:
            sample_weight = sample_weight[keep]
        if labels is not None:
            labels = labels[keep_rows]
    return build_fit_report(
        name,
        result,
        config,
        features=fnames,
        targets=tnames,
        run=run,
        device=X.device,
        seconds=seconds,
        left_out=left_out,
        stats=result.stats,
        rows=(Xd, Yd),
        weights=sample_weight,
        weights_column=weights_column,
        design=design_doc,
        rows_dropped=rows_dropped,
        groups=labels,
        max_groups=clustering.max_groups,
        groups_column=clustering.groups,
    )


Encoded = tuple[
    np.ndarray,
    np.ndarray,
    tuple[str, ...],
    tuple[str, ...],
    dict[str, str],
    np.ndarray,
    int,
    dict[str, Any],
]


def check_design_names(
    design: DesignSettings, targets: Sequence[str] | None, features: Sequence[str] | None
) -> None:
    """A formula names the targets and features itself: given with them, one
    ValidationError; without a formula, at least one target is needed."""
    given = targets is not None and any(str(t).strip(" ,") for t in _listed(targets))
    if design.formula is not None:
        if given or features is not None:
            what = "targets" if given else "features"
            raise ValidationError(
                f"the formula {design.formula!r} names the targets and features itself; "
                f"leave out the {what} (--target/--features), or the formula (--formula)"
            )
        return
    if not given:
        raise ValidationError(
            "name at least one target column (--target, targets=), or give a formula "
            "(--formula 'y ~ x', formula=)"
        )


def _listed(values: Sequence[str] | str) -> list[str]:
    return [values] if isinstance(values, str) else list(values)


def intercept_of_design(
    config: SolverConfig, fit_intercept: bool, formula: str | None
) -> SolverConfig:
    """``config`` fitting an intercept as the design says: a formula without one (``0 +``,
    ``- 1``) fits without; a formula with one and ``fit_intercept=False`` is refused."""
    if fit_intercept == config.fit_intercept:
        return config
    if not fit_intercept:
        return replace(config, fit_intercept=False)
    raise ValidationError(
        f"the formula {formula!r} has an intercept, and fit_intercept=False "
        "(--no-fit-intercept) asks for none; write '0 +' or '- 1' in the formula for a model "
        "without intercept, and leave out --no-fit-intercept"
    )


# Column types (as pyarrow names them) read as categorical columns by default, R's y ~ .
_CATEGORICAL_TYPES = ("string", "large_string", "bool")


def design_features(
    table: Any, targets: Sequence[str], max_levels: int | None = None
) -> tuple[list[str], list[str], dict[str, str]]:
    """The default features, R's ``y ~ .``: every column but the ``targets`` that is numeric,
    or text or boolean (a categorical column; a dictionary column is read as its values);
    the categorical ones among them; and the columns left out, with why (empty, dates,
    lists...; an identifier: a text column with a different value in each of its first
    65,536 rows, which would fit every row exactly; a text column with a single value
    there). An identifier with more than ``max_levels`` values there is refused instead
    (:func:`gradfit.data.tables.too_many_levels`), as the levels pass would refuse it."""
    numeric = set(table.numeric_columns)
    skipped = left_out_columns(table, targets)
    categorical = [
        name for name in skipped if _categorical(table, name) and name not in table.duplicates
    ]
    for name in list(categorical):
        why = _not_categorical(table.columns[name])
        if why == IDENTIFIER and max_levels is not None:
            count = len(set(table.columns[name][:IDENTIFIER_ROWS].tolist()) - {None})
            if count > max_levels:
                raise too_many_levels(table.source, name, count, max_levels)
        if why is not None:
            categorical.remove(name)
            skipped[name] = why
    chosen = set(categorical) | numeric
    features = [name for name in table.columns if name in chosen and name not in set(targets)]
    left_out = {name: why for name, why in skipped.items() if name not in set(categorical)}
    return features, categorical, left_out


# Rows of a text column looked at to tell an identifier (see design_features): those of the
# head of a stream (gradfit.data.BatchStream.head_table), so that a file read whole and
# streamed choose the same features.
IDENTIFIER_ROWS = 1 << 16
IDENTIFIER = "identifier: text with a different value in every row"
CONSTANT = "text with a single value"


def _not_categorical(column: np.ndarray) -> str | None:
    """Why a text column is left out of the default features, or None: an identifier (a
    different value in each of its first :data:`IDENTIFIER_ROWS` rows, at least 2 with a
    value: as a categorical column it would fit every row exactly, a level per row), or a
    single value there (no contrast to estimate; R refuses such a factor)."""
    head = [v for v in column[:IDENTIFIER_ROWS].tolist() if v is not None and v == v]
    distinct = len(set(head))
    if distinct <= 1:
        return CONSTANT
    return IDENTIFIER if distinct == len(head) else None


def design_columns(
    table: Any,
    targets: Sequence[str],
    features: Sequence[str] | None,
    design: DesignSettings,
    source: str,
) -> tuple[bool, list[str] | None, dict[str, str]]:
    """Whether the columns of ``table`` (a whole table, or the head of a stream) go through a
    design: a formula, ``missing="drop"``, or a categorical column (text, boolean) among the
    features (named, or by default every column but the targets that is numeric, text or
    boolean); with the features chosen (None with a formula) and the columns left out. A
    text column that is mostly numbers is a numeric column with a typo: its bad cell is
    named, as without a design. The names are checked as :func:`gradfit.data.select` does."""
    if design.formula is not None:
        return True, None, {}
    left_out: dict[str, str] = {}
    if features is None:
        chosen, categorical, left_out = design_features(table, targets, design.max_levels)
        skip = list(targets)
    else:
        chosen = list(features)
        categorical = [n for n in chosen if n in table.columns and _categorical(table, n)]
        skip = [n for n in table.columns if n not in set(categorical)]
    if not categorical and not design.uses_design:
        return False, chosen, left_out
    refuse_numeric_looking_text(table, skip)
    check_names(table, targets, chosen, source)
    numeric = set(table.numeric_columns)
    others = [n for n in chosen if n not in numeric and n not in set(categorical)]
    if others:  # a list, a struct, a date: not numbers (select's message)
        float_matrix(table, others[:1])
    return True, chosen, left_out


def _categorical(table: Any, name: str) -> bool:
    column = table.columns[name]
    return bool(column.dtype == object and table.types.get(name, "string") in _CATEGORICAL_TYPES)


def encode_table(
    table: Any,
    targets: Sequence[str],
    features: Sequence[str] | None,
    design: DesignSettings,
    name: str,
    *,
    frame: Any = None,
) -> Encoded | None:
    """The matrices of ``table`` through a :class:`gradfit.design.Design` (imported only
    here: formulaic), or None when the plain road applies (:func:`design_columns`). Returns
    (X, Y, feature names, target names, columns left out, the mask of the rows kept, the
    count dropped, the design's document). ``frame``: the source, when it is a pandas
    DataFrame whose ``Categorical`` columns give their levels in their order (R's factor
    levels: the first the reference), which ``table`` (read as a Parquet file is) lacks."""
    needed, chosen, left_out = design_columns(table, targets, features, design, name)
    if not needed:
        return None
    from gradfit.design import Design, LevelGatherer

    levels = None
    if type(frame).__name__ == "DataFrame" and any(
        str(dtype) == "category" for dtype in getattr(frame, "dtypes", ())
    ):
        categorical = Design.categorical_columns(design.formula, table, targets, chosen)
        levels = LevelGatherer(categorical, design.max_levels, name).update(frame).levels()
    options: dict[str, Any] = {
        "levels": levels,
        "max_levels": design.max_levels,
        "missing": design.missing,
        "source": name,
    }
    if design.formula is not None:
        made = Design.from_formula(design.formula, table, **options)
    else:
        made = Design.default(table, targets, chosen, **options)
    mats = made.matrices(table, missing=design.missing, source=name)
    if mats.Y is None:  # pragma: no cover - with_targets=True
        raise DataError(f"{name}: no targets")
    document = made.to_dict()
    return (
        mats.X,
        mats.Y,
        made.columns,
        made.targets,
        left_out,
        mats.kept,
        int(mats.n_dropped),
        document,
    )


def check_names(table: Any, targets: Sequence[str], features: Sequence[str], source: str) -> None:
    """The checks of :func:`gradfit.data.select` on the names (not the cells)."""
    tnames = name_list(targets, "target")
    if not tnames:
        raise DataError(f"{source}: no target column given; name at least one target column")
    check_known(table, tnames, "target")
    fnames = name_list(features, "feature")
    if not fnames:
        raise DataError(f"{source}: no feature column given; name at least one feature")
    check_known(table, fnames, "feature")
    both = [n for n in fnames if n in set(tnames)]
    if both:
        raise DataError(
            f"{source}: column {both[0]!r} is given both as a target and as a feature; "
            "a column can only be one of them"
        )


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


def read_source(source: str | TableInMemory, text_columns: Sequence[str] = ()) -> Any:
    """The :class:`gradfit.data.Table` of a file, of a built-in data set by name, or of a table
    in memory (:func:`gradfit.data.memory.read_memory_table`; ``text_columns`` apply to a CSV
    file only: the columns of a table in memory keep their types)."""
    kind = source_kind(source)
    if kind == "memory":
        return read_memory_table(source)
    if kind == "builtin":
        data = load_dataset(source)
        columns = {
            **{n: data.data[:, j].double().numpy() for j, n in enumerate(data.feature_names)},
            **{n: data.target[:, j].double().numpy() for j, n in enumerate(data.target_names)},
        }
        return Table(columns=columns, source=source)
    return read_table(source, text_columns=text_columns)


SourceKind = Literal["memory", "builtin", "files", "file"]


def source_kind(source: object) -> SourceKind:
    """What a data source is: the one place that says it, for every road (fit, predict,
    evaluate; read whole or streamed).

    ``"memory"``: a table in memory (a pandas DataFrame, a pyarrow Table or RecordBatch, or a
    mapping of column name to 1-D array: :func:`gradfit.data.memory.memory_table_name`), read
    whole, never streamed. Otherwise a path (str or path-like): ``"builtin"``, the name of a
    built-in data set when no file of that name exists; ``"files"``, a directory, or a glob
    (a path that does not exist holding ``*``, ``?`` or ``[``); ``"file"``, anything else (a
    missing or unreadable file gets the reader's message). Anything else is a ValidationError.

    >>> source_kind("crops"), source_kind({"x": [1.0]}), source_kind("data/*.csv")
    ('builtin', 'memory', 'files')
    """
    if memory_table_name(source) is not None:
        return "memory"
    if not isinstance(source, (str, os.PathLike)):
        raise ValidationError(
            "a data source is a data file, a directory or glob of files, a built-in data set's "
            f"name ({', '.join(BUILTIN_DATASETS)}), or a table in memory (a pandas DataFrame, "
            "a pyarrow Table or RecordBatch, or a dict of column name to 1-D array); got "
            f"{type(source).__name__}"
        )
    text = str(source)
    path = as_path(text)
    if path.exists():
        return "files" if path.is_dir() else "file"
    if text in BUILTIN_DATASETS:
        return "builtin"
    return "files" if any(c in text for c in "*?[") else "file"


def source_name(source: object) -> str:
    """``source`` as messages and reports name it: the path as given, a built-in data set's
    name, or what a table in memory is (``"DataFrame"``, ``"table in memory"``...)."""
    return memory_table_name(source) or str(source)


def expand_names(values: Sequence[str], columns: Sequence[str]) -> list[str]:
    """Column names from the values of a repeatable option (``--target``, ``--features``,
    ``--keep``): a value that is itself the name of a column is taken literally, commas and
    all; any other value may list several names separated by commas.

    >>> expand_names(["a, b", "c"], ["a", "b", "c"]), expand_names(["x,y"], ["x,y", "x", "y"])
    (['a', 'b', 'c'], ['x,y'])
    """
    values = [values] if isinstance(values, str) else list(values)
    known = set(columns)  # a set: --features may list 100,000 of 100,000 columns
    names: list[str] = []
    for value in values:
        if value in known:
            names.append(value)
        else:
            names.extend(part.strip() for part in value.split(",") if part.strip())
    return names


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
