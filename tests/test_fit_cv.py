"""Cross-validation from files: ``gradfit.fit_cv`` and ``gradfit fit --alpha cv``.

References: :class:`~gradfit.GradientDescentRegressorCV` on the same rows with the same folds
(``cv`` = the fold ids of the row hash, file 0, rows 1..n), itself tested against scikit-learn's
``ElasticNetCV`` / ``RidgeCV`` in test_estimator_cv.py. Tolerances: ridge 1e-10 relative (one
eigendecomposition of statistics that differ only by the order of float64 sums: a few ulps
times the condition number); anything with an L1 part 1e-6 relative, the path tolerance of
issue 20 (coordinate descent stopped on the duality gap at tol=1e-4·var(y) may stop one sweep
apart when the statistics differ by ulps, which moves the coefficients by far less than that at
these sizes; the chosen alphas must be equal).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq
import pytest

import gradfit
from gradfit.errors import ValidationError
from gradfit.persistence import load_model
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.rows import fold_ids, holdout_seed
from tests.cli_helpers import gradfit_cli, ok

N = 900
SEED = 3


def _data(seed: int = 0, n: int = N) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)) * [1.0, 3.0, 0.5, 2.0, 1.0] + [5.0, -2.0, 7.0, 0.0, 1.0]
    X[:, 2] += 0.6 * X[:, 0]  # correlated features
    W = np.array([[1.5, -0.2, 0.7, 0.0, 0.05], [0.0, 0.3, -1.1, 0.02, 0.0]])
    Y = X @ W.T + [4.0, -3.0] + rng.normal(size=(n, 2)) * [1.0, 3.0]
    return X, Y


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cv")
    X, Y = _data()
    cols = {f"x{i}": X[:, i] for i in range(X.shape[1])}
    cols.update(y1=Y[:, 0], y2=Y[:, 1])
    table = pa.table(cols)
    pv.write_csv(table, root / "data.csv")
    pq.write_table(table, root / "data.parquet", row_group_size=130)  # 7 row groups
    return {"csv": root / "data.csv", "parquet": root / "data.parquet"}


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / max(np.abs(b).max(), 1e-300))


def _reference(l1_ratio: object, per_target: bool = False, folds: int = 5, **kw: object):
    X, Y = _data()
    ids = fold_ids(0, 1, X.shape[0], folds, holdout_seed(SEED))
    est = gradfit.GradientDescentRegressorCV(
        alphas=kw.pop("alphas", 30), l1_ratio=l1_ratio, cv=ids, alpha_per_target=per_target, **kw
    )
    return est.fit(X, Y)


CASES = [(0.0, False, 1e-10), (1.0, False, 1e-6), ([0.3, 0.9], False, 1e-6), (0.0, True, 1e-10)]


@pytest.mark.parametrize(("ratio", "per_target", "tol"), CASES)
def test_file_fit_equals_the_estimator_with_the_same_folds(
    files: dict[str, Path], ratio: object, per_target: bool, tol: float
) -> None:
    report = gradfit.fit_cv(
        files["csv"], ["y1", "y2"], alphas=30, l1_ratio=ratio, alpha_per_target=per_target,
        seed=SEED,
    )  # fmt: skip
    est = _reference(ratio, per_target)
    cv = report.cv
    np.testing.assert_array_equal(cv.alpha, np.broadcast_to(est.alpha_, (2,)))
    np.testing.assert_array_equal(cv.l1_ratio, np.broadcast_to(est.l1_ratio_, (2,)))
    assert _rel(report.model.weight.numpy(), est.coef_) <= tol
    assert _rel(report.model.bias.numpy(), est.intercept_) <= tol
    assert _rel(cv.mean, est.cv_mean_) <= 1e-8
    assert cv.mse_path.shape == est.mse_path_.shape
    assert sum(cv.fold_rows) == N and cv.folds_used == 5
    # the report is an ordinary one, over all rows, of the refit
    assert report.n_samples == N
    pred = _data()[0] @ est.coef_.T + est.intercept_
    Y = _data()[1]
    r2 = 1 - ((Y - pred) ** 2).sum(0) / ((Y - Y.mean(0)) ** 2).sum(0)
    assert np.allclose(report.metrics.r2, r2, rtol=1e-6)


def test_selection_1se_and_per_target_choices(files: dict[str, Path]) -> None:
    report = gradfit.fit_cv(
        files["csv"], ["y1", "y2"], alphas=25, l1_ratio=1.0, selection="1se",
        alpha_per_target=True, seed=SEED,
    )  # fmt: skip
    est = _reference(1.0, True, alphas=25, selection="1se")
    np.testing.assert_array_equal(report.cv.alpha, est.alpha_)
    assert np.all(report.cv.alpha_1se >= report.cv.alpha_min)
    np.testing.assert_array_equal(report.cv.alpha, report.cv.alpha_1se)
    assert _rel(report.model.weight.numpy(), est.coef_) <= 1e-6


@pytest.mark.parametrize("where", ["csv", "parquet"])
@pytest.mark.parametrize("ratio", [0.0, [0.5, 1.0]])
def test_streamed_equals_read_whole(files: dict[str, Path], where: str, ratio: object) -> None:
    whole = gradfit.fit_cv(files[where], ["y1", "y2"], alphas=30, l1_ratio=ratio, seed=SEED)
    streamed = gradfit.fit_cv(
        files[where], ["y1", "y2"], alphas=30, l1_ratio=ratio, seed=SEED, stream=True,
        batch_rows=64,
    )  # fmt: skip
    assert streamed.cv.fold_rows == whole.cv.fold_rows  # the same folds
    # the same choice: the same place on a grid whose top (alpha_max, from the statistics)
    # differs by an ulp or two
    np.testing.assert_allclose(streamed.cv.alpha, whole.cv.alpha, rtol=1e-12)
    np.testing.assert_allclose(streamed.cv.alphas, whole.cv.alphas, rtol=1e-12)
    np.testing.assert_array_equal(streamed.cv.l1_ratio, whole.cv.l1_ratio)
    tol = 1e-10 if ratio == 0.0 else 1e-6
    assert _rel(streamed.model.weight.numpy(), whole.model.weight.numpy()) <= tol
    assert _rel(streamed.cv.mean, whole.cv.mean) <= 1e-9
    assert np.allclose(streamed.metrics.r2, whole.metrics.r2, rtol=1e-9)


def test_table_in_memory_equals_the_file(files: dict[str, Path]) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(files["csv"])
    a = gradfit.fit_cv(frame, ["y1", "y2"], alphas=np.int64(20), l1_ratio=1.0, seed=SEED)
    b = gradfit.fit_cv(files["csv"], ["y1", "y2"], alphas=20, l1_ratio=1.0, seed=SEED)
    assert a.cv.fold_rows == b.cv.fold_rows
    np.testing.assert_array_equal(a.model.weight.numpy(), b.model.weight.numpy())


# ----------------------------------------------------------------------------- weights


def _weights(n: int = N) -> np.ndarray:
    w = np.random.default_rng(11).uniform(0.2, 3.0, size=n)
    w[::13] = 0.0  # rows of weight 0: counted nowhere
    return w


@pytest.fixture(scope="module")
def weighted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cvw")
    X, Y = _data()
    cols = {f"x{i}": X[:, i] for i in range(X.shape[1])}
    cols.update(w=_weights(), y1=Y[:, 0], y2=Y[:, 1])  # w among the columns: never a feature
    table = pa.table(cols)
    pv.write_csv(table, root / "data.csv")
    pq.write_table(table, root / "data.parquet", row_group_size=130)
    return {"csv": root / "data.csv", "parquet": root / "data.parquet"}


@pytest.mark.parametrize(("ratio", "per_target", "tol"), CASES)
def test_weighted_file_fit_equals_the_estimator_with_sample_weight(
    weighted: dict[str, Path], ratio: object, per_target: bool, tol: float
) -> None:
    """``weights="w"`` is ``GradientDescentRegressorCV.fit(sample_weight=w)`` on the same folds
    (which test_estimator_cv.py holds to ``ElasticNetCV(sample_weight=w)``)."""
    report = gradfit.fit_cv(
        weighted["csv"], ["y1", "y2"], alphas=30, l1_ratio=ratio, alpha_per_target=per_target,
        weights="w", seed=SEED,
    )  # fmt: skip
    X, Y = _data()
    w = _weights()
    ids = fold_ids(0, 1, N, 5, holdout_seed(SEED))
    est = gradfit.GradientDescentRegressorCV(
        alphas=30, l1_ratio=ratio, cv=ids, alpha_per_target=per_target
    ).fit(X, Y, sample_weight=w)
    cv = report.cv
    # the same grid point (the grid's top from statistics summed with and without the rows
    # of weight 0: an ulp apart)
    np.testing.assert_allclose(cv.alpha, np.broadcast_to(est.alpha_, (2,)), rtol=1e-12)
    np.testing.assert_array_equal(cv.l1_ratio, np.broadcast_to(est.l1_ratio_, (2,)))
    assert _rel(report.model.weight.numpy(), est.coef_) <= tol
    assert _rel(report.model.bias.numpy(), est.intercept_) <= tol
    assert _rel(cv.mse_path, est.mse_path_) <= 1e-8
    assert report.model.feature_names == tuple(f"x{i}" for i in range(5))  # w set apart
    positive = int((w > 0).sum())
    assert sum(cv.fold_rows) == positive == report.n_samples  # weight 0: counted nowhere
    assert report.model.hyperparameters["weights"] == "w"
    # the report's R² is the weighted one (R's lm(weights = w))
    pred = X @ est.coef_.T + est.intercept_
    mean = (w @ Y) / w.sum()
    r2 = 1 - (w @ (Y - pred) ** 2) / (w @ (Y - mean) ** 2)
    np.testing.assert_allclose(report.metrics.r2, r2, rtol=1e-6)


@pytest.mark.parametrize("where", ["csv", "parquet"])
@pytest.mark.parametrize("ratio", [0.0, [0.5, 1.0]])
def test_weighted_streamed_equals_read_whole(
    weighted: dict[str, Path], where: str, ratio: object
) -> None:
    whole = gradfit.fit_cv(
        weighted[where], ["y1", "y2"], alphas=30, l1_ratio=ratio, weights="w", seed=SEED
    )
    streamed = gradfit.fit_cv(
        weighted[where], ["y1", "y2"], alphas=30, l1_ratio=ratio, weights="w", seed=SEED,
        stream=True, batch_rows=64,
    )  # fmt: skip
    assert streamed.cv.fold_rows == whole.cv.fold_rows
    np.testing.assert_allclose(streamed.cv.alphas, whole.cv.alphas, rtol=1e-12)
    np.testing.assert_allclose(streamed.cv.alpha, whole.cv.alpha, rtol=1e-12)
    np.testing.assert_array_equal(streamed.cv.l1_ratio, whole.cv.l1_ratio)
    tol = 1e-10 if ratio == 0.0 else 1e-6
    assert _rel(streamed.model.weight.numpy(), whole.model.weight.numpy()) <= tol
    assert _rel(streamed.cv.mse_path, whole.cv.mse_path) <= 1e-9
    assert streamed.n_samples == whole.n_samples
    np.testing.assert_allclose(streamed.metrics.r2, whole.metrics.r2, rtol=1e-9)
    assert streamed.model.hyperparameters["weights"] == "w"


def test_weighted_refusals(weighted: dict[str, Path], tmp_path: Path) -> None:
    X, Y = _data(n=40)
    w = np.ones(40)
    w[25] = -1.0
    path = tmp_path / "neg.csv"
    cols = {"x0": X[:, 0], "w": w, "y1": Y[:, 0]}
    pv.write_csv(pa.table(cols), path)
    for stream in (False, True):
        with pytest.raises(gradfit.DataError, match=r"column 'w', row 26: negative weight"):
            gradfit.fit_cv(path, ["y1"], weights="w", stream=stream, batch_rows=16)
    cols["w"] = np.zeros(40)
    pv.write_csv(pa.table(cols), path)
    for stream in (False, True):
        with pytest.raises(gradfit.DataError, match="every weight is 0"):
            gradfit.fit_cv(path, ["y1"], weights="w", stream=stream, batch_rows=16)
    for stream in (False, True):
        with pytest.raises(gradfit.DataError, match="cannot also be a feature"):
            gradfit.fit_cv(weighted["csv"], ["y1"], ["x0", "w"], weights="w", stream=stream)


def test_cli_weights(
    weighted: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "m.safetensors"
    run = ok(
        capsys, "fit", weighted["parquet"], "--target", "y1,y2", "--alpha", "cv", "--alphas",
        "30", "--l1-ratio", "0.5,1", "--weights", "w", "--seed", SEED, "--out", model, "--json",
        "--stream",
    )  # fmt: skip
    whole = gradfit.fit_cv(
        weighted["csv"], ["y1", "y2"], alphas=30, l1_ratio=[0.5, 1.0], weights="w", seed=SEED
    )
    doc = json.loads(run.out)
    assert doc["n_samples"] == whole.n_samples
    assert doc["cv"]["targets"]["y2"]["alpha"] == pytest.approx(whole.cv.alpha[1], rel=1e-12)
    saved = load_model(model)
    assert saved.hyperparameters["weights"] == "w"
    assert _rel(saved.weight.numpy(), whole.model.weight.numpy()) <= 1e-6


def test_seed_changes_the_folds(files: dict[str, Path]) -> None:
    a = gradfit.fit_cv(files["csv"], ["y1"], alphas=10, seed=1)
    b = gradfit.fit_cv(files["csv"], ["y1"], alphas=10, seed=2)
    assert a.cv.fold_rows != b.cv.fold_rows


def test_model_file_records_the_alphas_and_the_choice(files: dict[str, Path]) -> None:
    report = gradfit.fit_cv(files["csv"], ["y1", "y2"], alphas=[1.0, 0.1, 0.01], seed=SEED)
    hyper = report.model.hyperparameters
    assert hyper["alpha_selection"] == "cv"
    assert hyper["alpha_chosen"] == report.cv.alpha.tolist()
    assert hyper["alpha"] == report.cv.alpha[0]
    path = hyper["cv"]["targets"]["y1"]["path"][0]
    assert path["alphas"] == [1.0, 0.1, 0.01]
    assert len(path["mean"]) == len(path["se"]) == 3
    json.dumps(hyper)  # JSON


def test_library_refusals(files: dict[str, Path]) -> None:
    with pytest.raises(ValidationError, match="solver='scratch'"):
        gradfit.fit_cv(files["csv"], ["y1"], config=SolverConfig(solver="scratch"))
    with pytest.raises(ValidationError, match="folds must be from 2"):
        gradfit.fit_cv(files["csv"], ["y1"], folds=1)
    with pytest.raises(ValidationError, match="l1_ratio"):
        gradfit.fit_cv(files["csv"], ["y1"], l1_ratio=[0.5, 2.0])
    with pytest.raises(ValidationError, match="alphas must be finite"):
        gradfit.fit_cv(files["csv"], ["y1"], alphas=[1.0, -1.0])


# ----------------------------------------------------------------------------- command line


def test_cli_summary_json_and_model(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "m.safetensors"
    run = ok(
        capsys, "fit", files["csv"], "--target", "y1,y2", "--alpha", "cv", "--alphas", "30",
        "--l1-ratio", "0.3,0.9", "--seed", SEED, "--out", model,
    )  # fmt: skip
    est = _reference([0.3, 0.9])
    assert "alpha (min)" in run.out and "CV error" in run.out and "standard error" in run.out
    assert f"{est.alpha_:.6g}"[:5] in run.out
    saved = load_model(model)
    assert _rel(saved.weight.numpy(), est.coef_) <= 1e-6
    assert saved.hyperparameters["cv"]["l1_ratios"] == [0.3, 0.9]
    run = ok(
        capsys, "fit", files["csv"], "--target", "y1,y2", "--alpha", "cv", "--alphas", "30",
        "--alpha-per-target", "--select", "1se", "--folds", "4", "--seed", SEED, "--out", model,
        "--json",
    )  # fmt: skip
    doc = json.loads(run.out)["cv"]
    assert doc["folds"] == 4 and doc["selection"] == "1se" and doc["alpha_per_target"]
    ref = _reference(0.0, True, folds=4, selection="1se")
    for t, name in enumerate(("y1", "y2")):
        target = doc["targets"][name]
        assert target["alpha"] == ref.alpha_[t]
        path = target["path"][0]
        assert len(path["alphas"]) == len(path["mean"]) == len(path["se"]) == 30
        np.testing.assert_allclose(path["mean"], ref.cv_mean_[:, 0, t], rtol=1e-8)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--alphas", "10"], "--alphas applies to --alpha cv"),
        (["--folds", "3", "--select", "1se"], "--folds, --select apply to --alpha cv"),
        (["--l1-ratio", "0.1,0.5"], "--l1-ratio takes one value unless --alpha cv"),
        (["--alpha", "cv", "--solver", "scratch"], "solver='scratch' cannot honour alpha=cv"),
        (["--alpha", "cv", "--solver", "builtin"], "solver='builtin' cannot honour alpha=cv"),
        (["--alpha", "cv", "--weights", "y1"], "is the weights column (--weights) and cannot"),
        (["--alpha", "cv", "--early-stopping"], "early stopping does not apply"),
        (["--alpha", "cv", "--missing", "drop"], "--missing drop does not apply to --alpha cv"),
    ],
)
def test_cli_refusals(
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    model = tmp_path / "m.safetensors"
    run = gradfit_cli(capsys, "fit", files["csv"], "--target", "y1", "--out", model, *argv)
    assert run.code == 2, run.err
    assert run.err.count("\n") == 1 and message in run.err, run.err
    assert "Traceback" not in run.err
    assert not model.exists()


def test_cli_refuses_a_formula(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--formula with --alpha cv was an internal error (TypeError); --missing drop was left
    unused, and a missing cell's error then advised --missing drop."""
    model = tmp_path / "m.safetensors"
    run = gradfit_cli(
        capsys, "fit", files["csv"], "--formula", "y1 ~ .", "--alpha", "cv", "--out", model
    )
    assert run.code == 2, run.err
    assert run.err.count("\n") == 1 and "--formula does not apply to --alpha cv" in run.err
    assert not model.exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--alpha", "nope"], "or 'cv'"),
        (["--alpha", "cv", "--alphas", "1,x"], "--alphas"),
        (["--alpha", "cv", "--folds", "1"], "number of folds from 2"),
        (["--alpha", "cv", "--select", "max"], "--select"),
    ],
)
def test_cli_bad_values(
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    expected: str,
) -> None:
    run = gradfit_cli(
        capsys, "fit", files["csv"], "--target", "y1", "--out", tmp_path / "m.safetensors", *argv
    )
    assert run.code == 2 and expected in run.err, run.err


