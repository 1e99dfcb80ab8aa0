"""A compiled epoch of mini-batch SGD on rows in memory (numba), for the CPU.

The engine's reference epoch (:func:`gradfit.solvers.minibatch.sgd_epoch`) spends its time in
per-batch overhead: a gather, a standardization, two small matrix products and the update, each
a separate torch call of a few microseconds on a batch of 5 rows. This module runs the same
epoch as one compiled loop over the rows: each row is read once (standardized on the fly,
never copied), its residual computed and its contribution added to the batch gradient, and the
update of :func:`gradfit.solvers.kernels.sgd_update` applied after each batch.

It computes the iterates of the reference path, in the data's dtype, with the same operations
in the same order per element (the reference's matrix products sum in another order, so the
two agree to rounding: float64 iterates to ~1e-12 over epochs, tested). For each batch of rows
``perm[s : s + m]`` (the same ``torch.randperm`` from the same generator), with
``z = (x - mean) / scale`` and ``r = W z + b - y``::

    gW = (2 / (m k)) * sum_rows r z^T        gb = (2 / (m k)) * sum_rows r
    g <- g + weight_decay * p                (weights only)
    v <- g on the first step, momentum * v + g afterwards       (with momentum)
    p <- p - lr * (g + momentum * v  if nesterov else  v)      (v = g without momentum)
    p <- sign(p) * max(|p| - lr * l1, 0)     (weights only, with an L1 part)

Every ``check_every`` steps the mean squared error of the rows since the last check is
compared with ``limit`` (the divergence guard's bound); a non-finite or larger value ends the
epoch at once and is returned as its loss, so that a blow-up at batch 1 is caught within a few
thousand rows rather than after an epoch of inf and NaN.

numba is imported on first use (:func:`available`), not with gradfit: the code lives in
:mod:`gradfit.solvers.numba_epoch`. Its machine code is cached on disk (``cache=True``), so
only the first run on a machine pays the compilation (a few seconds per dtype, see
``benchmarks/bench_small_batch.py``); later processes pay about a second for importing numba
and loading it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["EpochOutcome", "available", "sgd_epoch"]

_KERNEL: Callable[..., tuple[float, int, bool, float]] | None = None
_AVAILABLE: bool | None = None
_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


@dataclass(frozen=True)
class EpochOutcome:
    """What one compiled epoch did: the sum of squared errors over the rows it stepped on
    (float64), how many rows, and, when a divergence check stopped it early, the mean squared
    error of the last window of rows (``window_mse``, else None)."""

    sse: float
    rows: int
    window_mse: float | None


def available() -> bool:
    """Whether the compiled kernel can run here: numba imports (the first call imports it and
    loads the cached machine code, or compiles it); False, for good, when it does not."""
    global _AVAILABLE
    if _AVAILABLE is None:
        try:
            _compile()
            _AVAILABLE = True
        except ImportError:  # numba missing, or built for another NumPy
            _AVAILABLE = False
    return _AVAILABLE


def _compile() -> Callable[..., tuple[float, int, bool, float]]:
    """The compiled kernel (imports numba and loads or compiles the machine code)."""
    global _KERNEL
    if _KERNEL is None:
        from gradfit.solvers import numba_epoch

        _KERNEL = numba_epoch.sgd_epoch
    return _KERNEL


def sgd_epoch(
    X: torch.Tensor,
    Y: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    velocity_w: torch.Tensor | None,
    velocity_b: torch.Tensor | None,
    perm: torch.Tensor | None,
    mean: torch.Tensor,
    scale: torch.Tensor,
    *,
    lr: float,
    momentum: float,
    nesterov: bool,
    weight_decay: float,
    l1: float,
    standardize: bool,
    fit_intercept: bool,
    batch_size: int,
    check_every: int,
    limit: float,
) -> tuple[EpochOutcome, torch.Tensor | None, torch.Tensor | None]:
    """One epoch over X (n, d), Y (n, k) (contiguous CPU tensors of one floating dtype) in
    the order ``perm`` (n,) int64 (None: row order), updating ``weight`` (k, d) and ``bias``
    (k,) (contiguous, the data's dtype) in place. ``velocity_w``/``velocity_b``: the previous
    velocities (None before the first step); ``mean``/``scale`` (d,): the standardization.
    ``l1`` is per unit step (the threshold is ``lr * l1``), as in ``sgd_update``.

    Returns the :class:`EpochOutcome` and the velocities after the epoch (None without
    momentum, or for the bias without an intercept)."""
    kernel = _compile()
    dt = _NUMPY_DTYPES[X.dtype]
    n, d = X.shape
    k = Y.shape[1]
    B = max(1, min(batch_size, n)) if n else 1
    last = n - (n // B) * B if n else B
    with_momentum = momentum != 0
    vW = velocity_w if velocity_w is not None else torch.zeros_like(weight)
    vb = velocity_b if velocity_b is not None else torch.zeros_like(bias)
    sse, rows, aborted, window = kernel(
        X.numpy(),
        Y.numpy(),
        perm.numpy() if perm is not None else np.zeros(0, dtype=np.int64),
        perm is not None,
        weight.numpy(),
        bias.numpy(),
        vW.numpy(),
        vb.numpy(),
        velocity_w is not None,
        velocity_b is not None,
        mean.to(X.dtype).contiguous().numpy(),
        scale.to(X.dtype).contiguous().numpy(),
        standardize,
        fit_intercept,
        B,
        dt(2.0 / (B * k)),
        dt(2.0 / ((last or B) * k)),
        dt(lr),
        dt(momentum),
        nesterov,
        dt(weight_decay),
        dt(lr * l1),
        max(1, check_every),
        float(limit),
        np.empty((k, d), dtype=dt),
        np.empty(k, dtype=dt),
        np.empty(d, dtype=dt),
        np.empty(k, dtype=dt),
    )
    outcome = EpochOutcome(sse=float(sse), rows=int(rows), window_mse=window if aborted else None)
    if not with_momentum or rows == 0:
        return outcome, velocity_w, velocity_b
    return outcome, vW, (vb if fit_intercept else velocity_b)
