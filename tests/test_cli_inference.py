"""Inference on the command line: the coefficient table of `fit`, `--cov`, the interval columns
of `predict`, the table of `info`, what model files keep, and the refusals.

The figures are checked against :func:`gradfit.ols` (itself checked against NIST StRD, textbook
formulas and statsmodels in test_inference.py): the command line must give exactly what the
library gives, read back from the file it wrote."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import (
    Run,
    gradfit_cli,
    ok,
    one_error_line,
    rewrite_document,
    user_error,
    write_csv,
)
from scipy import stats as sps

import gradfit
from gradfit.persistence import FORMAT_VERSION, load_model

FEATURES = ("x1", "x2", "x3")
TARGETS = ("y1", "y2")


def make_data(n: int = 240, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Well-conditioned features, two targets with heteroskedastic noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * np.array([1.0, 3.0, 0.5]) + np.array([2.0, -1.0, 5.0])
    noise = rng.normal(size=(n, 2)) * (0.2 + (X[:, :1] - 2.0) ** 2)
    Y = X @ np.array([[1.5, -2.0, 0.7], [0.3, 0.0, -1.1]]).T + np.array([4.0, -3.0]) + noise
    return X, Y


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    X, Y = make_data()
    columns = {name: X[:, j] for j, name in enumerate(FEATURES)}
    columns.update({name: Y[:, j] for j, name in enumerate(TARGETS)})
    return write_csv(tmp_path / "train.csv", columns)


@pytest.fixture
def new_file(tmp_path: Path) -> Path:
    X, _ = make_data(n=7, seed=11)
    columns = {name: X[:, j] for j, name in enumerate(FEATURES)}
    columns["id"] = [f"r{i:03d}" for i in range(7)]
    return write_csv(tmp_path / "new.csv", columns)


def reference(cov_type: str = "nonrobust") -> gradfit.OLSResult:
    X, Y = make_data()
    return gradfit.ols(X, Y, cov_type=cov_type, feature_names=FEATURES, target_names=TARGETS)


def fit_json(capsys: pytest.CaptureFixture[str], data: Path, out: Path, *extra: str) -> dict:
    run = ok(capsys, "fit", data, "--target", "y1,y2", "--out", out, "--json", *extra)
    return json.loads(run.out)


def fit_lstsq(
    capsys: pytest.CaptureFixture[str], data: Path, model: Path, *extra: str, target: str = "y1,y2"
) -> Run:
    """``gradfit fit DATA --target TARGET --solver lstsq --out MODEL EXTRA...``, which must work."""
    return ok(capsys, "fit", data, "--target", target, "--solver", "lstsq", "--out", model, *extra)


def coefficient(summary: dict, target: str, name: str, key: str) -> float:
    return float(summary["targets"][target]["coefficients"][name][key])


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0", "HC1", "HC2", "HC3"])
def test_fit_lstsq_json_has_the_library_inference(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data_file: Path, cov_type: str
) -> None:
    doc = fit_json(
        capsys, data_file, tmp_path / "m.safetensors", "--solver", "lstsq", "--cov", cov_type
    )
    inf = doc["inference"]
    ref = reference(cov_type)
    assert inf["cov_type"] == cov_type and inf["df_resid"] == 240 - 4 and inf["n"] == 240
    for j, target in enumerate(TARGETS):
        for i, name in enumerate(FEATURES):
            # The same computation on the same (bit-exact) data: agreement to rounding.
            assert coefficient(inf, target, name, "std_error") == pytest.approx(
                float(ref.weight_se[j, i]), rel=1e-12
            )
            assert coefficient(inf, target, name, "p") == pytest.approx(
                float(ref.weight_p[j, i]), rel=1e-9, abs=1e-300
            )
        assert coefficient(inf, target, "(Intercept)", "std_error") == pytest.approx(
            float(ref.bias_se[j]), rel=1e-12
        )
        assert inf["targets"][target]["r2"] == pytest.approx(float(ref.r2[j]), rel=1e-12)
        assert inf["targets"][target]["f_statistic"] == pytest.approx(
            float(ref.f_statistic[j]), rel=1e-10
        )
    cov = np.array(inf["covariance"]["y2"])
    np.testing.assert_allclose(cov, ref.covariance[1].numpy(), rtol=1e-11, atol=0)


def test_robust_errors_differ_from_classical_on_heteroskedastic_data(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data_file: Path
) -> None:
    plain = fit_json(capsys, data_file, tmp_path / "a.safetensors", "--solver", "lstsq")
    hc3 = fit_json(
        capsys, data_file, tmp_path / "b.safetensors", "--solver", "lstsq", "--cov", "HC3"
    )
    a = coefficient(plain["inference"], "y1", "x1", "std_error")
    b = coefficient(hc3["inference"], "y1", "x1", "std_error")
    # The noise grows with (x1 - 2)²: the sandwich estimate of x1's error is clearly larger.
    assert b > 1.2 * a


def test_fit_prints_an_r_style_table_per_target(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data_file: Path
) -> None:
    run = fit_lstsq(capsys, data_file, tmp_path / "m.safetensors")
    ref = reference()
    assert run.out.count("Coefficients:") == 2
    assert "Response y1:" in run.out and "Response y2:" in run.out
    for line in ref.summary().splitlines():
        assert line in run.out, line
    assert "Residual standard error:" in run.out and "on 236 degrees of freedom" in run.out


def test_converged_gd_reports_the_same_inference(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data_file: Path
) -> None:
    doc = fit_json(
        capsys, data_file, tmp_path / "m.safetensors", "--solver", "gd", "--epochs", "2000"
    )
    ref = reference()
    inf = doc["inference"]
    assert inf is not None and inf["cov_type"] == "nonrobust"
    for j, target in enumerate(TARGETS):
        for i, name in enumerate(FEATURES):
            # From the statistics (Cholesky of the Gram matrix, condition ~ 40 here) with gd's
            # own coefficients: far inside 1e-8 of the QR route.
            assert coefficient(inf, target, name, "std_error") == pytest.approx(
                float(ref.weight_se[j, i]), rel=1e-8
            )


def test_gd_far_from_the_optimum_gives_a_note_and_no_table(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data_file: Path
) -> None:
    run = ok(
        capsys,
        "fit",
        data_file,
        "--target",
        "y1,y2",
        "--solver",
        "sgd",
        "--epochs",
        "1",
        "--cov",
        "nonrobust",
        "--out",
        tmp_path / "m.safetensors",
        "--json",
    )
    assert json.loads(run.out)["inference"] is None
    assert "no coefficient table: sgd stopped" in run.err
    assert "standard errors from the least-squares optimum" in run.err
    assert load_model(tmp_path / "m.safetensors").inference is None


def test_a_covariance_beyond_float64_is_a_note_not_inf_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A column varying by about 1e-160: lstsq finds its coefficient (about 5e159), but the
    covariance's entries (its inverse square) overflow. The table printed "inf" standard
    errors with t = 0 and p = 1 as if measured, and the model file held an interval document
    it then refused to read ("covariance must hold numbers, got 'inf'"). Now the fit says why
    there is no table, the model predicts, and an interval is one line saying why not."""
    rng = np.random.default_rng(0)
    x, x2 = rng.normal(size=50), rng.normal(size=50) * 1e-160
    y = x + 0.5e160 * x2 + 0.1 * rng.normal(size=50)
    data = write_csv(tmp_path / "tiny.csv", {"x": x, "x2": x2, "y": y})
    model = tmp_path / "m.safetensors"
    run = ok(capsys, "fit", data, "--target", "y", "--solver", "lstsq", "--out", model)
    assert "inf" not in run.out and "Coefficients" not in run.out
    assert "no coefficient table: the coefficients' covariance overflows float64" in run.err
    assert load_model(model).inference is None
    predicted = ok(capsys, "predict", model, data)
    assert len(predicted.out.splitlines()) == 51
    out = tmp_path / "out"
    out.mkdir()
    user_error(
        capsys, out, "predict", model, data, "--interval", "prediction", "--out", out / "p.csv",
        says=("no interval data", "covariance beyond float64", "rescaled columns"),
    )  # fmt: skip
    for cov_type in ("nonrobust", "HC0", "HC3"):
        with pytest.raises(gradfit.ValidationError, match="overflows float64"):
            gradfit.ols(np.c_[x, x2], y, cov_type=cov_type)
        # The mirror: a column of values near 1e200 has variances of 0 (t = inf, p = 0).
        with pytest.raises(gradfit.ValidationError, match="underflows float64"):
            gradfit.ols(np.c_[x, x * 0 + rng.normal(size=50) * 1e200], y, cov_type=cov_type)


@pytest.mark.parametrize("solver", ["lstsq", "gd"])
@pytest.mark.parametrize("cov_type", ["nonrobust", "HC1", "HC3"])
def test_streamed_fit_gives_the_table_hc_by_a_second_pass(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    data_file: Path,
    solver: str,
    cov_type: str,
) -> None:
    doc = fit_json(
        capsys,
        data_file,
        tmp_path / "m.safetensors",
        "--solver",
        solver,
        "--epochs",
        "2000",
        "--cov",
        cov_type,
        "--stream",
        "--batch-rows",
        "17",
    )
    ref = reference(cov_type)
    assert doc["inference"]["cov_type"] == cov_type
    for j, target in enumerate(TARGETS):
        for i, name in enumerate(FEATURES):
            # From the statistics' factor (condition ~ 40, squared) rather than QR: 1e-8.
            assert coefficient(doc["inference"], target, name, "std_error") == pytest.approx(
                float(ref.weight_se[j, i]), rel=1e-8
            )
        assert coefficient(doc["inference"], target, "(Intercept)", "std_error") == (
            pytest.approx(float(ref.bias_se[j]), rel=1e-8)
        )


def test_gd_in_memory_gives_hc_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data_file: Path
) -> None:
    doc = fit_json(capsys, data_file, tmp_path / "m.safetensors", "--solver", "gd", "--cov", "HC2")
    ref = reference("HC2")
    got = coefficient(doc["inference"], "y2", "x1", "std_error")
    assert got == pytest.approx(float(ref.weight_se[1, 0]), rel=1e-8)