def test_cli_plot(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    plot = tmp_path / "cv.png"
    ok(
        capsys, "fit", files["csv"], "--target", "y1,y2", "--alpha", "cv", "--alphas", "20",
        "--out", tmp_path / "m.safetensors", "--plot", plot,
    )  # fmt: skip
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_cv_axes(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from gradfit.report import plot_cv

    alphas = np.geomspace(10, 0.01, 12)
    mean = 1 + (np.log(alphas) - np.log(0.3)) ** 2
    se = np.full(12, 0.2)
    figure = plot_cv(
        tmp_path / "p.png", [alphas, alphas], [mean, mean], [se, se], [0.3, 0.3], [1.0, 2.0],
        ["a", "b"],
    )  # fmt: skip
    axes = [ax for ax in figure.axes if ax.get_visible()]
    assert len(axes) == 2 and [ax.get_title() for ax in axes] == ["a", "b"]
    for ax, one_se in zip(axes, (1.0, 2.0), strict=True):
        assert ax.get_xlabel() == "log(alpha)" and "CV" in ax.get_ylabel()
        vertical = sorted(
            line.get_xdata()[0]
            for line in ax.get_lines()
            if len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1]
        )
        np.testing.assert_allclose(vertical, sorted([np.log(0.3), np.log(one_se)]))
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


# ----------------------------------------------------------------------------- torchrun


@pytest.mark.slow
@pytest.mark.parametrize("ratio", ["0", "0.5,1"])
def test_torchrun_equals_read_whole(files: dict[str, Path], tmp_path: Path, ratio: str) -> None:
    env = dict(os.environ)
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    env["OMP_NUM_THREADS"] = "1"
    model = tmp_path / "m.safetensors"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "gradfit", "fit", str(files["parquet"]), "--target", "y1,y2", "--alpha", "cv",
        "--alphas", "30", "--l1-ratio", ratio, "--seed", str(SEED), "--out", str(model),
        "--batch-rows", "50", "--json",
    ]  # fmt: skip
    run = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr[-2000:]
    ratios = [float(r) for r in ratio.split(",")]
    whole = gradfit.fit_cv(files["csv"], ["y1", "y2"], alphas=30, l1_ratio=ratios, seed=SEED)
    doc = json.loads(run.stdout)["cv"]
    assert doc["fold_rows"] == list(whole.cv.fold_rows)
    assert doc["targets"]["y1"]["alpha"] == pytest.approx(whole.cv.alpha[0], rel=1e-12)
    assert doc["targets"]["y1"]["l1_ratio"] == whole.cv.l1_ratio[0]
    saved = load_model(model)
    tol = 1e-10 if ratios == [0.0] else 1e-6
    assert _rel(saved.weight.numpy(), whole.model.weight.numpy()) <= tol


