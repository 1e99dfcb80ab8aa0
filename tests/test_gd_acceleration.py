"""gd's default steps, conjugate gradients on the statistics: certified convergence on
ill-conditioned data in a few epochs where plain gradient descent crawls, a loss that never
rises, exact resumption; and the explicit settings that keep plain gradient descent's iterates.

Tolerances: the optimum is the closed form (float64); a fit is certified when its loss is
within ``tol`` of the optimum computed from the statistics (``converged``), which the tests
check against the closed form with a little room (``1e-9``) for the two computations' rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gradfit
from gradfit.estimator import GradientDescentRegressor
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.engine import (
    init_state,
    method_name,
    run_epochs,
    train,
    uses_conjugate_gradient,
)
from gradfit.solvers.kernels import sgd_update
from gradfit.solvers.state import TrainState
from gradfit.solvers.stats import SufficientStats
from gradfit.training import fit_linear

pytestmark = pytest.mark.usefixtures("one_thread")


def _correlated(
    seed: int, n: int = 2000, d: int = 10, k: int = 2, condition: float = 100.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features mixed by U diag(1..condition) V^T, shifted: an ill-conditioned design."""
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.normal(size=(d, d)))
    V, _ = np.linalg.qr(rng.normal(size=(d, d)))
    X = rng.normal(size=(n, d)) @ (U @ np.diag(np.linspace(1, condition, d)) @ V.T)
    X += rng.normal(size=d) * 5
    Y = X @ rng.normal(size=(k, d)).T + rng.normal(size=k) + rng.normal(size=(n, k))
    return torch.from_numpy(X), torch.from_numpy(Y)


def _optimum(X: torch.Tensor, Y: torch.Tensor, fit_intercept: bool = True) -> float:
    exact = gradfit.least_squares(X, Y, fit_intercept=fit_intercept)
    return float(((X @ exact.weight.T + exact.bias - Y) ** 2).mean())


@pytest.mark.parametrize(
    "settings",
    [{}, {"standardize": False}, {"fit_intercept": False}, {"tol": 1e-12}],
    ids=["defaults", "raw features", "no intercept", "tol=1e-12"],
)
def test_conjugate_gradient_is_certified_at_the_optimum_in_a_few_epochs(settings: dict) -> None:
    X, Y = _correlated(1)
    config = SolverConfig(solver="gd", **settings)
    result = train(X, Y, config, random_state=0)
    optimum = _optimum(X, Y, config.fit_intercept)
    loss = result.loss_curve[-1]
    assert result.converged and result.n_iter <= 6 * X.shape[1]
    assert loss - optimum <= config.tol * loss + 1e-9 * optimum  # type: ignore[operator]
    assert result.method == "conjugate gradient"
    # Monotone: each step minimises the loss along a line (up to the loss's rounding).
    curve = np.asarray(result.loss_curve)
    assert np.all(np.diff(curve) <= 1e-13 * curve[0])


def test_plain_gradient_descent_crawls_where_conjugate_gradient_arrives() -> None:
    """The issue's case: condition 100 in the features (1e4 in the Hessian). Plain gd with its
    automatic step is far from the optimum after 20x the epochs conjugate gradients need."""
    X, Y = _correlated(2)
    cg = train(X, Y, SolverConfig(solver="gd", tol=1e-10), random_state=0)
    step = init_state(X, Y, SolverConfig(solver="gd")).learning_rate
    plain_config = SolverConfig(
        solver="gd", learning_rate=step, tol=1e-10, max_epochs=20 * cg.n_iter
    )
    plain = train(X, Y, plain_config, random_state=0)
    optimum = _optimum(X, Y)
    assert cg.converged and not plain.converged
    assert cg.loss_curve[-1] / optimum - 1 < 1e-9 < plain.loss_curve[-1] / optimum - 1
    assert plain.method == "gradient descent"


def test_ridge_reaches_the_closed_form_ridge() -> None:
    X, Y = _correlated(3)
    alpha = 0.05
    gd = train(X, Y, SolverConfig(solver="gd", alpha=alpha, tol=1e-12), random_state=0)
    exact = fit_linear(X, Y, SolverConfig(solver="lstsq", alpha=alpha))
    assert gd.converged
    np.testing.assert_allclose(gd.weight.numpy(), exact.weight.numpy(), rtol=1e-6, atol=1e-9)


