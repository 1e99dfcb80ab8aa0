"""``gradfit demo``: the tutorial end to end, rendered."""

from __future__ import annotations

import argparse
import math
from typing import TextIO

from gradfit.cli.render import matrix, table
from gradfit.demo import NEW_INPUT, DemoReport, run_demo
from gradfit.errors import DivergenceError
from gradfit.solvers.guards import DivergenceGuard
from gradfit.solvers.stats import SufficientStats, hessian_lipschitz

__all__ = ["cmd_demo"]

EXIT_OK = 0


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    every = max(1, args.epochs // 10)
    print(
        f"gradfit demo: the tutorial end to end on the crop data ({args.rows} rows, seed "
        f"{args.seed}, lr {args.lr:g}, {args.epochs} epochs)\n",
        file=out,
    )
    print("Part 1: linear regression from scratch\n", file=out)
    # Part 2's progress lines are collected during the run and shown in the tutorial's order.
    lines: list[str] = []

    def collect(epoch: int, total: int, last: float, mean: float) -> None:
        if epoch % every == 0 or epoch == total:
            lines.append(f"Epoch [{epoch}/{total}], Loss: {last:.4f}")

    report = run_demo(
        seed=args.seed, epochs=args.epochs, lr=args.lr, rows=args.rows, on_builtin_epoch=collect
    )
    data = report.data
    print("weights w (targets x features) and bias b, drawn from N(0, 1):", file=out)
    print(matrix(report.initial_weight), file=out)
    print(matrix(report.initial_bias), file=out)
    print("\npredictions (x @ w.T + b) beside the targets:", file=out)
    names = data.target_names
    headers = ["row", *(f"pred {n}" for n in names), *names]
    shown = min(5, data.data.shape[0])
    rows = [
        [
            str(i + 1),
            *(f"{v:.2f}" for v in report.initial_predictions[i].tolist()),
            *(f"{v:.0f}" for v in data.target[i].tolist()),
        ]
        for i in range(shown)
    ]
    print(table(headers, rows), file=out)
    if data.data.shape[0] > shown:
        print(f"(first {shown} of {data.data.shape[0]} rows)", file=out)
    print(f"\nloss (mean squared error): {report.initial_loss:.4f}", file=out)
    print("gradients after loss.backward():\n  w.grad =", file=out)
    print(matrix(report.weight_grad), file=out)
    print("  b.grad =", file=out)
    print(matrix(report.bias_grad), file=out)
    print(
        f"\none step of gradient descent (w -= w.grad * lr, b -= b.grad * lr; grads zeroed):\n"
        f"  loss recomputed with the new weights: {report.loss_after_one_step:.4f} "
        f"(was {report.initial_loss:.4f})",
        file=out,
    )
    losses = report.scratch_losses
    print(f"\ntraining {args.epochs} epochs from there:", file=out)
    for epoch in range(every, len(losses) + 1, every):
        print(f"Epoch [{epoch}/{len(losses)}], Loss: {losses[epoch - 1]:.4f}", file=out)
    print("\nPart 2: the same model with PyTorch built-ins", file=out)
    print(
        "(TensorDataset, DataLoader(batch_size=5, shuffle=True), nn.Linear, F.mse_loss, "
        "optim.SGD, fit)\n",
        file=out,
    )
    for line in lines:
        print(line, file=out)

    exact = report.paths[-1]
    print("\nClosed-form least squares (float64, refined): the optimum both paths aim at", file=out)
    for j, name in enumerate(names):
        terms = (
            " ".join(
                f"{'+' if w >= 0 else '-'} {abs(w):.3f}·{f}"
                for w, f in zip(exact.weight[j].tolist(), data.feature_names, strict=True)
            )
            .removeprefix("+ ")
            .replace("- ", "-", 1 if exact.weight[j, 0] < 0 else 0)
        )
        bias = float(exact.bias[j])
        print(f"  {name} = {terms} {'+' if bias >= 0 else '-'} {abs(bias):.3f}", file=out)
    new = ", ".join(f"{f}={v:g}" for f, v in zip(data.feature_names, NEW_INPUT, strict=True))
    print(f"\nSummary: loss on the training data and prediction for a new region ({new})", file=out)
    rows = [
        [p.name, f"{p.loss:.4f}", f"{p.ratio_to_optimum:.2f}x", *(f"{v:.2f}" for v in p.prediction)]
        for p in report.paths
    ]
    print(table(["path", "loss", "vs optimum", *names], rows), file=out)
    _refuse_divergence(report, args.lr)
    return EXIT_OK


def _refuse_divergence(report: DemoReport, lr: float) -> None:
    """A path whose loss is not finite, or above the random start's, diverged: say so (exit 2)
    with the largest stable learning rate, the full-batch bound 2/L of this data."""
    start = report.initial_loss
    # gradfit's one divergence rule, with no tolerance: a path must end below its start.
    bad = [p for p in report.paths if DivergenceGuard(factor=1.0, reference=start).diverged(p.loss)]
    if not bad:
        return
    X, Y = report.data.data.double(), report.data.target.double()
    L = hessian_lipschitz(SufficientStats.compute(X, Y), True, int(Y.shape[1]))
    bound = 2.0 / L
    suggestion = f"1e{math.floor(math.log10(bound))}"
    losses = ", ".join(f"{p.name} {p.loss:.4g}" for p in bad)
    raise DivergenceError(
        f"training diverged with --lr {lr:g} (final loss: {losses}; at the start {start:.4g}); "
        f"the largest stable learning rate for this data is about {bound:.2e} (full-batch "
        f"bound 2/L); use --lr {suggestion} or smaller",
        stable_lr=bound,
    )
