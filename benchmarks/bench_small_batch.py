"""Small-batch SGD: gradfit's compiled epoch against the tutorial's DataLoader loop, scikit-learn's
per-sample SGDRegressor and one sequential pass over X (issue 11).

Run (about a minute)::

    .venv/bin/python benchmarks/bench_small_batch.py                 # 200,000 x 20 -> 2, float32
    .venv/bin/python benchmarks/bench_small_batch.py --rows 50000 --repeats 5

Every timing is taken in this one process, side by side (the machine may be shared: compare
the ratios, not the seconds). The problem: float32 ``Y = X W^T + b + noise`` with shifted,
scaled features. What is timed, each best of ``--repeats``:

* one sequential pass over X (``X.sum(0)``): the floor of any epoch;
* the tutorial's loop at batch 5 (``TensorDataset`` + ``DataLoader(batch_size=5,
  shuffle=True)`` + ``nn.Linear`` + ``F.mse_loss`` + ``optim.SGD(lr=1e-3)``, the tutorial's
  ``fit``): the first ``--loader-batches`` batches, extrapolated to one epoch;
* scikit-learn ``SGDRegressor(max_iter=1, tol=None, penalty=None)``, one per target
  (``MultiOutputRegressor``): per-sample SGD, one epoch per target;
* gradfit ``GradientDescentRegressor(solver="sgd", max_epochs=1, tol=None, learning_rate=1e-3,
  dtype="float32")`` at batch 1, 5, 32 and 1024: the whole fit (validation, statistics, step
  bound, one epoch over all targets at once);
* the epoch alone (the engine's ``run_epochs`` on a prepared state), compiled and with the torch
  reference kernel (at small batches on the first ``--reference-rows`` rows, extrapolated).

The compile time of the numba kernel is measured in fresh processes with an empty cache
(``NUMBA_CACHE_DIR``): the first process compiles and stores, the second loads.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDRegressor
from sklearn.multioutput import MultiOutputRegressor
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import gradfit
from gradfit.estimator import GradientDescentRegressor
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.engine import EPOCH_KERNELS, EpochKernel, init_state, run_epochs
from gradfit.tutorial import fit as tutorial_fit

BATCHES = (1, 5, 32, 1024)

_COMPILE_PROBE = """
import time, torch
t0 = time.perf_counter()
from gradfit.solvers import compiled
assert compiled.available()
t1 = time.perf_counter()
for dtype in (torch.float32, torch.float64):
    X, Y = torch.ones(8, 2, dtype=dtype), torch.ones(8, 1, dtype=dtype)
    W, b, z = torch.zeros(1, 2, dtype=dtype), torch.zeros(1, dtype=dtype), torch.zeros(2)
    compiled.sgd_epoch(X, Y, W, b, None, None, None, z, z + 1, lr=0.1, momentum=0.0,
                       nesterov=False, weight_decay=0.0, l1=0.0, standardize=True,
                       fit_intercept=True, batch_size=2, check_every=1, limit=1e300)
