"""Coefficient paths from files: ``gradfit.fit_path``, ``gradfit path`` and the path panels of
``gradfit fit --alpha cv --plot``.

References: :func:`gradfit.path` on the same rows (the same statistics and solvers: equal to
rounding, 1e-12 relative), scikit-learn's ``enet_path`` (coordinate descent on the rows; both
sides to a duality gap of ``1e-12 * var(y)``, so the coefficients agree to 1e-6 relative, the
path tolerance of issue 20); streamed against read whole: 1e-10 relative (statistics summed in
another order: ulps, through coordinate descent stopped on the same gap rule).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import enet_path

import gradfit
from gradfit.errors import ValidationError
from tests.cli_helpers import gradfit_cli, ok

N = 400
TIGHT = {"tol": 1e-12, "max_iter": 100_000}


def _data(n: int = N) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(n, 4)) * [1.0, 2.0, 0.5, 3.0] + [1.0, -2.0, 0.0, 4.0]
    X[:, 1] += 0.7 * X[:, 0]  # correlated
    Y = X @ np.array([[1.0, 0.0, -2.0, 0.1], [0.0, 0.5, 0.0, -0.3]]).T
    Y += rng.normal(size=(n, 2)) * [1.0, 2.0]
    w = rng.uniform(0.2, 2.0, size=n)
    w[::11] = 0.0
    return X, Y, w


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("path")
    X, Y, w = _data()
    cols = {f"x{j}": X[:, j] for j in range(4)}
    cols.update(w=w, y1=Y[:, 0], y2=Y[:, 1])
    table = pa.table(cols)
    pv.write_csv(table, root / "data.csv")
    pq.write_table(table, root / "data.parquet", row_group_size=90)
    return {"csv": root / "data.csv", "parquet": root / "data.parquet"}


FEATURES = ["x0", "x1", "x2", "x3"]


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / max(np.abs(b).max(), 1e-300))


@pytest.mark.parametrize("l1_ratio", [1.0, 0.4, 0.0])
@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_file_path_equals_gradfit_path_on_the_rows(
    files: dict[str, Path], l1_ratio: float, standardize: bool, weighted: bool
) -> None:
    X, Y, w = _data()
    record = gradfit.fit_path(
        files["csv"], ["y1", "y2"], FEATURES, alphas=25, l1_ratio=l1_ratio,
        standardize=standardize, weights="w" if weighted else None,
    )  # fmt: skip
    alphas, coefs, intercepts = gradfit.path(
        X, Y, n_alphas=25, l1_ratio=l1_ratio, standardize=standardize,
        sample_weight=w if weighted else None,
    )  # fmt: skip
    np.testing.assert_allclose(record.alphas, alphas, rtol=1e-12)
    assert record.coefs.shape == (2, 4, 25) and record.intercepts.shape == (2, 25)
    assert _rel(record.coefs, coefs) <= 1e-12
    assert _rel(record.intercepts, intercepts) <= 1e-12
    assert record.n_samples == (int((w > 0).sum()) if weighted else N)
    np.testing.assert_array_equal(record.n_nonzero, np.count_nonzero(coefs, axis=1))
    if l1_ratio == 1.0:  # the lasso: the path starts with no coefficient and gains them
        assert record.n_nonzero[:, 0].tolist() == [0, 0] and record.n_nonzero[0, -1] == 4


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_file_path_equals_sklearns_enet_path(files: dict[str, Path], l1_ratio: float) -> None:
    """``standardize=False``: the raw features' penalty, as ``enet_path`` on centred data; the
    grid's top is the largest of the targets' ``alpha_max`` (one target's grid is tested in
    test_path.py)."""
    X, Y, _ = _data()
    record = gradfit.fit_path(
        files["parquet"], ["y1", "y2"], FEATURES, alphas=20, l1_ratio=l1_ratio,
        standardize=False, **TIGHT,
    )  # fmt: skip
    Xc = X - X.mean(0)
    for t in range(2):
        yc = Y[:, t] - Y[:, t].mean()
        # the grid is that of all targets (the largest alpha_max): given to enet_path
        alphas, coefs, _ = enet_path(Xc, yc, l1_ratio=l1_ratio, alphas=record.alphas, **TIGHT)
        np.testing.assert_array_equal(alphas, record.alphas)
        scale = np.abs(coefs).max()
        np.testing.assert_allclose(record.coefs[t], coefs, rtol=1e-6, atol=1e-9 * scale)
    # intercepts: the means' balance, as scikit-learn's refits
    intercept = Y.mean(0)[:, None] - np.einsum("tda,d->ta", record.coefs, X.mean(0))
    np.testing.assert_allclose(record.intercepts, intercept, rtol=1e-12)


@pytest.mark.parametrize("where", ["csv", "parquet"])
@pytest.mark.parametrize("weighted", [False, True])
def test_streamed_equals_read_whole(files: dict[str, Path], where: str, weighted: bool) -> None:
    weights = "w" if weighted else None
    whole = gradfit.fit_path(files[where], ["y1", "y2"], FEATURES, alphas=30, weights=weights)
    streamed = gradfit.fit_path(
        files[where], ["y1", "y2"], FEATURES, alphas=30, weights=weights, stream=True,
        batch_rows=64,
    )  # fmt: skip
    np.testing.assert_allclose(streamed.alphas, whole.alphas, rtol=1e-12)
    assert _rel(streamed.coefs, whole.coefs) <= 1e-10
    assert _rel(streamed.intercepts, whole.intercepts) <= 1e-10
    assert streamed.n_samples == whole.n_samples


def test_given_alphas_default_features_and_refusals(files: dict[str, Path]) -> None:
    record = gradfit.fit_path(files["csv"], ["y1", "y2"], alphas=[0.01, 1.0, 0.1], weights="w")
    assert record.alphas.tolist() == [1.0, 0.1, 0.01]  # decreasing
    assert record.feature_names == tuple(FEATURES)  # the weights column is no feature
    assert record.weights == "w"
    with pytest.raises(ValidationError, match="l1_ratio"):
        gradfit.fit_path(files["csv"], ["y1"], l1_ratio=1.5)
    with pytest.raises(ValidationError, match="alphas must be finite"):
        gradfit.fit_path(files["csv"], ["y1"], alphas=[1.0, -1.0])
    with pytest.raises(gradfit.DataError, match="cannot also be a feature"):
        gradfit.fit_path(files["csv"], ["y1"], ["x0", "w"], weights="w")


# ----------------------------------------------------------------------------- command line


def test_cli_json_out_and_plot(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    out, plot = tmp_path / "coef.csv", tmp_path / "paths.png"
    run = ok(
        capsys, "path", files["csv"], "--target", "y1,y2", "--features", "x0,x1,x2,x3",
        "--alphas", "15", "--l1-ratio", "0.5", "--weights", "w", "--out", out, "--plot", plot,
        "--json",
    )  # fmt: skip
    record = gradfit.fit_path(
        files["csv"], ["y1", "y2"], FEATURES, alphas=15, l1_ratio=0.5, weights="w"
    )
    doc = json.loads(run.out)
    assert doc["alphas"] == record.alphas.tolist() and doc["l1_ratio"] == 0.5
    assert doc["weights"] == "w" and doc["n_samples"] == record.n_samples
    for t, name in enumerate(("y1", "y2")):
        target = doc["targets"][name]
        assert target["n_nonzero"] == record.n_nonzero[t].tolist()
        for j, feature in enumerate(FEATURES):
            assert target["coef"][feature] == record.coefs[t, j].tolist()
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * 15
    assert list(rows[0]) == ["target", "alpha", "n_nonzero", "intercept", *FEATURES]
    for row in rows:
        t = 0 if row["target"] == "y1" else 1
        a = record.alphas.tolist().index(float(row["alpha"]))
        assert int(row["n_nonzero"]) == record.n_nonzero[t, a]
        assert float(row["intercept"]) == record.intercepts[t, a]
        np.testing.assert_array_equal([float(row[f]) for f in FEATURES], record.coefs[t, :, a])
    header = plot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    assert (width, height) == (int(2 * 4.8 * 110), int(4.2 * 110))  # one row of two panels


def test_cli_summary(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    run = ok(capsys, "path", files["csv"], "--target", "y1", "--alphas", "40")
    assert "non-zero coefficients" in run.out and "40 alphas" in run.out
    assert len(run.out.splitlines()) == 2 + 10 + 1  # header, rule, 10 alphas shown, summary


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--l1-ratio", "2"], "--l1-ratio"),
        (["--alphas", "1,x"], "--alphas"),
        (["--plot", "p.gif"], "unsupported image type"),
        (["--weights", "y1"], "cannot also be a target"),
        (["--features", "nope"], "nope"),
    ],
)
def test_cli_refusals(
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    argv = [str(tmp_path / a) if a.endswith(".gif") else a for a in argv]
    run = gradfit_cli(capsys, "path", files["csv"], "--target", "y1", *argv)
    assert run.code == 2, run.err
    assert run.err.count("\n") == 1 and message in run.err, run.err
    assert "Traceback" not in run.err


@pytest.mark.parametrize("stream", ["--no-stream", "--stream"])
@pytest.mark.parametrize("command", ["path", "cv"])
def test_a_missing_cell_is_named_without_offering_missing_drop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, stream: str
) -> None:
    """``path`` has no --missing and ``fit --alpha cv`` refuses it: a missing cell's error
    named the row and offered "--missing drop" all the same."""
    data = tmp_path / "d.csv"
    data.write_text("x1,x2,y1\n1,2,3\n2,,1\n4,1,2\n5,5,7\n3,1,0\n6,2,5\n")
    argv = ["path", data] if command == "path" else ["fit", data, "--alpha", "cv", "--folds", "2"]
    argv += ["--target", "y1", "--out", tmp_path / f"o.{'csv' if command == 'path' else 'sf'}"]
    run = gradfit_cli(capsys, *argv, stream)
    assert run.code == 2, run.err
    assert run.err == (
        f"gradfit: error: {data}: column 'x2', row 2: missing value (an empty cell, NA or NaN); "
        "fill it in or remove that row\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


# ----------------------------------------------------------------------------- plots


def _top_labels(ax: object) -> list[str]:
    twins = [
        other for other in ax.figure.axes if other is not ax and other.bbox.bounds == ax.bbox.bounds
    ]  # type: ignore[attr-defined]
    assert len(twins) == 1
    return [label.get_text() for label in twins[0].get_xticklabels()]


def test_plot_path_panels_labels_and_top_axis(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from gradfit.report import plot_path

    alphas = np.geomspace(1.0, 1e-3, 11)
    coefs = np.array([[0.0] * 3 + list(np.linspace(0.1, 1, 8)), [0.0] * 7 + [0.1] * 4])
    figure = plot_path(
        tmp_path / "p.svg", [alphas] * 3, [coefs, coefs, -coefs], ["a", "b"], ["t1", "t2", "t3"],
        marks=[[("min", 0.01)], [], [("min", 0.1), ("1se", 0.5)]],
    )  # fmt: skip
    main = [ax for ax in figure.axes if ax.get_visible() and ax.get_xlabel() == "log(alpha)"]
    assert [ax.get_title() for ax in main] == ["t1", "t2", "t3"]
    for ax, marks in zip(main, ([0.01], [], [0.1, 0.5]), strict=True):
        assert ax.get_ylabel() == "coefficient"
        lines = [line for line in ax.get_lines() if len(line.get_xdata()) == 11]
        assert len(lines) == 2  # one per feature
        np.testing.assert_allclose(lines[0].get_xdata(), np.log(alphas))
        vertical = sorted(
            line.get_xdata()[0]
            for line in ax.get_lines()
            if len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1]
        )
        np.testing.assert_allclose(vertical, sorted(np.log(marks)))
        assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["a", "b"]
        # the top axis: non-zero coefficients at 6 of the 11 alphas (0, 2, 4, 6, 8, 10)
        assert _top_labels(ax) == ["0", "0", "1", "1", "2", "2"]
    assert (tmp_path / "p.svg").read_bytes().lstrip().startswith(b"<?xml")


def test_cv_plot_has_a_path_panel_below_each_curve(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--alpha cv --plot``: below each target's CV curve, its coefficient paths on all rows
    at its chosen l1 ratio, both choices marked; the path at the chosen alpha is the refit."""
    pytest.importorskip("matplotlib")
    from gradfit.cv_fit import cv_coefficient_paths

    report = gradfit.fit_cv(
        files["csv"], ["y1", "y2"], FEATURES, alphas=20, l1_ratio=[0.5, 1.0],
        alpha_per_target=True, seed=2,
    )  # fmt: skip
    paths = cv_coefficient_paths(report)
    for t, (alphas, coefs) in enumerate(paths):
        r = int(report.cv.l1_index[t])
        np.testing.assert_array_equal(alphas, report.cv.grid(t, r))
        a = alphas.tolist().index(report.cv.alpha[t])
        assert _rel(coefs[:, a], report.model.weight.numpy()[t]) <= 1e-6
    plot = tmp_path / "cv.png"
    ok(
        capsys, "fit", files["csv"], "--target", "y1,y2", "--features", "x0,x1,x2,x3",
        "--alpha", "cv", "--alphas", "20", "--l1-ratio", "0.5,1", "--alpha-per-target",
        "--seed", 2, "--out", tmp_path / "m.safetensors", "--plot", plot,
    )  # fmt: skip
    header = plot.read_bytes()[:24]
    width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    assert (width, height) == (int(2 * 4.8 * 110), int(2 * 4.0 * 110))  # 2 rows of 2 panels


def test_out_keeps_every_feature_when_names_collide(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A feature named as a fixed column (alpha) becomes coef_alpha; a feature already called
    coef_alpha keeps its name, and neither column is lost (one used to overwrite the other)."""
    data = tmp_path / "d.csv"
    data.write_text("alpha,coef_alpha,intercept,y\n1,2,0,2.5\n2,1,1,4.1\n3,5,0,6.2\n4,2,1,8.3\n")
    out = tmp_path / "coef.csv"
    ok(capsys, "path", data, "--target", "y", "--alphas", "3", "--out", out)
    record = gradfit.fit_path(data, ["y"], ["alpha", "coef_alpha", "intercept"], alphas=3)
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    names = ["coef_coef_alpha", "coef_alpha", "coef_intercept"]
    assert list(rows[0]) == ["target", "alpha", "n_nonzero", "intercept", *names]
    for a, row in enumerate(rows):
        assert [float(row[n]) for n in names] == record.coefs[0, :, a].tolist()
