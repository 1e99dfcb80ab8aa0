"""``gradfit fit``'s solver options (derived from SolverConfig, one per field), the library call
under it (:func:`gradfit.fitting.fit_data`), and the gaps a new user hit: values beyond float32,
columns left out of the default features, column names with commas.

Tolerances: coefficients of one solver computed by the CLI and by the library on the same
float64 data are compared bit for bit (same code path); optima from the statistics against the
QR closed form to 1e-9 relative (the eigen-route loses about eps times the condition number of
the crop data's correlation matrix, ~1e3).
"""

from __future__ import annotations

import json
import math
from dataclasses import fields
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

import gradfit
from gradfit.cli import build_parser, main
from gradfit.cli.config_options import config_fields, config_from_args, flag_of
from gradfit.fitting import expand_names, fit_data
from gradfit.persistence import load_model
from gradfit.solvers.config import SolverConfig
from gradfit.training import fit_linear

pytestmark = pytest.mark.usefixtures("one_thread")

# A non-default value for every setting (and one that every solver setting accepts together
# with the others on gd): if a field is added to SolverConfig without an entry here, the test
# below fails, so the command line can never miss a setting.
NON_DEFAULT: dict[str, tuple[str, list[str], object]] = {
    "solver": ("sgd", ["--solver", "sgd"], "sgd"),
    "learning_rate": ("lr", ["--lr", "0.01"], 0.01),
    "schedule": ("schedule", ["--schedule", "step"], "step"),
    "power_t": ("power_t", ["--power-t", "0.25"], 0.25),
    "decay_every": ("decay_every", ["--decay-every", "3"], 3),
    "decay_rate": ("decay_rate", ["--decay-rate", "0.9"], 0.9),
    "momentum": ("momentum", ["--momentum", "0.5"], 0.5),
    "nesterov": ("nesterov", ["--nesterov"], True),
    "alpha": ("alpha", ["--alpha", "0.1"], 0.1),
    "l1_ratio": ("l1_ratio", ["--l1-ratio", "0.5"], 0.5),
    "batch_size": ("batch_size", ["--batch-size", "4"], 4),
    "max_epochs": ("epochs", ["--epochs", "7"], 7),
    "tol": ("tol", ["--tol", "none"], None),
    "n_iter_no_change": ("n_iter_no_change", ["--n-iter-no-change", "3"], 3),
    "early_stopping": ("early_stopping", ["--early-stopping"], True),
    "validation_fraction": ("validation_fraction", ["--validation-fraction", "0.2"], 0.2),
    "standardize": ("standardize", ["--no-standardize"], False),
    "fit_intercept": ("fit_intercept", ["--no-fit-intercept"], False),
    "divergence_factor": ("divergence_factor", ["--divergence-factor", "100"], 100.0),
}


def _cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _parse(*argv: str) -> SolverConfig:
    args = build_parser().parse_args(["fit", "crops", "--target", "apples", "--out", "m", *argv])
    return config_from_args(args)


def test_every_setting_has_an_option_with_the_library_default() -> None:
    names = {f.name for f in fields(SolverConfig)}
    assert names == set(NON_DEFAULT), "a SolverConfig field without a CLI test entry"
    assert {f.name for f in config_fields()} == names
    assert _parse() == SolverConfig()  # no option given: exactly the library's defaults
    help_text = build_parser()._subparsers._group_actions[0].choices["fit"].format_help()  # type: ignore[union-attr]
    for f in config_fields():
        assert flag_of(f) in help_text


@pytest.mark.parametrize("name", sorted(NON_DEFAULT))
def test_each_option_reaches_the_configuration(name: str) -> None:
    _, argv, value = NON_DEFAULT[name]
    extra: list[str] = []
    # Settings that only make sense together with another one.
    if name == "nesterov":
        extra = ["--momentum", "0.5"]
    config = _parse(*argv, *extra)
    assert getattr(config, name) == value
    for other in fields(SolverConfig):  # and nothing else changed
        if other.name != name and not extra:
            assert getattr(config, other.name) == getattr(SolverConfig(), other.name)


def test_all_options_at_once_fit_as_the_library_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = [
        "--solver", "sgd", "--lr", "0.01", "--schedule", "step", "--decay-every", "3",
        "--decay-rate", "0.9", "--momentum", "0.5", "--nesterov", "--alpha", "0.01",
        "--l1-ratio", "0.5", "--batch-size", "4", "--epochs", "7", "--tol", "none",
        "--no-fit-intercept", "--divergence-factor", "100",
    ]  # fmt: skip
    model = tmp_path / "m.safetensors"
    code, _, err = _cli(capsys, "fit", "crops", "--target", "apples,oranges", "--out", model, *argv)
    assert code == 0, err
    config = _parse(*argv)
    crops = gradfit.load_crops()
    expected = fit_linear(crops.data.double(), crops.target.double(), config, random_state=0)
    saved = load_model(model)
    assert torch.equal(saved.weight, expected.weight) and torch.equal(saved.bias, expected.bias)
    assert torch.count_nonzero(saved.bias) == 0  # --no-fit-intercept reached the solver
    hyper = saved.hyperparameters
    assert hyper["schedule"] == "step" and hyper["nesterov"] is True and hyper["tol"] is None
    assert hyper["learning_rate"] == 0.01 and hyper["epochs"] == 7 == hyper["n_iter"]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--decay-rate", "0"], "argument --decay-rate: expected a number above 0 and up to 1"),
        (["--validation-fraction", "1"], "argument --validation-fraction: expected a number"),
        (["--divergence-factor", "1"], "argument --divergence-factor: expected a number above 1"),
        (["--schedule", "cosine"], "argument --schedule: invalid choice: 'cosine'"),
        (["--nesterov"], "nesterov=True needs momentum > 0"),
        (["--solver", "lstsq", "--momentum", "0.5"], "solver='lstsq' cannot honour momentum"),
        (["--solver", "scratch", "--no-fit-intercept"], "cannot honour fit_intercept=False"),
    ],
)
def test_bad_settings_are_one_line_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], says: str
) -> None:
    code, out, err = _cli(
        capsys, "fit", "crops", "--target", "apples", "--out", tmp_path / "m", *argv
    )
    assert (code, out) == (2, "")
    assert err.startswith("gradfit: error: ") and err.count("\n") == 1 and says in err, err
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# the library call under `gradfit fit`


def test_fit_data_reports_the_optimum_from_the_statistics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crops = gradfit.load_crops()
    X, Y = crops.data.double(), crops.target.double()
    exact = gradfit.least_squares(X, Y)
    optimum = float(gradfit.predict(X, exact.weight, exact.bias).sub(Y).pow(2).mean())

    def no_second_solve(*args: object, **kwargs: object) -> None:
        raise AssertionError("the optimum must come from the statistics, not a second solve")

    monkeypatch.setattr("gradfit.solvers.lstsq.least_squares", no_second_solve)
    report = fit_data("crops", ["apples", "oranges"], config=SolverConfig(tol=1e-12))
    assert report.optimal_loss == pytest.approx(optimum, rel=1e-9)
    assert report.loss_ratio == pytest.approx(report.final_loss / report.optimal_loss)
    # gd to tol=1e-12 of the certified optimum (both losses carry ~1e-12 of rounding here).
    assert report.loss_ratio is not None and abs(report.loss_ratio - 1) < 1e-9
    assert report.model.feature_names == tuple(crops.feature_names)
    np.testing.assert_allclose(report.model.weight.numpy(), exact.weight.numpy(), rtol=1e-5)


def test_fit_data_lstsq_is_its_own_optimum() -> None:
    report = fit_data("crops", ["apples", "oranges"], config=SolverConfig(solver="lstsq"))
    assert report.optimal_loss == report.final_loss and report.loss_ratio == 1.0
    assert report.result.stats is None  # no statistics computed just to report


# ---------------------------------------------------------------------------------------------
# messages and names: a value beyond float32, columns left out of the features, column names
# with commas


