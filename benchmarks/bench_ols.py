"""``gradfit.ols`` in memory against R's ``lm`` + ``summary`` and ``numpy.linalg.lstsq``.

For each problem (``--sizes``, default 200,000 × 20 and 1,000,000 × 50, float64) and each
number of targets (``--targets``, default 1 and 10) it times, in turns, best of ``--repeats``:

* ``gradfit.ols(X, Y)`` (classical errors) and ``gradfit.ols(X, Y, cov_type=HCj)``, j = 0..3;
* ``numpy.linalg.lstsq`` of ``[X, 1]`` (the column of ones built beforehand, not timed);
* the arithmetic floor of the HC types: one ``X.T @ X`` (BLAS's ``syrk``, n × d²) and one
  ``X @ L`` (a GEMM with a d × d triangular L, in blocks of rows into one buffer: the rows
  ``A R⁻¹`` whose squares are the leverages). Each target's sandwich is its own weighted
  ``syrk`` (over d + 2 columns with an intercept), and HC2/HC3 add the GEMM once, so HC0/HC1
  cannot be faster than the classical fit plus k syrks, nor HC2/HC3 than that plus the GEMM:
  the ``floor ÷ classical`` column;
* R's ``fit <- lm(Y ~ X); s <- summary(fit)``, timed with ``system.time`` inside R
  (``Rscript``, R's reference BLAS: one thread; the data written by NumPy as raw float64 and
  read with ``readBin``, not timed), one R process per round, so that R and Python alternate;
  and, where R has the ``sandwich`` package, ``sandwich::vcovHC(fit, type = "HC3")`` on the
  same fit, added to it: the anchor of ``gradfit.ols(cov_type="HC3")``.

The data are ``Y = 1 + X W + noise`` with X standard normal shifted by 3, seeded; with
``--mix m`` (a list: one design each) the columns are correlated, ``X = Z + 3 m Z[:, 0] + 3``
(Z standard normal): the condition number of the centred, equilibrated design is about 1 at
m = 0 (the default), 26 at 0.5, 51 at 0.9, 180 at 3 and 530 at 9 (printed in the table's
``cond.`` column: a design of condition <= 1e3 takes the solver's Cholesky route, any other
Householder's QR; these at 200,000 × 20). It prints each time and the ratios: ols ÷ R (the
issue's target ≤ 0.5), ols ÷ lstsq (≤ 1.5) and HCj ÷ classical (≤ 1.3), next to the floor's
ratio (classical + k syrks [+ GEMM]) ÷ classical. ``--threads``:
NumPy's and torch's BLAS threads (default 1). Statsmodels is not used (not installed here).

    python benchmarks/bench_ols.py                       # the issue's sizes, 3 rounds
    python benchmarks/bench_ols.py --sizes 20000x10 --repeats 2   # a quick look
    python benchmarks/bench_ols.py --sizes 200000x20 --mix 0,0.5,0.9,9   # correlated designs
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

import gradfit

_R = r"""
args <- commandArgs(trailingOnly = TRUE)
n <- as.integer(args[2]); d <- as.integer(args[3]); k <- as.integer(args[4])
X <- matrix(readBin(file.path(args[1], "X.bin"), "double", n * d), n, d)
Y <- matrix(readBin(file.path(args[1], "Y.bin"), "double", n * k), n, k)
if (k == 1) Y <- Y[, 1]
t <- system.time({ fit <- lm(Y ~ X); s <- summary(fit) })[["elapsed"]]
hc <- NA  # sandwich::vcovHC(HC3) on the same fit, when the package is installed
if (args[5] == "1" && requireNamespace("sandwich", quietly = TRUE))
  hc <- system.time(v <- sandwich::vcovHC(fit, type = "HC3"))[["elapsed"]]
