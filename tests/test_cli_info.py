"""`gradfit info`: the text and JSON descriptions of a model file."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from cli_helpers import FEATURES, TARGETS, crops_arrays, fit_model, ok, training_columns, write_csv

import gradfit
from gradfit.model_file import read_model
from gradfit.persistence import FORMAT_VERSION, SavedModel, load_model, save_model


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


def _info_from_load_model(path: Path) -> dict[str, Any]:
    """What `gradfit info --json` printed when it read the file with load_model (torch): the
    reference of the torch-free reading (gradfit.model_file; issue 23)."""
    model = load_model(path)
    info: dict[str, Any] = {
        "model": str(path),
        "format_version": model.format_version,
        "checksum": model.has_checksum,
        "solver": model.solver,
        "features": list(model.feature_names),
        "targets": list(model.target_names),
        "weight": model.weight.tolist(),
        "bias": model.bias.tolist(),
        "dtype": str(model.weight.dtype).removeprefix("torch."),
        "scaling": None
        if model.scaling_mean is None or model.scaling_scale is None
        else {"mean": model.scaling_mean.tolist(), "scale": model.scaling_scale.tolist()},
        "hyperparameters": model.hyperparameters,
        "final_loss": model.final_loss,
        "epochs": len(model.loss_history),
        "loss_history": model.loss_history,
        "metrics": model.metrics,
        "versions": model.versions,
        "created": model.created,
        "inference": model.inference,
    }
    if model.design is not None:
        info["design"] = model.design
    if model.rows_dropped:
        info["rows_dropped"] = model.rows_dropped
    return info


@pytest.mark.parametrize(
    "extra",
    [
        ("--target", "apples", "--target", "oranges", "--solver", "gd"),  # scaling statistics
        ("--target", "apples", "--target", "oranges", "--solver", "lstsq", "--no-standardize"),
        ("--target", "apples", "--target", "oranges", "--solver", "gd", "--dtype", "float32"),
        ("--target", "apples", "--solver", "lstsq", "--dtype", "float32"),  # with inference
        ("--formula", "apples ~ temp + season", "--solver", "lstsq"),  # a design
    ],
    ids=["gd", "lstsq", "gd-float32", "lstsq-float32", "formula"],
)
def test_info_reads_as_load_model_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: tuple[str, ...]
) -> None:
    """info reads files without torch (gradfit.model_file): every value, the float32 ones
    included, is the one load_model's tensors give, exactly (the same JSON text)."""
    columns = training_columns()
    n = len(columns["temp"])
    if "--formula" in extra:
        columns["season"] = [("spring", "summer", "autumn", "winter")[i % 4] for i in range(n)]
    data = write_csv(tmp_path / "train.csv", columns)
    model_path = tmp_path / "m.safetensors"
    ok(capsys, "fit", data, "--out", model_path, *extra)
    if "float32" in extra:  # fit keeps float64 weights: a library user's float32 model
        fitted = load_model(model_path)
        save_model(
            model_path,
            dataclasses.replace(fitted, weight=fitted.weight.float(), bias=fitted.bias.float()),
        )
    expected = _info_from_load_model(model_path)
    text = ok(capsys, "info", model_path, "--json").out
    assert text == json.dumps(expected, indent=2, allow_nan=False, ensure_ascii=True) + "\n"
    if "float32" in extra:
        # torch's tolist: the float32 values as Python floats (their float64 expansion)
        assert expected["dtype"] == "float32"
        values = [*(w for row in expected["weight"] for w in row), *expected["bias"]]
        assert all(float(np.float32(v)) == v for v in values)
        assert any(len(repr(v)) > 12 for v in values)
    assert ("design" in expected) is ("--formula" in extra)
    if "lstsq" in extra:
        assert expected["inference"] is not None


def test_the_reader_decodes_the_tensors_as_load_model(tmp_path: Path) -> None:
    weight = torch.tensor([[0.1, -2.5e-8, 3.0]], dtype=torch.float32)
    model = SavedModel(weight, torch.tensor([0.7], dtype=torch.float32), ("a", "b", "c"), ("y",))
    path = tmp_path / "m.safetensors"
    save_model(path, model)
    record = read_model(path)
    loaded = load_model(path)
    assert record.weight.dtype == np.float32 and record.bias.dtype == np.float32
    assert record.weight.tolist() == loaded.weight.tolist() == weight.tolist()
    assert record.bias.tolist() == loaded.bias.tolist()
    assert record.weight.flags.writeable and record.weight.flags.c_contiguous
