"""Sufficient statistics (gradfit.solvers.stats): computed in chunks and from any layout of
the rows against NumPy, merged from batches as in one pass, overflow refused; the objective,
gradient, R² and optimum they give against autograd, direct evaluation on the data and closed
forms; standardized statistics; and the step bounds they imply.

Tolerances: the statistics evaluate the same quantities as the data but through centred
moments (a different summation), so they agree to a few hundred ulps: ``rtol=1e-10`` is loose
enough for rounding and tight enough to catch any wrong factor or sign.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv
import pytest
import torch

import gradfit
from gradfit.errors import RankDeficiencyWarning, ValidationError
from gradfit.solvers import stats
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.stats import SufficientStats, batch_lipschitz, hessian_lipschitz

pytestmark = pytest.mark.usefixtures("one_thread")

STATS_RTOL = 1e-10  # same quantity, different summation (see module doc)


def _problem(
    seed: int, n: int = 120, d: int = 4, k: int = 2, noise: float = 0.3
) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d) + rng.normal(size=d)
    W = rng.normal(size=(k, d))
    Y = X @ W.T + rng.normal(size=k) + noise * rng.normal(size=(n, k))
    return torch.from_numpy(X), torch.from_numpy(Y)


def _model(seed: int, k: int, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A model away from the optimum (so that gradients are O(1), not rounding noise)."""
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.normal(size=(k, d))), torch.from_numpy(rng.normal(size=k))


def _hessian_lmax(X: np.ndarray, k: int, fit_intercept: bool = True) -> float:
    """λmax of the Hessian of sum(E²)/(n k), built explicitly as (2/k) M ⊗ I_k (not from the
    engine's formula): M = [X, 1]ᵀ[X, 1] / n."""
    Xa = np.c_[X, np.ones(len(X))] if fit_intercept else X
    H = np.kron(2.0 / k * Xa.T @ Xa / len(X), np.eye(k))
    return float(np.linalg.eigvalsh(H)[-1])


# ---------------------------------------------------------------------------------------------
# computing the statistics: chunks, layouts, precision, overflow, merging


@pytest.mark.parametrize("knob", ["_CHUNK_ROWS", "_CHUNK_ELEMENTS"])
def test_sufficient_stats_match_numpy_across_chunks(
    monkeypatch: pytest.MonkeyPatch, knob: str
) -> None:
    # Small chunks (7 rows, by row count or by buffer size: 50 // (4 + 2 + 1) = 7) so that the
    # accumulation over several chunks and a ragged last one runs; a large common offset
    # checks that the shifted accumulation avoids cancellation.
    monkeypatch.setattr(stats, knob, 7 if knob == "_CHUNK_ROWS" else 50)
    X, Y = _problem(0, n=50)
    X = X + 1e6
    st = SufficientStats.compute(X, Y)
    Xn, Yn = X.numpy(), Y.numpy()
    Xc, Yc = Xn - Xn.mean(0), Yn - Yn.mean(0)
    np.testing.assert_allclose(st.zbar.numpy(), Xn.mean(0), rtol=1e-14)
    np.testing.assert_allclose(st.Szz.numpy(), Xc.T @ Xc / 50, rtol=1e-8)
    np.testing.assert_allclose(st.Szy.numpy(), Xc.T @ Yc / 50, rtol=1e-8)
    np.testing.assert_allclose(st.syy.numpy(), (Yc**2).mean(0), rtol=1e-12)


def _layouts(X: torch.Tensor, Y: torch.Tensor) -> dict[str, tuple[object, object]]:
    """The same data as each path of the statistics pass takes it: row-major tensors,
    column-major tensors (a batch read from a file), columns as a list of arrays (read without
    stacking), and half precision (the torch path, as on a GPU)."""
    Xf = torch.from_numpy(np.asfortranarray(X.numpy()))
    Yf = torch.from_numpy(np.asfortranarray(Y.numpy()))
    return {
        "rows": (X, Y),
        "column-major": (Xf, Yf),
        "columns": (list(X.numpy().T.copy()), list(Y.numpy().T.copy())),
        "mixed": (Xf, list(Y.numpy().T.copy())),
    }


