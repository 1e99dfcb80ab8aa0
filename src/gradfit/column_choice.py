"""Which columns a fit reads, for a table read whole and for the head of a stream alike.

Column names from the values of an option (:func:`expand_names`); the names a formula and
``--target``/``--features`` give checked against each other (:func:`check_design_names`); the
default features, R's ``y ~ .`` (:func:`design_features`: numeric, text and boolean columns,
identifiers and constants left out, with why); whether the columns go through a design
(:func:`design_columns`: a formula, a categorical column, ``missing="drop"``), and a table read
whole encoded by one (:func:`encode_table`; streamed: :mod:`gradfit.stream_design`), with the
intercept the design says (:func:`intercept_of_design`); the columns of a stream
(:func:`choose_columns`, from its head).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

import gradfit.design
from gradfit.data import BatchStream, left_out_columns
from gradfit.data.tables import (
    check_known,
    float_matrix,
    name_list,
    refuse_numeric_looking_text,
    too_many_levels,
)
from gradfit.data.weights import refuse_weight_role
from gradfit.errors import DataError, ValidationError
from gradfit.settings import DesignSettings
from gradfit.solvers.config import SolverConfig

__all__ = [
    "CONSTANT",
    "IDENTIFIER",
    "IDENTIFIER_ROWS",
    "Encoded",
    "check_design_names",
    "check_names",
    "choose_columns",
    "design_columns",
    "design_features",
    "encode_table",
    "expand_names",
    "intercept_of_design",
    "refuse_intercept_alone",
    "refuse_weights_in_formula",
]


Encoded = tuple[
    np.ndarray,
    np.ndarray,
    tuple[str, ...],
    tuple[str, ...],
    dict[str, str],
    np.ndarray,
    int,
    dict[str, Any],
]


def check_design_names(
    design: DesignSettings, targets: Sequence[str] | None, features: Sequence[str] | None
) -> None:
    """A formula names the targets and features itself: given with them, one
    ValidationError; without a formula, at least one target is needed."""
    given = targets is not None and any(str(t).strip(" ,") for t in _listed(targets))
    if design.formula is not None:
        if given or features is not None:
            what = "targets" if given else "features"
            raise ValidationError(
                f"the formula {design.formula!r} names the targets and features itself; "
                f"leave out the {what} (--target/--features), or the formula (--formula)"
            )
        return
    if not given:
        raise ValidationError(
            "name at least one target column (--target, targets=), or give a formula "
            "(--formula 'y ~ x', formula=)"
        )


def _listed(values: Sequence[str] | str) -> list[str]:
    return [values] if isinstance(values, str) else list(values)


def refuse_weights_in_formula(
    design: DesignSettings, table: Any, weights: str | None, source: str
) -> None:
    """The weights column (left out of ``table``, a table or a stream's head) named by the
    formula is one DataError saying so (it read "no column 'w', which the model uses")."""
    if (
        weights is not None
        and design.formula is not None
        and gradfit.design.Design.reads_column(design.formula, table, weights)
    ):
        refuse_weight_role(source, weights, (), None, in_formula=design.formula)


def intercept_of_design(
    config: SolverConfig, fit_intercept: bool, formula: str | None
) -> SolverConfig:
    """``config`` fitting an intercept as the design says: a formula without one (``0 +``,
    ``- 1``) fits without; a formula with one and ``fit_intercept=False`` is refused."""
    if fit_intercept == config.fit_intercept:
        return config
    if not fit_intercept:
        return replace(config, fit_intercept=False)
    raise ValidationError(
        f"the formula {formula!r} has an intercept, and fit_intercept=False "
        "(--no-fit-intercept) asks for none; write '0 +' or '- 1' in the formula for a model "
        "without intercept, and leave out --no-fit-intercept"
    )


# Column types (as pyarrow names them) read as categorical columns by default, R's y ~ .
_CATEGORICAL_TYPES = ("string", "large_string", "bool")


def design_features(
    table: Any, targets: Sequence[str], max_levels: int | None = None
) -> tuple[list[str], list[str], dict[str, str]]:
    """The default features, R's ``y ~ .``: every column but the ``targets`` that is numeric,
    or text or boolean (a categorical column; a dictionary column is read as its values);
    the categorical ones among them; and the columns left out, with why (empty, dates,
    lists...; an identifier: a text column with a different value in each of its first
    65,536 rows, which would fit every row exactly; a text column with a single value
    there). An identifier with more than ``max_levels`` values there is refused instead
    (:func:`gradfit.data.tables.too_many_levels`), as the levels pass would refuse it."""
    numeric = set(table.numeric_columns)
    skipped = left_out_columns(table, targets)
    categorical = [
        name for name in skipped if _categorical(table, name) and name not in table.duplicates
    ]
    for name in list(categorical):
        why = _not_categorical(table.columns[name])
        if why == IDENTIFIER and max_levels is not None:
            count = len(set(table.columns[name][:IDENTIFIER_ROWS].tolist()) - {None})
            if count > max_levels:
                raise too_many_levels(table.source, name, count, max_levels)
        if why is not None:
            categorical.remove(name)
            skipped[name] = why
    chosen = set(categorical) | numeric
    features = [name for name in table.columns if name in chosen and name not in set(targets)]
    left_out = {name: why for name, why in skipped.items() if name not in set(categorical)}
    return features, categorical, left_out


# Rows of a text column looked at to tell an identifier (see design_features): those of the
# head of a stream (gradfit.data.BatchStream.head_table), so that a file read whole and
# streamed choose the same features.
IDENTIFIER_ROWS = 1 << 16


IDENTIFIER = "identifier: text with a different value in every row"


CONSTANT = "text with a single value"


def _not_categorical(column: np.ndarray) -> str | None:
    """Why a text column is left out of the default features, or None: an identifier (a
    different value in each of its first :data:`IDENTIFIER_ROWS` rows, at least 2 with a
    value: as a categorical column it would fit every row exactly, a level per row), or a
    single value there (no contrast to estimate; R refuses such a factor)."""
    head = [v for v in column[:IDENTIFIER_ROWS].tolist() if v is not None and v == v]
    distinct = len(set(head))
    if distinct <= 1:
        return CONSTANT
    return IDENTIFIER if distinct == len(head) else None


def design_columns(
    table: Any,
    targets: Sequence[str],
    features: Sequence[str] | None,
    design: DesignSettings,
    source: str,
) -> tuple[bool, list[str] | None, dict[str, str]]:
    """Whether the columns of ``table`` (a whole table, or the head of a stream) go through a
    design: a formula, ``missing="drop"``, or a categorical column (text, boolean) among the
    features (named, or by default every column but the targets that is numeric, text or
    boolean); with the features chosen (None with a formula) and the columns left out. A
    text column that is mostly numbers is a numeric column with a typo: its bad cell is
    named, as without a design. The names are checked as :func:`gradfit.data.select` does."""
    if design.formula is not None:
        return True, None, {}
    left_out: dict[str, str] = {}
    if features is None:
        chosen, categorical, left_out = design_features(table, targets, design.max_levels)
        skip = list(targets)
    else:
        chosen = list(features)
        categorical = [n for n in chosen if n in table.columns and _categorical(table, n)]
        skip = [n for n in table.columns if n not in set(categorical)]
    if not categorical and not design.uses_design:
        return False, chosen, left_out
    refuse_numeric_looking_text(table, skip)
    check_names(table, targets, chosen, source)
    numeric = set(table.numeric_columns)
    others = [n for n in chosen if n not in numeric and n not in set(categorical)]
    if others:  # a list, a struct, a date: not numbers (select's message)
        float_matrix(table, others[:1])
    return True, chosen, left_out


def _categorical(table: Any, name: str) -> bool:
    column = table.columns[name]
    return bool(column.dtype == object and table.types.get(name, "string") in _CATEGORICAL_TYPES)


def encode_table(
    table: Any,
    targets: Sequence[str],
    features: Sequence[str] | None,
    design: DesignSettings,
    name: str,
    *,
    frame: Any = None,
) -> Encoded | None:
    """The matrices of ``table`` through a :class:`gradfit.design.Design` (formulaic and
    pandas, loaded on its first use, here), or None when the plain road applies
    (:func:`design_columns`). Returns (X, Y, feature names, target names, columns left out,
    the mask of the rows kept, the count dropped, the design's document). ``frame``: the
    source, when it is a pandas DataFrame whose ``Categorical`` columns give their levels in
    their order (R's factor levels: the first the reference), which ``table`` (read as a
    Parquet file is) lacks."""
    needed, chosen, left_out = design_columns(table, targets, features, design, name)
    if not needed:
        return None
    levels = None
    if type(frame).__name__ == "DataFrame" and any(
        str(dtype) == "category" for dtype in getattr(frame, "dtypes", ())
    ):
        categorical = gradfit.design.Design.categorical_columns(
            design.formula, table, targets, chosen
        )
        levels = (
            gradfit.design.LevelGatherer(categorical, design.max_levels, name)
            .update(frame)
            .levels()
        )
    options: dict[str, Any] = {
        "levels": levels,
        "max_levels": design.max_levels,
        "missing": design.missing,
        "source": name,
    }
    if design.formula is not None:
        made = gradfit.design.Design.from_formula(design.formula, table, **options)
        refuse_intercept_alone(made, design.formula, name)
    else:
        made = gradfit.design.Design.default(table, targets, chosen, **options)
    mats = made.matrices(table, missing=design.missing, source=name)
    if mats.Y is None:  # pragma: no cover - with_targets=True
        raise DataError(f"{name}: no targets")
    document = made.to_dict()
    return (
        mats.X,
        mats.Y,
        made.columns,
        made.targets,
        left_out,
        mats.kept,
        int(mats.n_dropped),
        document,
    )


def refuse_intercept_alone(made: Any, formula: str, source: str) -> None:
    """A formula whose design has no column (R's ``y ~ 1``) cannot be fitted to a model file
    (a model has at least one feature): one DataError saying where the mean alone is found."""
    if not made.columns:
        raise DataError(
            f"{source}: the formula {formula!r} gives no feature column, and a fit needs at "
            "least one; the intercept alone (R's lm(y ~ 1)) is gradfit anova --formula "
            "'y ~ 1' or gradfit.ols('y ~ 1', data=...)"
        )


def check_names(table: Any, targets: Sequence[str], features: Sequence[str], source: str) -> None:
    """The checks of :func:`gradfit.data.select` on the names (not the cells)."""
    tnames = name_list(targets, "target")
    if not tnames:
        raise DataError(f"{source}: no target column given; name at least one target column")
    check_known(table, tnames, "target")
    fnames = name_list(features, "feature")
    if not fnames:
        raise DataError(f"{source}: no feature column given; name at least one feature")
    check_known(table, fnames, "feature")
    both = [n for n in fnames if n in set(tnames)]
    if both:
        raise DataError(
            f"{source}: column {both[0]!r} is given both as a target and as a feature; "
            "a column can only be one of them"
        )


def expand_names(values: Sequence[str], columns: Sequence[str]) -> list[str]:
    """Column names from the values of a repeatable option (``--target``, ``--features``,
    ``--keep``): a value that is itself the name of a column is taken literally, commas and
    all; any other value may list several names separated by commas.

    >>> expand_names(["a, b", "c"], ["a", "b", "c"]), expand_names(["x,y"], ["x,y", "x", "y"])
    (['a', 'b', 'c'], ['x,y'])
    """
    values = [values] if isinstance(values, str) else list(values)
    known = set(columns)  # a set: --features may list 100,000 of 100,000 columns
    names: list[str] = []
    for value in values:
        if value in known:
            names.append(value)
        else:
            names.extend(part.strip() for part in value.split(",") if part.strip())
    return names


def choose_columns(
    stream: BatchStream, targets: Sequence[str], features: Sequence[str] | None
) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, str]]:
    """Feature and target names from a stream's columns, checked as
    :func:`gradfit.data.select` checks them (the default features from the first rows of the
    first file); and the columns the default feature choice left out, with why."""
    columns = list(stream.columns)
    tnames = tuple(expand_names(targets, columns))
    if not tnames:
        raise DataError(f"{stream.source}: no target column given; name at least one target column")
    stream.check_columns(tnames, "target")
    if features is None:
        fnames, left_out = stream.column_kinds(tnames)
        return tuple(fnames), tnames, left_out
    fnames = tuple(expand_names(features, columns))
    if not fnames:
        raise DataError(f"{stream.source}: no feature column given; name at least one feature")
    stream.check_columns(fnames, "feature")
    both = [n for n in fnames if n in tnames]
    if both:
        raise DataError(
            f"{stream.source}: column {both[0]!r} is given both as a target and as a feature; "
            "a column can only be one of them"
        )
    twice = sorted(n for n, count in Counter([*tnames, *fnames]).items() if count > 1)
    if twice:
        raise DataError(f"{stream.source}: column {twice[0]!r} is given more than once")
    return fnames, tnames, {}
