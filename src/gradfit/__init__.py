"""gradfit: linear regression trained by gradient descent on PyTorch.

``gradfit.GradientDescentRegressor`` (the scikit-learn estimator) is imported on first use, so
that ``import gradfit`` does not pay for importing scikit-learn.
"""

import typing as _typing

from gradfit.datasets import load_crops
from gradfit.errors import (
    ConvergenceWarning,
    DataError,
    DivergenceError,
    GradfitError,
    ModelFileError,
    RankDeficiencyWarning,
    ValidationError,
)
from gradfit.metrics import RegressionMetrics, r2_score, regression_metrics
from gradfit.model import LinearModel, predict
from gradfit.solvers.lstsq import LeastSquaresResult, least_squares

if _typing.TYPE_CHECKING:
    from gradfit.estimator import GradientDescentRegressor

__version__ = "0.1.0"

__all__ = [
    "ConvergenceWarning",
    "DataError",
    "DivergenceError",
    "GradfitError",
    "GradientDescentRegressor",
    "LeastSquaresResult",
    "LinearModel",
    "ModelFileError",
    "RankDeficiencyWarning",
    "RegressionMetrics",
    "ValidationError",
    "__version__",
    "least_squares",
    "load_crops",
    "predict",
    "r2_score",
    "regression_metrics",
]


def __getattr__(name: str) -> _typing.Any:
    if name == "GradientDescentRegressor":
        from gradfit.estimator import GradientDescentRegressor

        return GradientDescentRegressor
    raise AttributeError(f"module 'gradfit' has no attribute {name!r}")
