"""The main job, as data: the tutorial end to end on the built-in crop data.

:func:`run_demo` computes everything the ``gradfit demo`` command shows and returns it in a
:class:`DemoReport`; the command line renders it. Nothing here prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from gradfit.datasets import Dataset, load_crops
from gradfit.model import predict
from gradfit.solvers.lstsq import least_squares
from gradfit.tutorial import builtin, scratch

__all__ = ["NEW_INPUT", "DemoReport", "PathSummary", "run_demo"]

NEW_INPUT = (75.0, 63.0, 44.0)  # the tutorial's new region: temp, rainfall, humidity


@dataclass(frozen=True)
class PathSummary:
    name: str
    weight: torch.Tensor  # (k, d)
    bias: torch.Tensor  # (k,)
    loss: float  # MSE on the training data
    ratio_to_optimum: float
    prediction: tuple[float, ...]  # for NEW_INPUT


@dataclass(frozen=True)
class DemoReport:
    data: Dataset
    seed: int
    epochs: int
    lr: float
    # Part 1, step by step
    initial_weight: torch.Tensor
    initial_bias: torch.Tensor
    initial_predictions: torch.Tensor  # (n, k)
    initial_loss: float
    weight_grad: torch.Tensor
    bias_grad: torch.Tensor
    loss_after_one_step: float  # recomputed with the updated weights
    scratch_losses: tuple[float, ...]
    # Part 2
    builtin_last_batch_losses: tuple[float, ...]
    builtin_mean_losses: tuple[float, ...]
    # Summary
    optimum_loss: float
    paths: tuple[PathSummary, ...]


def _summary(
    name: str, weight: torch.Tensor, bias: torch.Tensor, data: Dataset, optimum: float
) -> PathSummary:
    X, Y = data.data.double(), data.target.double()
    w, b = weight.double(), bias.double()
    loss = float(scratch.mse(predict(X, w, b), Y))
    new = predict(torch.tensor([NEW_INPUT], dtype=torch.float64), w, b)[0]
    return PathSummary(name, weight, bias, loss, loss / optimum, tuple(new.tolist()))


def run_demo(
    *,
    seed: int = 0,
    epochs: int = 100,
    lr: float = 1e-5,
    rows: int = 15,
    on_builtin_epoch: builtin.FitCallback | None = None,
    on_scratch_epoch: Callable[[int, int, float], None] | None = None,
) -> DemoReport:
    """Run both tutorial paths and the closed form; same arguments, same report."""
    data = load_crops(rows)
    inputs, targets = data.data, data.target

    # Part 1, one step at a time, exactly as the tutorial shows it.
    w, b = scratch.init_params(
        inputs.shape[1], targets.shape[1], torch.Generator().manual_seed(seed)
    )
    initial_w, initial_b = w.detach().clone(), b.detach().clone()
    preds = scratch.model(inputs, w, b)
    loss = scratch.mse(preds, targets)
    scratch.compute_gradients(loss)
    if w.grad is None or b.grad is None:  # pragma: no cover - autograd's contract
        raise RuntimeError("autograd produced no gradients")
    weight_grad, bias_grad = w.grad.clone(), b.grad.clone()
    scratch.step(w, b, lr)
    with torch.no_grad():
        loss_after = float(scratch.mse(scratch.model(inputs, w, b), targets))
    # ... then train for `epochs` epochs from there.
    part1 = scratch.train_from_scratch(
        inputs, targets, epochs=epochs, lr=lr, weight=w, bias=b, callback=on_scratch_epoch
    )

    # Part 2, with PyTorch built-ins.
    part2 = builtin.train_builtin(
        inputs, targets, epochs=epochs, lr=lr, batch_size=5, seed=seed, callback=on_builtin_epoch
    )

    exact = least_squares(inputs, targets)
    optimum = float(
        scratch.mse(predict(inputs.double(), exact.weight, exact.bias), targets.double())
    )
    paths = (
        _summary("from scratch", part1.weight, part1.bias, data, optimum),
        _summary("built-ins", part2.weight, part2.bias, data, optimum),
        _summary("closed form", exact.weight, exact.bias, data, optimum),
    )
    return DemoReport(
        data=data,
        seed=seed,
        epochs=epochs,
        lr=lr,
        initial_weight=initial_w,
        initial_bias=initial_b,
        initial_predictions=preds.detach(),
        initial_loss=loss.item(),
        weight_grad=weight_grad,
        bias_grad=bias_grad,
        loss_after_one_step=loss_after,
        scratch_losses=part1.losses,
        builtin_last_batch_losses=tuple(part2.history.last_batch_loss),
        builtin_mean_losses=tuple(part2.history.mean_loss),
        optimum_loss=optimum,
        paths=paths,
    )
