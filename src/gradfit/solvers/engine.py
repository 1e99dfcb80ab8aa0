"""The training engine: full-batch descent (``gd``) and mini-batch SGD (``sgd``): the starting
state, the loop over epochs and the entry points (:func:`train`, the registry's
:func:`fit_gd`, :func:`fit_sgd` and :func:`fit_stream`).

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
  gradients** on the statistics (:mod:`gradfit.solvers.full_batch`: ~sqrt(cond) epochs, not
  ~cond);
* for sgd, an **epoch kernel** from :data:`~gradfit.solvers.epoch_kernels.EPOCH_KERNELS`
  (:func:`~gradfit.solvers.epoch_kernels.epoch_kernel`): a compiled loop over the rows
  (:mod:`gradfit.solvers.compiled`) on the CPU, the torch loop
  (:func:`gradfit.solvers.minibatch.sgd_epoch`, the reference) everywhere else, with the same
  iterates; the step sizes come from :mod:`gradfit.solvers.step_size`;
* the **guards** of :mod:`gradfit.solvers.guards` (divergence, the tol plateau, early stopping),
  kept in the :class:`~gradfit.solvers.state.TrainState` so that a saved state resumes exactly.

Row weights (``sample_weight``): the objective's mean squared error becomes the weighted one,
``Σ w_i ||e_i||² / (k Σ w_i)``; rows of weight 0 are left out. gd steps from the weighted
statistics, so integer weights give the iterates of the rows repeated that many times (to
rounding). sgd steps on the rows as they are, each row's squared error times its weight scaled
to mean 1 over the training rows (:func:`row_weights`): every step's expected gradient is then
that of the weighted objective, as a step on the repeated rows is, and the optimum is the same;
the iterates are not (an epoch visits each row once, not once per unit of weight). Rows whose
positive weights are all equal step as unweighted rows, bit for bit.

Divergence is never hidden: a non-finite loss, or one ``divergence_factor`` times above the
starting loss, stops training, restores the last good weights and raises
:class:`~gradfit.errors.DivergenceError` with the stable step bound computed from the data and
the :class:`~gradfit.solvers.result.FitResult` of the last good epoch.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import torch

from gradfit.errors import DivergenceError, ValidationError
from gradfit.scaling import Standardizer
from gradfit.solvers.collective import LOCAL, Communicator, guarded
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.epoch_kernels import EPOCH_KERNELS, EpochKernel, epoch_kernel
from gradfit.solvers.full_batch import ConjugateGradient, gd_epoch
from gradfit.solvers.guards import LOSS_RESOLUTION, DivergenceGuard, EarlyStopping, PlateauRule
from gradfit.solvers.interfaces import (
    AlignedData,
    Callback,
    Checkpointer,
    EpochData,
    EpochInfo,
    StreamPasses,
    TensorData,
    weighted_passes,
)
from gradfit.solvers.methods import Method, method_name, method_of, uses_conjugate_gradient
from gradfit.solvers.minibatch import check_every, parallel_sgd_epoch, window_limit
from gradfit.solvers.result import FitResult
from gradfit.solvers.rows import holdout_mask, holdout_seed, resolve_seed
from gradfit.solvers.state import TrainState
from gradfit.solvers.stats import SufficientStats
from gradfit.solvers.step_size import (
    max_row_norm2,
    needs_row_norm,
    row_norm2_bound,
    scheduled_lr,
    step_sizes,
)

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
    "row_weights",
    "run_epochs",
    "run_on",
    "train",
    "uses_conjugate_gradient",
]

# The tol rule's resolution, as a fraction of the targets' variance (their mean square when
# every one is constant: SufficientStats.loss_scale).
LOSS_FLOOR = 1e-3
_MAX_GD_FEATURES = 4096  # above this, d x d statistics cost more than a pass over the data

# The divergence check within an epoch, under the names it had here (tests/test_compiled.py).
_check_every = check_every
_window_limit = window_limit


# ----------------------------------------------------------------------------- the start


def feature_scaler(stats: SufficientStats, config: SolverConfig) -> Standardizer:
    """The standardization ``config`` asks for, from the statistics of X (identity when off)."""
    if not config.standardize:
        return Standardizer.identity(stats.zbar.shape[0], device=stats.zbar.device)
    return Standardizer.from_moments(stats.zbar, stats.Szz.diagonal(), center=config.fit_intercept)


def _internal(stats: SufficientStats, scaler: Standardizer) -> SufficientStats:
    return stats.standardized(scaler.mean, scaler.scale)


def row_weights(sample_weight: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """The weights sgd's steps give the rows: ``sample_weight`` scaled to mean 1 over the rows,
    in the data's ``dtype``; None (unweighted) when there are none or all are equal."""
    if sample_weight is None or not sample_weight.numel():
        return None
    w = sample_weight.double()
    if bool((w == w[0]).all()):
        return None
    return (w * (w.shape[0] / w.sum())).to(dtype)


