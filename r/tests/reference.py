"""The Python numbers the R tests compare with: r/tests/reference.csv.

Computed with gradfit in Python, the way the Python side tells the tutorial (gradfit.demo's
run_demo, least_squares, GradientDescentRegressor), in the main .venv (NumPy 2). Regenerate after a
deliberate change of these numbers, from the repository root:

    .venv/bin/python r/tests/reference.py > r/tests/reference.csv
"""

from __future__ import annotations

import sys

import numpy as np
import torch

import gradfit
from gradfit.demo import NEW_INPUT, run_demo

PATH_KEYS = {"from scratch": "scratch", "built-ins": "builtin", "closed form": "closed"}


def rows() -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    crops = gradfit.load_crops()
    features, targets = crops.feature_names, crops.target_names
    new64 = torch.tensor([NEW_INPUT], dtype=torch.float64)

    # The closed form (float64, factored and refined) on the 15 rows.
    exact = gradfit.least_squares(crops.data, crops.target)
    for i, t in enumerate(targets):
        out.append((f"closed.bias.{t}", exact.bias[i].item()))
        for j, f in enumerate(features):
            out.append((f"closed.weight.{t}.{f}", exact.weight[i, j].item()))
    for i, value in enumerate(gradfit.predict(new64, exact.weight, exact.bias)[0].tolist()):
        out.append((f"closed.predict.{targets[i]}", value))

    # The tutorial, both parts, as `gradfit demo` runs it (float32 data, seed 0, lr 1e-5).
    demo = run_demo(seed=0, epochs=100, lr=1e-5, rows=15)
    out.append(("demo.initial_loss", demo.initial_loss))
    out.append(("demo.loss_after_one_step", demo.loss_after_one_step))
    out.append(("demo.scratch_epoch100_loss", demo.scratch_losses[-1]))
    out.append(("demo.builtin_epoch100_last_batch_loss", demo.builtin_last_batch_losses[-1]))
    out.append(("demo.optimum_loss", demo.optimum_loss))
    for path in demo.paths:
        key = PATH_KEYS[path.name]
        out.append((f"demo.{key}.loss", path.loss))
        for i, value in enumerate(path.prediction):
            out.append((f"demo.{key}.predict.{targets[i]}", value))

    # The estimator with its defaults (gd, standardized, float64), on the 15 rows.
    from gradfit import GradientDescentRegressor

    X, Y = crops.data.numpy().astype(np.float64), crops.target.numpy().astype(np.float64)
    est = GradientDescentRegressor(random_state=0).fit(X, Y)
    out.append(("estimator.n_iter", float(est.n_iter_)))
    for i, t in enumerate(targets):
        out.append((f"estimator.intercept.{t}", float(est.intercept_[i])))
        for j, f in enumerate(features):
            out.append((f"estimator.coef.{t}.{f}", float(est.coef_[i, j])))
    for i, value in enumerate(est.predict(np.array([NEW_INPUT]))[0].tolist()):
        out.append((f"estimator.predict.{targets[i]}", value))
    return out


def main() -> None:
    lines = ["name,value"] + [f"{name},{value!r}" for name, value in rows()]
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
