"""Analysis of variance of OLS fits, as R's ``anova``: the sequential (type I) table of a fit
by term, and the F test between nested fits.

:func:`anova` of one fit (R's ``anova(lm)``): for each term in the formula's order, its
degrees of freedom (its estimable columns), its sequential sum of squares (the fall of the
residual sum of squares when the term joins the terms before it), the mean square, the F value
against the residual mean square and its p-value, then the residuals. The sequential sums of
squares are those of R's effects ``Qᵀy`` (QR of the centred, weighted design in column order)
that :class:`~gradfit.inference.result.OLSResult` keeps: from the rows in memory (Householder
QR) or from sufficient statistics (``L⁻¹`` of the Gram matrix's Cholesky factor), so a streamed
fit gets its table without another pass. A fit of a formula (``gradfit.ols("y ~ a * b",
data=...)``) has a row per formula term (the columns of ``C(g)`` together); a fit of matrices
a row per column. A term whose columns are all aliased is left out, as R leaves it out; the
table is the classical one whatever the fit's ``cov_type`` (R's ``anova.lm`` too).

:func:`anova` of several fits of the same rows (R's ``anova(m1, m2, ...)``), usually nested:
each fit's residual degrees of freedom and RSS, and from the second on the change from the
fit before: ``Df``, ``Sum of Sq``, ``F = (Sum of Sq / Df) / (RSS_big / Res.Df_big)`` (big: the
fit of fewest residual degrees of freedom, the first of them) and ``Pr(>F)``; F is NA where
``Df`` is 0 or F < 0, as R shows it.

Several targets: one table per target (the same rows, columns and degrees of freedom).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gradfit.errors import ValidationError
from gradfit.inference.distributions import special
from gradfit.inference.result import OLSResult

__all__ = ["AnovaTable", "anova"]

TERM_COLUMNS = ("Df", "Sum Sq", "Mean Sq", "F value", "Pr(>F)")
MODEL_COLUMNS = ("Res.Df", "RSS", "Df", "Sum of Sq", "F", "Pr(>F)")
_DIGITS = 5  # R's print.anova: max(getOption("digits") - 2, 3)


@dataclass(frozen=True, eq=False)
class AnovaTable:
    """An analysis-of-variance table per target.

    ``kind``: ``"terms"`` (one fit by term) or ``"models"`` (several fits); ``columns``: R's
    headings (``Df, Sum Sq, Mean Sq, F value, Pr(>F)`` or ``Res.Df, RSS, Df, Sum of Sq, F,
    Pr(>F)``); ``rows``: the terms then ``"Residuals"``, or the fits ``"1", "2", ...``;
    ``values`` (k, rows, columns) float64, NaN where R shows nothing (NA);
    ``heading``: the lines R prints above a models table (``Model 1: mpg ~ wt``).
    """

    kind: str
    columns: tuple[str, ...]
    rows: tuple[str, ...]
    target_names: tuple[str, ...]
    values: torch.Tensor
    heading: tuple[str, ...] = ()

    def column(self, name: str) -> torch.Tensor:
        """The column ``name`` (k, rows), e.g. ``table.column("Pr(>F)")``."""
        if name not in self.columns:
            raise ValidationError(
                f"no column {name!r} in this table; it has {', '.join(self.columns)}"
            )
        return self.values[:, :, self.columns.index(name)]

    def as_dict(self) -> dict[str, Any]:
        """The table as plain data, None where R shows NA::

        {"kind", "columns", "rows", "heading",
         "targets": {target: {row: {column: float or None}}}}
        """
        values = self.values.numpy()
        targets = {
            target: {
                row: {
                    column: (None if math.isnan(v) else float(v))
                    for column, v in zip(self.columns, values[j, i].tolist(), strict=True)
                }
                for i, row in enumerate(self.rows)
            }
            for j, target in enumerate(self.target_names)
        }
        return {
            "kind": self.kind,
            "columns": list(self.columns),
            "rows": list(self.rows),
            "heading": list(self.heading),
            "targets": targets,
        }

    def __str__(self) -> str:
        """R's print of the table, per target."""
        blocks = []
        for j, target in enumerate(self.target_names):
            lines = ["Analysis of Variance Table", ""]
            if self.kind == "terms":
                lines += [f"Response: {target}"]
            else:
                lines += [*self.heading]
                if len(self.target_names) > 1:
                    lines += [f"Response: {target}"]
            lines += _table_lines(self.columns, self.rows, self.values[j].numpy())
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks)