@pytest.mark.parametrize("layout", ["rows", "column-major", "columns", "mixed"])
def test_sufficient_stats_are_the_same_whatever_the_layout(
    monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    # Every layout must give the numbers of the float64 reference: the shift, the chunking
    # (7 rows, ragged at the end) and the rank-k update differ only in summation order, so
    # agreement is to float64 rounding (1e-12 relative on these well-scaled sums; the large
    # offset would cost 12 digits without the shift, so 1e-8 on the moments is still a test
    # of it, as above).
    monkeypatch.setattr(stats, "_CHUNK_ROWS", 7)
    X, Y = _problem(3, n=53, d=5, k=2)
    X = X + 1e6
    Z, T = _layouts(X, Y)[layout]
    st = SufficientStats.compute(Z, T)  # type: ignore[arg-type]
    Xn, Yn = X.numpy(), Y.numpy()
    Xc, Yc = Xn - Xn.mean(0), Yn - Yn.mean(0)
    assert st.n == 53
    np.testing.assert_allclose(st.zbar.numpy(), Xn.mean(0), rtol=1e-14)
    np.testing.assert_allclose(st.ybar.numpy(), Yn.mean(0), rtol=1e-12)
    np.testing.assert_allclose(st.Szz.numpy(), Xc.T @ Xc / 53, rtol=1e-8)
    np.testing.assert_allclose(st.Szy.numpy(), Xc.T @ Yc / 53, rtol=1e-8)
    np.testing.assert_allclose(st.syy.numpy(), (Yc**2).mean(0), rtol=1e-12)
    merged = SufficientStats.from_batches([(Z, T)])  # type: ignore[list-item]
    np.testing.assert_allclose(merged.Szz.numpy(), st.Szz.numpy(), rtol=1e-12)


def test_sufficient_stats_of_half_precision_take_the_torch_path() -> None:
    # float16 has no NumPy BLAS path: the torch chunks convert to float64 before the shift, so
    # the statistics are exactly those of the float16 values seen as float64.
    X, Y = _problem(4, n=40, d=3, k=1)
    Xh, Yh = X.half(), Y.half()
    st = SufficientStats.compute(Xh, Yh)
    ref = SufficientStats.compute(Xh.double(), Yh.double())
    np.testing.assert_allclose(st.Szz.numpy(), ref.Szz.numpy(), rtol=1e-12)
    np.testing.assert_allclose(st.Szy.numpy(), ref.Szy.numpy(), rtol=1e-12)
    np.testing.assert_allclose(st.zbar.numpy(), ref.zbar.numpy(), rtol=1e-14)


def test_statistics_that_overflow_float64_are_a_clear_error() -> None:
    X = torch.tensor([[1e200, 1.0], [2e200, 3.0], [3e200, 2.0]], dtype=torch.float64)
    Y = torch.tensor([[1.0], [2.0], [4.0]], dtype=torch.float64)
    with pytest.raises(gradfit.ValidationError, match=r"overflows float64.*rescale"):
        SufficientStats.compute(X, Y)


@pytest.mark.parametrize("where", ["X", "Y"])
@pytest.mark.parametrize("scale", [1e-160, 1e-200])
@pytest.mark.parametrize("layout", ["tensor", "columns"])
def test_statistics_that_underflow_float64_are_a_clear_error(
    where: str, scale: float, layout: str
) -> None:
    """The mirror of the overflow: values varying by less than ~1e-154 have squares below
    float64's normal range, the moments lose every digit (0 at 1e-170) and gd, sgd and the CV
    estimator returned coefficients 0 without a word. Refused, naming the column."""
    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(50, 3)), rng.normal(size=(50, 2))
    if where == "X":
        X[:, 1] *= scale
    else:
        Y[:, 1] *= scale
    Z, T = torch.from_numpy(X), torch.from_numpy(Y)
    blocks = (Z, T) if layout == "tensor" else (list(X.T.copy()), list(Y.T.copy()))
    with pytest.raises(ValidationError, match=f"too small.*column 1 .* of {where} "):
        SufficientStats.compute(*blocks)
    with pytest.raises(ValidationError, match="too small"):
        gradfit.GradientDescentRegressor().fit(X, Y)


