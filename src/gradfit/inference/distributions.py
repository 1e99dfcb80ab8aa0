"""The Student t and F distributions of the tests and intervals, with SciPy loaded on first use.

Loading a model file checks its interval data with this package, and `gradfit predict` without
intervals should not pay for SciPy: ``scipy.special`` (lighter than ``scipy.stats``) is
imported by :func:`special` only when a p-value or a quantile is asked for, or ahead of time
in a thread of its own by :func:`preload_distributions`.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from gradfit.settings import check_level  # the check of RunSettings.level, re-exported

__all__ = ["check_level", "preload_distributions", "special", "t_quantile"]


def special() -> Any:
    """``scipy.special``, for the t and F distributions, imported on first use (0.17 s)."""
    from scipy import special as module

    return module


def preload_distributions() -> threading.Thread:
    """Import :func:`special`'s module in a thread of its own (0.2-0.4 s), for a caller that
    will need it after long work of its own, e.g. the command line before a fit whose report
    has p-values: the import then overlaps the reading of the data instead of following it.
    A failed import is left for the first real use to report."""

    def load() -> None:
        with contextlib.suppress(ImportError):
            special()

    thread = threading.Thread(target=load, name="gradfit-preload-scipy")
    thread.start()
    return thread


def t_quantile(level: float, df: int) -> float:
    """The Student t quantile ``t_{(1+level)/2, df}`` of a two-sided interval."""
    return float(special().stdtrit(df, (1.0 + level) / 2.0))
