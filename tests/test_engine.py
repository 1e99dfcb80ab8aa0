"""The solver engine (gradfit.solvers.engine): its step sizes against NumPy, its
iterates against the tutorial's loops, its schedules, stopping rules and divergence guard.

Tolerances: quantities computed two ways in float64 (statistics, eigenvalues, iterates of the
same update rule summed in a different order) agree to a few hundred ulps, so ``rtol=1e-10``
is loose enough for rounding and tight enough to catch any wrong factor or sign.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.datasets import make_regression

import gradfit
from gradfit.errors import DivergenceError
from gradfit.solvers import engine
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.engine import EpochInfo, init_state, result_of, run_epochs, train
from gradfit.solvers.rows import holdout_mask, holdout_seed
from gradfit.solvers.stats import SufficientStats
from gradfit.training import fit_linear
from gradfit.tutorial import init_params, train_builtin, train_from_scratch

pytestmark = pytest.mark.usefixtures("one_thread")


def _problem(
    seed: int, n: int = 120, d: int = 4, k: int = 2, noise: float = 0.3
) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d) + rng.normal(size=d)
    W = rng.normal(size=(k, d))
    Y = X @ W.T + rng.normal(size=k) + noise * rng.normal(size=(n, k))
    return torch.from_numpy(X), torch.from_numpy(Y)


def _hessian_lmax(X: np.ndarray, k: int, fit_intercept: bool = True) -> float:
    """λmax of the Hessian of sum(E²)/(n k), built explicitly as (2/k) M ⊗ I_k (not from the
    engine's formula): M = [X, 1]ᵀ[X, 1] / n."""
    Xa = np.c_[X, np.ones(len(X))] if fit_intercept else X
    H = np.kron(2.0 / k * Xa.T @ Xa / len(X), np.eye(k))
    return float(np.linalg.eigvalsh(H)[-1])


# ----------------------------------------------------------------------------- vs tutorial


def test_gd_iterates_equal_the_scratch_loop() -> None:
    """Engine gd (from statistics) and the tutorial's autograd loop apply the same update; from
    the same start with the same step they agree to rounding after 60 epochs."""
    X, Y = _problem(2, n=30, d=3, k=2)
    w0, b0 = init_params(3, 2, torch.Generator().manual_seed(5))
    w0, b0 = w0.detach().double(), b0.detach().double()
    cfg = SolverConfig(solver="gd", learning_rate=0.01, standardize=False, max_epochs=60, tol=None)
    result = train(X, Y, cfg, weight=w0, bias=b0)
    ref = train_from_scratch(X, Y, epochs=60, lr=0.01, weight=w0, bias=b0)
    np.testing.assert_allclose(result.weight.numpy(), ref.weight.numpy(), rtol=1e-10)
    np.testing.assert_allclose(result.bias.numpy(), ref.bias.numpy(), rtol=1e-10)
    # The engine records the loss after each step, the tutorial before it.
    np.testing.assert_allclose(result.loss_curve[:-1], ref.losses[1:], rtol=1e-10)


def test_sgd_with_one_full_batch_equals_builtin_and_scratch() -> None:
    X, Y = _problem(3, n=20, d=3, k=2)
    w0, b0 = init_params(3, 2, torch.Generator().manual_seed(6))
    w0, b0 = w0.detach().double(), b0.detach().double()
    cfg = SolverConfig(
        solver="sgd", learning_rate=0.02, standardize=False, batch_size=20, max_epochs=40, tol=None
    )
    result = train(X, Y, cfg, weight=w0, bias=b0, random_state=0)
    builtin = train_builtin(X, Y, epochs=40, lr=0.02, batch_size=20, weight=w0, bias=b0)
    scratch = train_from_scratch(X, Y, epochs=40, lr=0.02, weight=w0, bias=b0)
    np.testing.assert_allclose(result.weight.numpy(), builtin.weight.numpy(), rtol=1e-10)
    np.testing.assert_allclose(result.weight.numpy(), scratch.weight.numpy(), rtol=1e-10)
    np.testing.assert_allclose(result.bias.numpy(), builtin.bias.numpy(), rtol=1e-10)


# ----------------------------------------------------------------------------- step sizes


def test_auto_steps_are_below_the_stable_bound() -> None:
    X, Y = _problem(4)
    for solver in ("gd", "sgd"):
        state = init_state(X, Y, SolverConfig(solver=solver, standardize=False))
        assert 0 < state.learning_rate < state.stable_lr
    gd = init_state(X, Y, SolverConfig(solver="gd", standardize=False))
    assert gd.stable_lr == pytest.approx(2.0 / _hessian_lmax(X.numpy(), 2), rel=1e-12)
    assert gd.learning_rate == pytest.approx(gd.stable_lr / 2, rel=1e-12)


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("constant", lambda lr, t: lr),
        ("invscaling", lambda lr, t: lr / (1 + t) ** 0.75),
        ("step", lambda lr, t: lr * 0.3 ** (t // 4)),
    ],
)
def test_schedules_change_the_step_as_documented(schedule: str, expected: object) -> None:
    X, Y = _problem(5)
    seen: list[EpochInfo] = []
    cfg = SolverConfig(
        solver="sgd",
        schedule=schedule,  # type: ignore[arg-type]
        power_t=0.75,
        decay_every=4,
        decay_rate=0.3,
        max_epochs=12,
        tol=None,
    )
    result = train(X, Y, cfg, random_state=0, callback=seen.append)
    assert [info.epoch for info in seen] == list(range(1, 13))
    for info in seen:
        # epoch counted from 1 in EpochInfo, from 0 in the documented formulas
        want = expected(result.learning_rate, info.epoch - 1)  # type: ignore[operator]
        assert info.learning_rate == pytest.approx(want, rel=1e-15)


# ----------------------------------------------------------------------------- stopping


def test_exactly_solvable_problem_converges() -> None:
    """A noiseless problem has optimum 0: a purely relative tol would never stop (the loss
    falls by the same factor every epoch); the floor at 0.1% of var(Y) x tol stops it."""
    # scikit-learn's check_regressor_multioutput data: 11 rows, 10 features, no noise
    Xn, Yn = make_regression(n_samples=11, n_features=10, n_targets=5, random_state=42)
    X, Y = torch.from_numpy(Xn), torch.from_numpy(Yn)
    result = train(X, Y, SolverConfig(solver="gd"))
    assert result.converged
    assert result.n_iter < 1000
    var = float(Y.var(0, correction=0).mean())
    assert result.loss_curve[-1] < 1e-6 * var


def test_early_stopping_keeps_the_best_validation_weights() -> None:
    X, Y = _problem(8, n=300, noise=2.0)
    cfg = SolverConfig(solver="sgd", early_stopping=True, tol=1e-3, max_epochs=200)
    result = train(X, Y, cfg, random_state=1)
    assert result.converged and result.validation_scores is not None
    assert result.n_iter == len(result.validation_scores) < 200
    best = int(np.argmax(result.validation_scores))
    # Stopped n_iter_no_change epochs after the last improvement (by more than tol).
    assert result.n_iter - 1 - best <= cfg.n_iter_no_change


def test_init_state_and_run_epochs_equal_train() -> None:
    X, Y = _problem(9)
    cfg = SolverConfig(solver="sgd", momentum=0.5, max_epochs=7, tol=None)
    whole = train(X, Y, cfg, random_state=3)
    state = init_state(X, Y, cfg, random_state=3)
    for _ in range(7):
        run_epochs(state, X, Y, 1, stop_early=False)
    pieces = result_of(state, False)
    assert torch.equal(whole.weight, pieces.weight)
    assert torch.equal(whole.bias, pieces.bias)
    assert whole.loss_curve == pieces.loss_curve


def test_given_statistics_change_nothing() -> None:
    X, Y = _problem(10)
    cfg = SolverConfig(solver="gd", max_epochs=20, tol=None)
    a = init_state(X, Y, cfg)
    b = init_state(X, Y, cfg, stats=SufficientStats.compute(X, Y))
    run_epochs(a, X, Y, 20)
    run_epochs(b, X, Y, 20, stats=SufficientStats.compute(X, Y))
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


# ----------------------------------------------------------------------------- divergence


def test_divergence_raises_with_the_stable_step_and_the_last_good_weights() -> None:
    crops = gradfit.load_crops()
    X, Y = crops.data.double(), crops.target.double()
    stable = 2.0 / _hessian_lmax(X.numpy(), 2)
    # Start near the optimum, off it along the second eigenvector of M (which a step 30% above
    # the bound still shrinks) and by 1e-8 along the top one (which it amplifies 1.6x per
    # epoch): the loss falls for a while, then rises, so there are good epochs to keep.
    Xa = np.c_[X.numpy(), np.ones(len(X))]
    V = np.linalg.eigh(Xa.T @ Xa / len(X))[1]
    best = gradfit.least_squares(X, Y)
    theta = np.c_[best.weight.numpy(), best.bias.numpy()] + V[:, 2] + 1e-8 * V[:, 3]
    w0, b0 = torch.from_numpy(theta[:, :3].copy()), torch.from_numpy(theta[:, 3].copy())
    cfg = SolverConfig(solver="gd", learning_rate=1.3 * stable, standardize=False, tol=None)
    with pytest.raises(DivergenceError) as info:
        train(X, Y, cfg, weight=w0, bias=b0)
    exc = info.value
    assert exc.stable_lr == pytest.approx(stable, rel=1e-12)
    assert exc.reason in str(exc) and "Use a smaller" not in exc.reason  # advice apart
    good = exc.result
    assert good is not None
    assert torch.isfinite(good.weight).all()
    assert exc.epoch is not None and good.n_iter == exc.epoch - 1 >= 5
    assert len(good.loss_curve) == good.n_iter
    # The kept weights are exactly those of a run stopped one epoch before the bad one.
    replay = train(X, Y, replace(cfg, max_epochs=good.n_iter), weight=w0, bias=b0)
    assert torch.equal(replay.weight, good.weight)
    assert torch.equal(replay.bias, good.bias)


def test_a_large_step_on_raw_crops_fails_at_once() -> None:
    crops = gradfit.load_crops()
    X, Y = crops.data.double(), crops.target.double()
    cfg = SolverConfig(solver="gd", learning_rate=1e-3, standardize=False)
    with pytest.raises(DivergenceError) as info:
        train(X, Y, cfg)
    assert info.value.epoch == 1
    good = info.value.result
    assert good is not None
    assert good.n_iter == 0 and torch.count_nonzero(good.weight) == 0  # the zero start


def test_a_step_just_above_the_bound_is_divergence_not_convergence() -> None:
    """5% above 2/L the loss grows only ~10% per epoch: the tol rule would see five epochs
    without improvement and report convergence; full-batch gd knows better."""
    X, Y = _problem(11, noise=0.0)
    probe = init_state(X, Y, SolverConfig(solver="gd", standardize=False))
    cfg = SolverConfig(solver="gd", standardize=False, learning_rate=1.05 * probe.stable_lr)
    with pytest.raises(DivergenceError, match="largest stable learning rate"):
        train(X, Y, cfg)


def test_momentum_updates_follow_torch_sgd() -> None:
    """One hand-checked step pair of heavy-ball and Nesterov momentum, as torch.optim.SGD."""
    X, Y = _problem(12, n=16, d=2, k=1)
    for nesterov in (False, True):
        cfg = SolverConfig(
            solver="gd",
            learning_rate=0.05,
            momentum=0.9,
            nesterov=nesterov,
            standardize=False,
            tol=None,
        )
        state = init_state(X, Y, cfg)
        w = torch.nn.Parameter(torch.zeros(1, 2, dtype=torch.float64))
        b = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
        opt = torch.optim.SGD([w, b], lr=0.05, momentum=0.9, nesterov=nesterov)
        for _ in range(3):
            run_epochs(state, X, Y, 1, stop_early=False)
            opt.zero_grad()
            torch.mean((X @ w.T + b - Y) ** 2).backward()  # type: ignore[no-untyped-call]
            opt.step()
        np.testing.assert_allclose(state.weight.numpy(), w.detach().numpy(), rtol=1e-10)
        np.testing.assert_allclose(state.bias.numpy(), b.detach().numpy(), rtol=1e-10)


def test_l1_proximal_step_zeroes_weights_under_a_large_penalty() -> None:
    X, Y = _problem(13)
    cfg = SolverConfig(solver="gd", alpha=1e3, l1_ratio=1.0, max_epochs=200, tol=None)
    result = train(X, Y, cfg)
    assert torch.count_nonzero(result.weight) == 0
    np.testing.assert_allclose(result.bias.numpy(), Y.mean(0).numpy(), rtol=1e-10)


def test_non_finite_loss_is_caught_for_sgd() -> None:
    X, Y = _problem(14)
    with pytest.raises(DivergenceError) as info:
        train(X * 1e3, Y, SolverConfig(solver="sgd", learning_rate=10.0, standardize=False))
    assert info.value.stable_lr is not None and info.value.stable_lr < 10.0
    good = info.value.result
    assert good is not None and math.isfinite(float(good.weight.abs().max()))


def test_engine_module_exports() -> None:
    assert set(engine.__all__) == {
        "EPOCH_KERNELS",
        "EpochKernel",
        "epoch_kernel",
        "LOSS_FLOOR",
        "AlignedData",
        "Checkpointer",
        "EpochData",
        "EpochInfo",
        "FitResult",
        "PlateauRule",
        "StreamPasses",
        "TensorData",
        "TrainState",
        "feature_scaler",
        "fit_gd",
        "fit_sgd",
        "fit_stream",
        "init_state",
        "init_state_from_stats",
        "max_row_norm2",
        "method_name",
        "needs_row_norm",
        "result_of",
        "row_weights",
        "run_epochs",
        "run_on",
        "train",
        "uses_conjugate_gradient",
    }


# ---------------------------------------------------------------------------------------------
# convergence certified within tol, best validation weights kept, huge columns in the closed
# form, settings a solver cannot honour, the plateau rule, one standardization


def _val_r2(result: engine.FitResult, X: torch.Tensor, Y: torch.Tensor, seed: int) -> float:
    """Validation R² of the returned weights, on the split train() made for ``seed``."""
    val = torch.from_numpy(holdout_mask(0, 1, X.shape[0], 0.1, holdout_seed(seed)))
    pred = X[val].double() @ result.weight.double().T + result.bias.double()
    return float(gradfit.r2_score(Y[val].double(), pred).mean())


def test_gd_plateau_far_from_the_optimum_is_not_convergence() -> None:
    # Two columns that differ by 1e-6 relative: gd crawls, and the relative-decrease rule alone
    # would call it converged at ~2x the optimal loss. The optimum computed from the statistics
    # refuses that plateau: training runs to max_epochs and is reported unconverged. (Plain
    # gradient descent with its automatic step 1/L, given explicitly: the default, conjugate
    # gradients, gets within 0.3% of the optimum here.)
    rng = np.random.default_rng(0)
    a = rng.normal(size=200) * 1000
    X = torch.from_numpy(np.column_stack([a, a + 1e-3 * rng.normal(size=200)]))
    Y = torch.from_numpy(((X[:, 1] - X[:, 0]) * 1000).numpy() + rng.normal(size=200))[:, None]
    step = init_state(X, Y, SolverConfig(solver="gd")).learning_rate
    plain = SolverConfig(solver="gd", max_epochs=300, learning_rate=step)
    result = train(X, Y, plain, random_state=0)
    exact = gradfit.least_squares(X, Y)
    optimum = float(((X @ exact.weight.T + exact.bias - Y) ** 2).mean())
    assert result.loss_curve[-1] > 1.5 * optimum  # genuinely far away...
    assert not result.converged and result.n_iter == 300  # ...and said so


def test_gd_convergence_is_certified_within_tol_of_the_optimum() -> None:
    X, Y = _problem(21, n=400, d=5, k=2, noise=1.0)
    for tol in (1e-4, 1e-8):
        result = train(X, Y, SolverConfig(solver="gd", tol=tol, momentum=0.5), random_state=0)
        exact = gradfit.least_squares(X, Y)
        optimum = float(((X @ exact.weight.T + exact.bias - Y) ** 2).mean())
        assert result.converged
        # The certificate: loss - optimum <= tol * loss (floor inactive: loss >> 1e-3 var(Y)).
        assert result.loss_curve[-1] - optimum <= tol * result.loss_curve[-1] * (1 + 1e-9)


@pytest.mark.parametrize("tol", [1e-3, None])
def test_early_stopping_keeps_the_best_weights_when_max_epochs_ends_training(
    tol: float | None,
) -> None:
    # Patience longer than the run and a noisy step: training ends at max_epochs (or runs every
    # epoch with tol=None), and the weights returned are still those of the best validation R².
    X, Y = _problem(8, n=300, noise=2.0)
    cfg = SolverConfig(
        solver="sgd",
        early_stopping=True,
        tol=tol,
        max_epochs=30,
        n_iter_no_change=100,
        learning_rate=0.3,
    )
    result = train(X, Y, cfg, random_state=0)
    assert result.validation_scores is not None and len(result.validation_scores) == 30
    assert not result.converged
    best = max(result.validation_scores)
    assert best > result.validation_scores[-1]  # the last epoch is not the best one
    assert _val_r2(result, X, Y, 0) == pytest.approx(best, rel=1e-9, abs=1e-12)


def test_closed_form_survives_huge_columns() -> None:
    # Column norms of values near 1e200 overflow a naive sum of squares; the fit must not
    # collapse to rank 0 (it is the same problem as the unscaled one, rescaled).
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 2))
    y = X @ np.array([1.0, 2.0]) + 0.1 * rng.normal(size=50)
    small = gradfit.least_squares(X, y)
    huge = gradfit.least_squares(X * 1e200, y)
    assert huge.rank == 2
    np.testing.assert_allclose(huge.weight.numpy() * 1e200, small.weight.numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"solver": "lstsq", "alpha": 1.0, "l1_ratio": 0.5}, "ridge penalty only"),
        ({"solver": "scratch", "momentum": 0.5}, "cannot honour momentum"),
        ({"solver": "builtin", "alpha": 0.1}, "cannot honour alpha"),
        ({"solver": "lstsq", "early_stopping": True}, "early_stopping=True needs"),
    ],
)
def test_settings_a_solver_cannot_honour_are_refused(settings: dict, says: str) -> None:
    # In SolverConfig itself, so the CLI and the estimator refuse them alike.
    with pytest.raises(gradfit.ValidationError, match=says):
        SolverConfig(**settings)


