"""Numeric options at their extremes: every value of every numeric option of every command,
however large, small or odd (1e30, 1e308, inf, nan, -0, 10**400, 2**63, a subnormal), either
works (exit 0) or is refused in one line (exit 2), never an internal error (exit 1) or a
traceback. Overflowing values are refused by the option's type, naming the option and its
range; the largest accepted values work. And the penalty: ``--alpha 1e308`` used to surface as
"learning rate 0 ... try a smaller --lr" (gd) or "X contains NaN (row 200)" (lstsq)."""

from __future__ import annotations

import datetime
import math
import re
from pathlib import Path

import pytest
import torch

from gradfit.cli import build_parser, main
from gradfit.cli.options import MAX_TIMEOUT
from gradfit.errors import ValidationError
from gradfit.persistence import load_model
from gradfit.solvers.config import (
    MAX_ALPHA,
    MAX_COUNT,
    MAX_LEARNING_RATE,
    MAX_POWER_T,
    SolverConfig,
)

EXTREMES = [
    "1e30",
    "1e308",
    "1e400",  # inf once parsed
    "inf",
    "-inf",
    "nan",
    "-0",
    "0",
    "-1",
    "1e-320",  # subnormal
    "1" + "0" * 400,  # 10**400, an integer Python parses
    str(2**63),
    str(2**63 - 1),
    "0.5",
    "1e6",
]

# option -> (command line before it, other options it needs to be used at all). A few epochs
# and rows keep each run short; options that count epochs use gd, which stops by --tol.
FIT = ["fit", "DATA", "--target", "y", "--out", "OUT"]
OPTIONS: dict[str, tuple[list[str], list[str]]] = {
    "--lr": (FIT, ["--solver", "gd", "--epochs", "5"]),
    "--epochs": (FIT, ["--solver", "gd", "--tol", "1e-3"]),
    "--tol": (FIT, ["--solver", "gd", "--epochs", "5"]),
    "--momentum": (FIT, ["--solver", "sgd", "--epochs", "3"]),
    "--alpha": (FIT, ["--solver", "gd", "--epochs", "5"]),
    "--l1-ratio": (FIT, ["--solver", "gd", "--alpha", "0.1", "--epochs", "5"]),
    "--power-t": (FIT, ["--solver", "sgd", "--schedule", "invscaling", "--epochs", "3"]),
    "--decay-every": (FIT, ["--solver", "sgd", "--schedule", "step", "--epochs", "3"]),
    "--decay-rate": (
        FIT,
        ["--solver", "sgd", "--schedule", "step", "--decay-every", "1", "--epochs", "3"],
    ),
    "--batch-size": (FIT, ["--solver", "builtin", "--epochs", "2"]),
    "--n-iter-no-change": (FIT, ["--solver", "sgd", "--epochs", "3"]),
    "--validation-fraction": (FIT, ["--solver", "sgd", "--early-stopping", "--epochs", "3"]),
    "--divergence-factor": (FIT, ["--solver", "gd", "--epochs", "5"]),
    "--seed": (FIT, ["--solver", "sgd", "--epochs", "2"]),
    "--batch-rows": (FIT, ["--solver", "sgd", "--stream", "--epochs", "2"]),
    "--memory-limit": (FIT, ["--solver", "lstsq"]),
    "--shuffle-buffer": (FIT, ["--solver", "sgd", "--stream", "--epochs", "2"]),
    "--checkpoint-every": (FIT, ["--solver", "gd", "--checkpoint", "CKPT", "--epochs", "3"]),
    "--dist-timeout": (FIT, ["--solver", "lstsq"]),
    "predict --level": (["predict", "MODEL", "DATA"], ["--interval", "prediction"]),
    "predict --batch-rows": (["predict", "MODEL", "DATA"], ["--stream"]),
    "predict --memory-limit": (["predict", "MODEL", "DATA"], []),
    "evaluate --batch-rows": (["evaluate", "MODEL", "DATA"], ["--stream"]),
    "evaluate --memory-limit": (["evaluate", "MODEL", "DATA"], []),
    "demo --lr": (["demo"], ["--epochs", "2"]),
    "demo --seed": (["demo"], ["--epochs", "2"]),
    "demo --rows": (["demo"], ["--epochs", "2"]),
    "demo --epochs": (["demo"], []),
}
# Accepted, and then the tutorial's loops run every one of these epochs: not run here.
SLOW = {("demo --epochs", str(2**63 - 1))}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bounds")
    data = root / "data.csv"
    rows = "".join(f"{i % 7},{i % 5},{2 * (i % 7) + (i % 5) + 0.1 * (i % 3)}\n" for i in range(60))
    data.write_text("a,b,y\n" + rows)
    model = root / "model.safetensors"
    assert main(["fit", str(data), "--target", "y", "--solver", "lstsq", "--out", str(model)]) == 0
    return {"DATA": data, "MODEL": model, "OUT": root / "out.safetensors", "CKPT": root / "ck.pt"}


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: usage errors
        assert isinstance(exc.code, int)
        code = exc.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("value", EXTREMES)
@pytest.mark.parametrize("option", list(OPTIONS))
def test_every_numeric_option_at_its_extremes(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], option: str, value: str
) -> None:
    if (option, value) in SLOW:
        pytest.skip("accepted: the tutorial would run 2**63 - 1 epochs")
    head, needs = OPTIONS[option]
    flag = option.split()[-1]
    argv = [str(files.get(a, a)) for a in [*head, *needs]] + [f"{flag}={value}"]
    files["CKPT"].unlink(missing_ok=True)
    code, err = run(capsys, argv)
    assert code in (0, 2), (argv[-1], code, err)
    assert "Traceback" not in err
    lines = err.splitlines()
    assert all(line.startswith("gradfit: ") for line in lines), err
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("gradfit: error: "), err
        assert len(lines[0]) < 400, err  # 10**400 written out is not echoed whole


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--alpha", "1e308"], "argument --alpha: expected a number from 0 to 1e+30"),
        (["--alpha", "1e31"], "argument --alpha: expected a number from 0 to 1e+30"),
        (["--lr", "1e39"], "argument --lr: expected 'auto' or a positive number up to 1e+38"),
        (["--power-t", "11"], "argument --power-t: expected a number from 0 to 10"),
        (["--batch-size", "1e30"], "argument --batch-size: expected a positive integer up to"),
        (["--batch-size", str(2**63)], "argument --batch-size: expected a positive integer up"),
        (["--epochs", "1" + "0" * 400], "got '10000000000000000000000000000... (403 characters)"),
        (["--dist-timeout", "1e300"], "argument --dist-timeout: expected a number of seconds"),
        (["--dist-timeout", "0"], "from 0.001 to 604800 (one week), got '0'"),
    ],
)
def test_out_of_range_values_name_the_option_and_its_range(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], argv: list[str], message: str
) -> None:
    files["OUT"].unlink(missing_ok=True)
    code, err = run(capsys, [*(str(files.get(a, a)) for a in FIT), *argv])
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("gradfit: error: ") and message in err, err
    assert not files["OUT"].exists()


def test_dist_timeout_is_parsed_to_a_usable_timedelta() -> None:
    """torchrun is not needed: the parsed value is what becomes the process group's
    ``datetime.timedelta``; the largest accepted one converts, the refused ones would not."""
    parser = build_parser()
    args = parser.parse_args(["fit", "d.csv", "--target", "y", "--out", "m", "--dist-timeout",
                              str(MAX_TIMEOUT)])  # fmt: skip
    assert args.dist_timeout == MAX_TIMEOUT == 604800
    assert datetime.timedelta(seconds=args.dist_timeout) == datetime.timedelta(weeks=1)
    assert parser.parse_args(["fit", "d", "--target", "y", "--out", "m"]).dist_timeout == 300
    with pytest.raises(OverflowError):
        datetime.timedelta(seconds=1e300)  # what --dist-timeout 1e300 used to reach


@pytest.mark.parametrize("solver", ["gd", "lstsq", "sgd"])
@pytest.mark.parametrize("alpha", ["1e6", str(MAX_ALPHA)])
def test_a_large_legitimate_alpha_sets_the_coefficients_to_zero(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], solver: str, alpha: str
) -> None:
    out = files["OUT"]
    code, err = run(
        capsys, [*(str(files.get(a, a)) for a in FIT), "--solver", solver, "--alpha", alpha]
    )
    assert code == 0, err
    weight = load_model(out).weight
    assert bool(torch.isfinite(weight).all())
    # Standardized features and y of unit order: |w| <= (x'y / n) / alpha, about 5 / alpha.
    assert float(weight.abs().max()) < 10 / float(alpha)


def test_the_library_refuses_the_same_ranges() -> None:
    """SolverConfig (the library, the estimator, the CLI) refuses what the options refuse."""
    cases = [
        ({"alpha": 1e308}, "alpha must be from 0 to 1e+30, got 1e+308"),
        ({"alpha": math.inf}, "alpha must be a finite number"),
        ({"learning_rate": 1e39}, "positive number up to 1e+38"),
        ({"power_t": 1e30}, "power_t must be >= 0.0 and <= 10.0"),
        ({"batch_size": 10**400}, "batch_size must be a positive integer up to 2**63 - 1"),
        ({"max_epochs": 2**63}, "max_epochs must be a positive integer up to 2**63 - 1"),
    ]
    for settings, message in cases:
        with pytest.raises(ValidationError, match=re.escape(message)):
            SolverConfig(**settings)  # type: ignore[arg-type]
    edge = SolverConfig(
        alpha=MAX_ALPHA,
        learning_rate=MAX_LEARNING_RATE,
        power_t=MAX_POWER_T,
        batch_size=MAX_COUNT,
        max_epochs=MAX_COUNT,
    )
    assert edge.alpha == MAX_ALPHA and edge.batch_size == 2**63 - 1


@pytest.mark.parametrize("rank", ["0", "1", "3"])
def test_under_torchrun_rank_0_alone_reports_a_bad_dist_timeout(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, rank: str
) -> None:
    """--dist-timeout 1e300 under torchrun: refused as it is parsed, before any process group,
    by every process (exit 2), and said once, by rank 0, instead of an internal error per rank."""
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", rank)
    code, err = run(capsys, ["fit", "d.csv", "--target", "y", "--out", "m", "--dist-timeout",
                             "1e300"])  # fmt: skip
    assert code == 2
    if rank == "0":
        assert err.startswith("gradfit: error: argument --dist-timeout: expected a number of")
        assert err.count("\n") == 1
    else:
        assert err == ""


def test_checkpoint_every_without_a_checkpoint_is_refused(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path]
) -> None:
    """--checkpoint-every alone was accepted in silence, and no checkpoint was written (as
    --resume alone is refused)."""
    files["OUT"].unlink(missing_ok=True)
    fit = [str(files.get(a, a)) for a in FIT]
    code, err = run(capsys, [*fit, "--solver", "gd", "--checkpoint-every", "2"])
    assert code == 2 and err.count("\n") == 1, err
    assert "--checkpoint-every needs --checkpoint PATH" in err
    assert not files["OUT"].exists()
    code, err = run(capsys, [*fit, "--alpha", "cv", "--checkpoint-every", "2"])
    assert code == 2 and "leave out --checkpoint, --checkpoint-every and --resume" in err, err
    files["CKPT"].unlink(missing_ok=True)
    code, err = run(
        capsys,
        [*fit, "--solver", "gd", "--checkpoint-every", "2", "--checkpoint", str(files["CKPT"])],
    )
    assert code == 0 and files["CKPT"].exists(), err
