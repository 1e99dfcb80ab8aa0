"""One report builder (gradfit.fit_report.build_fit_report) for both roads: the report of a
file read whole and of the same file streamed agree, with and without early stopping, and every
figure is over the training rows (the rows held out for early stopping left out).

Tolerances: gd and lstsq give the same model on both roads to 1e-12 relative (only the
summation order of the statistics differs), so the figures agree to 1e-12; sgd's models agree
to 1e-10 (tests/test_one_road_rows.py), and so do its figures. In memory the metrics come from
the rows, streamed from the statistics: the two agree to ~1e-15 on this well-conditioned data.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gradfit.fit_report import EXACT_FIT, FitReport
from gradfit.fitting import fit_data
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.rows import holdout_mask, holdout_seed
from gradfit.streaming import fit_stream

pytestmark = pytest.mark.usefixtures("one_thread")

N = 200
SEED = 7


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    """N rows of two features and two noisy targets (R² about 0.85)."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(N, 2)) * [1.0, 3.0] + [4.0, -1.0]
    Y = X @ np.array([[1.0, 0.5], [-0.5, 0.3]]).T + 0.6 * rng.normal(size=(N, 2))
    lines = ["a,b,y,z"] + [",".join(repr(float(v)) for v in row) for row in np.hstack([X, Y])]
    path = tmp_path / "rows.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _close(a: Any, b: Any, rtol: float) -> None:
    assert a == pytest.approx(b, rel=rtol, abs=rtol * 1e-3)


def _assert_same_report(memory: FitReport, streamed: FitReport, rtol: float) -> None:
    assert memory.n_samples == streamed.n_samples
    for key in ("mse", "rmse", "r2"):
        _close(getattr(memory.metrics, key), getattr(streamed.metrics, key), rtol)
    _close(memory.final_loss, streamed.final_loss, rtol)
    _close(memory.optimal_loss, streamed.optimal_loss, rtol)
    assert (memory.loss_ratio is None) == (streamed.loss_ratio is None)
    if memory.loss_ratio is not None:
        _close(memory.loss_ratio, streamed.loss_ratio, rtol)
    a, b = memory.model, streamed.model
    assert a.feature_names == b.feature_names and a.target_names == b.target_names
    assert a.solver == b.solver
    assert set(a.hyperparameters) == set(b.hyperparameters)
    for key, value in a.hyperparameters.items():
        if isinstance(value, float):
            _close(value, b.hyperparameters[key], rtol)
        else:
            assert value == b.hyperparameters[key], key
    _close(a.final_loss, b.final_loss, rtol)
    _close(a.loss_history, b.loss_history, rtol)
    for name in a.target_names:
        streamed_row = b.metrics[name]
        assert set(streamed_row) == {"mse", "rmse", "r2"}  # MAE would need a pass
        for key, value in streamed_row.items():
            _close(a.metrics[name][key], value, rtol)
    for x, y in ((a.scaling_mean, b.scaling_mean), (a.scaling_scale, b.scaling_scale)):
        assert (x is None) == (y is None)
        if x is not None and y is not None:
            _close(x.tolist(), y.tolist(), rtol)
    # The coefficient table of a fit at the optimum: the same on both roads.
    assert (memory.inference is None) == (streamed.inference is None)


IDS = ["lstsq", "gd", "gd-early", "sgd", "sgd-early"]
CASES = [
    ("lstsq", False, 1e-12),
    ("gd", False, 1e-12),
    ("gd", True, 1e-12),
    ("sgd", False, 1e-10),
    ("sgd", True, 1e-10),
]


@pytest.mark.parametrize(
    ("solver", "early", "rtol"),
    CASES,
    ids=[f"{s}-{'early' if e else 'plain'}" for s, e, _ in CASES],
)
def test_the_report_is_the_same_in_memory_and_streamed(
    csv: Path, solver: str, early: bool, rtol: float
) -> None:
    config = SolverConfig(
        solver=solver, batch_size=8, max_epochs=300 if solver == "gd" else 30, tol=1e-6,
        n_iter_no_change=3, early_stopping=early, validation_fraction=0.2,
    )  # fmt: skip
    memory = fit_data(str(csv), ["y", "z"], config=config, seed=SEED)
    streamed = fit_stream(
        csv, ["y", "z"], config=config, seed=SEED, batch_rows=23, shuffle_buffer=N
    )
    held = holdout_mask(0, 1, N, 0.2, holdout_seed(SEED)) if early else np.zeros(N, bool)
    assert memory.n_samples == N - int(held.sum())
    assert 0 < int(held.sum()) < N // 2 or not early
    _assert_same_report(memory, streamed, rtol)


def test_every_figure_of_an_early_stopped_fit_is_over_the_training_rows(csv: Path) -> None:
    """In memory as streamed: n_samples, the metrics (MAE included), the final loss, the
    optimum and the plots' rows are the training rows', not the whole file's."""
    config = SolverConfig(early_stopping=True, validation_fraction=0.2, max_epochs=300)
    report = fit_data(str(csv), ["y", "z"], config=config, seed=SEED)
    table = np.loadtxt(csv, delimiter=",", skiprows=1)
    keep = ~holdout_mask(0, 1, N, 0.2, holdout_seed(SEED))
    X, Y = table[keep, :2], table[keep, 2:]
    w, b = report.model.weight.numpy(), report.model.bias.numpy()
    err = Y - (X @ w.T + b)
    assert report.n_samples == report.model.hyperparameters["n_samples"] == int(keep.sum()) < N
    np.testing.assert_allclose(report.metrics.mse, (err**2).mean(0), rtol=1e-12)
    np.testing.assert_allclose(report.metrics.mae, np.abs(err).mean(0), rtol=1e-12)
    r2 = 1 - (err**2).sum(0) / ((Y - Y.mean(0)) ** 2).sum(0)
    np.testing.assert_allclose(report.metrics.r2, r2, rtol=1e-12)
    assert report.final_loss == pytest.approx(float((err**2).mean()), rel=1e-12)
    Xc = np.hstack([X, np.ones((X.shape[0], 1))])
    best = np.linalg.lstsq(Xc, Y, rcond=None)[0]
    optimum = float(((Y - Xc @ best) ** 2).mean())
    assert report.optimal_loss == pytest.approx(optimum, rel=1e-10)
    assert report.targets.shape == (int(keep.sum()), 2)
    np.testing.assert_array_equal(report.targets, Y)


def test_an_exact_fit_has_no_ratio_on_either_road(tmp_path: Path) -> None:
    """The exact-fit rule (EXACT_FIT, one constant) on both roads: y = 2a + 1 exactly."""
    path = tmp_path / "exact.csv"
    path.write_text("a,y\n" + "".join(f"{i},{2 * i + 1}\n" for i in range(20)))
    config = SolverConfig(max_epochs=2000, tol=1e-12)
    memory = fit_data(str(path), ["y"], config=config)
    streamed = fit_stream(path, ["y"], config=config, batch_rows=6)
    for report in (memory, streamed):
        assert report.loss_ratio is None
        assert report.optimal_loss <= EXACT_FIT * 20**2
    assert math.isnan(streamed.metrics.mae[0]) and not math.isnan(memory.metrics.mae[0])
