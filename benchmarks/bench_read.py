"""How fast does ``gradfit.data.read_table`` read a numeric CSV file?

Generates a CSV file of random float64 features and targets (about ``--mb`` megabytes; 1000 by
default), then times ``read_table`` (and ``select``) on it and prints rows/s and MB/s.

    python benchmarks/bench_read.py --mb 200
    python benchmarks/bench_read.py --mb 200 --gzip --keep /tmp/bench.csv.gz
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv

from gradfit.data import read_table, select

_CHUNK_ROWS = 250_000


def generate(path: Path, megabytes: float, n_features: int, seed: int = 0) -> int:
    """Write a CSV file of at least ``megabytes`` MB; return its number of data rows."""
    rng = np.random.default_rng(seed)
    names = [f"x{j}" for j in range(n_features)] + ["y"]
    target = megabytes * 1e6
    rows = 0
    sink = pa.CompressedOutputStream(str(path), "gzip") if path.suffix == ".gz" else str(path)
    with pv.CSVWriter(sink, pa.schema([(name, pa.float64()) for name in names])) as writer:
        while True:
            X = rng.standard_normal((_CHUNK_ROWS, n_features))
            y = X @ rng.standard_normal(n_features) + 0.1 * rng.standard_normal(_CHUNK_ROWS)
            columns = [pa.array(X[:, j]) for j in range(n_features)] + [pa.array(y)]
            writer.write_table(pa.table(columns, names=names))
            rows += _CHUNK_ROWS
            written = rows * _text_bytes_per_row(path, rows)
            if written >= target:
                return rows


def _text_bytes_per_row(path: Path, rows: int) -> float:
    # For a plain file the size on disk is the text size; for gzip, estimate from the ratio of
    # this benchmark's data (~2.2x), good enough to size the file.
    size = path.stat().st_size if path.exists() else 0
    ratio = 2.2 if path.suffix == ".gz" else 1.0
    return size * ratio / max(rows, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=1000.0, help="file size in MB (default 1000)")
    parser.add_argument("--features", type=int, default=10, help="feature columns (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="timed reads (default 3)")
    parser.add_argument("--gzip", action="store_true", help="write and read a .csv.gz file")
    parser.add_argument("--keep", type=Path, help="write the file here and keep it")
    args = parser.parse_args()

    directory = tempfile.mkdtemp(prefix="gradfit-bench-")
    suffix = ".csv.gz" if args.gzip else ".csv"
    path = args.keep or Path(directory) / f"bench{suffix}"
    start = time.perf_counter()
    rows = generate(path, args.mb, args.features)
    size_mb = path.stat().st_size / 1e6
    print(
        f"generated {path}: {rows:,} rows x {args.features + 1} columns, {size_mb:,.1f} MB "
        f"on disk in {time.perf_counter() - start:.1f} s"
    )
    try:
        read_times, select_times = [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            table = read_table(path)
            read_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            X, Y, _, _ = select(table, ["y"])
            select_times.append(time.perf_counter() - start)
            if X.shape != (rows, args.features):
                raise SystemExit(f"read {X.shape}, expected {(rows, args.features)}")
            del table, X, Y
        best, median = min(read_times), statistics.median(read_times)
        print(f"cpus: {os.cpu_count()}  reads: {', '.join(f'{t:.2f}' for t in read_times)} s")
        print(
            f"read_table: best {best:.2f} s = {rows / best:,.0f} rows/s, "
            f"{size_mb / best:,.0f} MB/s on disk (median {median:.2f} s)"
        )
        print(f"select (to float64 X, Y): best {min(select_times):.2f} s")
    finally:
        if args.keep is None:
            path.unlink(missing_ok=True)
            os.rmdir(directory)


if __name__ == "__main__":
    main()