def test_constant_columns_of_any_size_are_not_too_small() -> None:
    """Columns constant up to rounding (all zeros, a tiny or an ordinary constant, shifted by
    a head mean that rounds) have underflowing moments too, and are fine."""
    rng = np.random.default_rng(5)
    X = np.c_[rng.normal(size=70), np.zeros(70), np.full(70, 1e-200), np.full(70, 0.1)]
    Y = np.c_[rng.normal(size=70), np.zeros(70), np.full(70, 3e-170)]
    s = SufficientStats.compute(torch.from_numpy(X), torch.from_numpy(Y))
    np.testing.assert_array_equal(s.Szz.diagonal()[1:3].numpy(), [0.0, 0.0])
    est = gradfit.GradientDescentRegressor(solver="lstsq", alpha=0.1).fit(X, Y)
    np.testing.assert_array_equal(est.coef_[:, 1:], 0.0)
    # Tiny values in rows of weight 0 only do not count.
    w = np.ones(70)
    w[:5] = 0.0
    X[:5, 1] = rng.normal(size=5) * 1e-200
    SufficientStats.compute(torch.from_numpy(X), torch.from_numpy(Y), weights=w)
    with pytest.raises(ValidationError, match="too small"):
        SufficientStats.compute(torch.from_numpy(X), torch.from_numpy(Y))


def test_a_part_that_varies_too_little_is_not_the_whole() -> None:
    """The check is of all the rows: a column sorted by size (exp(-t), t up to 700) has
    batches and folds that vary by less than 1e-154 while the column does not; refused batch
    by batch it made a streamed fit, anova and ordered CV folds fail on data the whole read
    fits. Statistics from batches equal those of one pass; a column that is small in every
    batch, or small in one and constant elsewhere at another level, is still refused."""
    t = np.linspace(700.0, 0.0, 400)
    rng = np.random.default_rng(11)
    X = np.c_[np.exp(-t), rng.normal(size=400)]
    Y = (X @ np.array([[3.0], [0.5]])) + 0.01 * rng.normal(size=(400, 1))
    whole = SufficientStats.compute(torch.from_numpy(X), torch.from_numpy(Y))
    for rows in (50, 7):
        parts = [
            (torch.from_numpy(X[i : i + rows]), torch.from_numpy(Y[i : i + rows]))
            for i in range(0, 400, rows)
        ]
        merged = SufficientStats.from_batches(parts)
        torch.testing.assert_close(merged.Szz, whole.Szz, rtol=1e-12, atol=0.0)
        torch.testing.assert_close(merged.Szy, whole.Szy, rtol=1e-12, atol=0.0)
    folds = gradfit.GradientDescentRegressorCV(cv=5, alphas=[1e-3, 1e-2]).fit(X, Y[:, 0])
    assert folds.alpha_ in (1e-3, 1e-2)
    tiny = np.c_[X[:, 1] * 1e-170, X[:, 1]]
    halves = [
        (torch.from_numpy(tiny[i : i + 200]), torch.from_numpy(Y[i : i + 200])) for i in (0, 200)
    ]
    with pytest.raises(ValidationError, match=r"too small.*column 0 "):
        SufficientStats.from_batches(halves)
    steps = np.c_[np.r_[np.full(200, 1e-200), np.full(200, 2e-200)], X[:, 1]]
    halves = [
        (torch.from_numpy(steps[i : i + 200]), torch.from_numpy(Y[i : i + 200])) for i in (0, 200)
    ]
    with pytest.raises(ValidationError, match=r"too small.*column 0 "):
        SufficientStats.from_batches(halves)
    constant = np.c_[np.full(400, 1e-200), X[:, 1]]
    halves = [
        (torch.from_numpy(constant[i : i + 200]), torch.from_numpy(Y[i : i + 200]))
        for i in (0, 200)
    ]
    SufficientStats.from_batches(halves)


