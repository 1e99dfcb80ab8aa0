"""Fit, predict and evaluate over files larger than memory, one batch at a time.

The data come from :func:`gradfit.data.open_stream` (a file, a list of files, a directory or a
glob, read in batches of ``batch_rows`` rows); memory stays O(batch + d² + shuffle buffer)
whatever the size of the files.

Passes over the data, by solver:

* ``gd``: one pass for the :class:`~gradfit.solvers.stats.SufficientStats` (merged batch by
  batch), then every step from them: exactly the iterates of the in-memory fit;
* ``lstsq``: the closed form by TSQR (:func:`gradfit.solvers.tsqr.least_squares_stream`): on
  one process with unweighted rows (a solver whose spec says ``one_pass_r``), the R factor in
  the statistics pass itself (:class:`~gradfit.solvers.tsqr.RFactor`: one pass over the data
  where a refinement pass is not needed; the statistics are computed from that R, nothing
  else from the rows); otherwise one pass for the statistics (the means), one
  for the R factor of the centred data; then, where it pays, passes of iterative refinement;
* ``sgd``: one pass for the statistics (scaling, step size), one for the largest row norm (only
  with ``learning_rate="auto"``), then one pass per epoch;
* the tutorial loops (``scratch``, ``builtin``) are written for data in memory and are refused.

The order of sgd's rows in each epoch (reproducible for a seed; with one unit and a shuffle
buffer of all the rows, exactly the in-memory epoch) is :mod:`gradfit.stream_order`'s; the
rows themselves, batch by batch, come from :class:`gradfit.stream_data.StreamData`.

**Formulas, categorical columns and missing values** (:mod:`gradfit.design`, when
:func:`gradfit.fitting.design_columns` says so, as in memory): first a levels pass over the
categorical columns only (a Parquet file reads just those columns), each process over its
shard, the levels merged over the group (:class:`~gradfit.design.LevelGatherer`'s JSON,
:func:`~gradfit.solvers.collective.gather_bytes`); then the design is frozen from the first
batch of the data with those levels, the same on every process, and every batch is encoded by
it (messages name the file and its row). Stateful transforms (``poly``, ``center``,
``scale``, the splines), whose state would come from one batch, are refused: fit such a formula
in memory. ``missing="drop"`` drops rows batch by batch; the count is summed over the group.

**Early stopping's held-out rows** are picked row by row by the row rule of
:mod:`gradfit.solvers.rows` (a seeded hash of file and row), as in memory: the same rows, and
the training rows in the same order, whatever the batches, so that the fit in memory and the
fit streamed as above give the same model.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gradfit import evaluation, prediction
from gradfit.batch_sources import _Streamed
from gradfit.checkpoint import Checkpoint, data_fingerprint, legacy_statistics_digest
from gradfit.column_choice import choose_columns
from gradfit.data import BatchStream, open_stream
from gradfit.data.weights import refuse_all_zero, refuse_weight_role
from gradfit.errors import DataError, ValidationError
from gradfit.fit_checks import columns_named
from gradfit.fit_report import FitReport, build_fit_report
from gradfit.fitting import (
    check_design_names,
    check_width,
    clusters_problem,
    holdout_problem,
    inference_problem,
    intercept_of_design,
    single_rank_warning,
)
from gradfit.group_checks import _agree_on_the_job, _warn_small_batches
from gradfit.inference import ClusterScores
from gradfit.metrics import RegressionMetrics
from gradfit.model import predict
from gradfit.persistence import SavedModel
from gradfit.settings import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_LEVEL,
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_SHUFFLE_BUFFER,
    CheckpointSettings,
    ClusterSettings,
    DesignSettings,
    ReadSettings,
    RunSettings,
    WeightSettings,
    refuse_unknown,
    settings_from_options,
)
from gradfit.solvers import registry
from gradfit.solvers.collective import (
    LOCAL,
    Communicator,
    guarded,
    merge_stats,
)
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.engine import EpochInfo, stream_row_scale
from gradfit.solvers.result import FitResult
from gradfit.solvers.rows import holdout_mask, holdout_seed
from gradfit.solvers.stats import SufficientStats
from gradfit.solvers.tsqr import RFactor
from gradfit.storage import as_path
from gradfit.stream_clusters import _cluster_scores, _labelled
from gradfit.stream_data import Progress as Progress
from gradfit.stream_data import StreamData
from gradfit.stream_decision import memory_estimate, use_streaming
from gradfit.stream_design import DesignPlan, batch_encoder, freeze_design, open_design
from gradfit.stream_order import shuffled

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_SHUFFLE_BUFFER",
    "StreamData",
    "choose_columns",
    "evaluate_stream",
    "fit_stream",
    "holdout_mask",
    "memory_estimate",
    "predict_batches",
    "prediction_columns",
    "shuffled",
    "use_streaming",
]
# The streamed fit's parts, their names importable here as before: the rows (StreamData,
# gradfit.stream_data), their order (shuffled, gradfit.stream_order), when to stream
# (use_streaming, memory_estimate: gradfit.stream_decision) and a stream's columns
# (choose_columns: gradfit.column_choice).


# ----------------------------------------------------------------------------- fit


@single_rank_warning
def fit_stream(
    source: str | Path | Sequence[str | Path],
    targets: Sequence[str],
    features: Sequence[str] | None = None,
    config: SolverConfig | None = None,
    *,
    reading: ReadSettings | None = None,
    run: RunSettings | None = None,
    checkpointing: CheckpointSettings | None = None,
    design: DesignSettings | None = None,
    callback: Callable[[EpochInfo], None] | None = None,
    progress: Progress | None = None,
    sample_rows: int = 0,
    comm: Communicator | None = None,
    notes: list[str] | None = None,
    weighting: WeightSettings | None = None,
    clustering: ClusterSettings | None = None,
    **options: Any,
) -> FitReport:
    """Fit ``config.solver`` to files of any size, one batch at a time.

    Parameters
    ----------
    source : a file, a list of files, a directory of files with the same columns, or a glob
    targets, features : column names (see :func:`gradfit.fitting.expand_names`); features
        default to every other numeric, text or boolean column (an identifier left out:
        :func:`gradfit.fitting.design_features`)
    config : the solver and its settings (gd, sgd or lstsq; see the module doc)
    reading : how the files are read (:class:`~gradfit.settings.ReadSettings`): ``batch_rows``
        rows per batch, ``shuffle_buffer`` rows of sgd's shuffle buffer (see the module doc),
        ``memory_limit`` bytes: the fit is refused before the first pass when the features'
        d × d statistics would need more (:func:`gradfit.fitting.check_width`; default here:
        None, no limit); ``stream`` is not consulted (this function streams)
    run : seed, dtype, device, inference and level (:class:`~gradfit.settings.RunSettings`),
        as :func:`gradfit.fitting.fit_data`; ``inference``, the covariance type of the
        coefficient table, from the statistics, and for the heteroskedasticity-consistent types
        (HC0-HC3) one more pass over the data for each row's residual and leverage
    checkpointing : save the training state to ``checkpoint`` after every
        ``checkpoint_every`` epochs and at the end (gd, sgd; see :mod:`gradfit.checkpoint`);
        with ``resume``, continue from it when it exists
        (:class:`~gradfit.settings.CheckpointSettings`; default: none)
    callback : called with an :class:`EpochInfo` after every epoch
    progress : called with (bytes read, total bytes, rows read) after every batch of a pass
    sample_rows : with > 0, one more pass keeps about this many rows (a seeded uniform sample)
        with their predictions in the report's ``targets``/``predictions`` (for plots)
    comm : a group of processes (:mod:`gradfit.distributed`; default: this process alone).
        Each process reads its shard of the data (:meth:`BatchStream.shard`: every
        ``world``-th unit, a unit being a Parquet row group or a whole CSV file); the
        statistics, R factors and sgd's gradients are combined over the group, and every
        process returns the same model. Every process must call this with the same arguments.
    notes : a list to which messages for the user are appended (a resumed or fresh start,
        shards without data)
    weighting : row weights from a column (:class:`~gradfit.settings.WeightSettings`;
        ``weights=`` among ``options``): the weighted statistics (merged across batches and
        processes as the unweighted ones), gd from them, lstsq by TSQR on the rows scaled by
        sqrt(w), sgd's mini-batches carrying their rows' weights (scaled to mean 1 over the
        training rows, as in memory), the HC pass weighted; rows of weight 0 are left out
    clustering : the column of group labels of ``inference="cluster"``
        (:class:`~gradfit.settings.ClusterSettings`; ``groups=`` among ``options``): after the
        fit, one more pass sums each group's scores ``w e x`` at the fitted coefficients
        (:class:`~gradfit.inference.ClusterScores`: memory bounded by the number of groups,
        refused beyond ``max_groups``), merged by label over the processes; a row with a
        missing label follows ``design.missing`` (through a design, every pass drops it)
    design : the formula, ``missing`` and ``max_levels``
        (:class:`~gradfit.settings.DesignSettings`; see the module doc): ``targets`` None and
        ``features`` None with a formula
    options : the fields of the settings objects as keyword arguments (``seed=``,
        ``batch_rows=``, ``checkpoint=``, ...), each replacing the field of the object given
        (or of the default one)

    Returns
    -------
    FitReport
        as :func:`gradfit.fitting.fit_data`; the training metrics (MSE, RMSE, R²) and the
        optimum come from the statistics (no extra pass); MAE, which needs one, is left out
        (``gradfit evaluate`` gives it).
    """
    reading = settings_from_options(ReadSettings, reading or _NO_LIMIT, options)
    run = settings_from_options(RunSettings, run, options)
    checkpointing = settings_from_options(CheckpointSettings, checkpointing, options)
    weights_column = settings_from_options(WeightSettings, weighting, options).weights
    design = settings_from_options(DesignSettings, design, options)
    clustering = settings_from_options(ClusterSettings, clustering, options)
    groups_column = clustering.groups
    refuse_unknown("fit_stream", options)
    check_design_names(design, targets, features)
    seed, dtype, checkpoint = run.seed, run.torch_dtype, checkpointing.checkpoint
    config = config if config is not None else SolverConfig()
    group = comm if comm is not None else LOCAL
    problem = inference_problem(config, run.inference, processes=group.world) or (
        clusters_problem(run.inference, groups_column)
    )
    if problem is not None:
        raise ValidationError(problem)
    spec = registry.get(config.solver)
    fit = spec.stream_function()
    if group.world > 1:
        spec.check({"distributed": "training on several processes"})
    if checkpoint is not None and not spec.iterative:
        raise ValidationError(
            f"solver={config.solver!r} has no epochs to checkpoint; leave out --checkpoint, "
            "or use gd or sgd"
        )
    dev = run.torch_device()
    stream, found = guarded(
        group,
        lambda: open_design(
            open_stream,
            source,
            reading.batch_rows,
            targets,
            features,
            design,
            weights_column,
            groups_column,
        ),
    )
    if group.world > 1:
        _agree_on_the_job(group, stream, config, run, reading, checkpointing, targets, features)
    encoding = None
    plan = found if isinstance(found, DesignPlan) else None
    if plan is None:
        fnames, tnames, _ = guarded(
            group,
            lambda: _open(
                stream, targets or (), features, reading.memory_limit, weights_column, groups_column
            ),
        )
        left_out = found if isinstance(found, dict) else {}
    else:
        shard = None if group.world == 1 else stream.shard(group.rank, group.world)
        encoding = freeze_design(stream, plan, design, group, shard)
        fnames, tnames, left_out = encoding.columns, encoding.targets, plan.left_out
        config = intercept_of_design(config, encoding.fit_intercept, design.formula)
        guarded(
            group,
            lambda: check_width(
                stream.source, len(fnames), reading.memory_limit, formula=design.formula
            ),
        )
    if group.world > 1:
        _warn_small_batches(config, group.world, len(fnames))
    data = StreamData(stream, fnames, tnames, dtype, dev, reading.shuffle_buffer, progress)
    data.weights = weights_column
    data.groups = groups_column
    if spec.one_pass_r and group.world == 1:
        # Passes 1 and 2 of TSQR in one; with its ones column whatever the fit, for the
        # statistics (RFactor.statistics; a fit without an intercept: RFactor.uncentred).
        data.r_factor = RFactor(fit_intercept=True)
    if plan is not None and encoding is not None:
        data.encoder = batch_encoder(encoding, plan, design.missing, stream.columns)
        data.raw_numeric, data.raw_text = plan.numeric, plan.text
        if groups_column is not None:  # read with every batch: a row without one is dropped
            data.encoder = _labelled(data.encoder, groups_column, design.missing)
            if groups_column not in (*plan.numeric, *plan.text):
                if groups_column in stream.head_table().numeric_columns:
                    data.raw_numeric = (*plan.numeric, groups_column)
                else:
                    data.raw_text = (*plan.text, groups_column)
    if group.world > 1:
        data.shard = tuple(stream.shard(group.rank, group.world))
        units = len(stream.units())
        if units < group.world and notes is not None and group.rank == 0:
            notes.append(
                f"{stream.source} has {units} unit(s) to share among {group.world} processes "
                "(a unit is a CSV file or a Parquet row group), so some read nothing; split the "
                "data into more files or row groups to share the reading"
            )

    start = time.perf_counter()
    d, k = len(fnames), len(tnames)
    if config.early_stopping:
        data.holdout = config.validation_fraction
        # The split's seed from the fit's (fresh entropy without one), as in memory.
        data.holdout_seed = holdout_seed(seed)
    data.dropped = 0
    with columns_named(stream.source, fnames, tnames):
        local, local_held = guarded(group, lambda: _local_stats(data))
        dropped = data.dropped
        if group.world > 1 and plan is not None:
            dropped = int(group.sum(torch.tensor([dropped], dtype=torch.int64))[0])
        data.rows = 0 if local is None else local.n
        stats = merge_stats(group, local, d, k, dev)
        validation = merge_stats(group, local_held, d, k, dev) if config.early_stopping else None
    if weights_column is not None and stats.n == 0 and (validation is None or validation.n == 0):
        raise refuse_all_zero(stream.source, weights_column)
    data.weight_scale = stream_row_scale(stats)
    if validation is not None:
        problem = holdout_problem(
            stream.source, stats.n + validation.n, validation.n, config.validation_fraction
        )
        if problem is not None:
            raise ValidationError(problem)
    if stats.n < 2:
        raise DataError(
            f"{stream.source}: {stats.n} training row(s); at least 2 are needed to fit a model"
        )
    keeper = None
    if checkpoint is not None:
        settings = {
            **config.as_dict(),
            "seed": seed,
            "dtype": str(dtype).removeprefix("torch."),
            "batch_rows": reading.batch_rows,
            "shuffle_buffer": reading.shuffle_buffer,
            "processes": group.world,
        }
        keeper = Checkpoint(
            as_path(checkpoint),
            data_fingerprint(stats, fnames, tnames, weights_column),
            settings,
            every=checkpointing.checkpoint_every,
            resume_from_file=checkpointing.resume,
            comm=group,
            legacy_statistics=legacy_statistics_digest(stats),
        )
    kwargs: dict[str, Any] = {}
    if group.world > 1:
        kwargs["comm"] = group
    if keeper is not None:
        kwargs["checkpoint"] = keeper
    if validation is not None:
        kwargs["validation"] = validation
    try:
        with columns_named(stream.source, fnames, tnames):
            result = fit(data, stats, config, random_state=seed, callback=callback, **kwargs)
    finally:
        if keeper is not None and notes is not None:
            notes.extend(keeper.notes)
    seconds = time.perf_counter() - start
    sample = _sample(data, result, stats.n, sample_rows, seed) if sample_rows > 0 else None
    # The HC covariances' pass: this process's training rows again, in float64.
    rows64 = replace(data, dtype=torch.float64, progress=None)

    def collect(work: Callable[[], np.ndarray]) -> np.ndarray:
        local = torch.from_numpy(guarded(group, work))
        return group.sum(local).numpy() if group.world > 1 else local.numpy()

    def clusters(weight: np.ndarray, bias: np.ndarray, shift: np.ndarray) -> ClusterScores:
        return _cluster_scores(rows64, group, weight, bias, shift, clustering.max_groups)

    return build_fit_report(
        stream.source,
        result,
        config,
        features=fnames,
        targets=tnames,
        run=run,
        device=dev,
        seconds=seconds,
        left_out=left_out,
        stats=stats,
        sample=sample,
        batches=rows64.tensors if weights_column is None else rows64.weighted_tensors,
        collect=collect,
        weights_column=weights_column,
        design=None if encoding is None else encoding.to_dict(),
        rows_dropped=dropped,
        clusters=None if groups_column is None else clusters,
        max_groups=clustering.max_groups,
        groups_column=clustering.groups,
    )


# A streamed fit called directly weighs no memory limit unless given one (gradfit.fit gives its
# own: the default limit).
_NO_LIMIT = ReadSettings(memory_limit=None)


def _open(
    stream: BatchStream,
    targets: Sequence[str],
    features: Sequence[str] | None,
    memory_limit: int | None = None,
    weights: str | None = None,
    groups: str | None = None,
) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, str]]:
    """The stream's plain columns, the width checked (:func:`gradfit.fitting.check_width`)
    from the header first, then once the features are chosen. ``weights``: the column of row
    weights, never a feature; ``groups``: that of group labels, not a default feature."""
    if features is None:
        check_width(stream.source, 0, memory_limit, columns=stream.columns, targets=targets)
    fnames, tnames, left_out = choose_columns(stream, targets, features)
    if weights is not None:
        fnames = _weighted_columns(stream, weights, tnames, fnames, features is None)
    if groups is not None:
        stream.check_columns([groups], "groups")
        if features is None:
            fnames = tuple(name for name in fnames if name != groups)
    check_width(stream.source, len(fnames), memory_limit)
    return fnames, tnames, left_out


def _weighted_columns(
    stream: BatchStream,
    weights: str,
    targets: tuple[str, ...],
    features: tuple[str, ...],
    default: bool,
) -> tuple[str, ...]:
    """The features without the weights column (``default``: the default choice, which left
    it in), after checking that the column exists and is named as nothing else."""
    stream.check_columns([weights], "weights")
    refuse_weight_role(stream.source, weights, targets, None if default else features)
    fnames = tuple(name for name in features if name != weights)
    if not fnames:
        raise DataError(
            f"{stream.source}: no feature columns left once the weights column {weights!r} is "
            "set apart; name the features with --features"
        )
    return fnames


def _local_stats(data: StreamData) -> tuple[SufficientStats | None, SufficientStats | None]:
    """The statistics of this process's training rows and of its held-out rows (None where
    there are none: an empty shard, no hold-out), in one pass."""
    if data.shard is not None and not data.shard:
        return None, None
    if (
        data.holdout == 0
        and data.weights is None
        and data.dtype == torch.float64
        and data.device.type == "cpu"
    ):
        # The columns as read: the statistics shift them straight into their own buffer.
        parts = data.columns()
        factor = data.r_factor
        if factor is not None:  # the R factor alone; the statistics from it
            for Z, Y in parts:
                factor.add([*Z, *Y])
            return (factor.statistics(len(data.features)) if factor.rows else None), None
        head = next(parts, None)
        if head is None:
            return None, None
        return SufficientStats.from_batches(itertools.chain([head], parts)), None
    data.r_factor = None
    held: list[SufficientStats | None] = [None]

    def training() -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        for X, Y, mask, w in data.weighted_split():
            if mask is None:
                yield X, Y, w
                continue
            if mask.any():
                out = torch.from_numpy(mask)
                wo = None if w is None else w[out]
                part = SufficientStats.compute(
                    X[out.to(X.device)], Y[out.to(Y.device)], weights=wo, whole=False
                )
                held[0] = part if held[0] is None else held[0].merge(part)
            if not mask.all():
                keep = torch.from_numpy(~mask)
                yield X[keep.to(X.device)], Y[keep.to(Y.device)], None if w is None else w[keep]

    batches = training()
    first = next(batches, None)
    if first is None:  # every row held out
        return None, held[0]
    train = SufficientStats.from_batches(itertools.chain([first], batches))
    return train, held[0]


def _sample(
    data: StreamData, result: FitResult, n: int, rows: int, seed: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """About ``rows`` of the ``n`` rows, each kept with probability rows/n (seeded), with the
    model's predictions: (targets (m, k), predictions (m, k)) float64."""
    rng = np.random.default_rng(seed)
    keep = min(1.0, rows / max(n, 1))
    weight, bias = result.weight.double(), result.bias.double()
    ys: list[np.ndarray] = []
    ps: list[np.ndarray] = []
    for X, Y in data.tensors():
        mask = torch.from_numpy(rng.random(X.shape[0]) < keep).to(X.device)
        Xk, Yk = X[mask].double(), Y[mask].double()
        ys.append(Yk.cpu().numpy())
        ps.append(predict(Xk, weight.to(Xk.device), bias.to(Xk.device)).cpu().numpy())
    k = result.weight.shape[0]
    if not ys:
        return np.empty((0, k)), np.empty((0, k))
    return np.concatenate(ys), np.concatenate(ps)


