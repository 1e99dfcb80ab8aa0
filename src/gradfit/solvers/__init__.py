"""The solver engine: pure functions on tensors (closed form, full-batch and mini-batch gradient
descent), shared by the estimator and the command line.

The package's names are imported on first use (PEP 562), so that the light modules below it
(:mod:`gradfit.solvers.registry`, :mod:`gradfit.solvers.config`, which the command line's
parser reads) import without torch.
"""

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from gradfit.solvers.lstsq import LeastSquaresResult, least_squares

__all__ = ["LeastSquaresResult", "least_squares"]


def __getattr__(name: str) -> _typing.Any:
    if name in __all__:
        value = getattr(_importlib.import_module("gradfit.solvers.lstsq"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gradfit.solvers' has no attribute {name!r}")
