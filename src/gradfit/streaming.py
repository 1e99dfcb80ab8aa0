"""Fit, predict and evaluate over files larger than memory, one batch at a time.

The data come from :func:`gradfit.data.open_stream` (a file, a list of files, a directory or a
glob, read in batches of ``batch_rows`` rows); memory stays O(batch + d² + shuffle buffer)
whatever the size of the files.

Passes over the data, by solver:

* ``gd``: one pass for the :class:`~gradfit.solvers.stats.SufficientStats` (merged batch by
  batch), then every step from them: exactly the iterates of the in-memory fit;
* ``lstsq``: the closed form by TSQR (:func:`gradfit.solvers.tsqr.least_squares_stream`): on
  one process with unweighted rows (a solver whose spec says ``one_pass_r``), the R factor in
  the statistics pass itself (:class:`~gradfit.solvers.tsqr.RFactor`: one pass over the data
  where a refinement pass is not needed; the statistics are computed from that R, nothing
  else from the rows); otherwise one pass for the statistics (the means), one
  for the R factor of the centred data; then, where it pays, passes of iterative refinement;
* ``sgd``: one pass for the statistics (scaling, step size), one for the largest row norm (only
  with ``learning_rate="auto"``), then one pass per epoch;
* the tutorial loops (``scratch``, ``builtin``) are written for data in memory and are refused.

**The order of sgd's rows** (reproducible for a seed). Each epoch:

1. the stream's units (a Parquet row group; a whole CSV file) are taken in the order of one
   ``torch.randperm(n_units, generator)`` (no draw when there is a single unit);
2. rows flow, in that order, through a shuffle buffer of ``shuffle_buffer`` rows: incoming
   batches are appended to a pool; whenever the pool holds more than ``shuffle_buffer`` rows,
   one ``torch.randperm(len(pool), generator)`` is drawn, the rows at its first
   ``len(pool) - shuffle_buffer`` positions are emitted in that order and the rest stay; at
   the end of the pass the pool is emitted in the order of one more permutation;
3. emitted rows are cut into mini-batches of ``batch_size`` in emission order (the last one
   may be short).

``generator`` is the training state's. With one unit and ``shuffle_buffer >= n`` the epoch is a
single ``randperm(n)`` of the rows in file order: exactly the in-memory epoch, bit for bit.

**Formulas, categorical columns and missing values** (:mod:`gradfit.design`, when
:func:`gradfit.fitting.design_columns` says so, as in memory): first a levels pass over the
categorical columns only (a Parquet file reads just those columns), each process over its
shard, the levels merged over the group (:class:`~gradfit.design.LevelGatherer`'s JSON,
:func:`~gradfit.solvers.collective.gather_bytes`); then the design is frozen from the first
batch of the data with those levels, the same on every process, and every batch is encoded by
it (messages name the file and its row). Stateful transforms (``poly``, ``center``,
``scale``, the splines), whose state would come from one batch, are refused: fit such a formula
in memory. ``missing="drop"`` drops rows batch by batch; the count is summed over the group.

**Early stopping's held-out rows** are picked row by row by the row rule of
:mod:`gradfit.solvers.rows` (a seeded hash of file and row), as in memory: the same rows, and
the training rows in the same order, whatever the batches, so that the fit in memory and the
fit streamed as above give the same model.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import torch

from gradfit.checkpoint import Checkpoint, data_fingerprint
from gradfit.data import Batch, BatchStream, open_stream
from gradfit.data.memory import TableInMemory
from gradfit.data.weights import (
    check_weight_values,
    refuse_all_zero,
    refuse_weight_role,
)
from gradfit.errors import DataError, ValidationError
from gradfit.fit_report import FitReport, build_fit_report
from gradfit.fitting import (
    as_training_tensor,
    check_design_names,
    check_width,
    clusters_problem,
    expand_names,
    group_labels,
    holdout_problem,
    inference_problem,
    intercept_of_design,
    single_rank_warning,
    source_kind,
    source_name,
)
from gradfit.group_checks import _agree_on_the_job, _warn_small_batches
from gradfit.inference import ClusterScores
from gradfit.metrics import RegressionMetrics
from gradfit.model import predict
from gradfit.persistence import SavedModel
from gradfit.settings import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_LEVEL,
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_SHUFFLE_BUFFER,
    CheckpointSettings,
    ClusterSettings,
    DesignSettings,
    ReadSettings,
    RunSettings,
    WeightSettings,
    refuse_unknown,
    settings_from_options,
)
from gradfit.solvers import registry
from gradfit.solvers.collective import (
    LOCAL,
    Communicator,
    guarded,
    merge_stats,
)
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.engine import EpochInfo, stream_row_scale
from gradfit.solvers.result import FitResult
from gradfit.solvers.rows import holdout_mask, holdout_seed
from gradfit.solvers.stats import SufficientStats
from gradfit.solvers.tsqr import RFactor
from gradfit.storage import as_path
from gradfit.stream_clusters import _cluster_scores, _labelled
from gradfit.stream_design import DesignPlan, batch_encoder, freeze_design, open_design

if TYPE_CHECKING:
    pass

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_SHUFFLE_BUFFER",
    "StreamData",
    "choose_columns",
    "evaluate_stream",
    "fit_stream",
    "holdout_mask",
    "memory_estimate",
    "predict_batches",
    "prediction_columns",
    "shuffled",
    "use_streaming",
]

Progress = Callable[[int, int, int], None]  # (bytes done, total bytes, rows done)


# ----------------------------------------------------------------------------- row order


def shuffled(
    chunks: Iterable[tuple[torch.Tensor, torch.Tensor]],
    capacity: int,
    generator: torch.Generator,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The shuffle buffer of the module doc (step 2): chunks of rows in, chunks of rows out."""
    pool_x: list[torch.Tensor] = []
    pool_y: list[torch.Tensor] = []
    held = 0
    for X, Y in chunks:
        pool_x.append(X)
        pool_y.append(Y)
        held += X.shape[0]
        if held <= capacity:
            continue
        px, py = torch.cat(pool_x), torch.cat(pool_y)
        perm = torch.randperm(held, generator=generator).to(px.device)
        out = held - capacity
        yield px.index_select(0, perm[:out]), py.index_select(0, perm[:out])
        pool_x, pool_y = [px.index_select(0, perm[out:])], [py.index_select(0, perm[out:])]
        held = capacity
    if held:
        px, py = torch.cat(pool_x), torch.cat(pool_y)
        perm = torch.randperm(held, generator=generator).to(px.device)
        yield px.index_select(0, perm), py.index_select(0, perm)