# ----------------------------------------------------------------------------- predict, evaluate

# Predictions and metrics take one road for a file read whole and streamed: gradfit.prediction
# and gradfit.evaluation (gradfit.jobs's faces). These are their streamed forms under their old
# names.


def predict_batches(
    model: SavedModel,
    source: str | Path | Sequence[str | Path],
    *,
    keep: Sequence[str] = (),
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Progress | None = None,
    interval: str | None = None,
    level: float = DEFAULT_LEVEL,
    predictor: Any = None,
) -> Iterator[dict[str, np.ndarray]]:
    """:func:`gradfit.jobs.predict_batches` of files of any size (a file, a list of files, a
    directory or a glob), always streamed."""
    if interval is not None and predictor is None:
        predictor = model.interval_predictor()
    data = _Streamed(source, batch_rows, progress)
    return prediction._predict(model, data, keep, predictor, interval, level)


def prediction_columns(
    model: SavedModel,
    X: torch.Tensor,
    predictor: Any = None,
    interval: str | None = None,
    level: float = DEFAULT_LEVEL,
) -> dict[str, np.ndarray]:
    """:func:`gradfit.jobs.prediction_columns`."""
    return prediction.prediction_columns(model, X, predictor, interval, level)


def evaluate_stream(
    model: SavedModel,
    source: str | Path | Sequence[str | Path],
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Progress | None = None,
) -> tuple[int, RegressionMetrics]:
    """:func:`gradfit.jobs.evaluate` of files of any size, always streamed: (rows, metrics)."""
    report = evaluation._evaluate(model, _Streamed(source, batch_rows, progress))
    return report.n_samples, report.metrics
