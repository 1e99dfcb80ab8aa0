"""Command-line usage: bad option values, missing arguments and bad column choices end in one
line (exit 2, no usage block); `--help`, `--version`, and the largest seed accepted."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import gradfit_cli, ok, one_error_line, user_error

import gradfit
from gradfit.persistence import load_model


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
            "the following arguments are required: --out (see 'gradfit fit",
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
    # --target is optional with --formula: asked for once the options are read.
    assert "the following arguments are required: --out" in run.err
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
