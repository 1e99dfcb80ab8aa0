"""Prediction from an OLS fit: the interval predictor that a model file keeps (with its JSON
codec), and the estimability check of new rows for a rank-deficient fit.

:class:`OLSPredictor` holds what confidence and prediction intervals of the response need, in
the centred coordinates of the package's docstring; :class:`Estimability` the null space of a
rank-deficient training design, to warn (as R's ``predict.lm`` does) about new rows whose
prediction depends on the aliased coefficients being 0. Both write themselves as plain JSON
data and read it back, refusing anything malformed with a one-line
:class:`~gradfit.errors.ModelFileError`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch

from gradfit.errors import (
    ConstantVarianceWarning,
    ModelFileError,
    RankDeficiencyWarning,
    ValidationError,
)
from gradfit.inference.distributions import check_level, t_quantile
from gradfit.model_file import (
    INTERVAL_FORMAT,
    INTERVAL_VERSION,
    estimability_parts,
    interval_parts,
    match_interval,
)
from gradfit.validation import as_matrix, as_targets, check_weights

if TYPE_CHECKING:
    from gradfit.inference.result import OLSResult

__all__ = [
    "ESTIMABLE_TOL",
    "INTERVALS",
    "Estimability",
    "OLSPredictor",
    "PredictionInterval",
    "estimability",
    "estimability_of",
    "warn_not_estimable",
]

INTERVALS = ("confidence", "prediction")
# A new row is off the training rows' span when the part of its (centred, equilibrated)
# features in the null space of the training design exceeds this fraction of their norm: R's
# default tolerance (predict.lm's tol = 1e-6, R >= 4.3).
ESTIMABLE_TOL = 1e-6


class PredictionInterval(NamedTuple):
    """Predicted mean and the lower and upper bounds of an interval, each (n, k)."""

    mean: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor


@dataclass(frozen=True, eq=False)
class OLSPredictor:
    """What confidence and prediction intervals of the response need, and nothing else.

    ``covariance`` (k, p, p) is that of the slopes and of the *mean response at the centre*,
    ``c = bias + weight @ center`` (intercept last, p = d + 1; without an intercept ``center``
    is zero and p = d). In these coordinates the variance of the fitted mean at x,
    ``[x - center, 1] Cov [x - center, 1]ᵀ``, does not cancel the large terms that
    ``[x, 1] Cov(w, b) [x, 1]ᵀ`` would on a design far from the origin. Aliased coefficients
    (rank-deficient fits) have zero rows and columns: their weight is 0 and stays 0.
    ``weighted``: the fit had row weights (not in :meth:`to_dict`: a model file records its
    weights column among its hyperparameters).
    """

    weight: torch.Tensor  # (k, d)
    bias: torch.Tensor  # (k,)
    center: torch.Tensor  # (d,)
    covariance: torch.Tensor  # (k, p, p)
    sigma: torch.Tensor  # (k,)
    df_resid: int
    fit_intercept: bool
    cov_type: str = "nonrobust"
    weighted: bool = False

    def predict(
        self, X: Any, interval: str | None = None, level: float = 0.95, weights: Any = None
    ) -> torch.Tensor | PredictionInterval:
        """The mean ``X @ weight.T + bias`` (n, k), or with ``interval="confidence"`` (for the
        mean response) or ``"prediction"`` (for a new observation) a
        :class:`PredictionInterval` ``mean ± t_{(1+level)/2, df_resid} · se``, where
        ``se² = x̃ᵀ Cov x̃`` (plus ``sigma² / w`` for a prediction) and
        ``x̃ = [x - center, 1]``. ``weights`` (n,): the new rows' weights, each > 0, for a
        prediction interval of a weighted fit (default 1: R's ``predict.lm``, whose
        ``pred.var = res.var / weights``); ignored without ``interval="prediction"``.

        Warns
        -----
        ConstantVarianceWarning
            A prediction interval of a weighted fit without ``weights``: each new row weighs
            1, and R warns too."""
        d = self.weight.shape[1]
        Xt = as_matrix(X, "X", dtype=torch.float64, min_columns=min(d, 1))  # d = 0: y ~ 1
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
        q = t_quantile(check_level(level), self.df_resid)
        if interval == "prediction" and weights is None and self.weighted:
            warnings.warn(
                "Assuming constant prediction variance even though model fit is weighted "
                "(each new row weighs 1; give the new rows' weights: weights=, or "
                "--pred-weights COLUMN)",
                ConstantVarianceWarning,
                stacklevel=2,
            )
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
                var = var + self.sigma.numpy() ** 2 / _prediction_weights(weights, Xn.shape[0])
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
            "format": INTERVAL_FORMAT,
            "version": INTERVAL_VERSION,
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
        # The checks, as gradfit info runs them without torch (gradfit.model_file).
        parts = interval_parts(data)
        try:
            W = as_matrix(weight, "weight", dtype=torch.float64).cpu()
            bt = as_targets(bias, "bias", dtype=torch.float64).cpu()
        except ValidationError as exc:
            raise ModelFileError(str(exc)) from exc
        match_interval(parts, W.numpy(), bt[:, 0].numpy() if bt.shape[1] == 1 else bt.numpy())
        return cls(
            weight=W.contiguous(),
            bias=bt[:, 0].contiguous(),
            center=torch.from_numpy(parts.center),
            covariance=torch.from_numpy(parts.covariance),
            sigma=torch.from_numpy(parts.sigma),
            df_resid=parts.df_resid,
            fit_intercept=parts.fit_intercept,
            cov_type=parts.cov_type,
        )


def _prediction_weights(weights: Any, n: int) -> np.ndarray:
    """The new rows' weights (n, 1) for a prediction interval: 1 by default; each > 0."""
    if weights is None:
        return np.ones((n, 1))
    w = check_weights(weights, n, "weights").numpy()
    zero = np.flatnonzero(w == 0)
    if zero.size:
        raise ValidationError(
            f"weights at row {zero[0]} (counted from 0) is 0: a prediction interval needs a "
            "positive weight (its variance is sigma² / weight)"
        )
    return w[:, None]


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
        center, scale, basis, aliased = estimability_parts(data, d)
        return cls(center=center, scale=scale, basis=basis, aliased=aliased)


def estimability_of(
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
