"""Ordinary least squares with its classical inference, by two routes to one result.

:func:`ols` works on the rows in memory (QR of the centred design, residuals in extended
precision, every covariance type); :func:`ols_from_stats` on the sufficient statistics of a
streamed or gradient-descent fit (a Cholesky factor of the Gram matrix; the HC types by a
second pass over the rows). Each route computes the coefficients, the kept (estimable)
columns and the sums of squares its own way; what follows is shared: the checks of the
options, the residual degrees of freedom, the rank-deficiency warning and estimability, and
:func:`_assemble`, which derives the tests, fit statistics and predictor of the result.

Weighted least squares (``weights``; weighted :class:`SufficientStats`) follows R's
``lm(..., weights = w)``: the rows are scaled by ``sqrt(w)`` (design, targets, residuals), the
centring is on the weighted means, RSS and MSS are weighted sums of squares, σ² = RSS / df with
``df = (rows of weight > 0) - p``, ``n`` (R's ``nobs``) counts the rows of positive weight, and
the log-likelihood is R's ``logLik.lm``: ``0.5 Σ log w - n/2 (log 2π + 1 - log n + log RSS)``
over those rows. Rows of weight 0 give what leaving them out gives (sandwich's HC types on such
a fit instead count them in n, which scales HC0/HC1 by (n₊/n)² and misaligns the leverages of
HC2/HC3; gradfit follows the fit without them).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

from gradfit.errors import RankDeficiencyWarning, ValidationError
from gradfit.inference.cluster import ClusterScores, cluster_covariances
from gradfit.inference.covariance import (
    CLUSTER,
    Factor,
    check_cov_type,
    embed,
    nonrobust_covariances,
    robust_covariances,
    robust_over_batches,
)
from gradfit.inference.distributions import special
from gradfit.inference.linalg import (
    EPS,
    column_norms,
    mean_ext,
    residual_quantiles,
    residuals,
    solve_upper_identity,
    sum_squares,
)
from gradfit.inference.predictor import Estimability, OLSPredictor, estimability_of
from gradfit.inference.result import OLSResult
from gradfit.solvers.lstsq import Factored, drop_weakest, independent_columns, solve_arrays
from gradfit.solvers.stats import SufficientStats
from gradfit.validation import as_matrix, as_targets, check_lengths, check_weights

__all__ = ["ols", "ols_from_stats"]

_STATS_ALIAS = 10.0  # from statistics: alias within 10 sqrt(d eps) of the span (see there)
# HC types in memory: up to this condition number of the (equilibrated) design the rows of Q
# come from A R⁻¹ (error ~ condition * eps, below 1e-12), beyond it from Householder's Q.
_IMPLICIT_Q_CONDITION = 1e4
# HC0/HC1 on the Cholesky route are summed over the design's rows (no product with R⁻¹) up to
# this condition: their rounding through G⁻¹ on both sides is about condition² · eps of them
# (measured against the Householder route's: 1e-13 at condition 100, 1e-11 at 1e3), beyond it
# in Q's coordinates (A R⁻¹), as accurate as Householder's there (within 2e-13 to 1e4).
_GRAM_HC_CONDITION = 4.0


# ----------------------------------------------------------------------------- shared


def _positive_diagonal(R: np.ndarray) -> np.ndarray:
    """The signs (r,) that turn the rows of the triangular ``R`` to a positive diagonal (1
    where the diagonal is 0)."""
    signs: np.ndarray = np.where(np.diagonal(R) < 0, -1.0, 1.0)
    return signs


class _Options(NamedTuple):
    """The checked choices of a call, the same for both routes."""

    fit_intercept: bool
    cov_type: str
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]


class _Estimates(NamedTuple):
    """What a route (rows in memory, or sufficient statistics) gives :func:`_assemble`."""

    weight: np.ndarray  # (k, d), 0 for the aliased columns
    bias: np.ndarray  # (k,)
    kept: np.ndarray  # (d,) bool: the estimable columns
    center: np.ndarray  # (d,): x̄, or 0 without an intercept
    rss: np.ndarray  # (k,) residual sums of squares
    mss: np.ndarray  # (k,) model sums of squares (R's: centred, or uncentred without intercept)
    n: int  # rows (of positive weight, when weighted)
    total: float  # n, or the total weight Σ w
    log_weight_sum: float  # Σ log w over the rows of positive weight (0 unweighted)
    weighted: bool  # weights that are not all equal (R's "Weighted Residuals")
    factor: Factor  # (AᵀA)⁻¹ of the centred (weighted) kept columns
    effects: np.ndarray  # (k, d) R's effects Qᵀy of the kept columns in order, 0 for the aliased
    sample_weights: bool  # the fit had weights=
    n_groups: int | None = None  # cov_type="cluster": the groups


def _check_intercept(fit_intercept: Any) -> bool:
    if not isinstance(fit_intercept, (bool, np.bool_)):
        raise ValidationError(f"fit_intercept must be True or False, got {fit_intercept!r}")
    return bool(fit_intercept)


def _refuse_penalty(alpha: Any) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating, np.integer)):
        raise ValidationError(f"alpha must be a number, got {alpha!r}")
    if float(alpha) != 0.0:
        raise ValidationError(
            f"standard errors need an unpenalized least-squares fit, got alpha={alpha!r}: the "
            "coefficients of ridge and elastic-net fits are biased and the classical standard "
            "errors, tests and intervals do not apply to them; refit with alpha=0"
        )


def _names(names: Sequence[str] | None, count: int, prefix: str, what: str) -> tuple[str, ...]:
    if names is None:
        return tuple(f"{prefix}{i}" for i in range(count))
    if isinstance(names, str):  # one name (e.g. target_names="mpg" for one target)
        names = (names,)
    if len(names) != count:
        raise ValidationError(
            f"{what}_names must name each of the {count} {what}(s), got {names!r}"
        )
    if not all(isinstance(name, str) for name in names):
        raise ValidationError(f"{what}_names must be strings, got {names!r}")
    return tuple(names)


def _frame_names(value: Any) -> tuple[str, ...] | None:
    """The column names of a table (a pandas DataFrame's ``columns``, a Series' ``name``) when
    every one is a string, as statsmodels and scikit-learn take them; None otherwise (arrays,
    tensors, unnamed or numbered columns: the default names)."""
    columns = getattr(value, "columns", None)
    if columns is None and getattr(value, "ndim", None) == 1:
        name = getattr(value, "name", None)
        columns = None if name is None else [name]
    if columns is None or isinstance(value, (np.ndarray, torch.Tensor)):
        return None
    names = tuple(columns)
    return names if names and all(isinstance(name, str) for name in names) else None


def _check_df(n: int, r: int, fit_intercept: bool) -> int:
    df_resid = n - r - int(fit_intercept)
    if df_resid < 1:
        p = r + int(fit_intercept)
        raise ValidationError(
            f"standard errors need more rows than estimated coefficients: {n} row(s) for {p} "
            f"coefficient(s) leaves {df_resid} residual degrees of freedom; add rows or "
            "remove features"
        )
    return df_resid


def _check_groups(cov_type: str, groups: Any, n: int) -> np.ndarray | None:
    """The rows' group labels (n,) for ``cov_type="cluster"`` (which needs them), else None
    (and groups given with another ``cov_type`` are refused)."""
    if cov_type != CLUSTER:
        if groups is not None:
            raise ValidationError(
                f"groups= goes with cov_type='cluster' (clustered standard errors), got "
                f"cov_type={cov_type!r}"
            )
        return None
    if groups is None:
        raise ValidationError("cov_type='cluster' needs groups=: each row's group (cluster) label")
    if isinstance(groups, torch.Tensor):
        groups = groups.detach().cpu().numpy()
    labels = np.asarray(groups)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValidationError(
            f"groups must give one label per row: X has {n} row(s), groups has shape {labels.shape}"
        )
    return labels


def _warn_aliased(kept: np.ndarray, names: tuple[str, ...], precision: str = "") -> None:
    aliased = [names[i] for i in np.flatnonzero(~kept)]
    warnings.warn(
        f"X is rank deficient{precision}: {len(aliased)} coefficient(s) are not estimable, "
        f"being (numerically) combinations of the features before them: {', '.join(aliased)}. "
        "They are set to 0 with NaN standard errors (R's NA) and the others are estimated "
        "without them. Remove collinear or constant features.",
        RankDeficiencyWarning,
        stacklevel=4,  # the caller of ols or ols_from_stats (through _aliasing)
    )


def _options(
    fit_intercept: bool,
    cov_type: str,
    feature_names: Sequence[str] | None,
    target_names: Sequence[str] | None,
    d: int,
    k: int,
) -> _Options:
    """The options with the names checked against ``d`` features and ``k`` targets (default
    ``x0, x1, ...`` and ``y0, y1, ...``)."""
    features = _names(feature_names, d, "x", "feature")
    return _Options(fit_intercept, cov_type, features, _names(target_names, k, "y", "target"))


def _aliasing(
    kept: np.ndarray,
    n: int,
    options: _Options,
    center: np.ndarray,
    root: Callable[[], tuple[np.ndarray, np.ndarray]],
    precision: str = "",
) -> tuple[int, Estimability | None]:
    """The residual degrees of freedom of a design with the ``kept`` columns (refused when
    none are left) and, for a rank-deficient one, the warning that names the aliased columns
    and the :class:`Estimability` of new rows. ``root()``: a square root F (FᵀF = the
    equilibrated Gram matrix) and the column norms that equilibrate it, computed only then."""
    df_resid = _check_df(n, int(kept.sum()), options.fit_intercept)
    if bool(kept.all()):
        return df_resid, None
    _warn_aliased(kept, options.feature_names, precision)
    F, scale = root()
    return df_resid, estimability_of(F, center, scale, kept, options.feature_names)


def _residual_variance(rss: np.ndarray, df_resid: int) -> np.ndarray:
    """``σ² = RSS / df_resid`` (k,)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma2: np.ndarray = rss / df_resid
    return sigma2