def stream_row_scale(stats: SufficientStats) -> float:
    """The factor that scales a stream's row weights to mean 1 over its training rows (as
    :func:`row_weights` does in memory): rows / total weight of the weighted ``stats``."""
    return float(stats.n) / stats.total if stats.weighted and stats.total > 0 else 1.0


def init_state(
    X: torch.Tensor,
    Y: torch.Tensor,
    config: SolverConfig,
    *,
    random_state: int | None = None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    stats: SufficientStats | None = None,
    sample_weight: torch.Tensor | None = None,
) -> TrainState:
    """Scaling, step size, guards and starting point (zeros, or ``weight``/``bias`` in
    original units). ``stats``: the :class:`SufficientStats` of (X, Y) when already computed
    (weighted by ``sample_weight`` (n,), the rows' weights, when given)."""
    if stats is None:
        stats = SufficientStats.compute(X, Y, weights=sample_weight)
    max_row = None
    if not method_of(config).full_batch:
        rw = row_weights(sample_weight, X.dtype)
        max_row = row_norm2_bound(X, feature_scaler(stats, config), config, rw)
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
    method = method_of(config)
    d, k = stats.zbar.shape[0], stats.ybar.shape[0]
    device = stats.zbar.device
    scaler = feature_scaler(stats, config)
    zst = _internal(stats, scaler)
    steps = step_sizes(zst, config, max_row_norm2)
    L, stable, lr0 = steps.lipschitz, steps.stable, steps.learning_rate
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
            floor=LOSS_FLOOR * zst.loss_scale(config.fit_intercept),
            # Full-batch iterates do not fluctuate: a loss above the best is momentum
            # overshooting (still moving), not a plateau.
            deterministic=method.full_batch,
        ),
    )


# ----------------------------------------------------------------------------- the loop


