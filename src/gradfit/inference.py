"""Classical inference for ordinary least squares: standard errors, tests, intervals, summary.

For the least-squares fit ``Y ≈ X @ weight.T + bias`` (n rows, d features, k targets) this
module reports, for each target, what R's ``summary.lm`` and ``predict.lm`` report: standard
errors, t and F tests, confidence intervals of the coefficients, confidence and prediction
intervals of the response, R², the log-likelihood and information criteria.

Method (float64 throughout; the coefficients themselves come from
:func:`gradfit.least_squares`, centred Householder QR with extended-precision refinement):

1. **Centring.** With an intercept the columns of X are centred on their means x̄,
   ``A = X - 1 x̄ᵀ``; without one, ``A = X``. Because ``Aᵀ1 = 0``, the slopes ``w`` and the
   mean response at the centre, ``c = b + w·x̄``, are uncorrelated, and ``XᵀX`` never has to
   hold the large common offsets that make polynomial designs ill-conditioned.
2. **(AᵀA)⁻¹ from a QR factor, never by inverting AᵀA** (which would square the condition
   number): Householder QR ``A = Q R`` (LAPACK ``geqrf``), the columns equilibrated,
   ``R_e = R D⁻¹`` with D the column norms (QR commutes with column scaling), ``R_e`` inverted
   by a triangular solve, and ``G = (AᵀA)⁻¹ = D⁻¹ R_e⁻¹ R_e⁻ᵀ D⁻¹``.
3. **nonrobust** (homoskedastic errors): with ``σ² = RSS / df_resid``::

       Cov(w)    = σ² G
       Var(b)    = σ²/n + x̄ᵀ Cov(w) x̄ = σ² (1/n + ||R_e⁻ᵀ D⁻¹ x̄||²)
       Cov(b, w) = -Cov(w) x̄

4. **HC0-HC3** (White 1980; MacKinnon & White 1985): the estimate moves with the errors as
   ``β̂ - β = Σ_i u_i ε_i``, with influence rows ``u_i = (X̃ᵀX̃)⁻¹ x̃_i``; in the centred
   coordinates ``u_i = [G a_i, 1/n - x̄ᵀ G a_i]`` and ``A G = Q R_e⁻ᵀ D⁻¹``. The sandwich is::

       Cov(β̂) = Σ_i ω_i e_i² u_i u_iᵀ,   ω_i = 1, n/df_resid, 1/(1 - h_i), 1/(1 - h_i)²

   for HC0, HC1, HC2, HC3, with leverages ``h_i = ||Q_i||²`` (plus 1/n with an intercept).
5. **Tests.** ``t = estimate / se`` on ``df_resid = n - p`` degrees of freedom (p the number of
   estimated coefficients, intercept included); ``F = (MSS / df_model) / σ²`` with R's sums
   of squares: ``MSS = Σ (ŷ - ȳ)²`` with an intercept, ``Σ ŷ²`` through the origin, and
   ``R² = MSS / (MSS + RSS)`` (for a model through the origin that is R's uncentred R², and
   ``df_model = d``). With a robust ``cov_type`` the F statistic is the Wald test of all
   slopes with the robust covariance, ``β_sᵀ V_s⁻¹ β_s / df_model`` (which equals the
   classical F under ``nonrobust``). The log-likelihood is the Gaussian one at the maximum,
   ``-n/2 (log 2π + log(RSS/n) + 1)``; AIC and BIC count σ as a parameter, as R's ``AIC`` does.
6. **Rank deficiency.** Columns are taken in order and a column is *aliased* when its distance
   from the span of the kept columns before it (equilibrated design) is within the rank
   tolerance of :func:`gradfit.least_squares`, the rule of R's ``lm``. The model is refitted
   on the kept columns; an aliased coefficient is reported as 0 in ``weight`` (so predictions
   work and equal any least-squares solution's) with NaN standard error, t and p (R shows NA),
   and a :class:`~gradfit.errors.RankDeficiencyWarning` names them.
7. **From sufficient statistics** (:func:`ols_from_stats`, for a streamed or gradient-descent
   fit): the same nonrobust quantities from n, the means and the centred cross-products of
   :class:`~gradfit.solvers.stats.SufficientStats`; G from the Cholesky factor of the
   equilibrated Gram matrix (there are no rows to factor), which squares the condition number:
   about half the digits of the QR route on an ill-conditioned design, and a column within
   ``10 sqrt(d eps)`` (relative) of the span of the columns before it, where no digit of G
   would be right, is treated as aliased. The HC estimators need each row's residual and
   leverage and are refused there.

Penalized fits (ridge, elastic net) are refused: their coefficients are biased and the classical
standard errors above do not apply to them.
"""

from __future__ import annotations

import contextlib
import math
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from gradfit.errors import ModelFileError, RankDeficiencyWarning, ValidationError
from gradfit.solvers.lstsq import drop_weakest, independent_columns, least_squares
from gradfit.solvers.stats import SufficientStats
from gradfit.validation import as_matrix, as_targets, check_lengths

__all__ = [
    "COV_TYPES",
    "ESTIMABLE_TOL",
    "Estimability",
    "OLSPredictor",
    "OLSResult",
    "PredictionInterval",
    "estimability",
    "ols",
    "ols_from_stats",
    "warn_not_estimable",
]

COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3")
INTERVALS = ("confidence", "prediction")

_EPS = float(np.finfo(np.float64).eps)
_CHUNK = 1 << 16
_EXTENDED_RESIDUALS = 1 << 22  # elements of X below which residuals always use longdouble
_STATS_ALIAS = 10.0  # from statistics: alias within 10 sqrt(d eps) of the span (see there)
_LEVERAGE_ONE = 1e-10  # HC2/HC3 divide by 1 - h: refuse when h is this close to 1
_DICT_FORMAT = "gradfit-ols-intervals"
_MAX_DF_RESID = 2**53  # beyond, the t quantile is the normal one; a count no file holds
# A new row is off the training rows' span when the part of its (centred, equilibrated)
# features in the null space of the training design exceeds this fraction of their norm: R's
# default tolerance (predict.lm's tol = 1e-6, R >= 4.3).
ESTIMABLE_TOL = 1e-6
_DICT_VERSION = 1


class PredictionInterval(NamedTuple):
    """Predicted mean and the lower and upper bounds of an interval, each (n, k)."""

    mean: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor


# ----------------------------------------------------------------------------- checks


def _check_cov_type(cov_type: Any) -> str:
    if cov_type not in COV_TYPES:
        raise ValidationError(f"cov_type must be one of {', '.join(COV_TYPES)}; got {cov_type!r}")
    return str(cov_type)


def _check_level(level: Any) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)):
        raise ValidationError(f"level must be a number strictly between 0 and 1, got {level!r}")
    value = float(level)
    if not 0.0 < value < 1.0:
        raise ValidationError(f"level must be strictly between 0 and 1 (e.g. 0.95), got {level!r}")
    return value


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


# ----------------------------------------------------------------------------- numerics


def _mean_ext(M: np.ndarray) -> np.ndarray:
    """Column means accumulated in extended precision, a chunk of rows at a time."""
    total = np.zeros(M.shape[1], dtype=np.longdouble)
    for start in range(0, M.shape[0], _CHUNK):
        total += M[start : start + _CHUNK].astype(np.longdouble).sum(axis=0)
    mean: np.ndarray = (total / max(M.shape[0], 1)).astype(np.float64)
    return mean