def _assemble(
    estimates: _Estimates,
    options: _Options,
    cov_wb: np.ndarray,
    cov_wc: np.ndarray,
    residual_quantiles: np.ndarray | None,
    estimable: Estimability | None,
) -> OLSResult:
    """The tests, fit statistics and predictor shared by the in-memory and the
    sufficient-statistics routes, from the covariances (k, p', p') over the kept coefficients
    of (w, b) and of (w, c)."""
    weight, bias, kept, center, rss, mss, n = estimates[:7]
    fit_intercept, cov_type = options.fit_intercept, options.cov_type
    r = int(kept.sum())
    df_model = r
    df_resid = n - r - int(fit_intercept)
    n_params = r + int(fit_intercept) + 1  # σ counts, as in R's logLik
    sigma2 = _residual_variance(rss, df_resid)
    if bool(np.isinf(sigma2).any() or np.isinf(cov_wb).any() or np.isinf(cov_wc).any()):
        # Beyond float64 (a column's scale below about 1e-154, the covariance's entries its
        # inverse square): inf standard errors would print t = 0 and p = 1 as if measured.
        raise ValidationError(
            "the coefficients' covariance overflows float64 (a column varies by less than "
            "about 1e-154, or the residuals are beyond about 1e154); rescale the columns "
            "(e.g. change their units) for standard errors and intervals"
        )
    variances = np.diagonal(cov_wb, 0, 1, 2)[:, :r]  # (k, r): the kept slopes'
    tiny = np.finfo(np.float64).tiny
    if bool(((variances < tiny) & (sigma2[:, None] > 0)).any()):
        # The mirror: a column beyond about 1e154 has variances below float64's normal range,
        # 0 at 1e200: a standard error of 0 would print t = inf and p = 0 as if measured.
        raise ValidationError(
            "the coefficients' covariance underflows float64 (a column's values are beyond "
            "about 1e154); rescale the columns (e.g. change their units) for standard errors "
            "and intervals"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = mss / (mss + rss)
        r2_adj = 1.0 - (1.0 - r2) * (n - int(fit_intercept)) / df_resid
        if cov_type == "nonrobust":
            f_stat = (mss / df_model) / sigma2
        else:  # robust Wald test of all (estimable) slopes
            f_stat = np.full(weight.shape[0], math.nan)
            if r:
                V = cov_wb[:, :r, :r]  # (k, r, r): the kept slopes come first
                beta = weight[:, kept]  # (k, r)
                for j in range(weight.shape[0]):
                    if not _full_rank(V[j]):  # no Wald test (NaN), not rounding's noise
                        continue
                    try:
                        z = np.linalg.solve(V[j], beta[j])
                    except np.linalg.LinAlgError:
                        continue
                    f_stat[j] = float(beta[j] @ z) / r
        f_p = np.asarray(special().fdtrc(df_model, df_resid, f_stat), dtype=np.float64)  # F tail
        if df_model == 0:
            f_p = np.full_like(f_stat, math.nan)
        loglik = 0.5 * estimates.log_weight_sum - 0.5 * n * (
            math.log(2 * math.pi) + np.log(rss / n) + 1.0
        )
    cov_public = embed(cov_wb, kept, fit_intercept, math.nan)
    cov_predict = embed(cov_wc, kept, fit_intercept, 0.0)

    def t64(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))

    sigma = np.sqrt(sigma2)
    predictor = OLSPredictor(
        weight=t64(weight),
        bias=t64(bias),
        center=t64(center),
        covariance=t64(cov_predict),
        sigma=t64(sigma),
        df_resid=df_resid,
        fit_intercept=fit_intercept,
        cov_type=cov_type,
        weighted=estimates.sample_weights,
    )
    return OLSResult(
        weight=t64(weight),
        bias=t64(bias),
        covariance=t64(cov_public),
        sigma=t64(sigma),
        r2=t64(r2),
        r2_adj=t64(r2_adj),
        f_statistic=t64(f_stat),
        f_pvalue=t64(f_p),
        log_likelihood=t64(loglik),
        aic=t64(-2.0 * loglik + 2.0 * n_params),
        bic=t64(-2.0 * loglik + math.log(n) * n_params),
        n=n,
        df_model=df_model,
        df_resid=df_resid,
        fit_intercept=fit_intercept,
        cov_type=cov_type,
        aliased=torch.from_numpy(~kept),
        feature_names=options.feature_names,
        target_names=options.target_names,
        predictor=predictor,
        residual_quantiles=None if residual_quantiles is None else t64(residual_quantiles),
        estimable=estimable,
        weighted=estimates.weighted,
        factor=estimates.factor,
        effects=t64(estimates.effects),
        total=float(estimates.total),
        sample_weights=estimates.sample_weights,
        n_groups=estimates.n_groups,
    )