def test_a_value_beyond_float32_names_the_column_row_and_fix(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = tmp_path / "big.csv"
    data.write_text("a,b,y\n1,2,3\n2,1e39,4\n3,5,7\n4,4,1\n", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    argv = ["fit", data, "--target", "y", "--out", out / "m.safetensors", "--dtype", "float32"]
    code, _, err = _cli(capsys, *argv)
    assert code == 2 and err.count("\n") == 1, err
    for fragment in ("column 'b', row 2", "1e+39", "float32", "3.4e+38", "--dtype float64"):
        assert fragment in err, (fragment, err)
    assert "overflows float64" not in err
    assert list(out.iterdir()) == []
    code, _, err = _cli(capsys, *argv[:-2], "--dtype", "float64", "--quiet")
    assert code == 0, err


def test_columns_left_out_of_the_features_are_named_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    crops = gradfit.load_crops()
    columns = {n: crops.data[:, j].double().numpy() for j, n in enumerate(crops.feature_names)}
    columns["apples"] = crops.target[:, 0].double().numpy()
    # An identifier (a text column with a different value in every row): left out, named;
    # a text column of a few levels would be categorical (issue 19).
    columns["region"] = np.array([f"r{i}" for i in range(15)])
    data = tmp_path / "crops.parquet"
    pq.write_table(pa.table(columns), data)
    model = tmp_path / "m.safetensors"
    code, _, err = _cli(capsys, "fit", data, "--target", "apples", "--out", model)
    assert code == 0
    notes = [line for line in err.splitlines() if line.startswith("gradfit: note:")]
    assert len(notes) == 1 and "'region'" in notes[0] and "--features" in notes[0]
    assert "temp" not in notes[0]
    code, out, _ = _cli(capsys, "info", model)
    assert "features used (3): temp, rainfall, humidity; predicts apples" in out
    # Named features: nothing was left out by a default, nothing to say.
    code, _, err = _cli(
        capsys, "fit", data, "--target", "apples", "--features", "temp", "--out", model
    )
    assert code == 0 and "note" not in err
    # --quiet silences it.
    code, _, err = _cli(capsys, "fit", data, "--target", "apples", "--out", model, "--quiet")
    assert (code, err) == (0, "")


def test_column_names_with_commas(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    y = X @ np.array([2.0, -1.0]) + 0.5
    lines = ['"temp, °C",rain,"yield, t"']
    lines += [f"{float(a)!r},{float(b)!r},{float(c)!r}" for (a, b), c in zip(X, y, strict=True)]
    data = tmp_path / "commas.csv"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    model = tmp_path / "m.safetensors"
    code, out, err = _cli(
        capsys,
        "fit",
        data,
        "--target",
        "yield, t",
        "--features",
        "temp, °C",
        "--features",
        "rain",
        "--solver",
        "lstsq",
        "--out",
        model,
        "--json",
    )
    assert code == 0, err
    saved = load_model(model)
    assert saved.feature_names == ("temp, °C", "rain") and saved.target_names == ("yield, t",)
    np.testing.assert_allclose(saved.weight.numpy(), [[2.0, -1.0]], rtol=1e-12)
    assert json.loads(out)["loss_ratio"] is None  # an exact fit


def test_expand_names() -> None:
    columns = ["a", "b", "a,b", "c"]
    assert expand_names(["a,b"], columns) == ["a,b"]  # a column's own name wins
    assert expand_names(["b, c"], columns) == ["b", "c"]
    assert expand_names(["a", "b,c", "a,b"], columns) == ["a", "b", "c", "a,b"]
    assert expand_names([" , "], columns) == []
    assert math.isfinite(len(expand_names([], columns)))


@pytest.mark.parametrize("too", ["small", "large"])
@pytest.mark.parametrize(
    "road", [[], ["--stream"], ["--alpha", "cv"], ["--alpha", "cv", "--stream"]]
)
def test_a_column_too_small_or_too_large_for_float64_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, too: str, road: list[str]
) -> None:
    """The math refuses a column whose squares underflow (varying by < 1e-154) or overflow
    float64 by its index in X ('column 1 (counted from 0) of X'); a file's user reads the
    column's and the file's names, in one line."""
    if too == "small" and road[:2] == ["--alpha", "cv"]:
        pytest.skip("the CV pass checks no column for underflow")
    rng = np.random.default_rng(3)
    x1, x2 = rng.normal(size=40), rng.normal(size=40) * (1e-160 if too == "small" else 1e200)
    y = x1 + rng.normal(size=40)
    data = tmp_path / "data.csv"
    rows = "".join(
        f"{a!r},{b!r},{c!r}\n" for a, b, c in zip(x1.tolist(), x2.tolist(), y.tolist(), strict=True)
    )
    data.write_text("x1,x2,y\n" + rows, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = _cli(
        capsys, "fit", data, "--target", "y", "--out", out / "m.safetensors", "--quiet", *road
    )
    lines = [line for line in err.splitlines() if "error" in line]
    assert code == 2 and len(lines) == 1, err
    assert f"too {too} to train on: column 'x2' of " in lines[0] and "data.csv" in lines[0], err
    assert "counted from 0" not in lines[0] and "rescale the column" in lines[0], err
    assert list(out.iterdir()) == []
