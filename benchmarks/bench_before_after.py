"""The speed benchmarks of two versions of gradfit, in one run: each benchmark script of each
version, taken in turns, so that both meet the same machine load.

Run (about ten minutes with the defaults)::

    .venv/bin/python benchmarks/bench_before_after.py                  # before = BEFORE below
    .venv/bin/python benchmarks/bench_before_after.py --before fa009be --rounds 5

The version before is checked out of git (``git archive``, into a temporary folder); the version
after is this working tree. Each round runs, for each script, the version before and the version
after one right after the other (their order alternating from round to round), each with its own
``benchmarks/`` script and ``src/`` (``PYTHONPATH``), in a fresh process. Every row of the
tables a script prints (``| what | seconds | ...``) is a timing; the report gives, per row, the
median over the rounds of each version and their ratio (after / before; below 1: faster now).
Rows that one version does not print are left out. The machine may be shared: read the ratios,
and the spread between rounds (printed as min-max of the ratio of each round), not the seconds.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The last commit before issue 18 (one road from data to model) changed the code's structure.
BEFORE = "1a8e8d7"
SCRIPTS = {
    "bench_solvers.py": ["--quick", "--repeats", "2", "--loader-batches", "50"],
    "bench_gd.py": ["--rows", "200000", "--repeats", "2"],
    "bench_small_batch.py": [
        "--rows",
        "100000",
        "--repeats",
        "2",
        "--loader-batches",
        "500",
        "--reference-rows",
        "5000",
        "--no-compile-time",
    ],
}
# A timing row: a Markdown table's (``| what | seconds |``), a fixed-width table's (``what``, two
# spaces or more, seconds with a decimal point), or ``what N us`` inside a sentence.
_MARKDOWN = re.compile(r"^\|\s*(?P<what>[^|]+?)\s*\|\s*(?P<seconds>\d+\.?\d*(?:e[-+]?\d+)?)\s*\|")
_FIXED = re.compile(r"^(?P<what>\S.*?)\s{2,}(?P<seconds>\d+\.\d+)(?:\s|$)")
_MICROSECONDS = re.compile(r"(?P<what>[a-z][a-z ]+?) (?P<us>\d+) us\b")


def export(rev: str, into: Path) -> Path:
    """The tree of ``rev`` (its src/ and benchmarks/) under ``into``."""
    into.mkdir(parents=True)
    archive = into / "tree.tar"
    command = ["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive)]
    subprocess.run(
        [*command, rev, "src", "benchmarks"],
        check=True,
    )
    tree = into / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def timings(tree: Path, script: str, args: list[str]) -> dict[str, float]:
    """The rows of every table ``script`` of ``tree`` prints: what → seconds (its section, the
    line before the table, is part of the key)."""
    env = dict(os.environ, PYTHONPATH=str(tree / "src"), PYTHONWARNINGS="ignore")
    out = subprocess.run(
        [sys.executable, str(tree / "benchmarks" / script), *args],
        env=env,
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows: dict[str, float] = {}
    section = ""
    for line in out.splitlines():
        text = line.strip()
        match = _MARKDOWN.match(text) or _FIXED.match(text)
        if match:
            rows[f"{section} · {match['what']}"] = float(match["seconds"])
        elif _MICROSECONDS.search(text):
            for m in _MICROSECONDS.finditer(text):
                rows[f"{section} · {m['what'].strip()} (epoch)"] = float(m["us"]) * 1e-6
        elif text and not text.startswith(("|", "-", "method", "target")):
            section = text[:48]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default=BEFORE, help=f"git revision before ({BEFORE})")
    parser.add_argument(
        "--after", default=None, help="git revision after (default: this working tree)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scripts", nargs="*", default=list(SCRIPTS), choices=list(SCRIPTS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        before = export(args.before, Path(tmp) / "before")
        after = ROOT if args.after is None else export(args.after, Path(tmp) / "after")
        trees = {"before": before, "after": after}
        runs: dict[str, dict[str, dict[str, list[float]]]] = {s: {} for s in args.scripts}
        for round_ in range(args.rounds):
            order = ["before", "after"] if round_ % 2 == 0 else ["after", "before"]
            for script in args.scripts:
                for version in order:
                    print(f"round {round_ + 1}: {script} ({version})", file=sys.stderr)
                    for what, seconds in timings(trees[version], script, SCRIPTS[script]).items():
                        runs[script].setdefault(what, {}).setdefault(version, []).append(seconds)
    what = "this working tree" if args.after is None else args.after
    print(f"before: {args.before}; after: {what}; {args.rounds} rounds, medians\n")
    for script in args.scripts:
        print(f"{script} {' '.join(SCRIPTS[script])}\n")
        print("| what | before [s] | after [s] | after / before | per round |")
        print("|---|---:|---:|---:|---:|")
        for what, by in runs[script].items():
            if len(by.get("before", ())) != args.rounds or len(by.get("after", ())) != args.rounds:
                continue
            b, a = statistics.median(by["before"]), statistics.median(by["after"])
            each = [x / y for x, y in zip(by["after"], by["before"], strict=True) if y > 0]
            spread = f"{min(each):.2f}-{max(each):.2f}" if each else ""
            ratio = f"{a / b:.2f}" if b > 0 else ""
            print(f"| {what} | {b:.4g} | {a:.4g} | {ratio} | {spread} |")
        print()


if __name__ == "__main__":
    main()
