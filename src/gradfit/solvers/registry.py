"""The solver registry: one table from a solver's name to what it is and what it can do.

Every other module asks the registry instead of comparing solver names: the configuration
checks a setting against :attr:`SolverSpec.supports`, the estimator offers ``partial_fit`` when
the spec says so, the command line lists :func:`names` as the choices of ``--solver`` and
:func:`gradfit.training.fit_linear` calls :meth:`SolverSpec.fit_function`.

Adding a solver is one module with a fit function of the :data:`FitFunction` signature plus one
:class:`SolverSpec` entry below; nothing else changes. The fit function is named by import path
(``"module:function"``) and imported on first use, so that this table imports no solver code
(the configuration, which every solver imports, can consult it without an import cycle).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from gradfit.errors import ValidationError

if TYPE_CHECKING:
    import torch

    from gradfit.solvers.collective import Communicator
    from gradfit.solvers.config import SolverConfig
    from gradfit.solvers.engine import Checkpointer, EpochInfo, StreamPasses
    from gradfit.solvers.result import FitResult
    from gradfit.solvers.state import TrainState
    from gradfit.solvers.stats import SufficientStats

__all__ = [
    "CAPABILITIES",
    "REGISTRY",
    "Capability",
    "FitFunction",
    "SolverSpec",
    "StreamFitFunction",
    "get",
    "names",
]

Capability = Literal[
    "ridge",  # alpha > 0 with l1_ratio = 0
    "l1",  # alpha > 0 with l1_ratio > 0 (elastic net, lasso)
    "learning_rate",  # an explicit step size
    "momentum",  # heavy-ball and Nesterov momentum
    "schedule",  # step schedules other than 'constant'
    "early_stopping",  # a held-out validation split
    "no_intercept",  # fit_intercept=False
    "partial_fit",  # one epoch at a time over new rows, continuing a saved state
    "streaming",  # data that do not fit in memory, as a stream of batches
    "distributed",  # several processes (torch.distributed)
    "weights",  # row weights (sample_weight): the weighted mean squared error
]
CAPABILITIES: tuple[Capability, ...] = (
    "ridge",
    "l1",
    "learning_rate",
    "momentum",
    "schedule",
    "early_stopping",
    "no_intercept",
    "partial_fit",
    "streaming",
    "distributed",
    "weights",
)


class FitFunction(Protocol):
    """``fit(X, Y, config, *, random_state, start, callback) -> FitResult``.

    ``X`` (n, d) and ``Y`` (n, k) are finite tensors of one dtype and device; ``start`` is an
    optional ``(weight (k, d), bias (k,))`` in original units; ``callback`` receives an
    :class:`~gradfit.solvers.engine.EpochInfo` after every epoch; ``state`` (solvers with the
    ``partial_fit`` capability) is a :class:`~gradfit.solvers.state.TrainState` to continue.
    Solvers with the ``weights`` capability also take ``sample_weight``, the rows' weights
    (n,) float64 (checked: finite, >= 0, not all 0), by keyword; it is passed only when given.
    Raises
    :class:`~gradfit.errors.DivergenceError` carrying the last good :class:`FitResult`.
    """

    def __call__(
        self,
        X: torch.Tensor,
        Y: torch.Tensor,
        config: SolverConfig,
        *,
        random_state: int | None,
        start: tuple[torch.Tensor, torch.Tensor] | None,
        callback: Callable[[EpochInfo], None] | None,
        state: TrainState | None,
    ) -> FitResult: ...


class StreamFitFunction(Protocol):
    """``fit(data, stats, config, *, random_state, callback) -> FitResult`` over a stream:
    ``data`` is a :class:`~gradfit.solvers.engine.StreamPasses` (each ``tensors()`` call one pass
    over the files, ``batches()`` one shuffled epoch), ``stats`` the
    :class:`~gradfit.solvers.stats.SufficientStats` of its first pass. With a group of
    processes (``comm``, the ``distributed`` capability) ``data`` is this process's shard and
    ``stats`` the group's; ``checkpoint`` (iterative solvers) saves and resumes the training
    state."""

    def __call__(
        self,
        data: StreamPasses,
        stats: SufficientStats,
        config: SolverConfig,
        *,
        random_state: int | None,
        callback: Callable[[EpochInfo], None] | None,
        comm: Communicator = ...,
        checkpoint: Checkpointer | None = ...,
    ) -> FitResult: ...


@dataclass(frozen=True)
class SolverSpec:
    """One solver: its name, where its fit function lives, and what it supports."""

    name: str
    entry: str  # "package.module:function", a FitFunction
    summary: str  # one line for help texts and error messages
    supports: frozenset[Capability]
    iterative: bool  # runs epochs (a progress bar, a loss curve, a learning rate)
    exact: bool = False  # solves to the optimum in one go (its loss is the optimum)
    stream_entry: str | None = None  # "module:function", a StreamFitFunction ("streaming")
    # Streamed on one process, the statistics pass accumulates the R factor of the rows
    # (gradfit.solvers.tsqr.RFactor, as StreamData.r_factor) for the stream fit function: an
    # exact solver by QR that reads the data once.
    one_pass_r: bool = False

    def fit_function(self) -> FitFunction:
        fit: FitFunction = _load(self.entry)
        return fit

    def stream_function(self) -> StreamFitFunction:
        """The fit function over a stream of batches; a ValidationError for solvers that need
        their data in memory."""
        if self.stream_entry is None:
            able = " or ".join(repr(s.name) for s in REGISTRY.values() if s.stream_entry)
            raise ValidationError(
                f"solver={self.name!r} trains on data in memory ({self.summary}); to stream "
                f"files larger than memory use solver={able}"
            )
        fit: StreamFitFunction = _load(self.stream_entry)
        return fit

    def check(self, demands: Mapping[Capability, str]) -> None:
        """Refuse settings this solver cannot honour (never silently ignore them).

        ``demands`` maps each capability a configuration needs to the setting that needs it
        (``{"momentum": "momentum=0.5"}``)."""
        bad = {cap: setting for cap, setting in demands.items() if cap not in self.supports}
        if not bad:
            return
        wanted = set(demands)
        able = [s.name for s in REGISTRY.values() if wanted <= s.supports]
        settings = ", ".join(bad.values())
        alternatives = " or ".join(repr(n) for n in able) if able else "another solver"
        raise ValidationError(
            f"solver={self.name!r} cannot honour {settings} ({self.summary}); "
            f"{settings} needs solver={alternatives}"
        )


def _load(entry: str) -> Any:
    module, _, function = entry.partition(":")
    return getattr(importlib.import_module(module), function)


_ENGINE: frozenset[Capability] = frozenset(CAPABILITIES)

REGISTRY: dict[str, SolverSpec] = {
    spec.name: spec
    for spec in (
        SolverSpec(
            name="gd",
            entry="gradfit.solvers.engine:fit_gd",
            stream_entry="gradfit.solvers.engine:fit_stream",
            summary="full-batch descent on sufficient statistics: conjugate gradients by default, "
            "plain gradient descent with an explicit step, momentum or schedule",
            supports=_ENGINE,
            iterative=True,
        ),
        SolverSpec(
            name="sgd",
            entry="gradfit.solvers.engine:fit_sgd",
            stream_entry="gradfit.solvers.engine:fit_stream",
            summary="mini-batch stochastic gradient descent",
            supports=_ENGINE,
            iterative=True,
        ),
        SolverSpec(
            name="lstsq",
            entry="gradfit.solvers.closed_form:fit_lstsq",
            summary="the closed form in float64, with no penalty or the ridge penalty only "
            "(l1_ratio=0); no step size, momentum, schedule or epochs",
            supports=frozenset({"ridge", "no_intercept", "streaming", "distributed", "weights"}),
            iterative=False,
            exact=True,
            stream_entry="gradfit.solvers.closed_form:fit_lstsq_stream",
            one_pass_r=True,
        ),
        SolverSpec(
            name="scratch",
            entry="gradfit.solvers.tutorial_loops:fit_scratch",
            summary="the tutorial's from-scratch gradient descent loop, unchanged: constant "
            "step, no penalty, no momentum, always an intercept",
            supports=frozenset({"learning_rate"}),
            iterative=True,
        ),
        SolverSpec(
            name="builtin",
            entry="gradfit.solvers.tutorial_loops:fit_builtin",
            summary="the tutorial's nn.Linear + optim.SGD loop, unchanged: constant step, "
            "no penalty, no momentum, always an intercept",
            supports=frozenset({"learning_rate"}),
            iterative=True,
        ),
    )
}


def names() -> tuple[str, ...]:
    """The registered solver names, in registration order."""
    return tuple(REGISTRY)


def get(name: str) -> SolverSpec:
    """The spec of solver ``name``; a :class:`ValidationError` naming the choices otherwise."""
    spec = REGISTRY.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ValidationError(f"solver must be one of {', '.join(REGISTRY)}; got {name!r}")
    return spec
