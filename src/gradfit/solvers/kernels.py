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
"""

from __future__ import annotations

import torch

__all__ = ["sgd_update", "soft_threshold_"]


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
