"""CUDA paths: the same answers on a GPU as on the CPU. Skipped where no CUDA device exists
(CI and the development machines have none); on a GPU machine: `pytest tests/test_gpu.py`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradfit import GradientDescentRegressor, least_squares
from gradfit.solvers.config import SolverConfig
from gradfit.training import fit_linear

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _problem(n: int = 5000, d: int = 8, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3, size=d) + rng.normal(size=d)
    Y = X @ rng.normal(size=(d, k)) + 0.5 * rng.normal(size=(n, k))
    return X, Y


@pytest.mark.parametrize("solver", ["gd", "sgd"])
def test_cuda_matches_cpu(solver: str) -> None:
    X, Y = _problem()
    params = {"solver": solver, "random_state": 0, "max_epochs": 50, "tol": None}
    cpu = GradientDescentRegressor(**params).fit(X, Y)
    gpu = GradientDescentRegressor(device="cuda", **params).fit(X, Y)
    # Same algorithm and permutations (drawn on the CPU generator); only the order of floating
    # point reductions differs between devices, so agreement is to float64 rounding.
    np.testing.assert_allclose(gpu.coef_, cpu.coef_, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(gpu.intercept_, cpu.intercept_, rtol=1e-9, atol=1e-10)


def test_cuda_gd_reaches_the_optimum() -> None:
    X, Y = _problem()
    Xt = torch.from_numpy(X).cuda()
    Yt = torch.from_numpy(Y).cuda()
    outcome = fit_linear(Xt, Yt, SolverConfig(solver="gd", tol=1e-12, max_epochs=5000))
    exact = least_squares(X, Y)
    pred = X @ outcome.weight.cpu().numpy().T + outcome.bias.cpu().numpy()
    best = X @ exact.weight.numpy().T + exact.bias.numpy()
    assert np.mean((pred - Y) ** 2) <= np.mean((best - Y) ** 2) * (1 + 1e-6)
