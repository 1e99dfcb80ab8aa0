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
   In memory the design is factored once (the solver's QR, Q kept implicit); the sum runs a
   block of rows at a time in Q's coordinates (``u_i = diag(D⁻¹ R_e⁻¹, 1) (Q_i, o_i)``, with
   the intercept's part ``o_i`` per row), with the rows ``Q_i = a_i D⁻¹ R_e⁻¹`` on a design
   of condition ≤ 1e4 and Householder's explicit Q above (where ``A R⁻¹`` would lose digits).
5. **Tests.** ``t = estimate / se`` on ``df_resid = n - p`` degrees of freedom (p the number of
   estimated coefficients, intercept included); ``F = (MSS / df_model) / σ²`` with R's sums
   of squares: ``MSS = Σ (ŷ - ȳ)²`` with an intercept, ``Σ ŷ²`` through the origin, and
   ``R² = MSS / (MSS + RSS)`` (for a model through the origin that is R's uncentred R², and
   ``df_model = d``). With a robust ``cov_type`` the F statistic is the Wald test of all
   slopes with the robust covariance, ``β_sᵀ V_s⁻¹ β_s / df_model`` (which equals the
   classical F under ``nonrobust``). The log-likelihood is the Gaussian one at the maximum,
   ``-n/2 (log 2π + log(RSS/n) + 1)``; AIC and BIC count σ as a parameter, as R's ``AIC`` does.
   ``cov_type="cluster"`` (with ``groups``): cluster-robust CR1, as Stata and
   ``sandwich::vcovCL`` give it (:mod:`~gradfit.inference.cluster`).
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

The package, a module a job: :mod:`~gradfit.inference.regression` (:func:`ols` and
:func:`ols_from_stats`, the two routes, and what they share),
:mod:`~gradfit.inference.covariance` (points 2-4: classical and HC0-HC3, one sandwich routine
for rows in memory and for batches), :mod:`~gradfit.inference.result` (:class:`OLSResult`),
:mod:`~gradfit.inference.influence` (per-row diagnostics: leverage, studentized residuals,
Cook's distance, DFFITS, DFBETAS, batch by batch), :mod:`~gradfit.inference.anova` (R's
``anova``: sequential sums of squares by term, F tests between nested fits),
:mod:`~gradfit.inference.cluster` (clustered errors from per-group score sums),
:mod:`~gradfit.inference.predictor` (intervals of the response, the model file's interval
data, estimability of new rows), :mod:`~gradfit.inference.summary` (R's text),
:mod:`~gradfit.inference.distributions` (t and F, SciPy on first use) and
:mod:`~gradfit.inference.linalg` (extended-precision numerics).
"""

from __future__ import annotations

from gradfit.inference.anova import AnovaTable, anova
from gradfit.inference.cluster import DEFAULT_MAX_GROUPS, ClusterScores
from gradfit.inference.covariance import ALL_COV_TYPES, CLUSTER, COV_TYPES
from gradfit.inference.distributions import preload_distributions as preload_distributions
from gradfit.inference.formula import ols
from gradfit.inference.influence import Influence, influence_batch
from gradfit.inference.predictor import (
    ESTIMABLE_TOL,
    Estimability,
    OLSPredictor,
    PredictionInterval,
    estimability,
    warn_not_estimable,
)
from gradfit.inference.predictor import (
    INTERVALS as INTERVALS,
)
from gradfit.inference.regression import ols_from_stats
from gradfit.inference.result import OLSResult

__all__ = [
    "ALL_COV_TYPES",
    "CLUSTER",
    "COV_TYPES",
    "DEFAULT_MAX_GROUPS",
    "ESTIMABLE_TOL",
    "AnovaTable",
    "ClusterScores",
    "Estimability",
    "Influence",
    "OLSPredictor",
    "OLSResult",
    "PredictionInterval",
    "anova",
    "estimability",
    "influence_batch",
    "ols",
    "ols_from_stats",
    "warn_not_estimable",
]
