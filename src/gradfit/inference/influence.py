"""Per-row regression diagnostics of an OLS fit: fitted values, residuals, leverage,
studentized residuals, Cook's distance, DFFITS, DFBETAS and COVRATIO, as R's ``hatvalues``,
``rstandard``, ``rstudent``, ``cooks.distance``, ``dffits``, ``dfbetas``, ``covratio`` and
``influence.measures`` give them.

Everything comes from the fit's coefficients, σ, residual degrees of freedom and the factor of
``(AᵀA)⁻¹`` that :class:`~gradfit.inference.result.OLSResult` keeps, and from the rows
themselves, one block at a time: :func:`influence_batch` of a block of rows is the block's rows
of the whole table, so a stream gets the diagnostics of every row in one pass over the data
(after the fit), and :meth:`OLSResult.influence` is the same routine over all the rows at once.

With ``e`` the residual ``y - ŷ``, ``e_w = sqrt(w) e`` the weighted residual (``w = 1``
unweighted), ``h`` the leverage (:func:`~gradfit.inference.covariance.hat_values`, the routine
of the HC2/HC3 sandwich), ``s`` the residual standard error, ``df`` the residual degrees of
freedom and ``p`` the rank (estimable coefficients, intercept included)::

    s_(i)     = sqrt((RSS - e_w² / (1 - h)) / (df - 1))    σ without row i (R's influence()$sigma)
    rstandard = e_w / (s sqrt(1 - h))
    rstudent  = e_w / (s_(i) sqrt(1 - h))
    cooks     = rstandard² h / (p (1 - h))
    dffits    = rstudent sqrt(h / (1 - h))
    covratio  = (s_(i) / s)^(2p) / (1 - h)
    dfbeta    = (X̃ᵀX̃)⁻¹ x̃ e_w / (1 - h)                   β̂ - β̂_(i), x̃ = sqrt(w) [1, x]
    dfbetas   = dfbeta / (s_(i) sqrt(diag (X̃ᵀX̃)⁻¹))

R's conventions: the residuals are ``y - ŷ`` (R's ``residuals``), the studentized ones use
``e_w`` (R's ``weighted.residuals``); the coefficients of DFBETAS are R's, the intercept first
then the estimable features (the aliased columns of a rank-deficient fit are left out, as R
leaves them out), named in :attr:`Influence.coefficient_names`. A row of weight 0 is not part
of the fit: R drops it from the influence measures; here it keeps its place, with its fitted
value, residual and leverage 0, and NaN for the other measures. A row of leverage 1 (within
10 eps, as R's ``lm.influence``) gets R's: NaN standardized and studentized residuals, Cook's
distance, DFFITS and covariance ratio, DFBETAS 0, and s_(i) from the other rows' residuals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch

from gradfit.errors import ValidationError
from gradfit.inference.covariance import design_rows, hat_values, nonrobust_covariances
from gradfit.validation import as_matrix, as_targets, check_lengths, check_weights

if TYPE_CHECKING:
    from gradfit.inference.result import OLSResult

__all__ = ["Influence", "influence_batch"]

MEASURES = (
    "fitted",
    "residuals",
    "hat",
    "rstandard",
    "rstudent",
    "cooks_distance",
    "dffits",
    "covratio",
    "sigma",
    "dfbetas",
)


class Influence(NamedTuple):
    """The diagnostics of m rows, float64 tensors: ``hat`` (m,) (the same for every target),
    and per target ``fitted``, ``residuals``, ``rstandard``, ``rstudent``,
    ``cooks_distance``, ``dffits``, ``covratio`` and ``sigma`` (σ without the row) (m, k),
    ``dfbetas`` (m, k, q) with its q coefficients named by ``coefficient_names`` (R's order:
    ``"(Intercept)"`` first, then the estimable features)."""

    fitted: torch.Tensor
    residuals: torch.Tensor
    hat: torch.Tensor
    rstandard: torch.Tensor
    rstudent: torch.Tensor
    cooks_distance: torch.Tensor
    dffits: torch.Tensor
    covratio: torch.Tensor
    sigma: torch.Tensor
    dfbetas: torch.Tensor
    coefficient_names: tuple[str, ...]


def _rows(X: Any, Y: Any, weights: Any, d: int, k: int) -> tuple[np.ndarray, ...]:
    Xt = as_matrix(X, "X", dtype=torch.float64, min_columns=min(d, 1))  # d = 0: y ~ 1
    Yt = as_targets(Y, "Y", dtype=torch.float64)
    check_lengths(Xt, Yt)
    if Xt.shape[1] != d or Yt.shape[1] != k:
        raise ValidationError(
            f"the fit has {d} feature(s) and {k} target(s); X has {Xt.shape[1]} column(s) "
            f"and Y {Yt.shape[1]}"
        )
    Xn, Yn = Xt.cpu().numpy(), Yt.cpu().numpy()
    # One block of many (a stream's batch) may hold only rows of weight 0.
    w = (
        None
        if weights is None
        else check_weights(weights, Xn.shape[0], "weights", all_zero=True).numpy()
    )
    return Xn, Yn, w  # type: ignore[return-value]


def influence_batch(result: OLSResult, X: Any, Y: Any, weights: Any = None) -> Influence:
    """The diagnostics (see the module's docstring) of a block of rows ``X`` (m, d), ``Y``
    (m,) or (m, k) of the data that ``result`` was fitted to, with their ``weights`` (m,) when
    the fit had weights (and only then). The rows of the whole data, in blocks, give the whole
    table block by block (so a stream can call it on each batch after the fit)."""
    factor = result.factor
    if factor is None:  # pragma: no cover - every result of ols and ols_from_stats has one
        raise ValidationError("this OLS result keeps no factor of its design")
    if result.sample_weights != (weights is not None):
        raise ValidationError(
            "the fit had weights: give the rows' weights= too"
            if result.sample_weights
            else "the fit had no weights: give no weights="
        )
    d, k = result.weight.shape[1], result.weight.shape[0]
    Xn, Yn, w = _rows(X, Y, weights, d, k)
    kept = ~result.aliased.numpy()
    center = result.predictor.center.numpy()[kept]
    W, b = result.weight.numpy(), result.bias.numpy()
    fitted = Xn @ W.T + b
    E = Yn - fitted
    root = None if w is None else np.sqrt(w)
    Q = design_rows(Xn, kept, center, factor.left, root)  # (m, r)
    h = hat_values(Q, result.fit_intercept, result.total, root)  # (m,)
    # R's lm.influence: a leverage within 10 eps of 1 is 1 (0.9999999999999998 would give a
    # covratio of 4e16 and zeros where R has NaN).
    h[h > 1.0 - 10.0 * np.finfo(np.float64).eps] = 1.0
    e_w = E if root is None else E * root[:, None]
    s = result.sigma.numpy()  # (k,)
    df = result.df_resid
    p = int(kept.sum()) + int(result.fit_intercept)
    rss = s * s * df
    with np.errstate(divide="ignore", invalid="ignore"):
        one_h = (1.0 - h)[:, None]  # (m, 1)
        s_i = np.sqrt(np.clip(rss - e_w * e_w / one_h, 0.0, None) / (df - 1))
        rstandard = e_w / (s * np.sqrt(one_h))
        rstudent = e_w / (s_i * np.sqrt(one_h))
        cooks = rstandard * rstandard * h[:, None] / (p * one_h)
        dffits = rstudent * np.sqrt(h[:, None] / one_h)
        covratio = (s_i / s) ** (2 * p) / one_h
        # Influence rows u = (X̃ᵀX̃)⁻¹ x̃ in (intercept, slopes): slopes A G = Q R_e⁻ᵀ D⁻¹,
        # intercept sqrt(w)/W - x̄ᵀ(A G) (1/n - x̄ᵀ(A G) unweighted).
        U = np.empty((Xn.shape[0], p))  # (m, p)
        slopes = U[:, p - Q.shape[1] :]
        np.matmul(Q, factor.left.T, out=slopes)
        if result.fit_intercept:
            own = (np.ones(Xn.shape[0]) if root is None else root) / result.total
            U[:, 0] = own - slopes @ center
        unit = nonrobust_covariances(
            factor, np.ones(1), center, result.total, result.fit_intercept
        )[0][0]  # (X̃ᵀX̃)⁻¹, slopes then intercept
        if result.fit_intercept:
            order = [p - 1, *range(p - 1)]
            unit = unit[np.ix_(order, order)]
        scale = np.sqrt(np.diagonal(unit))  # (p,)
        # dfbetas (m, k, p): u e_w / (1 - h) / (s_(i) sqrt(diag))
        dfbetas = U[:, None, :] / scale * (e_w / one_h / s_i)[:, :, None]
    one = h == 1.0
    if one.any():  # leverage 1: as R, s_(i) without the row's term, NaN measures, DFBETAS 0
        s_i[one] = np.sqrt(rss / (df - 1))
        for array in (rstandard, rstudent, cooks, dffits, covratio):
            array[one] = np.nan
        dfbetas[one] = 0.0
    if w is not None and not bool((w > 0).all()):  # rows of weight 0 are not in the fit
        out = w == 0
        h[out] = 0.0
        for array in (rstandard, rstudent, cooks, dffits, covratio, s_i, dfbetas):
            array[out] = np.nan
    names = tuple(np.asarray(result.feature_names, dtype=object)[kept].tolist())
    if result.fit_intercept:
        names = ("(Intercept)", *names)

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))

    return Influence(
        fitted=t(fitted),
        residuals=t(E),
        hat=t(h),
        rstandard=t(rstandard),
        rstudent=t(rstudent),
        cooks_distance=t(cooks),
        dffits=t(dffits),
        covratio=t(covratio),
        sigma=t(s_i),
        dfbetas=t(dfbetas),
        coefficient_names=names,
    )


def influence_whole(result: OLSResult, X: Any, Y: Any, weights: Any = None) -> Influence:
    """:func:`influence_batch` of all the rows of the fit at once, after a check that they are
    as many as the fit counted (rows of positive weight, when weighted)."""
    out = influence_batch(result, X, Y, weights)
    rows = int(out.hat.shape[0])
    if weights is not None:
        rows = int((check_weights(weights, rows, "weights") > 0).sum())
    if rows != result.n:
        raise ValidationError(
            f"the fit counted {result.n} row(s), got {rows}: give the rows (X, Y and weights) "
            "that the fit was made from; for a part of them use gradfit.inference."
            "influence_batch"
        )
    return out
