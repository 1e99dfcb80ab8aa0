"""The design layer: what a model's columns are made of (a formula or plain columns, with the
levels of its categorical columns), turned into float64 matrices batch by batch.

Imported only when a formula or a categorical column is used: it imports formulaic and pandas
(0.57 s of CPU on the development machine after gradfit.data, 0.73 s after
gradfit.inference).
"""

from gradfit.design.design import MISSING, UNKNOWN_LEVEL, Design, DesignMatrices
from gradfit.design.levels import DEFAULT_MAX_LEVELS, LevelGatherer, sort_levels

__all__ = [
    "DEFAULT_MAX_LEVELS",
    "MISSING",
    "UNKNOWN_LEVEL",
    "Design",
    "DesignMatrices",
    "LevelGatherer",
    "sort_levels",
]
