"""`gradfit diagnose` and gradfit.diagnostics.diagnose: every row's influence measures of a
saved least-squares model against R's influence.measures (the references of
tests/test_influence.py), read whole and streamed; the top rows by Cook's distance; the output
file; refusals; R's four diagnostic plots (the figure's axes, the PNG).

Tolerances: against R 1e-8 relative (as tests/test_influence.py: both sides float64 least
squares, about 1e-13 apart; here through the model file's covariance, whose Cholesky factor
stands for the QR factor: 1e-13 seen); whole against streamed 1e-10 (the same routine on
other blocks of rows: 1e-15 seen); in memory (OLSResult.influence) against the model file's
route 1e-10 (1e-13 seen).
"""

from __future__ import annotations

import csv
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cli_helpers import gradfit_cli, ok, one_error_line
from test_influence import R_UNWEIGHTED, R_WEIGHTED, _parse

import gradfit
from gradfit.data import read_table, write_table_batches
from gradfit.diagnostics import diagnose
from gradfit.inference import ols
from gradfit.persistence import save_model
from gradfit.solvers.config import SolverConfig

MTCARS = Path(__file__).parent / "data" / "r" / "mtcars.csv"
RTOL = 1e-8
SAME = 1e-10
PAIRS = {  # our column: R's name in the references
    "hat": "hat",
    "rstandard": "rstandard",
    "rstudent": "rstudent",
    "cooks_distance": "cooks",
    "dffits": "dffits",
    "covratio": "covratio",
    "sigma_i": "sigma",
    "dfbetas_(Intercept)": "dfb_int",
    "dfbetas_wt": "dfb_wt",
    "dfbetas_hp": "dfb_hp",
}
COLUMNS = [
    "row",
    "fitted",
    "residual",
    "hat",
    "rstandard",
    "rstudent",
    "cooks_distance",
    "dffits",
    "covratio",
    "sigma_i",
    "dfbetas_(Intercept)",
    "dfbetas_wt",
    "dfbetas_hp",
]


def _model(path: Path, weights: str | None = None, **config: Any) -> Path:
    report = gradfit.fit(
        str(MTCARS),
        ["mpg"],
        ["wt", "hp"],
        SolverConfig(solver="lstsq", **config),
        weights=weights,
    )
    save_model(path, report.model)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {
        False: _model(folder / "m.safetensors"),
        True: _model(folder / "w.safetensors", weights="cyl"),
    }


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: np.array([row[key] for row in rows]) for key in rows[0]}


def _mtcars_columns() -> dict[str, np.ndarray]:
    return _read_csv(MTCARS)


@pytest.mark.parametrize("weighted", [False, True])
def test_diagnose_equals_r_read_whole_and_streamed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, models: dict[bool, Path], weighted: bool
) -> None:
    reference = _parse(R_WEIGHTED if weighted else R_UNWEIGHTED)
    whole, streamed = tmp_path / "whole.csv", tmp_path / "streamed.csv"
    ok(capsys, "diagnose", models[weighted], MTCARS, "--out", whole, "--keep", "model")
    ok(
        capsys,
        "diagnose",
        models[weighted],
        MTCARS,
        "--out",
        streamed,
        "--keep",
        "model",
        "--stream",
        "--batch-rows",
        "5",
    )
    a, b = _read_csv(whole), _read_csv(streamed)
    assert list(a) == ["model", *COLUMNS]
    np.testing.assert_array_equal(a["model"], _mtcars_columns()["model"])
    np.testing.assert_array_equal(a["row"].astype(int), np.arange(1, 33))
    for ours, theirs in PAIRS.items():
        np.testing.assert_allclose(
            a[ours].astype(float), reference[theirs], rtol=RTOL, atol=0, err_msg=ours
        )
    for name in COLUMNS:
        np.testing.assert_allclose(
            b[name].astype(float), a[name].astype(float), rtol=SAME, atol=1e-14, err_msg=name
        )