def _minibatches(
    chunks: Iterable[tuple[torch.Tensor, torch.Tensor]], batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Rows in, mini-batches of ``batch_size`` rows out, in order (the last may be short).
    Every batch is memory of its own (the engine standardizes it in place)."""
    carry_x: torch.Tensor | None = None
    carry_y: torch.Tensor | None = None
    for X, Y in chunks:
        if carry_x is not None and carry_y is not None:
            X, Y = torch.cat([carry_x, X]), torch.cat([carry_y, Y])
            carry_x = carry_y = None
        whole = X.shape[0] - X.shape[0] % batch_size
        for start in range(0, whole, batch_size):
            yield X[start : start + batch_size].clone(), Y[start : start + batch_size].clone()
        if whole < X.shape[0]:
            carry_x, carry_y = X[whole:], Y[whole:]
    if carry_x is not None and carry_y is not None:
        yield carry_x.clone(), carry_y.clone()


def _cut(
    chunks: Iterable[tuple[torch.Tensor, torch.Tensor]],
    sizes: Sequence[int],
    d: int,
    k: int,
    dtype: torch.dtype,
    device: torch.device,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Rows in, batches of exactly ``sizes`` rows out (each its own memory; a size 0 gives an
    empty batch). Rows beyond, or missing from, ``sum(sizes)`` mean the files changed since the
    statistics pass: a DataError."""
    source = iter(chunks)
    pending_x: list[torch.Tensor] = []
    pending_y: list[torch.Tensor] = []
    held = 0
    for size in sizes:
        while held < size:
            nxt = next(source, None)
            if nxt is None:
                raise DataError(
                    "the data files gave fewer rows than when the fit began; were they changed "
                    "during the fit?"
                )
            pending_x.append(nxt[0])
            pending_y.append(nxt[1])
            held += nxt[0].shape[0]
        if size == 0:
            yield (
                torch.empty(0, d, dtype=dtype, device=device),
                torch.empty(0, k, dtype=dtype, device=device),
            )
            continue
        X, Y = torch.cat(pending_x), torch.cat(pending_y)
        yield X[:size].clone(), Y[:size].clone()
        pending_x, pending_y = ([X[size:]], [Y[size:]]) if held > size else ([], [])
        held -= size
    if held or next(source, None) is not None:
        raise DataError(
            "the data files gave more rows than when the fit began; were they changed during "
            "the fit?"
        )


# ----------------------------------------------------------------------------- batches


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


# ----------------------------------------------------------------------------- fit


@single_rank_warning
def fit_stream(
    source: str | Path | Sequence[str | Path],
    targets: Sequence[str],
    features: Sequence[str] | None = None,
    config: SolverConfig | None = None,
    *,
    reading: ReadSettings | None = None,
    run: RunSettings | None = None,
    checkpointing: CheckpointSettings | None = None,
    design: DesignSettings | None = None,
    callback: Callable[[EpochInfo], None] | None = None,
    progress: Progress | None = None,
    sample_rows: int = 0,
    comm: Communicator | None = None,
    notes: list[str] | None = None,
    weighting: WeightSettings | None = None,
    clustering: ClusterSettings | None = None,
    **options: Any,
) -> FitReport:
    """Fit ``config.solver`` to files of any size, one batch at a time.

    Parameters
    ----------
    source : a file, a list of files, a directory of files with the same columns, or a glob
    targets, features : column names (see :func:`gradfit.fitting.expand_names`); features
        default to every other numeric, text or boolean column (an identifier left out:
        :func:`gradfit.fitting.design_features`)
    config : the solver and its settings (gd, sgd or lstsq; see the module doc)
    reading : how the files are read (:class:`~gradfit.settings.ReadSettings`): ``batch_rows``
        rows per batch, ``shuffle_buffer`` rows of sgd's shuffle buffer (see the module doc),
        ``memory_limit`` bytes: the fit is refused before the first pass when the features'
        d × d statistics would need more (:func:`gradfit.fitting.check_width`; default here:
        None, no limit); ``stream`` is not consulted (this function streams)
    run : seed, dtype, device, inference and level (:class:`~gradfit.settings.RunSettings`),
        as :func:`gradfit.fitting.fit_data`; ``inference``, the covariance type of the
        coefficient table, from the statistics, and for the heteroskedasticity-consistent types
        (HC0-HC3) one more pass over the data for each row's residual and leverage
    checkpointing : save the training state to ``checkpoint`` after every
        ``checkpoint_every`` epochs and at the end (gd, sgd; see :mod:`gradfit.checkpoint`);
        with ``resume``, continue from it when it exists
        (:class:`~gradfit.settings.CheckpointSettings`; default: none)
    callback : called with an :class:`EpochInfo` after every epoch
    progress : called with (bytes read, total bytes, rows read) after every batch of a pass
    sample_rows : with > 0, one more pass keeps about this many rows (a seeded uniform sample)
        with their predictions in the report's ``targets``/``predictions`` (for plots)
    comm : a group of processes (:mod:`gradfit.distributed`; default: this process alone).
        Each process reads its shard of the data (:meth:`BatchStream.shard`: every
        ``world``-th unit, a unit being a Parquet row group or a whole CSV file); the
        statistics, R factors and sgd's gradients are combined over the group, and every
        process returns the same model. Every process must call this with the same arguments.
    notes : a list to which messages for the user are appended (a resumed or fresh start,
        shards without data)
    weighting : row weights from a column (:class:`~gradfit.settings.WeightSettings`;
        ``weights=`` among ``options``): the weighted statistics (merged across batches and
        processes as the unweighted ones), gd from them, lstsq by TSQR on the rows scaled by
        sqrt(w), sgd's mini-batches carrying their rows' weights (scaled to mean 1 over the
        training rows, as in memory), the HC pass weighted; rows of weight 0 are left out
    clustering : the column of group labels of ``inference="cluster"``
        (:class:`~gradfit.settings.ClusterSettings`; ``groups=`` among ``options``): after the
        fit, one more pass sums each group's scores ``w e x`` at the fitted coefficients
        (:class:`~gradfit.inference.ClusterScores`: memory bounded by the number of groups,
        refused beyond ``max_groups``), merged by label over the processes; a row with a
        missing label follows ``design.missing`` (through a design, every pass drops it)
    design : the formula, ``missing`` and ``max_levels``
        (:class:`~gradfit.settings.DesignSettings`; see the module doc): ``targets`` None and
        ``features`` None with a formula
    options : the fields of the settings objects as keyword arguments (``seed=``,
        ``batch_rows=``, ``checkpoint=``, ...), each replacing the field of the object given
        (or of the default one)

    Returns
    -------
    FitReport
        as :func:`gradfit.fitting.fit_data`; the training metrics (MSE, RMSE, R²) and the
        optimum come from the statistics (no extra pass); MAE, which needs one, is left out
        (``gradfit evaluate`` gives it).
    """
    reading = settings_from_options(ReadSettings, reading or _NO_LIMIT, options)
    run = settings_from_options(RunSettings, run, options)
    checkpointing = settings_from_options(CheckpointSettings, checkpointing, options)
    weights_column = settings_from_options(WeightSettings, weighting, options).weights
    design = settings_from_options(DesignSettings, design, options)
    clustering = settings_from_options(ClusterSettings, clustering, options)
    groups_column = clustering.groups
    refuse_unknown("fit_stream", options)
    check_design_names(design, targets, features)
    seed, dtype, checkpoint = run.seed, run.torch_dtype, checkpointing.checkpoint
    config = config if config is not None else SolverConfig()
    group = comm if comm is not None else LOCAL
    problem = inference_problem(config, run.inference, processes=group.world) or (
        clusters_problem(run.inference, groups_column)
    )
    if problem is not None:
        raise ValidationError(problem)
    spec = registry.get(config.solver)
    fit = spec.stream_function()
    if group.world > 1:
        spec.check({"distributed": "training on several processes"})
    if checkpoint is not None and not spec.iterative:
        raise ValidationError(
            f"solver={config.solver!r} has no epochs to checkpoint; leave out --checkpoint, "
            "or use gd or sgd"
        )
    dev = run.torch_device()
    stream, found = guarded(
        group,
        lambda: open_design(
            open_stream,
            source,
            reading.batch_rows,
            targets,
            features,
            design,
            weights_column,
            groups_column,
        ),
    )
    if group.world > 1:
        _agree_on_the_job(group, stream, config, run, reading, checkpointing, targets, features)
    encoding = None
    plan = found if isinstance(found, DesignPlan) else None
    if plan is None:
        fnames, tnames, _ = guarded(
            group,
            lambda: _open(
                stream, targets or (), features, reading.memory_limit, weights_column, groups_column
            ),
        )
        left_out = found if isinstance(found, dict) else {}
    else:
        shard = None if group.world == 1 else stream.shard(group.rank, group.world)
        encoding = freeze_design(stream, plan, design, group, shard)
        fnames, tnames, left_out = encoding.columns, encoding.targets, plan.left_out
        config = intercept_of_design(config, encoding.fit_intercept, design.formula)
        guarded(
            group,
            lambda: check_width(
                stream.source, len(fnames), reading.memory_limit, formula=design.formula
            ),
        )
    if group.world > 1:
        _warn_small_batches(config, group.world, len(fnames))
    data = StreamData(stream, fnames, tnames, dtype, dev, reading.shuffle_buffer, progress)
    data.weights = weights_column
    data.groups = groups_column
    if spec.one_pass_r and group.world == 1:
        # Passes 1 and 2 of TSQR in one; with its ones column whatever the fit, for the
        # statistics (RFactor.statistics; a fit without an intercept: RFactor.uncentred).
        data.r_factor = RFactor(fit_intercept=True)
    if plan is not None and encoding is not None:
        data.encoder = batch_encoder(encoding, plan, design.missing, stream.columns)
        data.raw_numeric, data.raw_text = plan.numeric, plan.text
        if groups_column is not None:  # read with every batch: a row without one is dropped
            data.encoder = _labelled(data.encoder, groups_column, design.missing)
            if groups_column not in (*plan.numeric, *plan.text):
                if groups_column in stream.head_table().numeric_columns:
                    data.raw_numeric = (*plan.numeric, groups_column)
                else:
                    data.raw_text = (*plan.text, groups_column)
    if group.world > 1:
        data.shard = tuple(stream.shard(group.rank, group.world))
        units = len(stream.units())
        if units < group.world and notes is not None and group.rank == 0:
            notes.append(
                f"{stream.source} has {units} unit(s) to share among {group.world} processes "
                "(a unit is a CSV file or a Parquet row group), so some read nothing; split the "
                "data into more files or row groups to share the reading"
            )

    start = time.perf_counter()
    d, k = len(fnames), len(tnames)
    if config.early_stopping:
        data.holdout = config.validation_fraction
        # The split's seed from the fit's (fresh entropy without one), as in memory.
        data.holdout_seed = holdout_seed(seed)
    data.dropped = 0
    local, local_held = guarded(group, lambda: _local_stats(data))
    dropped = data.dropped
    if group.world > 1 and plan is not None:
        dropped = int(group.sum(torch.tensor([dropped], dtype=torch.int64))[0])
    data.rows = 0 if local is None else local.n
    stats = merge_stats(group, local, d, k, dev)
    validation = merge_stats(group, local_held, d, k, dev) if config.early_stopping else None
    if weights_column is not None and stats.n == 0 and (validation is None or validation.n == 0):
        raise refuse_all_zero(stream.source, weights_column)
    data.weight_scale = stream_row_scale(stats)
    if validation is not None:
        problem = holdout_problem(
            stream.source, stats.n + validation.n, validation.n, config.validation_fraction
        )
        if problem is not None:
            raise ValidationError(problem)
    if stats.n < 2:
        raise DataError(
            f"{stream.source}: {stats.n} training row(s); at least 2 are needed to fit a model"
        )
    keeper = None
    if checkpoint is not None:
        settings = {
            **config.as_dict(),
            "seed": seed,
            "dtype": str(dtype).removeprefix("torch."),
            "batch_rows": reading.batch_rows,
            "shuffle_buffer": reading.shuffle_buffer,
            "processes": group.world,
        }
        keeper = Checkpoint(
            as_path(checkpoint),
            data_fingerprint(stats, fnames, tnames),
            settings,
            every=checkpointing.checkpoint_every,
            resume_from_file=checkpointing.resume,
            comm=group,
        )
    kwargs: dict[str, Any] = {}
    if group.world > 1:
        kwargs["comm"] = group
    if keeper is not None:
        kwargs["checkpoint"] = keeper
    if validation is not None:
        kwargs["validation"] = validation
    try:
        result = fit(data, stats, config, random_state=seed, callback=callback, **kwargs)
    finally:
        if keeper is not None and notes is not None:
            notes.extend(keeper.notes)
    seconds = time.perf_counter() - start
    sample = _sample(data, result, stats.n, sample_rows, seed) if sample_rows > 0 else None
    # The HC covariances' pass: this process's training rows again, in float64.
    rows64 = replace(data, dtype=torch.float64, progress=None)

    def collect(work: Callable[[], np.ndarray]) -> np.ndarray:
        local = torch.from_numpy(guarded(group, work))
        return group.sum(local).numpy() if group.world > 1 else local.numpy()

    def clusters(weight: np.ndarray, bias: np.ndarray, shift: np.ndarray) -> ClusterScores:
        return _cluster_scores(rows64, group, weight, bias, shift, clustering.max_groups)

    return build_fit_report(
        stream.source,
        result,
        config,
        features=fnames,
        targets=tnames,
        run=run,
        device=dev,
        seconds=seconds,
        left_out=left_out,
        stats=stats,
        sample=sample,
        batches=rows64.tensors if weights_column is None else rows64.weighted_tensors,
        collect=collect,
        weights_column=weights_column,
        design=None if encoding is None else encoding.to_dict(),
        rows_dropped=dropped,
        clusters=None if groups_column is None else clusters,
        max_groups=clustering.max_groups,
        groups_column=clustering.groups,
    )


# A streamed fit called directly weighs no memory limit unless given one (gradfit.fit gives its
# own: the default limit).
_NO_LIMIT = ReadSettings(memory_limit=None)


def _open(
    stream: BatchStream,
    targets: Sequence[str],
    features: Sequence[str] | None,
    memory_limit: int | None = None,
    weights: str | None = None,
    groups: str | None = None,
) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, str]]:
    """The stream's plain columns, the width checked (:func:`gradfit.fitting.check_width`)
    from the header first, then once the features are chosen. ``weights``: the column of row
    weights, never a feature; ``groups``: that of group labels, not a default feature."""
    if features is None:
        check_width(stream.source, 0, memory_limit, columns=stream.columns, targets=targets)
    fnames, tnames, left_out = choose_columns(stream, targets, features)
    if weights is not None:
        fnames = _weighted_columns(stream, weights, tnames, fnames, features is None)
    if groups is not None:
        stream.check_columns([groups], "groups")
        if features is None:
            fnames = tuple(name for name in fnames if name != groups)
    check_width(stream.source, len(fnames), memory_limit)
    return fnames, tnames, left_out