# ----------------------------------------------------------------------------- in memory


class _KeptFit(NamedTuple):
    weight: np.ndarray  # (k, d), 0 for the aliased columns
    bias: np.ndarray  # (k,)
    kept: np.ndarray  # (d,) bool
    condition: float  # of the centred, equilibrated design
    factored: Factored | None  # the design's QR, full rank only (else None)


def _fit_kept(
    Xn: np.ndarray, Yn: np.ndarray, fit_intercept: bool, w: np.ndarray | None = None
) -> _KeptFit:
    """Least-squares weight (k, d), bias (k,) and the kept-columns mask (d,): all columns for a
    full-rank design; otherwise R's solution (:func:`gradfit.least_squares` with
    ``rank_deficient="aliased"``: the columns independent of those before them, refitted).
    ``w``: the rows' (positive) weights of a weighted fit. A full-rank fit hands over its
    factorization (:class:`~gradfit.solvers.lstsq.Factored`), which the inference reuses.
    No column (d = 0, with an intercept): the intercept alone, the (weighted) mean."""
    if Xn.shape[1] == 0:
        k = Yn.shape[1]
        return _KeptFit(np.zeros((k, 0)), mean_ext(Yn, w), np.zeros(0, bool), 1.0, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankDeficiencyWarning)  # we warn with the names
        fit, factored = solve_arrays(Xn, Yn, fit_intercept, "aliased", w)
    aliased = fit.aliased.numpy() if fit.aliased is not None else np.zeros(Xn.shape[1], bool)
    return _KeptFit(fit.weight.numpy(), fit.bias.numpy(), ~aliased, fit.condition_number, factored)


