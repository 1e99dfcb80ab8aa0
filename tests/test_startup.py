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

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.csv as pv
import pyarrow.parquet as pq
import pytest
import torch
from cli_helpers import write_csv

import gradfit.cli.options
import gradfit.distributed
import gradfit.inference
import gradfit.settings
from gradfit.persistence import load_model, save_model

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


# Never imported by `gradfit info`: it reads the file with NumPy (gradfit.model_file), not torch,
# checks its path without pyarrow, and a design without formulaic or pandas (issue 23).
NOT_FOR_INFO = (*(name for name in LARGE if name != "numpy"), "statsmodels")


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An lstsq fit of standardized columns (scaling statistics and interval data: every
    part of a model file), float64 as fit writes it and float32 as a library user may."""
    folder = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 + rng.normal(scale=0.1, size=40)
    data = write_csv(folder / "train.csv", {"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": y})
    path = folder / "float64.safetensors"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gradfit",
            "fit",
            str(data),
            "--target",
            "y",
            "--solver",
            "lstsq",
            "--out",
            str(path),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    model = load_model(path)
    assert model.inference is not None
    stats = torch.from_numpy(X.mean(axis=0)), torch.from_numpy(X.std(axis=0))
    model = dataclasses.replace(model, scaling_mean=stats[0], scaling_scale=stats[1])
    save_model(path, model)  # with the scaling statistics of a standardized fit
    single = folder / "float32.safetensors"
    save_model(
        single, dataclasses.replace(model, weight=model.weight.float(), bias=model.bias.float())
    )
    # Models with a design (gradfit.design): a formula with categorical levels, an interaction
    # and the state of stateful transforms (poly, splines); plain columns with a text one.
    groups = [("north", "south", "east")[i % 3] for i in range(40)]
    data = write_csv(
        folder / "groups.csv", {"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "g": groups, "y": y}
    )
    formula = "np.log(y + 10) ~ a * g + poly(b, 2) + bs(c, df=4)"
    fits = {"formula": ("--formula", formula), "text column": ("--target", "y")}
    for name, argv in fits.items():
        out = ("--out", str(folder / f"{name}.safetensors"), "--quiet")
        done = subprocess.run(
            [sys.executable, "-m", "gradfit", "fit", str(data), *argv, "--solver", "lstsq", *out],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        design = load_model(folder / f"{name}.safetensors").design
        assert design is not None and design["levels"] == {"g": ["east", "north", "south"]}
    return {
        "float64": path,
        "float32": single,
        **{name: folder / f"{name}.safetensors" for name in fits},
    }


@pytest.mark.slow
@pytest.mark.parametrize("json_output", [False, True], ids=["text", "json"])
@pytest.mark.parametrize("kind", ["float64", "float32", "formula", "text column"])
def test_info_imports_no_torch(
    model_files: dict[str, Path], tmp_path: Path, json_output: bool, kind: str
) -> None:
    """Every part of the file is read and checked, as load_model does, with NumPy only; a
    design too (gradfit.design.document's checks), without formulaic or pandas."""
    argv = ("info", str(model_files[kind]), *(("--json",) if json_output else ()))
    names = imported_modules(*argv, cwd=tmp_path)
    assert "gradfit.model_file" in names and "numpy" in names  # the scan sees the work
    if kind in ("formula", "text column"):
        assert "gradfit.design.document" in names and "gradfit.design.design" not in names
    assert not names & set(NOT_FOR_INFO), sorted(names & set(NOT_FOR_INFO))


# Every command's import set (issue 23): torch once, and of the optional libraries only those
# its work uses: numba for the coordinate-descent path (fit --alpha cv, path), formulaic and
# pandas for a formula. pyarrow imports pandas for pq.read_table (pyarrow.dataset), for any
# pa.array and for to_numpy: Parquet files are read, numeric output columns written, and text
# columns (predict --keep) read and written without them (gradfit.data.tables.pandas_free).
# A model of categorical columns encodes them through formulaic (gradfit.design), which
# imports pandas, formula or none: the text columns kept here go to a model of numbers.
FORMULA = ("pandas", "formulaic")
WORK = [  # (argv, the optional libraries its work uses)
    (("fit", "train.parquet", "--target", "y", "--out", "p.safetensors", "--quiet"), ()),
    (("fit", "train.csv", "--target", "y", "--stream", "--out", "s.safetensors", "--quiet"), ()),
    (("fit", "train.parquet", "--target", "y", "--stream", "--solver", "lstsq", "--out", "l"), ()),
    (("fit", "train.csv", "--target", "y", "--alpha", "cv", "--out", "cv.safetensors"), ("numba",)),
    (("path", "train.csv", "--target", "y", "--json"), ("numba",)),
    (("path", "train.csv", "--target", "y", "--out", "path.csv"), ("numba",)),  # a text column
    (("predict", "float64.safetensors", "train.csv", "--out", "p.csv"), ()),
    (("predict", "float64.safetensors", "train.parquet", "--interval", "prediction"), ()),
    (("predict", "float64.safetensors", "groups.csv", "--keep", "g,a", "--out", "k.csv"), ()),
    (
        (
            "predict",
            "float64.safetensors",
            "groups.csv",
            "--keep",
            "g",
            "--stream",
            "--out",
            "k.pq",
        ),
        (),
    ),
    (("evaluate", "float64.safetensors", "train.parquet"), ()),
    (("diagnose", "float64.safetensors", "train.csv", "--out", "d.csv"), ()),
    (("fit", "groups.csv", "--formula", "y ~ a + g", "--out", "f.safetensors"), FORMULA),
    (("predict", "formula.safetensors", "groups.csv", "--out", "f.parquet"), FORMULA),
    (("anova", "groups.csv", "--formula", "y ~ a * g"), FORMULA),
]


@pytest.mark.slow
@pytest.mark.parametrize(("argv", "used"), WORK, ids=lambda v: " ".join(v))
def test_each_command_imports_only_what_its_work_uses(
    model_files: dict[str, Path], argv: tuple[str, ...], used: tuple[str, ...]
) -> None:
    folder = model_files["float64"].parent
    if not (folder / "train.parquet").exists():
        pq.write_table(pv.read_csv(folder / "train.csv"), folder / "train.parquet")
    names = imported_modules(*argv, cwd=folder)
    assert "torch" in names and set(used) <= names  # the scan sees the work
    unused = set(OPTIONAL) - set(used)
    assert not names & unused, sorted(names & unused)
