"""Mean squared error and its exact gradient for the linear model.

With ``E = X @ W.T + b - Y`` of shape (n, k), the loss averages over *all* n·k entries, as the
tutorial's hand-written ``mse`` and :func:`torch.nn.functional.mse_loss` do::

    L(W, b) = sum(E**2) / (n k)
    dL/dW   = 2/(n k) · E.T @ X          # (k, n) @ (n, d) -> (k, d)
    dL/db   = 2/(n k) · E.sum(0)         # (k,)
"""

from __future__ import annotations

import torch

from gradfit.model import predict

__all__ = ["mse", "mse_gradient", "penalty", "squared_error_gradient"]


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean of squared differences over every element: ``sum((pred - target)**2) / numel``.

    Shapes must match exactly: silent broadcasting of (n, 1) against (n,) is refused.

    >>> import torch
    >>> mse(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0]))
    tensor(2.5000)
    """
    if pred.shape != target.shape:
        raise ValueError(
            f"mse needs equal shapes, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    diff = pred - target
    return torch.sum(diff * diff) / diff.numel()


def squared_error_gradient(
    X: torch.Tensor,
    Y: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The sum of squared errors of the linear model (a float64 scalar) and the gradient of
    :func:`mse` w.r.t. ``weight`` (k, d) and ``bias`` (k,), from one residual matrix.

    With row ``weights`` (n,) the loss is ``Σ_i w_i ||e_i||² / (n k)`` (its sum
    ``Σ_i w_i ||e_i||²``, and its gradient): the engine passes weights scaled to mean 1 over
    the training rows, so that a batch's loss estimates the weighted MSE.

    The mini-batch gradient source of the engine: one call per batch."""
    residual = predict(X, weight, bias) - Y  # (n, k)
    scale = 2.0 / residual.numel()
    weighted = residual if weights is None else residual * weights[:, None]
    grad_weight = scale * (weighted.T @ X)  # (k, n) @ (n, d) -> (k, d)
    grad_bias = scale * weighted.sum(dim=0)  # (k,)
    sse = (weighted * residual).sum().double()
    return sse, grad_weight, grad_bias


def mse_gradient(
    X: torch.Tensor, Y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Analytic gradient of :func:`mse` of the linear model w.r.t. ``weight`` and ``bias``.

    Returns ``(grad_weight (k, d), grad_bias (k,))``.
    """
    _, grad_weight, grad_bias = squared_error_gradient(X, Y, weight, bias)
    return grad_weight, grad_bias


def penalty(weight: torch.Tensor, alpha: float, l1_ratio: float, n_targets: int) -> float:
    """The elastic-net penalty of the objective, in float64::

        (2 alpha / k) * (l1_ratio * ||W||_1 + (1 - l1_ratio) / 2 * ||W||_F^2)

    >>> import torch
    >>> penalty(torch.tensor([[1.0, -2.0]]), alpha=0.5, l1_ratio=0.0, n_targets=1)
    2.5
    """
    if alpha == 0:
        return 0.0
    W64 = weight.double()
    l1 = float(W64.abs().sum())
    l2 = float((W64 * W64).sum())
    return 2 * alpha / n_targets * (l1_ratio * l1 + (1 - l1_ratio) / 2 * l2)
