"""A real table on every road: a text column (a level first seen after row 20), missing cells,
row weights (one of them 0) together, against R's ``lm`` and read whole = streamed.

``tests/data/tables_mixed.csv`` (60 rows: y, x, g, w; x empty in 3 rows, y in 1) and R 4.2.2's
numbers for it::

    d <- read.csv("tables_mixed.csv", stringsAsFactors = TRUE)   # g: east, north, south
    f <- lm(y ~ x + g, data = d, weights = w); s <- summary(f)
    coef(s); s$sigma; s$r.squared; s$fstatistic; f$df.residual; length(f$na.action)

Tolerances: 1e-8 relative against R (two float64 least-squares solutions of a well-conditioned
problem agree to ~1e-13), p-values 1e-6 (through SciPy's and R's t distributions); 1e-10
between the roads (the same statistics, summed in another order).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.csv as pv
import pyarrow.parquet as pq
import pytest

import gradfit
from gradfit.persistence import load_model
from gradfit.solvers.config import SolverConfig

DATA = Path(__file__).parent / "data" / "tables_mixed.csv"

# R: coef(summary(lm(y ~ x + g, d, weights = w))), features first, then the intercept.
R_NAMES = ("x", "gnorth", "gsouth", "(Intercept)")
R_ESTIMATE = [0.73111400174977981, 1.55035955377190837, 3.25505375270989505, -0.20009966221917527]
R_SE = [0.05323857429312228, 0.32691645752906362, 0.33410798620643256, 0.58072982651455074]
R_P = [9.1711905158756668e-19, 1.7393019466176261e-05, 3.1150776271209597e-13, 0.73183765853263361]
R_SIGMA, R_R2, R_F, R_DF, R_DROPPED = (
    1.2267320744746286,
    0.8874870736366971,
    134.0937502870309,
    51,
    4,
)


def _fit(source: str | Path, **options: object) -> gradfit.FitReport:
    return gradfit.fit(
        source,
        ["y"],
        config=SolverConfig(solver="lstsq"),
        weights="w",
        missing="drop",
        **options,  # type: ignore[arg-type]
    )


def _table(report: gradfit.FitReport) -> dict[str, dict[str, float]]:
    document = report.inference.as_dict()
    coefficients: dict[str, dict[str, float]] = document["targets"]["y"]["coefficients"]
    return coefficients


def test_a_text_column_missing_cells_and_weights_fit_as_r_lm() -> None:
    report = _fit(DATA)
    assert report.model.feature_names == ("x", "gnorth", "gsouth")
    assert report.rows_dropped == R_DROPPED and report.model.rows_dropped == R_DROPPED
    table = _table(report)
    np.testing.assert_allclose([table[n]["estimate"] for n in R_NAMES], R_ESTIMATE, rtol=1e-8)
    np.testing.assert_allclose([table[n]["std_error"] for n in R_NAMES], R_SE, rtol=1e-8)
    np.testing.assert_allclose([table[n]["p"] for n in R_NAMES], R_P, rtol=1e-6)
    figures = report.inference.as_dict()["targets"]["y"]
    np.testing.assert_allclose(
        [figures["sigma"], figures["r2"], figures["f_statistic"]], [R_SIGMA, R_R2, R_F], rtol=1e-8
    )
    assert report.inference.df_resid == R_DF  # the row of weight 0 counts nowhere
    assert "(4 observations deleted due to missingness)" in report.inference.summary()


@pytest.fixture(scope="module")
def parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same rows as Parquet in row groups of 7 (the level 'east' first in a later one)."""
    path = tmp_path_factory.mktemp("tables") / "mixed.parquet"
    pq.write_table(pv.read_csv(DATA), path, row_group_size=7)
    return path


