"""The statistics of K folds, for exact cross-validation from sufficient statistics: each
fold's from one pass over its rows (:func:`fold_statistics`), over a stream of batches
(:func:`fold_statistics_from_batches`) or over a stream read as columns
(:func:`fold_statistics_from_columns`), each row to its fold's statistics; and each fold's
training statistics, the other folds' merged (:func:`training_statistics`,
:func:`fold_pairs`). The method: :mod:`gradfit.solvers.path`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from gradfit.errors import ValidationError
from gradfit.solvers.path_kernels import fold_positions, scatter_column
from gradfit.solvers.stats import SufficientStats, too_large

__all__ = [
    "fold_pairs",
    "fold_statistics",
    "fold_statistics_from_batches",
    "fold_statistics_from_columns",
    "training_statistics",
]


def fold_statistics(
    X: torch.Tensor,
    Y: torch.Tensor,
    tests: Sequence[npt.NDArray[np.int64]],
    weights: torch.Tensor | None = None,
) -> list[SufficientStats]:
    """The statistics of each fold's rows (``tests``: each fold's row indices), each from one
    pass over its rows (in a stream: one pass over all rows, each to its fold's statistics)."""
    out = []
    for idx in tests:
        index = torch.from_numpy(np.asarray(idx, dtype=np.int64))
        w = None if weights is None else weights[index]
        out.append(SufficientStats.compute(X[index], Y[index], weights=w, whole=False))
    return out


def fold_statistics_from_batches(
    batches: Iterable[tuple[Any, ...]], n_folds: int
) -> list[SufficientStats]:
    """The statistics of each of ``n_folds`` folds from one pass over a stream of batches
    ``(Z (m, d), Y (m, k), folds (m,))`` or ``(Z, Y, folds, weights (m,))``, each row to its
    fold's statistics (fold ids ``0 .. n_folds - 1``, e.g. from
    :func:`gradfit.solvers.rows.fold_ids` of the rows' addresses). As
    :meth:`SufficientStats.from_batches`, every part is shifted by the first batch's means and
    merged; a fold that no row reaches has ``n == 0`` (and zero moments)."""
    shift: tuple[torch.Tensor, torch.Tensor] | None = None
    parts: list[SufficientStats | None] = [None] * n_folds
    width: tuple[int, int] | None = None
    for batch in batches:
        Z, Y, ids = batch[0], batch[1], np.asarray(batch[2])
        weights = batch[3] if len(batch) > 3 else None
        m = int(Y.shape[0])
        width = (int(Z.shape[1]), int(Y.shape[1]))
        if m == 0:
            continue
        if ids.shape != (m,) or (ids.size and (ids.min() < 0 or ids.max() >= n_folds)):
            raise ValidationError(
                f"fold ids must be one per row, in 0 .. {n_folds - 1}; got shape {ids.shape}"
            )
        if shift is None:
            head = min(m, 1 << 16)
            shift = (Z[:head].double().mean(0).cpu(), Y[:head].double().mean(0).cpu())
        # One gather puts each fold's rows together (a stable sort by fold: file order
        # within a fold); each fold's statistics then come from a contiguous slice, a view.
        # Rows already sorted by fold (the caller gathered them) are taken as they are.
        ends = np.cumsum(np.bincount(ids, minlength=n_folds)).tolist()
        if m > 1 and bool(np.any(ids[1:] < ids[:-1])):
            small = ids.astype(np.uint8 if n_folds <= 256 else np.uint16)  # radix sort
            order = torch.from_numpy(np.argsort(small, kind="stable"))
            Zs, Ys = Z[order.to(Z.device)], Y[order.to(Y.device)]
            ws = None if weights is None else weights[order.to(weights.device)]
        else:
            Zs, Ys, ws = Z, Y, weights
        begin = 0
        for f, end in enumerate(ends):
            if end > begin:
                w = None if ws is None else ws[begin:end]
                part = SufficientStats.compute(
                    Zs[begin:end], Ys[begin:end], shift, shifted=True, weights=w, whole=False
                )
                current = parts[f]
                parts[f] = part if current is None else current.merge(part)
            begin = end
    if width is None:
        raise ValidationError("no batches: the fold statistics need at least one")
    d, k = width
    out = []
    for acc in parts:
        if acc is None or shift is None:
            out.append(_empty_stats(d, k))
        else:
            out.append(replace(acc, zbar=acc.zbar + shift[0], ybar=acc.ybar + shift[1]))
    return out


def fold_statistics_from_columns(
    batches: Iterable[tuple[Sequence[Any], Any, Any]], n_folds: int, n_features: int
) -> list[SufficientStats]:
    """:func:`fold_statistics_from_batches` for a stream read as columns (a file's batches,
    never stacked into a matrix): each batch is ``(columns, folds, weights)``, its p columns
    as (m,) float64 arrays (the ``n_features`` features, then the targets), each row's fold id
    (m,) and its weights (m,) or None. Rows of weight 0 are left out (counted nowhere, as a
    streamed weighted fit leaves them out).

    Per batch, one pass over the columns: a counting sort of the fold ids
    (:func:`~gradfit.solvers.path_kernels.fold_positions`) and each column scattered, shifted
    (and scaled by the square roots of the weights) in the same loop
    (:func:`~gradfit.solvers.path_kernels.scatter_column`) into one column-major buffer
    ``[Z - z0, Y - y0, 1]`` where each fold's rows are contiguous; then one product per fold,
    ``AᵀA`` of its rows (BLAS takes the slice as it is): the same products as one fit's
    statistics of the batch, split by fold. Each fold's part is merged into its statistics
    as :func:`fold_statistics_from_batches` merges (the shift: the first batch's head
    means); the numbers agree with it to rounding."""
    shift: npt.NDArray[np.float64] | None = None
    parts: list[SufficientStats | None] = [None] * n_folds
    width: int | None = None
    buffer = np.empty((0, 0), order="F")
    for columns, folds, weights in batches:
        ids = np.ascontiguousarray(folds, dtype=np.int64)
        m = int(ids.shape[0])
        p = len(columns)
        width = p
        if m == 0:
            continue
        if ids.min() < 0 or ids.max() >= n_folds:
            raise ValidationError(f"fold ids must be in 0 .. {n_folds - 1}")
        w = None if weights is None else np.ascontiguousarray(weights, dtype=np.float64)
        if w is not None:
            if not bool((w > 0).any()):
                continue
            ids = np.where(w > 0, ids, n_folds)  # weight 0: a last bucket, never used
        if shift is None:
            head = slice(0, min(m, 1 << 16)) if w is None else np.flatnonzero(w > 0)[: 1 << 16]
            shift = np.array([float(np.mean(c[head], dtype=np.float64)) for c in columns])
        pos = np.empty(m, dtype=np.int64)
        counts = np.empty(n_folds + 1, dtype=np.int64)
        fold_positions(ids, n_folds + 1, pos, counts)
        if buffer.shape[0] < m or buffer.shape[1] != p + 1:
            buffer = np.empty((m, p + 1), order="F")
        A = buffer[:m]
        root = np.sqrt(w) if w is not None else np.empty(0)
        with np.errstate(over="ignore", invalid="ignore"):  # overflow: checked below
            for j, column in enumerate(columns):
                scatter_column(column, pos, shift[j], root, w is not None, A[:, j])
            if w is None:
                A[:, p] = 1.0
            else:
                scatter_column(root, pos, 0.0, root, False, A[:, p])
                ordered = np.empty(m)
                scatter_column(w, pos, 0.0, root, False, ordered)
            begin = 0
            for f in range(n_folds):
                end = begin + int(counts[f])
                if end > begin:
                    rows = A[begin:end]
                    G = rows.T @ rows
                    part = _stats_of_gram(
                        G, n_features, end - begin, None if w is None else ordered[begin:end]
                    )
                    current = parts[f]
                    parts[f] = part if current is None else current.merge(part)
                begin = end
    if width is None:
        raise ValidationError("no batches: the fold statistics need at least one")
    d, k = n_features, width - n_features
    out = []
    for acc in parts:
        if acc is None or shift is None:
            out.append(_empty_stats(d, k))
        else:
            z0, y0 = torch.from_numpy(shift[:d].copy()), torch.from_numpy(shift[d:].copy())
            out.append(replace(acc, zbar=acc.zbar + z0, ybar=acc.ybar + y0))
    return out


def _stats_of_gram(
    G: npt.NDArray[np.float64], d: int, m: int, weights: npt.NDArray[np.float64] | None
) -> SufficientStats:
    """The (shifted) statistics of m rows from ``AᵀA`` of ``[Z - z0, Y - y0, 1]`` (weighted by
    ``weights``, all > 0), as :meth:`SufficientStats.compute` with ``shifted=True`` forms
    them."""
    p = G.shape[0] - 1
    if not bool(np.isfinite(G).all()):
        squares = torch.from_numpy(G.diagonal().copy())
        raise too_large(squares[:d], squares[d:p], "X^T X")
    Mzz, Mzy = G[:d, :d], G[:d, d:p]
    myy = G[d:p, d:p].diagonal()
    sz, sy = G[p, :d], G[p, d:p]
    extra: dict[str, Any] = {}
    total = float(m)
    if weights is not None:
        total = float(np.sum(weights))
        extra = {
            "weight_sum": total,
            "positive": m,
            "log_weight_sum": float(np.sum(np.log(weights))),
        }
    mz, my = sz / total, sy / total
    Szz = Mzz / total - np.outer(mz, mz)
    Szz = (Szz + Szz.T) / 2
    return SufficientStats(
        n=m,
        zbar=torch.from_numpy(mz.copy()),
        ybar=torch.from_numpy(my.copy()),
        Szz=torch.from_numpy(Szz),
        Szy=torch.from_numpy(Mzy / total - np.outer(mz, my)),
        syy=torch.from_numpy(np.maximum(myy / total - my * my, 0.0)),
        **extra,
    )


def _empty_stats(d: int, k: int) -> SufficientStats:
    zeros = torch.zeros
    f64 = torch.float64
    return SufficientStats(
        n=0,
        zbar=zeros(d, dtype=f64),
        ybar=zeros(k, dtype=f64),
        Szz=zeros(d, d, dtype=f64),
        Szy=zeros(d, k, dtype=f64),
        syy=zeros(k, dtype=f64),
    )


def training_statistics(folds: Sequence[SufficientStats]) -> list[SufficientStats]:
    """Each fold's training statistics: the other folds' merged (exact: Chan's pairwise
    update adds moments and corrects the means, so nothing is subtracted and a small fold's
    complement loses no digits to cancellation, as "total minus fold" would)."""
    out = []
    for f in range(len(folds)):
        merged: SufficientStats | None = None
        for g, part in enumerate(folds):
            if g != f:
                merged = part if merged is None else merged.merge(part)
        if merged is None:
            raise ValidationError("cross-validation needs at least 2 folds")
        out.append(merged)
    return out


def fold_pairs(
    folds: Sequence[SufficientStats],
) -> tuple[list[tuple[SufficientStats, SufficientStats]], SufficientStats | None]:
    """From each fold's statistics (a partition of the rows): the (training, validation)
    pairs of the folds that can be used (a fold with rows and weight, whose training set has
    weight too) and the statistics of all rows (None when no fold has rows)."""
    nonempty = [s for s in folds if s.n > 0]
    if not nonempty:
        return [], None
    total = nonempty[0]
    for part in nonempty[1:]:
        total = total.merge(part)
    if len(nonempty) < 2:
        return [], total
    pairs = list(zip(training_statistics(nonempty), nonempty, strict=True))
    pairs = [(tr, te) for tr, te in pairs if te.n > 0 and te.total > 0 and tr.total > 0]
    return pairs, total
