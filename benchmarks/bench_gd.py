"""Full-batch gd: the default (conjugate gradients on the statistics) against scikit-learn's
``LinearRegression.fit`` and plain gradient descent, on independent and on correlated features
(issue 11).

Run (about a minute)::

    .venv/bin/python benchmarks/bench_gd.py                 # 2,000,000 x 20 -> 2, float32
    .venv/bin/python benchmarks/bench_gd.py --rows 200000 --condition 1000

Two problems, float32 ``Y = X W^T + b + noise``: independent standard normal features, and the
same features mixed by a matrix ``U diag(s) V^T`` (U, V random rotations, singular values ``s``
evenly from 1 to ``--condition``), so that the standardized design is ill-conditioned. Timed
side by side in this process (best of ``--repeats``):

* ``LinearRegression().fit(X, Y)``;
* ``GradientDescentRegressor(dtype="float32")`` with default settings (tol=1e-6), and with
  ``tol=1e-12``: conjugate gradients; the fit is certified converged when the loss is within
  ``tol`` of the optimum computed from the statistics (``converged_``);
* plain gradient descent, the tutorial's iteration (``learning_rate`` set to the automatic step
  ``1/L`` explicitly, ``tol=1e-12``, ``max_epochs=20000``): what gd ran by default before;
* the cost of one epoch of each (the engine's ``run_epochs`` from prepared statistics).

``loss/opt-1`` is the training MSE over the optimum's (the closed form, float64) minus one.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from bench_solvers import best_of, mse  # the same measures as the solver benchmark
from sklearn.linear_model import LinearRegression

import gradfit
from gradfit.estimator import ConvergenceWarning, GradientDescentRegressor
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.engine import init_state, run_epochs
from gradfit.solvers.stats import SufficientStats


def make_problem(
    n: int, d: int, k: int, condition: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Features independent (condition 1) or mixed by U diag(1..condition) V^T."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32)
    if condition > 1:
        U, _ = np.linalg.qr(rng.normal(size=(d, d)))
        V, _ = np.linalg.qr(rng.normal(size=(d, d)))
        mix = (U @ np.diag(np.linspace(1.0, condition, d)) @ V.T).astype(np.float32)
        for s in range(0, n, 1 << 18):
            X[s : s + (1 << 18)] = X[s : s + (1 << 18)] @ mix
    X += rng.normal(size=d).astype(np.float32)
    W = rng.normal(size=(k, d)).astype(np.float32)
    Y = X @ W.T + rng.normal(size=k).astype(np.float32)
    Y += 0.5 * rng.standard_normal((n, k), dtype=np.float32)
    return X, Y


def per_epoch(X: np.ndarray, Y: np.ndarray, config: SolverConfig, epochs: int) -> float:
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    stats = SufficientStats.compute(Xt, Yt)
    state = init_state(Xt, Yt, config, stats=stats)
    t0 = time.perf_counter()
    run_epochs(state, Xt, Yt, epochs, stop_early=False, stats=stats)
    return (time.perf_counter() - t0) / epochs


def bench(X: np.ndarray, Y: np.ndarray, title: str, repeats: int) -> bool:
    exact = gradfit.least_squares(X, Y)
    optimum = mse(X, Y, exact.weight.numpy(), exact.bias.numpy())
    print(f"\n{title}  (condition number of the standardized X: {exact.condition_number:.3g})")
    head = f"{'method':44s} {'time [s]':>9s} {'/ LinReg':>9s} {'epochs':>7s} {'loss/opt-1':>11s}"
    print(head + "  certified")
    print("-" * (len(head) + 11))
    t_lr, lr = best_of(repeats, lambda: LinearRegression().fit(X, Y))
    assert isinstance(lr, LinearRegression)
    print(
        f"{'sklearn LinearRegression.fit':44s} {t_lr:9.3f} {1.0:9.3f} {'':>7s} "
        f"{mse(X, Y, lr.coef_, lr.intercept_) / optimum - 1:11.2e}"
    )
    plain_lr = init_state(
        torch.from_numpy(X), torch.from_numpy(Y), SolverConfig(solver="gd")
    ).learning_rate
    runs = {
        "gradfit gd, defaults (conjugate gradient)": {},
        "gradfit gd, tol=1e-12": {"tol": 1e-12},
        "plain gd: learning_rate=1/L, tol=1e-12": {
            "tol": 1e-12,
            "learning_rate": plain_lr,
            "max_epochs": 20000,
        },
    }
    met = False
    for name, params in runs.items():

        def fit(params: dict[str, float] = params) -> GradientDescentRegressor:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                return GradientDescentRegressor(dtype="float32", **params).fit(X, Y)  # type: ignore[arg-type]

        t, est = best_of(1 if "plain" in name else repeats, fit)
        assert isinstance(est, GradientDescentRegressor)
        excess = mse(X, Y, est.coef_, est.intercept_) / optimum - 1
        print(
            f"{name:44s} {t:9.3f} {t / t_lr:9.3f} {est.n_iter_:7d} {excess:11.2e}  {est.converged_}"
        )
        if not params:
            met = t <= 0.5 * t_lr and est.converged_ and excess <= 1e-6
            print(
                f"target: defaults <= 0.5 x LinearRegression and certified within 1e-6: "
                f"{t / t_lr:.2f} x -> {'met' if met else 'MISSED'}"
            )
    sample = slice(0, min(len(X), 100_000))
    cg_epoch = per_epoch(X[sample], Y[sample], SolverConfig(solver="gd", tol=None), 200)
    plain = SolverConfig(solver="gd", tol=None, learning_rate=plain_lr)
    plain_epoch = per_epoch(X[sample], Y[sample], plain, 200)
    print(
        f"one epoch from the statistics: conjugate gradient {cg_epoch * 1e6:.0f} us, "
        f"plain gradient descent {plain_epoch * 1e6:.0f} us"
    )
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--targets", type=int, default=2)
    parser.add_argument("--condition", type=float, default=100.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n, d, k = args.rows, args.features, args.targets
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; float32 data")
    for condition in (1.0, args.condition):
        X, Y = make_problem(n, d, k, condition, args.seed)
        kind = "independent" if condition == 1 else f"correlated (singular values 1..{condition:g})"
        bench(X, Y, f"{n:,} x {d} -> {k}, {kind} features", args.repeats)


if __name__ == "__main__":
    main()
