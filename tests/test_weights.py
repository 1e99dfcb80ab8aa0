"""Row weights (issue 19, the library and maths layer): weighted sufficient statistics, every
solver with ``sample_weight``, weighted least-squares inference against R, bad weights.

Oracles and tolerances:

* integer weights against the rows repeated that many times (scikit-learn's meaning): the
  statistics to 1e-12 (the same sums, in another order and scaled by sqrt(w)²: a few ulps);
  gd, lstsq, ridge and elastic net to 1e-10 (the same iterates from statistics equal to a few
  ulps, or the same normal equations solved by QR of another design);
* sgd: what holds is exact in other forms: with batches of all rows one step is the gd step
  of the weighted objective (1e-12); positive weights that are all equal, with rows of weight 0,
  give the fit of the other rows (rounding of the scaling only: 1e-12); and the optimum is
  that of the weighted objective (a decreasing step, loosely: 1e-3);
* ``gradfit.ols(X, Y, weights=w)`` against R's ``lm(..., weights = w)`` (4.2.2) and
  ``sandwich::vcovHC`` (3.0.2) on R's own data sets, mtcars and trees, to 1e-8 relative
  (p-values 1e-6), the issue's criterion; the numbers below are R's, printed with 17 digits
  by the script at the end of this file;
* rows of weight 0 give what leaving them out gives (except the listed residual quantiles,
  where R lists them as 0).
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.metrics import mean_absolute_error, mean_squared_error
from sklearn.metrics import r2_score as sk_r2_score

import gradfit
from gradfit.errors import ConstantVarianceWarning, ValidationError
from gradfit.estimator import GradientDescentRegressor
from gradfit.inference import PredictionInterval, ols, ols_from_stats
from gradfit.metrics import MetricsAccumulator, r2_score, regression_metrics
from gradfit.solvers import collective, stats
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.engine import epoch_kernel, init_state, row_weights
from gradfit.solvers.epoch_kernels import EPOCH_KERNELS
from gradfit.solvers.interfaces import TensorData
from gradfit.solvers.lstsq import least_squares
from gradfit.solvers.stats import SufficientStats
from gradfit.training import fit_linear

pytestmark = pytest.mark.usefixtures("one_thread")

STATS_RTOL = 1e-12
FIT_RTOL = 1e-10
R_RTOL = 1e-8  # the criterion (R's LINPACK QR against ours: measured ~1e-13)
R_P_RTOL = 1e-6


def _problem(
    seed: int = 0, n: int = 60, d: int = 3, k: int = 2, offset: float = 5.0
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Rows with integer weights 0..3 (some 0)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d) + offset
    Y = X @ rng.normal(size=(d, k)) + rng.normal(size=k) + rng.normal(size=(n, k))
    w = rng.integers(0, 4, size=n).astype(np.float64)
    w[:2] = (0.0, 3.0)
    return torch.from_numpy(X), torch.from_numpy(Y), w


def _repeat(w: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(w.shape[0]), w.astype(int))


def _close_stats(a: SufficientStats, b: SufficientStats, rtol: float = STATS_RTOL) -> None:
    for name in ("zbar", "ybar", "Szz", "Szy", "syy"):
        x, y = getattr(a, name), getattr(b, name)
        scale = float(y.abs().max()) or 1.0
        assert float((x - y).abs().max()) <= rtol * scale, name


# ----------------------------------------------------------------------------- statistics


@pytest.mark.parametrize("layout", ["tensor", "float32", "columns", "fortran"])
def test_weighted_statistics_equal_those_of_repeated_rows(layout: str) -> None:
    X, Y, w = _problem()
    if layout == "float32":  # converted in the chunk buffer, as unweighted
        X, Y = X.float(), Y.float()
    rep = _repeat(w)
    whole = SufficientStats.compute(X[rep], Y[rep])
    Z: Any = X
    Yb: Any = Y
    if layout == "columns":
        Z, Yb = list(X.numpy().T.copy()), list(Y.numpy().T.copy())
    elif layout == "fortran":
        Z, Yb = X.T.contiguous().T, Y.T.contiguous().T
    weighted = SufficientStats.compute(Z, Yb, weights=w)
    _close_stats(weighted, whole, 1e-6 if layout == "float32" else STATS_RTOL)
    assert weighted.total == whole.n == w.sum()
    assert weighted.n == 60 and weighted.n_positive == int((w > 0).sum())
    assert weighted.log_weight_sum == pytest.approx(np.log(w[w > 0]).sum(), rel=1e-15)


def test_the_torch_route_weighs_as_the_numpy_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # GPUs and half precision take the torch route; on the CPU it is reached directly, with
    # chunks smaller than the rows so that each chunk's weights are its own.
    X, Y, w = _problem()
    monkeypatch.setattr(stats, "_CHUNK_ROWS", 7)
    z0, y0 = X[:5].mean(0), Y[:5].mean(0)
    root = np.sqrt(w)
    G_torch = stats._shifted_gram_torch(X, Y, z0, y0, torch.from_numpy(root))
    G_numpy = torch.from_numpy(stats._shifted_gram_numpy(X, Y, torch.cat([z0, y0]).numpy(), root))
    A = torch.cat([X - z0, Y - y0, torch.ones(60, 1, dtype=torch.float64)], 1)
    G_direct = (A * torch.from_numpy(w)[:, None]).T @ A
    torch.testing.assert_close(G_torch, G_direct, rtol=STATS_RTOL, atol=0)
    torch.testing.assert_close(G_numpy, G_direct, rtol=STATS_RTOL, atol=0)


def test_weighted_batches_merge_to_the_whole_in_any_order() -> None:
    X, Y, w = _problem(1, n=90, offset=1e4)  # a large common offset: the merge must not cancel
    whole = SufficientStats.compute(X, Y, weights=w)
    cuts = [0, 7, 8, 30, 31, 64, 90]
    parts = [(X[a:b], Y[a:b], w[a:b]) for a, b in itertools.pairwise(cuts)]
    streamed = SufficientStats.from_batches(parts)
    _close_stats(streamed, whole)
    merged = SufficientStats.compute(*parts[-1][:2], weights=parts[-1][2])
    for Xb, Yb, wb in reversed(parts[:-1]):
        merged = merged.merge(SufficientStats.compute(Xb, Yb, weights=wb))
    _close_stats(merged, whole)
    for s in (streamed, merged):
        assert (s.n, s.n_positive, s.total) == (whole.n, whole.n_positive, whole.total)
        assert s.log_weight_sum == pytest.approx(whole.log_weight_sum, rel=1e-14)


def test_a_batch_of_zero_weights_counts_its_rows_and_nothing_else() -> None:
    X, Y, w = _problem()
    w[10:20] = 0.0
    whole = SufficientStats.compute(X, Y, weights=w)
    parts = [(X[:10], Y[:10], w[:10]), (X[10:20], Y[10:20], w[10:20]), (X[20:], Y[20:], w[20:])]
    streamed = SufficientStats.from_batches(parts)
    _close_stats(streamed, whole)
    assert streamed.n == 60 and streamed.n_positive == whole.n_positive
    zero = SufficientStats.compute(X[10:20], Y[10:20], weights=w[10:20])
    assert zero.total == 0.0 and bool(torch.isfinite(zero.zbar).all())
    alone = SufficientStats.compute(X[:10], Y[:10], weights=w[:10])
    for merged in (alone.merge(zero), zero.merge(alone)):
        _close_stats(merged, alone, 0.0)
        assert merged.n == 20 and merged.total == alone.total
    with pytest.raises(ValidationError, match="all zero"):
        SufficientStats.from_batches([parts[1]])


def test_unweighted_rows_merge_with_weighted_ones_as_weight_one() -> None:
    X, Y, w = _problem(2)
    w[30:] = 1.0
    whole = SufficientStats.compute(X, Y, weights=w)
    merged = SufficientStats.compute(X[:30], Y[:30], weights=w[:30]).merge(
        SufficientStats.compute(X[30:], Y[30:])
    )
    _close_stats(merged, whole)
    assert merged.weighted and merged.total == whole.total
    assert merged.n_positive == whole.n_positive


def test_unit_weights_give_the_unweighted_statistics() -> None:
    X, Y, _ = _problem(3)
    plain = SufficientStats.compute(X, Y)
    ones = SufficientStats.compute(X, Y, weights=np.ones(60))
    _close_stats(ones, plain, 1e-14)
    assert not plain.weighted and plain.total == 60.0 and plain.n_positive == 60
    assert ones.weighted and ones.total == 60.0 and ones.log_weight_sum == 0.0


def test_the_group_gather_carries_the_weights_exactly() -> None:
    X, Y, w = _problem(4)
    for s in (SufficientStats.compute(X, Y, weights=w), SufficientStats.compute(X, Y)):
        back = collective._unflatten(collective._flatten(s, 3, 2), 3, 2, torch.device("cpu"))
        _close_stats(back, s, 0.0)
        assert (back.n, back.weight_sum, back.positive, back.log_weight_sum) == (
            s.n,
            s.weight_sum,
            s.positive,
            s.log_weight_sum,
        )


class _Gathered(collective.Local):
    """A stand-in group whose gather returns given per-rank tensors."""

    def __init__(self, parts: list[torch.Tensor]) -> None:
        self.parts = parts
        self.world = len(parts)

    def gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        return self.parts


def test_weighted_statistics_of_a_group_merge_to_the_whole() -> None:
    # torchrun's route: each process's statistics gathered and merged in rank order; shards
    # with no rows, and with rows of weight 0 only, take part.
    X, Y, w = _problem(16, n=90, offset=1e4)
    w[40:50] = 0.0
    whole = SufficientStats.compute(X, Y, weights=w)
    cuts = [(0, 40), (40, 50), (50, 50), (50, 90)]
    parts = [
        collective._flatten(
            SufficientStats.compute(X[a:b], Y[a:b], weights=w[a:b]) if b > a else None, 3, 2
        )
        for a, b in cuts
    ]
    merged = collective.merge_stats(_Gathered(parts), None, 3, 2)
    _close_stats(merged, whole)
    assert (merged.n, merged.n_positive, merged.total) == (90, whole.n_positive, whole.total)
    assert merged.log_weight_sum == pytest.approx(whole.log_weight_sum, rel=1e-14)


def test_standardized_weighted_statistics_keep_their_weights() -> None:
    X, Y, w = _problem(5)
    s = SufficientStats.compute(X, Y, weights=w)
    z = s.standardized(s.zbar, s.Szz.diagonal().sqrt())
    assert (z.total, z.n_positive, z.log_weight_sum) == (s.total, s.n_positive, s.log_weight_sum)
    torch.testing.assert_close(z.zbar, torch.zeros(3, dtype=torch.float64), rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- solvers

REPEATED_CONFIGS = [
    {"solver": "gd", "tol": 1e-12},
    {"solver": "gd", "tol": 1e-12, "fit_intercept": False},
    {"solver": "gd", "tol": 1e-12, "standardize": False},
    {"solver": "gd", "learning_rate": 0.1, "momentum": 0.5, "tol": 1e-12, "max_epochs": 3000},
    {"solver": "gd", "alpha": 0.1, "tol": 1e-12},
    {"solver": "gd", "alpha": 0.1, "l1_ratio": 0.5, "tol": 1e-14, "max_epochs": 5000},
    {"solver": "lstsq"},
    {"solver": "lstsq", "fit_intercept": False},
    {"solver": "lstsq", "alpha": 0.1},
    {"solver": "lstsq", "alpha": 0.1, "fit_intercept": False, "standardize": False},
]


@pytest.mark.parametrize("settings", REPEATED_CONFIGS, ids=lambda s: str(s))
def test_integer_weights_fit_as_repeated_rows(settings: dict[str, Any]) -> None:
    X, Y, w = _problem()
    config = SolverConfig(**settings)
    rep = _repeat(w)
    weighted = fit_linear(X, Y, config, sample_weight=torch.from_numpy(w))
    repeated = fit_linear(X[rep], Y[rep], config)
    torch.testing.assert_close(weighted.weight, repeated.weight, rtol=FIT_RTOL, atol=FIT_RTOL)
    torch.testing.assert_close(weighted.bias, repeated.bias, rtol=FIT_RTOL, atol=FIT_RTOL)
    assert weighted.loss_curve[-1] == pytest.approx(repeated.loss_curve[-1], rel=FIT_RTOL)
    if config.solver == "gd":
        assert weighted.n_iter == repeated.n_iter


def test_weighted_lstsq_is_the_weighted_normal_equations() -> None:
    # The closed form in float64: (X̃ᵀ W X̃) β = X̃ᵀ W y with X̃ = [X, 1].
    X, Y, w = _problem(6)
    Xa = np.c_[X.numpy(), np.ones(60)]
    beta = np.linalg.solve(Xa.T @ (w[:, None] * Xa), Xa.T @ (w[:, None] * Y.numpy()))
    r = least_squares(X, Y, sample_weight=w)
    np.testing.assert_allclose(r.weight.numpy(), beta[:3].T, rtol=FIT_RTOL)
    np.testing.assert_allclose(r.bias.numpy(), beta[3], rtol=FIT_RTOL)


def test_sgd_with_all_rows_in_a_batch_takes_the_weighted_gd_step() -> None:
    # One batch of every row: sgd's step is the gradient step of the weighted objective,
    # the one gd takes from the weighted statistics (same learning rate).
    X, Y, w = _problem(7)
    sw = torch.from_numpy(w)
    kw: dict[str, Any] = {"learning_rate": 0.05, "max_epochs": 20, "tol": None}
    sgd = fit_linear(X, Y, SolverConfig(solver="sgd", batch_size=60, **kw), sample_weight=sw)
    gd = fit_linear(X, Y, SolverConfig(solver="gd", **kw), sample_weight=sw)
    torch.testing.assert_close(sgd.weight, gd.weight, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sgd.bias, gd.bias, rtol=1e-12, atol=1e-12)


def test_sgd_rows_of_equal_weight_step_as_unweighted_and_zero_rows_are_left_out() -> None:
    X, Y, w = _problem(8)
    w = np.where(w > 0, 2.5, 0.0)
    keep = w > 0
    config = SolverConfig(solver="sgd", batch_size=4, max_epochs=5, tol=None)
    weighted = fit_linear(X, Y, config, sample_weight=torch.from_numpy(w), random_state=3)
    kept = fit_linear(X[keep], Y[keep], config, random_state=3)
    # The same permutations and steps; the weighted statistics' scaling differs by rounding.
    torch.testing.assert_close(weighted.weight, kept.weight, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(weighted.bias, kept.bias, rtol=1e-12, atol=1e-12)
    assert row_weights(torch.from_numpy(w[keep]), torch.float64) is None


def test_sgd_reaches_the_weighted_optimum() -> None:
    # A decreasing step: sgd's weighted fit approaches the weighted optimum (the fixed point
    # of its expected step), not the unweighted one, as slowly as unweighted sgd approaches
    # its own (measured: 4e-3 and 2e-3 on the coefficients after 400 epochs).
    X, Y, w = _problem(9)
    sw = torch.from_numpy(w)
    exact = fit_linear(X, Y, SolverConfig(solver="lstsq"), sample_weight=sw)
    unweighted = fit_linear(X, Y, SolverConfig(solver="lstsq"))
    config = SolverConfig(
        solver="sgd",
        batch_size=8,
        schedule="step",
        decay_every=10,
        decay_rate=0.7,
        max_epochs=400,
        tol=None,
    )
    fit = fit_linear(X, Y, config, sample_weight=sw, random_state=0)
    st = SufficientStats.compute(X, Y, weights=w)
    best = st.objective(exact.weight, exact.bias)
    assert st.objective(fit.weight, fit.bias) - best < 1e-3 * best  # measured 1.3e-4
    near = float((fit.weight - exact.weight).abs().max())
    far = float((unweighted.weight - exact.weight).abs().max())
    assert near < 0.1 * far


def test_sgd_row_weights_are_scaled_to_mean_one_and_bound_the_step() -> None:
    X, Y, w = _problem(10)
    sw = torch.from_numpy(w)
    scaled = row_weights(sw, torch.float64)
    assert scaled is not None
    assert float(scaled.mean()) == pytest.approx(1.0, rel=1e-15)
    config = SolverConfig(solver="sgd", batch_size=1)
    plain = init_state(X, Y, config, random_state=0)
    weighted = init_state(X, Y, config, random_state=0, sample_weight=sw)
    # The worst row is heavier (weight up to 3 / mean weight): the automatic step is smaller.
    assert weighted.learning_rate < plain.learning_rate


def test_weighted_rows_take_the_torch_epoch() -> None:
    n = 1 << 17
    X = torch.zeros(n, 2, dtype=torch.float64)
    Y = torch.zeros(n, 1, dtype=torch.float64)
    state = init_state(X[:10], Y[:10], SolverConfig(solver="sgd"), random_state=0)
    w = torch.ones(n, dtype=torch.float64)
    assert epoch_kernel(state, TensorData(X, Y, w), 1, EPOCH_KERNELS).name == "torch"
    expected = "numba" if EPOCH_KERNELS[0].available() else "torch"
    assert epoch_kernel(state, TensorData(X, Y), 1, EPOCH_KERNELS).name == expected


@pytest.mark.parametrize("solver", ["scratch", "builtin"])
def test_the_tutorial_loops_refuse_weights(solver: str) -> None:
    X, Y, w = _problem()
    with pytest.raises(ValidationError, match=rf"solver='{solver}' cannot honour sample_weight"):
        fit_linear(X, Y, SolverConfig(solver=solver), sample_weight=w)
    with pytest.raises(ValidationError, match="'gd' or 'sgd' or 'lstsq'"):
        GradientDescentRegressor(solver=solver).fit(X.numpy(), Y.numpy(), sample_weight=w)


def test_early_stopping_splits_every_row_and_weighs_both_parts() -> None:
    X, Y, w = _problem(11, n=200)
    config = SolverConfig(solver="gd", early_stopping=True, max_epochs=50)
    fit = fit_linear(X, Y, config, sample_weight=torch.from_numpy(w), random_state=5)
    assert fit.validation_scores is not None and 0.5 < max(fit.validation_scores) <= 1.0
    with pytest.raises(ValidationError, match="all of weight 0"):
        fit_linear(X, Y, config, sample_weight=np.r_[np.ones(1), np.zeros(199)], random_state=5)


# ----------------------------------------------------------------------------- bad weights


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (
            np.r_[np.ones(4), -1.0, np.ones(55)],
            r"sample_weight at row 4 \(counted from 0\) is "
            r"negative \(-1\)",
        ),
        (np.r_[np.ones(7), np.nan, np.ones(52)], r"row 7 \(counted from 0\) is not finite"),
        (np.r_[np.inf, np.ones(59)], r"row 0 \(counted from 0\) is not finite \(inf\)"),
        (np.zeros(60), "sample_weight are all zero"),
        (np.ones(59), r"one weight per row \(60,\), got shape \(59,\)"),
        (np.ones((60, 1)), r"got shape \(60, 1\)"),
        (["a"] * 60, "must hold numbers"),
    ],
)
def test_bad_weights_are_refused_in_one_line(weights: Any, message: str) -> None:
    X, Y, _ = _problem()
    calls = [
        lambda: fit_linear(X, Y, SolverConfig(solver="gd"), sample_weight=weights),
        lambda: GradientDescentRegressor().fit(X.numpy(), Y.numpy(), sample_weight=weights),
        lambda: least_squares(X, Y, sample_weight=weights),
    ]
    for call in calls:
        with pytest.raises(ValidationError, match=message) as info:
            call()
        assert "\n" not in str(info.value)
    with pytest.raises(ValidationError, match=message.replace("sample_weight", "weights")):
        ols(X, Y, weights=weights)


def test_prediction_weights_must_be_positive() -> None:
    X, Y, w = _problem()
    fit = ols(X, Y[:, 0], weights=w)
    with pytest.raises(ValidationError, match=r"weights at row 1 \(counted from 0\) is 0"):
        fit.predict(X[:2], interval="prediction", weights=[1.0, 0.0])
    with pytest.raises(ValidationError, match="negative"):
        fit.predict(X[:2], interval="prediction", weights=[1.0, -2.0])


# ----------------------------------------------------------------------------- against R
# R's data sets (datasets::mtcars, datasets::trees) and R's results, from the script at the end
# of this file (R 4.2.2, sandwich 3.0.2). Coefficients are in gradfit's order: the slopes,
# then the intercept.

R_WLS: dict[str, dict[str, Any]] = {
    "mtcars": {
        "estimate": [-3.6040095890346748, -0.030213923997970418, 35.935291612419974],
        "se": [0.58353355146746577, 0.0081406174732745785, 1.6615439557371066],
        "t": [-6.1761822948677736, -3.7115027327057062, 21.627650287757866],
        "p": [9.8341152289462906e-07, 0.00087033404698050418, 1.949397208844742e-19],
        "sigma": [6.1712041943895288],
        "r2": [0.81148103957944451],
        "r2_adj": [0.79847973196423383],
        "f": [62.415340333157076],
        "f_p": [3.1091954597581605e-11],
        "df_resid": 29,
        "nobs": 32,
        "loglik": [-73.615731597904073],
        "aic": [155.23146319580815],
        "bic": [161.09440680700706],
        "confint": [
            [-4.7974697056749056, -2.4105494723944441],
            [-0.046863356159575015, -0.013564491836365818],
            [32.537052662440018, 39.333530562399929],
        ],
        "residual_quantiles": [
            -10.814293331975861,
            -3.9314832204784893,
            -0.26193085905645708,
            2.5488731915070746,
            14.07804957591109,
        ],
        "HC0": [
            [0.37733671834038429, -0.0015127508327038731, -1.0053627430514567],
            [-0.0015127508327038726, 4.1037903115173439e-05, -0.0019977339405996071],
            [-1.005362743051458, -0.0019977339405996032, 3.8826661395645825],
        ],
        "HC1": [
            [0.4163715512721522, -0.0016692422981560099, -1.1093657854361025],
            [-0.0016692422981560056, 4.5283203437432678e-05, -0.0022043960723857267],
            [-1.1093657854361036, -0.0022043960723857319, 4.2843212574506113],
        ],
        "HC2": [
            [0.47851969875166228, -0.0023613315762568213, -1.2051283795952481],
            [-0.0023613315762568122, 5.9941114525395204e-05, -0.0019533022263567108],
            [-1.2051283795952492, -0.0019533022263566787, 4.5195390692340265],
        ],
        "HC3": [
            [0.61827727708152858, -0.0037610691609849534, -1.4500627999023492],
            [-0.0037610691609849512, 9.1680202873220803e-05, -0.0019014952337029279],
            [-1.450062799902351, -0.0019014952337029316, 5.2928944074710627],
        ],
        "confidence": [
            [23.903875240036246, 22.588112413978077, 25.219638066094415],
            [13.96577225678867, 12.485481613146989, 15.44606290043035],
        ],
        "prediction": [
            [23.903875240036246, 14.882637055659366, 32.925113424413126],
            [13.96577225678867, -3.9450425389972761, 31.876587052574614],
        ],
        "prediction_w1": [
            [23.903875240036246, 11.213948331496448, 36.593802148576046],
            [13.96577225678867, 1.2577325370168229, 26.673811976560515],
        ],
    },
    "mtcars_zero": {
        "estimate": [-3.7054252949103801, -0.028860140095568546, 36.168696660423159],
        "se": [0.6060237118894104, 0.0086958853299289769, 1.7320759867951117],
        "t": [-6.1143239484110499, -3.3188271234717694, 20.881703190947579],
        "p": [1.5662119734817562e-06, 0.0025940776734955807, 3.4029216715772347e-18],
        "sigma": [6.2977491829692118],
        "r2": [0.81000320884901789],
        "r2_adj": [0.79592937246746365],
        "f": [57.553831584303637],
        "f_p": [1.8326291664401325e-10],
        "df_resid": 27,
        "nobs": 30,
        "loglik": [-69.474517202932489],
        "aic": [146.94903440586498],
        "bic": [152.55382393251361],
        "confint": [
            [-4.9488832406757286, -2.4619673491450316],
            [-0.046702622983330055, -0.011017657207807039],
            [32.614770293854242, 39.722623026992075],
        ],
        "residual_quantiles": [
            -11.063505151250366,
            -3.5730859471475815,
            0.20607053153595162,
            2.4258057293486641,
            14.07038907053332,
        ],
        "HC0": [
            [0.37111303850046695, -0.001286216513392872, -1.0260272683960299],
            [-0.001286216513392874, 3.9438264160035444e-05, -0.002460253994915076],
            [-1.0260272683960279, -0.0024602539949150739, 4.0526625995836056],
        ],
        "HC1": [
            [0.41234782055607844, -0.001429129459325427, -1.1400302982178225],
            [-0.0014291294593254404, 4.3820293511150731e-05, -0.0027336155499055911],
            [-1.1400302982178199, -0.0027336155499056397, 4.5029584439818251],
        ],
        "HC2": [
            [0.47639231936252291, -0.0021843440445647503, -1.2350085289002193],
            [-0.0021843440445647733, 6.050364690201572e-05, -0.002508441107823682],
            [-1.2350085289002226, -0.0025084411078236963, 4.7367164447266843],
        ],
        "HC3": [
            [0.62811148782014448, -0.0038134939813034255, -1.4914300473946234],
            [-0.0038134939813034082, 9.918910574496407e-05, -0.0025876241889308408],
            [-1.4914300473946278, -0.002587624188930826, 5.5700329048977473],
        ],
        "confidence": [
            [24.019119413590353, 22.63509383297119, 25.403144994209516],
            [14.1319604568895, 12.522929620788659, 15.740991292990341],
        ],
        "prediction": [
            [24.019119413590353, 14.777720331928421, 33.260518495252285],
            [14.1319604568895, -4.2130852216161419, 32.477006135395143],
        ],
        "prediction_w1": [
            [24.019119413590353, 11.023297501711298, 37.014941325469408],
            [14.1319604568895, 1.1102539408835828, 27.153666972895415],
        ],
    },
    "mtcars_origin": {
        "estimate": [5.5467354098927952, -0.017718148278600021],
        "se": [1.635269644880265, 0.033042383560259118],
        "t": [3.391939321602786, -0.53622488360404097],
        "p": [0.0019648104324529142, 0.59575722446556911],
        "sigma": [25.111955045137254],
        "r2": [0.74694909174865476],
        "r2_adj": [0.7300790311985651],
        "f": [44.276610005687502],
        "f_p": [1.1171680487426635e-09],
        "df_resid": 30,
        "nobs": 32,
        "loglik": [-119.06855774376467],
        "aic": [244.13711548752934],
        "bic": [248.53432319592852],
        "confint": [
            [2.2070692555283236, 8.886401564257266],
            [-0.085199698114258052, 0.04976340155705801],
        ],
        "residual_quantiles": [
            -44.904366372272513,
            -3.3078534040663112,
            7.9398843064310238,
            19.472999336417431,
            49.746840321911428,
        ],
        "HC0": [
            [1.6601923022263101, -0.024314064704491836],
            [-0.024314064704491899, 0.00038396419903503399],
        ],
        "HC1": [
            [1.7708717890414025, -0.025935002351458042],
            [-0.025935002351458028, 0.00040956181230403601],
        ],
        "HC2": [
            [1.827613298262154, -0.02674882540343472],
            [-0.026748825403434678, 0.00042245280542135139],
        ],
        "HC3": [
            [2.0221793922518474, -0.029640394295429071],
            [-0.029640394295428994, 0.000469443304626006],
        ],
        "confidence": [
            [12.095023696871987, 9.2676032836262348, 14.922444110117739],
            [17.757404569921174, 11.921611148758048, 23.593197991084303],
        ],
        "prediction": [
            [12.095023696871987, -24.279324516655112, 48.46937191039909],
            [17.757404569921174, -55.005581157144917, 90.520390296987273],
        ],
        "prediction_w1": [
            [12.095023696871987, -39.268310596421358, 63.458357990165339],
            [17.757404569921174, -33.859010342254351, 69.373819482096707],
        ],
    },
    "trees": {
        "estimate": [4.3632608614947772, 0.23491997192176495, -45.648098960304388],
        "se": [0.27052211032798129, 0.11259929102090774, 7.2552283776826352],
        "t": [16.129036019291565, 2.0863361553328463, -6.2917521798100413],
        "p": [1.0490032711214982e-15, 0.04617590754446621, 8.3775191337461451e-07],
        "sigma": [0.2845397372597202],
        "r2": [0.93668078924172038],
        "r2_adj": [0.9321579884732718],
        "f": [207.10193466315968],
        "f_p": [1.665316946449455e-17],
        "df_resid": 28,
        "nobs": 31,
        "loglik": [-82.723446048190098],
        "aic": [173.4468920963802],
        "bic": [179.18284091432079],
        "confint": [
            [3.8091214386854193, 4.9174002843041347],
            [0.0042707800334563784, 0.46556916381007352],
            [-60.509760584505024, -30.786437336103752],
        ],
        "residual_quantiles": [
            -0.45132124613866914,
            -0.16712993007414417,
            -0.047981818139491074,
            0.2116050863101227,
            0.59839260467565247,
        ],
        "HC0": [
            [0.080047371535443348, -0.007737724506815865, -0.35802781825856439],
            [-0.007737724506815191, 0.010318883202085623, -0.68874880661785243],
            [-0.35802781825857377, -0.68874880661787075, 56.588869363247824],
        ],
        "HC1": [
            [0.088623875628525972, -0.0085667664182608998, -0.39638794164336705],
            [-0.0085667664182611219, 0.011424477830881451, -0.76254332161267535],
            [-0.3963879416433847, -0.76254332161265193, 62.651962509310358],
        ],
        "HC2": [
            [0.092406458339081052, -0.0085422570304139987, -0.44923250489272082],
            [-0.0085422570304133603, 0.01237124041205726, -0.83625155772979431],
            [-0.44923250489274835, -0.83625155772978454, 69.077389684406583],
        ],
        "HC3": [
            [0.10700850013949689, -0.0093884074197415519, -0.5660031625789006],
            [-0.0093884074197421313, 0.014911942389381094, -1.021050922463157],
            [-0.56600316257886751, -1.0210509224631643, 84.789885871234276],
        ],
        "confidence": [
            [14.428907689166927, 12.785549713369395, 16.072265664964458],
            [43.427512521196775, 41.05898582434618, 45.796039218047369],
        ],
        "prediction": [
            [14.428907689166927, 8.373132412598931, 20.484682965734923],
            [43.427512521196775, 33.912293626033033, 52.942731416360516],
        ],
        "prediction_w1": [
            [14.428907689166927, 12.685249659548129, 16.172565718785727],
            [43.427512521196775, 40.988324828268915, 45.866700214124634],
        ],
    },
}
MTCARS: dict[str, list[float]] = {
    "mpg": [
        21,
        21,
        22.800000000000001,
        21.399999999999999,
        18.699999999999999,
        18.100000000000001,
        14.300000000000001,
        24.399999999999999,
        22.800000000000001,
        19.199999999999999,
        17.800000000000001,
        16.399999999999999,
        17.300000000000001,
        15.199999999999999,
        10.4,
        10.4,
        14.699999999999999,
        32.399999999999999,
        30.399999999999999,
        33.899999999999999,
        21.5,
        15.5,
        15.199999999999999,
        13.300000000000001,
        19.199999999999999,
        27.300000000000001,
        26,
        30.399999999999999,
        15.800000000000001,
        19.699999999999999,
        15,
        21.399999999999999,
    ],
    "wt": [
        2.6200000000000001,
        2.875,
        2.3199999999999998,
        3.2149999999999999,
        3.4399999999999999,
        3.46,
        3.5699999999999998,
        3.1899999999999999,
        3.1499999999999999,
        3.4399999999999999,
        3.4399999999999999,
        4.0700000000000003,
        3.73,
        3.7799999999999998,
        5.25,
        5.4240000000000004,
        5.3449999999999998,
        2.2000000000000002,
        1.615,
        1.835,
        2.4649999999999999,
        3.52,
        3.4350000000000001,
        3.8399999999999999,
        3.8450000000000002,
        1.9350000000000001,
        2.1400000000000001,
        1.5129999999999999,
        3.1699999999999999,
        2.77,
        3.5699999999999998,
        2.7799999999999998,
    ],
    "hp": [
        110,
        110,
        93,
        110,
        175,
        105,
        245,
        62,
        95,
        123,
        123,
        180,
        180,
        180,
        205,
        215,
        230,
        66,
        52,
        65,
        97,
        150,
        150,
        245,
        175,
        66,
        91,
        113,
        264,
        175,
        335,
        109,
    ],
    "cyl": [
        6,
        6,
        4,
        6,
        8,
        6,
        8,
        4,
        4,
        6,
        6,
        8,
        8,
        8,
        8,
        8,
        8,
        4,
        4,
        4,
        4,
        8,
        8,
        8,
        8,
        4,
        4,
        4,
        8,
        6,
        8,
        4,
    ],
}
TREES: dict[str, list[float]] = {
    "Girth": [
        8.3000000000000007,
        8.5999999999999996,
        8.8000000000000007,
        10.5,
        10.699999999999999,
        10.800000000000001,
        11,
        11,
        11.1,
        11.199999999999999,
        11.300000000000001,
        11.4,
        11.4,
        11.699999999999999,
        12,
        12.9,
        12.9,
        13.300000000000001,
        13.699999999999999,
        13.800000000000001,
        14,
        14.199999999999999,
        14.5,
        16,
        16.300000000000001,
        17.300000000000001,
        17.5,
        17.899999999999999,
        18,
        18,
        20.600000000000001,
    ],
    "Height": [
        70,
        65,
        63,
        72,
        81,
        83,
        66,
        75,
        80,
        75,
        79,
        76,
        76,
        69,
        75,
        74,
        85,
        86,
        71,
        64,
        78,
        80,
        74,
        72,
        77,
        81,
        82,
        80,
        80,
        80,
        87,
    ],
    "Volume": [
        10.300000000000001,
        10.300000000000001,
        10.199999999999999,
        16.399999999999999,
        18.800000000000001,
        19.699999999999999,
        15.6,
        18.199999999999999,
        22.600000000000001,
        19.899999999999999,
        24.199999999999999,
        21,
        21.399999999999999,
        21.300000000000001,
        19.100000000000001,
        22.199999999999999,
        33.799999999999997,
        27.399999999999999,
        25.699999999999999,
        24.899999999999999,
        34.5,
        31.699999999999999,
        36.299999999999997,
        38.299999999999997,
        42.600000000000001,
        55.399999999999999,
        55.700000000000003,
        58.299999999999997,
        51.5,
        51,
        77,
    ],
}


def _case(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool, np.ndarray, np.ndarray]:
    """X, y, weights, fit_intercept, new rows and their prediction weights of an R case."""
    if name == "trees":
        X = np.c_[TREES["Girth"], TREES["Height"]]
        y, w = np.array(TREES["Volume"]), 1.0 / np.array(TREES["Girth"]) ** 2
        return X, y, w, True, np.array([[10.0, 70.0], [16.0, 82.0]]), np.array([0.01, 0.004])
    X = np.c_[MTCARS["wt"], MTCARS["hp"]]
    w = np.array(MTCARS["cyl"])
    if name == "mtcars_zero":
        w[[2, 6]] = 0.0  # R's rows 3 and 7
    new = np.array([[2.5, 100.0], [4.0, 250.0]])
    return X, np.array(MTCARS["mpg"]), w, name != "mtcars_origin", new, np.array([2.0, 0.5])


def _close(actual: Any, expected: Any, rtol: float = R_RTOL) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=rtol, atol=0)


@pytest.mark.parametrize("name", list(R_WLS))
def test_weighted_least_squares_matches_r(name: str) -> None:
    X, y, w, intercept, _, _ = _case(name)
    ref = R_WLS[name]
    fit = ols(X, y, weights=w, fit_intercept=intercept)
    est = np.r_[fit.weight[0].numpy(), fit.bias.numpy() if intercept else []]
    se = np.r_[fit.weight_se[0].numpy(), fit.bias_se.numpy() if intercept else []]
    t = np.r_[fit.weight_t[0].numpy(), fit.bias_t.numpy() if intercept else []]
    p = np.r_[fit.weight_p[0].numpy(), fit.bias_p.numpy() if intercept else []]
    _close(est, ref["estimate"])
    _close(se, ref["se"])
    _close(t, ref["t"])
    _close(p, ref["p"], R_P_RTOL)
    for key, value in [
        ("sigma", fit.sigma),
        ("r2", fit.r2),
        ("r2_adj", fit.r2_adj),
        ("f", fit.f_statistic),
        ("loglik", fit.log_likelihood),
        ("aic", fit.aic),
        ("bic", fit.bic),
    ]:
        _close(value.numpy(), ref[key])
    _close(fit.f_pvalue.numpy(), ref["f_p"], R_P_RTOL)
    assert (fit.df_resid, fit.n) == (ref["df_resid"], ref["nobs"])
    _close(fit.conf_int()[0].numpy(), ref["confint"])
    assert fit.residual_quantiles is not None
    _close(fit.residual_quantiles[0].numpy(), ref["residual_quantiles"])
    assert "Weighted Residuals:" in fit.summary()


@pytest.mark.parametrize("cov_type", ["HC0", "HC1", "HC2", "HC3"])
@pytest.mark.parametrize("name", list(R_WLS))
def test_weighted_hc_covariances_match_sandwich(name: str, cov_type: str) -> None:
    X, y, w, intercept, _, _ = _case(name)
    fit = ols(X, y, weights=w, fit_intercept=intercept, cov_type=cov_type)
    _close(fit.covariance[0].numpy(), R_WLS[name][cov_type])


@pytest.mark.parametrize("name", list(R_WLS))
def test_weighted_intervals_match_predict_lm(name: str) -> None:
    X, y, w, intercept, new, new_w = _case(name)
    ref = R_WLS[name]
    fit = ols(X, y, weights=w, fit_intercept=intercept)
    for kind, weights, key in [
        ("confidence", None, "confidence"),
        ("prediction", new_w, "prediction"),
        ("prediction", None, "prediction_w1"),  # R's default: weight 1
    ]:
        if kind == "prediction" and weights is None:  # R warns too
            with pytest.warns(ConstantVarianceWarning, match="Assuming constant prediction"):
                out = fit.predict(new, interval=kind, weights=weights)
        else:  # no warning (they are errors in the tests)
            out = fit.predict(new, interval=kind, weights=weights)
        assert isinstance(out, PredictionInterval)
        got = np.c_[out.mean[:, 0].numpy(), out.lower[:, 0].numpy(), out.upper[:, 0].numpy()]
        _close(got, ref[key])


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0", "HC1", "HC2", "HC3"])
def test_zero_weights_are_the_rows_left_out(cov_type: str) -> None:
    X, y, w, _, new, new_w = _case("mtcars_zero")
    keep = w > 0
    with_zeros = ols(X, y, weights=w, cov_type=cov_type)
    without = ols(X[keep], y[keep], weights=w[keep], cov_type=cov_type)
    for name in (
        "weight",
        "bias",
        "covariance",
        "sigma",
        "r2",
        "r2_adj",
        "f_statistic",
        "log_likelihood",
        "aic",
        "bic",
    ):
        _close(getattr(with_zeros, name).numpy(), getattr(without, name).numpy(), 1e-12)
    assert (with_zeros.n, with_zeros.df_resid) == (without.n, without.df_resid) == (30, 27)
    a = with_zeros.predict(new, interval="prediction", weights=new_w)
    b = without.predict(new, interval="prediction", weights=new_w)
    assert isinstance(a, PredictionInterval) and isinstance(b, PredictionInterval)
    _close(a.lower.numpy(), b.lower.numpy(), 1e-12)


def test_weighted_fits_of_several_targets_are_each_targets_own() -> None:
    X, y, w, _, _, _ = _case("trees")
    Y = np.c_[y, np.log(y)]
    both = ols(X, Y, weights=w, cov_type="HC3")
    for j in range(2):
        alone = ols(X, Y[:, j], weights=w, cov_type="HC3")
        for name in ("weight", "covariance", "sigma", "r2", "f_statistic", "log_likelihood"):
            _close(getattr(both, name)[j].numpy(), getattr(alone, name)[0].numpy(), 1e-13)
    _close(both.covariance[0].numpy(), R_WLS["trees"]["HC3"])


def test_a_collinear_column_is_aliased_as_r_does_weighted() -> None:
    # lm(mpg ~ wt + hp + I(2 * wt), mtcars, weights = cyl): the last column's coefficient is
    # NA and the others are those of lm(mpg ~ wt + hp, weights = cyl).
    X, y, w, _, _, _ = _case("mtcars")
    with pytest.warns(gradfit.RankDeficiencyWarning, match="x2"):
        fit = ols(np.c_[X, 2 * X[:, 0]], y, weights=w)
    ref = R_WLS["mtcars"]
    assert fit.aliased.tolist() == [False, False, True]
    _close(fit.weight[0, :2].numpy(), ref["estimate"][:2])
    _close(fit.weight_se[0, :2].numpy(), ref["se"][:2])
    _close(fit.sigma.numpy(), ref["sigma"])
    assert fit.df_resid == ref["df_resid"] and bool(torch.isnan(fit.weight_se[0, 2]))


def test_statistics_route_matches_rows_in_memory_weighted() -> None:
    X, y, w, _, new, new_w = _case("mtcars_zero")
    memory = ols(X, y, weights=w)
    st = SufficientStats.compute(torch.from_numpy(X), torch.from_numpy(y[:, None]), weights=w)
    fit = ols_from_stats(st, memory.weight, memory.bias)
    for name in (
        "weight_se",
        "bias_se",
        "sigma",
        "r2",
        "r2_adj",
        "f_statistic",
        "log_likelihood",
        "aic",
        "bic",
    ):
        _close(getattr(fit, name).numpy(), getattr(memory, name).numpy(), 1e-9)
    assert (fit.n, fit.df_resid) == (memory.n, memory.df_resid)

    def batches() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        return [(X[a : a + 9], y[a : a + 9, None], w[a : a + 9]) for a in range(0, 32, 9)]

    for cov_type in ("HC0", "HC1", "HC2", "HC3"):
        robust = ols_from_stats(st, memory.weight, memory.bias, cov_type=cov_type, batches=batches)
        _close(robust.covariance[0].numpy(), R_WLS["mtcars_zero"][cov_type], 1e-8)
    with pytest.raises(ValidationError, match=r"\(X, Y, weights\) batches"):
        ols_from_stats(
            st, memory.weight, memory.bias, cov_type="HC0", batches=lambda: [(X, y[:, None])]
        )
    interval = fit.predict(new, interval="prediction", weights=new_w)
    assert isinstance(interval, PredictionInterval)
    _close(interval.lower[:, 0].numpy(), np.array(R_WLS["mtcars_zero"]["prediction"])[:, 1], 1e-9)


def test_hc_of_a_fit_without_its_zero_rows_takes_a_pass_over_every_row() -> None:
    # A solver leaves rows of weight 0 out of its statistics; the second pass for the HC types
    # may still give them (weight 0: they count for nothing, the check counts positive rows).
    X, y, w, _, _, _ = _case("mtcars_zero")
    keep = w > 0
    st = SufficientStats.compute(torch.from_numpy(X[keep]), torch.from_numpy(y[keep, None]),
                                 weights=w[keep])  # fmt: skip
    memory = ols(X, y, weights=w)
    fit = ols_from_stats(
        st, memory.weight, memory.bias, cov_type="HC2", batches=lambda: [(X, y[:, None], w)]
    )
    _close(fit.covariance[0].numpy(), R_WLS["mtcars_zero"]["HC2"])
    with pytest.raises(ValidationError, match="gave 29 rows of positive weight where the"):
        ols_from_stats(
            st,
            memory.weight,
            memory.bias,
            cov_type="HC2",
            batches=lambda: [(X[1:], y[1:, None], w[1:])],
        )


def test_a_gradient_descent_fit_gives_r_weighted_inference() -> None:
    X, y, w, _, _, _ = _case("trees")
    config = SolverConfig(solver="gd", tol=1e-13, max_epochs=500)
    result = fit_linear(torch.from_numpy(X), torch.from_numpy(y[:, None]), config, sample_weight=w)
    assert result.stats is not None
    fit = ols_from_stats(result.stats, result.weight, result.bias)
    _close(fit.weight_se[0].numpy(), R_WLS["trees"]["se"][:2], 1e-7)
    _close(fit.sigma.numpy(), R_WLS["trees"]["sigma"], 1e-7)


# ----------------------------------------------------------------------------- estimator


def test_estimator_score_and_metrics_are_weighted_as_scikit_learns() -> None:
    X, Y, w = _problem(12)
    reg = GradientDescentRegressor(tol=1e-12).fit(X.numpy(), Y.numpy(), sample_weight=w)
    pred = reg.predict(X.numpy())
    assert reg.score(X.numpy(), Y.numpy(), sample_weight=w) == pytest.approx(
        sk_r2_score(Y.numpy(), pred, sample_weight=w), rel=1e-12
    )
    m = regression_metrics(Y, torch.from_numpy(pred), sample_weight=w)
    for j in range(2):
        yj, pj = Y.numpy()[:, j], pred[:, j]
        assert m.mse[j] == pytest.approx(mean_squared_error(yj, pj, sample_weight=w), rel=1e-12)
        assert m.mae[j] == pytest.approx(mean_absolute_error(yj, pj, sample_weight=w), rel=1e-12)
        assert m.r2[j] == pytest.approx(sk_r2_score(yj, pj, sample_weight=w), rel=1e-12)
    torch.testing.assert_close(
        r2_score(Y, torch.from_numpy(pred), sample_weight=w), torch.tensor(m.r2).double()
    )


def test_weighted_metrics_accumulate_over_batches_as_over_all_rows() -> None:
    _, Y, w = _problem(17, n=90)
    Y = Y + 1e4  # a large offset of the targets: the merge must not cancel it
    pred = Y + torch.from_numpy(np.random.default_rng(0).normal(size=(90, 2)))
    w[30:40] = 0.0
    acc = MetricsAccumulator()
    for a, b in [(0, 30), (30, 40), (40, 41), (41, 90)]:
        acc.update(Y[a:b], pred[a:b], sample_weight=w[a:b])
    got, whole = acc.result(), regression_metrics(Y, pred, sample_weight=w)
    for name in ("mse", "mae", "r2"):
        np.testing.assert_allclose(getattr(got, name), getattr(whole, name), rtol=1e-12)
    assert acc.n == 90 and acc.total == w.sum()
    zero = MetricsAccumulator()
    zero.update(Y[30:40], pred[30:40], sample_weight=w[30:40])  # weight 0 only: counted
    zero.update(Y[:30], pred[:30])  # no weights: weight 1 each
    alone = regression_metrics(Y[:30], pred[:30])
    np.testing.assert_allclose(zero.result().r2, alone.r2, rtol=1e-12)
    empty = MetricsAccumulator()
    empty.update(Y[30:40], pred[30:40], sample_weight=w[30:40])
    with pytest.raises(ValidationError, match="all zero"):
        empty.result()


@pytest.mark.parametrize("solver", ["gd", "sgd"])
def test_partial_fit_with_weights_continues_as_fit(solver: str) -> None:
    X, Y, w = _problem(13)
    Xn, yn = X.numpy(), Y.numpy()[:, 0]
    once = GradientDescentRegressor(solver=solver, random_state=0)
    once.partial_fit(Xn, yn, sample_weight=w)
    fit = GradientDescentRegressor(solver=solver, random_state=0, max_epochs=1, tol=None)
    fit.fit(Xn, yn, sample_weight=w)
    np.testing.assert_array_equal(once.coef_, fit.coef_)
    assert once.intercept_ == fit.intercept_
    once.partial_fit(Xn, yn, sample_weight=w)
    assert not np.array_equal(once.coef_, fit.coef_)  # a second epoch


def test_estimator_integer_weights_equal_repeated_rows() -> None:
    X, Y, w = _problem(14)
    rep = _repeat(w)
    for solver in ("gd", "lstsq"):
        a = GradientDescentRegressor(solver=solver, tol=1e-12).fit(X, Y, sample_weight=w)
        b = GradientDescentRegressor(solver=solver, tol=1e-12).fit(X[rep], Y[rep])
        np.testing.assert_allclose(a.coef_, b.coef_, rtol=FIT_RTOL, atol=FIT_RTOL)
        np.testing.assert_allclose(a.intercept_, b.intercept_, rtol=FIT_RTOL, atol=FIT_RTOL)


def test_the_weights_are_not_modified() -> None:
    X, Y, w = _problem(15)
    original = w.copy()
    tensor = torch.from_numpy(w.copy())
    fit_linear(X, Y, SolverConfig(solver="sgd", max_epochs=2, tol=None), sample_weight=tensor)
    ols(X, Y, weights=w)
    np.testing.assert_array_equal(w, original)
    np.testing.assert_array_equal(tensor.numpy(), original)


def test_ols_weights_accept_lists_and_tensors() -> None:
    X, y, w, _, _, _ = _case("trees")
    a = ols(X, y, weights=list(w))
    b = ols(torch.from_numpy(X), torch.from_numpy(y), weights=torch.from_numpy(w))
    _close(a.weight.numpy(), b.weight.numpy(), 0.0)
    assert gradfit.ols is ols and re.search("Weighted", a.summary())


# The R script that printed R_WLS, MTCARS and TREES (R 4.2.2, sandwich 3.0.2; Debian's
# r-base-core and r-cran-sandwich):
#
# library(sandwich)
# num <- function(x) paste0("[", paste(sprintf("%.17g", x), collapse = ", "), "]")
# mat <- function(m) paste0("[", paste(apply(m, 1, num), collapse = ", "), "]")
# put <- function(key, value) cat(sprintf("        \"%s\": %s,\n", key, value))
# # coefficient order in gradfit: slopes first, then the intercept
# ord <- function(v, int) if (int) c(v[-1], v[1]) else v
# ordm <- function(m, int) {
#   i <- if (int) c(2:ncol(m), 1) else seq_len(ncol(m))
#   m[i, i, drop = FALSE]
# }
# report <- function(tag, f, new, pw, hc = f) {
#   s <- summary(f)
#   int <- attr(terms(f), "intercept") == 1
#   cf <- s$coefficients
#   cat(sprintf("    \"%s\": {\n", tag))
#   put("estimate", num(ord(cf[, 1], int)))
#   put("se", num(ord(cf[, 2], int)))
#   put("t", num(ord(cf[, 3], int)))
#   put("p", num(ord(cf[, 4], int)))
#   put("sigma", num(s$sigma))
#   put("r2", num(s$r.squared))
#   put("r2_adj", num(s$adj.r.squared))
#   fs <- s$fstatistic
#   put("f", num(fs[1]))
#   put("f_p", num(pf(fs[1], fs[2], fs[3], lower.tail = FALSE)))
#   put("df_resid", f$df.residual)
#   put("nobs", nobs(f))
#   put("loglik", num(as.numeric(logLik(f))))
#   put("aic", num(AIC(f)))
#   put("bic", num(BIC(f)))
#   ci <- confint(f)
#   put("confint", mat(ci[if (int) c(2:nrow(ci), 1) else seq_len(nrow(ci)), , drop = FALSE]))
#   put("residual_quantiles", num(quantile(s$residuals)))
#   for (type in c("HC0", "HC1", "HC2", "HC3"))
#     put(type, mat(ordm(vcovHC(hc, type = type), int)))
#   put("confidence", mat(predict(f, new, interval = "confidence")))
#   put("prediction", mat(predict(f, new, interval = "prediction", weights = pw)))
#   # without weights= predict.lm assumes weight 1 (and warns that it does)
#   put("prediction_w1", mat(suppressWarnings(predict(f, new, interval = "prediction"))))
#   cat("    },\n")
# }
# cat("R_WLS: dict[str, dict[str, Any]] = {\n")
# m <- mtcars
# new_m <- data.frame(wt = c(2.5, 4.0), hp = c(100, 250))
# report("mtcars", lm(mpg ~ wt + hp, m, weights = cyl), new_m, c(2, 0.5))
# wz <- m$cyl
# wz[c(3, 7)] <- 0
# # sandwich counts rows of weight 0 in n (HC0/HC1 scaled by (30/32)^2) and misaligns the
# # leverages of HC2/HC3 (a recycling warning): the HC references are the fit without them
# report("mtcars_zero", lm(mpg ~ wt + hp, m, weights = wz), new_m, c(2, 0.5),
#        hc = lm(mpg ~ wt + hp, m[wz > 0, ], weights = wz[wz > 0]))
# report("mtcars_origin", lm(mpg ~ 0 + wt + hp, m, weights = cyl), new_m, c(2, 0.5))
# new_t <- data.frame(Girth = c(10, 16), Height = c(70, 82))
# report("trees", lm(Volume ~ Girth + Height, trees, weights = 1 / Girth^2), new_t,
#        c(0.01, 0.004))
# cat("}\n")
# cat("MTCARS: dict[str, list[float]] = {\n")
# for (v in c("mpg", "wt", "hp", "cyl")) put(v, num(m[[v]]))
# cat("}\n")
# cat("TREES: dict[str, list[float]] = {\n")
# for (v in c("Girth", "Height", "Volume")) put(v, num(trees[[v]]))
# cat("}\n")
