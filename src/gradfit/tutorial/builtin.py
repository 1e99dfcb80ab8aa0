"""Tutorial part 2: the same model with PyTorch built-ins.

``TensorDataset`` + ``DataLoader(batch_size=5, shuffle=True)``, ``nn.Linear``, ``F.mse_loss``,
``optim.SGD`` and the tutorial's ``fit`` utility. Randomness (initial weights, shuffling) comes
from seeded :class:`torch.Generator` objects, never from the global RNG, so a run is reproducible
and leaves no trace on other code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from gradfit.validation import (
    as_matrix,
    as_targets,
    check_lengths,
    check_positive_float,
    check_positive_int,
)

__all__ = ["BuiltinResult", "FitHistory", "fit", "make_linear", "train_builtin"]


@dataclass
class FitHistory:
    """Per-epoch losses: the mean over the epoch's batches, and the last batch's (the one the
    tutorial prints)."""

    mean_loss: list[float]
    last_batch_loss: list[float]


# callback(epoch, num_epochs, last_batch_loss, mean_loss); epoch counted from 1.
FitCallback = Callable[[int, int, float, float], None]


def fit(
    num_epochs: int,
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    opt: torch.optim.Optimizer,
    train_dl: Iterable[tuple[torch.Tensor, torch.Tensor]],
    callback: FitCallback | None = None,
) -> FitHistory:
    """The tutorial's training utility: for each epoch, for each batch: predict, loss,
    ``backward``, ``opt.step()``, ``opt.zero_grad()``. Progress goes to ``callback``."""
    history = FitHistory(mean_loss=[], last_batch_loss=[])
    for epoch in range(1, num_epochs + 1):
        total, batches, last = 0.0, 0, math.nan
        for xb, yb in train_dl:
            pred = model(xb)
            loss = loss_fn(pred, yb)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            opt.zero_grad()
            last = loss.item()
            total += last
            batches += 1
        history.mean_loss.append(total / max(batches, 1))
        history.last_batch_loss.append(last)
        if callback is not None:
            callback(epoch, num_epochs, last, history.mean_loss[-1])
    return history


def make_linear(
    n_features: int, n_targets: int, generator: torch.Generator, dtype: torch.dtype = torch.float32
) -> nn.Linear:
    """``nn.Linear(d, k)`` initialised as PyTorch does (uniform on ±1/sqrt(d) for weight and
    bias), but from ``generator`` instead of the global RNG."""
    # skip_init: no draw from the global RNG before the seeded initialisation below.
    layer: nn.Linear = torch.nn.utils.skip_init(  # type: ignore[no-untyped-call]
        nn.Linear, n_features, n_targets, dtype=dtype
    )
    bound = 1.0 / math.sqrt(n_features)
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        layer.bias.uniform_(-bound, bound, generator=generator)
    return layer


@dataclass(frozen=True)
class BuiltinResult:
    weight: torch.Tensor  # (k, d)
    bias: torch.Tensor  # (k,)
    history: FitHistory
    final_loss: float


def train_builtin(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    epochs: int = 100,
    lr: float = 1e-5,
    batch_size: int = 5,
    seed: int = 0,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    callback: FitCallback | None = None,
) -> BuiltinResult:
    """Train ``nn.Linear`` with ``optim.SGD`` over a shuffled ``DataLoader``, the tutorial's way."""
    x = as_matrix(inputs, "inputs")
    y = as_targets(targets, "targets", dtype=x.dtype)
    check_lengths(x, y, "inputs", "targets")
    epochs = check_positive_int(epochs, "epochs")
    lr = check_positive_float(lr, "lr")
    batch_size = check_positive_int(batch_size, "batch_size")

    generator = torch.Generator().manual_seed(seed)
    linear = make_linear(x.shape[1], y.shape[1], generator, dtype=x.dtype)
    if weight is not None and bias is not None:
        with torch.no_grad():
            linear.weight.copy_(weight)
            linear.bias.copy_(bias)
    train_ds = TensorDataset(x, y)
    train_dl = DataLoader(train_ds, batch_size=batch_size, shuffle=True, generator=generator)
    opt = torch.optim.SGD(linear.parameters(), lr=lr)
    history = fit(epochs, linear, F.mse_loss, opt, train_dl, callback)
    with torch.no_grad():
        final = F.mse_loss(linear(x), y).item()
    return BuiltinResult(
        linear.weight.detach().clone(), linear.bias.detach().clone(), history, final
    )