def _column_norms(M: np.ndarray) -> np.ndarray:
    """Euclidean column norms, scaled by each column's largest entry (no overflow)."""
    big = np.abs(M).max(axis=0) if M.shape[0] else np.zeros(M.shape[1])
    safe = np.where(big > 0, big, 1.0)
    norms: np.ndarray = big * np.sqrt(((M / safe) ** 2).sum(axis=0))
    return norms


def _solve_upper_identity(R: np.ndarray) -> np.ndarray:
    """R⁻¹ of an upper-triangular R, by a triangular solve against the identity."""
    eye = torch.eye(R.shape[0], dtype=torch.float64)
    inverse: np.ndarray = torch.linalg.solve_triangular(
        torch.from_numpy(np.ascontiguousarray(R)), eye, upper=True
    ).numpy()
    return inverse


@dataclass(frozen=True)
class _Factor:
    """``(AᵀA)⁻¹ = D⁻¹ R_e⁻¹ R_e⁻ᵀ D⁻¹``: the inverse of an equilibrated triangular factor
    ``R_e`` (r, r) of the Gram matrix and the column norms ``D`` (r,)."""

    r_inv: np.ndarray  # (r, r) upper triangular
    scale: np.ndarray  # (r,)

    @property
    def left(self) -> np.ndarray:
        """``D⁻¹ R_e⁻¹`` (r, r), so that ``G = left @ left.T``."""
        left: np.ndarray = self.r_inv / self.scale[:, None]
        return left

    def gram_inverse(self) -> np.ndarray:
        left = self.left
        G: np.ndarray = left @ left.T
        symmetric: np.ndarray = (G + G.T) / 2
        return symmetric

    def half(self, x: np.ndarray) -> np.ndarray:
        """``R_e⁻ᵀ D⁻¹ x`` (r,), so that ``xᵀ G x = ||half(x)||²`` (a sum of squares)."""
        v: np.ndarray = self.r_inv.T @ (x / self.scale)
        return v


