"""How a saved model reads the rows of a source, one road for both kinds of model.

A model with a design (a formula, categorical columns) encodes each batch by it
(:meth:`gradfit.design.Design.matrices`, formulaic imported for such models only); a model of
plain columns reads its features as numbers (:class:`_Rows`). Either way a row with a missing
value is an error, dropped or kept without a prediction (``missing``), and a level not seen in
training is an error or the reference level (``unknown_level``). Also the set-up that predict,
evaluate and diagnose share (:func:`_model_and_source`: the model loaded, how it reads rows,
the source opened) and the notes on the rows left out (:func:`_notes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

import gradfit.data
from gradfit.batch_sources import Source, _Batch, _Batches, _open
from gradfit.data.tables import float_matrix
from gradfit.persistence import SavedModel, load_model
from gradfit.settings import ApplySettings
from gradfit.stream_data import Progress

__all__ = ["ModelLike"]

ModelLike = SavedModel | str | Path  # a model, or the path of its file (gradfit.persistence)


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
