"""Reading a formula's text: its terms and its targets' terms (``.`` expanded over the
columns, formulaic's parser), the data columns each factor reads, the categorical ones (text
and boolean columns, numeric ones under ``C()``), and one-line errors for what a linear model
cannot read. Moved out of :mod:`gradfit.design.design` unchanged."""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Iterable
from typing import Any

from formulaic import Formula
from formulaic.errors import FormulaicError
from formulaic.parser.types import Term

from gradfit.design.columns import Columns
from gradfit.design.document import Terms
from gradfit.errors import DataError, ValidationError

__all__: list[str] = []

_BACKTICK = re.compile(r"`([^`]*)`")


def _factor_variables(expr: str, method: str, available: Iterable[str]) -> list[str]:
    """The data columns a factor reads, in order of appearance."""
    names = set(available)
    if method == "lookup":
        return [expr] if expr in names else []
    if method != "python":
        return []
    quoted: list[str] = []

    def stash(match: re.Match[str]) -> str:
        quoted.append(match.group(1))
        return f"__gradfit_q{len(quoted) - 1}__"

    try:
        tree = ast.parse(_BACKTICK.sub(stash, expr), mode="eval")
    except SyntaxError:
        return []
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            name = node.id
            if name.startswith("__gradfit_q"):
                name = quoted[int(name[len("__gradfit_q") : -2])]
            if name in names and name not in found:
                found.append(name)
    return found


def _c_column(expr: str, available: Iterable[str]) -> str | None:
    """The column of a factor ``C(column, ...)``, or None."""
    quoted: list[str] = []

    def stash(match: re.Match[str]) -> str:
        quoted.append(match.group(1))
        return f"__gradfit_q{len(quoted) - 1}__"

    try:
        tree = ast.parse(_BACKTICK.sub(stash, expr), mode="eval").body
    except SyntaxError:
        return None
    if (
        isinstance(tree, ast.Call)
        and isinstance(tree.func, ast.Name)
        and tree.func.id == "C"
        and tree.args
        and isinstance(tree.args[0], ast.Name)
    ):
        name = tree.args[0].id
        if name.startswith("__gradfit_q"):
            name = quoted[int(name[len("__gradfit_q") : -2])]
        return name if name in set(available) else None
    return None


_ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def _parse(formula: str, columns: Columns) -> tuple[Terms, Terms]:
    """The formula's terms and its targets' terms, ``.`` expanded over the columns."""
    available = list(columns.columns)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = Formula(formula, _context={"__formulaic_variables_available__": available})
    except (FormulaicError, SyntaxError, ValueError) as exc:
        # formulaic colours the place of the mistake for a terminal: the colours left out
        message = " ".join(_ANSI_COLOUR.sub("", str(exc)).split())
        raise ValidationError(f"cannot read the formula {formula!r}: {message}") from None
    if not hasattr(parsed, "lhs") or not list(parsed.lhs):
        raise ValidationError(f"the formula {formula!r} names no target: write 'target ~ terms'")
    rhs = parsed.rhs
    if hasattr(rhs, "lhs"):
        raise ValidationError(f"the formula {formula!r} has more than one '~'")
    if not all(isinstance(term, Term) for term in (*parsed.lhs, *rhs)):
        raise ValidationError(
            f"the formula {formula!r} has parts separated by '|', which a linear model does "
            "not read; write 'targets ~ terms' with '+' between the terms"
        )
    target_terms = tuple(_factors(term) for term in parsed.lhs)
    for term in target_terms:
        if len(term) != 1 or term[0][1] == "literal":
            raise ValidationError(
                f"a target must be one column or expression, got {_term_text(term)!r} in "
                f"the formula {formula!r}"
            )
    terms = tuple(_factors(term) for term in rhs)
    return terms, target_terms


def _usage(
    terms: Terms, target_terms: Terms, columns: Columns
) -> tuple[list[str], list[str], list[str]]:
    """The columns the model reads, those its targets read, and its categorical columns (text
    and boolean columns it reads, numeric ones under ``C()``), in order."""
    available = list(columns.columns)
    target_variables: list[str] = []
    for (expr, method), *_ in target_terms:
        if method == "lookup" and expr not in columns.columns:
            columns.column(expr)  # a DataError naming it
        target_variables += _factor_variables(expr, method, available)
    variables = list(dict.fromkeys(target_variables))
    categorical: list[str] = []
    for term in terms:
        for expr, method in term:
            if method == "lookup" and expr not in columns.columns:
                columns.column(expr)
            used = _factor_variables(expr, method, available)
            variables += [v for v in used if v not in variables]
            c_column = _c_column(expr, available) if method == "python" else None
            if c_column is not None and c_column not in categorical:
                categorical.append(c_column)
    for name in variables:
        if columns.columns[name].dtype == object and name not in categorical:
            categorical.append(name)
    for name in target_variables:
        if name in categorical:
            raise DataError(
                f"{columns.source}: target column {name!r} holds text, not numbers; a "
                "target must be numeric"
            )
    categorical = [name for name in variables if name in categorical]
    return variables, target_variables, categorical


def _factors(term: Any) -> tuple[tuple[str, str], ...]:
    if not term.factors:
        return (("1", "literal"),)
    return tuple((str(factor.expr), str(factor.eval_method.value)) for factor in term.factors)


def _term_text(term: tuple[tuple[str, str], ...]) -> str:
    return ":".join(expr for expr, _ in term)
