"""The processes of a torchrun group, checked before a streamed job: that every process sees
the same job (:func:`agree_on_views`: the gradfit version, the data's layout, the checkpoint,
the settings; shared by the streamed fit and ``--alpha cv``), and guidance when sgd's
mini-batch leaves each process too few rows per step (:func:`_warn_small_batches`)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from gradfit._version import __version__
from gradfit.checkpoint import checkpoint_identity
from gradfit.data import BatchStream
from gradfit.settings import CheckpointSettings, ReadSettings, RunSettings
from gradfit.solvers import registry
from gradfit.solvers.collective import Communicator, agree
from gradfit.solvers.config import SolverConfig

__all__ = ["agree_on_views"]


# What to do when the processes of a group see different things (gradfit.solvers.collective.agree).
_AGREE_ADVICE = {
    "the gradfit version": "install the same gradfit on every node",
    "the data": "every process must see the same files: put them on a file system every node "
    "shares, or the same copy on every node",
    "the columns": "every process must see the same files: put them on a file system every "
    "node shares, or the same copy on every node",
    "the checkpoint": "rank 0 reads it, and may start on any node (c10d rendezvous): put the "
    "checkpoint on a file system every node shares, or the same copy on every node",
    "the settings": "start every process with the same command line",
}


def _agree_on_the_job(
    group: Communicator,
    stream: BatchStream,
    config: SolverConfig,
    run: RunSettings,
    reading: ReadSettings,
    checkpointing: CheckpointSettings,
    targets: Sequence[str] | None,
    features: Sequence[str] | None,
) -> None:
    """Every process's view of the job, compared (:func:`~gradfit.solvers.collective.agree`):
    the ordered units of the data with their sizes, the checkpoint it would resume from, the
    settings. A difference is refused on every process, one line naming it and the ranks
    (ranks that fit different rows would otherwise return a model of fewer rows, silently)."""
    checkpoint = checkpointing.checkpoint
    agree_on_views(
        group,
        stream,
        {
            **config.as_dict(),
            "targets": list(targets or ()),
            "features": None if features is None else list(features),
            "seed": run.seed,
            "dtype": str(run.dtype),
            "batch_rows": reading.batch_rows,
            "shuffle_buffer": reading.shuffle_buffer,
            "checkpoint": None if checkpoint is None else str(checkpoint),
            "resume": checkpointing.resume,
        },
        checkpoint_identity(checkpoint)
        if checkpoint is not None and checkpointing.resume
        else "none",
    )


def agree_on_views(
    group: Communicator, stream: BatchStream, settings: Mapping[str, Any], checkpoint: str = "none"
) -> None:
    """Every process's view of a job compared (:func:`~gradfit.solvers.collective.agree`): the
    gradfit version, ``stream``'s layout (its ordered units with their sizes) and columns (its
    first file's header), ``checkpoint``
    (what it would resume from) and ``settings`` (JSON values); a difference is refused on
    every process, one line naming the first and the ranks. Shared by the streamed fit and
    ``--alpha cv`` (:func:`gradfit.cv_fit.fit_cv`)."""
    view = {
        "the gradfit version": __version__,
        "the data": stream.layout(),
        # The first file's header: files of the same sizes may hold other columns (a column
        # renamed on one node), which each process would resolve to other features.
        "the columns": list(stream.columns),
        "the checkpoint": checkpoint,
        "the settings": dict(settings),
    }
    agree(group, view, _AGREE_ADVICE)


# Below this many values per process per step (rows x (features + 1)), an sgd step of a group
# takes less time to compute than its exchange (one all-gather of the gradient's sums over gloo)
# takes: measured by benchmarks/bench_sgd_exchange.py on a 2-core machine under load (exchange
# 0.6-1.1 ms; the arithmetic equals it at about 9,000-19,000 rows per process for 10 features,
# 9,000 for 30, 4,300 for 100, 1,300 for 300 and 530-640 for 1,000: 1e5 to 6e5 values, about
# 400,000 from 30 features up).
_VALUES_PER_PROCESS = 400_000


def _warn_small_batches(config: SolverConfig, world: int, features: int) -> None:
    """Warn when sgd's global mini-batch, shared among ``world`` processes, leaves each so few
    rows of its ``features`` columns that every step waits on the exchange rather than
    computes (:data:`_VALUES_PER_PROCESS`)."""
    if registry.get(config.solver).name != "sgd":
        return
    per = config.batch_size / world
    width = features + 1
    if per * width >= _VALUES_PER_PROCESS:
        return
    rows = -(-_VALUES_PER_PROCESS // width)
    suggested = -(-rows * world // 1024) * 1024  # rounded up to a multiple of 1,024
    warnings.warn(
        f"sgd over {world} processes at batch size {config.batch_size} gives each "
        f"{per:g} rows of {features} features per step, whose arithmetic takes less time than "
        "the step's exchange between the processes: the steps are bound by its latency, not "
        f"by computing; use --batch-size {suggested} or more (about {rows:,} rows per process "
        f"at {features} features; raise --lr with it), or --solver gd or lstsq, which exchange "
        "once per fit",
        UserWarning,
        stacklevel=3,
    )
