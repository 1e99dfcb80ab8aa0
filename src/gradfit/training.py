"""One entry point over every solver: ``fit_linear(X, Y, config)``.

It looks the solver up in the registry (:mod:`gradfit.solvers.registry`) and calls its fit
function, which returns one :class:`~gradfit.solvers.result.FitResult` in original units. Both
front ends use it: the command line (through :mod:`gradfit.fitting`) and
:class:`gradfit.estimator.GradientDescentRegressor`. Tensors in, tensors out, nothing printed.

Divergence is never hidden: :class:`~gradfit.errors.DivergenceError` is raised with
``stable_lr``, ``reason`` and ``result``, the :class:`FitResult` of the last good epoch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import torch

from gradfit.errors import ValidationError
from gradfit.solvers import registry
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.engine import EpochInfo, train
from gradfit.solvers.result import FitResult
from gradfit.solvers.state import TrainState
from gradfit.validation import check_weights

__all__ = ["FitResult", "fit_linear"]

Start = tuple[torch.Tensor, torch.Tensor]


def fit_linear(
    X: torch.Tensor,
    Y: torch.Tensor,
    config: SolverConfig,
    *,
    random_state: int | None = 0,
    start: Start | None = None,
    callback: Callable[[EpochInfo], None] | None = None,
    state: TrainState | None = None,
    held: npt.NDArray[np.bool_] | None = None,
    sample_weight: torch.Tensor | None = None,
) -> FitResult:
    """Fit ``Y ≈ X @ weight.T + bias`` (X (n, d), Y (n, k), finite, same dtype and device).

    Parameters
    ----------
    random_state : seed of shuffling, the validation split and the tutorial loops' initial
        weights (None: fresh entropy)
    start : optional (weight (k, d), bias (k,)) in original units to start from (iterative
        solvers; ignored by lstsq)
    callback : called with an :class:`EpochInfo` after every epoch of every iterative solver
    state : a :class:`TrainState` to continue for ``config.max_epochs`` epochs (solvers that
        support ``partial_fit``)
    held : with early stopping, the rows to hold out, when the caller decided them (see
        :func:`gradfit.solvers.engine.train`; the engine's solvers, which alone stop early)
    sample_weight : optional (n,) row weights (tensor, array or list), finite and >= 0, not all
        0: the objective's mean squared error becomes the weighted one,
        ``Σ w_i ||e_i||² / (k Σ w_i)``, so that integer weights equal repeated rows; rows of
        weight 0 are left out (solvers with the ``weights`` capability: gd, sgd, lstsq; see
        :mod:`gradfit.solvers.engine` for what holds for sgd)

    Raises
    ------
    DivergenceError
        with ``stable_lr``, ``reason`` and ``result`` (the last good epoch's result).
    ValidationError
        a setting the solver cannot honour.
    """
    spec = registry.get(config.solver)
    if state is not None and "partial_fit" not in spec.supports:
        raise ValidationError(
            f"solver={config.solver!r} has no training state to continue; use fit"
        )
    extra: dict[str, torch.Tensor] = {}
    if sample_weight is not None:
        spec.check({"weights": "sample_weight"})
        extra["sample_weight"] = check_weights(sample_weight, X.shape[0]).to(X.device)
    if held is not None:  # the rows the caller holds out: the engine's solvers
        spec.check({"early_stopping": "held-out rows"})
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
            held=held,
            **extra,
        )
    fit = spec.fit_function()
    return fit(
        X,
        Y,
        config,
        random_state=random_state,
        start=start,
        callback=callback,
        state=state,
        **extra,
    )
