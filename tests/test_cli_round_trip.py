"""fit → info → predict → evaluate on real files, with every solver: the model file, the JSON
of `info`, the predictions and the metrics match the in-memory model bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import (
    FEATURES,
    REGION_NOTE,
    TARGETS,
    crops_arrays,
    in_memory_fit,
    new_data,
    ok,
    read_csv_floats,
    write_csv,
)
from sklearn import metrics as skm

from gradfit.persistence import load_model

# Few epochs for the tutorial's loops (no early stop): the round trip is exact at any epoch.
EPOCHS = {"gd": 1000, "sgd": 1000, "lstsq": 1000, "scratch": 40, "builtin": 20}


SUMMARY_KEYS = {
    "model",
    "rows_dropped",
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
