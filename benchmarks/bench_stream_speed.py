"""Streamed ``lstsq`` and ``gd`` against pyarrow's read of the same file, in one run (issue 23).

Run::

    .venv/bin/python benchmarks/bench_stream_speed.py                  # 0.5 GB of CSV + Parquet
    .venv/bin/python benchmarks/bench_stream_speed.py --gb 1 --repeats 3
    .venv/bin/python benchmarks/bench_stream_speed.py --dir /tmp/d --reuse   # keep the files

The data are those of ``bench_stream.py`` (``rows x 12`` float64 columns: 10 features, 2
targets), written once as CSV and Parquet. Measured side by side, interleaved round by round
(each round runs every contender once, and the read again right before each in-process fit;
the best of ``--repeats`` rounds is kept), so that a busy machine slows all of them alike:

* in process: pyarrow's whole-file read (``pyarrow.csv.read_csv`` / ``pyarrow.parquet.
  read_table``, multithreaded), the stream's batches alone (every batch as the fits get it,
  nothing computed: the floor of both fits in bounded memory), for Parquet pyarrow's own
  bounded-memory read (``ParquetFile.iter_batches`` with its threads), ``fit_stream(solver=
  "lstsq")`` and ``fit_stream(solver="gd")``;
* as commands, each a fresh process: pyarrow's read in a fresh process (the imports of
  pyarrow counted apart: "fresh read"), the start-up of a fit command (a fresh Python that
  imports ``gradfit.cli`` and ``gradfit.streaming``: torch, pyarrow, NumPy), and
  ``gradfit fit FILE --target y0,y1 --stream --solver gd|lstsq --out m.safetensors`` under
  ``/usr/bin/time`` (wall time; the largest maximum resident memory of the rounds).

Printed: the times and the ratios of the issue's targets: streamed lstsq / read (<= 1.5),
streamed gd / ``read_table`` in process (<= 2.0), and the ``gd`` command / (fresh read +
start-up) (<= 2.0).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.csv as pv
import pyarrow.parquet as pq
from bench_stream import FRESH_READ, command, write_data

from gradfit.data import open_stream
from gradfit.solvers.config import SolverConfig
from gradfit.streaming import fit_stream


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def fresh_read(path: Path) -> float:
    """pyarrow's read of ``path`` in a fresh process, its imports not counted."""
    done = subprocess.run(
        [sys.executable, "-c", FRESH_READ, str(path)], capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip().splitlines()[-1])


COLUMNS = [*(f"x{i}" for i in range(10)), "y0", "y1"]


def read_batches(path: Path) -> None:
    """The stream's read alone: every batch of the 12 columns as the fits get them (stacked,
    checked, in bounded memory), nothing computed: the floor of both streamed fits."""
    for _ in open_stream(path).batches(COLUMNS):
        pass


def iter_batches(path: Path) -> None:
    """pyarrow's own read in bounded memory: ``ParquetFile.iter_batches`` with its threads,
    batches of 65,536 rows, nothing stacked or checked (Parquet only)."""
    with pq.ParquetFile(path) as pf:
        for _ in pf.iter_batches(batch_size=1 << 16, columns=COLUMNS, use_threads=True):
            pass


STARTUP = "import gradfit.cli, gradfit.streaming"  # what a fit command imports before its work


