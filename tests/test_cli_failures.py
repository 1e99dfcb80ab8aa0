"""Training that diverges is a user error with advice (a smaller --lr, --standardize); an
unexpected exception is an internal error: exit 1, one line, nothing written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import fit_model, gradfit_cli, one_error_line, user_error

# ---------------------------------------------------------------------------------------------
# divergence


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


# ---------------------------------------------------------------------------------------------
# internal errors


@pytest.mark.parametrize(
    ("target", "argv"),
    [
        ("gradfit.fitting.fit_linear", ["fit", "crops", "--target", "apples"]),
        ("gradfit.model_file.read_model", ["info", "model.safetensors"]),
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


def test_warnings_for_developers_are_not_shown(capsys: pytest.CaptureFixture[str]) -> None:
    """The commands record every warning; those Python shows nobody by default (an import cut
    short by Ctrl-C leaves a ResourceWarning of an unclosed .pyc) are not printed."""
    import warnings

    from gradfit.cli.common import _emit_warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn(
            "unclosed file <_io.BufferedReader name='x.pyc'>", ResourceWarning, stacklevel=1
        )
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
        warnings.warn("sgd did not converge", UserWarning, stacklevel=1)
        warnings.warn("sgd did not converge", UserWarning, stacklevel=1)
    _emit_warnings(caught)
    assert capsys.readouterr().err == "gradfit: warning: sgd did not converge\n"
