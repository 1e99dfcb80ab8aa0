"""The math layer against hand computations, PyTorch, autograd and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gradfit
from gradfit.losses import mse, mse_gradient
from gradfit.model import LinearModel, predict
from gradfit.scaling import Standardizer
from gradfit.tutorial import scratch


def _problem(rng: np.random.Generator, n: int = 12, d: int = 3, k: int = 2):
    """float64 X (n, d), Y (n, k), weight (k, d), bias (k,)."""
    return tuple(
        torch.from_numpy(a)
        for a in (
            rng.normal(size=(n, d)) * 3 + 1,
            rng.normal(size=(n, k)),
            rng.normal(size=(k, d)),
            rng.normal(size=k),
        )
    )


# ---------------------------------------------------------------------------------- mse


def test_mse_by_hand() -> None:
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    target = torch.tensor([[0.0, 2.0], [5.0, 1.0]])
    # squared errors 1, 0, 4, 9 over 4 elements
    assert mse(pred, target).item() == 14 / 4


def test_mse_equals_formula_and_torch(rng: np.random.Generator) -> None:
    pred = torch.from_numpy(rng.normal(size=(20, 3)))
    target = torch.from_numpy(rng.normal(size=(20, 3)))
    expected = ((pred.numpy() - target.numpy()) ** 2).sum() / 60
    # float64, 60 terms: the summation orders differ by a few ulps at most.
    assert mse(pred, target).item() == pytest.approx(expected, rel=1e-14)
    torch.testing.assert_close(mse(pred, target), F.mse_loss(pred, target), rtol=1e-14, atol=0)


@pytest.mark.parametrize(("a", "b"), [((6, 1), (6,)), ((6,), (6, 1)), ((6, 2), (6, 1))])
def test_mse_refuses_broadcasting(a: tuple[int, ...], b: tuple[int, ...]) -> None:
    # F.mse_loss would only warn and then broadcast (6, 1) against (6,) into a (6, 6) loss.
    with pytest.raises(ValueError, match="equal shapes"):
        mse(torch.zeros(a), torch.zeros(b))


# ----------------------------------------------------------------------------- gradient


def test_gradient_matches_autograd(rng: np.random.Generator) -> None:
    X, Y, weight, bias = _problem(rng)
    w = weight.clone().requires_grad_()
    b = bias.clone().requires_grad_()
    scratch.mse(scratch.model(X, w, b), Y).backward()
    grad_w, grad_b = mse_gradient(X, Y, weight, bias)
    assert grad_w.shape == (2, 3) and grad_b.shape == (2,)
    # Both are float64 sums of 12 products; they may differ only in summation order.
    torch.testing.assert_close(grad_w, w.grad, rtol=1e-12, atol=0)
    torch.testing.assert_close(grad_b, b.grad, rtol=1e-12, atol=0)


def test_gradient_matches_finite_differences(rng: np.random.Generator) -> None:
    X, Y, weight, bias = _problem(rng)
    grad_w, grad_b = mse_gradient(X, Y, weight, bias)
    params = torch.cat([weight.flatten(), bias])
    analytic = torch.cat([grad_w.flatten(), grad_b])
    h = 1e-6

    def loss(theta: torch.Tensor) -> float:
        w, b = theta[:6].reshape(2, 3), theta[6:]
        return mse(predict(X, w, b), Y).item()

    numeric = torch.empty_like(params)
    for i in range(params.numel()):
        e = torch.zeros_like(params)
        e[i] = h
        numeric[i] = (loss(params + e) - loss(params - e)) / (2 * h)
    # The loss is quadratic, so central differences have no truncation error; what is left is
    # rounding, ~eps * loss / h ≈ 1e-10 relative to gradients of order one. rtol 1e-6 is ample
    # and still catches a wrong factor (2 vs 1, n vs n·k) by a factor of a million.
    torch.testing.assert_close(numeric, analytic, rtol=1e-6, atol=1e-8)


def test_gradient_averages_over_all_elements(rng: np.random.Generator) -> None:
    # dL/db for one target = 2/(n k) · sum of that target's residuals.
    X, Y, weight, bias = _problem(rng)
    residual = X.numpy() @ weight.numpy().T + bias.numpy() - Y.numpy()
    _, grad_b = mse_gradient(X, Y, weight, bias)
    np.testing.assert_allclose(grad_b.numpy(), 2 * residual.sum(axis=0) / residual.size, rtol=1e-13)


# ------------------------------------------------------------------------------ predict


def test_predict_equals_affine_map(rng: np.random.Generator) -> None:
    X, _, weight, bias = _problem(rng)
    expected = X.numpy() @ weight.numpy().T + bias.numpy()
    np.testing.assert_allclose(predict(X, weight, bias).numpy(), expected, rtol=1e-13)
    model = LinearModel(weight, bias, ("a", "b", "c"), ("u", "v"))
    assert (model.n_features, model.n_targets) == (3, 2)
    torch.testing.assert_close(model.predict(X), predict(X, weight, bias), rtol=0, atol=0)


def test_predict_hand_example() -> None:
    out = predict(
        torch.tensor([[1.0, 2.0], [0.0, -1.0]]), torch.tensor([[3.0, 4.0]]), torch.tensor([0.5])
    )
    assert out.tolist() == [[11.5], [-3.5]]


def test_predict_rejects_mismatched_shapes() -> None:
    weight, bias = torch.zeros(2, 3), torch.zeros(2)
    with pytest.raises(gradfit.ValidationError, match="X has 4 features, but the model expects 3"):
        predict(torch.zeros(5, 4), weight, bias)
    with pytest.raises(gradfit.ValidationError, match="bias has 3 entries"):
        predict(torch.zeros(5, 3), weight, torch.zeros(3))
    with pytest.raises(gradfit.ValidationError, match=r"X \(n, d\)"):
        predict(torch.zeros(3), weight, bias)
    with pytest.raises(gradfit.ValidationError, match="feature names"):
        LinearModel(weight, bias, feature_names=("a", "b"))


# ------------------------------------------------------------------------------ scaling


def test_standardizer_statistics(rng: np.random.Generator) -> None:
    X = torch.from_numpy(rng.normal(size=(50, 3)) * [1.0, 10.0, 0.1] + [5.0, -3.0, 100.0])
    X[:, 2] = 7.0  # a constant column keeps scale 1 rather than dividing by ~0
    s = Standardizer.fit(X)
    np.testing.assert_allclose(s.mean.numpy(), X.numpy().mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(s.scale[:2].numpy(), X.numpy()[:, :2].std(axis=0), rtol=1e-13)
    assert s.scale[2].item() == 1.0
    Z = s.transform(X).numpy()
    np.testing.assert_allclose(Z[:, :2].mean(axis=0), 0.0, atol=1e-14)
    np.testing.assert_allclose(Z[:, :2].std(axis=0), 1.0, rtol=1e-13)
    np.testing.assert_array_equal(Z[:, 2], 0.0)


def test_unscale_rescale_round_trip(rng: np.random.Generator) -> None:
    X, _, weight, bias = _problem(rng)
    s = Standardizer.fit(X)
    w, b = s.rescale(*s.unscale(weight, bias))
    # Two float64 affine maps of O(1) numbers: rounding ~1e-15.
    torch.testing.assert_close(w, weight, rtol=1e-13, atol=1e-14)
    torch.testing.assert_close(b, bias, rtol=1e-13, atol=1e-14)
    w, b = s.unscale(*s.rescale(weight, bias))
    torch.testing.assert_close(w, weight, rtol=1e-13, atol=1e-14)
    torch.testing.assert_close(b, bias, rtol=1e-13, atol=1e-14)


def test_model_fit_on_standardized_data_predicts_the_same_after_unscale(
    rng: np.random.Generator,
) -> None:
    X, Y, _, _ = _problem(rng, n=30)
    X = X * torch.tensor([1.0, 100.0, 0.01], dtype=torch.float64) + 50
    s = Standardizer.fit(X)
    Z = s.transform(X)
    fit_z = gradfit.least_squares(Z, Y)
    weight, bias = s.unscale(fit_z.weight, fit_z.bias)
    # Same predictions, and the same coefficients a direct fit on X gives (both float64,
    # well-conditioned after centring: agreement to ~1e-12).
    torch.testing.assert_close(
        predict(X, weight, bias), predict(Z, fit_z.weight, fit_z.bias), rtol=1e-12, atol=1e-12
    )
    direct = gradfit.least_squares(X, Y)
    torch.testing.assert_close(weight, direct.weight, rtol=1e-10, atol=0)
    torch.testing.assert_close(bias, direct.bias, rtol=1e-10, atol=0)
