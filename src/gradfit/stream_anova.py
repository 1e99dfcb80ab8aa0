"""Analysis of variance of formulas over files larger than memory: ``gradfit anova DATA
--formula ...`` streamed (:func:`anova_fits`).

The sequential (type I) sums of squares are those of R's effects ``Qᵀy``, and
:func:`gradfit.inference.ols_from_stats` computes them from sufficient statistics alone: with
``L`` the Cholesky factor of the (weighted, centred) Gram matrix of the design's columns in the
formula's order, the effects are ``L⁻¹ Aᵀy`` (the last column of the Cholesky factor of
``[A|y]ᵀ[A|y]``), and a term's sum of squares is the sum of its columns' squared effects. So one
pass over the data gives every table: the levels pass over the categorical columns (the
columns of every formula at once), then one pass that encodes each batch by each formula's
design (:mod:`gradfit.stream_design`, the streamed fit's road) and accumulates each design's
:class:`~gradfit.solvers.stats.SufficientStats` (mergeable, as a streamed fit's). Each formula
keeps its own statistics rather than sub-blocks of one union design: its own rows (a row with
a missing value in one formula's columns leaves that fit only, as ``lm`` on each formula does
in memory), its own intercept and contrasts (``0 + C(g)`` is not a sub-block of ``1 + C(g)``),
for a second Gram matrix of the smaller model's width. Memory: O(batch + Σ d²).

The coefficients are the least-squares solution of the statistics (an eigendecomposition of
the equilibrated Gram matrix; the aliased columns of a rank-deficient design are then R's, by
:func:`ols_from_stats`), and RSS is the statistics' own. Both tables equal the in-memory ones
(:func:`gradfit.inference.anova` of :func:`gradfit.inference.ols` fits) to the accuracy of the
normal equations: about eps × cond(Gram), 1e-10 relative or better on R's data sets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gradfit.data import open_stream
from gradfit.data.weights import check_weight_values, refuse_all_zero
from gradfit.errors import DataError
from gradfit.fit_checks import check_width
from gradfit.inference import OLSResult, ols_from_stats
from gradfit.settings import DesignSettings, ReadSettings
from gradfit.solvers.collective import LOCAL
from gradfit.solvers.stats import SufficientStats
from gradfit.stream_design import (
    DesignPlan,
    batch_encoder,
    freeze_design,
    gather_levels,
    open_design,
)

__all__ = ["anova_fits"]


def anova_fits(
    source: str | Path | Sequence[str | Path],
    formulas: Sequence[str],
    *,
    missing: str = "error",
    weights: str | None = None,
    reading: ReadSettings | None = None,
    max_levels: int | None = None,
) -> list[OLSResult]:
    """The OLS fit of each formula over the streamed ``source`` (a file, files, a directory or
    a glob), from one pass of statistics (see the module doc), for
    :func:`gradfit.inference.anova`: each with its formula's terms, the rows it dropped for a
    missing value (``missing="drop"``; ``"error"``: a DataError naming the row) and, with
    ``weights`` (a column, never a term), weighted least squares as ``lm(weights = w)``.
    ``reading``: ``batch_rows`` and ``memory_limit`` (each design's d × d statistics are
    weighed against it, :func:`gradfit.fitting.check_width`)."""
    reading = reading if reading is not None else ReadSettings()
    options: dict[str, Any] = {"formula": None, "missing": missing}
    if max_levels is not None:
        options["max_levels"] = max_levels
    settings = [DesignSettings(**{**options, "formula": f}) for f in formulas]
    stream = open_stream(source, batch_rows=reading.batch_rows)

    def same_stream(*_: Any, **__: Any) -> Any:
        return stream

    if weights is not None:  # a column of the data, which a term may use too (as in memory)
        stream.check_columns([weights], "weights")
    plans: list[DesignPlan] = []
    for design in settings:
        _, plan = open_design(
            same_stream, source, reading.batch_rows, None, None, design, intercept_alone=True
        )
        if not isinstance(plan, DesignPlan):  # pragma: no cover - a formula always plans
            raise DataError(f"{stream.source}: the formula {design.formula!r} gave no design")
        plans.append(plan)
    numeric = tuple(dict.fromkeys(c for p in plans for c in p.numeric))
    text = tuple(dict.fromkeys(c for p in plans for c in p.text if c not in numeric))
    categorical = tuple(dict.fromkeys(c for p in plans for c in p.categorical))
    # One levels pass for every formula's categorical columns.
    levels = gather_levels(stream, categorical, numeric, settings[0].max_levels, LOCAL, None)
    designs = [
        freeze_design(
            stream,
            plan,
            design,
            LOCAL,
            None,
            levels={name: values for name, values in levels.items() if name in plan.categorical},
        )
        for plan, design in zip(plans, settings, strict=True)
    ]
    for made in designs:
        check_width(stream.source, len(made.columns), reading.memory_limit, formula=made.formula)
    encoders = [
        batch_encoder(made, plan, missing, stream.columns)
        for made, plan in zip(designs, plans, strict=True)
    ]
    read_numeric = [*numeric, *([weights] if weights and weights not in numeric else [])]
    stats: list[SufficientStats | None] = [None] * len(designs)
    dropped = [0] * len(designs)
    for batch in stream.batches(read_numeric, text, raw=True):
        w_all = None
        if weights is not None:  # read raw (as the design's columns): NaN where a cell is empty
            values = np.array(batch.columns[weights], dtype=np.float64)
            if not bool(np.isfinite(values).all()):
                row = int(np.argmin(np.isfinite(values)))
                raise DataError(
                    f"{batch.file}: column {weights!r}, row {batch.file_row + row}: missing or "
                    f"infinite weight ({values[row]}); weights must be finite and >= 0"
                )
            w_all = check_weight_values(values, str(batch.file), weights, batch.file_row)
        for i, encode in enumerate(encoders):
            X, Y, kept, gone = encode(batch)
            dropped[i] += gone
            if X.shape[0] == 0:
                continue
            w = None if w_all is None else torch.from_numpy(np.ascontiguousarray(w_all[kept]))
            part = SufficientStats.compute(
                torch.from_numpy(X), torch.from_numpy(Y), weights=w, whole=False
            )
            stats[i] = part if stats[i] is None else stats[i].merge(part)  # type: ignore[union-attr]
    fits = []
    for made, statistics, count in zip(designs, stats, dropped, strict=True):
        if statistics is None or statistics.n_positive < 1:
            if weights is not None and statistics is not None:
                raise refuse_all_zero(stream.source, weights)
            raise DataError(
                f"{stream.source}: no rows left for {made.formula!r} after dropping {count} "
                "with a missing value"
            )
        weight, bias = _solution(statistics, made.fit_intercept)
        fit = ols_from_stats(  # a rank-deficient design warns, naming the aliased columns
            statistics,
            weight,
            bias,
            fit_intercept=made.fit_intercept,
            feature_names=made.columns,
            target_names=made.targets,
        )
        fits.append(
            dataclasses.replace(
                fit,
                n_dropped=count,
                terms=made.term_columns(),
                formula=made.formula,
                design=made,
                missing=missing,
            )
        )
    return fits


def _solution(stats: SufficientStats, fit_intercept: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The least-squares weight (k, d) and bias (k,) of the statistics: the pseudo-inverse of
    the equilibrated Gram matrix (:meth:`SufficientStats.optimum`'s), minimum-norm where the
    design is rank deficient (the same predictions as R's solution)."""
    zbar, ybar = stats.zbar.cpu().double(), stats.ybar.cpu().double()
    if fit_intercept:
        S, C = stats.Szz.cpu().double(), stats.Szy.cpu().double()
    else:
        S = stats.Szz.cpu().double() + torch.outer(zbar, zbar)
        C = stats.Szy.cpu().double() + torch.outer(zbar, ybar)
    d = S.shape[0]
    if d == 0:
        weight = torch.zeros((ybar.shape[0], 0), dtype=torch.float64)
    else:
        diag = S.diagonal()
        s = torch.where(diag > 0, diag, torch.ones_like(diag)).sqrt()
        A = S / torch.outer(s, s)
        lam, U = torch.linalg.eigh((A + A.T) / 2)
        keep = lam > lam[-1].clamp_min(0) * d * torch.finfo(lam.dtype).eps
        Uk = U[:, keep]
        weight = ((Uk @ ((Uk.T @ (C / s[:, None])) / lam[keep, None])) / s[:, None]).T
    bias = ybar - weight @ zbar if fit_intercept else torch.zeros_like(ybar)
    return weight.contiguous(), bias
