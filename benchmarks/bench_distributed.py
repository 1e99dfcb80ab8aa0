"""Data-parallel fits: the statistics pass on 1 and on 2 processes over the same files, and the
bytes each process sends per fit.

    python benchmarks/bench_distributed.py [--rows 4000000] [--files 8] [--features 10]

Writes a directory of Parquet files (float64; ``--files`` files of ``--rows / --files`` rows,
row groups of 256k rows) in a temporary folder, then times ``fit_stream(..., solver="gd")`` (the
statistics pass and the gd steps from them) in one process and in a group of 2 (gloo, file
store), each process reading its shard. Also runs lstsq (TSQR) and sgd (a few epochs) on the
group and counts what each process hands to the collectives (a :class:`Counting` wrapper of
:class:`gradfit.distributed.TorchCommunicator`). On a 2-core machine two processes share the
two cores that one process's pyarrow threads already use: the ratio measures the overhead of
the group, and the speed-up a machine with more cores gets.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch


class Counting:
    """A communicator that counts the bytes this process sends into each collective."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.rank = inner.rank  # type: ignore[attr-defined]
        self.world = inner.world  # type: ignore[attr-defined]
        self.sent = 0
        self.calls = 0

    def gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        self.sent += tensor.numel() * tensor.element_size()
        self.calls += 1
        return self.inner.gather(tensor)  # type: ignore[attr-defined, no-any-return]

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        parts = self.gather(tensor)
        total = parts[0].clone()
        for part in parts[1:]:
            total += part
        return total

    def broadcast_bytes(self, data: bytes | None) -> bytes:
        self.calls += 1
        return self.inner.broadcast_bytes(data)  # type: ignore[attr-defined, no-any-return]

    def check(self, error: BaseException | None) -> None:
        self.sent += 8
        self.calls += 1
        self.inner.check(error)  # type: ignore[attr-defined]


def _write(root: Path, rows: int, files: int, d: int) -> Path:
    rng = np.random.default_rng(0)
    folder = root / "data"
    folder.mkdir()
    per = rows // files
    W = rng.normal(size=(2, d))
    for i in range(files):
        X = rng.normal(size=(per, d))
        Y = X @ W.T + rng.normal(size=(per, 2)) * 0.1
        cols = {f"x{j}": X[:, j] for j in range(d)}
        cols.update(y1=Y[:, 0], y2=Y[:, 1])
        pq.write_table(pa.table(cols), folder / f"part{i:03d}.parquet", row_group_size=1 << 18)
    return folder


def _worker(store: str, rank: int, world: int, folder: str, out: str) -> None:
    import torch.distributed as dist

    from gradfit.distributed import TorchCommunicator
    from gradfit.solvers.config import SolverConfig
    from gradfit.streaming import fit_stream

    dist.init_process_group(
        "gloo",
        init_method=f"file://{store}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=600),
    )
    results = {}
    try:
        for solver, epochs in (("gd", 1000), ("lstsq", 1), ("sgd", 2)):
            comm = Counting(TorchCommunicator())
            config = SolverConfig(solver=solver, max_epochs=epochs, batch_size=1024)
            dist.barrier()
            start = time.perf_counter()
            report = fit_stream(folder, ["y1", "y2"], None, config, comm=comm, dtype=torch.float64)
            seconds = time.perf_counter() - start
            results[solver] = {
                "seconds": seconds,
                "bytes_sent": comm.sent,
                "collectives": comm.calls,
                "epochs": report.result.n_iter,
                "weight": report.result.weight.tolist(),
            }
    finally:
        dist.destroy_process_group()
    if rank == 0:
        Path(out).write_text(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        store, rank, world, folder, out = args.worker
        _worker(store, int(rank), int(world), folder, out)
        return

    from gradfit.solvers.config import SolverConfig
    from gradfit.streaming import fit_stream

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = _write(root, args.rows, args.files, args.features)
        size = sum(f.stat().st_size for f in folder.iterdir())
        print(f"data: {args.files} Parquet files, {args.rows:,} rows x {args.features} "
              f"features + 2 targets, {size / 2**20:.0f} MiB")  # fmt: skip
        one = {}
        for solver, epochs in (("gd", 1000), ("lstsq", 1), ("sgd", 2)):
            config = SolverConfig(solver=solver, max_epochs=epochs, batch_size=1024)
            fit_stream(folder, ["y1", "y2"], None, SolverConfig(max_epochs=1))  # warm the cache
            start = time.perf_counter()
            report = fit_stream(folder, ["y1", "y2"], None, config, dtype=torch.float64)
            one[solver] = (time.perf_counter() - start, report.result.weight)
        env = dict(os.environ)
        env["OMP_NUM_THREADS"] = "1"
        out = root / "group.json"
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    str(root / "store"),
                    str(r),
                    "2",
                    str(folder),
                    str(out),
                ],
                env=env,
            )
            for r in range(2)
        ]
        for proc in procs:
            proc.wait(timeout=1200)
        group = json.loads(out.read_text())
        print(f"{'solver':<7}{'1 process':>12}{'2 processes':>14}{'ratio':>8}"
              f"{'max |dw|/|w|':>14}{'bytes sent/process':>20}{'collectives':>13}")  # fmt: skip
        for solver, (t1, w1) in one.items():
            g = group[solver]
            w2 = torch.tensor(g["weight"], dtype=torch.float64)
            dw = float((w2 - w1).abs().max() / w1.abs().max())
            print(f"{solver:<7}{t1:>10.2f} s{g['seconds']:>12.2f} s{g['seconds'] / t1:>8.2f}"
                  f"{dw:>14.1e}{g['bytes_sent']:>20,}{g['collectives']:>13,}")  # fmt: skip


if __name__ == "__main__":
    main()
