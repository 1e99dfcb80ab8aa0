"""The extended-precision residual of the solver's refinement without ``longdouble``
(issue 23): :func:`gradfit.solvers.extended.residual_split`, an error-free splitting in Ozaki's
manner on float64 BLAS products, and the refinement rules that use it.

References are exact: Python's ``fractions.Fraction`` (every float64 is a rational), the
residual ``B - A Z`` and the least-squares solution of the float64 data worked out without
rounding, then rounded once. The bound asserted is the one the docstring derives,
``2d · 2^-53 · (2^-s + 2^-t) · 2^K`` plus half a unit in the last place of the result, with
``2^K`` bounded by ``4 · max_l ||A[:, l]|| |Z[l]|``; the residual must also be no worse than
the ``longdouble`` one it replaces (64-bit significand).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from nist import load

import gradfit.inference.linalg as linalg
import gradfit.solvers.extended as extended
import gradfit.solvers.lstsq as lstsq
from gradfit.inference.linalg import residual_quantiles


def _exact_residual(A: np.ndarray, B: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """``B - A Z`` worked out in rationals, rounded once to float64."""
    n, d = A.shape
    k = Z.shape[1]
    z = [[Fraction(float(Z[c, j])) for j in range(k)] for c in range(d)]
    out = np.empty((n, k))
    for i in range(n):
        row = [Fraction(float(a)) for a in A[i]]
        for j in range(k):
            out[i, j] = float(Fraction(float(B[i, j])) - sum(row[c] * z[c][j] for c in range(d)))
    return out


def _exact_lstsq(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """The least-squares solution (d, k) of the float64 data ``A``, ``B``, in rationals."""
    d, k = A.shape[1], B.shape[1]
    a = [[Fraction(float(x)) for x in col] for col in A.T]
    b = [[Fraction(float(x)) for x in col] for col in B.T]
    M = [
        [sum((x * y for x, y in zip(a[p], a[q], strict=True)), Fraction(0)) for q in range(d)]
        + [sum((x * y for x, y in zip(a[p], b[j], strict=True)), Fraction(0)) for j in range(k)]
        for p in range(d)
    ]
    for c in range(d):  # Gauss-Jordan on the normal equations, exact
        pivot = next(r for r in range(c, d) if M[r][c] != 0)
        M[c], M[pivot] = M[pivot], M[c]
        for r in range(d):
            if r != c and M[r][c] != 0:
                f = M[r][c] / M[c][c]
                M[r] = [x - f * y for x, y in zip(M[r], M[c], strict=True)]
    return np.array([[float(M[i][d + j] / M[i][i]) for j in range(k)] for i in range(d)])


def _bound(A: np.ndarray, Z: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """The docstring's bound on |residual_split - exact| (n, k)."""
    n, d = A.shape
    s, t = extended._split_bits(d, n.bit_length() // 2 - 2)
    two_k = 4 * (np.linalg.norm(A, axis=0)[:, None] * np.abs(Z)).max(axis=0)  # (k,)
    rest = 2 * d * 2.0**-53 * (2.0**-s + 2.0**-t) * two_k
    return rest + 0.5 * np.spacing(np.abs(exact))


def _random(n: int, d: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns and coefficients over 2^±29 in scale, and a nearly exact fit (B = A Z + 1e-9)."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, d)) * np.exp(rng.uniform(-20, 20, d))
    Z = rng.standard_normal((d, k)) * np.exp(rng.uniform(-20, 20, (d, 1)))
    B = A @ Z + 1e-9 * rng.standard_normal((n, k)) * np.abs(A @ Z).max()
    return A, B, Z


def _nist(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The centred design of a NIST StRD file, its centred targets and certified slopes."""
    problem = load(name)
    X, y = problem.X, problem.y[:, None]
    Z = problem.certified[1:, None] if problem.fit_intercept else problem.certified[:, None]
    if problem.fit_intercept:
        X, y = X - extended.mean_ext(X), y - extended.mean_ext(y)
    return np.ascontiguousarray(X), np.ascontiguousarray(y), Z


CASES = {
    "random 300x5": lambda: _random(300, 5, 2, seed=1),
    "random 200x40": lambda: _random(200, 40, 3, seed=2),
    "random 150x1": lambda: _random(150, 1, 1, seed=3),
    **{name: (lambda name=name: _nist(name)) for name in ("Filip", "Wampler1", "Longley")},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_split_residual_against_the_exact_one(case: str) -> None:
    A, B, Z = CASES[case]()
    exact = _exact_residual(A, B, Z)
    got = extended.residual_split(A, B, Z)
    error = np.abs(got - exact)
    assert np.all(error <= _bound(A, Z, exact)), case
    # no worse than longdouble's (row by row, up to the final rounding)
    ext = np.abs(extended._residual_ext(A, B, Z) - exact)
    assert np.all(error <= ext + 0.5 * np.spacing(np.abs(exact))), case
    # and the float64 product is far worse: the test can tell
    assert np.abs(B - A @ Z - exact).max() > 100 * max(error.max(), 1e-300)


def test_the_exact_part_is_exact_whatever_the_order_of_the_sums() -> None:
    rng = np.random.default_rng(4)
    n, d, k = 64, 50, 3
    A = rng.standard_normal((n, d)) * np.exp(rng.uniform(-30, 30, d))
    A[:, 7] = 0.0  # a zero column
    Z = rng.standard_normal((d, k)) * np.exp(rng.uniform(-30, 30, (d, 1)))
    Z[3, 1] = 0.0
    s, t = extended._split_bits(d, n.bit_length() // 2 - 2)
    assert s + t + (d - 1).bit_length() == 53
    grids = extended._split_grids(np.linalg.norm(A, axis=0) * (1 + 2.0**-20), Z, s, t)
    assert grids is not None
    sigma, Z1, Z2 = grids
    high, low = np.empty_like(A), np.empty_like(A)
    extended.split_design(A, np.tile(sigma, (n, 1)), high, low)
    assert np.array_equal(high + low, A) and np.array_equal(Z1 + Z2, Z)  # exact splits
    exact = np.array(
        [
            [
                float(
                    sum(Fraction(float(high[i, c])) * Fraction(float(Z1[c, j])) for c in range(d))
                )
                for j in range(k)
            ]
            for i in range(n)
        ]
    )
    reversed_order = high[:, ::-1] @ Z1[::-1]
    by_rows = np.array([[float(np.dot(high[i], Z1[:, j])) for j in range(k)] for i in range(n)])
    torch_blas = (torch.from_numpy(high) @ torch.from_numpy(Z1)).numpy()
    for product in (
        high @ Z1,
        reversed_order,
        by_rows,
        torch_blas,
        np.einsum("il,lj->ij", high, Z1),
    ):
        assert np.array_equal(product, exact)
    # A1 is an integer of at most s bits times its column's grid
    unit = np.ldexp(1.0, np.frexp(np.linalg.norm(A, axis=0) * (1 + 2.0**-20))[1] - s)
    m = high / unit
    assert np.array_equal(m, np.round(m)) and np.abs(m).max() <= 2.0**s


@pytest.mark.parametrize("power", [-400, 400])
def test_powers_of_two_scale_the_split_residual_exactly(power: int) -> None:
    A, B, Z = _random(300, 5, 2, seed=5)
    got = extended.residual_split(A, B, Z)
    scaled = extended.residual_split(
        np.ldexp(A, power), np.ldexp(B, power // 2), np.ldexp(Z, power // 2 - power)
    )
    np.testing.assert_array_equal(scaled, np.ldexp(got, power // 2))


def test_beyond_the_exponent_range_longdouble_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    A, B, Z = _random(60, 4, 1, seed=6)
    A, B = np.ldexp(A, 950), np.ldexp(B, 950)  # 2^950: σ would overflow
    calls = []
    real = extended._residual_ext
    monkeypatch.setattr(extended, "_residual_ext", lambda *a: calls.append(1) or real(*a))
    got = extended.residual_split(A, B, Z)
    assert calls
    np.testing.assert_array_equal(got, real(A, B, Z))


def _problem(n: int, d: int, k: int, seed: int, collinear: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) + 3.0
    if collinear:
        X[:, 1] = X[:, 0] + collinear * rng.standard_normal(n)
    Y = 1.0 + X @ rng.standard_normal((d, k)) + rng.standard_normal((n, k))
    return X, Y


def _count(monkeypatch: pytest.MonkeyPatch, name: str, module: object = lstsq) -> list[int]:
    calls: list[int] = []
    real = getattr(module, name)

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls


def _ulps(W: np.ndarray, exact: np.ndarray) -> float:
    return float((np.abs(W - exact) / np.spacing(np.abs(exact).max(axis=0))).max())


@pytest.mark.parametrize("collinear", [0.0, 0.01])
def test_a_settled_refinement_stops_after_one_extended_residual(
    collinear: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # condition ~1 and ~200: the first correction is below 2^-30 of Z; one extended residual,
    # and the coefficients as close to the exact ones as those of the full loop
    X, Y = _problem(2000, 8, 2, seed=7, collinear=collinear)
    calls = _count(monkeypatch, "residual_split")
    fit, factored = lstsq.solve_arrays(X, Y, True)
    assert len(calls) == 1 and factored is not None and factored.residual is not None
    monkeypatch.setattr(lstsq, "_SETTLED", 0.0)
    full, _ = lstsq.solve_arrays(X, Y, True)
    assert len(calls) >= 3  # the loop goes on to a correction below eps·|Z|
    exact = _exact_lstsq(factored.A, factored.B)
    settled_error = _ulps(fit.weight.numpy().T, exact)
    assert settled_error <= max(2 * _ulps(full.weight.numpy().T, exact), 4.0)
    # the residual kept is that of the returned coefficients
    want = _exact_residual(factored.A[:300], factored.B[:300], fit.weight.numpy().T)
    scale = np.abs(factored.B).max()
    np.testing.assert_allclose(factored.residual[:300], want, rtol=0, atol=2**-50 * scale)


def test_an_ill_conditioned_refinement_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    problem = load("Filip")
    calls = _count(monkeypatch, "residual_split")
    lstsq.least_squares(problem.X, problem.y)
    assert len(calls) >= 2


@pytest.mark.parametrize("seed", [8, 9, 10])
def test_semi_normal_equations_on_a_well_conditioned_design(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # condition <= 4: R from the Gram matrix's Cholesky factor, the solution and its correction
    # by RᵀR Z = AᵀB (no Householder QR at all), R's effects as R Z; the coefficients are as
    # close to the exact ones as those of Q's solve and correction (the error of both is that
    # of the residual's rounding through R⁻¹, times the condition for these), and the effects
    # those of Qᵀb
    X, Y = _problem(2000, 8, 2, seed=seed, collinear=0.0)
    ormqr = _count(monkeypatch, "ormqr", torch)
    geqrf = _count(monkeypatch, "geqrf", torch)
    fit, factored = lstsq.solve_arrays(X, Y, True)
    assert fit.condition_number <= lstsq._SNE_CONDITION and factored is not None
    assert not ormqr and not geqrf and factored.a is None
    monkeypatch.setattr(lstsq, "_SNE_CONDITION", 0.0)
    by_qr, by_qr_factored = lstsq.solve_arrays(X, Y, True)
    assert len(ormqr) == 2 and by_qr_factored is not None  # Qᵀb, and Qᵀr for the correction
    exact = _exact_lstsq(factored.A, factored.B)
    sne_error = _ulps(fit.weight.numpy().T, exact)
    assert sne_error <= max(4 * _ulps(by_qr.weight.numpy().T, exact), 4.0)
    # the effects, up to each column's sign (R's diagonal: positive from Cholesky, Householder's
    # from the QR)
    scale = np.abs(by_qr_factored.qtb).max()
    signs = np.sign(np.diag(factored.R) * np.diag(by_qr_factored.R))[:, None]
    np.testing.assert_allclose(factored.qtb, signs * by_qr_factored.qtb, rtol=0, atol=1e-13 * scale)


def _exact_mean(M: np.ndarray) -> np.ndarray:
    return np.array([float(sum(map(Fraction, col.tolist())) / len(col)) for col in M.T])


MEANS = {
    "offset 1e8": lambda rng: 1e8 + rng.standard_normal((5000, 3)) * np.array([1e-3, 1.0, 1e3]),
    "scales 2^±43": lambda rng: rng.standard_normal((3001, 4)) * np.exp(rng.uniform(-30, 30, 4)),
    "x^10": lambda rng: (rng.standard_normal((2000, 1)) - 6.0) ** 10,
    "one row": lambda rng: rng.standard_normal((1, 3)),
    "cancelling": lambda rng: np.concatenate(
        [np.full((1000, 2), 1e16), np.full((1000, 2), -1e16), np.ones((3, 2))]
    ),
}


@pytest.mark.parametrize("case", sorted(MEANS))
def test_the_split_mean_is_the_exact_mean(case: str) -> None:
    # the error-free splitting's mean is the exact mean to within its rounding (measured:
    # correctly rounded in every case)
    M = MEANS[case](np.random.default_rng(11))
    exact = _exact_mean(M)
    got = extended._mean_split(M)
    assert got is not None
    assert np.all(np.abs(got - exact) <= np.spacing(np.abs(exact)))
    assert np.array_equal(extended.mean_ext(M), got)


def test_the_split_mean_leaves_out_what_it_cannot_split() -> None:
    M = np.random.default_rng(12).standard_normal((50, 3))
    M[:, 1] = 0.0  # a zero column: longdouble's means instead
    assert extended._mean_split(M) is None
    np.testing.assert_array_equal(extended.mean_ext(M), _exact_mean(M))
    assert extended._mean_split(np.ldexp(M[:, [0]], 600)) is None  # squares beyond float64


def _exact_norms(M: np.ndarray) -> np.ndarray:
    """The columns' norms: the sums of squares in rationals, rounded once, then float64's
    square root (within about one unit in the last place)."""
    return np.array(
        [math.sqrt(float(sum((Fraction(float(x)) ** 2 for x in c), Fraction(0)))) for c in M.T]
    )


def test_one_column_norm_for_the_solvers_and_the_inference() -> None:
    # the twin that inference/linalg.py kept (its own summation order) must not come back
    assert linalg.column_norms is extended.column_norms
    assert "column_norms" not in vars(lstsq) or lstsq.column_norms is extended.column_norms


def test_column_norms_are_exact_to_their_summation_order() -> None:
    eps = 2.0**-52
    M = np.random.default_rng(5).uniform(0.5, 1.0, (20_000, 3))
    exact = _exact_norms(M)
    # C-ordered, several columns (the solver makes A contiguous): the squares added row after
    # row, the bits of einsum's sum (the solvers' own before the two helpers were merged: no
    # solver result moved), within the naive sum's bound n · eps
    got = extended.column_norms(M)
    big = M.max(axis=0)
    np.testing.assert_array_equal(got, big * np.sqrt(np.einsum("ij,ij->j", M / big, M / big)))
    assert np.all(np.abs(got - exact) <= M.shape[0] * eps * exact)
    # Fortran-ordered or a single column: pairwise down each column, within 2 eps (einsum's
    # order: 5.3 and 6.5 eps on this draw)
    for V in (np.asfortranarray(M), M[:, :1].copy()):
        want = exact[: V.shape[1]]
        assert np.all(np.abs(extended.column_norms(V) - want) <= 2 * eps * want)


@pytest.mark.parametrize("power", [-1000, -600, 600, 1000])
def test_column_norms_neither_overflow_nor_underflow(power: int) -> None:
    # each column scaled by its largest entry: a power of two scales the norms exactly, where
    # the plain sum of squares would be inf or 0
    M = np.random.default_rng(6).standard_normal((300, 4))
    M[:, 2] = 0.0  # an all-zero column: norm 0
    np.testing.assert_array_equal(
        extended.column_norms(np.ldexp(M, power)), np.ldexp(extended.column_norms(M), power)
    )
    assert extended.column_norms(M)[2] == 0.0
    np.testing.assert_array_equal(extended.column_norms(np.zeros((0, 3))), np.zeros(3))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10, 1001, 40_000])
def test_residual_quartiles_are_numpys(n: int) -> None:
    # R's type 7 quantiles: np.quantile's, to the last bit, on ties, sorted and reversed
    # columns and magnitudes over 2^±40
    rng = np.random.default_rng(n)
    E = rng.standard_normal((n, 4))
    E[:, 1] = np.round(E[:, 1] * 2)
    E[:, 2] = np.sort(E[:, 2])[::-1]
    E[:, 3] = np.exp(20 * E[:, 3]) * np.sign(E[:, 0])
    want = np.quantile(E, [0.0, 0.25, 0.5, 0.75, 1.0], axis=0).T
    np.testing.assert_array_equal(residual_quantiles(E), want)
    np.testing.assert_array_equal(residual_quantiles(E[:, :1]), want[:1])