@pytest.mark.parametrize("solver", ["gd", "lstsq"])
def test_a_streamed_fit_of_a_column_sorted_by_size_equals_the_whole_read(
    tmp_path: Path, solver: str
) -> None:
    """The file behind the test above, streamed in batches of 50 rows: refused before, now
    the coefficients of the whole read."""
    t = np.linspace(700.0, 0.0, 400)
    rng = np.random.default_rng(12)
    decay, x2 = np.exp(-t), rng.normal(size=400)
    y = 3.0 * decay + 0.5 * x2 + 0.01 * rng.normal(size=400)
    path = tmp_path / "decay.csv"
    pv.write_csv(pa.table({"decay": decay, "x2": x2, "y": y}), path)
    config = SolverConfig(solver)
    whole = gradfit.fit(path, ["y"], config=config, stream=False)
    streamed = gradfit.fit(path, ["y"], config=config, stream=True, batch_rows=50)
    torch.testing.assert_close(streamed.model.weight, whole.model.weight, rtol=1e-6, atol=0.0)


def test_merged_statistics_equal_one_pass() -> None:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(1000, 4, generator=g, dtype=torch.float64) + 1e6
    Y = X[:, :2] * 3 + torch.randn(1000, 2, generator=g, dtype=torch.float64)
    whole = SufficientStats.compute(X, Y)
    edges = [0]
    for size in itertools.cycle([1, 2, 7, 300, 3]):  # very different batch sizes
        if edges[-1] + size >= 1000:
            break
        edges.append(edges[-1] + size)
    edges.append(1000)
    pieces = [(X[a:b], Y[a:b]) for a, b in itertools.pairwise(edges)]
    streamed = SufficientStats.from_batches(pieces)
    for name in ("zbar", "ybar", "Szz", "Szy", "syy"):
        a, b = getattr(whole, name), getattr(streamed, name)
        assert float((a - b).abs().max() / b.abs().max()) < 1e-13, name
    # merge() in either order, and with an empty part
    left, right = SufficientStats.compute(X[:10], Y[:10]), SufficientStats.compute(X[10:], Y[10:])
    for merged in (left.merge(right), right.merge(left)):
        torch.testing.assert_close(merged.Szz, whole.Szz, rtol=1e-10, atol=0)
    with pytest.raises(ValidationError, match="no data rows"):
        SufficientStats.from_batches([])


# ---------------------------------------------------------------------------------------------
# what they give: objective, gradient, R², optimum, standardized statistics


def test_gradient_equals_autograd_of_the_mse() -> None:
    X, Y = _problem(0)
    st = SufficientStats.compute(X, Y)
    W, b = _model(1, k=2, d=4)
    gW, gb = st.gradient(W, b)
    Wr, br = W.clone().requires_grad_(True), b.clone().requires_grad_(True)
    loss = ((X @ Wr.T + br - Y) ** 2).mean()  # averaged over all n·k entries
    loss.backward()
    assert Wr.grad is not None and br.grad is not None
    np.testing.assert_allclose(gW.numpy(), Wr.grad.numpy(), rtol=STATS_RTOL)
    np.testing.assert_allclose(gb.numpy(), br.grad.numpy(), rtol=STATS_RTOL)


@pytest.mark.parametrize(("alpha", "l1_ratio"), [(0.0, 0.0), (0.3, 0.0), (0.3, 0.4), (0.2, 1.0)])
def test_per_target_mse_and_objective_equal_direct_computation(
    alpha: float, l1_ratio: float
) -> None:
    X, Y = _problem(2, k=3)
    st = SufficientStats.compute(X, Y)
    W, b = _model(3, k=3, d=4)
    E = (X @ W.T + b - Y).numpy()
    mse = (E**2).mean(axis=0)  # (k,)
    np.testing.assert_allclose(st.per_target_mse(W, b).numpy(), mse, rtol=STATS_RTOL)
    Wn, k = W.numpy(), 3
    pen = 2 * alpha / k * (l1_ratio * np.abs(Wn).sum() + (1 - l1_ratio) / 2 * (Wn**2).sum())
    assert st.objective(W, b, alpha, l1_ratio) == pytest.approx((E**2).mean() + pen, rel=STATS_RTOL)


