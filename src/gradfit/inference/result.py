"""The result of an OLS fit: coefficients, their covariance and tests, fit statistics, and the
predictor of intervals.

:class:`OLSResult` is built by :func:`gradfit.inference.ols` (rows in memory) and
:func:`gradfit.inference.ols_from_stats` (sufficient statistics) alike; it derives the
per-coefficient standard errors, t values, p-values and confidence intervals from its
covariance, and gives its numbers as plain data (:meth:`OLSResult.as_dict`) or as R's text
(:mod:`gradfit.inference.summary`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gradfit.errors import ValidationError
from gradfit.inference.covariance import Factor
from gradfit.inference.distributions import check_level, special, t_quantile
from gradfit.inference.influence import Influence, influence_whole
from gradfit.inference.predictor import Estimability, OLSPredictor, PredictionInterval
from gradfit.inference.summary import confint_text, summary_text
from gradfit.validation import as_matrix

__all__ = ["OLSResult"]


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

    For the diagnostics (:meth:`influence`, :func:`gradfit.anova`) the result keeps, without
    the rows: ``factor``, the triangular factor of ``(AᵀA)⁻¹`` of the centred (weighted)
    design over the estimable columns; ``effects`` (k, d), R's effects ``Qᵀy`` of those
    columns in order (0 for the aliased), whose squares are the sequential sums of squares,
    with the signs of the one factorization whose R has a positive diagonal, whatever the
    route (Householder's QR, the Cholesky factor of a well-conditioned design's Gram matrix,
    sufficient statistics, in memory or streamed), so that they never depend on the route or
    the data's size (R's own ``effects()`` take their signs from LINPACK's Householder QR of a
    design with a column of ones, which no route here reproduces: equal up to each one's sign);
    ``total``, the number of rows or their total weight; ``sample_weights``, whether the fit
    had weights; ``terms``, the formula's terms with the columns each made (None: a fit of
    matrices, one term a column) and ``formula``; ``n_groups``, the clusters of
    ``cov_type="cluster"``.
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
    n_dropped: int = 0  # rows left out for a missing value (a formula's missing="drop")
    # A weighted fit whose weights are not all equal: R prints "Weighted Residuals" (the
    # quantiles are then those of sqrt(w) e, 0 for rows of weight 0).
    weighted: bool = False
    factor: Factor | None = None
    effects: torch.Tensor | None = None  # (k, d)
    total: float = 0.0
    sample_weights: bool = False
    terms: tuple[tuple[str, tuple[int, ...]], ...] | None = None
    formula: str | None = None
    n_groups: int | None = None
    design: Any = None  # the formula's gradfit.design.Design (None: a fit of matrices)
    missing: str = "error"  # the formula's missing= (rows with a missing value: left out?)

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
        p = 2.0 * special().stdtr(self.df_resid, -np.abs(t.numpy()))  # two-sided t tail
        return torch.from_numpy(np.asarray(p, dtype=np.float64))

    def _estimates(self) -> torch.Tensor:
        """(k, p): the slopes, then the intercept when there is one."""
        if self.fit_intercept:
            return torch.cat([self.weight, self.bias[:, None]], dim=1)
        return self.weight

    def conf_int(self, level: float = 0.95) -> torch.Tensor:
        """(k, p, 2): for each target and coefficient (features, then the intercept), the
        bounds ``estimate ∓ t_{(1+level)/2, df_resid} · se``."""
        q = t_quantile(check_level(level), self.df_resid)
        est, half = self._estimates(), q * self._se
        return torch.stack([est - half, est + half], dim=2)

    # ------------------------------------------------------------------ diagnostics

    @property
    def rss(self) -> torch.Tensor:
        """(k,) residual sums of squares (weighted: of ``sqrt(w) e``), ``σ² df_resid``."""
        return self.sigma * self.sigma * self.df_resid

    def influence(self, X: Any, Y: Any = None, weights: Any = None) -> Influence:
        """Per-row diagnostics of the fit (see :mod:`gradfit.inference.influence`): fitted
        values, residuals, hat values, internally and externally studentized residuals, Cook's
        distance, DFFITS, COVRATIO and DFBETAS, as R's ``influence.measures``.

        The result does not keep the rows: give those it was fitted to again, ``X`` (n, d),
        ``Y`` and, for a weighted fit, its ``weights``; for a fit of a formula, its data
        alone, ``fit.influence(data, weights=...)`` (rows left out by ``missing="drop"`` are
        left out here too, as R's ``na.omit``). For a part of the rows (a batch of a stream)
        use :func:`gradfit.inference.influence_batch`."""
        if Y is None:
            if self.design is None:
                raise ValidationError(
                    "influence(X, Y) needs the targets Y (a fit of a formula takes its data "
                    "alone: fit.influence(data))"
                )
            matrices = self.design.matrices(X, missing=self.missing)
            X, Y = matrices.X, matrices.Y
            if weights is not None and not bool(matrices.kept.all()):
                array = np.asarray(weights)
                if array.ndim == 1 and array.shape[0] == matrices.kept.shape[0]:
                    weights = array[matrices.kept]
        return influence_whole(self, X, Y, weights)

    # ------------------------------------------------------------------ prediction

    def predict(
        self, X: Any, interval: str | None = None, level: float = 0.95, weights: Any = None
    ) -> torch.Tensor | PredictionInterval:
        """See :meth:`OLSPredictor.predict` (``weights``: the new rows' weights for a
        prediction interval, default 1, as R's ``predict.lm``).

        Warns
        -----
        RankDeficiencyWarning
            A rank-deficient fit, and some row of X is off the span of the training rows
            (see :class:`Estimability`): its prediction depends on the aliased coefficients
            being 0, and R warns too.
        """
        out = self.predictor.predict(X, interval, level, weights)  # checks X first
        if self.estimable is not None:
            self.estimable.warn(as_matrix(X, "X", dtype=torch.float64).cpu().numpy())
        return out

    def to_dict(self) -> dict[str, Any]:
        """What prediction intervals need, as plain data; see :meth:`OLSPredictor.to_dict`."""
        return self.predictor.to_dict()

    def as_dict(self, level: float = 0.95) -> dict[str, Any]:
        """Everything :meth:`summary` shows, as plain data (floats may be NaN: aliased
        coefficients, or the intercept's entries of a fit through the origin)::

            {"cov_type", "n", "df_model", "df_resid", "fit_intercept", "n_dropped", "level",
             "n_groups" (with cov_type "cluster" only),
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
            "n_dropped": self.n_dropped,
            "level": float(level),
            **({"n_groups": self.n_groups} if self.cov_type == "cluster" else {}),
            "targets": targets,
        }

    # ------------------------------------------------------------------ summary
    # ------------------------------------------------------------------ summary

    def confint_text(self, level: float = 0.95) -> str:
        """The coefficients' confidence intervals (:meth:`conf_int`) as R's
        ``confint(fit, level = level)`` prints them, per target: the intercept first, columns
        named by their tail probabilities (``5 %``, ``95 %`` for 0.9), NA for the aliased."""
        return confint_text(self, level)

    def summary(self) -> str:
        """A text report per target in the manner of R's ``summary.lm``."""
        return summary_text(self)
