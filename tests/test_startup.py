"""Commands that answer at once (issue 23): what each command imports, from the interpreter's
own record (``python -X importtime``), in a fresh process.

``gradfit --version``, ``--help``, every subcommand's ``--help`` and a usage error import
neither torch nor scikit-learn, nor NumPy, pyarrow, pandas, SciPy or the other large libraries:
they take about 0.2 s instead of 2 (benchmarks/bench_startup.py). A plain ``gradfit fit`` of
numeric columns pays torch (and pyarrow, NumPy, SciPy's p-values) but none of the optional
libraries its work does not use. Wall times are not asserted (noisy on a shared machine); the
sets of modules are.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import write_csv

import gradfit.cli.options
import gradfit.distributed
import gradfit.inference
import gradfit.settings

# Never imported by the commands that answer at once.
LARGE = (
    "torch",
    "sklearn",
    "numpy",
    "pandas",
    "pyarrow",
    "scipy",
    "formulaic",
    "matplotlib",
    "numba",
    "safetensors",
    "tensorboard",
    "tqdm",
)
# Never imported by a fit of numeric columns without --plot or a formula: its work uses none.
# (torch, NumPy, pyarrow and SciPy's p-values it needs.)
OPTIONAL = (
    "sklearn",
    "pandas",
    "formulaic",
    "matplotlib",
    "numba",
    "tensorboard",
    "moto",
    "boto3",
    "botocore",
    "statsmodels",
)

COMMANDS = ("demo", "fit", "predict", "evaluate", "info", "diagnose", "anova", "path")


def imported_modules(*argv: str, cwd: Path, expect: int = 0) -> set[str]:
    """The modules that ``python -X importtime -m gradfit *argv`` imports (top-level names
    and full names both)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "gradfit", *argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert done.returncode == expect, done.stderr[-2000:]
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            names.update({name, name.split(".")[0]})
    assert "gradfit.cli" in names, "no import log: is -X importtime honoured?"
    return names


@pytest.mark.slow
@pytest.mark.parametrize(
    "argv",
    [
        ("--version",),
        ("--help",),
        *((command, "--help") for command in COMMANDS),
        ("fit", "data.csv", "--out", "m.safetensors", "--epochs", "0"),  # a bad value: exit 2
        ("fit", "--no-such-option"),
        ("no-such-command",),
    ],
    ids=lambda argv: " ".join(argv),
)
def test_answers_without_the_large_libraries(argv: tuple[str, ...], tmp_path: Path) -> None:
    usage_error = argv[-1] not in ("--help", "--version")
    names = imported_modules(*argv, cwd=tmp_path, expect=2 if usage_error else 0)
    assert not names & set(LARGE), sorted(names & set(LARGE))


@pytest.mark.slow
def test_a_numeric_fit_imports_no_optional_library(tmp_path: Path) -> None:
    data = write_csv(
        tmp_path / "train.csv",
        {"x1": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "x2": [0.5, 0.1, 0.9, 0.3, 0.7, 0.2]}
        | {"y": [1.1, 2.3, 2.9, 4.2, 5.1, 5.8]},
    )
    names = imported_modules(
        "fit", str(data), "--target", "y", "--out", "m.safetensors", cwd=tmp_path
    )
    assert (tmp_path / "m.safetensors").is_file()
    assert "torch" in names  # the scan sees the work's imports
    assert not names & set(OPTIONAL), sorted(names & set(OPTIONAL))


def test_the_parsers_copies_of_constants_are_the_librarys() -> None:
    """Constants the parser shows without importing their torch-importing homes."""
    assert gradfit.cli.options.DEFAULT_TIMEOUT == gradfit.distributed.DEFAULT_TIMEOUT
    assert gradfit.settings.COV_TYPES == gradfit.inference.COV_TYPES
    assert gradfit.settings.ALL_COV_TYPES == gradfit.inference.ALL_COV_TYPES