def test_what_is_refused_before_work() -> None:
    from gradfit.fitting import inference_problem
    from gradfit.solvers.config import SolverConfig

    config = SolverConfig(solver="lstsq")
    assert inference_problem(config, "HC1") is None
    assert inference_problem(config, "HC3", processes=4) is None  # a group shares the pass
    ridge = inference_problem(SolverConfig(solver="lstsq", alpha=0.5), "HC1")
    assert ridge is not None and "penalized fit" in ridge
    bad = inference_problem(config, "HC9")
    assert bad is not None and "--cov must be one of" in bad


def test_ridge_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data_file: Path, new_file: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    user_error(
        capsys,
        out,
        "fit",
        data_file,
        "--target",
        "y1",
        "--solver",
        "lstsq",
        "--alpha",
        "0.5",
        "--cov",
        "nonrobust",
        "--out",
        out / "m.safetensors",
        says=("do not apply to a penalized fit", "--alpha 0.5"),
    )
    # Without --cov a ridge fit simply has no table, and its model no interval data.
    ridge = tmp_path / "ridge.safetensors"
    doc = fit_json(capsys, data_file, ridge, "--solver", "lstsq", "--alpha", "0.5")
    assert doc["inference"] is None and load_model(ridge).inference is None
    user_error(
        capsys,
        out,
        "predict",
        ridge,
        new_file,
        "--interval",
        "prediction",
        "--out",
        out / "p.csv",
        says=("no interval data", "penalized fit (alpha=0.5)", "--solver lstsq"),
    )


@pytest.mark.parametrize("interval", ["confidence", "prediction"])
@pytest.mark.parametrize("stream", ["--no-stream", "--stream"])
def test_predict_interval_columns(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    data_file: Path,
    new_file: Path,
    interval: str,
    stream: str,
) -> None:
    model = tmp_path / "m.safetensors"
    fit_lstsq(capsys, data_file, model)
    run = ok(
        capsys,
        "predict",
        model,
        new_file,
        "--interval",
        interval,
        "--level",
        "0.9",
        "--keep",
        "id",
        stream,
        "--batch-rows",
        "3",
    )
    lines = run.out.strip().splitlines()
    assert lines[0] == "id,y1,y1_lower,y1_upper,y2,y2_lower,y2_upper"
    got = np.array([[float(v) for v in line.split(",")[1:]] for line in lines[1:]])
    Xnew, _ = make_data(n=7, seed=11)
    ref = reference().predict(Xnew, interval=interval, level=0.9)
    for j in range(2):
        np.testing.assert_allclose(got[:, 3 * j], ref.mean[:, j].numpy(), rtol=1e-13)
        np.testing.assert_allclose(got[:, 3 * j + 1], ref.lower[:, j].numpy(), rtol=1e-12)
        np.testing.assert_allclose(got[:, 3 * j + 2], ref.upper[:, j].numpy(), rtol=1e-12)
    assert [line.split(",")[0] for line in lines[1:]] == [f"r{i:03d}" for i in range(7)]


