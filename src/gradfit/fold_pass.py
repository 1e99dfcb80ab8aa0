"""One pass over a data source to each fold's sufficient statistics: the reading that
:func:`gradfit.cv_fit.fit_cv` (K folds) and :func:`gradfit.path_fit.fit_path` (K = 1: all
rows) share (:func:`_fold_statistics`). Read whole: the rows selected, each one's fold from
the seeded row hash (file 0, rows 1..n); streamed: each process's shard, its columns as read
gathered straight into each fold's statistics (:func:`_local_folds`), merged across a group of
processes (torchrun) in rank order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from gradfit.column_choice import choose_columns, expand_names
from gradfit.data import BatchStream, left_out_columns, open_stream, select
from gradfit.data.memory import TableInMemory
from gradfit.data.tables import MissingValueError
from gradfit.data.weights import (
    check_weight_values,
    refuse_weight_role,
    table_weights,
    without_column,
)
from gradfit.errors import DataError
from gradfit.fit_checks import check_width, columns_named
from gradfit.group_checks import agree_on_views
from gradfit.settings import ReadSettings
from gradfit.solvers import path as paths
from gradfit.solvers.collective import guarded, merge_stats
from gradfit.solvers.rows import fold_ids
from gradfit.solvers.stats import SufficientStats
from gradfit.sources import read_source, source_name
from gradfit.streaming import Progress

if TYPE_CHECKING:
    from gradfit.solvers.collective import Communicator

_Read = tuple[
    str,
    list[SufficientStats],
    tuple[str, ...],
    tuple[str, ...],
    dict[str, str],
    tuple[torch.Tensor, torch.Tensor] | None,
    torch.Tensor | None,
]


@contextlib.contextmanager
def without_drop_offer() -> Iterator[None]:
    """A missing cell's error without the offer of ``--missing drop``, which ``path`` and
    ``--alpha cv`` do not take (their folds read numeric columns as they are)."""
    try:
        yield
    except MissingValueError as exc:
        raise exc.without_drop() from None


def _fold_statistics(
    data: str | TableInMemory,
    targets: Sequence[str],
    features: Sequence[str] | None,
    weights: str | None,
    K: int,
    hash_seed: int,
    streamed: bool,
    group: Communicator,
    reading: ReadSettings,
    progress: Progress | None,
    job: dict[str, Any] | None = None,
) -> _Read:
    """One pass over the source: each fold's statistics (K folds by the row hash; K = 1: all
    rows), the source's name, the feature and target names, the columns left out, and when
    read whole the rows (and weights) kept. ``job``: the settings every process of a group
    must agree on, compared with the data's layout before the statistics are gathered."""
    memory_limit, batch_rows = reading.memory_limit, reading.batch_rows
    K = max(K, 1)
    rows: tuple[torch.Tensor, torch.Tensor] | None = None
    row_weights: torch.Tensor | None = None
    if not streamed:
        name = source_name(data)
        table = read_source(data)
        target_names = expand_names(targets, table.columns)
        feature_names = None if features is None else expand_names(features, table.columns)
        refuse_weight_role(name, weights, target_names, feature_names)
        columns = without_column(table, weights)  # the weights are never a feature
        X64, Y64, fnames, tnames = select(columns, target_names, feature_names, min_rows=2)
        check_width(name, len(fnames), memory_limit)
        left_out = left_out_columns(columns, tnames) if feature_names is None else {}
        n = X64.shape[0]
        X, Y = torch.from_numpy(np.ascontiguousarray(X64)), torch.from_numpy(Y64)
        ids = fold_ids(0, 1, n, K, hash_seed)
        with columns_named(name, fnames, tnames):
            if weights is None:
                fold_stats = paths.fold_statistics_from_batches([(X, Y, ids)], K)
            else:
                # Rows of weight 0 count nowhere (as streamed); the others keep their folds.
                w64 = table_weights(table, weights)
                keep = torch.from_numpy(w64 > 0)
                X, Y, ids = X[keep], Y[keep], ids[w64 > 0]
                row_weights = torch.from_numpy(w64[w64 > 0])
                fold_stats = paths.fold_statistics_from_batches([(X, Y, ids, row_weights)], K)
        rows = (X, Y)
    else:
        stream_, fnames, tnames, left_out = guarded(
            group, lambda: _open(str(data), batch_rows, targets, features, memory_limit, weights)
        )
        name = stream_.source
        if group.world > 1:  # every process's view of the job, compared (as a streamed fit)
            agree_on_views(group, stream_, job or {})
        shard = tuple(stream_.shard(group.rank, group.world)) if group.world > 1 else None
        with columns_named(name, fnames, tnames):
            local = guarded(
                group,
                lambda: _local_folds(
                    stream_, fnames, tnames, weights, shard, K, hash_seed, progress
                ),
            )
            d, k = len(fnames), len(tnames)
            fold_stats = [
                merge_stats(group, None if local is None else local[f], d, k) for f in range(K)
            ]
    return name, fold_stats, fnames, tnames, left_out, rows, row_weights


def _open(
    source: str,
    batch_rows: int,
    targets: Sequence[str],
    features: Sequence[str] | None,
    memory_limit: int | None,
    weights: str | None,
) -> tuple[BatchStream, tuple[str, ...], tuple[str, ...], dict[str, str]]:
    stream = open_stream(source, batch_rows=batch_rows)
    if features is None:
        check_width(stream.source, 0, memory_limit, columns=stream.columns, targets=targets)
    fnames, tnames, left_out = choose_columns(stream, targets, features)
    if weights is not None:  # as a streamed fit: the weights column is never a feature
        stream.check_columns([weights], "weights")
        refuse_weight_role(stream.source, weights, tnames, None if features is None else fnames)
        fnames = tuple(name for name in fnames if name != weights)
        if not fnames:
            raise DataError(
                f"{stream.source}: no feature columns left once the weights column "
                f"{weights!r} is set apart; name the features with --features"
            )
    check_width(stream.source, len(fnames), memory_limit)
    return stream, fnames, tnames, left_out


def _local_folds(
    stream: BatchStream,
    features: tuple[str, ...],
    targets: tuple[str, ...],
    weights: str | None,
    shard: tuple[Any, ...] | None,
    K: int,
    seed: int,
    progress: Progress | None,
) -> list[SufficientStats] | None:
    """This process's rows, each to its fold's statistics, in one pass (None: no rows). The
    columns are used as read (never stacked into a matrix): each fold's rows are gathered
    straight into the statistics' chunk buffer
    (:func:`gradfit.solvers.path.fold_statistics_from_columns`); rows of weight 0 count
    nowhere."""
    if shard is not None and not shard:
        return None
    index = {path: i for i, path in enumerate(stream.files)}
    names = [*features, *targets]
    read = [*names, *([weights] if weights is not None and weights not in names else [])]

    def batches() -> Iterator[tuple[list[np.ndarray], np.ndarray, np.ndarray | None]]:
        rows = 0
        units = None if shard is None else list(shard)
        for batch in stream.batches(read, units=units, stack=False):
            rows += batch.n_rows
            if progress is not None:
                progress(batch.bytes_done, batch.total_bytes, rows)
            ids = fold_ids(index[batch.file], batch.file_row, batch.n_rows, K, seed)
            w = None
            if weights is not None:
                values = np.array(batch.columns[weights], dtype=np.float64)
                w = check_weight_values(values, str(batch.file), weights, batch.file_row)
            yield [batch.columns[name] for name in names], ids, w

    parts = batches()
    first = next(parts, None)
    if first is None:
        return None
    return paths.fold_statistics_from_columns(_chain(first, parts), K, len(features))


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest
