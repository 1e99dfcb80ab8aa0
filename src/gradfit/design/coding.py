"""formulaic's pandas materializer made to code and name a design's columns as R's
``model.matrix`` does (:class:`_RNames`: ``woolB``, not ``wool[T.B]``; :class:`_RCoding`: R's
coding of the factors of each term). Moved out of :mod:`gradfit.design.design` unchanged. They
override two of formulaic's private methods (``_flatten_encoded_evaled_factor``,
``_get_scoped_terms``), which is why ``pyproject.toml`` holds formulaic to the 1.2 series."""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable
from typing import Any

from formulaic.materializers import PandasMaterializer
from formulaic.materializers.types import ScopedFactor, ScopedTerm
from formulaic.parser.types import Factor, Term
from interface_meta import override

from gradfit.design.columns import _plain

__all__: list[str] = []


class _RNames(PandasMaterializer):  # type: ignore[misc]
    """formulaic's pandas materializer, naming the columns of a factor as R does: the factor's
    name then the level or column (``woolB``, ``poly(dose, 2)1``), not ``wool[T.B]``."""

    REGISTER_NAME = "gradfit_r_names"

    @override
    def _flatten_encoded_evaled_factor(self, name: str, values: Any) -> dict[str, Any]:
        if not isinstance(values, dict):
            return {name: values}
        flat: dict[str, Any] = {}
        for subfield, value in values.items():
            if isinstance(subfield, str) and subfield.startswith("__"):
                continue
            subname = f"{name}{_plain(subfield)}"
            if isinstance(value, dict):
                flat.update(self._flatten_encoded_evaled_factor(subname, value))
            else:
                flat[subname] = value
        return flat


class _RCoding(_RNames):
    """R's coding of the factors of each term (``model.matrix``), not formulaic's: a factor of
    a term is coded by contrasts when the term without it is the intercept (empty) or is
    contained in a term before it, else by indicators of all its levels (R's ``TermCode``,
    Chambers and Hastie 1992, p. 38); without an intercept the first factor of the first
    term holding one is coded by indicators. ``y ~ a:b`` then has R's six columns ``a1:b1``
    ... (one of them aliased with the intercept, R's NA), where formulaic's rule makes a
    full-rank set of other columns (``b2``, ``a2:b1``, ...). The two agree on every formula
    whose interactions come with their margins."""

    REGISTER_NAME = "gradfit_r_coding"

    @override
    def _get_scoped_terms(
        self, terms: Iterable[Term], ensure_full_rank: bool = True
    ) -> Iterable[tuple[Term, Iterable[ScopedTerm]]]:
        terms = list(terms)
        constant = Factor.Kind.CONSTANT

        def evaluated(term: Term) -> list[Any]:
            return [
                self.factor_cache[factor.expr]
                for factor in term.factors
                if self.factor_cache[factor.expr].values.__wrapped__ is not None
            ]

        intercept = any(
            all(e.metadata.kind is constant for e in evaluated(term))
            for term in terms
            if evaluated(term)
        )
        indicators_first = not intercept
        before: list[frozenset[str]] = []
        for term in terms:
            factors = evaluated(term)
            if not factors:
                yield term, []
                continue
            plain = [e for e in factors if e.metadata.kind is not constant]
            scale = functools.reduce(
                operator.mul, [e.values for e in factors if e.metadata.kind is constant], 1
            )
            names = frozenset(e.expr for e in plain)
            scoped = []
            for e in plain:
                reduced = False
                if e.metadata.spans_intercept:
                    rest = names - {e.expr}
                    reduced = not rest or any(rest <= earlier for earlier in before)
                    if indicators_first:
                        reduced = indicators_first = False
                scoped.append(ScopedFactor(e, reduced=reduced))
            before.append(names)
            yield term, [ScopedTerm(factors=scoped, scale=scale)]
