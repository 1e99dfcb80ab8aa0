"""The training engine: full-batch descent (``gd``) and mini-batch SGD (``sgd``).

Both minimise the objective of :class:`~gradfit.solvers.config.SolverConfig` over parameters of
the *internal* features ``Z = (X - mean) / scale`` (the identity map when ``standardize=False``),
and report coefficients in the original units.

An epoch composes three pieces, each replaceable on its own:

* a **gradient source**: the sufficient statistics (``gd``: one step per epoch at O(d² k),
  :meth:`SufficientStats.gradient`), or mini-batches of rows (``sgd``: a permutation of the
  rows per epoch from the state's generator, :func:`gradfit.losses.squared_error_gradient` on
  consecutive slices of it);
* the **pure update** :func:`gradfit.solvers.kernels.sgd_update` (momentum, Nesterov, the ridge
  part as weight decay, the L1 part as a proximal step), as ``torch.optim.SGD``; or, for gd
  with its defaults (an automatic step, no momentum, schedule or L1 part), **conjugate
  gradients** on the statistics (:class:`_ConjugateGradient`: ~sqrt(cond) epochs, not ~cond);
* for sgd, an **epoch kernel** from :data:`EPOCH_KERNELS` (:func:`epoch_kernel`): a compiled
  loop over the rows (:mod:`gradfit.solvers.compiled`) on the CPU, the torch loop
  (:func:`_sgd_epoch`, the reference) everywhere else, with the same iterates;
* the **guards** of :mod:`gradfit.solvers.guards` (divergence, the tol plateau, early stopping),
  kept in the :class:`~gradfit.solvers.state.TrainState` so that a saved state resumes exactly.

Divergence is never hidden: a non-finite loss, or one ``divergence_factor`` times above the
starting loss, stops training, restores the last good weights and raises
:class:`~gradfit.errors.DivergenceError` with the stable step bound computed from the data and
the :class:`~gradfit.solvers.result.FitResult` of the last good epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import torch

from gradfit.errors import DivergenceError, GradfitError, ValidationError
from gradfit.losses import penalty, squared_error_gradient
from gradfit.scaling import Standardizer
from gradfit.solvers.collective import LOCAL, Communicator
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.guards import LOSS_RESOLUTION, DivergenceGuard, EarlyStopping, PlateauRule
from gradfit.solvers.kernels import sgd_update
from gradfit.solvers.result import FitResult
from gradfit.solvers.rows import holdout_mask, holdout_seed, resolve_seed
from gradfit.solvers.state import TrainState
from gradfit.solvers.stats import SufficientStats, batch_lipschitz, hessian_lipschitz

__all__ = [
    "EPOCH_KERNELS",
    "LOSS_FLOOR",
    "AlignedData",
    "Checkpointer",
    "EpochData",
    "EpochInfo",
    "EpochKernel",
    "FitResult",
    "PlateauRule",
    "StreamPasses",
    "TensorData",
    "TrainState",
    "epoch_kernel",
    "feature_scaler",
    "fit_gd",
    "fit_sgd",
    "fit_stream",
    "init_state",
    "init_state_from_stats",
    "max_row_norm2",
    "method_name",
    "needs_row_norm",
    "result_of",
    "run_epochs",
    "run_on",
    "train",
    "uses_conjugate_gradient",
]

LOSS_FLOOR = 1e-3  # the tol rule's resolution, as a fraction of the targets' variance
_MAX_GD_FEATURES = 4096  # above this, d x d statistics cost more than a pass over the data


@dataclass(frozen=True)
class EpochInfo:
    """What a progress callback receives after each epoch (epoch counted from 1)."""

    epoch: int
    max_epochs: int
    loss: float
    learning_rate: float
    validation_score: float | None = None


Callback = Callable[[EpochInfo], None]


@dataclass(frozen=True)
class _Method:
    """How one engine solver walks the data."""

    full_batch: bool  # one step per epoch (from the statistics) rather than mini-batches
    what: str  # for messages


_METHODS = {
    "gd": _Method(full_batch=True, what="full-batch gradient descent"),
    "sgd": _Method(full_batch=False, what="mini-batch SGD"),
}


def _method(config: SolverConfig) -> _Method:
    method = _METHODS.get(config.solver)
    if method is None:
        raise ValidationError(f"the engine trains {' and '.join(_METHODS)}, not {config.solver!r}")
    return method


# ----------------------------------------------------------------------------- pieces


def feature_scaler(stats: SufficientStats, config: SolverConfig) -> Standardizer:
    """The standardization ``config`` asks for, from the statistics of X (identity when off)."""
    if not config.standardize:
        return Standardizer.identity(stats.zbar.shape[0], device=stats.zbar.device)
    return Standardizer.from_moments(stats.zbar, stats.Szz.diagonal(), center=config.fit_intercept)


def _internal(stats: SufficientStats, scaler: Standardizer) -> SufficientStats:
    return stats.standardized(scaler.mean, scaler.scale)


def _scheduled_lr(lr0: float, epoch: int, config: SolverConfig) -> float:
    if config.schedule == "invscaling":
        return lr0 / float((1.0 + epoch) ** config.power_t)
    if config.schedule == "step":
        return lr0 * config.decay_rate ** (epoch // config.decay_every)
    return lr0


def _objective(state: TrainState, st: SufficientStats) -> float:
    cfg = state.config
    return st.objective(state.weight, state.bias, cfg.alpha, cfg.l1_ratio)


def _update(state: TrainState, gW: torch.Tensor, gb: torch.Tensor, lr: float) -> None:
    """One step of the pure kernel on the weights and (with an intercept) the bias."""
    cfg = state.config
    k = state.weight.shape[0]
    state.velocity_w = sgd_update(
        state.weight,
        gW,
        state.velocity_w,
        lr=lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        weight_decay=2 * cfg.alpha * (1 - cfg.l1_ratio) / k,
        l1=2 * cfg.alpha * cfg.l1_ratio / k,
    )
    if cfg.fit_intercept:
        state.velocity_b = sgd_update(
            state.bias, gb, state.velocity_b, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov
        )


# ----------------------------------------------------------------------------- epochs


def _gd_epoch(state: TrainState, st: SufficientStats, lr: float) -> float:
    """One full-batch step from statistics; returns the objective after the step."""
    gW, gb = st.gradient(state.weight, state.bias)
    _update(state, gW, gb, lr)
    return _objective(state, st)


def uses_conjugate_gradient(config: SolverConfig) -> bool:
    """Whether gd steps by conjugate gradients (when it has the statistics): its default,
    ``learning_rate='auto'`` with no momentum, no schedule and no L1 part. Any of those set
    explicitly gives the plain (heavy-ball, Nesterov, proximal) gradient steps of
    :func:`gradfit.solvers.kernels.sgd_update`, exactly as the tutorial's loop takes them."""
    return (
        _method(config).full_batch
        and config.learning_rate == "auto"
        and not config.momentum
        and config.schedule == "constant"
        and not (config.alpha and config.l1_ratio)
    )


