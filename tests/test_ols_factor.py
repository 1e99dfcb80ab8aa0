"""gradfit.ols in memory factors the design once (issue 23): the solver's QR, centred design,
Qᵀb and refined residuals are reused for the errors and effects, and the HC types are summed
in Q's coordinates a block of rows at a time, with the rows of Q from ``A R⁻¹`` on a
well-conditioned design and from Householder's explicit Q on an ill-conditioned one.

Each new road is checked against an explicit computation written out here in float64 with
NumPy alone: ``X̃ = sqrt(w) [X, 1]``, its thin Q from ``numpy.linalg.qr`` (LAPACK Householder),
the leverages ``h = rowsum(Q²)``, ``G = (X̃ᵀX̃)⁻¹ = R⁻¹R⁻ᵀ`` and the sandwich
``G X̃ᵀ diag(ω e²) X̃ G`` (sandwich's and statsmodels' formula). Tolerances: 1e-12 relative
on random designs (condition numbers ~10: two QR-based computations agree to a few eps times
that). On nearly collinear designs the HC covariance itself is only determined to about
cond² · eps (two correct algorithms differ by 3e-9 at condition 4e3), so there the new sums
are compared with the sums they replace (:func:`sandwich_sums` of the explicit influence
rows), from the same factor and residuals.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest
import torch

import gradfit.inference.covariance as covariance
import gradfit.inference.regression as regression
import gradfit.solvers.extended as extended
import gradfit.solvers.lstsq as lstsq
from gradfit.inference import ols
from gradfit.inference.linalg import column_norms, solve_upper_identity

HC = ("HC0", "HC1", "HC2", "HC3")


def _design(n: int, d: int, k: int, seed: int, ill: bool = False) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 20, d) + rng.uniform(-50, 50, d)
    if ill:  # the last column within ~1e-6 of the span of the others
        X[:, -1] = X[:, :-1] @ rng.standard_normal(d - 1) + 1e-6 * rng.standard_normal(n)
    noise = rng.standard_normal((n, k)) * (1.0 + np.abs(X[:, :1]))  # heteroskedastic
    Y = X @ rng.standard_normal((d, k)) + 2.0 + noise
    w = rng.uniform(0.2, 3.0, n)
    return X, Y, w


def _explicit(
    X: np.ndarray, Y: np.ndarray, cov_type: str, fit_intercept: bool, w: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The HC covariances (k, p, p) (slopes, then the bias) and the leverages (n,), explicit.
    With an intercept, of the design centred on the (weighted) means, whose coefficients are
    the slopes and the mean response c, then moved to the bias b = c - x̄ᵀw (exactly linear:
    V_b = P V_c Pᵀ); centring keeps the reference itself from losing digits to the offsets."""
    n = X.shape[0]
    root = np.ones(n) if w is None else np.sqrt(w)
    center = np.average(X, axis=0, weights=w) if fit_intercept else np.zeros(X.shape[1])
    Xt = np.column_stack([X - center, np.ones(n)]) if fit_intercept else X
    Xw, Yw = Xt * root[:, None], Y * root[:, None]
    Q, R = np.linalg.qr(Xw)
    beta = np.linalg.solve(R, Q.T @ Yw)  # (p, k)
    E = Yw - Xw @ beta  # (n, k) weighted residuals
    h = (Q * Q).sum(axis=1)
    Rinv = np.linalg.inv(R)
    G = Rinv @ Rinv.T
    p = Xt.shape[1]
    omega = {
        "HC0": np.ones(n),
        "HC1": np.full(n, n / (n - p)),
        "HC2": 1 / (1 - h),
        "HC3": 1 / (1 - h) ** 2,
    }[cov_type]
    covs = []
    for j in range(Y.shape[1]):
        meat = (Xw * (omega * E[:, j] ** 2)[:, None]).T @ Xw
        covs.append(G @ meat @ G)
    V = np.array(covs)
    if fit_intercept:
        P = np.eye(p)
        P[-1, :-1] = -center
        V = P @ V @ P.T
    return V, h


