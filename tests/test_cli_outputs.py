"""Output paths of `fit` and `predict`: a missing directory, a directory as the file, an
unsupported plot type refused before training, all or nothing when the plot fails, and writing
through a symbolic link."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cli_helpers import fit_model, gradfit_cli, one_error_line, user_error

from gradfit.errors import DataError
from gradfit.persistence import load_model


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

    monkeypatch.setattr("gradfit.fitting.fit_linear", never)  # the name fit_data calls
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
