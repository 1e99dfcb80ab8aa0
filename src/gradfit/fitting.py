"""Fit a model to a data source and report on it: the work of ``gradfit fit`` as a library call.

:func:`fit_data` reads a file (CSV, TSV, gzip, Parquet), a built-in data set or a table in
memory (what a source is, :func:`gradfit.sources.source_kind` says, for every road), selects the
features and targets (:mod:`gradfit.column_choice`), checks what can be checked before training
(:mod:`gradfit.fit_checks`), trains with any registered solver
(:func:`gradfit.training.fit_linear`) and returns a :class:`~gradfit.fit_report.FitReport`
(built by :func:`gradfit.fit_report.build_fit_report`, as a streamed fit's): the model to save,
the training result, and the summary figures (final loss, the optimum, R² and the other
metrics) over the training rows. The command line only renders the report and writes the files;
nothing here prints.

The names of :mod:`gradfit.sources`, :mod:`gradfit.column_choice` and :mod:`gradfit.fit_checks`
that were defined here are re-exported under their old names, as :class:`FitReport`,
:func:`attach_inference`, :func:`model_file_settings` and :func:`recorded_scaling` are from
:mod:`gradfit.fit_report`.
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from gradfit.column_choice import (
    CONSTANT,
    IDENTIFIER,
    check_design_names,
    check_names,
    design_columns,
    design_features,
    encode_table,
    expand_names,
    intercept_of_design,
    refuse_weights_in_formula,
)
from gradfit.data import column_names, select
from gradfit.data.memory import TableInMemory
from gradfit.data.tables import check_known
from gradfit.data.weights import refuse_weight_role, table_weights, without_column
from gradfit.errors import DataError, RankDeficiencyWarning, ValidationError
from gradfit.fit_checks import (
    as_training_tensor,
    check_width,
    clusters_problem,
    columns_named,
    group_labels,
    holdout_problem,
    inference_problem,
    statistics_bytes,
)
from gradfit.fit_report import (
    FitReport,
    attach_inference,
    build_fit_report,
    model_file_settings,
    recorded_scaling,
)
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
from gradfit.sources import read_source, source_kind, source_name
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
    refuse_weights_in_formula(design, chosen, weights_column, name)
    if groups_column is not None:
        check_known(table, [groups_column], "groups")
        # nor, by default, the groups (unless named as a target: clustered by the response)
        if feature_names is None and design.formula is None and groups_column not in target_names:
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
    with columns_named(name, fnames, tnames):
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