@pytest.mark.parametrize("weighted", [False, True])
def test_model_file_route_equals_the_fit_in_memory(
    models: dict[bool, Path], weighted: bool
) -> None:
    data = _mtcars_columns()
    X = np.column_stack([data["wt"].astype(float), data["hp"].astype(float)])
    y = data["mpg"].astype(float)
    w = data["cyl"].astype(float) if weighted else None
    measures = ols(X, y, weights=w).influence(X, y, weights=w)
    table = diagnose(models[weighted], str(MTCARS)).table()
    expected = {
        "fitted": measures.fitted[:, 0],
        "residual": measures.residuals[:, 0],
        "hat": measures.hat,
        "rstandard": measures.rstandard[:, 0],
        "rstudent": measures.rstudent[:, 0],
        "cooks_distance": measures.cooks_distance[:, 0],
        "dffits": measures.dffits[:, 0],
        "covratio": measures.covratio[:, 0],
        "sigma_i": measures.sigma[:, 0],
        "dfbetas_(Intercept)": measures.dfbetas[:, 0, 0],
        "dfbetas_wt": measures.dfbetas[:, 0, 1],
        "dfbetas_hp": measures.dfbetas[:, 0, 2],
    }
    for name, values in expected.items():
        np.testing.assert_allclose(table[name], values.numpy(), rtol=SAME, atol=0, err_msg=name)


def test_top_lists_r_largest_cooks_distances(
    capsys: pytest.CaptureFixture[str], models: dict[bool, Path]
) -> None:
    cooks = _parse(R_UNWEIGHTED)["cooks"]
    expected = np.argsort(-cooks)[:4] + 1  # R's rows of largest Cook's distance
    names = _mtcars_columns()["model"]
    for extra in ((), ("--stream", "--batch-rows", "7")):
        run = ok(
            capsys, "diagnose", models[False], MTCARS, "--top", "4", "--label", "model", *extra
        )
        lines = run.out.splitlines()
        assert lines[0] == "Most influential rows of mpg by Cook's distance (4 of 32):"
        assert lines[1].split() == ["row", "model", "cooks_distance", "hat", "rstudent", "dffits"]
        listed = lines[3:7]
        assert [int(line.split()[0]) for line in listed] == expected.tolist()
        for line, row in zip(listed, expected, strict=True):
            assert names[row - 1] in line
            assert float(line.split()[-4]) == pytest.approx(cooks[row - 1], rel=1e-5)
    job = diagnose(models[False], str(MTCARS), top=3)
    job.table()
    assert [r.row for r in job.top["mpg"]] == expected[:3].tolist()
    assert job.top["mpg"][0].cooks_distance == pytest.approx(cooks[expected[0] - 1], rel=RTOL)


def test_parquet_output_and_two_targets(tmp_path: Path) -> None:
    report = gradfit.fit(str(MTCARS), ["mpg", "qsec"], ["wt", "hp"], SolverConfig(solver="lstsq"))
    path = tmp_path / "two.safetensors"
    save_model(path, report.model)
    out = tmp_path / "rows.parquet"
    write_table_batches(out, diagnose(path, str(MTCARS), stream=True, batch_rows=6))
    table = read_table(str(out))
    assert "hat" in table.columns and "mpg_cooks_distance" in table.columns
    assert "qsec_dfbetas_wt" in table.columns and "cooks_distance" not in table.columns
    reference = _parse(R_UNWEIGHTED)
    np.testing.assert_allclose(table.columns["mpg_rstudent"], reference["rstudent"], rtol=RTOL)
    np.testing.assert_allclose(table.columns["hat"], reference["hat"], rtol=RTOL)


