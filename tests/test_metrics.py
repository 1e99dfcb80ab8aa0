"""Regression metrics against scikit-learn's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

import gradfit

# float64 means of 50 terms: scikit-learn and gradfit differ by summation order only (~1e-15).
RTOL = 1e-12


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_metrics_match_sklearn(rng: np.random.Generator, dtype: torch.dtype) -> None:
    y_true = rng.normal(size=(50, 3)) * [1.0, 10.0, 0.01] + [0.0, 100.0, -3.0]
    y_pred = y_true + rng.normal(size=(50, 3)) * [0.5, 2.0, 0.02]
    t, p = torch.from_numpy(y_true).to(dtype), torch.from_numpy(y_pred).to(dtype)
    # Compare with scikit-learn on the very values gradfit saw (float32 inputs, float64 sums).
    t64, p64 = t.double().numpy(), p.double().numpy()
    m = gradfit.regression_metrics(t, p)
    mse = mean_squared_error(t64, p64, multioutput="raw_values")
    np.testing.assert_allclose(m.mse, mse, rtol=RTOL)
    np.testing.assert_allclose(m.rmse, np.sqrt(mse), rtol=RTOL)
    np.testing.assert_allclose(
        m.mae, mean_absolute_error(t64, p64, multioutput="raw_values"), rtol=RTOL
    )
    np.testing.assert_allclose(m.r2, r2_score(t64, p64, multioutput="raw_values"), rtol=RTOL)
    assert all(isinstance(v, float) for v in (*m.mse, *m.rmse, *m.mae, *m.r2))
    np.testing.assert_allclose(
        gradfit.r2_score(t, p).numpy(), r2_score(t64, p64, multioutput="raw_values"), rtol=RTOL
    )


def test_one_dimensional_targets(rng: np.random.Generator) -> None:
    y_true, y_pred = rng.normal(size=20), rng.normal(size=20)
    m = gradfit.regression_metrics(torch.from_numpy(y_true), torch.from_numpy(y_pred))
    assert len(m.mse) == 1
    assert m.mse[0] == pytest.approx(mean_squared_error(y_true, y_pred), rel=RTOL)
    assert m.r2[0] == pytest.approx(r2_score(y_true, y_pred), rel=RTOL)
    assert m.r2[0] < 0  # unrelated predictions score below the mean predictor


def test_hand_example_and_as_dict() -> None:
    m = gradfit.regression_metrics(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 4.0]))
    # errors 0, 0, 1: mse = mae = 1/3; ss_tot = 2 so R² = 1 - 1/2.
    assert m.mse[0] == pytest.approx(1 / 3) and m.mae[0] == pytest.approx(1 / 3)
    assert m.r2[0] == 0.5
    assert m.as_dict(("yield",)) == {
        "yield": {"mse": m.mse[0], "rmse": m.rmse[0], "mae": m.mae[0], "r2": 0.5}
    }
    assert set(m.as_dict()) == {"y0"}


def test_constant_target_r2_convention() -> None:
    # A constant column has no variance to explain: R² is 1.0 if predicted exactly and 0.0
    # otherwise (scikit-learn's force_finite=True), never nan or -inf.
    y_true = torch.tensor([[2.0, 2.0, 1.0], [2.0, 2.0, 2.0], [2.0, 2.0, 3.0]])
    y_pred = torch.tensor([[2.0, 2.5, 1.0], [2.0, 2.0, 2.0], [2.0, 1.5, 3.0]])
    r2 = gradfit.r2_score(y_true, y_pred)
    assert r2.tolist() == [1.0, 0.0, 1.0]
    expected = r2_score(y_true.numpy(), y_pred.numpy(), multioutput="raw_values", force_finite=True)
    np.testing.assert_array_equal(r2.numpy(), expected)
    assert gradfit.regression_metrics(y_true, y_pred).r2 == (1.0, 0.0, 1.0)


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(gradfit.ValidationError, match="same shape"):
        gradfit.regression_metrics(torch.zeros(5, 1), torch.zeros(5))
    with pytest.raises(gradfit.ValidationError, match="n >= 1"):
        gradfit.regression_metrics(torch.zeros(0, 2), torch.zeros(0, 2))


def test_numpy_arrays_and_lists_are_metrics_inputs_too() -> None:
    y = np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 5.0]])
    p = np.array([[1.5, 2.0], [2.0, 0.5], [2.5, 4.0]])
    expected = gradfit.regression_metrics(torch.from_numpy(y), torch.from_numpy(p))
    assert gradfit.regression_metrics(y, p) == expected
    assert gradfit.regression_metrics(y.tolist(), p.tolist()) == expected
    np.testing.assert_array_equal(gradfit.r2_score(y, p).numpy(), np.array(expected.r2))


def test_metrics_of_other_things_or_of_no_rows_are_one_clear_error() -> None:
    with pytest.raises(
        gradfit.ValidationError, match=r"targets must be \(n,\) or \(n, k\) with n >= 1"
    ):
        gradfit.regression_metrics(np.ones(0), np.ones(0))
    with pytest.raises(
        gradfit.ValidationError, match=r"y_true must be a tensor, a NumPy array or a list"
    ):
        gradfit.regression_metrics({"a": 1}, np.ones(1))
    with pytest.raises(
        gradfit.ValidationError, match=r"y_pred must be a tensor, a NumPy array or a list"
    ):
        gradfit.regression_metrics(np.ones(2), ["x", "y"])


def test_read_only_arrays_are_taken_without_a_warning() -> None:
    """A pandas Series' values (read-only under copy-on-write) made torch warn "not writable"
    in r2_score and regression_metrics (pytest turns the warning into this failure)."""
    y = np.array([1.0, 2.0, 4.0, 3.0])
    y.flags.writeable = False
    pred = np.array([1.5, 2.0, 3.5, 3.0])
    assert float(gradfit.r2_score(y, pred)[0]) == pytest.approx(r2_score(y, pred), rel=1e-15)
    assert gradfit.regression_metrics(y, pred).mse[0] == pytest.approx(0.125, rel=1e-15)