def test_prediction_interval_by_hand_and_level(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data_file: Path, new_file: Path
) -> None:
    """The textbook interval ŷ ± t_{(1+level)/2, n-p} · s · sqrt(1 + x̃ᵀ (AᵀA)⁻¹ x̃)."""
    model = tmp_path / "m.safetensors"
    fit_lstsq(capsys, data_file, model, "--features", "x1,x2,x3", target="y1")
    out = tmp_path / "p.csv"
    ok(
        capsys,
        "predict",
        model,
        new_file,
        "--interval",
        "prediction",
        "--level",
        "0.8",
        "--out",
        out,
    )
    table = np.genfromtxt(out, delimiter=",", names=True)
    X, Y = make_data()
    A = np.hstack([X, np.ones((X.shape[0], 1))])
    beta, rss, *_ = np.linalg.lstsq(A, Y[:, 0], rcond=None)
    s2 = float(rss[0]) / (X.shape[0] - 4)
    Xn, _ = make_data(n=7, seed=11)
    An = np.hstack([Xn, np.ones((7, 1))])
    half = sps.t.ppf(0.9, X.shape[0] - 4) * np.sqrt(
        s2 * (1 + np.einsum("ij,jk,ik->i", An, np.linalg.inv(A.T @ A), An))
    )
    np.testing.assert_allclose(table["y1"], An @ beta, rtol=1e-10)
    np.testing.assert_allclose(table["y1_upper"] - table["y1"], half, rtol=1e-9)
    np.testing.assert_allclose(table["y1"] - table["y1_lower"], half, rtol=1e-9)


def test_keep_column_clashing_with_a_bound_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data_file: Path
) -> None:
    model = tmp_path / "m.safetensors"
    fit_lstsq(capsys, data_file, model, "--features", "x1,x2,x3", target="y1")
    X, _ = make_data(n=3, seed=1)
    new = write_csv(
        tmp_path / "n.csv",
        {"x1": X[:, 0], "x2": X[:, 1], "x3": X[:, 2], "y1_lower": [1.0, 2.0, 3.0]},
    )
    out = tmp_path / "out"
    out.mkdir()
    for stream in ("--stream", "--no-stream"):
        user_error(
            capsys,
            out,
            "predict",
            model,
            new,
            "--interval",
            "confidence",
            "--keep",
            "y1_lower",
            stream,
            "--out",
            out / "p.csv",
            says=("--keep column 'y1_lower' has the name of a predicted column",),
        )


def test_bad_level_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data_file: Path, new_file: Path
) -> None:
    model = tmp_path / "m.safetensors"
    fit_lstsq(capsys, data_file, model, target="y1")
    run = gradfit_cli(
        capsys, "predict", model, new_file, "--interval", "prediction", "--level", "95"
    )
    assert run.code == 2 and "between 0 and 1" in run.err


def test_info_shows_the_table_from_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data_file: Path
) -> None:
    model = tmp_path / "m.safetensors"
    fit_lstsq(capsys, data_file, model, "--cov", "HC2")
    text = ok(capsys, "info", model).out
    assert "Standard errors: heteroskedasticity-consistent (HC2)" in text
    for line in reference("HC2").summary().splitlines():
        assert line in text, line
    info = json.loads(ok(capsys, "info", model, "--json").out)
    assert info["format_version"] == FORMAT_VERSION
    se = coefficient(info["inference"]["summary"], "y1", "x2", "std_error")
    assert se == pytest.approx(float(reference("HC2").weight_se[0, 1]), rel=1e-12)


def test_format_version_1_files_still_load_and_predict(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data_file: Path, new_file: Path
) -> None:
    model = tmp_path / "m.safetensors"
    fit_lstsq(capsys, data_file, model, "--features", "x1,x2,x3", target="y1")
    rewrite_document(model, format_version=1, inference=None)
    old = load_model(model)
    assert old.format_version == 1 and old.inference is None
    plain = ok(capsys, "predict", model, new_file).out
    assert plain.splitlines()[0] == "y1"
    assert "Coefficients:" not in ok(capsys, "info", model).out
    out = tmp_path / "out"
    out.mkdir()
    user_error(
        capsys,
        out,
        "predict",
        model,
        new_file,
        "--interval",
        "confidence",
        "--out",
        out / "p.csv",
        says=("format version 1", "refit it with --solver lstsq"),
    )


