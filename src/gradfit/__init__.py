"""gradfit: linear regression trained by gradient descent on PyTorch.

Every public name but the exceptions is imported on first use, so that ``import gradfit`` pays
for neither PyTorch nor scikit-learn nor SciPy until they are needed.
"""

import importlib as _importlib
import typing as _typing

from gradfit._version import __version__
from gradfit.errors import (
    ConstantVarianceWarning,
    ConvergenceWarning,
    DataError,
    DivergenceError,
    GradfitError,
    ModelFileError,
    RankDeficiencyWarning,
    ValidationError,
)

if _typing.TYPE_CHECKING:
    from gradfit.cv_fit import fit_cv, fit_path
    from gradfit.datasets import load_crops
    from gradfit.diagnostics import Diagnostics, diagnose
    from gradfit.estimator import GradientDescentRegressor
    from gradfit.estimator_cv import GradientDescentRegressorCV
    from gradfit.fitting import FitReport
    from gradfit.inference import AnovaTable, OLSResult, anova, ols
    from gradfit.jobs import EvaluationReport, evaluate, fit, predict, predict_batches
    from gradfit.metrics import RegressionMetrics, r2_score, regression_metrics
    from gradfit.model import LinearModel
    from gradfit.solvers.lstsq import LeastSquaresResult, least_squares
    from gradfit.solvers.path import path


__all__ = [
    "AnovaTable",
    "ConstantVarianceWarning",
    "ConvergenceWarning",
    "DataError",
    "Diagnostics",
    "DivergenceError",
    "EvaluationReport",
    "FitReport",
    "GradfitError",
    "GradientDescentRegressor",
    "GradientDescentRegressorCV",
    "LeastSquaresResult",
    "LinearModel",
    "ModelFileError",
    "OLSResult",
    "RankDeficiencyWarning",
    "RegressionMetrics",
    "ValidationError",
    "__version__",
    "anova",
    "diagnose",
    "evaluate",
    "fit",
    "fit_cv",
    "fit_path",
    "least_squares",
    "load_crops",
    "ols",
    "path",
    "predict",
    "predict_batches",
    "r2_score",
    "regression_metrics",
]


# Imported on first use (PEP 562): `import gradfit` does not import torch, so that the command
# line can catch Ctrl-C from its very first import (a traceback otherwise) and print one line.
_LAZY = {
    "AnovaTable": "gradfit.inference",
    "Diagnostics": "gradfit.diagnostics",
    "EvaluationReport": "gradfit.jobs",
    "FitReport": "gradfit.fitting",
    "GradientDescentRegressor": "gradfit.estimator",
    "GradientDescentRegressorCV": "gradfit.estimator_cv",
    "LeastSquaresResult": "gradfit.solvers.lstsq",
    "LinearModel": "gradfit.model",
    "OLSResult": "gradfit.inference",
    "RegressionMetrics": "gradfit.metrics",
    "anova": "gradfit.inference",
    "diagnose": "gradfit.diagnostics",
    "evaluate": "gradfit.jobs",
    "fit": "gradfit.jobs",
    "fit_cv": "gradfit.cv_fit",
    "fit_path": "gradfit.cv_fit",
    "least_squares": "gradfit.solvers.lstsq",
    "load_crops": "gradfit.datasets",
    "ols": "gradfit.inference",
    "path": "gradfit.solvers.path",
    # gradfit.jobs.predict: of tensors (gradfit.model.predict, as ever) or over a data source.
    "predict": "gradfit.jobs",
    "predict_batches": "gradfit.jobs",
    "r2_score": "gradfit.metrics",
    "regression_metrics": "gradfit.metrics",
}
# Submodules that `import gradfit` used to load, still reachable as attributes.
_SUBMODULES = ("datasets", "metrics", "model", "solvers")


def __getattr__(name: str) -> _typing.Any:
    if name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return _importlib.import_module(f"gradfit.{name}")
    raise AttributeError(f"module 'gradfit' has no attribute {name!r}")


def __dir__() -> list[str]:
    # PEP 562: list the lazily imported names too, so that dir(gradfit) matches __all__.
    return sorted({*globals(), *_LAZY})
