"""MSE, RMSE, MAE and R² of a saved model on a data source (:func:`evaluate`): the sums
accumulated batch by batch (:class:`gradfit.metrics.MetricsAccumulator`; a source read whole is
one batch, :mod:`gradfit.batch_sources`), so that the metrics of a source read whole and
streamed agree to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gradfit.batch_sources import Source, _Batches, _check_features, _number_column
from gradfit.data.weights import check_weight_values, refuse_all_zero
from gradfit.errors import DataError, ValidationError
from gradfit.metrics import MetricsAccumulator, RegressionMetrics
from gradfit.model_rows import ModelLike, _model_and_source, _notes, _Rows
from gradfit.persistence import SavedModel
from gradfit.settings import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_MEMORY_LIMIT,
    ApplySettings,
    WeightSettings,
)
from gradfit.stream_data import Progress

__all__ = ["EvaluationReport", "evaluate"]


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
        unknown += encoded.n_unknown
        if encoded.kept is not None:
            dropped += int(len(encoded.kept) - encoded.kept.sum())
        if encoded.X.shape[0] == 0:  # every row of the batch dropped (--missing drop)
            continue
        pred = loaded.predict(torch.from_numpy(encoded.X).to(loaded.weight.dtype)).double()
        acc.update(torch.from_numpy(encoded.Y), pred, sample_weight=w)
        n += encoded.X.shape[0]
    if weights is not None and n and not positive:
        raise refuse_all_zero(data.name, weights)
    return EvaluationReport(
        data.name, n, tuple(loaded.target_names), acc.result(), dropped, unknown
    )