def test_plateau_rule_counts_epochs_without_enough_improvement() -> None:
    rule = engine.PlateauRule(tol=0.1, patience=2, floor=0.0)
    # 100 -> 50 improves; 46 is within 10% of 50 (stall 1); 44 within 10% of 46 (stall 2).
    assert [rule.update(v) for v in (100.0, 50.0, 46.0, 44.0)] == [False, False, False, True]
    # The floor: improvements finer than tol * floor do not count, however small the loss.
    tiny = engine.PlateauRule(tol=0.1, patience=1, floor=1.0)
    assert [tiny.update(v) for v in (1e-3, 1e-6)] == [False, True]
    # Full batch: a loss above the best (momentum overshoot) is still moving, not a plateau.
    gd = engine.PlateauRule(tol=0.1, patience=1, floor=0.0, deterministic=True)
    assert [gd.update(v) for v in (10.0, 20.0, 9.5)] == [False, False, True]
    sgd = engine.PlateauRule(tol=0.1, patience=1, floor=0.0)
    assert [sgd.update(v) for v in (10.0, 20.0)] == [False, True]


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_engine_and_tutorial_paths_standardize_alike(fit_intercept: bool) -> None:
    # One standardization: from the statistics (engine) or from the data (tutorial paths).
    X, Y = _problem(5)
    X = torch.cat([X, torch.full((X.shape[0], 1), 7.0, dtype=X.dtype)], dim=1)  # constant
    cfg = SolverConfig(fit_intercept=fit_intercept)
    from_stats = engine.feature_scaler(SufficientStats.compute(X, Y), cfg)
    from_data = gradfit.scaling.Standardizer.fit(X, center=fit_intercept)
    torch.testing.assert_close(from_stats.mean, from_data.mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(from_stats.scale, from_data.scale, rtol=1e-12, atol=1e-12)
    assert from_data.scale[-1] == (1.0 if fit_intercept else 7.0)  # constant column unscaled


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("constant", [3.5, 0.1, 1234.5])
@pytest.mark.parametrize(
    "solver, extra",
    [
        ("gd", {}),
        ("gd", {"learning_rate": 0.05}),
        ("gd", {"standardize": False}),
        ("gd", {"momentum": 0.9}),
        ("sgd", {}),
        ("sgd", {"momentum": 0.9}),
        ("builtin", {"learning_rate": 0.1}),
    ],
)
def test_a_constant_target_converges_to_the_constant(
    solver: str, extra: dict[str, Any], constant: float, dtype: torch.dtype
) -> None:
    """A constant y (variance 0) is solved exactly: coefficients 0, the intercept the
    constant. The stopping rule's floor was relative to var(y) = 0, so a loss at rounding
    noise never stalled and gd reported no convergence (a spurious ConvergenceWarning) with
    the constant found to 1e-14; its floor is now a tiny fraction of y's mean square."""
    rng = np.random.default_rng(0)
    X = torch.from_numpy(rng.normal(size=(500, 3)) + np.array([0.0, 5.0, 100.0])).to(dtype)
    Y = torch.full((500, 1), constant, dtype=dtype)
    result = fit_linear(X, Y, SolverConfig(solver=solver, **extra))
    assert result.converged, (len(result.loss_curve), result.loss_curve[-3:])
    assert abs(float(result.bias[0]) - constant) <= 1e-6 * constant