def ols(
    X: Any,
    Y: Any,
    *,
    fit_intercept: bool = True,
    cov_type: str = "nonrobust",
    feature_names: Sequence[str] | None = None,
    target_names: Sequence[str] | None = None,
    weights: Any = None,
    groups: Any = None,
) -> OLSResult:
    """Ordinary least squares with standard errors, tests and intervals (see the module's
    docstring for the method); weighted least squares with ``weights``.

    Parameters
    ----------
    X : (n, d) tensor or array
    Y : (n,) or (n, k) tensor or array
    fit_intercept : bool
        Estimate a bias per target, or force the model through the origin (then R² and F
        are R's uncentred ones and ``df_model = d``).
    cov_type : {"nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster"}
        Homoskedastic errors, White/MacKinnon heteroskedasticity-consistent covariance, or
        cluster-robust (CR1, with ``groups``; see :mod:`gradfit.inference.cluster`).
    feature_names, target_names : sequences of str, or one str for one name, optional
        Names for :meth:`OLSResult.summary` (default: a pandas DataFrame's column names or a
        Series' name when they are strings, else ``x0, x1, ...`` and ``y0, y1, ...``).
    weights : (n,) tensor, array or list, optional
        Row weights, finite and >= 0, not all 0: weighted least squares with R's
        conventions (``lm(..., weights = w)``; see the module's docstring). Rows of weight 0
        do not count (in n, the degrees of freedom, the log-likelihood).
    groups : (n,) array or list of labels, optional
        Each row's group (cluster) for ``cov_type="cluster"``, and only then.

    Returns
    -------
    OLSResult

    Raises
    ------
    ValidationError
        Bad arguments (a negative or non-finite weight: naming its row), or no residual
        degrees of freedom (n <= number of coefficients).

    Warns
    -----
    RankDeficiencyWarning
        Some coefficients are not estimable; they get weight 0 and NaN standard errors (R's
        NA), the later of collinear features being aliased, as in R's ``lm``.

    Examples
    --------
    >>> import torch
    >>> X = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    >>> fit = ols(X, torch.tensor([1.0, 3.0, 2.0, 5.0]))
    >>> round(float(fit.weight[0, 0]), 6), round(float(fit.weight_se[0, 0]), 6)
    (1.1, 0.519615)
    >>> round(float(fit.r2[0]), 6), fit.df_resid
    (0.691429, 2)
    """
    cov_type = check_cov_type(cov_type)
    fit_intercept = _check_intercept(fit_intercept)
    if feature_names is None:
        feature_names = _frame_names(X)
    if target_names is None:
        target_names = _frame_names(Y)
    # No column with an intercept: the intercept alone (R's y ~ 1)
    Xt = as_matrix(X, "X", dtype=torch.float64, min_columns=0 if fit_intercept else 1)
    Yt = as_targets(Y, "Y", dtype=torch.float64)
    check_lengths(Xt, Yt)
    Xn, Yn = Xt.cpu().numpy(), Yt.cpu().numpy()
    labels = _check_groups(cov_type, groups, Xn.shape[0])
    w: np.ndarray | None = None
    zero_rows, log_weight_sum, varying = 0, 0.0, False
    if weights is not None:
        w = check_weights(weights, Xn.shape[0], "weights").numpy()
        varying = bool(w.min() != w.max())
        if not bool((w > 0).all()):  # R leaves rows of weight 0 out of the fit
            keep = w > 0
            zero_rows = int((~keep).sum())
            Xn, Yn, w = Xn[keep], Yn[keep], w[keep]
            labels = None if labels is None else labels[keep]
        log_weight_sum = math.fsum(np.log(w).tolist())
    n, d = Xn.shape
    k = Yn.shape[1]
    total = float(n) if w is None else float(np.sum(w.astype(np.longdouble)))
    options = _options(fit_intercept, cov_type, feature_names, target_names, d, k)

    root_w = None if w is None else np.sqrt(w)
    weight, bias, kept, condition, factored = _fit_kept(Xn, Yn, fit_intercept, w)
    if factored is not None:  # the solver's centred (weighted) design and its QR
        center, A, B = factored.x_mean, factored.A, factored.B
    elif fit_intercept:
        center = mean_ext(Xn, w)
        A = Xn - center  # (n, d) centred design
        B = Yn - mean_ext(Yn, w)
    else:
        center, A, B = np.zeros(d), Xn, Yn
    if factored is None and root_w is not None:
        # the rows scaled by sqrt(w): weighted least squares is OLS on them
        A, B = A * root_w[:, None], B * root_w[:, None]

    def root() -> tuple[np.ndarray, np.ndarray]:
        norms = column_norms(A)
        safe = np.where(norms > 0, norms, 1.0)
        a_e, _ = torch.geqrf(torch.from_numpy(np.ascontiguousarray(A / safe)))
        return torch.triu(a_e[: min(n, d)]).numpy(), safe  # R factor of the equilibrated design

    df_resid, estimable = _aliasing(kept, n, options, center, root)
    r = int(kept.sum())
    A_k = np.ascontiguousarray(A if r == d else A[:, kept])  # (n, r)
    W_k = weight[:, kept]  # (k, r)
    if factored is not None and factored.residual is not None:
        E = factored.residual  # the solver's, from its refinement (extended precision)
    else:
        E = residuals(A_k, B, W_k)  # (n, k)
    rss = sum_squares(E)
    fitted = B - E  # centred fitted values (or raw, through the origin): R's y - r
    mss = sum_squares(fitted)
    center_k = center[kept]

    sigma2 = _residual_variance(rss, df_resid)
    effects = np.zeros((k, d))
    a: torch.Tensor | None = None  # Householder's reflectors (None: the Cholesky route)
    tau: torch.Tensor | None = None
    if r:
        if factored is not None:  # one factorization: the solver's (QR, or Gram's Cholesky)
            a, tau, R, qtb = factored.a, factored.tau, factored.R, factored.qtb
        else:  # rank deficient: the QR of the kept columns
            a, tau = torch.geqrf(torch.from_numpy(A_k))
            R = torch.triu(a[:r]).numpy()
            qtb = torch.ormqr(a, tau, torch.from_numpy(np.ascontiguousarray(B)), transpose=True)[
                :r
            ].numpy()
        scale = column_norms(R)  # those of A_k: QR preserves column norms
        factor = Factor(r_inv=solve_upper_identity(R / scale), scale=scale)
        # R's effects Qᵀb: their squares are the sequential sums of squares of the columns;
        # their signs those of a positive diagonal of R on every route (Householder's rows
        # turned by the signs of its diagonal; the Cholesky factor's is positive).
        effects[:, kept] = (_positive_diagonal(R)[:, None] * qtb).T
    else:  # no estimable slope: the intercept alone, or nothing
        factor = Factor(r_inv=np.zeros((0, 0)), scale=np.zeros(0))
    n_groups = None
    if cov_type == "nonrobust":
        cov_wb, cov_wc = nonrobust_covariances(factor, sigma2, center_k, total, fit_intercept)
    elif cov_type == CLUSTER:
        scores = ClusterScores(weight, bias, shift=center, max_groups=None)
        scores.add(Xn, E if root_w is None else E * root_w[:, None], labels)
        n_groups = scores.n_groups
        cov_wb, cov_wc = cluster_covariances(
            scores, factor, kept, center, total, fit_intercept, n, df_resid
        )
    else:
        # The rows of Q from A R⁻¹ (never stored whole) where that is accurate; an explicit Q
        # (Householder's) for an ill-conditioned or rank-deficient design.
        # (The solver's Cholesky factor comes only with condition <= 1e3, below
        # _IMPLICIT_Q_CONDITION: no Householder Q.)
        Q = None if r else np.zeros((n, 0))  # no estimable slope: an empty Q
        if (factored is None or not condition <= _IMPLICIT_Q_CONDITION) and a is not None:
            Q = torch.linalg.householder_product(a, tau).numpy()
        # HC0/HC1 in the design's coordinates (G⁻¹ meat G⁻¹: its rounding grows as condition²)
        # only on a design of condition <= _GRAM_HC_CONDITION, else in Q's (A R⁻¹)
        gram = factored is not None and factored.a is None and condition <= _GRAM_HC_CONDITION
        cov_wb, cov_wc = robust_covariances(
            A_k, factor, E, cov_type, center_k, df_resid, fit_intercept, root_w, total, Q, gram
        )

    # R's (weighted) residuals sqrt(w) e: those of the rows of weight 0 are 0.
    listed = np.vstack([E, np.zeros((zero_rows, k))]) if zero_rows else E
    quantiles = residual_quantiles(listed)  # (k, 5): np.quantile's (R's type 7)
    estimates = _Estimates(
        weight,
        bias,
        kept,
        center,
        rss,
        mss,
        n,
        total,
        log_weight_sum,
        varying,
        factor,
        effects,
        weights is not None,
        n_groups,
    )
    return _assemble(estimates, options, cov_wb, cov_wc, quantiles, estimable)


