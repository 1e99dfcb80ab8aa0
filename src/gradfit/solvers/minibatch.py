"""Epochs of mini-batch steps (``sgd``): the torch reference (:func:`sgd_epoch`, any device
and any :class:`~gradfit.solvers.interfaces.EpochData`), and synchronous data-parallel steps
over a group of processes (:func:`parallel_sgd_epoch`). The divergence check within an epoch
(:func:`check_every`, :func:`window_limit`) is shared with the compiled epoch
(:mod:`gradfit.solvers.epoch_kernels`)."""

from __future__ import annotations

import math

import torch

from gradfit.errors import GradfitError, ValidationError
from gradfit.losses import penalty, squared_error_gradient
from gradfit.solvers.collective import Communicator
from gradfit.solvers.interfaces import AlignedData, EpochData, weighted_batches
from gradfit.solvers.kernels import update_state
from gradfit.solvers.state import TrainState

__all__ = ["check_every", "parallel_sgd_epoch", "sgd_epoch", "window_limit"]


def sgd_epoch(
    state: TrainState, data: EpochData, lr: float, batch_size: int, shuffle: bool
) -> float:
    """One pass of mini-batch steps over ``data`` (the reference epoch, any device); returns
    the mean batch objective (the mean squared error over every row seen during the epoch,
    plus the penalty after it). Weighted rows (:class:`~gradfit.solvers.interfaces.TensorData`
    with weights scaled to mean 1) weigh their squared errors, in the loss and its gradient.
    Every :func:`check_every` steps the mean squared error of the rows since the last check is
    compared with the divergence guard's bound: a non-finite or larger one ends the epoch at
    once and is its loss (see :func:`window_limit`)."""
    cfg = state.config
    k = state.weight.shape[0]
    mean, scale = state.scaler.mean, state.scaler.scale
    total = torch.zeros((), dtype=torch.float64, device=state.weight.device)
    rows = 0
    every, limit = check_every(batch_size), window_limit(state)
    checked, checked_rows = 0.0, 0
    batches = weighted_batches(data, state.generator, batch_size, shuffle)
    for steps, (zb, yb, wb) in enumerate(batches, 1):
        if cfg.standardize:
            zb.sub_(mean.to(zb.dtype)).div_(scale.to(zb.dtype))
        sse, gW, gb = squared_error_gradient(zb, yb, state.weight, state.bias, wb)
        total += sse
        rows += zb.shape[0]
        update_state(state, gW, gb, lr)
        if steps % every == 0 and rows > checked_rows:
            now = float(total)
            window = (now - checked) / ((rows - checked_rows) * k)
            if not window <= limit:  # also NaN: a blow-up, caught within the epoch
                return window + penalty(state.weight, cfg.alpha, cfg.l1_ratio, k)
            checked, checked_rows = now, rows
    return float(total) / (max(rows, 1) * k) + penalty(state.weight, cfg.alpha, cfg.l1_ratio, k)


_CHECK_ROWS = 4096  # the divergence check within an epoch: about every this many rows


def check_every(batch_size: int) -> int:
    """Steps between two divergence checks within an epoch (every step for large batches)."""
    return max(1, _CHECK_ROWS // max(batch_size, 1))


def window_limit(state: TrainState) -> float:
    """The divergence guard's bound on a loss (``factor`` times its reference), applied within
    an epoch to the mean squared error of the rows since the last check."""
    guard = state.divergence
    if guard.reference is None or not math.isfinite(guard.reference):
        return math.inf
    return guard.factor * max(guard.reference, 1e-300)


def parallel_sgd_epoch(
    state: TrainState,
    data: AlignedData,
    lr: float,
    batch_size: int,
    comm: Communicator,
    n_total: int,
) -> float:
    """One epoch of synchronous data-parallel sgd: ``ceil(n_total / batch_size)`` global steps;
    at each, every process computes the sums of its share of the global batch (gradient times
    rows, squared errors, rows, a failure flag), the sums are added over the group (in rank
    order: bitwise the same everywhere) and every process takes the same step with the mean
    gradient over the global batch (the mathematics of DistributedDataParallel). A failure on
    any process (a bad row in its shard) ends the epoch on every process with that error."""
    cfg = state.config
    k, d = state.weight.shape
    mean, scale = state.scaler.mean, state.scaler.scale
    steps = max(1, math.ceil(n_total / batch_size))
    batches = data.aligned_batches(state.generator, steps)
    kd = k * d
    total = 0.0
    rows = 0
    for _ in range(steps):
        sums = torch.zeros(kd + k + 3, dtype=torch.float64)
        error: BaseException | None = None
        try:
            zb, yb = next(batches)
            m = zb.shape[0]
            if m:
                if cfg.standardize:
                    zb.sub_(mean.to(zb.dtype)).div_(scale.to(zb.dtype))
                sse, gW, gb = squared_error_gradient(zb, yb, state.weight, state.bias)
                sums[:kd] = gW.double().reshape(-1).cpu() * m
                sums[kd : kd + k] = gb.double().cpu() * m
                sums[kd + k] = float(sse)
                sums[kd + k + 1] = m
        except StopIteration:
            error = ValidationError("a shard gave fewer mini-batches than the epoch's steps")
        except (GradfitError, OSError) as exc:
            error = exc
        if error is not None:
            sums.zero_()
            sums[-1] = 1.0
        summed = comm.sum(sums)
        if float(summed[-1]) > 0:
            comm.check(error)
        m_all = float(summed[kd + k + 1])
        if m_all == 0:
            continue
        dev, dt = state.weight.device, state.weight.dtype
        gW = (summed[:kd] / m_all).reshape(k, d).to(device=dev, dtype=dt)
        gb = (summed[kd : kd + k] / m_all).to(device=dev, dtype=dt)
        update_state(state, gW, gb, lr)
        total += float(summed[kd + k])
        rows += int(m_all)
    return total / (max(rows, 1) * k) + penalty(state.weight, cfg.alpha, cfg.l1_ratio, k)