def startup() -> float:
    """Wall seconds of a fresh Python that imports what a fit command needs."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", STARTUP], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gb", type=float, default=0.5, help="CSV size in GB (0.5)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument("--dir", type=Path, help="where to write the data (kept)")
    parser.add_argument("--reuse", action="store_true", help="use the files already in --dir")
    parser.add_argument("--no-commands", action="store_true", help="in process only")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="gradfit-bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        csv_path, pq_path = directory / "data.csv", directory / "data.parquet"
        if not (args.reuse and csv_path.exists() and pq_path.exists()):
            write_data(directory, args.gb, True, args.seed)
        rows = pq.read_metadata(pq_path).num_rows
        print(
            f"{rows:,} rows x 12 float64: CSV {csv_path.stat().st_size / 1e9:.2f} GB, Parquet "
            f"{pq_path.stat().st_size / 1e9:.2f} GB ({pq.read_metadata(pq_path).num_row_groups} "
            f"row groups); best of {args.repeats} interleaved rounds\n"
        )
        model = directory / "model.safetensors"
        for kind, path in (("csv", csv_path), ("parquet", pq_path)):
            read_name = "read_csv" if kind == "csv" else "read_table"
            read = (lambda p=path: pv.read_csv(p)) if kind == "csv" else (
                lambda p=path: pq.read_table(p)
            )  # fmt: skip
            runs: dict[str, Callable[[], object]] = {
                read_name: read,
                "batches": lambda p=path: read_batches(p),
                **({"iter_batches": lambda p=path: iter_batches(p)} if kind == "parquet" else {}),
                "lstsq": lambda p=path: fit_stream(p, ["y0", "y1"], config=SolverConfig("lstsq")),
                "gd": lambda p=path: fit_stream(p, ["y0", "y1"], config=SolverConfig("gd")),
            }
            fit = ["fit", str(path), "--target", "y0,y1", "--quiet", "--stream", "--out"]
            if not args.no_commands:
                runs |= {
                    "fresh read": lambda p=path: fresh_read(p),
                    "start-up": startup,
                    "cmd lstsq": lambda f=fit: command([*f, str(model), "--solver", "lstsq"]),
                    "cmd gd": lambda f=fit: command([*f, str(model), "--solver", "gd"]),
                }
            best = {name: float("inf") for name in runs}
            peak: dict[str, float] = {}
            # The read is timed again right before each in-process fit (the best counts): a read
            # that follows the commands' seconds of pause is up to 2.5x slower than one back to
            # back, which would flatter the fits.
            order: list[tuple[str, Callable[[], object]]] = []
            for name, run in runs.items():
                if name in ("batches", "iter_batches", "lstsq", "gd"):
                    order.append((read_name, read))
                order.append((name, run))
            for _ in range(args.repeats):
                for name, run in order:
                    if name.startswith("cmd"):  # (wall, max resident MiB) under /usr/bin/time
                        seconds, mib = run()  # type: ignore[misc]
                        peak[name] = max(peak.get(name, 0.0), mib)
                    else:
                        seconds = run() if name in ("fresh read", "start-up") else timed(run)
                    best[name] = min(best[name], float(seconds))  # type: ignore[arg-type]
            floor = best[read_name]
            print(f"{kind} ({path.stat().st_size / 1e9:.2f} GB):")
            for name, seconds in best.items():
                mib = f"  max resident {peak[name]:.0f} MiB" if name in peak else ""
                print(f"  {name:<11} {seconds:7.2f} s{mib}")
            print(f"  streamed lstsq / {read_name}: {best['lstsq'] / floor:.2f}  (target <= 1.5)")
            print(f"  streamed gd / {read_name}:    {best['gd'] / floor:.2f}  (target <= 2.0)")
            print(
                f"  the stream's batches alone / {read_name}: {best['batches'] / floor:.2f}  "
                "(the floor of both fits: the read in bounded memory, nothing computed)"
            )
            if "iter_batches" in best:
                print(
                    f"  pyarrow's iter_batches / {read_name}: {best['iter_batches'] / floor:.2f}  "
                    "(pyarrow's own read in bounded memory, its threads, no checks)"
                )
            if not args.no_commands:
                base = best["fresh read"] + best["start-up"]
                for name in ("cmd lstsq", "cmd gd"):
                    print(
                        f"  {name} / (fresh read + start-up): {best[name] / base:.2f}; "
                        f"less the start-up / fresh read: "
                        f"{(best[name] - best['start-up']) / best['fresh read']:.2f}"
                    )
            print()
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