def test_r2_equals_r2_score_of_the_predictions() -> None:
    X, Y = _problem(4, k=3)
    st = SufficientStats.compute(X, Y)
    W, b = _model(5, k=3, d=4)
    W = 0.5 * W + gradfit.least_squares(X, Y).weight  # a fair model: R² in (0, 1) for some
    expected = gradfit.r2_score(Y, X @ W.T + b)
    np.testing.assert_allclose(st.r2(W, b).numpy(), expected.numpy(), rtol=STATS_RTOL)


def test_target_scale_is_the_variance_or_the_mean_square() -> None:
    X, Y = _problem(6, k=2)
    st = SufficientStats.compute(X, Y)
    Yn = Y.numpy()
    assert st.target_scale(True) == pytest.approx(Yn.var(axis=0).mean(), rel=STATS_RTOL)
    assert st.target_scale(False) == pytest.approx((Yn**2).mean(), rel=STATS_RTOL)


def _lstsq_mse(X: torch.Tensor, Y: torch.Tensor, fit_intercept: bool) -> np.ndarray:
    fit = gradfit.least_squares(X, Y, fit_intercept=fit_intercept)
    E = (X @ fit.weight.T + fit.bias - Y).numpy()
    mse: np.ndarray = (E**2).mean(axis=0)
    return mse


def _duplicated_column(X: torch.Tensor) -> torch.Tensor:
    return torch.cat([X, X[:, 1:2]], dim=1)  # rank d in d + 1 columns


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_optimum_is_the_least_squares_mse(fit_intercept: bool) -> None:
    X, Y = _problem(7, k=3)
    st = SufficientStats.compute(X, Y)
    np.testing.assert_allclose(
        st.optimum(fit_intercept).numpy(), _lstsq_mse(X, Y, fit_intercept), rtol=STATS_RTOL
    )


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_optimum_of_a_rank_deficient_design_is_still_the_least_squares_mse(
    fit_intercept: bool,
) -> None:
    # A duplicated column: Szz is singular, the pseudo-inverse must still give the optimum
    # (the least-squares fit is not unique, its MSE is).
    X, Y = _problem(8, k=2)
    Xd = _duplicated_column(X)
    with pytest.warns(RankDeficiencyWarning):
        expected = _lstsq_mse(Xd, Y, fit_intercept)
    np.testing.assert_allclose(expected, _lstsq_mse(X, Y, fit_intercept), rtol=STATS_RTOL)
    st = SufficientStats.compute(Xd, Y)
    np.testing.assert_allclose(st.optimum(fit_intercept).numpy(), expected, rtol=STATS_RTOL)


def _ridge_optimum_by_hand(
    X: np.ndarray, Y: np.ndarray, ridge: float, fit_intercept: bool
) -> np.ndarray:
    """min over w_j, b_j of mse_j + ridge * ||w_j||² per target: w from the normal equations
    (Szz + ridge I) w = Szy (NumPy), then the objective evaluated on the data."""
    n, d = X.shape
    if fit_intercept:
        xm, ym = X.mean(axis=0), Y.mean(axis=0)
    else:
        xm, ym = np.zeros(d), np.zeros(Y.shape[1])
    Xc, Yc = X - xm, Y - ym
    W = np.linalg.solve(Xc.T @ Xc / n + ridge * np.eye(d), Xc.T @ Yc / n).T  # (k, d)
    b = ym - W @ xm
    E = X @ W.T + b - Y
    out: np.ndarray = (E**2).mean(axis=0) + ridge * (W**2).sum(axis=1)
    return out