def method_name(config: SolverConfig, from_stats: bool = True) -> str:
    """The algorithm an engine fit with ``config`` runs, in words (model files, results)."""
    if _method(config).full_batch and from_stats and uses_conjugate_gradient(config):
        return "conjugate gradient"
    kind = "gradient descent" if _method(config).full_batch else "mini-batch SGD"
    if config.alpha and config.l1_ratio:
        kind = "proximal " + kind
    if config.momentum:
        kind += " with Nesterov momentum" if config.nesterov else " with heavy-ball momentum"
    return kind


class _ConjugateGradient:
    """Linear conjugate gradients on the objective (a quadratic: its gradient and Hessian come
    from the statistics), each target on its own; :meth:`epoch` takes one step and returns the
    objective after it.

    With ``x = [W_j, b_j]`` (the weights of target j, and its bias with an intercept), gradient
    ``g`` and Hessian ``H = (2/k) M + ridge`` (``M`` the second moment of ``[Z, 1]``, the same
    for every target; ``ridge`` on the weights only)::

        p <- -g                                  first step (steepest descent)
        p <- -g + beta p,  beta = g.Hp / p.Hp    afterwards (p conjugate to the last p)
        x <- x + alpha p,  alpha = -g.p / p.Hp   (the exact minimum along p)

    The direction p is the state's velocity, so that a saved state resumes exactly. In exact
    arithmetic this reaches the optimum within d + 1 steps; in any case it converges at the
    rate ``(sqrt(kappa) - 1) / (sqrt(kappa) + 1)`` per step (kappa the condition number of H):
    ~sqrt(kappa) steps where plain gradient descent needs ~kappa. It never raises the loss
    (each step minimises it along a line). A direction along which the loss does not curve
    (rank-deficient data, or the optimum reached) is dropped: the next step restarts from -g.
    """

    def __init__(self, st: SufficientStats, config: SolverConfig, k: int) -> None:
        self.st = st
        self.fit_intercept = config.fit_intercept
        self.ridge = 2 * config.alpha * (1 - config.l1_ratio) / k
        d = st.zbar.shape[0]
        H = (2.0 / k) * st.second_moment(config.fit_intercept)  # (m, m), m = d (+ 1)
        H[:d, :d] += self.ridge * torch.eye(d, dtype=H.dtype, device=H.device)
        self.H = H
        # The direction this object last stored in a state: (its velocity_w, q, H q), which
        # saves a product per step.
        self._last: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def epoch(self, state: TrainState) -> float:
        W, b = state.weight, state.bias
        d = W.shape[1]
        gW, gb = self.st.gradient(W, b)
        if self.ridge:
            gW = gW + self.ridge * W
        g = torch.cat([gW, gb[:, None]], 1) if self.fit_intercept else gW  # (k, m)
        p = -g
        last = self._direction(state)
        if last is not None:
            q, Hq = last
            qHq = (q * Hq).sum(1)  # (k,): one inner product per target
            beta = torch.where(qHq > 0, (g * Hq).sum(1) / qHq, 0.0)
            p = p + beta[:, None] * q
        Hp = p @ self.H  # (k, m) @ (m, m)
        pHp = (p * Hp).sum(1)
        ok = pHp > 0
        alpha = torch.where(ok, -(g * p).sum(1) / pHp, 0.0)
        W.add_(alpha[:, None] * p[:, :d])
        if self.fit_intercept:
            b.add_(alpha * p[:, d])
        p, Hp = torch.where(ok[:, None], p, 0.0), torch.where(ok[:, None], Hp, 0.0)
        state.velocity_w = p[:, :d].contiguous()
        state.velocity_b = p[:, d].contiguous() if self.fit_intercept else torch.zeros_like(b)
        self._last = (state.velocity_w, p, Hp)
        return _objective(state, self.st)

    def _direction(self, state: TrainState) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The state's direction q (k, m) and H q; None before the first step."""
        vw, vb = state.velocity_w, state.velocity_b
        if vw is None or vb is None:
            return None
        if self._last is not None and self._last[0] is vw:  # the one this object stored
            return self._last[1], self._last[2]
        q = torch.cat([vw, vb[:, None]], 1) if self.fit_intercept else vw
        return q, q @ self.H


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
    n x d allocation to fault in), and X itself is never modified."""

    X: torch.Tensor  # (n, d)
    Y: torch.Tensor  # (n, k)

    def batches(
        self, generator: torch.Generator, batch_size: int, shuffle: bool
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        X, Y = self.X, self.Y
        n, d = X.shape
        B = min(batch_size, n)
        perm = torch.randperm(n, generator=generator).to(X.device) if shuffle else None
        zbuf = torch.empty(B, d, dtype=X.dtype, device=X.device)
        ybuf = torch.empty(B, Y.shape[1], dtype=Y.dtype, device=Y.device)
        for start in range(0, n, B):
            m = min(B, n - start)
            zb, yb = zbuf[:m], ybuf[:m]
            if perm is not None:
                rows = perm[start : start + m]
                torch.index_select(X, 0, rows, out=zb)
                torch.index_select(Y, 0, rows, out=yb)
            else:
                zb.copy_(X[start : start + m])
                yb.copy_(Y[start : start + m])
            yield zb, yb


def _sgd_epoch(
    state: TrainState, data: EpochData, lr: float, batch_size: int, shuffle: bool
) -> float:
    """One pass of mini-batch steps over ``data`` (the reference epoch, any device); returns
    the mean batch objective (the mean squared error over every row seen during the epoch,
    plus the penalty after it). Every :func:`_check_every` steps the mean squared error of the
    rows since the last check is compared with the divergence guard's bound: a non-finite or
    larger one ends the epoch at once and is its loss (see :func:`_window_limit`)."""
    cfg = state.config
    k = state.weight.shape[0]
    mean, scale = state.scaler.mean, state.scaler.scale
    total = torch.zeros((), dtype=torch.float64, device=state.weight.device)
    rows = 0
    every, limit = _check_every(batch_size), _window_limit(state)
    checked, checked_rows = 0.0, 0
    for steps, (zb, yb) in enumerate(data.batches(state.generator, batch_size, shuffle), 1):
        if cfg.standardize:
            zb.sub_(mean.to(zb.dtype)).div_(scale.to(zb.dtype))
        sse, gW, gb = squared_error_gradient(zb, yb, state.weight, state.bias)
        total += sse
        rows += zb.shape[0]
        _update(state, gW, gb, lr)
        if steps % every == 0 and rows > checked_rows:
            now = float(total)
            window = (now - checked) / ((rows - checked_rows) * k)
            if not window <= limit:  # also NaN: a blow-up, caught within the epoch
                return window + penalty(state.weight, cfg.alpha, cfg.l1_ratio, k)
            checked, checked_rows = now, rows
    return float(total) / (max(rows, 1) * k) + penalty(state.weight, cfg.alpha, cfg.l1_ratio, k)


_CHECK_ROWS = 4096  # the divergence check within an epoch: about every this many rows


def _check_every(batch_size: int) -> int:
    """Steps between two divergence checks within an epoch (every step for large batches)."""
    return max(1, _CHECK_ROWS // max(batch_size, 1))


def _window_limit(state: TrainState) -> float:
    """The divergence guard's bound on a loss (``factor`` times its reference), applied within
    an epoch to the mean squared error of the rows since the last check."""
    guard = state.divergence
    if guard.reference is None or not math.isfinite(guard.reference):
        return math.inf
    return guard.factor * max(guard.reference, 1e-300)


def _compiled_sgd_epoch(
    state: TrainState, data: EpochData, lr: float, batch_size: int, shuffle: bool
) -> float:
    """:func:`_sgd_epoch` as one compiled loop over rows in memory
    (:func:`gradfit.solvers.compiled.sgd_epoch`): the same permutation from the same
    generator, the same update, the same checks within the epoch."""
    from gradfit.solvers import compiled

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
        weight_decay=2 * cfg.alpha * (1 - cfg.l1_ratio) / k,
        l1=2 * cfg.alpha * cfg.l1_ratio / k,
        standardize=cfg.standardize,
        fit_intercept=cfg.fit_intercept,
        batch_size=batch_size,
        check_every=_check_every(batch_size),
        limit=_window_limit(state),
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
    shuffle) -> loss`` (see :func:`_sgd_epoch`, the reference), with what it can run on.

    The engine takes the first kernel of :data:`EPOCH_KERNELS` that :meth:`accepts` the
    epoch; the torch reference accepts every epoch, so it is the fallback (CUDA tensors, a
    stream of files, numba missing, epochs too short to repay a compiled kernel's one-time
    cost). A new kernel (a fused GPU one, a C++ one) is one entry."""

    name: str
    run: EpochRun
    devices: frozenset[str] | None = None  # torch device types it runs on (None: any)
    dtypes: frozenset[torch.dtype] | None = None  # data dtypes it handles (None: any)
    rows_in_memory: bool = False  # needs contiguous rows in memory (TensorData)
    # Worth its one-time cost (import, loading machine code) from this many steps, or this
    # many rows, per epoch (0, 0: always).
    min_steps: int = 0
    min_rows: int = 0
    available: Callable[[], bool] = lambda: True

    def accepts(self, state: TrainState, data: EpochData, batch_size: int) -> bool:
        weight = state.weight
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


