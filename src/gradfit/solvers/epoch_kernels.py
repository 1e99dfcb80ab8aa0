"""The implementations of an epoch of mini-batch steps, and the choice between them
(:func:`epoch_kernel`): the first of :data:`EPOCH_KERNELS` that accepts the epoch, a compiled
loop over rows in memory (:mod:`gradfit.solvers.compiled`) on the CPU, else the torch reference
(:func:`gradfit.solvers.minibatch.sgd_epoch`), with the same iterates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from gradfit.errors import ValidationError
from gradfit.losses import penalty
from gradfit.solvers import compiled
from gradfit.solvers.interfaces import EpochData, TensorData
from gradfit.solvers.kernels import l1_factor, ridge_factor
from gradfit.solvers.minibatch import check_every, sgd_epoch, window_limit
from gradfit.solvers.state import TrainState

__all__ = ["EPOCH_KERNELS", "EpochKernel", "EpochRun", "compiled_sgd_epoch", "epoch_kernel"]


def compiled_sgd_epoch(
    state: TrainState, data: EpochData, lr: float, batch_size: int, shuffle: bool
) -> float:
    """:func:`~gradfit.solvers.minibatch.sgd_epoch` as one compiled loop over rows in memory
    (:func:`gradfit.solvers.compiled.sgd_epoch`): the same permutation from the same
    generator, the same update, the same checks within the epoch."""
    if not isinstance(data, TensorData):  # EpochKernel.accepts offers it rows in memory only
        raise TypeError(f"the compiled sgd epoch needs rows in memory, got {type(data).__name__}")
    cfg = state.config
    k = state.weight.shape[0]
    X, Y = data.X, data.Y
    perm = torch.randperm(X.shape[0], generator=state.generator) if shuffle else None
    outcome, state.velocity_w, velocity_b = compiled.sgd_epoch(
        X,
        Y,
        state.weight,
        state.bias,
        state.velocity_w,
        state.velocity_b,
        perm,
        state.scaler.mean,
        state.scaler.scale,
        lr=lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        weight_decay=ridge_factor(cfg.alpha, cfg.l1_ratio, k),
        l1=l1_factor(cfg.alpha, cfg.l1_ratio, k),
        standardize=cfg.standardize,
        fit_intercept=cfg.fit_intercept,
        batch_size=batch_size,
        check_every=check_every(batch_size),
        limit=window_limit(state),
    )
    if cfg.fit_intercept:
        state.velocity_b = velocity_b
    pen = penalty(state.weight, cfg.alpha, cfg.l1_ratio, k)
    if outcome.window_mse is not None:
        return outcome.window_mse + pen
    return outcome.sse / (max(outcome.rows, 1) * k) + pen


EpochRun = Callable[[TrainState, EpochData, float, int, bool], float]


@dataclass(frozen=True)
class EpochKernel:
    """One implementation of an epoch of mini-batch steps: ``run(state, data, lr, batch_size,
    shuffle) -> loss`` (see :func:`~gradfit.solvers.minibatch.sgd_epoch`, the reference), with
    what it can run on.

    The engine takes the first kernel of :data:`EPOCH_KERNELS` that :meth:`accepts` the
    epoch; the torch reference accepts every epoch, so it is the fallback (CUDA tensors, a
    stream of files, numba missing, epochs too short to repay a compiled kernel's one-time
    cost). A new kernel (a fused GPU one, a C++ one) is one entry."""

    name: str
    run: EpochRun
    devices: frozenset[str] | None = None  # torch device types it runs on (None: any)
    dtypes: frozenset[torch.dtype] | None = None  # data dtypes it handles (None: any)
    rows_in_memory: bool = False  # needs contiguous rows in memory (TensorData)
    weighted: bool = True  # steps on weighted rows (TensorData with weights)
    # Worth its one-time cost (import, loading machine code) from this many steps, or this
    # many rows, per epoch (0, 0: always).
    min_steps: int = 0
    min_rows: int = 0
    available: Callable[[], bool] = lambda: True

    def accepts(self, state: TrainState, data: EpochData, batch_size: int) -> bool:
        weight = state.weight
        if not self.weighted and isinstance(data, TensorData) and data.w is not None:
            return False
        if self.devices is not None and weight.device.type not in self.devices:
            return False
        if self.dtypes is not None and weight.dtype not in self.dtypes:
            return False
        if self.rows_in_memory:
            if not isinstance(data, TensorData):
                return False
            X, Y = data.X, data.Y
            same = X.dtype == Y.dtype == weight.dtype and X.device == Y.device == weight.device
            plain = not (X.requires_grad or Y.requires_grad)
            if not (same and plain and X.is_contiguous() and Y.is_contiguous()):
                return False
            n = X.shape[0]
            if -(-n // max(batch_size, 1)) < self.min_steps and n < self.min_rows:
                return False
        return self.available()


def compiled_available() -> bool:
    """Whether numba runs here (the first call imports it: see :func:`compiled.available`)."""
    return compiled.available()


EPOCH_KERNELS: tuple[EpochKernel, ...] = (
    EpochKernel(
        name="numba",
        run=compiled_sgd_epoch,
        devices=frozenset({"cpu"}),
        dtypes=frozenset({torch.float32, torch.float64}),
        rows_in_memory=True,
        # numba's first use in a process costs about a second (import, loading the cached
        # machine code); the torch loop costs ~30 us a step and is 2x slower than the
        # compiled one on large batches: below ~1000 steps and ~65,000 rows an epoch, short
        # fits would pay more than they gain.
        min_steps=1024,
        min_rows=1 << 16,
        available=compiled_available,
        # Weighted rows step in the torch loop (the compiled loop takes no weights); rows
        # whose positive weights are all equal are unweighted and keep it.
        weighted=False,
    ),
    EpochKernel(name="torch", run=sgd_epoch),
)


def epoch_kernel(
    state: TrainState,
    data: EpochData,
    batch_size: int,
    kernels: tuple[EpochKernel, ...] = EPOCH_KERNELS,
) -> EpochKernel:
    """The first of ``kernels`` that accepts an epoch of ``batch_size`` steps over ``data``."""
    for kernel in kernels:
        if kernel.accepts(state, data, batch_size):
            return kernel
    raise ValidationError("no epoch kernel accepts this data (the registry lost its fallback)")
