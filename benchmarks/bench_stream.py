"""Memory and speed of fitting, predicting and evaluating by streaming, against pyarrow's reads.

Run::

    .venv/bin/python benchmarks/bench_stream.py                 # about 1 GB of CSV (+ Parquet)
    .venv/bin/python benchmarks/bench_stream.py --gb 10 --no-parquet --commands fit-gd
    .venv/bin/python benchmarks/bench_stream.py --gb 0.1        # a quick look

The data: ``rows x 12`` float64 columns (10 features, 2 targets, a linear model plus noise),
written once as CSV (and Parquet) to ``--dir`` (default: a temporary directory, removed at the
end). Measured in one run, side by side:

* the floor: ``pyarrow.csv.read_csv`` (multithreaded, whole file in memory) and
  ``pyarrow.parquet.read_table`` of the same files, in this process, best of ``--repeats``
  (after the first, the allocator reuses the pages of the previous read), and the same read in
  a fresh process as a command meets it ("fresh"; imports not counted);
* ``gradfit.streaming.fit_stream`` in this process (the library call), best of ``--repeats``;
* the commands ``gradfit fit FILE --solver gd|lstsq --stream``, ``gradfit predict``,
  ``gradfit evaluate``, each a fresh process under ``/usr/bin/time``, ``--repeats`` times:
  the best wall time and the largest maximum resident memory. The start-up of the command
  (``gradfit --version``: Python and torch imports, about 2 s here) is measured the same way
  and reported apart.

The commands run with pandas hidden (an import hook makes it not found): pandas is not a
dependency of gradfit, but when it is installed pyarrow imports it (about 80 MB) on its first
conversion; a plain ``pip install gradfit`` environment does not have it.
"""

from __future__ import annotations

import argparse
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

from gradfit.solvers.config import SolverConfig
from gradfit.streaming import fit_stream

ROW_BYTES = 235  # bytes of one CSV row of 12 random float64 values, about
LAUNCHER = """
import sys
class NoPandas:  # as in an environment without pandas (not a dependency of gradfit)
    def find_spec(self, name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, NoPandas())
from gradfit.cli import main
sys.exit(main(sys.argv[1:]))
"""


def write_data(directory: Path, gigabytes: float, parquet: bool, seed: int) -> tuple[Path, Path]:
    rows = int(gigabytes * 1e9 / ROW_BYTES)
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(10, 2))
    csv_path, pq_path = directory / "data.csv", directory / "data.parquet"
    chunk = 1_000_000
    with pv.CSVWriter(str(csv_path), _schema()) as csv_out:
        pq_out = pq.ParquetWriter(str(pq_path), _schema()) if parquet else None
        for start in range(0, rows, chunk):
            m = min(chunk, rows - start)
            X = rng.normal(size=(m, 10))
            Y = X @ W + 0.1 * rng.normal(size=(m, 2))
            table = pa.table(
                {**{f"x{j}": X[:, j] for j in range(10)}, "y0": Y[:, 0], "y1": Y[:, 1]}
            )
            csv_out.write_table(table)
            if pq_out is not None:
                pq_out.write_table(table)
        if pq_out is not None:
            pq_out.close()
    return csv_path, pq_path


def _schema() -> pa.Schema:
    return pa.schema([*(pa.field(f"x{j}", pa.float64()) for j in range(10)),
                      pa.field("y0", pa.float64()), pa.field("y1", pa.float64())])  # fmt: skip


def best(repeats: int, run: object) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


FRESH_READ = """
import sys, time
import pyarrow.csv as pv, pyarrow.parquet as pq
start = time.perf_counter()
(pq.read_table if sys.argv[1].endswith(".parquet") else pv.read_csv)(sys.argv[1])
print(time.perf_counter() - start)
"""


def fresh_read(path: Path, repeats: int) -> float:
    """pyarrow's whole-file read in a fresh process (imports not counted), best of
    ``repeats``: the floor as a command meets it, with no memory left mapped by a previous
    read in the same process."""
    times = []
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, "-c", FRESH_READ, str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(done.stdout.strip().splitlines()[-1]))
    return min(times)