def _compiled_available() -> bool:
    from gradfit.solvers import compiled

    return compiled.available()


EPOCH_KERNELS: tuple[EpochKernel, ...] = (
    EpochKernel(
        name="numba",
        run=_compiled_sgd_epoch,
        devices=frozenset({"cpu"}),
        dtypes=frozenset({torch.float32, torch.float64}),
        rows_in_memory=True,
        # numba's first use in a process costs about a second (import, loading the cached
        # machine code); the torch loop costs ~30 us a step and is 2x slower than the
        # compiled one on large batches: below ~1000 steps and ~65,000 rows an epoch, short
        # fits would pay more than they gain.
        min_steps=1024,
        min_rows=1 << 16,
        available=_compiled_available,
    ),
    EpochKernel(name="torch", run=_sgd_epoch),
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


def _parallel_sgd_epoch(
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
        _update(state, gW, gb, lr)
        total += float(summed[kd + k])
        rows += int(m_all)
    return total / (max(rows, 1) * k) + penalty(state.weight, cfg.alpha, cfg.l1_ratio, k)


# ----------------------------------------------------------------------------- driver


def init_state(
    X: torch.Tensor,
    Y: torch.Tensor,
    config: SolverConfig,
    *,
    random_state: int | None = None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    stats: SufficientStats | None = None,
) -> TrainState:
    """Scaling, step size, guards and starting point (zeros, or ``weight``/``bias`` in
    original units). ``stats``: the :class:`SufficientStats` of (X, Y) when already computed."""
    stats = stats if stats is not None else SufficientStats.compute(X, Y)
    max_row = None
    if not _method(config).full_batch:
        max_row = _max_row_norm2(X, feature_scaler(stats, config), config)
    return init_state_from_stats(
        stats,
        config,
        dtype=X.dtype,
        random_state=random_state,
        weight=weight,
        bias=bias,
        max_row_norm2=max_row,
    )


def init_state_from_stats(
    stats: SufficientStats,
    config: SolverConfig,
    *,
    dtype: torch.dtype = torch.float64,
    random_state: int | None = None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    max_row_norm2: float | None = None,
) -> TrainState:
    """:func:`init_state` from the data's statistics alone (a stream's first pass).

    ``dtype`` is the data's (sgd's iterates live in it); ``max_row_norm2`` the largest squared
    norm of a standardized row ``[z_i, 1]`` (see :func:`max_row_norm2`), which sgd's automatic
    step needs (and only it)."""
    method = _method(config)
    d, k = stats.zbar.shape[0], stats.ybar.shape[0]
    device = stats.zbar.device
    scaler = feature_scaler(stats, config)
    zst = _internal(stats, scaler)
    L = hessian_lipschitz(zst, config.fit_intercept, k)
    L += 2 * config.alpha * (1 - config.l1_ratio) / k  # the ridge part is smooth too
    L = max(L, 1e-300)
    if method.full_batch:
        stable = 2.0 / L
        auto = 1.0 / L
    else:
        if max_row_norm2 is None:
            raise ValidationError("sgd's step bound needs the largest row norm (max_row_norm2)")
        LB = max(batch_lipschitz(L, max_row_norm2, stats.n, config.batch_size, k), L)
        stable = 2.0 / LB
        auto = 0.5 / LB
    if config.momentum:
        auto *= 1 - config.momentum
    lr0 = auto if config.learning_rate == "auto" else float(config.learning_rate)
    # gd's iterates live in float64 (its statistics are float64); sgd's in the data's dtype.
    wdtype = torch.float64 if method.full_batch else dtype
    if weight is not None and bias is not None:
        w0, b0 = scaler.rescale(weight.to(device).double(), bias.to(device).double())
        if not config.fit_intercept:
            b0 = torch.zeros_like(b0)
    else:
        w0 = torch.zeros(k, d, dtype=torch.float64, device=device)
        b0 = torch.zeros(k, dtype=torch.float64, device=device)
    generator = torch.Generator().manual_seed(resolve_seed(random_state))
    start = zst.objective(w0, b0, config.alpha, config.l1_ratio)
    return TrainState(
        config=config,
        scaler=scaler,
        weight=w0.to(wdtype).contiguous(),
        bias=b0.to(wdtype).contiguous(),
        learning_rate=lr0,
        stable_lr=stable,
        lipschitz=L,
        generator=generator,
        divergence=DivergenceGuard(
            factor=config.divergence_factor,
            stable_lr=stable,
            monotone=method.full_batch and not config.momentum,
            reference=start,
            previous=start,
        ),
        plateau=PlateauRule(
            tol=config.tol if config.tol is not None else 0.0,
            patience=config.n_iter_no_change,
            floor=LOSS_FLOOR * zst.target_scale(config.fit_intercept),
            # Full-batch iterates do not fluctuate: a loss above the best is momentum
            # overshooting (still moving), not a plateau.
            deterministic=method.full_batch,
        ),
    )


def needs_row_norm(config: SolverConfig) -> bool:
    """Whether :func:`init_state_from_stats` needs ``max_row_norm2`` (mini-batch solvers)."""
    return not _method(config).full_batch


def _max_row_norm2(X: torch.Tensor, scaler: Standardizer, config: SolverConfig) -> float:
    return max_row_norm2(X, scaler) + (1.0 if config.fit_intercept else 0.0)


# A chunk's float64 copy: 2 MiB (200,000 x 20 in 3.8 ms; 5.5 ms with 512 KiB chunks)
_ROW_NORM_ELEMENTS = 1 << 18


def max_row_norm2(X: torch.Tensor, scaler: Standardizer) -> float:
    """The largest squared norm of a standardized row of X (n, d); 0 for no rows. Add 1 for the
    intercept's column of ones. Each row is standardized in X's dtype and its squares summed in
    float64, a cache-sized chunk at a time."""
    if X.shape[0] == 0:
        return 0.0
    mean, scale = scaler.mean.to(X.dtype), scaler.scale.to(X.dtype)
    rows = max(1, _ROW_NORM_ELEMENTS // max(X.shape[1], 1))
    best = torch.zeros((), dtype=torch.float64, device=X.device)
    for chunk in torch.split(X, rows):
        z = torch.sub(chunk, mean).div_(scale).double()
        best = torch.maximum(best, z.square_().sum(1).max())
    return float(best)


def run_epochs(
    state: TrainState,
    X: torch.Tensor,
    Y: torch.Tensor,
    n_epochs: int,
    *,
    stop_early: bool = True,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    callback: Callback | None = None,
    stats: SufficientStats | None = None,
    kernels: tuple[EpochKernel, ...] = EPOCH_KERNELS,
) -> bool:
    """Run up to ``n_epochs`` epochs on rows in memory (see :func:`run_on`). ``stats``
    (optional) are the :class:`SufficientStats` of (X, Y), when the caller already has them
    (``gd`` then makes no pass over the data at all); ``kernels``: sgd's epoch kernels to
    choose from (:func:`epoch_kernel`)."""
    full_batch = _method(state.config).full_batch
    if full_batch and X.shape[1] <= _MAX_GD_FEATURES and stats is None:
        stats = SufficientStats.compute(X, Y)
    return run_on(
        state,
        TensorData(X, Y),
        n_epochs,
        stop_early=stop_early,
        stats=stats if full_batch and X.shape[1] <= _MAX_GD_FEATURES else None,
        validation=None if validation is None else SufficientStats.compute(*validation),
        callback=callback,
        n_rows=X.shape[0],
        kernels=kernels,
    )


def run_on(
    state: TrainState,
    data: EpochData | None,
    n_epochs: int,
    *,
    stop_early: bool = True,
    stats: SufficientStats | None = None,
    validation: SufficientStats | None = None,
    callback: Callback | None = None,
    n_rows: int | None = None,
    comm: Communicator = LOCAL,
    checkpoint: Checkpointer | None = None,
    kernels: tuple[EpochKernel, ...] = EPOCH_KERNELS,
) -> bool:
    """Run up to ``n_epochs`` epochs from ``state`` (updated in place). Returns ``converged``:
    True when the stopping rule ended training before ``n_epochs``: ``n_iter_no_change``
    epochs in a row without a new best training loss lower than the best by more than
    ``tol * max(best, 1e-3 * var(Y))`` (relative, down to 0.1% of the targets' variance); for
    ``gd`` also not above the best by more than that (momentum overshoot is not a plateau), and
    within ``tol`` of the optimum computed from the statistics (a slow crawl on an
    ill-conditioned problem is not the optimum). With early stopping: without a validation R²
    above the best by more than ``tol``; the weights of the best validation epoch are kept.

    ``gd`` steps from ``stats`` (the training rows' :class:`SufficientStats`) when given, and
    makes no pass over ``data`` then; otherwise it takes full-batch steps over ``data``
    (``n_rows`` rows). ``sgd`` steps on ``data``'s mini-batches. ``validation``: the statistics
    of held-out rows (early stopping).

    Full-batch ``gd`` without momentum decreases the loss at every step whenever the step is
    below the stable bound; a loss that rises while the step is above it is divergence, raised
    at once rather than mistaken for a plateau by the tol rule.

    ``comm``: with a group of several processes, sgd takes synchronous data-parallel steps
    (``data`` must be an :class:`AlignedData` shard, ``n_rows`` the rows of all shards); gd's
    statistics are already the group's, so its steps need no communication. ``checkpoint``:
    offered the state after every epoch (see :class:`Checkpointer`). ``kernels``: the epoch
    kernels to choose sgd's from (:func:`epoch_kernel`; tests pin the torch reference)."""
    cfg = state.config
    method = _method(cfg)
    zst = None if stats is None or not method.full_batch else _internal(stats, state.scaler)
    batch = (n_rows or 1) if method.full_batch else cfg.batch_size
    epoch: Callable[[float], float]
    if zst is not None and uses_conjugate_gradient(cfg):
        cg = _ConjugateGradient(zst, cfg, state.weight.shape[0])
        epoch = lambda lr: cg.epoch(state)  # noqa: E731
    elif zst is not None:
        internal = zst
        epoch = lambda lr: _gd_epoch(state, internal, lr)  # noqa: E731
    elif data is not None and comm.world > 1:
        if method.full_batch or not hasattr(data, "aligned_batches"):
            raise ValidationError("data-parallel training needs gd's statistics or sgd on a shard")
        shard: AlignedData = data  # type: ignore[assignment]
        total_rows = int(n_rows or 0)
        epoch = lambda lr: _parallel_sgd_epoch(  # noqa: E731
            state, shard, lr, batch, comm, total_rows
        )
    elif data is not None:
        steps = data
        kernel = epoch_kernel(state, data, batch, kernels)
        epoch = lambda lr: kernel.run(state, steps, lr, batch, not method.full_batch)  # noqa: E731
    else:
        raise ValidationError("run_on needs data to step on, or gd's statistics")
    val_st = None
    if validation is not None:
        val_st = _internal(validation, state.scaler)
        if state.early is None:
            state.early = EarlyStopping(tol=cfg.tol or 0.0, patience=cfg.n_iter_no_change)
    optimum = None
    if stop_early and cfg.tol is not None and zst is not None and not cfg.l1_ratio * cfg.alpha:
        ridge = cfg.alpha * (1 - cfg.l1_ratio)
        optimum = float(zst.optimum(cfg.fit_intercept, ridge).mean())
    good = (state.weight.clone(), state.bias.clone())
    for _ in range(n_epochs):
        lr = _scheduled_lr(state.learning_rate, state.epoch, cfg)
        loss = epoch(lr)
        state.epoch += 1
        finite = bool(torch.isfinite(state.weight).all())
        if state.divergence.diverged(loss, lr, finite=finite):
            _diverged(state, good, loss, lr, method)
        good = (state.weight.clone(), state.bias.clone())
        state.loss_curve.append(loss)
        score = None
        stop = False
        if val_st is not None and state.early is not None:
            score = float(val_st.r2(state.weight, state.bias).mean())
            state.validation_scores.append(score)
            stop = state.early.update(score, state.epoch)
            if state.early.best_epoch == state.epoch:  # kept however training stops
                state.best_weight, state.best_bias = good
        if callback is not None:
            callback(EpochInfo(state.epoch, n_epochs, loss, lr, score))
        if not stop_early or cfg.tol is None:
            if checkpoint is not None:
                checkpoint.save(state, False, False)
            continue
        if score is not None:
            if stop:
                _keep_best(state)
                return True
        elif state.plateau.update(loss):
            tol = max(cfg.tol, LOSS_RESOLUTION)
            if optimum is None or loss - optimum <= tol * max(loss, state.plateau.floor):
                return True
            state.plateau.stalled = 0  # a slow crawl, not the optimum: keep going
        if checkpoint is not None:
            checkpoint.save(state, False, False)
    if val_st is not None:
        _keep_best(state)
    return False


def _diverged(
    state: TrainState,
    good: tuple[torch.Tensor, torch.Tensor],
    loss: float,
    lr: float,
    method: _Method,
) -> None:
    """Back to the last good epoch (weights, and the epoch count that goes with them), then
    raise :class:`DivergenceError` with the result of that epoch."""
    cfg = state.config
    what = method.what + ("" if method.full_batch else f" at batch size {cfg.batch_size}")
    reason = state.divergence.reason(state.epoch, loss, lr, what)
    bad_epoch = state.epoch
    state.weight.copy_(good[0])
    state.bias.copy_(good[1])
    state.velocity_w = state.velocity_b = None
    state.epoch -= 1
    raise DivergenceError(
        f"{reason}. Use a smaller learning rate, learning_rate='auto', or standardize the "
        "features; the last good weights were kept",
        stable_lr=state.stable_lr,
        epoch=bad_epoch,
        reason=reason,
        result=result_of(state, False),
    )


def _keep_best(state: TrainState) -> None:
    if state.best_weight is not None and state.best_bias is not None:
        state.weight.copy_(state.best_weight)
        state.bias.copy_(state.best_bias)


def train(
    X: torch.Tensor,
    Y: torch.Tensor,
    config: SolverConfig,
    *,
    random_state: int | None = None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    callback: Callback | None = None,
    state: TrainState | None = None,
) -> FitResult:
    """Fit ``Y ≈ X @ weight.T + bias`` with ``config.solver`` ('gd' or 'sgd').

    Parameters
    ----------
    X : (n, d) floating tensor, finite (validated by the caller)
    Y : (n, k) tensor of the same dtype and device
    config : SolverConfig
    random_state : seed of the shuffling and validation split (None: fresh entropy)
    weight, bias : optional start (warm start), in original units
    callback : called with an :class:`EpochInfo` after every epoch
    state : continue this :class:`TrainState` (its scaling, step and generator) for
        ``config.max_epochs`` more epochs instead of starting afresh; ``config`` must shape
        the epochs as the state's own does (``partial_fit``)

    Raises
    ------
    DivergenceError
        with ``stable_lr`` and ``result``, the :class:`FitResult` of the last good epoch.
    """
    validation = None
    X_train, Y_train = X, Y
    if config.early_stopping:
        # The row rule of every road (gradfit.solvers.rows): the rows in memory are file 0,
        # counted from 1; the training rows keep their order, as a stream visits them.
        if random_state is None:
            random_state = resolve_seed(None)  # one draw for the split and the shuffling
        n = X.shape[0]
        held = torch.from_numpy(
            holdout_mask(0, 1, n, config.validation_fraction, holdout_seed(random_state))
        ).to(X.device)
        n_val = int(held.sum())
        if n_val < 1 or n - n_val < 2:
            raise ValidationError(
                f"early_stopping with validation_fraction={config.validation_fraction:g} holds "
                f"out {n_val} of {n} rows (each row with that probability, by a seeded hash of "
                "its position), and needs at least 1 held out and 2 to train on; change "
                "validation_fraction or random_state, or add rows"
            )
        validation = (X[held], Y[held])
        keep = ~held
        X_train, Y_train = X[keep], Y[keep]
    stats = SufficientStats.compute(X_train, Y_train)  # one pass, shared by every step below
    if state is None:
        state = init_state(
            X_train,
            Y_train,
            config,
            random_state=random_state,
            weight=weight,
            bias=bias,
            stats=stats,
        )
    else:
        state.config = config
    converged = run_epochs(
        state,
        X_train,
        Y_train,
        config.max_epochs,
        validation=validation,
        callback=callback,
        stats=stats,
    )
    return result_of(state, converged, stats=None if validation is not None else stats)


def result_of(
    state: TrainState,
    converged: bool,
    stats: SufficientStats | None = None,
    *,
    from_stats: bool | None = None,
) -> FitResult:
    """Coefficients of ``state`` in original units (float64), with its history.
    ``from_stats``: whether gd stepped from the statistics (default: it does in memory up to
    4096 features), which decides its :func:`method_name`."""
    w, b = state.scaler.unscale(state.weight.double(), state.bias.double())
    if from_stats is None:
        from_stats = state.weight.shape[1] <= _MAX_GD_FEATURES
    return FitResult(
        weight=w,
        bias=b,
        loss_curve=tuple(state.loss_curve),
        n_iter=state.epoch,
        converged=converged,
        learning_rate=state.learning_rate,
        stable_lr=state.stable_lr,
        scaler=state.scaler,
        validation_scores=tuple(state.validation_scores) if state.validation_scores else None,
        state=state,
        stats=stats,
        method=method_name(state.config, from_stats),
    )


def _fit(
    X: torch.Tensor,
    Y: torch.Tensor,
    config: SolverConfig,
    *,
    random_state: int | None,
    start: tuple[torch.Tensor, torch.Tensor] | None,
    callback: Callback | None,
    state: TrainState | None = None,
) -> FitResult:
    weight, bias = start if start is not None else (None, None)
    return train(
        X,
        Y,
        config,
        random_state=random_state,
        weight=weight,
        bias=bias,
        callback=callback,
        state=state,
    )


fit_gd = _fit  # the registry's entries: the engine's solvers differ only through _METHODS
fit_sgd = _fit


def fit_stream(
    data: StreamPasses,
    stats: SufficientStats,
    config: SolverConfig,
    *,
    random_state: int | None,
    callback: Callback | None,
    comm: Communicator = LOCAL,
    checkpoint: Checkpointer | None = None,
    validation: SufficientStats | None = None,
) -> FitResult:
    """gd and sgd over a stream (the registry's streaming entry): gd steps from ``stats`` (no
    further pass); sgd makes one more pass for the largest row norm (its step bound), then one
    pass per epoch over ``data.batches``. ``validation``: early stopping's held-out rows, as
    statistics (the validation R² of every epoch comes from them, without a pass).

    With a group of processes (``comm``), ``stats`` are the whole group's and ``data`` this
    process's shard (an :class:`AlignedData`): gd takes identical steps everywhere; sgd
    shuffles its shard with a generator of its own (seeded from ``random_state`` and the rank;
    rank 0's is the single-process one) and steps in sync with the others. ``checkpoint``:
    resume from it, and save to it (see :class:`Checkpointer`)."""
    from gradfit.solvers.collective import guarded

    max_row = None
    if needs_row_norm(config):
        scaler = feature_scaler(stats, config)
        local = guarded(
            comm, lambda: max((max_row_norm2(X, scaler) for X, _ in data.tensors()), default=0.0)
        )
        max_row = max(float(t[0]) for t in comm.gather(torch.tensor([local], dtype=torch.float64)))
        max_row += 1.0 if config.fit_intercept else 0.0
    seed = resolve_seed(random_state)
    if comm.world > 1:
        # One seed for the group (rank 0's), whatever each process drew from fresh entropy.
        seed = int(comm.gather(torch.tensor([seed], dtype=torch.int64))[0][0])
    state = init_state_from_stats(
        stats, config, dtype=data.dtype, random_state=seed, max_row_norm2=max_row
    )
    if comm.rank > 0:
        state.generator.manual_seed((seed + comm.rank * 0x9E3779B97F4A7C15) % (1 << 63))
    converged = False
    resumed = checkpoint.resume(state) if checkpoint is not None else None
    if resumed is not None:
        state, finished, converged = resumed
        if finished:
            return result_of(state, converged, stats=stats, from_stats=True)
    converged = run_on(
        state,
        data,
        config.max_epochs - state.epoch,
        stats=stats,
        callback=callback,
        n_rows=stats.n,
        comm=comm,
        checkpoint=checkpoint,
        validation=validation,
    )
    if checkpoint is not None:
        checkpoint.save(state, True, converged)
    return result_of(state, converged, stats=stats, from_stats=True)