def _weighted_columns(
    stream: BatchStream,
    weights: str,
    targets: tuple[str, ...],
    features: tuple[str, ...],
    default: bool,
) -> tuple[str, ...]:
    """The features without the weights column (``default``: the default choice, which left
    it in), after checking that the column exists and is named as nothing else."""
    stream.check_columns([weights], "weights")
    refuse_weight_role(stream.source, weights, targets, None if default else features)
    fnames = tuple(name for name in features if name != weights)
    if not fnames:
        raise DataError(
            f"{stream.source}: no feature columns left once the weights column {weights!r} is "
            "set apart; name the features with --features"
        )
    return fnames


def _local_stats(data: StreamData) -> tuple[SufficientStats | None, SufficientStats | None]:
    """The statistics of this process's training rows and of its held-out rows (None where
    there are none: an empty shard, no hold-out), in one pass."""
    if data.shard is not None and not data.shard:
        return None, None
    if (
        data.holdout == 0
        and data.weights is None
        and data.dtype == torch.float64
        and data.device.type == "cpu"
    ):
        # The columns as read: the statistics shift them straight into their own buffer.
        parts = data.columns()
        factor = data.r_factor
        if factor is not None:  # the R factor alone; the statistics from it
            for Z, Y in parts:
                factor.add([*Z, *Y])
            return (factor.statistics(len(data.features)) if factor.rows else None), None
        head = next(parts, None)
        if head is None:
            return None, None
        return SufficientStats.from_batches(itertools.chain([head], parts)), None
    data.r_factor = None
    held: list[SufficientStats | None] = [None]

    def training() -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        for X, Y, mask, w in data.weighted_split():
            if mask is None:
                yield X, Y, w
                continue
            if mask.any():
                out = torch.from_numpy(mask)
                wo = None if w is None else w[out]
                part = SufficientStats.compute(X[out.to(X.device)], Y[out.to(Y.device)], weights=wo)
                held[0] = part if held[0] is None else held[0].merge(part)
            if not mask.all():
                keep = torch.from_numpy(~mask)
                yield X[keep.to(X.device)], Y[keep.to(Y.device)], None if w is None else w[keep]

    batches = training()
    first = next(batches, None)
    if first is None:  # every row held out
        return None, held[0]
    train = SufficientStats.from_batches(itertools.chain([first], batches))
    return train, held[0]


