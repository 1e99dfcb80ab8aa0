"""What a model's columns are made of: :class:`Design`, a formula (or plain columns) with its
categorical levels and transform state frozen, turned into matrices batch by batch.

Formulas are Wilkinson formulas as `formulaic <https://matthewwardrop.github.io/formulaic/>`_
reads them (``.``, ``-``, ``:``, ``*``, ``C(x)``, ``I(...)``, ``np.log(x)``, ``poly(x, 2)``,
``0 +`` / ``- 1``), with R's conventions: treatment contrasts, the first level the reference,
full-rank coding of the first factor of a model without intercept, a factor of an interaction
coded by indicators of all its levels where the term without it does not come before (R's
``model.matrix``: ``y ~ a:b`` has R's columns, one aliased; see :class:`_RCoding`), terms
ordered by degree, and R's column names (``woolB``, ``woolB:tensionM``, ``C(cyl)6``,
``poly(dose, 2)1``). A column name that is not a Python name (``Petal.Length``) may be
written as it is where it stands alone, and between backticks inside an expression
(``np.log(`Petal.Length`)``).

gradfit fits the intercept apart from the other coefficients, so the matrices hold no
intercept column: :attr:`Design.fit_intercept` says whether the model has one.

The levels are frozen when the design is made (from the whole data in memory, or from a levels
pass over a stream, :class:`~gradfit.design.levels.LevelGatherer`), so that every batch is
encoded the same way: one batch or many give the same matrix. So is the state of the stateful
transforms (``poly``, ``center``, ``scale``, the splines), computed on the data the design is
made from. :meth:`Design.to_json` keeps all of it as plain JSON (no pickle).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
from formulaic import ModelSpec
from formulaic.errors import FormulaicError
from formulaic.formula import SimpleFormula
from formulaic.parser.types import Factor, Term
from formulaic.transforms.contrasts import ContrastsState, TreatmentContrasts

from gradfit.design.coding import _RCoding, _RNames
from gradfit.design.columns import Columns, _plain, as_columns, missing_mask
from gradfit.design.document import DesignDocument, Terms, _shown
from gradfit.design.formula_text import (
    _c_column,
    _factor_variables,
    _factors,
    _parse,
    _term_text,
    _usage,
)
from gradfit.design.levels import DEFAULT_MAX_LEVELS, LevelGatherer
from gradfit.design.state import from_plain, to_plain
from gradfit.errors import DataError, NoRowsLeftError, ValidationError

__all__ = ["MISSING", "UNKNOWN_LEVEL", "Design", "DesignMatrices"]

MISSING = ("error", "drop")
UNKNOWN_LEVEL = ("error", "zero")


class DesignMatrices(NamedTuple):
    """The matrices of one batch: ``X`` (n, p) and ``Y`` (n, k) float64 (``Y`` None when the
    targets were not asked for), over the kept rows; ``kept`` (rows of the batch,) bool;
    ``n_dropped`` rows left out for a missing value; ``n_unknown`` rows with a level not seen
    in training, encoded as the reference level (``unknown_level="zero"``)."""

    X: npt.NDArray[np.float64]
    Y: npt.NDArray[np.float64] | None
    kept: npt.NDArray[np.bool_]
    n_dropped: int
    n_unknown: int


def _check_choice(value: Any, choices: Sequence[str], what: str) -> str:
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValidationError(f"{what} must be one of {listed}, got {value!r}")
    return value


@dataclass(frozen=True)
class Design(DesignDocument):
    """What the model's columns are made of (see the module's docstring): a
    :class:`~gradfit.design.document.DesignDocument` (its attributes, its JSON, its checks)
    that turns batches into matrices (formulaic)."""

    # ------------------------------------------------------------------ making one

    @classmethod
    def from_formula(
        cls,
        formula: str,
        data: Any,
        *,
        levels: Mapping[str, Sequence[Any]] | None = None,
        max_levels: int = DEFAULT_MAX_LEVELS,
        missing: str = "error",
        source: str | None = None,
    ) -> Design:
        """The design of ``formula`` (``"y ~ x + C(g)"``, ``"a + b ~ ."``) on ``data`` (a
        pandas DataFrame, pyarrow or gradfit Table, dict of columns).

        The levels of the categorical columns are those of ``data`` unless ``levels`` gives
        them (from a levels pass over all the data, when ``data`` is a first batch); the state
        of stateful transforms (``poly``...) is computed on the rows of ``data`` that the
        model keeps (``missing``: ``"error"`` or ``"drop"``, R's ``na.omit``).
        """
        if not isinstance(formula, str) or "~" not in formula:
            raise ValidationError(
                f"a formula must be a string 'targets ~ terms' (e.g. 'y ~ x + C(g)'), got "
                f"{formula!r}"
            )
        columns = as_columns(data, source)
        terms, target_terms = _parse(formula, columns)
        return cls._make(formula, terms, target_terms, columns, levels, max_levels, missing)

    @classmethod
    def default(
        cls,
        data: Any,
        targets: Sequence[str] | str,
        features: Sequence[str] | None = None,
        *,
        levels: Mapping[str, Sequence[Any]] | None = None,
        max_levels: int = DEFAULT_MAX_LEVELS,
        missing: str = "error",
        source: str | None = None,
    ) -> Design:
        """The design without a formula, R's ``y ~ .``: the ``features`` (default every column
        that is not a target), numeric columns as they are, text and boolean columns as
        categorical ones (treatment contrasts: ``woolB``), with an intercept."""
        columns = as_columns(data, source)
        target_names = (targets,) if isinstance(targets, str) else tuple(targets)
        if not target_names:
            raise ValidationError("name at least one target column")
        for name in target_names:
            columns.column(name)
        if features is None:
            features = [name for name in columns.columns if name not in target_names]
        else:
            features = list(features)
            for name in features:
                columns.column(name)
        terms: Terms = (
            (("1", "literal"),),
            *(((name, "lookup"),) for name in features),
        )
        target_terms: Terms = tuple(((name, "lookup"),) for name in target_names)
        return cls._make(None, terms, target_terms, columns, levels, max_levels, missing)

    @staticmethod
    def categorical_columns(
        formula: str | None,
        sample: Any,
        targets: Sequence[str] | str = (),
        features: Sequence[str] | None = None,
    ) -> tuple[str, ...]:
        """The columns whose levels a levels pass (:class:`LevelGatherer`) must gather over
        all the data before the design is made from a first batch ``sample`` (``levels=``):
        the text and boolean columns the model reads, and the numeric ones under ``C()``.
        ``formula`` None: the plain columns of :meth:`default` (``targets``, ``features``)."""
        columns = as_columns(sample)
        if formula is None:
            names = (targets,) if isinstance(targets, str) else tuple(targets)
            chosen = (
                list(features)
                if features is not None
                else [name for name in columns.columns if name not in names]
            )
            terms: Terms = tuple(((name, "lookup"),) for name in chosen)
            target_terms: Terms = tuple(((name, "lookup"),) for name in names)
        else:
            terms, target_terms = _parse(formula, columns)
        return tuple(_usage(terms, target_terms, columns)[2])

    @staticmethod
    def reads_column(formula: str, sample: Any, name: str) -> bool:
        """Whether ``formula`` names the column ``name``, which ``sample`` (a table without
        it: the weights column, never a term of a fit) lacks: ``.`` expands over the columns of
        ``sample``, a name in a term (``w``, ``np.log(w)``, ``C(w)``) counts."""
        columns = as_columns(sample)
        terms, target_terms = _parse(formula, columns)
        available = [*columns.columns, name]
        return any(
            name in _factor_variables(expr, method, available)
            for term in (*terms, *target_terms)
            for expr, method in term
        )

    @classmethod
    def _make(
        cls,
        formula: str | None,
        terms: Terms,
        target_terms: Terms,
        columns: Columns,
        levels: Mapping[str, Sequence[Any]] | None,
        max_levels: int,
        missing: str,
    ) -> Design:
        missing = _check_choice(missing, MISSING, "missing")
        variables, target_variables, categorical = _usage(terms, target_terms, columns)
        available = list(columns.columns)
        if levels is None:
            found = LevelGatherer(categorical, max_levels, columns.source).update(columns).levels()
        else:
            found = {}
            for name in categorical:
                if name not in levels:
                    raise ValidationError(f"levels= gives no levels for column {name!r}")
                found[name] = tuple(_plain(v) for v in levels[name])
        encoders: dict[str, tuple[Any, ...]] = {}
        for term in terms:
            for expr, method in term:
                if method == "lookup" and expr in found:
                    encoders[expr] = found[expr]
                elif method == "python":
                    c_column = _c_column(expr, available)
                    if c_column is not None and "levels=" not in expr.replace(" ", ""):
                        encoders[expr] = found[c_column]
        fit_intercept = any(term == (("1", "literal"),) for term in terms)
        draft = cls(
            formula=formula,
            targets=tuple(term[0][0] for term in target_terms),
            columns=(),
            fit_intercept=fit_intercept,
            levels=found,
            variables=tuple(variables),
            target_variables=tuple(dict.fromkeys(target_variables)),
            terms=terms,
            target_terms=target_terms,
            encoders=encoders,
        )
        frame, _, _, _ = draft._frame(columns, missing, "error", with_targets=True)
        if len(frame) == 0:
            raise NoRowsLeftError(
                f"{columns.source}: no rows left to make the design from: every row has a "
                "missing value in a column the model uses"
            )
        spec = _model_matrix(draft._spec, frame, columns.source).model_spec
        names = tuple(str(name) for name in spec.column_names)
        # A formula of the intercept alone (R's y ~ 1) is a design: ols and anova take it, a
        # fit to a model file refuses it (column_choice.refuse_intercept_alone); one of no
        # column at all (y ~ 0) is nothing to fit.
        if not names and formula is not None:
            raise ValidationError(
                f"the formula {formula!r} gives no column, neither an intercept nor a feature; "
                "add a term (e.g. 'y ~ x')"
            )
        if formula is None and all(name == "Intercept" for name in names):
            raise ValidationError(f"{columns.source}: no feature column; name at least one feature")
        column_terms = _column_terms(spec, terms, names)
        for expr, (kind, state) in spec.encoder_state.items():
            if kind == Factor.Kind.CATEGORICAL and expr not in encoders:
                encoders[expr] = tuple(_plain(v) for v in state["categories"])
        return cls(
            formula=formula,
            targets=draft.targets,
            columns=tuple(name for name in names if name != "Intercept"),
            fit_intercept=fit_intercept,
            levels=found,
            variables=draft.variables,
            target_variables=draft.target_variables,
            terms=terms,
            target_terms=target_terms,
            encoders=encoders,
            transform_state=to_plain(dict(spec.transform_state)),
            column_terms=column_terms,
        )

    def term_columns(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """The formula's terms but the intercept, in order, each with the indices of the
        columns of X it made: ``(("wool", (0,)), ("tension", (1, 2)), ("wool:tension",
        (3, 4)))`` for ``breaks ~ wool * tension`` (R's ``assign`` of a model matrix). A term
        that made no column (all of its columns redundant) is left out. A ValidationError for a
        design read from a document that does not keep the columns' terms."""
        if len(self.column_terms) != len(self.columns):
            raise ValidationError(
                "this design does not say which term made each column (it was saved by an "
                "older gradfit); make it again from the formula and the data"
            )
        out = []
        for index, term in enumerate(self.terms):
            columns = tuple(i for i, t in enumerate(self.column_terms) if t == index)
            if columns and term != (("1", "literal"),):
                out.append((_term_text(term), columns))
        return tuple(out)

    # ------------------------------------------------------------------ formulaic

    @cached_property
    def _spec(self) -> ModelSpec:
        """formulaic's spec of X with R's coding of the factors (:class:`_RCoding`)."""
        return self._make_spec(_RCoding)

    @cached_property
    def _legacy_spec(self) -> ModelSpec:
        """formulaic's own coding, of the designs saved by gradfit before R's coding (whose
        columns differ where an interaction comes without its margins: ``y ~ a:b``)."""
        return self._make_spec(_RNames)

    def _make_spec(self, materializer: type[_RNames]) -> ModelSpec:
        encoder_state = {
            expr: (
                Factor.Kind.CATEGORICAL,
                {
                    "categories": list(levels),
                    "contrasts": ContrastsState(
                        contrasts=TreatmentContrasts(), levels=list(levels)
                    ),
                },
            )
            for expr, levels in self.encoders.items()
        }
        formula = SimpleFormula(
            [
                Term([Factor(expr, eval_method=method) for expr, method in term])
                for term in self.terms
            ]
        )
        return ModelSpec(
            formula=formula,
            materializer=materializer,
            ensure_full_rank=True,
            na_action="ignore",
            output="numpy",
            transform_state=from_plain(self.transform_state),
            encoder_state=encoder_state,
        )

    @cached_property
    def _target_spec(self) -> ModelSpec | None:
        if all(term[0][1] == "lookup" for term in self.target_terms):
            return None
        formula = SimpleFormula(
            [
                Term([Factor(expr, eval_method=method) for expr, method in term])
                for term in self.target_terms
            ]
        )
        return ModelSpec(
            formula=formula,
            materializer=_RNames,
            ensure_full_rank=False,
            na_action="ignore",
            output="numpy",
        )

    @cached_property
    def _coding(self) -> str:
        """``"r"`` (:class:`_RCoding`), or ``"formulaic"`` once a batch showed the design's
        columns to be those of formulaic's coding (a design saved by an older gradfit)."""
        return "r"

    def _encoded(
        self, frame: Any, source: str, coding: str
    ) -> tuple[list[str], npt.NDArray[np.float64]]:
        """X of a batch's frame by formulaic with ``coding``, and its columns' names (the
        intercept's column left out)."""
        matrix = _model_matrix(self._spec if coding == "r" else self._legacy_spec, frame, source)
        names = [str(name) for name in matrix.model_spec.column_names]
        X = np.asarray(matrix, dtype=np.float64)
        if self.fit_intercept:
            X = X[:, [i for i, name in enumerate(names) if name != "Intercept"]]
            names = [name for name in names if name != "Intercept"]
        return names, X

    @cached_property
    def _direct(self) -> tuple[tuple[str, int, int], ...] | None:
        """The design encoded without formulaic, where it is the common one: an intercept
        then terms of one plain column each, numeric or a text categorical column in
        treatment coding (its levels but the first as indicator columns). Each column's
        (name, first column of X, levels) (levels 0: a numeric column); None for any other
        design (interactions, transforms, ``C()``, no intercept), which formulaic encodes. The
        names it gives must be the design's own, else None: the same matrix, to the bit
        (tests/test_design_direct.py)."""
        if self.contrasts != "treatment" or not self.fit_intercept:
            return None
        if not self.terms or self.terms[0] != (("1", "literal"),):
            return None
        plan: list[tuple[str, int, int]] = []
        names: list[str] = []
        for term in self.terms[1:]:
            if len(term) != 1 or term[0][1] != "lookup":
                return None
            name = term[0][0]
            if name not in self.levels:
                if name in self.encoders:
                    return None
                plan.append((name, len(names), 0))
                names.append(name)
                continue
            levels = self.levels[name]
            if (
                len(levels) < 1
                or tuple(self.encoders.get(name, ())) != tuple(levels)
                or not all(isinstance(level, str) for level in levels)
            ):
                return None
            plan.append((name, len(names), len(levels)))
            names.extend(f"{name}{_plain(level)}" for level in levels[1:])
        if tuple(names) != self.columns:
            return None
        return tuple(plan)

    # ------------------------------------------------------------------ the matrices

    def _frame(
        self, columns: Columns, missing: str, unknown_level: str, with_targets: bool
    ) -> tuple[Any, npt.NDArray[np.bool_], int, int]:
        """The DataFrame of the kept rows of the used columns (the categorical ones as pandas
        Categoricals of the frozen levels), the kept mask, rows dropped, unknown cells."""
        cells, kept, n_dropped, n_unknown, codes = self._cells(
            columns, missing, unknown_level, with_targets
        )
        return self._dataframe(cells, codes), kept, n_dropped, n_unknown

    def _dataframe(self, cells: dict[str, Any], codes: Mapping[str, Any]) -> Any:
        """:meth:`_cells`' columns as formulaic reads them: the text categorical ones (those
        with codes) as pandas Categoricals of the frozen levels."""
        return pd.DataFrame(
            {
                name: pd.Categorical(values, categories=list(self.levels[name]))
                if name in codes
                else values
                for name, values in cells.items()
            }
        )

    def _cells(
        self, columns: Columns, missing: str, unknown_level: str, with_targets: bool
    ) -> tuple[dict[str, Any], npt.NDArray[np.bool_], int, int, dict[str, npt.NDArray[Any]]]:
        """:meth:`_frame`'s columns as a dict (not yet a DataFrame; a text categorical column
        as its cells, not yet a Categorical), and each text categorical column's level codes
        (the index of each kept cell's level)."""
        n = columns.n_rows
        used = self.input_columns(with_targets)
        data = {name: columns.column(name) for name in used}
        kept = np.ones(n, dtype=bool)
        first_bad: tuple[int, str] | None = None
        for name in used:
            bad = missing_mask(data[name])
            if bad.any():
                row = int(np.argmax(bad))
                if first_bad is None or row < first_bad[0]:
                    first_bad = (row, name)
                kept &= ~bad
        if first_bad is not None and missing == "error":
            row, name = first_bad
            raise DataError(
                f"{columns.source}: column {name!r}, row {columns.first_row + row}: missing "
                "value (an empty cell, NA or NaN); fill it in or remove that row, or leave out "
                "the rows with a missing value with --missing drop (missing='drop')"
            )
        unknown_rows = np.zeros(int(kept.sum()), dtype=bool)
        frame: dict[str, Any] = {}
        codes: dict[str, npt.NDArray[Any]] = {}
        for name in used:
            values = data[name][kept] if not kept.all() else data[name]
            if name in self.levels:
                levels = list(self.levels[name])
                values = _like_levels(values, levels, name, columns)
                index = None
                if values.dtype == object:
                    index = pd.Index(levels, dtype=object).get_indexer(values)
                    unknown = index < 0
                else:
                    unknown = ~np.isin(values.astype(np.float64), np.asarray(levels, float))
                if unknown.any():
                    if unknown_level == "error":
                        index = int(np.flatnonzero(unknown)[0])
                        row = columns.first_row + int(np.flatnonzero(kept)[index])
                        level = values[index]
                        raise DataError(
                            f"{columns.source}: column {name!r}, row {row}: level "
                            f"{_plain(level)!r} was not seen in training (levels: "
                            f"{_shown(levels)}); remove that row, or encode unknown levels as "
                            f"the reference level {_plain(levels[0])!r} with --unknown-level "
                            "zero (unknown_level='zero')"
                        )
                    unknown_rows |= unknown
                    values = values.copy()
                    values[unknown] = levels[0]
                    if index is not None:
                        index = np.where(unknown, 0, index)
                if values.dtype == object:
                    frame[name] = values  # a Categorical of the levels in _dataframe
                    if index is not None:
                        codes[name] = index
                    continue
            elif values.dtype == object:
                frame[name] = values
                continue
            frame[name] = values.astype(np.float64)
        return frame, kept, int(n - kept.sum()), int(unknown_rows.sum()), codes

    def input_columns(self, with_targets: bool = True) -> tuple[str, ...]:
        """The data columns a batch must hold: every variable, or (``with_targets`` False, to
        predict) those the formula's right-hand side reads."""
        return tuple(
            name
            for name in self.variables
            if with_targets or name not in self.target_variables or self._rhs_uses(name)
        )

    def _rhs_uses(self, name: str) -> bool:
        available = list(self.variables)
        return any(
            name in _factor_variables(expr, method, available)
            for term in self.terms
            for expr, method in term
        )

    def matrices(
        self,
        batch: Any,
        *,
        missing: str = "error",
        unknown_level: str = "error",
        with_targets: bool = True,
        first_row: int | None = None,
        source: str | None = None,
    ) -> DesignMatrices:
        """X (n, p) and Y (n, k) of a batch, float64, encoded by the frozen design.

        Parameters
        ----------
        batch : pandas DataFrame, pyarrow or gradfit Table, or dict of columns
        missing : {"error", "drop"}
            A missing value in a column the model reads is one DataError naming the source,
            column and row, or its row is left out (R's ``na.omit``).
        unknown_level : {"error", "zero"}
            A level not seen when the design was made is one DataError naming the column, row
            and level, or is encoded as the reference level (all its treatment columns 0),
            its rows counted in ``n_unknown``.
        with_targets : bool
            Also Y (to fit or evaluate); False for prediction (the targets need not be there).
        first_row : int, optional
            The data row of the batch's first row (1-based) in messages; default a Table's
            ``row_offset + 1``, else 1.
        """
        missing = _check_choice(missing, MISSING, "missing")
        unknown_level = _check_choice(unknown_level, UNKNOWN_LEVEL, "unknown_level")
        columns = as_columns(batch, source, first_row)
        cells, kept, n_dropped, n_unknown, codes = self._cells(
            columns, missing, unknown_level, with_targets
        )
        rows = np.flatnonzero(kept) + columns.first_row
        direct = self._direct
        if direct is not None and not all(
            levels or (isinstance(cells[name], np.ndarray) and cells[name].dtype == np.float64)
            for name, _, levels in direct
        ):
            direct = None  # a numeric column holding text: formulaic's own message
        frame: Any = cells if direct is not None else self._dataframe(cells, codes)
        if len(rows) == 0:
            X = np.zeros((0, len(self.columns)))
        elif direct is not None:
            X = _direct_matrix(direct, cells, codes, len(rows), len(self.columns))
            _check_finite(X, self.columns, rows, columns.source)
        else:
            names, X = self._encoded(frame, columns.source, self._coding)
            if tuple(names) != self.columns and self._coding == "r":
                # a design saved before R's coding: formulaic's own, for good if it fits
                legacy_names, legacy_X = self._encoded(frame, columns.source, "formulaic")
                if tuple(legacy_names) == self.columns:
                    self.__dict__["_coding"] = "formulaic"
                    names, X = legacy_names, legacy_X
            if tuple(names) != self.columns:  # pragma: no cover - formulaic's contract
                raise DataError(
                    f"{columns.source}: the formula gives columns {names}, not the design's "
                    f"{list(self.columns)}"
                )
            _check_finite(X, self.columns, rows, columns.source)
        Y = None
        if with_targets:
            if direct is not None and self._target_spec is not None:
                frame = self._dataframe(cells, codes)  # targets formulaic computes
            Y = self._targets(frame, len(rows), columns.source)
            _check_finite(Y, self.targets, rows, columns.source)
        return DesignMatrices(np.ascontiguousarray(X), Y, kept, n_dropped, n_unknown)

    def _targets(self, frame: Any, n: int, source: str) -> npt.NDArray[np.float64]:
        """Y of the kept rows (``n``) from their columns (a DataFrame; or a dict of arrays,
        see :meth:`_cells`, when the targets are plain columns)."""
        if n == 0:
            return np.zeros((0, len(self.targets)))
        spec = self._target_spec
        if spec is None:
            out = np.empty((n, len(self.targets)))
            for j, name in enumerate(self.targets):
                column = frame[name]
                if str(column.dtype) in ("category", "object", "str", "string"):
                    raise DataError(
                        f"{source}: target column {name!r} holds text, not numbers; a target "
                        "must be numeric"
                    )
                out[:, j] = np.asarray(column, dtype=np.float64)
            return out
        Y = np.asarray(_model_matrix(spec, frame, source), dtype=np.float64)
        if Y.shape[1] != len(self.targets):
            raise DataError(f"{source}: each target must be one numeric column")
        return Y


def _model_matrix(spec: ModelSpec, frame: Any, source: str) -> Any:
    """formulaic's matrix of ``frame`` by ``spec`` (its warnings silenced); its errors as one
    DataError naming ``source``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return spec.get_model_matrix(frame)
    except FormulaicError as exc:
        raise DataError(f"{source}: {' '.join(str(exc).split())}") from None


def _direct_matrix(
    plan: tuple[tuple[str, int, int], ...],
    cells: Mapping[str, Any],
    codes: Mapping[str, npt.NDArray[Any]],
    n: int,
    p: int,
) -> npt.NDArray[np.float64]:
    """X of :attr:`Design._direct`'s plan: numeric columns copied, each categorical one as
    the indicators of its levels but the first (treatment coding), from its level codes."""
    X = np.zeros((n, p))
    for name, start, levels in plan:
        if levels == 0:
            X[:, start] = cells[name]
            continue
        index = codes[name]
        chosen = np.flatnonzero(index > 0)
        X[chosen, start + index[chosen] - 1] = 1.0
    return X


def _like_levels(
    values: npt.NDArray[Any], levels: list[Any], name: str, columns: Columns
) -> npt.NDArray[Any]:
    """A batch's cells as the kind of the levels: numbers as text for text levels (a batch of
    a text column whose cells all looked like numbers), text as numbers for numbers."""
    text_levels = any(isinstance(level, str) for level in levels)
    if text_levels and values.dtype != object:
        return np.array([str(_plain(v)) for v in values.tolist()], dtype=object)
    if not text_levels and values.dtype == object:
        try:
            return np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(
                f"{columns.source}: column {name!r} holds text, but its levels are numbers; "
                "give that column numbers in every file and batch"
            ) from None
    return values


def _column_terms(spec: ModelSpec, terms: Terms, names: tuple[str, ...]) -> tuple[int, ...]:
    """For each column of X (``names``, the intercept left out), the index in ``terms`` of the
    term that made it, from formulaic's term slices (its terms are those of ``terms``, in
    order)."""
    index = {_term_text(term): i for i, term in enumerate(terms)}
    out: list[int] = []
    for term, where in spec.term_slices.items():
        text = _term_text(_factors(term))
        for name in names[where]:
            if name != "Intercept":
                out.append(index[text])
    return tuple(out)


def _check_finite(
    matrix: npt.NDArray[np.float64], names: Sequence[str], rows: npt.NDArray[Any], source: str
) -> None:
    bad = ~np.isfinite(matrix)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise DataError(
            f"{source}: column {names[j]!r}, row {int(rows[i])}: the formula gives "
            f"{matrix[i, j]} (not a finite number); fix the value or the formula"
        )
