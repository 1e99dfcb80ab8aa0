"""Start-up: how long the commands that should answer at once take, in fresh processes.

Times (wall clock, best of ``--repeat``, each a fresh ``python -m gradfit`` process, the cases
interleaved so that a busy moment of a shared machine hits them all alike):

* ``python -c pass`` and ``python -c "import torch"``: the interpreter's own start, and what
  any command that imports torch pays at least;
* ``gradfit --version``, ``--help``, ``fit --help`` and a usage error (``fit --epochs 0``):
  the issue's target is at most 0.3 s, importing neither torch nor scikit-learn;
* ``gradfit info MODEL`` (and ``--json``): reads the model file with NumPy, not torch (the
  issue's target is 0.3 s too); ``info`` of a model fitted from a formula (categorical
  levels, an interaction, poly and spline state) checks its design without formulaic or
  pandas;
* a small ``gradfit fit`` (200 rows of CSV, and of Parquet) and ``gradfit predict`` (to a CSV
  file): commands that do work, which pay torch once and nothing large besides (no pandas:
  pyarrow imports it for ``pq.read_table`` and ``pa.array``).

``--before SRC`` also times the same commands with another source tree first on the path (the
``src`` folder of a checkout before the change), in the same run.

    python benchmarks/bench_startup.py
    python benchmarks/bench_startup.py --repeat 9 --before ../main/src
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.csv as pv
import pyarrow.parquet as pq


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, check=False
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="fresh processes per case (5)")
    parser.add_argument("--before", help="another source tree (src/) to time side by side")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench_startup_"))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    y = X @ np.array([1.0, 2.0, 3.0]) + rng.standard_normal(200)
    rows = (",".join(repr(float(v)) for v in (*x, t)) for x, t in zip(X, y, strict=True))
    (folder / "small.csv").write_text("a,b,c,y\n" + "\n".join(rows) + "\n", encoding="utf-8")
    pq.write_table(pv.read_csv(folder / "small.csv"), folder / "small.parquet")
    groups = [("north", "south", "east")[i % 3] for i in range(200)]
    rows = (
        ",".join([*(repr(float(v)) for v in x), g, repr(float(t))])
        for x, g, t in zip(X, groups, y, strict=True)
    )
    (folder / "groups.csv").write_text("a,b,c,g,y\n" + "\n".join(rows) + "\n", encoding="utf-8")

    python = sys.executable
    gradfit = [python, "-m", "gradfit"]
    plain = {"python -c pass": [python, "-c", "pass"]}
    plain["python -c 'import torch'"] = [python, "-c", "import torch"]
    commands = {
        "gradfit --version": [*gradfit, "--version"],
        "gradfit --help": [*gradfit, "--help"],
        "gradfit fit --help": [*gradfit, "fit", "--help"],
        "gradfit fit ... --epochs 0 (usage error)": [
            *gradfit,
            "fit",
            "small.csv",
            "--out",
            "m.safetensors",
            "--epochs",
            "0",
        ],
        "gradfit info MODEL": [*gradfit, "info", "model.safetensors"],
        "gradfit info MODEL --json": [*gradfit, "info", "model.safetensors", "--json"],
        "gradfit info FORMULA_MODEL": [*gradfit, "info", "formula.safetensors"],
        "gradfit fit (200 rows, gd)": [
            *gradfit,
            "fit",
            "small.csv",
            "--target",
            "y",
            "--out",
            "fitted.safetensors",
        ],
        "gradfit fit (200 rows of Parquet, gd)": [
            *gradfit,
            "fit",
            "small.parquet",
            "--target",
            "y",
            "--out",
            "fitted.safetensors",
        ],
        "gradfit predict (200 rows, to CSV)": [
            *gradfit,
            "predict",
            "model.safetensors",
            "small.csv",
            "--out",
            "predictions.csv",
        ],
    }
    here = os.environ.copy()
    trees = {"now": here}
    if args.before:
        trees["before"] = {**here, "PYTHONPATH": str(Path(args.before).resolve())}
    # The models that info reads, written by the tree under test.
    formula = "y ~ a * g + poly(b, 2) + bs(c, df=4)"
    for data, out, *argv in (
        ("small.csv", "model.safetensors", "--target", "y"),
        ("groups.csv", "formula.safetensors", "--formula", formula, "--solver", "lstsq"),
    ):
        subprocess.run(
            [*gradfit, "fit", data, *argv, "--out", out, "--quiet"],
            cwd=folder,
            env=here,
            check=True,
            capture_output=True,
        )
    cases = [(name, argv, "now", here) for name, argv in plain.items()]
    for name, argv in commands.items():
        cases += [(name, argv, tree, env) for tree, env in trees.items()]
    best: dict[tuple[str, str], float] = {}
    for _ in range(args.repeat):
        for name, argv, tree, env in cases:
            seconds = _run(argv, env, folder)
            best[name, tree] = min(best.get((name, tree), float("inf")), seconds)

    header = "| command | " + " | ".join(f"{tree} (s)" for tree in trees) + " |"
    print(header)
    print("|---|" + "---:|" * len(trees))
    for name in (*plain, *commands):
        cells = [f"{best[name, tree]:.2f}" if (name, tree) in best else "" for tree in trees]
        print(f"| `{name}` | " + " | ".join(cells) + " |")
    print(f"\nbest of {args.repeat} fresh processes each, interleaved; {python}")


if __name__ == "__main__":
    main()