def _residuals(A: np.ndarray, B: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``B - A @ W.T`` (n, k). In extended precision (a chunk of rows at a time, rounded to
    float64) on small problems and whenever the fit is nearly exact, where the float64
    rounding of the products would be a large part of the residuals."""
    E: np.ndarray = B - A @ W.T
    ss_res = (E * E).sum(axis=0)
    ss_tot = (B * B).sum(axis=0)
    if A.size > _EXTENDED_RESIDUALS and bool(np.all(ss_res > 1e-4 * ss_tot)):
        return E
    W_ext = W.T.astype(np.longdouble)
    for start in range(0, A.shape[0], _CHUNK):
        stop = start + _CHUNK
        E[start:stop] = B[start:stop] - A[start:stop].astype(np.longdouble) @ W_ext
    return E


# ----------------------------------------------------------------------------- covariances


def _nonrobust_covariances(
    factor: _Factor, sigma2: np.ndarray, center: np.ndarray, n: int, fit_intercept: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Homoskedastic covariances (k, p, p) of (w, b) and of (w, c), ``c = b + w·x̄``."""
    G = factor.gram_inverse()  # (r, r)
    r = G.shape[0]
    p = r + int(fit_intercept)
    k = sigma2.shape[0]
    wc = np.zeros((k, p, p))
    wc[:, :r, :r] = sigma2[:, None, None] * G
    if not fit_intercept:
        return wc.copy(), wc
    wc[:, r, r] = sigma2 / n
    wb = wc.copy()
    v = factor.half(center)  # (r,)
    g_center = factor.left @ v  # G x̄ (r,)
    wb[:, r, r] = sigma2 * (1.0 / n + v @ v)
    wb[:, :r, r] = wb[:, r, :r] = -sigma2[:, None] * g_center
    return wb, wc


def _sandwich(U: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``Σ_i weights[i, j] u_i u_iᵀ`` for each target j: (n, p), (n, k) -> (k, p, p)."""
    out = np.empty((weights.shape[1], U.shape[1], U.shape[1]))
    for j in range(weights.shape[1]):
        M = (U * weights[:, j : j + 1]).T @ U  # (p, n) @ (n, p)
        out[j] = (M + M.T) / 2
    return out


def _hc_omega(
    leverage: np.ndarray, cov_type: str, n: int, df_resid: int, first_row: int = 0
) -> np.ndarray:
    """The sandwich's weight of each row's squared residual: 1 (HC0), n / df_resid (HC1),
    1 / (1 - h) (HC2) or 1 / (1 - h)² (HC3), for rows ``first_row, first_row + 1, ...``
    (counted from 0) of leverages ``h``. A row of leverage 1 is refused under HC2/HC3."""
    m = leverage.shape[0]
    if cov_type == "HC0":
        return np.ones(m)
    if cov_type == "HC1":
        return np.full(m, n / df_resid)
    worst = int(np.argmax(leverage)) if m else 0
    if m and leverage[worst] > 1.0 - _LEVERAGE_ONE:
        raise ValidationError(
            f"row {first_row + worst} has leverage 1 (the fit passes through it whatever its "
            f"target), and {cov_type} divides by 1 - leverage: use cov_type='HC0' or 'HC1', or "
            "remove the features that single out that row"
        )
    omega: np.ndarray = 1.0 / (1.0 - leverage) ** (1 if cov_type == "HC2" else 2)
    return omega


def _robust_covariances(
    Q: np.ndarray,
    factor: _Factor,
    E: np.ndarray,
    cov_type: str,
    center: np.ndarray,
    df_resid: int,
    fit_intercept: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """HC0-HC3 covariances (k, p, p) of (w, b) and of (w, c), from the thin Q (n, r) of the
    centred design, its factor and the residuals E (n, k)."""
    n = Q.shape[0]
    leverage = (Q * Q).sum(axis=1) + (1.0 / n if fit_intercept else 0.0)  # (n,)
    weights = _hc_omega(leverage, cov_type, n, df_resid)[:, None] * E * E  # (n, k)
    U_w = (Q @ factor.r_inv.T) / factor.scale  # A G (n, r)
    if not fit_intercept:
        wc = _sandwich(U_w, weights)
        return wc.copy(), wc
    ones = np.full((n, 1), 1.0 / n)
    wc = _sandwich(np.hstack([U_w, ones]), weights)
    wb = _sandwich(np.hstack([U_w, ones - (U_w @ center)[:, None]]), weights)
    return wb, wc


def _robust_from_batches(
    blocks: Iterable[tuple[Any, Any]],
    factor: _Factor,
    kept: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray,
    center: np.ndarray,
    cov_type: str,
    n: int,
    df_resid: int,
    fit_intercept: bool,
) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`_robust_covariances` in one pass over blocks of rows, without a Q factor: for
    the centred kept columns ``A_c`` of a block, ``Q = A_c D⁻¹ R_e⁻¹`` (the rows of the thin Q
    of the whole design) and ``U_w = Q R_e⁻ᵀ D⁻¹ = A_c (AᵀA)⁻¹``; the sandwich sums are sums
    over rows, so blocks (and processes) add up. ``weight`` (k, d), ``bias`` (k,) are the
    kept-column fit; ``n`` the rows of the whole design. Returns the sums (k, p, p) for
    (w, b) and (w, c), and the rows seen."""
    r = int(kept.sum())
    k = weight.shape[0]
    p = r + int(fit_intercept)
    left = factor.left  # (r, r)
    c = center[kept]
    wb = np.zeros((k, p, p))
    wc = np.zeros((k, p, p))
    seen = 0
    for X_block, Y_block in blocks:
        Xb = np.asarray(
            X_block.cpu().numpy() if isinstance(X_block, torch.Tensor) else X_block,
            dtype=np.float64,
        )
        Yb = np.asarray(
            Y_block.cpu().numpy() if isinstance(Y_block, torch.Tensor) else Y_block,
            dtype=np.float64,
        )
        m = Xb.shape[0]
        if m == 0:
            continue
        E = Yb - Xb @ weight.T - bias  # (m, k)
        Ac = Xb[:, kept] - c  # centred (c = 0 without an intercept)
        Q = Ac @ left  # (m, r)
        leverage = (Q * Q).sum(axis=1) + (1.0 / n if fit_intercept else 0.0)
        weights = _hc_omega(leverage, cov_type, n, df_resid, seen)[:, None] * E * E  # (m, k)
        U_w = Q @ left.T  # A_c (AᵀA)⁻¹ (m, r)
        if fit_intercept:
            ones = np.full((m, 1), 1.0 / n)
            wc += _sandwich(np.hstack([U_w, ones]), weights)
            wb += _sandwich(np.hstack([U_w, ones - (U_w @ c)[:, None]]), weights)
        else:
            wc += _sandwich(U_w, weights)
        seen += m
    return (wb, wc, seen) if fit_intercept else (wc.copy(), wc, seen)


def _robust_over_rows(
    batches: Callable[[], Iterable[tuple[Any, Any]]],
    collect: Callable[[Callable[[], np.ndarray]], np.ndarray] | None,
    factor: _Factor,
    kept: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray,
    center: np.ndarray,
    cov_type: str,
    n: int,
    df_resid: int,
    fit_intercept: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ols_from_stats`'s HC covariances (k, p, p) of (w, b) and of (w, c): the sums of
    :func:`_robust_from_batches` over a fresh pass of ``batches``, added over the processes by
    ``collect`` (see there), after a check that the pass saw the ``n`` rows of the
    statistics."""
    k, p = weight.shape[0], int(kept.sum()) + int(fit_intercept)

    def local() -> np.ndarray:
        wb, wc, seen = _robust_from_batches(
            batches(), factor, kept, weight, bias, center, cov_type, n, df_resid, fit_intercept
        )
        return np.concatenate([wb.ravel(), wc.ravel(), [float(seen)]])

    total = local() if collect is None else collect(local)
    seen = round(float(total[-1]))
    if seen != n:
        raise ValidationError(
            f"the second pass over the data gave {seen} rows where the statistics counted "
            f"{n}; the data changed while being read"
        )
    size = k * p * p
    return total[:size].reshape(k, p, p), total[size : 2 * size].reshape(k, p, p)


def _embed(small: np.ndarray, kept: np.ndarray, fit_intercept: bool, fill: float) -> np.ndarray:
    """(k, r', r') over the kept coefficients -> (k, p, p) over all, ``fill`` elsewhere."""
    index = np.flatnonzero(np.append(kept, True) if fit_intercept else kept)
    p = kept.shape[0] + int(fit_intercept)
    out = np.full((small.shape[0], p, p), fill)
    out[:, index[:, None], index[None, :]] = small
    return out


# ----------------------------------------------------------------------------- results


def _special() -> Any:
    """``scipy.special``, for the t and F distributions (lighter than ``scipy.stats``),
    imported on first use: loading a model file checks its interval data with this module,
    and `gradfit predict` without intervals should not pay 0.17 s for SciPy."""
    from scipy import special

    return special


def preload_distributions() -> threading.Thread:
    """Import :func:`_special`'s module in a thread of its own (0.2-0.4 s), for a caller that
    will need it after long work of its own, e.g. the command line before a fit whose report
    has p-values: the import then overlaps the reading of the data instead of following it.
    A failed import is left for the first real use to report."""

    def load() -> None:
        with contextlib.suppress(ImportError):
            _special()

    thread = threading.Thread(target=load, name="gradfit-preload-scipy")
    thread.start()
    return thread


def _t_quantile(level: float, df: int) -> float:
    return float(_special().stdtrit(df, (1.0 + level) / 2.0))  # Student t quantile


@dataclass(frozen=True, eq=False)
class OLSPredictor:
    """What confidence and prediction intervals of the response need, and nothing else.

    ``covariance`` (k, p, p) is that of the slopes and of the *mean response at the centre*,
    ``c = bias + weight @ center`` (intercept last, p = d + 1; without an intercept ``center``
    is zero and p = d). In these coordinates the variance of the fitted mean at x,
    ``[x - center, 1] Cov [x - center, 1]ᵀ``, does not cancel the large terms that
    ``[x, 1] Cov(w, b) [x, 1]ᵀ`` would on a design far from the origin. Aliased coefficients
    (rank-deficient fits) have zero rows and columns: their weight is 0 and stays 0.
    """

    weight: torch.Tensor  # (k, d)
    bias: torch.Tensor  # (k,)
    center: torch.Tensor  # (d,)
    covariance: torch.Tensor  # (k, p, p)
    sigma: torch.Tensor  # (k,)
    df_resid: int
    fit_intercept: bool
    cov_type: str = "nonrobust"

    def predict(
        self, X: Any, interval: str | None = None, level: float = 0.95
    ) -> torch.Tensor | PredictionInterval:
        """The mean ``X @ weight.T + bias`` (n, k), or with ``interval="confidence"`` (for the
        mean response) or ``"prediction"`` (for a new observation) a
        :class:`PredictionInterval` ``mean ± t_{(1+level)/2, df_resid} · se``, where
        ``se² = x̃ᵀ Cov x̃`` (plus ``sigma²`` for a prediction) and ``x̃ = [x - center, 1]``."""
        Xt = as_matrix(X, "X", dtype=torch.float64)
        d = self.weight.shape[1]
        if Xt.shape[1] != d:
            raise ValidationError(f"X has {Xt.shape[1]} features, but the model expects {d}")
        Xn = Xt.cpu().numpy()
        W, b = self.weight.numpy(), self.bias.numpy()
        with np.errstate(all="ignore"):  # overflow gives inf, as torch's predict does
            mean = Xn @ W.T + b  # (n, d) @ (d, k) -> (n, k)
        if interval is None:
            return torch.from_numpy(mean)
        if interval not in INTERVALS:
            raise ValidationError(
                f"interval must be None, 'confidence' or 'prediction', got {interval!r}"
            )
        q = _t_quantile(_check_level(level), self.df_resid)
        # Extreme features or interval data may overflow float64: computed without NumPy's
        # warnings, and a bound that is not finite is refused below in one line.
        with np.errstate(all="ignore"):
            Xc = Xn - self.center.numpy()
            if self.fit_intercept:
                Xc = np.hstack([Xc, np.ones((Xc.shape[0], 1))])  # (n, p)
            C = self.covariance.numpy()
            var = np.empty_like(mean)
            for j in range(C.shape[0]):
                var[:, j] = ((Xc @ C[j]) * Xc).sum(axis=1)  # diag(Xc C_j Xcᵀ)
            var = np.maximum(var, 0.0)
            if interval == "prediction":
                var = var + self.sigma.numpy() ** 2
            half = q * np.sqrt(var)
            bad = ~np.isfinite(half) | ~np.isfinite(mean)
        if bool(bad.any()):
            rows = np.flatnonzero(bad.any(axis=1))
            raise ValidationError(
                f"the {interval} interval is not finite in float64 for {rows.size} row(s) (the "
                f"first is row {rows[0] + 1} of {mean.shape[0]}): its features are too large for "
                "the model's interval data, or those data are extreme"
            )
        return PredictionInterval(
            torch.from_numpy(mean), torch.from_numpy(mean - half), torch.from_numpy(mean + half)
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, floats, ints, bools and strings (JSON-ready): everything but the
        weight and bias, which a model file already holds."""
        return {
            "format": _DICT_FORMAT,
            "version": _DICT_VERSION,
            "fit_intercept": self.fit_intercept,
            "cov_type": self.cov_type,
            "df_resid": self.df_resid,
            "center": self.center.tolist(),
            "sigma": self.sigma.tolist(),
            "covariance": self.covariance.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Any, weight: Any, bias: Any) -> OLSPredictor:
        """Rebuild from :meth:`to_dict`'s output and the model's ``weight`` (k, d) and
        ``bias`` (k,). Anything malformed or inconsistent raises
        :class:`~gradfit.errors.ModelFileError` naming the entry."""
        if not isinstance(data, Mapping):
            raise ModelFileError(f"interval data must be a mapping, got {type(data).__name__}")
        required = ("format", "version", "fit_intercept", "cov_type", "df_resid", "center")
        missing = [key for key in (*required, "sigma", "covariance") if key not in data]
        if missing:
            raise ModelFileError(f"interval data lack {', '.join(missing)}")
        if data["format"] != _DICT_FORMAT:
            raise ModelFileError(
                f"interval data have format {_brief(data['format'])}, expected {_DICT_FORMAT!r}"
            )
        version = data["version"]
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ModelFileError(
                f"interval data version must be a positive integer, got {_brief(version)}"
            )
        if version > _DICT_VERSION:
            raise ModelFileError(
                f"interval data version {version} is newer than this gradfit reads "
                f"({_DICT_VERSION}); upgrade gradfit"
            )
        fit_intercept = data["fit_intercept"]
        if not isinstance(fit_intercept, bool):
            raise ModelFileError(
                f"fit_intercept must be true or false, got {_brief(fit_intercept)}"
            )
        cov_type = data["cov_type"]
        if cov_type not in COV_TYPES:
            raise ModelFileError(
                f"cov_type must be one of {', '.join(COV_TYPES)}, got {_brief(cov_type)}"
            )
        df_resid = data["df_resid"]
        if (
            isinstance(df_resid, bool)
            or not isinstance(df_resid, int)
            or not 1 <= df_resid <= _MAX_DF_RESID
        ):
            raise ModelFileError(
                f"df_resid must be an integer from 1 to {_MAX_DF_RESID}, got {_brief(df_resid)}"
            )
        center = _plain_array(data["center"], 1, "center")
        sigma = _plain_array(data["sigma"], 1, "sigma")
        covariance = _plain_array(data["covariance"], 3, "covariance")
        with np.errstate(all="ignore"):
            squares_finite = bool(np.all(np.isfinite(sigma**2)))
        if not squares_finite:
            raise ModelFileError("sigma is too large: its square overflows float64")
        d, k = center.shape[0], sigma.shape[0]
        p = d + int(fit_intercept)
        if covariance.shape != (k, p, p):
            raise ModelFileError(
                f"covariance must have shape ({k}, {p}, {p}) for {k} target(s) and {d} "
                f"feature(s){' and an intercept' if fit_intercept else ''}, got "
                f"{covariance.shape}"
            )
        if bool(np.any(sigma < 0)) or bool(np.any(np.diagonal(covariance, 0, 1, 2) < 0)):
            raise ModelFileError("sigma and the covariance's diagonal must be non-negative")
        with np.errstate(all="ignore"):
            symmetric = np.allclose(covariance, covariance.transpose(0, 2, 1), rtol=1e-12, atol=0)
        if not symmetric:
            raise ModelFileError("covariance must be symmetric")
        try:
            W = as_matrix(weight, "weight", dtype=torch.float64).cpu()
            bt = as_targets(bias, "bias", dtype=torch.float64).cpu()
        except ValidationError as exc:
            raise ModelFileError(str(exc)) from exc
        if W.shape != (k, d) or bt.shape != (k, 1):
            raise ModelFileError(
                f"weight {tuple(W.shape)} and bias ({bt.shape[0]},) do not match the interval "
                f"data of {k} target(s) and {d} feature(s)"
            )
        if not fit_intercept and bool((bt != 0).any()):
            raise ModelFileError("a model without an intercept must have a zero bias")
        return cls(
            weight=W.contiguous(),
            bias=bt[:, 0].contiguous(),
            center=torch.from_numpy(center),
            covariance=torch.from_numpy(covariance),
            sigma=torch.from_numpy(sigma),
            df_resid=df_resid,
            fit_intercept=fit_intercept,
            cov_type=cov_type,
        )


def _brief(value: Any) -> str:
    """``value``'s repr for a one-line message, or its type when that is long."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**40 else "a huge int"
    return text if len(text) <= 40 else type(value).__name__


def _plain_array(value: Any, ndim: int, key: str) -> np.ndarray:
    """A nested list of finite numbers (not bools) of the given depth, as float64."""

    def check(item: Any, depth: int) -> None:
        if depth == 0:
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                raise ModelFileError(f"{key} must hold numbers, got {_brief(item)}")
            return
        if not isinstance(item, list):
            raise ModelFileError(f"{key} must be a {ndim}-level nested list, got {_brief(item)}")
        for inner in item:
            check(inner, depth - 1)

    check(value, ndim)
    try:
        array = np.array(value, dtype=np.float64)
    except OverflowError:  # an integer beyond float64
        raise ModelFileError(f"{key} must hold finite numbers") from None
    except ValueError:  # ragged lists
        raise ModelFileError(f"{key} must be a rectangular {ndim}-level nested list") from None
    if array.ndim != ndim:
        raise ModelFileError(f"{key} must be a rectangular {ndim}-level nested list")
    if not bool(np.all(np.isfinite(array))):
        raise ModelFileError(f"{key} must hold finite numbers")
    return array


@dataclass(frozen=True, eq=False)
class Estimability:
    """Which new rows a rank-deficient fit predicts without depending on its convention.

    With aliased coefficients set to 0 (R's convention), a prediction ``x @ weight.T + bias``
    is the same for every least-squares solution exactly when ``x - center`` lies in the span
    of the training rows' centred features (the row space of the design; ``center`` is 0
    without an intercept). The training design, centred and column-equilibrated (columns
    divided by their norms ``scale``), has the orthonormal null-space basis ``basis`` (d, m),
    m = the number of aliased coefficients. For ``u = (x - center) / scale`` the row is off
    the span when ``||basisᵀ u|| > ESTIMABLE_TOL · ||u||``: a null-space test in the manner of
    R's ``predict.lm`` (R >= 4.3, ``rankdeficient = "warnif"``), with its default tolerance
    1e-6. Why not warn for every new row, as R < 4.3 does: rows that keep the training
    relation predict the same under every convention, and a warning there is noise.
    A row off the span breaks a linear relation that held among the training features
    (x2 = 2 x1, or a constant feature taking another value): its prediction depends on which
    of the collinear coefficients was set to 0, and R warns "prediction from a rank-deficient
    fit may be misleading".
    """

    center: np.ndarray  # (d,)
    scale: np.ndarray  # (d,), 1 for a column with no spread
    basis: np.ndarray  # (d, m), orthonormal columns
    aliased: tuple[str, ...]  # the names of the aliased features

    def off_span(self, X: np.ndarray) -> np.ndarray:
        """(n,) bool: the rows of X (n, d) off the training rows' span."""
        U = (X - self.center) / self.scale  # (n, d)
        part = np.linalg.norm(U @ self.basis, axis=1)  # (n, d) @ (d, m) -> (n, m) -> (n,)
        off: np.ndarray = part > ESTIMABLE_TOL * np.linalg.norm(U, axis=1)
        return off

    def warn(self, X: np.ndarray, stacklevel: int = 2) -> None:
        """A :class:`~gradfit.errors.RankDeficiencyWarning` when some row of X is off the
        span (one message per fit, whatever the rows, so that a stream of batches says it
        once)."""
        if X.shape[0] and bool(self.off_span(X).any()):
            warnings.warn(
                "prediction from a rank-deficient fit may be misleading (as R warns): some "
                "rows break a linear relation that held among the training features, along "
                f"which the coefficient(s) of {', '.join(self.aliased)} were set to 0 (R's "
                "convention), so their predictions depend on that choice; refit without the "
                "collinear features, or predict only rows that keep the training relation",
                RankDeficiencyWarning,
                stacklevel=stacklevel + 1,
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and strings (JSON-ready): what a model file keeps."""
        return {
            "center": self.center.tolist(),
            "scale": self.scale.tolist(),
            "basis": self.basis.tolist(),
            "aliased": list(self.aliased),
        }

    @classmethod
    def from_dict(cls, data: Any, d: int) -> Estimability:
        """Rebuild from :meth:`to_dict`'s output for a model of ``d`` features; anything
        malformed raises :class:`~gradfit.errors.ModelFileError` naming the entry."""
        if not isinstance(data, Mapping):
            raise ModelFileError(f"estimability data must be a mapping, got {type(data).__name__}")
        missing = [key for key in ("center", "scale", "basis", "aliased") if key not in data]
        if missing:
            raise ModelFileError(f"estimability data lack {', '.join(missing)}")
        center = _plain_array(data["center"], 1, "estimability center")
        scale = _plain_array(data["scale"], 1, "estimability scale")
        basis = _plain_array(data["basis"], 2, "estimability basis")
        aliased = data["aliased"]
        if not isinstance(aliased, list) or not all(isinstance(a, str) for a in aliased):
            raise ModelFileError(f"estimability aliased must be a list of names, got {aliased!r}")
        if center.shape != (d,) or scale.shape != (d,) or basis.shape[0] != d:
            raise ModelFileError(
                f"estimability data must describe {d} feature(s): center {center.shape}, "
                f"scale {scale.shape}, basis {basis.shape}"
            )
        if not bool(np.all(scale > 0)):
            raise ModelFileError("estimability scale must be positive")
        return cls(center=center, scale=scale, basis=basis, aliased=tuple(aliased))


def _estimability(
    F: np.ndarray, center: np.ndarray, scale: np.ndarray, kept: np.ndarray, names: Sequence[str]
) -> Estimability | None:
    """The :class:`Estimability` of a design whose equilibrated Gram matrix is ``FᵀF`` (F: its
    R factor, or a square root from the statistics), ``kept`` its estimable columns; None for
    a full-rank design. The null space is spanned by F's last right singular vectors."""
    d, r = kept.shape[0], int(kept.sum())
    if r == d:
        return None
    _, _, Vt = np.linalg.svd(F, full_matrices=True)  # Vt (d, d)
    return Estimability(
        center=center.astype(np.float64),
        scale=scale.astype(np.float64),
        basis=np.ascontiguousarray(Vt[r:].T),
        aliased=tuple(names[int(i)] for i in np.flatnonzero(~kept)),
    )


def estimability(fit: OLSResult) -> dict[str, Any] | None:
    """What a model file keeps of ``fit`` to warn about new rows off the training rows' span
    (:meth:`Estimability.to_dict`), or None for a full-rank fit."""
    return None if fit.estimable is None else fit.estimable.to_dict()


def warn_not_estimable(X: Any, data: Any) -> None:
    """Warn (:class:`~gradfit.errors.RankDeficiencyWarning`) when a row of X (n, d) is off the
    span of the training rows of a rank-deficient fit; ``data``: the model's stored
    :func:`estimability` (None for a full-rank fit: nothing to check)."""
    if data is None:
        return
    Xn = as_matrix(X, "X", dtype=torch.float64).cpu().numpy()
    Estimability.from_dict(data, Xn.shape[1]).warn(Xn, stacklevel=2)


@dataclass(frozen=True, eq=False)
class OLSResult:
    """An ordinary least-squares fit with its classical inference, per target.

    Arrays are float64 tensors in gradfit's orientation (targets first): ``weight`` (k, d),
    ``bias`` (k,), their standard errors ``weight_se``, ``bias_se``, and ``covariance``
    (k, p, p) of the coefficients, features first and the intercept last (p = d + 1; p = d
    without an intercept, when ``bias`` is 0 and ``bias_se``, ``bias_t``, ``bias_p`` are NaN).
    ``sigma`` (the residual standard error), ``r2``, ``r2_adj``, ``f_statistic``,
    ``f_pvalue``, ``log_likelihood``, ``aic`` and ``bic`` are (k,). ``aliased`` (d,) marks the
    coefficients of a rank-deficient design that are not estimable (weight 0, NaN errors:
    R's convention, the later of collinear features being aliased); ``estimable`` then says
    which new rows :meth:`predict` can predict without depending on that convention (it warns
    for the others, as R does), and is None for a full-rank design.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    covariance: torch.Tensor
    sigma: torch.Tensor
    r2: torch.Tensor
    r2_adj: torch.Tensor
    f_statistic: torch.Tensor
    f_pvalue: torch.Tensor
    log_likelihood: torch.Tensor
    aic: torch.Tensor
    bic: torch.Tensor
    n: int
    df_model: int
    df_resid: int
    fit_intercept: bool
    cov_type: str
    aliased: torch.Tensor
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    predictor: OLSPredictor
    residual_quantiles: torch.Tensor | None = None  # (k, 5): min, 1Q, median, 3Q, max
    estimable: Estimability | None = None

    # ------------------------------------------------------------------ per coefficient

    @property
    def _se(self) -> torch.Tensor:
        """(k, p) standard errors, features then intercept."""
        return self.covariance.diagonal(dim1=1, dim2=2).clamp_min(0.0).sqrt()

    @property
    def weight_se(self) -> torch.Tensor:
        return self._se[:, : self.weight.shape[1]].contiguous()

    @property
    def bias_se(self) -> torch.Tensor:
        if not self.fit_intercept:
            return torch.full_like(self.bias, math.nan)
        return self._se[:, -1].contiguous()

    @property
    def weight_t(self) -> torch.Tensor:
        return self.weight / self.weight_se

    @property
    def bias_t(self) -> torch.Tensor:
        return self.bias / self.bias_se

    @property
    def weight_p(self) -> torch.Tensor:
        return self._two_sided(self.weight_t)

    @property
    def bias_p(self) -> torch.Tensor:
        return self._two_sided(self.bias_t)

    def _two_sided(self, t: torch.Tensor) -> torch.Tensor:
        p = 2.0 * _special().stdtr(self.df_resid, -np.abs(t.numpy()))  # two-sided t tail
        return torch.from_numpy(np.asarray(p, dtype=np.float64))

    def _estimates(self) -> torch.Tensor:
        """(k, p): the slopes, then the intercept when there is one."""
        if self.fit_intercept:
            return torch.cat([self.weight, self.bias[:, None]], dim=1)
        return self.weight

    def conf_int(self, level: float = 0.95) -> torch.Tensor:
        """(k, p, 2): for each target and coefficient (features, then the intercept), the
        bounds ``estimate ∓ t_{(1+level)/2, df_resid} · se``."""
        q = _t_quantile(_check_level(level), self.df_resid)
        est, half = self._estimates(), q * self._se
        return torch.stack([est - half, est + half], dim=2)

    # ------------------------------------------------------------------ prediction

    def predict(
        self, X: Any, interval: str | None = None, level: float = 0.95
    ) -> torch.Tensor | PredictionInterval:
        """See :meth:`OLSPredictor.predict`.

        Warns
        -----
        RankDeficiencyWarning
            A rank-deficient fit, and some row of X is off the span of the training rows
            (see :class:`Estimability`): its prediction depends on the aliased coefficients
            being 0, and R warns too.
        """
        out = self.predictor.predict(X, interval, level)  # checks X first
        if self.estimable is not None:
            self.estimable.warn(as_matrix(X, "X", dtype=torch.float64).cpu().numpy())
        return out

    def to_dict(self) -> dict[str, Any]:
        """What prediction intervals need, as plain data; see :meth:`OLSPredictor.to_dict`."""
        return self.predictor.to_dict()

    def as_dict(self, level: float = 0.95) -> dict[str, Any]:
        """Everything :meth:`summary` shows, as plain data (floats may be NaN: aliased
        coefficients, or the intercept's entries of a fit through the origin)::

            {"cov_type", "n", "df_model", "df_resid", "fit_intercept", "level",
             "targets": {name: {"coefficients": {feature or "(Intercept)":
                 {"estimate", "std_error", "t", "p", "lower", "upper", "aliased"}},
               "sigma", "r2", "r2_adj", "f_statistic", "f_pvalue", "log_likelihood",
               "aic", "bic"}}}
        """
        bounds = self.conf_int(level)
        names = [*self.feature_names, *(["(Intercept)"] if self.fit_intercept else [])]
        est, se = self._estimates(), self._se
        t = est / se
        p = self._two_sided(t)
        aliased = [*self.aliased.tolist(), *([False] if self.fit_intercept else [])]
        targets: dict[str, Any] = {}
        for j, target in enumerate(self.target_names):
            coefficients = {
                name: {
                    "estimate": float(est[j, i]),
                    "std_error": float(se[j, i]),
                    "t": float(t[j, i]),
                    "p": float(p[j, i]),
                    "lower": float(bounds[j, i, 0]),
                    "upper": float(bounds[j, i, 1]),
                    "aliased": bool(aliased[i]),
                }
                for i, name in enumerate(names)
            }
            targets[target] = {
                "coefficients": coefficients,
                **{
                    key: float(getattr(self, key)[j])
                    for key in (
                        "sigma",
                        "r2",
                        "r2_adj",
                        "f_statistic",
                        "f_pvalue",
                        "log_likelihood",
                        "aic",
                        "bic",
                    )
                },
            }
        return {
            "cov_type": self.cov_type,
            "n": self.n,
            "df_model": self.df_model,
            "df_resid": self.df_resid,
            "fit_intercept": self.fit_intercept,
            "level": float(level),
            "targets": targets,
        }

    # ------------------------------------------------------------------ summary

    def confint_text(self, level: float = 0.95) -> str:
        """The coefficients' confidence intervals (:meth:`conf_int`) as R's
        ``confint(fit, level = level)`` prints them, per target: the intercept first, columns
        named by their tail probabilities (``5 %``, ``95 %`` for 0.9), NA for the aliased."""
        bounds = self.conf_int(level).numpy()  # (k, p, 2), features then intercept
        tail = (1.0 - _check_level(level)) / 2.0
        heads = ["", f"{100 * tail:.3g} %", f"{100 * (1 - tail):.3g} %"]
        d = self.weight.shape[1]
        order = ([d] if self.fit_intercept else []) + list(range(d))
        names = [*self.feature_names, "(Intercept)"]
        aliased = [*self.aliased.tolist(), False]
        blocks = []
        for j, target in enumerate(self.target_names):
            rows = [heads]
            for i in order:
                low, high = bounds[j, i]
                cells = ["NA", "NA"] if aliased[i] else [f"{low:.6g}", f"{high:.6g}"]
                rows.append([names[i], *cells])
            widths = [max(len(row[c]) for row in rows) for c in range(3)]
            lines = [f"Confidence intervals ({100 * level:g} %) of {target}:"]
            lines += [
                "  ".join(
                    [
                        row[0].ljust(widths[0]),
                        *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)),
                    ]
                )
                for row in rows
            ]
            blocks.append("\n".join(line.rstrip() for line in lines))
        return "\n\n".join(blocks)

    def summary(self) -> str:
        """A text report per target in the manner of R's ``summary.lm``."""
        return "\n\n".join(self._summary_of(j) for j in range(self.weight.shape[0]))

    def _summary_of(self, j: int) -> str:
        lines = [f"Response {self.target_names[j]}:", ""]
        if self.residual_quantiles is not None:
            heads = ("Min", "1Q", "Median", "3Q", "Max")
            cells = [f"{v:.6g}" for v in self.residual_quantiles[j].tolist()]
            width = max(len(c) for c in (*heads, *cells))
            lines += [
                "Residuals:",
                " ".join(h.rjust(width) for h in heads),
                " ".join(c.rjust(width) for c in cells),
                "",
            ]
        names = list(self.feature_names)
        est = self.weight[j].tolist()
        se = self.weight_se[j].tolist()
        t = self.weight_t[j].tolist()
        p = self.weight_p[j].tolist()
        aliased = self.aliased.tolist()
        if self.fit_intercept:  # R lists the intercept first
            names.insert(0, "(Intercept)")
            est.insert(0, float(self.bias[j]))
            se.insert(0, float(self.bias_se[j]))
            t.insert(0, float(self.bias_t[j]))
            p.insert(0, float(self.bias_p[j]))
            aliased.insert(0, False)
        rows = [["", "Estimate", "Std. Error", "t value", "Pr(>|t|)", ""]]
        for name, e, s, tv, pv, a in zip(names, est, se, t, p, aliased, strict=True):
            if a:
                rows.append([name, "NA", "NA", "NA", "NA", ""])
            else:
                rows.append([name, f"{e:.6g}", f"{s:.6g}", f"{tv:.3f}", _format_p(pv), _stars(pv)])
        widths = [max(len(row[c]) for row in rows) for c in range(6)]
        n_aliased = int(self.aliased.sum())
        lines.append(
            "Coefficients:"
            + (f" ({n_aliased} not defined because of singularities)" if n_aliased else "")
        )
        for row in rows:
            cells = [row[0].ljust(widths[0])]
            cells += [c.rjust(w) for c, w in zip(row[1:5], widths[1:5], strict=True)]
            lines.append(("  ".join(cells) + " " + row[5]).rstrip())
        lines += ["---", "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"]
        if self.cov_type != "nonrobust":
            lines.append(f"Standard errors: heteroskedasticity-consistent ({self.cov_type})")
        lines += [
            "",
            f"Residual standard error: {float(self.sigma[j]):.6g} on {self.df_resid} "
            "degrees of freedom",
            f"Multiple R-squared:  {float(self.r2[j]):.6g},\t"
            f"Adjusted R-squared:  {float(self.r2_adj[j]):.6g}",
        ]
        f_name = "F-statistic" if self.cov_type == "nonrobust" else f"Wald F ({self.cov_type})"
        lines.append(
            f"{f_name}: {float(self.f_statistic[j]):.6g} on {self.df_model} and {self.df_resid} "
            f"DF,  p-value: {_format_p(float(self.f_pvalue[j]))}"
        )
        if not self.fit_intercept:
            lines.append("(no intercept: R-squared and F use the uncentred total sum of squares)")
        return "\n".join(lines)


def _format_p(p: float) -> str:
    """R's ``format.pval``: values below the float64 epsilon are shown as a bound."""
    if math.isnan(p):
        return "NaN"
    return "<2e-16" if p < 2.2e-16 else f"{p:.3g}"


def _stars(p: float) -> str:
    if math.isnan(p):
        return ""
    for bound, mark in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")):
        if p < bound:
            return mark
    return ""


# ----------------------------------------------------------------------------- assembly


def _assemble(
    *,
    weight: np.ndarray,
    bias: np.ndarray,
    cov_wb: np.ndarray,
    cov_wc: np.ndarray,
    center: np.ndarray,
    kept: np.ndarray,
    rss: np.ndarray,
    mss: np.ndarray,
    n: int,
    fit_intercept: bool,
    cov_type: str,
    feature_names: tuple[str, ...],
    target_names: tuple[str, ...],
    residual_quantiles: np.ndarray | None,
    estimable: Estimability | None = None,
) -> OLSResult:
    """Statistics shared by the in-memory and the sufficient-statistics routes."""
    r = int(kept.sum())
    df_model = r
    df_resid = n - r - int(fit_intercept)
    n_params = r + int(fit_intercept) + 1  # σ counts, as in R's logLik
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma2 = rss / df_resid
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
                    try:
                        z = np.linalg.solve(V[j], beta[j])
                    except np.linalg.LinAlgError:
                        continue
                    f_stat[j] = float(beta[j] @ z) / r
        f_p = np.asarray(_special().fdtrc(df_model, df_resid, f_stat), dtype=np.float64)  # F tail
        if df_model == 0:
            f_p = np.full_like(f_stat, math.nan)
        loglik = -0.5 * n * (math.log(2 * math.pi) + np.log(rss / n) + 1.0)
    cov_public = _embed(cov_wb, kept, fit_intercept, math.nan)
    cov_predict = _embed(cov_wc, kept, fit_intercept, 0.0)

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
        feature_names=feature_names,
        target_names=target_names,
        predictor=predictor,
        residual_quantiles=None if residual_quantiles is None else t64(residual_quantiles),
        estimable=estimable,
    )


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


def _warn_aliased(kept: np.ndarray, names: tuple[str, ...], precision: str = "") -> None:
    aliased = [names[i] for i in np.flatnonzero(~kept)]
    warnings.warn(
        f"X is rank deficient{precision}: {len(aliased)} coefficient(s) are not estimable, "
        f"being (numerically) combinations of the features before them: {', '.join(aliased)}. "
        "They are set to 0 with NaN standard errors (R's NA) and the others are estimated "
        "without them. Remove collinear or constant features.",
        RankDeficiencyWarning,
        stacklevel=3,
    )


# ----------------------------------------------------------------------------- in memory


class _KeptFit(NamedTuple):
    weight: np.ndarray  # (k, d), 0 for the aliased columns
    bias: np.ndarray  # (k,)
    kept: np.ndarray  # (d,) bool


def _fit_kept(Xn: np.ndarray, Yn: np.ndarray, fit_intercept: bool) -> _KeptFit:
    """Least-squares weight (k, d), bias (k,) and the kept-columns mask (d,): all columns for a
    full-rank design; otherwise R's solution (:func:`gradfit.least_squares` with
    ``rank_deficient="aliased"``: the columns independent of those before them, refitted)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankDeficiencyWarning)  # we warn with the names
        fit = least_squares(Xn, Yn, fit_intercept=fit_intercept, rank_deficient="aliased")
    aliased = fit.aliased.numpy() if fit.aliased is not None else np.zeros(Xn.shape[1], bool)
    return _KeptFit(fit.weight.numpy(), fit.bias.numpy(), ~aliased)


def ols(
    X: Any,
    Y: Any,
    *,
    fit_intercept: bool = True,
    cov_type: str = "nonrobust",
    feature_names: Sequence[str] | None = None,
    target_names: Sequence[str] | None = None,
) -> OLSResult:
    """Ordinary least squares with standard errors, tests and intervals (see the module's
    docstring for the method).

    Parameters
    ----------
    X : (n, d) tensor or array
    Y : (n,) or (n, k) tensor or array
    fit_intercept : bool
        Estimate a bias per target, or force the model through the origin (then R² and F
        are R's uncentred ones and ``df_model = d``).
    cov_type : {"nonrobust", "HC0", "HC1", "HC2", "HC3"}
        Homoskedastic errors, or White/MacKinnon heteroskedasticity-consistent covariance.
    feature_names, target_names : sequences of str, or one str for one name, optional
        Names for :meth:`OLSResult.summary` (default ``x0, x1, ...`` and ``y0, y1, ...``).

    Returns
    -------
    OLSResult

    Raises
    ------
    ValidationError
        Bad arguments, or no residual degrees of freedom (n <= number of coefficients).

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
    cov_type = _check_cov_type(cov_type)
    if not isinstance(fit_intercept, (bool, np.bool_)):
        raise ValidationError(f"fit_intercept must be True or False, got {fit_intercept!r}")
    fit_intercept = bool(fit_intercept)
    Xt = as_matrix(X, "X", dtype=torch.float64)
    Yt = as_targets(Y, "Y", dtype=torch.float64)
    check_lengths(Xt, Yt)
    Xn, Yn = Xt.cpu().numpy(), Yt.cpu().numpy()
    n, d = Xn.shape
    k = Yn.shape[1]
    features = _names(feature_names, d, "x", "feature")
    targets = _names(target_names, k, "y", "target")

    if fit_intercept:
        center = _mean_ext(Xn)
        A = Xn - center  # (n, d) centred design
        B = Yn - _mean_ext(Yn)
    else:
        center, A, B = np.zeros(d), Xn, Yn
    weight, bias, kept = _fit_kept(Xn, Yn, fit_intercept)
    r = int(kept.sum())
    df_resid = _check_df(n, r, fit_intercept)
    estimable = None
    if r < d:
        _warn_aliased(kept, features)
        norms = _column_norms(A)
        safe = np.where(norms > 0, norms, 1.0)
        a_e, _ = torch.geqrf(torch.from_numpy(np.ascontiguousarray(A / safe)))
        F = torch.triu(a_e[: min(n, d)]).numpy()  # R factor of the equilibrated design
        estimable = _estimability(F, center, safe, kept, features)

    A_k = np.ascontiguousarray(A if r == d else A[:, kept])  # (n, r)
    W_k = weight[:, kept]  # (k, r)
    E = _residuals(A_k, B, W_k)  # (n, k)
    rss = (E * E).sum(axis=0)
    fitted = A_k @ W_k.T  # centred fitted values (or raw, through the origin)
    mss = (fitted * fitted).sum(axis=0)
    center_k = center[kept]

    with np.errstate(divide="ignore", invalid="ignore"):
        sigma2 = rss / df_resid
    if r:
        a, tau = torch.geqrf(torch.from_numpy(A_k))
        R = torch.triu(a[:r]).numpy()
        scale = _column_norms(R)  # those of A_k: QR preserves column norms
        factor = _Factor(r_inv=_solve_upper_identity(R / scale), scale=scale)
    else:  # no estimable slope: the intercept alone, or nothing
        factor = _Factor(r_inv=np.zeros((0, 0)), scale=np.zeros(0))
    if cov_type == "nonrobust":
        cov_wb, cov_wc = _nonrobust_covariances(factor, sigma2, center_k, n, fit_intercept)
    else:
        Q = torch.linalg.householder_product(a, tau).numpy() if r else np.zeros((n, 0))
        cov_wb, cov_wc = _robust_covariances(
            Q, factor, E, cov_type, center_k, df_resid, fit_intercept
        )

    quantiles = np.quantile(E, [0.0, 0.25, 0.5, 0.75, 1.0], axis=0).T  # (k, 5)
    return _assemble(
        weight=weight,
        bias=bias,
        cov_wb=cov_wb,
        cov_wc=cov_wc,
        center=center,
        kept=kept,
        rss=rss,
        mss=mss,
        n=n,
        fit_intercept=fit_intercept,
        cov_type=cov_type,
        feature_names=features,
        target_names=targets,
        residual_quantiles=quantiles,
        estimable=estimable,
    )


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
    batches: Callable[[], Iterable[tuple[Any, Any]]] | None = None,
    collect: Callable[[Callable[[], np.ndarray]], np.ndarray] | None = None,
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
    """
    cov_type = _check_cov_type(cov_type)
    second_pass = None  # the rows again, for the HC types
    if cov_type != "nonrobust":
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
    if not isinstance(fit_intercept, (bool, np.bool_)):
        raise ValidationError(f"fit_intercept must be True or False, got {fit_intercept!r}")
    fit_intercept = bool(fit_intercept)
    zbar = stats.zbar.detach().cpu().double().numpy()
    ybar = stats.ybar.detach().cpu().double().numpy()
    Szz = stats.Szz.detach().cpu().double().numpy()
    d, k, n = zbar.shape[0], ybar.shape[0], int(stats.n)
    W = as_matrix(weight, "weight", dtype=torch.float64).cpu()
    b = as_targets(bias, "bias", dtype=torch.float64).cpu()
    if W.shape != (k, d) or b.shape != (k, 1):
        raise ValidationError(
            f"weight must be ({k}, {d}) and bias ({k},) for statistics of {d} feature(s) and "
            f"{k} target(s), got {tuple(W.shape)} and ({b.shape[0]},)"
        )
    if not fit_intercept and bool((b != 0).any()):
        raise ValidationError("fit_intercept=False but bias is not zero")
    features = _names(feature_names, d, "x", "feature")
    targets = _names(target_names, k, "y", "target")
    Wn, bn = W.numpy().copy(), b[:, 0].numpy().copy()

    device = stats.zbar.device
    rss = n * stats.per_target_mse(W.to(device), b[:, 0].to(device)).cpu().numpy()
    S = Szz if fit_intercept else Szz + np.outer(zbar, zbar)  # Gram / n
    mss = n * ((Wn @ S) * Wn).sum(axis=1)
    center = zbar if fit_intercept else np.zeros(d)

    norms = np.sqrt(np.clip(np.diagonal(S), 0.0, None))
    safe = np.where(norms > 0, norms, 1.0)
    C = S / np.outer(safe, safe)  # equilibrated: unit diagonal (zero for a constant column)
    lam, U = np.linalg.eigh((C + C.T) / 2)
    lam_max = max(float(lam[-1]), 0.0)
    # The Gram matrix squares the condition number: a column closer than ~sqrt(eps) to the
    # span of the others leaves no correct digit in G. Such columns are treated as aliased
    # (with a margin of _STATS_ALIAS over the eigenvalue floor of SufficientStats.optimum).
    floor = lam_max * max(d, 1) * _EPS
    kept = norms > 0
    distance = np.ones(d)
    if not (bool(kept.all()) and float(lam[0]) > _STATS_ALIAS**2 * floor):
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
    df_resid = _check_df(n, r, fit_intercept)
    estimable = None
    if r < d:
        _warn_aliased(kept, features, " to the precision of its sufficient statistics")
        root = np.sqrt(np.clip(lam, 0.0, None))[:, None] * U.T  # rootᵀ root = C
        estimable = _estimability(root, center, safe, kept, features)
        # Re-express the given weights on the kept columns: Z_a = Z_k T (+ offset), T from the
        # Gram blocks, so the predictions do not change.
        alias = np.flatnonzero(~kept)
        if r:
            Linv = _solve_upper_identity(L.T)  # R_e⁻¹ with R_e = Lᵀ
            G_e = Linv @ Linv.T  # C_kk⁻¹
            T = (G_e @ C[np.ix_(index, alias)]) * safe[alias] / safe[index][:, None]  # (r, a)
            Wn[:, index] += Wn[:, alias] @ T.T
            if fit_intercept:
                bn += Wn[:, alias] @ (zbar[alias] - T.T @ zbar[index])
        Wn[:, alias] = 0.0

    with np.errstate(divide="ignore", invalid="ignore"):
        sigma2 = rss / df_resid
    if r:
        factor = _Factor(r_inv=_solve_upper_identity(L.T), scale=norms[index] * math.sqrt(n))
        if second_pass is None:
            cov_wb, cov_wc = _nonrobust_covariances(factor, sigma2, center[kept], n, fit_intercept)
        else:
            cov_wb, cov_wc = _robust_over_rows(
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
            )
    elif fit_intercept:
        cov_wb = cov_wc = (sigma2 / n)[:, None, None] * np.ones((k, 1, 1))
    else:
        cov_wb = cov_wc = np.zeros((k, 0, 0))
    return _assemble(
        weight=Wn,
        bias=bn,
        cov_wb=cov_wb,
        cov_wc=cov_wc,
        center=center,
        kept=kept,
        rss=rss,
        mss=mss,
        n=n,
        fit_intercept=fit_intercept,
        cov_type=cov_type,
        feature_names=features,
        target_names=targets,
        residual_quantiles=None,
        estimable=estimable,
    )
