"""gradfit: linear regression trained by gradient descent on PyTorch.

``gradfit.GradientDescentRegressor`` (the scikit-learn estimator) and ``gradfit.ols`` with its
``gradfit.OLSResult`` (standard errors and tests, on SciPy's distributions) are imported on first
use, so that ``import gradfit`` does not pay for importing scikit-learn or SciPy.
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
    from gradfit.inference import OLSResult, ols

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
    "OLSResult",
    "RankDeficiencyWarning",
    "RegressionMetrics",
    "ValidationError",
    "__version__",
    "least_squares",
    "load_crops",
    "ols",
    "predict",
    "r2_score",
    "regression_metrics",
]


def __getattr__(name: str) -> _typing.Any:
    if name == "GradientDescentRegressor":
        from gradfit.estimator import GradientDescentRegressor

        return GradientDescentRegressor
    if name in ("OLSResult", "ols"):
        from gradfit import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'gradfit' has no attribute {name!r}")


def __dir__() -> list[str]:
    # PEP 562: list the lazily imported names too, so that dir(gradfit) matches __all__.
    return sorted({*globals(), "GradientDescentRegressor", "OLSResult", "ols"})