@pytest.mark.parametrize("source", ["csv", "parquet"])
def test_streamed_in_small_batches_is_the_fit_read_whole(source: str, parquet: Path) -> None:
    whole = _fit(DATA)
    path = DATA if source == "csv" else parquet
    streamed = _fit(path, stream=True, batch_rows=5)
    assert streamed.model.feature_names == whole.model.feature_names
    assert streamed.rows_dropped == whole.rows_dropped == R_DROPPED
    np.testing.assert_allclose(streamed.model.weight, whole.model.weight, rtol=1e-10)
    np.testing.assert_allclose(streamed.model.bias, whole.model.bias, rtol=1e-10)
    a, b = _table(streamed), _table(whole)
    for name in R_NAMES:
        assert a[name]["std_error"] == pytest.approx(b[name]["std_error"], rel=1e-10)
    assert streamed.inference.df_resid == whole.inference.df_resid == R_DF


def test_gd_reaches_the_same_weighted_fit_on_both_roads() -> None:
    config = SolverConfig(solver="gd", tol=1e-14, max_epochs=100_000)
    whole = gradfit.fit(DATA, ["y"], config=config, weights="w", missing="drop")
    streamed = gradfit.fit(
        DATA, ["y"], config=config, weights="w", missing="drop", stream=True, batch_rows=5
    )
    np.testing.assert_allclose(streamed.model.weight, whole.model.weight, rtol=1e-10)
    lstsq = _fit(DATA)
    np.testing.assert_allclose(whole.model.weight, lstsq.model.weight, rtol=1e-6)


@pytest.mark.slow
def test_torchrun_with_two_processes_is_the_fit_read_whole(tmp_path: Path, parquet: Path) -> None:
    """Two processes, each reading every other row group: the levels ('east' first seen in a
    later group), the rows dropped and the weighted statistics merged over both."""
    model = tmp_path / "m.safetensors"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "gradfit", "fit", str(parquet), "--target", "y", "--weights", "w",
        "--missing", "drop", "--solver", "lstsq", "--batch-rows", "5", "--out", str(model),
    ]  # fmt: skip
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(Path(gradfit.__file__).parents[1]),
    }
    run = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr[-3000:]
    whole = _fit(DATA)
    saved = load_model(model)
    assert saved.feature_names == whole.model.feature_names
    assert saved.rows_dropped == whole.rows_dropped == R_DROPPED
    np.testing.assert_allclose(saved.weight, whole.model.weight, rtol=1e-10, atol=0)
    np.testing.assert_allclose(saved.bias, whole.model.bias, rtol=1e-10, atol=0)
    assert saved.hyperparameters.get("weights") == "w"


def _with_identifier(path: Path, rows: int) -> Path:
    rng = np.random.default_rng(3)
    x = rng.normal(size=rows)
    lines = ["id,x,y"] + [f"c{i:05d},{x[i]:.6f},{2 * x[i] + 1:.6f}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("stream", [False, True])
def test_an_identifier_with_more_levels_than_max_levels_is_refused_in_one_line(
    tmp_path: Path, stream: bool
) -> None:
    """R's y ~ . would make a level of every row of an id column; gradfit refuses it by
    default (more than max_levels = 1000 distinct values), naming it and the way out."""
    path = _with_identifier(tmp_path / "ids.csv", 1500)
    with pytest.raises(gradfit.DataError) as info:
        gradfit.fit(path, ["y"], config=SolverConfig(solver="lstsq"), stream=stream)
    message = str(info.value)
    assert message == (
        f"{path}: column 'id' has more than 1000 distinct values (1500 so far) to be a "
        "categorical column (an identifier?); leave it out of the features or the formula, "
        "or raise --max-levels (max_levels=) above 1500"
    )
    # Named features leave it out; a small identifier (fewer rows than max_levels) is left
    # out of the default features with a note, as it would fit every row exactly.
    named = gradfit.fit(path, ["y"], ["x"], config=SolverConfig(solver="lstsq"), stream=stream)
    assert named.model.feature_names == ("x",)
    small = _with_identifier(tmp_path / "few.csv", 50)
    report = gradfit.fit(small, ["y"], config=SolverConfig(solver="lstsq"), stream=stream)
    assert report.model.feature_names == ("x",) and "identifier" in report.left_out["id"]
