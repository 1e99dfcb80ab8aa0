"""R-style text of an OLS fit: the ``summary.lm`` report and the ``confint`` table.

Pure formatting of an :class:`~gradfit.inference.result.OLSResult`'s numbers (the methods
:meth:`~gradfit.inference.result.OLSResult.summary` and
:meth:`~gradfit.inference.result.OLSResult.confint_text` call these): R's layout, its
``format.pval`` and significance stars, NA for aliased coefficients.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from gradfit.inference.distributions import check_level

if TYPE_CHECKING:
    from gradfit.inference.result import OLSResult

__all__ = ["confint_text", "summary_text"]


def confint_text(fit: OLSResult, level: float = 0.95) -> str:
    """The coefficients' confidence intervals (:meth:`OLSResult.conf_int`) as R's
    ``confint(fit, level = level)`` prints them, per target: the intercept first, columns
    named by their tail probabilities (``5 %``, ``95 %`` for 0.9), NA for the aliased."""
    bounds = fit.conf_int(level).numpy()  # (k, p, 2), features then intercept
    tail = (1.0 - check_level(level)) / 2.0
    heads = ["", f"{100 * tail:.3g} %", f"{100 * (1 - tail):.3g} %"]
    d = fit.weight.shape[1]
    order = ([d] if fit.fit_intercept else []) + list(range(d))
    names = [*fit.feature_names, "(Intercept)"]
    aliased = [*fit.aliased.tolist(), False]
    blocks = []
    for j, target in enumerate(fit.target_names):
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


def summary_text(fit: OLSResult) -> str:
    """A text report per target in the manner of R's ``summary.lm``."""
    return "\n\n".join(_summary_of(fit, j) for j in range(fit.weight.shape[0]))


def _summary_of(fit: OLSResult, j: int) -> str:
    lines = [f"Response {fit.target_names[j]}:", ""]
    if fit.residual_quantiles is not None:
        heads = ("Min", "1Q", "Median", "3Q", "Max")
        cells = [f"{v:.6g}" for v in fit.residual_quantiles[j].tolist()]
        width = max(len(c) for c in (*heads, *cells))
        lines += [
            "Weighted Residuals:" if fit.weighted else "Residuals:",
            " ".join(h.rjust(width) for h in heads),
            " ".join(c.rjust(width) for c in cells),
            "",
        ]
    names = list(fit.feature_names)
    est = fit.weight[j].tolist()
    se = fit.weight_se[j].tolist()
    t = fit.weight_t[j].tolist()
    p = fit.weight_p[j].tolist()
    aliased = fit.aliased.tolist()
    if fit.fit_intercept:  # R lists the intercept first
        names.insert(0, "(Intercept)")
        est.insert(0, float(fit.bias[j]))
        se.insert(0, float(fit.bias_se[j]))
        t.insert(0, float(fit.bias_t[j]))
        p.insert(0, float(fit.bias_p[j]))
        aliased.insert(0, False)
    rows = [["", "Estimate", "Std. Error", "t value", "Pr(>|t|)", ""]]
    for name, e, s, tv, pv, a in zip(names, est, se, t, p, aliased, strict=True):
        if a:
            rows.append([name, "NA", "NA", "NA", "NA", ""])
        else:
            rows.append([name, f"{e:.6g}", f"{s:.6g}", f"{tv:.3f}", _format_p(pv), _stars(pv)])
    widths = [max(len(row[c]) for row in rows) for c in range(6)]
    n_aliased = int(fit.aliased.sum())
    lines.append(
        "Coefficients:"
        + (f" ({n_aliased} not defined because of singularities)" if n_aliased else "")
    )
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(row[1:5], widths[1:5], strict=True)]
        lines.append(("  ".join(cells) + " " + row[5]).rstrip())
    lines += ["---", "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"]
    if fit.cov_type == "cluster":
        lines.append(f"Standard errors: clustered by group (CR1, {fit.n_groups} groups)")
    elif fit.cov_type != "nonrobust":
        lines.append(f"Standard errors: heteroskedasticity-consistent ({fit.cov_type})")
    lines += [
        "",
        f"Residual standard error: {float(fit.sigma[j]):.6g} on {fit.df_resid} degrees of freedom",
        *(
            [f"  ({fit.n_dropped} observations deleted due to missingness)"]
            if fit.n_dropped
            else []
        ),
    ]
    if not fit.df_model:  # no slope (y ~ 1): R's summary.lm has no R² and F lines
        return "\n".join(lines)
    lines.append(
        f"Multiple R-squared:  {float(fit.r2[j]):.6g},\t"
        f"Adjusted R-squared:  {float(fit.r2_adj[j]):.6g}"
    )
    f_name = "F-statistic" if fit.cov_type == "nonrobust" else f"Wald F ({fit.cov_type})"
    lines.append(
        f"{f_name}: {float(fit.f_statistic[j]):.6g} on {fit.df_model} and {fit.df_resid} "
        f"DF,  p-value: {_format_p(float(fit.f_pvalue[j]))}"
    )
    if not fit.fit_intercept:
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
