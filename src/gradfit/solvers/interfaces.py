"""What the engine and its callers exchange: the progress callback's :class:`EpochInfo`, where
mini-batches come from (:class:`EpochData`, a stream's :class:`StreamPasses`, a process's
:class:`AlignedData` shard, and :class:`TensorData`, rows in memory) and where a fit saves
its state (:class:`Checkpointer`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import torch

from gradfit.solvers.state import TrainState

__all__ = [
    "AlignedData",
    "Callback",
    "Checkpointer",
    "EpochData",
    "EpochInfo",
    "StreamPasses",
    "TensorData",
    "aligned_weighted_batches",
    "weighted_batches",
    "weighted_passes",
]


@dataclass(frozen=True)
class EpochInfo:
    """What a progress callback (an epoch observer: :mod:`gradfit.observers`) receives after
    each epoch (epoch counted from 1): the training loss, the step's learning rate, the
    validation R² (mean over the targets) when early stopping holds rows out, the rows one epoch
    steps over (every process's: the training rows) and the epoch's wall time in seconds."""

    epoch: int
    max_epochs: int
    loss: float
    learning_rate: float
    validation_score: float | None = None
    rows: int = 0
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float | None:
        """The epoch's speed in training rows per second (None when it was not timed)."""
        return self.rows / self.seconds if self.rows and self.seconds > 0 else None


Callback = Callable[[EpochInfo], None]


class EpochData(Protocol):
    """Where mini-batches come from: rows in memory (:class:`TensorData`) or a stream of files
    (:mod:`gradfit.streaming`). ``batches`` yields the raw (unstandardized) mini-batches of one
    epoch, in buffers the engine may overwrite, drawing any shuffle from ``generator``."""

    def batches(
        self, generator: torch.Generator, batch_size: int, shuffle: bool
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


class StreamPasses(EpochData, Protocol):
    """Data read in passes (a stream of files): each ``tensors()`` call is one pass, yielding
    (X (m, d), Y (m, k)) blocks in the training dtype ``dtype``."""

    dtype: torch.dtype

    def tensors(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


class AlignedData(StreamPasses, Protocol):
    """This process's shard of data spread over a group of processes (data-parallel sgd):
    ``aligned_batches`` yields exactly ``steps`` mini-batches (some may be empty) whose sizes
    are this shard's share of each global step, so that every process ends the epoch at the same
    step. ``rows`` is the number of rows in this shard."""

    rows: int

    def aligned_batches(
        self, generator: torch.Generator, steps: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


class Checkpointer(Protocol):
    """Where a fit saves its training state and resumes from (:mod:`gradfit.checkpoint`).

    ``resume(state)`` returns the saved state (validated against this fit's data and settings)
    with whether that fit had finished and converged, or None to start afresh from ``state``;
    ``save(state, finished, converged)`` is called after every epoch (it decides whether to
    write) and once at the end with ``finished`` True. Both are called on every process of a
    group, at the same points."""

    def resume(self, state: TrainState) -> tuple[TrainState, bool, bool] | None: ...

    def save(self, state: TrainState, finished: bool, converged: bool) -> None: ...


@dataclass(frozen=True)
class TensorData:
    """Rows in memory. With ``shuffle``, batch ``i`` is rows ``perm[i*B : (i+1)*B]`` of one
    ``torch.randperm(n, generator)`` per epoch, gathered into a reused buffer: gathering batch by
    batch is several times faster than permuting the whole matrix once per epoch (no fresh
    n x d allocation to fault in), and X itself is never modified. ``w``: the rows' weights
    (n,), in the data's dtype (the engine scales them to mean 1), which
    :meth:`weighted_batches` yields with each batch; None: unweighted."""

    X: torch.Tensor  # (n, d)
    Y: torch.Tensor  # (n, k)
    w: torch.Tensor | None = None  # (n,)

    def batches(
        self, generator: torch.Generator, batch_size: int, shuffle: bool
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for zb, yb, _ in self.weighted_batches(generator, batch_size, shuffle):
            yield zb, yb

    def weighted_batches(
        self, generator: torch.Generator, batch_size: int, shuffle: bool
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        """:meth:`batches` with each batch's weights (None when unweighted)."""
        X, Y, w = self.X, self.Y, self.w
        n, d = X.shape
        B = min(batch_size, n)
        perm = torch.randperm(n, generator=generator).to(X.device) if shuffle else None
        zbuf = torch.empty(B, d, dtype=X.dtype, device=X.device)
        ybuf = torch.empty(B, Y.shape[1], dtype=Y.dtype, device=Y.device)
        wbuf = None if w is None else torch.empty(B, dtype=w.dtype, device=w.device)
        for start in range(0, n, B):
            m = min(B, n - start)
            zb, yb = zbuf[:m], ybuf[:m]
            wb = None if wbuf is None else wbuf[:m]
            if perm is not None:
                rows = perm[start : start + m]
                torch.index_select(X, 0, rows, out=zb)
                torch.index_select(Y, 0, rows, out=yb)
                if w is not None and wb is not None:
                    torch.index_select(w, 0, rows, out=wb)
            else:
                zb.copy_(X[start : start + m])
                yb.copy_(Y[start : start + m])
                if w is not None and wb is not None:
                    wb.copy_(w[start : start + m])
            yield zb, yb, wb


def weighted_batches(
    data: EpochData, generator: torch.Generator, batch_size: int, shuffle: bool
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """``data``'s batches of one epoch with their rows' weights: those of a source that
    yields them (its ``weighted_batches``: weighted rows in memory, :class:`TensorData` with
    ``w``; a stream that reads a weight column), None for every other source (unweighted)."""
    weighted = getattr(data, "weighted_batches", None)
    if weighted is not None:
        batches: Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]
        batches = weighted(generator, batch_size, shuffle)
        return batches
    return ((zb, yb, None) for zb, yb in data.batches(generator, batch_size, shuffle))


def weighted_passes(
    data: StreamPasses,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """One pass of ``data.tensors()`` with each block's row weights: those of a stream that
    reads a weight column (its ``weighted_tensors()``, (m,) float64), None for every other
    source (unweighted)."""
    weighted: Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]]
    weighted = getattr(data, "weighted_tensors", None) or (
        lambda: ((X, Y, None) for X, Y in data.tensors())
    )
    return weighted()


def aligned_weighted_batches(
    data: AlignedData, generator: torch.Generator, steps: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """``data.aligned_batches`` with each batch's row weights: those of a shard that yields
    them (its ``aligned_weighted_batches``: a stream that reads a weight column, the weights
    scaled to mean 1 over the group's training rows), None otherwise (unweighted)."""
    weighted = getattr(data, "aligned_weighted_batches", None)
    if weighted is not None:
        batches: Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]
        batches = weighted(generator, steps)
        return batches
    return ((zb, yb, None) for zb, yb in data.aligned_batches(generator, steps))