def _scientific(x: float, digits: int) -> tuple[int, int]:
    """R's ``scientific()`` (format.c) of a finite x != 0: its power of ten and the significant
    digits (at most ``digits``, trailing zeros dropped) that show it to ``digits`` digits."""
    mantissa, exponent = f"{abs(x):.{digits - 1}e}".split("e")
    kept = mantissa.replace(".", "").rstrip("0")
    return int(exponent), max(1, len(kept))


def _r_format(values: np.ndarray, digits: int) -> list[str]:
    """R's ``format(x, digits = digits)`` of a numeric vector (``formatReal``): one notation
    for all cells; fixed with the decimals the cell needing most needs (each cell shown to
    ``digits`` significant digits), unless scientific is narrower; "" for NaN."""
    finite = [float(v) for v in values.tolist() if math.isfinite(v)]
    if not finite:
        return ["" for _ in values.tolist()]
    nonzero = [v for v in finite if v != 0.0]
    neg = int(any(v < 0 for v in finite))
    if not nonzero:
        return ["" if not math.isfinite(v) else "0" for v in values.tolist()]
    powers, sigs = zip(*(_scientific(v, digits) for v in nonzero), strict=True)
    left = max(max(k + 1 for k in powers), 1)
    rgt = max(0, max(sig - k - 1 for k, sig in zip(powers, sigs, strict=True)))
    fixed_width = neg + left + rgt + (rgt > 0)
    sig_max = max(sigs)
    exponent_digits = 3 if max(abs(k) for k in powers) >= 100 else 2
    sci_width = neg + (sig_max + 1 if sig_max > 1 else 1) + 2 + exponent_digits
    if fixed_width <= sci_width:
        return ["" if not math.isfinite(v) else f"{v:.{rgt}f}" for v in values.tolist()]
    # Python's exponent (e-07, e+100) is R's
    return ["" if not math.isfinite(v) else f"{v:.{sig_max - 1}e}" for v in values.tolist()]


