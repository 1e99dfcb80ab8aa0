"""`gradfit evaluate`: the metrics table, and a file without a target column refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from cli_helpers import (
    TARGETS,
    crops_arrays,
    fit_model,
    ok,
    training_columns,
    user_error,
    write_csv,
)
from sklearn import metrics as skm

from gradfit.persistence import load_model


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
