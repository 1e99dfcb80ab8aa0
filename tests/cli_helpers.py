"""Helpers of the command-line tests: run `gradfit` in this process and check its one error line,
and write the training and prediction files of the crop data."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import gradfit
from gradfit.cli import main
from gradfit.solvers.config import SolverConfig
from gradfit.training import fit_linear

FEATURES = ("temp", "rainfall", "humidity")


TARGETS = ("apples", "oranges")


# The training files have a text column, 'region', a different value in every row: an
# identifier, that the default features leave out (other text columns are categorical).
REGION_NOTE = (
    "gradfit: note: 1 column(s) left out of the features: 'region' (identifier: text with a "
    "different value in every row); name the features with --features to choose them "
    "yourself\n"
)


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str  # stderr without the progress log lines
    log: str = ""  # the progress log lines (stderr is not a terminal here: LOG_LINE)


# `gradfit fit`'s progress lines when stderr is not a terminal (gradfit.cli.render.LogLines),
# tested in test_observe.py; the other tests read stderr without them.
LOG_LINE = re.compile(r"^gradfit: fit [\w-]+: (epoch|ended at|reading) .*\n", re.MULTILINE)


def split_log(err: str) -> tuple[str, str]:
    """stderr as (its other lines, its progress log lines)."""
    return LOG_LINE.sub("", err), "".join(m.group(0) for m in LOG_LINE.finditer(err))


def gradfit_cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> Run:
    """``gradfit ARGV`` in this process; the exit code and what it printed."""
    capsys.readouterr()
    try:
        code = main([str(arg) for arg in argv])
    except SystemExit as exc:  # argparse's own exit: usage errors, --help, --version
        assert isinstance(exc.code, int)
        code = exc.code
    captured = capsys.readouterr()
    return Run(code, captured.out, *split_log(captured.err))


def ok(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> Run:
    run = gradfit_cli(capsys, *argv)
    assert run.code == 0, run.err
    assert "Traceback" not in run.err
    return run


def one_error_line(run: Run, code: int = 2) -> str:
    """The single ``gradfit: error:`` line of a failed command (nothing on stdout)."""
    assert run.code == code, (run.code, run.out, run.err)
    assert run.out == ""
    assert run.err.endswith("\n") and run.err.count("\n") == 1, run.err
    assert "Traceback" not in run.err
    prefix = "gradfit: error: " if code == 2 else "gradfit: internal error "
    assert run.err.startswith(prefix), run.err
    return run.err.rstrip("\n")


def user_error(
    capsys: pytest.CaptureFixture[str], out_dir: Path, *argv: str | Path, says: tuple[str, ...]
) -> str:
    """Exit 2, one line naming what is wrong, and ``out_dir`` (where outputs go) left empty."""
    line = one_error_line(gradfit_cli(capsys, *argv))
    for fragment in says:
        assert fragment in line, (fragment, line)
    assert sorted(p.name for p in out_dir.iterdir()) == [], "an output or temp file was left"
    return line


def crops_arrays() -> tuple[np.ndarray, np.ndarray]:
    crops = gradfit.load_crops()
    return crops.data.double().numpy(), crops.target.double().numpy()


def write_csv(path: Path, columns: dict[str, Any], delimiter: str = ",") -> Path:
    """Columns to CSV with ``repr`` of each float: Python parses it back to the same bits."""
    names = list(columns)
    n = len(next(iter(columns.values())))
    lines = [delimiter.join(names)]
    for i in range(n):
        cells = [columns[name][i] for name in names]
        lines.append(delimiter.join(repr(float(c)) if not isinstance(c, str) else c for c in cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def training_columns() -> dict[str, Any]:
    X, Y = crops_arrays()
    return {
        "region": [f"r{i}" for i in range(len(X))],
        **{name: X[:, j] for j, name in enumerate(FEATURES)},
        **{name: Y[:, j] for j, name in enumerate(TARGETS)},
    }


def new_data(n: int = 25) -> tuple[np.ndarray, dict[str, Any]]:
    """Fresh inputs on the crops' scale, columns in another order, with extra columns, and the
    (n, 3) feature matrix in the model's order."""
    rng = np.random.default_rng(7)
    X = rng.normal(loc=(80.0, 90.0, 55.0), scale=(12.0, 30.0, 12.0), size=(n, 3))
    columns = {
        "humidity": X[:, 2],
        "note": [f"n{i}" for i in range(n)],
        "id": [f"id-{i:03d}" for i in range(n)],
        "temp": X[:, 0],
        "unused": rng.normal(size=n),
        "rainfall": X[:, 1],
    }
    return X, columns


def read_csv_floats(text: str) -> tuple[list[str], dict[str, list[str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    return header, {name: [row[j] for row in body] for j, name in enumerate(header)}


def in_memory_fit(
    X: np.ndarray, Y: np.ndarray, solver: str, epochs: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """What ``gradfit fit`` computes, done through the library: weight (k, d), bias (k,)."""
    config = SolverConfig(solver=solver, max_epochs=epochs)  # type: ignore[arg-type]
    outcome = fit_linear(torch.from_numpy(X), torch.from_numpy(Y), config, random_state=0)
    return outcome.weight.double(), outcome.bias.double()


def fit_model(
    capsys: pytest.CaptureFixture[str], data: Path | str, model: Path, *extra: str
) -> Path:
    ok(capsys, "fit", data, "--target", "apples", "--target", "oranges", "--out", model, *extra)
    return model


class SideEffect:
    """Unpickling this creates a directory: proof that the bytes were (or were not) unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def rewrite_document(path: Path, **changes: Any) -> None:
    """Change fields of the gradfit JSON document inside a model file's safetensors header,
    sealed again (a well-formed file that says something else, not a damaged one)."""
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    document = json.loads(header["__metadata__"]["gradfit"])
    document.update(changes)
    header["__metadata__"]["gradfit"] = json.dumps(document)
    if "gradfit_sha256" in header["__metadata__"]:
        from safetensors.torch import load

        from gradfit.tensorfile import seal

        path.write_bytes(seal(load(data), header["__metadata__"]["gradfit"]))
        return
    raw = json.dumps(header).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # safetensors pads its header to 8 bytes
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + length :])
