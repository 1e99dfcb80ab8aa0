"""The design layer: what a model's columns are made of (a formula or plain columns, with the
levels of its categorical columns), turned into float64 matrices batch by batch.

The design document alone (:class:`DesignDocument`: its fields and checks, what ``gradfit
info`` reads) imports NumPy only. The rest (:class:`Design`, :class:`LevelGatherer`...) is
imported on first use of its name here: it imports formulaic and pandas (0.57 s of CPU on the
development machine after gradfit.data, 0.73 s after gradfit.inference), which only a formula
or a categorical column needs.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

from gradfit.design.document import DesignDocument

if _typing.TYPE_CHECKING:
    from gradfit.design.design import MISSING, UNKNOWN_LEVEL, Design, DesignMatrices
    from gradfit.design.levels import DEFAULT_MAX_LEVELS, LevelGatherer, sort_levels

__all__ = [
    "DEFAULT_MAX_LEVELS",
    "MISSING",
    "UNKNOWN_LEVEL",
    "Design",
    "DesignDocument",
    "DesignMatrices",
    "LevelGatherer",
    "sort_levels",
]

# Imported on first use (PEP 562): formulaic and pandas, for a formula or categoricals only.
_LAZY = {
    "DEFAULT_MAX_LEVELS": "gradfit.design.levels",
    "Design": "gradfit.design.design",
    "DesignMatrices": "gradfit.design.design",
    "LevelGatherer": "gradfit.design.levels",
    "MISSING": "gradfit.design.design",
    "UNKNOWN_LEVEL": "gradfit.design.design",
    "sort_levels": "gradfit.design.levels",
}


def __getattr__(name: str) -> _typing.Any:
    if name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gradfit.design' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