def _sample(
    data: StreamData, result: FitResult, n: int, rows: int, seed: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """About ``rows`` of the ``n`` rows, each kept with probability rows/n (seeded), with the
    model's predictions: (targets (m, k), predictions (m, k)) float64."""
    rng = np.random.default_rng(seed)
    keep = min(1.0, rows / max(n, 1))
    weight, bias = result.weight.double(), result.bias.double()
    ys: list[np.ndarray] = []
    ps: list[np.ndarray] = []
    for X, Y in data.tensors():
        mask = torch.from_numpy(rng.random(X.shape[0]) < keep).to(X.device)
        Xk, Yk = X[mask].double(), Y[mask].double()
        ys.append(Yk.cpu().numpy())
        ps.append(predict(Xk, weight.to(Xk.device), bias.to(Xk.device)).cpu().numpy())
    k = result.weight.shape[0]
    if not ys:
        return np.empty((0, k)), np.empty((0, k))
    return np.concatenate(ys), np.concatenate(ps)


# ----------------------------------------------------------------------------- predict, evaluate

# Predictions and metrics take one road for a file read whole and streamed: gradfit.jobs. These
# are its streamed forms under their old names; jobs imports this module, so it is imported
# when they are called.


def predict_batches(
    model: SavedModel,
    source: str | Path | Sequence[str | Path],
    *,
    keep: Sequence[str] = (),
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Progress | None = None,
    interval: str | None = None,
    level: float = DEFAULT_LEVEL,
    predictor: Any = None,
) -> Iterator[dict[str, np.ndarray]]:
    """:func:`gradfit.jobs.predict_batches` of files of any size (a file, a list of files, a
    directory or a glob), always streamed."""
    from gradfit import jobs

    if interval is not None and predictor is None:
        predictor = model.interval_predictor()
    data = jobs._Streamed(source, batch_rows, progress)
    return jobs._predict(model, data, keep, predictor, interval, level)


def prediction_columns(
    model: SavedModel,
    X: torch.Tensor,
    predictor: Any = None,
    interval: str | None = None,
    level: float = DEFAULT_LEVEL,
) -> dict[str, np.ndarray]:
    """:func:`gradfit.jobs.prediction_columns`."""
    from gradfit import jobs

    return jobs.prediction_columns(model, X, predictor, interval, level)


def evaluate_stream(
    model: SavedModel,
    source: str | Path | Sequence[str | Path],
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Progress | None = None,
) -> tuple[int, RegressionMetrics]:
    """:func:`gradfit.jobs.evaluate` of files of any size, always streamed: (rows, metrics)."""
    from gradfit import jobs

    report = jobs._evaluate(model, jobs._Streamed(source, batch_rows, progress))
    return report.n_samples, report.metrics


# ----------------------------------------------------------------------------- memory policy

# Bytes in memory per byte of file when a file is read whole (measured: a CSV peaks at ~3.3x
# its size, a float Parquet file at ~6x).
_EXPANSION = ((".parquet", 8), (".pq", 8))
_DEFAULT_EXPANSION = 4
_INFLATE_BLOCK = 1 << 20  # bytes decompressed at a time when a gzip file is measured


def memory_estimate(source: str | Path, limit: int | None = None) -> int:
    """About how many bytes reading ``source`` whole would take: the size of its text times
    the expansion of its format. The text of a gzip file is measured by decompressing it (in
    blocks of 1 MiB, nothing kept): its compressed size says nothing (a 0.6 MB file can hold
    300 MB of text). With ``limit``, the measure stops once the estimate passes it (the
    result is then only known to exceed ``limit``)."""
    path = as_path(source)
    factor = next(
        (f for suffix, f in _EXPANSION if path.name.lower().endswith(suffix)), _DEFAULT_EXPANSION
    )
    with path.open("rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    if not gzipped:
        return path.stat().st_size * factor
    return _inflated_size(path, None if limit is None else limit // factor + 1) * factor


def _inflated_size(path: Path, cap: int | None) -> int:
    """Bytes of the decompressed text of the gzip file ``path``, counted up to just past
    ``cap`` (None: all); a corrupt file counts what decompressed before the fault (the
    reader names the fault)."""
    total = 0
    with (
        contextlib.suppress(OSError, EOFError, zlib.error),
        path.open("rb") as raw,
        gzip.GzipFile(fileobj=raw, mode="rb") as fh,
    ):
        while cap is None or total <= cap:
            block = fh.read(_INFLATE_BLOCK)
            if not block:
                break
            total += len(block)
    return total


def use_streaming(
    source: str | TableInMemory,
    config: SolverConfig | None = None,
    reading: ReadSettings | None = None,
    *,
    group: bool = False,
    checkpoint: bool = False,
    **options: Any,
) -> bool:
    """Whether to read ``source`` by streaming rather than whole: the one place that decides.

    What ``source`` is, :func:`gradfit.fitting.source_kind` says. A table in memory is never
    streamed: ``stream=True``, a group or a checkpoint with one is refused. A group of
    processes (``group``) or a ``checkpoint`` always streams (they shard the data and resume by
    epochs); ``reading.stream`` False is then refused. Otherwise ``reading.stream`` True or
    False forces the choice, and None decides: the built-in data sets are read whole; a
    directory, a glob or a file whose :func:`memory_estimate` exceeds ``reading.memory_limit``
    (None: no limit) is streamed, so that the default never exhausts memory on a file larger
    than it; smaller files are read whole. A solver that cannot stream (the tutorial loops), or
    early stopping, on such a source is refused with what to do instead (``config`` None:
    predict and evaluate, which always can). ``options``: fields of
    :class:`~gradfit.settings.ReadSettings` (``stream=``, ``memory_limit=``) instead of
    ``reading``."""
    reading = settings_from_options(ReadSettings, reading, options)
    refuse_unknown("use_streaming", options)
    stream, memory_limit = reading.stream, reading.memory_limit
    kind = source_kind(source)
    if kind == "memory":
        if group or checkpoint:
            what = "several processes stream" if group else "a checkpointed fit streams"
            raise ValidationError(
                f"{source_name(source)}: {what} files, and a table in memory is read whole in "
                f"this process; leave out {'comm' if group else 'checkpoint'}, or write the "
                "table to a file and fit that"
            )
        if stream:
            raise ValidationError(
                f"{source_name(source)}: a table in memory is read whole, never streamed; leave "
                "out stream=True (or write the table to a file and stream that)"
            )
        return False
    if group or checkpoint:
        if stream is False:
            what = (
                "several processes stream their shards of"
                if group
                else "a checkpointed fit streams"
            )
            raise ValidationError(
                f"{source}: {what} the data; leave out stream=False (--no-stream)"
            )
        stream = True
    path = as_path(source)
    # Anything but a directory or a glob is one file; one that is missing or unreadable gets
    # the reader's message.
    single = kind != "files"
    if stream is False:
        if not single:
            raise DataError(
                f"{source}: not a single file; a directory or glob is read by streaming "
                "(leave out --no-stream)"
            )
        return False
    if stream is None:
        if kind == "builtin":
            return False
        if single and (
            memory_limit is None
            or not path.is_file()
            or memory_estimate(source, memory_limit) <= memory_limit
        ):
            return False
    if config is None:
        return True
    spec = registry.get(config.solver)
    why = (
        "is streamed"
        if stream
        else f"needs more than the memory limit of {_mb(memory_limit or 0)} in memory"
        if single
        else "is several files, read by streaming"
    )
    if spec.stream_entry is None:
        able = " or ".join(repr(s.name) for s in registry.REGISTRY.values() if s.stream_entry)
        raise ValidationError(
            f"{source} {why}, but solver={config.solver!r} trains on data in memory; use "
            f"solver={able}, or raise the memory limit"
        )
    return True


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def choose_columns(
    stream: BatchStream, targets: Sequence[str], features: Sequence[str] | None
) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, str]]:
    """Feature and target names from a stream's columns, checked as
    :func:`gradfit.data.select` checks them (the default features from the first rows of the
    first file); and the columns the default feature choice left out, with why."""
    columns = list(stream.columns)
    tnames = tuple(expand_names(targets, columns))
    if not tnames:
        raise DataError(f"{stream.source}: no target column given; name at least one target column")
    stream.check_columns(tnames, "target")
    if features is None:
        fnames, left_out = stream.column_kinds(tnames)
        return tuple(fnames), tnames, left_out
    fnames = tuple(expand_names(features, columns))
    if not fnames:
        raise DataError(f"{stream.source}: no feature column given; name at least one feature")
    stream.check_columns(fnames, "feature")
    both = [n for n in fnames if n in tnames]
    if both:
        raise DataError(
            f"{stream.source}: column {both[0]!r} is given both as a target and as a feature; "
            "a column can only be one of them"
        )
    twice = sorted(n for n, count in Counter([*tnames, *fnames]).items() if count > 1)
    if twice:
        raise DataError(f"{stream.source}: column {twice[0]!r} is given more than once")
    return fnames, tnames, {}