print(t1 - t0, time.perf_counter() - t1)
"""


def compile_times() -> tuple[tuple[float, float], tuple[float, float]]:
    """(import, first calls) in a process with an empty numba cache, then in one that loads it."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        runs = []
        for _ in range(2):
            out = subprocess.run(
                [sys.executable, "-c", _COMPILE_PROBE],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()
            runs.append((float(out[0]), float(out[1])))
    return runs[0], runs[1]


def make_problem(n: int, d: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32)
    X = X * rng.uniform(0.5, 2.0, size=d).astype(np.float32) + rng.normal(size=d).astype(np.float32)
    W = rng.normal(size=(k, d)).astype(np.float32)
    Y = X @ W.T + rng.normal(size=k).astype(np.float32)
    Y += 0.5 * rng.standard_normal((n, k), dtype=np.float32)
    return X, Y


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def mse(X: np.ndarray, Y: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> float:
    err = X.astype(np.float64) @ np.atleast_2d(coef).T.astype(np.float64) + intercept - Y
    return float(np.mean(err * err))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--targets", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loader-batches", type=int, default=4000)
    parser.add_argument("--reference-rows", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-compile-time", action="store_true")
    args = parser.parse_args()
    n, d, k, R = args.rows, args.features, args.targets, args.repeats

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; gradfit sgd kernels:")
    if not args.no_compile_time:
        (imp0, call0), (imp1, call1) = compile_times()
        print(
            f"  numba kernel, empty cache: import {imp0:.2f} s + compile (2 dtypes) {call0:.2f} s;"
            f" cached: import {imp1:.2f} s + load {call1:.2f} s"
        )
    X, Y = make_problem(n, d, k, args.seed)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    exact = gradfit.least_squares(X, Y)
    optimum = mse(X, Y, exact.weight.numpy(), exact.bias.numpy())
    rows: list[tuple[str, float, str]] = []

    t_pass = best_of(max(R, 5), lambda: Xt.sum(0))
    rows.append(("one sequential pass over X (X.sum(0))", t_pass, ""))

    # -- the tutorial's loop, batch 5, a part of an epoch extrapolated
    gen = torch.Generator().manual_seed(args.seed)
    loader = DataLoader(TensorDataset(Xt, Yt), batch_size=5, shuffle=True, generator=gen)
    linear = nn.Linear(d, k)
    opt = torch.optim.SGD(linear.parameters(), lr=1e-3)
    part = min(args.loader_batches, len(loader))
    t0 = time.perf_counter()
    tutorial_fit(1, linear, F.mse_loss, opt, itertools.islice(loader, part))
    t_loop = (time.perf_counter() - t0) * len(loader) / part
    rows.append((f"tutorial DataLoader loop, batch 5 ({part} batches timed)", t_loop, ""))

    # -- scikit-learn, per sample, one estimator per target
    def sklearn_sgd() -> MultiOutputRegressor:
        est = SGDRegressor(max_iter=1, tol=None, penalty=None, random_state=args.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return MultiOutputRegressor(est).fit(X, Y)

    t_skl = best_of(R, sklearn_sgd)
    rows.append((f"sklearn SGDRegressor, 1 epoch x {k} targets", t_skl, ""))

    # -- gradfit
    fits: dict[int, float] = {}
    for B in BATCHES:

        def fit(B: int = B) -> GradientDescentRegressor:
            return GradientDescentRegressor(
                solver="sgd",
                batch_size=B,
                max_epochs=1,
                tol=None,
                learning_rate=1e-3,
                dtype="float32",
                random_state=args.seed,
            ).fit(X, Y)

        fit()  # loads the compiled kernel once, outside the timing
        fits[B] = best_of(R, fit)
        est = fit()
        excess = mse(X, Y, est.coef_, est.intercept_) / optimum - 1
        rows.append((f"gradfit sgd fit, 1 epoch, batch {B}", fits[B], f"loss/opt-1 {excess:.2e}"))

    epochs: dict[int, float] = {}
    numba, reference = EPOCH_KERNELS[0], EPOCH_KERNELS[-1]

    def epoch_time(B: int, kernel: EpochKernel, m: int, repeats: int) -> float:
        config = SolverConfig(solver="sgd", batch_size=B, learning_rate=1e-3, tol=None)
        Xs, Ys = Xt[:m], Yt[:m]
        state = init_state(Xs, Ys, config, random_state=args.seed)
        return best_of(
            repeats, lambda: run_epochs(state, Xs, Ys, 1, stop_early=False, kernels=(kernel,))
        )

    for B in BATCHES:
        epochs[B] = epoch_time(B, numba, n, R)
        m = n if B >= 256 else min(n, args.reference_rows)
        rows.append((f"  epoch alone, batch {B}: compiled", epochs[B], ""))
        note = "" if m == n else f"{m} rows timed, extrapolated"
        t_ref = epoch_time(B, reference, m, 1) * n / m
        rows.append((f"  epoch alone, batch {B}: torch reference", t_ref, note))

    print(f"\n{n:,} x {d} -> {k}, float32")
    head = f"{'method':52s} {'time [s]':>10s} {'/ sklearn':>10s} {'DL loop /':>10s}"
    print(head)
    print("-" * len(head))
    for name, seconds, note in rows:
        print(
            f"{name:52s} {seconds:10.4f} {seconds / t_skl:10.3f} {t_loop / seconds:10.1f}  {note}"
        )

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    print(
        f"target batch 1 fit <= sklearn's {k} epochs (aim 0.5x): {fits[1] / t_skl:.2f}x "
        f"(epoch alone {epochs[1] / t_skl:.2f}x) -> {verdict(fits[1] <= t_skl)}"
    )
    print(
        f"target batch 5 fit >= 300x faster than the DataLoader loop: {t_loop / fits[5]:.0f}x "
        f"(epoch alone {t_loop / epochs[5]:.0f}x) -> {verdict(t_loop / fits[5] >= 300)}"
    )
    print(
        f"target batch 1024 epoch <= 20x one pass over X: {epochs[1024] / t_pass:.1f}x "
        f"(whole fit {fits[1024] / t_pass:.1f}x) -> {verdict(epochs[1024] <= 20 * t_pass)}"
    )


if __name__ == "__main__":
    main()