cat(sprintf("%.6f %.6f\n", t, hc))
"""

HC = ("HC0", "HC1", "HC2", "HC3")
_LABELS = {
    "ols": "gradfit.ols (classical)",
    "lstsq": "numpy.linalg.lstsq",
    "R": "R lm + summary",
    "R HC3": "R lm + summary + sandwich::vcovHC(HC3)",
    "syrk": "floor: X.T @ X (syrk, one target's sandwich)",
    "gemm": "floor: X @ L (GEMM, the leverages of HC2/HC3)",
}


def _best(times: dict[str, list[float]], name: str, f: Callable[[], object]) -> None:
    start = time.perf_counter()
    f()
    times.setdefault(name, []).append(time.perf_counter() - start)


_BLOCK = 1 << 14


def _rows_times(X: np.ndarray, L: np.ndarray, out: np.ndarray) -> None:
    """``X @ L`` a block of rows at a time into one buffer, as ``gradfit.ols`` forms the
    rows ``A R⁻¹`` of the leverages (one product of n × d², no n × d array allocated)."""
    for start in range(0, X.shape[0], _BLOCK):
        block = X[start : start + _BLOCK]
        np.matmul(block, L, out=out[: block.shape[0]])


def run(
    n: int, d: int, k: int, repeats: int, folder: Path, mix: float = 0.0, r_hc3: bool = True
) -> dict[str, float]:
    rng = np.random.default_rng(12345 + n + d + k)
    X = rng.standard_normal((n, d))
    X += 3.0 * mix * X[:, [0]] + 3.0
    Y = 1.0 + X @ rng.standard_normal((d, k)) + rng.standard_normal((n, k))
    y = Y[:, 0] if k == 1 else Y
    X.T.tofile(folder / "X.bin")  # column-major, as R's matrix() fills
    Y.T.tofile(folder / "Y.bin")
    X1 = np.column_stack([X, np.ones(n)])
    L = np.triu(rng.standard_normal((d, d)))  # the shape of R⁻¹
    rows = np.empty((min(n, _BLOCK), d))
    script = folder / "lm.R"
    script.write_text(_R)
    times: dict[str, list[float]] = {}
    for _ in range(repeats):
        # untimed: the first work after R's process (which read X and left the caches cold)
        # paid up to 2.5x at 1,000,000 × 50, whichever method came first
        gradfit.ols(X, y)
        _best(times, "ols", lambda: gradfit.ols(X, y))
        for cov in HC:
            _best(times, f"ols {cov}", lambda cov=cov: gradfit.ols(X, y, cov_type=cov))  # type: ignore[misc]
        _best(times, "lstsq", lambda: np.linalg.lstsq(X1, y, rcond=None))
        _best(times, "syrk", lambda: X.T @ X)
        _best(times, "gemm", lambda: _rows_times(X, L, rows))
        if shutil.which("Rscript"):
            out = subprocess.run(
                ["Rscript", str(script), str(folder), str(n), str(d), str(k), str(int(r_hc3))],
                check=True,
                capture_output=True,
                text=True,
            )
            r_time, r_hc = out.stdout.split()[-2:]
            times.setdefault("R", []).append(float(r_time))
            if r_hc != "NA":
                times.setdefault("R HC3", []).append(float(r_time) + float(r_hc))
    best = {name: min(values) for name, values in times.items()}
    best["condition"] = float(gradfit.least_squares(X, y).condition_number)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200000x20,1000000x50")
    parser.add_argument("--targets", default="1,10")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--no-r-hc3",
        action="store_true",
        help="leave out R's sandwich::vcovHC (minutes at 1,000,000 × 50 with ten targets)",
    )
    parser.add_argument(
        "--mix",
        default="0",
        help="correlated designs X = Z + 3 mix Z[:, 0] + 3, one per value (default 0: i.i.d.)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS/LAPACK threads of NumPy and torch (default 1: R's reference BLAS has one, "
        "and on a shared machine threads that wait on each other make the times noise)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    print(f"threads: {args.threads}")
    print(
        "| n × d | cond. | targets | method | time [s] | ÷ R lm+summary | ÷ lstsq | ÷ classical "
        "| floor ÷ classical |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            n, d = (int(part) for part in size.split("x"))
            for mix, k in (
                (float(m), int(t)) for m in args.mix.split(",") for t in args.targets.split(",")
            ):
                best = run(n, d, k, args.repeats, Path(tmp), mix, not args.no_r_hc3)
                r, lstsq, classical = best.get("R", float("nan")), best["lstsq"], best["ols"]
                # the floor of each HC type: the classical fit, k syrks, and the GEMM of the
                # leverages for HC2/HC3, all timed in this run
                floor = {
                    cov: classical
                    + k * best["syrk"]
                    + (best["gemm"] if cov in ("HC2", "HC3") else 0.0)
                    for cov in HC
                }
                for name in (
                    "ols",
                    *(f"ols {cov}" for cov in HC),
                    "lstsq",
                    "R",
                    "R HC3",
                    "syrk",
                    "gemm",
                ):
                    if name not in best:
                        continue
                    t = best[name]
                    label = _LABELS.get(name) or f"gradfit.ols({name.split()[1]})"
                    cov = name.split()[-1] if name.startswith("ols ") else ""
                    bound = f"{floor[cov] / classical:.2f}" if cov in floor else ""
                    if name in ("syrk", "gemm"):  # a part of the floor: its time alone
                        ratios = f"{t:.4f} |  |  | {t / classical:.2f}"
                    else:
                        ratios = f"{t:.3f} | {t / r:.2f} | {t / lstsq:.2f} | {t / classical:.2f}"
                    print(
                        f"| {n:,} × {d} | {best['condition']:.0f} | {k} | {label} | {ratios} | "
                        f"{bound} |",
                        flush=True,
                    )
                if "R HC3" in best:
                    print(
                        f"|  |  |  | gradfit.ols(HC3) ÷ R lm + summary + vcovHC(HC3) | "
                        f"{best['ols HC3'] / best['R HC3']:.2f} |  |  |  |  |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