def test_refusals(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, models: dict[bool, Path]
) -> None:
    ridge = _model(tmp_path / "ridge.safetensors", alpha=0.5)
    line = one_error_line(gradfit_cli(capsys, "diagnose", ridge, MTCARS))
    assert "unpenalized least-squares fit" in line and "penalized fit (alpha=0.5)" in line
    # never over an input: the data, or the model file
    copy = tmp_path / "mtcars.csv"
    copy.write_bytes(MTCARS.read_bytes())
    before = copy.read_bytes()
    line = one_error_line(gradfit_cli(capsys, "diagnose", models[False], copy, "--out", copy))
    assert "--out" in line
    assert copy.read_bytes() == before
    model_bytes = models[False].read_bytes()
    line = one_error_line(
        gradfit_cli(capsys, "diagnose", models[False], copy, "--out", models[False])
    )
    assert models[False].read_bytes() == model_bytes
    # a --keep or --label column the data lack; an unknown plot type
    line = one_error_line(gradfit_cli(capsys, "diagnose", models[False], copy, "--label", "nope"))
    assert "'nope' not found" in line
    line = one_error_line(
        gradfit_cli(capsys, "diagnose", models[False], copy, "--plot", tmp_path / "p.gif")
    )
    assert "unsupported image type" in line
    assert not (tmp_path / "p.gif").exists()


def test_a_robust_covariance_model_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    model = tmp_path / "hc.safetensors"
    ok(capsys, "fit", MTCARS, "--target", "mpg", "--features", "wt,hp", "--solver", "lstsq",
       "--cov", "HC3", "--out", model, "--quiet")  # fmt: skip
    line = one_error_line(gradfit_cli(capsys, "diagnose", model, MTCARS))
    assert "nonrobust" in line and "HC3" in line


# ----------------------------------------------------------------------------- plots

pytest.importorskip("matplotlib")

TITLES = ["Residuals vs Fitted", "Normal Q-Q", "Scale-Location", "Residuals vs Leverage"]
LABELS = [
    ("Fitted values", "Residuals"),
    ("Theoretical Quantiles", "Standardized residuals"),
    ("Fitted values", "√|Standardized residuals|"),
    ("Leverage", "Standardized residuals"),
]


def test_the_figure_has_r_four_panels(models: dict[bool, Path]) -> None:
    from gradfit.report import diagnostic_figure

    job = diagnose(models[False], str(MTCARS), label="model")
    job.table()
    assert job.points is not None and job.points.complete
    figure = diagnostic_figure(job.points)
    axes = figure.axes
    assert [ax.get_title() for ax in axes] == TITLES
    assert [(ax.get_xlabel(), ax.get_ylabel()) for ax in axes] == LABELS
    assert all(len(ax.collections) == 1 for ax in axes)  # one scatter each
    assert [c.get_offsets().shape[0] for ax in axes for c in ax.collections] == [32] * 4
    # the three most extreme rows labelled; by Cook's distance in the last panel, as R's
    leverage_labels = {t.get_text() for t in axes[3].texts if t.get_text() not in {"0.5", "1"}}
    assert {"Chrysler Imperial", "Maserati Bora", "Toyota Corolla"} <= leverage_labels
    assert "all 32 rows drawn" in figure.get_supxlabel()
    assert "lowess" in figure.get_supxlabel()


def test_the_plot_of_two_targets_has_eight_panels(tmp_path: Path) -> None:
    from gradfit.report import diagnostic_figure

    report = gradfit.fit(str(MTCARS), ["mpg", "qsec"], ["wt", "hp"], SolverConfig(solver="lstsq"))
    save_model(tmp_path / "two.safetensors", report.model)
    job = diagnose(tmp_path / "two.safetensors", str(MTCARS))
    job.table()
    assert job.points is not None
    titles = [ax.get_title() for ax in diagnostic_figure(job.points).axes]
    assert titles == [f"{t}: {title}" for t in ("mpg", "qsec") for title in TITLES]


