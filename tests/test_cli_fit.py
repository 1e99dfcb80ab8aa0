"""`gradfit fit` on real files: the built-in data, the text and JSON summaries, plots, chosen
features, other file forms (semicolons, BOM, gzip, Parquet), ridge by the closed form, the
progress bar, the scaling saved, and convergence reported."""

from __future__ import annotations

import gzip
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from cli_helpers import (
    FEATURES,
    REGION_NOTE,
    crops_arrays,
    fit_model,
    gradfit_cli,
    in_memory_fit,
    ok,
    read_csv_floats,
    training_columns,
    write_csv,
)

from gradfit.persistence import load_model

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


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


# ---------------------------------------------------------------------------------------------
# other file forms give the same model


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
# ridge by the closed form


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
# progress bar


@pytest.mark.parametrize(
    ("tty", "flags", "shown", "logged"),
    [
        (False, [], False, True),  # a batch job: log lines instead (test_observe.py)
        (False, ["--quiet"], False, False),
        (True, [], True, False),
        (True, ["--quiet"], False, False),
        (True, ["--json"], False, False),
    ],
)
def test_progress_bar_only_on_a_terminal(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tty: bool,
    flags: list[str],
    shown: bool,
    logged: bool,
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
    assert bool(run.log) is logged
    if logged:  # the first epoch and the end
        assert run.log.startswith("gradfit: fit gd: epoch 1/1000, loss ")
        assert run.log.splitlines()[-1].startswith("gradfit: fit gd: ended at epoch ")


# ---------------------------------------------------------------------------------------------
# scaling only when used, convergence reported


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