def run_epochs(
    state: TrainState,
    X: torch.Tensor,
    Y: torch.Tensor,
    n_epochs: int,
    *,
    stop_early: bool = True,
    validation: tuple[torch.Tensor, torch.Tensor]
    | tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]
    | None = None,
    callback: Callback | None = None,
    stats: SufficientStats | None = None,
    kernels: tuple[EpochKernel, ...] = EPOCH_KERNELS,
    sample_weight: torch.Tensor | None = None,
) -> bool:
    """Run up to ``n_epochs`` epochs on rows in memory (see :func:`run_on`). ``stats``
    (optional) are the :class:`SufficientStats` of (X, Y), when the caller already has them
    (``gd`` then makes no pass over the data at all); ``kernels``: sgd's epoch kernels to
    choose from (:func:`epoch_kernel`). ``sample_weight`` (n,): the rows' weights (then
    ``stats`` are the weighted ones); ``validation``: (X, Y) or (X, Y, weights)."""
    full_batch = method_of(state.config).full_batch
    if full_batch and X.shape[1] <= _MAX_GD_FEATURES and stats is None:
        stats = SufficientStats.compute(X, Y, weights=sample_weight)
    val_stats = None
    if validation is not None:
        Xv, Yv = validation[0], validation[1]
        wv = validation[2] if len(validation) > 2 else None
        val_stats = SufficientStats.compute(Xv, Yv, weights=wv)
    return run_on(
        state,
        TensorData(X, Y, row_weights(sample_weight, X.dtype)),
        n_epochs,
        stop_early=stop_early,
        stats=stats if full_batch and X.shape[1] <= _MAX_GD_FEATURES else None,
        validation=val_stats,
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
    method = method_of(cfg)
    zst = None if stats is None or not method.full_batch else _internal(stats, state.scaler)
    batch = (n_rows or 1) if method.full_batch else cfg.batch_size
    epoch: Callable[[float], float]
    if zst is not None and uses_conjugate_gradient(cfg):
        cg = ConjugateGradient(zst, cfg, state.weight.shape[0])
        epoch = lambda lr: cg.epoch(state)  # noqa: E731
    elif zst is not None:
        internal = zst
        epoch = lambda lr: gd_epoch(state, internal, lr)  # noqa: E731
    elif data is not None and comm.world > 1:
        if method.full_batch or not hasattr(data, "aligned_batches"):
            raise ValidationError("data-parallel training needs gd's statistics or sgd on a shard")
        shard: AlignedData = data  # type: ignore[assignment]
        total_rows = int(n_rows or 0)
        epoch = lambda lr: parallel_sgd_epoch(  # noqa: E731
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
        lr = scheduled_lr(state.learning_rate, state.epoch, cfg)
        started = time.perf_counter()
        loss = epoch(lr)
        seconds = time.perf_counter() - started
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
            callback(EpochInfo(state.epoch, n_epochs, loss, lr, score, int(n_rows or 0), seconds))
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
    method: Method,
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
    held: npt.NDArray[np.bool_] | None = None,
    sample_weight: torch.Tensor | None = None,
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
    held : with early stopping, the rows to hold out (n,) when the caller decided them (rows
        of a file some of which were dropped: the row rule numbers the file's rows); default
        the row rule over the rows of ``X``
    sample_weight : (n,) float64 row weights, finite, >= 0, not all 0 (checked by the
        caller), or None: the weighted objective of the module's docstring; rows of weight 0
        are left out (after the validation split, which is drawn on every row)

    Raises
    ------
    DivergenceError
        with ``stable_lr`` and ``result``, the :class:`FitResult` of the last good epoch.
    """
    validation: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None
    X_train, Y_train, w_train = X, Y, sample_weight
    if config.early_stopping:
        # The row rule of every road (gradfit.solvers.rows): the rows in memory are file 0,
        # counted from 1; the training rows keep their order, as a stream visits them.
        if random_state is None:
            random_state = resolve_seed(None)  # one draw for the split and the shuffling
        n = X.shape[0]
        if held is None:
            held = holdout_mask(0, 1, n, config.validation_fraction, holdout_seed(random_state))
        elif held.shape != (n,):
            raise ValidationError(f"held must be a mask of the {n} rows, got {held.shape}")
        held_rows = torch.from_numpy(held).to(X.device)
        n_val = int(held_rows.sum())
        if n_val < 1 or n - n_val < 2:
            raise ValidationError(
                f"early_stopping with validation_fraction={config.validation_fraction:g} holds "
                f"out {n_val} of {n} rows (each row with that probability, by a seeded hash of "
                "its position), and needs at least 1 held out and 2 to train on; change "
                "validation_fraction or random_state, or add rows"
            )
        keep = ~held_rows
        w_val = None if sample_weight is None else sample_weight[held_rows]
        if w_val is not None and not bool((w_val > 0).any()):
            raise ValidationError(
                f"early_stopping holds out {n_val} row(s), all of weight 0: the validation "
                "score needs a positive weight; change validation_fraction or random_state"
            )
        validation = (X[held_rows], Y[held_rows], w_val)
        X_train, Y_train = X[keep], Y[keep]
        w_train = None if sample_weight is None else sample_weight[keep]
    if w_train is not None:
        positive = w_train > 0
        if not bool(positive.any()):
            raise ValidationError(
                "the training rows' sample_weight are all zero: at least one needs weight > 0"
            )
        if not bool(positive.all()):  # rows of weight 0 are left out
            X_train, Y_train, w_train = X_train[positive], Y_train[positive], w_train[positive]
    # One pass, shared by every step below.
    stats = SufficientStats.compute(X_train, Y_train, weights=w_train)
    if state is None:
        state = init_state(
            X_train,
            Y_train,
            config,
            random_state=random_state,
            weight=weight,
            bias=bias,
            stats=stats,
            sample_weight=w_train,
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
        sample_weight=w_train,
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
    sample_weight: torch.Tensor | None = None,
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
        sample_weight=sample_weight,
    )


fit_gd = _fit  # the registry's entries: the engine's solvers differ only through METHODS
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
    max_row = None
    if needs_row_norm(config):
        scaler = feature_scaler(stats, config)
        if stats.weighted:  # the rows' weights as sgd steps on them (stream_row_scale)
            scale = stream_row_scale(stats)

            def largest() -> float:
                return max(
                    (
                        row_norm2_bound(
                            X, scaler, config, None if w is None else (w * scale).to(X.device)
                        )
                        for X, _, w in weighted_passes(data)
                    ),
                    default=0.0,
                )

            local = guarded(comm, largest)
            max_row = max(
                float(t[0]) for t in comm.gather(torch.tensor([local], dtype=torch.float64))
            )
        else:
            local = guarded(
                comm,
                lambda: max((max_row_norm2(X, scaler) for X, _ in data.tensors()), default=0.0),
            )
            max_row = max(
                float(t[0]) for t in comm.gather(torch.tensor([local], dtype=torch.float64))
            )
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