def test_streamed_plot_draws_a_sample_and_the_rows_beyond_the_contour(
    models: dict[bool, Path],
) -> None:
    from gradfit.report import diagnostic_figure

    # weighted fit: Chrysler Imperial (row 17) has Cook's distance 0.586 > 0.5
    runs = []
    for options in ({}, {"stream": True, "batch_rows": 5}, {"stream": True, "batch_rows": 3}):
        job = diagnose(models[True], str(MTCARS), sample_rows=10, seed=1, **options)
        job.table()
        assert job.points is not None
        runs.append(job.points)
    first = runs[0]
    assert int(first.sampled.sum()) == 10 and not first.complete
    assert 17 in first.row.tolist()
    for other in runs[1:]:  # the same rows whatever the batches
        np.testing.assert_array_equal(other.row, first.row)
        np.testing.assert_array_equal(other.sampled, first.sampled)
    beyond = first.row[~first.sampled]
    assert set(beyond.tolist()) <= {17}
    caption = diagnostic_figure(first).get_supxlabel()
    assert "uniform random sample of 10 rows" in caption and "Cook's distance 0.5" in caption


def test_diagnose_plot_writes_a_png(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, models: dict[bool, Path]
) -> None:
    image = tmp_path / "diag.png"
    run = ok(capsys, "diagnose", models[False], MTCARS, "--plot", image, "--top", "0")
    assert "plot written to" in run.out
    data = image.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (720, 608)  # 9 x 7.6 inches at 80 dpi
    assert 10_000 < len(data) < 300_000
    assert not list(tmp_path.glob("*.tmp*"))


def test_a_model_with_a_design_equals_the_formula_fit_in_memory(tmp_path: Path) -> None:
    # a model as `gradfit fit --formula` writes one (tests/test_predict_design.py), with a
    # factor and an interaction: each batch is encoded by the model's design
    from test_predict_design import formula_model

    frame = pd.read_csv(MTCARS)
    formula = "mpg ~ wt * hp + C(cyl)"
    path = tmp_path / "formula.safetensors"
    save_model(path, formula_model(formula, frame))
    measures = gradfit.ols(formula, data=frame).influence(frame)
    for options in ({}, {"stream": True, "batch_rows": 5}):
        job = gradfit.diagnose(path, str(MTCARS), **options)
        table = job.table()
        assert job.coefficient_names == measures.coefficient_names
        assert job.coefficient_names[-1] == "wt:hp" and len(job.coefficient_names) == 6
        assert all(type(name) is str for name in job.coefficient_names)
        np.testing.assert_allclose(table["hat"], measures.hat.numpy(), rtol=SAME)
        np.testing.assert_allclose(
            table["cooks_distance"], measures.cooks_distance[:, 0].numpy(), rtol=SAME
        )
        np.testing.assert_allclose(
            table["dfbetas_wt:hp"], measures.dfbetas[:, 0, 5].numpy(), rtol=SAME
        )


def test_plot_of_a_row_of_leverage_one_prints_no_warning(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A leverage near 1 drew Cook's contours past 1: NumPy's "invalid value encountered in
    sqrt" RuntimeWarning was printed with its source line under the command's output."""
    pytest.importorskip("matplotlib")
    data = tmp_path / "d.csv"
    data.write_text("x,d,y\n1,0,2.1\n2,0,3.9\n3,0,6.2\n4,0,7.8\n5,1,3\n")
    model, image = tmp_path / "m.safetensors", tmp_path / "diag.png"
    ok(capsys, "fit", data, "--target", "y", "--features", "x,d", "--solver", "lstsq",
       "--out", model)  # fmt: skip
    run = ok(capsys, "diagnose", model, data, "--plot", image, "--top", "0")
    assert run.err == "" and "plot written to" in run.out
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("command", ["diagnose", "evaluate"])
def test_missing_keep_is_not_offered_where_it_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    """--missing keep (predict's, R's na.exclude) has no residual or error to keep: diagnose
    and evaluate refused it after --help offered it; argparse now lists and takes only
    error and drop (the Python API still refuses keep in one line)."""
    help_run = gradfit_cli(capsys, command, "--help")
    assert "--missing {error,drop}" in help_run.out.replace("\n", " ").replace("  ", " ")
    line = one_error_line(
        gradfit_cli(capsys, command, tmp_path / "m.safetensors", MTCARS, "--missing", "keep")
    )
    assert "invalid choice: 'keep'" in line and f"gradfit {command} --help" in line
