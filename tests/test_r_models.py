"""gradfit's statistics against R's on fits the other R tests do not cover: weighted fits of a
formula with a factor and its interaction with a slope, weights with zeros, no intercept with
a full set of dummies (R's uncentred R² and F), a rank-deficient weighted factorial design
(npk: N:P:K aliased with block, R's NA); for each: ``summary.lm`` (estimates, errors, t, p,
σ, R², adjusted R², F, the residual quantiles R prints), ``logLik``/``AIC``/``BIC``,
``confint(level = 0.9)``, ``sandwich::vcovHC`` HC0-HC3 and ``vcovCL(cluster = ~gear)`` (its
defaults: type "HC1", cadjust), ``anova``, ``hatvalues``, ``rstandard``, ``rstudent``,
``cooks.distance``, ``dffits``, ``covratio``, ``fitted``, ``residuals`` and
``predict(interval = "confidence" / "prediction")`` of new rows.

The references are R 4.2.2's (sandwich 3.0.2) written by tests/data/r/export_models.R into
tests/data/r/fit-*.csv (17 significant digits); the tests never run R.

Where gradfit differs from R by design (documented in gradfit.inference.regression and
.cluster): sandwich's HC and clustered covariances of a fit with rows of weight 0 count those
rows in n (and their groups in G); gradfit's equal sandwich's on the fit of the rows of positive
weight alone (``mtcars-wls0-kept``), which R's lm fit equals. R's influence measures leave the
rows of weight 0 out; gradfit keeps their place (leverage 0, NaN measures): compared on R's rows.

Tolerance: R's lm and gradfit both solve by Householder QR in float64; these designs have
condition numbers below 1e4, so both are within ~1e-12 relative of the exact answers; 1e-9
relative leaves room for the t and F tail probabilities (different algorithms), and an
absolute 1e-12 times the quantity's scale for values that are 0 up to rounding.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from r_models import CASES, answers, read_r

RTOL = 1e-9


@pytest.mark.parametrize("name", sorted(CASES))
def test_fit_matches_r(name: str) -> None:
    r = read_r(name)
    got = answers(name)
    missing = sorted(set(r) - set(got))
    assert not missing, f"gradfit gives no {missing[:5]}"
    quantities = sorted({q for q, _ in r})
    failures = []
    for quantity in quantities:
        keys = [key for key in r if key[0] == quantity]
        want = np.array([r[key] for key in keys])
        have = np.array([got[key] for key in keys])
        scale = np.nanmax(np.abs(want)) if np.isfinite(want).any() else 1.0
        same_na = np.array_equal(np.isnan(want), np.isnan(have))
        finite = ~np.isnan(want)
        close = np.allclose(have[finite], want[finite], rtol=RTOL, atol=1e-12 * scale)
        if not (same_na and close):
            worst = int(np.nanargmax(np.abs(have - want) / np.maximum(np.abs(want), 1e-300)))
            failures.append(
                f"{quantity}[{keys[worst][1]}]: gradfit {have[worst]!r}, R {want[worst]!r}"
            )
    assert not failures, "\n".join(failures)


def test_the_zero_weight_fit_is_the_fit_of_the_other_rows() -> None:
    """R: the fit with rows of weight 0 is the fit without them (coefficients, errors, σ, R²,
    F, anova, the influence of the kept rows); only the residual quantiles (R lists the
    rows of weight 0 with residual 0) and the rows' numbering differ."""
    zero, kept = read_r("mtcars-wls0"), read_r("mtcars-wls0-kept")
    for key, value in zero.items():
        if key[0] in ("residual_quantiles", "fitted", "residuals") or key[0].endswith(
            ("_fit", "_lower", "_upper")
        ):
            continue
        same = math.isnan(value) and math.isnan(kept[key])
        assert same or math.isclose(value, kept[key], rel_tol=1e-12, abs_tol=1e-14), key
