"""`gradfit info`: the text and JSON descriptions of a model file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from cli_helpers import FEATURES, TARGETS, crops_arrays, fit_model, ok

import gradfit
from gradfit.persistence import FORMAT_VERSION, load_model


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