def _zapsmall(values: np.ndarray, digits: int) -> np.ndarray:
    """R's ``zapsmall(x, digits)``: rounded to ``digits - log10(max |x|)`` decimals (R rounds
    a fractional number of decimals to the nearest)."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return values
    biggest = float(np.abs(finite).max())
    decimals = digits if biggest == 0 else max(0, math.floor(digits - math.log10(biggest) + 0.5))
    return np.round(values, decimals)


def _format_column(values: np.ndarray, digits: int, kind: str) -> list[str]:
    """A column of R's ``print.anova`` (``printCoefmat``): ``"df"`` the degrees of freedom,
    ``"zap"`` sums of squares (``zapsmall`` then ``format``), ``"test"`` the F values
    (rounded to ``digits - 1`` decimals, then ``format``); "" for NaN (R's NA)."""
    if kind == "df":
        return ["" if math.isnan(v) else f"{v:.0f}" for v in values.tolist()]
    if kind == "zap":
        shown = _zapsmall(values, digits)
    else:
        shown = np.round(values, max(1, min(5, digits - 1)))
    cells = _r_format(shown, digits)
    if kind == "test":  # printCoefmat leaves the test statistics as rounded (0.00 for 4e-5)
        return cells
    # A value not 0 shown as 0 gets fewer digits; the value is the zapped one (printCoefmat
    # compares its zapsmall-ed matrix), so that a sum of squares zapped to 0 stays 0.000
    for i, (value, cell) in enumerate(zip(shown.tolist(), cells, strict=True)):
        if cell and value != 0.0 and float(cell) == 0.0:
            cells[i] = _r_format(np.array([value]), max(1, digits - 1))[0]
    return cells


def _format_p(values: np.ndarray, digits: int = 4) -> list[str]:
    """R's ``format.pval(p, digits = 4, eps = .Machine$double.eps)`` of a column: the p-values
    from 1e-4 up formatted together, the smaller together, those below eps as ``< 2.2e-16``."""
    eps = float(np.finfo(np.float64).eps)
    out = ["" for _ in values.tolist()]
    shown = [i for i, v in enumerate(values.tolist()) if not math.isnan(v) and v >= eps]
    tiny = [i for i, v in enumerate(values.tolist()) if not math.isnan(v) and v < eps]
    power = {i: math.floor(math.log10(values[i])) if values[i] > 0 else -50 for i in shown}
    fixed = [i for i in shown if power[i] >= -3 or (power[i] == -4 and digits > 1)]
    for group in (fixed, [i for i in shown if i not in fixed]):
        if group:
            for i, cell in zip(group, _r_format(values[group], digits), strict=True):
                out[i] = cell
    if tiny:
        small = max(1, digits - 2)
        sep = "" if small == 1 else " "
        if shown:
            width = max(len(out[i]) for i in shown)
            if small > 1 and small + 6 > width:
                small = max(1, width - 7)
            sep = "" if small == 1 and width <= 6 else " "
        bound = _r_format(np.array([eps]), small)[0]
        for i in tiny:
            out[i] = f"<{sep}{bound}"
    return out


def _stars(p: float) -> str:
    if math.isnan(p):
        return ""
    for bound, mark in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")):
        if p < bound:
            return mark
    return " "


def _table_lines(columns: Sequence[str], rows: Sequence[str], values: np.ndarray) -> list[str]:
    cells = []
    for c, name in enumerate(columns):
        column = values[:, c]
        if name == "Pr(>F)":
            cells.append(_format_p(column))
        elif name.endswith("Df"):
            cells.append(_format_column(column, _DIGITS, "df"))
        else:
            cells.append(_format_column(column, _DIGITS, "test" if name.startswith("F") else "zap"))
    p = values[:, list(columns).index("Pr(>F)")]
    stars = [_stars(v) for v in p.tolist()]
    show_stars = any(s.strip() for s in stars)
    widths = [
        max(len(name), *(len(x) for x in col)) for name, col in zip(columns, cells, strict=True)
    ]
    name_width = max(len(r) for r in rows)
    lines = [
        " " * name_width + " " + " ".join(n.rjust(w) for n, w in zip(columns, widths, strict=True))
    ]
    for i, row in enumerate(rows):
        line = (
            row.ljust(name_width)
            + " "
            + " ".join(col[i].rjust(w) for col, w in zip(cells, widths, strict=True))
        )
        if show_stars:
            line += " " + stars[i]
        lines.append(line.rstrip())
    if show_stars:
        lines += ["---", "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"]
    return lines


def _f_tests(
    ss: np.ndarray, df: np.ndarray, scale: np.ndarray, df_scale: int
) -> tuple[np.ndarray, np.ndarray]:
    """F = (ss / df) / scale (k, rows), NA where df is 0 or F < 0, and its upper tail."""
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (ss / df) / scale[:, None]
    f = np.where((df == 0) | ~(f >= 0), np.nan, f)
    p = np.asarray(special().fdtrc(np.abs(df), df_scale, f), dtype=np.float64)
    return f, np.where(np.isnan(f), np.nan, p)


def _terms_table(fit: OLSResult) -> AnovaTable:
    if fit.effects is None:  # pragma: no cover - every result of ols and ols_from_stats has them
        raise ValidationError("this OLS result keeps no effects for an analysis of variance")
    effects = fit.effects.numpy()  # (k, d)
    kept = ~fit.aliased.numpy()
    terms = (
        fit.terms
        if fit.terms is not None
        else tuple((name, (i,)) for i, name in enumerate(fit.feature_names))
    )
    names, dfs, sums = [], [], []
    for name, columns in terms:
        index = [i for i in columns if kept[i]]
        if not index:
            continue  # all its columns aliased: R leaves the term out
        names.append(name)
        dfs.append(len(index))
        sums.append((effects[:, index] ** 2).sum(axis=1))
    k = effects.shape[0]
    rss = fit.rss.numpy()
    df = np.array([*dfs, fit.df_resid], dtype=np.float64)
    ss = np.column_stack([*sums, rss]) if sums else rss[:, None]  # (k, rows)
    sigma2 = rss / fit.df_resid
    f, p = _f_tests(ss[:, :-1], df[:-1], sigma2, fit.df_resid)
    values = np.full((k, len(names) + 1, len(TERM_COLUMNS)), np.nan)
    values[:, :, 0] = df
    values[:, :, 1] = ss
    values[:, :, 2] = ss / df
    values[:, :-1, 3] = f
    values[:, :-1, 4] = p
    return AnovaTable(
        kind="terms",
        columns=TERM_COLUMNS,
        rows=(*names, "Residuals"),
        target_names=fit.target_names,
        values=torch.from_numpy(values),
    )


def _model_text(fit: OLSResult) -> str:
    if fit.formula is not None:
        return " ".join(fit.formula.split())
    rhs = " + ".join(fit.feature_names) if fit.feature_names else "1"
    if not fit.fit_intercept:
        rhs = f"0 + {rhs}"
    return f"{' + '.join(fit.target_names)} ~ {rhs}"


def _models_table(fits: Sequence[OLSResult]) -> AnovaTable:
    first = fits[0]
    k = first.weight.shape[0]
    for i, fit in enumerate(fits[1:], start=2):
        if fit.weight.shape[0] != k:
            raise ValidationError(
                f"model {i} has {fit.weight.shape[0]} target(s) and model 1 has {k}: compare "
                "fits of the same targets"
            )
        if fit.n != first.n:
            raise ValidationError(
                f"models were not all fitted to the same size of dataset: model 1 has {first.n} "
                f"rows and model {i} has {fit.n}"
            )
        if fit.sample_weights != first.sample_weights or not math.isclose(
            fit.total, first.total, rel_tol=1e-9
        ):
            raise ValidationError(
                f"models 1 and {i} were not fitted with the same row weights: compare fits of "
                "the same rows and weights"
            )
    resdf = np.array([fit.df_resid for fit in fits], dtype=np.float64)
    rss = np.column_stack([fit.rss.numpy() for fit in fits])  # (k, models)
    m = len(fits)
    big = int(np.argmin(resdf))  # R's order(resdf)[1]: the first of the fewest
    scale = rss[:, big] / resdf[big]
    df = np.concatenate([[np.nan], resdf[:-1] - resdf[1:]])
    ss = np.concatenate([np.full((k, 1), np.nan), rss[:, :-1] - rss[:, 1:]], axis=1)
    f, p = _f_tests(ss[:, 1:], df[1:], scale, int(resdf[big]))
    values = np.full((k, m, len(MODEL_COLUMNS)), np.nan)
    values[:, :, 0] = resdf
    values[:, :, 1] = rss
    values[:, :, 2] = df
    values[:, :, 3] = ss
    values[:, 1:, 4] = f
    values[:, 1:, 5] = p
    width = len(str(m))
    heading = tuple(
        f"Model {str(i + 1).rjust(width)}: {_model_text(fit)}" for i, fit in enumerate(fits)
    )
    return AnovaTable(
        kind="models",
        columns=MODEL_COLUMNS,
        rows=tuple(str(i + 1) for i in range(m)),
        target_names=first.target_names,
        values=torch.from_numpy(values),
        heading=heading,
    )


def anova(fit: OLSResult, *others: OLSResult) -> AnovaTable:
    """The analysis of variance of one OLS fit by term (R's ``anova(fit)``), or the F tests
    between fits of the same rows (R's ``anova(small, big, ...)``); see the module's
    docstring.

    Examples
    --------
    >>> import gradfit
    >>> data = {"y": [1.0, 3.0, 2.0, 5.0, 4.0, 6.0], "x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
    ...         "g": ["a", "b", "a", "b", "a", "b"]}
    >>> table = gradfit.anova(gradfit.ols("y ~ x + g", data=data))
    >>> table.rows, [round(v, 4) for v in table.column("Sum Sq")[0].tolist()]
    (('x', 'g', 'Residuals'), [13.7286, 3.4381, 0.3333])
    """
    fits = (fit, *others)
    for i, one in enumerate(fits, start=1):
        if not isinstance(one, OLSResult):
            raise ValidationError(
                f"anova takes OLS fits (gradfit.ols results); argument {i} is a "
                f"{type(one).__name__}"
            )
    if not others:
        return _terms_table(fit)
    return _models_table(fits)
