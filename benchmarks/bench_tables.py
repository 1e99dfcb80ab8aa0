"""Real tables streamed: a categorical column, a weight column and missing cells, against a read.

Writes a CSV file of about ``--mb`` megabytes (1,000 by default: the issue's 1 GB) and its
Parquet copy: ``--features`` float columns ``x0..``, a text column ``g`` of ``--levels`` levels
(50), a weight column ``w`` and the target ``y``, with about ``--missing`` (1 %) of the ``x0``
cells empty. For each format it times, side by side in this process (the machine may be
shared: read the ratios):

* pyarrow's read of the whole file (``pyarrow.csv.read_csv`` / ``pyarrow.parquet.read_table``):
  the floor of any pass over it;
* the levels pass alone: what a streamed fit does first (the categorical column only, read
  batch by batch into a :class:`gradfit.design.LevelGatherer`; Parquet reads just that column);
* ``gradfit.fit(..., stream=True)`` of ``y`` on the numeric columns alone (``lstsq``, no
  design: the plain road);
* the same fit with ``g`` categorical, ``--weights w`` and ``missing="drop"`` (the default
  features, R's ``y ~ .``: the levels pass, then every batch encoded by the frozen design).

The issue's target: the levels pass costs at most 0.25 of a read on Parquet.

    python benchmarks/bench_tables.py                 # 1 GB
    python benchmarks/bench_tables.py --mb 200 --repeat 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq

import gradfit
from gradfit.data import open_stream
from gradfit.design import LevelGatherer
from gradfit.solvers.config import SolverConfig

_CHUNK_ROWS = 200_000


def generate(folder: Path, megabytes: float, d: int, levels: int, missing: float) -> Path:
    """The CSV file (about ``megabytes`` MB) and its Parquet copy (row groups of 1M rows)."""
    rng = np.random.default_rng(0)
    csv = folder / "tables.csv"
    names = [*(f"x{j}" for j in range(d)), "g", "w", "y"]
    types = [*(pa.float64() for _ in range(d)), pa.string(), pa.float64(), pa.float64()]
    schema = pa.schema(list(zip(names, types, strict=True)))
    labels = np.array([f"level{i:02d}" for i in range(levels)], dtype=object)
    effects = rng.normal(size=levels)
    beta = rng.normal(size=d)
    with (
        pv.CSVWriter(str(csv), schema) as writer,
        pq.ParquetWriter(str(folder / "tables.parquet"), schema) as parquet,
    ):
        while csv.stat().st_size < megabytes * 1e6:
            X = rng.standard_normal((_CHUNK_ROWS, d))
            g = rng.integers(0, levels, _CHUNK_ROWS)
            y = X @ beta + effects[g] + rng.standard_normal(_CHUNK_ROWS)
            w = rng.uniform(0.5, 2.0, _CHUNK_ROWS)
            x0 = pa.array(X[:, 0], mask=rng.random(_CHUNK_ROWS) < missing)
            columns = [x0, *(pa.array(X[:, j]) for j in range(1, d))]
            columns += [pa.array(labels[g]), pa.array(w), pa.array(y)]
            table = pa.Table.from_arrays(columns, schema=schema)
            writer.write_table(table)
            parquet.write_table(table, row_group_size=1_000_000)
    return csv


def best(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def levels_pass(path: Path, column: str) -> dict[str, tuple[object, ...]]:
    """The streamed fit's first pass: the categorical column alone, batch by batch."""
    stream = open_stream(path)
    gatherer = LevelGatherer([column], source=stream.source)
    for distinct in stream.distinct_values([], [column]):
        gatherer.update_values(column, distinct[column])
    return gatherer.levels()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=1000.0, help="CSV size in MB (1000)")
    parser.add_argument("--features", type=int, default=8, help="numeric features (8)")
    parser.add_argument("--levels", type=int, default=50, help="levels of g (50)")
    parser.add_argument("--missing", type=float, default=0.01, help="share of empty x0 (0.01)")
    parser.add_argument("--repeat", type=int, default=2, help="timings, best of (2)")
    args = parser.parse_args()
    lstsq = SolverConfig(solver="lstsq")
    numeric = [f"x{j}" for j in range(1, args.features)]  # x0 (with gaps) left out
    with tempfile.TemporaryDirectory() as tmp:
        csv = generate(Path(tmp), args.mb, args.features, args.levels, args.missing)
        files = {"CSV": csv, "Parquet": csv.with_suffix(".parquet")}
        print(
            f"{args.mb:g} MB CSV, {args.features} numeric columns, a {args.levels}-level text "
            f"column, weights, {args.missing:.0%} of x0 empty; best of {args.repeat}\n"
        )
        print("| format | size [MB] | pyarrow read [s] | levels pass [s] | ÷ read | plain fit [s] "
              "| ÷ read | fit with g, w, missing [s] | ÷ read | ÷ plain fit |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for kind, path in files.items():
            read = (
                (lambda p=path: pv.read_csv(p))
                if kind == "CSV"
                else (lambda p=path: pq.read_table(p))
            )
            t_read = best(args.repeat, read)
            found = levels_pass(path, "g")
            assert len(found["g"]) == args.levels
            t_levels = best(args.repeat, lambda p=path: levels_pass(p, "g"))
            t_plain = best(
                args.repeat,
                lambda p=path: gradfit.fit(p, ["y"], numeric, lstsq, stream=True, inference=None),
            )
            t_real = best(
                args.repeat,
                lambda p=path: gradfit.fit(
                    p, ["y"], config=lstsq, weights="w", missing="drop", stream=True, inference=None
                ),
            )
            size = path.stat().st_size / 1e6
            print(
                f"| {kind} | {size:.0f} | {t_read:.2f} | {t_levels:.2f} | {t_levels / t_read:.2f} "
                f"| {t_plain:.2f} | {t_plain / t_read:.2f} | {t_real:.2f} | {t_real / t_read:.2f} "
                f"| {t_real / t_plain:.2f} |"
            )
        check = gradfit.fit(csv, ["y"], config=lstsq, weights="w", missing="drop", stream=True)
        print(
            f"\n(the fit with g: {len(check.model.feature_names)} coefficients, "
            f"{check.rows_dropped:,} rows dropped for missing x0)"
        )


if __name__ == "__main__":
    main()
