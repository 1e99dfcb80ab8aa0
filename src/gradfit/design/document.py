"""A design as its JSON document holds it (:class:`DesignDocument`), read and checked without
formulaic, pandas or torch, so that ``gradfit info`` of a model fitted from a formula answers
at once (issue 23).

Every check that decides whether a document is a gradfit design lives here, once:
:meth:`DesignDocument.from_json` is the one checker, used by :meth:`gradfit.design.Design.from_json`
(the :class:`~gradfit.design.Design` subclass adds the encoding of batches, with formulaic) and
by :mod:`gradfit.model_file` (which checks a model file's design without building a
materializer).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gradfit.design.state import from_plain
from gradfit.errors import ValidationError

__all__ = ["FORMAT", "VERSION", "DesignDocument", "Terms"]

FORMAT = "gradfit-design"
VERSION = 1

Terms = tuple[tuple[tuple[str, str], ...], ...]
_D = TypeVar("_D", bound="DesignDocument")


@dataclass(frozen=True)
class DesignDocument:
    """What a model's columns are made of, as its design document holds it (checked), without
    the means to encode data: :class:`gradfit.design.Design` adds them.

    Attributes
    ----------
    formula : str or None
        The formula as given, or None for plain columns (:meth:`Design.default
        <gradfit.design.Design.default>`).
    targets : tuple of str
        The targets' names (a column, or an expression such as ``np.log(y)``).
    columns : tuple of str
        The columns of X, named as R names them; no intercept column.
    fit_intercept : bool
        Whether the model has an intercept (False for ``0 + ...`` or ``... - 1``).
    levels : dict of str to tuple
        Each categorical data column (text, boolean, or numbers under ``C()``) with its levels
        in order, the first the reference (treatment contrasts).
    variables : tuple of str
        The data columns the model reads (targets included), in order.
    target_variables : tuple of str
        Those of them the targets read.
    terms, target_terms : tuples
        The formula's terms (each a tuple of factors ``(expression, "lookup" | "python" |
        "literal")``), ``.`` expanded; the targets' factors.
    encoders : dict of str to tuple
        The levels of each categorical factor (``wool``, ``C(cyl)``), frozen.
    transform_state : dict
        formulaic's stateful-transform state, as plain JSON data.
    contrasts : str
        ``"treatment"``, the default coding; ``C(x, contr.sum)`` and the other codings of
        formulaic are taken from their expression (and named as formulaic names them).
    column_terms : tuple of int
        For each column of X, the index in ``terms`` of the term that made it (see
        :meth:`Design.term_columns <gradfit.design.Design.term_columns>`); empty for a design
        read from a document without them.
    """

    formula: str | None
    targets: tuple[str, ...]
    columns: tuple[str, ...]
    fit_intercept: bool
    levels: dict[str, tuple[Any, ...]]
    variables: tuple[str, ...]
    target_variables: tuple[str, ...]
    terms: Terms
    target_terms: Terms
    encoders: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    transform_state: dict[str, Any] = field(default_factory=dict)
    contrasts: str = "treatment"
    column_terms: tuple[int, ...] = field(default=(), compare=False)

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        """The design as plain JSON data (see :meth:`from_json`)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "formula": self.formula,
            "targets": list(self.targets),
            "columns": list(self.columns),
            "fit_intercept": self.fit_intercept,
            "contrasts": self.contrasts,
            "levels": {name: list(levels) for name, levels in self.levels.items()},
            "variables": list(self.variables),
            "target_variables": list(self.target_variables),
            "terms": [[list(factor) for factor in term] for term in self.terms],
            "target_terms": [[list(factor) for factor in term] for term in self.target_terms],
            "encoders": {expr: list(levels) for expr, levels in self.encoders.items()},
            "transform_state": self.transform_state,
            "column_terms": list(self.column_terms),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False)

    @classmethod
    def from_json(cls: type[_D], text: str | bytes | Mapping[str, Any]) -> _D:
        """The design of :meth:`to_json` (or :meth:`to_dict`); a document that is not one is a
        ValidationError saying what is wrong. The one checker of a design document: called on
        :class:`~gradfit.design.Design`, it gives a Design (formulaic imported); here, the
        document alone (``gradfit info``: no formulaic)."""
        try:
            document = text if isinstance(text, Mapping) else json.loads(text)
        except (ValueError, TypeError) as exc:
            raise ValidationError(f"not a gradfit design: not JSON ({exc})") from None
        try:
            return cls._from_document(document)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            problem = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ValidationError(f"not a valid gradfit design: {problem}") from None

    @classmethod
    def _from_document(cls: type[_D], document: Any) -> _D:
        if not isinstance(document, Mapping) or document.get("format") != FORMAT:
            raise ValueError(f"'format' must be {FORMAT!r}")
        if document.get("version") != VERSION:
            raise ValueError(
                f"version {document.get('version')!r}, this gradfit reads version {VERSION}"
            )

        def strings(value: Any, what: str) -> tuple[str, ...]:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{what!r} must be a list of strings")
            return tuple(value)

        def level_map(value: Any, what: str) -> dict[str, tuple[Any, ...]]:
            if not isinstance(value, dict):
                raise ValueError(f"{what!r} must be an object")
            out = {}
            for name, levels in value.items():
                if not isinstance(levels, list) or not all(
                    isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in levels
                ):
                    raise ValueError(f"{what!r}: the levels of {name!r} must be a list")
                if len(set(levels)) != len(levels) or not levels:
                    raise ValueError(f"{what!r}: the levels of {name!r} must be distinct")
                out[name] = tuple(levels)
            return out

        def term_list(value: Any, what: str) -> Terms:
            if not isinstance(value, list):
                raise ValueError(f"{what!r} must be a list")
            out = []
            for term in value:
                factors = []
                for factor in term:
                    if (
                        not isinstance(factor, list)
                        or len(factor) != 2
                        or not isinstance(factor[0], str)
                        or factor[1] not in ("lookup", "python", "literal")
                    ):
                        raise ValueError(f"{what!r}: bad factor {factor!r}")
                    factors.append((factor[0], factor[1]))
                out.append(tuple(factors))
            return tuple(out)

        formula = document["formula"]
        if formula is not None and not isinstance(formula, str):
            raise ValueError("'formula' must be a string or null")
        if not isinstance(document["fit_intercept"], bool):
            raise ValueError("'fit_intercept' must be true or false")
        if document["contrasts"] != "treatment":
            raise ValueError("'contrasts' must be 'treatment'")
        if not isinstance(document["transform_state"], dict):
            raise ValueError("'transform_state' must be an object")
        from_plain(document["transform_state"])  # checks it
        column_terms = document.get("column_terms", [])  # absent from older documents
        if not isinstance(column_terms, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in column_terms
        ):
            raise ValueError("'column_terms' must be a list of indices of 'terms'")
        design = cls(
            formula=formula,
            targets=strings(document["targets"], "targets"),
            columns=strings(document["columns"], "columns"),
            fit_intercept=document["fit_intercept"],
            levels=level_map(document["levels"], "levels"),
            variables=strings(document["variables"], "variables"),
            target_variables=strings(document["target_variables"], "target_variables"),
            terms=term_list(document["terms"], "terms"),
            target_terms=term_list(document["target_terms"], "target_terms"),
            encoders=level_map(document["encoders"], "encoders"),
            transform_state=document["transform_state"],
            column_terms=tuple(column_terms),
        )
        if column_terms and (
            len(column_terms) != len(design.columns)
            or not all(0 <= v < len(design.terms) for v in column_terms)
        ):
            raise ValueError("'column_terms' must give a term of 'terms' for each column")
        if len(design.targets) != len(design.target_terms):
            raise ValueError("'targets' and 'target_terms' differ in length")
        return design

    # ------------------------------------------------------------------ text

    def describe(self) -> str:
        """A few lines for ``gradfit info``: the formula, the columns, the levels."""
        lines = [f"formula: {self.formula if self.formula is not None else '(plain columns)'}"]
        lines.append(f"targets: {', '.join(self.targets)}")
        lines.append(f"intercept: {'yes' if self.fit_intercept else 'no'}")
        lines.append(f"columns: {', '.join(self.columns)}")
        for name, levels in self.levels.items():
            lines.append(f"levels of {name}: {_shown(levels)} (reference {levels[0]!r})")
        return "\n".join(lines)


def _shown(levels: Sequence[Any], limit: int = 10) -> str:
    shown = ", ".join(repr(v) for v in list(levels)[:limit])
    return shown + (f" and {len(levels) - limit} more" if len(levels) > limit else "")