def test_a_rank_deficient_design_is_handled() -> None:
    """A duplicated column: the Hessian is singular; conjugate gradients still reach the
    optimal loss (directions without curvature restart the method, never divide by zero)."""
    X, Y = _correlated(4, d=5)
    X = torch.cat([X, X[:, :1]], 1)
    result = train(X, Y, SolverConfig(solver="gd", tol=1e-10), random_state=0)
    assert result.converged and torch.isfinite(result.weight).all()
    with pytest.warns(gradfit.RankDeficiencyWarning):
        optimum = _optimum(X, Y)
    assert result.loss_curve[-1] <= optimum * (1 + 1e-9)


def test_a_resumed_state_continues_bitwise() -> None:
    X, Y = _correlated(5, d=8)
    config = SolverConfig(solver="gd", tol=None)
    whole = init_state(X, Y, config)
    run_epochs(whole, X, Y, 6, stop_early=False)
    first = init_state(X, Y, config)
    run_epochs(first, X, Y, 3, stop_early=False)
    resumed = TrainState.from_state_dict(first.state_dict())
    run_epochs(resumed, X, Y, 3, stop_early=False)
    assert torch.equal(resumed.weight, whole.weight) and torch.equal(resumed.bias, whole.bias)
    assert resumed.loss_curve == whole.loss_curve


def test_partial_fit_continues_the_conjugate_directions() -> None:
    X, Y = (t.numpy() for t in _correlated(6, d=6))
    est = GradientDescentRegressor(random_state=0)
    for _ in range(4):
        est.partial_fit(X, Y)
    whole = GradientDescentRegressor(max_epochs=4, tol=None, random_state=0).fit(X, Y)
    np.testing.assert_array_equal(est.coef_, whole.coef_)
    np.testing.assert_array_equal(est.loss_curve_, whole.loss_curve_)


# ----------------------------------------------------------------------------- plain settings


@pytest.mark.parametrize(
    ("settings", "name"),
    [
        ({}, "conjugate gradient"),
        ({"alpha": 0.1}, "conjugate gradient"),
        ({"learning_rate": 0.1}, "gradient descent"),
        ({"momentum": 0.5}, "gradient descent with heavy-ball momentum"),
        ({"momentum": 0.5, "nesterov": True}, "gradient descent with Nesterov momentum"),
        ({"schedule": "invscaling"}, "gradient descent"),
        ({"alpha": 0.1, "l1_ratio": 0.5}, "proximal gradient descent"),
    ],
)
def test_which_settings_take_conjugate_gradients(settings: dict, name: str) -> None:
    config = SolverConfig(solver="gd", **settings)
    assert uses_conjugate_gradient(config) is (name == "conjugate gradient")
    assert method_name(config) == name
    assert method_name(config, from_stats=False) == name.replace(
        "conjugate gradient", "gradient descent"
    )
    assert method_name(SolverConfig(solver="sgd")) == "mini-batch SGD"


def test_an_explicit_step_gives_exactly_the_plain_iterates() -> None:
    """momentum=0 and a fixed learning_rate: p <- p - lr * grad from the statistics, the
    tutorial's gradient descent, bit for bit."""
    X, Y = _correlated(7, d=4)
    config = SolverConfig(solver="gd", learning_rate=0.05, tol=None)
    state = init_state(X, Y, config)
    st = SufficientStats.compute(X, Y).standardized(state.scaler.mean, state.scaler.scale)
    W, b = state.weight.clone(), state.bias.clone()
    run_epochs(state, X, Y, 25, stop_early=False)
    for _ in range(25):
        gW, gb = st.gradient(W, b)
        sgd_update(W, gW, None, lr=0.05)
        sgd_update(b, gb, None, lr=0.05)
    assert torch.equal(state.weight, W) and torch.equal(state.bias, b)


def test_the_model_file_names_the_method(tmp_path: object) -> None:
    X, Y = _correlated(8, d=3)
    cg = fit_linear(X, Y, SolverConfig(solver="gd"))
    plain = fit_linear(X, Y, SolverConfig(solver="gd", learning_rate=0.01, max_epochs=5))
    assert (cg.method, plain.method) == ("conjugate gradient", "gradient descent")
    from gradfit.fitting import model_file_settings

    settings = model_file_settings(SolverConfig(solver="gd"), cg, 0, X.dtype, "cpu", 1, "x")
    assert settings["method"] == "conjugate gradient"
