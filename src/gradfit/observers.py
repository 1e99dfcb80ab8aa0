"""Watching a fit as it runs: the one seam for per-epoch reporting.

Every iterative fit (``gd``, ``sgd``; in memory, streamed, under torchrun) calls one callback
after each epoch with an :class:`~gradfit.solvers.interfaces.EpochInfo`: the epoch, the training
loss, the learning rate, the validation R² (with early stopping) and the rows and seconds of the
epoch (its rows per second). An *epoch observer* is such a callback, with a ``close()`` called
once when the fit ends (or fails). :class:`Observers` hands each epoch to several; the command
line's progress bar and log lines (:mod:`gradfit.cli.render`) and TensorBoard
(:class:`TensorBoardObserver`, here) are observers, plugged in at one place: the command line
passes its own to :func:`gradfit.fit` as ``callback``, and :func:`observing` (called by
:func:`gradfit.fit` only) adds TensorBoard's, on rank 0 alone under torchrun.

TensorBoard (``pip install 'gradfit[tensorboard]'``) is imported only when asked for; its
scalars, at step = epoch: ``train/loss``, ``train/learning_rate``, ``train/rows_per_second`` and,
with early stopping, ``validation/r2`` (TensorBoard stores them as float32).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from gradfit.errors import DataError, GradfitError, ValidationError
from gradfit.solvers.interfaces import EpochInfo
from gradfit.storage import as_path, is_remote

__all__ = [
    "TAGS",
    "EpochObserver",
    "Observers",
    "TensorBoardObserver",
    "check_tensorboard",
    "observing",
]

Callback = Callable[[EpochInfo], None]

# The scalars written to TensorBoard, by the EpochInfo field they come from.
TAGS = {
    "loss": "train/loss",
    "learning_rate": "train/learning_rate",
    "rows_per_second": "train/rows_per_second",
    "validation_score": "validation/r2",
}


class EpochObserver(Protocol):
    """Called after every epoch; ``close()`` once at the end (success or failure)."""

    def __call__(self, info: EpochInfo) -> None: ...

    def close(self) -> None: ...


class Observers:
    """Several epoch observers (plain callbacks too, which have no ``close``) as one: each epoch
    goes to each, in order; ``close()`` closes every one that can be closed, even if one fails
    (the first failure is raised after)."""

    def __init__(self, *observers: Callback | None) -> None:
        self.observers: tuple[Callback, ...] = tuple(o for o in observers if o is not None)

    def __call__(self, info: EpochInfo) -> None:
        for observer in self.observers:
            observer(info)

    def close(self) -> None:
        failure: BaseException | None = None
        for observer in self.observers:
            close: Callable[[], Any] | None = getattr(observer, "close", None)
            if close is None:
                continue
            try:
                close()
            except Exception as exc:  # the others are still closed
                failure = failure or exc
        if failure is not None:
            raise failure


def check_tensorboard(directory: str | os.PathLike[str]) -> Path:
    """``directory`` checked before a fit starts: not an existing file (TensorBoard writes new
    event files into a directory, created when missing, and never into another file), and the
    tensorboard package installed (else one line: install the extra). A local directory only:
    ``file://`` is its path; an object-storage URI is refused (as a local path, s3://b/tb was
    the directory ``s3:/b/tb`` in the working directory)."""
    path = as_path(directory)
    if is_remote(path):
        raise DataError(
            f"{directory}: TensorBoard's event files are written to a local directory, not to "
            "object storage; give a local directory (and copy it to the store afterwards)"
        )
    if path.exists() and not path.is_dir():
        raise DataError(
            f"{directory}: exists and is not a directory; TensorBoard's event files go into a "
            "directory (created when missing): give a new or existing directory"
        )
    if importlib.util.find_spec("tensorboard") is None:
        raise GradfitError(
            "--tensorboard (tensorboard_dir=) needs the tensorboard package, an optional "
            "extra: pip install 'gradfit[tensorboard]' (or leave out --tensorboard)"
        )
    return path


class TensorBoardObserver:
    """Each epoch's scalars (:data:`TAGS`) into a new event file in ``directory`` (created),
    through :class:`torch.utils.tensorboard.SummaryWriter`; flushed and closed by ``close()``."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        path = check_tensorboard(directory)
        from torch.utils.tensorboard import SummaryWriter

        try:
            self.writer = SummaryWriter(log_dir=str(path))
        except OSError as exc:
            raise DataError(
                f"{directory}: cannot write TensorBoard's event files there "
                f"({exc.strerror or exc}); give a directory that can be created and written"
            ) from None

    def __call__(self, info: EpochInfo) -> None:
        for field, tag in TAGS.items():
            value = getattr(info, field)
            if value is not None:
                self.writer.add_scalar(tag, float(value), info.epoch)

    def close(self) -> None:
        self.writer.close()


@contextmanager
def observing(
    callback: Callback | None,
    tensorboard_dir: str | os.PathLike[str] | None,
    *,
    iterative: bool,
    solver: str,
    main: bool = True,
) -> Iterator[Callback | None]:
    """The callback a fit calls after each epoch: ``callback`` and, with ``tensorboard_dir``,
    a :class:`TensorBoardObserver` on the main process (``main``: rank 0 of a group; every
    process checks the directory and the package, so that all refuse together), closed when
    the ``with`` block ends. A solver without epochs (``iterative`` False) is refused with
    ``tensorboard_dir``: there would be nothing to write."""
    if tensorboard_dir is None:
        yield callback
        return
    if not iterative:
        raise ValidationError(
            f"--tensorboard (tensorboard_dir=) records each epoch; solver {solver!r} has "
            "none: use gd or sgd, or leave it out"
        )
    if not main:
        check_tensorboard(tensorboard_dir)
        yield callback
        return
    board = TensorBoardObserver(tensorboard_dir)
    try:
        yield Observers(callback, board)
    finally:
        board.close()