# ----------------------------------------------------------------------------- from statistics


def ols_from_stats(
    stats: SufficientStats,
    weight: Any,
    bias: Any,
    *,
    fit_intercept: bool = True,
    cov_type: str = "nonrobust",
    alpha: float = 0.0,
    feature_names: Sequence[str] | None = None,
    target_names: Sequence[str] | None = None,
    batches: Callable[[], Iterable[tuple[Any, ...]]] | None = None,
    collect: Callable[[Callable[[], np.ndarray]], np.ndarray] | None = None,
    clusters: ClusterScores | None = None,
) -> OLSResult:
    """The :func:`ols` result of a fit known only through its sufficient statistics.

    For a streamed least-squares fit or a converged gradient-descent fit: ``stats`` are those
    of the features (in their original units, not standardized) and targets, and ``weight``
    (k, d), ``bias`` (k,) the fitted coefficients. With ``RSS_j = n · mse_j`` from the
    statistics, ``σ² = RSS / df_resid`` and the nonrobust covariance of the module's
    docstring, with ``G = (n Szz)⁻¹`` (centred, with an intercept) or
    ``(n (Szz + z̄ z̄ᵀ))⁻¹`` (through the origin) from the Cholesky factor of the equilibrated
    Gram matrix. The inference is that of the least-squares optimum: it assumes the weights
    are at it (a gradient-descent fit that has converged).

    A rank-deficient Gram matrix warns; the given weights are re-expressed on the estimable
    columns (same predictions; the aliased coefficients become 0 with NaN errors).

    Weighted statistics (``stats.weighted``, from row weights) give weighted least squares
    as :func:`ols` with ``weights`` does (R's ``lm(..., weights = w)``): ``n`` is the
    number of rows of positive weight, RSS = ``Σw · mse``, ``G`` from ``Σw · Szz``; the
    second pass for HC types then yields ``(X, Y, w)`` blocks.

    The heteroskedasticity-consistent types (HC0-HC3) need each row's residual and leverage:
    give ``batches``, a callable that returns a fresh iterable over the same rows as blocks
    ``(X (m, d), Y (m, k))``, and they are computed in one more pass over them (the leverage
    ``h_i = 1/n + ||(x_i - x̄) L||²`` with ``L Lᵀ = (AᵀA)⁻¹`` from the statistics' factor, and
    the sandwich sums accumulated block by block); without it they are refused. ``collect``:
    for rows spread over a group of processes (each passing its own ``batches``), a callable
    that runs the given function on this process and returns the sum of its results over the
    group (raising on every process what any process raised); default: the function's own
    result.
    ``alpha > 0`` is refused (a penalized fit has no classical standard errors).

    ``cov_type="cluster"`` needs ``clusters``, the per-group score sums of every row at the
    given ``weight`` and ``bias`` (:class:`~gradfit.inference.cluster.ClusterScores`, fed
    batch by batch in a pass after the fit and merged across processes; ``shift`` best the
    statistics' ``zbar``).
    """
    cov_type = check_cov_type(cov_type)
    second_pass = None  # the rows again, for the HC types
    if (cov_type == CLUSTER) != (clusters is not None):
        raise ValidationError(
            "cov_type='cluster' needs clusters= (a ClusterScores of the rows' groups)"
            if clusters is None
            else f"clusters= goes with cov_type='cluster', got cov_type={cov_type!r}"
        )
    if clusters is not None and not isinstance(clusters, ClusterScores):
        raise ValidationError(f"clusters must be a ClusterScores, got {type(clusters).__name__}")
    if cov_type not in ("nonrobust", CLUSTER):
        if batches is None:
            raise ValidationError(
                f"cov_type={cov_type!r} needs the data rows (each residual and leverage), which "
                "sufficient statistics do not keep: pass batches= (a second pass over the "
                "rows), or use gradfit.ols on the data in memory"
            )
        second_pass = batches
    _refuse_penalty(alpha)
    if not isinstance(stats, SufficientStats):
        raise ValidationError(f"stats must be a SufficientStats, got {type(stats).__name__}")
    fit_intercept = _check_intercept(fit_intercept)
    zbar = stats.zbar.detach().cpu().double().numpy()
    ybar = stats.ybar.detach().cpu().double().numpy()
    Szz = stats.Szz.detach().cpu().double().numpy()
    d, k, n = zbar.shape[0], ybar.shape[0], int(stats.n_positive)
    total = stats.total  # n, or the total weight Σ w
    # no feature with an intercept: the intercept alone (R's y ~ 1)
    W = as_matrix(weight, "weight", dtype=torch.float64, min_columns=min(d, 1)).cpu()
    b = as_targets(bias, "bias", dtype=torch.float64).cpu()
    if W.shape != (k, d) or b.shape != (k, 1):
        raise ValidationError(
            f"weight must be ({k}, {d}) and bias ({k},) for statistics of {d} feature(s) and "
            f"{k} target(s), got {tuple(W.shape)} and ({b.shape[0]},)"
        )
    if not fit_intercept and bool((b != 0).any()):
        raise ValidationError("fit_intercept=False but bias is not zero")
    options = _options(fit_intercept, cov_type, feature_names, target_names, d, k)
    Wn, bn = W.numpy().copy(), b[:, 0].numpy().copy()

    device = stats.zbar.device
    rss = total * stats.per_target_mse(W.to(device), b[:, 0].to(device)).cpu().numpy()
    S = Szz if fit_intercept else Szz + np.outer(zbar, zbar)  # Gram / n
    mss = total * ((Wn @ S) * Wn).sum(axis=1)
    center = zbar if fit_intercept else np.zeros(d)

    norms = np.sqrt(np.clip(np.diagonal(S), 0.0, None))
    safe = np.where(norms > 0, norms, 1.0)
    C = S / np.outer(safe, safe)  # equilibrated: unit diagonal (zero for a constant column)
    lam, U = np.linalg.eigh((C + C.T) / 2)
    lam_max = max(float(lam[-1]), 0.0) if d else 0.0  # d = 0: the intercept alone
    # The Gram matrix squares the condition number: a column closer than ~sqrt(eps) to the
    # span of the others leaves no correct digit in G. Such columns are treated as aliased
    # (with a margin of _STATS_ALIAS over the eigenvalue floor of SufficientStats.optimum).
    floor = lam_max * max(d, 1) * EPS
    kept = norms > 0
    distance = np.ones(d)
    if d and not (bool(kept.all()) and float(lam[0]) > _STATS_ALIAS**2 * floor):
        F = np.sqrt(np.clip(lam, 0.0, None))[:, None] * U.T  # FᵀF = C
        kept, distance = independent_columns(F, _STATS_ALIAS * math.sqrt(floor))
    while True:
        index = np.flatnonzero(kept)
        if not index.size:
            break
        try:
            L = np.linalg.cholesky(C[np.ix_(index, index)])
        except np.linalg.LinAlgError:
            kept = drop_weakest(kept, distance)
            continue
        break
    r = int(kept.sum())

    def root() -> tuple[np.ndarray, np.ndarray]:
        return np.sqrt(np.clip(lam, 0.0, None))[:, None] * U.T, safe  # rootᵀ root = C

    precision = " to the precision of its sufficient statistics"
    df_resid, estimable = _aliasing(kept, n, options, center, root, precision)
    if r < d:
        # Re-express the given weights on the kept columns: Z_a = Z_k T (+ offset), T from the
        # Gram blocks, so the predictions do not change.
        alias = np.flatnonzero(~kept)
        if r:
            Linv = solve_upper_identity(L.T)  # R_e⁻¹ with R_e = Lᵀ
            G_e = Linv @ Linv.T  # C_kk⁻¹
            T = (G_e @ C[np.ix_(index, alias)]) * safe[alias] / safe[index][:, None]  # (r, a)
            Wn[:, index] += Wn[:, alias] @ T.T
            if fit_intercept:
                bn += Wn[:, alias] @ (zbar[alias] - T.T @ zbar[index])
        Wn[:, alias] = 0.0

    sigma2 = _residual_variance(rss, df_resid)
    effects = np.zeros((k, d))
    n_groups = None
    factor = Factor(r_inv=np.zeros((0, 0)), scale=np.zeros(0))
    if r:
        factor = Factor(r_inv=solve_upper_identity(L.T), scale=norms[index] * math.sqrt(total))
        # R's effects R⁻ᵀ Aᵀb with R = sqrt(W) Lᵀ D: sqrt(W) L⁻¹ D⁻¹ (Aᵀb / W).
        Szy = stats.Szy.detach().cpu().double().numpy()
        cross = Szy if fit_intercept else Szy + np.outer(zbar, ybar)  # (d, k)
        effects[:, index] = (
            math.sqrt(total) * (factor.r_inv.T @ (cross[index] / norms[index][:, None])).T
        )
    if clusters is not None:
        if not (
            np.array_equal(clusters.weight, W.numpy())
            and np.array_equal(clusters.bias, b[:, 0].numpy())
        ):
            raise ValidationError(
                "clusters= holds the sums of other coefficients than weight and bias"
            )
        n_groups = clusters.n_groups
        cov_wb, cov_wc = cluster_covariances(
            clusters, factor, kept, center, total, fit_intercept, n, df_resid
        )
    elif r or (fit_intercept and second_pass is not None):  # HC of the intercept alone too
        if second_pass is None:
            cov_wb, cov_wc = nonrobust_covariances(
                factor, sigma2, center[kept], total, fit_intercept
            )
        else:
            cov_wb, cov_wc = robust_over_batches(
                second_pass,
                collect,
                factor,
                kept,
                Wn,
                bn,
                center,
                cov_type,
                n,
                df_resid,
                fit_intercept,
                total=total if stats.weighted else None,
            )
    elif fit_intercept:
        cov_wb = cov_wc = (sigma2 / total)[:, None, None] * np.ones((k, 1, 1))
    else:
        cov_wb = cov_wc = np.zeros((k, 0, 0))
    # Whether the weights varied is not kept by the statistics: weighted ones say "Weighted".
    estimates = _Estimates(
        Wn,
        bn,
        kept,
        center,
        rss,
        mss,
        n,
        total,
        stats.log_weight_sum,
        stats.weighted,
        factor,
        effects,
        stats.weighted,
        n_groups,
    )
    return _assemble(estimates, options, cov_wb, cov_wc, None, estimable)


def _full_rank(V: np.ndarray) -> bool:
    """Whether the robust covariance ``V`` (r, r) of the slopes has full rank, judged on its
    correlation matrix as ``numpy.linalg.matrix_rank`` judges (eigenvalues above r * eps times
    the largest). A clustered covariance has rank at most G - 1 (the G clusters' scores sum to
    zero): with fewer clusters than slopes, or scores otherwise dependent, the Wald statistic
    of all slopes is undefined, and solving would give a huge number that depends on the
    order the statistics were summed in (the file read whole or streamed)."""
    d = np.sqrt(np.diag(V))
    if not np.all(np.isfinite(d)) or not np.all(d > 0):
        return False
    eig = np.linalg.eigvalsh(V / np.outer(d, d))
    return bool(eig[0] > eig[-1] * V.shape[0] * np.finfo(np.float64).eps)
