""":func:`ols` of a formula on a data frame, ``ols("breaks ~ wool * tension", data=df)``, or
of matrices, ``ols(X, Y)`` (:func:`gradfit.inference.regression.ols`).

The formula's design (:class:`gradfit.design.Design`: R's columns, categorical levels, the
intercept or not) gives the matrices and the names; the rows with a missing value are an
error, or left out with ``missing="drop"`` (R's ``na.omit``), counted in
:attr:`OLSResult.n_dropped` and in the summary as R shows them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from gradfit.errors import DataError, ValidationError
from gradfit.inference.regression import ols as ols_matrices
from gradfit.inference.result import OLSResult

__all__ = ["ols"]

_FROM_FORMULA = ("fit_intercept", "feature_names", "target_names")


def _data_column(data: Any, column: str, role: str) -> Any:
    """The column ``column`` of ``data`` (a frame, table or dict of columns), named by
    ``weights=`` or ``groups=``: a DataError listing the columns when it is not one."""
    from gradfit.design.columns import as_columns  # pandas: a formula's data only

    columns = as_columns(data)
    if column not in columns.columns:
        listed = ", ".join(repr(c) for c in list(columns.columns)[:20])
        raise DataError(f"{role}={column!r} is not a column of data; its columns: {listed}")
    values = columns.columns[column]
    if role == "weights" and values.dtype == object:
        raise DataError(f"{role}={column!r}: the column holds text, not numbers")
    return values


def _kept_rows(values: Any, kept: np.ndarray) -> Any:
    """Per-row ``values`` (weights, groups) of all the data's rows cut to the ``kept`` ones
    (rows left out for a missing value); anything else as it is (checked by the fit)."""
    if values is None or bool(kept.all()):
        return values
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.ndim == 1 and array.shape[0] == kept.shape[0]:
        return array[kept]
    return values


def ols(
    X: Any,
    Y: Any = None,
    *,
    data: Any = None,
    missing: str = "error",
    max_levels: int = 1000,
    **options: Any,
) -> OLSResult:
    """Ordinary least squares with standard errors, tests and intervals, of a formula on a
    data frame or of matrices.

    ``ols(formula, data=df)``: ``formula`` a string such as ``"breaks ~ wool * tension"``,
    ``"mpg ~ wt + hp + C(cyl) + wt:hp"``, ``"Ozone ~ ."``, ``"y ~ 0 + g + x"`` (see
    :mod:`gradfit.design.design`) and ``data`` a pandas DataFrame, pyarrow or gradfit Table,
    or dict of columns; the coefficients are named as R names them and the intercept is the
    formula's. ``missing``: ``"error"`` (a missing value is one DataError naming its column
    and row) or ``"drop"`` (its row is left out, R's ``na.omit``; ``n_dropped`` counts them).
    ``max_levels``: a categorical column with more levels is refused. ``weights`` and
    ``groups`` (see below) give a value per row of ``data``; those of the rows left out go
    with them. The result keeps the design, so that ``fit.influence(data)`` works on the data.

    ``ols(X, Y)``: see :func:`gradfit.inference.regression.ols`, whose options
    (``fit_intercept``, ``cov_type``, ``feature_names``, ``target_names``) both forms take,
    but for those the formula gives.

    Examples
    --------
    >>> data = {"y": [1.0, 3.0, 2.0, 5.0, 4.0], "g": ["a", "b", "a", "b", "b"],
    ...         "x": [0.0, 1.0, 2.0, 3.0, 5.0]}
    >>> fit = ols("y ~ g + x", data=data)
    >>> fit.feature_names, fit.df_resid
    (('gb', 'x'), 2)
    """
    if isinstance(X, str):
        if data is None:
            raise ValidationError(
                f"a formula needs the data: ols({X!r}, data=frame) with a pandas DataFrame, "
                "a pyarrow Table or a dict of columns"
            )
        if Y is not None:
            raise ValidationError("with a formula the targets are in it: give no Y")
        given = [name for name in _FROM_FORMULA if name in options]
        if given:
            raise ValidationError(
                f"{given[0]}= is given by the formula (its names; '0 +' or '- 1' for no "
                "intercept); leave it out"
            )
        # formulaic and pandas: 0.73 s of CPU, paid only by a formula (tests/test_layers.py).
        from gradfit.design import Design

        design = Design.from_formula(X, data, missing=missing, max_levels=max_levels)
        matrices = design.matrices(data, missing=missing)
        for name in ("weights", "groups"):
            if isinstance(options.get(name), str):  # a column of data, as R's lm(weights = w)
                options[name] = _data_column(data, options[name], name)
        for name in ("weights", "groups"):  # per data row: those of the rows kept
            options[name] = _kept_rows(options.get(name), matrices.kept)
        result = ols_matrices(
            matrices.X,
            matrices.Y,
            fit_intercept=design.fit_intercept,
            feature_names=design.columns,
            target_names=design.targets,
            **options,
        )
        return dataclasses.replace(
            result,
            n_dropped=matrices.n_dropped,
            terms=design.term_columns(),
            formula=design.formula,
            design=design,
            missing=missing,
        )
    if data is not None:
        raise ValidationError(
            "data= goes with a formula, ols('y ~ x', data=frame); with matrices call ols(X, Y)"
        )
    if missing != "error":
        raise ValidationError(
            "missing= applies to a formula with data=; matrices must hold no missing value"
        )
    if Y is None:
        raise ValidationError("ols(X, Y) needs the targets Y (or a formula and data=)")
    return ols_matrices(X, Y, **options)
