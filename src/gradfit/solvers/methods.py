"""The engine's solvers and the algorithm each configuration runs: ``gd`` (one full-batch step
per epoch) and ``sgd`` (mini-batches), and when gd steps by conjugate gradients."""

from __future__ import annotations

from dataclasses import dataclass

from gradfit.errors import ValidationError
from gradfit.solvers.config import SolverConfig

__all__ = ["METHODS", "Method", "method_name", "method_of", "uses_conjugate_gradient"]


@dataclass(frozen=True)
class Method:
    """How one engine solver walks the data."""

    full_batch: bool  # one step per epoch (from the statistics) rather than mini-batches
    what: str  # for messages


METHODS = {
    "gd": Method(full_batch=True, what="full-batch gradient descent"),
    "sgd": Method(full_batch=False, what="mini-batch SGD"),
}


def method_of(config: SolverConfig) -> Method:
    """How ``config.solver`` walks the data; a solver the engine does not train is an error."""
    method = METHODS.get(config.solver)
    if method is None:
        raise ValidationError(f"the engine trains {' and '.join(METHODS)}, not {config.solver!r}")
    return method


def uses_conjugate_gradient(config: SolverConfig) -> bool:
    """Whether gd steps by conjugate gradients (when it has the statistics): its default,
    ``learning_rate='auto'`` with no momentum, no schedule and no L1 part. Any of those set
    explicitly gives the plain (heavy-ball, Nesterov, proximal) gradient steps of
    :func:`gradfit.solvers.kernels.sgd_update`, exactly as the tutorial's loop takes them."""
    return (
        method_of(config).full_batch
        and config.learning_rate == "auto"
        and not config.momentum
        and config.schedule == "constant"
        and not (config.alpha and config.l1_ratio)
    )


def method_name(config: SolverConfig, from_stats: bool = True) -> str:
    """The algorithm an engine fit with ``config`` runs, in words (model files, results)."""
    if method_of(config).full_batch and from_stats and uses_conjugate_gradient(config):
        return "conjugate gradient"
    kind = "gradient descent" if method_of(config).full_batch else "mini-batch SGD"
    if config.alpha and config.l1_ratio:
        kind = "proximal " + kind
    if config.momentum:
        kind += " with Nesterov momentum" if config.nesterov else " with heavy-ball momentum"
    return kind
