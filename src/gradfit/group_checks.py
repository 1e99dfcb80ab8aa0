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
    gradfit version, ``stream``'s layout (its ordered units with their sizes), ``checkpoint``
    (what it would resume from) and ``settings`` (JSON values); a difference is refused on
    every process, one line naming the first and the ranks. Shared by the streamed fit and
    ``--alpha cv`` (:func:`gradfit.cv_fit.fit_cv`)."""
    view = {
        "the gradfit version": __version__,
        "the data": stream.layout(),
        "the checkpoint": checkpoint,
        "the settings": dict(settings),
    }
    agree(group, view, _AGREE_ADVICE)


# Below this many rows per process, an sgd step of a group (one all-gather of the gradient's
# sums) is bound by the collective's latency (~0.1-1 ms over gloo), not by the arithmetic
# (a 4,096-row gradient of 10 features: ~0.1 ms).
_ROWS_PER_PROCESS = 4096


def _warn_small_batches(config: SolverConfig, world: int) -> None:
    """Warn when sgd's global mini-batch, shared among ``world`` processes, leaves each so few
    rows that every step waits on the exchange rather than computes."""
    if registry.get(config.solver).name != "sgd":
        return
    per = config.batch_size / world
    if per >= _ROWS_PER_PROCESS:
        return
    suggested = _ROWS_PER_PROCESS * world
    warnings.warn(
        f"sgd over {world} processes at batch size {config.batch_size} gives each "
        f"{per:g} rows per step, and every step waits on an exchange between the processes: "
        f"the steps are bound by its latency, not by computing; use --batch-size {suggested} "
        f"or more ({_ROWS_PER_PROCESS} rows per process; raise --lr with it), or --solver gd "
        "or lstsq, which exchange once per fit",
        UserWarning,
        stacklevel=3,
    )