@pytest.mark.parametrize("cov_type", HC)
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_hc_from_blocks_of_a_r_inverse_equal_the_explicit_sandwich(
    cov_type: str, fit_intercept: bool, weighted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Blocks of 37 rows (the last one short): the block loop is exercised, not one block.
    monkeypatch.setattr(covariance, "_ROWS", 37)
    X, Y, w = _design(500, 4, 3, seed=1)
    weights = w if weighted else None
    fit = ols(X, Y, cov_type=cov_type, fit_intercept=fit_intercept, weights=weights)
    want, _ = _explicit(X, Y, cov_type, fit_intercept, weights)
    got = fit.covariance.numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


@pytest.mark.parametrize("cov_type", HC)
def test_the_implicit_and_explicit_q_give_the_same_hc_errors(
    cov_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, Y, w = _design(300, 5, 2, seed=2)
    implicit = ols(X, Y, cov_type=cov_type, weights=w).covariance.numpy()
    monkeypatch.setattr(regression, "_IMPLICIT_Q_CONDITION", -1.0)  # always Householder's Q
    explicit = ols(X, Y, cov_type=cov_type, weights=w).covariance.numpy()
    np.testing.assert_allclose(implicit, explicit, rtol=1e-12, atol=0)


def test_a_well_conditioned_design_never_forms_q(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("Householder's Q formed")

    monkeypatch.setattr(torch.linalg, "householder_product", refuse)
    X, Y, _ = _design(200, 3, 1, seed=3)
    ols(X, Y[:, 0], cov_type="HC3")  # no AssertionError: the rows of Q from A R⁻¹


def _nearly_collinear(noise: float) -> tuple[np.ndarray, ...]:
    """A design whose last column is within ``noise`` of a combination of the others:
    condition numbers (equilibrated, centred) 4.1e3 at 1e-2 and 4.1e4 at 1e-3."""
    X, Y, w = _design(400, 4, 2, seed=4)
    rng = np.random.default_rng(4)
    X[:, -1] = X[:, :-1] @ rng.standard_normal(3) + noise * rng.standard_normal(400)
    return X, Y, w


def _pieces(X: np.ndarray, Y: np.ndarray, w: np.ndarray) -> tuple[Any, ...]:
    """The centred weighted design A, its Factor, the residuals, Householder's explicit Q."""
    root = np.sqrt(w)
    center = np.average(X, axis=0, weights=w)
    A = (X - center) * root[:, None]
    B = (Y - np.average(Y, axis=0, weights=w)) * root[:, None]
    a, tau = torch.geqrf(torch.from_numpy(A))
    R = torch.triu(a[: X.shape[1]]).numpy()
    scale = column_norms(R)
    factor = covariance.Factor(solve_upper_identity(R / scale), scale)
    E = B - A @ np.linalg.lstsq(A, B, rcond=None)[0]
    Q = torch.linalg.householder_product(a, tau).numpy()
    return A, E, Q, factor, center, root


@pytest.mark.parametrize("cov_type", HC)
@pytest.mark.parametrize(("noise", "rtol"), [(None, 1e-14), (1e-2, 1e-12), (1e-3, 1e-11)])
def test_hc_sums_in_q_coordinates_equal_the_sums_of_influence_rows(
    cov_type: str, noise: float | None, rtol: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # robust_covariances (Q's coordinates, blocks) against sandwich_sums of the explicit
    # influence rows U = Q R_e⁻ᵀ D⁻¹ (the computation it replaces), both from Householder's
    # Q; and from the rows A R⁻¹ on the designs of condition up to 4.1e3 (the road ols takes
    # below 1e4), where they agree to ~cond · eps. The tolerances are 4-10x what was measured
    # (random: 1e-15; 4.1e3: 2e-13 rows of A R⁻¹, 4e-14 explicit Q; 4.1e4: 5e-13 explicit Q).
    monkeypatch.setattr(covariance, "_ROWS", 37)
    X, Y, w = _design(400, 4, 2, seed=4) if noise is None else _nearly_collinear(noise)
    A, E, Q, factor, center, root = _pieces(X, Y, w)
    n, total = X.shape[0], float(w.sum())
    df = n - X.shape[1] - 1
    U = Q @ factor.left.T
    want = covariance.sandwich_sums(
        Q, U, E, center, cov_type, n, df, True, root_w=root, total=total
    )
    roads = [Q] if noise == 1e-3 else [Q, None]
    for explicit in roads:
        got = covariance.robust_covariances(
            A, factor, E, cov_type, center, df, True, root, total, Q=explicit
        )
        for g, v in zip(got, want, strict=True):
            diag_g, diag_v = (np.diagonal(m, axis1=1, axis2=2) for m in (g, v))
            np.testing.assert_allclose(diag_g, diag_v, rtol=rtol, atol=0)
            assert np.linalg.norm(g - v) <= rtol * np.linalg.norm(v)


def test_an_ill_conditioned_design_takes_householders_q(monkeypatch: pytest.MonkeyPatch) -> None:
    X, Y, w = _nearly_collinear(1e-3)
    assert lstsq.least_squares(X, Y, sample_weight=w).condition_number > 1e4
    formed = []
    real = torch.linalg.householder_product

    def spy(*args: torch.Tensor) -> torch.Tensor:
        formed.append(True)
        return real(*args)

    monkeypatch.setattr(torch.linalg, "householder_product", spy)
    ols(X, Y, cov_type="HC3", weights=w)
    assert formed  # condition above _IMPLICIT_Q_CONDITION: Q formed
    formed.clear()
    X, Y, w = _nearly_collinear(1e-2)
    ols(X, Y, cov_type="HC3", weights=w)
    assert not formed  # 4.1e3: the rows of A R⁻¹


@pytest.mark.parametrize("ill", [False, True])
@pytest.mark.parametrize("cov_type", ["nonrobust", "HC2"])
def test_ols_factors_the_design_once(
    cov_type: str, ill: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # once: by Householder (ill-conditioned), or by the Gram matrix's Cholesky factor
    calls = []
    for module, name in ((torch, "geqrf"), (torch.linalg, "cholesky_ex")):
        real = getattr(module, name)

        def counting(*args: torch.Tensor, real: Any = real, name: str = name) -> Any:
            calls.append(name)
            return real(*args)

        monkeypatch.setattr(module, name, counting)
    X, Y, w = _design(300, 6, 2, seed=5, ill=ill)
    ols(X, Y, cov_type=cov_type, weights=w)
    # the Gram matrix's Cholesky factor is tried first, and kept at condition <= 4
    assert calls == (["cholesky_ex", "geqrf"] if ill else ["cholesky_ex"])


@pytest.mark.parametrize("weighted", [False, True])
def test_the_reused_residuals_are_the_extended_precision_ones(weighted: bool) -> None:
    # A nearly exact fit (noise 1e-9 of the signal): the float64 residual B - A Z would lose
    # most of its digits; the solver's refined residual must be the exact one (worked out in
    # rationals) to the extended residual's bound (extended.residual_split: 2d·2^-53·(2^-s+2^-t)
    # ·2^K, here below 4e-22 of max_l ||A_l|| |z_l|; measured 6e-24), and no worse than
    # the longdouble residual (measured 1.4e-20).
    rng = np.random.default_rng(6)
    X = rng.standard_normal((400, 5)) * 1e3 + 1e4
    y = X @ rng.standard_normal(5) + 1e-6 * rng.standard_normal(400)
    w = rng.uniform(0.5, 2.0, 400) if weighted else None
    fit, factored = lstsq.solve_arrays(X, y[:, None], True, "aliased", w)
    assert factored is not None and factored.residual is not None
    Z = fit.weight.numpy().T
    want = np.array(
        [
            float(
                Fraction(float(factored.B[i, 0]))
                - sum(
                    Fraction(float(a)) * Fraction(float(z))
                    for a, z in zip(factored.A[i], Z[:, 0], strict=True)
                )
            )
            for i in range(400)
        ]
    )[:, None]
    scale = float((np.linalg.norm(factored.A, axis=0) * np.abs(Z[:, 0])).max())
    error = np.abs(factored.residual - want)
    assert error.max() <= 1e-21 * scale
    ext = np.abs(extended._residual_ext(factored.A, factored.B, Z) - want)
    assert error.max() <= ext.max()
    # and ols's residual standard error is the one of those residuals
    result = ols(X, y, weights=w)
    sigma = np.sqrt((want[:, 0] ** 2).sum() / (400 - 6))
    np.testing.assert_allclose(float(result.sigma[0]), sigma, rtol=1e-13)


@pytest.mark.parametrize("weighted", [False, True])
def test_the_two_pass_mean_of_large_arrays(weighted: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # A large common offset with a small spread (NIST NumAcc's kind): the float64 two-pass mean
    # equals the extended-precision one to the rounding of the result.
    rng = np.random.default_rng(7)
    M = 1e8 + rng.standard_normal((20_000, 3)) * np.array([1e-3, 1.0, 1e3])
    w = rng.uniform(0.1, 5.0, 20_000) if weighted else None
    exact = extended.mean_ext(M, w)  # unweighted: extended._mean_split (exact, rounded once)
    fast = extended._mean_two_pass(M, w)
    np.testing.assert_allclose(fast, exact, rtol=2 * np.finfo(float).eps, atol=0)
    # and a fit centred on it has the same coefficients
    y = M @ np.array([1.0, -2.0, 0.5]) + rng.standard_normal(20_000)
    monkeypatch.setattr(extended, "_EXACT_MEAN", 0)
    monkeypatch.setattr(extended, "_mean_split", lambda M: None)  # the two-pass means
    got = ols(M, y, weights=w)
    monkeypatch.undo()
    want = ols(M, y, weights=w)
    np.testing.assert_allclose(got.weight.numpy(), want.weight.numpy(), rtol=1e-12)
    np.testing.assert_allclose(got.covariance.numpy(), want.covariance.numpy(), rtol=1e-10)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("cov_type", ["HC0", "HC1"])
def test_hc_in_the_design_coordinates_on_a_well_conditioned_design(
    cov_type: str, weighted: bool
) -> None:
    # The solver's Cholesky route (condition <= 4): HC0/HC1 summed over the rows a_i with
    # G = (AᵀA)⁻¹ on both sides equal the sums over q_i = a_i D⁻¹ R_e⁻¹ (to a few eps times
    # condition², here below 1e-13 relative)
    X, Y, w = _design(2000, 5, 3, seed=21)
    if not weighted:
        w = None
    fit, factored = lstsq.solve_arrays(X, Y, True, "aliased", w)
    assert factored is not None and factored.a is None and fit.condition_number <= 4
    assert factored.residual is not None
    scale = column_norms(factored.R)
    factor = covariance.Factor(r_inv=solve_upper_identity(factored.R / scale), scale=scale)
    root_w = None if w is None else np.sqrt(w)
    total = None if w is None else float(w.sum())
    args = (factored.A, factor, factored.residual, cov_type, factored.x_mean, 2000 - 6, True)
    by_q = covariance.robust_covariances(*args, root_w, total, None, False)
    by_a = covariance.robust_covariances(*args, root_w, total, None, True)
    for got, want in zip(by_a, by_q, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13 * np.abs(want).max())


@pytest.mark.parametrize("cov_type", HC)
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("road", ["gram", "a_r_inverse", "householder"])
@pytest.mark.parametrize("rows", [1, 37, 100_000])
def test_hc_blocks_of_any_size_one_target_and_several_equal_the_explicit_sandwich(
    cov_type: str, k: int, road: str, rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # robust_covariances scales one target's rows in place and several targets' rows into
    # one (k, m, width) array summed by one batched product; blocks of 1 row, of 37 (a short
    # last one) and one block of all the rows, on each of the three roads (the rows of A
    # (HC0/HC1 on a well-conditioned design), of A R⁻¹, of Householder's Q), weighted, with
    # an intercept, against the explicit float64 sandwich (tolerance as above: 1e-12
    # relative on a random design of condition ~10; measured below 1e-14).
    monkeypatch.setattr(covariance, "_ROWS", rows)
    if road != "gram":
        monkeypatch.setattr(regression, "_GRAM_HC_CONDITION", -1.0)
    if road == "householder":
        monkeypatch.setattr(lstsq, "_SNE_CONDITION", -1.0)  # Householder's QR
        monkeypatch.setattr(regression, "_IMPLICIT_Q_CONDITION", -1.0)  # and its explicit Q
    taken = []
    real = regression.robust_covariances

    def spy(*args: Any) -> Any:
        Q, gram = args[9], args[10]
        taken.append("householder" if Q is not None else "gram" if gram else "a_r_inverse")
        return real(*args)

    monkeypatch.setattr(regression, "robust_covariances", spy)
    X, Y, w = _design(300, 4, k, seed=22)
    fit = ols(X, Y, cov_type=cov_type, weights=w)
    assert taken == [road]  # (with gram, HC2/HC3 still take A R⁻¹: they need the leverages)
    want, _ = _explicit(X, Y, cov_type, True, w)
    np.testing.assert_allclose(
        fit.covariance.numpy(), want, rtol=1e-12, atol=1e-12 * np.abs(want).max()
    )


def test_the_block_of_robust_covariances_fits_the_cache() -> None:
    # The scaled rows of a block (k, rows, width) take about 2 MiB (at least 256 rows, at
    # most _ROWS): the sizes of the benchmark (width = d + 2 with an intercept)
    for width, k in ((22, 1), (22, 10), (52, 1), (52, 10), (1002, 10), (3, 1)):
        rows = covariance._block_rows(width, k)
        assert 256 <= rows <= covariance._ROWS
        assert rows == 256 or rows == covariance._ROWS or rows * width * k * 8 <= 2 << 20
        assert rows == covariance._ROWS or (rows + 1) * width * k * 8 > 2 << 20 or rows == 256
    assert covariance._block_rows(22, 10) == 1191
    assert covariance._block_rows(1002, 10) == 256
