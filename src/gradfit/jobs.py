"""The library's faces over data sources: :func:`fit`, :func:`predict` and :func:`evaluate`.

Each takes a source (a data file, a directory or glob of files with the same columns, the
name of a built-in data set, or a table in memory: a pandas DataFrame, a pyarrow Table or
RecordBatch, or a dict of column name to 1-D array) and returns a report or the prediction
columns; nothing here prints. What a source is, :func:`gradfit.fitting.source_kind` says; whether
it is read whole or streamed in batches is decided in one place,
:func:`gradfit.streaming.use_streaming` (``stream`` forces it; by default a directory, a glob or
a file that would need more than ``memory_limit`` bytes in memory is streamed; a table in memory
is never streamed, and is read as a file is read whole: :mod:`gradfit.data.memory`).

Predictions and metrics take one road whatever the source: a file read whole is a source of
one batch, a stream a source of many (:mod:`gradfit.batch_sources`), and the same code checks
the columns (with the same messages), builds each batch's prediction columns
(:mod:`gradfit.prediction`) and accumulates the metrics (:mod:`gradfit.evaluation`) batch by
batch. How a model reads a batch is one road too (:mod:`gradfit.model_rows`): a model with a
design (a formula, categorical columns) encodes each batch by it; a model of plain columns
reads its features as numbers. :func:`fit` is written here; :func:`predict`,
:func:`predict_batches`, :func:`prediction_columns` and :func:`evaluate` are those of
:mod:`gradfit.prediction` and :mod:`gradfit.evaluation`, imported here.

Example (a model fitted on a CSV file, then used on it)::

    import gradfit
    report = gradfit.fit("crops.csv", ["apples", "oranges"])
    columns = gradfit.predict(report.model, "crops.csv", keep=["region"])
    print(gradfit.evaluate(report.model, "crops.csv").as_dict())

    import pandas as pd
    frame = pd.read_csv("crops.csv")  # the same model, fitted from a DataFrame
    report = gradfit.fit(frame, ["apples", "oranges"])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from gradfit.batch_sources import Source
from gradfit.evaluation import EvaluationReport, evaluate
from gradfit.fitting import FitReport, check_design_names, fit_data, source_kind
from gradfit.observers import observing
from gradfit.prediction import predict, predict_batches, prediction_columns
from gradfit.settings import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_CHECKPOINT_EVERY,
    DEFAULT_DEVICE,
    DEFAULT_INFERENCE,
    DEFAULT_LEVEL,
    DEFAULT_MAX_GROUPS,
    DEFAULT_MAX_LEVELS,
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_MISSING,
    DEFAULT_SEED,
    DEFAULT_SHUFFLE_BUFFER,
    CheckpointSettings,
    ClusterSettings,
    DesignSettings,
    ReadSettings,
    RunSettings,
    WeightSettings,
)
from gradfit.solvers import registry
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.engine import EpochInfo
from gradfit.streaming import Progress, fit_stream, use_streaming

if TYPE_CHECKING:
    from gradfit.solvers.collective import Communicator

__all__ = [
    "EvaluationReport",
    "evaluate",
    "fit",
    "predict",
    "predict_batches",
    "prediction_columns",
]
# predict, predict_batches, prediction_columns and evaluate are gradfit.prediction's and
# gradfit.evaluation's, imported for the faces.


def fit(
    source: Source,
    targets: Sequence[str] | None = None,
    features: Sequence[str] | None = None,
    config: SolverConfig | None = None,
    *,
    seed: int | None = DEFAULT_SEED,
    dtype: torch.dtype | str = torch.float64,
    device: torch.device | str = DEFAULT_DEVICE,
    stream: bool | None = None,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
    inference: str | None = DEFAULT_INFERENCE,
    level: float = DEFAULT_LEVEL,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
    resume: bool = False,
    formula: str | None = None,
    missing: str = DEFAULT_MISSING,
    max_levels: int = DEFAULT_MAX_LEVELS,
    callback: Callable[[EpochInfo], None] | None = None,
    progress: Progress | None = None,
    sample_rows: int = 0,
    comm: Communicator | None = None,
    notes: list[str] | None = None,
    weights: str | None = None,
    groups: str | None = None,
    max_groups: int = DEFAULT_MAX_GROUPS,
    tensorboard_dir: str | Path | None = None,
) -> FitReport:
    """Fit ``config.solver`` (default: ``SolverConfig()``, gd) to the columns of ``source``: a
    data file, a directory or glob of files, a built-in data set's name, or a table in memory
    (a pandas DataFrame, whose index is ignored; a pyarrow Table or RecordBatch; a dict of
    column name to 1-D array: NumPy arrays, lists, torch tensors), read as a file read whole
    is (the same columns chosen, the same checks and messages, named "DataFrame", "table in
    memory"...: :mod:`gradfit.data.memory`).

    The data are read whole (:func:`gradfit.fitting.fit_data`) or streamed
    (:func:`gradfit.streaming.fit_stream`) as :func:`gradfit.streaming.use_streaming` decides
    from ``stream`` and ``memory_limit``; a group of processes (``comm``) or a ``checkpoint``
    always streams (a table in memory, never streamed, is refused with them). The keyword
    arguments are the fields of the settings objects (:class:`~gradfit.settings.ReadSettings`:
    ``stream`` to ``shuffle_buffer``; :class:`~gradfit.settings.RunSettings`: ``seed`` to
    ``level``, ``device`` "auto" for CUDA when available;
    :class:`~gradfit.settings.CheckpointSettings`: ``checkpoint`` to ``resume``;
    :class:`~gradfit.settings.DesignSettings`: ``formula``, ``missing``, ``max_levels``),
    validated on construction, then ``callback``, ``progress``, ``sample_rows``, ``comm`` and
    ``notes`` (the streamed fit's but ``callback``; see there).

    ``formula`` (``"breaks ~ wool * tension"``, ``"Ozone ~ ."``) names the targets and the
    features itself: give it without ``targets`` and ``features`` (together: a
    ValidationError). Without one, text and boolean columns among the features (by default
    every column but the targets) are categorical, as in R's ``y ~ .``; a column with more
    than ``max_levels`` levels is refused. ``missing="drop"`` leaves out the rows with a
    missing value in a column the model uses (R's ``na.omit``), counted in
    ``report.rows_dropped`` and the model file. ``weights``: the name of a column of row
    weights (:class:`~gradfit.settings.WeightSettings`): weighted least squares on every road,
    as R's ``lm(weights = w)``; the column is never a feature. ``groups``: with
    ``inference="cluster"``, the column of each row's group (text, integers or categorical):
    clustered standard errors (CR1, as ``sandwich::vcovCL`` and statsmodels), from the rows in
    memory or from per-group sums in one more pass over a stream, merged over a group of
    processes; at most ``max_groups`` groups (:class:`~gradfit.settings.ClusterSettings`).
    ``tensorboard_dir``: a
    directory (created) where each epoch's loss, learning rate, rows per second and validation
    R² are written for TensorBoard (gd, sgd; rank 0 of a group; needs ``gradfit[tensorboard]``:
    :mod:`gradfit.observers`).

    Returns
    -------
    FitReport
        the model to save, the training result and the summary figures.

    Raises
    ------
    DataError, ValidationError
        a file, a column or a setting that cannot be used (the message says which).
    DivergenceError
        training diverged.
    """
    config = config if config is not None else SolverConfig()
    reading = ReadSettings(
        stream=stream,
        memory_limit=memory_limit,
        batch_rows=batch_rows,
        shuffle_buffer=shuffle_buffer,
    )
    run = RunSettings(seed=seed, dtype=dtype, device=device, inference=inference, level=level)
    checkpointing = CheckpointSettings(
        checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume
    )
    weighting = WeightSettings(weights=weights)
    clustering = ClusterSettings(groups=groups, max_groups=max_groups)
    design = DesignSettings(formula=formula, missing=missing, max_levels=max_levels)
    check_design_names(design, targets, features)
    # A table in memory as it is (never streamed); a path as its text.
    data = source if source_kind(source) == "memory" else str(source)
    streamed = use_streaming(
        data, config, reading, group=comm is not None, checkpoint=checkpoint is not None
    )
    watching = observing(
        callback,
        tensorboard_dir,
        iterative=registry.get(config.solver).iterative,
        solver=config.solver,
        main=comm is None or comm.rank == 0,
    )
    with watching as watch:
        if not streamed:
            return fit_data(
                data,
                targets,
                features,
                config,
                run=run,
                design=design,
                callback=watch,
                memory_limit=memory_limit,
                weighting=weighting,
                clustering=clustering,
            )
        return fit_stream(
            data,
            targets,
            features,
            config,
            reading=reading,
            run=run,
            checkpointing=checkpointing,
            design=design,
            callback=watch,
            progress=progress,
            sample_rows=sample_rows,
            comm=comm,
            notes=notes,
            weighting=weighting,
            clustering=clustering,
        )
