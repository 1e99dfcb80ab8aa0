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
one batch, a stream a source of many, and the same code checks the columns (with the same
messages), builds each batch's prediction columns and accumulates the metrics
(:class:`gradfit.metrics.MetricsAccumulator`) batch by batch. Only how a batch's numbers and
kept columns are read differs: from a :class:`gradfit.data.Table` read whole
(:func:`gradfit.data.feature_matrix`) or from a :class:`gradfit.data.BatchStream`. How a model
reads a batch is one road too (:class:`_Rows`): a model with a design (a formula, categorical
columns) encodes each batch by it (:meth:`gradfit.design.Design.matrices`, formulaic imported
for such models only); a model of plain columns reads its features as numbers. Either way a row
with a missing value is an error, dropped or kept without a prediction (``missing``), and a
level not seen in training is an error or the reference level (``unknown_level``).

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

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, overload

import numpy as np
import numpy.typing as npt
import torch

import gradfit.data
from gradfit.data import BatchStream, Table, open_stream
from gradfit.data.memory import TableInMemory
from gradfit.data.tables import float_matrix
from gradfit.data.weights import check_weight_values, refuse_all_zero
from gradfit.errors import DataError, ValidationError
from gradfit.fitting import (
    FitReport,
    check_design_names,
    expand_names,
    fit_data,
    read_source,
    source_kind,
)
from gradfit.inference import warn_not_estimable
from gradfit.metrics import MetricsAccumulator, RegressionMetrics
from gradfit.model import predict as predict_tensors
from gradfit.observers import observing
from gradfit.persistence import SavedModel, load_model
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
    ApplySettings,
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
from gradfit.storage import as_path
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

ModelLike = SavedModel | str | Path  # a model, or the path of its file (gradfit.persistence)
# A file, a directory or glob of files, a built-in data set's name, or a table in memory (a
# pandas DataFrame, a pyarrow Table or RecordBatch, or a mapping of column name to 1-D array).
Source = str | Path | TableInMemory


# ----------------------------------------------------------------------------- fit


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


# ----------------------------------------------------------------------------- sources


class _Batch(NamedTuple):
    """One batch as read: the numeric columns asked for as a float64 (m, len(numeric)) matrix,
    and a :class:`gradfit.data.Table` holding the text columns asked for, whose ``source`` and
    ``row_offset`` name the batch's file and rows in messages."""

    X: npt.NDArray[np.float64]
    table: Table


class _Batches(Protocol):
    """A source as predict and evaluate read it: its name (the prefix of every message), its
    columns, and its rows batch by batch."""

    name: str
    columns: tuple[str, ...]

    def read(self, numeric: Sequence[str], text: Sequence[str]) -> Iterator[_Batch]:
        """Batch by batch: the ``numeric`` columns as a finite float64 (m, len(numeric))
        matrix (a bad cell is a DataError naming file, row and column), and the ``text``
        columns as :func:`gradfit.data.read_table` keeps them. A name may be in both."""
        ...


class _Whole:
    """A file (or built-in data set, or table in memory) read whole: a source of one batch."""

    def __init__(self, source: Source, text: Sequence[str], progress: Progress | None) -> None:
        self.table: Table = read_source(source, text_columns=list(dict.fromkeys(text)))
        self.name = self.table.source
        self.columns = tuple(self.table.columns)
        self.progress = progress
        path = as_path(source) if source_kind(source) == "file" else None
        self.size = path.stat().st_size if path is not None and path.is_file() else 0

    def read(self, numeric: Sequence[str], text: Sequence[str]) -> Iterator[_Batch]:
        X = gradfit.data.feature_matrix(self.table, numeric)
        if self.progress is not None:
            self.progress(self.size, self.size, self.table.n_rows)
        yield _Batch(X, self.table)