@pytest.mark.parametrize(
    "change, says",
    [
        ({"predictor": {"format": "x"}}, "corrupt interval data"),
        ({"text": 5}, "corrupt metadata: inference"),
        ("sigma", "sigma and the covariance's diagonal must be non-negative"),
        ("shape", "covariance must have shape"),
    ],
)
def test_corrupt_interval_data_is_refused(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    data_file: Path,
    new_file: Path,
    change: object,
    says: str,
) -> None:
    model = tmp_path / "m.safetensors"
    fit_lstsq(capsys, data_file, model, target="y1")
    inference = load_model(model).inference
    assert inference is not None
    if change == "sigma":
        inference["predictor"]["sigma"] = [-1.0]
    elif change == "shape":
        inference["predictor"]["covariance"] = [[[1.0]]]
    else:
        assert isinstance(change, dict)
        inference.update(change)
    rewrite_document(model, inference=inference)
    line = one_error_line(gradfit_cli(capsys, "info", model))
    assert says in line and str(model) in line


def test_info_does_not_echo_control_characters(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data_file: Path
) -> None:
    model = tmp_path / "m.safetensors"
    fit_lstsq(capsys, data_file, model, target="y1")
    inference = load_model(model).inference
    assert inference is not None
    inference["text"] = "Response y1:\x1b[2J\x07"
    rewrite_document(model, inference=inference)
    text = ok(capsys, "info", model).out
    assert "\x1b" not in text and "\x07" not in text and "Response y1:\\x1b[2J\\x07" in text


def test_saved_model_predictor_matches_the_fit(tmp_path: Path) -> None:
    """Library route: fit_data's model carries what OLSPredictor needs, through a file."""
    from gradfit.fitting import fit_data
    from gradfit.persistence import save_model
    from gradfit.solvers.config import SolverConfig

    X, Y = make_data()
    columns = {name: X[:, j] for j, name in enumerate(FEATURES)}
    columns.update({name: Y[:, j] for j, name in enumerate(TARGETS)})
    path = write_csv(tmp_path / "d.csv", columns)
    report = fit_data(str(path), ["y1", "y2"], None, SolverConfig(solver="lstsq"))
    save_model(tmp_path / "m.safetensors", report.model)
    predictor = load_model(tmp_path / "m.safetensors").interval_predictor()
    Xn = torch.from_numpy(make_data(n=5, seed=2)[0])
    got = predictor.predict(Xn, interval="confidence")
    ref = reference().predict(Xn, interval="confidence")
    np.testing.assert_allclose(got.lower.numpy(), ref.lower.numpy(), rtol=1e-12)
    np.testing.assert_allclose(got.upper.numpy(), ref.upper.numpy(), rtol=1e-12)


def test_covariance_types_agree_everywhere() -> None:
    """The command line's --cov offers the types the library computes (the clustered one
    with --groups)."""
    from gradfit import fit_checks, inference
    from gradfit.cli import build_parser

    assert fit_checks.ALL_COV_TYPES == inference.ALL_COV_TYPES
    parser = build_parser()
    fit = parser._subparsers._group_actions[0].choices["fit"]  # type: ignore[union-attr]
    cov = next(action for action in fit._actions if "--cov" in action.option_strings)
    assert tuple(cov.choices) == inference.ALL_COV_TYPES


def test_a_table_that_cannot_be_given_does_not_lose_the_fit(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """HC3 divides by 1 - leverage: with a row of leverage 1 the model is still written, and a
    note says why there is no table."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=40)
    dummy = np.zeros(40)
    dummy[9] = 1.0  # singles out row 10 (counted from 1 in the file, 9 from 0)
    y = 2 * x + rng.normal(size=40)
    data = write_csv(tmp_path / "d.csv", {"x": x, "dummy": dummy, "y": y})
    model = tmp_path / "m.safetensors"
    run = fit_lstsq(capsys, data, model, "--cov", "HC3", "--json", target="y")
    assert json.loads(run.out)["inference"] is None
    assert "no coefficient table:" in run.err and "has leverage 1" in run.err
    assert model.exists() and load_model(model).inference is None