@pytest.mark.slow
def test_torchrun_weighted_equals_read_whole(weighted: dict[str, Path], tmp_path: Path) -> None:
    env = dict(os.environ)
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    env["OMP_NUM_THREADS"] = "1"
    model = tmp_path / "m.safetensors"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "gradfit", "fit", str(weighted["parquet"]), "--target", "y1,y2", "--alpha", "cv",
        "--alphas", "30", "--l1-ratio", "0.5,1", "--weights", "w", "--seed", str(SEED),
        "--out", str(model), "--batch-rows", "50", "--json",
    ]  # fmt: skip
    run = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr[-2000:]
    whole = gradfit.fit_cv(
        weighted["csv"], ["y1", "y2"], alphas=30, l1_ratio=[0.5, 1.0], weights="w", seed=SEED
    )
    doc = json.loads(run.stdout)
    assert doc["cv"]["fold_rows"] == list(whole.cv.fold_rows)
    assert doc["n_samples"] == whole.n_samples
    assert doc["cv"]["targets"]["y1"]["alpha"] == pytest.approx(whole.cv.alpha[0], rel=1e-12)
    saved = load_model(model)
    assert saved.hyperparameters["weights"] == "w"
    assert _rel(saved.weight.numpy(), whole.model.weight.numpy()) <= 1e-6
