"""The engine's pure maths: the update kernel against ``torch.optim.SGD`` and the proximal map
against a hand computation, and the sufficient statistics' objective, gradient, R² and optimum
against autograd, direct evaluation on the data and closed forms.

Tolerances: the kernel and ``torch.optim.SGD`` perform the same float64 operations, possibly
fused differently (``add(x, alpha=a)`` may use an FMA), so they agree to a couple of ulps per
step: ``rtol=1e-14`` over a few steps (values are O(1)). The statistics evaluate the same
quantities as the data but through centred moments (a different summation), so they agree to
a few hundred ulps: ``rtol=1e-10`` is loose enough for rounding and tight enough to catch any
wrong factor or sign.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import gradfit
from gradfit.errors import RankDeficiencyWarning
from gradfit.solvers.kernels import sgd_update, soft_threshold_
from gradfit.solvers.stats import SufficientStats

pytestmark = pytest.mark.usefixtures("one_thread")

KERNEL_RTOL = 1e-14  # same float64 operations, fused differently: a few ulps (see module doc)
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


# ----------------------------------------------------------------------------- sgd_update


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize(("momentum", "nesterov"), [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_update_equals_torch_optim_sgd_step_by_step(
    momentum: float, nesterov: bool, weight_decay: float
) -> None:
    rng = np.random.default_rng(11)
    lr = 0.07
    start = torch.from_numpy(rng.normal(size=(3, 5)))
    ours = start.clone()
    ref = start.clone().requires_grad_(True)
    opt = torch.optim.SGD(
        [ref],
        lr=lr,
        momentum=momentum,
        nesterov=nesterov,
        weight_decay=weight_decay,
        dampening=0.0,
        foreach=False,
    )
    velocity = None
    for _ in range(6):
        grad = torch.from_numpy(rng.normal(size=(3, 5)))
        before = grad.clone()
        velocity = sgd_update(
            ours,
            grad,
            velocity,
            lr=lr,
            momentum=momentum,
            nesterov=nesterov,
            weight_decay=weight_decay,
        )
        ref.grad = grad.clone()
        opt.step()
        assert torch.equal(grad, before)  # the gradient is never modified
        np.testing.assert_allclose(ours.numpy(), ref.detach().numpy(), rtol=KERNEL_RTOL)
        buffer = opt.state[ref].get("momentum_buffer")
        if momentum:
            assert velocity is not None and buffer is not None
            np.testing.assert_allclose(velocity.numpy(), buffer.numpy(), rtol=KERNEL_RTOL)
        else:
            assert velocity is None and buffer is None


def test_sgd_update_first_velocity_is_a_copy_of_the_gradient() -> None:
    # The velocity is created from grad on the first step and then updated in place: it must
    # not alias grad, or the next step would modify the caller's gradient.
    param = torch.tensor([1.0, -2.0], dtype=torch.float64)
    grad = torch.tensor([0.5, 0.25], dtype=torch.float64)
    velocity = sgd_update(param, grad, None, lr=0.1, momentum=0.9)
    assert velocity is not None and velocity.data_ptr() != grad.data_ptr()
    assert torch.equal(velocity, grad)
    # By hand: p = p - lr * g = [1 - 0.05, -2 - 0.025]
    assert param.tolist() == [1.0 - 0.1 * 0.5, -2.0 - 0.1 * 0.25]
    again = sgd_update(param, grad, velocity, lr=0.1, momentum=0.9)
    assert again is velocity  # updated in place
    assert grad.tolist() == [0.5, 0.25]
    assert velocity.tolist() == [0.9 * 0.5 + 0.5, 0.9 * 0.25 + 0.25]


def test_soft_threshold_by_hand_with_exact_zeros() -> None:
    # Threshold lr * l1 = 0.5 * 0.25 = 0.125 exactly (binary fractions, so the hand values are
    # exact): |p| <= 0.125 becomes an exact zero, the rest moves 0.125 towards zero.
    param = torch.tensor([0.5, -0.0625, 0.125, -0.125, -0.75, 0.0], dtype=torch.float64)
    sgd_update(param, torch.zeros_like(param), None, lr=0.5, l1=0.25)
    assert param.tolist() == [0.375, 0.0, 0.0, 0.0, -0.625, 0.0]
    assert int((param == 0).sum()) == 4

    # The functional form, in place, on values that are not binary fractions.
    values = [0.3, -0.05, 0.1, -0.8, 1e-17, 2.0]
    p = torch.tensor(values, dtype=torch.float64)
    out = soft_threshold_(p, 0.1)
    assert out is p
    assert p.tolist() == [math.copysign(max(abs(v) - 0.1, 0.0), v) for v in values]


@pytest.mark.parametrize(("momentum", "nesterov"), [(0.0, False), (0.9, False), (0.9, True)])
def test_proximal_step_follows_the_sgd_step(momentum: float, nesterov: bool) -> None:
    """With ``l1``: torch.optim.SGD's step, then the soft threshold at ``lr * l1`` computed by
    hand (NumPy), for several steps; the velocity ignores the proximal step."""
    rng = np.random.default_rng(12)
    lr, l1, wd = 0.05, 0.8, 0.1
    start = torch.from_numpy(rng.normal(scale=0.2, size=(2, 6)))
    ours = start.clone()
    ref = start.clone().requires_grad_(True)
    opt = torch.optim.SGD(
        [ref], lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=wd, foreach=False
    )
    velocity = None
    zeros = 0
    for _ in range(5):
        grad = torch.from_numpy(rng.normal(scale=0.5, size=(2, 6)))
        before = grad.clone()
        velocity = sgd_update(
            ours,
            grad,
            velocity,
            lr=lr,
            momentum=momentum,
            nesterov=nesterov,
            weight_decay=wd,
            l1=l1,
        )
        assert torch.equal(grad, before)
        ref.grad = grad.clone()
        opt.step()
        with torch.no_grad():
            p = ref.numpy()
            ref.copy_(torch.from_numpy(np.sign(p) * np.maximum(np.abs(p) - lr * l1, 0.0)))
        # Entries just above the threshold lose their relative accuracy to cancellation in
        # |p| - lr * l1: compare them absolutely, to a few ulps of the O(0.1) parameters.
        np.testing.assert_allclose(ours.numpy(), ref.detach().numpy(), rtol=KERNEL_RTOL, atol=1e-15)
        # Where the reference is exactly zero, so is the kernel's parameter.
        assert torch.equal(ours == 0, ref.detach() == 0)
        zeros += int((ours == 0).sum())
        if momentum:
            buffer = opt.state[ref]["momentum_buffer"]
            assert velocity is not None
            np.testing.assert_allclose(velocity.numpy(), buffer.numpy(), rtol=KERNEL_RTOL)
    assert zeros > 0  # the threshold (0.04) is large enough to zero some entries


# ----------------------------------------------------------------------------- statistics


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