class _Streamed:
    """Files read in batches of about ``batch_rows`` rows (:func:`gradfit.data.open_stream`)."""

    def __init__(
        self,
        source: str | Path | Sequence[str | Path],
        batch_rows: int,
        progress: Progress | None,
    ) -> None:
        self.stream: BatchStream = open_stream(source, batch_rows=batch_rows)
        self.name = self.stream.source
        self.columns = self.stream.columns
        self.progress = progress

    def read(self, numeric: Sequence[str], text: Sequence[str]) -> Iterator[_Batch]:
        # A column wanted both as a number and as text is read as text (kept exactly), then
        # converted here with the reader's checks.
        text = list(dict.fromkeys(text))
        numbers = [name for name in numeric if name not in text]
        rows = 0
        for batch in self.stream.batches(numbers, text=text):
            if not numeric:
                X = np.empty((batch.n_rows, 0))
            elif batch.matrix is not None and len(numbers) == len(numeric):
                # The stacked numeric columns, in the order asked, laid out by rows as a
                # matrix read whole is: the same products, to the bit.
                X = np.ascontiguousarray(batch.matrix)
            else:
                X = np.column_stack([_as_float(batch.columns[n], n, batch) for n in numeric])
            rows += batch.n_rows
            if self.progress is not None:
                self.progress(batch.bytes_done, batch.total_bytes, rows)
            kept = Table(
                {name: batch.columns[name] for name in text},
                source=str(batch.file),
                row_offset=batch.file_row - 1,
            )
            yield _Batch(X, kept)


def _as_float(values: npt.NDArray[Any], name: str, batch: Any) -> npt.NDArray[np.float64]:
    """A feature that is also a kept column arrives as read (text, int64): as float64."""
    if values.dtype == np.float64:
        return values
    table = Table({name: values}, source=str(batch.file), row_offset=batch.file_row - 1)
    stacked: npt.NDArray[np.float64] = float_matrix(table, [name])[:, 0]
    return stacked


def _open(
    source: Source,
    *,
    stream: bool | None,
    memory_limit: int | None,
    batch_rows: int,
    progress: Progress | None,
    text: Sequence[str] = (),
) -> _Batches:
    """``source`` read whole (with the columns ``text`` kept as written) or streamed, as
    :func:`gradfit.streaming.use_streaming` decides."""
    if use_streaming(source, memory_limit=memory_limit, stream=stream):
        return _Streamed(str(source), batch_rows, progress)
    return _Whole(source, text, progress)


def _model(model: ModelLike) -> SavedModel:
    return model if isinstance(model, SavedModel) else load_model(model)


def _model_and_source(
    model: ModelLike,
    source: Source,
    stream: bool | None,
    memory_limit: int | None,
    batch_rows: int,
    progress: Progress | None,
    *,
    interval: str | None = None,
    predictor: Any = None,
    text: Sequence[str] = (),
    applying: ApplySettings | None = None,
    with_targets: bool = False,
) -> tuple[SavedModel, Any, _Batches, _Rows]:
    """The set-up of predict and evaluate, in this order, so that a bad model or interval is
    refused before any reading: the model (loaded when a path is given), its interval
    predictor (built when ``interval`` is asked for and none is given), how it reads rows
    (:class:`_Rows`), then the source opened (:func:`_open`)."""
    loaded = _model(model)
    if interval is not None and predictor is None:
        predictor = loaded.interval_predictor()
    rows = _Rows(loaded, applying or ApplySettings(), with_targets)
    data = _open(
        source,
        stream=stream,
        memory_limit=memory_limit,
        batch_rows=batch_rows,
        progress=progress,
        text=[*rows.text, *text],
    )
    return loaded, predictor, data, rows


def _check_features(source: _Batches, names: Sequence[str]) -> None:
    """The message of :func:`gradfit.data.feature_matrix` for a column the source lacks."""
    header = Table({name: np.zeros(0) for name in source.columns}, source=source.name)
    gradfit.data.feature_matrix(header, names)


class _Encoded(NamedTuple):
    """A batch's matrices over the rows kept: X (m, d), Y (m, k) (None unless the targets were
    asked for), the kept rows of the batch (None: all of them), and how many rows held a level
    not seen in training (encoded as the reference level)."""

    X: npt.NDArray[np.float64]
    Y: npt.NDArray[np.float64] | None
    kept: npt.NDArray[np.bool_] | None
    n_unknown: int


