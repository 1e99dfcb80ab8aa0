"""Speed and memory of a streamed ``gradfit diagnose``, against pyarrow reading the file and
writing an output of the same size.

Run::

    .venv/bin/python benchmarks/bench_diagnose.py              # about 0.5 GB of CSV
    .venv/bin/python benchmarks/bench_diagnose.py --gb 2       # the issue's 2 GB

The data: ``rows x 6`` float64 columns (5 features, 1 target), written once as CSV to
``--dir`` (default: a temporary directory, removed at the end); the model: ``gradfit fit
--solver lstsq --stream`` of it. Measured:

* the floor: ``pyarrow.csv.read_csv`` of the file (multithreaded, whole in memory) plus
  ``pyarrow.parquet.write_table`` of a table of the output's shape (rows x 16 float64, as
  diagnose writes: row, fitted, residual, hat, 6 measures, 6 DFBETAS), in this process;
* ``gradfit diagnose MODEL DATA --stream --out rows.parquet --top 5`` in a fresh process under
  ``/usr/bin/time``: its wall time, the command's start-up (``gradfit --version``) apart, and
  its maximum resident memory.

Each is measured ``--repeat`` times, interleaved (floor, start-up, diagnose, floor, ...), and
the best of each is kept; the CPU seconds (user + system, every thread) are given beside the
wall time, being steadier than it on a shared machine.
"""

from __future__ import annotations

import argparse
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq

ROW_BYTES = 118  # bytes of one CSV row of 6 random float64 values, about


def write_data(path: Path, gigabytes: float, seed: int) -> int:
    rows = int(gigabytes * 1e9 / ROW_BYTES)
    rng = np.random.default_rng(seed)
    names = [f"x{i}" for i in range(5)]
    beta = rng.normal(size=5)
    done = 0
    with path.open("wb") as fh:
        while done < rows:
            m = min(500_000, rows - done)
            X = rng.normal(size=(m, 5))
            y = X @ beta + 0.5 * rng.normal(size=m)
            table = pa.table({**{n: X[:, i] for i, n in enumerate(names)}, "y": y})
            options = pv.WriteOptions(include_header=done == 0)
            pv.write_csv(table, fh, options)
            done += m
    return rows


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and maximum resident KiB of a fresh process."""
    start, cpu = time.perf_counter(), children_cpu()
    done = subprocess.run(
        ["/usr/bin/time", "-v", *argv], capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - start
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    return wall, children_cpu() - cpu, int(match.group(1)) if match else -1


def floor(data: Path, rows: int, directory: Path) -> tuple[float, float, float, float]:
    """pyarrow's read of the data and write of an output of diagnose's shape: (read wall,
    write wall, read CPU, write CPU) seconds."""
    start, cpu = time.perf_counter(), time.process_time()
    read = pv.read_csv(data)
    t_read, c_read = time.perf_counter() - start, time.process_time() - cpu
    del read
    output = pa.table({f"c{i}": np.random.default_rng(i).normal(size=rows) for i in range(16)})
    start, cpu = time.perf_counter(), time.process_time()
    pq.write_table(output, directory / "floor.parquet")
    t_write, c_write = time.perf_counter() - start, time.process_time() - cpu
    return t_read, t_write, c_read, c_write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=0.5)
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="bench_diagnose_"))
    gradfit = [sys.executable, "-m", "gradfit"]
    try:
        data = directory / "data.csv"
        rows = write_data(data, args.gb, args.seed)
        size = data.stat().st_size
        model = directory / "m.safetensors"
        subprocess.run(
            [*gradfit, "fit", str(data), "--target", "y", "--solver", "lstsq", "--stream",
             "--out", str(model), "--quiet"],
            check=True, capture_output=True,
        )  # fmt: skip
        out = directory / "rows.parquet"
        floors, starts, diags = [], [], []
        for _ in range(args.repeat):
            floors.append(floor(data, rows, directory))
            starts.append(timed([*gradfit, "--version"]))
            command = [*gradfit, "diagnose", str(model), str(data), "--stream"]
            diags.append(timed([*command, "--out", str(out), "--top", "5"]))
        t_read, t_write = min(f[0] for f in floors), min(f[1] for f in floors)
        c_read, c_write = min(f[2] for f in floors), min(f[3] for f in floors)
        t_start, c_start = min(s[0] for s in starts), min(s[1] for s in starts)
        t_diag, c_diag = min(d[0] for d in diags), min(d[1] for d in diags)
        rss = max(d[2] for d in diags)
        wall_floor, cpu_floor = t_read + t_write, c_read + c_write
        print(f"data: {rows:,} rows, {size / 1e9:.2f} GB of CSV; best of {args.repeat}")
        print(
            f"pyarrow read {t_read:.2f} s + parquet write of the output {t_write:.2f} s wall "
            f"(CPU {c_read:.2f} + {c_write:.2f} s)"
        )
        print(
            f"gradfit diagnose --stream: {t_diag:.2f} s wall ({t_diag - t_start:.2f} s after "
            f"a start-up of {t_start:.2f} s), {rss / 1024:.0f} MiB max RSS; "
            f"{(t_diag - t_start) / wall_floor:.2f}x the floor's wall time; CPU {c_diag:.2f} s "
            f"({c_diag - c_start:.2f} s after start-up), "
            f"{(c_diag - c_start) / cpu_floor:.2f}x the floor's CPU"
        )
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
