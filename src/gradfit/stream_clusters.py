"""Clustered standard errors of a streamed fit: the design's batch encoder that leaves out the
rows without a group label (:func:`_labelled`), and the per-group score sums of the training
rows, merged over a torchrun group (:func:`_cluster_scores`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import torch

from gradfit.data import Batch
from gradfit.fit_checks import group_labels
from gradfit.inference import ClusterScores
from gradfit.solvers.collective import Communicator, gather_bytes, guarded

__all__: list[str] = []


class GroupedRows(Protocol):
    """The training rows with their group labels (:class:`gradfit.streaming.StreamData`)."""

    @property
    def shard(self) -> tuple[Any, ...] | None: ...

    def grouped_tensors(
        self,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, npt.NDArray[Any]]]: ...


def _labelled(
    encode: Callable[[Batch], tuple[np.ndarray, np.ndarray, np.ndarray, int]],
    column: str,
    missing: str,
) -> Callable[[Batch], tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """The design's batch encoder, leaving out too the rows without a group label in
    ``column`` (``missing="drop"``; "error": refused, naming the row), as in memory."""

    def encode_labelled(batch: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        X, Y, kept, dropped = encode(batch)
        _, absent = group_labels(
            batch.columns[column], str(batch.file), column, batch.file_row, missing
        )
        index = np.flatnonzero(kept)
        gone = absent[index]
        if bool(gone.any()):
            X, Y = X[~gone], Y[~gone]
            kept = kept.copy()
            kept[index[gone]] = False
            dropped += int(gone.sum())
        return X, Y, kept, dropped

    return encode_labelled


def _cluster_scores(
    data: GroupedRows,
    group: Communicator,
    weight: np.ndarray,
    bias: np.ndarray,
    shift: np.ndarray,
    max_groups: int,
) -> ClusterScores:
    """The per-group score sums of the training rows at ``(weight, bias)``: one pass over
    this process's shard, then the sums of every process merged by label (in rank order, the
    same on every process: a group may have rows on several)."""

    def local() -> ClusterScores:
        scores = ClusterScores(weight, bias, shift=shift, max_groups=max_groups)
        if data.shard is not None and not data.shard:
            return scores
        for X, Y, w, labels in data.grouped_tensors():
            scores.update(X, Y, labels, w)
        return scores

    mine = guarded(group, local)
    if group.world == 1:
        return mine
    states = gather_bytes(group, mine.to_json().encode())

    def merged() -> ClusterScores:
        total = ClusterScores.from_json(states[0], max_groups=max_groups)
        for state in states[1:]:
            total = total.merge(ClusterScores.from_json(state, max_groups=max_groups))
        return total

    return guarded(group, merged)
