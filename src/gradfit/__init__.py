"""gradfit: linear regression trained by gradient descent on PyTorch."""

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

__version__ = "0.1.0"

__all__ = [
    "ConvergenceWarning",
    "DataError",
    "DivergenceError",
    "GradfitError",
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
