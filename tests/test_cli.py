"""The command line on real files: fit → info → predict → evaluate round trips that match the
in-memory model bit for bit, and one clear line on stderr (exit 2, no file left) for every bad
input. Most commands run in-process through ``gradfit.cli.main``; a few run as a real
subprocess to prove that nothing else (a traceback, a progress bar) reaches the terminal."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import pickle
import re
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from sklearn import metrics as skm

import gradfit
from gradfit.cli import main
from gradfit.errors import DataError
from gradfit.persistence import FORMAT_VERSION, SavedModel, load_model
from gradfit.solvers.config import SolverConfig
from gradfit.training import fit_linear

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FEATURES = ("temp", "rainfall", "humidity")
TARGETS = ("apples", "oranges")
# Few epochs for the tutorial's loops (no early stop): the round trip is exact at any epoch.
EPOCHS = {"gd": 1000, "sgd": 1000, "lstsq": 1000, "scratch": 40, "builtin": 20}
SUMMARY_KEYS = {
    "model",
    "solver",
    "epochs_run",
    "final_loss",
    "optimal_loss",
    "loss_ratio",
    "learning_rate",
    "converged",
    "seconds",
    "r2",
    "plot",
    "inference",
}


# The training files have a text column, 'region', that the default features leave out.
REGION_NOTE = (
    "gradfit: note: 1 column(s) left out of the features: 'region' (text); name the features "
    "with --features to choose them yourself\n"
)


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def gradfit_cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> Run:
    """``gradfit ARGV`` in this process; the exit code and what it printed."""
    capsys.readouterr()
    try:
        code = main([str(arg) for arg in argv])
    except SystemExit as exc:  # argparse's own exit: usage errors, --help, --version
        assert isinstance(exc.code, int)
        code = exc.code
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


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


# ---------------------------------------------------------------------------------------------
# data files


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


@pytest.fixture
def train_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "train.csv", training_columns())


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """An empty directory for every output: a test asserts what it holds afterwards."""
    path = tmp_path / "out"
    path.mkdir()
    return path


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


# ---------------------------------------------------------------------------------------------
# round trip


@pytest.mark.parametrize("solver", ["gd", "sgd", "lstsq", "scratch", "builtin"])
def test_round_trip_is_bit_exact(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, train_csv: Path, solver: str
) -> None:
    epochs = str(EPOCHS[solver])
    model_path = tmp_path / "model.safetensors"
    run = ok(
        capsys,
        "fit",
        train_csv,
        "--target",
        "apples,oranges",
        "--solver",
        solver,
        "--epochs",
        epochs,
        "--out",
        model_path,
        "--json",
    )
    summary = json.loads(run.out)
    assert set(summary) == SUMMARY_KEYS
    assert summary["solver"] == solver and summary["model"] == str(model_path)
    assert summary["plot"] is None
    assert set(summary["r2"]) == set(TARGETS)
    if solver in ("scratch", "builtin"):  # a few epochs, too few to converge: it says so
        assert summary["converged"] is False
        assert run.err.startswith(REGION_NOTE)
        warning = run.err.removeprefix(REGION_NOTE)
        assert warning.startswith(f"gradfit: warning: {solver} did not converge in {epochs} ")
        assert warning.count("\n") == 1
    else:
        assert summary["converged"] is True
        assert run.err == REGION_NOTE  # not a terminal: no progress bar

    # The file holds exactly what the library computes in memory.
    X_train, Y_train = crops_arrays()
    weight, bias = in_memory_fit(X_train, Y_train, solver, int(epochs))
    loaded = load_model(model_path)
    assert loaded.feature_names == FEATURES and loaded.target_names == TARGETS
    assert torch.equal(loaded.weight, weight) and torch.equal(loaded.bias, bias)
    assert loaded.solver == solver

    info = json.loads(ok(capsys, "info", model_path, "--json").out)
    assert torch.equal(torch.tensor(info["weight"], dtype=torch.float64), weight)
    assert torch.equal(torch.tensor(info["bias"], dtype=torch.float64), bias)

    # predict: columns matched by name in another order, extra columns ignored, ids kept.
    X, columns = new_data()
    data = write_csv(tmp_path / "new.csv", columns)
    expected = loaded.predict(torch.from_numpy(X)).numpy()
    by_hand = (torch.from_numpy(X) @ weight.T + bias).numpy()
    np.testing.assert_array_equal(expected, by_hand)
    run = ok(capsys, "predict", model_path, data, "--keep", "id")
    assert run.err == ""
    header, got = read_csv_floats(run.out)
    assert header == ["id", *TARGETS]
    assert got["id"] == columns["id"]
    for j, name in enumerate(TARGETS):
        np.testing.assert_array_equal(np.array([float(v) for v in got[name]]), expected[:, j])

    # evaluate on the training file: the numbers scikit-learn computes.
    evaluation = json.loads(ok(capsys, "evaluate", model_path, train_csv, "--json").out)
    pred = loaded.predict(torch.from_numpy(X_train)).numpy()
    assert evaluation["n_samples"] == len(X_train)
    for j, name in enumerate(TARGETS):
        m = evaluation["metrics"][name]
        y, p = Y_train[:, j], pred[:, j]
        assert m["mse"] == pytest.approx(skm.mean_squared_error(y, p), rel=1e-12)
        assert m["rmse"] == pytest.approx(skm.root_mean_squared_error(y, p), rel=1e-12)
        assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, p), rel=1e-12)
        assert m["r2"] == pytest.approx(skm.r2_score(y, p), rel=1e-12)


def test_fit_builtin_crops_matches_the_library(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    model_path = tmp_path / "crops.safetensors"
    run = ok(
        capsys, "fit", "crops", "--target", "apples", "--target", "oranges", "--out", model_path
    )
    assert "R² apples" in run.out and "R² oranges" in run.out
    assert f"model written to {model_path}" in run.out
    weight, bias = in_memory_fit(*crops_arrays(), "gd", 1000)
    loaded = load_model(model_path)
    assert torch.equal(loaded.weight, weight) and torch.equal(loaded.bias, bias)
    assert loaded.hyperparameters["data"] == "crops"


@pytest.mark.parametrize("destination", ["preds.csv", "preds.tsv", "preds.parquet", "-"])
def test_predict_destinations(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, train_csv: Path, destination: str
) -> None:
    model_path = fit_model(capsys, train_csv, tmp_path / "m.safetensors")
    X, columns = new_data()
    data = write_csv(tmp_path / "new.csv", columns)
    expected = load_model(model_path).predict(torch.from_numpy(X)).numpy()
    argv: list[str | Path] = ["predict", model_path, data, "--keep", "id", "--keep", "note"]
    if destination == "-":
        run = ok(capsys, *argv)
        header, got = read_csv_floats(run.out)
        values = {name: np.array([float(v) for v in got[name]]) for name in TARGETS}
        ids, notes = got["id"], got["note"]
    else:
        target = tmp_path / destination
        run = ok(capsys, *argv, "--out", target)
        assert run.out == "" and run.err == ""
        if destination.endswith(".parquet"):
            table = pq.read_table(target)
            header = table.column_names
            values = {name: table.column(name).to_numpy() for name in TARGETS}
            ids, notes = table.column("id").to_pylist(), table.column("note").to_pylist()
        else:
            text = target.read_text(encoding="utf-8").replace("\t", ",")
            header, got = read_csv_floats(text)
            values = {name: np.array([float(v) for v in got[name]]) for name in TARGETS}
            ids, notes = got["id"], got["note"]
    assert header == ["id", "note", *TARGETS]
    assert ids == columns["id"] and notes == columns["note"]
    for j, name in enumerate(TARGETS):
        np.testing.assert_array_equal(values[name], expected[:, j])
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_predict_from_parquet(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, train_csv: Path
) -> None:
    model_path = fit_model(capsys, train_csv, tmp_path / "m.safetensors")
    X, columns = new_data()
    data = tmp_path / "new.parquet"
    pq.write_table(pa.table(columns), data)
    _, got = read_csv_floats(ok(capsys, "predict", model_path, data).out)
    expected = load_model(model_path).predict(torch.from_numpy(X)).numpy()
    np.testing.assert_array_equal(np.array([float(v) for v in got["oranges"]]), expected[:, 1])


@pytest.mark.parametrize("standardize", [True, False])
def test_info_text(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, train_csv: Path, standardize: bool
) -> None:
    extra = ["--solver", "gd"] if standardize else ["--solver", "lstsq", "--no-standardize"]
    model_path = fit_model(capsys, train_csv, tmp_path / "m.safetensors", *extra)
    model = load_model(model_path)
    text = ok(capsys, "info", model_path).out
    assert f"gradfit model {model_path} (format version {FORMAT_VERSION})" in text
    assert f"solver: {model.solver}; written by gradfit {gradfit.__version__}" in text
    assert f"torch {torch.__version__}" in text
    assert text.count("\n") > 5
    header = next(line for line in text.splitlines() if line.startswith("target"))
    assert header.split() == ["target", *FEATURES, "bias"]
    apples = next(line for line in text.splitlines() if line.startswith("apples"))
    cells = [float(v) for v in apples.split()[1:]]
    expected = [*model.weight[0].tolist(), float(model.bias[0])]
    assert cells == pytest.approx(expected, rel=1e-5)  # shown to 6 significant digits
    assert ("standardization used in training" in text) is standardize
    assert "final training loss (MSE)" in text
    assert "settings: learning_rate=" in text and "seed=0" in text


def test_info_json(capsys: pytest.CaptureFixture[str], tmp_path: Path, train_csv: Path) -> None:
    model_path = fit_model(capsys, train_csv, tmp_path / "m.safetensors", "--seed", "3")
    info = json.loads(ok(capsys, "info", model_path, "--json").out)
    model = load_model(model_path)
    assert info["features"] == list(FEATURES) and info["targets"] == list(TARGETS)
    assert info["solver"] == "gd" and info["format_version"] == FORMAT_VERSION
    assert info["dtype"] == "float64"
    assert model.scaling_mean is not None and model.scaling_scale is not None
    assert info["scaling"] == {
        "mean": model.scaling_mean.tolist(),
        "scale": model.scaling_scale.tolist(),
    }
    assert info["scaling"]["mean"] == pytest.approx(crops_arrays()[0].mean(axis=0))
    assert info["final_loss"] == model.final_loss and math.isfinite(info["final_loss"])
    assert info["epochs"] == len(info["loss_history"]) == info["hyperparameters"]["n_iter"]
    assert info["hyperparameters"]["seed"] == 3
    assert info["hyperparameters"]["data"] == str(train_csv)
    assert set(info["versions"]) == {"gradfit", "torch", "python"}
    assert info["versions"]["gradfit"] == gradfit.__version__
    assert set(info["metrics"]) == set(TARGETS)


def test_evaluate_table(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, train_csv: Path
) -> None:
    model_path = fit_model(capsys, train_csv, tmp_path / "m.safetensors", "--solver", "lstsq")
    lines = ok(capsys, "evaluate", model_path, train_csv).out.splitlines()
    assert lines[0].split() == ["target", "MSE", "RMSE", "MAE", "R²"]
    X, Y = crops_arrays()
    pred = load_model(model_path).predict(torch.from_numpy(X)).numpy()
    for j, name in enumerate(TARGETS):
        row = next(line for line in lines if line.startswith(name)).split()
        want = [
            skm.mean_squared_error(Y[:, j], pred[:, j]),
            skm.root_mean_squared_error(Y[:, j], pred[:, j]),
            skm.mean_absolute_error(Y[:, j], pred[:, j]),
            skm.r2_score(Y[:, j], pred[:, j]),
        ]
        assert [float(v) for v in row[1:]] == pytest.approx(want, rel=1e-5)


def test_fit_text_summary_and_plot(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, train_csv: Path
) -> None:
    pytest.importorskip("matplotlib")
    model_path, plot = tmp_path / "m.safetensors", tmp_path / "fit.png"
    run = ok(
        capsys,
        "fit",
        train_csv,
        "--target",
        "apples",
        "--target",
        "oranges",
        "--out",
        model_path,
        "--plot",
        plot,
    )
    assert run.out.splitlines()[0].split()[:3] == ["fit", "(gd,", "15"]
    for label in ("final loss (MSE)", "closed-form optimum", "loss / optimum", "epochs run"):
        assert label in run.out
    assert f"model written to {model_path}, plot to {plot}" in run.out
    content = plot.read_bytes()
    assert content.startswith(PNG_MAGIC) and len(content) > 1000
    load_model(model_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.png", "m.safetensors", "train.csv"]


def test_fit_json_with_plot(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    plot = tmp_path / "p.png"
    run = ok(
        capsys,
        "fit",
        "crops",
        "--target",
        "oranges",
        "--features",
        ",".join(FEATURES),
        "--out",
        tmp_path / "m.safetensors",
        "--plot",
        plot,
        "--json",
    )
    summary = json.loads(run.out)
    assert summary["plot"] == str(plot) and plot.read_bytes().startswith(PNG_MAGIC)
    assert summary["loss_ratio"] == pytest.approx(1.0, abs=1e-3)


def test_fit_json_is_strict_json_on_an_exact_fit(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # By default oranges is a feature too: 4 features and a bias fit the 5 distinct rows exactly,
    # the optimum is rounding noise and final/optimum meaningless (it used to be printed as
    # 48945153492765781044232192.000000, or as a bare `Infinity`, which is not JSON).
    def refuse(name: str) -> None:
        raise AssertionError(f"not JSON: {name}")

    run = ok(capsys, "fit", "crops", "--target", "apples", "--out", tmp_path / "m", "--json")
    summary = json.loads(run.out, parse_constant=refuse)
    assert summary["loss_ratio"] is None
    text = ok(capsys, "fit", "crops", "--target", "apples", "--out", tmp_path / "m").out
    assert "- (exact fit)" in text


@pytest.mark.parametrize(
    "features",
    [["--features", "temp,humidity"], ["--features", "temp", "--features", "humidity"]],
)
def test_explicit_features(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, train_csv: Path, features: list[str]
) -> None:
    model_path = fit_model(capsys, train_csv, tmp_path / "m.safetensors", *features)
    assert load_model(model_path).feature_names == ("temp", "humidity")


def write_semicolons(path: Path) -> Path:
    return write_csv(path, training_columns(), delimiter=";")


def write_bom(path: Path) -> Path:
    write_csv(path, training_columns())
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    return path


def write_gzip(path: Path) -> Path:
    plain = write_csv(path.with_name("plain.csv"), training_columns())
    path.write_bytes(gzip.compress(plain.read_bytes()))
    plain.unlink()
    return path


def write_parquet(path: Path) -> Path:
    pq.write_table(pa.table(training_columns()), path)
    return path


@pytest.mark.parametrize(
    ("name", "write"),
    [
        ("semicolons.csv", write_semicolons),
        ("bom.csv", write_bom),
        ("zipped.csv.gz", write_gzip),
        ("train.parquet", write_parquet),
    ],
)
def test_other_file_forms_give_the_same_model(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    train_csv: Path,
    name: str,
    write: Callable[[Path], Path],
) -> None:
    reference = load_model(fit_model(capsys, train_csv, tmp_path / "ref.safetensors"))
    data = write(tmp_path / name)
    model = load_model(fit_model(capsys, data, tmp_path / "m.safetensors"))
    assert model.feature_names == FEATURES  # no BOM glued to the first name
    assert torch.equal(model.weight, reference.weight)
    assert torch.equal(model.bias, reference.bias)
    _, got = read_csv_floats(ok(capsys, "predict", tmp_path / "m.safetensors", data).out)
    assert len(got["apples"]) == 15


# ---------------------------------------------------------------------------------------------
# progress bar


@pytest.mark.parametrize(
    ("tty", "flags", "shown"),
    [
        (False, [], False),
        (True, [], True),
        (True, ["--quiet"], False),
        (True, ["--json"], False),
    ],
)
def test_progress_bar_only_on_a_terminal(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tty: bool,
    flags: list[str],
    shown: bool,
) -> None:
    capsys.readouterr()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    argv: list[str | Path] = [
        "fit",
        "crops",
        "--target",
        "apples,oranges",  # converges: no warning either
        "--out",
        tmp_path / "m",
        *flags,
    ]
    run = ok(capsys, *argv)
    if shown:
        assert "fit gd" in run.err and "epoch" in run.err
    else:
        assert run.err == ""


# ---------------------------------------------------------------------------------------------
# bad data files: exit 2, one line, nothing written


SMALL = "a,b,y\n1,2,3\n2,1,4\n3,5,8\n4,3,9\n"


@pytest.mark.parametrize(
    ("content", "argv", "says"),
    [
        pytest.param(None, [], ("no such file", "check the path"), id="missing"),
        pytest.param(b"", [], ("empty (0 bytes)",), id="empty"),
        pytest.param("a,b,y\n", [], ("header but no data rows", "add rows"), id="header-only"),
        pytest.param(
            "a,b,y\n1,2,3\n", [], ("1 data row", "at least 2", "add more rows"), id="one-row"
        ),
        pytest.param(
            SMALL,
            ["--target", "yy"],
            ("no target column 'yy'", "did you mean 'y'", "available columns: 'a', 'b', 'y'"),
            id="unknown-target",
        ),
        pytest.param(
            SMALL,
            ["--features", "a,c"],
            ("no feature column 'c'", "available columns: 'a', 'b', 'y'"),
            id="unknown-feature",
        ),
        pytest.param(
            SMALL,
            ["--features", "a,y"],
            ("column 'y' is given both as a target and as a feature",),
            id="target-as-feature",
        ),
        pytest.param(
            "a,a,y\n1,2,3\n2,1,4\n3,5,8\n",
            [],
            ("column name 'a' appears more than once", "rename"),
            id="duplicate-columns",
        ),
        pytest.param(
            "a,b,y\n1,2,3\n2,x,4\n3,5,8\n",
            ["--features", "a,b"],
            ("column 'b', row 2: 'x' is not a number", "fix or remove that row"),
            id="non-numeric-feature",
        ),
        pytest.param(
            "a,b,y\n1,2,3\n2,1,4\n3,5,eight\n",
            [],
            ("column 'y', row 3: 'eight' is not a number",),
            id="non-numeric-target",
        ),
        pytest.param(
            "a,b,y\n1,2,3\n2,,4\n3,5,8\n",
            [],
            ("column 'b', row 2: missing value", "fill it in or remove that row"),
            id="empty-cell",
        ),
        pytest.param(
            "a,b,y\n1,2,3\n2,1,4\n3,NaN,8\n",
            [],
            ("column 'b', row 3: missing value",),
            id="nan",
        ),
        pytest.param(
            "a,b,y\n1,2,3\n2,1,4\n3,5,inf\n",
            [],
            ("column 'y', row 3: infinite value", "replace it or remove that row"),
            id="inf",
        ),
        pytest.param(
            "a,b,y\n1,2,3\n2,1,4\n3,5,8,9\n",
            [],
            ("row 3 has 4 fields but the header has 3",),
            id="ragged-row",
        ),
    ],
)
def test_fit_bad_csv(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    out_dir: Path,
    content: str | bytes | None,
    argv: list[str],
    says: tuple[str, ...],
) -> None:
    data = tmp_path / "data.csv"
    if isinstance(content, str):
        data.write_text(content, encoding="utf-8")
    elif isinstance(content, bytes):
        data.write_bytes(content)
    if "--target" not in argv:
        argv = ["--target", "y", *argv]
    line = user_error(
        capsys,
        out_dir,
        "fit",
        data,
        *argv,
        "--out",
        out_dir / "m.safetensors",
        "--plot",
        out_dir / "p.png",
        says=says,
    )
    assert line.startswith(f"gradfit: error: {data}: ") or "data.csv" in line


def test_fit_directory_as_data(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, out_dir: Path
) -> None:
    (tmp_path / "data.csv").mkdir()
    user_error(
        capsys,
        out_dir,
        "fit",
        tmp_path / "data.csv",
        "--target",
        "y",
        "--out",
        out_dir / "m.safetensors",
        says=(f"{tmp_path / 'data.csv'}: is a directory",),
    )


@pytest.mark.parametrize(
    ("column", "says"),
    [
        (pa.array(["x", "y", "z", "w"]), "column 's' has type string, not numbers"),
        (pa.array([[1], [2], [3], [4]]), "column 's' has type list<"),
        (
            pa.array([{"u": 1}, {"u": 2}, {"u": 3}, {"u": 4}]),
            "column 's' has type struct<",
        ),
    ],
    ids=["string", "list", "struct"],
)
def test_fit_parquet_with_non_numeric_column(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, out_dir: Path, column: Any, says: str
) -> None:
    data = tmp_path / "data.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0, 3.0, 4.0], "s": column, "y": [1.0, 3, 2, 5]}), data)
    user_error(
        capsys,
        out_dir,
        "fit",
        data,
        "--target",
        "y",
        "--features",
        "a,s",
        "--out",
        out_dir / "m.safetensors",
        says=(f"{data}: {says}",),
    )
    # Left to the default, such a column is simply not a feature.
    model = fit_model_small(capsys, data, out_dir / "ok.safetensors")
    assert model.feature_names == ("a",)


def fit_model_small(capsys: pytest.CaptureFixture[str], data: Path, model: Path) -> SavedModel:
    ok(capsys, "fit", data, "--target", "y", "--out", model, "--quiet")
    return load_model(model)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--epochs", "0"], "argument --epochs: expected a positive integer up to 2**63 - 1"),
        (["--batch-size", "-3"], "argument --batch-size: expected a positive integer"),
        (["--lr", "-1"], "argument --lr: expected 'auto' or a positive number"),
        (["--solver", "adam"], "argument --solver: invalid choice: 'adam'"),
        (["--tol", "-0.001"], "argument --tol: expected a number >= 0, got '-0.001'"),
        (["--alpha", "-1"], "argument --alpha: expected a number from 0 to 1e+30 (a larger"),
        (["--alpha", "nan"], "argument --alpha: expected a number from 0 to 1e+30 (a larger"),
        (["--l1-ratio", "1.5"], "argument --l1-ratio: expected a number from 0 to 1, got '1.5'"),
        (["--l1-ratio", "-0.1"], "argument --l1-ratio: expected a number from 0 to 1"),
        (["--momentum", "1"], "argument --momentum: expected a number from 0 up to, not incl"),
        (["--momentum", "-0.5"], "argument --momentum: expected a number from 0 up to"),
        (["--seed", "99999999999999999999"], "argument --seed: expected an integer from 0 to"),
        (["--seed", str(2**63)], "argument --seed: expected an integer from 0 to"),
        (["--seed", "-1"], "argument --seed: expected an integer from 0 to"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_options_exit_2_naming_the_option(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], says: str
) -> None:
    run = gradfit_cli(capsys, "fit", "crops", "--target", "apples", "--out", tmp_path / "m", *argv)
    line = one_error_line(run)  # one line, exit 2, no usage block
    assert line.startswith(f"gradfit: error: {says}"), line
    assert line.endswith("--help')")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (
            ["fit", "crops"],
            "the following arguments are required: --target, --out (see 'gradfit fit",
        ),
        (
            ["fit", "crops", "--target", "a", "--out", "m", "--batch-size", "0"],
            "argument --batch-size: expected a positive integer up to 2**63 - 1, got '0' "
            "(see 'gradfit fit --help')",
        ),
        (["demo", "--seed", "99999999999999999999"], "argument --seed: expected an integer from 0"),
        (["demo", "--rows", "7"], "argument --rows: invalid choice: 7"),
        (["nonsense"], "argument COMMAND: invalid choice: 'nonsense'"),
        (["predict"], "the following arguments are required: model, data (see 'gradfit predict"),
    ],
)
def test_usage_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    line = one_error_line(gradfit_cli(capsys, *argv))
    assert line.startswith(f"gradfit: error: {says}"), line
    assert "usage:" not in line


def test_largest_seed_is_accepted(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    seed = str(2**63 - 1)
    ok(
        capsys,
        "fit",
        "crops",
        "--target",
        "apples,oranges",
        "--solver",
        "sgd",
        "--seed",
        seed,
        "--out",
        tmp_path / "m.safetensors",
    )
    assert load_model(tmp_path / "m.safetensors").hyperparameters["seed"] == 2**63 - 1


def test_missing_required_option_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    run = gradfit_cli(capsys, "fit", "crops")
    assert run.code == 2
    assert "the following arguments are required: --target, --out" in run.err
    run = gradfit_cli(capsys, "predict", "--help")
    assert run.code == 0 and "--keep" in run.out
    run = gradfit_cli(capsys, "--version")
    assert run.code == 0 and run.out.strip() == f"gradfit {gradfit.__version__}"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--target", ""], "give at least one --target column"),
        (["--target", "apples", "--features", ""], "no feature column given"),
        (["--target", "apples", "--target", "apples"], "target column 'apples' is given more"),
    ],
)
def test_bad_column_choices(
    capsys: pytest.CaptureFixture[str], out_dir: Path, argv: list[str], says: str
) -> None:
    user_error(capsys, out_dir, "fit", "crops", *argv, "--out", out_dir / "m", says=(says,))


def test_lstsq_with_alpha_is_closed_form_ridge(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The closed form with alpha > 0 solves the same penalized objective as gd: same weights.
    weights = {}
    for solver in ("lstsq", "gd"):
        out = tmp_path / f"{solver}.safetensors"
        run = gradfit_cli(
            capsys,
            "fit",
            "crops",
            "--target",
            "apples,oranges",
            "--solver",
            solver,
            "--alpha",
            "1",
            "--tol",
            "1e-14",
            "--epochs",
            "20000",
            "--out",
            out,
            "--quiet",
        )
        assert run.code == 0, run.err
        weights[solver] = load_model(out).weight
    # gd stops within ~tol of the optimum of a well-conditioned (standardized) problem.
    torch.testing.assert_close(weights["gd"], weights["lstsq"], rtol=1e-6, atol=1e-8)
    plain = tmp_path / "plain.safetensors"
    assert (
        gradfit_cli(
            capsys,
            "fit",
            "crops",
            "--target",
            "apples,oranges",
            "--solver",
            "lstsq",
            "--out",
            plain,
            "--quiet",
        ).code
        == 0
    )
    assert float(weights["lstsq"].norm()) < float(load_model(plain).weight.norm())


# ---------------------------------------------------------------------------------------------
# output paths


@pytest.mark.parametrize("which", ["fit --out", "fit --plot", "predict --out"])
def test_output_in_a_missing_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, out_dir: Path, train_csv: Path, which: str
) -> None:
    missing = out_dir / "no" / "such"
    model_path = tmp_path / "m.safetensors"
    if which == "predict --out":
        fit_model(capsys, train_csv, model_path)
        argv: list[str | Path] = ["predict", model_path, train_csv, "--out", missing / "p.csv"]
        bad = missing / "p.csv"
    else:
        model_out = missing / "m.safetensors" if which == "fit --out" else out_dir / "m"
        plot = missing / "p.png" if which == "fit --plot" else out_dir / "p.png"
        argv = ["fit", train_csv, "--target", "apples", "--out", model_out, "--plot", plot]
        bad = model_out if which == "fit --out" else plot
    user_error(
        capsys,
        out_dir,
        *argv,
        says=(f"{bad}: the directory '{bad.parent}'", "does not exist", "create it first"),
    )


def test_output_path_is_a_directory(
    capsys: pytest.CaptureFixture[str], out_dir: Path, train_csv: Path
) -> None:
    (out_dir / "m.safetensors").mkdir()
    line = one_error_line(
        gradfit_cli(
            capsys, "fit", train_csv, "--target", "apples", "--out", out_dir / "m.safetensors"
        )
    )
    assert "is a directory; give a file name" in line
    assert [p.name for p in out_dir.iterdir()] == ["m.safetensors"]


def test_unsupported_plot_type_is_refused_before_training(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    out_dir: Path,
) -> None:
    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("trained before checking --plot")

    monkeypatch.setattr("gradfit.training.fit_linear", never)
    user_error(
        capsys,
        out_dir,
        "fit",
        "crops",
        "--target",
        "apples",
        "--out",
        out_dir / "m",
        "--plot",
        out_dir / "p.jpg",
        says=("p.jpg: unsupported image type; use .png, .svg or .pdf",),
    )


def test_failed_plot_keeps_the_old_model_and_leaves_no_temp_file(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    out_dir: Path,
) -> None:
    model_path = fit_model(capsys, "crops", out_dir / "m.safetensors", "--solver", "lstsq")
    before = model_path.read_bytes()

    def failing_plot(path: Any, *args: Any, **kwargs: Any) -> None:
        raise DataError(f"{path}: cannot write (No space left on device)")

    monkeypatch.setattr("gradfit.report.plot_training", failing_plot)
    line = one_error_line(
        gradfit_cli(
            capsys,
            "fit",
            "crops",
            "--target",
            "apples",
            "--out",
            model_path,
            "--plot",
            out_dir / "p.png",
            "--solver",
            "lstsq",
        )
    )
    assert "No space left on device" in line
    assert model_path.read_bytes() == before  # all or nothing: the old model is untouched
    assert [p.name for p in out_dir.iterdir()] == ["m.safetensors"]


# ---------------------------------------------------------------------------------------------
# bad model files and prediction inputs


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


def make_bad_model(kind: str, path: Path, good: Path, marker: Path) -> tuple[str, ...]:
    """Write a bad model file of ``kind`` at ``path``; return what the message must say."""
    if kind == "missing":
        return ("no such model file; check the path",)
    if kind == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) - 7])
        return ("truncated", "save the model again")
    if kind == "pickle":
        path.write_bytes(pickle.dumps(SideEffect(marker), protocol=4))
        return ("not a gradfit model file", "Python pickle", "never unpickles")
    if kind == "torch.save":
        torch.save({"weight": torch.ones(1, 2), "evil": SideEffect(marker)}, path)
        return ("ZIP archive such as torch.save writes", "never unpickles")
    if kind == "text":
        path.write_text("weight,bias\n1,2\n", encoding="utf-8")
        return ("not a gradfit model file (it looks like a text file)",)
    if kind == "random":
        path.write_bytes(bytes(range(7, 255)) * 3)
        return ("not a safetensors model file",)
    if kind == "future":
        path.write_bytes(good.read_bytes())
        rewrite_document(path, format_version=FORMAT_VERSION + 1)
        return (f"written by a newer gradfit (format version {FORMAT_VERSION + 1}", "upgrade")
    if kind == "directory":
        path.mkdir()
        return ("is not a regular file (a directory); give a model file",)
    raise AssertionError(kind)


BAD_MODELS = ["missing", "truncated", "pickle", "torch.save", "text", "random", "future"]


@pytest.mark.parametrize("kind", [*BAD_MODELS, "directory"])
@pytest.mark.parametrize("command", ["info", "predict", "evaluate"])
def test_bad_model_file(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    out_dir: Path,
    train_csv: Path,
    kind: str,
    command: str,
) -> None:
    good = fit_model(capsys, train_csv, tmp_path / "good.safetensors", "--solver", "lstsq")
    path, marker = tmp_path / "evil.safetensors", tmp_path / "unpickled"
    says = make_bad_model(kind, path, good, marker)
    argv: list[str | Path] = [command, path]
    if command != "info":
        argv.append(train_csv)
    if command == "predict":
        argv += ["--out", out_dir / "p.csv"]
    line = user_error(capsys, out_dir, *argv, says=says)
    assert line.startswith(f"gradfit: error: {path}: ")
    assert not marker.exists()


def test_pickle_payload_really_has_a_side_effect(tmp_path: Path) -> None:
    """The canary of the test above can fail: unpickling it does create the marker."""
    pickle.loads(pickle.dumps(SideEffect(tmp_path / "control"), protocol=4))
    assert (tmp_path / "control").is_dir()


def test_predict_missing_feature_column(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, out_dir: Path, train_csv: Path
) -> None:
    model_path = fit_model(capsys, train_csv, tmp_path / "m.safetensors")
    _, columns = new_data()
    del columns["rainfall"]
    data = write_csv(tmp_path / "new.csv", columns)
    user_error(
        capsys,
        out_dir,
        "predict",
        model_path,
        data,
        "--out",
        out_dir / "p.csv",
        says=(
            f"{data}: missing feature column(s) 'rainfall' that the model needs",
            "available columns: 'humidity', 'note', 'id', 'temp', 'unused'",
        ),
    )


@pytest.mark.parametrize(
    ("edit", "argv", "says"),
    [
        (
            lambda c: c.update(temp=["73", "oops", *map(repr, c["temp"][2:])]),
            [],
            ("column 'temp', row 2: 'oops' is not a number",),
        ),
        (
            lambda c: c.update(temp=["", *map(repr, c["temp"][1:])]),
            [],
            ("column 'temp', row 1: missing value",),
        ),
        (lambda c: None, ["--keep", "region"], ("--keep column 'region' not found",)),
        (
            lambda c: c.update(apples=c["temp"]),
            ["--keep", "apples"],
            ("--keep column 'apples' has the name of a predicted column",),
        ),
        (lambda c: None, ["--out", "p.xlsx"], ("p.xlsx: unsupported output file type",)),
    ],
    ids=["non-numeric", "empty-cell", "unknown-keep", "keep-is-target", "bad-extension"],
)
def test_predict_bad_input(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    out_dir: Path,
    train_csv: Path,
    edit: Callable[[dict[str, Any]], None],
    argv: list[str],
    says: tuple[str, ...],
) -> None:
    model_path = fit_model(capsys, train_csv, tmp_path / "m.safetensors")
    _, columns = new_data()
    edit(columns)
    data = write_csv(tmp_path / "new.csv", columns)
    if "--out" in argv:
        argv = ["--out", str(out_dir / argv[1])]
    else:
        argv = [*argv, "--out", str(out_dir / "p.csv")]
    user_error(capsys, out_dir, "predict", model_path, data, *argv, says=says)


def test_evaluate_missing_target_column(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, out_dir: Path, train_csv: Path
) -> None:
    model_path = fit_model(capsys, train_csv, tmp_path / "m.safetensors")
    columns = training_columns()
    del columns["oranges"]
    data = write_csv(tmp_path / "eval.csv", columns)
    line = user_error(
        capsys,
        out_dir,
        "evaluate",
        model_path,
        data,
        says=(f"{data}: missing target column(s) 'oranges'", "available columns: 'region'"),
    )
    assert "feature" not in line


# ---------------------------------------------------------------------------------------------
# divergence and internal errors


@pytest.mark.parametrize("solver", ["gd", "sgd", "scratch", "builtin"])
def test_divergence_is_a_user_error_with_advice(
    capsys: pytest.CaptureFixture[str], out_dir: Path, solver: str
) -> None:
    line = user_error(
        capsys,
        out_dir,
        "fit",
        "crops",
        "--target",
        "apples",
        "--target",
        "oranges",
        "--solver",
        solver,
        "--no-standardize",
        "--lr",
        "1",
        "--epochs",
        "100",
        "--out",
        out_dir / "m.safetensors",
        "--plot",
        out_dir / "p.png",
        says=("gradfit: error: crops: training diverged", "or --standardize"),
    )
    # The advice is half the largest stable step for this data (a number, not a placeholder).
    hint = re.search(r"try --lr ([0-9.e+-]+) or --standardize$", line)
    assert hint is not None, line
    assert 0 < float(hint.group(1)) < 1e-3


@pytest.mark.parametrize("solver", ["scratch", "builtin"])
def test_divergence_is_caught_before_the_loss_overflows(
    capsys: pytest.CaptureFixture[str], out_dir: Path, solver: str
) -> None:
    argv = ["--solver", solver, "--no-standardize", "--lr", "1", "--epochs", "20"]
    user_error(
        capsys,
        out_dir,
        "fit",
        "crops",
        "--target",
        "apples,oranges",
        *argv,
        "--out",
        out_dir / "m",
        says=("training diverged",),
    )


def test_divergence_with_standardized_features_only_suggests_a_smaller_step(
    capsys: pytest.CaptureFixture[str], out_dir: Path
) -> None:
    line = user_error(
        capsys,
        out_dir,
        "fit",
        "crops",
        "--target",
        "apples",
        "--lr",
        "100",
        "--out",
        out_dir / "m",
        says=("diverged", "try --lr 0.17"),
    )
    assert not line.endswith("--standardize")


@pytest.mark.parametrize(
    ("target", "argv"),
    [
        ("gradfit.fitting.fit_linear", ["fit", "crops", "--target", "apples"]),
        ("gradfit.persistence.load_model", ["info", "model.safetensors"]),
        ("gradfit.data.feature_matrix", ["predict", "MODEL", "crops"]),
    ],
)
def test_internal_error_exits_1_with_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    out_dir: Path,
    target: str,
    argv: list[str],
) -> None:
    model_path = fit_model(capsys, "crops", tmp_path / "model.safetensors", "--solver", "lstsq")
    argv = [str(model_path) if a in ("MODEL", "model.safetensors") else a for a in argv]
    if argv[0] == "fit":
        argv += ["--out", str(out_dir / "m")]
    elif argv[0] == "predict":
        argv += ["--out", str(out_dir / "p.csv")]

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom\nat a second line")

    monkeypatch.setattr(target, broken)
    line = one_error_line(gradfit_cli(capsys, *argv), code=1)
    assert line == (
        "gradfit: internal error (RuntimeError): boom\\nat a second line. "
        "Please report it with the command you ran."
    )
    assert list(out_dir.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# a real process: no traceback, nothing on stdout for errors, quiet stderr on success


def run_gradfit(*argv: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gradfit", *map(str, argv)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        start_new_session=True,  # no controlling terminal
        check=False,
    )


@pytest.mark.slow
def test_subprocess_fit_and_predict_success(tmp_path: Path, train_csv: Path) -> None:
    done = run_gradfit(
        "fit", train_csv, "--target", "apples,oranges", "--out", "m.safetensors", cwd=tmp_path
    )
    assert (done.returncode, done.stderr) == (0, REGION_NOTE)
    assert "model written to m.safetensors" in done.stdout
    X, columns = new_data()
    write_csv(tmp_path / "new.csv", columns)
    done = run_gradfit("predict", "m.safetensors", "new.csv", "--keep", "id", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    header, got = read_csv_floats(done.stdout)
    assert header == ["id", *TARGETS]
    expected = load_model(tmp_path / "m.safetensors").predict(torch.from_numpy(X)).numpy()
    np.testing.assert_array_equal(np.array([float(v) for v in got["apples"]]), expected[:, 0])


@pytest.mark.slow
@pytest.mark.parametrize("case", ["bad-cell", "pickle", "diverges"])
def test_subprocess_error_is_one_line(tmp_path: Path, case: str) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    marker = tmp_path / "unpickled"
    if case == "bad-cell":
        (tmp_path / "d.csv").write_text("a,y\n1,2\n2,x\n3,4\n", encoding="utf-8")
        argv: list[str | Path] = ["fit", "d.csv", "--target", "y", "--out", out_dir / "m"]
        says = "d.csv: column 'y', row 2: 'x' is not a number"
    elif case == "pickle":
        (tmp_path / "evil.safetensors").write_bytes(pickle.dumps(SideEffect(marker)))
        argv = ["info", "evil.safetensors"]
        says = "evil.safetensors: not a gradfit model file (it looks like a Python pickle"
    else:
        argv = ["fit", "crops", "--target", "apples", "--solver", "gd", "--no-standardize"]
        argv += ["--lr", "1", "--out", out_dir / "m"]
        says = "crops: training diverged"
    done = run_gradfit(*argv, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"gradfit: error: {says}")
    assert list(out_dir.iterdir()) == []
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# predict --keep copies identifiers exactly

BIG_ID = 2**53 + 1  # 9007199254740993; as a float64 it would be 9007199254740992


def keep_inputs(tmp_path: Path, form: str) -> tuple[Path, list[int], list[str]]:
    _, columns = new_data(4)
    ids = [BIG_ID, 2, -3, 2**63 - 1]
    codes = ["00123", "007", "1", "0"]
    columns = {**columns, "id": ids, "code": codes}
    if form == "parquet":
        path = tmp_path / "new.parquet"
        pq.write_table(pa.table(columns), path)
    else:
        lines = [",".join(columns)]
        lines += [",".join(str(columns[c][i]) for c in columns) for i in range(4)]
        path = tmp_path / "new.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, ids, codes


@pytest.mark.parametrize("source", ["csv", "parquet"])
@pytest.mark.parametrize("destination", ["preds.csv", "preds.parquet", "-"])
def test_predict_keep_copies_identifiers_exactly(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    train_csv: Path,
    source: str,
    destination: str,
) -> None:
    model_path = fit_model(capsys, train_csv, tmp_path / "m.safetensors", "--solver", "lstsq")
    data, ids, codes = keep_inputs(tmp_path, source)
    argv: list[str | Path] = ["predict", model_path, data, "--keep", "id,code", "--keep", "id"]
    if destination == "-":
        _, got = read_csv_floats(ok(capsys, *argv).out)
        kept_ids, kept_codes = got["id"], got["code"]
    else:
        out = tmp_path / destination
        ok(capsys, *argv, "--out", out)
        if destination.endswith(".parquet"):
            arrow = pq.read_table(out)
            assert arrow.column_names == ["id", "code", *TARGETS]
            assert arrow.schema.field("id").type == pa.int64()  # still an integer column
            kept_ids = [str(v) for v in arrow.column("id").to_pylist()]
            kept_codes = arrow.column("code").to_pylist()
        else:
            _, got = read_csv_floats(out.read_text(encoding="utf-8"))
            kept_ids, kept_codes = got["id"], got["code"]
    assert kept_ids == [str(v) for v in ids]  # 9007199254740993, not 9.007199254740992e+15
    assert kept_codes == codes  # from a CSV file: the text as written, leading zeros included


# ---------------------------------------------------------------------------------------------
# fit: scaling only when used, convergence reported


@pytest.mark.parametrize(
    ("extra", "scaled"),
    [
        (["--solver", "lstsq"], False),  # closed form: no standardization even when asked
        (["--solver", "gd", "--no-standardize"], False),
        (["--solver", "gd"], True),
        (["--solver", "lstsq", "--alpha", "0.1"], True),  # ridge standardizes
    ],
)
def test_scaling_is_saved_only_when_training_used_it(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    train_csv: Path,
    extra: list[str],
    scaled: bool,
) -> None:
    model_path = fit_model(capsys, train_csv, tmp_path / "m.safetensors", "--quiet", *extra)
    model = load_model(model_path)
    assert (model.scaling_mean is not None) is scaled
    assert (model.scaling_scale is not None) is scaled
    assert ("standardization used in training" in ok(capsys, "info", model_path).out) is scaled
    info = json.loads(ok(capsys, "info", model_path, "--json").out)
    assert (info["scaling"] is not None) is scaled


def test_converged_row_json_key_and_warning(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, train_csv: Path
) -> None:
    model = tmp_path / "m.safetensors"
    run = ok(capsys, "fit", train_csv, "--target", "apples,oranges", "--out", model)
    assert re.search(r"^converged +yes$", run.out, re.MULTILINE) and run.err == REGION_NOTE
    run = ok(capsys, "fit", train_csv, "--target", "apples,oranges", "--out", model, "--json")
    assert json.loads(run.out)["converged"] is True and run.err == REGION_NOTE

    short = ["fit", train_csv, "--target", "apples,oranges", "--out", model, "--epochs", "3"]
    run = ok(capsys, *short)
    assert re.search(r"^converged +no$", run.out, re.MULTILINE)
    warning = run.err.removeprefix(REGION_NOTE)
    assert warning.startswith("gradfit: warning: gd did not converge in 3 epochs; ")
    assert warning.count("\n") == 1 and "--epochs" in warning
    run = ok(capsys, *short, "--json")
    assert json.loads(run.out)["converged"] is False
    assert run.err.removeprefix(REGION_NOTE).count("\n") == 1
    assert ok(capsys, *short, "--quiet").err == ""
    # lstsq runs one step and is always converged: no warning even with --epochs 1.
    run = ok(
        capsys,
        "fit",
        train_csv,
        "--target",
        "apples",
        "--solver",
        "lstsq",
        "--out",
        model,
        "--epochs",
        "1",
    )
    assert run.err == REGION_NOTE and re.search(r"^converged +yes$", run.out, re.MULTILINE)


# ---------------------------------------------------------------------------------------------
# outputs through symbolic links


@pytest.mark.parametrize("plot", [False, True])
def test_fit_out_through_a_symlink_keeps_the_link(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, plot: bool
) -> None:
    if plot:
        pytest.importorskip("matplotlib")
    real_dir, link_dir = tmp_path / "models", tmp_path / "links"
    real_dir.mkdir()
    link_dir.mkdir()
    real = real_dir / "m.safetensors"
    real.write_bytes(b"old")
    link = link_dir / "current.safetensors"
    link.symlink_to(real)
    extra = ["--plot", tmp_path / "p.png"] if plot else []
    fit_model(capsys, "crops", link, "--solver", "lstsq", *extra)
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert load_model(real).solver == "lstsq"
    assert [p.name for p in real_dir.iterdir()] == ["m.safetensors"]
    assert [p.name for p in link_dir.iterdir()] == ["current.safetensors"]