class _Rows:
    """How a model reads the rows of a source, one road for both kinds of model: the columns
    it asks the reader for (:attr:`numeric`, :attr:`text`) and each batch's matrices
    (:meth:`encode`), with the rows of a missing value dropped unless ``missing`` is "error".

    A model with a design (:meth:`gradfit.persistence.SavedModel.encoding`) reads its data
    columns as the reader keeps them (text as text, for the levels) and encodes every batch
    by the design (:meth:`gradfit.design.Design.matrices`); formulaic is imported only for
    such a model. A model of plain columns reads its features as numbers: as fast as ever
    when a missing value is an error, else with a missing cell as NaN and its row left out.
    """

    def __init__(self, model: SavedModel, applying: ApplySettings, with_targets: bool) -> None:
        self.model = model
        self.missing = applying.missing
        self.unknown_level = applying.unknown_level
        self.with_targets = with_targets
        self.design = model.encoding()
        plain = [*model.feature_names, *(model.target_names if with_targets else ())]
        if self.design is not None:
            self.columns = list(self.design.input_columns(with_targets))
            self.numeric: list[str] = []
            self.text = self.columns
        elif self.missing == "error":
            self.columns, self.numeric, self.text = plain, plain, []
        else:
            self.columns, self.numeric, self.text = plain, [], plain

    @property
    def features(self) -> list[str]:
        """The data columns the predictions read (the targets left out)."""
        if self.design is not None:
            return list(self.design.input_columns(False))
        return list(self.model.feature_names)

    def encode(self, batch: _Batch) -> _Encoded:
        d = self.model.n_features
        if self.design is None:
            matrix = batch.X
            kept: npt.NDArray[np.bool_] | None = None
            if self.missing != "error":
                matrix = gradfit.data.feature_matrix(batch.table, self.columns, missing_ok=True)
                absent = np.asarray(np.isnan(matrix).any(axis=1), dtype=bool)
                if absent.any():
                    kept = ~absent
                    matrix = matrix[kept]
            Y = matrix[:, d:] if self.with_targets else None
            return _Encoded(matrix[:, :d], Y, kept, 0)
        columns = {}
        for name in self.columns:
            values = batch.table.columns[name]
            if values.dtype == object and name not in self.design.levels:
                # A numeric column read as text (from a CSV file): as numbers, with the
                # reader's checks, a missing cell NaN for the design to drop or name.
                one = replace(batch.table, columns={name: values})
                values = float_matrix(one, [name], missing_ok=True)[:, 0]
            columns[name] = values
        encoded = self.design.matrices(
            columns,
            missing="error" if self.missing == "error" else "drop",
            unknown_level=self.unknown_level,
            with_targets=self.with_targets,
            first_row=batch.table.row_offset + 1,
            source=batch.table.source,
        )
        kept = None if encoded.kept.all() else encoded.kept
        return _Encoded(encoded.X, encoded.Y, kept, encoded.n_unknown)


def _notes(command: str, missing: str, dropped: int, unknown: int, notes: list[str] | None) -> None:
    """The counts of rows without a prediction and of unknown levels, as lines for ``notes``:
    ``predict: 3 rows dropped for missing values``."""
    if notes is None:
        return

    def rows(n: int) -> str:
        return f"{n} row{'' if n == 1 else 's'}"

    if dropped and missing == "keep":
        notes.append(f"{command}: {rows(dropped)} with missing values left without a prediction")
    elif dropped:
        notes.append(f"{command}: {rows(dropped)} dropped for missing values")
    if unknown:
        notes.append(
            f"{command}: {rows(unknown)} had a level not seen in training (encoded as the "
            "reference level)"
        )


# ----------------------------------------------------------------------------- predict


