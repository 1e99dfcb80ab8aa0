"""Streamed ``lstsq`` and ``gd`` on Parquet files of the same rows in row groups of different
sizes, against ``pyarrow.parquet.read_table`` of each file, in one process (issue 23).

Run::

    .venv/bin/python benchmarks/bench_row_groups.py                      # 1,000,000 x 13
    .venv/bin/python benchmarks/bench_row_groups.py --rows 2000000 --groups 2000,20000
    .venv/bin/python benchmarks/bench_row_groups.py --dir /tmp/g --reuse  # keep the files

The data: ``rows`` x 13 float64 columns (11 features, 2 targets), written once per row-group
size. Interleaved round by round (each round reads each file and fits it, the read again right
before each fit; the best of ``--repeats`` rounds is kept), so that a busy machine slows all of
them alike. Printed: the times and the ratios of the issue's targets (streamed lstsq / read
<= 1.5, streamed gd / read <= 2.0). To compare two versions of gradfit, run this script under
each (``PYTHONPATH=...``) in turn, several times.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gradfit.solvers.config import SolverConfig
from gradfit.streaming import fit_stream


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def write(directory: Path, rows: int, groups: list[int], seed: int, reuse: bool) -> list[Path]:
    paths = [directory / f"rows_{size}.parquet" for size in groups]
    if reuse and all(p.exists() for p in paths):
        return paths
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, 11))
    Y = X @ rng.standard_normal((11, 2)) + rng.standard_normal((rows, 2))
    table = pa.table({**{f"x{i}": X[:, i] for i in range(11)}, "y0": Y[:, 0], "y1": Y[:, 1]})
    for size, path in zip(groups, paths, strict=True):
        pq.write_table(table, path, row_group_size=size)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--groups", default="2000,10000,65536,1000000", help="rows per group")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument("--dir", type=Path, help="where to write the data (kept)")
    parser.add_argument("--reuse", action="store_true", help="use the files already in --dir")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="gradfit-bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        groups = [int(g) for g in args.groups.split(",")]
        paths = write(directory, args.rows, groups, args.seed, args.reuse)
        print(f"{args.rows:,} rows x 13 float64; best of {args.repeats} interleaved rounds\n")
        best: dict[tuple[Path, str], float] = {}
        for _ in range(args.repeats):
            for path in paths:
                for solver in ("lstsq", "gd"):
                    runs = {
                        "read_table": lambda p=path: pq.read_table(p),
                        solver: lambda p=path, s=solver: fit_stream(
                            p, ["y0", "y1"], config=SolverConfig(s)
                        ),
                    }
                    for name, run in runs.items():
                        seconds = timed(run)
                        best[path, name] = min(best.get((path, name), float("inf")), seconds)
        print(f"{'rows per group':>15} {'groups':>7} {'read_table':>11} {'lstsq':>15} {'gd':>15}")
        for size, path in zip(groups, paths, strict=True):
            read = best[path, "read_table"]
            lstsq, gd = best[path, "lstsq"], best[path, "gd"]
            count = pq.read_metadata(path).num_row_groups
            print(
                f"{size:>15,} {count:>7} {read:>9.3f} s {lstsq:>6.3f} s ({lstsq / read:4.2f}x) "
                f"{gd:>6.3f} s ({gd / read:4.2f}x)"
            )
        print("\ntargets: streamed lstsq / read_table <= 1.5, streamed gd / read_table <= 2.0")
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
