"""The levels pass: the levels of the categorical columns, gathered over batches and processes.

A :class:`LevelGatherer` is given the categorical columns of a model (text, boolean or
dictionary columns; numeric columns under ``C()``) and fed batches of them; it keeps each
column's distinct values only (memory bounded by the levels, never the rows), refuses a column
with more than ``max_levels`` levels, and merges exactly with the gatherer of another process.
:meth:`LevelGatherer.levels` gives them in R's order:

- text: sorted by Unicode code point, which is R's ``factor()`` order in the C locale
  (``LC_COLLATE=C``: ``"B" < "a"``); R in a language locale (en_US) sorts case-insensitively
  first (``"a" < "B"``), so give an order explicitly (a pandas ``Categorical``) where that
  matters;
- numbers under ``C()``: numerically (an integral number is kept as an int: ``C(cyl)6``);
- booleans: ``FALSE``, ``TRUE``;
- a pandas ``Categorical``'s own categories, in their order (R's factor levels), when every
  batch declares the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from gradfit.data.tables import Table, too_many_levels
from gradfit.design.columns import Columns, _plain, as_columns, missing_mask
from gradfit.errors import ValidationError

__all__ = ["DEFAULT_MAX_LEVELS", "LevelGatherer", "sort_levels"]

DEFAULT_MAX_LEVELS = 1000


def sort_levels(values: Iterable[Any]) -> tuple[Any, ...]:
    """Text by code point, numbers numerically; numbers before text if both (R's
    ``factor(c(2, "a"))`` would make them all text: a column holds one kind here)."""
    numbers = sorted(v for v in values if not isinstance(v, str))
    texts = sorted(v for v in values if isinstance(v, str))
    return (*numbers, *texts)


class LevelGatherer:
    """Distinct values of categorical columns over batches (see the module's docstring).

    Parameters
    ----------
    columns : sequence of str
        The categorical columns.
    max_levels : int, default 1000
        A column with more distinct values is refused (one DataError naming it).
    source : str
        Names the data in messages.
    """

    def __init__(
        self,
        columns: Iterable[str],
        max_levels: int = DEFAULT_MAX_LEVELS,
        source: str = "<data>",
    ) -> None:
        if isinstance(max_levels, bool) or not isinstance(max_levels, int) or max_levels < 1:
            raise ValidationError(f"max_levels must be a positive integer, got {max_levels!r}")
        self.names: tuple[str, ...] = tuple(columns)
        self.max_levels = max_levels
        self.source = source
        self._seen: dict[str, set[Any]] = {name: set() for name in self.names}
        # A pandas Categorical's categories, while every batch declares the same.
        self._declared: dict[str, tuple[Any, ...] | None] = {}

    def update(self, batch: Any) -> LevelGatherer:
        """Add the values of one batch (a Table, pyarrow table, DataFrame or dict holding at
        least the categorical columns). Returns self."""
        columns: Columns = as_columns(batch, self.source)
        for name in self.names:
            self._update_column(name, columns.column(name), columns.declared.get(name))
        return self

    def update_values(self, name: str, values: npt.NDArray[Any]) -> LevelGatherer:
        """Add values of one categorical column, as a gradfit Table holds them (any number,
        in any order, missing ones included: the distinct values of a batch, say): the same
        as :meth:`update` with a batch of them. Returns self."""
        if name not in self._seen:
            raise ValidationError(f"{name!r} is not one of the columns {self.names}")
        columns = as_columns(Table({name: values}, source=self.source))
        return self._update_column(name, columns.column(name), None)

    def _update_column(
        self, name: str, column: npt.NDArray[Any], declared: tuple[Any, ...] | None
    ) -> LevelGatherer:
        present = column[~missing_mask(column)]
        if column.dtype == object:
            values = {_plain(v) for v in set(present.tolist())}
        else:
            values = {_plain(v) for v in np.unique(present).tolist()}
        self._add(name, values, declared)
        return self

    def _add(self, name: str, values: set[Any], declared: tuple[Any, ...] | None) -> None:
        seen = self._seen[name]
        seen |= values
        if declared is not None:
            seen |= set(declared)
        if name not in self._declared:
            self._declared[name] = declared
        elif self._declared[name] != declared:
            self._declared[name] = None
        if len(seen) > self.max_levels:
            raise too_many_levels(self.source, name, len(seen), self.max_levels)

    def merge(self, other: LevelGatherer) -> LevelGatherer:
        """Add another gatherer's levels (another process's, for a group of ranks): the result
        is the gatherer of all their batches. Returns self."""
        if other.names != self.names:
            raise ValidationError(
                f"cannot merge the levels of columns {other.names} into those of {self.names}"
            )
        for name in self.names:
            if name in other._declared:
                self._add(name, other._seen[name], other._declared[name])
        return self

    def to_state(self) -> dict[str, Any]:
        """The gathered values as plain JSON data (to send to another process)."""
        return {
            "columns": list(self.names),
            "max_levels": self.max_levels,
            "seen": {name: sort_levels(self._seen[name]) for name in self.names},
            "declared": {
                name: None if d is None else list(d) for name, d in self._declared.items()
            },
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], source: str = "<data>") -> LevelGatherer:
        gatherer = cls(state["columns"], state["max_levels"], source)
        for name in gatherer.names:
            if name in state["declared"]:
                declared = state["declared"][name]
                gatherer._add(
                    name,
                    set(state["seen"][name]),
                    None if declared is None else tuple(declared),
                )
        return gatherer

    def levels(self) -> dict[str, tuple[Any, ...]]:
        """Each column's levels in R's order (see the module's docstring)."""
        out = {}
        for name in self.names:
            declared = self._declared.get(name)
            seen = self._seen[name]
            if any(isinstance(v, str) for v in seen):  # a batch of text that looked numeric
                seen = {str(v) for v in seen}
            out[name] = declared if declared is not None else sort_levels(seen)
        return out