def prediction_columns(
    model: SavedModel,
    X: torch.Tensor,
    predictor: Any = None,
    interval: str | None = None,
    level: float = DEFAULT_LEVEL,
    weights: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The float64 prediction columns of the features ``X`` (n, d): one per target, or with
    ``interval`` ("confidence" or "prediction", at ``level``) each target followed by
    ``<target>_lower`` and ``<target>_upper`` from ``predictor``
    (:class:`gradfit.inference.OLSPredictor`; the model's own when None). Rows off the span of
    the training rows of a rank-deficient fit warn once
    (:func:`gradfit.inference.warn_not_estimable`). ``weights`` (n,): the rows' weights for
    a prediction interval of a weighted fit (default 1, as R's ``predict.lm``)."""
    if model.inference is not None and model.inference.get("estimability") is not None:
        warn_not_estimable(X, model.inference["estimability"])
    if interval is None:
        pred = model.predict(X.to(model.weight.dtype)).double().numpy()
        return {name: pred[:, j] for j, name in enumerate(model.target_names)}
    if predictor is None:
        predictor = model.interval_predictor()
    bounds = predictor.predict(X.double(), interval=interval, level=level, weights=weights)
    # The mean is the model's own prediction (in its dtype), as without an interval.
    mean = model.predict(X.to(model.weight.dtype)).double().numpy()
    lower, upper = bounds.lower.numpy(), bounds.upper.numpy()
    columns: dict[str, np.ndarray] = {}
    for j, name in enumerate(model.target_names):
        columns[name] = mean[:, j]
        columns[f"{name}_lower"] = lower[:, j]
        columns[f"{name}_upper"] = upper[:, j]
    return columns


def _predicted_names(targets: Sequence[str], interval: str | None) -> list[str]:
    if interval is None:
        return list(targets)
    return [f"{name}{suffix}" for name in targets for suffix in ("", "_lower", "_upper")]


def predict_batches(
    model: ModelLike,
    source: Source,
    *,
    keep: Sequence[str] = (),
    interval: str | None = None,
    level: float = DEFAULT_LEVEL,
    stream: bool | None = None,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Progress | None = None,
    predictor: Any = None,
    missing: str = "error",
    unknown_level: str = "error",
    notes: list[str] | None = None,
    pred_weights: str | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """The model's predictions over ``source``, batch by batch: one batch when the source is
    read whole, one per batch of about ``batch_rows`` rows when it is streamed (see the module
    doc). Each batch holds the ``keep`` columns, copied exactly (from a CSV file as the text
    written, 00123 stays 00123; from a Parquet file in their stored types), then the columns
    of :func:`prediction_columns`.

    A model with a design (a formula, categorical columns: :mod:`gradfit.design`) reads the
    data columns its formula names and encodes each batch by the levels of its training
    data; other models read their feature columns as numbers.

    The model (loaded here when a path is given), the interval data, the source's columns and
    the names are checked before this returns; a bad cell fails when its batch is read, named
    with its file and row.

    Parameters
    ----------
    model : a :class:`~gradfit.persistence.SavedModel`, or the path of its file
    source : a data file, a directory or glob of files, a built-in data set's name, or a
        table in memory (a pandas DataFrame, index ignored; a pyarrow Table or RecordBatch; a
        dict of column name to 1-D array), read whole as one batch
    keep : columns to copy through (values listing several comma-separated names are split,
        as :func:`gradfit.fitting.expand_names` does)
    interval, level : "confidence" or "prediction" intervals at ``level`` (a model of an
        unpenalized least-squares fit)
    stream, memory_limit : read whole or streamed (:func:`gradfit.streaming.use_streaming`)
    batch_rows : rows per batch when streamed
    progress : called with (bytes read, total bytes, rows read) after every batch is read
    predictor : the model's :meth:`~gradfit.persistence.SavedModel.interval_predictor`, when
        the caller already built it (default: built here when an interval is asked for)
    missing : a row with a missing value (empty, NA, NaN) in a column the model reads:
        "error" (one DataError naming file, column and row), "drop" (left out of the output,
        R's ``na.omit``) or "keep" (NaN in every predicted column, so that the output stays
        row-aligned with the input, R's ``na.exclude``)
    unknown_level : a level not seen in training (a model with a design): "error" (one
        DataError naming column, row and level) or "zero" (encoded as the reference level)
    notes : when given, receives after the last batch a line for the rows dropped (or kept
        without a prediction) and one for the rows of an unknown level, where there are any
        (``"predict: 3 rows dropped for missing values"``)
    pred_weights : a column of the new rows' weights (> 0) for ``interval="prediction"`` of a
        weighted fit: the variance of a new observation is ``sigma² / w`` (R's ``predict.lm``
        with ``weights=``); default: weight 1
    """
    applying = ApplySettings(missing=missing, unknown_level=unknown_level)
    if pred_weights is not None and interval != "prediction":
        raise ValidationError(
            "--pred-weights (pred_weights=) weighs new observations, and applies only to "
            "--interval prediction; add it, or leave out --pred-weights"
        )
    given = [keep] if isinstance(keep, str) else list(keep)
    # Before the header is known, each value is read as text both whole and split at its
    # commas (reading whole); the header then says which it is.
    candidates = list(dict.fromkeys([*given, *expand_names(given, [])]))
    loaded, predictor, data, rows = _model_and_source(
        model,
        source,
        stream,
        memory_limit,
        batch_rows,
        progress,
        interval=interval,
        predictor=predictor,
        text=candidates,
        applying=applying,
    )
    return _predict(loaded, data, given, predictor, interval, level, rows, notes, pred_weights)


def _predict(
    model: SavedModel,
    data: _Batches,
    keep: Sequence[str],
    predictor: Any,
    interval: str | None,
    level: float,
    rows: _Rows | None = None,
    notes: list[str] | None = None,
    pred_weights: str | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """The checks of :func:`predict_batches` on the source's columns, now; then its batches."""
    rows = rows if rows is not None else _Rows(model, ApplySettings(), with_targets=False)
    names = list(dict.fromkeys(expand_names(keep, list(data.columns))))
    _check_features(data, rows.features)
    produced = set(_predicted_names(model.target_names, interval))
    for name in names:
        if name not in data.columns:
            raise DataError(
                f"{data.name}: --keep column {name!r} not found; available: "
                f"{', '.join(data.columns)}"
            )
        if name in produced:
            raise DataError(
                f"--keep column {name!r} has the name of a predicted column; "
                "rename it or leave it out"
            )
    if pred_weights is not None and pred_weights not in data.columns:
        raise DataError(
            f"{data.name}: --pred-weights column {pred_weights!r} not found; available: "
            f"{', '.join(data.columns)}"
        )
    return _predictions(model, data, names, predictor, interval, level, rows, notes, pred_weights)


def _predictions(
    model: SavedModel,
    data: _Batches,
    keep: list[str],
    predictor: Any,
    interval: str | None,
    level: float,
    rows: _Rows,
    notes: list[str] | None,
    pred_weights: str | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    dropped = unknown = before = 0
    extra = [] if pred_weights is None else [pred_weights]
    for batch in data.read(rows.numeric, [*rows.text, *keep, *extra]):
        encoded = rows.encode(batch)
        unknown += encoded.n_unknown
        kept = encoded.kept
        w = None
        if pred_weights is not None:
            w = _new_row_weights(
                _number_column(batch, pred_weights), data.name, pred_weights, before
            )
            w = w if kept is None else w[kept]
        before += len(kept) if kept is not None else encoded.X.shape[0]
        predicted = prediction_columns(
            model, torch.from_numpy(encoded.X), predictor, interval, level, weights=w
        )
        columns: dict[str, np.ndarray] = {name: batch.table.columns[name] for name in keep}
        if kept is not None:
            dropped += int(len(kept) - kept.sum())
            if rows.missing == "drop":
                columns = {name: values[kept] for name, values in columns.items()}
            else:  # keep: NaN where there is no prediction, the rows as in the input
                for name, values in predicted.items():
                    full = np.full(len(kept), np.nan)
                    full[kept] = values
                    predicted[name] = full
        columns.update(predicted)
        yield columns
    _notes("predict", rows.missing, dropped, unknown, notes)


def _number_column(batch: _Batch, name: str) -> npt.NDArray[np.float64]:
    """A column of ``batch`` read as kept (text from a CSV file) as finite float64, with the
    reader's checks and messages (file, column, row)."""
    one = replace(batch.table, columns={name: batch.table.columns[name]})
    return float_matrix(one, [name])[:, 0]


def _new_row_weights(
    values: np.ndarray, source: str, column: str, before: int
) -> npt.NDArray[np.float64]:
    """The new rows' weights of a prediction interval (finite, by the reader), each > 0: a
    DataError naming the data row otherwise (counted from 1 over the whole source)."""
    bad = np.flatnonzero(~(values > 0))
    if bad.size:
        row = int(bad[0])
        raise DataError(
            f"{source}: column {column!r} (--pred-weights), data row {before + row + 1}: weight "
            f"{values[row]:g}; a new observation's weight must be > 0"
        )
    return np.ascontiguousarray(values, dtype=np.float64)


def _predict_table(model: ModelLike, source: Source, **options: Any) -> dict[str, np.ndarray]:
    """The batches of :func:`predict_batches` (with its keyword ``options``, those of the
    second form of :func:`predict`) joined into one table of columns."""
    parts = list(predict_batches(model, source, **options))
    if len(parts) == 1:
        return parts[0]
    if not parts:  # a stream of files without rows: the columns, empty
        produced = _predicted_names(_model(model).target_names, options.get("interval"))
        keep = options.get("keep", ())
        return {name: np.empty(0) for name in [*keep, *produced]}
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


@overload
def predict(X: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor: ...


@overload
def predict(
    model: ModelLike,
    source: Source,
    *,
    keep: Sequence[str] = (),
    interval: str | None = None,
    level: float = DEFAULT_LEVEL,
    stream: bool | None = None,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Progress | None = None,
    missing: str = "error",
    unknown_level: str = "error",
    notes: list[str] | None = None,
) -> dict[str, np.ndarray]: ...


def predict(*args: Any, **kwargs: Any) -> Any:
    """Predictions of a linear model: of tensors, or of a saved model over a data source.

    ``predict(X, weight, bias)`` (tensors: X (n, d), weight (k, d), bias (k,)) is
    :func:`gradfit.model.predict`: the (n, k) tensor ``X @ weight.T + bias``, as ever.

    ``predict(model, source, *, keep=(), interval=None, level=0.95, stream=None, ...)`` (a
    :class:`~gradfit.persistence.SavedModel` or its file, and a data file, directory, glob,
    built-in data set or table in memory) returns the columns of :func:`predict_batches` as
    one table: a dict of column name to (n,) array, the ``keep`` columns then one float64
    column per target (with ``<target>_lower`` and ``<target>_upper`` after it when an
    interval is asked for). A streamed source is predicted batch by batch and only the
    columns are joined; use :func:`predict_batches` to handle them batch by batch instead.
    ``missing`` ("error", "drop" or "keep": NaN predictions for the rows of a missing value),
    ``unknown_level`` ("error" or "zero") and ``notes``: see :func:`predict_batches`.

    The first argument chooses: a tensor, the first form; anything else, the second.
    """
    if (args and isinstance(args[0], torch.Tensor)) or "X" in kwargs:
        return predict_tensors(*args, **kwargs)
    return _predict_table(*args, **kwargs)


# ----------------------------------------------------------------------------- evaluate


@dataclass(frozen=True)
class EvaluationReport:
    """What :func:`evaluate` found: the rows compared and each target's metrics; the rows left
    out for a missing value (``missing="drop"``) and those of a level not seen in training
    encoded as the reference level (``unknown_level="zero"``)."""

    source: str
    n_samples: int
    target_names: tuple[str, ...]
    metrics: RegressionMetrics  # MSE, RMSE, MAE and R² per target, in target order
    n_dropped: int = 0
    n_unknown: int = 0

    def as_dict(self) -> dict[str, dict[str, float]]:
        """``{target: {"mse": .., "rmse": .., "mae": .., "r2": ..}}``."""
        return self.metrics.as_dict(self.target_names)


def evaluate(
    model: ModelLike,
    source: Source,
    *,
    stream: bool | None = None,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Progress | None = None,
    missing: str = "error",
    unknown_level: str = "error",
    notes: list[str] | None = None,
    weights: str | None = None,
) -> EvaluationReport:
    """MSE, RMSE, MAE and R² of ``model`` (a :class:`~gradfit.persistence.SavedModel` or its
    file) on the rows of ``source`` (as in :func:`predict_batches`), whose columns must hold
    the model's features and targets (matched by name; other columns are ignored; a model
    with a design reads the columns of its formula, its targets as the formula gives them).
    The sums are accumulated batch by batch (:class:`gradfit.metrics.MetricsAccumulator`; a
    source read whole is one batch), so the metrics of a source read whole and streamed agree
    to rounding.

    ``stream``, ``memory_limit``, ``batch_rows`` and ``progress`` are as in
    :func:`predict_batches`; so are ``missing`` ("error" or "drop": a row without a target or
    prediction has nothing to compare, so "keep" is refused), ``unknown_level`` and
    ``notes``; the rows dropped and the rows of an unknown level are counted in the report.
    ``weights``: a column of row weights (finite, >= 0, not all 0): the weighted metrics, as
    scikit-learn's with ``sample_weight``.
    """
    weights = WeightSettings(weights=weights).weights
    if missing == "keep":
        raise ValidationError(
            "evaluate: missing must be 'error' or 'drop', got 'keep': a row without a "
            "prediction has nothing to compare; use 'drop'"
        )
    applying = ApplySettings(missing=missing, unknown_level=unknown_level)
    loaded, _, data, rows = _model_and_source(
        model,
        source,
        stream,
        memory_limit,
        batch_rows,
        progress,
        applying=applying,
        with_targets=True,
    )
    report = _evaluate(loaded, data, rows, weights)
    _notes("evaluate", missing, report.n_dropped, report.n_unknown, notes)
    return report


def _evaluate(
    loaded: SavedModel, data: _Batches, rows: _Rows | None = None, weights: str | None = None
) -> EvaluationReport:
    """:func:`evaluate` on a source opened one way or the other."""
    rows = rows if rows is not None else _Rows(loaded, ApplySettings(), with_targets=True)
    targets = list(rows.design.target_variables) if rows.design is not None else loaded.target_names
    missing = [name for name in targets if name not in data.columns]
    if missing:
        raise DataError(
            f"{data.name}: missing target column(s) {', '.join(map(repr, missing))} that "
            "evaluate compares the predictions with; available columns: "
            f"{', '.join(map(repr, data.columns))}"
        )
    _check_features(data, rows.features)
    if weights is not None and weights not in data.columns:
        raise DataError(
            f"{data.name}: --weights column {weights!r} not found; available: "
            f"{', '.join(data.columns)}"
        )
    acc = MetricsAccumulator()
    n = dropped = unknown = read = 0
    positive = False
    extra = [] if weights is None else [weights]
    for batch in data.read(rows.numeric, [*rows.text, *extra]):
        encoded = rows.encode(batch)
        if encoded.Y is None:  # the targets were asked for: never
            raise RuntimeError("evaluate: a batch was encoded without its targets")
        w = None
        if weights is not None:
            w = check_weight_values(_number_column(batch, weights), data.name, weights, read + 1)
            w = w if encoded.kept is None else w[encoded.kept]
            positive = positive or bool((w > 0).any())
        read += batch.table.n_rows
        pred = loaded.predict(torch.from_numpy(encoded.X).to(loaded.weight.dtype)).double()
        acc.update(torch.from_numpy(encoded.Y), pred, sample_weight=w)
        n += encoded.X.shape[0]
        unknown += encoded.n_unknown
        if encoded.kept is not None:
            dropped += int(len(encoded.kept) - encoded.kept.sum())
    if weights is not None and n and not positive:
        raise refuse_all_zero(data.name, weights)
    return EvaluationReport(
        data.name, n, tuple(loaded.target_names), acc.result(), dropped, unknown
    )
