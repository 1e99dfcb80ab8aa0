"""A streamed fit through a design (:mod:`gradfit.design`): the plan from the head of the
first file, the levels pass over the categorical columns (merged over a group of processes),
the design frozen from the first batch with a row left, and each raw batch encoded by it.

:func:`gradfit.streaming.fit_stream` calls these when
:func:`gradfit.column_choice.design_columns` says the columns go through a design (a formula, a
categorical column, ``missing="drop"``), as :func:`gradfit.column_choice.encode_table` does in
memory. ``gradfit.design`` loads its formulaic half (formulaic and pandas) on the first use of
``Design`` or ``LevelGatherer``, in the functions that need them: a plain numeric fit never
loads it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import gradfit.design
from gradfit.column_choice import (
    design_columns,
    expand_names,
    refuse_intercept_alone,
    refuse_weights_in_formula,
)
from gradfit.data import Batch, BatchStream
from gradfit.data.tables import Table
from gradfit.data.weights import refuse_weight_role, without_column
from gradfit.errors import DataError, NoRowsLeftError, ValidationError
from gradfit.settings import DesignSettings
from gradfit.solvers.collective import Communicator, gather_bytes, guarded

__all__ = [
    "DesignPlan",
    "batch_encoder",
    "batch_table",
    "freeze_design",
    "gather_levels",
    "open_design",
]


@dataclass(frozen=True)
class DesignPlan:
    """A streamed fit through a design: the formula or the chosen columns, and how each
    column the model reads is read (numbers, or text), from the head of the first file."""

    formula: str | None
    targets: tuple[str, ...]
    features: tuple[str, ...] | None
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    text: tuple[str, ...]
    left_out: dict[str, str]


def open_design(
    open_stream: Callable[..., BatchStream],
    source: str | Path | Sequence[str | Path],
    batch_rows: int,
    targets: Sequence[str] | None,
    features: Sequence[str] | None,
    design: DesignSettings,
    weights: str | None = None,
    groups: str | None = None,
    *,
    intercept_alone: bool = False,
) -> tuple[BatchStream, DesignPlan | dict[str, str]]:
    """The stream, and the plan of a fit through a design, or for plain numeric columns (as
    :func:`gradfit.column_choice.encode_table` decides in memory) the columns the default
    features leave out, with why. ``weights``: the column of row weights, never a feature
    (left out of the head the design is planned on); ``groups``: the column of group labels
    of clustered standard errors, left out of the default features (as in memory).
    ``intercept_alone``: a formula without a feature column (R's ``y ~ 1``) is planned (for
    anova), not refused (a fit's model needs a feature)."""
    stream = open_stream(source, batch_rows=batch_rows)
    head = stream.head_table()
    columns = list(stream.columns)
    tlist = [] if targets is None else expand_names(targets, columns)
    chosen_names = None if features is None else expand_names(features, columns)
    if weights is not None:
        stream.check_columns([weights], "weights")
        refuse_weight_role(stream.source, weights, tlist, chosen_names)
        head = without_column(head, weights)
        refuse_weights_in_formula(design, head, weights, stream.source)
    if groups is not None:
        stream.check_columns([groups], "groups")
        if chosen_names is None and design.formula is None and groups not in tlist:
            head = without_column(head, groups)
    needed, chosen, left_out = design_columns(head, tlist, chosen_names, design, stream.source)
    if not needed:
        return stream, left_out
    options: dict[str, Any] = {"max_levels": design.max_levels, "missing": design.missing}
    draft = (
        gradfit.design.Design.from_formula(design.formula, head, source=stream.source, **options)
        if design.formula is not None
        else gradfit.design.Design.default(head, tlist, chosen, source=stream.source, **options)
    )
    if design.formula is not None and not intercept_alone:
        refuse_intercept_alone(draft, design.formula, stream.source)
    if draft.transform_state:
        stateful = ", ".join(repr(name) for name in draft.transform_state)
        raise ValidationError(
            f"{stream.source}: {stateful} in the formula needs its state (poly's coefficients, "
            "a centre or scale) computed from all the rows, and a streamed fit encodes them "
            "batch by batch; fit in memory (--no-stream, stream=False), or add the transformed "
            "column to the data"
        )
    numeric_columns = set(head.numeric_columns)
    numeric = tuple(v for v in draft.variables if v in numeric_columns)
    text = tuple(v for v in draft.variables if v not in numeric_columns)
    categorical_columns = gradfit.design.Design.categorical_columns(
        design.formula, head, tlist, chosen
    )
    plan = DesignPlan(
        design.formula,
        tuple(tlist),
        None if chosen is None else tuple(chosen),
        tuple(categorical_columns),
        numeric,
        text,
        left_out,
    )
    return stream, plan


def batch_table(batch: Batch, order: Sequence[str]) -> Table:
    """A raw batch as a :class:`gradfit.data.Table` for the design: its columns in the file's
    order (a formula's ``.`` expands in it), rows counted in its file."""
    columns = {name: batch.columns[name] for name in order if name in batch.columns}
    return Table(columns, source=str(batch.file), row_offset=batch.file_row - 1)


def gather_levels(
    stream: BatchStream,
    categorical: Sequence[str],
    numeric: Sequence[str],
    max_levels: int,
    group: Communicator,
    shard: Sequence[Any] | None,
) -> dict[str, tuple[Any, ...]]:
    """The levels pass: the ``categorical`` columns only (those among ``numeric`` read as
    numbers), over this process's shard, the levels merged over the group."""

    def gather() -> gradfit.design.LevelGatherer:
        gatherer = gradfit.design.LevelGatherer(categorical, max_levels, stream.source)
        if not categorical or (shard is not None and not shard):
            return gatherer
        numbers = [c for c in categorical if c in numeric]
        texts = [c for c in categorical if c not in numeric]
        # Each batch's distinct values, made so by pyarrow: no Python object per row.
        for distinct in stream.distinct_values(numbers, texts, units=shard):
            for name, values in distinct.items():
                gatherer.update_values(name, values)
        return gatherer

    local = guarded(group, gather)
    states = gather_bytes(group, json.dumps(local.to_state()).encode())

    def merge() -> dict[str, tuple[Any, ...]]:
        merged = gradfit.design.LevelGatherer.from_state(json.loads(states[0]), stream.source)
        for state in states[1:]:
            merged.merge(gradfit.design.LevelGatherer.from_state(json.loads(state), stream.source))
        return merged.levels()

    return guarded(group, merge)


def freeze_design(
    stream: BatchStream,
    plan: DesignPlan,
    design: DesignSettings,
    group: Communicator,
    shard: Sequence[Any] | None,
    levels: dict[str, tuple[Any, ...]] | None = None,
) -> gradfit.design.Design:
    """The levels pass (:func:`gather_levels`; ``levels``: those of a pass already made),
    then the design frozen from the first batch of the data with a row left (``missing="drop"``)
    with them: the same on every process."""
    order = stream.columns
    if levels is None:
        levels = gather_levels(
            stream, plan.categorical, plan.numeric, design.max_levels, group, shard
        )

    options: dict[str, Any] = {
        "levels": levels,
        "max_levels": design.max_levels,
        "missing": design.missing,
        "source": stream.source,
    }

    def made(table: Table) -> gradfit.design.Design:
        if plan.formula is not None:
            return gradfit.design.Design.from_formula(plan.formula, table, **options)
        return gradfit.design.Design.default(table, plan.targets, plan.features, **options)

    def freeze() -> gradfit.design.Design:
        # The first batch with a row left: with missing="drop" a first batch (a small Parquet
        # row group, a few rows) may have none, and the rows read whole do.
        batches = stream.batches(plan.numeric, plan.text, raw=True)
        empty: DataError = DataError(f"{stream.source}: no data rows to make the design from")
        try:
            for batch in batches:
                try:
                    return made(batch_table(batch, order))
                except NoRowsLeftError as exc:
                    empty = exc
        finally:
            batches.close()  # type: ignore[attr-defined]
        raise empty

    return guarded(group, freeze)


def batch_encoder(
    encoding: gradfit.design.Design, plan: DesignPlan, missing: str, order: Sequence[str]
) -> Callable[[Batch], tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """A raw batch to (X, Y, rows kept, rows dropped) by the frozen design."""

    def encode(batch: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        made = encoding.matrices(batch_table(batch, order), missing=missing)
        if made.Y is None:  # pragma: no cover - with_targets=True
            raise DataError(f"{batch.file}: no targets")
        return made.X, made.Y, made.kept, int(made.n_dropped)

    return encode