def command(argv: list[str], repeats: int = 1) -> tuple[float, float]:
    """(wall seconds, max resident MiB) of ``gradfit ARGV``, each run a fresh process: the
    best time and the largest peak of ``repeats`` runs."""
    walls, peaks = [], []
    for _ in range(repeats):
        timed = ["/usr/bin/time", "-f", "%e %M", sys.executable, "-c", LAUNCHER, *argv]
        done = subprocess.run(timed, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"gradfit {' '.join(argv)} failed: {done.stderr.strip()}")
        wall, kb = done.stderr.strip().splitlines()[-1].split()
        walls.append(float(wall))
        peaks.append(int(kb) / 1024)
    return min(walls), max(peaks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gb", type=float, default=0.94, help="CSV size in GB (0.94)")
    parser.add_argument("--no-parquet", action="store_true", help="CSV only")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dir", type=Path, help="where to write the data (kept)")
    parser.add_argument(
        "--reuse", action="store_true", help="use the data already in --dir if it is there"
    )
    parser.add_argument(
        "--commands",
        default="fit-gd,fit-lstsq,predict,evaluate",
        help="which commands to time (fit-gd, fit-lstsq, predict, evaluate)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if shutil.which("/usr/bin/time") is None:
        raise SystemExit("needs /usr/bin/time (GNU time) to measure memory")
    directory = args.dir or Path(tempfile.mkdtemp(prefix="gradfit-bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        csv_path, pq_path = directory / "data.csv", directory / "data.parquet"
        if not (args.reuse and csv_path.exists() and (args.no_parquet or pq_path.exists())):
            csv_path, pq_path = write_data(directory, args.gb, not args.no_parquet, args.seed)
            took = f"wrote it in {time.perf_counter() - t0:.0f} s"
        else:
            took = "already there"
        print(f"{csv_path.stat().st_size / 1e9:.2f} GB CSV: {took}")
        files = [("csv", csv_path)] + ([] if args.no_parquet else [("parquet", pq_path)])
        startup, startup_mb = command(["--version"], args.repeats)
        print(f"command start-up (gradfit --version): {startup:.2f} s, {startup_mb:.0f} MiB\n")
        wanted = set(args.commands.split(","))
        model = directory / "model.safetensors"
        for kind, path in files:
            size = path.stat().st_size / 1e9
            if kind == "csv":
                floor = best(args.repeats, lambda p=path: pv.read_csv(p))
                floor_name = "pyarrow.csv.read_csv"
            else:
                floor = best(args.repeats, lambda p=path: pq.read_table(p))
                floor_name = "pyarrow.parquet.read_table"
            lib = best(
                args.repeats, lambda p=path: fit_stream(p, ["y0", "y1"], config=SolverConfig())
            )
            cold = fresh_read(path, args.repeats)
            print(f"{kind} {size:.2f} GB: {floor_name} {floor:.2f} s (in a fresh process "
                  f"{cold:.2f} s); fit_stream gd {lib:.2f} s ({lib / floor:.2f}x)")  # fmt: skip
            target = ["--target", "y0,y1", "--quiet", "--stream"]
            out = directory / f"pred.{'parquet' if kind == 'parquet' else 'csv'}"
            argvs = {
                "fit-gd": ["fit", str(path), *target, "--solver", "gd", "--out", str(model)],
                "fit-lstsq": ["fit", str(path), *target, "--solver", "lstsq", "--out", str(model)],
                "predict": ["predict", str(model), str(path), "--stream", "--out", str(out)],
                "evaluate": ["evaluate", str(model), str(path), "--stream", "--json"],
            }
            rows = []
            for name, argv in argvs.items():
                if name not in wanted:
                    continue
                if name in ("predict", "evaluate") and not model.exists():
                    command(argvs["fit-gd"])
                rows.append((name, command(argv, args.repeats)))
            header = ("command", "wall [s]", "- start-up", "÷ floor", "÷ fresh", "max RSS")
            print("  {:<12} {:>9} {:>11} {:>8} {:>8} {:>9}".format(*header))
            for name, (wall, mb) in rows:
                work = wall - startup
                print(f"  {name:<12} {wall:9.2f} {work:11.2f} {work / floor:8.2f} "
                      f"{work / cold:8.2f} {mb:7.0f} MiB")  # fmt: skip
            print()
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
