"""The batch source of a streamed fit: files read batch by batch as its training rows.

:class:`StreamData` is the engine's :class:`~gradfit.solvers.engine.EpochData` over a
:class:`~gradfit.data.BatchStream` (of :func:`gradfit.data.open_stream`): each batch encoded
(the plain columns, or a design's encoder), its rows' weights checked, its rows held out for
early stopping by the row rule of :mod:`gradfit.solvers.rows`, its group labels read, and
the training rows, epoch by epoch, put in the order of :mod:`gradfit.stream_order` (the order
"of the module doc" in the docstrings below). :func:`gradfit.streaming.fit_stream` builds one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from gradfit.data import Batch, BatchStream
from gradfit.data.weights import check_weight_values
from gradfit.fit_checks import as_training_tensor, group_labels
from gradfit.settings import DEFAULT_SHUFFLE_BUFFER
from gradfit.solvers.rows import holdout_mask
from gradfit.solvers.tsqr import RFactor
from gradfit.stream_order import _cut, _minibatches, shuffled

__all__ = ["Progress", "StreamData"]

Progress = Callable[[int, int, int], None]  # (bytes done, total bytes, rows done)


@dataclass
class StreamData:
    """A stream of files as the engine's :class:`~gradfit.solvers.engine.EpochData`: each call
    of :meth:`batches` is one pass over the files, in the order of the module doc."""

    stream: BatchStream
    features: tuple[str, ...]
    targets: tuple[str, ...]
    dtype: torch.dtype
    device: torch.device
    shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER
    progress: Progress | None = None
    shard: tuple[Any, ...] | None = None  # this process's units (None: all of them)
    rows: int = 0  # training rows in the shard, once the statistics pass has counted them
    holdout: float = 0.0  # early stopping: the fraction held out (gradfit.solvers.rows)
    holdout_seed: int = 0
    weights: str | None = None  # the column of row weights (None: unweighted)
    weight_scale: float = 1.0  # sgd: the weights times this have mean 1 over the training rows
    # A design (gradfit.design): the columns read as they are (raw_numeric, raw_text), each
    # batch encoded by `encoder` into (X, Y, rows kept, rows dropped); `dropped` counts.
    encoder: Callable[[Batch], tuple[np.ndarray, np.ndarray, np.ndarray, int]] | None = None
    raw_numeric: tuple[str, ...] = ()
    raw_text: tuple[str, ...] = ()
    dropped: int = 0
    groups: str | None = None  # the column of group labels (clustered standard errors)
    # A one_pass_r solver on one process: the R factor, accumulated in the statistics pass when
    # it reads the columns as read (None after that pass otherwise: TSQR makes its own pass).
    r_factor: RFactor | None = None

    def _encoded(
        self, batch: Batch
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_] | None]:
        """The batch's (X, Y) float64 and the mask of its rows kept (None: all, no design)."""
        if self.encoder is None:
            X, Y = batch.split_matrix(len(self.features))
            return X, Y, None
        X, Y, kept, dropped = self.encoder(batch)
        self.dropped += dropped
        return X, Y, kept

    def split(
        self, units: Sequence[Any] | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, npt.NDArray[np.bool_] | None]]:
        """The rows as (X (m, d), Y (m, k)) tensors in the training dtype, batch by batch, in
        the stream's order (or the order of ``units``; default: the shard's), with the mask of
        the rows held out for validation (None without a hold-out)."""
        for X, Y, mask, _ in self.weighted_split(units):
            yield X, Y, mask

    def weighted_split(
        self, units: Sequence[Any] | None = None
    ) -> Iterator[
        tuple[torch.Tensor, torch.Tensor, npt.NDArray[np.bool_] | None, torch.Tensor | None]
    ]:
        """:meth:`split` with the rows' weights ((m,) float64 on the CPU; None unweighted).
        Rows of weight 0 are left out here, once for every pass (R counts them nowhere); the
        hold-out is drawn first, by file row, so that it is the unweighted fit's."""
        for X, Y, mask, w, _ in self._rows(units, labels=False):
            yield X, Y, mask, w

    def _rows(
        self, units: Sequence[Any] | None, *, labels: bool
    ) -> Iterator[
        tuple[
            torch.Tensor,
            torch.Tensor,
            npt.NDArray[np.bool_] | None,
            torch.Tensor | None,
            npt.NDArray[Any] | None,
        ]
    ]:
        """:meth:`weighted_split`'s rows, and with ``labels`` their labels of the
        :attr:`groups` column (None without)."""
        index = {path: i for i, path in enumerate(self.stream.files)}
        for batch in self._read(units, stack=True, labels=labels):
            X, Y, kept = self._encoded(batch)
            if kept is not None and X.shape[0] == 0:
                continue  # every row dropped
            group = None
            if labels and self.groups is not None:
                group = batch.columns[self.groups]
                if kept is None:  # no design: a missing label is refused here
                    group_labels(group, str(batch.file), self.groups, batch.file_row, "error")
                else:  # the design's encoder dropped or refused the rows without a label
                    group = group[kept]
            w = None
            if self.weights is not None:
                if self.encoder is None:
                    Y = Y[:, : len(self.targets)]  # the weight column is read last
                w = self._batch_weights(batch)
                if kept is not None:
                    w = w[kept]  # the weights of the rows kept
            Xt = as_training_tensor(
                X, self.features, self.dtype, self.device, str(batch.file), batch.file_row
            )
            Yt = as_training_tensor(
                Y, self.targets, self.dtype, self.device, str(batch.file), batch.file_row
            )
            mask = None
            if self.holdout > 0:
                # The row rule numbers the file's rows, those dropped included (as in memory).
                mask = holdout_mask(
                    index[batch.file], batch.file_row, batch.n_rows, self.holdout, self.holdout_seed
                )
                if kept is not None:
                    mask = mask[kept]
            if w is None:
                yield Xt, Yt, mask, None, group
                continue
            positive = w > 0
            if not positive.any():  # nothing of this batch counts
                continue
            if not positive.all():
                keep = torch.from_numpy(positive)
                Xt, Yt = Xt[keep.to(Xt.device)], Yt[keep.to(Yt.device)]
                w = w[positive]
                mask = None if mask is None else mask[positive]
                group = None if group is None else group[positive]
            yield Xt, Yt, mask, torch.from_numpy(w), group

    def _batch_weights(self, batch: Batch) -> npt.NDArray[np.float64]:
        """The weight column of a batch, checked (finite by the reader, >= 0 here)."""
        if self.weights is None:  # called for weighted data only: never
            raise RuntimeError("a stream without a weights column has no batch weights")
        values = np.array(batch.columns[self.weights], dtype=np.float64)
        return check_weight_values(values, str(batch.file), self.weights, batch.file_row)

    def columns(self) -> Iterator[tuple[list[np.ndarray], list[np.ndarray]]]:
        """The shard's rows as (features, targets) lists of float64 columns, batch by batch,
        as read (not stacked into matrices, not converted to tensors): the statistics pass in
        float64 on the CPU without a hold-out, where nothing else is needed."""
        for batch in self._read(None, stack=False):
            if self.encoder is not None:
                X, Y, _ = self._encoded(batch)
                if X.shape[0]:
                    yield list(X.T), list(Y.T)
                continue
            yield (
                [batch.columns[name] for name in self.features],
                [batch.columns[name] for name in self.targets],
            )

    def _read(
        self, units: Sequence[Any] | None, *, stack: bool, labels: bool = False
    ) -> Iterator[Batch]:
        """The batches of ``units`` (default: the shard's, or all), with the progress
        reported as they come; ``labels``: with the :attr:`groups` column (a design reads it
        among its raw columns always)."""
        if units is None and self.shard is not None:
            units = list(self.shard)
            if not units:
                return
        rows = 0
        weights = [self.weights] if self.weights else []
        names = [*self.features, *self.targets, *weights]
        if self.encoder is not None:
            numeric = [*self.raw_numeric, *(c for c in weights if c not in self.raw_numeric)]
            read = self.stream.batches(numeric, self.raw_text, units=units, raw=True)
        else:
            text = [self.groups] if labels and self.groups is not None else []
            read = self.stream.batches(names, text, units=units, stack=stack)
        for batch in read:
            rows += batch.n_rows
            if self.progress is not None:
                self.progress(batch.bytes_done, batch.total_bytes, rows)
            yield batch

    def tensors(
        self, units: Sequence[Any] | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The training rows as (X (m, d), Y (m, k)) tensors (those of :meth:`split` less the
        held-out rows)."""
        for X, Y, _ in self.weighted_tensors(units):
            yield X, Y

    def weighted_tensors(
        self, units: Sequence[Any] | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        """:meth:`tensors` with the rows' weights ((m,) float64 on the CPU, all positive;
        None unweighted)."""
        for X, Y, mask, w in self.weighted_split(units):
            if mask is None:
                yield X, Y, w
            elif not mask.all():
                keep = torch.from_numpy(~mask)
                yield X[keep.to(X.device)], Y[keep.to(Y.device)], None if w is None else w[keep]

    def grouped_tensors(
        self,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, npt.NDArray[Any]]]:
        """The training rows of :meth:`weighted_tensors` with their labels of the
        :attr:`groups` column (a missing label: refused, or dropped by the design's encoder
        with its row from every pass)."""
        for X, Y, mask, w, group in self._rows(None, labels=True):
            if group is None:  # a stream without a groups column: never
                raise RuntimeError("a stream without a groups column has no group labels")
            if mask is None:
                yield X, Y, w, group
            elif not mask.all():
                keep = torch.from_numpy(~mask)
                kept_w = None if w is None else w[keep]
                yield X[keep.to(X.device)], Y[keep.to(Y.device)], kept_w, group[~mask]

    def _epoch_rows(
        self, generator: torch.Generator, shuffle: bool, weighted: bool = False
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        units = list(self.shard) if self.shard is not None else self.stream.units()
        if not units:
            return iter(())
        if shuffle and len(units) > 1:
            order = torch.randperm(len(units), generator=generator).tolist()
            units = [units[i] for i in order]
        rows = self._weighted_rows(units) if weighted else self.tensors(units)
        return shuffled(rows, self.shuffle_buffer, generator) if shuffle else rows

    def _weighted_rows(self, units: Sequence[Any]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The training rows with their weights (times :attr:`weight_scale`, in the training
        dtype, as sgd steps on them) as Y's last column: they travel through the shuffle
        buffer and the cut into mini-batches with their rows."""
        for X, Y, w in self.weighted_tensors(units):
            if w is None:  # weighted data only: never
                raise RuntimeError("a stream without a weights column has no row weights")
            scaled = (w * self.weight_scale).to(device=Y.device, dtype=Y.dtype)
            yield X, torch.cat([Y, scaled[:, None]], 1)

    def aligned_weighted_batches(
        self, generator: torch.Generator, steps: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        """:meth:`aligned_batches` with each batch's row weights (as :meth:`weighted_batches`;
        None unweighted), for sgd over a group of processes."""
        if self.weights is None:
            for X, Y in self.aligned_batches(generator, steps):
                yield X, Y, None
            return
        sizes = [(self.rows * (s + 1)) // steps - (self.rows * s) // steps for s in range(steps)]
        k = len(self.targets)
        rows = self._epoch_rows(generator, True, True)
        for X, Yw in _cut(rows, sizes, len(self.features), k + 1, self.dtype, self.device):
            yield X, Yw[:, :k].contiguous(), Yw[:, k].contiguous()

    def weighted_batches(
        self, generator: torch.Generator, batch_size: int, shuffle: bool
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        """:meth:`batches` with each batch's row weights (scaled to mean 1 over the training
        rows; None unweighted), for sgd (:func:`gradfit.solvers.interfaces.weighted_batches`)."""
        if self.weights is None:
            for X, Y in self.batches(generator, batch_size, shuffle):
                yield X, Y, None
            return
        k = len(self.targets)
        for X, Yw in _minibatches(self._epoch_rows(generator, shuffle, True), batch_size):
            yield X, Yw[:, :k].contiguous(), Yw[:, k].contiguous()

    def batches(
        self, generator: torch.Generator, batch_size: int, shuffle: bool
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return _minibatches(self._epoch_rows(generator, shuffle), batch_size)

    def aligned_batches(
        self, generator: torch.Generator, steps: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One shuffled epoch of the shard (as :meth:`batches`) cut into ``steps`` batches,
        batch ``s`` holding rows ``[rows*s // steps, rows*(s+1) // steps)`` of it: every
        process's share of the global step, so that all end the epoch together."""
        sizes = [(self.rows * (s + 1)) // steps - (self.rows * s) // steps for s in range(steps)]
        return _cut(
            self._epoch_rows(generator, True),
            sizes,
            len(self.features),
            len(self.targets),
            self.dtype,
            self.device,
        )
