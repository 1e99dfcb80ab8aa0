"""Data-parallel sgd: from how many rows per process per step does a step's arithmetic, not
its exchange between the processes, take most of its time? (The figure behind the warning of
:func:`gradfit.group_checks._warn_small_batches`.)

    python benchmarks/bench_sgd_exchange.py [--features 10,100,1000] [--repeats 7]

Starts 2 processes in a gloo group (file store, one thread each, as torchrun sets
OMP_NUM_THREADS=1). In each, for each feature count ``d`` (one target, float64: the defaults),
side by side and interleaved, best of ``--repeats`` blocks:

* the exchange of one step: :meth:`gradfit.distributed.TorchCommunicator.sum` of the
  ``d + 4`` float64 sums (what :func:`gradfit.solvers.minibatch.parallel_sgd_epoch` adds over
  the group), both processes calling together;
* the arithmetic of one step on ``r`` rows of this process: the rows taken from a larger
  array (a copy, as a batch is), standardized in place,
  :func:`gradfit.losses.squared_error_gradient`, and the sums packed, as in that function.

Prints rank 0's times and the row count at which the arithmetic equals the exchange
(interpolated, log-log, between the measured counts). Data reading is not counted: it only
adds to the arithmetic's side, so the figure is an upper bound of where the exchange stops
dominating.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROWS = (64, 256, 1024, 4096, 16384, 65536)


def _block(fn: object, calls: int) -> float:
    """Seconds per call of ``fn()`` over ``calls`` calls."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()  # type: ignore[operator]
    return (time.perf_counter() - start) / calls


def _worker(store: str, rank: int, features: list[int], repeats: int, out: str) -> None:
    import torch.distributed as dist

    from gradfit.distributed import TorchCommunicator
    from gradfit.losses import squared_error_gradient

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"file://{store}",
        rank=rank,
        world_size=2,
        timeout=datetime.timedelta(seconds=600),
    )
    comm = TorchCommunicator()
    results: dict[str, dict[str, float]] = {}
    try:
        for d in features:
            gen = torch.Generator().manual_seed(rank)
            pool = torch.randn(max(ROWS) * 2, d, generator=gen, dtype=torch.float64)
            Y = torch.randn(max(ROWS) * 2, 1, generator=gen, dtype=torch.float64)
            W, b = torch.zeros(1, d, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
            mean, scale = pool.mean(0), pool.std(0)
            sums = torch.zeros(d + 1 + 3, dtype=torch.float64)

            def exchange(sums: torch.Tensor = sums) -> None:
                comm.sum(sums)

            def step(
                r: int,
                pool: torch.Tensor = pool,
                Y: torch.Tensor = Y,
                W: torch.Tensor = W,
                b: torch.Tensor = b,
                mean: torch.Tensor = mean,
                scale: torch.Tensor = scale,
                d: int = d,
            ) -> None:
                zb, yb = pool[r : 2 * r].clone(), Y[r : 2 * r].clone()
                zb.sub_(mean).div_(scale)
                sse, gW, gb = squared_error_gradient(zb, yb, W, b)
                packed = torch.zeros(d + 1 + 3, dtype=torch.float64)
                packed[:d] = gW.double().reshape(-1) * r
                packed[d : d + 1] = gb.double() * r
                packed[d + 1] = float(sse)
                packed[d + 2] = r

            for _ in range(50):  # warm up the connection and the kernels
                exchange()
                step(ROWS[0])
            best = {"exchange": math.inf, **{str(r): math.inf for r in ROWS}}
            for _ in range(repeats):
                dist.barrier()
                best["exchange"] = min(best["exchange"], _block(exchange, 300))
                for r in ROWS:
                    calls = max(3, min(300, 2_000_000 // (r * d)))
                    best[str(r)] = min(best[str(r)], _block(lambda r=r: step(r), calls))
            results[str(d)] = best
    finally:
        dist.destroy_process_group()
    if rank == 0:
        Path(out).write_text(json.dumps(results))


def _crossing(times: dict[str, float]) -> float | None:
    """The row count at which the arithmetic equals the exchange (log-log interpolation)."""
    exchange = times["exchange"]
    for lo, hi in itertools.pairwise(ROWS):
        t_lo, t_hi = times[str(lo)], times[str(hi)]
        if t_lo < exchange <= t_hi:
            f = math.log(exchange / t_lo) / math.log(t_hi / t_lo)
            return math.exp(math.log(lo) + f * math.log(hi / lo))
    if times[str(ROWS[0])] >= exchange:
        return float(ROWS[0])
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", default="10,100,1000")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    features = [int(f) for f in args.features.split(",")]
    if args.worker:
        store, rank, out = args.worker
        _worker(store, int(rank), features, args.repeats, out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        store, out = os.path.join(tmp, "store"), os.path.join(tmp, "out.json")
        env = dict(os.environ, OMP_NUM_THREADS="1")
        argv = [sys.executable, __file__, "--features", args.features]
        argv += ["--repeats", str(args.repeats), "--worker", store]
        procs = [subprocess.Popen([*argv, str(rank), out], env=env) for rank in (0, 1)]
        if any(p.wait() != 0 for p in procs):
            raise SystemExit("a worker failed")
        results = json.loads(Path(out).read_text())
    print(f"torch {torch.__version__}, 2 gloo processes, 1 thread each; best of {args.repeats}")
    header = "".join(f"{r:>10,}" for r in ROWS)
    print(f"{'d':>6} {'exchange':>10} | arithmetic per step at rows per process:{'':>2}")
    print(f"{'':>6} {'(us)':>10} | {header}   rows where equal")
    for d, times in results.items():
        steps = "".join(f"{times[str(r)] * 1e6:>10.1f}" for r in ROWS)
        cross = _crossing(times)
        where = f"{cross:,.0f}" if cross is not None else f"> {ROWS[-1]:,}"
        print(f"{d:>6} {times['exchange'] * 1e6:>10.1f} | {steps}   {where}")


if __name__ == "__main__":
    main()