@pytest.mark.parametrize("duplicate", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_ridge_optimum_equals_the_closed_form(fit_intercept: bool, duplicate: bool) -> None:
    X, Y = _problem(9, k=2)
    if duplicate:  # singular Szz, but Szz + ridge I is not
        X = _duplicated_column(X)
    st = SufficientStats.compute(X, Y)
    for ridge in (0.05, 1.0, 20.0):
        expected = _ridge_optimum_by_hand(X.numpy(), Y.numpy(), ridge, fit_intercept)
        np.testing.assert_allclose(
            st.optimum(fit_intercept, ridge=ridge).numpy(), expected, rtol=STATS_RTOL
        )
    # The penalty only costs: the ridge optimum is above the least-squares one.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankDeficiencyWarning)
        plain = _lstsq_mse(X, Y, fit_intercept)
    assert (st.optimum(fit_intercept, ridge=0.05).numpy() > plain).all()


def test_standardized_statistics_equal_those_of_the_standardized_data() -> None:
    X, Y = _problem(10, k=2)
    rng = np.random.default_rng(13)
    # Any affine map, not the data's own moments (so that zbar is not ~0 and compares tightly).
    mean = torch.from_numpy(rng.normal(size=4))
    scale = torch.from_numpy(rng.uniform(0.5, 4.0, size=4))
    derived = SufficientStats.compute(X, Y).standardized(mean, scale)
    direct = SufficientStats.compute((X - mean) / scale, Y)
    assert derived.n == direct.n
    for name in ("zbar", "ybar", "Szz", "Szy", "syy"):
        np.testing.assert_allclose(
            getattr(derived, name).numpy(),
            getattr(direct, name).numpy(),
            rtol=STATS_RTOL,
            err_msg=name,
        )
    # And so does everything computed from them.
    W, b = _model(14, k=2, d=4)
    np.testing.assert_allclose(
        derived.per_target_mse(W, b).numpy(), direct.per_target_mse(W, b).numpy(), rtol=STATS_RTOL
    )


# ---------------------------------------------------------------------------------------------
# step bounds


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("k", [1, 3])
def test_hessian_lipschitz_is_the_largest_eigenvalue(fit_intercept: bool, k: int) -> None:
    X, Y = _problem(1, k=k)
    lip = hessian_lipschitz(SufficientStats.compute(X, Y), fit_intercept, k)
    assert lip == pytest.approx(_hessian_lmax(X.numpy(), k, fit_intercept), rel=1e-12)


def test_batch_lipschitz_interpolates_between_full_batch_and_worst_row() -> None:
    L, row, n, k = 3.0, 40.0, 100, 2
    assert batch_lipschitz(L, row, n, n, k) == pytest.approx(L)  # b = n: the full batch
    assert batch_lipschitz(L, row, n, 1, k) == pytest.approx(2.0 / k * row)  # one row
    mid = batch_lipschitz(L, row, n, 10, k)
    assert L < mid < 2.0 / k * row


def test_the_refusals_of_a_column_say_which_and_the_estimator_names_it() -> None:
    """Too small or too large for float64: the column by its index in X or Y (the overflow
    too, once only 'X^T X overflows'), and by its name when the estimator has X's names."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(6)
    X, Y = rng.normal(size=(30, 3)), rng.normal(size=(30, 2))
    big = X.copy()
    big[:, 2] *= 1e200
    with pytest.raises(ValidationError, match=r"column 2 \(counted from 0\) of X overflows"):
        SufficientStats.compute(torch.from_numpy(big), torch.from_numpy(Y))
    tall = Y.copy()
    tall[:, 1] *= 1e200
    with pytest.raises(ValidationError, match=r"column 1 \(counted from 0\) of Y overflows"):
        SufficientStats.compute(torch.from_numpy(X), torch.from_numpy(tall))
    small = X.copy()
    small[:, 1] *= 1e-170
    for values, too in ((small, "small"), (big, "large")):
        frame = pd.DataFrame(values, columns=["a", "b", "c"])
        with pytest.raises(ValidationError, match=f"too {too} to train on: column '[bc]' of X "):
            gradfit.GradientDescentRegressor().fit(frame, Y[:, 0])
