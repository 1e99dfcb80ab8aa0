"""The tutorial's two paths: equivalent to each other, stable where the theory says, reproducible,
and on the crop data they learn what the closed form says they should."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import gradfit
from gradfit.losses import mse_gradient
from gradfit.scaling import Standardizer
from gradfit.tutorial import (
    FitHistory,
    compute_gradients,
    fit,
    init_params,
    make_linear,
    model,
    mse,
    step,
    train_builtin,
    train_from_scratch,
)


def _start(seed: int = 3, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    w, b = init_params(3, 2, torch.Generator().manual_seed(seed))
    return w.detach().to(dtype), b.detach().to(dtype)


def _closed_form_loss(X: torch.Tensor, Y: torch.Tensor) -> float:
    result = gradfit.least_squares(X, Y)
    return F.mse_loss(gradfit.predict(X.double(), result.weight, result.bias), Y.double()).item()


def _max_hessian_eigenvalue(X: torch.Tensor, n_targets: int) -> float:
    """λmax of the Hessian of L = sum(E²)/(n k) in (weight, bias).

    For target j, L depends on (w_j, b_j) through (1/(n k))·||Xa [w_j; b_j] - y_j||² with
    Xa = [X, 1]; the Hessian is block diagonal with k equal blocks (2/(n k))·Xa.T Xa, so
    λmax = (2/k)·λmax(Xa.T Xa / n).
    """
    Xa = torch.cat([X, torch.ones(X.shape[0], 1, dtype=X.dtype)], dim=1)  # (n, d + 1)
    return 2.0 / n_targets * torch.linalg.eigvalsh(Xa.T @ Xa / X.shape[0]).max().item()


# ------------------------------------------------------------ (a) scratch ≡ built-ins


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scratch_and_builtin_agree_epoch_by_epoch(dtype: torch.dtype) -> None:
    crops = gradfit.load_crops()
    X, Y = crops.data.to(dtype), crops.target.to(dtype)
    w0, b0 = _start(dtype=dtype)
    # With one batch of all 15 rows, SGD is full-batch gradient descent: the same update as the
    # scratch loop; only the (shuffled) row order of the sums differs. Each epoch moves the
    # weights by ~0.1 through gradients summing 15 terms of size ~1e4·1e2, so the order changes
    # the result by a few float32 ulps per epoch: measured ≤ 2e-6 relative after 10 epochs;
    # 1e-5 (about 80 ulps) is the bound. In float64 the same argument gives ~1e-15; use 1e-12.
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    for epochs in range(1, 11):
        a = train_from_scratch(X, Y, epochs=epochs, lr=1e-5, weight=w0, bias=b0)
        b = train_builtin(X, Y, epochs=epochs, lr=1e-5, batch_size=15, weight=w0, bias=b0)
        assert a.weight.dtype == b.weight.dtype == dtype
        torch.testing.assert_close(a.weight, b.weight, rtol=tol, atol=tol)
        torch.testing.assert_close(a.bias, b.bias, rtol=tol, atol=tol)
        # Both record the loss computed before each epoch's update.
        assert a.losses == pytest.approx(b.history.last_batch_loss, rel=tol)
        assert a.final_loss == pytest.approx(b.final_loss, rel=tol)
    # ...and the weights did move: the comparison is not between two copies of the start.
    assert (a.weight - w0).abs().max() > 0.5


def test_callbacks_report_every_epoch() -> None:
    crops = gradfit.load_crops()
    seen_a: list[tuple[int, int, float]] = []
    seen_b: list[tuple[int, int, float, float]] = []
    a = train_from_scratch(crops.data, crops.target, epochs=4, callback=lambda *r: seen_a.append(r))
    b = train_builtin(crops.data, crops.target, epochs=4, callback=lambda *r: seen_b.append(r))
    assert [(e, n) for e, n, _ in seen_a] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert [loss for *_, loss in seen_a] == list(a.losses)
    assert [r[2] for r in seen_b] == b.history.last_batch_loss
    assert [r[3] for r in seen_b] == b.history.mean_loss


# --------------------------------------------------------------- (b) one update helps


def test_one_step_lowers_the_loss() -> None:
    crops = gradfit.load_crops(rows=5)
    w, b = init_params(3, 2, torch.Generator().manual_seed(0))
    assert w.requires_grad and b.requires_grad and w.shape == (2, 3) and b.shape == (2,)
    loss = mse(model(crops.data, w, b), crops.target)
    compute_gradients(loss)
    expected_gw, expected_gb = mse_gradient(crops.data, crops.target, w.detach(), b.detach())
    expected_w = w.detach() - 1e-5 * expected_gw
    expected_b = b.detach() - 1e-5 * expected_gb
    step(w, b, lr=1e-5)
    # The update is exactly w - lr·grad (float32; the analytic and autograd gradients differ by
    # summation order only, ~1e-7 relative, scaled by lr=1e-5 into the last bits of w).
    torch.testing.assert_close(w.detach(), expected_w, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(b.detach(), expected_b, rtol=1e-6, atol=1e-6)
    assert torch.equal(w.grad, torch.zeros_like(w)) and torch.equal(b.grad, torch.zeros_like(b))
    new_loss = mse(model(crops.data, w, b), crops.target)
    assert new_loss.item() < 0.9 * loss.item()


def test_step_without_gradients_raises() -> None:
    w, b = init_params(3, 2, torch.Generator().manual_seed(0))
    with pytest.raises(RuntimeError, match="compute_gradients"):
        step(w, b, lr=1e-5)


# ------------------------------------------------- (c) standardized GD reaches the optimum


def test_standardized_gradient_descent_reaches_closed_form(
    crops64: tuple[torch.Tensor, torch.Tensor],
) -> None:
    X, Y = crops64
    scaler = Standardizer.fit(X)
    Z = scaler.transform(X)
    lr = 1.0 / _max_hessian_eigenvalue(Z, n_targets=2)  # 1/L: monotone, geometric convergence
    result = train_from_scratch(Z, Y, epochs=200, lr=lr)
    best = _closed_form_loss(X, Y)
    # [Z, 1] has condition number κ ≈ 7 (Hessian eigenvalues 0.29..1.99), so the excess loss
    # shrinks by (1 - 1/κ)² ≈ 0.73 per epoch: 200 epochs take 8e3 down to ~1e-24. Requiring 1e-4
    # relative leaves a huge margin yet fails if the step, gradient or scaling is wrong.
    assert result.weight.dtype == torch.float64
    assert (result.final_loss - best) / best <= 1e-4
    assert result.final_loss >= best * (1 - 1e-12)  # nothing beats the least-squares optimum
    weight, bias = scaler.unscale(result.weight, result.bias)
    cf = gradfit.least_squares(X, Y)
    torch.testing.assert_close(weight, cf.weight, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(bias, cf.bias, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------- (d) the stability bound 2/λmax


def test_hessian_eigenvalue_derivation(crops64: tuple[torch.Tensor, torch.Tensor]) -> None:
    X, Y = crops64

    def loss(theta: torch.Tensor) -> torch.Tensor:
        return mse(model(X, theta[:6].reshape(2, 3), theta[6:]), Y)

    H = torch.autograd.functional.hessian(loss, torch.zeros(8, dtype=torch.float64))
    lam = torch.linalg.eigvalsh(H).max().item()
    assert lam == pytest.approx(_max_hessian_eigenvalue(X, n_targets=2), rel=1e-12)
    # The tutorial's lr = 1e-5 is ~11x below the bound; the bound itself is about 1.1e-4.
    assert 2.0 / lam == pytest.approx(1.1167e-4, rel=1e-3)


def test_lr_below_bound_converges_above_diverges(
    crops64: tuple[torch.Tensor, torch.Tensor],
) -> None:
    X, Y = crops64
    bound = 2.0 / _max_hessian_eigenvalue(X, n_targets=2)
    w0, b0 = _start(dtype=torch.float64)
    # Below 2/λmax every eigen-component of the error contracts (|1 - lr·λ| < 1), so the loss
    # falls monotonically even at 0.99 of the bound.
    below = train_from_scratch(X, Y, epochs=200, lr=0.99 * bound, weight=w0, bias=b0)
    losses = [*below.losses, below.final_loss]
    assert all(math.isfinite(v) for v in losses)
    assert all(b <= a * (1 + 1e-12) for a, b in itertools.pairwise(losses))
    assert below.final_loss < 0.01 * losses[0]
    # At 1.5x the top component is multiplied by |1 - 3| = 2 per epoch: the loss grows ~4x.
    above = train_from_scratch(X, Y, epochs=30, lr=1.5 * bound, weight=w0, bias=b0)
    assert all(b > a for a, b in itertools.pairwise(above.losses[10:]))
    assert above.final_loss > 1e10 * above.losses[0]


# ------------------------------------------------------------------ (e) reproducibility


def test_same_seed_same_result_different_seed_different() -> None:
    crops = gradfit.load_crops()
    X, Y = crops.data, crops.target
    a = train_builtin(X, Y, epochs=5, seed=7)
    b = train_builtin(X, Y, epochs=5, seed=7)
    c = train_builtin(X, Y, epochs=5, seed=8)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    assert a.history == b.history
    assert not torch.equal(a.weight, c.weight)
    s1 = train_from_scratch(X, Y, epochs=5, seed=7)
    s2 = train_from_scratch(X, Y, epochs=5, seed=7)
    s3 = train_from_scratch(X, Y, epochs=5, seed=8)
    assert torch.equal(s1.weight, s2.weight) and s1.losses == s2.losses
    assert not torch.equal(s1.weight, s3.weight)


def _global_rng_untouched(run) -> bool:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run()
    return torch.equal(torch.rand(3), expected)


def test_scratch_leaves_the_global_rng_alone() -> None:
    crops = gradfit.load_crops()
    assert _global_rng_untouched(lambda: train_from_scratch(crops.data, crops.target, epochs=2))


def test_builtin_leaves_the_global_rng_alone() -> None:
    # The module docstring promises randomness "never from the global RNG".
    crops = gradfit.load_crops()
    assert _global_rng_untouched(lambda: train_builtin(crops.data, crops.target, epochs=2))


def test_shuffle_depends_on_seed_not_only_init() -> None:
    # Same start, different seeds: only the batch order differs, and with batches of 5 that
    # changes the result (equality would mean the loader is not shuffled by the seed).
    crops = gradfit.load_crops()
    w0, b0 = _start()
    a = train_builtin(crops.data, crops.target, epochs=3, seed=1, weight=w0, bias=b0)
    b = train_builtin(crops.data, crops.target, epochs=3, seed=2, weight=w0, bias=b0)
    assert not torch.equal(a.weight, b.weight)


# ------------------------------------------------------------------- (f) FitHistory


def test_fit_history_mean_and_last_batch_are_recomputable() -> None:
    crops = gradfit.load_crops()
    generator = torch.Generator().manual_seed(0)
    linear = make_linear(3, 2, generator)
    loader = DataLoader(
        TensorDataset(crops.data, crops.target), batch_size=5, shuffle=True, generator=generator
    )
    # Record, for every batch, the batch and the weights it was evaluated with (the loss is
    # computed before that batch's update).
    seen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []

    class Recorder:
        def __iter__(self):
            for xb, yb in loader:
                seen.append((xb, yb, linear.weight.detach().clone(), linear.bias.detach().clone()))
                yield xb, yb

    opt = torch.optim.SGD(linear.parameters(), lr=1e-5)
    history = fit(3, linear, F.mse_loss, opt, Recorder())
    assert isinstance(history, FitHistory) and len(seen) == 9
    recomputed = [F.mse_loss(xb @ w.T + b, yb).item() for xb, yb, w, b in seen]
    for epoch in range(3):
        batch_losses = recomputed[3 * epoch : 3 * epoch + 3]
        # Same float32 operations on the same values: equal up to the addmm vs @+ path (~1 ulp).
        assert history.last_batch_loss[epoch] == pytest.approx(batch_losses[-1], rel=1e-6)
        assert history.mean_loss[epoch] == pytest.approx(sum(batch_losses) / 3, rel=1e-6)
    # Shuffled batches of a still-learning model: the mean and the last batch differ.
    assert history.mean_loss != history.last_batch_loss


def test_train_builtin_history_matches_recomputation() -> None:
    crops = gradfit.load_crops()
    X, Y = crops.data.double(), crops.target.double()
    w0, b0 = _start(dtype=torch.float64)
    full = train_builtin(X, Y, epochs=5, batch_size=15, weight=w0, bias=b0)
    # One batch per epoch: epoch e's loss is the full-data loss of the weights after e-1 epochs.
    for epoch in range(1, 6):
        if epoch == 1:
            w, b = w0, b0
        else:
            prev = train_builtin(X, Y, epochs=epoch - 1, batch_size=15, weight=w0, bias=b0)
            w, b = prev.weight, prev.bias
        expected = F.mse_loss(X @ w.T + b, Y).item()
        assert full.history.last_batch_loss[epoch - 1] == pytest.approx(expected, rel=1e-12)
        assert full.history.mean_loss[epoch - 1] == pytest.approx(expected, rel=1e-12)
    assert full.final_loss == pytest.approx(
        F.mse_loss(X @ full.weight.T + full.bias, Y).item(), rel=1e-12
    )


# -------------------------------------------------------------- (g) the crop data set


def test_load_crops_shapes_and_names() -> None:
    five, fifteen = gradfit.load_crops(rows=5), gradfit.load_crops()
    assert five.data.shape == (5, 3) and five.target.shape == (5, 2)
    assert fifteen.data.shape == (15, 3) and fifteen.target.shape == (15, 2)
    assert five.data.dtype == five.target.dtype == torch.float32
    assert five.feature_names == ("temp", "rainfall", "humidity")
    assert five.target_names == ("apples", "oranges")
    assert five.data[0].tolist() == [73.0, 67.0, 43.0] and five.target[0].tolist() == [56.0, 70.0]
    assert torch.equal(fifteen.data, five.data.repeat(3, 1))
    assert torch.equal(fifteen.target, five.target.repeat(3, 1))


@pytest.mark.parametrize("rows", [0, 4, 10, 16, True, 5.5, "5"])
def test_load_crops_rejects_other_row_counts(rows: object) -> None:
    with pytest.raises(gradfit.ValidationError, match="rows must be 5 or 15"):
        gradfit.load_crops(rows=rows)  # type: ignore[arg-type]


def test_closed_form_on_crops_matches_the_known_fit(
    crops64: tuple[torch.Tensor, torch.Tensor],
) -> None:
    X, Y = crops64
    result = gradfit.least_squares(X, Y)
    # Compared to the digits printed (3 decimals: half a unit in the last place, 5e-4).
    expected_weight = torch.tensor(
        [[-0.388, 0.848, 0.698], [-0.285, 0.794, 0.925]], dtype=torch.float64
    )
    torch.testing.assert_close(result.weight, expected_weight, rtol=0, atol=5e-4)
    torch.testing.assert_close(
        result.bias, torch.tensor([-1.638, -2.218], dtype=torch.float64), rtol=0, atol=5e-4
    )
    pred = gradfit.predict(
        torch.tensor([[75.0, 63.0, 44.0]], dtype=torch.float64), result.weight, result.bias
    )
    torch.testing.assert_close(
        pred, torch.tensor([[53.42, 67.12]], dtype=torch.float64), rtol=0, atol=5e-3
    )
    # The 5 distinct rows give the same optimum as the 15 (each repeated three times).
    five = gradfit.load_crops(rows=5)
    again = gradfit.least_squares(five.data, five.target)
    torch.testing.assert_close(again.weight, result.weight, rtol=1e-10, atol=0)
