"""Clustered standard errors from files (``gradfit fit DATA --cov cluster --groups COLUMN``,
``gradfit.fit(..., inference="cluster", groups=...)``): CR1 as R's ``sandwich::vcovCL(type =
"HC1")``, in memory, streamed (per-group score sums in one more pass) and under torchrun
(the sums merged by label over the ranks); labels of text, integers or numbers; a missing label
follows --missing; weights as ``lm(weights = w)`` then ``vcovCL``; refusals in one line.

References (R 4, sandwich 3, 17 significant digits), computed once with:

    library(sandwich); a <- read.csv("tests/data/r/airquality.csv")
    f <- lm(Ozone ~ Solar.R + Wind + Temp, a)          # na.omit: 111 rows, 5 months
    sprintf("%.17g", vcovCL(f, cluster = ~Month, type = "HC1"))
    fw <- lm(Ozone ~ Solar.R + Wind + Temp, a, weights = Day)
    sprintf("%.17g", vcovCL(fw, cluster = ~Month, type = "HC1"))

(vcovCL of a weighted lm sums the working scores sqrt(w) e · sqrt(w) x = w e x per group, with
the same G/(G-1) (n-1)/(n-p) correction: gradfit's ClusterScores.) The mtcars references are
those of tests/test_cluster.py (``lm(mpg ~ wt + hp, m)``, cluster ``~cyl``).

Tolerances: 1e-8 relative against R (a sandwich of a QR or Cholesky factor's inverse and
per-group sums: about 1e-12 in both); 1e-10 between the roads (the same sums in another order,
the streamed coefficients from TSQR).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from cli_helpers import gradfit_cli, ok, one_error_line
from test_cluster import R_COV as MTCARS_COV

import gradfit
from gradfit.errors import DataError, ValidationError
from gradfit.inference import DEFAULT_MAX_GROUPS as LIBRARY_MAX_GROUPS
from gradfit.persistence import load_model
from gradfit.settings import DEFAULT_MAX_GROUPS
from gradfit.solvers.config import SolverConfig

R_DATA = Path(__file__).parent / "data" / "r"
AIRQUALITY = R_DATA / "airquality.csv"
MTCARS = R_DATA / "mtcars.csv"
FORMULA = "Ozone ~ Solar.R + Wind + Temp"
RTOL, ROADS = 1e-8, 1e-10
LSTSQ = SolverConfig(solver="lstsq")

# vcovCL(lm(Ozone ~ Solar.R + Wind + Temp, a [, weights = Day]), cluster = ~Month): R's order
# (Intercept), Solar.R, Wind, Temp.
R_COV = {
    None: [
        [453.73713943504453, -0.1798396712696618, -12.349476570147221, -3.0048209528608782],
        [-0.17983967126965586, 0.0011189030420674549, -0.025002018092527216, 0.00267964212888867],
        [-12.349476570147369, -0.025002018092527206, 1.3949092085800157, 0.0143297336701206],
        [-3.004820952861075, 0.0026796421288886618, 0.014329733670122137, 0.025062272061988709],
    ],
    "Day": [
        [838.06899739450955, -0.079421984348146984, -36.906699232870494, -4.5845756041182115],
        [
            -0.079421984348161834,
            0.00080603491520498652,
            -0.017150855130354633,
            0.0010746571533654294,
        ],
        [-36.90669923286967, -0.017150855130354612, 2.3362735133518204, 0.16597248366454959],
        [-4.5845756041176458, 0.0010746571533653314, 0.16597248366454484, 0.027883586317849811],
    ],
}
MONTHS = {5: "May", 6: "June", 7: "July", 8: "August", 9: "September"}


def _r_order(covariance: np.ndarray) -> np.ndarray:
    """gradfit's (features..., intercept) covariance in R's order (intercept, features...)."""
    d = covariance.shape[0] - 1
    order = [d, *range(d)]
    return covariance[np.ix_(order, order)]


def _rows() -> list[dict[str, str]]:
    with AIRQUALITY.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def named_months(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """airquality with the month as text (May ... September): the same five groups."""
    rows = [{**row, "Month": MONTHS[int(row["Month"])]} for row in _rows()]
    return _write(tmp_path_factory.mktemp("named") / "airquality.csv", rows)


def _fit(source: Path | str, **options: object) -> gradfit.FitReport:
    options.setdefault("formula", FORMULA)
    options.setdefault("missing", "drop")
    return gradfit.fit(
        source, config=LSTSQ, inference="cluster", groups="Month", batch_rows=16, **options
    )


def _cov(report: gradfit.FitReport) -> np.ndarray:
    assert report.inference is not None
    return _r_order(report.inference.covariance[0].numpy())


@pytest.mark.parametrize("weights", [None, "Day"])
@pytest.mark.parametrize("text", [False, True])
def test_in_memory_and_streamed_as_vcovcl(
    weights: str | None, text: bool, named_months: Path
) -> None:
    source = named_months if text else AIRQUALITY
    whole = _fit(source, weights=weights, stream=False)
    streamed = _fit(source, weights=weights, stream=True)
    for report in (whole, streamed):
        assert report.inference is not None
        assert report.inference.cov_type == "cluster"
        assert report.inference.n_groups == 5 and report.inference.n == 111
        assert report.rows_dropped == 42
        np.testing.assert_allclose(_cov(report), R_COV[weights], rtol=RTOL)
    np.testing.assert_allclose(_cov(streamed), _cov(whole), rtol=ROADS, atol=0)


@pytest.mark.parametrize("stream", [False, True])
def test_plain_columns_and_a_parquet_stream_as_vcovcl(tmp_path: Path, stream: bool) -> None:
    # No design: numeric columns as they are, the groups an integer column of the data (and
    # left out of the default features, as the weights are).
    table = pcsv.read_csv(MTCARS)
    source: Path = MTCARS
    if stream:
        source = tmp_path / "mtcars.parquet"
        pq.write_table(table, source, row_group_size=7)  # groups split across row groups
    report = gradfit.fit(
        source,
        targets=["mpg"],
        features=["wt", "hp"],
        config=LSTSQ,
        inference="cluster",
        groups="cyl",
        stream=stream,
        batch_rows=5,
    )
    np.testing.assert_allclose(_cov(report), MTCARS_COV["none"], rtol=RTOL)
    by_default = gradfit.fit(
        MTCARS,
        targets=["mpg"],
        features=None,
        config=LSTSQ,
        inference="cluster",
        groups="cyl",
    )
    assert "cyl" not in by_default.model.feature_names


def test_a_gradient_descent_fit_from_its_statistics() -> None:
    # gd in memory: the table from the statistics at gd's coefficients, the sums from the rows.
    report = gradfit.fit(
        MTCARS,
        targets=["mpg"],
        features=["wt", "hp"],
        config=SolverConfig(solver="gd", max_epochs=100_000, tol=1e-14, standardize=True),
        inference="cluster",
        groups="cyl",
    )
    np.testing.assert_allclose(_cov(report), MTCARS_COV["none"], rtol=1e-6)


def test_missing_labels_follow_missing(tmp_path: Path) -> None:
    rows = _rows()
    blank = [3, 7, 60, 61, 140]  # data rows 4, 8, 61, 62, 141
    holed = [{**row, "Month": "" if i in blank else row["Month"]} for i, row in enumerate(rows)]
    source = _write(tmp_path / "holed.csv", holed)
    # The same fit as on the data without those rows: they leave the fit, not just the groups.
    without = _write(tmp_path / "without.csv", [r for i, r in enumerate(rows) if i not in blank])
    reference = _fit(without, stream=False)
    dropped_before = reference.rows_dropped
    for stream in (False, True):
        report = _fit(source, stream=stream)
        assert report.inference is not None and reference.inference is not None
        assert report.inference.n == reference.inference.n
        assert report.rows_dropped == dropped_before + sum(
            1 for i in blank if rows[i]["Ozone"] != "NA" and rows[i]["Solar.R"] != "NA"
        )
        np.testing.assert_allclose(_cov(report), _cov(reference), rtol=ROADS)
        np.testing.assert_allclose(
            report.model.weight.numpy(), reference.model.weight.numpy(), rtol=ROADS
        )
    for stream in (False, True):
        with pytest.raises(DataError, match=r"holed\.csv: column 'Month', row 4: missing group"):
            _fit(source, stream=stream, formula="Wind ~ Temp", missing="error")


def test_json_model_file_and_summary_of_the_command_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    documents = []
    for extra in ((), ("--stream", "--batch-rows", "16")):
        model = tmp_path / f"model{len(documents)}.safetensors"
        argv = ["fit", AIRQUALITY, "--formula", FORMULA, "--missing", "drop", "--solver"]
        argv += ["lstsq", "--cov", "cluster", "--groups", "Month", "--out", model, *extra]
        documents.append(json.loads(ok(capsys, *argv, "--json").out))
        saved = load_model(model).inference
        assert saved is not None and saved["summary"]["cov_type"] == "cluster"
        assert saved["summary"]["n_groups"] == 5
        text = ok(capsys, *argv).out
        assert "Standard errors: clustered by group (CR1, 5 groups)" in text
        # The column of groups is a setting of the fit, recorded and shown as --weights is.
        assert load_model(model).hyperparameters["groups"] == "Month"
        assert load_model(model).hyperparameters["max_groups"] == DEFAULT_MAX_GROUPS
        info = json.loads(ok(capsys, "info", model, "--json").out)
        assert info["hyperparameters"]["groups"] == "Month"
        assert f"groups=Month, max_groups={DEFAULT_MAX_GROUPS}" in ok(capsys, "info", model).out
    covariances = [np.array(d["inference"]["covariance"]["Ozone"]) for d in documents]
    for covariance in covariances:
        np.testing.assert_allclose(_r_order(covariance), R_COV[None], rtol=RTOL)
    np.testing.assert_allclose(covariances[1], covariances[0], rtol=ROADS)


def test_a_model_file_without_groups_loads_and_shows_none(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Files written before the groups were recorded (and fits without --groups) have no key.
    old = Path(__file__).parent / "data" / "model-format2.safetensors"
    assert "groups" not in load_model(old).hyperparameters
    assert "groups=" not in ok(capsys, "info", old).out
    model = tmp_path / "plain.safetensors"
    ok(capsys, "fit", MTCARS, "--target", "mpg", "--solver", "lstsq", "--out", model)
    assert {"groups", "max_groups"}.isdisjoint(load_model(model).hyperparameters)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--cov", "cluster", "--groups", "Mont"], "no groups column 'Mont' (did you mean"),
        (["--cov", "cluster", "--groups", "Day", "--max-groups", "30"], "more than 30 groups"),
        (["--groups", "Month"], "--groups Month goes with --cov cluster"),
        (["--cov", "HC1", "--groups", "Month"], "--groups Month goes with --cov cluster"),
        (["--cov", "cluster"], "--cov cluster needs --groups COLUMN"),
    ],
)
def test_refusals_in_one_line(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    stream: bool,
    extra: list[str],
    says: str,
) -> None:
    model = tmp_path / "model.safetensors"
    argv = ["fit", AIRQUALITY, "--formula", FORMULA, "--missing", "drop", "--solver", "lstsq"]
    argv += ["--out", model, "--stream" if stream else "--no-stream", *extra]
    line = one_error_line(gradfit_cli(capsys, *argv))
    assert says in line, line
    if "max-groups" in " ".join(extra):
        assert "raise max_groups (--max-groups)" in line
    assert not model.exists()


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("missing", ["error", "drop"])
def test_groups_named_as_the_target_cluster_by_it(
    tmp_path: Path, stream: bool, missing: str
) -> None:
    """The groups column is left out of the default features, but not out of the targets: as
    the target too, it was "no target column 'cyl'" (R: vcovCL(lm(cyl ~ .), cluster = ~cyl)),
    on the plain road and through a design (``missing="drop"``)."""
    source = tmp_path / "mtcars.parquet"
    pq.write_table(pcsv.read_csv(MTCARS), source, row_group_size=7)
    fits = [
        gradfit.fit(
            source,
            targets=["cyl"],
            features=None,
            config=LSTSQ,
            inference="cluster",
            groups="cyl",
            stream=on,
            batch_rows=5,
            missing=missing,
        )
        for on in (False, stream)
    ]
    assert fits[0].model.target_names == ("cyl",)
    assert "cyl" not in fits[0].model.feature_names
    covariances = [f.inference.covariance[0].numpy() for f in fits if f.inference is not None]
    np.testing.assert_allclose(covariances[1], covariances[0], rtol=1e-9, atol=1e-12)


def test_max_groups_default_and_the_library_refusals() -> None:
    assert DEFAULT_MAX_GROUPS == LIBRARY_MAX_GROUPS
    with pytest.raises(ValidationError, match="--groups Month goes with --cov cluster"):
        gradfit.fit(AIRQUALITY, formula=FORMULA, missing="drop", config=LSTSQ, groups="Month")
    with pytest.raises(ValidationError, match="--cov cluster needs --groups"):
        gradfit.fit(AIRQUALITY, formula=FORMULA, missing="drop", config=LSTSQ, inference="cluster")


# ----------------------------------------------------------------------------- torchrun


@pytest.mark.slow
def test_torchrun_two_processes_as_in_memory(tmp_path: Path) -> None:
    """Two ranks, each with every other row group of 20 rows: each month has rows on both, and
    the per-group sums are merged by label."""
    source = tmp_path / "airquality.parquet"
    table = pcsv.read_csv(AIRQUALITY)  # NA cells as nulls
    pq.write_table(table, source, row_group_size=20)
    model = tmp_path / "model.safetensors"
    env = dict(os.environ)
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    env["OMP_NUM_THREADS"] = "1"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "gradfit", "fit", str(source), "--formula", FORMULA, "--missing", "drop",
        "--solver", "lstsq", "--cov", "cluster", "--groups", "Month", "--weights", "Day",
        "--out", str(model), "--batch-rows", "8", "--json",
    ]  # fmt: skip
    run = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr[-3000:]
    document = json.loads(run.stdout)
    covariance = np.array(document["inference"]["covariance"]["Ozone"])
    whole = _fit(AIRQUALITY, weights="Day", stream=False)
    np.testing.assert_allclose(_r_order(covariance), _cov(whole), rtol=ROADS)
    np.testing.assert_allclose(_r_order(covariance), R_COV["Day"], rtol=RTOL)
    assert document["inference"]["n_groups"] == 5
    assert load_model(model).hyperparameters["groups"] == "Month"


def test_cross_validation_refuses_groups(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    model = tmp_path / "model.safetensors"
    argv = ["fit", MTCARS, "--target", "mpg", "--features", "wt,hp", "--alpha", "cv"]
    line = one_error_line(gradfit_cli(capsys, *argv, "--groups", "cyl", "--out", model))
    assert "--groups (clustered standard errors) does not apply to --alpha cv" in line
    assert not model.exists()
