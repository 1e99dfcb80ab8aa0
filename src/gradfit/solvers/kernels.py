"""Pure update kernels: one step of (proximal, momentum) gradient descent on tensors.

The engine's loops (:mod:`gradfit.solvers.engine`) compose a *gradient source* (the sufficient
statistics, or a mini-batch: :meth:`gradfit.solvers.stats.SufficientStats.gradient`,
:func:`gradfit.losses.squared_error_gradient`) with the update below, the way
``torch.optim.SGD.step`` gathers its state and calls the functional ``torch.optim.sgd.sgd``.
A compiled or fused kernel, or an all-reduce of the gradient before the update, plugs in between
the two without touching either.

The update of one parameter ``p`` with gradient ``g`` (``torch.optim.SGD`` with dampening 0)::

    g <- g + weight_decay * p                   (the ridge part of the penalty)
    v <- g                    on the first step
    v <- momentum * v + g     afterwards         (v is the velocity; none when momentum = 0)
    p <- p - lr * (g + momentum * v  if nesterov else  v)
    p <- sign(p) * max(|p| - l1, 0)             (proximal step of the L1 part; l1 = lr * l1 weight)

For the objective of :class:`~gradfit.solvers.config.SolverConfig` with ``k`` targets, the
penalty's weights per unit step are :func:`ridge_factor` (the ridge part, smooth: also part of
the gradient's Lipschitz bound and of the Hessian) and :func:`l1_factor`; :func:`update_state`
applies the update to a :class:`~gradfit.solvers.state.TrainState`'s parameters.
"""

from __future__ import annotations

import torch

from gradfit.solvers.state import TrainState

__all__ = ["l1_factor", "ridge_factor", "sgd_update", "soft_threshold_", "update_state"]


def sgd_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    velocity: torch.Tensor | None,
    *,
    lr: float,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    l1: float = 0.0,
) -> torch.Tensor | None:
    """Update ``param`` in place by one step of the rule above; return the new velocity.

    ``velocity`` is the previous velocity (None before the first step, or without momentum):
    it is updated in place when given, created from ``grad`` otherwise. ``grad`` is not
    modified. ``l1`` is the proximal threshold *per unit step*: the parameter is shrunk towards
    zero by ``lr * l1``.

    >>> import torch
    >>> p = torch.tensor([1.0, -1.0])
    >>> v = sgd_update(p, torch.tensor([1.0, 1.0]), None, lr=0.5, momentum=0.9)
    >>> p.tolist(), v.tolist()
    ([0.5, -1.5], [1.0, 1.0])
    """
    if weight_decay:
        grad = grad + weight_decay * param
    if momentum:
        if velocity is None:
            velocity = grad.clone()
        else:
            velocity.mul_(momentum).add_(grad)
        step = grad + momentum * velocity if nesterov else velocity
    else:
        velocity, step = None, grad
    param.sub_(lr * step)
    if l1:
        soft_threshold_(param, lr * l1)
    return velocity


def soft_threshold_(param: torch.Tensor, threshold: float) -> torch.Tensor:
    """``param <- sign(param) * max(|param| - threshold, 0)``, in place (the L1 proximal map)."""
    param.copy_(param.sign() * (param.abs() - threshold).clamp_min(0.0))
    return param


def ridge_factor(alpha: float, l1_ratio: float, k: int) -> float:
    """The weight of the ridge (L2) part of the penalty in the gradient of the objective with
    ``k`` targets, ``2 alpha (1 - l1_ratio) / k``: the update's ``weight_decay``, and the
    curvature it adds to every direction of the weights."""
    return 2 * alpha * (1 - l1_ratio) / k


def l1_factor(alpha: float, l1_ratio: float, k: int) -> float:
    """The weight of the L1 part of the penalty with ``k`` targets, ``2 alpha l1_ratio / k``:
    the update's ``l1`` (its proximal threshold per unit step)."""
    return 2 * alpha * l1_ratio / k


def update_state(state: TrainState, gW: torch.Tensor, gb: torch.Tensor, lr: float) -> None:
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
        weight_decay=ridge_factor(cfg.alpha, cfg.l1_ratio, k),
        l1=l1_factor(cfg.alpha, cfg.l1_ratio, k),
    )
    if cfg.fit_intercept:
        state.velocity_b = sgd_update(
            state.bias, gb, state.velocity_b, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov
        )
