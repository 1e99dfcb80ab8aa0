"""Predictions of a saved model over a data source: batch by batch (:func:`predict_batches`)
or joined into one table (:func:`predict`, whose first form is still ``predict(X, weight,
bias)`` of tensors), and the prediction columns of a feature matrix, with intervals
(:func:`prediction_columns`). The source is read as :mod:`gradfit.batch_sources` reads it and
each batch as the model reads rows (:mod:`gradfit.model_rows`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

import numpy as np
import numpy.typing as npt
import torch

from gradfit.batch_sources import Source, _Batches, _check_features, _number_column
from gradfit.column_choice import expand_names
from gradfit.errors import DataError, ValidationError
from gradfit.inference import warn_not_estimable
from gradfit.model import predict as predict_tensors
from gradfit.model_rows import ModelLike, _model, _model_and_source, _notes, _Rows
from gradfit.persistence import SavedModel
from gradfit.settings import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_LEVEL,
    DEFAULT_MEMORY_LIMIT,
    ApplySettings,
)
from gradfit.stream_data import Progress

__all__ = ["predict", "predict_batches", "prediction_columns"]


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
    if X.shape[0] == 0:  # a batch whose every row was dropped (--missing): no rows to predict
        return {
            name: np.empty(0, dtype=np.float64)
            for name in _predicted_names(model.target_names, interval)
        }
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
    _predicted_names(model.target_names, interval)  # no two columns of one name
    columns: dict[str, np.ndarray] = {}
    for j, name in enumerate(model.target_names):
        columns[name] = mean[:, j]
        columns[f"{name}_lower"] = lower[:, j]
        columns[f"{name}_upper"] = upper[:, j]
    return columns


def _predicted_names(targets: Sequence[str], interval: str | None) -> list[str]:
    """The predicted columns' names, in order; with ``interval``, refused (one line) when one
    would be two columns: a target named as another's bound (targets y and y_lower)."""
    if interval is None:
        return list(targets)
    names = [f"{name}{suffix}" for name in targets for suffix in ("", "_lower", "_upper")]
    if len(set(names)) < len(names):
        twice = next(name for name in names if names.count(name) > 1)
        raise ValidationError(
            f"--interval: the column {twice!r} would hold both the model's target {twice!r} "
            f"and the {twice.rsplit('_', 1)[1]} bound of target {twice.rsplit('_', 1)[0]!r}; "
            "predict without --interval, or refit with the targets renamed"
        )
    return names


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

    The arguments choose: a tensor first (or an array first and a tensor weight second), the
    first form; anything else, the second.
    """
    if (
        (args and isinstance(args[0], torch.Tensor))
        or "X" in kwargs
        or (len(args) == 3 and isinstance(args[1], torch.Tensor))  # an array X, weight, bias
    ):
        return predict_tensors(*args, **kwargs)
    return _predict_table(*args, **kwargs)
