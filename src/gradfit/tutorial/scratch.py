"""Tutorial part 1: linear regression and gradient descent from scratch.

Every step is a function of its own so it can be shown on its own::

    w, b = init_params(3, 2, generator)       # randn, requires_grad=True
    preds = model(inputs, w, b)               # x @ w.t() + b
    loss = mse(preds, targets)                # sum of squared differences / numel
    loss.backward()                           # gradients into w.grad, b.grad
    step(w, b, lr=1e-5)                       # under no_grad: w -= w.grad * lr; zero the grads

:func:`train_from_scratch` repeats those steps for ``epochs`` epochs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from gradfit.validation import (
    as_matrix,
    as_targets,
    check_lengths,
    check_positive_float,
    check_positive_int,
)

__all__ = [
    "ScratchResult",
    "compute_gradients",
    "init_params",
    "model",
    "mse",
    "step",
    "train_from_scratch",
]

EpochCallback = Callable[[int, int, float], None]


def init_params(
    n_features: int, n_targets: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights (k, d) and bias (k,) drawn from N(0, 1), with ``requires_grad=True``."""
    w = torch.randn(n_targets, n_features, generator=generator, requires_grad=True)
    b = torch.randn(n_targets, generator=generator, requires_grad=True)
    return w, b


def model(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``x @ w.t() + b``: (n, d) @ (d, k) -> (n, k), bias replicated for each row."""
    return x @ w.t() + b


def mse(t1: torch.Tensor, t2: torch.Tensor) -> torch.Tensor:
    """The tutorial's loss: difference, square, sum, divide by the number of elements."""
    diff = t1 - t2
    return torch.sum(diff * diff) / diff.numel()


def compute_gradients(loss: torch.Tensor) -> None:
    """``loss.backward()``: autograd fills ``w.grad`` and ``b.grad``."""
    loss.backward()  # type: ignore[no-untyped-call]


def step(w: torch.Tensor, b: torch.Tensor, lr: float) -> None:
    """One gradient-descent update, then reset the gradients (PyTorch accumulates them)::

    w <- w - lr * dL/dw
    b <- b - lr * dL/db
    """
    if w.grad is None or b.grad is None:
        raise RuntimeError("no gradients yet: call compute_gradients(loss) before step()")
    with torch.no_grad():
        w -= w.grad * lr
        b -= b.grad * lr
        w.grad.zero_()
        b.grad.zero_()


@dataclass(frozen=True)
class ScratchResult:
    weight: torch.Tensor  # (k, d), detached
    bias: torch.Tensor  # (k,), detached
    losses: tuple[float, ...]  # loss at each epoch, computed before that epoch's update
    final_loss: float  # loss of the returned weights


def train_from_scratch(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    epochs: int = 100,
    lr: float = 1e-5,
    seed: int = 0,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    callback: EpochCallback | None = None,
) -> ScratchResult:
    """Train for ``epochs`` epochs of full-batch gradient descent, the tutorial's way.

    ``weight``/``bias`` start the run from given values (copied); otherwise they are drawn with
    :func:`init_params` from a generator seeded with ``seed``. ``callback(epoch, epochs, loss)``
    is called after each epoch (epoch counted from 1).
    """
    x = as_matrix(inputs, "inputs")
    y = as_targets(targets, "targets", dtype=x.dtype)
    check_lengths(x, y, "inputs", "targets")
    epochs = check_positive_int(epochs, "epochs")
    lr = check_positive_float(lr, "lr")
    if weight is None or bias is None:
        w, b = init_params(x.shape[1], y.shape[1], torch.Generator().manual_seed(seed))
        w, b = w.detach().to(x.dtype).requires_grad_(), b.detach().to(x.dtype).requires_grad_()
    else:
        w = weight.detach().clone().to(x.dtype).requires_grad_()
        b = bias.detach().clone().to(x.dtype).requires_grad_()

    losses: list[float] = []
    for epoch in range(1, epochs + 1):
        preds = model(x, w, b)
        loss = mse(preds, y)
        compute_gradients(loss)
        step(w, b, lr)
        losses.append(loss.item())
        if callback is not None:
            callback(epoch, epochs, losses[-1])
    with torch.no_grad():
        final = mse(model(x, w, b), y).item()
    return ScratchResult(w.detach(), b.detach(), tuple(losses), final)
